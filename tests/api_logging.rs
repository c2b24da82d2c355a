//! API Gateway logging (issue #9 item 1), read back from the emulator: the
//! stage's access log group and settings, its execution-logging level, and
//! the account-wide CloudWatch role setting they need. That setting is
//! shared by every API in the region, so stepgate sets it only when it is
//! empty or already names stepgate's one shared role, uses anyone else's
//! as it is (and says so), and never clears it; destroy keeps the shared
//! role and the setting.
//!
//! These tests change what the whole account shares (they delete the
//! shared role, clear or replace the setting), so they take turns, and
//! every other test binary (cargo runs binaries one at a time) starts from
//! `common::account_logging_in_place`.

mod common;

use aws_sdk_apigateway::types::{Op, PatchOperation};
use serde_json::{json, Value};

use common::{
    cloudwatch_role_setting, leftovers, place_order, project_copy, sdk_config, set_cloudwatch_role,
    stepgate, stepgate_at, stepgate_in, unique, Proxy, CLOUDWATCH_POLICY_ARN, CLOUDWATCH_ROLE,
    CLOUDWATCH_ROLE_ARN, ORDER,
};

/// One test at a time changes what the account shares.
static ACCOUNT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The account as before any stepgate deploy on AWS: no shared role, and
/// an empty CloudWatch role setting.
async fn fresh_account() {
    let iam = aws_sdk_iam::Client::new(&sdk_config().await);
    if iam
        .get_role()
        .role_name(CLOUDWATCH_ROLE)
        .send()
        .await
        .is_ok()
    {
        iam.detach_role_policy()
            .role_name(CLOUDWATCH_ROLE)
            .policy_arn(CLOUDWATCH_POLICY_ARN)
            .send()
            .await
            .unwrap();
        iam.delete_role()
            .role_name(CLOUDWATCH_ROLE)
            .send()
            .await
            .unwrap();
    }
    set_cloudwatch_role(None).await;
}

/// The resource of a report, by kind and name.
fn resource<'a>(report: &'a Value, kind: &str, name: &str) -> &'a Value {
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == kind && r["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {report:#}"))
}

async fn stage_of(
    api_id: &str,
    stage: &str,
) -> aws_sdk_apigateway::operation::get_stage::GetStageOutput {
    aws_sdk_apigateway::Client::new(&sdk_config().await)
        .get_stage()
        .rest_api_id(api_id)
        .stage_name(stage)
        .send()
        .await
        .unwrap()
}

fn log_level(stage: &aws_sdk_apigateway::operation::get_stage::GetStageOutput) -> Option<String> {
    stage
        .method_settings()
        .and_then(|m| m.get("*/*"))
        .and_then(|s| s.logging_level())
        .map(str::to_string)
}

