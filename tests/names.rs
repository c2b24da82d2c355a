//! Two stacks and stages never map to the same resource names, and a name
//! taken by another stepgate stack is reported as that stack's.

mod common;

use common::{sdk_config, stepgate, unique};

#[test]
fn stack_and_stage_pairs_that_read_alike_get_different_names() {
    // Stack "orders" stage "<u>-b" and stack "orders-<u>" stage "b" both read
    // "orders-<u>-b": they used to share every resource name.
    let u = unique("c");
    let first_stage = format!("{u}-b");
    let other_stack = format!("orders-{u}");
    stepgate(&["deploy", "--stage", &first_stage]).ok();
    let plan = stepgate(&[
        "plan",
        "--stack",
        &other_stack,
        "--stage",
        "b",
        "--output",
        "json",
    ])
    .ok();
    assert_eq!(plan.resources_with("create").len(), 17, "{}", plan.stdout);
    assert!(
        plan.resources_with("conflict").is_empty(),
        "{}",
        plan.stdout
    );
    let names = plan.resources_with("create").join(" ");
    assert!(
        names.contains(&format!("function orders_{u}-b-completeOrder")),
        "{names}"
    );
    stepgate(&["destroy", "--stage", &first_stage, "--yes"]).ok();
}

#[tokio::test]
async fn a_name_held_by_another_stepgate_stack_says_whose_it_is() {
    let stage = unique("held");
    let s = stage.as_str();
    let iam = aws_sdk_iam::Client::new(&sdk_config().await);
    let role = format!("orders-{s}-us-east-1-lambda");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let tag = |k: &str, v: &str| {
        aws_sdk_iam::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
            .unwrap()
    };
    iam.create_role()
        .role_name(&role)
        .assume_role_policy_document(trust)
        .tags(tag("stepgate:stack", "shop"))
        .tags(tag("stepgate:stage", "other"))
        .send()
        .await
        .unwrap();
    let deploy = stepgate(&["deploy", "--stage", s]);
    assert_eq!(deploy.code, 1);
    assert!(
        deploy.stderr.contains(&format!(
            "role {role} already exists but is not owned by stepgate stack orders stage {s} (it belongs to stepgate stack shop stage other); remove it, or deploy under another --stack or --stage"
        )),
        "{}",
        deploy.stderr
    );
    assert!(
        !deploy.stderr.contains("lacks the stepgate"),
        "{}",
        deploy.stderr
    );
    stepgate(&["destroy", "--stage", s, "--yes"]).ok();
    iam.delete_role().role_name(&role).send().await.unwrap();
}
