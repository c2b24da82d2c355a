//! The stage's usage plan: the throttle and quota every API key of the
//! stage gets, attached to the stage. Found by name and owner tags (its id
//! is AWS's choice); the inventory finds the stage's plans by their tags.

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde_json::{json, Value};

use aws_sdk_apigateway::types::{
    ApiStage, Op, QuotaPeriodType, QuotaSettings, ThrottleSettings, UsagePlan as LivePlan,
};

use super::{patch, USAGE_PLAN_KIND};
use crate::aws::{code, error, sorted, Aws};
use crate::model::{Observed, ResourceId, Tags};
use crate::plan::{Action, ResourcePlan};
use crate::project::access::UsagePlan as PlanSettings;
use crate::resource::{spec, Attributes, Ctx, Inventory, Known, Resource};

#[derive(Clone, Debug)]
pub struct UsagePlanSpec {
    pub settings: PlanSettings,
    /// The stage it is attached to.
    pub stage: String,
}

impl UsagePlanSpec {
    pub fn fields(&self) -> Value {
        let s = &self.settings;
        json!({
            "throttle": (s.rate_limit.is_some() || s.burst_limit.is_some()).then(|| json!({
                "rate_limit": s.rate_limit,
                "burst_limit": s.burst_limit,
            })),
            "quota": s.quota.as_ref().map(|q| json!({ "limit": q.limit, "period": q.period })),
            "stages": [self.stage],
        })
    }
}

/// Every usage plan in the account and region.
async fn all_plans(aws: &Aws, what: &str) -> Result<Vec<LivePlan>> {
    aws.apigateway
        .get_usage_plans()
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| error(what, "GetUsagePlans", e))
}

fn observed(plan: &LivePlan, api_id: Option<&str>) -> Observed {
    let throttle = plan
        .throttle()
        .map(|t| json!({ "rate_limit": t.rate_limit(), "burst_limit": t.burst_limit() }));
    let quota = plan
        .quota()
        .map(|q| json!({ "limit": q.limit(), "period": q.period().map(|p| p.as_str()) }));
    // The stages of this stack's API it serves (another API's show by id).
    let stages: Vec<String> = plan
        .api_stages()
        .iter()
        .map(|s| match (s.api_id(), api_id) {
            (Some(a), Some(ours)) if a == ours => s.stage().unwrap_or_default().to_string(),
            (a, _) => format!(
                "{}/{}",
                a.unwrap_or_default(),
                s.stage().unwrap_or_default()
            ),
        })
        .collect();
    Observed {
        fields: json!({ "throttle": throttle, "quota": quota, "stages": stages }),
        tags: sorted(plan.tags()),
        physical_id: plan.id().unwrap_or_default().to_string(),
    }
}

/// The stage's usage plan.
pub struct UsagePlan {
    pub name: String,
    pub spec: Option<UsagePlanSpec>,
    /// The REST API whose stage it serves.
    pub api: ResourceId,
    /// The stage, which must exist before a plan names it.
    pub needs: Vec<ResourceId>,
}

#[async_trait]
impl Resource for UsagePlan {
    fn id(&self) -> ResourceId {
        ResourceId::new(USAGE_PLAN_KIND, &self.name)
    }

    fn needs(&self) -> Vec<ResourceId> {
        [self.api.clone()]
            .into_iter()
            .chain(self.needs.iter().cloned())
            .collect()
    }

    fn read_after(&self) -> Option<ResourceId> {
        Some(self.api.clone())
    }

    fn desired(&self) -> Option<Value> {
        self.spec.as_ref().map(UsagePlanSpec::fields)
    }

