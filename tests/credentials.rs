//! Credentials mean what they say: a profile named to stepgate is the one
//! used, even when the environment holds other keys, as with the AWS CLI.
//! The emulator derives the account from a 12-digit access key ID, so the
//! account in the JSON report shows which keys signed the requests.

mod common;

use std::path::{Path, PathBuf};

use common::{command, project_copy, unique, Run};

/// An AWS config file whose profile `p` gets its keys from a
/// credential_process that leaves `marker` behind when it runs.
fn profile_with_process(dir: &Path, account: &str) -> (PathBuf, PathBuf) {
    let marker = dir.join("process-ran");
    let script = dir.join("credentials.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch '{}'\necho '{{\"Version\":1,\"AccessKeyId\":\"{account}\",\"SecretAccessKey\":\"x\"}}'\n",
            marker.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.join("aws-config");
    std::fs::write(
        &config,
        format!("[profile p]\ncredential_process = {}\n", script.display()),
    )
    .unwrap();
    (config, marker)
}

fn run(dir: &Path, config: &Path, args: &[&str]) -> Run {
    let mut cmd = command(dir, args);
    cmd.env("AWS_CONFIG_FILE", config)
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("none"));
    common::run(cmd)
}

#[test]
fn a_named_profile_wins_over_keys_in_the_environment() {
    let stage = unique("prof");
    let dir = project_copy(&stage);
    let (config, marker) = profile_with_process(&dir, "111122223333");
    // The environment holds keys of account 000000000000 (common::command).
    let plan = run(
        &dir,
        &config,
        &[
            "plan",
            "--stage",
            &stage,
            "--profile",
            "p",
            "--output",
            "json",
        ],
    )
    .ok();
    assert_eq!(plan.json()["account"], "111122223333", "{}", plan.stderr);
    assert!(marker.exists(), "the credential process did not run");

    // The same from stepgate.toml, per stage.
    std::fs::remove_file(&marker).unwrap();
    std::fs::write(
        dir.join("stepgate.toml"),
        common::with_declarations(&format!("[stages.{stage}]\nprofile = \"p\"\n")),
    )
    .unwrap();
    let plan = run(
        &dir,
        &config,
        &["plan", "--stage", &stage, "--output", "json"],
    )
    .ok();
    assert_eq!(plan.json()["account"], "111122223333", "{}", plan.stderr);
    assert!(marker.exists());

    // The account guard sees the profile's account.
    let guarded = run(
        &dir,
        &config,
        &["plan", "--stage", &stage, "--account", "000000000000"],
    );
    assert_eq!(guarded.code, 1);
    assert!(
        guarded
            .stderr
            .contains("credentials belong to account 111122223333"),
        "{}",
        guarded.stderr
    );
}

#[test]
fn verbose_says_where_the_credentials_come_from() {
    let stage = unique("verb");
    let dir = project_copy(&stage);
    let (config, _) = profile_with_process(&dir, "111122223333");
    let source = |run: &Run| -> Vec<String> {
        run.stderr
            .lines()
            .filter(|l| l.starts_with("credentials: "))
            .map(str::to_string)
            .collect()
    };
    let with_profile = run(
        &dir,
        &config,
        &["plan", "--stage", &stage, "--profile", "p", "-v"],
    )
    .ok();
    assert_eq!(
        source(&with_profile),
        ["credentials: profile \"p\" (--profile \"p\"), from its credential_process; keys in the environment are not used"],
        "{}",
        with_profile.stderr
    );
    let from_env = run(&dir, &config, &["plan", "--stage", &stage, "--verbose"]).ok();
    assert_eq!(
        source(&from_env),
        ["credentials: the environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the first source in the AWS chain)"],
        "{}",
        from_env.stderr
    );
    let quiet = run(&dir, &config, &["plan", "--stage", &stage]).ok();
    assert!(source(&quiet).is_empty(), "{}", quiet.stderr);
}
