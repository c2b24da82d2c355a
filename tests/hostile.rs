//! Real AWS is not polite: the fault proxy (tests/faults/proxy.py) makes the
//! emulator answer as AWS does under throttling, 5xx, dropped connections,
//! lost answers, IAM propagation, API Gateway's quotas and its 409s. Every
//! deploy and destroy must still converge, and leave no duplicate behind.

mod common;

use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sts::config::Credentials;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use serde_json::json;

use common::{api_count, leftovers, stepgate, stepgate_at, unique, Proxy};

/// The two heaviest tests (many stacks at once) take turns, so that the
/// emulator on two cores is not asked for both together.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An SDK configuration that reaches AWS through `proxy` and never
/// retries, so that a test sees the very first answer.
async fn first_answer_config(proxy: &Proxy) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&proxy.url)
        .region(Region::new(common::REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .retry_config(RetryConfig::disabled())
        .load()
        .await
}

/// An injected error proves something only if aws-sdk-rust reads it as the
/// code AWS sends: this forces each fault once per service and checks.
#[tokio::test]
async fn the_sdk_reads_every_injected_fault_as_the_error_aws_sends() {
    let proxy = Proxy::start(&["--rate", "0"]);
    let sdk = first_answer_config(&proxy).await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let sts = aws_sdk_sts::Client::new(&sdk);
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let gw = aws_sdk_apigateway::Client::new(&sdk);
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let force = |operation: &str, fault: &str, variant: Option<&str>| {
        let mut rule = json!({"operation": operation, "fault": fault, "count": 1});
        if let Some(v) = variant {
            rule["variant"] = json!(v);
        }
        proxy.config(json!({ "force": [rule] }));
    };
    let mut checked = 0;
    macro_rules! expect {
        ($op:expr, $fault:expr, $variant:expr, $call:expr, $code:expr, $message:expr) => {{
            force($op, $fault, $variant);
            let err = $call.send().await.expect_err(concat!($op, " should fail"));
            assert_eq!(err.code(), Some($code), "{} {}: {err:?}", $op, $fault);
            assert!(
                err.message().unwrap_or_default().contains($message),
                "{} {}: {:?}",
                $op,
                $fault,
                err.message()
            );
            checked += 1;
            err
        }};
    }
    let role = "arn:aws:iam::000000000000:role/r";
    for (fault, iam_code, sts_code) in [
        ("throttle", "Throttling", "Throttling"),
        ("5xx", "ServiceFailure", "InternalFailure"),
    ] {
        expect!(
            "iam.GetRole",
            fault,
            None,
            iam.get_role().role_name("r"),
            iam_code,
            ""
        );
        expect!(
            "sts.GetCallerIdentity",
            fault,
            None,
            sts.get_caller_identity(),
            sts_code,
            ""
        );
    }
    for (fault, lambda_code, sfn_code, logs_code, gw_code, ssm_code) in [
        (
            "throttle",
            "TooManyRequestsException",
            "ThrottlingException",
            "ThrottlingException",
            "TooManyRequestsException",
            "ThrottlingException",
        ),
        (
            "5xx",
            "ServiceException",
            "InternalFailure",
            "ServiceUnavailableException",
            "ServiceUnavailableException",
            "InternalServerError",
        ),
    ] {
        expect!(
            "lambda.GetFunction",
            fault,
            None,
            lambda.get_function().function_name("f"),
            lambda_code,
            ""
        );
        expect!(
            "states.ListStateMachines",
            fault,
            None,
            sfn.list_state_machines(),
            sfn_code,
            ""
        );
        expect!(
            "logs.DescribeLogGroups",
            fault,
            None,
            logs.describe_log_groups(),
            logs_code,
            ""
        );
        expect!(
            "apigateway.GetRestApis",
            fault,
            None,
            gw.get_rest_apis(),
            gw_code,
            ""
        );
        expect!(
            "ssm.GetParameter",
            fault,
            None,
            ssm.get_parameter().name("/p"),
            ssm_code,
            ""
        );
    }
    // IAM propagation, as Lambda and Step Functions word it; stepgate's
    // retry predicates match these texts.
    let zip = aws_sdk_lambda::primitives::Blob::new(vec![0u8; 4]);
    expect!(
        "lambda.CreateFunction",
        "propagation",
        None,
        lambda.create_function().function_name("f").role(role).code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(zip)
                .build()
        ),
        "InvalidParameterValueException",
        "The role defined for the function cannot be assumed by Lambda."
    );
    for (variant, text) in [
        (
            "assume",
            "nor the regional one is authorized to assume the provided role",
        ),
        (
            "log-destination",
            "not authorized to access the Log Destination",
        ),
    ] {
        expect!(
            "states.CreateStateMachine",
            "propagation",
            Some(variant),
            sfn.create_state_machine()
                .name("m")
                .definition("{}")
                .role_arn(role),
            "AccessDeniedException",
            text
        );
    }
    // ... and as API Gateway words it for its account's CloudWatch role.
    expect!(
        "apigateway.UpdateAccount",
        "propagation",
        None,
        gw.update_account().patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/cloudwatchRoleArn")
                .value(role)
                .build()
        ),
        "BadRequestException",
        "The role ARN does not have required permissions"
    );
    // API Gateway's quotas come with a retry hint in seconds.
    let throttled = expect!(
        "apigateway.CreateRestApi",
        "quota",
        None,
        gw.create_rest_api().name("a"),
        "TooManyRequestsException",
        ""
    );
    let hint = throttled
        .raw_response()
        .and_then(|r| r.headers().get("retry-after"))
        .map(str::to_string);
    assert!(hint.is_some_and(|h| h.parse::<u64>().is_ok()));
    // The 409s AWS sends for a repeated create, where the emulator does not.
    expect!(
        "apigateway.CreateResource",
        "conflict",
        None,
        gw.create_resource()
            .rest_api_id("a")
            .parent_id("p")
            .path_part("orderprocess"),
        "ConflictException",
        "Another resource with the same parent already has this name"
    );
    expect!(
        "apigateway.PutMethod",
        "conflict",
        None,
        gw.put_method()
            .rest_api_id("a")
            .resource_id("r")
            .http_method("POST")
            .authorization_type("NONE"),
        "ConflictException",
        "Method already exists"
    );
    // STS refusing a role whose trust does not name the caller.
    expect!(
        "sts.AssumeRole",
        "denied",
        None,
        sts.assume_role().role_arn(role).role_session_name("s"),
        "AccessDenied",
        "is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::000000000000:role/r"
    );
    // A dropped connection and a lost answer reach the SDK as a dispatch
    // failure, which its standard retry repeats.
    for fault in ["reset", "lost"] {
        force("sts.GetCallerIdentity", fault, None);
        let err = sts.get_caller_identity().send().await.unwrap_err();
        assert!(
            matches!(err, aws_sdk_sts::error::SdkError::DispatchFailure(_)),
            "{fault}: {err:?}"
        );
        checked += 1;
    }
    assert_eq!(checked, 24);
}

