//! Lambda functions: code (by CodeSha256 of a deterministic zip),
//! configuration and tags. The only module that uses the Lambda client.

use std::time::Duration;

use anyhow::{bail, Result};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, FunctionCode, LastUpdateStatus, Runtime, State};
use serde_json::{json, Value};

use crate::aws::retry::{poll, until_consistent, Readiness};
use crate::aws::{code, describe, error, sorted, Aws};
use async_trait::async_trait;

use std::collections::BTreeMap;

use crate::desired::{authorizer_placeholder, FunctionSpec, AUTHORIZER_PERMISSION_PREFIX};
use crate::model::{Kind, Observed, ResourceId, Tags};
use crate::plan::{Action, ResourcePlan};
use crate::resource::{spec, Attributes, Ctx, Inventory, Known, Resource};

/// How long a function may take to become Active or finish an update.
const SETTLE: Duration = Duration::from_secs(300);

/// The fields of UpdateFunctionConfiguration; code has its own call.
const CONFIG_FIELDS: [&str; 5] = ["runtime", "handler", "role", "memory", "timeout"];

pub async fn read(aws: &Aws, name: &str) -> Result<Option<Observed>> {
    let out = match aws.lambda.get_function().function_name(name).send().await {
        Ok(out) => out,
        Err(e) if code(&e) == Some("ResourceNotFoundException") => return Ok(None),
        Err(e) => return Err(error(&format!("function {name}"), "GetFunction", e)),
    };
    let Some(c) = out.configuration() else {
        return Ok(None);
    };
    Ok(Some(Observed {
        fields: fields(c),
        tags: sorted(out.tags()),
        physical_id: c.function_arn().unwrap_or_default().to_string(),
    }))
}

/// The managed fields of `$LATEST` or of a published version, in the shape
/// of `FunctionSpec::fields`.
pub fn fields(c: &aws_sdk_lambda::types::FunctionConfiguration) -> Value {
    json!({
        "code_sha256": c.code_sha256(),
        "runtime": c.runtime().map(|r| r.as_str()),
        "handler": c.handler(),
        "role": c.role(),
        "memory": c.memory_size(),
        "timeout": c.timeout(),
        "environment": sorted(c.environment().and_then(|e| e.variables())),
        "architecture": c.architectures().first().map(|a| a.as_str()).unwrap_or("x86_64"),
    })
}

/// Lambda checks that it can assume the role; for seconds after the role is
/// created (IAM propagation) it cannot, and says exactly this.
fn role_not_ready<E>(e: &aws_sdk_lambda::error::SdkError<E>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = describe(e);
    code(e) == Some("InvalidParameterValueException")
        && (message.contains("cannot be assumed by Lambda")
            || message.contains("role defined for the function cannot be assumed"))
}

/// "An update is in progress for resource": a second update while the
/// first settles, such as the SDK's retry of one whose answer was lost.
fn update_in_progress<E>(e: &aws_sdk_lambda::error::SdkError<E>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    code(e) == Some("ResourceConflictException") && describe(e).contains("in progress")
}

