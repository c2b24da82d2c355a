//! From the console to GitOps: the first article's stack, built by hand as
//! its console walkthrough does (tests/adopt/console.py), becomes a
//! stepgate project with `adopt`, is taken with `deploy --adopt` without
//! changing its URL, then answers orders the way stepgate's stack does.
//!
//! The console's names are fixed (completeOrder, OrderProcessor, ...), so
//! the whole story is one test.

mod common;

use std::path::{Path, PathBuf};

use common::{offline, sdk_config, stepgate_in, unique};
use serde_json::Value;

const MACHINE: &str = "OrderProcessor";

/// Builds the console's stack in the emulator; its JSON summary.
fn console() -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(root.join(".emulator/venv/bin/python"))
        .arg(root.join("tests/adopt/console.py"))
        .arg(common::endpoint())
        .output()
        .expect("run tests/adopt/console.py with the emulator's python");
    assert!(
        out.status.success(),
        "console.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("console.py prints JSON")
}

fn clean_console() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let _ = std::process::Command::new(root.join(".emulator/venv/bin/python"))
        .arg(root.join("tests/adopt/console.py"))
        .arg(common::endpoint())
        .arg("--clean")
        .output();
}

/// The deployed package's files, from GetFunction's code location.
async fn deployed_code(function: &str) -> Vec<(String, Vec<u8>)> {
    let lambda = aws_sdk_lambda::Client::new(&sdk_config().await);
    let url = lambda
        .get_function()
        .function_name(function)
        .send()
        .await
        .unwrap()
        .code
        .and_then(|c| c.location)
        .unwrap();
    let bytes = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut ureq::get(&url).call().unwrap().into_reader(), &mut out)
            .unwrap();
        out
    })
    .await
    .unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut files = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
        files.push((entry.name().to_string(), content));
    }
    files
}

