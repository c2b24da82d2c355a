//! Bad input never reaches AWS. Every class of input check in
//! docs/errors.md has a table here; each case asserts the one error line,
//! exit code 1 and that no connection at all was made to the endpoint (a
//! `Sentinel` counts them), so none of these tests needs the emulator.

mod common;

use std::path::{Path, PathBuf};

use common::{error_lines, offline, project_copy, unique, Run, Sentinel};

/// Runs stepgate against a fresh sentinel and asserts that it was refused
/// with one error line containing every `expected` text, exit code 1, an
/// empty stdout and no connection to the endpoint. Returns the error line.
#[track_caller]
fn refused(dir: &Path, args: &[&str], env: &[(&str, &str)], expected: &[&str]) -> String {
    let sentinel = Sentinel::start();
    let run = offline(dir, &sentinel.url, args, env);
    check_refused(&run, args, expected);
    assert_eq!(
        sentinel.connections(),
        0,
        "{args:?} reached the endpoint:\n{}",
        run.stderr
    );
    error_lines(&run)[0].to_string()
}

#[track_caller]
fn check_refused(run: &Run, args: &[&str], expected: &[&str]) {
    let errors = error_lines(run);
    assert_eq!(run.code, 1, "{args:?}:\n{}", run.stderr);
    assert_eq!(errors.len(), 1, "{args:?}: one error line:\n{}", run.stderr);
    for text in expected {
        assert!(
            errors[0].contains(text),
            "{args:?}: expected {text:?} in:\n{}",
            run.stderr
        );
    }
    assert!(run.stdout.is_empty(), "{args:?}: stdout:\n{}", run.stdout);
    // Nothing else: no progress, and no error running on to more lines.
    for line in run.stderr.lines() {
        assert!(
            line.starts_with("error: ") || line.starts_with("note: "),
            "{args:?}: stray line {line:?} in:\n{}",
            run.stderr
        );
    }
}

/// A copy of the project under a name of its own.
fn project(name: &str) -> PathBuf {
    project_copy(&unique(name))
}

#[test]
fn an_unwritable_outputs_file_is_refused_before_deploying() {
    let dir = project("out");
    std::fs::create_dir_all(dir.join("a-directory")).unwrap();
    let missing = "/nonexistent-dir/out.json";
    let here = dir.join("a-directory");
    let here = here.to_str().unwrap();
    for (path, expected) in [
        (
            missing,
            "--outputs-file /nonexistent-dir/out.json: the directory /nonexistent-dir does not exist; create it or name a file in an existing directory",
        ),
        (here, "is a directory; name a file"),
    ] {
        refused(&dir, &["deploy", "--outputs-file", path], &[], &[expected]);
    }
    // Nothing was left behind by the check.
    assert!(!Path::new(missing).exists());
}

/// Replaces `from` (which must be there) by `to` in a project file.
fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from:?} not in {file}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn policies_that_grant_everything_are_refused() {
    let states = "policies/states-permissions.json";
    let lambda = "policies/lambda-permissions.json";
    let trust = "policies/lambda-trust.json";
    let cases: [(&str, &str, &str, &[&str]); 9] = [
        (
            states,
            r#""Resource": ["${completeOrderArn}", "${completeOrderArn}:*", "${cancelOrderArn}", "${cancelOrderArn}:*"]"#,
            r#""Resource": "*""#,
            &[
                "states-permissions.json: statement 0 grants lambda:InvokeFunction on Resource \"*\", which matches every resource",
                "name the stack's own resources",
            ],
        ),
        (
            states,
            r#""Resource": ["${completeOrderArn}", "${completeOrderArn}:*", "${cancelOrderArn}", "${cancelOrderArn}:*"]"#,
            r#""Resource": "arn:aws:lambda:*:*:function:*""#,
            &["statement 0 grants lambda:InvokeFunction on Resource \"arn:aws:lambda:*:*:function:*\", which matches every resource"],
        ),
        (
            lambda,
            r#""Action": ["logs:CreateLogStream", "logs:PutLogEvents"]"#,
            r#""NotAction": "iam:*""#,
            &["lambda-permissions.json: statement 0 uses \"NotAction\", which allows every action it does not list; list the actions the stack needs under \"Action\" instead"],
        ),
        (
            lambda,
            r#""Resource": ["${completeOrderLogGroupArn}:*", "${cancelOrderLogGroupArn}:*"]"#,
            r#""NotResource": "arn:aws:s3:::secrets""#,
            &["statement 0 uses \"NotResource\", which allows every resource it does not list"],
        ),
        (
            lambda,
            r#""Action": ["logs:CreateLogStream", "logs:PutLogEvents"]"#,
            r#""Action": "*""#,
            &["statement 0 allows \"*\"; name the actions the stack needs instead"],
        ),
        (
            trust,
            r#""Principal": { "Service": "lambda.amazonaws.com" }"#,
            r#""Principal": "*""#,
            &["lambda-trust.json: statement 0 trusts Principal \"*\" (anyone); name the service that assumes the role"],
        ),
        (
            trust,
            r#""Principal": { "Service": "lambda.amazonaws.com" }"#,
            r#""Principal": { "AWS": ["arn:aws:iam::123456789012:root", "*"] }"#,
            &["statement 0 trusts Principal \"*\" (anyone)"],
        ),
        (
            trust,
            r#""Principal": { "Service": "lambda.amazonaws.com" }"#,
            r#""NotPrincipal": { "Service": "lambda.amazonaws.com" }"#,
            &["statement 0 uses \"NotPrincipal\", which trusts everyone it does not list"],
        ),
        (
            trust,
            r#""Effect": "Allow""#,
            r#""Effect": "allow""#,
            &["statement 0: \"Effect\" must be \"Allow\" or \"Deny\""],
        ),
    ];
    for (file, from, to, expected) in cases {
        let dir = project("policy");
        // Trust is generated; a file replaces it, and is checked as strictly.
        std::fs::write(
            dir.join(trust),
            r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": { "Service": "lambda.amazonaws.com" },
      "Action": "sts:AssumeRole"
    }
  ]
}
"#,
        )
        .unwrap();
        edit(&dir, file, from, to);
        for command in ["deploy", "plan"] {
            refused(&dir, &[command], &[], expected);
        }
    }
}

/// Writes `text` as the project's stepgate.toml.
fn config(dir: &Path, text: &str) {
    std::fs::write(dir.join("stepgate.toml"), text).unwrap();
}

