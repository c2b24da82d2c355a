//! CloudWatch alarms on a state machine's metrics (`[state_machines.NAME.alarms]`):
//! `{machine}-failed`, `-timed-out`, `-throttled`. PutMetricAlarm creates
//! and updates them alike; a rollout's bake reads their state
//! (`in_alarm`). Uses the CloudWatch client.

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, MetricAlarm, StateValue, Statistic, Tag,
};
use serde_json::{json, Value};

use crate::aws::{code, error, Aws};
use crate::desired::AlarmSpec;
use crate::model::{Kind, Observed, ResourceId};
use crate::plan::{Action, ResourcePlan};
use crate::resource::{spec, Attributes, Ctx, Inventory, Known, Resource};

pub const KIND: Kind = Kind("alarm");

const NAMESPACE: &str = "AWS/States";
const DIMENSION: &str = "StateMachineArn";
/// One minute per evaluation: a burst of failures raises it at once.
const PERIOD_SECONDS: i32 = 60;

pub struct Alarm {
    pub name: String,
    pub spec: Option<AlarmSpec>,
    /// Its machine: the alarm goes before it on destroy.
    pub needs: Vec<ResourceId>,
}

/// The alarm as stepgate compares it: what it watches, its condition in
/// words, and whom it tells.
fn fields(a: &MetricAlarm) -> Value {
    let operator = match a.comparison_operator() {
        Some(ComparisonOperator::GreaterThanOrEqualToThreshold) => ">=",
        Some(ComparisonOperator::GreaterThanThreshold) => ">",
        Some(ComparisonOperator::LessThanThreshold) => "<",
        Some(ComparisonOperator::LessThanOrEqualToThreshold) => "<=",
        Some(other) => other.as_str(),
        None => "?",
    };
    let missing = match a.treat_missing_data().unwrap_or("missing") {
        "notBreaching" => "not breaching",
        other => other,
    };
    let periods = a.evaluation_periods().unwrap_or_default();
    json!({
        "metric": format!("{} {}", a.namespace().unwrap_or_default(), a.metric_name().unwrap_or_default()),
        "state_machine_arn": a.dimensions().iter().find(|d| d.name() == Some(DIMENSION)).and_then(|d| d.value()),
        "condition": format!(
            "{} {operator} {} in {periods} period{} of {}s, missing data {missing}",
            a.statistic().map(|s| s.as_str()).unwrap_or("?"),
            a.threshold().unwrap_or_default(),
            if periods == 1 { "" } else { "s" },
            a.period().unwrap_or_default(),
        ),
        "notify": a.alarm_actions().first(),
    })
}

async fn describe(aws: &Aws, name: &str) -> Result<Option<MetricAlarm>> {
    let out = aws
        .cloudwatch
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .map_err(|e| error(&format!("alarm {name}"), "DescribeAlarms", e))?;
    Ok(out
        .metric_alarms()
        .iter()
        .find(|a| a.alarm_name() == Some(name))
        .cloned())
}

/// The alarms among `names` in ALARM now, each with CloudWatch's reason.
pub async fn in_alarm(aws: &Aws, names: &[String]) -> Result<Vec<String>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let out = aws
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names.to_vec()))
        .state_value(StateValue::Alarm)
        .send()
        .await
        .map_err(|e| error(&format!("alarms {}", names.join(", ")), "DescribeAlarms", e))?;
    Ok(out
        .metric_alarms()
        .iter()
        .map(|a| {
            format!(
                "alarm {} is in ALARM ({})",
                a.alarm_name().unwrap_or_default(),
                a.state_reason().unwrap_or("no reason given")
            )
        })
        .collect())
}

#[async_trait]
impl Resource for Alarm {
    fn id(&self) -> ResourceId {
        ResourceId::new(KIND, &self.name)
    }

    fn needs(&self) -> Vec<ResourceId> {
        self.needs.clone()
    }

    fn desired(&self) -> Option<Value> {
        self.spec.as_ref().map(AlarmSpec::fields)
    }