pub async fn apply(
    aws: &Aws,
    spec: &FunctionSpec,
    tags: &Tags,
    plan: &ResourcePlan,
    live: Option<&Observed>,
) -> Result<()> {
    let what = format!("function {}", spec.name);
    let runtime = Runtime::from(spec.runtime.as_str());
    let architecture = Architecture::from(spec.architecture.as_str());
    let environment = || {
        aws_sdk_lambda::types::Environment::builder()
            .set_variables(Some(spec.environment.clone().into_iter().collect()))
            .build()
    };
    if plan.action == Action::Create {
        let created = until_consistent(role_not_ready, || {
            aws.lambda
                .create_function()
                .function_name(&spec.name)
                .runtime(runtime.clone())
                .handler(&spec.handler)
                .role(&spec.role_arn)
                .memory_size(spec.memory_mb)
                .timeout(spec.timeout_s)
                .architectures(architecture.clone())
                .environment(environment())
                .description("Managed by stepgate")
                .code(
                    FunctionCode::builder()
                        .zip_file(Blob::new(spec.package.zip.clone()))
                        .build(),
                )
                .set_tags(Some(tags.clone().into_iter().collect()))
                .send()
        })
        .await;
        match created {
            Ok(_) => {}
            // The SDK retried a create whose answer was lost: ours if tagged so.
            Err(e) if code(&e) == Some("ResourceConflictException") => {
                if !read(aws, &spec.name)
                    .await?
                    .is_some_and(|o| o.owned_as(tags))
                {
                    return Err(error(&what, "CreateFunction", e));
                }
            }
            Err(e) => return Err(error(&what, "CreateFunction", e)),
        }
        return wait_active(aws, &spec.name).await;
    }

    // A previous run may have left an update in progress; Lambda refuses a
    // second one until it settles (ResourceConflictException).
    wait_updated(aws, &spec.name).await?;
    // The architecture goes with the code: only UpdateFunctionCode sets it.
    if plan.changed("code_sha256") || plan.changed("architecture") {
        // Retried after a lost answer, the update conflicts with itself
        // until the first one settles.
        until_consistent(update_in_progress, || {
            aws.lambda
                .update_function_code()
                .function_name(&spec.name)
                .zip_file(Blob::new(spec.package.zip.clone()))
                .architectures(architecture.clone())
                .send()
        })
        .await
        .map_err(|e| error(&what, "UpdateFunctionCode", e))?;
        wait_updated(aws, &spec.name).await?;
    }
    if CONFIG_FIELDS.iter().any(|f| plan.changed(f)) || plan.changed("environment") {
        until_consistent(
            |e| role_not_ready(e) || update_in_progress(e),
            || {
                aws.lambda
                    .update_function_configuration()
                    .function_name(&spec.name)
                    .runtime(runtime.clone())
                    .handler(&spec.handler)
                    .role(&spec.role_arn)
                    .memory_size(spec.memory_mb)
                    .timeout(spec.timeout_s)
                    .environment(environment())
                    .send()
            },
        )
        .await
        .map_err(|e| error(&what, "UpdateFunctionConfiguration", e))?;
        wait_updated(aws, &spec.name).await?;
    }
    if plan.changed("tags") {
        let arn = live.map(|l| l.physical_id.clone()).unwrap_or_default();
        aws.lambda
            .tag_resource()
            .resource(arn)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| error(&what, "TagResource", e))?;
    }
    Ok(())
}

/// The permissions stepgate added to the function's resource policy
/// (statement id -> source ARN), written as desired state has them: the
/// API's id as `{api}`, and the id of the authorizer a statement is named
/// for as `{authorizer:NAME}`. A source ARN wider or other than that stays
/// as it is, and so differs. None without a policy.
async fn invoked_by(
    aws: &Aws,
    name: &str,
    api_id: Option<&str>,
) -> Result<BTreeMap<String, String>> {
    let policy = match aws.lambda.get_policy().function_name(name).send().await {
        Ok(out) => out.policy.unwrap_or_default(),
        Err(e) if code(&e) == Some("ResourceNotFoundException") => return Ok(BTreeMap::new()),
        Err(e) => return Err(error(&format!("function {name}"), "GetPolicy", e)),
    };
    let doc: Value = serde_json::from_str(&policy).unwrap_or(Value::Null);
    let mut raw = BTreeMap::new();
    for statement in doc["Statement"].as_array().into_iter().flatten() {
        let Some(sid) = statement["Sid"].as_str() else {
            continue;
        };
        if !sid.starts_with(AUTHORIZER_PERMISSION_PREFIX) {
            continue;
        }
        let source = statement["Condition"]["ArnLike"]["AWS:SourceArn"]
            .as_str()
            .unwrap_or_default();
        raw.insert(sid.to_string(), source.to_string());
    }
    let Some(api_id) = api_id.filter(|id| !id.is_empty() && !raw.is_empty()) else {
        return Ok(raw);
    };
    let authorizers = super::apigateway::authorizer_ids(aws, api_id).await?;
    Ok(raw
        .into_iter()
        .map(|(sid, source)| {
            let source = as_desired(&sid, &source, api_id, &authorizers);
            (sid, source)
        })
        .collect())
}

/// A live source ARN in desired state's terms, when it names exactly the
/// API and the authorizer its statement is for.
fn as_desired(
    sid: &str,
    source: &str,
    api_id: &str,
    authorizers: &BTreeMap<String, String>,
) -> String {
    let mut out = source.replace(&format!(":{api_id}/"), ":{api}/");
    let name = sid
        .strip_prefix(AUTHORIZER_PERMISSION_PREFIX)
        .unwrap_or(sid);
    if let Some(id) = authorizers.get(name) {
        if let Some(scope) = out.strip_suffix(&format!("/authorizers/{id}")) {
            out = format!("{scope}/authorizers/{}", authorizer_placeholder(name));
        }
    }
    out
}

