//! What stepgate prints: the plain lines a pipeline sees (no terminal) are
//! pinned by snapshots, so any change to them shows up in review.

mod common;

use common::{stepgate, unique};

/// A run's output with what differs between runs replaced: the stage's
/// unique name, the REST API's id and durations. Lines of one wave arrive in
/// any order, so on stderr each run of lines starting with the same word is
/// sorted.
fn normalise(text: &str, stage: &str, api_id: Option<&str>, sort: bool) -> String {
    let mut text = text.replace(stage, "[stage]");
    if let Some(id) = api_id {
        text = text.replace(id, "[api-id]");
    }
    let lines: Vec<String> = text.lines().map(mask_durations).collect();
    if !sort {
        return lines.join("\n");
    }
    let mut out: Vec<String> = Vec::new();
    let mut run: Vec<String> = Vec::new();
    let first_word = |l: &str| l.split(' ').next().unwrap_or("").to_string();
    for line in lines {
        if run
            .last()
            .is_some_and(|l| first_word(l) != first_word(&line))
        {
            run.sort();
            out.append(&mut run);
        }
        run.push(line);
    }
    run.sort();
    out.append(&mut run);
    out.join("\n")
}

/// "1.2s" -> "T" wherever a number of seconds stands alone.
fn mask_durations(line: &str) -> String {
    line.split(' ')
        .map(|word| {
            let core = word
                .trim_start_matches('(')
                .trim_end_matches([')', ':', ',', '.']);
            let is_secs = core
                .strip_suffix('s')
                .is_some_and(|n| !n.is_empty() && n.parse::<f64>().is_ok());
            if is_secs {
                word.replace(core, "T")
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn durations_are_masked() {
    assert_eq!(
        mask_durations("created role r (0.3s)"),
        "created role r (T)"
    );
    assert_eq!(mask_durations("Done in 12.0s: 3 AWS"), "Done in T: 3 AWS");
    assert_eq!(mask_durations("keeps 3s-like words"), "keeps 3s-like words");
}

/// Without a terminal, deploy, plan and destroy print exactly these lines.
#[test]
fn plain_output_without_a_terminal() {
    let stage = unique("pin");
    let s = stage.as_str();
    let fresh_plan = stepgate(&["plan", "--stage", s]).ok();
    let deploy = stepgate(&["deploy", "--stage", s]).ok();
    let api_id = stepgate(&["outputs", "--stage", s, "--output", "json"])
        .ok()
        .json()["outputs"]["api_id"]
        .as_str()
        .unwrap()
        .to_string();
    let again = stepgate(&["deploy", "--stage", s]).ok();
    let change = stepgate(&["plan", "--stage", s, "--memory", "256"]).ok();
    let update = stepgate(&["deploy", "--stage", s, "--memory", "256"]).ok();
    let listed = stepgate(&["plan", "--stage", s, "--show-unchanged"]).ok();
    let destroy = stepgate(&["destroy", "--stage", s, "--yes"]).ok();
    let id = Some(api_id.as_str());
    for (name, run) in [
        ("plan_fresh", &fresh_plan),
        ("deploy_fresh", &deploy),
        ("deploy_converged", &again),
        ("plan_change", &change),
        ("deploy_update", &update),
        ("plan_show_unchanged", &listed),
        ("destroy", &destroy),
    ] {
        let shown = format!(
            "--- stdout\n{}\n--- stderr\n{}",
            normalise(&run.stdout, s, id, false),
            normalise(&run.stderr, s, id, true)
        );
        insta::assert_snapshot!(format!("plain_{name}"), shown);
    }
}
