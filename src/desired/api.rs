//! The REST API as desired: one resource per route path, each route's
//! method (an AWS-service integration that starts its state machine, or
//! for a sync route runs it and answers with its output) and OPTIONS for
//! CORS, and the stage that serves a deployment of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::config::Throttling;
use crate::model::Claim;
use crate::project::route::STATUS_PARAM;
use crate::project::{ApiAccess, Auth, Route, Source};

/// Deployments stepgate makes say so, with a hash of the API configuration
/// they snapshot: how a stage is known to serve the current configuration.
pub const DEPLOYMENT_PREFIX: &str = "stepgate api-config ";

const JSON: &str = "application/json";

const ALLOW_ORIGIN: &str = "method.response.header.Access-Control-Allow-Origin";
const ALLOW_HEADERS: &str = "method.response.header.Access-Control-Allow-Headers";
const ALLOW_METHODS: &str = "method.response.header.Access-Control-Allow-Methods";

/// The request validator a route with a model uses: the body only, named
/// after the model (`Order` -> `order-body`).
pub fn body_validator(model: &str) -> String {
    format!("{}-body", model.to_ascii_lowercase())
}

/// One method as stepgate manages it. The same shape is built from the
/// desired state and read back from AWS, so the two compare field by field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodSpec {
    /// NONE, AWS_IAM, COGNITO_USER_POOLS or CUSTOM.
    pub authorization: String,
    /// The authorizer's name (not its id, which AWS picks). Absent ones
    /// serialize as before routes had auth, so older stages compare equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub api_key_required: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_scopes: Vec<String>,
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
    /// Response mapping templates (a sync route's); none serializes as
    /// before they were managed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub templates: BTreeMap<String, String>,
}

/// A route with the ARN of the machine it starts.
#[derive(Clone, Debug)]
pub struct RouteSpec {
    pub route: Route,
    pub state_machine_arn: String,
}

/// An authorizer as stepgate manages it, in the shape read back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuthorizerSpec {
    /// COGNITO_USER_POOLS, TOKEN or REQUEST.
    #[serde(rename = "type")]
    pub kind: String,
    pub provider_arns: Vec<String>,
    /// The Lambda authorizer's invocation URI.
    pub authorizer_uri: Option<String>,
    pub identity_source: String,
    pub ttl: i32,
}

#[derive(Clone, Debug)]
pub struct ApiSpec {
    pub name: String,
    pub region: String,
    pub partition: String,
    pub role_arn: String,
    pub routes: Vec<RouteSpec>,
    /// Model name -> JSON Schema (draft 4).
    pub models: BTreeMap<String, Value>,
    /// Access-Control-Allow-Origin on the preflight and every response.
    pub cors_origin: String,
    /// By name.
    pub authorizers: BTreeMap<String, AuthorizerSpec>,
    /// The resource policy, with `execute-api:/*` for the API's own ARN.
    pub policy: Option<Value>,
}

impl ApiSpec {
    pub fn fields(&self) -> Value {
        json!({
            "resources": self.resources(),
            "models": self.models(),
            "validators": self.validators(),
            "gateway_responses": self.gateway_responses(),
            "authorizers": self.authorizers,
            "policy": self.policy,
        })
    }

    /// Model name -> content type and schema.
    pub fn models(&self) -> BTreeMap<String, Value> {
        self.models
            .iter()
            .map(|(name, schema)| {
                (
                    name.clone(),
                    json!({ "content_type": JSON, "schema": schema }),
                )
            })
            .collect()
    }

    /// Path -> method -> method, every route's and each path's OPTIONS.
    pub fn resources(&self) -> BTreeMap<String, BTreeMap<String, MethodSpec>> {
        let mut out: BTreeMap<String, BTreeMap<String, MethodSpec>> = BTreeMap::new();
        for r in &self.routes {
            out.entry(r.route.path.clone())
                .or_default()
                .insert(r.route.method.clone(), self.method(r));
            if let Some(path) = r.route.status_path() {
                out.entry(path)
                    .or_default()
                    .insert("GET".into(), self.status_method(r));
            }
        }
        for methods in out.values_mut() {
            let verbs: Vec<String> = methods.keys().cloned().collect();
            methods.insert("OPTIONS".into(), self.options(&verbs));
        }
        out
    }

