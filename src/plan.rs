//! The pure half of every command: given what should exist and what does,
//! decide what to do. No AWS here, so all of it is unit-tested.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::stack::{Tags, OWNER_STACK_TAG, OWNER_STAGE_TAG};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Role,
    LogGroup,
    Function,
    StateMachine,
    RestApi,
    Stage,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Role => "role",
            Kind::LogGroup => "log-group",
            Kind::Function => "function",
            Kind::StateMachine => "state-machine",
            Kind::RestApi => "rest-api",
            Kind::Stage => "stage",
        }
    }
}

/// A resource by kind and deterministic name: how stepgate finds its own
/// resources again without a state file. Shown as `kind name`
/// (`log-group /aws/lambda/orders-dev-completeOrder`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ResourceId {
    pub kind: Kind,
    pub name: String,
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.name)
    }
}

/// A resource as read from AWS, reduced to the fields stepgate manages, in
/// the same shape as the desired fields so that the two compare directly.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub fields: Value,
    pub tags: Tags,
    /// The id AWS knows it by where that is not its name (REST API ids).
    pub physical_id: String,
}

impl Observed {
    pub fn owned_by(&self, stack: &str, stage: &str) -> bool {
        self.tags.get(OWNER_STACK_TAG).map(String::as_str) == Some(stack)
            && self.tags.get(OWNER_STAGE_TAG).map(String::as_str) == Some(stage)
    }