#[tokio::test]
async fn a_first_deploy_sets_up_logging_and_destroy_keeps_what_the_account_shares() {
    let _turn = ACCOUNT.lock().await;
    common::account_logging_in_place();
    fresh_account().await;
    let stage = unique("apilog");
    let s = stage.as_str();
    let group = format!("/aws/apigateway/orders-{s}-access");
    let group_arn = format!("arn:aws:logs:us-east-1:000000000000:log-group:{group}");

    // plan shows all of it: the shared role and the setting too.
    let plan = stepgate(&["plan", "--stage", s, "--output", "json"])
        .ok()
        .json();
    assert_eq!(resource(&plan, "role", CLOUDWATCH_ROLE)["action"], "create");
    assert_eq!(resource(&plan, "log-group", &group)["action"], "create");
    let account = resource(&plan, "apigateway-account", "us-east-1");
    assert_eq!(account["action"], "update", "{account}");
    assert_eq!(
        account["changes"],
        json!([{"field": "cloudwatch_role_arn", "live": null, "desired": CLOUDWATCH_ROLE_ARN}])
    );

    let deploy = stepgate(&["deploy", "--stage", s, "--output", "json"]).ok();
    let calls = deploy.mutating_calls();
    assert_eq!(calls.get("IAM.AttachRolePolicy"), Some(&1), "{calls:?}");
    assert_eq!(
        calls.get("API Gateway.UpdateAccount"),
        Some(&1),
        "{calls:?}"
    );
    let report = deploy.json();
    let api_id = report["outputs"]["api_id"].as_str().unwrap().to_string();
    assert!(report["outputs"]["log_groups"]
        .as_array()
        .unwrap()
        .contains(&json!(group)));

    // The account's setting names the shared role, which API Gateway may
    // assume and which holds AWS's managed policy and the shared tag.
    assert_eq!(
        cloudwatch_role_setting().await.as_deref(),
        Some(CLOUDWATCH_ROLE_ARN)
    );
    let iam = aws_sdk_iam::Client::new(&sdk_config().await);
    let role = iam
        .get_role()
        .role_name(CLOUDWATCH_ROLE)
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    let trust = common::policy_json(role.assume_role_policy_document().unwrap());
    assert_eq!(
        trust["Statement"][0]["Principal"]["Service"],
        "apigateway.amazonaws.com"
    );
    assert_eq!(trust["Statement"][0]["Action"], "sts:AssumeRole");
    let tags: Vec<(String, String)> = role
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    assert_eq!(
        tags,
        [(
            "stepgate:shared".to_string(),
            "apigateway-cloudwatch".to_string()
        )],
        "the shared role carries no stage's owner tags"
    );
    let attached = iam
        .list_attached_role_policies()
        .role_name(CLOUDWATCH_ROLE)
        .send()
        .await
        .unwrap();
    let attached: Vec<&str> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    assert_eq!(attached, [CLOUDWATCH_POLICY_ARN]);

    // The stage logs each request to the stage's group, as one JSON object,
    // and logs errors of its execution.
    let live = stage_of(&api_id, s).await;
    let access = live.access_log_settings().unwrap();
    assert_eq!(access.destination_arn(), Some(group_arn.as_str()));
    let format: Value = serde_json::from_str(access.format().unwrap()).unwrap();
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
            "{variable} not in {format}"
        );
    }
    assert_eq!(log_level(&live).as_deref(), Some("ERROR"));
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk_config().await);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix(&group)
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(14));
    assert_eq!(
        stepgate(&["plan", "--stage", s, "--detailed-exitcode"]).code,
        0,
        "converged"
    );

    // The level, set in stepgate.toml: plan shows the stage's change,
    // deploy makes it with one call; the flag beats the file.
    let dir = project_copy(&stage);
    std::fs::write(
        dir.join("stepgate.toml"),
        common::with_declarations(&format!("[stages.{s}]\napi_log_level = \"INFO\"\n")),
    )
    .unwrap();
    let plan = stepgate_in(&dir, &["plan", "--stage", s, "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        resource(&plan, "stage", s)["changes"],
        json!([{"field": "log_level", "live": "ERROR", "desired": "INFO"}])
    );
    let changed = stepgate_in(&dir, &["deploy", "--stage", s, "--output", "json"]).ok();
    assert_eq!(
        changed.mutating_calls(),
        [("API Gateway.UpdateStage".to_string(), 1)].into()
    );
    assert_eq!(
        log_level(&stage_of(&api_id, s).await).as_deref(),
        Some("INFO")
    );
    let flag = stepgate_in(&dir, &["plan", "--stage", s, "--api-log-level", "OFF"]).ok();
    assert!(
        flag.stdout.contains("    log_level: \"INFO\" -> \"OFF\""),
        "{}",
        flag.stdout
    );

    // Access logging changed out of band is drift: shown and repaired.
    aws_sdk_apigateway::Client::new(&sdk_config().await)
        .update_stage()
        .rest_api_id(&api_id)
        .stage_name(s)
        .patch_operations(
            PatchOperation::builder()
                .op(Op::Replace)
                .path("/accessLogSettings/format")
                .value("$context.requestId")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let drift = stepgate_in(&dir, &["plan", "--stage", s, "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        resource(&drift, "stage", s)["changes"][0]["field"],
        "access_log.format"
    );
    stepgate_in(&dir, &["deploy", "--stage", s]).ok();
    assert_eq!(
        stepgate_in(&dir, &["plan", "--stage", s, "--detailed-exitcode"]).code,
        0
    );

    // The shared role losing its policy is drift too: shown, and put back.
    iam.detach_role_policy()
        .role_name(CLOUDWATCH_ROLE)
        .policy_arn(CLOUDWATCH_POLICY_ARN)
        .send()
        .await
        .unwrap();
    let drift = stepgate_in(&dir, &["plan", "--stage", s, "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        resource(&drift, "role", CLOUDWATCH_ROLE)["changes"],
        json!([{"field": "managed_policies", "live": null, "desired": [CLOUDWATCH_POLICY_ARN]}])
    );
    let repaired = stepgate_in(&dir, &["deploy", "--stage", s, "--output", "json"]).ok();
    assert_eq!(
        repaired.mutating_calls(),
        [("IAM.AttachRolePolicy".to_string(), 1)].into()
    );

    // An order through the API. LocalStack 4.4 (community) reads the access
    // log settings but writes no access log: its API Gateway never calls
    // CloudWatch Logs for a request. Should a later emulator write them,
    // each line must be the JSON stepgate asked for.
    let url = report["outputs"]["api_url"].as_str().unwrap();
    let (status, output) = place_order(url, ORDER).await;
    assert_eq!(status, "SUCCEEDED", "{output}");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let shown = stepgate(&["logs", "api", "--stage", s, "--output", "json"])
        .ok()
        .json();
    let events = shown["log_events"].as_array().unwrap();
    for event in events {
        assert_eq!(event["source"], "api");
        let line: Value = serde_json::from_str(event["message"].as_str().unwrap()).unwrap();
        assert_eq!(line["httpMethod"], "POST", "{line}");
        assert_eq!(line["resourcePath"], "/orderprocess", "{line}");
        assert_eq!(line["status"], "200", "{line}");
    }
    println!("access log lines written by the emulator: {}", events.len());
    let text = stepgate(&["logs", "api", "--stage", s]).ok();
    if events.is_empty() {
        assert_eq!(text.stdout.trim(), "No log events in the last 10m.");
    }

    // destroy deletes the stage's group, keeps the shared role and the
    // setting, and says so.
    let destroyed = stepgate(&["destroy", "--stage", s, "--yes", "--output", "json"]).ok();
    let report = destroyed.json();
    assert_eq!(resource(&report, "log-group", &group)["action"], "delete");
    let role = resource(&report, "role", CLOUDWATCH_ROLE);
    assert_eq!(role["action"], "kept");
    assert!(role["note"]
        .as_str()
        .unwrap()
        .contains("shared by every stepgate stack"));
    assert_eq!(
        resource(&report, "apigateway-account", "us-east-1")["action"],
        "kept"
    );
    assert!(
        destroyed
            .stderr
            .contains(&format!("kept role {CLOUDWATCH_ROLE}: "))
            && destroyed.stderr.contains(
                "kept apigateway-account us-east-1: every API in the region uses this setting"
            ),
        "{}",
        destroyed.stderr
    );
    assert!(iam
        .get_role()
        .role_name(CLOUDWATCH_ROLE)
        .send()
        .await
        .is_ok());
    assert_eq!(
        cloudwatch_role_setting().await.as_deref(),
        Some(CLOUDWATCH_ROLE_ARN)
    );
    assert_eq!(leftovers(s).await, Vec::<String>::new());
}

/// Puts the setting back as it was when dropped, even after a failure.
struct Restore(Option<String>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(set_cloudwatch_role(previous.as_deref()))
        })
        .join()
        .unwrap();
    }
}

