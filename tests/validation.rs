//! Order validation at the API: POST bodies are checked against the order
//! model (models/Order.schema.json) by a request validator, and a refused
//! order gets 400 with a JSON message and starts no execution.
//!
//! LocalStack 4.4 enforces request validators, but does not apply gateway
//! response templates or headers (its execute-api handler leaves both as
//! TODO): the 400 it sends is its default `{"message": "Invalid request
//! body"}` without the CORS header. So the gateway response stepgate sets
//! is checked by reading it back from the emulator.

mod common;

use aws_sdk_apigateway::types::{GatewayResponseType, Op, PatchOperation};
use common::{sdk_config, stepgate, unique, ORDER};
use serde_json::Value;

/// POSTs a body to the API; returns the status and the body.
async fn post(url: &str, body: &str) -> (u16, String) {
    let (url, body) = (url.to_string(), body.to_string());
    tokio::task::spawn_blocking(move || {
        match ureq::post(&url)
            .set("Content-Type", "application/json")
            .send_string(&body)
        {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            Err(e) => panic!("POST {url}: {e}"),
        }
    })
    .await
    .unwrap()
}

async fn executions(sfn: &aws_sdk_sfn::Client, arn: &str) -> usize {
    sfn.list_executions()
        .state_machine_arn(arn)
        .send()
        .await
        .unwrap()
        .executions()
        .len()
}

#[tokio::test]
async fn malformed_orders_get_400_and_start_nothing() {
    let stage = unique("valid");
    let s = stage.as_str();
    let deployed = stepgate(&["deploy", "--stage", s, "--output", "json"])
        .ok()
        .json();
    let outputs = &deployed["outputs"];
    let url = outputs["api_url"].as_str().unwrap();
    let api_id = outputs["api_id"].as_str().unwrap();
    let machine = outputs["state_machine_arn"].as_str().unwrap();
    let config = sdk_config().await;
    let sfn = aws_sdk_sfn::Client::new(&config);
    // The deploy's two smoke orders ran on the machine's new version.
    assert_eq!(executions(&sfn, machine).await, 2);

    let order: Value = serde_json::from_str(ORDER).unwrap();
    let with = |key: &str, value: Value| {
        let mut o = order.clone();
        match value {
            Value::Null => {
                o.as_object_mut().unwrap().remove(key);
            }
            v => o[key] = v,
        }
        o.to_string()
    };
    let malformed = [
        with("orderId", Value::Null),
        with("orderId", "".into()),
        with("orderId", 101.into()),
        with("customerName", Value::Null),
        with("orderDate", "15/01/2022".into()),
        with("orderAmount", (-1).into()),
        with("orderAmount", "1400".into()),
        with("paymentStatus", "BOGUS".into()),
        "[]".to_string(),
        "not json".to_string(),
    ];
    for body in &malformed {
        let (status, answer) = post(url, body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let answer: Value =
            serde_json::from_str(&answer).unwrap_or_else(|_| panic!("{body}: not JSON: {answer}"));
        assert!(answer["message"].is_string(), "{body}: {answer}");
    }
    assert_eq!(
        executions(&sfn, machine).await,
        2,
        "a refused order started an execution"
    );
    // Valid orders still go through: zero amounts and FAILED payments too.
    for body in [
        ORDER.to_string(),
        with("orderAmount", 0.into()),
        with("paymentStatus", "FAILED".into()),
    ] {
        let (status, answer) = post(url, &body).await;
        assert_eq!(status, 200, "{body}: {answer}");
    }
    assert_eq!(executions(&sfn, machine).await, 5);

    // What the emulator holds: the model, the validator, POST using both,
    // and the gateway response for BAD_REQUEST_BODY with CORS and JSON.
    let gw = aws_sdk_apigateway::Client::new(&config);
    let model = gw
        .get_model()
        .rest_api_id(api_id)
        .model_name("Order")
        .send()
        .await
        .unwrap();
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/Order.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let schema: Value = serde_json::from_str(model.schema().unwrap()).unwrap();
    assert_eq!(schema, file);
    assert_eq!(model.content_type(), Some("application/json"));
    let validators = gw
        .get_request_validators()
        .rest_api_id(api_id)
        .send()
        .await
        .unwrap();
    let validator = validators
        .items()
        .iter()
        .find(|v| v.name() == Some("order-body"))
        .expect("the order-body validator");
    assert!(validator.validate_request_body());
    assert!(!validator.validate_request_parameters());
    let resource = gw
        .get_resources()
        .rest_api_id(api_id)
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .find(|r| r.path() == Some("/orderprocess"))
        .unwrap()
        .id()
        .unwrap()
        .to_string();
    let method = gw
        .get_method()
        .rest_api_id(api_id)
        .resource_id(&resource)
        .http_method("POST")
        .send()
        .await
        .unwrap();
    assert_eq!(method.request_validator_id(), validator.id());
    assert_eq!(
        method.request_models().unwrap()["application/json"],
        "Order"
    );
    let refused = gw
        .get_gateway_response()
        .rest_api_id(api_id)
        .response_type(GatewayResponseType::BadRequestBody)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status_code(), Some("400"));
    assert_eq!(
        refused.response_parameters().unwrap()
            ["gatewayresponse.header.Access-Control-Allow-Origin"],
        "'*'"
    );
    assert!(refused.response_templates().unwrap()["application/json"]
        .contains("$context.error.messageString"));

    // Converged; then a model loosened out of band is drift that deploy
    // puts back.
    let plan = stepgate(&["plan", "--stage", s, "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    let mut loose = file.clone();
    loose["required"] = serde_json::json!(["orderId"]);
    gw.update_model()
        .rest_api_id(api_id)
        .model_name("Order")
        .patch_operations(
            PatchOperation::builder()
                .op(Op::Replace)
                .path("/schema")
                .value(loose.to_string())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let plan = stepgate(&["plan", "--stage", s, "--output", "json"]).ok();
    let api = plan.json()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "rest-api")
        .unwrap()
        .clone();
    assert_eq!(api["action"], "update", "{api}");
    assert!(
        api["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["field"].as_str().unwrap().starts_with("models.Order")),
        "{api}"
    );
    let repaired = stepgate(&["deploy", "--stage", s, "--output", "json"]).ok();
    assert_eq!(
        repaired.mutating_calls(),
        std::collections::BTreeMap::from([("API Gateway.UpdateModel".to_string(), 1)])
    );
    let plan = stepgate(&["plan", "--stage", s, "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);

    stepgate(&["destroy", "--stage", s, "--yes"]).ok();
}