    async fn read(&self, ctx: &Ctx<'_>, api: Option<&Observed>) -> Result<Option<Observed>> {
        let what = format!("usage-plan {}", self.name);
        let owner = ctx.names.owner_tags();
        let plans = all_plans(ctx.aws, &what).await?;
        let mine = |p: &&LivePlan| {
            p.name() == Some(self.name.as_str())
                && owner
                    .iter()
                    .all(|(k, v)| p.tags().and_then(|t| t.get(k)) == Some(v))
        };
        let found = plans
            .iter()
            .find(mine)
            .or_else(|| plans.iter().find(|p| p.name() == Some(self.name.as_str())));
        Ok(found.map(|p| observed(p, api.map(|a| a.physical_id.as_str()))))
    }

    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        plan: &ResourcePlan,
        live: Option<&Observed>,
        known: &Known,
    ) -> Result<Attributes> {
        let desired = spec(&self.spec, &self.id())?;
        let what = format!("usage-plan {}", self.name);
        let api_id = known
            .get(&self.api)
            .map(|a| a.id.as_str())
            .with_context(|| format!("{what}: the REST API does not exist"))?;
        let gw = &ctx.aws.apigateway;
        let s = &desired.settings;
        let throttle = (s.rate_limit.is_some() || s.burst_limit.is_some()).then(|| {
            ThrottleSettings::builder()
                .set_rate_limit(s.rate_limit)
                .set_burst_limit(s.burst_limit)
                .build()
        });
        let quota = s.quota.as_ref().map(|q| {
            QuotaSettings::builder()
                .limit(q.limit)
                .period(QuotaPeriodType::from(q.period.as_str()))
                .build()
        });
        let id = match (plan.action, live) {
            (Action::Create, _) | (_, None) => gw
                .create_usage_plan()
                .name(&self.name)
                .description("Managed by stepgate")
                .set_throttle(throttle)
                .set_quota(quota)
                .api_stages(
                    ApiStage::builder()
                        .api_id(api_id)
                        .stage(&desired.stage)
                        .build(),
                )
                .set_tags(Some(ctx.tags.clone().into_iter().collect()))
                .send()
                .await
                .map_err(|e| error(&what, "CreateUsagePlan", e))?
                .id
                .context("CreateUsagePlan returned no id")?,
            (_, Some(live)) => {
                let id = live.physical_id.clone();
                let mut patches = Vec::new();
                if plan.changed("throttle") {
                    patches.push(patch(
                        Op::Replace,
                        "/throttle/rateLimit",
                        Some(s.rate_limit.unwrap_or(0.0).to_string()),
                    ));
                    patches.push(patch(
                        Op::Replace,
                        "/throttle/burstLimit",
                        Some(s.burst_limit.unwrap_or(0).to_string()),
                    ));
                }
                if plan.changed("quota") {
                    match &s.quota {
                        Some(q) => {
                            patches.push(patch(
                                Op::Replace,
                                "/quota/limit",
                                Some(q.limit.to_string()),
                            ));
                            patches.push(patch(
                                Op::Replace,
                                "/quota/period",
                                Some(q.period.clone()),
                            ));
                        }
                        None => patches.push(patch(Op::Remove, "/quota", None)),
                    }
                }
                if plan.changed("stages") {
                    for stage in live.fields["stages"].as_array().into_iter().flatten() {
                        let stage = stage.as_str().unwrap_or_default();
                        if stage != desired.stage {
                            let path = match stage.split_once('/') {
                                Some((api, st)) => format!("/apiStages/{api}:{st}"),
                                None => format!("/apiStages/{api_id}:{stage}"),
                            };
                            patches.push(patch(Op::Remove, &path, None));
                        }
                    }
                    patches.push(patch(
                        Op::Add,
                        "/apiStages",
                        Some(format!("{api_id}:{}", desired.stage)),
                    ));
                }
                if !patches.is_empty() {
                    gw.update_usage_plan()
                        .usage_plan_id(&id)
                        .set_patch_operations(Some(patches))
                        .send()
                        .await
                        .map_err(|e| error(&what, "UpdateUsagePlan", e))?;
                }
                if plan.changed("tags") {
                    gw.tag_resource()
                        .resource_arn(format!(
                            "arn:{}:apigateway:{}::/usageplans/{id}",
                            ctx.names.partition, ctx.names.region
                        ))
                        .set_tags(Some(ctx.tags.clone().into_iter().collect()))
                        .send()
                        .await
                        .map_err(|e| error(&what, "TagResource", e))?;
                }
                id
            }
        };
        Ok(Attributes::new(id, None))
    }

    /// Detached from its stages first: API Gateway deletes no plan in use.
    async fn delete(&self, ctx: &Ctx<'_>, live: &Observed) -> Result<()> {
        let what = format!("usage-plan {}", self.name);
        let gw = &ctx.aws.apigateway;
        let current = match gw
            .get_usage_plan()
            .usage_plan_id(&live.physical_id)
            .send()
            .await
        {
            Ok(p) => p,
            Err(e) if code(&e) == Some("NotFoundException") => return Ok(()),
            Err(e) => return Err(error(&what, "GetUsagePlan", e)),
        };
        let detach: Vec<_> = current
            .api_stages()
            .iter()
            .map(|s| {
                patch(
                    Op::Remove,
                    &format!(
                        "/apiStages/{}:{}",
                        s.api_id().unwrap_or_default(),
                        s.stage().unwrap_or_default()
                    ),
                    None,
                )
            })
            .collect();
        if !detach.is_empty() {
            match gw
                .update_usage_plan()
                .usage_plan_id(&live.physical_id)
                .set_patch_operations(Some(detach))
                .send()
                .await
            {
                Err(e) if code(&e) != Some("NotFoundException") => {
                    return Err(error(&what, "UpdateUsagePlan", e))
                }
                _ => {}
            }
        }
        match gw
            .delete_usage_plan()
            .usage_plan_id(&live.physical_id)
            .send()
            .await
        {
            Err(e) if code(&e) != Some("NotFoundException") => {
                Err(error(&what, "DeleteUsagePlan", e))
            }
            _ => Ok(()),
        }
    }
}