/// Whether one seed's run converged, and what it left behind.
struct SeedRun {
    seed: u64,
    failure: Option<String>,
    duplicates: usize,
    leftovers: Vec<String>,
}

/// One full cycle through a proxy that injects every fault at 10 % with
/// `seed`, a 2 s IAM propagation window and API Gateway's quotas scaled to
/// a tenth: deploy must converge on its first run, plan be clean, an order
/// go through to Approved, and destroy leave nothing.
async fn cycle_under_faults(seed: u64) -> SeedRun {
    let proxy = chaos_proxy(seed);
    let stage = unique(&format!("chaos{seed}s"));
    let s = stage.as_str();
    let url = proxy.url.clone();
    let step = move |args: Vec<String>| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            stepgate_at(&url, &args)
        })
    };
    let args = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut failure = None;
    let deploy = step(args(&["deploy", "--stage", s])).await.unwrap();
    let duplicates = api_count(s).await.saturating_sub(1);
    if deploy.code != 0 {
        failure = Some(format!("deploy: {}", deploy.stderr));
    } else {
        let plan = step(args(&["plan", "--stage", s, "--detailed-exitcode"]))
            .await
            .unwrap();
        let invoke = step(args(&["invoke", "--stage", s, "--output", "json"]))
            .await
            .unwrap();
        if plan.code != 0 {
            failure = Some(format!("plan after deploy: {}{}", plan.stdout, plan.stderr));
        } else if invoke.code != 0
            || invoke.json()["execution"]["output"]["orderDetails"]["status"] != "Approved"
        {
            failure = Some(format!("invoke: {}{}", invoke.stdout, invoke.stderr));
        }
    }
    let destroy = step(args(&["destroy", "--stage", s, "--yes"]))
        .await
        .unwrap();
    if destroy.code != 0 && failure.is_none() {
        failure = Some(format!("destroy: {}", destroy.stderr));
    }
    SeedRun {
        seed,
        failure,
        duplicates,
        leftovers: leftovers(s).await,
    }
}

