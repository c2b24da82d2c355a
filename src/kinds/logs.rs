//! CloudWatch Logs groups: the functions' `/aws/lambda/<name>` groups and the
//! state machine's group. stepgate creates them itself so that they carry
//! its tags and retention, and so that destroy leaves nothing behind.

use crate::report::LogEvent;
use anyhow::Result;
use serde_json::{json, Value};

use crate::aws::{code, error, Aws};
use async_trait::async_trait;

use crate::desired::LogGroupSpec;
use crate::model::{Claim, Kind, Observed, ResourceId, Tags, OWNER_STACK_TAG, OWNER_STAGE_TAG};
use crate::plan::{Action, ResourcePlan};
use crate::resource::{spec, Attributes, Ctx, Inventory, Known, Resource};

pub async fn read(aws: &Aws, name: &str) -> Result<Option<Observed>> {
    let what = format!("log-group {name}");
    let out = aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .map_err(|e| error(&what, "DescribeLogGroups", e))?;
    let Some(group) = out
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name))
    else {
        return Ok(None);
    };
    // The tagging API wants the ARN without the trailing ":*".
    let arn = group
        .arn()
        .unwrap_or_default()
        .trim_end_matches(":*")
        .to_string();
    let tags = aws
        .logs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .map_err(|e| error(&what, "ListTagsForResource", e))?
        .tags
        .unwrap_or_default()
        .into_iter()
        .collect();
    Ok(Some(Observed {
        fields: json!({ "retention_days": group.retention_in_days() }),
        tags,
        physical_id: arn,
    }))
}

pub async fn apply(
    aws: &Aws,
    spec: &LogGroupSpec,
    tags: &Tags,
    plan: &ResourcePlan,
    live: Option<&Observed>,
) -> Result<()> {
    let what = format!("log-group {}", spec.name);
    if plan.action == Action::Create {
        match aws
            .logs
            .create_log_group()
            .log_group_name(&spec.name)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
        {
            // Lambda (or API Gateway) creates its group on first use;
            // racing it is fine as long as the tags and retention are then
            // put on, which its CreateLogGroup would have done.
            Err(e) if code(&e) == Some("ResourceAlreadyExistsException") => {
                if let Some(existing) = read(aws, &spec.name).await? {
                    tag(aws, &what, &existing.physical_id, tags).await?;
                }
            }
            Err(e) => return Err(error(&what, "CreateLogGroup", e)),
            Ok(_) => {}
        }
    } else if plan.changed("tags") {
        let arn = live.map(|l| l.physical_id.clone()).unwrap_or_default();
        tag(aws, &what, &arn, tags).await?;
    }
    if plan.action == Action::Create || plan.changed("retention_days") {
        aws.logs
            .put_retention_policy()
            .log_group_name(&spec.name)
            .retention_in_days(spec.retention_days)
            .send()
            .await
            .map_err(|e| error(&what, "PutRetentionPolicy", e))?;
    }
    Ok(())
}

async fn tag(aws: &Aws, what: &str, arn: &str, tags: &Tags) -> Result<()> {
    aws.logs
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(tags.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|e| error(what, "TagResource", e))?;
    Ok(())
}

pub async fn delete(aws: &Aws, name: &str) -> Result<()> {
    match aws
        .logs
        .delete_log_group()
        .log_group_name(name)
        .send()
        .await
    {
        Err(e) if code(&e) != Some("ResourceNotFoundException") => {
            Err(error(&format!("log-group {name}"), "DeleteLogGroup", e))
        }
        _ => Ok(()),
    }
}
pub const KIND: Kind = Kind("log-group");

pub struct LogGroup {
    pub name: String,
    pub spec: Option<LogGroupSpec>,
}

#[async_trait]
impl Resource for LogGroup {
    fn id(&self) -> ResourceId {
        ResourceId::new(KIND, &self.name)
    }

    fn desired(&self) -> Option<Value> {
        self.spec.as_ref().map(LogGroupSpec::fields)
    }

    async fn read(&self, ctx: &Ctx<'_>, _: Option<&Observed>) -> Result<Option<Observed>> {
        read(ctx.aws, &self.name).await
    }

    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        plan: &ResourcePlan,
        live: Option<&Observed>,
        _: &Known,
    ) -> Result<Attributes> {
        apply(ctx.aws, spec(&self.spec, &self.id())?, ctx.tags, plan, live).await?;
        Ok(Attributes::new(
            &self.name,
            Some(ctx.names.log_group_arn(&self.name)),
        ))
    }

    async fn delete(&self, ctx: &Ctx<'_>, _: &Observed) -> Result<()> {
        delete(ctx.aws, &self.name).await
    }
}

pub const EXECUTION_KIND: Kind = Kind("execution-log-group");

/// API Gateway's execution log group for the stage,
/// `API-Gateway-Execution-Logs_{api id}/{stage}`. AWS creates it itself, the
/// first time the stage logs, untagged and kept forever, so every destroyed
/// stage would leave one behind (a preview stage per pull request, one per
/// pull request). stepgate creates it first, as the Terraform provider's
/// docs advise, with the stack's tags and retention, and deletes it on
/// destroy. Its name holds the API's id, so it is known only once the API
/// is: its id here is the stage's name.
pub struct ExecutionLogGroup {
    pub stage: String,
    pub api: ResourceId,
    pub spec: Option<crate::desired::LogGroupSpec>,
}

impl ExecutionLogGroup {
    fn name(&self, api_id: &str) -> String {
        crate::names::api_execution_log_group(api_id, &self.stage)
    }
}