#[tokio::test]
async fn someone_elses_cloudwatch_role_is_used_as_it_is_and_said_so() {
    let _turn = ACCOUNT.lock().await;
    common::account_logging_in_place();
    let _restore = Restore(cloudwatch_role_setting().await);
    let theirs = "arn:aws:iam::000000000000:role/platform-apigw-logs";
    set_cloudwatch_role(Some(theirs)).await;
    let note = format!(
        "apigateway-account us-east-1 uses the account's existing CloudWatch role {theirs} (not stepgate's); stepgate leaves the setting as it is"
    );
    let stage = unique("theirs");
    let s = stage.as_str();

    let plan = stepgate(&["plan", "--stage", s]).ok();
    assert!(
        plan.stdout.contains(&format!("Note: {note}\n")),
        "{}",
        plan.stdout
    );
    let plan = stepgate(&["plan", "--stage", s, "--output", "json"])
        .ok()
        .json();
    let account = resource(&plan, "apigateway-account", "us-east-1");
    assert_eq!(account["action"], "no-change");
    assert!(account["note"].as_str().unwrap().contains(theirs));

    let deploy = stepgate(&["deploy", "--stage", s, "--output", "json"]).ok();
    assert!(
        deploy.stderr.contains(&format!("Note: {note}")),
        "{}",
        deploy.stderr
    );
    assert!(!deploy
        .mutating_calls()
        .contains_key("API Gateway.UpdateAccount"));
    assert_eq!(cloudwatch_role_setting().await.as_deref(), Some(theirs));
    assert_eq!(
        stepgate(&["plan", "--stage", s, "--detailed-exitcode"]).code,
        0
    );
    stepgate(&["destroy", "--stage", s, "--yes"]).ok();
    assert_eq!(cloudwatch_role_setting().await.as_deref(), Some(theirs));
    assert_eq!(leftovers(s).await, Vec::<String>::new());
}

