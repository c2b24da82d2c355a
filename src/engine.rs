//! Runs the stack: observe live state (read-only, concurrent), plan (pure),
//! then apply the plan wave by wave, or destroy in reverse. Retry policy and
//! per-service details stay in `aws::*`; ordering and reporting live here.

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};
use futures::future::{join_all, try_join_all};
use serde::Serialize;

use crate::aws::{apigateway, iam, lambda, logs, sfn, Aws};
use crate::output::{Printer, Step};
use crate::plan::{plan_resource, waves, Action, Kind, Observed, ResourceId, ResourcePlan};
use crate::stack::{layout, DesiredStack, Names, Spec};

pub type Live = BTreeMap<ResourceId, Option<Observed>>;

/// Reads every resource of the stack. Everything but the stage is read
/// concurrently; the stage needs the API's id first. Makes no mutating call.
pub async fn observe(aws: &Aws, names: &Names) -> Result<Live> {
    let ids: Vec<ResourceId> = layout(names).into_keys().collect();
    let reads = ids
        .iter()
        .filter(|id| id.kind != Kind::Stage)
        .map(|id| async move {
            let observed = match id.kind {
                Kind::Role => iam::read(aws, &id.name).await,
                Kind::LogGroup => logs::read(aws, &id.name).await,
                Kind::Function => lambda::read(aws, &id.name).await,
                Kind::StateMachine => sfn::read(aws, &id.name, &names.state_machine_arn()).await,
                Kind::RestApi => apigateway::read_api(aws, &id.name, &names.owner_tags()).await,
                Kind::Stage => unreachable!("the stage is read after its API"),
            }?;
            Ok::<_, anyhow::Error>((id.clone(), observed))
        });
    let mut live: Live = try_join_all(reads).await?.into_iter().collect();
    // Only a stage of our own API is ours to read (and later to change).
    let api = live
        .get(&api_id(names))
        .cloned()
        .flatten()
        .filter(|a| a.owned_by(&names.stack, &names.stage));
    let stage = match api {
        Some(api) => apigateway::read_stage(aws, &api.physical_id, &names.stage).await?,
        None => None,
    };
    live.insert(stage_id(names), stage);
    Ok(live)
}

/// The id AWS gave the stack's REST API, if it was observed.
pub fn observed_api_id(live: &Live, names: &Names) -> Option<String> {
    live.get(&api_id(names))
        .cloned()
        .flatten()
        .map(|o| o.physical_id)
}

fn api_id(names: &Names) -> ResourceId {
    ResourceId {
        kind: Kind::RestApi,
        name: names.api(),
    }
}

fn stage_id(names: &Names) -> ResourceId {
    ResourceId {
        kind: Kind::Stage,
        name: names.stage.clone(),
    }
}

/// The pure step: desired against live, resource by resource, in wave order.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub resources: Vec<ResourcePlan>,
    #[serde(skip)]
    pub waves: Vec<Vec<ResourceId>>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.resources.iter().any(|r| r.action != Action::NoChange)
    }

    pub fn get(&self, id: &ResourceId) -> &ResourcePlan {
        self.resources
            .iter()
            .find(|r| &r.resource == id)
            .expect("every resource is planned")
    }

    pub fn conflicts(&self) -> Vec<&ResourceId> {
        self.resources
            .iter()
            .filter(|r| r.action == Action::Conflict)
            .map(|r| &r.resource)
            .collect()
    }
}

pub fn plan(desired: &DesiredStack, live: &Live) -> Plan {
    let names = &desired.names;
    let waves = waves(&desired.deps);
    let resources = waves
        .iter()
        .flatten()
        .map(|id| {
            let fields = desired.specs[id].fields();
            let observed = live.get(id).and_then(Option::as_ref);
            plan_resource(
                id.clone(),
                &fields,
                &desired.tags,
                observed,
                &names.stack,
                &names.stage,
            )
        })
        .collect();
    Plan { resources, waves }
}

/// What applying a plan did: per resource attempted, its error if it
/// failed; and the REST API's id, which the outputs need.
#[derive(Debug, Default)]
pub struct Applied {
    pub errors: BTreeMap<ResourceId, String>,
    pub attempted: Vec<ResourceId>,
    pub api_id: Option<String>,
}

impl Applied {
    pub fn succeeded(&self, id: &ResourceId) -> bool {
        self.attempted.contains(id) && !self.errors.contains_key(id)
    }
}

