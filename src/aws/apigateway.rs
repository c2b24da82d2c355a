//! The REST API: `/orderprocess` with POST (an AWS-service integration that
//! starts the state machine) and OPTIONS (CORS), and the stage that serves a
//! deployment of it. The only module that uses the API Gateway client.

use anyhow::{Context, Result};
use std::collections::BTreeMap;

use aws_sdk_apigateway::types::{
    EndpointConfiguration, EndpointType, GatewayResponseType, IntegrationType, Op, PatchOperation,
    RestApi as ApiSummary,
};
use serde_json::{json, Value};

use super::{code, error, sorted, Aws};
use async_trait::async_trait;

use crate::desired::api::{
    cloudwatch_role_claim, AccountSpec, ApiSpec, IntegrationResponse, IntegrationSpec,
    MethodResponse, MethodSpec, StageSpec, BODY_VALIDATOR, DEPLOYMENT_PREFIX, ORDER_MODEL,
    PATH_PART, RESOURCE_PATH,
};
use crate::model::{Claim, Kind, Observed, ResourceId, Tags, OWNER_STAGE_TAG};
use crate::plan::{Action, ResourcePlan};
use crate::resource::{spec, Ctx, Known, Resource};

/// Finds the API by name, preferring the one carrying this stack's tags (REST
/// API ids are random and names need not be unique). A same-named API that
/// is not ours is returned too, so that plan can report the conflict.
pub async fn read_api(aws: &Aws, name: &str, owner: &Tags) -> Result<Option<Observed>> {
    let what = format!("rest-api {name}");
    let apis = all_apis(aws, name).await?;
    let (mut ours, others) = same_name(apis, name, owner);
    if ours.len() > 1 {
        // Keep the one whose URL is in use: a stable sort puts the APIs
        // that serve the stage first, oldest first among them.
        let stage = owner.get(OWNER_STAGE_TAG).cloned().unwrap_or_default();
        let mut serving = Vec::new();
        for api in &ours {
            let id = api.id().unwrap_or_default();
            serving.push(read_stage(aws, id, &stage, false).await?.is_some());
        }
        let mut ranked: Vec<_> = ours.into_iter().zip(serving).collect();
        ranked.sort_by_key(|(_, serves)| !serves);
        ours = ranked.into_iter().map(|(api, _)| api).collect();
    }
    let Some(api) = ours.first().or(others.first()) else {
        return Ok(None);
    };
    let id = api.id().unwrap_or_default().to_string();
    let tags: Tags = sorted(api.tags());
    // More than one of ours: a create whose answer was lost and was
    // retried, or two deploys that raced before the lock existed.
    let duplicates: Vec<&str> = ours.iter().skip(1).filter_map(|a| a.id()).collect();

    // Independent reads at once: on AWS each is a round trip of its own.
    let (resources, validators, models, gateway_responses) = tokio::try_join!(
        resources(aws, &what, &id),
        request_validators(aws, &what, &id),
        read_models(aws, &what, &id),
        read_gateway_responses(aws, &what, &id),
    )?;
    let validator_names: BTreeMap<String, String> = validators
        .iter()
        .map(|v| (v.id.clone(), v.name.clone()))
        .collect();
    let mut fields = json!({
        "resource": Value::Null,
        "methods": {},
        "duplicates": duplicates,
        "models": models,
        // Only what stepgate sets: other validators and models are left alone.
        "validators": validators
            .iter()
            .filter(|v| v.name == BODY_VALIDATOR)
            .map(|v| (v.name.clone(), json!({ "validate_body": v.body, "validate_parameters": v.parameters })))
            .collect::<serde_json::Map<_, _>>(),
        "gateway_responses": gateway_responses,
    });
    if let Some(resource) = resources.iter().find(|r| r.path() == Some(RESOURCE_PATH)) {
        fields["resource"] = json!(RESOURCE_PATH);
        let resource_id = resource.id().unwrap_or_default();
        let verbs: Vec<String> = resource
            .resource_methods()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let reads = verbs
            .iter()
            .map(|http| read_method(aws, &what, &id, resource_id, http, &validator_names));
        let mut methods = serde_json::Map::new();
        for (http, method) in verbs
            .iter()
            .zip(futures::future::try_join_all(reads).await?)
        {
            methods.insert(http.clone(), serde_json::to_value(method)?);
        }
        fields["methods"] = Value::Object(methods);
    }
    Ok(Some(Observed {
        fields,
        tags,
        physical_id: id,
    }))
}

