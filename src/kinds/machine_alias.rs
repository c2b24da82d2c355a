//! The machine's `live` alias: routes start executions on it, so moving it
//! is the rollout. Before it moves to a new version, the machine's smoke
//! orders run on that version directly; a failure leaves it where it was.
//! After a move, retention deletes old versions. `rollback` moves it back.
//! Uses the Step Functions client (and the functions' versions through
//! `function_version`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{bail, Result};
use async_trait::async_trait;
use aws_sdk_sfn::types::RoutingConfigurationListItem;
use serde_json::{json, Value};

use super::apigateway::set_live_variable;
use super::function_version::{self, owner_tags};
use super::machine_version::{self, Version};
use crate::aws::{code, describe, error, Aws};
use crate::desired::AliasSpec;
use crate::model::{Kind, Observed, ResourceId, Tags};
use crate::plan::{Action, ResourcePlan};
use crate::project::SmokeOrder;
use crate::resource::{spec, Attributes, Ctx, Inventory, Known, Resource};

pub const KIND: Kind = Kind("state-machine-alias");

/// How long one smoke order may run.
const SMOKE_LIMIT: Duration = Duration::from_secs(300);

/// The alias's routing: (version ARN, weight), heaviest first; `None` if
/// there is no such alias.
pub async fn routing(aws: &Aws, alias_arn: &str) -> Result<Option<Vec<(String, i32)>>> {
    let out = match aws
        .sfn
        .describe_state_machine_alias()
        .state_machine_alias_arn(alias_arn)
        .send()
        .await
    {
        Ok(out) => out,
        // AWS says ResourceNotFound; LocalStack 4.4 a ValidationException
        // with no message at all.
        Err(e)
            if code(&e) == Some("ResourceNotFound")
                || (code(&e) == Some("ValidationException") && is_bare(&describe(&e))) =>
        {
            return Ok(None)
        }
        Err(e) if code(&e) == Some("StateMachineDoesNotExist") => return Ok(None),
        Err(e) => {
            return Err(error(
                &format!("alias {alias_arn}"),
                "DescribeStateMachineAlias",
                e,
            ))
        }
    };
    let mut routes: Vec<(String, i32)> = out
        .routing_configuration()
        .iter()
        .map(|r| (r.state_machine_version_arn().to_string(), r.weight()))
        .collect();
    routes.sort_by_key(|r| std::cmp::Reverse(r.1));
    Ok(Some(routes))
}

/// LocalStack's error for a missing alias carries no message of its own.
fn is_bare(message: &str) -> bool {
    let message = message.trim().trim_end_matches(':').trim();
    message.is_empty() || message == "ValidationException" || message.ends_with("None")
}

/// Points the alias at `version_arn` alone, creating it if `create`. One
/// call. Both calls are idempotent with the same routing.
pub async fn point(aws: &Aws, spec: (&str, &str), version_arn: &str, create: bool) -> Result<()> {
    let (name, alias_arn) = spec;
    if !create {
        return super::bake::route(&aws.sfn, alias_arn, &[(version_arn, 100)]).await;
    }
    let route = RoutingConfigurationListItem::builder()
        .state_machine_version_arn(version_arn)
        .weight(100)
        .build()
        .map_err(|e| anyhow::anyhow!("alias {alias_arn}: {e}"))?;
    aws.sfn
        .create_state_machine_alias()
        .name(name)
        .description("Managed by stepgate: the version routes start")
        .routing_configuration(route)
        .send()
        .await
        .map_err(|e| error(&format!("alias {alias_arn}"), "CreateStateMachineAlias", e))?;
    Ok(())
}