/// The recipe mover's cycle under the same faults: deploy, plan clean, a
/// move through its path and body, then a deploy that prunes a function
/// and its log group (a lost answer to a delete must still converge),
/// plan clean again, destroy, nothing left.
async fn recipes_under_faults(seed: u64) -> SeedRun {
    let proxy = chaos_proxy(seed);
    let stage = unique(&format!("chaos{seed}r"));
    let dir = common::example_copy("recipes", &stage);
    let step = |args: Vec<String>| {
        let url = proxy.url.clone();
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            common::run(common::command_at(&url, &dir, &args))
        })
    };
    let args = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let s = stage.as_str();
    let mut failure = None;
    let deploy = step(args(&["deploy", "--stage", s])).await.unwrap();
    if deploy.code != 0 {
        failure = Some(format!("recipes deploy: {}", deploy.stderr));
    } else {
        let invoke = step(args(&[
            "invoke",
            "--stage",
            s,
            "--route",
            "POST /recipes/r42/move",
            "--order",
            r#"{"user_id":"u7"}"#,
        ]))
        .await
        .unwrap();
        if invoke.code != 0 {
            failure = Some(format!(
                "recipes invoke: {}{}",
                invoke.stdout, invoke.stderr
            ));
        }
    }
    if failure.is_none() {
        std::fs::remove_dir_all(dir.join("lambdas/indexNewOwner")).unwrap();
        let def = dir.join("definitions/RecipeMover.asl.json");
        let text = std::fs::read_to_string(&def).unwrap().replace(
            r#",
        { "StartAt": "IndexNewOwner", "States": { "IndexNewOwner": { "Type": "Task", "Resource": "${indexNewOwnerArn}", "End": true } } }"#,
            "",
        );
        std::fs::write(&def, text).unwrap();
        let prune = step(args(&["deploy", "--stage", s])).await.unwrap();
        let plan = step(args(&["plan", "--stage", s, "--detailed-exitcode"]))
            .await
            .unwrap();
        if prune.code != 0 {
            failure = Some(format!("recipes prune: {}", prune.stderr));
        } else if plan.code != 0 {
            failure = Some(format!(
                "recipes plan after prune: {}{}",
                plan.stdout, plan.stderr
            ));
        }
    }
    let destroy = step(args(&["destroy", "--stage", s, "--yes"]))
        .await
        .unwrap();
    if destroy.code != 0 && failure.is_none() {
        failure = Some(format!("recipes destroy: {}", destroy.stderr));
    }
    SeedRun {
        seed,
        failure,
        duplicates: common::api_count_named(&format!("recipes-{s}-api"))
            .await
            .saturating_sub(1),
        leftovers: common::leftovers_of("recipes", s).await,
    }
}

/// The fault proxy of one seed: every fault at 10 %, a 2 s IAM
/// propagation window, API Gateway's quotas scaled to a tenth.
fn chaos_proxy(seed: u64) -> Proxy {
    Proxy::start(&[
        "--seed",
        &seed.to_string(),
        "--rate",
        "0.1",
        "--propagation-seconds",
        "2",
        "--quota-scale",
        "0.1",
    ])
}

