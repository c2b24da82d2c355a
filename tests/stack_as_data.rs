//! A stack declared as data: the second article's recipe mover deploys and
//! answers end to end, mapped inputs arrive exactly as sent whatever they
//! hold, and what the project stops declaring is pruned.

mod common;

use common::{example_copy, sdk_config, stepgate_in, unique};
use serde_json::{json, Value};

/// Sends `body` to the route and returns the execution's input and status
/// once it has ended.
async fn execution_of(url: &str, answer: &str) -> (Value, String) {
    let answer: Value = serde_json::from_str(answer).unwrap_or_else(|_| panic!("{answer}"));
    let arn = &common::execution_arn(url, &answer).await;
    let sfn = aws_sdk_sfn::Client::new(&sdk_config().await);
    for _ in 0..100 {
        let e = sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .unwrap();
        if e.status().as_str() != "RUNNING" {
            let input: Value = serde_json::from_str(e.input().unwrap_or("null")).unwrap();
            return (input, e.status().as_str().to_string());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("execution {arn} did not end");
}

fn url_of(outputs: &Value, route: &str) -> String {
    outputs["outputs"]["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == route)
        .and_then(|r| r["url"].as_str())
        .unwrap_or_else(|| panic!("no {route} in {outputs}"))
        .to_string()
}

fn post(url: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut request = ureq::post(url).set("Content-Type", "application/json");
    for (k, v) in headers {
        request = request.set(k, v);
    }
    match request.send_string(body) {
        Ok(r) => r.into_string().unwrap(),
        Err(ureq::Error::Status(code, r)) => {
            panic!("HTTP {code}: {}", r.into_string().unwrap_or_default())
        }
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn the_recipe_mover_moves_a_recipe_through_its_path_and_body() {
    let stage = unique("recipes");
    let dir = example_copy("recipes", &stage);
    let deploy = stepgate_in(&dir, &["deploy", "--stage", &stage, "--output", "json"]).ok();
    let url = url_of(&deploy.json(), "POST /recipes/{id}/move").replace("{id}", "r42");
    let (input, status) = execution_of(&url, &post(&url, &[], r#"{"user_id":"u7"}"#)).await;
    assert_eq!(input, json!({"id": "r42", "user_id": "u7"}));
    assert_eq!(status, "SUCCEEDED");

    // invoke finds the route by its concrete path and waits for the result.
    let invoke = stepgate_in(
        &dir,
        &[
            "invoke",
            "--stage",
            &stage,
            "--route",
            "POST /recipes/r7/move",
            "--order",
            r#"{"user_id":"u9"}"#,
        ],
    )
    .ok();
    assert!(invoke.stdout.starts_with("SUCCEEDED "), "{}", invoke.stdout);
    assert!(
        invoke.stdout.contains("\"indexed\": \"u9\""),
        "{}",
        invoke.stdout
    );

    let plan = stepgate_in(&dir, &["plan", "--stage", &stage, "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "a second plan is clean:\n{}", plan.stdout);
    stepgate_in(&dir, &["destroy", "--stage", &stage, "--yes"]).ok();
}

#[tokio::test]
async fn mapped_inputs_arrive_as_sent_and_cannot_add_fields() {
    let stage = unique("inject");
    let dir = example_copy("recipes", &stage);
    let toml = dir.join("stepgate.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace(
        r#"input = { id = "path.id", user_id = "body.user_id" }"#,
        r#"input = { id = "path.id", user_id = "body.user_id", note = "header.X-Note", q = "query.q", request = "context.requestId" }"#,
    );
    std::fs::write(&toml, text).unwrap();
    let deploy = stepgate_in(&dir, &["deploy", "--stage", &stage, "--output", "json"]).ok();
    let base = url_of(&deploy.json(), "POST /recipes/{id}/move");
    let hostile = r#"a", "stateMachineArn": "x", "input": "{\"evil\":1}\ $x #set($y=1) '"#;
    let query: String = form_urlencoded::byte_serialize(hostile.as_bytes()).collect();
    // Quotes and backslashes cannot travel in a path unencoded, and
    // emulator and AWS may differ on decoding: the path carries what a URL
    // path may hold as it is (`'`, `$`), header and query the rest.
    let id = "r'4$2";
    let url = format!("{}?q={query}", base.replace("{id}", id));
    let (input, status) = execution_of(
        &url,
        &post(&url, &[("X-Note", hostile)], r#"{"user_id":"u\"7"}"#),
    )
    .await;
    assert_eq!(status, "SUCCEEDED", "{input}");
    let fields: Vec<&String> = input.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["id", "note", "q", "request", "user_id"], "{input}");
    assert_eq!(input["note"], hostile, "{input}");
    assert_eq!(input["q"], hostile, "{input}");
    assert_eq!(input["id"], id, "{input}");
    assert_eq!(input["user_id"], "u\"7", "{input}");
    assert!(
        input["request"].as_str().is_some_and(|r| !r.is_empty()),
        "{input}"
    );
    stepgate_in(&dir, &["destroy", "--stage", &stage, "--yes"]).ok();
}

#[tokio::test]
async fn what_the_project_stops_declaring_is_deleted_by_the_next_deploy() {
    let stage = unique("prune");
    let dir = example_copy("recipes", &stage);
    stepgate_in(&dir, &["deploy", "--stage", &stage]).ok();

    // indexNewOwner leaves the project: its directory and its branch.
    std::fs::remove_dir_all(dir.join("lambdas/indexNewOwner")).unwrap();
    let def = dir.join("definitions/RecipeMover.asl.json");
    let text = std::fs::read_to_string(&def).unwrap().replace(
        r#",
        { "StartAt": "IndexNewOwner", "States": { "IndexNewOwner": { "Type": "Task", "Resource": "${indexNewOwnerArn}", "End": true } } }"#,
        "",
    );
    std::fs::write(&def, text).unwrap();
    let function = format!("recipes-{stage}-indexNewOwner");
    let plan = stepgate_in(&dir, &["plan", "--stage", &stage]).ok();
    let lines: Vec<&str> = plan.stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!("- function {function} (delete")),
        "deletes come first:\n{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains(&format!("- log-group /aws/lambda/{function} (delete")),
        "{}",
        plan.stdout
    );
    // The function goes with its published versions.
    assert!(
        plan.stdout
            .contains(&format!("- function-version {function} (delete")),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("3 to delete"), "{}", plan.stdout);

    let deploy = stepgate_in(&dir, &["deploy", "--stage", &stage, "--output", "json"]).ok();
    assert_eq!(
        deploy.resources_with("delete"),
        [
            format!("function {function}"),
            format!("function-version {function}"),
            format!("log-group /aws/lambda/{function}")
        ]
    );
    let lambda = aws_sdk_lambda::Client::new(&sdk_config().await);
    assert!(lambda
        .get_function()
        .function_name(&function)
        .send()
        .await
        .is_err());
    let plan = stepgate_in(&dir, &["plan", "--stage", &stage, "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}", plan.stdout);

    // destroy needs no sources: from an empty directory it finds it all.
    let empty = std::env::temp_dir().join(format!("stepgate-test-{stage}-empty"));
    std::fs::create_dir_all(&empty).unwrap();
    let destroy = stepgate_in(
        &empty,
        &[
            "destroy", "--stack", "recipes", "--stage", &stage, "--yes", "--output", "json",
        ],
    )
    .ok();
    let deleted = destroy.resources_with("delete");
    assert!(
        deleted.contains(&format!("function recipes-{stage}-updateRecipe"))
            && deleted.contains(&format!("state-machine recipes-{stage}-RecipeMover"))
            && deleted.contains(&format!("rest-api recipes-{stage}-api")),
        "{deleted:?}"
    );
    let left = lambda.list_functions().send().await.unwrap();
    assert!(!left
        .functions()
        .iter()
        .any(|f| f.function_name().unwrap_or_default().contains(&stage)));
}

/// The REST API's id in one of its invoke URLs (LocalStack's path form
/// `/restapis/ID/...` or AWS's host form `ID.execute-api...`).
fn api_id_in(url: &str) -> String {
    match url.split_once("/restapis/") {
        Some((_, rest)) => rest.split('/').next().unwrap().to_string(),
        None => url
            .split("//")
            .nth(1)
            .unwrap()
            .split('.')
            .next()
            .unwrap()
            .to_string(),
    }
}

fn post_status(url: &str, body: &str) -> (u16, Value) {
    let answer = ureq::post(url)
        .set("Content-Type", "application/json")
        .send_string(body);
    let (status, text) = match answer {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("{e}"),
    };
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A sync route starts the version `live` serves: StartSyncExecution takes
/// a version ARN, not an alias's, so the stage's variable names it and
/// follows every move of `live`, a deploy's or a rollback's.
#[tokio::test]
async fn a_sync_express_route_answers_with_the_output_and_a_mapped_error_status() {
    let stage = unique("quote");
    let dir = example_copy("quote", &stage);
    let deploy = stepgate_in(&dir, &["deploy", "--stage", &stage, "--output", "json"]).ok();
    let url = url_of(&deploy.json(), "POST /quote");

    // The execution's output is the whole body: no StartSyncExecution envelope.
    let (status, body) = post_status(
        &url,
        r#"{"items":[{"sku":"a","quantity":2,"unitPrice":10}],"coupon":"TENOFF"}"#,
    );
    assert_eq!(
        (status, body),
        (200, json!({"subtotal": 20, "discount": 2, "total": 18}))
    );

    // A failure the route maps answers its status, with the error's name.
    let (status, body) = post_status(
        &url,
        r#"{"items":[{"sku":"a","quantity":1,"unitPrice":20000}]}"#,
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "QuoteRefused", "{body}");
    assert!(
        body["cause"]
            .as_str()
            .unwrap()
            .contains("over the 10000 limit"),
        "{body}"
    );

    // The model refuses a body that is not a quote request before any run.
    let (status, _) = post_status(&url, r#"{"items":[]}"#);
    assert_eq!(status, 400);

    // invoke prints the answer and fails on an error status.
    let invoke = stepgate_in(
        &dir,
        &[
            "invoke",
            "--stage",
            &stage,
            "--order",
            r#"{"items":[{"sku":"b","quantity":1,"unitPrice":5}]}"#,
        ],
    )
    .ok();
    assert!(invoke.stdout.starts_with("HTTP 200\n"), "{}", invoke.stdout);
    assert!(invoke.stdout.contains("\"total\": 5"), "{}", invoke.stdout);
    let refused = stepgate_in(
        &dir,
        &[
            "invoke",
            "--stage",
            &stage,
            "--order",
            r#"{"items":[{"sku":"b","quantity":3,"unitPrice":9000}]}"#,
        ],
    );
    assert_eq!(refused.code, 1);
    assert!(
        refused.stdout.starts_with("HTTP 422\n"),
        "{}",
        refused.stdout
    );

    // A new version of the code: the route serves it once `live` moves...
    let code = dir.join("lambdas/quote/index.js");
    let source = std::fs::read_to_string(&code).unwrap();
    std::fs::write(
        &code,
        source.replace(
            "return { subtotal, discount, total: subtotal - discount };",
            "return { subtotal, discount, total: subtotal - discount, version: 2 };",
        ),
    )
    .unwrap();
    stepgate_in(&dir, &["deploy", "--stage", &stage]).ok();
    let basket = r#"{"items":[{"sku":"a","quantity":1,"unitPrice":7}]}"#;
    let (_, body) = post_status(&url, basket);
    assert_eq!(
        body["version"], 2,
        "the route serves the new version: {body}"
    );
    let plan = stepgate_in(&dir, &["plan", "--stage", &stage, "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "converged: {}", plan.stdout);

    // ...and the old one again after a rollback, with no deploy.
    stepgate_in(&dir, &["rollback", "--stage", &stage]).ok();
    let (status, body) = post_status(&url, basket);
    assert_eq!(
        (status, body),
        (200, json!({"subtotal": 7, "discount": 0, "total": 7}))
    );

    // The next deploy moves `live` to what the project declares again.
    stepgate_in(&dir, &["deploy", "--stage", &stage]).ok();
    let (_, body) = post_status(&url, basket);
    assert_eq!(body["version"], 2, "{body}");

    // The stage's variable edited by hand is drift, and deploy repairs it.
    let gw = aws_sdk_apigateway::Client::new(&common::sdk_config().await);
    gw.update_stage()
        .rest_api_id(api_id_in(&url))
        .stage_name(&stage)
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/variables/live_Quote")
                .value("1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (_, body) = post_status(&url, basket);
    assert!(body.get("version").is_none(), "the edit took: {body}");
    let plan = stepgate_in(&dir, &["plan", "--stage", &stage]).ok();
    assert!(
        plan.stdout.contains("version 1 (live serves 2)"),
        "{}",
        plan.stdout
    );
    stepgate_in(&dir, &["deploy", "--stage", &stage]).ok();
    let (_, body) = post_status(&url, basket);
    assert_eq!(body["version"], 2, "repaired: {body}");
    stepgate_in(&dir, &["destroy", "--stage", &stage, "--yes"]).ok();
}

#[tokio::test]
async fn a_retried_request_with_its_idempotency_key_gets_the_same_execution() {
    let stage = unique("idem");
    let dir = example_copy("recipes", &stage);
    let toml = dir.join("stepgate.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace(
        r#"input = { id = "path.id", user_id = "body.user_id" }"#,
        "input = { id = \"path.id\", user_id = \"body.user_id\" }\nexecution_name = \"header.Idempotency-Key\"",
    );
    std::fs::write(&toml, text).unwrap();
    let deploy = stepgate_in(&dir, &["deploy", "--stage", &stage, "--output", "json"]).ok();
    let url = url_of(&deploy.json(), "POST /recipes/{id}/move").replace("{id}", "r1");
    let key = [("Idempotency-Key", "order-77")];
    let first: Value = serde_json::from_str(&post(&url, &key, r#"{"user_id":"u1"}"#)).unwrap();
    let retry: Value = serde_json::from_str(&post(&url, &key, r#"{"user_id":"u1"}"#)).unwrap();
    // The answer names the execution, not its ARN (who may call the API).
    assert_eq!(first["executionId"], "order-77", "{first}");
    assert_eq!(
        first["executionId"], retry["executionId"],
        "one execution per key"
    );
    // Without the header, each request is its own execution.
    let other: Value = serde_json::from_str(&post(&url, &[], r#"{"user_id":"u1"}"#)).unwrap();
    assert!(other["executionId"].is_string(), "{other}");
    assert_ne!(other["executionId"], first["executionId"]);
    stepgate_in(&dir, &["destroy", "--stage", &stage, "--yes"]).ok();
}

#[tokio::test]
async fn a_machine_whose_type_changes_is_replaced() {
    let stage = unique("replace");
    let dir = example_copy("recipes", &stage);
    stepgate_in(&dir, &["deploy", "--stage", &stage]).ok();
    common::append_text(&dir, "[state_machines.RecipeMover]\ntype = \"EXPRESS\"\n");
    let machine = format!("recipes-{stage}-RecipeMover");
    let plan = stepgate_in(&dir, &["plan", "--stage", &stage]).ok();
    assert!(
        plan.stdout
            .contains(&format!("-/+ state-machine {machine} (replace")),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("1 to replace"), "{}", plan.stdout);
    let deploy = stepgate_in(&dir, &["deploy", "--stage", &stage, "--output", "json"]).ok();
    assert_eq!(
        deploy.resources_with("replace"),
        [format!("state-machine {machine}")]
    );
    let sfn = aws_sdk_sfn::Client::new(&sdk_config().await);
    let arn = format!("arn:aws:states:us-east-1:000000000000:stateMachine:{machine}");
    let described = sfn
        .describe_state_machine()
        .state_machine_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(described.r#type().as_str(), "EXPRESS");
    let plan = stepgate_in(&dir, &["plan", "--stage", &stage, "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}", plan.stdout);
    stepgate_in(&dir, &["destroy", "--stage", &stage, "--yes"]).ok();
}