/// POSTs `body` and waits for the execution its answer names.
async fn order(url: &str, machine_arn: &str, body: &str) -> (String, Value) {
    let (url, body) = (url.to_string(), body.to_string());
    let answer = tokio::task::spawn_blocking(move || {
        ureq::post(&url)
            .set("Content-Type", "application/json")
            .send_string(&body)
            .unwrap_or_else(|e| panic!("POST {url}: {e}"))
            .into_string()
            .unwrap()
    })
    .await
    .unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap_or_else(|_| panic!("{answer}"));
    let id = answer["executionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no executionId in {answer}"));
    let arn = format!(
        "{}:{id}",
        machine_arn.replacen(":stateMachine:", ":execution:", 1)
    );
    let sfn = aws_sdk_sfn::Client::new(&sdk_config().await);
    for _ in 0..300 {
        let e = sfn
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .unwrap();
        if e.status().as_str() != "RUNNING" {
            let output = e
                .output()
                .map(|o| serde_json::from_str(o).unwrap())
                .unwrap_or_default();
            return (e.status().as_str().to_string(), output);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{arn} still running after 30 s");
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The project directory's files, relative, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

async fn role_exists(name: &str) -> bool {
    aws_sdk_iam::Client::new(&sdk_config().await)
        .get_role()
        .role_name(name)
        .send()
        .await
        .is_ok()
}

#[tokio::test]
async fn a_console_built_stack_is_adopted_in_place_and_keeps_its_url() {
    let built = console();
    let api_id = built["api_id"].as_str().unwrap().to_string();
    let old_url = built["url"].as_str().unwrap().to_string();
    let machine_arn = built["state_machine_arn"].as_str().unwrap().to_string();
    let console_roles: Vec<String> = built["function_roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let stack = unique("adopt");
    let work = std::env::temp_dir().join(format!("stepgate-test-{stack}"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let into: PathBuf = work.join("orders");
    let into_arg = into.display().to_string();
    let adopt = |extra: &[&str]| {
        let mut args = vec![
            "adopt",
            "--stack",
            &stack,
            "--api",
            "OrderProcessorAPI",
            "--stage",
            "dev",
            "--into",
            &into_arg,
        ];
        args.extend_from_slice(extra);
        stepgate_in(&work, &args)
    };

    // The article's integration passes the body through: the client names
    // the machine, so adopt must be told which one.
    let run = adopt(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        common::error_lines(&run),
        ["error: POST /orderprocess: its integration passes the body through, so the client names the state machine; name it with --state-machine NAME"]
    );

    let run = adopt(&["--state-machine", MACHINE]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for found in [
        "Found REST API OrderProcessorAPI",
        "Found state machine OrderProcessor (role Custom-AWSStepFunctionServiceRole)",
        "Found function completeOrder (nodejs18.x",
        "Note: function completeOrder runs nodejs18.x, which Lambda no longer supports",
    ] {
        assert!(run.stdout.contains(found), "{found} not in\n{}", run.stdout);
    }
    assert_eq!(
        files_in(&into),
        [
            "definitions/OrderProcessor.asl.json",
            "lambdas/cancelOrder/index.js",
            "lambdas/completeOrder/index.js",
            "stepgate.toml",
        ]
    );
    // Byte for byte: the definition once its placeholders are filled, and
    // each function's code as deployed.
    let sfn = aws_sdk_sfn::Client::new(&sdk_config().await);
    let deployed = sfn
        .describe_state_machine()
        .state_machine_arn(&machine_arn)
        .send()
        .await
        .unwrap();
    let written = read(&into, "definitions/OrderProcessor.asl.json");
    assert!(
        written.contains("\"Resource\": \"${completeOrderArn}\""),
        "{written}"
    );
    let function_arn = |f: &str| format!("arn:aws:lambda:us-east-1:000000000000:function:{f}");
    let resolved = written
        .replace("${completeOrderArn}", &function_arn("completeOrder"))
        .replace("${cancelOrderArn}", &function_arn("cancelOrder"));
    assert_eq!(resolved, deployed.definition());
    for function in ["completeOrder", "cancelOrder"] {
        for (file, bytes) in deployed_code(function).await {
            assert_eq!(
                std::fs::read(into.join("lambdas").join(function).join(&file)).unwrap(),
                bytes,
                "lambdas/{function}/{file}"
            );
        }
    }
    let toml = read(&into, "stepgate.toml");
    for key in [
        format!("[api]\nname = \"OrderProcessorAPI\"\nid = \"{api_id}\"\n"),
        "[functions.completeOrder]\nname = \"completeOrder\"\nhandler = \"index.handler\"\ntimeout = 3\n".into(),
        "[roles.OrderProcessor]\nname = \"Custom-AWSStepFunctionServiceRole\"\n".into(),
        "[roles.apigateway]\nname = \"Custom-APIGatewayToStepFunctionsRole\"\n".into(),
    ] {
        assert!(toml.contains(&key), "{key} not in\n{toml}");
    }

    let mut sorted_roles = console_roles.clone();
    sorted_roles.sort();
    let leftovers = format!(
        "[leftovers]\nroles = [\"{}\", \"{}\"]\n",
        sorted_roles[0], sorted_roles[1]
    );
    assert!(toml.contains(&leftovers), "{leftovers} not in\n{toml}");

    // Under throttling, 5xx, resets and lost answers (the fault proxy at
    // 30 %), adopt reads the same stack and writes the same project.
    let fault_log = work.join("faults.jsonl");
    let proxy = common::Proxy::start(&[
        "--seed",
        "7",
        "--rate",
        "0.3",
        "--faults",
        "throttle,5xx,reset,lost",
        "--log",
        &fault_log.display().to_string(),
    ]);
    let faulted = work.join("faulted");
    let faulted_arg = faulted.display().to_string();
    let run = common::run(common::command_at(
        &proxy.url,
        &work,
        &[
            "adopt",
            "--stack",
            &stack,
            "--api",
            "OrderProcessorAPI",
            "--stage",
            "dev",
            "--state-machine",
            MACHINE,
            "--into",
            &faulted_arg,
        ],
    ));
    assert_eq!(run.code, 0, "adopt under faults:\n{}", run.stderr);
    assert_eq!(files_in(&faulted), files_in(&into));
    for file in files_in(&into) {
        assert_eq!(
            std::fs::read(faulted.join(&file)).unwrap(),
            std::fs::read(into.join(&file)).unwrap(),
            "{file} differs under faults"
        );
    }
    drop(proxy);
    let injected = std::fs::read_to_string(&fault_log)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("\"fault\": null") && !l.contains("\"fault\":null"))
        .count();
    assert!(injected >= 3, "only {injected} faults injected");

    // A second adopt into the project refuses, before any AWS call (the
    // endpoint below answers nothing), and with --force writes it again.
    let stepgate_toml = read(&into, "stepgate.toml");
    let refused = offline(
        &work,
        "http://127.0.0.1:9",
        &["adopt", "--api", "OrderProcessorAPI", "--into", &into_arg],
        &[],
    );
    assert_eq!(
        common::error_lines(&refused),
        [format!("error: --into {into_arg}: the directory is not empty; adopt overwrites nothing there unless --force (then it replaces the files it writes)").as_str()]
    );
    let run = adopt(&["--state-machine", MACHINE, "--force"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(read(&into, "stepgate.toml"), stepgate_toml);

    // plan: what ownership adds, and what the project changes.
    let plan = stepgate_in(&into, &["plan", "--stage", "dev", "--output", "json"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let mut adopted = plan.resources_with("adopt");
    adopted.sort();
    assert_eq!(
        adopted,
        [
            "function cancelOrder",
            "function completeOrder",
            "rest-api OrderProcessorAPI",
            "role Custom-APIGatewayToStepFunctionsRole",
            "role Custom-AWSStepFunctionServiceRole",
            "stage dev",
            "state-machine OrderProcessor",
        ]
    );
    let report = plan.json();
    let changes_of = |kind: &str, name: &str| -> Vec<String> {
        report["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == kind && r["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap().to_string())
            .collect()
    };
    let function = changes_of("function", "completeOrder");
    for field in ["runtime", "role", "tags"] {
        assert!(function.contains(&field.to_string()), "{function:?}");
    }
    let states_role = changes_of("role", "Custom-AWSStepFunctionServiceRole");
    assert!(
        states_role.contains(&"managed_policies".to_string()),
        "{states_role:?}"
    );
    assert!(
        states_role.contains(&"inline_policies".to_string()),
        "{states_role:?}"
    );
    let api = changes_of("rest-api", "OrderProcessorAPI");
    assert!(
        api.iter()
            .any(|f| f.starts_with("resources./orderprocess.POST")),
        "{api:?}"
    );
    assert!(
        api.iter()
            .any(|f| f.starts_with("resources./orderprocess.OPTIONS")),
        "{api:?}"
    );
    let text = stepgate_in(&into, &["plan", "--stage", "dev"]);
    assert!(
        text.stdout.contains("& function completeOrder (adopt: exists untagged, named in stepgate.toml; deploy --adopt takes it)"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("7 to adopt"), "{}", text.stdout);
    // What taking them leaves behind is said, never deleted.
    for role in &console_roles {
        let function = role.split("-role-").next().unwrap();
        assert!(
            text.stdout.contains(&format!(
                "Note: function {function} moves off role {role}, which stepgate leaves as it is"
            )),
            "{}",
            text.stdout
        );
    }
    assert!(text.stdout.contains("Note: role Custom-AWSStepFunctionServiceRole loses the managed policies arn:aws:iam::aws:policy/service-role/AWSLambdaRole, arn:aws:iam::aws:policy/CloudWatchFullAccess (detached; the policies stay in the account)"), "{}", text.stdout);
    assert!(
        text.stdout
            .contains("Note: stage dev stops serving deployment "),
        "{}",
        text.stdout
    );

    // Without --adopt nothing is taken, and nothing changes.
    let refused = stepgate_in(&into, &["deploy", "--stage", "dev"]);
    assert_eq!(refused.code, 1);
    assert!(
        common::error_lines(&refused)[0].ends_with("exists without stepgate's tags, and stepgate.toml names it (plan lists it as adopt); deploy takes it only with --adopt, or with adopt = true in its table"),
        "{}",
        refused.stderr
    );
    let again = stepgate_in(&into, &["plan", "--stage", "dev", "--output", "json"]);
    assert_eq!(again.resources_with("adopt").len(), 7, "{}", again.stdout);

    let deploy = stepgate_in(&into, &["deploy", "--stage", "dev", "--adopt"]);
    assert_eq!(deploy.code, 0, "{}", deploy.stderr);
    let clean = stepgate_in(&into, &["plan", "--stage", "dev", "--detailed-exitcode"]);
    assert_eq!(
        clean.code, 0,
        "plan after deploy --adopt:\n{}",
        clean.stdout
    );

    // Same API, same URL; an order without a machine ARN goes through.
    let outputs = stepgate_in(&into, &["outputs", "--stage", "dev", "--output", "json"]);
    let outputs = outputs.json();
    assert_eq!(outputs["outputs"]["api_id"], api_id.as_str());
    assert_eq!(outputs["outputs"]["api_url"], old_url.as_str());
    // The article's clients send StartExecution's own form: the order as a
    // string in `input`, and the machine's ARN. They go on working
    // unchanged (the ARN is ignored: the machine is pinned), and so does
    // a client that sends the order itself, with no ARN at all.
    let as_string = |order: &str| serde_json::to_string(order).unwrap();
    let console_client = format!(
        "{{\"input\": {}, \"stateMachineArn\": \"{machine_arn}\"}}",
        as_string(common::ORDER)
    );
    let approved = order(&old_url, &machine_arn, &console_client).await;
    assert_eq!(approved.0, "SUCCEEDED");
    assert_eq!(approved.1["orderDetails"]["status"], "Approved");
    let failed = common::ORDER.replace("SUCCESS", "FAILED");
    let without_arn = format!("{{\"input\": {}}}", as_string(&failed));
    let rejected = order(&old_url, &machine_arn, &without_arn).await;
    assert_eq!(rejected.1["orderDetails"]["status"], "Rejected");
    let approved = order(&old_url, &machine_arn, common::ORDER).await;
    assert_eq!(approved.1["orderDetails"]["status"], "Approved");
    let rejected = order(&old_url, &machine_arn, &failed).await;
    assert_eq!(rejected.1["orderDetails"]["status"], "Rejected");

    // destroy removes what was adopted and leaves the console's own roles.
    let destroy = stepgate_in(&into, &["destroy", "--stage", "dev", "--yes"]);
    assert_eq!(destroy.code, 0, "{}", destroy.stderr);
    for role in &console_roles {
        assert!(
            destroy
                .stderr
                .contains(&format!("Note: role {role} is left from before adoption")),
            "{}",
            destroy.stderr
        );
    }
    let lambda = aws_sdk_lambda::Client::new(&sdk_config().await);
    for f in ["completeOrder", "cancelOrder"] {
        assert!(
            lambda.get_function().function_name(f).send().await.is_err(),
            "{f} is left"
        );
    }
    assert!(sfn
        .describe_state_machine()
        .state_machine_arn(&machine_arn)
        .send()
        .await
        .is_err());
    let apis = aws_sdk_apigateway::Client::new(&sdk_config().await)
        .get_rest_apis()
        .send()
        .await
        .unwrap();
    assert!(!apis.items().iter().any(|a| a.id() == Some(api_id.as_str())));
    for role in [
        "Custom-AWSStepFunctionServiceRole",
        "Custom-APIGatewayToStepFunctionsRole",
    ] {
        assert!(!role_exists(role).await, "{role} is left");
    }
    for role in &console_roles {
        assert!(
            role_exists(role).await,
            "{role}, the console's, was deleted"
        );
    }
    clean_console();
}

/// Each input error of adopt is one line, and what it cannot follow is a
/// note: an unknown API, an API with several stages and no --stage, a
/// route that does not start a state machine, a Task that calls another
/// service than Lambda.
#[tokio::test]
async fn what_adopt_cannot_follow_is_one_line_or_a_note() {
    let name = unique("adopt-errors");
    let work = std::env::temp_dir().join(format!("stepgate-test-{name}"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let into = work.join("project").display().to_string();
    let config = sdk_config().await;
    let gw = aws_sdk_apigateway::Client::new(&config);

    let unknown = stepgate_in(&work, &["adopt", "--api", &name, "--into", &into]);
    assert_eq!(unknown.code, 1);
    let lines = common::error_lines(&unknown);
    assert_eq!(lines.len(), 1, "{}", unknown.stderr);
    assert!(
        lines[0].starts_with(&format!(
            "error: --api {name}: no REST API has that name or id in region us-east-1"
        )),
        "{}",
        unknown.stderr
    );

    // A MOCK integration, deployed to two stages.
    let api = gw.create_rest_api().name(&name).send().await.unwrap();
    let id = api.id().unwrap();
    let root = gw
        .get_resources()
        .rest_api_id(id)
        .send()
        .await
        .unwrap()
        .items()[0]
        .id()
        .unwrap()
        .to_string();
    let resource = gw
        .create_resource()
        .rest_api_id(id)
        .parent_id(&root)
        .path_part("ping")
        .send()
        .await
        .unwrap();
    let rid = resource.id().unwrap();
    gw.put_method()
        .rest_api_id(id)
        .resource_id(rid)
        .http_method("GET")
        .authorization_type("NONE")
        .send()
        .await
        .unwrap();
    gw.put_integration()
        .rest_api_id(id)
        .resource_id(rid)
        .http_method("GET")
        .r#type(aws_sdk_apigateway::types::IntegrationType::Mock)
        .send()
        .await
        .unwrap();
    for stage in ["a", "b"] {
        gw.create_deployment()
            .rest_api_id(id)
            .stage_name(stage)
            .send()
            .await
            .unwrap();
    }
    let several = stepgate_in(&work, &["adopt", "--api", id, "--into", &into]);
    assert_eq!(
        common::error_lines(&several),
        [format!(
            "error: REST API {name} ({id}) has stages a, b; name the one to adopt with --stage"
        )
        .as_str()]
    );
    let mock = stepgate_in(
        &work,
        &["adopt", "--api", &name, "--stage", "a", "--into", &into],
    );
    assert_eq!(
        common::error_lines(&mock),
        ["error: GET /ping: its integration is MOCK (no URI), not Step Functions' StartExecution; adopt follows routes that start a state machine only"]
    );
    assert!(
        !Path::new(&into).exists(),
        "adopt wrote a project on an error"
    );

    // A machine whose Task publishes to SNS: followed, its ARN kept.
    let iam = aws_sdk_iam::Client::new(&config);
    let role = iam
        .create_role()
        .role_name(&name)
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"states.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();
    let definition = r#"{"StartAt":"Tell","States":{"Tell":{"Type":"Task","Resource":"arn:aws:states:::sns:publish","Parameters":{"TopicArn":"arn:aws:sns:us-east-1:000000000000:orders","Message.$":"$"},"End":true}}}"#;
    let sfn = aws_sdk_sfn::Client::new(&config);
    let machine = sfn
        .create_state_machine()
        .name(&name)
        .definition(definition)
        .role_arn(role.role().unwrap().arn())
        .send()
        .await
        .unwrap();
    let run = stepgate_in(&work, &["adopt", "--state-machine", &name, "--into", &into]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!("Note: not followed: state Tell of {name} calls arn:aws:states:::sns:publish, not a Lambda function; its ARN stays literal in the definition")),
        "{}",
        run.stdout
    );
    let written = std::fs::read_to_string(Path::new(&into).join(format!(
        "definitions/{}.asl.json",
        name.replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_',
            ""
        )
    )))
    .unwrap();
    assert_eq!(written, definition);

    sfn.delete_state_machine()
        .state_machine_arn(machine.state_machine_arn())
        .send()
        .await
        .unwrap();
    iam.delete_role().role_name(&name).send().await.unwrap();
    gw.delete_rest_api().rest_api_id(id).send().await.unwrap();
}
