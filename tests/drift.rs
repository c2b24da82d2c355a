//! Out-of-band edits made through the AWS SDK, as someone in the console
//! would: plan shows exactly those resources and fields, deploy repairs them,
//! and the next plan is clean.

mod common;

use std::collections::BTreeSet;

use aws_sdk_apigateway::types::{Op, PatchOperation};
use common::{place_order, sdk_config, stepgate, unique, ORDER};

#[tokio::test]
async fn plan_shows_out_of_band_edits_and_deploy_repairs_them() {
    let stage = unique("drift");
    let s = stage.as_str();
    let deployed = stepgate(&["deploy", "--stage", s, "--output", "json"])
        .ok()
        .json();
    let api_id = deployed["outputs"]["api_id"].as_str().unwrap().to_string();
    let api_url = deployed["outputs"]["api_url"].as_str().unwrap().to_string();
    let config = sdk_config().await;

    // 1. A Lambda's memory.
    let lambda = aws_sdk_lambda::Client::new(&config);
    lambda
        .update_function_configuration()
        .function_name(format!("orders-{s}-completeOrder"))
        .memory_size(512)
        .send()
        .await
        .unwrap();
    // 2. The state machine definition.
    let sfn = aws_sdk_sfn::Client::new(&config);
    let sm_arn = deployed["outputs"]["state_machine_arn"].as_str().unwrap();
    let live = sfn
        .describe_state_machine()
        .state_machine_arn(sm_arn)
        .send()
        .await
        .unwrap();
    let edited = live.definition().replace("\"SUCCESS\"", "\"PAID\"");
    assert_ne!(edited, live.definition());
    sfn.update_state_machine()
        .state_machine_arn(sm_arn)
        .definition(edited)
        .send()
        .await
        .unwrap();
    // 3. The integration template.
    let gw = aws_sdk_apigateway::Client::new(&config);
    let resources = gw
        .get_resources()
        .rest_api_id(&api_id)
        .send()
        .await
        .unwrap();
    let resource = resources
        .items()
        .iter()
        .find(|r| r.path() == Some("/orderprocess"))
        .unwrap()
        .id()
        .unwrap()
        .to_string();
    gw.update_integration()
        .rest_api_id(&api_id)
        .resource_id(&resource)
        .http_method("POST")
        .patch_operations(
            PatchOperation::builder()
                .op(Op::Replace)
                .path("/requestTemplates/application~1json")
                .value("{\"input\": \"$input.body\"}")
                .build(),
        )
        .send()
        .await
        .unwrap();
    // 4. A role's inline policy: widened to every function.
    let iam = aws_sdk_iam::Client::new(&config);
    let wide = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"*"}]}"#;
    iam.put_role_policy()
        .role_name(format!("orders-{s}-us-east-1-states"))
        .policy_name("stepgate")
        .policy_document(wide)
        .send()
        .await
        .unwrap();
    // 5. The stage moved to another deployment.
    let other = gw
        .create_deployment()
        .rest_api_id(&api_id)
        .description("hotfix from the console")
        .send()
        .await
        .unwrap();
    gw.update_stage()
        .rest_api_id(&api_id)
        .stage_name(s)
        .patch_operations(
            PatchOperation::builder()
                .op(Op::Replace)
                .path("/deploymentId")
                .value(other.id().unwrap())
                .build(),
        )
        .send()
        .await
        .unwrap();

    let plan = stepgate(&[
        "plan",
        "--stage",
        s,
        "--output",
        "json",
        "--detailed-exitcode",
    ]);
    assert_eq!(plan.code, 2, "{}", plan.stderr);
    let report = plan.json();
    let changed: BTreeSet<(String, String)> = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "update")
        .flat_map(|r| {
            let id = format!(
                "{} {}",
                r["kind"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            );
            r["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |c| (id.clone(), c["field"].as_str().unwrap().to_string()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        (
            format!("function orders-{s}-completeOrder"),
            "memory".to_string(),
        ),
        (
            format!("state-machine orders-{s}-OrderProcessor"),
            "definition.States.CheckPaymentStatus.Choices".to_string(),
        ),
        (
            format!("rest-api orders-{s}-OrderProcessorAPI"),
            "resources./orderprocess.POST.integration.requestTemplates.application/json"
                .to_string(),
        ),
        (
            format!("role orders-{s}-us-east-1-states"),
            "inline_policies.stepgate.Statement".to_string(),
        ),
        (format!("stage {s}"), "deployment".to_string()),
    ]
    .into_iter()
    .collect();
    assert_eq!(changed, expected);
    let memory = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["changes"].as_array().cloned().unwrap_or_default())
        .find(|c| c["field"] == "memory")
        .unwrap();
    assert_eq!(
        (memory["live"].as_i64(), memory["desired"].as_i64()),
        (Some(512), Some(128))
    );
    // The text plan names the same fields for a person reading the log.
    let text = stepgate(&["plan", "--stage", s]).ok();
    assert!(
        text.stdout.contains("memory: 512 -> 128"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("deployment: \"hotfix from the console\" -> \"stepgate api-config"),
        "{}",
        text.stdout
    );

    stepgate(&["deploy", "--stage", s]).ok();
    let clean = stepgate(&["plan", "--stage", s, "--detailed-exitcode"]);
    assert_eq!(
        clean.code, 0,
        "after repair:\n{}{}",
        clean.stdout, clean.stderr
    );
    let function = lambda
        .get_function()
        .function_name(format!("orders-{s}-completeOrder"))
        .send()
        .await
        .unwrap();
    assert_eq!(function.configuration().unwrap().memory_size(), Some(128));
    let (status, output) = place_order(&api_url, ORDER).await;
    assert_eq!(
        (status.as_str(), &output["orderDetails"]["status"]),
        ("SUCCEEDED", &serde_json::json!("Approved"))
    );

    stepgate(&["destroy", "--stage", s, "--yes"]).ok();
}

#[tokio::test]
async fn managed_policies_attached_out_of_band_are_detached() {
    let stage = unique("admin");
    let s = stage.as_str();
    stepgate(&["deploy", "--stage", s]).ok();
    let iam = aws_sdk_iam::Client::new(&sdk_config().await);
    let role = format!("orders-{s}-us-east-1-lambda");
    iam.attach_role_policy()
        .role_name(&role)
        .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
        .send()
        .await
        .unwrap();
    let plan = stepgate(&["plan", "--stage", s, "--detailed-exitcode"]);
    assert_eq!(plan.code, 2);
    assert!(
        plan.stdout.contains(&format!("~ role {role} (update)")),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("AdministratorAccess"),
        "{}",
        plan.stdout
    );
    stepgate(&["deploy", "--stage", s]).ok();
    let attached = iam
        .list_attached_role_policies()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    assert!(attached.attached_policies().is_empty());
    stepgate(&["destroy", "--stage", s, "--yes"]).ok();
}
