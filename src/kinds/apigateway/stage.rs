//! The stage: the deployment it serves, its access log, execution-logging
//! level and throttling.

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde_json::{json, Value};

use aws_sdk_apigateway::types::Op;

use super::patch;
use crate::aws::{code, error, sorted, Aws};
use crate::desired::api::{StageSpec, DEPLOYMENT_PREFIX};
use crate::model::{Observed, ResourceId, Tags};
use crate::plan::{Action, ResourcePlan};
use crate::resource::{spec, Attributes, Ctx, Known, Resource};

use super::STAGE_KIND;

/// The stage as stepgate manages it. `throttling_managed`: whether its
/// throttle limits are stepgate's to compare (the settings name some).
/// Without them API Gateway fills its own defaults into the `*/*` method
/// setting that carries the log level, and those are not drift.
pub async fn read_stage(
    aws: &Aws,
    api_id: &str,
    name: &str,
    throttling_managed: bool,
) -> Result<Option<Observed>> {
    let what = format!("stage {name}");
    let stage = match aws
        .apigateway
        .get_stage()
        .rest_api_id(api_id)
        .stage_name(name)
        .send()
        .await
    {
        Ok(s) => s,
        Err(e) if code(&e) == Some("NotFoundException") => return Ok(None),
        Err(e) => return Err(error(&what, "GetStage", e)),
    };
    let description = match stage.deployment_id() {
        Some(deployment) => match aws
            .apigateway
            .get_deployment()
            .rest_api_id(api_id)
            .deployment_id(deployment)
            .send()
            .await
        {
            Ok(d) => d.description.unwrap_or_default(),
            Err(e) if code(&e) == Some("NotFoundException") => String::new(),
            Err(e) => return Err(error(&what, "GetDeployment", e)),
        },
        None => String::new(),
    };
    let all = stage.method_settings().and_then(|m| m.get("*/*"));
    let throttling = all.filter(|_| throttling_managed).map(|s| {
        json!({ "burst_limit": s.throttling_burst_limit(), "rate_limit": s.throttling_rate_limit() })
    });
    // No `*/*` setting, or no level in it, is execution logging off.
    let log_level = all.and_then(|s| s.logging_level()).unwrap_or("OFF");
    let access_log = stage.access_log_settings().map(|a| {
        let format = a.format().unwrap_or_default();
        json!({
            "destination_arn": a.destination_arn(),
            // Parsed, so that spacing and key order are not drift.
            "format": serde_json::from_str::<Value>(format).unwrap_or_else(|_| json!(format)),
        })
    });
    Ok(Some(Observed {
        fields: json!({
            // Shows which deployment it serves when it is not one of ours.
            "deployment": if description.is_empty() { format!("deployment {}", stage.deployment_id().unwrap_or("none")) } else { description },
            "throttling": throttling,
            "access_log": access_log,
            "log_level": log_level,
        }),
        tags: sorted(stage.tags()),
        physical_id: stage.deployment_id().unwrap_or_default().to_string(),
    }))
}