#[test]
fn tags_aws_would_refuse_are_refused_naming_the_line() {
    for (text, expected) in [
        (
            "[defaults.tags]\n\"cost#center\" = \"42\"\n",
            "stepgate.toml line 2: tag \"cost#center\" has a character AWS does not allow in tag keys ('#'); use letters, digits, spaces and _ . : / = + - @",
        ),
        (
            "[stages.dev.tags]\nteam = \"pay|ments\"\n",
            "stepgate.toml line 2: tag \"team\" has a character AWS does not allow in tag values ('|')",
        ),
        (
            "[defaults.tags]\nnote = \"two\\nlines\"\n",
            "tag \"note\" has a character AWS does not allow in tag values ('\\n')",
        ),
    ] {
        let dir = project("tags");
        config(&dir, text);
        refused(&dir, &["deploy"], &[], &[expected]);
    }
}

#[test]
fn a_definition_over_the_step_functions_limit_is_refused() {
    let dir = project("defsize");
    let comment = "x".repeat(1_100_000);
    edit(
        &dir,
        "definitions/OrderProcessor.asl.json",
        "\"StartAt\"",
        &format!("\"Comment\": \"{comment}\", \"StartAt\""),
    );
    refused(
        &dir,
        &["deploy"],
        &[],
        &[
            "OrderProcessor.asl.json: the definition is 1,10",
            "bytes as sent to Step Functions, over its limit of 1,048,576 bytes; make it smaller",
        ],
    );
}

#[test]
fn every_file_stepgate_reads_is_read_with_a_bound() {
    let dir = project("bounds");
    let big = dir.join("big.json");
    std::fs::write(&big, vec![b' '; 300_000]).unwrap();
    let big = big.to_str().unwrap().to_string();
    let order_file = format!("@{big}");
    let huge_config = dir.join("huge.toml");
    std::fs::File::create(&huge_config)
        .unwrap()
        .set_len(2 << 20)
        .unwrap();
    let huge_config = huge_config.to_str().unwrap().to_string();
    let cases: [(&[&str], &str); 4] = [
        (
            &["invoke", "--order", "@/dev/zero"],
            "--order @/dev/zero: larger than 262,144 bytes, Step Functions' limit for an execution's input; send a smaller order",
        ),
        (
            &["invoke", "--order", &order_file],
            "larger than 262,144 bytes, Step Functions' limit for an execution's input",
        ),
        (
            &["plan", "--config", "/dev/zero"],
            "/dev/zero: larger than 1,048,576 bytes, the most stepgate reads from a config file; check that it is the right file",
        ),
        (
            &["plan", "--config", &huge_config],
            "huge.toml: larger than 1,048,576 bytes, the most stepgate reads from a config file",
        ),
    ];
    for (args, expected) in cases {
        refused(&dir, args, &[], &[expected]);
    }
    // A policy or definition file too large to be one.
    for (file, expected) in [
        (
            "policies/lambda-permissions.json",
            "lambda-permissions.json: larger than 1,048,576 bytes, the most stepgate reads from a policy file",
        ),
        (
            "definitions/OrderProcessor.asl.json",
            "OrderProcessor.asl.json: larger than 4,194,304 bytes, the most stepgate reads from a definition file",
        ),
    ] {
        let dir = project("bigfile");
        std::fs::File::options()
            .write(true)
            .open(dir.join(file))
            .unwrap()
            .set_len(5 << 20)
            .unwrap();
        refused(&dir, &["plan"], &[], &[expected]);
    }
}

/// Runs stepgate against a fresh sentinel and asserts that every local check
/// passed: the run went on to call the endpoint.
#[track_caller]
fn accepted(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let sentinel = Sentinel::start();
    let run = offline(dir, &sentinel.url, args, env);
    assert!(
        sentinel.connections() > 0,
        "{args:?} was refused locally:\n{}",
        run.stderr
    );
    run
}

