//! Failures and interruptions never leave a stack that the next deploy or
//! destroy cannot repair.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{command, place_order, stepgate, unique, ORDER};

#[tokio::test]
async fn a_deploy_that_fails_half_way_reports_where_it_stopped_and_the_next_deploy_repairs_it() {
    let stage = unique("fail");
    let s = stage.as_str();
    // Valid locally (a runtime Lambda accepts today), refused by the pinned
    // emulator, whose LocalStack 4.4 predates nodejs24.x: the failure comes
    // from "AWS" in wave 2, after the roles and log groups exist. (An
    // unknown runtime such as nodejs1.x is now refused before any call.)
    let failed = stepgate(&[
        "deploy",
        "--stage",
        s,
        "--runtime",
        "nodejs24.x",
        "--output",
        "json",
    ]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    let error_lines: Vec<&str> = failed
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(error_lines.len(), 1, "{}", failed.stderr);
    assert!(
        error_lines[0].contains(&format!("function orders-{s}-")),
        "{}",
        error_lines[0]
    );
    assert!(
        error_lines[0].contains("CreateFunction"),
        "{}",
        error_lines[0]
    );
    assert!(
        error_lines[0].contains("run deploy again"),
        "{}",
        error_lines[0]
    );

    // The JSON report says exactly where the run stopped.
    let report = failed.json();
    assert_eq!(report["changed"], true);
    let resources = report["resources"].as_array().unwrap();
    let error_of = |kind: &str| -> Vec<Option<String>> {
        resources
            .iter()
            .filter(|r| r["kind"] == kind)
            .map(|r| r["error"].as_str().map(str::to_string))
            .collect()
    };
    assert!(
        error_of("role").iter().all(Option::is_none),
        "roles were created: {resources:?}"
    );
    assert!(error_of("function")
        .iter()
        .all(|e| e.as_deref().is_some_and(|e| e.contains("CreateFunction"))));
    // The machine needs the functions: it never started.
    assert_eq!(
        error_of("state-machine"),
        [Some(
            "not attempted: the run stopped after another resource failed".to_string()
        )]
    );
    // The API and its stage need only their role, so they ran beside the
    // functions: each was either made or never started, never half-made.
    for beside in ["rest-api", "stage"] {
        let e = error_of(beside);
        assert!(
            e == [None]
                || e[0]
                    .as_deref()
                    .is_some_and(|e| e.starts_with("not attempted")),
            "{beside}: {e:?}"
        );
    }

    // The next deploy picks up from the live state and finishes the job.
    let repaired = stepgate(&["deploy", "--stage", s, "--output", "json"]).ok();
    let created = repaired.resources_with("create");
    assert_eq!(
        repaired.resources_with("no-change").len() + created.len(),
        19
    );
    for missing in ["function ", "state-machine "] {
        assert!(
            created.iter().any(|c| c.starts_with(missing)),
            "{created:?}"
        );
    }
    assert!(
        !created.iter().any(|c| c.starts_with("role ")),
        "{created:?}"
    );
    let url = repaired.json()["outputs"]["api_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(place_order(&url, ORDER).await.0, "SUCCEEDED");
    stepgate(&["destroy", "--stage", s, "--yes"]).ok();
}

#[tokio::test]
async fn a_deploy_killed_mid_way_is_finished_by_the_next_deploy_or_removed_by_destroy() {
    for then_destroy in [false, true] {
        let stage = unique("kill");
        let s = stage.as_str();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut child = command(dir, &["deploy", "--stage", s])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Kill it as soon as the first resource exists: the rest of wave 1
        // is in flight and nothing later has started.
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines
            .by_ref()
            .map(Result::unwrap)
            .find(|l| l.starts_with("created "));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            first.is_some(),
            "the deploy created nothing before it was killed"
        );

        if then_destroy {
            stepgate(&["destroy", "--stage", s, "--yes"]).ok();
            let plan = stepgate(&["plan", "--stage", s, "--output", "json"]).ok();
            assert_eq!(
                plan.resources_with("create").len(),
                17,
                "destroy left something behind"
            );
        } else {
            let finished = stepgate(&["deploy", "--stage", s, "--output", "json"]).ok();
            let url = finished.json()["outputs"]["api_url"]
                .as_str()
                .unwrap()
                .to_string();
            assert_eq!(place_order(&url, ORDER).await.0, "SUCCEEDED");
            assert_eq!(
                stepgate(&["plan", "--stage", s, "--detailed-exitcode"]).code,
                0
            );
            stepgate(&["destroy", "--stage", s, "--yes"]).ok();
        }
    }
}