/// Runs every smoke order on `version_arn` at once; errs naming each that
/// failed, what it expected, what it got, and its execution.
pub async fn smoke(aws: &Aws, spec: &AliasSpec, version_arn: &str) -> Result<()> {
    let runs = spec
        .smoke
        .iter()
        .map(|order| run_smoke(aws, order, version_arn, spec.machine.kind == "EXPRESS"));
    let failures: Vec<String> = futures::future::join_all(runs)
        .await
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:#}")))
        .collect();
    if failures.is_empty() {
        return Ok(());
    }
    bail!(
        "{}; `{}` stays on the version it served",
        failures.join("; "),
        spec.name
    )
}

async fn run_smoke(aws: &Aws, order: &SmokeOrder, version_arn: &str, express: bool) -> Result<()> {
    let version = version_arn.rsplit(':').next().unwrap_or_default();
    let input = order.input.to_string();
    let (status, output, execution, failure) = if express {
        let out = aws
            .sfn
            .start_sync_execution()
            .state_machine_arn(version_arn)
            .input(&input)
            .send()
            .await
            .map_err(|e| {
                error(
                    &format!("smoke order {}", order.file),
                    "StartSyncExecution",
                    e,
                )
            })?;
        let output = out.output().map(super::sfn::parse_definition);
        let failure = failure(out.error(), out.cause());
        (
            out.status().as_str().to_string(),
            output,
            out.execution_arn().to_string(),
            failure,
        )
    } else {
        let name = execution_name(&order.file);
        let started = aws
            .sfn
            .start_execution()
            .state_machine_arn(version_arn)
            .name(&name)
            .input(&input)
            .send()
            .await;
        let arn = match started {
            Ok(out) => out.execution_arn().to_string(),
            // The SDK repeated a start whose answer was lost, after the
            // first had ended: the name is this run's, so is the execution.
            Err(e) if code(&e) == Some("ExecutionAlreadyExists") => {
                execution_arn(version_arn, &name)
            }
            Err(e) => {
                return Err(error(
                    &format!("smoke order {}", order.file),
                    "StartExecution",
                    e,
                ))
            }
        };
        let done = super::sfn::wait_execution(aws, &arn, SMOKE_LIMIT).await?;
        let failure = failure(done.error.as_deref(), done.cause.as_deref());
        (done.status, done.output, done.execution_arn, failure)
    };
    match order.judge(&status, output.as_ref()) {
        None => Ok(()),
        Some(why) => bail!(
            "smoke order {} failed on version {version}: {why}{failure} (execution {execution})",
            order.file
        ),
    }
}

/// `: Error: boom` from an execution's error and cause (a Lambda error's
/// cause is JSON with its message), or nothing.
fn failure(error: Option<&str>, cause: Option<&str>) -> String {
    let Some(error) = error else {
        return String::new();
    };
    let message = cause
        .map(|c| {
            serde_json::from_str::<Value>(c)
                .ok()
                .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
                .unwrap_or_else(|| c.to_string())
        })
        .map(|m| {
            let line: String = m.split_whitespace().collect::<Vec<_>>().join(" ");
            format!(": {}", line.chars().take(160).collect::<String>())
        })
        .unwrap_or_default();
    format!(" ({error}{message})")
}

/// The ARN of execution `name` of a machine version: executions are named
/// after the machine, not the version.
fn execution_arn(version_arn: &str, name: &str) -> String {
    let machine = version_arn.rsplit_once(':').map_or(version_arn, |(m, _)| m);
    format!(
        "{}:{name}",
        machine.replacen(":stateMachine:", ":execution:", 1)
    )
}

/// `smoke-approved-1733355000123`: unique, and says what started it.
fn execution_name(file: &str) -> String {
    let stem: String = file
        .trim_start_matches("smoke/")
        .trim_end_matches(".json")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!("smoke-{stem}-{millis}")
}

