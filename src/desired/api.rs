//! The REST API as desired: `/orderprocess` with POST (an AWS-service
//! integration that starts the state machine) and OPTIONS (CORS), and the
//! stage that serves a deployment of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::config::Throttling;
use crate::model::Claim;

pub const PATH_PART: &str = "orderprocess";
pub const RESOURCE_PATH: &str = "/orderprocess";
/// Deployments stepgate makes say so, with a hash of the API configuration
/// they snapshot: how a stage is known to serve the current configuration.
pub const DEPLOYMENT_PREFIX: &str = "stepgate api-config ";

/// The order model (`models/Order.schema.json`) as the API knows it.
pub const ORDER_MODEL: &str = "Order";
/// The request validator POST uses: the body only.
pub const BODY_VALIDATOR: &str = "order-body";
const JSON: &str = "application/json";

const ALLOW_ORIGIN: &str = "method.response.header.Access-Control-Allow-Origin";
const ALLOW_HEADERS: &str = "method.response.header.Access-Control-Allow-Headers";
const ALLOW_METHODS: &str = "method.response.header.Access-Control-Allow-Methods";

/// One method as stepgate manages it. The same shape is built from the
/// desired state and read back from AWS, so the two compare field by field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodSpec {
    pub authorization: String,
    /// The request validator's name (not its id, which AWS picks).
    pub request_validator: Option<String>,
    /// Content type -> model name.
    pub request_models: BTreeMap<String, String>,
    pub responses: BTreeMap<String, MethodResponse>,
    pub integration: IntegrationSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodResponse {
    pub parameters: BTreeMap<String, bool>,
    pub models: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationSpec {
    #[serde(rename = "type")]
    pub kind: String,
    pub http_method: Option<String>,
    pub uri: Option<String>,
    pub credentials: Option<String>,
    pub passthrough_behavior: String,
    pub request_templates: BTreeMap<String, String>,
    pub responses: BTreeMap<String, IntegrationResponse>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationResponse {
    pub selection_pattern: Option<String>,
    pub parameters: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
pub struct ApiSpec {
    pub name: String,
    pub region: String,
    pub partition: String,
    pub state_machine_arn: String,
    pub role_arn: String,
    /// The order's JSON Schema (draft 4).
    pub order_model: Value,
}

impl ApiSpec {
    pub fn fields(&self) -> Value {
        json!({
            "resource": RESOURCE_PATH,
            "methods": self.methods(),
            "models": self.models(),
            "validators": validators(),
            "gateway_responses": gateway_responses(),
        })
    }

    /// Model name -> content type and schema.
    pub fn models(&self) -> BTreeMap<String, Value> {
        BTreeMap::from([(
            ORDER_MODEL.to_string(),
            json!({ "content_type": JSON, "schema": self.order_model }),
        )])
    }

    pub fn methods(&self) -> BTreeMap<String, MethodSpec> {
        BTreeMap::from([
            ("POST".to_string(), self.post()),
            ("OPTIONS".to_string(), options()),
        ])
    }

    /// Identifies the configuration a deployment snapshots.
    pub fn config_hash(&self) -> String {
        let digest = Sha256::digest(self.fields().to_string().as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Pins the state machine server-side: the client sends only the order
    /// and can never choose which machine runs. escapeJavaScript turns `'`
    /// into `\'`, which is not JSON, hence the replaceAll.
    pub fn request_template(&self) -> String {
        format!(
            "{{\n  \"stateMachineArn\": \"{}\",\n  \"input\": \"$util.escapeJavaScript($input.json('$')).replaceAll(\"\\\\'\",\"'\")\"\n}}",
            self.state_machine_arn
        )
    }

    fn post(&self) -> MethodSpec {
        let cors = BTreeMap::from([(ALLOW_ORIGIN.to_string(), "'*'".to_string())]);
        let response = MethodResponse {
            parameters: BTreeMap::from([(ALLOW_ORIGIN.to_string(), false)]),
            models: BTreeMap::from([("application/json".to_string(), "Empty".to_string())]),
        };
        MethodSpec {
            authorization: "NONE".into(),
            // API Gateway refuses a body that is not an order with 400
            // (BAD_REQUEST_BODY) before any execution starts.
            request_validator: Some(BODY_VALIDATOR.into()),
            request_models: BTreeMap::from([(JSON.to_string(), ORDER_MODEL.to_string())]),
            responses: BTreeMap::from([("200".into(), response.clone()), ("400".into(), response)]),
            integration: IntegrationSpec {
                kind: "AWS".into(),
                http_method: Some("POST".into()),
                uri: Some(format!(
                    "arn:{}:apigateway:{}:states:action/StartExecution",
                    self.partition, self.region
                )),
                credentials: Some(self.role_arn.clone()),
                // Only JSON bodies reach the template; anything else is refused.
                passthrough_behavior: "NEVER".into(),
                request_templates: BTreeMap::from([(
                    "application/json".into(),
                    self.request_template(),
                )]),
                responses: BTreeMap::from([
                    (
                        "200".into(),
                        IntegrationResponse {
                            selection_pattern: None,
                            parameters: cors.clone(),
                        },
                    ),
                    (
                        "400".into(),
                        IntegrationResponse {
                            selection_pattern: Some("4\\d{2}".into()),
                            parameters: cors,
                        },
                    ),
                ]),
            },
        }
    }
}

/// Validator name -> what it validates.
pub fn validators() -> BTreeMap<String, Value> {
    BTreeMap::from([(
        BODY_VALIDATOR.to_string(),
        json!({ "validate_body": true, "validate_parameters": false }),
    )])
}

/// The responses API Gateway itself sends, by type, that stepgate sets: a
/// refused order is JSON and carries the CORS header, so a browser client
/// can read why. `messageString` is already a quoted JSON string.
pub fn gateway_responses() -> BTreeMap<String, Value> {
    BTreeMap::from([(
        "BAD_REQUEST_BODY".to_string(),
        json!({
            "status_code": "400",
            "parameters": { "gatewayresponse.header.Access-Control-Allow-Origin": "'*'" },
            "templates": {
                JSON: "{\"message\": $context.error.messageString, \"requestId\": \"$context.requestId\"}"
            },
        }),
    )])
}

/// The CORS preflight: a MOCK integration that answers 200 with the
/// Access-Control-Allow-* headers.
fn options() -> MethodSpec {
    let headers = [ALLOW_HEADERS, ALLOW_METHODS, ALLOW_ORIGIN];
    MethodSpec {
        authorization: "NONE".into(),
        request_validator: None,
        request_models: BTreeMap::new(),
        responses: BTreeMap::from([(
            "200".into(),
            MethodResponse {
                parameters: headers.iter().map(|h| (h.to_string(), false)).collect(),
                models: BTreeMap::from([("application/json".to_string(), "Empty".to_string())]),
            },
        )]),
        integration: IntegrationSpec {
            kind: "MOCK".into(),
            passthrough_behavior: "WHEN_NO_MATCH".into(),
            request_templates: BTreeMap::from([("application/json".into(), "{\"statusCode\": 200}".into())]),
            responses: BTreeMap::from([(
                "200".into(),
                IntegrationResponse {
                    selection_pattern: None,
                    parameters: BTreeMap::from([
                        (ALLOW_HEADERS.into(), "'Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token'".into()),
                        (ALLOW_METHODS.into(), "'OPTIONS,POST'".into()),
                        (ALLOW_ORIGIN.into(), "'*'".into()),
                    ]),
                },
            )]),
            ..Default::default()
        },
    }
}

#[derive(Clone, Debug)]
pub struct StageSpec {
    pub name: String,
    pub api_config_hash: String,
    pub throttling: Option<Throttling>,
    /// The access log group's ARN (without CloudWatch's ":*").
    pub access_log_arn: String,
    /// Execution logging: OFF, ERROR or INFO.
    pub log_level: String,
}

impl StageSpec {
    pub fn fields(&self) -> Value {
        json!({
            "deployment": format!("{DEPLOYMENT_PREFIX}{}", self.api_config_hash),
            "throttling": self.throttling.as_ref().map(|t| json!({
                "burst_limit": t.burst_limit,
                "rate_limit": t.rate_limit,
            })),
            "access_log": {
                "destination_arn": self.access_log_arn,
                "format": access_log_format(),
            },
            "log_level": self.log_level,
        })
    }
}

/// One JSON object per request in the access log: who called, when, what,
/// how it ended and how long it took (API Gateway's `$context` variables
/// for access logging; each a JSON string, so any value keeps the line JSON).
pub fn access_log_format() -> Value {
    json!({
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLatency": "$context.responseLatency",
        "integrationLatency": "$context.integrationLatency",
        "errorMessage": "$context.error.message",
    })
}

/// The region's API Gateway account setting as stepgate wants it: its
/// CloudWatch role is the account's shared one.
#[derive(Clone, Debug)]
pub struct AccountSpec {
    pub cloudwatch_role_arn: String,
}

impl AccountSpec {
    pub fn fields(&self) -> Value {
        json!({ "cloudwatch_role_arn": self.cloudwatch_role_arn })
    }
}

/// Whose the region's CloudWatch role setting is. Every API in the region
/// shares it, so stepgate sets it only when it is empty or already names
/// stepgate's shared role; a role someone else set is used as it is.
pub fn cloudwatch_role_claim(live: Option<&str>, ours: &str) -> Claim {
    match live.filter(|arn| !arn.is_empty()) {
        None => Claim::Ours,
        Some(arn) if arn == ours => Claim::Ours,
        Some(arn) => Claim::UsedAsIs(format!(
            "uses the account's existing CloudWatch role {arn} (not stepgate's); stepgate leaves the setting as it is"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ApiSpec {
        ApiSpec {
            name: "orders-dev-OrderProcessorAPI".into(),
            region: "us-east-1".into(),
            partition: "aws".into(),
            state_machine_arn: "arn:aws:states:us-east-1:1:stateMachine:m".into(),
            role_arn: "arn:aws:iam::1:role/r".into(),
            order_model: json!({"type": "object"}),
        }
    }

    #[test]
    fn request_template_pins_the_machine_and_passes_the_body_as_input() {
        let t = spec().request_template();
        assert!(t.contains("\"stateMachineArn\": \"arn:aws:states:us-east-1:1:stateMachine:m\""));
        assert!(
            t.contains(r#"$util.escapeJavaScript($input.json('$')).replaceAll("\\'","'")"#),
            "{t}"
        );
    }

    #[test]
    fn post_integrates_with_start_execution_through_the_api_role() {
        let post = &spec().methods()["POST"];
        assert_eq!(
            post.integration.uri.as_deref(),
            Some("arn:aws:apigateway:us-east-1:states:action/StartExecution")
        );
        assert_eq!(
            post.integration.credentials.as_deref(),
            Some("arn:aws:iam::1:role/r")
        );
        assert_eq!(
            post.integration.responses["200"].parameters[ALLOW_ORIGIN],
            "'*'"
        );
    }

    #[test]
    fn config_hash_changes_only_with_the_configuration() {
        let mut other = spec();
        assert_eq!(spec().config_hash(), other.config_hash());
        other.state_machine_arn.push('2');
        assert_ne!(spec().config_hash(), other.config_hash());
        // The model is part of what a deployment snapshots.
        let mut other = spec();
        other.order_model["required"] = json!(["orderId"]);
        assert_ne!(spec().config_hash(), other.config_hash());
    }

    #[test]
    fn the_cloudwatch_role_setting_is_ours_only_when_empty_or_already_ours() {
        let ours = "arn:aws:iam::1:role/stepgate-apigateway-cloudwatch";
        assert_eq!(cloudwatch_role_claim(None, ours), Claim::Ours);
        assert_eq!(cloudwatch_role_claim(Some(""), ours), Claim::Ours);
        assert_eq!(cloudwatch_role_claim(Some(ours), ours), Claim::Ours);
        let theirs = "arn:aws:iam::1:role/platform-apigw-logs";
        match cloudwatch_role_claim(Some(theirs), ours) {
            Claim::UsedAsIs(note) => assert_eq!(
                note,
                "uses the account's existing CloudWatch role arn:aws:iam::1:role/platform-apigw-logs (not stepgate's); stepgate leaves the setting as it is"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_stage_logs_each_request_as_one_json_object_and_sets_the_level() {
        let stage = StageSpec {
            name: "dev".into(),
            api_config_hash: "h".into(),
            throttling: None,
            access_log_arn: "arn:aws:logs:us-east-1:1:log-group:/aws/apigateway/orders-dev-access"
                .into(),
            log_level: "ERROR".into(),
        };
        let fields = stage.fields();
        assert_eq!(fields["log_level"], "ERROR");
        assert_eq!(
            fields["access_log"]["destination_arn"],
            "arn:aws:logs:us-east-1:1:log-group:/aws/apigateway/orders-dev-access"
        );
        let format = &fields["access_log"]["format"];
        for variable in [
            "$context.requestId",
            "$context.identity.sourceIp",
            "$context.requestTime",
            "$context.httpMethod",
            "$context.resourcePath",
            "$context.status",
            "$context.responseLatency",
            "$context.integrationLatency",
            "$context.error.message",
        ] {
            assert!(
                format.as_object().unwrap().values().any(|v| v == variable),
                "{variable} is not logged"
            );
        }
        // Whatever the variables hold, a line stays one JSON object.
        let line = format
            .to_string()
            .replace("$context.error.message", "Invalid request body")
            .replace("$context.status", "400");
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["status"], "400");
    }

    #[test]
    fn post_validates_the_body_against_the_order_model() {
        let post = &spec().methods()["POST"];
        assert_eq!(post.request_validator.as_deref(), Some(BODY_VALIDATOR));
        assert_eq!(post.request_models["application/json"], ORDER_MODEL);
        assert_eq!(validators()[BODY_VALIDATOR]["validate_body"], true);
        let refused = &gateway_responses()["BAD_REQUEST_BODY"];
        assert_eq!(refused["status_code"], "400");
        let template = refused["templates"]["application/json"].as_str().unwrap();
        // With messageString's quotes, the body is JSON.
        let rendered = template
            .replace("$context.error.messageString", "\"Invalid request body\"")
            .replace("$context.requestId", "r");
        assert_eq!(
            serde_json::from_str::<Value>(&rendered).unwrap()["message"],
            "Invalid request body"
        );
    }
}