/// The seeds to run: `STEPGATE_CHAOS_SEEDS=N` runs 1..=N (tests/chaos.sh),
/// 10 by default.
fn seeds() -> Vec<u64> {
    let n = std::env::var("STEPGATE_CHAOS_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    (1..=n).collect()
}

#[test]
fn seeded_faults_never_stop_a_deploy_or_a_destroy() {
    let _turn = heavy();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(seeded_cycles());
}

async fn seeded_cycles() {
    let started = Instant::now();
    let seeds = seeds();
    // Two seeds at a time, four cycles: the emulator and two cores are the limit. Each seed
    // runs the tutorial and the recipe mover, with a prune.
    let mut runs = Vec::new();
    for batch in seeds.chunks(2) {
        let handles: Vec<_> = batch
            .iter()
            .flat_map(|&seed| {
                [
                    tokio::spawn(cycle_under_faults(seed)),
                    tokio::spawn(recipes_under_faults(seed)),
                ]
            })
            .collect();
        for h in handles {
            runs.push(h.await.unwrap());
        }
    }
    let converged = runs.iter().filter(|r| r.failure.is_none()).count();
    let duplicates: usize = runs.iter().map(|r| r.duplicates).sum();
    let leftovers: usize = runs.iter().map(|r| r.leftovers.len()).sum();
    println!(
        "chaos: {converged}/{} converged, {duplicates} duplicates, {leftovers} leftovers, {:.0} s",
        runs.len(),
        started.elapsed().as_secs_f64()
    );
    for r in runs
        .iter()
        .filter(|r| r.failure.is_some() || r.duplicates > 0 || !r.leftovers.is_empty())
    {
        println!(
            "seed {}: {} duplicates, left {:?}, {}",
            r.seed,
            r.duplicates,
            r.leftovers,
            r.failure.as_deref().unwrap_or("converged")
        );
    }
    assert_eq!(converged, runs.len(), "not every seed converged");
    assert_eq!(duplicates, 0, "a duplicate REST API remained");
    assert_eq!(leftovers, 0, "destroy left something behind");
}

/// Every create stepgate makes answered, once, by a lost response: the
/// call happened, the answer never came, the SDK retried. Before each
/// create was made safe to repeat, each of these failed the deploy
/// (EntityAlreadyExists, ResourceConflictException, ConflictException) or
/// left a second REST API.
#[tokio::test]
async fn a_lost_answer_to_any_create_is_carried_on_from() {
    for operation in [
        "iam.CreateRole",
        "logs.CreateLogGroup",
        "lambda.CreateFunction",
        "lambda.PublishVersion",
        "states.CreateStateMachine",
        "states.PublishStateMachineVersion",
        "states.CreateStateMachineAlias",
        "apigateway.CreateRestApi",
        "apigateway.CreateResource",
        "apigateway.PutMethod",
        "apigateway.PutMethodResponse",
        "apigateway.CreateDeployment",
        "apigateway.CreateStage",
        "apigateway.CreateModel",
        "apigateway.CreateRequestValidator",
        "apigateway.PutGatewayResponse",
        "ssm.PutParameter",
    ] {
        let proxy = Proxy::start(&["--rate", "0", "--faults", "conflict"]);
        proxy.config(json!({"force": [{"operation": operation, "fault": "lost", "count": 1}]}));
        let stage = unique("lost");
        let s = stage.as_str();
        let deploy = stepgate_at(&proxy.url, &["deploy", "--stage", s]);
        let injected = proxy.stats()["injected"]["lost"].as_u64().unwrap_or(0);
        let apis = api_count(s).await;
        let plan = stepgate_at(&proxy.url, &["plan", "--stage", s, "--detailed-exitcode"]);
        stepgate(&["destroy", "--stage", s, "--yes"]).ok();
        assert_eq!(injected, 1, "{operation}: the lost answer was not injected");
        assert_eq!(deploy.code, 0, "{operation}: {}", deploy.stderr);
        assert_eq!(apis, 1, "{operation}: REST APIs for the stage");
        assert_eq!(plan.code, 0, "{operation}: {}{}", plan.stdout, plan.stderr);
        assert!(leftovers(s).await.is_empty(), "{operation}");
    }
}

/// Duplicate REST APIs of one stage (left by a race before the lock, or a
/// lost answer in an older stepgate): plan shows them, outputs and invoke
/// refuse to guess, deploy keeps the oldest, destroy removes them all.
#[tokio::test]
async fn duplicate_apis_are_planned_refused_repaired_and_destroyed() {
    let stage = unique("dup");
    let s = stage.as_str();
    let first = stepgate(&["deploy", "--stage", s, "--output", "json"]).ok();
    let kept = first.json()["outputs"]["api_id"]
        .as_str()
        .unwrap()
        .to_string();
    let gw = aws_sdk_apigateway::Client::new(&common::sdk_config().await);
    let add_duplicate = || async {
        gw.create_rest_api()
            .name(format!("orders-{s}-OrderProcessorAPI"))
            .tags("stepgate:stack", "orders")
            .tags("stepgate:stage", s)
            .send()
            .await
            .unwrap()
            .id
            .unwrap()
    };
    let extra = add_duplicate().await;
    assert_eq!(api_count(s).await, 2);

    let plan = stepgate(&["plan", "--stage", s, "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains("duplicates") && plan.stdout.contains(&extra),
        "{}",
        plan.stdout
    );
    for command in ["outputs", "invoke"] {
        let run = stepgate(&[command, "--stage", s]);
        assert_eq!(run.code, 1, "{command} picked an API");
        assert!(
            run.stderr.contains("2 REST APIs") && run.stderr.contains(&kept),
            "{command}: {}",
            run.stderr
        );
    }

    let repaired = stepgate(&["deploy", "--stage", s, "--output", "json"]).ok();
    assert_eq!(
        repaired.mutating_calls(),
        [("API Gateway.DeleteRestApi".to_string(), 1)].into()
    );
    assert_eq!(api_count(s).await, 1);
    assert_eq!(
        repaired.json()["outputs"]["api_id"],
        kept.as_str(),
        "the oldest is kept"
    );
    assert_eq!(
        stepgate(&["plan", "--stage", s, "--detailed-exitcode"]).code,
        0
    );

    add_duplicate().await;
    stepgate(&["destroy", "--stage", s, "--yes"]).ok();
    assert!(leftovers(s).await.is_empty());
}

/// The run's mutating calls, counted through a proxy that injects nothing.
fn mutating_calls_of(args: &[&str]) -> u64 {
    let proxy = Proxy::start(&["--rate", "0", "--faults", ""]);
    stepgate_at(&proxy.url, args).ok();
    mutating_calls(&proxy)
}

fn mutating_calls(proxy: &Proxy) -> u64 {
    proxy.stats()["mutating_calls"].as_u64().unwrap()
}

/// Runs `args` through `proxy` and SIGKILLs it once its `k`-th mutating AWS
/// call has happened (the proxy holds that answer and every later one).
/// Returns whether it was killed (false: it finished in fewer calls).
fn kill_after(proxy: &Proxy, k: u64, args: &[&str]) -> bool {
    proxy.config(json!({"hang_after_mutating": k}));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = common::command_at(&proxy.url, dir, args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed = loop {
        if mutating_calls(proxy) >= k {
            child.kill().unwrap();
            break true;
        }
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        assert!(Instant::now() < deadline, "call {k} never came");
        std::thread::sleep(Duration::from_millis(10));
    };
    child.wait().unwrap();
    proxy.config(json!({"hang_after_mutating": null}));
    killed
}

/// SIGKILL after the k-th mutating AWS call, for every k of a deploy from
/// nothing and of a destroy: the next deploy converges and destroy leaves
/// nothing. Only a mutating call changes what the next run finds, so a kill
/// after any read leaves what the kill after the change before it left:
/// these are all the states a killed run can leave. (A killed run cannot
/// release its lock; the next run on the same host sees that the holder
/// died and takes the lock over.)
#[test]
fn a_run_killed_after_any_call_is_repaired_by_the_next_run() {
    let _turn = heavy();
    let probe = unique("probe");
    let deploy_calls = mutating_calls_of(&["deploy", "--stage", &probe]);
    let destroy_calls = mutating_calls_of(&["destroy", "--stage", &probe, "--yes"]);
    assert!(
        deploy_calls > 30 && destroy_calls > 15,
        "{deploy_calls} {destroy_calls}"
    );
    let workers = 4u64;
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let left = |s: &str| runtime.block_on(leftovers(s));
                let proxy = Proxy::start(&["--rate", "0", "--faults", "conflict"]);
                let mut killed = 0;
                for k in (1..=deploy_calls).filter(|k| k % workers == w) {
                    let stage = unique(&format!("kd{k}s"));
                    let s = stage.as_str();
                    killed += kill_after(&proxy, k, &["deploy", "--stage", s]) as u64;
                    let again = stepgate(&["deploy", "--stage", s]);
                    assert_eq!(again.code, 0, "deploy killed at call {k}: {}", again.stderr);
                    let plan = stepgate(&["plan", "--stage", s, "--detailed-exitcode"]);
                    assert_eq!(plan.code, 0, "deploy killed at call {k}: {}", plan.stdout);
                    stepgate(&["destroy", "--stage", s, "--yes"]).ok();
                    assert_eq!(left(s), Vec::<String>::new(), "deploy killed at call {k}");
                }
                for k in (1..=destroy_calls).filter(|k| k % workers == w) {
                    let stage = unique(&format!("kx{k}s"));
                    let s = stage.as_str();
                    stepgate(&["deploy", "--stage", s]).ok();
                    killed += kill_after(&proxy, k, &["destroy", "--stage", s, "--yes"]) as u64;
                    let again = stepgate(&["destroy", "--stage", s, "--yes"]);
                    assert_eq!(
                        again.code, 0,
                        "destroy killed at call {k}: {}",
                        again.stderr
                    );
                    assert_eq!(left(s), Vec::<String>::new(), "destroy killed at call {k}");
                }
                killed
            })
        })
        .collect();
    let killed: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    println!(
        "killed {killed} of {} runs ({deploy_calls} mutating deploy calls, {destroy_calls} mutating destroy calls)",
        deploy_calls + destroy_calls
    );
    assert!(killed >= (deploy_calls + destroy_calls) * 9 / 10);
}

