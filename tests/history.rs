//! `executions` and `logs` against the emulator: orders placed through the
//! API show up with their order id and result, and the stack's log groups
//! hold what the functions and the state machine wrote.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

use common::{place_order, stepgate, unique, ORDER};
use serde_json::Value;

/// `ORDER` with another order id and payment status.
fn order(id: &str, payment: &str) -> String {
    ORDER
        .replace("O101", id)
        .replace("\"SUCCESS\"", &format!("\"{payment}\""))
}

/// Runs `logs` until `done` holds for its events (the emulator writes the
/// Lambda logs as the process ends, a moment after the execution), for at
/// most 20 s.
fn logs_until(args: &[&str], done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let run = stepgate(args).ok();
        assert_eq!(run.json()["aws_calls"]["mutating"], 0, "{}", run.stdout);
        let events = run.json()["log_events"].as_array().unwrap().clone();
        if done(&events) || started.elapsed() > Duration::from_secs(20) {
            return events;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn messages(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn executions_and_logs_show_the_orders_placed() {
    let stage = unique("hist");
    let s = stage.as_str();
    let deployed = stepgate(&["deploy", "--stage", s, "--output", "json"])
        .ok()
        .json();
    let api_url = deployed["outputs"]["api_url"].as_str().unwrap().to_string();

    // Nothing yet but the deploy's two smoke orders, named as such.
    let smoke = stepgate(&["executions", "--stage", s, "--output", "json"]).ok();
    let mut names: Vec<String> = smoke.json()["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].starts_with("smoke-approved-"), "{names:?}");
    assert!(names[1].starts_with("smoke-rejected-"), "{names:?}");

    for (id, payment) in [("H1", "SUCCESS"), ("H2", "FAILED")] {
        let (got, output) = place_order(&api_url, &order(id, payment)).await;
        assert_eq!(got, "SUCCEEDED", "{id}: {output}");
    }
    // The API refuses an unknown payment status (its request validator), so
    // a failed execution is started directly: the state machine's Fail state.
    let sfn = aws_sdk_sfn::Client::new(&common::sdk_config().await);
    // Started on `live`, as routes start them. (LocalStack 4.4 cannot start
    // the unqualified ARN of a machine that has an alias: it deep-copies the
    // machine, and the alias it holds carries a lock.)
    let arn = deployed["outputs"]["state_machine_arn"].as_str().unwrap();
    let started = sfn
        .start_execution()
        .state_machine_arn(format!("{arn}:live"))
        .input(order("H3", "BOGUS"))
        .send()
        .await
        .unwrap();
    let waited = Instant::now();
    while sfn
        .describe_execution()
        .execution_arn(started.execution_arn())
        .send()
        .await
        .unwrap()
        .status()
        .as_str()
        == "RUNNING"
    {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "H3 still running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Newest first, each with its order id, result or error, and timing.
    let run = stepgate(&["executions", "--stage", s, "--output", "json"]).ok();
    let report = run.json();
    assert_eq!(report["command"], "executions");
    assert_eq!(report["aws_calls"]["mutating"], 0);
    let all = report["executions"].as_array().unwrap();
    let list: Vec<&Value> = all
        .iter()
        .filter(|e| !e["name"].as_str().unwrap().starts_with("smoke-"))
        .collect();
    let row = |e: &Value| {
        (
            e["order_id"].as_str().unwrap().to_string(),
            e["status"].as_str().unwrap().to_string(),
            e["result"].as_str().map(str::to_string),
            e["error"].as_str().map(str::to_string),
        )
    };
    assert_eq!(
        list.iter().map(|e| row(e)).collect::<Vec<_>>(),
        [
            (
                "H3".into(),
                "FAILED".into(),
                None,
                Some("UnknownPaymentStatus".into())
            ),
            (
                "H2".into(),
                "SUCCEEDED".into(),
                Some("Rejected".into()),
                None
            ),
            (
                "H1".into(),
                "SUCCEEDED".into(),
                Some("Approved".into()),
                None
            ),
        ]
    );
    for e in &list {
        assert!(e["duration_seconds"].as_f64().unwrap() >= 0.0, "{e}");
        assert!(e["start"].as_str().unwrap().ends_with('Z'), "{e}");
        assert!(e["stop"].is_string(), "{e}");
    }
    assert!(list[0]["start"].as_str() >= list[2]["start"].as_str());

    // --status and --limit.
    let failed = stepgate(&[
        "executions",
        "--stage",
        s,
        "--status",
        "FAILED",
        "--output",
        "json",
    ])
    .ok()
    .json();
    let failed = failed["executions"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["order_id"], "H3");
    assert_eq!(
        failed[0]["cause"],
        "paymentStatus must be SUCCESS or FAILED"
    );
    let one = stepgate(&[
        "executions",
        "--stage",
        s,
        "--limit",
        "1",
        "--output",
        "json",
    ])
    .ok()
    .json();
    assert_eq!(one["executions"].as_array().unwrap().len(), 1);
    assert_eq!(one["executions"][0]["order_id"], "H3");
    let text = stepgate(&["executions", "--stage", s]).ok().stdout;
    let lines: Vec<&str> = text.lines().collect();
    // The heading, the three orders, the two smoke orders.
    assert_eq!(lines.len(), 6, "{text}");
    assert!(lines[0].starts_with("STATUS"), "{text}");
    assert!(
        lines[1].starts_with("FAILED")
            && lines[1].contains("H3")
            && lines[1].contains("UnknownPaymentStatus"),
        "{text}"
    );
    assert!(
        lines[2].contains("H2") && lines[2].contains("Rejected"),
        "{text}"
    );
    assert!(
        lines[3].contains("H1") && lines[3].contains("Approved"),
        "{text}"
    );

    // completeOrder ran twice (the Approved smoke order, H1), as version 1:
    // the emulator's executor writes Lambda's START, END and REPORT lines
    // for each (the handlers log nothing else).
    let reports = |e: &[Value]| {
        messages(e)
            .iter()
            .filter(|m| m.starts_with("REPORT"))
            .count()
    };
    let args = ["logs", "completeOrder", "--stage", s, "--output", "json"];
    let events = logs_until(&args, |e| reports(e) == 2);
    let lines = messages(&events);
    assert_eq!(
        lines
            .iter()
            .filter(|m| m.starts_with("START RequestId: ") && m.ends_with(" Version: 1"))
            .count(),
        2,
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|m| m.starts_with("END RequestId: ")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|m| m.starts_with("REPORT RequestId: ")),
        "{lines:?}"
    );
    assert!(events.iter().all(|e| e["source"] == "completeOrder"));
    // cancelOrder twice too (the Rejected smoke order, H2).
    let args = ["logs", "cancelOrder", "--stage", s, "--output", "json"];
    let events = logs_until(&args, |e| reports(e) == 2);
    assert_eq!(
        messages(&events)
            .iter()
            .filter(|m| m.starts_with("START"))
            .count(),
        2
    );

    // The state machine (logging level ALL): the emulator writes each
    // history event as JSON: five executions started (the two smoke
    // orders and three orders), one failed.
    let args = ["logs", "states", "--stage", s, "--output", "json"];
    let events = logs_until(&args, |e| {
        messages(e)
            .iter()
            .filter(|m| m.contains("\"ExecutionStarted\""))
            .count()
            == 5
    });
    let types: Vec<String> = messages(&events)
        .iter()
        .map(|m| {
            serde_json::from_str::<Value>(m).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let count = |t: &str| types.iter().filter(|x| *x == t).count();
    assert_eq!(count("ExecutionStarted"), 5, "{types:?}");
    assert_eq!(count("ExecutionSucceeded"), 4, "{types:?}");
    assert_eq!(count("ExecutionFailed"), 1, "{types:?}");
    assert_eq!(count("LambdaFunctionSucceeded"), 4, "{types:?}");

    // All three, merged in time order, each line naming its source.
    let text = stepgate(&["logs", "--stage", s]).ok().stdout;
    assert!(
        text.lines()
            .any(|l| l.contains(" completeOrder START RequestId")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.contains(" OrderProcessor ")),
        "{text}"
    );
    let times: Vec<&str> = text.lines().filter_map(|l| l.get(..24)).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{text}");
    // --since bounds the window: the orders above are older than 1 ms.
    let future = stepgate(&["logs", "--stage", s, "--since", "1ms"]).ok();
    assert!(!future.stdout.contains("RequestId"), "{}", future.stdout);

    // --follow prints new events as they come, and Ctrl-C ends it (130).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = common::command(
        dir,
        &[
            "logs",
            "completeOrder",
            "--stage",
            s,
            "--since",
            "1s",
            "--follow",
        ],
    );
    let mut child = common::spawn(&mut cmd);
    let (status, _) = place_order(&api_url, &order("H4", "SUCCESS")).await;
    assert_eq!(status, "SUCCEEDED");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        while !seen.contains("REPORT RequestId") {
            if stdout.read_line(&mut seen).unwrap() == 0 {
                break;
            }
        }
        tx.send(()).unwrap();
        seen
    });
    let arrived = rx.recv_timeout(Duration::from_secs(20)).is_ok();
    std::process::Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let code = child.wait().unwrap().code();
    let seen = reader.join().unwrap();
    common::record(
        &cmd,
        &common::Run {
            code: code.unwrap_or(-1),
            stdout: seen.clone(),
            stderr: stderr.clone(),
        },
    );
    assert!(arrived, "no new event followed: {seen}{stderr}");
    assert_eq!(seen.matches("START RequestId").count(), 1, "{seen}");
    assert_eq!(code, Some(130), "{stderr}");

    // One JSON document cannot follow.
    let both = stepgate(&["logs", "--stage", s, "--follow", "--output", "json"]);
    assert_eq!(both.code, 1);
    assert!(both.stderr.contains("--follow"), "{}", both.stderr);

    stepgate(&["destroy", "--stage", s, "--yes"]).ok();
    // Gone: both say how to deploy.
    for args in [["executions", "--stage", s], ["logs", "--stage", s]] {
        let gone = stepgate(&args);
        assert_eq!(gone.code, 1);
        assert!(gone.stderr.contains("is not deployed"), "{}", gone.stderr);
    }
}