/// Applies the plan wave by wave; within a wave, concurrently. A failed wave
/// stops the run (later waves depend on it); what was applied stays applied
/// and the next deploy picks up from the live state. Errs only on an
/// ownership conflict, before anything is changed.
pub async fn apply(
    aws: &Aws,
    desired: &DesiredStack,
    live: &Live,
    plan: &Plan,
    printer: &Printer,
) -> Result<Applied> {
    if let Some(first) = plan.conflicts().first() {
        return Err(anyhow!(
            "{first} already exists but is not owned by stepgate stack {} stage {} (it lacks the stepgate:stack/stepgate:stage tags); remove it, or deploy under another --stack or --stage",
            desired.names.stack,
            desired.names.stage
        ));
    }
    let mut applied = Applied {
        api_id: observed_api_id(live, &desired.names),
        ..Applied::default()
    };
    for wave in &plan.waves {
        let work = wave
            .iter()
            .map(|id| plan.get(id))
            .filter(|p| p.action != Action::NoChange)
            .map(|p| {
                let api_id = applied.api_id.clone();
                async move {
                    let task = printer.resource_started(&p.resource, p.action.into());
                    let observed = live.get(&p.resource).and_then(Option::as_ref);
                    let result = apply_one(aws, desired, p, observed, api_id).await;
                    printer.resource_finished(task, result.as_ref().err());
                    (p.resource.clone(), result)
                }
            });
        for (id, result) in join_all(work).await {
            applied.attempted.push(id.clone());
            match result {
                Ok(new_api) => applied.api_id = new_api.or(applied.api_id.take()),
                Err(e) => {
                    applied.errors.insert(id, format!("{e:#}"));
                }
            }
        }
        if !applied.errors.is_empty() {
            break;
        }
    }
    Ok(applied)
}

/// Applies one resource; returns the REST API's id when it is the API.
async fn apply_one(
    aws: &Aws,
    desired: &DesiredStack,
    p: &ResourcePlan,
    live: Option<&Observed>,
    api_id: Option<String>,
) -> Result<Option<String>> {
    let tags = &desired.tags;
    match &desired.specs[&p.resource] {
        Spec::Role(s) => iam::apply(aws, s, tags, p, live).await?,
        Spec::LogGroup(s) => logs::apply(aws, s, tags, p, live).await?,
        Spec::Function(s) => lambda::apply(aws, s, tags, p, live).await?,
        Spec::StateMachine(s) => sfn::apply(aws, s, tags, p).await?,
        Spec::RestApi(s) => return Ok(Some(apigateway::apply_api(aws, s, tags, p, live).await?)),
        Spec::Stage(s) => {
            let api =
                api_id.ok_or_else(|| anyhow!("stage/{}: the REST API does not exist", s.name))?;
            let names = &desired.names;
            let ctx = apigateway::StageContext {
                tags,
                partition: names.partition,
                region: &names.region,
            };
            apigateway::apply_stage(aws, s, &api, &ctx, p).await?;
        }
    }
    Ok(None)
}

/// What destroy did with one resource.
#[derive(Clone, Debug, Serialize)]
pub struct Removal {
    pub resource: ResourceId,
    /// "delete", "absent" (already gone), "left-alone" (not stepgate's) or "failed".
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Deletes what stepgate owns, in reverse dependency order. Best effort: it
/// keeps going past a failure and reports every error at the end, so one
/// stuck resource does not strand the rest.
pub async fn destroy(aws: &Aws, names: &Names, live: &Live, printer: &Printer) -> Vec<Removal> {
    let mut removals = Vec::new();
    for wave in waves(&layout(names)).into_iter().rev() {
        let work = wave.into_iter().map(|id| async move {
            let observed = live.get(&id).cloned().flatten();
            let (action, error) = match observed {
                None => ("absent", None),
                Some(o) if !o.owned_by(&names.stack, &names.stage) => {
                    printer.left_alone(&id, &names.stack, &names.stage);
                    ("left-alone", None)
                }
                Some(o) => {
                    let task = printer.resource_started(&id, Step::Delete);
                    let result = delete_one(aws, names, &id, &o).await;
                    printer.resource_finished(task, result.as_ref().err());
                    match result {
                        Ok(()) => ("delete", None),
                        Err(e) => ("failed", Some(format!("{e:#}"))),
                    }
                }
            };
            Removal {
                resource: id,
                action,
                error,
            }
        });
        removals.extend(join_all(work).await);
    }
    removals
}

async fn delete_one(aws: &Aws, names: &Names, id: &ResourceId, o: &Observed) -> Result<()> {
    match id.kind {
        Kind::Role => iam::delete(aws, &id.name, o).await,
        Kind::LogGroup => logs::delete(aws, &id.name).await,
        Kind::Function => lambda::delete(aws, &id.name).await,
        Kind::StateMachine => sfn::delete(aws, &id.name, &names.state_machine_arn()).await,
        Kind::RestApi => {
            // Duplicates (see apigateway::read_api) go with it.
            for duplicate in apigateway::duplicates(o) {
                apigateway::delete_api(aws, &id.name, &duplicate).await?;
            }
            apigateway::delete_api(aws, &id.name, &o.physical_id).await
        }
        // The stage goes with its API, which is deleted in the next wave.
        Kind::Stage => Ok(()),
    }
}