/// What is wrong, how to make it so in a directory, and the error texts.
type Case = (&'static str, fn(&Path), &'static [&'static str]);

#[test]
fn files_a_lambda_package_cannot_hold_are_refused() {
    use std::os::unix::ffi::OsStrExt;

    let function = "lambdas/completeOrder";
    let cases: [Case; 7] = [
        (
            "a loop of symlinks that never reaches a file",
            |f| {
                std::os::unix::fs::symlink("b", f.join("a")).unwrap();
                std::os::unix::fs::symlink("a", f.join("b")).unwrap();
            },
            &["lambdas/completeOrder/", ": a loop of symlinks (", " -> ", "), which never reaches a file; fix or remove the link"],
        ),
        (
            "a symlink to itself",
            |f| std::os::unix::fs::symlink("self.js", f.join("self.js")).unwrap(),
            &["lambdas/completeOrder/self.js: a loop of symlinks (self.js -> self.js), which never reaches a file; fix or remove the link"],
        ),
        (
            "a named pipe",
            |f| {
                let ok = std::process::Command::new("mkfifo")
                    .arg(f.join("pipe"))
                    .status()
                    .unwrap();
                assert!(ok.success());
            },
            &["lambdas/completeOrder/pipe: is a named pipe, not a regular file or directory; remove it from", "lambdas/completeOrder"],
        ),
        (
            "a socket",
            |f| {
                std::mem::forget(std::os::unix::net::UnixListener::bind(f.join("sock")).unwrap());
            },
            &["lambdas/completeOrder/sock: is a socket, not a regular file or directory"],
        ),
        (
            "a dangling symlink",
            |f| std::os::unix::fs::symlink("/nonexistent/util.js", f.join("util.js")).unwrap(),
            &["lambdas/completeOrder/util.js: a symlink to /nonexistent/util.js, which does not exist; fix or remove the link"],
        ),
        (
            "a symlink loop",
            |f| {
                std::fs::create_dir(f.join("lib")).unwrap();
                std::os::unix::fs::symlink("..", f.join("lib/up")).unwrap();
            },
            &["lambdas/completeOrder/lib/up: a symlink back to", "which contains it, so the package would never end; remove the link"],
        ),
        (
            "a name that is not UTF-8",
            |f| {
                let name = std::ffi::OsStr::from_bytes(b"caf\xe9.js");
                std::fs::write(f.join(name), "module.exports = 1;\n").unwrap();
            },
            &["lambdas/completeOrder/caf\u{fffd}.js: the file name is not valid UTF-8; rename it (a Lambda zip holds UTF-8 names)"],
        ),
    ];
    for (what, setup, expected) in cases {
        let dir = project("files");
        setup(&dir.join(function));
        let message = refused(&dir, &["plan"], &[], expected);
        assert!(!message.contains("Duplicate"), "{what}: {message}");
    }

    // A symlinked directory is followed: its files are packaged under the
    // link's name.
    let dir = project("linkdir");
    std::fs::create_dir(dir.join("shared")).unwrap();
    std::fs::write(dir.join("shared/util.js"), "module.exports = 1;\n").unwrap();
    std::os::unix::fs::symlink("../../shared", dir.join(function).join("lib")).unwrap();
    accepted(&dir, &["plan"], &[]);
}

#[test]
fn packages_over_lambdas_size_limits_are_refused_before_upload() {
    // Sparse: 260 MB of files that take no disk space, refused before reading.
    let dir = project("unzipped");
    std::fs::File::create(dir.join("lambdas/cancelOrder/data.bin"))
        .unwrap()
        .set_len(260 * 1024 * 1024)
        .unwrap();
    refused(
        &dir,
        &["plan"],
        &[],
        &["lambdas/cancelOrder: its files come to 272,6", "over Lambda's limit of 262,144,000 bytes for a package once unzipped; remove what the function does not need"],
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // 60 MB that does not compress: refused as soon as the zip passes 50 MB.
    let dir = project("zipped");
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise: Vec<u8> = (0..60_000_000 / 8)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    std::fs::write(dir.join("lambdas/completeOrder/noise.bin"), noise).unwrap();
    let started = std::time::Instant::now();
    refused(
        &dir,
        &["plan"],
        &[],
        &["lambdas/completeOrder: the zip is over Lambda's limit of 52,428,800 bytes for a direct upload; remove what the function does not need"],
    );
    assert!(
        started.elapsed().as_secs() < 30,
        "took {:?}",
        started.elapsed()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_api_log_level_api_gateway_does_not_have_is_refused_naming_where() {
    let dir = project("loglevel");
    let allowed = "is not an API Gateway execution-logging level; use OFF, ERROR or INFO";
    for (args, env, expected) in [
        (
            &["deploy", "--api-log-level", "DEBUG"][..],
            &[][..],
            format!("--api-log-level \"DEBUG\" {allowed}"),
        ),
        (
            &["plan"],
            &[("STEPGATE_API_LOG_LEVEL", "info")],
            format!("STEPGATE_API_LOG_LEVEL=info {allowed}"),
        ),
    ] {
        refused(&dir, args, env, &[&expected]);
    }
    config(
        &dir,
        "[defaults]\nmemory = 128\n\n[stages.dev]\napi_log_level = \"VERBOSE\"\n",
    );
    refused(
        &dir,
        &["plan"],
        &[],
        &[&format!(
            "stepgate.toml line 5: api_log_level = \"VERBOSE\" {allowed}"
        )],
    );
}

#[test]
fn runtimes_lambda_no_longer_accepts_are_refused_with_the_replacement() {
    let dir = project("runtime");
    for (args, env, expected) in [
        (
            &["deploy", "--runtime", "nodejs14.x"][..],
            &[][..],
            "--runtime \"nodejs14.x\" is deprecated: Lambda deprecated it on 2023-12-04; use nodejs22.x",
        ),
        (
            &["deploy", "--runtime", "nodejs999.x"],
            &[],
            "--runtime \"nodejs999.x\" is not supported: the handlers need a Node.js runtime that Lambda accepts: nodejs22.x or nodejs24.x",
        ),
        (
            &["plan"],
            &[("STEPGATE_RUNTIME", "nodejs20.x")],
            "STEPGATE_RUNTIME=nodejs20.x is deprecated: Lambda deprecated it on 2026-04-30; use nodejs22.x",
        ),
    ] {
        refused(&dir, args, env, &[expected, "(Lambda's runtimes as checked on 2026-11-22)"]);
    }
    config(&dir, "[defaults]\nruntime = \"nodejs18.x\"\n");
    refused(
        &dir,
        &["plan"],
        &[],
        &["stepgate.toml line 2: runtime = \"nodejs18.x\" is deprecated: Lambda deprecated it on 2025-09-01; use nodejs22.x"],
    );
}

#[test]
fn handlers_that_would_fail_on_the_first_order_are_refused() {
    let index = "lambdas/completeOrder/index.js";
    let cases: [(&str, &str, &str, &[&str]); 5] = [
        (
            index,
            "status: 'Approved',\n  },",
            "status: 'Approved',\n  ",
            &["lambdas/completeOrder/index.js:13: SyntaxError: Unexpected token ')'", "; fix it (node --check ./lambdas/completeOrder/index.js shows where)"],
        ),
        (
            index,
            "exports.completeOrder =",
            "exports.completeOrdr =",
            &["lambdas/completeOrder/index.js does not export a function named completeOrder, which the handler index.completeOrder needs; export it, e.g. exports.completeOrder = async (event) => ..."],
        ),
        (
            index,
            "exports.completeOrder = async (event) => ({",
            "exports.completeOrder = 42; const unused = (event) => ({",
            &["lambdas/completeOrder/index.js exports completeOrder as a number, not a function"],
        ),
        (
            index,
            "'use strict';",
            "'use strict'; require('./no-such-module');",
            &["lambdas/completeOrder/index.js: loading it failed: Error: Cannot find module './no-such-module'"],
        ),
        (
            "lambdas/cancelOrder/index.js",
            "'use strict';",
            "'use strict';\nfunction (",
            &["lambdas/cancelOrder/index.js:2: SyntaxError: "],
        ),
    ];
    for (file, from, to, expected) in cases {
        let dir = project("handler");
        edit(&dir, file, from, to);
        refused(&dir, &["deploy"], &[], expected);
    }

    // Every packaged file is checked, not only the handler's.
    let dir = project("handler");
    std::fs::write(
        dir.join("lambdas/completeOrder/util.js"),
        "module.exports = {;\n",
    )
    .unwrap();
    refused(
        &dir,
        &["plan"],
        &[],
        &["lambdas/completeOrder/util.js:1: SyntaxError: "],
    );

    // An ES module handler passes, and is checked the same way.
    let dir = project("esm");
    let function = dir.join("lambdas/cancelOrder");
    std::fs::remove_file(function.join("index.js")).unwrap();
    std::fs::write(
        function.join("index.mjs"),
        "export const cancelOrder = async () => ({});\n",
    )
    .unwrap();
    accepted(&dir, &["plan"], &[]);
    std::fs::write(
        function.join("index.mjs"),
        "export const cancel = async () => ({});\n",
    )
    .unwrap();
    refused(
        &dir,
        &["plan"],
        &[],
        &["lambdas/cancelOrder/index.mjs does not export a function named cancelOrder"],
    );
}

#[test]
fn without_node_the_handler_check_is_skipped_with_one_note() {
    let dir = project("nonode");
    edit(
        &dir,
        "lambdas/completeOrder/index.js",
        "exports.completeOrder =",
        "exports.x =",
    );
    let run = accepted(&dir, &["plan"], &[("PATH", "/nonexistent")]);
    let notes = run
        .stderr
        .lines()
        .filter(|l| l.contains("node is not on the PATH"))
        .count();
    assert_eq!(notes, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("so the handlers were not checked before upload (syntax, exports); install Node.js to check them"),
        "{}",
        run.stderr
    );
}

#[test]
fn models_that_are_not_draft_4_schemas_are_refused_before_create_model() {
    let model = "models/Order.schema.json";
    for (from, to, expected) in [
        (
            r#""orderId": { "type": "string", "minLength": 1 }"#,
            r#""orderId": { "type": "banana", "minLength": 1 }"#,
            "Order.schema.json: not a valid JSON Schema draft 4, which API Gateway requires of a model: /properties/orderId/type: \"banana\" is not a draft-4 schema value here",
        ),
        (
            r#""required": ["orderId", "customerName", "orderDate", "orderAmount", "paymentStatus"]"#,
            r#""required": "orderId""#,
            "Order.schema.json: not a valid JSON Schema draft 4, which API Gateway requires of a model: /required: \"orderId\" is not a draft-4 schema value here",
        ),
    ] {
        let dir = project("model");
        edit(&dir, model, from, to);
        refused(&dir, &["plan"], &[], &[expected]);
    }
}

/// Whether the `node` on the PATH has a permission model (node 20 and later).
fn node_has_permissions() -> bool {
    let out = std::process::Command::new("node")
        .arg("--version")
        .output()
        .expect("these tests need node on the PATH");
    let version = String::from_utf8_lossy(&out.stdout);
    let major: u32 = (version.trim().trim_start_matches('v').split('.').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    major >= 20
}

#[test]
fn the_handler_check_hands_no_secret_to_project_code() {
    let dir = project("secrets");
    let leaked = dir.join("leaked-env.json");
    let spawned = dir.join("spawned-env.txt");
    // Top-level code, as an untrusted pull request could hold: it runs
    // when plan checks the handler's exports.
    let hostile = format!(
        r#"'use strict';
const fs = require('node:fs');
try {{ fs.writeFileSync({leaked:?}, JSON.stringify(process.env)); }} catch (e) {{}}
try {{ require('node:child_process').execSync('env > {spawned}'); }} catch (e) {{}}
const seen = Object.keys(process.env).filter((k) => /^AWS_|TOKEN|SECRET/.test(k));
if (seen.length) throw new Error('the check handed over ' + seen.join(' '));
"#,
        spawned = spawned.display()
    );
    edit(
        &dir,
        "lambdas/cancelOrder/index.js",
        "'use strict';",
        &hostile,
    );
    let secrets = [
        ("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKE"),
        ("AWS_SECRET_ACCESS_KEY", "fake-secret-key"),
        ("AWS_SESSION_TOKEN", "fake-session-token"),
        ("GITHUB_TOKEN", "ghp_fake"),
    ];
    let run = accepted(&dir, &["plan"], &secrets);
    assert!(!run.stderr.contains("handed over"), "{}", run.stderr);
    for file in [&leaked, &spawned] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for (name, value) in secrets {
            assert!(
                !text.contains(name) && !text.contains(value),
                "{file:?}: {text}"
            );
        }
        if node_has_permissions() {
            assert!(!file.exists(), "the handler check let {file:?} be written");
        }
    }
}

/// An AWS config file with profile `work` (static keys) and `broken`
/// (a credential process that fails); returns its path.
fn aws_config(dir: &Path) -> String {
    let path = dir.join("aws-config");
    std::fs::write(
        &path,
        "[profile work]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = secret\n\n\
         [profile broken]\ncredential_process = /bin/false\n",
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn an_unknown_profile_is_refused_before_any_call() {
    let dir = project("profile");
    let file = aws_config(&dir);
    let env = [("AWS_CONFIG_FILE", file.as_str())];
    let known = "is not a profile in the AWS config files; profiles there: broken, work. Name one of them, or create it (aws configure --profile nosuch)";
    refused(
        &dir,
        &["deploy", "--profile", "nosuch"],
        &env,
        &[&format!("--profile \"nosuch\" {known}")],
    );
    let env_var = [
        ("AWS_CONFIG_FILE", file.as_str()),
        ("STEPGATE_PROFILE", "nosuch"),
    ];
    refused(
        &dir,
        &["outputs"],
        &env_var,
        &[&format!("STEPGATE_PROFILE=nosuch {known}")],
    );
    config(&dir, "[stages.dev]\nprofile = \"nosuch\"\n");
    refused(
        &dir,
        &["destroy", "--yes"],
        &env,
        &[&format!(
            "stepgate.toml line 2: profile = \"nosuch\" {known}"
        )],
    );
    // Without any config file.
    std::fs::remove_file(dir.join("stepgate.toml")).unwrap();
    refused(
        &dir,
        &["plan", "--profile", "nosuch"],
        &[],
        &[
            "--profile \"nosuch\" is not a profile in the AWS config files, which have none (",
            "no-aws-config, ",
            "); create it (aws configure --profile nosuch) or point AWS_CONFIG_FILE at the file that has it",
        ],
    );
}

#[test]
fn credential_errors_are_one_line_with_a_hint() {
    let dir = project("nocreds");
    let file = aws_config(&dir);
    let no_keys = [("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")];
    refused(
        &dir,
        &["plan"],
        &no_keys,
        &["error: no AWS credentials found (the AWS chain looked in environment variables, the AWS config files, web identity, container and instance metadata); pass --profile or set AWS_PROFILE, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"],
    );
    let message = refused(
        &dir,
        &["plan", "--profile", "broken"],
        &[("AWS_CONFIG_FILE", file.as_str())],
        &["error: cannot get AWS credentials from profile \"broken\": ", "; fix the profile in the AWS config files (stepgate -v shows where the credentials come from)"],
    );
    assert!(!message.contains("Attempted"), "{message}");
}

#[test]
fn a_closed_or_wrong_endpoint_is_named_in_one_line() {
    let dir = project("endpoint");
    let closed = offline(&dir, "http://127.0.0.1:9", &["plan"], &[]);
    check_refused(
        &closed,
        &["plan"],
        &[
            "error: cannot reach AWS at http://127.0.0.1:9 (STS GetCallerIdentity): ",
            "Connection refused",
            "; check --endpoint-url or AWS_ENDPOINT_URL, and that the endpoint is up",
        ],
    );
    let sentinel = Sentinel::start();
    let wrong = offline(&dir, &sentinel.url, &["outputs"], &[]);
    check_refused(
        &wrong,
        &["outputs"],
        &[&format!(
            "error: {} answered STS GetCallerIdentity with HTTP 404, which is not an AWS answer; check --endpoint-url or AWS_ENDPOINT_URL",
            sentinel.url
        )],
    );
}

#[test]
fn a_password_in_the_endpoint_url_is_never_shown() {
    let dir = project("userinfo");
    let closed = "http://deployer:s3cret-pw@127.0.0.1:9";
    let run = offline(&dir, closed, &["plan"], &[]);
    check_refused(
        &run,
        &["plan"],
        &["error: cannot reach AWS at http://***@127.0.0.1:9 (STS GetCallerIdentity): "],
    );
    let sentinel = Sentinel::start();
    let wrong = sentinel
        .url
        .replace("http://", "http://deployer:s3cret-pw@");
    let run = offline(&dir, &wrong, &["outputs", "-v"], &[]);
    assert!(
        run.stderr.contains(&format!(
            "{} answered STS GetCallerIdentity with HTTP 404",
            sentinel.url.replace("http://", "http://***@")
        )),
        "{}",
        run.stderr
    );
    let run = offline(
        &dir,
        closed,
        &[
            "plan",
            "--endpoint-url",
            "ftp://deployer:s3cret-pw@example.com/",
        ],
        &[],
    );
    check_refused(
        &run,
        &["plan"],
        &["error: --endpoint-url \"ftp://***@example.com/\" is not a URL: it must start with http:// or https://"],
    );
    let run = offline(
        &dir,
        closed,
        &["plan"],
        &[(
            "STEPGATE_ENDPOINT_URL",
            "ftp://deployer:s3cret-pw@example.com/",
        )],
    );
    check_refused(
        &run,
        &["plan"],
        &["error: STEPGATE_ENDPOINT_URL=ftp://***@example.com/ is not a URL"],
    );
    // Nothing anywhere: not in an error, a progress line or a -v log line.
    // (Against the sentinel, which answers at once: a closed port is
    // retried for most of a minute.)
    for run in [
        offline(&dir, &wrong, &["plan", "-vv"], &[]),
        offline(&dir, &wrong, &["deploy", "-vv"], &[]),
        offline(&dir, &wrong, &["invoke", "-vv"], &[]),
    ] {
        assert!(
            !run.stderr.contains("s3cret") && !run.stdout.contains("s3cret"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn negative_numbers_are_values_and_checked_as_such() {
    let dir = project("negative");
    for (flag, value, expected) in [
        (
            "--memory",
            "-5",
            "--memory -5 is out of range; Lambda memory must be 128..=10240 MB",
        ),
        (
            "--timeout",
            "-1",
            "--timeout -1 is out of range; a Lambda timeout must be 1..=900 seconds",
        ),
        (
            "--log-retention-days",
            "-7",
            "--log-retention-days -7 is not a retention CloudWatch Logs allows",
        ),
    ] {
        refused(&dir, &["plan", flag, value], &[], &[expected]);
    }
}

/// Runs stepgate against a fresh sentinel and asserts that clap refused
/// the command line: exit 1, nothing on stdout, no connection, and a first
/// line that contains every `expected` text (then clap's usual pointer to
/// --help, and nothing else). Returns that line.
#[track_caller]
fn usage_refused(args: &[&str], expected: &[&str]) -> String {
    let sentinel = Sentinel::start();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = offline(dir, &sentinel.url, args, &[]);
    assert_eq!(run.code, 1, "{args:?}:\n{}", run.stderr);
    assert!(run.stdout.is_empty(), "{args:?}: stdout:\n{}", run.stdout);
    assert_eq!(sentinel.connections(), 0, "{args:?} reached the endpoint");
    let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        lines.len() <= 2 && lines[0].starts_with("error: "),
        "{args:?}: one error line:\n{}",
        run.stderr
    );
    if let Some(more) = lines.get(1) {
        assert_eq!(*more, "For more information, try '--help'.", "{args:?}");
    }
    for text in expected {
        assert!(
            lines[0].contains(text),
            "{args:?}: expected {text:?} in:\n{}",
            run.stderr
        );
    }
    lines[0].to_string()
}

/// Runs stepgate against a fresh sentinel and asserts that the command
/// line was accepted: the run got as far as calling the endpoint.
#[track_caller]
fn usage_accepted(args: &[&str]) {
    let sentinel = Sentinel::start();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = offline(dir, &sentinel.url, args, &[]);
    assert!(
        sentinel.connections() > 0,
        "{args:?} was refused before any call:\n{}",
        run.stderr
    );
}

#[test]
fn negative_values_of_every_numeric_flag_are_named_as_such() {
    for (args, expected) in [
        (
            &["logs", "--since", "-5m"][..],
            "invalid value '-5m' for '--since <DURATION>': a duration cannot be negative",
        ),
        (
            &["deploy", "--lock-timeout", "-5s"][..],
            "invalid value '-5s' for '--lock-timeout <DURATION>': a duration cannot be negative",
        ),
        (
            &["destroy", "--yes", "--lock-timeout", "-1h"][..],
            "invalid value '-1h' for '--lock-timeout <DURATION>': a duration cannot be negative",
        ),
        (
            &["executions", "--limit", "-1"][..],
            "invalid value '-1' for '--limit <N>': -1 is not in 1..=1000",
        ),
    ] {
        let line = usage_refused(args, &[expected]);
        assert!(!line.contains("unexpected argument"), "{line}");
    }
    // A flag where a duration should be is not taken for a negative one.
    usage_refused(
        &["logs", "--since", "--follow"],
        &["invalid value '--follow' for '--since <DURATION>': not a duration"],
    );
}

#[test]
fn every_duration_and_count_flag_is_bounded_at_parse_time() {
    for (args, expected) in [
        (
            &["logs", "--since", "9223372036854776s"][..],
            "invalid value '9223372036854776s' for '--since <DURATION>': longer than 3653d, the longest CloudWatch Logs keeps events; give at most that",
        ),
        (&["logs", "--since", "999999999999d"][..], "longer than 3653d"),
        (&["logs", "--since", "3653d 1s"][..], "longer than 3653d"),
        (
            &["logs", "--since", "99999999999999999999999s"][..],
            "invalid value '99999999999999999999999s' for '--since <DURATION>': number is too large",
        ),
        (
            &["deploy", "--lock-timeout", "10000000000000000000s"][..],
            "invalid value '10000000000000000000s' for '--lock-timeout <DURATION>': longer than 24h; give at most that",
        ),
        (&["deploy", "--lock-timeout", "24h 1s"][..], "longer than 24h"),
        (&["executions", "--limit", "0"][..], "0 is not in 1..=1000"),
        (&["executions", "--limit", "1001"][..], "1001 is not in 1..=1000"),
        (
            &["executions", "--limit", "99999999999999999999"][..],
            "invalid value '99999999999999999999' for '--limit <N>'",
        ),
        (
            &["plan", "--memory", "99999999999"][..],
            "invalid value '99999999999' for '--memory <MB>'",
        ),
        (
            &["plan", "--timeout", "-99999999999"][..],
            "invalid value '-99999999999' for '--timeout <SECONDS>'",
        ),
        (
            &["plan", "--log-retention-days", "99999999999"][..],
            "invalid value '99999999999' for '--log-retention-days <DAYS>'",
        ),
    ] {
        usage_refused(args, &[expected]);
    }
    // The limits themselves are accepted.
    for args in [
        &["logs", "--since", "3653d"][..],
        &["logs", "--since", "0s"][..],
        &["executions", "--limit", "1"][..],
        &["executions", "--limit", "1000"][..],
        &["deploy", "--lock-timeout", "24h"][..],
        &["deploy", "--lock-timeout", "0s"][..],
    ] {
        usage_accepted(args);
    }
}

#[test]
fn the_project_dir_hint_appears_only_when_it_applies() {
    let empty = std::env::temp_dir().join(unique("stepgate-empty-"));
    std::fs::create_dir_all(&empty).unwrap();
    let shown = empty.to_str().unwrap();
    let dir = project("hint");
    // Named explicitly: the hint is about the directory named, not "pass it".
    for (args, env) in [
        (vec!["plan", "--project-dir", shown], vec![]),
        (vec!["plan"], vec![("STEPGATE_PROJECT_DIR", shown)]),
    ] {
        let message = refused(
            &dir,
            &args,
            &env,
            &[&format!(
                "{shown} holds no lambdas/ with a function directory; create it, or name the project's directory"
            )],
        );
        assert!(!message.contains("pass --project-dir"), "{message}");
    }
    // A file missing from a project that is there says what is missing,
    // not to name another directory, whether or not the project was named.
    std::fs::remove_file(dir.join("models/Order.schema.json")).unwrap();
    let project_dir = dir.to_str().unwrap();
    for (cwd, args) in [
        (empty.as_path(), &["plan", "--project-dir", project_dir][..]),
        (dir.as_path(), &["plan"][..]),
    ] {
        let message = refused(
            cwd,
            args,
            &[],
            &["models/Order.schema.json: cannot read it"],
        );
        assert!(!message.contains("--project-dir"), "{message}");
        assert!(!message.contains("name the"), "{message}");
    }
    // A function directory that is there but empty: the file is missing,
    // not the directory.
    let dir = project("hint-empty");
    let function = dir.join("lambdas/cancelOrder");
    std::fs::remove_dir_all(&function).unwrap();
    std::fs::create_dir(&function).unwrap();
    let message = refused(
        &dir,
        &["plan"],
        &[],
        &["lambdas/cancelOrder: no index.js, index.mjs or index.cjs; the handler index.cancelOrder is loaded from there, so add it (or set [functions.cancelOrder] handler)"],
    );
    assert!(!message.contains("--project-dir"), "{message}");
    // Not named: run from the project directory, or name it.
    refused(
        &empty,
        &["plan"],
        &[],
        &["run stepgate from the project directory or pass --project-dir"],
    );
}

#[test]
fn a_role_to_assume_that_cannot_be_right_is_refused_before_sts() {
    let dir = project("role");
    for (args, env, expected) in [
        (
            &["plan", "--role-arn", "deployer"][..],
            &[][..],
            "--role-arn \"deployer\" is not an IAM role ARN: expected arn:aws:iam::123456789012:role/NAME",
        ),
        (
            &["deploy", "--external-id", "pipeline-7"][..],
            &[][..],
            "--external-id \"pipeline-7\" is given without a role to assume; add --role-arn",
        ),
        (
            &["deploy", "--role-arn", "arn:aws:iam::111111111111:role/deployer"][..],
            &[("STEPGATE_ACCOUNT", "222222222222")][..],
            "is a role in account 111111111111, but STEPGATE_ACCOUNT=222222222222 pins the run to account 222222222222",
        ),
        (
            &["plan", "--role-arn", "arn:aws-cn:iam::111111111111:role/deployer"][..],
            &[][..],
            "--role-arn \"arn:aws-cn:iam::111111111111:role/deployer\" is a role in the aws-cn partition, but AWS_REGION=us-east-1 is a region of the aws partition; assume a role of the aws partition (arn:aws:iam::...), or name a region of aws-cn",
        ),
        (
            &["plan", "--region", "cn-north-1", "--role-arn", "arn:aws:iam::111111111111:role/deployer"][..],
            &[][..],
            "is a role in the aws partition, but --region \"cn-north-1\" is a region of the aws-cn partition; assume a role of the aws-cn partition (arn:aws-cn:iam::...), or name a region of aws",
        ),
        (
            &["plan", "--region", "eu-west-1", "--role-arn", "arn:aws-us-gov:iam::111111111111:role/deployer"][..],
            &[][..],
            "is a role in the aws-us-gov partition, but --region \"eu-west-1\" is a region of the aws partition",
        ),
    ] {
        refused(&dir, args, env, &[expected]);
    }
    // A role of the region's partition goes on to STS.
    accepted(
        &dir,
        &[
            "plan",
            "--region",
            "cn-north-1",
            "--role-arn",
            "arn:aws-cn:iam::111111111111:role/deployer",
        ],
        &[],
    );
}

/// Writes `text` as the project's one smoke order.
fn smoke(dir: &Path, text: &str) {
    std::fs::create_dir_all(dir.join("smoke")).unwrap();
    std::fs::write(dir.join("smoke/order.json"), text).unwrap();
}

/// Every declaration error of the stack (docs/errors.md, "The declared
/// stack") is one line naming the file and key, before any AWS call.
#[test]
fn every_declaration_error_is_caught_before_any_aws_call() {
    const ROUTE: &str = r#"input = { id = "path.id", user_id = "body.user_id" }"#;
    // What is wrong, how to make it so in a copy of the example, and what
    // the one error line says.
    type Case = (&'static str, Box<dyn Fn(&Path)>, Vec<&'static str>);
    let cases: Vec<Case> = vec![
        (
            "a route to an unknown machine, with did you mean",
            Box::new(|d: &Path| edit(d, "stepgate.toml", "state_machine = \"RecipeMover\"", "state_machine = \"RecipeMovr\"")),
            vec!["stepgate.toml line 9: [[routes]] POST /recipes/{id}/move: state_machine = \"RecipeMovr\" is not a state machine of the project", "(did you mean RecipeMover?)"],
        ),
        (
            "input naming a path parameter the path does not have",
            Box::new(|d: &Path| edit(d, "stepgate.toml", ROUTE, r#"input = { id = "path.recipe" }"#)),
            vec!["input.id = \"path.recipe\", but the path has no {recipe}; use one of its parameters (id)"],
        ),
        (
            "sync on a Standard machine",
            Box::new(|d: &Path| edit(d, "stepgate.toml", ROUTE, &format!("{ROUTE}\nsync = true"))),
            vec!["sync = true needs an EXPRESS machine, and RecipeMover is STANDARD"],
        ),
        (
            "two routes with one method and path",
            Box::new(|d: &Path| {
                let text = std::fs::read_to_string(d.join("stepgate.toml")).unwrap();
                let route = &text[text.find("[[routes]]").unwrap()..];
                std::fs::write(d.join("stepgate.toml"), format!("{text}\n{route}")).unwrap();
            }),
            vec!["[[routes]] POST /recipes/{id}/move is declared twice; keep one"],
        ),
        (
            "a function directory without its handler file",
            Box::new(|d: &Path| std::fs::create_dir_all(d.join("lambdas/notifyOwner")).unwrap()),
            vec!["lambdas/notifyOwner: no index.js, index.mjs or index.cjs; the handler index.notifyOwner is loaded from there"],
        ),
        (
            "a name that makes an AWS name too long",
            Box::new(|d: &Path| {
                let long = d.join(format!("lambdas/{}", "x".repeat(60)));
                std::fs::create_dir_all(&long).unwrap();
                std::fs::write(long.join("index.js"), "exports.x = 1;\n").unwrap();
            }),
            vec!["over Lambda's limit of 64; shorten the directory's name or the stack or stage"],
        ),
        (
            "two machines that start each other",
            Box::new(|d: &Path| {
                std::fs::write(
                    d.join("definitions/Echo.asl.json"),
                    r#"{"StartAt":"Back","States":{"Back":{"Type":"Task","Resource":"arn:aws:states:::states:startExecution","Parameters":{"StateMachineArn":"${RecipeMoverArn}"},"End":true}}}"#,
                )
                .unwrap();
                edit(d, "definitions/RecipeMover.asl.json", "\"End\": true\n    }\n  }", "\"Next\": \"Echo\"\n    },\n    \"Echo\": { \"Type\": \"Task\", \"Resource\": \"arn:aws:states:::states:startExecution\", \"Parameters\": { \"StateMachineArn\": \"${EchoArn}\" }, \"End\": true }\n  }");
            }),
            vec!["state machines start each other (Echo -> RecipeMover -> Echo)"],
        ),
        (
            "a table for a function that does not exist",
            Box::new(|d: &Path| common::append_text(d, "[functions.updateRecipes]\nmemory = 256\n")),
            vec!["[functions.updateRecipes] names no function: there is no lambdas/updateRecipes/", "(did you mean updateRecipe?)"],
        ),
        (
            "a source that is not one",
            Box::new(|d: &Path| edit(d, "stepgate.toml", ROUTE, r#"input = { id = "cookie.id" }"#)),
            vec!["input.id: \"cookie.id\" is not a source; use body, body.FIELD, path.NAME"],
        ),
        (
            "errors on a route that is not sync",
            Box::new(|d: &Path| edit(d, "stepgate.toml", ROUTE, &format!("{ROUTE}\nerrors = {{ Refused = 422 }}"))),
            vec!["errors maps a sync route's failures to statuses; this route is not sync = true"],
        ),
        (
            "a machine type that is not one",
            Box::new(|d: &Path| common::append_text(d, "[state_machines.RecipeMover]\ntype = \"FAST\"\n")),
            vec!["[state_machines.RecipeMover] type = \"FAST\": use STANDARD, EXPRESS"],
        ),
        (
            "a reserved environment variable",
            Box::new(|d: &Path| common::append_text(d, "[functions.updateRecipe]\nenvironment = { AWS_REGION = \"x\" }\n")),
            vec!["[functions.updateRecipe] environment: \"AWS_REGION\" is not a name Lambda accepts"],
        ),
        (
            "a path segment that is not valid",
            Box::new(|d: &Path| edit(d, "stepgate.toml", "path = \"/recipes/{id}/move\"", "path = \"/recipes/{id}/mo ve\"")),
            vec!["[[routes]] #1 path \"/recipes/{id}/mo ve\": segment \"mo ve\" is not valid"],
        ),
        (
            "a route without auth",
            Box::new(|d: &Path| edit(d, "stepgate.toml", "auth = \"none\"", "")),
            vec!["stepgate.toml line 7: [[routes]] POST /recipes/{id}/move: no auth; say who may call it"],
        ),
        (
            "an unknown authorizer, with did you mean",
            Box::new(|d: &Path| {
                edit(d, "stepgate.toml", "auth = \"none\"", "auth = \"pools\"");
                common::append_text(d, "[authorizers.pool]\ntype = \"cognito\"\nuser_pool_arns = [\"arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_Ab1\"]\n");
            }),
            vec!["stepgate.toml line 12: [[routes]] POST /recipes/{id}/move: auth = \"pools\" is not none, iam or an authorizer", "(did you mean pool?)"],
        ),
        (
            "a Lambda authorizer naming a missing function",
            Box::new(|d: &Path| common::append_text(d, "[authorizers.gate]\ntype = \"lambda\"\nfunction = \"checkTokn\"\n")),
            vec!["[authorizers.gate] function = \"checkTokn\" is not a function of the project"],
        ),
        (
            "a malformed user pool ARN",
            Box::new(|d: &Path| common::append_text(d, "[authorizers.pool]\ntype = \"cognito\"\nuser_pool_arns = [\"us-east-1_Ab1\"]\n")),
            vec!["[authorizers.pool] user_pool_arns: \"us-east-1_Ab1\" is not a user pool ARN"],
        ),
        (
            "a malformed CIDR",
            Box::new(|d: &Path| common::append_text(d, "[api]\nallow_source_ips = [\"203.0.113.0/33\"]\n")),
            vec!["[api] allow_source_ips: \"203.0.113.0/33\" is not a CIDR or an IP address"],
        ),
        (
            "a malformed VPC endpoint id",
            Box::new(|d: &Path| common::append_text(d, "[api]\nallow_vpc_endpoints = [\"vpc-123\"]\n")),
            vec!["[api] allow_vpc_endpoints: \"vpc-123\" is not a VPC endpoint id"],
        ),
        (
            "scopes on a route without a Cognito authorizer",
            Box::new(|d: &Path| edit(d, "stepgate.toml", "auth = \"none\"", "auth = \"iam\"\nscopes = [\"recipes/move\"]")),
            vec!["scopes are checked by a Cognito authorizer, and this route's auth is \"iam\""],
        ),
        (
            "api_key without keys",
            Box::new(|d: &Path| edit(d, "stepgate.toml", "auth = \"none\"", "auth = \"none\"\napi_key = true")),
            vec!["api_key = true, but [api] keys names no key"],
        ),
        (
            "a quota period that is not one",
            Box::new(|d: &Path| common::append_text(d, "[api]\nkeys = [\"shop\"]\n[api.usage_plan]\nquota = { limit = 10, period = \"YEAR\" }\n")),
            vec!["[api.usage_plan] quota period = \"YEAR\": use DAY, WEEK or MONTH"],
        ),
        (
            "a smoke order naming a route the project does not have",
            Box::new(|d: &Path| smoke(d, r#"{"route": "POST /recipes/{id}/mov", "expect": {"status": "SUCCEEDED"}}"#)),
            vec!["smoke/order.json: route \"POST /recipes/{id}/mov\" is not a route of the project (did you mean POST /recipes/{id}/move?); use one of POST /recipes/{id}/move"],
        ),
        (
            "a smoke order that is not JSON",
            Box::new(|d: &Path| smoke(d, "{\"route\": ")),
            vec!["smoke/order.json: not JSON (EOF while parsing a value at line 1 column 10)"],
        ),
        (
            "a smoke order that does not say how it must end",
            Box::new(|d: &Path| smoke(d, r#"{"route": "POST /recipes/{id}/move", "expect": {"status": "DONE"}}"#)),
            vec!["smoke/order.json: expect.status \"DONE\": use SUCCEEDED, FAILED, TIMED_OUT, ABORTED"],
        ),
        (
            "a canary for an EXPRESS machine, whose executions cannot be watched",
            Box::new(|d: &Path| common::append_text(d, "[defaults.rollout]\nstrategy = \"canary\"\n\n[state_machines.RecipeMover]\ntype = \"EXPRESS\"\n")),
            vec!["definitions/RecipeMover.asl.json: the stage's rollout strategy \"canary\" watches the new version's executions, which Step Functions lists for STANDARD machines only, and RecipeMover is EXPRESS; use strategy = \"all-at-once\" for stage dev"],
        ),
        (
            "keep_versions out of range",
            Box::new(|d: &Path| common::append_text(d, "[state_machines.RecipeMover]\nkeep_versions = 1\n")),
            vec!["[state_machines.RecipeMover] keep_versions = 1 is out of range; keep 2 to 100 versions"],
        ),
        (
            "an alarm threshold out of range",
            Box::new(|d: &Path| common::append_text(d, "[state_machines.RecipeMover.alarms]\nfailed = 0\n")),
            vec!["[state_machines.RecipeMover].alarms failed = 0 is out of range; give the number of executions in one minute that raises the alarm, 1 to 1000000"],
        ),
        (
            "an alarm notifying something other than an SNS topic",
            Box::new(|d: &Path| common::append_text(d, "[state_machines.RecipeMover.alarms]\nfailed = 1\nnotify = \"ops@example.com\"\n")),
            vec!["[state_machines.RecipeMover].alarms notify = \"ops@example.com\" is not an SNS topic ARN; use arn:aws:sns:REGION:ACCOUNT:TOPIC"],
        ),
        (
            "an alarms table with no threshold",
            Box::new(|d: &Path| common::append_text(d, "[state_machines.RecipeMover.alarms]\nnotify = \"arn:aws:sns:us-east-1:123456789012:ops\"\n")),
            vec!["[state_machines.RecipeMover].alarms sets no threshold; set failed, timed_out or throttled"],
        ),
        (
            "an alarm key that does not exist",
            Box::new(|d: &Path| common::append_text(d, "[state_machines.RecipeMover.alarms]\nfailures = 1\n")),
            vec!["unknown field `failures`"],
        ),
        (
            "a function name Lambda would refuse",
            Box::new(|d: &Path| common::append_text(d, "[functions.updateRecipe]\nname = \"update recipe\"\n")),
            vec!["[functions.updateRecipe] name = \"update recipe\" is not a valid Lambda function name; use 1 to 64 letters, digits and - _"],
        ),
        (
            "two functions given one name",
            Box::new(|d: &Path| common::append_text(d, "[functions.updateRecipe]\nname = \"recipes\"\n[functions.indexRecipe]\nname = \"recipes\"\n")),
            vec!["functions indexRecipe and updateRecipe are both named \"recipes\"; two declarations cannot manage one resource"],
        ),
        (
            "adopt = true without a name",
            Box::new(|d: &Path| common::append_text(d, "[state_machines.RecipeMover]\nadopt = true\n")),
            vec!["[state_machines.RecipeMover] adopt = true takes an existing resource by its name, and the table gives none; add name = \"NAME\""],
        ),
        (
            "a role table naming no role of the stage",
            Box::new(|d: &Path| common::append_text(d, "[roles.RecipeMovr]\nname = \"Custom-Role\"\n")),
            vec!["[roles.RecipeMovr] names no role of the stage; its roles are", "(did you mean RecipeMover?)"],
        ),
        (
            "a role name IAM would refuse",
            Box::new(|d: &Path| common::append_text(d, "[roles.RecipeMover]\nname = \"a/b\"\n")),
            vec!["[roles.RecipeMover] name = \"a/b\" is not a valid IAM role name"],
        ),
        (
            "an API id that is not one",
            Box::new(|d: &Path| common::append_text(d, "[api]\nid = \"https://abc.execute-api\"\n")),
            vec!["[api] id = \"https://abc.execute-api\" is not a REST API id"],
        ),
        (
            "input_string with input",
            Box::new(|d: &Path| edit(d, "stepgate.toml", ROUTE, &format!("{ROUTE}\ninput_string = \"body.input\""))),
            vec!["[[routes]] POST /recipes/{id}/move: input_string and input both say what the input is; keep one"],
        ),
        (
            "input_string naming no body field",
            Box::new(|d: &Path| edit(d, "stepgate.toml", ROUTE, "input_string = \"header.x\"")),
            vec!["[[routes]] POST /recipes/{id}/move: input_string = \"header.x\": name a body field, such as \"body.input\""],
        ),
    ];
    for (what, change, expected) in &cases {
        let dir = common::example_copy("recipes", &unique("decl"));
        change(&dir);
        let message = refused(&dir, &["plan"], &[], expected);
        assert!(!message.is_empty(), "{what}");
    }
    println!("declaration checks covered: {}", cases.len());
}

/// A port on loopback that nothing listens on: bound by the OS, then freed.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn an_endpoint_that_refuses_or_does_not_resolve_fails_within_three_seconds() {
    let dir = project("no-wait");
    let closed = format!("http://127.0.0.1:{}", closed_port());
    // `.invalid` never resolves (RFC 6761); the cause is the resolver's.
    let unknown = "http://stepgate-no-such-host.invalid:4566".to_string();
    for (endpoint, cause) in [
        (&closed, "Connection refused"),
        (&unknown, "failed to lookup address information"),
    ] {
        let started = std::time::Instant::now();
        let run = offline(&dir, &closed, &["plan", "--endpoint-url", endpoint], &[]);
        let took = started.elapsed();
        check_refused(
            &run,
            &["plan", "--endpoint-url", endpoint],
            &[
                &format!("error: cannot reach AWS at {endpoint} (STS GetCallerIdentity): "),
                cause,
                "; check --endpoint-url or AWS_ENDPOINT_URL, and that the endpoint is up",
            ],
        );
        assert!(
            took < std::time::Duration::from_secs(3),
            "{endpoint}: took {took:?} to say:\n{}",
            run.stderr
        );
    }
}