/// Four pipelines deploying one fresh stage at the same moment. Without
/// --lock-timeout each run succeeds or fails at once naming the lock's
/// holder; with it they all succeed, one after the other. Either way the
/// stage ends with one of each resource and a clean plan.
#[test]
fn four_deploys_of_one_stage_at_once() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for wait in [false, true] {
        // A little latency per call, so the four runs overlap for real.
        let proxy = Proxy::start(&["--rate", "0", "--faults", "conflict", "--latency-ms", "20"]);
        let stage = unique("race");
        let s = stage.as_str();
        let mut args = vec!["deploy", "--stage", s];
        if wait {
            args.extend(["--lock-timeout", "2m"]);
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let children: Vec<_> = (0..4)
            .map(|_| {
                common::command_at(&proxy.url, dir, &args)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let runs: Vec<(i32, String)> = children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().unwrap();
                let err = String::from_utf8_lossy(&out.stderr).into_owned();
                (out.status.code().unwrap_or(-1), err)
            })
            .collect();
        let succeeded = runs.iter().filter(|(code, _)| *code == 0).count();
        for (code, err) in &runs {
            let refused = *code == 1
                && err.contains(&format!("stack orders stage {s} is locked by deploy (pid"));
            assert!(
                *code == 0 || (!wait && refused),
                "wait={wait}: exit {code}: {err}"
            );
        }
        if wait {
            assert_eq!(succeeded, 4, "{runs:?}");
        } else {
            assert!(succeeded >= 1, "{runs:?}");
        }
        assert_eq!(runtime.block_on(api_count(s)), 1, "wait={wait}");
        assert_eq!(
            stepgate(&["plan", "--stage", s, "--detailed-exitcode"]).code,
            0
        );
        stepgate(&["destroy", "--stage", s, "--yes"]).ok();
        assert_eq!(runtime.block_on(leftovers(s)), Vec::<String>::new());
    }
}

