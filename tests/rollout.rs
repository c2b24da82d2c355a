//! Safe rollouts against the emulator: each deploy that changes code or the
//! definition publishes versions, runs the smoke orders on the new machine
//! version, and only then moves `live`, which routes start executions on.
//! A failed smoke order leaves `live` where it was; `rollback` moves it back
//! in one call; retention keeps `keep_versions`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{place_order_on, project_copy, stepgate_in, unique, ORDER};

/// Deploys `dir` as `stage`, printing the run's stderr when it fails.
fn deploy(dir: &Path, stage: &str) -> common::Run {
    stepgate_in(dir, &["deploy", "--stage", stage, "--output", "json"]).ok()
}

fn api_url(run: &common::Run) -> String {
    run.json()["outputs"]["api_url"]
        .as_str()
        .expect("api_url")
        .to_string()
}

/// Changes cancelOrder's message: a new function version, a new machine
/// version.
fn change_code(dir: &Path, mark: &str) {
    let code = dir.join("lambdas/cancelOrder/index.js");
    let source = std::fs::read_to_string(&code).unwrap();
    let changed = source.replacen(
        "because of payment failure",
        &format!("because of payment failure{mark}"),
        1,
    );
    assert_ne!(source, changed, "cancelOrder's message changes");
    std::fs::write(&code, changed).unwrap();
}

fn version_of(arn: &Option<String>) -> String {
    arn.as_deref()
        .expect("the execution names the version it ran")
        .rsplit(':')
        .next()
        .unwrap()
        .to_string()
}