/// The stage's usage plans: every plan carrying its owner tags.
pub struct UsagePlanInventory;

#[async_trait]
impl Inventory for UsagePlanInventory {
    async fn list(&self, ctx: &Ctx<'_>) -> Result<Vec<Box<dyn Resource>>> {
        let owner: Tags = ctx.names.owner_tags();
        let mut names: Vec<String> = all_plans(ctx.aws, "usage-plans of the stage")
            .await?
            .into_iter()
            .filter(|p| {
                owner
                    .iter()
                    .all(|(k, v)| p.tags().and_then(|t| t.get(k)) == Some(v))
            })
            .filter_map(|p| p.name().map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        Ok(names
            .into_iter()
            .map(|name| {
                // Read after (and deleted before) the API of the same name.
                let api = ResourceId::new(super::API_KIND, &name);
                Box::new(UsagePlan {
                    name,
                    spec: None,
                    api,
                    needs: Vec::new(),
                }) as Box<dyn Resource>
            })
            .collect())
    }
}

/// The id of the usage plan named `name`, if there is one.
pub async fn usage_plan_id(aws: &Aws, name: &str) -> Result<Option<String>> {
    Ok(all_plans(aws, &format!("usage-plan {name}"))
        .await?
        .into_iter()
        .find(|p| p.name() == Some(name))
        .and_then(|p| p.id().map(str::to_string)))
}

/// Key `key_id`'s requests on `day` (YYYY-MM-DD) and what remains of its
/// quota, as GetUsage reports them (only for a plan with a quota).
pub async fn usage_today(
    aws: &Aws,
    plan_id: &str,
    key_id: &str,
    day: &str,
) -> Result<Option<(i64, i64)>> {
    let usage = aws
        .apigateway
        .get_usage()
        .usage_plan_id(plan_id)
        .key_id(key_id)
        .start_date(day)
        .end_date(day)
        .send()
        .await
        .map_err(|e| error(&format!("api-key {key_id}"), "GetUsage", e))?;
    Ok(usage
        .items()
        .and_then(|items| items.get(key_id))
        .and_then(|days| days.first())
        .and_then(|day| Some((*day.first()?, *day.get(1)?))))
}
