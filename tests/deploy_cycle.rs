//! The whole product against the emulator: plan, deploy from nothing, place
//! orders through the API, converge, change one thing, destroy.

mod common;

use std::collections::BTreeMap;

use common::{place_order, project_copy, stepgate, stepgate_in, unique, ORDER};
use serde_json::Value;

/// Every field the JSON schema (docs/json-output.md) promises on every report.
fn assert_report_shape(report: &Value, command: &str, stage: &str) {
    assert_eq!(report["schema"], "stepgate/v1");
    assert_eq!(report["command"], command);
    assert_eq!(report["stack"], "orders");
    assert_eq!(report["stage"], stage);
    assert_eq!(report["region"], common::REGION);
    assert_eq!(report["account"], "000000000000");
    assert!(report["changed"].is_boolean());
    assert!(report["resources"].is_array());
    assert!(report["aws_calls"]["total"].as_u64().unwrap() > 0);
    assert!(report["aws_calls"]["mutating"].is_u64());
    assert!(report["aws_calls"]["by_operation"].is_object());
    assert!(report["duration_seconds"].is_f64());
    for r in report["resources"].as_array().unwrap() {
        assert!(
            r["kind"].is_string() && r["name"].is_string() && r["action"].is_string(),
            "{r}"
        );
    }
}