/// Puts the shared tag back on the CloudWatch role when dropped, so a
/// failing test leaves the account as the other tests expect it.
struct Retag;

impl Drop for Retag {
    fn drop(&mut self) {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    aws_sdk_iam::Client::new(&sdk_config().await)
                        .tag_role()
                        .role_name(CLOUDWATCH_ROLE)
                        .tags(
                            aws_sdk_iam::types::Tag::builder()
                                .key("stepgate:shared")
                                .value("apigateway-cloudwatch")
                                .build()
                                .unwrap(),
                        )
                        .send()
                        .await
                        .unwrap();
                })
        })
        .join()
        .unwrap();
    }
}

#[tokio::test]
async fn the_shared_role_without_its_tag_is_refused_with_the_fix_for_it() {
    let _turn = ACCOUNT.lock().await;
    common::account_logging_in_place();
    let retag = Retag;
    aws_sdk_iam::Client::new(&sdk_config().await)
        .untag_role()
        .role_name(CLOUDWATCH_ROLE)
        .tag_keys("stepgate:shared")
        .send()
        .await
        .unwrap();
    let stage = unique("untagged");
    let deploy = stepgate(&["deploy", "--stage", &stage]);
    assert_eq!(deploy.code, 1, "{}", deploy.stderr);
    let error = deploy
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in {}", deploy.stderr));
    assert_eq!(
        error,
        format!(
            "error: role {CLOUDWATCH_ROLE} already exists but lacks the tag stepgate:shared=apigateway-cloudwatch that marks the account's shared one as stepgate's; if it is stepgate's, put the tag back (aws iam tag-role --role-name {CLOUDWATCH_ROLE} --tags Key=stepgate:shared,Value=apigateway-cloudwatch), else rename or delete that role"
        )
    );
    assert!(!error.contains("--stack") && !error.contains("stepgate:stack"));
    drop(retag);
    assert_eq!(leftovers(&stage).await, Vec::<String>::new());
}

/// On AWS, UpdateAccount naming a role created (or given its policy)
/// seconds ago is refused until IAM has propagated (tests/faults/README.md).
/// The fault proxy answers so while a role is new, and for forced calls;
/// a lost answer to a call made only in a fresh account is carried on from.
#[tokio::test]
async fn a_cloudwatch_role_api_gateway_cannot_use_yet_is_waited_for() {
    let _turn = ACCOUNT.lock().await;
    common::account_logging_in_place();

    // A fresh account through the proxy: the role is created and its policy
    // attached, then named in UpdateAccount within the 2 s window.
    fresh_account().await;
    let proxy = Proxy::start(&[
        "--rate",
        "0",
        "--faults",
        "propagation",
        "--propagation-seconds",
        "2",
    ]);
    let stage = unique("cwprop");
    let s = stage.as_str();
    stepgate_at(&proxy.url, &["deploy", "--stage", s]).ok();
    let injected = proxy.stats()["injected_by_operation"]["apigateway.UpdateAccount"]
        ["propagation"]
        .as_u64()
        .unwrap_or(0);
    assert!(injected >= 1, "{}", proxy.stats());
    assert_eq!(
        cloudwatch_role_setting().await.as_deref(),
        Some(CLOUDWATCH_ROLE_ARN)
    );
    assert_eq!(
        stepgate(&["plan", "--stage", s, "--detailed-exitcode"]).code,
        0
    );
    stepgate(&["destroy", "--stage", s, "--yes"]).ok();

    // Refused three times (the role exists, the setting is empty).
    set_cloudwatch_role(None).await;
    let proxy = Proxy::start(&["--rate", "0", "--faults", "propagation"]);
    proxy.config(json!({"force": [{"operation": "apigateway.UpdateAccount", "fault": "propagation", "count": 3}]}));
    let stage = unique("cwforce");
    let s = stage.as_str();
    let deploy = stepgate_at(&proxy.url, &["deploy", "--stage", s, "--output", "json"]).ok();
    assert_eq!(
        proxy.stats()["injected_by_operation"]["apigateway.UpdateAccount"]["propagation"],
        3
    );
    assert_eq!(
        deploy.json()["aws_calls"]["by_operation"]["API Gateway.UpdateAccount"],
        4
    );
    assert_eq!(
        cloudwatch_role_setting().await.as_deref(),
        Some(CLOUDWATCH_ROLE_ARN)
    );
    stepgate(&["destroy", "--stage", s, "--yes"]).ok();

    // The calls only a fresh account makes, each answered once by a lost
    // response: the SDK's retry repeats it, and both are safe to repeat.
    for operation in ["iam.AttachRolePolicy", "apigateway.UpdateAccount"] {
        fresh_account().await;
        let proxy = Proxy::start(&["--rate", "0", "--faults", "conflict"]);
        proxy.config(json!({"force": [{"operation": operation, "fault": "lost", "count": 1}]}));
        let stage = unique("cwlost");
        let s = stage.as_str();
        let deploy = stepgate_at(&proxy.url, &["deploy", "--stage", s]);
        let injected = proxy.stats()["injected"]["lost"].as_u64().unwrap_or(0);
        let plan = stepgate(&["plan", "--stage", s, "--detailed-exitcode"]);
        stepgate(&["destroy", "--stage", s, "--yes"]).ok();
        assert_eq!(injected, 1, "{operation}: the lost answer was not injected");
        assert_eq!(deploy.code, 0, "{operation}: {}", deploy.stderr);
        assert_eq!(plan.code, 0, "{operation}: {}{}", plan.stdout, plan.stderr);
        assert_eq!(
            cloudwatch_role_setting().await.as_deref(),
            Some(CLOUDWATCH_ROLE_ARN)
        );
        assert!(leftovers(s).await.is_empty(), "{operation}");
    }
}

