//! The service roles' trust policies, read back from IAM after deploy: each
//! names this account (aws:SourceAccount), and the Step Functions role this
//! stage's state machine (aws:SourceArn), so no other account's or stack's
//! resource can have the service act as the role (the confused deputy).
//! A trust policy edited out of band is drift: plan shows it, deploy puts it
//! back.

mod common;

use common::{place_order, sdk_config, stepgate, unique, ORDER};
use serde_json::Value;

async fn trust(iam: &aws_sdk_iam::Client, role: &str) -> Value {
    let doc = iam
        .get_role()
        .role_name(role)
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .assume_role_policy_document
        .unwrap();
    // IAM returns the document URL-encoded; the emulator may not.
    serde_json::from_str(&doc)
        .unwrap_or_else(|_| serde_json::from_str(&percent_decode(&doc)).unwrap())
}

fn percent_decode(text: &str) -> String {
    let mut out = Vec::new();
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex: String = [bytes.next().unwrap(), bytes.next().unwrap()]
                .iter()
                .map(|&c| c as char)
                .collect();
            out.push(u8::from_str_radix(&hex, 16).unwrap());
        } else {
            out.push(if b == b'+' { b' ' } else { b });
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn service_roles_trust_only_this_account_and_state_machine() {
    let stage = unique("trust");
    let s = stage.as_str();
    let deployed = stepgate(&["deploy", "--stage", s, "--output", "json"])
        .ok()
        .json();
    let outputs = &deployed["outputs"];
    let iam = aws_sdk_iam::Client::new(&sdk_config().await);

    let states = trust(&iam, &format!("orders-{s}-us-east-1-states")).await;
    let statement = &states["Statement"][0];
    assert_eq!(statement["Principal"]["Service"], "states.amazonaws.com");
    assert_eq!(
        statement["Condition"]["StringEquals"]["aws:SourceAccount"],
        "000000000000"
    );
    assert_eq!(
        statement["Condition"]["ArnLike"]["aws:SourceArn"],
        outputs["state_machine_arn"]
    );
    let api = trust(&iam, &format!("orders-{s}-us-east-1-apigateway")).await;
    let statement = &api["Statement"][0];
    assert_eq!(
        statement["Principal"]["Service"],
        "apigateway.amazonaws.com"
    );
    assert_eq!(
        statement["Condition"]["StringEquals"]["aws:SourceAccount"],
        "000000000000"
    );

    // The stack still works, and plan compares the rendered trust policies.
    let (status, output) = place_order(outputs["api_url"].as_str().unwrap(), ORDER).await;
    assert_eq!(status, "SUCCEEDED", "{output}");
    let plan = stepgate(&["plan", "--stage", s, "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);

    // Dropping the conditions out of band is drift, repaired by deploy.
    let role = format!("orders-{s}-us-east-1-states");
    let mut loose = states.clone();
    loose["Statement"][0]
        .as_object_mut()
        .unwrap()
        .remove("Condition");
    iam.update_assume_role_policy()
        .role_name(&role)
        .policy_document(loose.to_string())
        .send()
        .await
        .unwrap();
    let plan = stepgate(&["plan", "--stage", s, "--output", "json"]).ok();
    assert_eq!(
        plan.resources_with("update"),
        [format!("role {role}")],
        "{}",
        plan.stdout
    );
    stepgate(&["deploy", "--stage", s]).ok();
    assert_eq!(trust(&iam, &role).await, states);
    let plan = stepgate(&["plan", "--stage", s, "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);

    stepgate(&["destroy", "--stage", s, "--yes"]).ok();
}