fn assert_outputs_shape(outputs: &Value, stage: &str) {
    let url = outputs["api_url"].as_str().unwrap();
    assert!(
        url.ends_with(&format!("/{stage}/_user_request_/orderprocess")),
        "{url}"
    );
    assert!(outputs["api_id"].is_string());
    assert_eq!(outputs["stage"], stage);
    assert_eq!(
        outputs["state_machine_arn"],
        format!("arn:aws:states:us-east-1:000000000000:stateMachine:orders-{stage}-OrderProcessor")
    );
    assert_eq!(outputs["function_arns"].as_object().unwrap().len(), 2);
    assert_eq!(outputs["role_arns"].as_object().unwrap().len(), 3);
    assert_eq!(outputs["log_groups"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn full_cycle_from_nothing() {
    let stage = unique("cyc");
    let s = stage.as_str();

    // Against nothing, plan lists every resource as create and exits 2.
    let plan = stepgate(&[
        "plan",
        "--stage",
        s,
        "--output",
        "json",
        "--detailed-exitcode",
    ]);
    assert_eq!(plan.code, 2, "{}", plan.stderr);
    assert_report_shape(&plan.json(), "plan", s);
    // The stage's 17 (13, and each function's and the machine's versions
    // and its `live` alias); what the account shares (the API Gateway
    // CloudWatch role and its setting) is already there
    // (common::account_logging_in_place).
    assert_eq!(plan.resources_with("create").len(), 17);
    assert_eq!(
        plan.resources_with("no-change"),
        [
            "role stepgate-apigateway-cloudwatch",
            "apigateway-account us-east-1"
        ]
    );
    assert!(
        plan.mutating_calls().is_empty(),
        "plan must not change anything: {:?}",
        plan.mutating_calls()
    );

    let outputs_file = std::env::temp_dir().join(format!("stepgate-outputs-{s}.json"));
    let deploy = stepgate(&[
        "deploy",
        "--stage",
        s,
        "--output",
        "json",
        "--outputs-file",
        outputs_file.to_str().unwrap(),
    ])
    .ok();
    let report = deploy.json();
    assert_report_shape(&report, "deploy", s);
    assert_eq!(report["changed"], true);
    assert_outputs_shape(&report["outputs"], s);
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&outputs_file).unwrap()).unwrap();
    assert_eq!(written, report["outputs"]);
    let api_url = report["outputs"]["api_url"].as_str().unwrap().to_string();

    // A client sends only the order; the state machine is pinned server-side.
    let (status, output) = place_order(&api_url, ORDER).await;
    assert_eq!(status, "SUCCEEDED", "{output}");
    assert_eq!(output["orderDetails"]["status"], "Approved");
    assert_eq!(output["orderDetails"]["orderId"], "O101");
    assert_eq!(output["orderDetails"]["customerName"], "Demo Customer");
    assert_eq!(output["orderDetails"]["orderDate"], "2022-01-15");
    assert_eq!(output["orderDetails"]["orderAmount"], 1400);
    assert_eq!(
        output["message"],
        "Your order approved and it will be delivered soon"
    );
    let (status, output) = place_order(&api_url, &ORDER.replace("SUCCESS", "FAILED")).await;
    assert_eq!(status, "SUCCEEDED", "{output}");
    assert_eq!(output["orderDetails"]["status"], "Rejected");
    assert_eq!(output["orderDetails"]["orderAmount"], 1400);
    assert_eq!(
        output["message"],
        "Your order is not approved because of payment failure"
    );
    // An apostrophe in the body must survive the mapping template.
    let (status, output) =
        place_order(&api_url, &ORDER.replace("Demo Customer", "Mary O'Brien")).await;
    assert_eq!(status, "SUCCEEDED", "{output}");
    assert_eq!(output["orderDetails"]["customerName"], "Mary O'Brien");

    // `invoke` places the same order through the API and reports the result.
    let invoked = stepgate(&["invoke", "--stage", s, "--output", "json"]).ok();
    assert_report_shape(&invoked.json(), "invoke", s);
    let execution = &invoked.json()["execution"];
    assert_eq!(execution["status"], "SUCCEEDED");
    assert_eq!(execution["output"]["orderDetails"]["status"], "Approved");
    // An order with an unknown payment status is refused by the API's
    // request validator: HTTP 400, and invoke exits 1 saying so.
    let bogus = stepgate(&[
        "invoke",
        "--stage",
        s,
        "--payment-status",
        "BOGUS",
        "--output",
        "json",
    ]);
    assert_eq!(bogus.code, 1, "{}", bogus.stderr);
    assert!(
        bogus.stderr.contains("HTTP 400") && bogus.stderr.contains("Invalid request body"),
        "{}",
        bogus.stderr
    );

    // Converged: a second deploy makes zero mutating calls and says so.
    let again = stepgate(&["deploy", "--stage", s, "--output", "json"]).ok();
    assert_eq!(again.mutating_calls(), BTreeMap::new());
    assert_eq!(again.json()["changed"], false);
    assert_eq!(again.resources_with("no-change").len(), 19);
    let text = stepgate(&["deploy", "--stage", s]).ok();
    assert!(text.stderr.contains("No changes"), "{}", text.stderr);
    assert!(text.stderr.contains(", 0 mutating"), "{}", text.stderr);
    let plan = stepgate(&["plan", "--stage", s, "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);

    // `outputs` reads the same outputs back from the live stack.
    let outputs = stepgate(&["outputs", "--stage", s, "--output", "json"]).ok();
    assert_report_shape(&outputs.json(), "outputs", s);
    assert_eq!(outputs.json()["outputs"], report["outputs"]);

    // Changing one Lambda's code updates that function, publishes it and a
    // machine version pinning it, runs the two smoke orders on that
    // version, and moves `live` to it: docs/stack.md lists these calls.
    let project = project_copy(s);
    let code = project.join("lambdas/cancelOrder/index.js");
    let source = std::fs::read_to_string(&code).unwrap();
    std::fs::write(&code, source.replace("payment failure", "payment failure.")).unwrap();
    let changed = stepgate_in(&project, &["deploy", "--stage", s, "--output", "json"]).ok();
    println!(
        "a code change's mutating calls: {:?}",
        changed.mutating_calls()
    );
    assert_eq!(
        changed.mutating_calls(),
        BTreeMap::from([
            ("Lambda.UpdateFunctionCode".to_string(), 1),
            ("Lambda.PublishVersion".to_string(), 1),
            ("SFN.UpdateStateMachine".to_string(), 1),
            ("SFN.PublishStateMachineVersion".to_string(), 1),
            ("SFN.StartExecution".to_string(), 2),
            ("SFN.UpdateStateMachineAlias".to_string(), 1),
        ])
    );
    assert_eq!(
        changed.resources_with("update"),
        [
            format!("function orders-{s}-cancelOrder"),
            format!("function-version orders-{s}-cancelOrder"),
            format!("state-machine orders-{s}-OrderProcessor"),
            format!("state-machine-version orders-{s}-OrderProcessor"),
            format!("state-machine-alias orders-{s}-OrderProcessor:live"),
        ]
    );
    let (_, output) = place_order(&api_url, &ORDER.replace("SUCCESS", "FAILED")).await;
    assert_eq!(
        output["message"],
        "Your order is not approved because of payment failure."
    );

    // Changing the definition updates the state machine, publishes it,
    // smokes the new version and moves `live`; no function changes.
    let def = project.join("definitions/OrderProcessor.asl.json");
    let text = std::fs::read_to_string(&def).unwrap();
    std::fs::write(
        &def,
        text.replace("\"Comment\": \"Routes", "\"Comment\": \"Now routes"),
    )
    .unwrap();
    let changed = stepgate_in(&project, &["deploy", "--stage", s, "--output", "json"]).ok();
    assert_eq!(
        changed.mutating_calls(),
        BTreeMap::from([
            ("SFN.UpdateStateMachine".to_string(), 1),
            ("SFN.PublishStateMachineVersion".to_string(), 1),
            ("SFN.StartExecution".to_string(), 2),
            ("SFN.UpdateStateMachineAlias".to_string(), 1),
        ])
    );

    // destroy removes every role, function, state machine, API and log group
    // of the stage, and keeps what the account shares.
    let destroyed = stepgate(&["destroy", "--stage", s, "--yes", "--output", "json"]).ok();
    assert_report_shape(&destroyed.json(), "destroy", s);
    // Aliases and versions go before the machines and functions they are of.
    assert_eq!(destroyed.resources_with("delete").len(), 17);
    assert_eq!(destroyed.resources_with("kept").len(), 2);
    assert_nothing_left(s).await;
    let again = stepgate(&["destroy", "--stage", s, "--yes", "--output", "json"]).ok();
    assert!(
        again.resources_with("delete").is_empty(),
        "a second destroy finds nothing to delete: {}",
        again.stdout
    );
    assert_eq!(again.resources_with("kept").len(), 2);
}

/// Nothing named for this stage is left in any service.
pub async fn assert_nothing_left(stage: &str) {
    let left = common::leftovers(stage).await;
    assert!(left.is_empty(), "left behind: {left:?}");
}