/// A desired source ARN with AWS's ids in place of its placeholders.
fn resolved(
    what: &str,
    sid: &str,
    source: &str,
    api_id: &str,
    authorizers: &BTreeMap<String, String>,
) -> Result<String> {
    let name = sid
        .strip_prefix(AUTHORIZER_PERMISSION_PREFIX)
        .unwrap_or(sid);
    let placeholder = authorizer_placeholder(name);
    let mut out = source.replace("{api}", api_id);
    if out.contains(&placeholder) {
        let id = authorizers.get(name).ok_or_else(|| {
            anyhow::anyhow!("{what}: the REST API has no authorizer {name} to be invoked by")
        })?;
        out = out.replace(&placeholder, id);
    }
    Ok(out)
}

/// Puts API Gateway's permissions to invoke the function in place: each
/// that differs is removed and added again, each no longer desired removed.
async fn permit(
    aws: &Aws,
    spec: &FunctionSpec,
    api_id: Option<&str>,
    live: Option<&Value>,
) -> Result<()> {
    let what = format!("function {}", spec.name);
    let live: BTreeMap<String, String> = live
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    for (sid, source) in &live {
        if spec.invoked_by.get(sid) == Some(source) {
            continue;
        }
        match aws
            .lambda
            .remove_permission()
            .function_name(&spec.name)
            .statement_id(sid)
            .send()
            .await
        {
            Err(e) if code(&e) != Some("ResourceNotFoundException") => {
                return Err(error(&what, "RemovePermission", e))
            }
            _ => {}
        }
    }
    let missing: Vec<(&String, &String)> = spec
        .invoked_by
        .iter()
        .filter(|(sid, source)| live.get(*sid) != Some(*source))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let api_id = api_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| anyhow::anyhow!("{what}: the REST API does not exist"))?;
    let authorizers = super::apigateway::authorizer_ids(aws, api_id).await?;
    for (sid, source) in missing {
        let added = aws
            .lambda
            .add_permission()
            .function_name(&spec.name)
            .statement_id(sid)
            .action("lambda:InvokeFunction")
            .principal("apigateway.amazonaws.com")
            .source_arn(resolved(&what, sid, source, api_id, &authorizers)?)
            .send()
            .await;
        match added {
            // A retry after a lost answer: the statement is there.
            Err(e) if code(&e) == Some("ResourceConflictException") => {}
            Err(e) => return Err(error(&what, "AddPermission", e)),
            Ok(_) => {}
        }
    }
    Ok(())
}

pub async fn delete(aws: &Aws, name: &str) -> Result<()> {
    match aws
        .lambda
        .delete_function()
        .function_name(name)
        .send()
        .await
    {
        Err(e) if code(&e) != Some("ResourceNotFoundException") => {
            Err(error(&format!("function {name}"), "DeleteFunction", e))
        }
        _ => Ok(()),
    }
}

/// Waits for a new function to be Active; Failed ends it with Lambda's
/// own reason.
async fn wait_active(aws: &Aws, name: &str) -> Result<()> {
    let what = format!("function {name}");
    poll(&what, SETTLE, || async {
        let c = configuration(aws, name).await?;
        Ok(match c.state() {
            Some(State::Active) | None => Readiness::Ready,
            Some(State::Failed) => bail!(
                "{what}: State Failed: {}: {}",
                c.state_reason_code().map(|r| r.as_str()).unwrap_or("?"),
                c.state_reason().unwrap_or("no reason given")
            ),
            Some(other) => Readiness::NotYet(format!("State {}", other.as_str())),
        })
    })
    .await
}

/// Waits for an update to settle; Failed ends it with Lambda's own reason.
async fn wait_updated(aws: &Aws, name: &str) -> Result<()> {
    let what = format!("function {name}");
    poll(&what, SETTLE, || async {
        let c = configuration(aws, name).await?;
        Ok(match c.last_update_status() {
            Some(LastUpdateStatus::Successful) | None => Readiness::Ready,
            Some(LastUpdateStatus::Failed) => bail!(
                "{what}: LastUpdateStatus Failed: {}: {}",
                c.last_update_status_reason_code()
                    .map(|r| r.as_str())
                    .unwrap_or("?"),
                c.last_update_status_reason().unwrap_or("no reason given")
            ),
            Some(other) => Readiness::NotYet(format!("LastUpdateStatus {}", other.as_str())),
        })
    })
    .await
}

async fn configuration(
    aws: &Aws,
    name: &str,
) -> Result<aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput> {
    aws.lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .map_err(|e| error(&format!("function {name}"), "GetFunctionConfiguration", e))
}
pub const KIND: Kind = Kind("function");

