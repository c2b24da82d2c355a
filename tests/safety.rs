//! What keeps stepgate safe in a shared account: ownership by tags, the
//! account guard, confirmation, and bad input refused before any AWS call.

mod common;

use common::{project_copy, sdk_config, stepgate, stepgate_in, unique};

#[tokio::test]
async fn a_same_named_resource_stepgate_does_not_own_is_never_touched() {
    let stage = unique("own");
    let s = stage.as_str();
    let iam = aws_sdk_iam::Client::new(&sdk_config().await);
    let foreign = format!("orders-{s}-us-east-1-lambda");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    iam.create_role()
        .role_name(&foreign)
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();

    // plan shows the conflict and fails: it is not a change deploy can make.
    let plan = stepgate(&["plan", "--stage", s, "--detailed-exitcode"]);
    assert_eq!(plan.code, 1, "{}", plan.stderr);
    assert!(
        plan.stdout.contains(&format!("! role {foreign} (conflict")),
        "{}",
        plan.stdout
    );

    // deploy refuses before changing anything, and says how to fix it.
    let deploy = stepgate(&["deploy", "--stage", s]);
    assert_eq!(deploy.code, 1);
    assert!(
        deploy.stderr.contains(&format!(
            "role {foreign} already exists but is not owned by stepgate"
        )),
        "{}",
        deploy.stderr
    );
    assert!(deploy.stderr.contains("--stage"), "{}", deploy.stderr);
    assert_eq!(
        deploy
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1,
        "one error line:\n{}",
        deploy.stderr
    );
    let functions = aws_sdk_lambda::Client::new(&sdk_config().await)
        .list_functions()
        .send()
        .await
        .unwrap();
    assert!(!functions
        .functions()
        .iter()
        .any(|f| f.function_name().unwrap_or_default().contains(s)));

    // destroy reports it and leaves it alone.
    let destroy = stepgate(&["destroy", "--stage", s, "--yes", "--output", "json"]).ok();
    assert_eq!(
        destroy.resources_with("left-alone"),
        [format!("role {foreign}")]
    );
    assert!(
        iam.get_role().role_name(&foreign).send().await.is_ok(),
        "the foreign role must survive destroy"
    );
    iam.delete_role().role_name(&foreign).send().await.unwrap();
}

#[test]
fn the_account_guard_refuses_other_accounts_before_any_change() {
    let stage = unique("acct");
    let run = stepgate(&["deploy", "--stage", &stage, "--account", "111111111111"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("credentials belong to account 000000000000, but this run is pinned to account 111111111111"),
        "{}",
        run.stderr
    );
    let plan = stepgate(&["plan", "--stage", &stage, "--output", "json"]).ok();
    assert_eq!(
        plan.resources_with("create").len(),
        17,
        "nothing was created"
    );
}

#[test]
fn destroy_without_a_terminal_needs_yes() {
    let run = stepgate(&["destroy", "--stage", &unique("tty")]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("pass --yes"), "{}", run.stderr);
}

#[test]
fn a_broken_definition_fails_before_any_aws_call_naming_file_and_state() {
    let stage = unique("bad");
    let project = project_copy(&stage);
    let def = project.join("definitions/OrderProcessor.asl.json");
    let text = std::fs::read_to_string(&def)
        .unwrap()
        .replace("\"Next\": \"CancelOrder\"", "\"Next\": \"CancelOrdr\"");
    std::fs::write(&def, text).unwrap();
    // A dead endpoint proves no AWS call is attempted: validation comes first.
    let mut args = vec![
        "deploy",
        "--stage",
        &stage,
        "--endpoint-url",
        "http://127.0.0.1:9",
    ];
    let run = stepgate_in(&project, &args);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("OrderProcessor.asl.json"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("\"CancelOrdr\", which is not a state"),
        "{}",
        run.stderr
    );
    args[0] = "plan";
    assert!(stepgate_in(&project, &args).stderr.contains("CancelOrdr"));
}

#[test]
fn usage_errors_exit_1_not_2() {
    // 2 is reserved for `plan --detailed-exitcode` finding changes.
    let run = stepgate(&["deploy", "--no-such-flag"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let run = stepgate(&["deploy", "--stage", "has space"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("--stage"), "{}", run.stderr);
}