/// Ctrl-C (SIGINT) or SIGTERM in the middle of a deploy: no new call
/// starts, the lock is released, what was done is printed, and the exit
/// status is 130 or 143. The next deploy finishes the job.
#[test]
fn ctrl_c_and_sigterm_stop_a_deploy_cleanly() {
    use std::io::{BufRead, BufReader, Read};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (signal, status) in [("INT", 130), ("TERM", 143)] {
        // Slow calls, so the deploy is well under way when the signal comes.
        let proxy = Proxy::start(&["--rate", "0", "--faults", "", "--latency-ms", "150"]);
        let stage = unique("sig");
        let s = stage.as_str();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut cmd = common::command_at(&proxy.url, dir, &["deploy", "--stage", s]);
        let mut child = common::spawn(&mut cmd);
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        while !seen.contains("created ") {
            assert!(
                stderr.read_line(&mut seen).unwrap() > 0,
                "no progress: {seen}"
            );
        }
        let calls_at_signal = proxy.calls();
        std::process::Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status()
            .unwrap();
        stderr.read_to_string(&mut seen).unwrap();
        let mut stdout = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let code = child.wait().unwrap().code();
        common::record(
            &cmd,
            &common::Run {
                code: code.unwrap_or(-1),
                stdout: stdout.clone(),
                stderr: seen.clone(),
            },
        );
        assert_eq!(code, Some(status), "SIG{signal}: {seen}");
        assert!(
            seen.contains(&format!("interrupted by SIG{signal}")),
            "{seen}"
        );
        assert!(
            stdout.contains("The deploy stopped before the end"),
            "{stdout}"
        );
        assert!(
            stdout.contains(": done") && stdout.contains("not done"),
            "{stdout}"
        );
        // Only calls already in flight (at most one wave's) and the lock's
        // release came after the signal.
        let after = proxy.stats()["by_operation"].clone();
        assert!(proxy.calls() <= calls_at_signal + 12, "{after}");
        let lock = format!("/stepgate/orders/{s}/lock");
        let held = runtime.block_on(async {
            aws_sdk_ssm::Client::new(&common::sdk_config().await)
                .get_parameter()
                .name(&lock)
                .send()
                .await
                .is_ok()
        });
        assert!(!held, "SIG{signal}: the lock was not released");

        stepgate(&["deploy", "--stage", s]).ok();
        assert_eq!(
            stepgate(&["plan", "--stage", s, "--detailed-exitcode"]).code,
            0
        );
        stepgate(&["destroy", "--stage", s, "--yes"]).ok();
    }
}