/// What `live` serves, as `history --output json` says.
fn live_version(dir: &Path, stage: &str) -> u64 {
    let history = stepgate_in(dir, &["history", "--stage", stage, "--output", "json"]).ok();
    history.json()["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["live_weight"] == 100)
        .unwrap_or_else(|| panic!("no version served by live: {}", history.stdout))["version"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn a_good_change_publishes_passes_its_smoke_orders_and_moves_live() {
    let stage = unique("good");
    let s = stage.as_str();
    let dir = project_copy(s);
    let first = deploy(&dir, s);
    let url = api_url(&first);
    let placed = place_order_on(&url, ORDER).await;
    assert_eq!(placed.status, "SUCCEEDED");
    assert_eq!(
        version_of(&placed.version_arn),
        "1",
        "the first deploy publishes version 1"
    );

    change_code(&dir, ".");
    // plan says how `live` would move before it does.
    let plan = stepgate_in(&dir, &["plan", "--stage", s]).ok();
    for part in [
        "Rollout of OrderProcessor: `live` serves version 1 (100%).",
        "publishes: function cancelOrder, state machine OrderProcessor",
        "smoke orders: smoke/approved.json, smoke/rejected.json",
        "then `live` moves all at once.",
    ] {
        assert!(
            plan.stdout.contains(part),
            "{part:?} not in: {}",
            plan.stdout
        );
    }
    let plan = stepgate_in(&dir, &["plan", "--stage", s, "--output", "json"]).ok();
    assert_eq!(
        plan.json()["rollouts"][0]["live"],
        serde_json::json!([[1, 100]]),
        "{}",
        plan.stdout
    );
    let changed = deploy(&dir, s);
    let calls = changed.mutating_calls();
    println!("mutating calls of a code-change deploy with two smoke orders: {calls:?}");
    assert_eq!(
        calls,
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
    let placed = place_order_on(&url, &ORDER.replace("SUCCESS", "FAILED")).await;
    assert_eq!(
        version_of(&placed.version_arn),
        "2",
        "the API serves the new version"
    );
    assert_eq!(
        placed.output["message"],
        "Your order is not approved because of payment failure."
    );
    assert_eq!(live_version(&dir, s), 2);

    // Converged: nothing to publish, no smoke order runs.
    let again = deploy(&dir, s);
    assert_eq!(again.mutating_calls(), BTreeMap::new());
    stepgate_in(&dir, &["destroy", "--stage", s, "--yes"]).ok();
    assert!(common::leftovers(s).await.is_empty());
}

#[tokio::test]
async fn a_bad_change_fails_its_smoke_order_and_live_stays_where_it_was() {
    let stage = unique("bad");
    let s = stage.as_str();
    let dir = project_copy(s);
    let url = api_url(&deploy(&dir, s));

    // completeOrder throws: every approved order fails.
    let code = dir.join("lambdas/completeOrder/index.js");
    let source = std::fs::read_to_string(&code).unwrap();
    std::fs::write(
        &code,
        source.replace(
            "exports.completeOrder = async (event) => ({",
            "exports.completeOrder = async () => { throw new Error('the warehouse is on fire'); };\nconst unused = async (event) => ({",
        ),
    )
    .unwrap();
    let failed = stepgate_in(&dir, &["deploy", "--stage", s]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    let error = common::error_lines(&failed).join("\n");
    for part in [
        "smoke order smoke/approved.json failed on version 2",
        "expected status SUCCEEDED, got FAILED",
        "the warehouse is on fire",
        &format!("(execution arn:aws:states:us-east-1:000000000000:execution:orders-{s}-OrderProcessor:smoke-approved-"),
        "`live` stays on the version it served",
    ] {
        assert!(error.contains(part), "{part:?} not in: {error}");
    }
    assert!(!error.contains("smoke/rejected.json"), "{error}");
    assert_eq!(live_version(&dir, s), 1);
    let placed = place_order_on(&url, ORDER).await;
    assert_eq!(placed.status, "SUCCEEDED");
    assert_eq!(placed.output["orderDetails"]["status"], "Approved");
    assert_eq!(version_of(&placed.version_arn), "1");

    // The next deploy of the same change smokes the same version again.
    let again = stepgate_in(&dir, &["deploy", "--stage", s]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(
        again.stderr.contains("failed on version 2"),
        "{}",
        again.stderr
    );
    stepgate_in(&dir, &["destroy", "--stage", s, "--yes"]).ok();
}

#[tokio::test]
async fn rollback_moves_live_back_in_one_call_and_history_shows_it() {
    let stage = unique("back");
    let s = stage.as_str();
    let dir = project_copy(s);
    let url = api_url(&deploy(&dir, s));
    change_code(&dir, "!");
    deploy(&dir, s);
    assert_eq!(live_version(&dir, s), 2);

    let rollback = stepgate_in(&dir, &["rollback", "--stage", s, "--output", "json"]).ok();
    println!(
        "rollback: {:?}",
        rollback.json()["aws_calls"]["by_operation"]
    );
    assert_eq!(
        rollback.mutating_calls(),
        BTreeMap::from([("SFN.UpdateStateMachineAlias".to_string(), 1)]),
        "rollback moves live, and nothing else, in one call"
    );
    // Under the stage's lock (its release follows the report).
    assert_eq!(rollback.json()["aws_calls"]["lock"], 1);
    assert_eq!(rollback.json()["rollback"]["from"], 2);
    assert_eq!(rollback.json()["rollback"]["to"], 1);
    assert_eq!(live_version(&dir, s), 1);
    let placed = place_order_on(&url, &ORDER.replace("SUCCESS", "FAILED")).await;
    assert_eq!(version_of(&placed.version_arn), "1");
    assert_eq!(
        placed.output["message"],
        "Your order is not approved because of payment failure"
    );

    let text = stepgate_in(&dir, &["history", "--stage", s]).ok();
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert!(lines[0].starts_with("VERSION"), "{}", text.stdout);
    assert!(
        lines[1].starts_with("2 ") && lines[1].contains(" - "),
        "{}",
        text.stdout
    );
    assert!(
        lines[2].starts_with("1 ") && lines[2].contains("live 100%"),
        "{}",
        text.stdout
    );
    assert!(
        lines[2].contains("stepgate by arn:aws:iam::000000000000:root"),
        "{}",
        text.stdout
    );

    let bad = stepgate_in(&dir, &["rollback", "--stage", s, "--to", "7"]);
    assert_eq!(bad.code, 1);
    assert_eq!(
        common::error_lines(&bad),
        ["error: --to 7: OrderProcessor has no version 7; it has 1, 2 (see `stepgate history`)"]
    );
    let oldest = stepgate_in(&dir, &["rollback", "--stage", s]);
    assert_eq!(oldest.code, 1);
    assert!(
        oldest.stderr.contains("nothing to roll back to"),
        "{}",
        oldest.stderr
    );
    // The next deploy moves live to what the project declares.
    deploy(&dir, s);
    assert_eq!(live_version(&dir, s), 2);
    stepgate_in(&dir, &["destroy", "--stage", s, "--yes"]).ok();
}

#[tokio::test]
async fn retention_keeps_five_versions_and_what_they_pin() {
    let stage = unique("keep");
    let s = stage.as_str();
    let dir = project_copy(s);
    deploy(&dir, s);
    for i in 2..=7 {
        change_code(&dir, &"!".repeat(i));
        deploy(&dir, s);
    }
    let history = stepgate_in(&dir, &["history", "--stage", s, "--output", "json"]).ok();
    let kept: Vec<u64> = history.json()["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(kept, [7, 6, 5, 4, 3]);
    assert_eq!(live_version(&dir, s), 7);

    let lambda = aws_sdk_lambda::Client::new(&common::sdk_config().await);
    let versions = |name: String| {
        let lambda = lambda.clone();
        async move {
            let out = lambda
                .list_versions_by_function()
                .function_name(name)
                .send()
                .await
                .unwrap();
            out.versions()
                .iter()
                .filter_map(|c| c.version().filter(|v| *v != "$LATEST").map(str::to_string))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        versions(format!("orders-{s}-cancelOrder")).await,
        ["3", "4", "5", "6", "7"]
    );
    // Never changed, and pinned by every kept machine version.
    assert_eq!(versions(format!("orders-{s}-completeOrder")).await, ["1"]);
    let destroyed = stepgate_in(&dir, &["destroy", "--stage", s, "--yes"]).ok();
    assert!(
        destroyed.stderr.contains("state-machine-alias"),
        "{}",
        destroyed.stderr
    );
    assert!(common::leftovers(s).await.is_empty());
}

/// A Standard execution runs the version it started on to its end: one
/// started before a rollout completes with the old code, and retention
/// keeps its version while it runs, though `keep_versions` says otherwise.
#[tokio::test]
async fn a_running_execution_keeps_its_version_and_its_code() {
    let stage = unique("run");
    let s = stage.as_str();
    let dir = project_copy(s);
    // An order with a `delay` waits that long before it is routed.
    let def = dir.join("definitions/OrderProcessor.asl.json");
    let text = std::fs::read_to_string(&def).unwrap();
    std::fs::write(
        &def,
        text.replace(
            r#""StartAt": "CheckPaymentStatus","#,
            r#""StartAt": "Queue","#,
        )
        .replace(
            r#""States": {"#,
            r#""States": {
    "Queue": { "Type": "Choice", "Choices": [{ "Variable": "$.delay", "IsPresent": true, "Next": "Delay" }], "Default": "CheckPaymentStatus" },
    "Delay": { "Type": "Wait", "SecondsPath": "$.delay", "Next": "CheckPaymentStatus" },"#,
        ),
    )
    .unwrap();
    std::fs::remove_file(dir.join("smoke/approved.json")).unwrap();
    let toml = dir.join("stepgate.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        text.replace(
            "role = \"states\"\n",
            "role = \"states\"\nkeep_versions = 2\n",
        ),
    )
    .unwrap();
    let url = api_url(&deploy(&dir, s));

    // An order on version 1, still waiting while two rollouts pass.
    let url2 = url.clone();
    let slow = ORDER
        .replace("SUCCESS", "FAILED")
        .replace(r#""orderAmount""#, r#""delay":10,"orderAmount""#);
    let order = tokio::spawn(async move { place_order_on(&url2, &slow).await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    change_code(&dir, " (v2)");
    deploy(&dir, s);
    change_code(&dir, " (v3)");
    deploy(&dir, s);
    let versions = |run: &common::Run| -> Vec<u64> {
        run.json()["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect()
    };
    let history = stepgate_in(&dir, &["history", "--stage", s, "--output", "json"]).ok();
    let placed = order.await.unwrap();
    assert_eq!(
        versions(&history),
        [3, 2, 1],
        "version 1 is kept while its execution runs"
    );
    assert_eq!(version_of(&placed.version_arn), "1");
    assert_eq!(
        placed.output["message"], "Your order is not approved because of payment failure",
        "the execution finished with the code it started with"
    );

    // Once it has ended, the next rollout lets version 1 go.
    change_code(&dir, " (v4)");
    deploy(&dir, s);
    let history = stepgate_in(&dir, &["history", "--stage", s, "--output", "json"]).ok();
    assert_eq!(versions(&history), [4, 3]);
    stepgate_in(&dir, &["destroy", "--stage", s, "--yes"]).ok();
}

/// A canary routes its share of new executions to the new version while it
/// bakes (read back from the alias); a failure of the new version during
/// the bake moves `live` back and fails the deploy saying why; without one,
/// the same rollout completes.
#[tokio::test]
async fn a_canary_serves_its_share_and_a_failure_during_the_bake_rolls_it_back() {
    let stage = unique("canary");
    let s = stage.as_str();
    let dir = project_copy(s);
    common::append_text(
        &dir,
        "[defaults.rollout]\nstrategy = \"canary\"\npercent = 50\ninterval = \"6s\"\n",
    );
    deploy(&dir, s);
    change_code(&dir, "!");
    let plan = stepgate_in(&dir, &["plan", "--stage", s]).ok();
    assert!(
        plan.stdout
            .contains("then `live` moves canary: 50% -> 100%, each held 6s"),
        "{}",
        plan.stdout
    );
    let mut cmd = common::command(&dir, &["deploy", "--stage", s]);
    let child = common::spawn(&mut cmd);

    let sfn = aws_sdk_sfn::Client::new(&common::sdk_config().await);
    let machine =
        format!("arn:aws:states:us-east-1:000000000000:stateMachine:orders-{s}-OrderProcessor");
    let mut routing = bake_routing(&sfn, &machine).await;
    routing.sort();
    assert_eq!(
        routing,
        [(format!("{machine}:1"), 50), (format!("{machine}:2"), 50)],
        "the canary's routing during the bake"
    );
    // The new version fails an order during the bake.
    sfn.start_execution()
        .state_machine_arn(format!("{machine}:2"))
        .input(ORDER.replace("SUCCESS", "BOGUS"))
        .send()
        .await
        .unwrap();
    let out = common::finish(&cmd, child);
    let stderr = &out.stderr;
    assert_eq!(out.code, 1, "{stderr}");
    for part in [
        "1 failed, timed-out or aborted execution of version 2 while it served 50% (more than max_failures = 0)",
        "(FAILED)",
        "`live` is back on version 1",
    ] {
        assert!(stderr.contains(part), "{part:?} not in: {stderr}");
    }
    assert_eq!(live_version(&dir, s), 1);

    // Without a failure, the same rollout bakes and completes.
    deploy(&dir, s);
    assert_eq!(live_version(&dir, s), 2);
    stepgate_in(&dir, &["destroy", "--stage", s, "--yes"]).ok();
}

/// The alias's routing once it splits new executions between two
/// versions (polled for at most 30 s), as (version ARN, weight).
async fn bake_routing(sfn: &aws_sdk_sfn::Client, machine: &str) -> Vec<(String, i32)> {
    let mut routing = Vec::new();
    for _ in 0..300 {
        let alias = sfn
            .describe_state_machine_alias()
            .state_machine_alias_arn(format!("{machine}:live"))
            .send()
            .await
            .unwrap();
        routing = alias
            .routing_configuration()
            .iter()
            .map(|r| (r.state_machine_version_arn().to_string(), r.weight()))
            .collect();
        if routing.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    routing
}

/// An Express machine's smoke orders run on the new version with
/// StartSyncExecution, before `live` moves: the quote example's two pass
/// (a priced basket, a refused one); a change that prices wrong fails its
/// order by name and the route keeps answering with the old version.
#[tokio::test]
async fn an_express_machines_smoke_orders_run_synchronously_on_the_new_version() {
    let stage = unique("xsmoke");
    let s = stage.as_str();
    let dir = common::example_copy("quote", s);
    let deployed = deploy(&dir, s);
    assert_eq!(
        deployed.mutating_calls().get("SFN.StartSyncExecution"),
        Some(&2),
        "both smoke orders ran synchronously: {}",
        deployed.stdout
    );
    assert_eq!(live_version(&dir, s), 1);
    let url = deployed.json()["outputs"]["routes"][0]["url"]
        .as_str()
        .expect("the route's URL")
        .to_string();

    // The coupon takes half, not a tenth.
    let code = dir.join("lambdas/quote/index.js");
    let source = std::fs::read_to_string(&code).unwrap();
    let changed = source.replace("Math.round(subtotal * 10) / 100", "subtotal / 2");
    assert_ne!(source, changed);
    std::fs::write(&code, changed).unwrap();
    let failed = stepgate_in(&dir, &["deploy", "--stage", s]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    let error = common::error_lines(&failed).join("\n");
    for part in [
        "smoke order smoke/priced.json failed on version 2",
        "expected output.discount = 10, got 50",
        "`live` stays on the version it served",
    ] {
        assert!(error.contains(part), "{part:?} not in: {error}");
    }
    assert!(!error.contains("smoke/refused.json"), "{error}");
    assert_eq!(live_version(&dir, s), 1);
    let answer = ureq::post(&url)
        .set("Content-Type", "application/json")
        .send_string(r#"{"items":[{"sku":"tea","quantity":4,"unitPrice":25}],"coupon":"TENOFF"}"#)
        .expect("the route answers")
        .into_string()
        .unwrap();
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["discount"], 10, "the old version serves: {answer}");
    stepgate_in(&dir, &["destroy", "--stage", s, "--yes"]).ok();
}

/// SIGTERM during a bake moves `live` back before the deploy exits 143.
#[tokio::test]
async fn sigterm_during_a_bake_moves_live_back() {
    let stage = unique("term");
    let s = stage.as_str();
    let dir = project_copy(s);
    common::append_text(
        &dir,
        "[defaults.rollout]\nstrategy = \"linear\"\npercent = 30\ninterval = \"1m\"\n",
    );
    deploy(&dir, s);
    change_code(&dir, "!");
    let mut cmd = common::command(&dir, &["deploy", "--stage", s]);
    let child = common::spawn(&mut cmd);
    let sfn = aws_sdk_sfn::Client::new(&common::sdk_config().await);
    let machine =
        format!("arn:aws:states:us-east-1:000000000000:stateMachine:orders-{s}-OrderProcessor");
    let mut routing = bake_routing(&sfn, &machine).await;
    routing.sort();
    assert_eq!(
        routing,
        [(format!("{machine}:1"), 70), (format!("{machine}:2"), 30)],
        "the first linear step"
    );
    std::process::Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = common::finish(&cmd, child);
    let stderr = &out.stderr;
    assert_eq!(out.code, 143, "{stderr}");
    assert!(
        stderr.contains("interrupted by SIGTERM while version 2 served 30% of new executions; `live` is back on version 1"),
        "{stderr}"
    );
    assert_eq!(live_version(&dir, s), 1);
    stepgate_in(&dir, &["destroy", "--stage", s, "--yes"]).ok();
}

/// A smoke order whose StartExecution answer was lost: the SDK repeats it
/// with the same name, and Step Functions answers ExecutionAlreadyExists
/// once the first one has ended. That is the smoke order's own execution,
/// and it is judged as such.
#[tokio::test]
async fn a_lost_answer_to_a_smoke_order_is_carried_on_from() {
    let stage = unique("lostsmoke");
    let s = stage.as_str();
    let dir = project_copy(s);
    std::fs::remove_file(dir.join("smoke/rejected.json")).unwrap();
    deploy(&dir, s);
    change_code(&dir, "!");
    let proxy = common::Proxy::start(&["--rate", "0"]);
    proxy.config(serde_json::json!({"force": [{"operation": "states.StartExecution", "fault": "lost", "count": 1}]}));
    let run = common::run(common::command_at(
        &proxy.url,
        &dir,
        &["deploy", "--stage", s, "--output", "json"],
    ));
    let injected = proxy.stats()["injected"]["lost"].as_u64().unwrap_or(0);
    assert_eq!(injected, 1, "the lost answer was not injected");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(live_version(&dir, s), 2);
    stepgate_in(&dir, &["destroy", "--stage", s, "--yes"]).ok();
}

/// `[state_machines.NAME.alarms]`: one CloudWatch alarm per threshold on
/// the machine's metric, read back, changed in place and pruned.
#[tokio::test]
async fn a_machines_alarms_are_created_changed_and_pruned() {
    let stage = unique("alarms");
    let s = stage.as_str();
    let dir = project_copy(s);
    let table = "[state_machines.OrderProcessor.alarms]\nfailed = 1\ntimed_out = 2\nnotify = \"arn:aws:sns:us-east-1:000000000000:orders-alerts\"\n";
    common::append_text(&dir, table);
    deploy(&dir, s);
    let cw = aws_sdk_cloudwatch::Client::new(&common::sdk_config().await);
    let machine = format!("orders-{s}-OrderProcessor");
    let alarms = |cw: aws_sdk_cloudwatch::Client| {
        let prefix = machine.clone();
        async move {
            let mut found = cw
                .describe_alarms()
                .alarm_name_prefix(prefix)
                .send()
                .await
                .unwrap()
                .metric_alarms()
                .to_vec();
            // AWS lists alarms by name; LocalStack 4.4 in its own order.
            found.sort_by(|a, b| a.alarm_name().cmp(&b.alarm_name()));
            found
        }
    };
    let found = alarms(cw.clone()).await;
    let names: Vec<&str> = found.iter().filter_map(|a| a.alarm_name()).collect();
    assert_eq!(
        names,
        [format!("{machine}-failed"), format!("{machine}-timed-out")]
    );
    let failed = &found[0];
    assert_eq!(failed.namespace(), Some("AWS/States"));
    assert_eq!(failed.metric_name(), Some("ExecutionsFailed"));
    assert_eq!(failed.threshold(), Some(1.0));
    assert_eq!(
        failed.dimensions()[0].value(),
        Some(format!("arn:aws:states:us-east-1:000000000000:stateMachine:{machine}").as_str())
    );
    assert_eq!(
        failed.alarm_actions(),
        ["arn:aws:sns:us-east-1:000000000000:orders-alerts"]
    );
    assert_eq!(found[1].metric_name(), Some("ExecutionsTimedOut"));
    let plan = stepgate_in(&dir, &["plan", "--stage", s, "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "converged: {}", plan.stdout);

    // A threshold changed: the alarm is updated in place.
    let toml = dir.join("stepgate.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, text.replace("failed = 1", "failed = 3")).unwrap();
    let plan = stepgate_in(&dir, &["plan", "--stage", s]).ok();
    assert!(
        plan.stdout
            .contains(&format!("~ alarm {machine}-failed (update)")),
        "{}",
        plan.stdout
    );
    let changed = deploy(&dir, s);
    assert_eq!(
        changed.mutating_calls(),
        BTreeMap::from([("CloudWatch.PutMetricAlarm".to_string(), 1)])
    );
    assert_eq!(alarms(cw.clone()).await[0].threshold(), Some(3.0));

    // The table removed: both alarms are deleted.
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        text.replace(&table.replace("failed = 1", "failed = 3"), ""),
    )
    .unwrap();
    let pruned = deploy(&dir, s);
    // Listed as the inventory found them: LocalStack 4.4 in no set order.
    let mut deleted = pruned.resources_with("delete");
    deleted.sort();
    assert_eq!(
        deleted,
        [
            format!("alarm {machine}-failed"),
            format!("alarm {machine}-timed-out")
        ]
    );
    assert!(alarms(cw.clone()).await.is_empty());
    stepgate_in(&dir, &["destroy", "--stage", s, "--yes"]).ok();
}

/// An alarm of the machine in ALARM while a canary bakes moves `live` back.
#[tokio::test]
async fn an_alarm_during_the_bake_moves_live_back() {
    let stage = unique("alarmed");
    let s = stage.as_str();
    let dir = project_copy(s);
    common::append_text(
        &dir,
        "[defaults.rollout]\nstrategy = \"canary\"\npercent = 50\ninterval = \"8s\"\n\n[state_machines.OrderProcessor.alarms]\nfailed = 5\n",
    );
    deploy(&dir, s);
    change_code(&dir, "!");
    let mut cmd = common::command(&dir, &["deploy", "--stage", s]);
    let child = common::spawn(&mut cmd);
    let config = common::sdk_config().await;
    let sfn = aws_sdk_sfn::Client::new(&config);
    let machine =
        format!("arn:aws:states:us-east-1:000000000000:stateMachine:orders-{s}-OrderProcessor");
    assert_eq!(bake_routing(&sfn, &machine).await.len(), 2, "baking");
    aws_sdk_cloudwatch::Client::new(&config)
        .set_alarm_state()
        .alarm_name(format!("orders-{s}-OrderProcessor-failed"))
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("5 orders failed in a minute")
        .send()
        .await
        .unwrap();
    let out = common::finish(&cmd, child);
    let stderr = &out.stderr;
    assert_eq!(out.code, 1, "{stderr}");
    for part in [
        format!("alarm orders-{s}-OrderProcessor-failed is in ALARM (5 orders failed in a minute) while version 2 served 50%"),
        "`live` is back on version 1".to_string(),
    ] {
        assert!(stderr.contains(&part), "{part:?} not in: {stderr}");
    }
    assert_eq!(live_version(&dir, s), 1);
    stepgate_in(&dir, &["destroy", "--stage", s, "--yes"]).ok();
}
