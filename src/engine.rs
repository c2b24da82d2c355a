//! Runs the stack: observe live state (read-only, concurrent), plan (pure),
//! then apply as a dependency graph (each resource starts as soon as what it
//! needs is done) and prune what the project no longer declares, or destroy
//! in reverse. The engine knows resources only through the `Resource`
//! trait: no kind is named here.

pub mod graph;

use crate::report::{CriticalPath, Timing};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use anyhow::{anyhow, Result};
use futures::future::{join_all, try_join_all};
use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;

use crate::aws::calls::in_resource;
use crate::aws::Aws;
use crate::model::{
    Claim, Observed, ResourceId, Tags, OWNER_STACK_TAG, OWNER_STAGE_TAG, SHARED_TAG,
};
use crate::names::Names;
use crate::output::{Printer, Step};
use crate::plan::{plan_resource, waves, Action, ResourcePlan};
use crate::resource::{Attributes, Ctx, Known, Resource};
use crate::stack::Stack;

pub type Live = BTreeMap<ResourceId, Option<Observed>>;

/// Reads every resource of the stack (declared and extra) in waves: all at
/// once but for those that need another's live state first (the stage, its
/// API), which are read as soon as that one is. Makes no mutating call.
pub async fn observe(aws: &Aws, stack: &Stack) -> Result<Live> {
    // A graph that cannot be applied fails here, before any read.
    graph::validate(&stack.graph_list())?;
    let ctx = stack.ctx(aws);
    let all: Vec<&dyn Resource> = stack
        .resources
        .iter()
        .chain(stack.extra.iter())
        .map(|r| r.as_ref())
        .collect();
    let ids: BTreeSet<ResourceId> = all.iter().map(|r| r.id()).collect();
    let mut live = Live::new();
    let mut pending = all;
    while !pending.is_empty() {
        let (ready, rest): (Vec<&dyn Resource>, Vec<&dyn Resource>) =
            pending.into_iter().partition(|r| {
                r.read_after()
                    .is_none_or(|id| live.contains_key(&id) || !ids.contains(&id))
            });
        if ready.is_empty() {
            return Err(anyhow!(
                "{} and the resources it reads after wait for each other",
                rest[0].id()
            ));
        }
        let reads = ready.iter().map(|r| {
            let before = r
                .read_after()
                .and_then(|id| live.get(&id).cloned().flatten());
            let ctx = &ctx;
            async move { Ok::<_, anyhow::Error>((r.id(), r.read(ctx, before.as_ref()).await?)) }
        });
        live.extend(try_join_all(reads).await?);
        pending = rest;
    }
    Ok(live)
}

/// The pure step: desired against live, resource by resource, in the
/// stack's order.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub resources: Vec<ResourcePlan>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.resources.iter().any(|r| r.action != Action::NoChange)
    }

    /// What plan and deploy say besides the changes, one line each.
    pub fn notes(&self) -> Vec<String> {
        self.resources
            .iter()
            .filter_map(|r| Some(format!("{} {}", r.resource, r.note.as_ref()?)))
            .collect()
    }

    pub fn conflicts(&self) -> Vec<&ResourceId> {
        self.resources
            .iter()
            .filter(|r| r.action == Action::Conflict)
            .map(|r| &r.resource)
            .collect()
    }
}

