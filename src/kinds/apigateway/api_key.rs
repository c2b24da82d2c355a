//! One API key per name of `[api] keys`, per stage, attached to the
//! stage's usage plan. AWS picks each key's value; stepgate never reads it
//! but for `stepgate keys --reveal`, so no plan, deploy, log or report
//! holds one.

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde_json::{json, Value};

use aws_sdk_apigateway::types::{ApiKey as LiveKey, Op};

use super::{patch, API_KEY_KIND};
use crate::aws::{code, error, sorted, Aws};
use crate::model::{Observed, ResourceId, Tags};
use crate::plan::{Action, ResourcePlan};
use crate::resource::{Attributes, Ctx, Inventory, Known, Resource};

/// The keys whose names start with `prefix`, values left out unless
/// `values` (only `stepgate keys --reveal` asks for them).
pub async fn keys_named(aws: &Aws, prefix: &str, values: bool) -> Result<Vec<LiveKey>> {
    aws.apigateway
        .get_api_keys()
        .name_query(prefix)
        .include_values(values)
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map(|keys| {
            keys.into_iter()
                .filter(|k| k.name().is_some_and(|n| n.starts_with(prefix)))
                .collect()
        })
        .map_err(|e| error(&format!("api-keys {prefix}*"), "GetApiKeys", e))
}

/// The value of the stage's key named `name`, for `invoke` to send.
pub async fn key_value(aws: &Aws, name: &str) -> Result<String> {
    keys_named(aws, name, true)
        .await?
        .into_iter()
        .find(|k| k.name() == Some(name))
        .and_then(|k| k.value().map(str::to_string))
        .with_context(|| format!("api-key {name} is not deployed; run stepgate deploy first"))
}

/// An API key of the stage, in its usage plan.
pub struct ApiKey {
    /// `{stack}-{stage}-NAME`.
    pub name: String,
    /// Declared, or found by the inventory (then its plan is unknown).
    pub declared: bool,
    pub usage_plan: ResourceId,
}

#[async_trait]
impl Resource for ApiKey {
    fn id(&self) -> ResourceId {
        ResourceId::new(API_KEY_KIND, &self.name)
    }

    fn needs(&self) -> Vec<ResourceId> {
        self.read_after().into_iter().collect()
    }

    /// The plan's id tells whether the key is in it.
    fn read_after(&self) -> Option<ResourceId> {
        self.declared.then(|| self.usage_plan.clone())
    }

    fn desired(&self) -> Option<Value> {
        self.declared
            .then(|| json!({ "enabled": true, "in_usage_plan": true }))
    }

    async fn read(&self, ctx: &Ctx<'_>, plan: Option<&Observed>) -> Result<Option<Observed>> {
        let what = format!("api-key {}", self.name);
        let owner = ctx.names.owner_tags();
        let keys = keys_named(ctx.aws, &self.name, false).await?;
        let same: Vec<&LiveKey> = keys
            .iter()
            .filter(|k| k.name() == Some(self.name.as_str()))
            .collect();
        let found = same
            .iter()
            .find(|k| {
                owner
                    .iter()
                    .all(|(t, v)| k.tags().and_then(|m| m.get(t)) == Some(v))
            })
            .or(same.first());
        let Some(key) = found else {
            return Ok(None);
        };
        let id = key.id().unwrap_or_default().to_string();
        let in_plan = match plan {
            Some(plan) => match ctx
                .aws
                .apigateway
                .get_usage_plan_key()
                .usage_plan_id(&plan.physical_id)
                .key_id(&id)
                .send()
                .await
            {
                Ok(_) => true,
                Err(e) if code(&e) == Some("NotFoundException") => false,
                Err(e) => return Err(error(&what, "GetUsagePlanKey", e)),
            },
            None => false,
        };
        Ok(Some(Observed {
            fields: json!({ "enabled": key.enabled(), "in_usage_plan": in_plan }),
            tags: sorted(key.tags()),
            physical_id: id,
        }))
    }

    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        plan: &ResourcePlan,
        live: Option<&Observed>,
        known: &Known,
    ) -> Result<Attributes> {
        let what = format!("api-key {}", self.name);
        let gw = &ctx.aws.apigateway;
        let id = match (plan.action, live) {
            (Action::Create, _) | (_, None) => gw
                .create_api_key()
                .name(&self.name)
                .description("Managed by stepgate")
                .enabled(true)
                .set_tags(Some(ctx.tags.clone().into_iter().collect()))
                .send()
                .await
                .map_err(|e| error(&what, "CreateApiKey", e))?
                .id
                .context("CreateApiKey returned no id")?,
            (_, Some(live)) => live.physical_id.clone(),
        };
        if plan.action == Action::Update && plan.changed("enabled") {
            gw.update_api_key()
                .api_key(&id)
                .patch_operations(patch(Op::Replace, "/enabled", Some("true".into())))
                .send()
                .await
                .map_err(|e| error(&what, "UpdateApiKey", e))?;
        }
        if plan.action == Action::Update && plan.changed("tags") {
            gw.tag_resource()
                .resource_arn(format!(
                    "arn:{}:apigateway:{}::/apikeys/{id}",
                    ctx.names.partition, ctx.names.region
                ))
                .set_tags(Some(ctx.tags.clone().into_iter().collect()))
                .send()
                .await
                .map_err(|e| error(&what, "TagResource", e))?;
        }
        if plan.action == Action::Create || plan.changed("in_usage_plan") {
            let usage_plan = known
                .get(&self.usage_plan)
                .map(|a| a.id.as_str())
                .with_context(|| format!("{what}: the usage plan does not exist"))?;
            let added = gw
                .create_usage_plan_key()
                .usage_plan_id(usage_plan)
                .key_id(&id)
                .key_type("API_KEY")
                .send()
                .await;
            super::tolerate_conflict(added, &what, "CreateUsagePlanKey")?;
        }
        Ok(Attributes::new(id, None))
    }

    async fn delete(&self, ctx: &Ctx<'_>, live: &Observed) -> Result<()> {
        match ctx
            .aws
            .apigateway
            .delete_api_key()
            .api_key(&live.physical_id)
            .send()
            .await
        {
            Err(e) if code(&e) != Some("NotFoundException") => {
                Err(error(&format!("api-key {}", self.name), "DeleteApiKey", e))
            }
            _ => Ok(()),
        }
    }
}

/// The stage's API keys: those named with its prefix (the engine keeps
/// only those that carry its owner tags).
pub struct ApiKeyInventory;

#[async_trait]
impl Inventory for ApiKeyInventory {
    async fn list(&self, ctx: &Ctx<'_>) -> Result<Vec<Box<dyn Resource>>> {
        let owner: Tags = ctx.names.owner_tags();
        let mut names: Vec<String> = keys_named(ctx.aws, &ctx.names.prefix(), false)
            .await?
            .into_iter()
            .filter(|k| {
                owner
                    .iter()
                    .all(|(t, v)| k.tags().and_then(|m| m.get(t)) == Some(v))
            })
            .filter_map(|k| k.name().map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        Ok(names
            .into_iter()
            .map(|name| {
                Box::new(ApiKey {
                    name,
                    declared: false,
                    usage_plan: ResourceId::new(super::USAGE_PLAN_KIND, ""),
                }) as Box<dyn Resource>
            })
            .collect())
    }
}