/// A lease left by a run on another host: deploy fails at once naming the
/// holder, plan says the stage is locked (and reports who holds it),
/// `stepgate unlock` removes it, and a lease past its expiry is taken over.
#[test]
fn a_held_lock_is_named_shown_by_plan_removed_by_unlock_and_taken_over_when_expired() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stage = unique("lock");
    let s = stage.as_str();
    let ssm = runtime.block_on(async { aws_sdk_ssm::Client::new(&common::sdk_config().await) });
    let lease = |expires: &str| {
        let value = json!({
            "id": "elsewhere-1", "command": "deploy", "host": "build-7", "pid": 4242,
            "since": "2026-01-01T00:00:00Z", "expires": expires,
        });
        runtime
            .block_on(
                ssm.put_parameter()
                    .name(format!("/stepgate/orders/{s}/lock"))
                    .value(value.to_string())
                    .r#type(aws_sdk_ssm::types::ParameterType::String)
                    .overwrite(true)
                    .send(),
            )
            .unwrap();
    };
    lease("2999-01-01T00:00:00Z");

    let refused = stepgate(&["deploy", "--stage", s]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains(&format!(
            "stack orders stage {s} is locked by deploy (pid 4242 on build-7) since 2026-01-01T00:00:00Z"
        )) && refused.stderr.contains("stepgate unlock"),
        "{}",
        refused.stderr
    );
    let plan = stepgate(&["plan", "--stage", s, "--output", "json"]);
    assert_eq!(plan.code, 0, "plan takes no lock: {}", plan.stderr);
    assert!(
        plan.stderr
            .contains("is locked by deploy (pid 4242 on build-7)"),
        "{}",
        plan.stderr
    );
    assert_eq!(plan.json()["lock"]["host"], "build-7");

    let unlock = stepgate(&["unlock", "--stage", s]).ok();
    assert!(
        unlock
            .stdout
            .contains("held by deploy (pid 4242 on build-7)"),
        "{}",
        unlock.stdout
    );
    assert!(stepgate(&["unlock", "--stage", s])
        .ok()
        .stdout
        .contains("was not locked"));

    lease("2020-01-01T00:00:00Z");
    let taken = stepgate(&["deploy", "--stage", s]).ok();
    assert!(
        taken
            .stderr
            .contains("Taking over the lock of deploy (pid 4242 on build-7)"),
        "{}",
        taken.stderr
    );
    stepgate(&["destroy", "--stage", s, "--yes"]).ok();
    assert_eq!(runtime.block_on(leftovers(s)), Vec::<String>::new());
}