#[async_trait]
impl Resource for ExecutionLogGroup {
    fn id(&self) -> ResourceId {
        ResourceId::new(EXECUTION_KIND, &self.stage)
    }

    fn needs(&self) -> Vec<ResourceId> {
        vec![self.api.clone()]
    }

    fn read_after(&self) -> Option<ResourceId> {
        Some(self.api.clone())
    }

    /// A group API Gateway created for our API carries no stepgate tags:
    /// its name, which holds our API's id, makes it ours to adopt.
    fn claim(&self, live: &Observed, tags: &Tags) -> Claim {
        let untagged =
            !live.tags.contains_key(OWNER_STACK_TAG) && !live.tags.contains_key(OWNER_STAGE_TAG);
        if live.owned_as(tags) || untagged {
            Claim::Ours
        } else {
            Claim::Foreign
        }
    }

    fn desired(&self) -> Option<Value> {
        self.spec.as_ref().map(crate::desired::LogGroupSpec::fields)
    }

    /// Only our own API's group: without the API there is none to read.
    async fn read(&self, ctx: &Ctx<'_>, api: Option<&Observed>) -> Result<Option<Observed>> {
        match api.filter(|a| ctx.names.api_is_ours_or_named(a)) {
            Some(api) => read(ctx.aws, &self.name(&api.physical_id)).await,
            None => Ok(None),
        }
    }

    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        plan: &ResourcePlan,
        live: Option<&Observed>,
        known: &Known,
    ) -> Result<Attributes> {
        let api_id = &known
            .get(&self.api)
            .ok_or_else(|| anyhow::anyhow!("{}: the REST API does not exist", self.id()))?
            .id;
        let mut spec = spec(&self.spec, &self.id())?.clone();
        spec.name = self.name(api_id);
        apply(ctx.aws, &spec, ctx.tags, plan, live).await?;
        let arn = ctx.names.log_group_arn(&spec.name);
        Ok(Attributes::new(spec.name, Some(arn)))
    }

    async fn delete(&self, ctx: &Ctx<'_>, live: &Observed) -> Result<()> {
        // The ARN ends in "log-group:NAME".
        let name = live
            .physical_id
            .split_once(":log-group:")
            .map_or(live.physical_id.as_str(), |(_, name)| name);
        delete(ctx.aws, name).await
    }
}

/// The stage's log groups: its functions', machines' and API's, by name
/// prefix, and API Gateway's execution log groups of any API for this
/// stage (by the stage in their names): those of APIs that are gone too,
/// which only their tags still tie to the stage.
pub struct LogGroupInventory;

#[async_trait]
impl Inventory for LogGroupInventory {
    async fn list(&self, ctx: &Ctx<'_>) -> Result<Vec<Box<dyn Resource>>> {
        let names = ctx.names;
        let prefix = names.prefix();
        let short = super::iam::search_prefix(&prefix);
        let prefixes = [
            format!("/aws/lambda/{short}"),
            format!("/aws/vendedlogs/states/{short}"),
            names.api_access_log_group(),
            "API-Gateway-Execution-Logs_".to_string(),
        ];
        let lists =
            futures::future::try_join_all(prefixes.iter().map(|p| groups(ctx.aws, p))).await?;
        let execution_suffix = format!("/{}", names.stage);
        Ok(lists
            .into_iter()
            .flatten()
            .filter(|name| {
                !name.starts_with("API-Gateway-Execution-Logs_")
                    || name.ends_with(&execution_suffix)
            })
            .map(|name| Box::new(LogGroup { name, spec: None }) as Box<dyn Resource>)
            .collect())
    }
}

/// The names of every log group whose name starts with `prefix`.
async fn groups(aws: &Aws, prefix: &str) -> Result<Vec<String>> {
    let pages = aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(prefix)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(&format!("log groups {prefix}*"), "DescribeLogGroups", e))?;
    Ok(pages
        .into_iter()
        .filter_map(|g| g.log_group_name().map(str::to_string))
        .collect())
}

/// Pages of FilterLogEvents read for one group in one call of `events`: a
/// bound, so a chatty group cannot keep stepgate reading forever.
const MAX_PAGES: usize = 100;

/// The events of `group` from `start_ms` on (FilterLogEvents), oldest first,
/// labelled `source`. `Ok(None)` when the group does not exist.
pub async fn events(
    aws: &Aws,
    source: &str,
    group: &str,
    start_ms: i64,
) -> Result<Option<Vec<LogEvent>>> {
    let what = format!("log-group {group}");
    let mut out = Vec::new();
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let page = aws
            .logs
            .filter_log_events()
            .log_group_name(group)
            .start_time(start_ms)
            .set_next_token(token)
            .send()
            .await;
        let page = match page {
            Ok(page) => page,
            Err(e) if code(&e) == Some("ResourceNotFoundException") => return Ok(None),
            Err(e) => return Err(error(&what, "FilterLogEvents", e)),
        };
        for e in page.events() {
            let timestamp_ms = e.timestamp().unwrap_or_default();
            out.push(LogEvent {
                source: source.to_string(),
                time: format_millis(timestamp_ms),
                timestamp_ms,
                log_stream: e.log_stream_name().unwrap_or_default().to_string(),
                message: e.message().unwrap_or_default().trim_end().to_string(),
                event_id: e.event_id().unwrap_or_default().to_string(),
            });
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    out.sort_by_key(|e| e.timestamp_ms);
    Ok(Some(out))
}

/// Milliseconds since the epoch as RFC 3339 in UTC: 2026-11-22T07:07:46.904Z.
pub fn format_millis(ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}