    /// Validator name -> what it validates.
    pub fn validators(&self) -> BTreeMap<String, Value> {
        self.models
            .keys()
            .map(|m| {
                (
                    body_validator(m),
                    json!({ "validate_body": true, "validate_parameters": false }),
                )
            })
            .collect()
    }

    /// Identifies the configuration a deployment snapshots. With one path,
    /// the document hashed keeps the shape it had before routes were
    /// declared, so that a stage deployed then still plans clean.
    pub fn config_hash(&self) -> String {
        let resources = self.resources();
        let doc = match resources.iter().next() {
            Some((path, methods)) if resources.len() == 1 => json!({
                "resource": path,
                "methods": methods,
                "models": self.models(),
                "validators": self.validators(),
                "gateway_responses": self.gateway_responses(),
            }),
            _ => json!({
                "resources": resources,
                "models": self.models(),
                "validators": self.validators(),
                "gateway_responses": self.gateway_responses(),
            }),
        };
        // Who may call is part of what a deployment serves (a changed
        // resource policy takes effect once the stage is redeployed).
        let mut doc = doc;
        if !self.authorizers.is_empty() {
            doc["authorizers"] = json!(self.authorizers);
        }
        if let Some(policy) = &self.policy {
            doc["policy"] = policy.clone();
        }
        let digest = Sha256::digest(doc.to_string().as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn cors(&self) -> String {
        format!("'{}'", self.cors_origin)
    }

    fn method(&self, r: &RouteSpec) -> MethodSpec {
        let cors = BTreeMap::from([(ALLOW_ORIGIN.to_string(), self.cors())]);
        let response = MethodResponse {
            parameters: BTreeMap::from([(ALLOW_ORIGIN.to_string(), false)]),
            models: BTreeMap::from([(JSON.to_string(), "Empty".to_string())]),
        };
        let action = if r.route.sync {
            "StartSyncExecution"
        } else {
            "StartExecution"
        };
        let mut responses = BTreeMap::from([
            ("200".into(), response.clone()),
            ("400".into(), response.clone()),
        ]);
        let mut integration_responses = BTreeMap::from([
            (
                "200".into(),
                IntegrationResponse {
                    selection_pattern: None,
                    parameters: cors.clone(),
                    templates: BTreeMap::new(),
                },
            ),
            (
                "400".into(),
                IntegrationResponse {
                    selection_pattern: Some("4\\d{2}".into()),
                    parameters: cors.clone(),
                    templates: BTreeMap::new(),
                },
            ),
        ]);
        if !r.route.sync {
            // The execution's name, never its ARN (account, machine).
            integration_responses.get_mut("200").expect("200").templates =
                BTreeMap::from([(JSON.to_string(), started_response_template(&r.route))]);
        }
        if r.route.sync {
            // The execution's own answer, or its error with a status.
            integration_responses.get_mut("200").expect("200").templates =
                BTreeMap::from([(JSON.to_string(), sync_response_template(&r.route.errors))]);
            for status in r
                .route
                .errors
                .values()
                .map(u16::to_string)
                .chain(["500".to_string()])
            {
                responses.insert(status, response.clone());
            }
        }
        MethodSpec {
            authorization: self.authorization(&r.route),
            authorizer: self.authorizer_of(&r.route),
            api_key_required: r.route.api_key,
            authorization_scopes: r.route.scopes.clone(),
            // API Gateway refuses a body that is not valid with 400
            // (BAD_REQUEST_BODY) before any execution starts.
            request_validator: r.route.model.as_deref().map(body_validator),
            request_models: r
                .route
                .model
                .iter()
                .map(|m| (JSON.to_string(), m.clone()))
                .collect(),
            responses,
            integration: IntegrationSpec {
                kind: "AWS".into(),
                http_method: Some("POST".into()),
                uri: Some(format!(
                    "arn:{}:apigateway:{}:states:action/{action}",
                    self.partition, self.region
                )),
                credentials: Some(self.role_arn.clone()),
                // Only JSON bodies reach the template; anything else is refused.
                passthrough_behavior: "NEVER".into(),
                request_templates: BTreeMap::from([(JSON.into(), request_template(r))]),
                responses: integration_responses,
            },
        }
    }

    fn authorization(&self, route: &Route) -> String {
        match &route.auth {
            Auth::Open => "NONE",
            Auth::Iam => "AWS_IAM",
            Auth::Authorizer(name) => match self.authorizers.get(name).map(|a| a.kind.as_str()) {
                Some("COGNITO_USER_POOLS") => "COGNITO_USER_POOLS",
                _ => "CUSTOM",
            },
        }
        .into()
    }

    fn authorizer_of(&self, route: &Route) -> Option<String> {
        match &route.auth {
            Auth::Authorizer(name) => Some(name.clone()),
            _ => None,
        }
    }

    /// `GET <path>/{executionId}`: DescribeExecution of this route's
    /// machine only. The ARN is built here from the machine's and the
    /// path's id, so no caller can name another machine's execution.
    fn status_method(&self, r: &RouteSpec) -> MethodSpec {
        let cors = BTreeMap::from([(ALLOW_ORIGIN.to_string(), self.cors())]);
        let response = MethodResponse {
            parameters: BTreeMap::from([(ALLOW_ORIGIN.to_string(), false)]),
            models: BTreeMap::from([(JSON.to_string(), "Empty".to_string())]),
        };
        // The machine's own ARN, without the `live` alias routes start:
        // executions are named under the machine, whatever started them.
        let machine: Vec<&str> = r.state_machine_arn.splitn(8, ':').take(7).collect();
        let prefix = machine
            .join(":")
            .replacen(":stateMachine:", ":execution:", 1);
        let id = format!("$input.params().path.get('{STATUS_PARAM}')");
        let request = format!(
            "#set($id = \"$!{}\")\n{{\"executionArn\": \"{prefix}:{}\"}}",
            &id[1..],
            escaped("$id")
        );
        let answer = "#set($r = $input.path('$'))\n{\"status\": \"$r.status\", \"output\": #if($r.output && $r.output != \"\")$r.output#{else}null#end}".to_string();
        MethodSpec {
            authorization: self.authorization(&r.route),
            authorizer: self.authorizer_of(&r.route),
            api_key_required: r.route.api_key,
            authorization_scopes: r.route.scopes.clone(),
            request_validator: None,
            request_models: BTreeMap::new(),
            responses: BTreeMap::from([("200".into(), response.clone()), ("400".into(), response)]),
            integration: IntegrationSpec {
                kind: "AWS".into(),
                http_method: Some("POST".into()),
                uri: Some(format!(
                    "arn:{}:apigateway:{}:states:action/DescribeExecution",
                    self.partition, self.region
                )),
                credentials: Some(self.role_arn.clone()),
                passthrough_behavior: "NEVER".into(),
                request_templates: BTreeMap::from([(JSON.into(), request)]),
                responses: BTreeMap::from([
                    (
                        "200".into(),
                        IntegrationResponse {
                            selection_pattern: None,
                            parameters: cors.clone(),
                            templates: BTreeMap::from([(JSON.to_string(), answer)]),
                        },
                    ),
                    (
                        "400".into(),
                        IntegrationResponse {
                            selection_pattern: Some("4\\d{2}".into()),
                            parameters: cors,
                            templates: BTreeMap::new(),
                        },
                    ),
                ]),
            },
        }
    }

    /// The responses API Gateway itself sends, by type, that stepgate
    /// sets: a refused body, a missing or refused identity or key, and
    /// throttling answer JSON with the CORS header, so a browser client
    /// can read why. `messageString` is already a quoted JSON string.
    pub fn gateway_responses(&self) -> BTreeMap<String, Value> {
        [
            ("BAD_REQUEST_BODY", "400"),
            ("UNAUTHORIZED", "401"),
            ("ACCESS_DENIED", "403"),
            ("MISSING_AUTHENTICATION_TOKEN", "403"),
            ("INVALID_API_KEY", "403"),
            ("THROTTLED", "429"),
            ("QUOTA_EXCEEDED", "429"),
        ]
        .into_iter()
        .map(|(kind, status)| {
            (
                kind.to_string(),
                json!({
                    "status_code": status,
                    "parameters": { "gatewayresponse.header.Access-Control-Allow-Origin": self.cors() },
                    "templates": {
                        JSON: "{\"message\": $context.error.messageString, \"requestId\": \"$context.requestId\"}"
                    },
                }),
            )
        })
        .collect()
    }

    /// The CORS preflight: a MOCK integration that answers 200 with the
    /// Access-Control-Allow-* headers.
    fn options(&self, verbs: &[String]) -> MethodSpec {
        let headers = [ALLOW_HEADERS, ALLOW_METHODS, ALLOW_ORIGIN];
        let mut allowed: Vec<&str> = verbs.iter().map(String::as_str).collect();
        allowed.push("OPTIONS");
        allowed.sort();
        MethodSpec {
            authorization: "NONE".into(),
            authorizer: None,
            api_key_required: false,
            authorization_scopes: Vec::new(),
            request_validator: None,
            request_models: BTreeMap::new(),
            responses: BTreeMap::from([(
                "200".into(),
                MethodResponse {
                    parameters: headers.iter().map(|h| (h.to_string(), false)).collect(),
                    models: BTreeMap::from([(JSON.to_string(), "Empty".to_string())]),
                },
            )]),
            integration: IntegrationSpec {
                kind: "MOCK".into(),
                passthrough_behavior: "WHEN_NO_MATCH".into(),
                request_templates: BTreeMap::from([(JSON.into(), "{\"statusCode\": 200}".into())]),
                responses: BTreeMap::from([(
                    "200".into(),
                    IntegrationResponse {
                        selection_pattern: None,
                        parameters: BTreeMap::from([
                            (ALLOW_HEADERS.into(), "'Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token'".into()),
                            (ALLOW_METHODS.into(), format!("'{}'", allowed.join(","))),
                            (ALLOW_ORIGIN.into(), self.cors()),
                        ]),
                        templates: BTreeMap::new(),
                    },
                )]),
                ..Default::default()
            },
        }
    }
}

/// `$util.escapeJavaScript` turns `'` into `\'`, which is not JSON: put it back.
fn escaped(expr: &str) -> String {
    format!("$util.escapeJavaScript({expr}).replaceAll(\"\\\\'\",\"'\")")
}

/// A VTL expression giving the source's raw value: JSON text for the body
/// and its fields, a plain string for the others.
fn value_of(source: &Source) -> (String, bool) {
    match source {
        Source::Body => ("$input.json('$')".into(), true),
        Source::BodyField(f) => (format!("$input.json('$.{f}')"), true),
        Source::Path(p) => (format!("$input.params().path.get('{p}')"), false),
        Source::Query(q) => (format!("$input.params().querystring.get('{q}')"), false),
        Source::Header(h) => (format!("$input.params().header.get('{h}')"), false),
        Source::RequestId => ("$context.requestId".into(), false),
        Source::CallerIp => ("$context.identity.sourceIp".into(), false),
    }
}

/// The StartExecution request. The machine is pinned server-side: the
/// client sends only its request and can never choose which machine
/// runs. The input is a JSON document inside a JSON string, so a string
/// value is escaped twice, once for the document and once for the string
/// it travels in: a value holding quotes, backslashes, `$` or `#` arrives
/// as that exact string and cannot add fields (VTL does not evaluate what
/// a reference inserts). Body values are JSON already and escaped once.
pub fn request_template(r: &RouteSpec) -> String {
    let mut sets = String::new();
    let mut quiet = |var: &str, expr: &str| {
        // `$!`: an absent header or query parameter is "", not the
        // reference's text.
        sets.push_str(&format!("#set(${var} = \"$!{}\")\n", &expr[1..]));
        format!("${var}")
    };
    let input = match &r.route.input {
        // The whole body, as before routes were declared.
        None => escaped("$input.json('$')"),
        Some(fields) => {
            let mut parts = Vec::new();
            for (i, (field, source)) in fields.iter().enumerate() {
                let key = serde_json::to_string(field).expect("a string serializes");
                let value = match value_of(source) {
                    (expr, true) => escaped(&expr),
                    (expr, false) => {
                        let var = quiet(&format!("v{i}"), &expr);
                        format!("\\\"{}\\\"", escaped(&escaped(&var)))
                    }
                };
                parts.push(format!("{}:{value}", escape_json_string(&key)));
            }
            format!("{{{}}}", parts.join(","))
        }
    };
    let name = match &r.route.execution_name {
        Some(source) => {
            let var = quiet("name", &value_of(source).0);
            format!(
                "\n#if({var} != \"\")\n  \"name\": \"{}\",\n#end",
                escaped(&var)
            )
        }
        None => String::new(),
    };
    if let Some(field) = &r.route.input_string {
        // The field's string is the input document as it is; without the
        // field, the whole body is the input. (A missing path is null on
        // AWS but an empty list on the emulator: the body's property is
        // tested instead, which both leave unset.)
        sets.push_str("#set($body = $input.path('$'))\n");
        return format!(
            "{sets}{{\n  \"stateMachineArn\": \"{}\",{name}\n#if($body.{field})\n  \"input\": $input.json('$.{field}')\n#else\n  \"input\": \"{input}\"\n#end\n}}",
            r.state_machine_arn
        );
    }
    format!(
        "{sets}{{\n  \"stateMachineArn\": \"{}\",{name}\n  \"input\": \"{input}\"\n}}",
        r.state_machine_arn
    )
}

/// The answer of a route that starts an execution: its name, and where
/// to poll it when the route has a status route. StartExecution's answer
/// holds the whole ARN (account, machine): only the part after its last
/// `:` is passed on.
fn started_response_template(route: &Route) -> String {
    // `$context.path` is the path called, stage and parameters included.
    let status_url = match route.status_path() {
        Some(_) => ", \"statusUrl\": \"https://$context.domainName$context.path/$id\"",
        None => "",
    };
    format!(
        "#set($id = $input.path('$.executionArn').replaceAll(\"^.*:\", \"\"))\n{{\"executionId\": \"$id\"{status_url}}}"
    )
}

/// A JSON string's text escaped to sit inside another JSON string.
fn escape_json_string(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A sync route answers with the execution's output as the body, or with
/// `{"error", "cause"}` and the status its `errors` table gives (500 by
/// default). StartSyncExecution's own envelope never reaches the caller.
fn sync_response_template(errors: &BTreeMap<String, u16>) -> String {
    let mut t = String::from(
        "#set($r = $input.path('$'))\n#if($r.status == \"SUCCEEDED\")\n$r.output\n#else\n#set($context.responseOverride.status = 500)\n",
    );
    for (error, status) in errors {
        t.push_str(&format!(
            "#if($r.error == \"{error}\")\n#set($context.responseOverride.status = {status})\n#end\n"
        ));
    }
    t.push_str(&format!(
        "{{\"error\": \"{}\", \"cause\": \"{}\"}}\n#end",
        escaped("$!r.error"),
        escaped("$!r.cause")
    ));
    t
}

/// The API's resource policy: everyone may invoke, but for requests from
/// neither an allowed source IP nor an allowed VPC endpoint. `None` when
/// `[api]` restricts neither. `execute-api:/*` is the API itself.
pub fn resource_policy(access: &ApiAccess) -> Option<Value> {
    if !access.restricted() {
        return None;
    }
    let mut condition = serde_json::Map::new();
    if !access.allow_source_ips.is_empty() {
        condition.insert(
            "NotIpAddress".into(),
            json!({ "aws:SourceIp": access.allow_source_ips }),
        );
    }
    if !access.allow_vpc_endpoints.is_empty() {
        condition.insert(
            "StringNotEquals".into(),
            json!({ "aws:SourceVpce": access.allow_vpc_endpoints }),
        );
    }
    Some(json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/*",
            },
            {
                // Both conditions must hold to deny: a request from an
                // allowed address or an allowed endpoint gets in.
                "Effect": "Deny",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/*",
                "Condition": condition,
            },
        ],
    }))
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

    fn route(method: &str, path: &str) -> Route {
        Route {
            method: method.into(),
            path: path.into(),
            state_machine: "m".into(),
            input: None,
            input_string: None,
            model: Some("Order".into()),
            execution_name: None,
            sync: false,
            errors: BTreeMap::new(),
            auth: Auth::Open,
            api_key: false,
            scopes: Vec::new(),
            status: false,
        }
    }

    fn spec() -> ApiSpec {
        ApiSpec {
            name: "orders-dev-OrderProcessorAPI".into(),
            region: "us-east-1".into(),
            partition: "aws".into(),
            role_arn: "arn:aws:iam::1:role/r".into(),
            routes: vec![RouteSpec {
                route: route("POST", "/orderprocess"),
                state_machine_arn: "arn:aws:states:us-east-1:1:stateMachine:m".into(),
            }],
            models: BTreeMap::from([("Order".into(), json!({"type": "object"}))]),
            cors_origin: "*".into(),
            authorizers: BTreeMap::new(),
            policy: None,
        }
    }

    fn post(spec: &ApiSpec) -> MethodSpec {
        spec.resources()["/orderprocess"]["POST"].clone()
    }

    #[test]
    fn request_template_pins_the_machine_and_passes_the_body_as_input() {
        let t = request_template(&spec().routes[0]);
        assert_eq!(
            t,
            "{\n  \"stateMachineArn\": \"arn:aws:states:us-east-1:1:stateMachine:m\",\n  \"input\": \"$util.escapeJavaScript($input.json('$')).replaceAll(\"\\\\'\",\"'\")\"\n}",
            "the template of routes that pass the whole body is the one stages deployed before routes were declared"
        );
    }

    #[test]
    fn mapped_inputs_escape_strings_twice_and_body_fields_once() {
        let mut r = spec().routes[0].clone();
        r.route.path = "/recipes/{id}/move".into();
        r.route.input = Some(BTreeMap::from([
            ("id".into(), Source::Path("id".into())),
            ("user_id".into(), Source::BodyField("user_id".into())),
        ]));
        r.route.execution_name = Some(Source::Header("Idempotency-Key".into()));
        let t = request_template(&r);
        assert!(
            t.contains("#set($v0 = \"$!input.params().path.get('id')\")"),
            "{t}"
        );
        assert!(
            t.contains("#set($name = \"$!input.params().header.get('Idempotency-Key')\")"),
            "{t}"
        );
        assert!(t.contains(r#"\"id\":\"$util.escapeJavaScript($util.escapeJavaScript($v0).replaceAll("\\'","'")).replaceAll("\\'","'")\""#), "{t}");
        assert!(t.contains(r#"\"user_id\":$util.escapeJavaScript($input.json('$.user_id')).replaceAll("\\'","'")"#), "{t}");
        assert!(t.contains("#if($name != \"\")"), "{t}");
    }

    #[test]
    fn post_integrates_with_start_execution_through_the_api_role() {
        let post = post(&spec());
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
    fn a_sync_route_answers_with_the_output_and_maps_errors_to_statuses() {
        let mut spec = spec();
        spec.routes[0].route.sync = true;
        spec.routes[0].route.errors = BTreeMap::from([("OrderRejected".into(), 422)]);
        let post = post(&spec);
        assert_eq!(
            post.integration.uri.as_deref(),
            Some("arn:aws:apigateway:us-east-1:states:action/StartSyncExecution")
        );
        let t = &post.integration.responses["200"].templates[JSON];
        assert!(t.contains("$r.output"), "{t}");
        assert!(
            t.contains(
                "#if($r.error == \"OrderRejected\")\n#set($context.responseOverride.status = 422)"
            ),
            "{t}"
        );
        assert!(post.responses.contains_key("422") && post.responses.contains_key("500"));
    }

    #[test]
    fn each_path_gets_a_preflight_listing_its_methods() {
        let mut spec = spec();
        let mut get = spec.routes[0].clone();
        get.route.method = "GET".into();
        spec.routes.push(get);
        let options = &spec.resources()["/orderprocess"]["OPTIONS"];
        assert_eq!(
            options.integration.responses["200"].parameters[ALLOW_METHODS],
            "'GET,OPTIONS,POST'"
        );
    }

    #[test]
    fn input_string_takes_startexecutions_own_form_and_else_the_body() {
        let mut r = route("POST", "/orderprocess");
        r.input_string = Some("input".into());
        let spec = RouteSpec {
            route: r,
            state_machine_arn: "arn:aws:states:us-east-1:1:stateMachine:m".into(),
        };
        assert_eq!(
            request_template(&spec),
            "#set($body = $input.path('$'))\n{\n  \"stateMachineArn\": \"arn:aws:states:us-east-1:1:stateMachine:m\",\n#if($body.input)\n  \"input\": $input.json('$.input')\n#else\n  \"input\": \"$util.escapeJavaScript($input.json('$')).replaceAll(\"\\\\'\",\"'\")\"\n#end\n}"
        );
    }

    #[test]
    fn config_hash_changes_only_with_the_configuration() {
        let mut other = spec();
        assert_eq!(spec().config_hash(), other.config_hash());
        other.routes[0].state_machine_arn.push('2');
        assert_ne!(spec().config_hash(), other.config_hash());
        // The model is part of what a deployment snapshots.
        let mut other = spec();
        other
            .models
            .insert("Order".into(), json!({"required": ["orderId"]}));
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
        let post = post(&spec());
        assert_eq!(post.request_validator.as_deref(), Some("order-body"));
        assert_eq!(post.request_models["application/json"], "Order");
        assert_eq!(spec().validators()["order-body"]["validate_body"], true);
        let refused = &spec().gateway_responses()["BAD_REQUEST_BODY"];
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
