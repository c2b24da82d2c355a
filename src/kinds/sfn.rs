//! The state machine: definition, role, type and logging. The only module
//! that uses the Step Functions client.

use std::collections::BTreeMap;

use crate::report::{ExecutionResult, ExecutionSummary};
use anyhow::Result;
use aws_sdk_sfn::types::{
    CloudWatchLogsLogGroup, LogDestination, LogLevel, LoggingConfiguration, StateMachineType, Tag,
    TracingConfiguration,
};
use serde_json::{json, Value};

use crate::aws::retry::until_consistent;
use crate::aws::{code, describe, error, Aws};
use async_trait::async_trait;

use super::function_version;
use crate::desired::StateMachineSpec;
use crate::model::{Kind, Observed, ResourceId, Tags};
use crate::plan::{Action, ResourcePlan};
use crate::resource::{spec, Attributes, Ctx, Inventory, Known, Resource};

/// The logging configuration as the SDK takes it.
fn logging(spec: &StateMachineSpec) -> LoggingConfiguration {
    let off = spec.log_level == "OFF";
    let builder = LoggingConfiguration::builder()
        .level(LogLevel::from(spec.log_level.as_str()))
        .include_execution_data(!off);
    if off {
        return builder.build();
    }
    builder
        .destinations(
            LogDestination::builder()
                .cloud_watch_logs_log_group(
                    CloudWatchLogsLogGroup::builder()
                        .log_group_arn(spec.log_destination())
                        .build(),
                )
                .build(),
        )
        .build()
}

fn tracing(spec: &StateMachineSpec) -> TracingConfiguration {
    TracingConfiguration::builder()
        .enabled(spec.tracing)
        .build()
}

/// What a machine or one of its versions holds, in the shape of
/// `StateMachineSpec::snapshot`: its definition with the functions of
/// `pinned` (unqualified ARN -> name) unqualified, its role, and the fields
/// of each version it pins (null where it pins none).
pub async fn live_snapshot(
    aws: &Aws,
    pinned: &BTreeMap<String, String>,
    definition: &Value,
    role: &str,
) -> Result<Value> {
    let (definition, versions) = crate::desired::pins::unqualify(definition, pinned);
    let reads = versions.into_iter().map(|(function, version)| async move {
        let fields = match &version {
            Some(v) => function_version::version_fields(aws, &function, v).await?,
            None => None,
        };
        Ok::<_, anyhow::Error>((function, fields.unwrap_or(Value::Null)))
    });
    let pins: serde_json::Map<String, Value> = futures::future::try_join_all(reads)
        .await?
        .into_iter()
        .collect();
    Ok(json!({ "definition": definition, "role": role, "pins": pins }))
}

/// A definition as Step Functions returns it: JSON, or its text if not.
pub fn parse_definition(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::String(text.into()))
}

pub async fn read(
    aws: &Aws,
    name: &str,
    arn: &str,
    pinned: &BTreeMap<String, String>,
) -> Result<Option<Observed>> {
    let what = format!("state-machine {name}");
    let sm = match aws
        .sfn
        .describe_state_machine()
        .state_machine_arn(arn)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if code(&e) == Some("StateMachineDoesNotExist") => return Ok(None),
        Err(e) => return Err(error(&what, "DescribeStateMachine", e)),
    };
    let tags = aws
        .sfn
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| error(&what, "ListTagsForResource", e))?
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect();
    let snapshot = live_snapshot(
        aws,
        pinned,
        &parse_definition(sm.definition()),
        sm.role_arn(),
    )
    .await?;
    let logging = sm.logging_configuration();
    Ok(Some(Observed {
        fields: json!({
            "pins": snapshot["pins"],
            "definition": snapshot["definition"],
            "role": sm.role_arn(),
            "type": sm.r#type().as_str(),
            "logging": {
                "level": logging.and_then(|l| l.level()).map(|l| l.as_str()),
                "include_execution_data": logging.map(|l| l.include_execution_data()),
                "destination": logging
                    .and_then(|l| l.destinations().first())
                    .and_then(|d| d.cloud_watch_logs_log_group())
                    .and_then(|g| g.log_group_arn()),
            },
            "tracing": sm.tracing_configuration().is_some_and(|t| t.enabled()),
        }),
        tags,
        physical_id: sm.state_machine_arn().to_string(),
    }))
}

