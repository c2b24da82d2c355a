//! What an API holds besides its paths: the routes' models, the body
//! validators that use them, and the gateway responses stepgate sets.

use anyhow::Result;
use serde_json::{json, Value};

use aws_sdk_apigateway::types::{GatewayResponseType, Op};

use super::patch;
use crate::aws::{code, error, sorted, Aws};
use crate::desired::api::ApiSpec;
use crate::model::Observed;
use crate::plan::{Action, ResourcePlan};

/// A request validator as AWS reports it.
pub(super) struct Validator {
    pub id: String,
    pub name: String,
    pub body: bool,
    pub parameters: bool,
}

pub(super) async fn request_validators(
    aws: &Aws,
    what: &str,
    api_id: &str,
) -> Result<Vec<Validator>> {
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

/// The API's models but API Gateway's own (`Empty`, `Error`): content type
/// and schema (parsed, so that formatting does not count as a change).
pub(super) async fn read_models(aws: &Aws, what: &str, api_id: &str) -> Result<Value> {
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
            .filter(|m| !DEFAULT_MODELS.contains(&m.name().unwrap_or_default()))
            .map(|m| {
                let schema = m.schema().unwrap_or_default();
                let schema = serde_json::from_str(schema)
                    .unwrap_or_else(|_| Value::String(schema.to_string()));
                (
                    m.name().unwrap_or_default().to_string(),
                    json!({ "content_type": m.content_type(), "schema": schema }),
                )
            })
            .collect(),
    ))
}

/// The models API Gateway gives every API.
pub(super) const DEFAULT_MODELS: [&str; 2] = ["Empty", "Error"];

/// The gateway responses set on the API (not API Gateway's defaults).
pub(super) async fn read_gateway_responses(aws: &Aws, what: &str, api_id: &str) -> Result<Value> {
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
pub(super) async fn apply_api_extras(
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
        for (name, v) in spec.validators() {
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
        let desired = spec.gateway_responses();
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