    async fn read(&self, ctx: &Ctx<'_>, _: Option<&Observed>) -> Result<Option<Observed>> {
        let Some(alarm) = describe(ctx.aws, &self.name).await? else {
            return Ok(None);
        };
        let arn = alarm.alarm_arn().unwrap_or_default().to_string();
        let tags = ctx
            .aws
            .cloudwatch
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .map_err(|e| error(&format!("alarm {}", self.name), "ListTagsForResource", e))?
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect();
        Ok(Some(Observed {
            fields: fields(&alarm),
            tags,
            physical_id: arn,
        }))
    }

    /// PutMetricAlarm writes the whole alarm, creating or updating it; it
    /// ignores tags on an update, so changed tags take TagResource.
    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        plan: &ResourcePlan,
        live: Option<&Observed>,
        _: &Known,
    ) -> Result<Attributes> {
        let spec = spec(&self.spec, &self.id())?;
        let what = format!("alarm {}", self.name);
        let tags: Vec<Tag> = ctx
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        if plan.action == Action::Create || plan.changes.iter().any(|c| c.field != "tags") {
            ctx.aws
                .cloudwatch
                .put_metric_alarm()
                .alarm_name(&self.name)
                .alarm_description("Managed by stepgate")
                .namespace(NAMESPACE)
                .metric_name(&spec.metric)
                .dimensions(
                    Dimension::builder()
                        .name(DIMENSION)
                        .value(&spec.state_machine_arn)
                        .build(),
                )
                .statistic(Statistic::Sum)
                .period(PERIOD_SECONDS)
                .evaluation_periods(1)
                .threshold(f64::from(spec.threshold))
                .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
                .treat_missing_data("notBreaching")
                .set_alarm_actions(spec.notify.clone().map(|topic| vec![topic]))
                .set_tags((plan.action == Action::Create).then(|| tags.clone()))
                .send()
                .await
                .map_err(|e| error(&what, "PutMetricAlarm", e))?;
        }
        let arn = format!(
            "arn:{}:cloudwatch:{}:{}:alarm:{}",
            ctx.names.partition, ctx.names.region, ctx.names.account, self.name
        );
        // On a create too: LocalStack 4.4 drops PutMetricAlarm's tags (AWS
        // applies them, so there this repeats them).
        if plan.action == Action::Create || plan.changed("tags") {
            ctx.aws
                .cloudwatch
                .tag_resource()
                .resource_arn(live.map(|l| l.physical_id.as_str()).unwrap_or(&arn))
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(|e| error(&what, "TagResource", e))?;
        }
        Ok(Attributes::new(&self.name, Some(arn)))
    }

    async fn delete(&self, ctx: &Ctx<'_>, _: &Observed) -> Result<()> {
        match ctx
            .aws
            .cloudwatch
            .delete_alarms()
            .alarm_names(&self.name)
            .send()
            .await
        {
            Err(e) if code(&e) != Some("ResourceNotFound") => {
                Err(error(&format!("alarm {}", self.name), "DeleteAlarms", e))
            }
            _ => Ok(()),
        }
    }
}

/// Every alarm named with the stage's prefix; the engine keeps those whose
/// tags say they are the stage's.
pub struct AlarmInventory;

#[async_trait]
impl Inventory for AlarmInventory {
    async fn list(&self, ctx: &Ctx<'_>) -> Result<Vec<Box<dyn Resource>>> {
        let prefix = ctx.names.prefix();
        let pages = ctx
            .aws
            .cloudwatch
            .describe_alarms()
            .alarm_name_prefix(&prefix)
            .into_paginator()
            .send()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| error(&format!("alarms {prefix}*"), "DescribeAlarms", e))?;
        Ok(pages
            .iter()
            .flat_map(|p| p.metric_alarms())
            .filter_map(|a| a.alarm_name())
            .map(|name| {
                Box::new(Alarm {
                    name: name.to_string(),
                    spec: None,
                    needs: Vec::new(),
                }) as Box<dyn Resource>
            })
            .collect())
    }
}
