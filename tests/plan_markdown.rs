//! `plan --output markdown`: a real plan (a function removed, a machine
//! added, a definition and every function's memory changed) as the
//! pull-request comment it is made for, pinned by a snapshot and rendered
//! as GitHub would (CommonMark with tables) to check its table and its
//! collapsed diffs come out as such.

mod common;

use common::{example_copy, stepgate_in, unique};

#[test]
fn a_real_plan_as_a_pull_request_comment() {
    let stage = unique("md");
    let dir = example_copy("recipes", &stage);
    stepgate_in(&dir, &["deploy", "--stage", &stage]).ok();

    // A function removed with its branch, a machine added.
    std::fs::remove_dir_all(dir.join("lambdas/indexNewOwner")).unwrap();
    let path = dir.join("definitions/RecipeMover.asl.json");
    let mut definition: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let branches = definition["States"]["Reindex"]["Branches"]
        .as_array_mut()
        .unwrap();
    branches.retain(|b| b["StartAt"] != "IndexNewOwner");
    let definition = serde_json::to_string_pretty(&definition).unwrap();
    std::fs::write(&path, definition).unwrap();
    std::fs::write(
        dir.join("definitions/Audit.asl.json"),
        r#"{"StartAt": "Record", "States": {"Record": {"Type": "Pass", "End": true}}}"#,
    )
    .unwrap();

    let plan = stepgate_in(
        &dir,
        &[
            "plan", "--stage", &stage, "--memory", "256", "--output", "markdown", "--quiet",
        ],
    )
    .ok();
    // --quiet: the document on stdout is all (the open route's note is in it).
    assert!(plan.stderr.is_empty(), "{}", plan.stderr);
    let markdown = plan.stdout.replace(&stage, "STAGE");
    insta::assert_snapshot!("plan_markdown", markdown);

    let mut options = pulldown_cmark::Options::empty();
    options.insert(pulldown_cmark::Options::ENABLE_TABLES);
    let mut html = String::new();
    pulldown_cmark::html::push_html(
        &mut html,
        pulldown_cmark::Parser::new_ext(&plan.stdout, options),
    );
    for seen in [
        "<th>action</th><th>kind</th><th>name</th><th>fields</th>",
        "<td>🔴 delete</td><td>function</td><td><code>recipes-",
        "<td>🟢 create</td><td>state-machine</td>",
        "<td>🟡 update</td><td>state-machine</td>",
        "<details><summary>update state-machine <code>",
        "<pre><code class=\"language-diff\">",
        "<pre><code class=\"language-mermaid\">",
        "</details>",
    ] {
        assert!(html.contains(seen), "no {seen:?} in:\n{html}");
    }
    // Every <details> is closed, and the diff is inside one.
    assert_eq!(
        html.matches("<details>").count(),
        html.matches("</details>").count()
    );
    stepgate_in(&dir, &["destroy", "--stage", &stage, "--yes"]).ok();
}

#[test]
fn markdown_is_for_plan_only() {
    let run = common::stepgate(&["outputs", "--output", "markdown"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr.trim_end(),
        "error: --output markdown is for plan only (a pull-request comment); use text or json"
    );
}