/// The APIs named `name`: those carrying the owner tags, oldest first (then
/// by id), and the others. When several carry them, `read_api` keeps the
/// one that serves the stage, else the oldest: the URL in use survives.
fn same_name(
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
async fn owned_apis(aws: &Aws, name: &str, owner: &Tags) -> Result<Vec<ApiSummary>> {
    Ok(same_name(all_apis(aws, name).await?, name, owner).0)
}

/// Every REST API in the account and region (names are not unique).
async fn all_apis(aws: &Aws, name: &str) -> Result<Vec<ApiSummary>> {
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

async fn resources(
    aws: &Aws,
    what: &str,
    api_id: &str,
) -> Result<Vec<aws_sdk_apigateway::types::Resource>> {
    aws.apigateway
        .get_resources()
        .rest_api_id(api_id)
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| error(what, "GetResources", e))
}

async fn read_method(
    aws: &Aws,
    what: &str,
    api_id: &str,
    resource_id: &str,
    http: &str,
    validator_names: &BTreeMap<String, String>,
) -> Result<MethodSpec> {
    let m = aws
        .apigateway
        .get_method()
        .rest_api_id(api_id)
        .resource_id(resource_id)
        .http_method(http)
        .send()
        .await
        .map_err(|e| error(what, &format!("GetMethod {http}"), e))?;
    let responses = m
        .method_responses()
        .map(|r| {
            r.iter()
                .map(|(status, resp)| {
                    let parameters = sorted(resp.response_parameters());
                    let models = sorted(resp.response_models());
                    (status.clone(), MethodResponse { parameters, models })
                })
                .collect()
        })
        .unwrap_or_default();
    let integration = m
        .method_integration()
        .map(|i| IntegrationSpec {
            kind: i
                .r#type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            http_method: i.http_method().map(str::to_string),
            uri: i.uri().map(str::to_string),
            credentials: i.credentials().map(str::to_string),
            passthrough_behavior: i.passthrough_behavior().unwrap_or_default().to_string(),
            request_templates: sorted(i.request_templates()),
            responses: i
                .integration_responses()
                .map(|r| {
                    r.iter()
                        .map(|(status, resp)| {
                            let parameters = sorted(resp.response_parameters());
                            let selection_pattern = resp
                                .selection_pattern()
                                .filter(|p| !p.is_empty())
                                .map(str::to_string);
                            (
                                status.clone(),
                                IntegrationResponse {
                                    selection_pattern,
                                    parameters,
                                },
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .unwrap_or_default();
    Ok(MethodSpec {
        authorization: m.authorization_type().unwrap_or_default().to_string(),
        // An id that names no validator shows as itself.
        request_validator: m.request_validator_id().map(|id| {
            validator_names
                .get(id)
                .cloned()
                .unwrap_or_else(|| format!("id {id}"))
        }),
        request_models: sorted(m.request_models()),
        responses,
        integration,
    })
}

/// A request validator as AWS reports it.
struct Validator {
    id: String,
    name: String,
    body: bool,
    parameters: bool,
}

async fn request_validators(aws: &Aws, what: &str, api_id: &str) -> Result<Vec<Validator>> {
    let out = aws
        .apigateway
        .get_request_validators()
        .rest_api_id(api_id)
        .limit(500)
        .send()
        .await
        .map_err(|e| error(what, "GetRequestValidators", e))?;
    Ok(out
        .items()
        .iter()
        .map(|v| Validator {
            id: v.id().unwrap_or_default().to_string(),
            name: v.name().unwrap_or_default().to_string(),
            body: v.validate_request_body(),
            parameters: v.validate_request_parameters(),
        })
        .collect())
}

/// The order model, if the API has it: content type and schema (parsed, so
/// that formatting does not count as a change).
async fn read_models(aws: &Aws, what: &str, api_id: &str) -> Result<Value> {
    let out = aws
        .apigateway
        .get_models()
        .rest_api_id(api_id)
        .limit(500)
        .send()
        .await
        .map_err(|e| error(what, "GetModels", e))?;
    Ok(Value::Object(
        out.items()
            .iter()
            .filter(|m| m.name() == Some(ORDER_MODEL))
            .map(|m| {
                let schema = m.schema().unwrap_or_default();
                let schema = serde_json::from_str(schema)
                    .unwrap_or_else(|_| Value::String(schema.to_string()));
                (
                    ORDER_MODEL.to_string(),
                    json!({ "content_type": m.content_type(), "schema": schema }),
                )
            })
            .collect(),
    ))
}

/// The gateway responses set on the API (not API Gateway's defaults).
async fn read_gateway_responses(aws: &Aws, what: &str, api_id: &str) -> Result<Value> {
    let out = aws
        .apigateway
        .get_gateway_responses()
        .rest_api_id(api_id)
        .limit(500)
        .send()
        .await
        .map_err(|e| error(what, "GetGatewayResponses", e))?;
    Ok(Value::Object(
        out.items()
            .iter()
            .filter(|r| !r.default_response())
            .map(|r| {
                (
                    r.response_type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    json!({
                        "status_code": r.status_code(),
                        "parameters": sorted(r.response_parameters()),
                        "templates": sorted(r.response_templates()),
                    }),
                )
            })
            .collect(),
    ))
}

/// Puts the order model, the body validator and the gateway responses in
/// place where the plan says they differ (all of them on create). They
/// come before the methods, which name the model and the validator.
async fn apply_api_extras(
    aws: &Aws,
    what: &str,
    id: &str,
    spec: &ApiSpec,
    plan: &ResourcePlan,
    live: Option<&Observed>,
) -> Result<()> {
    let gw = &aws.apigateway;
    let creating = plan.action == Action::Create;
    let live_fields = live.map(|l| l.fields.clone()).unwrap_or(Value::Null);
    if creating || plan.changed("models") {
        for (name, model) in spec.models() {
            let schema = model["schema"].to_string();
            let content_type = model["content_type"].as_str().unwrap_or("application/json");
            let exists = !live_fields["models"][&name].is_null();
            if !exists {
                let created = gw
                    .create_model()
                    .rest_api_id(id)
                    .name(&name)
                    .content_type(content_type)
                    .schema(&schema)
                    .send()
                    .await;
                match created {
                    Ok(_) => continue,
                    // A retry after a lost answer: it exists; update it below.
                    Err(e) if code(&e) == Some("ConflictException") => {}
                    Err(e) => return Err(error(what, &format!("CreateModel {name}"), e)),
                }
            }
            gw.update_model()
                .rest_api_id(id)
                .model_name(&name)
                .patch_operations(patch(Op::Replace, "/schema", Some(schema)))
                .send()
                .await
                .map_err(|e| error(what, &format!("UpdateModel {name}"), e))?;
        }
    }
    if creating || plan.changed("validators") {
        let existing = request_validators(aws, what, id).await?;
        for (name, v) in crate::desired::api::validators() {
            let flag = |key: &str| v[key].as_bool().unwrap_or(false);
            match existing.iter().find(|e| e.name == name) {
                Some(found) => {
                    gw.update_request_validator()
                        .rest_api_id(id)
                        .request_validator_id(&found.id)
                        .patch_operations(patch(
                            Op::Replace,
                            "/validateRequestBody",
                            Some(flag("validate_body").to_string()),
                        ))
                        .patch_operations(patch(
                            Op::Replace,
                            "/validateRequestParameters",
                            Some(flag("validate_parameters").to_string()),
                        ))
                        .send()
                        .await
                        .map_err(|e| error(what, &format!("UpdateRequestValidator {name}"), e))?;
                }
                None => {
                    gw.create_request_validator()
                        .rest_api_id(id)
                        .name(&name)
                        .validate_request_body(flag("validate_body"))
                        .validate_request_parameters(flag("validate_parameters"))
                        .send()
                        .await
                        .map_err(|e| error(what, &format!("CreateRequestValidator {name}"), e))?;
                }
            }
        }
    }
    if creating || plan.changed("gateway_responses") {
        let desired = crate::desired::api::gateway_responses();
        for (kind, r) in &desired {
            let strings = |key: &str| -> std::collections::HashMap<String, String> {
                r[key]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            // PutGatewayResponse replaces the whole response: safe to repeat.
            gw.put_gateway_response()
                .rest_api_id(id)
                .response_type(GatewayResponseType::from(kind.as_str()))
                .status_code(r["status_code"].as_str().unwrap_or("400"))
                .set_response_parameters(Some(strings("parameters")))
                .set_response_templates(Some(strings("templates")))
                .send()
                .await
                .map_err(|e| error(what, &format!("PutGatewayResponse {kind}"), e))?;
        }
        // Responses set out of band go back to API Gateway's defaults.
        if let Some(extra) = live_fields["gateway_responses"].as_object() {
            for kind in extra.keys().filter(|k| !desired.contains_key(*k)) {
                gw.delete_gateway_response()
                    .rest_api_id(id)
                    .response_type(GatewayResponseType::from(kind.as_str()))
                    .send()
                    .await
                    .map_err(|e| error(what, &format!("DeleteGatewayResponse {kind}"), e))?;
            }
        }
    }
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
    let creating = plan.action == Action::Create;
    let methods_changed = plan
        .changes
        .iter()
        .any(|c| c.top() == "methods" || c.top() == "resource");
    if !creating && !methods_changed {
        return Ok(id);
    }

    let all = resources(aws, &what, &id).await?;
    let root = all
        .iter()
        .find(|r| r.path() == Some("/"))
        .and_then(|r| r.id())
        .context("the API has no root resource")?;
    let find = |all: &[aws_sdk_apigateway::types::Resource]| {
        all.iter()
            .find(|r| r.path() == Some(RESOURCE_PATH))
            .and_then(|r| r.id())
            .map(str::to_string)
    };
    let resource_id = match find(&all) {
        Some(existing) => existing,
        None => match aws
            .apigateway
            .create_resource()
            .rest_api_id(&id)
            .parent_id(root)
            .path_part(PATH_PART)
            .send()
            .await
        {
            Ok(out) => out.id.context("CreateResource returned no id")?,
            // A retry after a lost answer: the first attempt made it.
            Err(e) if code(&e) == Some("ConflictException") => {
                find(&resources(aws, &what, &id).await?)
                    .ok_or_else(|| error(&what, "CreateResource", e))?
            }
            Err(e) => return Err(error(&what, "CreateResource", e)),
        },
    };
    let live_methods = live
        .map(|l| l.fields["methods"].clone())
        .unwrap_or(Value::Null);
    let validator_ids: BTreeMap<String, String> = request_validators(aws, &what, &id)
        .await?
        .into_iter()
        .map(|v| (v.name, v.id))
        .collect();
    for (http, method) in spec.methods() {
        // A change at the method, inside it, or above it ("methods" when
        // every method is missing) means the method is put back.
        let path = format!("methods.{http}");
        let differs = creating
            || plan.changes.iter().any(|c| {
                c.field == path
                    || c.field.starts_with(&format!("{path}."))
                    || path.starts_with(&format!("{}.", c.field))
                    || c.field == "resource"
            });
        if !differs {
            continue;
        }
        if !live_methods[&http].is_null() {
            aws.apigateway
                .delete_method()
                .rest_api_id(&id)
                .resource_id(&resource_id)
                .http_method(&http)
                .send()
                .await
                .map_err(|e| error(&what, &format!("DeleteMethod {http}"), e))?;
        }
        put_method(
            aws,
            &what,
            &id,
            &resource_id,
            &http,
            &method,
            &validator_ids,
        )
        .await?;
    }
    // Methods stepgate does not define (added out of band) are drift too.
    if let Some(extra) = live_methods.as_object() {
        for http in extra.keys().filter(|h| !spec.methods().contains_key(*h)) {
            aws.apigateway
                .delete_method()
                .rest_api_id(&id)
                .resource_id(&resource_id)
                .http_method(http)
                .send()
                .await
                .map_err(|e| error(&what, &format!("DeleteMethod {http}"), e))?;
        }
    }
    Ok(id)
}

async fn put_method(
    aws: &Aws,
    what: &str,
    api: &str,
    resource: &str,
    http: &str,
    m: &MethodSpec,
    validator_ids: &BTreeMap<String, String>,
) -> Result<()> {
    let gw = &aws.apigateway;
    let validator = match &m.request_validator {
        Some(name) => Some(
            validator_ids
                .get(name)
                .cloned()
                .with_context(|| format!("{what}: no request validator {name}"))?,
        ),
        None => None,
    };
    // The method was deleted (or absent) before this, so a conflict means
    // the SDK retried a put whose answer was lost: it is in place.
    let put = gw
        .put_method()
        .rest_api_id(api)
        .resource_id(resource)
        .http_method(http)
        .authorization_type(&m.authorization)
        .set_request_validator_id(validator)
        .set_request_models(Some(m.request_models.clone().into_iter().collect()))
        .send()
        .await;
    tolerate_conflict(put, what, &format!("PutMethod {http}"))?;
    for (status, resp) in &m.responses {
        let put = gw
            .put_method_response()
            .rest_api_id(api)
            .resource_id(resource)
            .http_method(http)
            .status_code(status)
            .set_response_parameters(Some(resp.parameters.clone().into_iter().collect()))
            .set_response_models(Some(resp.models.clone().into_iter().collect()))
            .send()
            .await;
        tolerate_conflict(put, what, &format!("PutMethodResponse {http} {status}"))?;
    }
    let i = &m.integration;
    gw.put_integration()
        .rest_api_id(api)
        .resource_id(resource)
        .http_method(http)
        .r#type(IntegrationType::from(i.kind.as_str()))
        .set_integration_http_method(i.http_method.clone())
        .set_uri(i.uri.clone())
        .set_credentials(i.credentials.clone())
        .passthrough_behavior(&i.passthrough_behavior)
        .set_request_templates(Some(i.request_templates.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|e| error(what, &format!("PutIntegration {http}"), e))?;
    for (status, resp) in &i.responses {
        gw.put_integration_response()
            .rest_api_id(api)
            .resource_id(resource)
            .http_method(http)
            .status_code(status)
            .set_selection_pattern(resp.selection_pattern.clone())
            .set_response_parameters(Some(resp.parameters.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| error(what, &format!("PutIntegrationResponse {http} {status}"), e))?;
    }
    Ok(())
}

/// The put's outcome, with a ConflictException ("already exists") taken
/// as success.
fn tolerate_conflict<T, E>(
    result: Result<T, aws_sdk_apigateway::error::SdkError<E>>,
    what: &str,
    operation: &str,
) -> Result<()>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    match result {
        Err(e) if code(&e) != Some("ConflictException") => Err(error(what, operation, e)),
        _ => Ok(()),
    }
}

/// Creates the API and returns its id. CreateRestApi is not idempotent and
/// API names are not unique, so an SDK retry after a lost answer would make
/// a second API. The SDK does not retry it; this does, after first looking
/// for an API the lost attempt may have made.
async fn create_api(aws: &Aws, spec: &ApiSpec, tags: &Tags) -> Result<String> {
    use aws_sdk_apigateway::error::SdkError;
    let what = format!("rest-api {}", spec.name);
    let mut attempt = 1;
    loop {
        let result = aws
            .apigateway
            .create_rest_api()
            .name(&spec.name)
            .description("Order processing API, managed by stepgate")
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
        if !(throttled || unknown_outcome) || attempt >= super::retry::SDK_MAX_ATTEMPTS {
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
        tokio::time::sleep(hint.unwrap_or_else(|| super::retry::backoff(attempt))).await;
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

fn patch(op: Op, path: &str, value: Option<String>) -> PatchOperation {
    PatchOperation::builder()
        .op(op)
        .path(path)
        .set_value(value)
        .build()
}

/// Where clients POST orders. With an endpoint override (an emulator) the
/// URL takes LocalStack's path form, since there is no per-API hostname.
pub fn invoke_url(api_id: &str, region: &str, stage: &str, endpoint_url: Option<&str>) -> String {
    match endpoint_url {
        Some(endpoint) => format!(
            "{}/restapis/{api_id}/{stage}/_user_request_/{PATH_PART}",
            crate::reach::strip_userinfo(endpoint).trim_end_matches('/')
        ),
        None => {
            let domain = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("https://{api_id}.execute-api.{region}.{domain}/{stage}/{PATH_PART}")
        }
    }
}

pub const API_KIND: Kind = Kind("rest-api");
pub const STAGE_KIND: Kind = Kind("stage");

/// The REST API, found by name and owner tags (its id is AWS's choice).
pub struct RestApi {
    pub name: String,
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
        read_api(ctx.aws, &self.name, &ctx.names.owner_tags()).await
    }

    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        plan: &ResourcePlan,
        live: Option<&Observed>,
        _: &Known,
    ) -> Result<String> {
        apply_api(ctx.aws, spec(&self.spec, &self.id())?, ctx.tags, plan, live).await
    }

    async fn delete(&self, ctx: &Ctx<'_>, live: &Observed) -> Result<()> {
        // Duplicates (see read_api) go with it.
        for duplicate in duplicates(live) {
            delete_api(ctx.aws, &self.name, &duplicate).await?;
        }
        delete_api(ctx.aws, &self.name, &live.physical_id).await
    }
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

    /// Only a stage of our own API is ours to read (and later to change).
    async fn read(&self, ctx: &Ctx<'_>, api: Option<&Observed>) -> Result<Option<Observed>> {
        match api.filter(|a| a.owned_by(&ctx.names.stack, &ctx.names.stage)) {
            Some(api) => {
                let throttling = self.spec.as_ref().is_some_and(|s| s.throttling.is_some());
                read_stage(ctx.aws, &api.physical_id, &self.name, throttling).await
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
    ) -> Result<String> {
        let api = known
            .get(&self.api)
            .ok_or_else(|| anyhow::anyhow!("stage {}: the REST API does not exist", self.name))?;
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
        Ok(self.name.clone())
    }

    /// The stage goes with its API.
    async fn delete(&self, _: &Ctx<'_>, _: &Observed) -> Result<()> {
        Ok(())
    }
}

/// API Gateway's answer to UpdateAccount naming a role it cannot use yet:
/// for seconds after the role is created or given its policy (IAM
/// propagation) it says one of these (tests/faults/README.md has sources).
fn cloudwatch_role_not_ready<E>(e: &aws_sdk_apigateway::error::SdkError<E>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = super::describe(e);
    code(e) == Some("BadRequestException")
        && (message.contains("The role ARN does not have required permissions")
            || message.contains(
                "API Gateway could not successfully write to CloudWatch Logs using the ARN specified",
            ))
}

/// The region's CloudWatch role setting, as `apigateway-account` reports it.
async fn read_account(aws: &Aws, region: &str) -> Result<Observed> {
    let out = aws
        .apigateway
        .get_account()
        .send()
        .await
        .map_err(|e| error(&format!("apigateway-account {region}"), "GetAccount", e))?;
    let arn = out.cloudwatch_role_arn().filter(|a| !a.is_empty());
    Ok(Observed {
        fields: json!({ "cloudwatch_role_arn": arn }),
        tags: Tags::new(),
        physical_id: arn.unwrap_or_default().to_string(),
    })
}

pub const ACCOUNT_KIND: Kind = Kind("apigateway-account");

/// The region's API Gateway account setting `cloudwatchRoleArn`: the role
/// through which API Gateway writes every API's logs in the region. Shared
/// by every API there, so stepgate sets it only when it is empty or already
/// names stepgate's shared role, uses anyone else's as it is (and says so),
/// and never clears it.
pub struct Account {
    pub region: String,
    pub spec: Option<AccountSpec>,
    /// stepgate's shared role, which the setting names when it is ours.
    pub cloudwatch_role_arn: String,
    pub needs: Vec<ResourceId>,
}

#[async_trait]
impl Resource for Account {
    fn id(&self) -> ResourceId {
        ResourceId::new(ACCOUNT_KIND, &self.region)
    }

    fn needs(&self) -> Vec<ResourceId> {
        self.needs.clone()
    }

    /// A setting carries no tags.
    fn tags(&self, _: &Tags) -> Tags {
        Tags::new()
    }

    fn claim(&self, live: &Observed, _: &Tags) -> Claim {
        cloudwatch_role_claim(
            live.fields["cloudwatch_role_arn"].as_str(),
            &self.cloudwatch_role_arn,
        )
    }

    fn kept_on_destroy(&self) -> Option<&'static str> {
        Some("every API in the region uses this setting; stepgate never clears it")
    }

    fn desired(&self) -> Option<Value> {
        self.spec.as_ref().map(AccountSpec::fields)
    }

    async fn read(&self, ctx: &Ctx<'_>, _: Option<&Observed>) -> Result<Option<Observed>> {
        read_account(ctx.aws, &self.region).await.map(Some)
    }

    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        _: &ResourcePlan,
        _: Option<&Observed>,
        _: &Known,
    ) -> Result<String> {
        let spec = spec(&self.spec, &self.id())?;
        let what = format!("apigateway-account {}", self.region);
        // Someone may have set a role since it was read: theirs stays.
        let now = read_account(ctx.aws, &self.region).await?;
        if let Claim::UsedAsIs(_) = self.claim(&now, &Tags::new()) {
            return Ok(now.physical_id);
        }
        if now.physical_id == spec.cloudwatch_role_arn {
            return Ok(now.physical_id);
        }
        // A role created seconds ago is refused until IAM has propagated.
        // Two deploys setting it at once may get 429, which the SDK retries.
        super::retry::until_consistent(cloudwatch_role_not_ready, || {
            ctx.aws
                .apigateway
                .update_account()
                .patch_operations(patch(
                    Op::Replace,
                    "/cloudwatchRoleArn",
                    Some(spec.cloudwatch_role_arn.clone()),
                ))
                .send()
        })
        .await
        .map_err(|e| error(&what, "UpdateAccount", e))?;
        Ok(spec.cloudwatch_role_arn.clone())
    }

    /// Never cleared: other APIs in the region log through it.
    async fn delete(&self, _: &Ctx<'_>, _: &Observed) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_urls_for_aws_and_an_emulator() {
        assert_eq!(
            invoke_url("abc", "us-east-1", "dev", None),
            "https://abc.execute-api.us-east-1.amazonaws.com/dev/orderprocess"
        );
        assert_eq!(
            invoke_url("abc", "us-east-1", "dev", Some("http://127.0.0.1:4566/")),
            "http://127.0.0.1:4566/restapis/abc/dev/_user_request_/orderprocess"
        );
    }
}