/// Points the stage at a deployment of the current API configuration,
/// creating that deployment only when the stage does not already serve it.
pub async fn apply_stage(
    aws: &Aws,
    spec: &StageSpec,
    api_id: &str,
    ctx: &StageContext<'_>,
    plan: &ResourcePlan,
) -> Result<()> {
    let what = format!("stage {}", spec.name);
    let gw = &aws.apigateway;
    let mut patches = Vec::new();
    let new_deployment = if plan.action == Action::Create || plan.changed("deployment") {
        let deployment = gw
            .create_deployment()
            .rest_api_id(api_id)
            .description(format!("{DEPLOYMENT_PREFIX}{}", spec.api_config_hash))
            .send()
            .await
            .map_err(|e| error(&what, "CreateDeployment", e))?
            .id
            .context("CreateDeployment returned no id")?;
        Some(deployment)
    } else {
        None
    };
    let mut created = false;
    if plan.action == Action::Create {
        let result = gw
            .create_stage()
            .rest_api_id(api_id)
            .stage_name(&spec.name)
            .deployment_id(new_deployment.clone().unwrap_or_default())
            .description("Managed by stepgate")
            .set_tags(Some(ctx.tags.clone().into_iter().collect()))
            .send()
            .await;
        match result {
            Ok(_) => created = true,
            // A retry after a lost answer: the stage exists; point it below.
            Err(e) if code(&e) == Some("ConflictException") => {}
            Err(e) => return Err(error(&what, "CreateStage", e)),
        }
    }
    match &new_deployment {
        Some(deployment) if !created => patches.push(patch(
            Op::Replace,
            "/deploymentId",
            Some(deployment.clone()),
        )),
        _ => {}
    }
    let creating = plan.action == Action::Create;
    // Without throttling in the settings the limits are not stepgate's
    // (read_stage does not report them), so there is nothing to remove.
    if let (true, Some(t)) = (creating || plan.changed("throttling"), &spec.throttling) {
        patches.push(patch(
            Op::Replace,
            "/*/*/throttling/burstLimit",
            Some(t.burst_limit.to_string()),
        ));
        patches.push(patch(
            Op::Replace,
            "/*/*/throttling/rateLimit",
            Some(t.rate_limit.to_string()),
        ));
    }
    if creating || plan.changed("log_level") {
        patches.push(patch(
            Op::Replace,
            "/*/*/logging/loglevel",
            Some(spec.log_level.clone()),
        ));
    }
    if creating || plan.changed("access_log") {
        patches.push(patch(
            Op::Replace,
            "/accessLogSettings/destinationArn",
            Some(spec.access_log_arn.clone()),
        ));
        patches.push(patch(
            Op::Replace,
            "/accessLogSettings/format",
            Some(crate::desired::api::access_log_format().to_string()),
        ));
    }
    if !patches.is_empty() {
        gw.update_stage()
            .rest_api_id(api_id)
            .stage_name(&spec.name)
            .set_patch_operations(Some(patches))
            .send()
            .await
            .map_err(|e| error(&what, "UpdateStage", e))?;
    }
    if plan.action == Action::Update && plan.changed("tags") {
        gw.tag_resource()
            .resource_arn(format!(
                "arn:{}:apigateway:{}::/restapis/{api_id}/stages/{}",
                ctx.partition, ctx.region, spec.name
            ))
            .set_tags(Some(ctx.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| error(&what, "TagResource", e))?;
    }
    Ok(())
}

/// What the stage needs from the rest of the stack.
pub struct StageContext<'a> {
    pub tags: &'a Tags,
    pub partition: &'a str,
    pub region: &'a str,
}

/// The stage, which serves a deployment of the API's configuration and
/// writes its access and execution logs.
pub struct Stage {
    pub name: String,
    pub spec: Option<StageSpec>,
    pub api: ResourceId,
    /// Besides its API: the access log group and the account's CloudWatch
    /// role setting, without which API Gateway refuses to log.
    pub needs: Vec<ResourceId>,
}

#[async_trait]
impl Resource for Stage {
    fn id(&self) -> ResourceId {
        ResourceId::new(STAGE_KIND, &self.name)
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
        self.spec.as_ref().map(StageSpec::fields)
    }

    /// Only a stage of our own API is ours to read (and later to change),
    /// or of the API `[api] id` names (to adopt).
    async fn read(&self, ctx: &Ctx<'_>, api: Option<&Observed>) -> Result<Option<Observed>> {
        match api.filter(|a| ctx.names.api_is_ours_or_named(a)) {
            Some(api) => {
                let throttling = self.spec.as_ref().is_some_and(|s| s.throttling.is_some());
                let mut stage =
                    read_stage(ctx.aws, &api.physical_id, &self.name, throttling).await?;
                // A stage built by hand is tagged after the fact: its tags as
                // the tagging API holds them (the emulator's GetStage does
                // not show tags added by TagResource; AWS's does).
                if let Some(s) = stage.as_mut().filter(|_| {
                    ctx.names.overrides.api_id.as_deref() == Some(api.physical_id.as_str())
                }) {
                    let arn = format!(
                        "{}/stages/{}",
                        super::api_arn(ctx.aws, &api.physical_id),
                        self.name
                    );
                    s.tags = super::tags_of(ctx.aws, &format!("stage {}", self.name), &arn).await?;
                }
                Ok(stage)
            }
            None => Ok(None),
        }
    }

    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        plan: &ResourcePlan,
        _: Option<&Observed>,
        known: &Known,
    ) -> Result<Attributes> {
        let api = &known
            .get(&self.api)
            .ok_or_else(|| anyhow::anyhow!("stage {}: the REST API does not exist", self.name))?
            .id;
        let names = ctx.names;
        let stage_ctx = StageContext {
            tags: ctx.tags,
            partition: names.partition,
            region: &names.region,
        };
        apply_stage(
            ctx.aws,
            spec(&self.spec, &self.id())?,
            api,
            &stage_ctx,
            plan,
        )
        .await?;
        Ok(Attributes::new(&self.name, None))
    }

    /// The stage goes with its API.
    async fn delete(&self, _: &Ctx<'_>, _: &Observed) -> Result<()> {
        Ok(())
    }
}
