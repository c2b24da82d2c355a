//! CloudWatch Logs groups: the functions' `/aws/lambda/<name>` groups and the
//! state machine's group. stepgate creates them itself so that they carry
//! its tags and retention, and so that destroy leaves nothing behind.

use anyhow::Result;
use serde_json::{json, Value};

use super::{code, error, Aws};
use async_trait::async_trait;

use crate::desired::LogGroupSpec;
use crate::model::{Kind, Observed, ResourceId, Tags};
use crate::plan::{Action, ResourcePlan};
use crate::resource::{spec, Ctx, Known, Resource};

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
            // Lambda creates its group on first invoke; racing it is fine
            // as long as the tags and retention are then put on.
            Err(e) if code(&e) == Some("ResourceAlreadyExistsException") => {}
            Err(e) => return Err(error(&what, "CreateLogGroup", e)),
            Ok(_) => {}
        }
    } else if plan.changed("tags") {
        let arn = live.map(|l| l.physical_id.clone()).unwrap_or_default();
        aws.logs
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| error(&what, "TagResource", e))?;
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
    ) -> Result<String> {
        apply(ctx.aws, spec(&self.spec, &self.id())?, ctx.tags, plan, live).await?;
        Ok(self.name.clone())
    }

    async fn delete(&self, ctx: &Ctx<'_>, _: &Observed) -> Result<()> {
        delete(ctx.aws, &self.name).await
    }
}

/// One log event as `stepgate logs` prints it.
#[derive(Clone, Debug, serde::Serialize, PartialEq)]
pub struct LogEvent {
    /// Which of the stack's log groups: completeOrder, cancelOrder, states, api.
    pub source: String,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    #[serde(skip)]
    pub timestamp_ms: i64,
    pub log_stream: String,
    pub message: String,
    #[serde(skip)]
    pub event_id: String,
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