/// Step Functions checks that it may assume the role, and that the role may
/// deliver logs; right after the role is created (IAM propagation) neither
/// holds yet. AWS answers both with AccessDeniedException: "Neither the
/// global service principal states.amazonaws.com, nor the regional one is
/// authorized to assume the provided role." and "The state machine IAM Role
/// is not authorized to access the Log Destination" (aws/aws-cdk#26432). A
/// same-named machine still being deleted also clears by itself.
fn not_ready<E>(e: &aws_sdk_sfn::error::SdkError<E>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = describe(e);
    match code(e) {
        Some("StateMachineDeleting") => true,
        Some("AccessDeniedException") | Some("InvalidLoggingConfiguration") => {
            message.contains("assume") || message.contains("Log Destination")
        }
        Some("InvalidArn") => message.contains("assume"),
        _ => false,
    }
}

/// The definition with each function it invokes pinned to the version
/// `known` holds for it (the function-version's qualified ARN).
fn pinned_definition(spec: &StateMachineSpec, known: &Known) -> Result<Value> {
    let mut versions = BTreeMap::new();
    for (arn, function) in &spec.pinned {
        let id = ResourceId::new(function_version::KIND, function);
        let Some(qualified) = known.get(&id).map(|a| &a.id) else {
            anyhow::bail!(
                "state-machine {}: function {function} has no published version to pin",
                spec.name
            );
        };
        versions.insert(arn.clone(), qualified.clone());
    }
    Ok(crate::desired::pins::qualify(&spec.definition, &versions))
}

pub async fn apply(
    aws: &Aws,
    spec: &StateMachineSpec,
    tags: &Tags,
    plan: &ResourcePlan,
    known: &Known,
) -> Result<()> {
    let what = format!("state-machine {}", spec.name);
    let definition = serde_json::to_string_pretty(&pinned_definition(spec, known)?)?;
    if plan.action == Action::Create {
        let created = until_consistent(not_ready, || {
            aws.sfn
                .create_state_machine()
                .name(&spec.name)
                .definition(&definition)
                .role_arn(&spec.role_arn)
                .r#type(StateMachineType::from(spec.kind.as_str()))
                .logging_configuration(logging(spec))
                .tracing_configuration(tracing(spec))
                .set_tags(Some(sfn_tags(tags)))
                .send()
        })
        .await;
        return match created {
            Ok(_) => Ok(()),
            // The SDK retried a create whose answer was lost (Step Functions
            // answers an identical repeat with success, a different one so).
            Err(e) if code(&e) == Some("StateMachineAlreadyExists") => {
                match read(aws, &spec.name, &spec.arn, &spec.pinned).await? {
                    Some(o) if o.owned_as(tags) => Ok(()),
                    _ => Err(error(&what, "CreateStateMachine", e)),
                }
            }
            Err(e) => Err(error(&what, "CreateStateMachine", e)),
        };
    }
    if ["definition", "pins", "role", "logging", "tracing"]
        .iter()
        .any(|f| plan.changed(f))
    {
        until_consistent(not_ready, || {
            aws.sfn
                .update_state_machine()
                .state_machine_arn(&spec.arn)
                .definition(&definition)
                .role_arn(&spec.role_arn)
                .logging_configuration(logging(spec))
                .tracing_configuration(tracing(spec))
                .send()
        })
        .await
        .map_err(|e| error(&what, "UpdateStateMachine", e))?;
    }
    if plan.changed("tags") {
        aws.sfn
            .tag_resource()
            .resource_arn(&spec.arn)
            .set_tags(Some(sfn_tags(tags)))
            .send()
            .await
            .map_err(|e| error(&what, "TagResource", e))?;
    }
    Ok(())
}