/// Field 22 of /proc/PID/stat: when the process started.
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// A lease on this very machine whose holder is alive but does not look
/// like stepgate (the binary installed as `sg`): it is never taken over,
/// whatever its command line says, nor is a lease of a gone process that
/// does not record who it was (a lease of an earlier version). Once the
/// recorded process is gone, the next run takes the lock over at once.
#[test]
fn a_live_holder_under_another_name_keeps_its_lock() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stage = unique("sglock");
    let s = stage.as_str();
    let ssm = runtime.block_on(async { aws_sdk_ssm::Client::new(&common::sdk_config().await) });
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let lease = |value: serde_json::Value| {
        runtime
            .block_on(
                ssm.put_parameter()
                    .name(format!("/stepgate/orders/{s}/lock"))
                    .value(value.to_string())
                    .r#type(aws_sdk_ssm::types::ParameterType::String)
                    .overwrite(true)
                    .send(),
            )
            .unwrap();
    };
    let dir = std::env::temp_dir().join(format!("sg-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sg = dir.join("sg");
    let _ = std::fs::remove_file(&sg);
    std::os::unix::fs::symlink("/bin/sleep", &sg).unwrap();
    let mut holder = std::process::Command::new(&sg).arg("120").spawn().unwrap();
    let pid = holder.id();
    let identity = json!({
        "id": "sg-1", "command": "deploy", "host": host, "pid": pid,
        "since": "2026-01-01T00:00:00Z", "expires": "2999-01-01T00:00:00Z",
        "boot_id": std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap().trim(),
        "pid_namespace": std::fs::read_link("/proc/self/ns/pid").unwrap().to_str().unwrap(),
        "start_time": start_time(pid),
    });
    lease(identity.clone());
    let refused = stepgate(&["deploy", "--stage", s]);
    let alive = holder.try_wait().unwrap().is_none();
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(alive);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "stack orders stage {s} is locked by deploy (pid {pid} on {host})"
        )),
        "{}",
        refused.stderr
    );
    // Gone now, but a lease without the process's identity proves nothing.
    let mut old = identity.clone();
    for field in ["boot_id", "pid_namespace", "start_time"] {
        old.as_object_mut().unwrap().remove(field);
    }
    lease(old);
    let refused = stepgate(&["deploy", "--stage", s]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("is locked by deploy"),
        "{}",
        refused.stderr
    );
    // With it, the process is known to be gone: taken over at once.
    lease(identity);
    let taken = stepgate(&["deploy", "--stage", s]).ok();
    assert!(
        taken.stderr.contains(&format!(
            "Taking over the lock of deploy (pid {pid} on {host}) since 2026-01-01T00:00:00Z (that process has died)"
        )),
        "{}",
        taken.stderr
    );
    stepgate(&["destroy", "--stage", s, "--yes"]).ok();
    assert_eq!(runtime.block_on(leftovers(s)), Vec::<String>::new());
}

/// A deployer role that refuses the caller (its trust does not name it, or
/// the external ID is wrong) ends the run at once with one line naming the
/// role and what to check, before anything else is called.
#[test]
fn a_refused_assume_role_is_one_line_and_stops_the_run() {
    let proxy = Proxy::start(&["--rate", "0"]);
    proxy
        .config(json!({"force": [{"operation": "sts.AssumeRole", "fault": "denied", "count": 1}]}));
    let run = stepgate_at(
        &proxy.url,
        &[
            "plan",
            "--stage",
            "denied",
            "--role-arn",
            "arn:aws:iam::111111111111:role/deployer",
            "--external-id",
            "orders-deployer",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr.trim_end(),
        "error: cannot assume role arn:aws:iam::111111111111:role/deployer: AccessDenied: \
         User: arn:aws:iam::000000000000:user/pipeline is not authorized to perform: \
         sts:AssumeRole on resource: arn:aws:iam::111111111111:role/deployer; the role's trust \
         policy must allow these credentials (and sts:AssumeRole must be allowed to them) and the external ID"
    );
    assert_eq!(proxy.calls(), 1, "nothing after the refused AssumeRole");
}