/// The declared resources' plans in the stack's order, after the deletes
/// of what the stage owns and no longer declares.
pub fn plan(stack: &Stack, live: &Live) -> Plan {
    // What a replace deletes, so that what goes with it is created again.
    let mut recreated: BTreeSet<ResourceId> = BTreeSet::new();
    let declared: Vec<ResourcePlan> = stack
        .ordered()
        .into_iter()
        .map(|r| {
            let id = r.id();
            let desired = r
                .desired()
                .expect("plan needs a stack listed with its sources");
            let tags = r.tags(&stack.tags);
            let observed = live.get(&id).and_then(Option::as_ref);
            let adopting = observed.is_some_and(|o| {
                stack.adoptable.contains_key(&id)
                    && r.claim(o, &tags) == Claim::Foreign
                    && untagged(o)
            });
            let claim = |o: &Observed| {
                if adopting {
                    Claim::Ours
                } else {
                    r.claim(o, &tags)
                }
            };
            let mut p = plan_resource(
                id.clone(),
                &desired,
                &tags,
                observed.map(|o| (o, claim(o))),
                r.replaced_on(),
            );
            if adopting {
                p.action = Action::Adopt;
            }
            let owner_goes = r.goes_with().is_some_and(|o| recreated.contains(&o));
            if owner_goes && matches!(p.action, Action::NoChange | Action::Update) {
                p.action = Action::Create;
                p.note = Some("created again: AWS deletes it with what it belongs to".into());
            }
            if matches!(p.action, Action::Replace) || owner_goes {
                recreated.insert(id);
            }
            p
        })
        .collect();
    let resources = prunable(stack, live)
        .into_iter()
        .map(|r| ResourcePlan {
            resource: r.id(),
            action: Action::Delete,
            changes: Vec::new(),
            note: None,
        })
        .chain(declared)
        .collect();
    Plan { resources }
}

/// Carries no stepgate tag at all: made by hand (or by another tool), so
/// a name override may adopt it. Another stack's resource never is.
fn untagged(live: &Observed) -> bool {
    [OWNER_STACK_TAG, OWNER_STAGE_TAG, SHARED_TAG]
        .iter()
        .all(|k| !live.tags.contains_key(*k))
}

/// The extra resources deploy deletes: live, the stage's, not what the
/// account shares, and not a declared resource seen under another id (the
/// stage's execution log group is also a log group).
fn prunable<'a>(stack: &'a Stack, live: &Live) -> Vec<&'a dyn Resource> {
    let declared: BTreeSet<&str> = stack
        .resources
        .iter()
        .filter_map(|r| live.get(&r.id())?.as_ref())
        .map(|o| o.physical_id.as_str())
        .collect();
    stack
        .extra
        .iter()
        .map(|r| r.as_ref())
        .filter(|r| {
            let Some(Some(o)) = live.get(&r.id()) else {
                return false;
            };
            r.kept_on_destroy().is_none()
                && r.claim(o, &r.tags(&stack.tags)) == Claim::Ours
                && !declared.contains(o.physical_id.as_str())
        })
        .collect()
}

/// What applying a plan did: per resource attempted, its error if it
/// failed; the ids AWS knows resources by; and when each ran.
#[derive(Debug, Default)]
pub struct Applied {
    pub errors: BTreeMap<ResourceId, String>,
    pub attempted: Vec<ResourceId>,
    pub known: Known,
    pub timings: BTreeMap<ResourceId, Timing>,
}

impl Applied {
    /// Before anything is applied: only the ids of what already exists.
    pub fn nothing_yet(live: &Live) -> Applied {
        Applied {
            known: live
                .iter()
                .filter_map(|(id, o)| {
                    Some((id.clone(), Attributes::observed(&o.as_ref()?.physical_id)))
                })
                .collect(),
            ..Applied::default()
        }
    }

    pub fn succeeded(&self, id: &ResourceId) -> bool {
        self.attempted.contains(id) && !self.errors.contains_key(id)
    }