pub async fn delete(aws: &Aws, name: &str, arn: &str) -> Result<()> {
    match aws
        .sfn
        .delete_state_machine()
        .state_machine_arn(arn)
        .send()
        .await
    {
        Err(e) if code(&e) != Some("StateMachineDoesNotExist") => Err(error(
            &format!("state-machine {name}"),
            "DeleteStateMachine",
            e,
        )),
        _ => Ok(()),
    }
}

fn sfn_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Polls DescribeExecution until the execution leaves RUNNING, for at most
/// `limit` (bounded, with backoff from 100 ms to 1 s).
pub async fn wait_execution(
    aws: &Aws,
    arn: &str,
    limit: std::time::Duration,
) -> Result<ExecutionResult> {
    let started = std::time::Instant::now();
    let mut delay = std::time::Duration::from_millis(100);
    loop {
        let out = aws
            .sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .map_err(|e| error(&format!("execution {arn}"), "DescribeExecution", e))?;
        let status = out.status().as_str().to_string();
        if status != "RUNNING" && status != "PENDING_REDRIVE" {
            return Ok(ExecutionResult {
                execution_arn: arn.to_string(),
                status,
                output: out
                    .output()
                    .map(|o| serde_json::from_str(o).unwrap_or(Value::String(o.to_string()))),
                error: out.error().map(str::to_string),
                cause: out.cause().map(str::to_string),
            });
        }
        if started.elapsed() > limit {
            anyhow::bail!("execution {arn} still RUNNING after {}s", limit.as_secs());
        }
        tokio::time::sleep(delay).await;
        // Most executions worth waiting on (a smoke order, an order placed
        // by `invoke`) end within a second or two: a steady short poll
        // sees the end when it comes, not up to twice as late; a longer
        // one is polled less and less often.
        if started.elapsed() > STEADY_POLL {
            delay = (delay * 2).min(std::time::Duration::from_secs(1));
        }
    }
}

/// How long `wait_execution` polls every 100 ms before backing off.
const STEADY_POLL: std::time::Duration = std::time::Duration::from_secs(2);
pub const KIND: Kind = Kind("state-machine");

pub struct StateMachine {
    pub name: String,
    pub arn: String,
    pub spec: Option<StateMachineSpec>,
    /// Its role, its log group and the functions it calls.
    pub needs: Vec<ResourceId>,
}

#[async_trait]
impl Resource for StateMachine {
    fn id(&self) -> ResourceId {
        ResourceId::new(KIND, &self.name)
    }

    fn needs(&self) -> Vec<ResourceId> {
        self.needs.clone()
    }

    fn desired(&self) -> Option<Value> {
        self.spec.as_ref().map(StateMachineSpec::fields)
    }

    /// Step Functions cannot change a machine's type: a new one replaces it.
    fn replaced_on(&self) -> &'static [&'static str] {
        &["type"]
    }

    async fn read(&self, ctx: &Ctx<'_>, _: Option<&Observed>) -> Result<Option<Observed>> {
        let pinned = self
            .spec
            .as_ref()
            .map(|s| s.pinned.clone())
            .unwrap_or_default();
        read(ctx.aws, &self.name, &self.arn, &pinned).await
    }

    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        plan: &ResourcePlan,
        _: Option<&Observed>,
        known: &Known,
    ) -> Result<Attributes> {
        apply(
            ctx.aws,
            spec(&self.spec, &self.id())?,
            ctx.tags,
            plan,
            known,
        )
        .await?;
        Ok(Attributes::new(&self.arn, Some(self.arn.clone())))
    }

    async fn delete(&self, ctx: &Ctx<'_>, _: &Observed) -> Result<()> {
        delete(ctx.aws, &self.name, &self.arn).await
    }
}

/// The stage's state machines: every machine named with its prefix (its
/// tags decide).
pub struct MachineInventory;

