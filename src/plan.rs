//! The pure half of every command: given what should exist and what does,
//! decide what to do. No AWS here, so all of it is unit-tested.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{Claim, Observed, ResourceId, Tags};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    /// A field AWS cannot change differs: deleted, then created anew.
    Replace,
    /// Owned by the stage, no longer declared: pruned.
    Delete,
    NoChange,
    /// A same-named resource exists that stepgate does not own.
    Conflict,
    /// An untagged resource a name override names: deploy takes it (tags
    /// it, then changes what differs) only with `--adopt` or `adopt = true`.
    Adopt,
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
    /// What plan and deploy say about it besides: someone else's resource
    /// used as it is (the account's CloudWatch role).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ResourcePlan {
    pub fn changed(&self, top: &str) -> bool {
        self.changes.iter().any(|c| c.top() == top)
    }
}

/// Decides one resource's action from what was read of it and whose the
/// resource judged it to be. Tags are compared only on the keys stepgate
/// sets, so tags others add are left alone. A change to one of
/// `replaced_on` (fields AWS cannot update) is a replace.
pub fn plan_resource(
    resource: ResourceId,
    desired_fields: &Value,
    desired_tags: &Tags,
    observed: Option<(&Observed, Claim)>,
    replaced_on: &[&str],
) -> ResourcePlan {
    let mut note = None;
    let (action, changes) = match observed {
        None => (Action::Create, Vec::new()),
        Some((_, Claim::Foreign)) => (Action::Conflict, Vec::new()),
        Some((_, Claim::UsedAsIs(why))) => {
            note = Some(why);
            (Action::NoChange, Vec::new())
        }
        Some((live, Claim::Ours)) => {
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
            } else if changes.iter().any(|c| replaced_on.contains(&c.top())) {
                Action::Replace
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
        note,
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
    use crate::model::{Kind, OWNER_STACK_TAG, OWNER_STAGE_TAG};

    /// As the engine plans a stage's resource: ours if it carries the tags.
    fn plan_stage_resource(
        resource: ResourceId,
        fields: &Value,
        tags: &Tags,
        live: Option<&Observed>,
    ) -> ResourcePlan {
        let claim = |o: &Observed| {
            if o.owned_as(tags) {
                Claim::Ours
            } else {
                Claim::Foreign
            }
        };
        plan_resource(resource, fields, tags, live.map(|o| (o, claim(o))), &[])
    }
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
        let r = id(Kind("function"), "f");
        assert_eq!(
            plan_stage_resource(r.clone(), &f, &owner_tags(), None).action,
            Action::Create
        );
        let live = ours(f.clone(), &[]);
        let p = plan_stage_resource(r, &f, &owner_tags(), Some(&live));
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
        let p = plan_stage_resource(id(Kind("function"), "f"), &want, &owner_tags(), Some(&live));
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
        let p = plan_stage_resource(
            id(Kind("role"), "r"),
            &json!({}),
            &owner_tags(),
            Some(&live),
        );
        assert_eq!(p.action, Action::Conflict);
        let other_stage = ours(json!({}), &[(OWNER_STAGE_TAG, "prod")]);
        let p = plan_stage_resource(
            id(Kind("role"), "r"),
            &json!({}),
            &owner_tags(),
            Some(&other_stage),
        );
        assert_eq!(p.action, Action::Conflict);
    }

    #[test]
    fn missing_managed_tag_is_drift_but_foreign_tags_are_ignored() {
        let mut want_tags = owner_tags();
        want_tags.insert("team".into(), "payments".into());
        let live = ours(json!({}), &[]);
        let p = plan_stage_resource(id(Kind("role"), "r"), &json!({}), &want_tags, Some(&live));
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].field, "tags.team");
    }

    #[test]
    fn someone_elses_resource_used_as_it_is_changes_nothing_and_says_so() {
        let live = Observed {
            fields: json!({"cloudwatch_role_arn": "arn:aws:iam::1:role/theirs"}),
            tags: Tags::new(),
            physical_id: String::new(),
        };
        let p = plan_resource(
            id(Kind("apigateway-account"), "us-east-1"),
            &json!({"cloudwatch_role_arn": "arn:aws:iam::1:role/ours"}),
            &Tags::new(),
            Some((&live, Claim::UsedAsIs("uses theirs".into()))),
            &[],
        );
        assert_eq!(p.action, Action::NoChange);
        assert!(p.changes.is_empty());
        assert_eq!(p.note.as_deref(), Some("uses theirs"));
    }

    #[test]
    fn a_field_aws_cannot_change_plans_a_replace() {
        let live = ours(json!({"type": "STANDARD", "definition": 1}), &[]);
        let express = json!({"type": "EXPRESS", "definition": 1});
        let r = id(Kind("state-machine"), "m");
        let p = plan_resource(
            r.clone(),
            &express,
            &owner_tags(),
            Some((&live, Claim::Ours)),
            &["type"],
        );
        assert_eq!(p.action, Action::Replace);
        let p = plan_resource(r, &express, &owner_tags(), Some((&live, Claim::Ours)), &[]);
        assert_eq!(p.action, Action::Update);
    }

    #[test]
    fn absent_null_and_empty_compare_equal() {
        assert!(diff(&json!({"a": {}, "b": "", "c": null, "d": []}), &json!({})).is_empty());
        assert_eq!(diff(&json!({"a": []}), &json!({"a": ["x"]}))[0].field, "a");
    }

    #[test]
    fn waves_follow_dependencies() {
        let role = id(Kind("role"), "r");
        let f1 = id(Kind("function"), "a");
        let f2 = id(Kind("function"), "b");
        let sm = id(Kind("state-machine"), "m");
        let deps = BTreeMap::from([
            (sm.clone(), vec![f1.clone(), f2.clone(), role.clone()]),
            (f1.clone(), vec![role.clone()]),
            (f2.clone(), vec![role.clone()]),
            (role.clone(), vec![]),
        ]);
        assert_eq!(waves(&deps), vec![vec![role], vec![f1, f2], vec![sm]]);
    }
}
