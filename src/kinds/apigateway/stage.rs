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
    live: &[LiveVariable],
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
    let mut fields = json!({
        // Shows which deployment it serves when it is not one of ours.
        "deployment": if description.is_empty() { format!("deployment {}", stage.deployment_id().unwrap_or("none")) } else { description },
        "throttling": throttling,
        "access_log": access_log,
        "log_level": log_level,
    });
    if !live.is_empty() {
        fields["variables"] = read_live_variables(aws, Some(&stage), live).await?;
    }
    Ok(Some(Observed {
        fields,
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
    variables: &[(String, u64)],
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
    if creating || plan.changed("variables") {
        for (variable, version) in variables {
            patches.push(patch(
                Op::Replace,
                &format!("/variables/{variable}"),
                Some(version.to_string()),
            ));
        }
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

/// Sets the stage variable a sync route reads the version it starts from
/// (`names::live_variable`). A stage not created yet gets it when it is.
pub async fn set_live_variable(
    aws: &Aws,
    api_id: &str,
    stage: &str,
    variable: &str,
    version: u64,
) -> Result<()> {
    match aws
        .apigateway
        .update_stage()
        .rest_api_id(api_id)
        .stage_name(stage)
        .patch_operations(patch(
            Op::Replace,
            &format!("/variables/{variable}"),
            Some(version.to_string()),
        ))
        .send()
        .await
    {
        Err(e) if code(&e) == Some("NotFoundException") => Ok(()),
        Err(e) => Err(error(&format!("stage {stage}"), "UpdateStage", e)),
        Ok(_) => Ok(()),
    }
}

/// What a stage variable says of the version `live` serves, as plan shows
/// it: `SERVES_LIVE` when they agree.
const SERVES_LIVE: &str = "the version live serves";

/// A sync route's machine, as the stage sees it: the variable that names
/// the version its routes start, and the `live` alias it must follow.
#[derive(Clone, Debug)]
pub struct LiveVariable {
    pub variable: String,
    pub alias_arn: String,
}

/// What the stage's variables say against where each `live` points.
async fn read_live_variables(
    aws: &Aws,
    stage: Option<&aws_sdk_apigateway::operation::get_stage::GetStageOutput>,
    live: &[LiveVariable],
) -> Result<Value> {
    let mut fields = serde_json::Map::new();
    for l in live {
        let set = stage
            .and_then(|s| s.variables())
            .and_then(|v| v.get(&l.variable))
            .cloned();
        let serving = crate::kinds::machine_alias::routing(aws, &l.alias_arn)
            .await?
            .and_then(|r| r.into_iter().next())
            .map(|(arn, _)| crate::kinds::machine_version::version_number(&arn).to_string());
        let said = match (set, serving) {
            (Some(set), Some(serving)) if set == serving => SERVES_LIVE.to_string(),
            (Some(set), Some(serving)) => format!("version {set} (live serves {serving})"),
            (Some(set), None) => format!("version {set} (no live alias)"),
            (None, _) => "unset".to_string(),
        };
        fields.insert(l.variable.clone(), json!(said));
    }
    Ok(Value::Object(fields))
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
    /// The machines behind sync routes, whose `live` version the stage's
    /// variables name.
    pub live: Vec<LiveVariable>,
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

    fn goes_with(&self) -> Option<ResourceId> {
        Some(self.api.clone())
    }

    fn desired(&self) -> Option<Value> {
        self.spec.as_ref().map(|spec| {
            let mut fields = spec.fields();
            if !self.live.is_empty() {
                fields["variables"] = self
                    .live
                    .iter()
                    .map(|l| (l.variable.clone(), json!(SERVES_LIVE)))
                    .collect::<serde_json::Map<_, _>>()
                    .into();
            }
            fields
        })
    }

    /// Only a stage of our own API is ours to read (and later to change),
    /// or of the API `[api] id` names (to adopt).
    async fn read(&self, ctx: &Ctx<'_>, api: Option<&Observed>) -> Result<Option<Observed>> {
        match api.filter(|a| ctx.names.api_is_ours_or_named(a)) {
            Some(api) => {
                let throttling = self.spec.as_ref().is_some_and(|s| s.throttling.is_some());
                let mut stage = read_stage(
                    ctx.aws,
                    &api.physical_id,
                    &self.name,
                    throttling,
                    &self.live,
                )
                .await?;
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
        // The version each `live` serves now (its alias applied before),
        // read only when the variables are to be written.
        let mut variables = Vec::new();
        if plan.action == Action::Create || plan.changed("variables") {
            for l in &self.live {
                if let Some((arn, _)) = crate::kinds::machine_alias::routing(ctx.aws, &l.alias_arn)
                    .await?
                    .and_then(|r| r.into_iter().next())
                {
                    variables.push((
                        l.variable.clone(),
                        crate::kinds::machine_version::version_number(&arn),
                    ));
                }
            }
        }
        apply_stage(
            ctx.aws,
            spec(&self.spec, &self.id())?,
            api,
            &stage_ctx,
            plan,
            &variables,
        )
        .await?;
        Ok(Attributes::new(&self.name, None))
    }

    /// The stage goes with its API.
    async fn delete(&self, _: &Ctx<'_>, _: &Observed) -> Result<()> {
        Ok(())
    }
}