pub struct Function {
    pub name: String,
    pub spec: Option<FunctionSpec>,
    /// Its role and its log group (and the API, when it backs an authorizer).
    pub needs: Vec<ResourceId>,
    /// The REST API whose authorizers may invoke it, if any: read first,
    /// since the permission names its id.
    pub api: Option<ResourceId>,
}

#[async_trait]
impl Resource for Function {
    fn id(&self) -> ResourceId {
        ResourceId::new(KIND, &self.name)
    }

    fn needs(&self) -> Vec<ResourceId> {
        self.needs.clone()
    }

    fn desired(&self) -> Option<Value> {
        self.spec.as_ref().map(FunctionSpec::fields)
    }

    fn read_after(&self) -> Option<ResourceId> {
        self.api.clone()
    }

    async fn read(&self, ctx: &Ctx<'_>, api: Option<&Observed>) -> Result<Option<Observed>> {
        let Some(mut live) = read(ctx.aws, &self.name).await? else {
            return Ok(None);
        };
        let api_id = api.map(|a| a.physical_id.as_str());
        live.fields["invoked_by"] = json!(invoked_by(ctx.aws, &self.name, api_id).await?);
        Ok(Some(live))
    }

    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        plan: &ResourcePlan,
        live: Option<&Observed>,
        known: &Known,
    ) -> Result<Attributes> {
        let spec = spec(&self.spec, &self.id())?;
        apply(ctx.aws, spec, ctx.tags, plan, live).await?;
        if plan.action == Action::Create || plan.changed("invoked_by") {
            let api_id = self
                .api
                .as_ref()
                .and_then(|a| known.get(a))
                .map(|a| a.id.as_str());
            let live_permissions = live.map(|l| l.fields["invoked_by"].clone());
            permit(ctx.aws, spec, api_id, live_permissions.as_ref()).await?;
        }
        let n = ctx.names;
        let arn = format!(
            "arn:{}:lambda:{}:{}:function:{}",
            n.partition, n.region, n.account, self.name
        );
        Ok(Attributes::new(&self.name, Some(arn)))
    }

    async fn delete(&self, ctx: &Ctx<'_>, _: &Observed) -> Result<()> {
        delete(ctx.aws, &self.name).await
    }
}

/// The stage's functions: every function named with its prefix (its tags
/// decide).
pub struct FunctionInventory;

#[async_trait]
impl Inventory for FunctionInventory {
    async fn list(&self, ctx: &Ctx<'_>) -> Result<Vec<Box<dyn Resource>>> {
        let prefix = ctx.names.prefix();
        let prefix = super::iam::search_prefix(&prefix);
        let functions = ctx
            .aws
            .lambda
            .list_functions()
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| error("the stage's functions", "ListFunctions", e))?;
        Ok(functions
            .into_iter()
            .filter_map(|f| f.function_name().map(str::to_string))
            .filter(|name| name.starts_with(prefix))
            .map(|name| {
                Box::new(Function {
                    name,
                    spec: None,
                    needs: Vec::new(),
                    api: None,
                }) as Box<dyn Resource>
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "stepgate-authorizer-gate";
    const DESIRED: &str = "arn:aws:execute-api:us-east-1:1:{api}/authorizers/{authorizer:gate}";

    fn ids() -> BTreeMap<String, String> {
        [("gate".to_string(), "a1b2c3".to_string())].into()
    }

    #[test]
    fn a_permission_names_its_one_authorizer() {
        assert_eq!(
            resolved("f", SID, DESIRED, "api9", &ids()).unwrap(),
            "arn:aws:execute-api:us-east-1:1:api9/authorizers/a1b2c3"
        );
        let none = resolved("f", SID, DESIRED, "api9", &BTreeMap::new());
        assert!(none.unwrap_err().to_string().contains("no authorizer gate"));
    }

    #[test]
    fn only_that_authorizer_reads_back_as_desired() {
        let read = |source: &str| as_desired(SID, source, "api9", &ids());
        assert_eq!(
            read("arn:aws:execute-api:us-east-1:1:api9/authorizers/a1b2c3"),
            DESIRED
        );
        // Wider, or another authorizer's: it differs, and is repaired.
        for other in ["*", "zzz999", "a1b2c3/x"] {
            assert_ne!(
                read(&format!(
                    "arn:aws:execute-api:us-east-1:1:api9/authorizers/{other}"
                )),
                DESIRED
            );
        }
    }
}