    /// The critical path through what was applied, following `needs`.
    pub fn critical_path(&self, stack: &Stack) -> CriticalPath {
        let needs: BTreeMap<ResourceId, Vec<ResourceId>> = stack.graph();
        let mut chain = Vec::new();
        let mut at = self
            .timings
            .iter()
            .max_by(|a, b| a.1.end.total_cmp(&b.1.end))
            .map(|(id, _)| id.clone());
        while let Some(id) = at {
            at = needs
                .get(&id)
                .into_iter()
                .flatten()
                .filter(|n| self.timings.contains_key(*n))
                .max_by(|a, b| self.timings[*a].end.total_cmp(&self.timings[*b].end))
                .cloned();
            chain.push(id);
        }
        chain.reverse();
        let (Some(first), Some(last)) = (chain.first(), chain.last()) else {
            return CriticalPath::default();
        };
        CriticalPath {
            seconds: self.timings[last].end - self.timings[first].start,
            calls: chain.iter().map(|id| self.timings[id].calls).sum(),
            resources: chain.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Applies the plan as a graph: a resource starts once everything it needs
/// is in place, so independent branches overlap. After a failure (or
/// Ctrl-C) nothing new starts and what is running finishes; what was applied
/// stays applied and the next deploy picks up from the live state. Errs
/// only on an ownership conflict, before anything is changed.
pub async fn apply(
    aws: &Aws,
    stack: &Stack,
    live: &Live,
    plan: &Plan,
    printer: &Printer,
) -> Result<Applied> {
    if let Some(first) = plan.conflicts().first() {
        return Err(conflict(stack, live, first));
    }
    check_adoptions(stack, plan)?;
    let ctx = stack.ctx(aws);
    let by_id: BTreeMap<ResourceId, &dyn Resource> = stack
        .resources
        .iter()
        .chain(stack.extra.iter())
        .map(|r| (r.id(), r.as_ref()))
        .collect();
    let mut applied = Applied::nothing_yet(live);
    // Deletes wait for everything else: what still points at a pruned
    // resource (a route at its machine) has moved off it by then.
    let declared: Vec<ResourceId> = stack.resources.iter().map(|r| r.id()).collect();
    let mut done: BTreeSet<ResourceId> = plan
        .resources
        .iter()
        .filter(|p| p.action == Action::NoChange)
        .map(|p| p.resource.clone())
        .collect();
    let mut started = BTreeSet::new();
    let mut running = FuturesUnordered::new();
    let began = Instant::now();
    loop {
        let stopping = !applied.errors.is_empty() || crate::interrupt::received().is_some();
        for p in plan.resources.iter() {
            if stopping {
                break;
            }
            let id = &p.resource;
            let resource = by_id[id];
            let ready = if p.action == Action::Delete {
                declared.iter().all(|d| done.contains(d))
            } else {
                resource.needs().iter().all(|n| done.contains(n))
            };
            if done.contains(id) || started.contains(id) || !ready {
                continue;
            }
            started.insert(id.clone());
            let known = applied.known.clone();
            let observed = live.get(id).and_then(Option::as_ref);
            let calls = aws.calls.clone();
            let ctx = &ctx;
            running.push(async move {
                let start = began.elapsed();
                let before = calls.for_resource(id);
                let task = printer.resource_started(id, p.action.into());
                let result = in_resource(id.clone(), run(ctx, resource, p, observed, &known)).await;
                printer.resource_finished(task, result.as_ref().err());
                let end = began.elapsed();
                let timing = Timing {
                    start: start.as_secs_f64(),
                    end: end.as_secs_f64(),
                    calls: calls.for_resource(id) - before,
                };
                (id.clone(), result, timing)
            });
        }
        let Some((id, result, timing)) = running.next().await else {
            break;
        };
        applied.attempted.push(id.clone());
        applied.timings.insert(id.clone(), timing);
        match result {
            Ok(attributes) => {
                applied.known.insert(id.clone(), attributes);
                done.insert(id);
            }
            Err(e) => {
                applied.errors.insert(id, format!("{e:#}"));
            }
        }
    }
    Ok(applied)
}

/// Why deploy refuses a resource plan found in conflict, with the fix.
pub fn conflict(stack: &Stack, live: &Live, id: &ResourceId) -> anyhow::Error {
    // The account's shared role: no stack or stage owns it, its tag does.
    let shared = (stack.resources.iter().find(|r| r.id() == *id))
        .and_then(|r| r.tags(&Tags::new()).remove(SHARED_TAG));
    if let Some(value) = shared {
        return anyhow!(
            "{id} already exists but lacks the tag {SHARED_TAG}={value} that marks the account's shared one as stepgate's; if it is stepgate's, put the tag back (aws iam tag-role --role-name {} --tags Key={SHARED_TAG},Value={value}), else rename or delete that role",
            id.name
        );
    }
    anyhow!(
        "{id} already exists but is not owned by stepgate stack {} stage {} ({}); remove it, or deploy under another --stack or --stage",
        stack.names.stack,
        stack.names.stage,
        Names::foreign_owner(live.get(id).and_then(Option::as_ref))
    )
}

/// Deploy takes an untagged resource only when told to: `--adopt`, or
/// `adopt = true` in its table. Checked before anything changes.
pub fn check_adoptions(stack: &Stack, plan: &Plan) -> Result<()> {
    match plan
        .resources
        .iter()
        .find(|p| p.action == Action::Adopt && !stack.may_adopt(&p.resource))
    {
        Some(first) => Err(not_adopted(&first.resource)),
        None => Ok(()),
    }
}

/// Why deploy refuses to take an untagged resource without being told to.
pub fn not_adopted(id: &ResourceId) -> anyhow::Error {
    anyhow!(
        "{id} exists without stepgate's tags, and stepgate.toml names it (plan lists it as adopt); deploy takes it only with --adopt, or with adopt = true in its table"
    )
}

/// One resource's step: apply, delete (pruning), or delete then create
/// (replace), or take an untagged resource (adopt: an update that also
/// tags it). Returns the id AWS knows it by.
async fn run(
    ctx: &Ctx<'_>,
    resource: &dyn Resource,
    p: &ResourcePlan,
    observed: Option<&Observed>,
    known: &Known,
) -> Result<Attributes> {
    match (p.action, observed) {
        (Action::Delete, Some(live)) => {
            resource.delete(ctx, live).await?;
            Ok(Attributes::observed(&live.physical_id))
        }
        (Action::Replace, Some(live)) => {
            resource.delete(ctx, live).await?;
            let create = ResourcePlan {
                action: Action::Create,
                ..p.clone()
            };
            resource.apply(ctx, &create, None, known).await
        }
        (Action::Adopt, _) => {
            // Taken, it is stepgate's: a field AWS cannot change replaces it.
            let replace = p
                .changes
                .iter()
                .any(|c| resource.replaced_on().contains(&c.top()));
            let step = ResourcePlan {
                action: if replace {
                    Action::Replace
                } else {
                    Action::Update
                },
                ..p.clone()
            };
            Box::pin(run(ctx, resource, &step, observed, known)).await
        }
        _ => resource.apply(ctx, p, observed, known).await,
    }
}

/// What destroy did with one resource.
#[derive(Clone, Debug, Serialize)]
pub struct Removal {
    pub resource: ResourceId,
    /// "delete", "absent" (already gone), "left-alone" (not stepgate's),
    /// "kept" (stepgate's, shared by every stack in the account) or "failed".
    pub action: &'static str,
    /// Why it was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Deletes what stepgate owns, in reverse dependency order, but what the
/// account shares between stacks (kept, and said so). Best effort: it
/// keeps going past a failure and reports every error at the end, so one
/// stuck resource does not strand the rest.
pub async fn destroy(aws: &Aws, stack: &Stack, live: &Live, printer: &Printer) -> Vec<Removal> {
    let ctx = stack.ctx(aws);
    let names = &stack.names;
    let by_id: BTreeMap<ResourceId, &dyn Resource> = stack
        .resources
        .iter()
        .map(|r| (r.id(), r.as_ref()))
        .collect();
    // What another stage owns (its names may start like this one's) is
    // none of this destroy's business; one AWS object found under two ids
    // (the execution log group) is deleted once.
    let mut seen = BTreeSet::new();
    let skip: BTreeSet<ResourceId> = stack
        .resources
        .iter()
        .filter(|r| r.kept_on_destroy().is_none())
        .filter(|r| {
            let Some(Some(o)) = live.get(&r.id()) else {
                return false;
            };
            let another_stage = o.tags.contains_key(crate::model::OWNER_STACK_TAG)
                && !o.owned_by(&names.stack, &names.stage);
            another_stage || (!o.physical_id.is_empty() && !seen.insert(o.physical_id.clone()))
        })
        .map(|r| r.id())
        .collect();
    let mut removals = Vec::new();
    for wave in waves(&stack.graph()).into_iter().rev() {
        let work = wave.into_iter().filter(|id| !skip.contains(id)).map(|id| {
            let ctx = &ctx;
            let resource = by_id[&id];
            async move {
                let observed = live.get(&id).cloned().flatten();
                let tags = resource.tags(&stack.tags);
                let (action, error) = match observed {
                    None => ("absent", None),
                    Some(_) if resource.kept_on_destroy().is_some() => {
                        printer.kept(&id, resource.kept_on_destroy().unwrap_or_default());
                        ("kept", None)
                    }
                    Some(o) if resource.claim(&o, &tags) != Claim::Ours => {
                        printer.left_alone(&id, &names.stack, &names.stage);
                        ("left-alone", None)
                    }
                    Some(o) => {
                        let task = printer.resource_started(&id, Step::Delete);
                        let result = resource.delete(ctx, &o).await;
                        printer.resource_finished(task, result.as_ref().err());
                        match result {
                            Ok(()) => ("delete", None),
                            Err(e) => ("failed", Some(format!("{e:#}"))),
                        }
                    }
                };
                Removal {
                    note: (action == "kept")
                        .then(|| resource.kept_on_destroy())
                        .flatten(),
                    resource: id,
                    action,
                    error,
                }
            }
        });
        removals.extend(join_all(work).await);
    }
    removals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::LogGroupSpec;
    use crate::kinds::logs;

    fn stack(adoptable: Option<bool>) -> Stack {
        let names = Names::new("orders", "dev", "us-east-1", "000000000000");
        let name = "/aws/lambda/completeOrder".to_string();
        let id = ResourceId::new(logs::KIND, &name);
        Stack {
            tags: names.owner_tags(),
            resources: vec![Box::new(logs::LogGroup {
                spec: Some(LogGroupSpec {
                    name: name.clone(),
                    retention_days: 14,
                }),
                name,
            })],
            names,
            extra: Vec::new(),
            adoptable: adoptable.map(|a| (id, a)).into_iter().collect(),
            adopt_all: false,
        }
    }

    fn live(tags: &[(&str, &str)]) -> Live {
        let id = ResourceId::new(logs::KIND, "/aws/lambda/completeOrder");
        let observed = Observed {
            fields: serde_json::json!({ "retention_days": null }),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            physical_id: "arn:aws:logs:us-east-1:0:log-group:/aws/lambda/completeOrder".into(),
        };
        Live::from([(id, Some(observed))])
    }

    #[test]
    fn an_untagged_resource_a_name_override_names_is_planned_as_adopt_with_its_changes() {
        let stack = stack(Some(false));
        let plan = plan(&stack, &live(&[("team", "shop")]));
        let p = &plan.resources[0];
        assert_eq!(p.action, Action::Adopt);
        assert!(p.changed("retention_days"), "{:?}", p.changes);
        assert!(p.changed("tags"), "{:?}", p.changes);
        assert!(plan.has_changes());
        assert!(plan.conflicts().is_empty());
    }

    #[test]
    fn deploy_takes_it_only_with_adopt_or_the_files_adopt_true() {
        let live = live(&[]);
        let mut refused = stack(Some(false));
        let e = check_adoptions(&refused, &plan(&refused, &live)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "log-group /aws/lambda/completeOrder exists without stepgate's tags, and stepgate.toml names it (plan lists it as adopt); deploy takes it only with --adopt, or with adopt = true in its table"
        );
        refused.adopt_all = true;
        assert!(check_adoptions(&refused, &plan(&refused, &live)).is_ok());
        let allowed = stack(Some(true));
        assert!(check_adoptions(&allowed, &plan(&allowed, &live)).is_ok());
    }

    #[test]
    fn another_stacks_resource_or_one_no_override_names_stays_a_conflict() {
        let foreign = live(&[(OWNER_STACK_TAG, "shop"), (OWNER_STAGE_TAG, "dev")]);
        let mut s = stack(Some(true));
        s.adopt_all = true;
        assert_eq!(plan(&s, &foreign).resources[0].action, Action::Conflict);
        let shared = live(&[(SHARED_TAG, "x")]);
        assert_eq!(plan(&s, &shared).resources[0].action, Action::Conflict);
        let unnamed = stack(None);
        assert_eq!(
            plan(&unnamed, &live(&[])).resources[0].action,
            Action::Conflict
        );
        // Once tagged, it is the stage's like any other.
        let ours = live(&[(OWNER_STACK_TAG, "orders"), (OWNER_STAGE_TAG, "dev")]);
        assert_eq!(plan(&s, &ours).resources[0].action, Action::Update);
    }
}
