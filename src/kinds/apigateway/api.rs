//! The REST API itself: found by name and owner tags, created safely
//! (CreateRestApi is not idempotent), repaired, deleted with its
//! duplicates; and the inventory of the stage's APIs.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde_json::{json, Value};

use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType, RestApi as ApiSummary};

use super::authorizers::{apply_authorizers, by_name, delete_extra_authorizers, read_authorizers};
use super::extras::{apply_api_extras, read_gateway_responses, read_models, request_validators};
use super::methods::{apply_resources, read_method};
use super::stage::{read_stage, Stage};
use super::{api_arn, resources, API_KIND};
use crate::aws::{code, error, sorted, Aws};
use crate::desired::api::ApiSpec;
use crate::model::{Observed, ResourceId, Tags, OWNER_STAGE_TAG};
use crate::plan::{Action, ResourcePlan};
use crate::resource::{spec, Attributes, Ctx, Inventory, Known, Resource};

/// Finds the API by name, preferring the one carrying this stack's tags (REST
/// API ids are random and names need not be unique). A same-named API that
/// is not ours is returned too, so that plan can report the conflict.
///
/// With `id` (`[api] id`), the API of that id whatever its name: how a
/// project addresses an API built by hand.
pub async fn read_api(
    aws: &Aws,
    name: &str,
    id: Option<&str>,
    owner: &Tags,
) -> Result<Option<Observed>> {
    let what = format!("rest-api {name}");
    let mut apis = all_apis(aws, name).await?;
    let mut name = name;
    let id_given = id.is_some();
    if let Some(id) = id {
        apis.retain(|a| a.id() == Some(id));
        let Some(own) = apis.first().and_then(|a| a.name()) else {
            return Ok(None);
        };
        name = own;
    }
    let name = name.to_string();
    let name = name.as_str();
    let (mut ours, others) = same_name(apis, name, owner);
    if ours.len() > 1 {
        // Keep the one whose URL is in use: a stable sort puts the APIs
        // that serve the stage first, oldest first among them.
        let stage = owner.get(OWNER_STAGE_TAG).cloned().unwrap_or_default();
        let mut serving = Vec::new();
        for api in &ours {
            let id = api.id().unwrap_or_default();
            serving.push(read_stage(aws, id, &stage, false, &[]).await?.is_some());
        }
        let mut ranked: Vec<_> = ours.into_iter().zip(serving).collect();
        ranked.sort_by_key(|(_, serves)| !serves);
        ours = ranked.into_iter().map(|(api, _)| api).collect();
    }
    let Some(api) = ours.first().or(others.first()) else {
        return Ok(None);
    };
    let id = api.id().unwrap_or_default().to_string();
    let mut tags: Tags = sorted(api.tags());
    if id_given {
        // An API built by hand is tagged after the fact: its tags as the
        // tagging API holds them (the emulator's GetRestApis does not show
        // tags added by TagResource; AWS's does).
        tags = super::tags_of(aws, &what, &api_arn(aws, &id)).await?;
    }
    // More than one of ours: a create whose answer was lost and was
    // retried, or two deploys that raced before the lock existed.
    let duplicates: Vec<&str> = ours.iter().skip(1).filter_map(|a| a.id()).collect();

    // Independent reads at once: on AWS each is a round trip of its own.
    let (resources, validators, models, gateway_responses, authorizers) = tokio::try_join!(
        resources(aws, &what, &id),
        request_validators(aws, &what, &id),
        read_models(aws, &what, &id),
        read_gateway_responses(aws, &what, &id),
        read_authorizers(aws, &what, &id),
    )?;
    let authorizer_names: BTreeMap<String, String> = authorizers
        .iter()
        .map(|a| (a.id.clone(), a.name.clone()))
        .collect();
    let validator_names: BTreeMap<String, String> = validators
        .iter()
        .map(|v| (v.id.clone(), v.name.clone()))
        .collect();
    let mut fields = json!({
        "resources": {},
        "duplicates": duplicates,
        "models": models,
        // Only what stepgate sets (`NAME-body`): other validators are left alone.
        "validators": validators
            .iter()
            .filter(|v| v.name.ends_with("-body"))
            .map(|v| (v.name.clone(), json!({ "validate_body": v.body, "validate_parameters": v.parameters })))
            .collect::<serde_json::Map<_, _>>(),
        "gateway_responses": gateway_responses,
        "authorizers": by_name(&authorizers),
        "policy": api.policy().and_then(|p| resource_policy(p, &id)),
    });
    // Every path with methods, each method read at once.
    let mut reads = Vec::new();
    for resource in &resources {
        let (Some(path), Some(resource_id)) = (resource.path(), resource.id()) else {
            continue;
        };
        for http in resource
            .resource_methods()
            .into_iter()
            .flat_map(|m| m.keys())
        {
            let what = &what;
            let validator_names = &validator_names;
            let authorizer_names = &authorizer_names;
            let id = &id;
            reads.push(async move {
                let method = read_method(
                    aws,
                    what,
                    id,
                    resource_id,
                    http,
                    validator_names,
                    authorizer_names,
                )
                .await?;
                Ok::<_, anyhow::Error>((path.to_string(), http.clone(), method))
            });
        }
    }
    let mut paths = serde_json::Map::new();
    for (path, http, method) in futures::future::try_join_all(reads).await? {
        let methods = paths
            .entry(path)
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        methods[&http] = serde_json::to_value(method)?;
    }
    fields["resources"] = Value::Object(paths);
    Ok(Some(Observed {
        fields,
        tags,
        physical_id: id,
    }))
}

