//! A stepgate.toml in the repository shapes what is deployed, per stage.

mod common;

use common::{project_copy, sdk_config, stepgate_in, unique};

#[tokio::test]
async fn a_stage_section_overrides_defaults_and_is_deployed() {
    let stage = unique("cfg");
    let s = stage.as_str();
    let project = project_copy(s);
    std::fs::write(
        project.join("stepgate.toml"),
        common::with_declarations(&format!(
            "[defaults]\nmemory = 128\nlog_retention_days = 7\n[defaults.tags]\nteam = \"payments\"\n\n\
             [stages.{s}]\nmemory = 256\ntimeout = 20\nlog_retention_days = 30\n\
             [stages.{s}.throttling]\nburst_limit = 20\nrate_limit = 10.0\n"
        )),
    )
    .unwrap();
    let deployed = stepgate_in(&project, &["deploy", "--stage", s]).ok();
    assert!(deployed.stderr.contains("Deploying"), "{}", deployed.stderr);

    let config = sdk_config().await;
    let function = aws_sdk_lambda::Client::new(&config)
        .get_function()
        .function_name(format!("orders-{s}-completeOrder"))
        .send()
        .await
        .unwrap();
    let c = function.configuration().unwrap();
    assert_eq!((c.memory_size(), c.timeout()), (Some(256), Some(20)));
    assert_eq!(
        function.tags().unwrap().get("team").map(String::as_str),
        Some("payments")
    );
    let groups = aws_sdk_cloudwatchlogs::Client::new(&config)
        .describe_log_groups()
        .log_group_name_prefix(format!("/aws/lambda/orders-{s}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups().len(), 2);
    assert!(groups
        .log_groups()
        .iter()
        .all(|g| g.retention_in_days() == Some(30)));

    // The throttling read back matches: the stack is converged.
    let plan = stepgate_in(&project, &["plan", "--stage", s, "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);

    // The command line wins over the file.
    let plan = stepgate_in(&project, &["plan", "--stage", s, "--memory", "512"]).ok();
    assert!(
        plan.stdout.contains("memory: 256 -> 512"),
        "{}",
        plan.stdout
    );

    stepgate_in(&project, &["destroy", "--stage", s, "--yes"]).ok();
}

#[test]
fn a_bad_config_value_names_the_file_line_and_key() {
    let project = project_copy(&unique("badcfg"));
    std::fs::write(
        project.join("stepgate.toml"),
        "[defaults]\nmemory = 128\nmemroy = 256\n",
    )
    .unwrap();
    let run = stepgate_in(&project, &["plan"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("stepgate.toml line 3"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("memroy"), "{}", run.stderr);
}
