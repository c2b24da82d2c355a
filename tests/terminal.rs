//! What stepgate prints: the plain lines a pipeline sees (no terminal) are
//! pinned by snapshots, so any change to them shows up in review.

mod common;

use common::{stepgate, unique};

/// A run's output with what differs between runs replaced: the emulator's
/// address, the stage's unique name, the REST API's id and durations. Lines of one wave arrive in
/// any order, so on stderr each run of lines starting with the same word is
/// sorted.
fn normalise(text: &str, stage: &str, api_id: Option<&str>, sort: bool) -> String {
    let mut text = text
        .replace(&common::endpoint(), "[endpoint]")
        .replace(stage, "[stage]");
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

/// "1.2s" -> "T" wherever a number of seconds stands alone, and the total
/// of AWS calls (Lambda readiness is polled a varying number of times) -> N.
fn mask_durations(line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            if words.get(i + 1..i + 3) == Some(&["AWS", "calls,"]) {
                return "N".to_string();
            }
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
    assert_eq!(
        mask_durations("Done in 12.0s: 36 AWS calls, 2 mutating"),
        "Done in T: N AWS calls, 2 mutating"
    );
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

/// Runs stepgate under a pseudo-terminal (util-linux `script`), 120 columns
/// wide, with `TERM=xterm-256color` and no colour settings but `env`;
/// returns the exit code and everything the terminal received.
fn in_terminal(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = terminal_command(args, env);
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run `script` (util-linux) to get a pseudo-terminal");
    let run = common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    common::record(&cmd, &run);
    (run.code, run.stdout)
}

/// The `script` command that runs stepgate under a pseudo-terminal.
fn terminal_command(args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = common::command(dir, args);
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"));
    let mut line = format!("stty cols 120 rows 40; exec {}", quote(base.get_program()));
    for arg in base.get_args() {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]).current_dir(dir);
    for (key, value) in base.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    for key in ["NO_COLOR", "CLICOLOR", "CLICOLOR_FORCE"] {
        cmd.env_remove(key);
    }
    cmd.env("TERM", "xterm-256color").envs(env.iter().copied());
    cmd
}

/// On a terminal: a live line per resource in flight, each settling into
/// its coloured result, and a closing summary. NO_COLOR keeps the settled
/// lines and the summary without a single escape sequence.
#[test]
fn deploy_on_a_terminal_is_live_and_no_color_has_no_escapes() {
    let stage = unique("tty");
    let s = stage.as_str();
    let (code, live) = in_terminal(&["deploy", "--stage", s], &[]);
    assert_eq!(code, 0, "{live}");
    let green_created = "\u{1b}[32m+ created \u{1b}[0m role orders-";
    for seen in [
        // At least one line in flight was drawn (draws are rate-limited,
        // so not necessarily every one on a fast emulator).
        "creating ",
        green_created,
        "Done in ",
        "17 created",
        "2 unchanged",
        // 37 before API Gateway's 401/403/429 answers (six more gateway
        // responses) and versions (each function's and the machine's
        // first version, the two smoke orders, the `live` alias).
        "AWS calls: 49 mutating, ",
        "\u{1b}[2K", // a live line being redrawn
    ] {
        assert!(live.contains(seen), "no {seen:?} in:\n{live:?}");
    }

    let (code, plain) = in_terminal(&["destroy", "--stage", s, "--yes"], &[("NO_COLOR", "1")]);
    assert_eq!(code, 0, "{plain}");
    assert!(
        !plain.contains('\u{1b}'),
        "an escape sequence despite NO_COLOR:\n{plain:?}"
    );
    for seen in [
        &format!("  - deleted  function orders-{s}-completeOrder  "),
        "Done in ",
        "17 deleted, 2 kept. ",
        // 15 before versions: and the alias and each published version.
        "AWS calls: 19 mutating, ",
    ] {
        assert!(plain.contains(seen), "no {seen:?} in:\n{plain}");
    }
    let (code, again) = in_terminal(&["deploy", "--stage", s], &[("NO_COLOR", "1")]);
    assert_eq!(code, 0, "{again}");
    assert!(!again.contains('\u{1b}'), "{again:?}");
    assert!(again.contains("  + created  stage "), "{again}");
    stepgate(&["destroy", "--stage", s, "--yes"]).ok();
}

/// `-v` logs each AWS call, `-vv` adds the SDK's debug events, and neither
/// ever shows the credentials (here from a profile, with a session token)
/// or a request signature.
#[test]
fn verbose_logs_aws_calls_and_never_credentials() {
    const KEY_ID: &str = "AKIASTEPGATELEAKTEST";
    const SECRET: &str = "stepgateSecretKeyThatMustNeverBePrinted0";
    const TOKEN: &str = "stepgateSessionTokenThatMustNeverBePrinted";
    let stage = unique("vrb");
    let s = stage.as_str();
    let dir = std::env::temp_dir().join(format!("stepgate-creds-{s}"));
    std::fs::create_dir_all(&dir).unwrap();
    let credentials = dir.join("credentials");
    std::fs::write(
        &credentials,
        format!(
            "[leak]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\naws_session_token = {TOKEN}\n"
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut cmd = common::command(root, args);
        cmd.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
            .env("AWS_CONFIG_FILE", dir.join("config"))
            .env("AWS_PROFILE", "leak");
        let out = common::run(cmd);
        let stderr = out.stderr.clone();
        assert_eq!(out.code, 0, "{args:?}:\n{stderr}");
        for secret in [KEY_ID, SECRET, TOKEN] {
            assert!(!stderr.contains(secret), "{args:?} printed {secret}");
        }
        for (at, _) in stderr.match_indices("Signature=") {
            assert!(
                stderr[at..].starts_with("Signature=** redacted **"),
                "{args:?} printed a signature: {}",
                &stderr[at..(at + 80).min(stderr.len())]
            );
        }
        stderr
    };

    let deploy = run(&["deploy", "--stage", s, "-vv"]);
    for seen in [
        "stepgate::aws: IAM.CreateRole ok=true status=200 ",
        "retries=0",
        "DEBUG ",
        "aws_smithy_runtime",
        "Done in ",
    ] {
        assert!(
            deploy.contains(seen),
            "no {seen:?} in deploy -vv:\n{deploy}"
        );
    }
    let plan = run(&["plan", "--stage", s, "-v"]);
    assert!(
        plan.contains("INFO stepgate::aws: Lambda.GetFunction ok=true status=200 "),
        "{plan}"
    );
    assert!(
        !plan.contains("DEBUG"),
        "-v shows only stepgate's lines:\n{plan}"
    );
    let quiet = run(&["plan", "--stage", s]);
    assert!(!quiet.contains("stepgate::aws"), "{quiet}");
    run(&["destroy", "--stage", s, "--yes", "-vv"]);
}

/// The main errors a person meets against AWS, as they read them.
#[tokio::test]
async fn main_error_messages() {
    let stage = unique("err");
    let s = stage.as_str();
    let config = common::sdk_config().await;
    let mut shown = Vec::new();
    let mut error = |name: &str, args: &[&str]| {
        let run = stepgate(args);
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        shown.push(format!(
            "--- {name}\n{}",
            normalise(&run.stderr, s, None, false)
        ));
        run
    };
    error(
        "account guard",
        &["deploy", "--stage", s, "--account", "111111111111"],
    );
    error("not deployed", &["outputs", "--stage", s]);

    // Someone else's resource under the stack's name.
    let foreign = format!("/aws/lambda/orders-{s}-completeOrder");
    aws_sdk_cloudwatchlogs::Client::new(&config)
        .create_log_group()
        .log_group_name(&foreign)
        .send()
        .await
        .unwrap();
    let plan = error("conflict in plan", &["plan", "--stage", s]);
    assert!(
        plan.stdout
            .contains(&format!("! log-group {foreign} (conflict")),
        "{}",
        plan.stdout
    );
    error("conflict in deploy", &["deploy", "--stage", s]);
    aws_sdk_cloudwatchlogs::Client::new(&config)
        .delete_log_group()
        .log_group_name(&foreign)
        .send()
        .await
        .unwrap();

    // A lock held by a run on another host.
    let holder = serde_json::json!({
        "id": "ci-runner-7-4242-1", "command": "deploy", "host": "ci-runner-7", "pid": 4242,
        "since": "2026-01-01T00:00:00Z", "expires": "2999-01-01T00:00:00Z"
    });
    aws_sdk_ssm::Client::new(&config)
        .put_parameter()
        .name(format!("/stepgate/orders/{s}/lock"))
        .value(holder.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    error("locked", &["deploy", "--stage", s]);
    stepgate(&["unlock", "--stage", s]).ok();
    insta::assert_snapshot!("errors", shown.join("\n"));
}

/// destroy asks for the stage name on a terminal and takes it as typed,
/// a mistake erased with Backspace.
#[test]
fn destroy_confirmation_takes_the_typed_stage_name() {
    use std::io::{Read, Write};
    let stage = unique("ask");
    let s = stage.as_str();
    stepgate(&["deploy", "--stage", s, "--quiet"]).ok();
    let mut child = terminal_command(&["destroy", "--stage", s], &[("NO_COLOR", "1")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run `script` (util-linux) to get a pseudo-terminal");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let started = std::time::Instant::now();
    while !seen.lock().unwrap().contains("Type the stage name") {
        assert!(
            started.elapsed().as_secs() < 60,
            "no prompt: {}",
            seen.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    // Typed as a person types: one key at a time.
    let mut stdin = child.stdin.take().unwrap();
    let keys: Vec<String> = s
        .chars()
        .map(String::from)
        .chain(["x", "\x7f", "\r"].map(String::from))
        .collect();
    for key in keys {
        stdin.write_all(key.as_bytes()).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(status.code(), Some(0), "{seen}");
    assert!(seen.contains("17 deleted"), "{seen}");
}

/// A call AWS keeps throttling: `-v` logs each retry with the attempt and
/// AWS's error code, and on a terminal, once it has retried for 2 s, a
/// progress line says so. (STS, the run's first call, here: throttling is
/// retried like on any client; only a refused connection is not.)
#[test]
fn retries_are_logged_at_v_and_shown_on_a_terminal_after_two_seconds() {
    let proxy = common::Proxy::start(&["--rate", "0"]);
    let throttle = |count: u32| {
        proxy.config(serde_json::json!({"force": [
            {"operation": "sts.GetCallerIdentity", "fault": "throttle", "count": count}
        ]}));
    };
    throttle(2);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let verbose = common::run(common::command_at(&proxy.url, root, &["plan", "-v"]));
    assert_eq!(verbose.code, 0, "{}", verbose.stderr);
    for attempt in [2, 3] {
        let seen = format!("STS.GetCallerIdentity: attempt {attempt} after Throttling (");
        assert!(
            verbose.stderr.contains(&seen),
            "no {seen:?} in:\n{}",
            verbose.stderr
        );
    }
    assert!(!verbose.stderr.contains("attempt 4"), "{}", verbose.stderr);

    // Five throttles: the SDK's jittered backoff (up to 1, 2, 4, 8 and 16 s)
    // all but surely passes 2 s.
    throttle(5);
    let (code, screen) = in_terminal(&["plan"], &[("AWS_ENDPOINT_URL", &proxy.url)]);
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("retrying STS.GetCallerIdentity: attempt ")
            && screen.contains(", Throttling"),
        "no retry shown in:\n{screen:?}"
    );
}