/// The resource policy as AWS holds it, in the shape desired: AWS may
/// return the document with its quotes escaped, and writes the API's own
/// ARN where stepgate wrote `execute-api:/`.
fn resource_policy(text: &str, api_id: &str) -> Option<Value> {
    if text.trim().is_empty() {
        return None;
    }
    let doc: Value = serde_json::from_str(text)
        .or_else(|_| serde_json::from_str(&text.replace("\\\"", "\"")))
        .unwrap_or_else(|_| Value::String(text.to_string()));
    let mut doc = doc;
    if let Some(statements) = doc["Statement"].as_array_mut() {
        for statement in statements {
            if let Some(resource) = statement["Resource"].as_str() {
                let own = format!("{api_id}/");
                if let Some(at) = resource.find(&own).filter(|_| resource.starts_with("arn:")) {
                    statement["Resource"] =
                        Value::String(format!("execute-api:/{}", &resource[at + own.len()..]));
                }
            }
        }
    }
    Some(doc)
}

/// The APIs named `name`: those carrying the owner tags, oldest first (then
/// by id), and the others. When several carry them, `read_api` keeps the
/// one that serves the stage, else the oldest: the URL in use survives.
pub(super) fn same_name(
    apis: Vec<ApiSummary>,
    name: &str,
    owner: &Tags,
) -> (Vec<ApiSummary>, Vec<ApiSummary>) {
    let (mut ours, others): (Vec<_>, Vec<_>) = apis
        .into_iter()
        .filter(|a| a.name() == Some(name))
        .partition(|a| {
            owner
                .iter()
                .all(|(k, v)| a.tags().and_then(|t| t.get(k)) == Some(v))
        });
    ours.sort_by_key(|a| {
        (
            a.created_date().map(|d| (d.secs(), d.subsec_nanos())),
            a.id().unwrap_or_default().to_string(),
        )
    });
    (ours, others)
}

/// Every API named `name` that carries the owner tags, oldest first.
pub(super) async fn owned_apis(aws: &Aws, name: &str, owner: &Tags) -> Result<Vec<ApiSummary>> {
    Ok(same_name(all_apis(aws, name).await?, name, owner).0)
}

/// Every REST API in the account and region (names are not unique).
pub(super) async fn all_apis(aws: &Aws, name: &str) -> Result<Vec<ApiSummary>> {
    aws.apigateway
        .get_rest_apis()
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| error(&format!("rest-api {name}"), "GetRestApis", e))
}

