//! The command line itself, no AWS needed: `--help` for every command,
//! completions, the man page and the errors stepgate gives before it
//! talks to AWS, pinned by snapshots.

mod common;

/// Runs the binary with a clean environment; returns (code, stdout, stderr).
fn stepgate(args: &[&str]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(common::binary());
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") || key.starts_with("STEPGATE_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("AWS_REGION", "us-east-1");
    let run = common::run(cmd);
    (run.code, run.stdout, run.stderr)
}

#[test]
fn help_of_every_command() {
    for command in [
        "",
        "deploy",
        "plan",
        "destroy",
        "unlock",
        "outputs",
        "invoke",
        "keys",
        "completions",
        "man",
        "executions",
        "logs",
        "rollback",
        "history",
        "deployer-policy",
        "graph",
        "init",
        "adopt",
    ] {
        let args: Vec<&str> = command.split_whitespace().chain(["--help"]).collect();
        let (code, stdout, stderr) = stepgate(&args);
        assert_eq!(code, 0, "{stderr}");
        if !command.is_empty() {
            assert!(
                stdout.contains("Example:\n  stepgate "),
                "{command}: {stdout}"
            );
        }
        let name = if command.is_empty() {
            "stepgate"
        } else {
            command
        };
        insta::assert_snapshot!(format!("help_{name}"), stdout);
    }
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let (code, stdout, stderr) = stepgate(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {stderr}");
        assert!(
            stdout.contains("deploy") && stdout.contains("show-unchanged"),
            "{shell}"
        );
    }
    // The bash script at least parses.
    let (_, script, _) = stepgate(&["completions", "bash"]);
    let path =
        std::env::temp_dir().join(format!("stepgate-completion-{}.bash", std::process::id()));
    std::fs::write(&path, script).unwrap();
    let status = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let (code, _, stderr) = stepgate(&["completions", "tcsh"]);
    assert_eq!(code, 1, "{stderr}");
}

#[test]
fn man_pages_are_written_to_a_directory() {
    let dir = std::env::temp_dir().join(format!("stepgate-man-{}", std::process::id()));
    let (code, _, stderr) = stepgate(&["man", "--out-dir", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    for page in [
        "stepgate.1",
        "stepgate-deploy.1",
        "stepgate-plan.1",
        "stepgate-destroy.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.starts_with(".ie") && text.contains(".SH"), "{page}");
    }
    let (code, stdout, _) = stepgate(&["man"]);
    assert_eq!(code, 0);
    assert!(stdout.contains(".TH stepgate 1"), "{stdout:.200}");
}

/// The errors a person meets before any AWS call.
#[test]
fn errors_before_aws() {
    for (name, args) in [
        ("usage_unknown_flag", &["deploy", "--memroy", "256"][..]),
        ("usage_no_command", &[][..]),
        (
            "destroy_without_a_terminal",
            &["destroy", "--stage", "dev"][..],
        ),
        (
            "bad_lock_timeout",
            &["deploy", "--lock-timeout", "soon"][..],
        ),
    ] {
        let (code, stdout, stderr) = stepgate(args);
        assert_eq!(code, 1, "{name}: {stderr}");
        assert_eq!(stdout, "", "{name}");
        insta::assert_snapshot!(format!("error_{name}"), stderr);
    }
}

#[test]
fn the_deployer_policy_is_printed_for_the_stack_without_aws() {
    let (code, stdout, stderr) = stepgate(&["deployer-policy", "--stack", "web-shop"]);
    assert_eq!(code, 0, "{stderr}");
    let policy: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let text = policy.to_string();
    assert!(
        text.contains("arn:aws:lambda:*:*:function:web_shop-*"),
        "{text}"
    );
    assert!(!text.contains("${"), "{text}");
    let (code, _, stderr) = stepgate(&["deployer-policy", "--stack", "9lives"]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "error: --stack \"9lives\" is not valid: start with a letter, then use letters, digits or '-' (at most 24 characters)\n"
    );
}