/// After a rollout: deletes the machine's versions beyond the newest
/// `keep_versions`, never the one `live` serves nor one a running
/// execution uses; then each pinned function's versions beyond its own
/// `keep_versions` that no kept machine version pins.
pub async fn retain(aws: &Aws, spec: &AliasSpec, live: &str) -> Result<()> {
    let Some(all) = machine_version::versions(aws, &spec.machine.arn).await? else {
        return Ok(());
    };
    let keep = spec.keep_versions as usize;
    let mut kept: Vec<&Version> = Vec::new();
    for (i, v) in all.iter().enumerate() {
        if i < keep || v.arn == live || running(aws, spec, &v.arn).await? {
            kept.push(v);
        } else {
            machine_version::delete_version(aws, &v.arn).await?;
        }
    }
    for (function, keep) in &spec.functions {
        let count = function_version::versions(aws, function)
            .await?
            .map_or(0, |v| v.len());
        if count <= *keep as usize {
            continue;
        }
        let mut protected = BTreeSet::new();
        for v in &kept {
            protected.extend(pinned_versions(aws, spec, &v.arn).await?.remove(function));
        }
        function_version::retain(aws, function, *keep, &protected).await?;
    }
    Ok(())
}

/// Whether a Standard execution of this version is still running (Express
/// executions cannot be listed; they last five minutes at most).
async fn running(aws: &Aws, spec: &AliasSpec, version_arn: &str) -> Result<bool> {
    if spec.machine.kind == "EXPRESS" {
        return Ok(false);
    }
    let out = aws
        .sfn
        .list_executions()
        .state_machine_arn(version_arn)
        .status_filter(aws_sdk_sfn::types::ExecutionStatus::Running)
        .max_results(1)
        .send()
        .await
        .map_err(|e| {
            error(
                &format!("state-machine-version {version_arn}"),
                "ListExecutions",
                e,
            )
        })?;
    Ok(!out.executions().is_empty())
}

/// The function versions one machine version pins, by function name.
async fn pinned_versions(
    aws: &Aws,
    spec: &AliasSpec,
    version_arn: &str,
) -> Result<BTreeMap<String, String>> {
    let out = aws
        .sfn
        .describe_state_machine()
        .state_machine_arn(version_arn)
        .send()
        .await
        .map_err(|e| {
            error(
                &format!("state-machine-version {version_arn}"),
                "DescribeStateMachine",
                e,
            )
        })?;
    let definition = super::sfn::parse_definition(out.definition());
    let (_, pins) = crate::desired::pins::unqualify(&definition, &spec.machine.pinned);
    Ok(pins
        .into_iter()
        .filter_map(|(f, v)| Some((f, v?)))
        .collect())
}

pub struct MachineAlias {
    /// The machine's name.
    pub machine: String,
    pub arn: String,
    pub spec: Option<AliasSpec>,
    /// The machine's versions (and the REST API, with `api`).
    pub needs: Vec<ResourceId>,
    /// The REST API whose stage names the version `live` serves, for a
    /// machine behind a sync route.
    pub api: Option<ResourceId>,
}

impl MachineAlias {
    fn version(&self) -> ResourceId {
        ResourceId::new(machine_version::KIND, &self.machine)
    }
}

#[async_trait]
impl Resource for MachineAlias {
    fn id(&self) -> ResourceId {
        ResourceId::new(
            KIND,
            &format!("{}:{}", self.machine, crate::names::LIVE_ALIAS),
        )
    }

    fn needs(&self) -> Vec<ResourceId> {
        self.needs.clone()
    }

    /// Read with the machine's newest version: what it serves usually is.
    fn read_after(&self) -> Option<ResourceId> {
        Some(self.version())
    }

    fn goes_with(&self) -> Option<ResourceId> {
        Some(ResourceId::new(super::sfn::KIND, &self.machine))
    }

    fn tags(&self, stage: &Tags) -> Tags {
        owner_tags(stage)
    }

    fn desired(&self) -> Option<Value> {
        self.spec.as_ref().map(AliasSpec::fields)
    }