/// The ids of the stage's duplicate APIs, as `read_api` observed them.
pub fn duplicates(live: &Observed) -> Vec<String> {
    live.fields["duplicates"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Creates the API and returns its id. CreateRestApi is not idempotent and
/// API names are not unique, so an SDK retry after a lost answer would make
/// a second API. The SDK does not retry it; this does, after first looking
/// for an API the lost attempt may have made.
pub(super) async fn create_api(aws: &Aws, spec: &ApiSpec, tags: &Tags) -> Result<String> {
    use aws_sdk_apigateway::error::SdkError;
    let what = format!("rest-api {}", spec.name);
    let mut attempt = 1;
    loop {
        let result = aws
            .apigateway
            .create_rest_api()
            .name(&spec.name)
            .description("Managed by stepgate")
            .endpoint_configuration(
                EndpointConfiguration::builder()
                    .types(EndpointType::Regional)
                    .build(),
            )
            .set_tags(Some(tags.clone().into_iter().collect()))
            .customize()
            .config_override(
                aws_sdk_apigateway::config::Builder::default()
                    .retry_config(aws_smithy_types::retry::RetryConfig::disabled()),
            )
            .send()
            .await;
        let e = match result {
            Ok(out) => return out.id.context("CreateRestApi returned no id"),
            Err(e) => e,
        };
        // Refused before anything happened (a 4xx other than throttling)
        // is final; anything else may or may not have created the API.
        let throttled = code(&e) == Some("TooManyRequestsException");
        let unknown_outcome = match &e {
            SdkError::ServiceError(s) => s.raw().status().is_server_error(),
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => true,
            SdkError::ResponseError(_) => true,
            _ => false,
        };
        if !(throttled || unknown_outcome) || attempt >= crate::aws::retry::SDK_MAX_ATTEMPTS {
            return Err(error(&what, "CreateRestApi", e));
        }
        if unknown_outcome {
            if let Some(made) = owned_apis(aws, &spec.name, tags).await?.first() {
                return Ok(made.id().unwrap_or_default().to_string());
            }
        }
        let hint = e
            .raw_response()
            .and_then(|r| r.headers().get("retry-after"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(std::time::Duration::from_secs);
        tokio::time::sleep(hint.unwrap_or_else(|| crate::aws::retry::backoff(attempt))).await;
        attempt += 1;
    }
}

/// Deletes one API by id; gone already is fine. DeleteRestApi is limited
/// to one call every 30 s per account on AWS: the SDK's retries wait as
/// API Gateway's Retry-After says.
pub async fn delete_api(aws: &Aws, name: &str, id: &str) -> Result<()> {
    match aws
        .apigateway
        .delete_rest_api()
        .rest_api_id(id)
        .send()
        .await
    {
        Err(e) if code(&e) != Some("NotFoundException") => {
            Err(error(&format!("rest-api {name}"), "DeleteRestApi", e))
        }
        _ => Ok(()),
    }
}

/// The REST API, found by name and owner tags (its id is AWS's choice).
pub struct RestApi {
    pub name: String,
    /// `[api] id`: the API of that id, which stepgate never creates.
    pub id: Option<String>,
    pub spec: Option<ApiSpec>,
    /// Its role. Not the state machine: the integration names its ARN,
    /// which is known before the machine exists.
    pub needs: Vec<ResourceId>,
}

#[async_trait]
impl Resource for RestApi {
    fn id(&self) -> ResourceId {
        ResourceId::new(API_KIND, &self.name)
    }

    fn needs(&self) -> Vec<ResourceId> {
        self.needs.clone()
    }

    fn desired(&self) -> Option<Value> {
        self.spec.as_ref().map(ApiSpec::fields)
    }

    async fn read(&self, ctx: &Ctx<'_>, _: Option<&Observed>) -> Result<Option<Observed>> {
        read_api(
            ctx.aws,
            &self.name,
            self.id.as_deref(),
            &ctx.names.owner_tags(),
        )
        .await
    }

    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        plan: &ResourcePlan,
        live: Option<&Observed>,
        _: &Known,
    ) -> Result<Attributes> {
        if let (Some(id), Action::Create) = (&self.id, plan.action) {
            anyhow::bail!("rest-api {}: [api] id = {id:?} names no REST API in account {} {}; remove id to create a new API, or give the id of an existing one", self.name, ctx.names.account, ctx.names.region);
        }
        let id = apply_api(ctx.aws, spec(&self.spec, &self.id())?, ctx.tags, plan, live).await?;
        let n = ctx.names;
        let arn = format!(
            "arn:{}:apigateway:{}::/restapis/{id}",
            n.partition, n.region
        );
        Ok(Attributes::new(id, Some(arn)))
    }

    async fn delete(&self, ctx: &Ctx<'_>, live: &Observed) -> Result<()> {
        // Duplicates (see read_api) go with it.
        for duplicate in duplicates(live) {
            delete_api(ctx.aws, &self.name, &duplicate).await?;
        }
        delete_api(ctx.aws, &self.name, &live.physical_id).await
    }
}

/// The stage's REST APIs: every API carrying its owner tags (REST API ids
/// are random and names free, so tags are how they are found). The first
/// comes with the stage and its execution log group, which go with it.
pub struct ApiInventory;

#[async_trait]
impl Inventory for ApiInventory {
    async fn list(&self, ctx: &Ctx<'_>) -> Result<Vec<Box<dyn Resource>>> {
        let names = ctx.names;
        let owner = names.owner_tags();
        let apis = aws_all_apis(ctx.aws).await?;
        // The API `[api] id` names is read by its id, as declared.
        let adopted = names.overrides.api_id.as_deref();
        let adopted_name = apis
            .iter()
            .find(|a| a.id().is_some() && a.id() == adopted)
            .and_then(|a| a.name())
            .map(str::to_string);
        let mut found: Vec<String> = apis
            .into_iter()
            .filter(|a| {
                owner
                    .iter()
                    .all(|(k, v)| a.tags().and_then(|t| t.get(k)) == Some(v))
            })
            .filter_map(|a| a.name().map(str::to_string))
            .collect();
        found.sort();
        found.dedup();
        let mut out: Vec<Box<dyn Resource>> = Vec::new();
        for (i, name) in found.into_iter().enumerate() {
            let api = ResourceId::new(API_KIND, &name);
            if i == 0 {
                out.push(Box::new(Stage {
                    name: names.stage.clone(),
                    spec: None,
                    api: api.clone(),
                    needs: Vec::new(),
                    live: Vec::new(),
                }));
                out.push(Box::new(crate::kinds::logs::ExecutionLogGroup {
                    stage: names.stage.clone(),
                    api: api.clone(),
                    spec: None,
                }));
            }
            out.push(Box::new(RestApi {
                id: (Some(&name) == adopted_name.as_ref())
                    .then(|| adopted.map(str::to_string))
                    .flatten(),
                name,
                spec: None,
                needs: Vec::new(),
            }));
        }
        Ok(out)
    }
}

pub(super) async fn aws_all_apis(aws: &Aws) -> Result<Vec<ApiSummary>> {
    all_apis(aws, "of the stage").await
}

/// Sets the resource policy, or clears it when `[api]` restricts no caller.
async fn apply_policy(aws: &Aws, what: &str, id: &str, spec: &ApiSpec) -> Result<()> {
    let value = spec
        .policy
        .as_ref()
        .map(Value::to_string)
        .unwrap_or_default();
    aws.apigateway
        .update_rest_api()
        .rest_api_id(id)
        .patch_operations(super::patch(
            aws_sdk_apigateway::types::Op::Replace,
            "/policy",
            Some(value),
        ))
        .send()
        .await
        .map_err(|e| error(what, "UpdateRestApi /policy", e))?;
    Ok(())
}

/// Creates or repairs the API; returns its id. A method that differs in any
/// way is deleted and put back whole: API Gateway has no single call that
/// replaces a method with its responses and integration.
pub async fn apply_api(
    aws: &Aws,
    spec: &ApiSpec,
    tags: &Tags,
    plan: &ResourcePlan,
    live: Option<&Observed>,
) -> Result<String> {
    let what = format!("rest-api {}", spec.name);
    let id = match (plan.action, live) {
        (Action::Create, _) | (_, None) => create_api(aws, spec, tags).await?,
        (_, Some(live)) => live.physical_id.clone(),
    };
    if plan.changed("duplicates") {
        for duplicate in live.map(duplicates).unwrap_or_default() {
            delete_api(aws, &spec.name, &duplicate).await?;
        }
    }
    if plan.action == Action::Update && plan.changed("tags") {
        aws.apigateway
            .tag_resource()
            .resource_arn(format!(
                "arn:{}:apigateway:{}::/restapis/{id}",
                spec.partition, spec.region
            ))
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| error(&what, "TagResource", e))?;
    }
    apply_api_extras(aws, &what, &id, spec, plan, live).await?;
    // A new API has no policy to clear.
    let create_with_policy = plan.action == Action::Create && spec.policy.is_some();
    if create_with_policy || (plan.action != Action::Create && plan.changed("policy")) {
        apply_policy(aws, &what, &id, spec).await?;
    }
    let authorizer_ids = apply_authorizers(aws, &what, &id, spec, plan).await?;
    let creating = plan.action == Action::Create;
    if creating || plan.changed("resources") {
        apply_resources(aws, &what, &id, spec, plan, live, &authorizer_ids).await?;
    }
    if plan.changed("authorizers") {
        delete_extra_authorizers(aws, &what, &id, spec, live).await?;
    }
    // Models no route uses any more go once no method names them.
    if plan.changed("models") {
        if let Some(live_models) = live.and_then(|l| l.fields["models"].as_object()) {
            for name in live_models.keys().filter(|m| !spec.models.contains_key(*m)) {
                match aws
                    .apigateway
                    .delete_model()
                    .rest_api_id(&id)
                    .model_name(name)
                    .send()
                    .await
                {
                    Err(e) if code(&e) != Some("NotFoundException") => {
                        return Err(error(&what, &format!("DeleteModel {name}"), e))
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(id)
}