/// Every machine named with the stage's prefix, as (name, ARN).
pub async fn machines(ctx: &Ctx<'_>) -> Result<Vec<(String, String)>> {
    let prefix = ctx.names.prefix();
    let prefix = super::iam::search_prefix(&prefix);
    let machines = ctx
        .aws
        .sfn
        .list_state_machines()
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error("the stage's state machines", "ListStateMachines", e))?;
    Ok(machines
        .into_iter()
        .filter(|m| m.name().starts_with(prefix))
        .map(|m| (m.name().to_string(), m.state_machine_arn().to_string()))
        .collect())
}

#[async_trait]
impl Inventory for MachineInventory {
    async fn list(&self, ctx: &Ctx<'_>) -> Result<Vec<Box<dyn Resource>>> {
        Ok(machines(ctx)
            .await?
            .into_iter()
            .map(|(name, arn)| {
                Box::new(StateMachine {
                    name,
                    arn,
                    spec: None,
                    needs: Vec::new(),
                }) as Box<dyn Resource>
            })
            .collect())
    }
}

/// How many executions DescribeExecution is asked about at once.
const DESCRIBE_CONCURRENCY: usize = 8;

/// The `limit` most recent executions of the state machine, newest first,
/// optionally only those with `status` (RUNNING, SUCCEEDED, FAILED,
/// TIMED_OUT, ABORTED, PENDING_REDRIVE), each with its order id and result
/// (ListExecutions, then DescribeExecution for the input and output).
/// `Ok(None)` when the state machine does not exist.
pub async fn recent_executions(
    aws: &Aws,
    state_machine_arn: &str,
    limit: usize,
    status: Option<&str>,
) -> Result<Option<Vec<ExecutionSummary>>> {
    use futures::StreamExt;
    let what = format!("state-machine {state_machine_arn}");
    let mut listed = Vec::new();
    let mut token = None;
    while listed.len() < limit {
        let page = aws
            .sfn
            .list_executions()
            .state_machine_arn(state_machine_arn)
            .set_status_filter(status.map(aws_sdk_sfn::types::ExecutionStatus::from))
            .max_results((limit - listed.len()).min(1000) as i32)
            .set_next_token(token)
            .send()
            .await;
        let page = match page {
            Ok(page) => page,
            Err(e) if code(&e) == Some("StateMachineDoesNotExist") => return Ok(None),
            Err(e) => return Err(error(&what, "ListExecutions", e)),
        };
        listed.extend(page.executions().iter().cloned());
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    listed.truncate(limit);
    let described: Vec<Result<ExecutionSummary>> = futures::stream::iter(listed)
        .map(|item| async move {
            let arn = item.execution_arn().to_string();
            let out = aws
                .sfn
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
                .map_err(|e| error(&format!("execution {arn}"), "DescribeExecution", e))?;
            let parse = |text: Option<&str>| {
                text.and_then(|t| serde_json::from_str::<Value>(t).ok())
                    .unwrap_or(Value::Null)
            };
            let input = parse(out.input());
            let output = parse(out.output());
            let field = |v: &Value| match v {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            };
            let start = out.start_date();
            let stop = out.stop_date();
            let end_secs = stop.map(seconds).unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or_default()
            });
            Ok(ExecutionSummary {
                name: out.name().unwrap_or(item.name()).to_string(),
                status: out.status().as_str().to_string(),
                start: rfc3339(start),
                stop: stop.map(rfc3339),
                duration_seconds: ((end_secs - seconds(start)).max(0.0) * 1000.0).round() / 1000.0,
                order_id: field(&input["orderId"]),
                result: field(&output["orderDetails"]["status"]),
                error: out.error().map(str::to_string),
                cause: out.cause().map(str::to_string),
                execution_arn: arn,
            })
        })
        .buffered(DESCRIBE_CONCURRENCY)
        .collect()
        .await;
    described.into_iter().collect::<Result<Vec<_>>>().map(Some)
}

fn seconds(t: &aws_smithy_types::DateTime) -> f64 {
    t.as_secs_f64()
}

/// RFC 3339 in UTC with milliseconds, as the logs print it.
pub fn rfc3339(t: &aws_smithy_types::DateTime) -> String {
    crate::kinds::logs::format_millis(t.to_millis().unwrap_or_default())
}