/// The group's retention and tags, or `None` when it does not exist.
async fn execution_group(
    logs: &aws_sdk_cloudwatchlogs::Client,
    name: &str,
) -> Option<(Option<i32>, std::collections::HashMap<String, String>)> {
    let out = logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .unwrap();
    let group = out
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name))?;
    let arn = group.arn().unwrap().trim_end_matches(":*").to_string();
    let tags = logs
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap_or_default();
    Some((group.retention_in_days(), tags))
}

/// API Gateway writes a stage's execution logs to
/// `API-Gateway-Execution-Logs_{api id}/{stage}`, which AWS creates itself,
/// untagged and kept forever, so every destroyed stage would leave one
/// behind. stepgate creates it first with the stack's tags and retention,
/// adopts one API Gateway made before it, and deletes it on destroy.
#[tokio::test]
async fn the_execution_log_group_is_the_stages_and_goes_with_it() {
    // Its leftovers check reads the shared role's tag, which another test
    // here removes for a while.
    let _turn = ACCOUNT.lock().await;
    let stage = unique("exec");
    let s = stage.as_str();
    let deployed = stepgate(&["deploy", "--stage", s, "--output", "json"])
        .ok()
        .json();
    let api_id = deployed["outputs"]["api_id"].as_str().unwrap();
    let name = format!("API-Gateway-Execution-Logs_{api_id}/{s}");
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk_config().await);
    let (retention, tags) = execution_group(&logs, &name).await.expect("created");
    assert_eq!(retention, Some(14));
    assert_eq!(
        tags.get("stepgate:stack").map(String::as_str),
        Some("orders")
    );
    assert_eq!(tags.get("stepgate:stage").map(String::as_str), Some(s));

    // As AWS leaves it when it makes the group itself: untagged, no expiry.
    logs.delete_log_group()
        .log_group_name(&name)
        .send()
        .await
        .unwrap();
    logs.create_log_group()
        .log_group_name(&name)
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
    let planned = plan.json();
    let group = resource(&planned, "execution-log-group", s);
    assert_eq!(
        group["action"], "update",
        "adopted, not a conflict: {group}"
    );
    stepgate(&["deploy", "--stage", s]).ok();
    let (retention, tags) = execution_group(&logs, &name).await.unwrap();
    assert_eq!(retention, Some(14));
    assert_eq!(tags.get("stepgate:stage").map(String::as_str), Some(s));
    assert_eq!(
        stepgate(&["plan", "--stage", s, "--detailed-exitcode"]).code,
        0
    );

    stepgate(&["destroy", "--stage", s, "--yes"]).ok();
    assert!(
        execution_group(&logs, &name).await.is_none(),
        "{name} left behind"
    );
    assert!(leftovers(s).await.is_empty());
}