    /// What the version it serves holds, with the machine's tags.
    async fn read(&self, ctx: &Ctx<'_>, newest: Option<&Observed>) -> Result<Option<Observed>> {
        let Some(newest) = newest else {
            return Ok(None);
        };
        let Some(routes) = routing(ctx.aws, &self.arn).await? else {
            return Ok(None);
        };
        let Some((served, weight)) = routes.first().cloned() else {
            return Ok(None);
        };
        let serves = if served == newest.physical_id {
            newest.fields.clone()
        } else {
            let pinned = self
                .spec
                .as_ref()
                .map(|s| s.machine.pinned.clone())
                .unwrap_or_default();
            machine_version::describe(ctx.aws, &served, &pinned)
                .await?
                .map(|(snapshot, _)| snapshot)
                .unwrap_or(Value::Null)
        };
        Ok(Some(Observed {
            fields: json!({ "serves": serves, "weight": weight }),
            tags: newest.tags.clone(),
            physical_id: self.arn.clone(),
        }))
    }

    /// Smoke orders on the new version, then the move (one call), then
    /// retention.
    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        plan: &ResourcePlan,
        _: Option<&Observed>,
        known: &Known,
    ) -> Result<Attributes> {
        let spec = spec(&self.spec, &self.id())?;
        let Some(version) = known.get(&self.version()).map(|a| &a.id) else {
            bail!(
                "{}: the machine has no published version to serve",
                self.id()
            );
        };
        smoke(ctx.aws, spec, version).await?;
        // The version it serves now (the heaviest route), if any.
        let serving = match plan.action {
            Action::Create => None,
            _ => routing(ctx.aws, &self.arn)
                .await?
                .and_then(|r| r.into_iter().next())
                .map(|(arn, _)| arn)
                .filter(|arn| arn != version),
        };
        match serving {
            Some(old) => {
                super::bake::shift(
                    ctx.aws,
                    &self.arn,
                    &old,
                    version,
                    &spec.rollout,
                    &spec.alarms,
                )
                .await?
            }
            None => {
                point(
                    ctx.aws,
                    (&spec.name, &self.arn),
                    version,
                    plan.action == Action::Create,
                )
                .await?
            }
        }
        // A sync route starts the version the stage's variable names.
        if let (Some(variable), Some(api)) = (&spec.stage_variable, &self.api) {
            if let Some(api) = known.get(api) {
                set_live_variable(
                    ctx.aws,
                    &api.id,
                    &ctx.names.stage,
                    variable,
                    machine_version::version_number(version),
                )
                .await?;
            }
        }
        retain(ctx.aws, spec, version).await?;
        Ok(Attributes::new(&self.arn, Some(self.arn.clone())))
    }

    async fn delete(&self, ctx: &Ctx<'_>, _: &Observed) -> Result<()> {
        match ctx
            .aws
            .sfn
            .delete_state_machine_alias()
            .state_machine_alias_arn(&self.arn)
            .send()
            .await
        {
            Err(e) if code(&e) != Some("ResourceNotFound") => Err(error(
                &format!("alias {}", self.arn),
                "DeleteStateMachineAlias",
                e,
            )),
            _ => Ok(()),
        }
    }
}

/// The `live` alias of each of the stage's machines (the machine's tags
/// decide).
pub struct AliasInventory;

#[async_trait]
impl Inventory for AliasInventory {
    async fn list(&self, ctx: &Ctx<'_>) -> Result<Vec<Box<dyn Resource>>> {
        Ok(super::sfn::machines(ctx)
            .await?
            .into_iter()
            .map(|(name, arn)| {
                Box::new(MachineAlias {
                    needs: vec![
                        ResourceId::new(machine_version::KIND, &name),
                        ResourceId::new(super::sfn::KIND, &name),
                    ],
                    arn: format!("{arn}:{}", crate::names::LIVE_ALIAS),
                    machine: name,
                    spec: None,
                    api: None,
                }) as Box<dyn Resource>
            })
            .collect())
    }
}
