//! The API's paths and their methods: read back in the shape desired, and
//! put in place where they differ (a method is replaced whole), with the
//! resources of every path created parents first.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::Value;

use aws_sdk_apigateway::types::IntegrationType;

use super::extras::request_validators;
use super::{resources, tolerate_conflict};
use crate::aws::{code, error, sorted, Aws};
use crate::desired::api::{
    ApiSpec, IntegrationResponse, IntegrationSpec, MethodResponse, MethodSpec,
};
use crate::model::Observed;
use crate::plan::{Action, ResourcePlan};

pub(super) async fn read_method(
    aws: &Aws,
    what: &str,
    api_id: &str,
    resource_id: &str,
    http: &str,
    validator_names: &BTreeMap<String, String>,
    authorizer_names: &BTreeMap<String, String>,
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
                                    templates: sorted(resp.response_templates()),
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
        // An id that names no authorizer shows as itself.
        authorizer: m.authorizer_id().filter(|id| !id.is_empty()).map(|id| {
            authorizer_names
                .get(id)
                .cloned()
                .unwrap_or_else(|| format!("id {id}"))
        }),
        api_key_required: m.api_key_required().unwrap_or(false),
        authorization_scopes: m.authorization_scopes().to_vec(),
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

/// Puts each path's methods in place where the plan says they differ: the
/// path's resources first (parents before children), then every method
/// that differs, deleted and put back whole (API Gateway has no single call
/// that replaces a method with its responses and integration). Methods and
/// paths stepgate does not define are drift, and go.
pub(super) async fn apply_resources(
    aws: &Aws,
    what: &str,
    id: &str,
    spec: &ApiSpec,
    plan: &ResourcePlan,
    live: Option<&Observed>,
    authorizer_ids: &BTreeMap<String, String>,
) -> Result<()> {
    let creating = plan.action == Action::Create;
    let desired = spec.resources();
    let ids = MethodIds {
        validators: request_validators(aws, what, id)
            .await?
            .into_iter()
            .map(|v| (v.name, v.id))
            .collect(),
        authorizers: authorizer_ids.clone(),
    };
    let mut by_path: BTreeMap<String, String> = resources(aws, what, id)
        .await?
        .into_iter()
        .filter_map(|r| Some((r.path()?.to_string(), r.id()?.to_string())))
        .collect();
    let live_paths = live
        .map(|l| l.fields["resources"].clone())
        .unwrap_or(Value::Null);
    for (path, methods) in &desired {
        let resource_id = ensure_path(aws, what, id, path, &mut by_path).await?;
        for (http, method) in methods {
            // A change at the method, inside it, or above it ("resources"
            // or the path when all are missing) means it is put back.
            let at = format!("resources.{path}.{http}");
            let differs = creating
                || plan.changes.iter().any(|c| {
                    c.field == at
                        || c.field.starts_with(&format!("{at}."))
                        || at.starts_with(&format!("{}.", c.field))
                });
            if !differs {
                continue;
            }
            if !live_paths[path][http].is_null() {
                delete_method(aws, what, id, &resource_id, http).await?;
            }
            put_method(aws, what, id, &resource_id, http, method, &ids).await?;
        }
        // Methods stepgate does not define on this path (out of band).
        if let Some(extra) = live_paths[path].as_object() {
            for http in extra.keys().filter(|h| !methods.contains_key(*h)) {
                delete_method(aws, what, id, &resource_id, http).await?;
            }
        }
    }
    // Paths no route has any more: the deepest resource that holds no
    // declared path goes, with what is under it.
    if let Some(extra) = live_paths.as_object() {
        for path in extra.keys().filter(|p| !desired.contains_key(*p)) {
            let keeps = |p: &str| {
                desired
                    .keys()
                    .any(|d| d == p || d.starts_with(&format!("{p}/")))
            };
            let mut top = path.as_str();
            while let Some((parent, _)) = top.rsplit_once('/') {
                if parent.is_empty() || keeps(parent) {
                    break;
                }
                top = parent;
            }
            if keeps(top) {
                // Another route lives below: only the methods go.
                for http in extra[path].as_object().into_iter().flat_map(|m| m.keys()) {
                    if let Some(rid) = by_path.get(path) {
                        delete_method(aws, what, id, rid, http).await?;
                    }
                }
                continue;
            }
            if let Some(rid) = by_path.get(top).cloned() {
                match aws
                    .apigateway
                    .delete_resource()
                    .rest_api_id(id)
                    .resource_id(&rid)
                    .send()
                    .await
                {
                    Err(e) if code(&e) != Some("NotFoundException") => {
                        return Err(error(what, &format!("DeleteResource {top}"), e))
                    }
                    _ => {}
                }
                by_path.retain(|p, _| p != top && !p.starts_with(&format!("{top}/")));
            }
        }
    }
    Ok(())
}

/// The id of the resource at `path`, creating it and any missing parent.
pub(super) async fn ensure_path(
    aws: &Aws,
    what: &str,
    api: &str,
    path: &str,
    by_path: &mut BTreeMap<String, String>,
) -> Result<String> {
    if let Some(id) = by_path.get(path) {
        return Ok(id.clone());
    }
    let (parent, part) = path.rsplit_once('/').context("a path starts with /")?;
    let parent = if parent.is_empty() { "/" } else { parent };
    let parent_id = match by_path.get(parent) {
        Some(id) => id.clone(),
        None if parent == "/" => anyhow::bail!("{what}: the API has no root resource"),
        None => Box::pin(ensure_path(aws, what, api, parent, by_path)).await?,
    };
    let created = aws
        .apigateway
        .create_resource()
        .rest_api_id(api)
        .parent_id(&parent_id)
        .path_part(part)
        .send()
        .await;
    let id = match created {
        Ok(out) => out.id.context("CreateResource returned no id")?,
        // A retry after a lost answer: the first attempt made it.
        Err(e) if code(&e) == Some("ConflictException") => resources(aws, what, api)
            .await?
            .into_iter()
            .find(|r| r.path() == Some(path))
            .and_then(|r| r.id().map(str::to_string))
            .ok_or_else(|| error(what, &format!("CreateResource {path}"), e))?,
        Err(e) => return Err(error(what, &format!("CreateResource {path}"), e)),
    };
    by_path.insert(path.to_string(), id.clone());
    Ok(id)
}

pub(super) async fn delete_method(
    aws: &Aws,
    what: &str,
    api: &str,
    resource: &str,
    http: &str,
) -> Result<()> {
    match aws
        .apigateway
        .delete_method()
        .rest_api_id(api)
        .resource_id(resource)
        .http_method(http)
        .send()
        .await
    {
        Err(e) if code(&e) != Some("NotFoundException") => {
            Err(error(what, &format!("DeleteMethod {http}"), e))
        }
        _ => Ok(()),
    }
}

/// The ids AWS gave what a method names: validators and authorizers, by name.
pub(super) struct MethodIds {
    pub validators: BTreeMap<String, String>,
    pub authorizers: BTreeMap<String, String>,
}

pub(super) async fn put_method(
    aws: &Aws,
    what: &str,
    api: &str,
    resource: &str,
    http: &str,
    m: &MethodSpec,
    ids: &MethodIds,
) -> Result<()> {
    let gw = &aws.apigateway;
    let authorizer = match &m.authorizer {
        Some(name) => Some(
            ids.authorizers
                .get(name)
                .cloned()
                .with_context(|| format!("{what}: no authorizer {name}"))?,
        ),
        None => None,
    };
    let validator = match &m.request_validator {
        Some(name) => Some(
            ids.validators
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
        .set_authorizer_id(authorizer)
        .api_key_required(m.api_key_required)
        .set_authorization_scopes(
            (!m.authorization_scopes.is_empty()).then(|| m.authorization_scopes.clone()),
        )
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
            .set_response_templates(Some(resp.templates.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| error(what, &format!("PutIntegrationResponse {http} {status}"), e))?;
    }
    Ok(())
}