    /// Whether it carries the ownership tags among `desired` (a resource's
    /// full desired tags): how a create answered "already exists" tells a
    /// lost answer to its own earlier attempt from someone else's resource.
    pub fn owned_as(&self, desired: &Tags) -> bool {
        match (desired.get(OWNER_STACK_TAG), desired.get(OWNER_STAGE_TAG)) {
            (Some(stack), Some(stage)) => self.owned_by(stack, stage),
            _ => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    NoChange,
    /// A same-named resource exists that stepgate does not own.
    Conflict,
}

/// One managed field that differs; `path` is dotted from the resource's
/// fields (`methods.POST.integration.requestTemplates.application/json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub live: Value,
    pub desired: Value,
}

impl FieldChange {
    /// The top-level field this change is under ("definition", "code_sha256").
    pub fn top(&self) -> &str {
        self.field.split('.').next().unwrap_or(&self.field)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResourcePlan {
    pub resource: ResourceId,
    pub action: Action,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
}

impl ResourcePlan {
    pub fn changed(&self, top: &str) -> bool {
        self.changes.iter().any(|c| c.top() == top)
    }
}

/// Decides one resource's action. Tags are compared only on the keys
/// stepgate sets, so tags others add are left alone.
pub fn plan_resource(
    resource: ResourceId,
    desired_fields: &Value,
    desired_tags: &Tags,
    observed: Option<&Observed>,
    stack: &str,
    stage: &str,
) -> ResourcePlan {
    let (action, changes) = match observed {
        None => (Action::Create, Vec::new()),
        Some(live) if !live.owned_by(stack, stage) => (Action::Conflict, Vec::new()),
        Some(live) => {
            let mut want = desired_fields.clone();
            let mut have = live.fields.clone();
            let live_tags: Tags = desired_tags
                .keys()
                .filter_map(|k| live.tags.get(k).map(|v| (k.clone(), v.clone())))
                .collect();
            put(
                &mut want,
                "tags",
                serde_json::to_value(desired_tags).expect("tags serialize"),
            );
            put(
                &mut have,
                "tags",
                serde_json::to_value(live_tags).expect("tags serialize"),
            );
            let changes = diff(&want, &have);
            let action = if changes.is_empty() {
                Action::NoChange
            } else {
                Action::Update
            };
            (action, changes)
        }
    };
    ResourcePlan {
        resource,
        action,
        changes,
    }
}

fn put(fields: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = fields {
        map.insert(key.to_string(), value);
    }
}

/// Field-level differences between desired and live, after treating absent,
/// null, "" and {} alike (AWS omits empty values on read).
pub fn diff(desired: &Value, live: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    diff_into("", &prune(desired), &prune(live), &mut out);
    out
}

fn diff_into(path: &str, desired: &Value, live: &Value, out: &mut Vec<FieldChange>) {
    if desired == live {
        return;
    }
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => {
            let keys: BTreeSet<&String> = d.keys().chain(l.keys()).collect();
            for key in keys {
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                diff_into(
                    &sub,
                    d.get(key).unwrap_or(&Value::Null),
                    l.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ => out.push(FieldChange {
            field: path.to_string(),
            live: live.clone(),
            desired: desired.clone(),
        }),
    }
}

fn prune(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let kept: Map<String, Value> = map
                .iter()
                .map(|(k, v)| (k.clone(), prune(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect();
            Value::Object(kept)
        }
        Value::Array(items) => Value::Array(items.iter().map(prune).collect()),
        other => other.clone(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Orders resources into waves: each wave holds what depends only on earlier
/// waves, so a wave's members can be applied concurrently. Deploy runs the
/// waves forward, destroy in reverse.
pub fn waves(deps: &BTreeMap<ResourceId, Vec<ResourceId>>) -> Vec<Vec<ResourceId>> {
    let mut placed: BTreeMap<&ResourceId, usize> = BTreeMap::new();
    let mut waves: Vec<Vec<ResourceId>> = Vec::new();
    while placed.len() < deps.len() {
        let ready: Vec<&ResourceId> = deps
            .iter()
            .filter(|(id, _)| !placed.contains_key(id))
            // A dependency outside the set constrains nothing.
            .filter(|(_, needs)| {
                needs
                    .iter()
                    .all(|n| placed.contains_key(n) || !deps.contains_key(n))
            })
            .map(|(id, _)| id)
            .collect();
        assert!(
            !ready.is_empty(),
            "dependency cycle among {:?}",
            deps.keys()
        );
        for id in &ready {
            placed.insert(id, waves.len());
        }
        waves.push(ready.into_iter().cloned().collect());
    }
    waves
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(kind: Kind, name: &str) -> ResourceId {
        ResourceId {
            kind,
            name: name.into(),
        }
    }

    fn ours(fields: Value, extra: &[(&str, &str)]) -> Observed {
        let mut tags: Tags = [(OWNER_STACK_TAG, "s"), (OWNER_STAGE_TAG, "dev")]
            .iter()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tags.insert("someone-else".into(), "x".into());
        Observed {
            fields,
            tags,
            physical_id: String::new(),
        }
    }

    fn owner_tags() -> Tags {
        [(OWNER_STACK_TAG, "s"), (OWNER_STAGE_TAG, "dev")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn absent_is_create_and_equal_is_no_change() {
        let f = json!({"memory": 128});
        let r = id(Kind::Function, "f");
        assert_eq!(
            plan_resource(r.clone(), &f, &owner_tags(), None, "s", "dev").action,
            Action::Create
        );
        let live = ours(f.clone(), &[]);
        let p = plan_resource(r, &f, &owner_tags(), Some(&live), "s", "dev");
        assert_eq!(p.action, Action::NoChange, "{:?}", p.changes);
    }

    #[test]
    fn update_names_exactly_the_fields_that_differ() {
        let want =
            json!({"memory": 256, "timeout": 10, "definition": {"States": {"A": {"Next": "B"}}}});
        let live = ours(
            json!({"memory": 128, "timeout": 10, "definition": {"States": {"A": {"Next": "C"}}}}),
            &[],
        );
        let p = plan_resource(
            id(Kind::Function, "f"),
            &want,
            &owner_tags(),
            Some(&live),
            "s",
            "dev",
        );
        assert_eq!(p.action, Action::Update);
        let fields: Vec<&str> = p.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["definition.States.A.Next", "memory"]);
        assert_eq!(p.changes[1].live, json!(128));
        assert_eq!(p.changes[1].desired, json!(256));
        assert!(p.changed("definition") && !p.changed("timeout"));
    }

    #[test]
    fn a_resource_without_our_tags_is_a_conflict_not_an_update() {
        let live = Observed {
            fields: json!({}),
            tags: Tags::new(),
            physical_id: String::new(),
        };
        let p = plan_resource(
            id(Kind::Role, "r"),
            &json!({}),
            &owner_tags(),
            Some(&live),
            "s",
            "dev",
        );
        assert_eq!(p.action, Action::Conflict);
        let other_stage = ours(json!({}), &[(OWNER_STAGE_TAG, "prod")]);
        let p = plan_resource(
            id(Kind::Role, "r"),
            &json!({}),
            &owner_tags(),
            Some(&other_stage),
            "s",
            "dev",
        );
        assert_eq!(p.action, Action::Conflict);
    }

    #[test]
    fn missing_managed_tag_is_drift_but_foreign_tags_are_ignored() {
        let mut want_tags = owner_tags();
        want_tags.insert("team".into(), "payments".into());
        let live = ours(json!({}), &[]);
        let p = plan_resource(
            id(Kind::Role, "r"),
            &json!({}),
            &want_tags,
            Some(&live),
            "s",
            "dev",
        );
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].field, "tags.team");
    }

    #[test]
    fn absent_null_and_empty_compare_equal() {
        assert!(diff(&json!({"a": {}, "b": "", "c": null, "d": []}), &json!({})).is_empty());
        assert_eq!(diff(&json!({"a": []}), &json!({"a": ["x"]}))[0].field, "a");
    }

    #[test]
    fn waves_follow_dependencies() {
        let role = id(Kind::Role, "r");
        let f1 = id(Kind::Function, "a");
        let f2 = id(Kind::Function, "b");
        let sm = id(Kind::StateMachine, "m");
        let deps = BTreeMap::from([
            (sm.clone(), vec![f1.clone(), f2.clone(), role.clone()]),
            (f1.clone(), vec![role.clone()]),
            (f2.clone(), vec![role.clone()]),
            (role.clone(), vec![]),
        ]);
        assert_eq!(waves(&deps), vec![vec![role], vec![f1, f2], vec![sm]]);
    }
}
