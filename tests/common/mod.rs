//! Shared harness for the integration tests: every test reaches the one local
//! emulator through `STEPGATE_TEST_ENDPOINT`, which `tests/run.sh` sets.
//! Tests run in parallel against it, so each one works under names of its own
//! (see `unique`).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::Credentials;

pub const REGION: &str = "us-east-1";

/// The emulator's endpoint. Without one the test fails loudly: a test that
/// silently passes with no emulator proves nothing.
pub fn endpoint() -> String {
    match std::env::var("STEPGATE_TEST_ENDPOINT") {
        Ok(url) if !url.is_empty() => {
            assert!(
                url.starts_with("http://127.") || url.starts_with("http://localhost"),
                "STEPGATE_TEST_ENDPOINT={url} is not on loopback; tests only ever talk to a local emulator"
            );
            url
        }
        _ => panic!(
            "STEPGATE_TEST_ENDPOINT is not set, so there is no emulator to test against.\n\
             Run all tests with `bash tests/run.sh` (it installs and starts the emulator), or start one with\n\
             `tests/emulator/start.sh` and `export STEPGATE_TEST_ENDPOINT=$(cat .emulator/endpoint)`."
        ),
    }
}

/// SDK configuration pointing at the emulator with dummy credentials.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "stepgate-tests",
        ))
        .load()
        .await
}

/// A name no other test (or earlier run against the same emulator) uses:
/// `prefix` plus the process id and a per-process counter.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}x{n}", std::process::id() % 100_000)
}

/// One run of the stepgate binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as the JSON report (the command must have had `--output json`).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stepgate failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Mutating AWS operations the run made on the stack, by
    /// "Service.Operation". The lock's own calls (SSM) change no resource.
    pub fn mutating_calls(&self) -> std::collections::BTreeMap<String, u64> {
        let report = self.json();
        report["aws_calls"]["by_operation"]
            .as_object()
            .expect("aws_calls.by_operation")
            .iter()
            .filter(|(op, _)| {
                let name = op.rsplit('.').next().unwrap();
                !op.starts_with("SSM.")
                    && !["Get", "List", "Describe"]
                        .iter()
                        .any(|p| name.starts_with(p))
            })
            .map(|(op, n)| (op.clone(), n.as_u64().unwrap()))
            .collect()
    }

    /// "kind name" of every resource whose action is `action`.
    pub fn resources_with(&self, action: &str) -> Vec<String> {
        self.json()["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .filter(|r| r["action"] == action)
            .map(|r| {
                format!(
                    "{} {}",
                    r["kind"].as_str().unwrap(),
                    r["name"].as_str().unwrap()
                )
            })
            .collect()
    }
}

/// Runs stepgate against the emulator with clean AWS settings: nothing from
/// the developer's own environment (profiles, STEPGATE_*) leaks in.
pub fn stepgate(args: &[&str]) -> Run {
    stepgate_in(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

/// Same, with `dir` as the working and project directory.
pub fn stepgate_in(dir: &std::path::Path, args: &[&str]) -> Run {
    run(command(dir, args))
}

/// Runs stepgate from the repository against AWS at `aws_endpoint`.
pub fn stepgate_at(aws_endpoint: &str, args: &[&str]) -> Run {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    run(command_at(aws_endpoint, dir, args))
}

/// Runs a prepared stepgate command (see `command`) with no stdin; what it
/// printed is kept for the suite's secrets audit (`record`).
pub fn run(mut cmd: std::process::Command) -> Run {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the stepgate binary");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    record(&cmd, &run);
    run
}

/// Starts `cmd` with no stdin and its stdout and stderr piped, for a test
/// that acts while it runs (a signal, a bake); `finish` then keeps what it
/// printed.
pub fn spawn(cmd: &mut std::process::Command) -> std::process::Child {
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the stepgate binary")
}

/// Waits for a stepgate started with `cmd` (stdout and stderr piped) and
/// keeps what it printed, as `run` does.
pub fn finish(cmd: &std::process::Command, child: std::process::Child) -> Run {
    let out = child.wait_with_output().expect("wait for stepgate");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    record(cmd, &run);
    run
}

/// Keeps what a run printed, one file per run, under
/// `$STEPGATE_TEST_OUTPUTS` (tests/run.sh sets it): `outputs/` holds every
/// stdout and stderr but the stdout of `keys --reveal`, the one place a
/// key's value may appear, which goes to `revealed/`. After the suite, the
/// audit (tests/access.rs) looks for each value revealed in every output.
pub fn record(cmd: &std::process::Command, run: &Run) {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let Some(dir) = std::env::var_os("STEPGATE_TEST_OUTPUTS").filter(|d| !d.is_empty()) else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let name = format!(
        "{}-{}.txt",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    let mut stdout = run.stdout.as_str();
    if args.iter().any(|a| a == "--reveal") {
        std::fs::create_dir_all(dir.join("revealed")).unwrap();
        std::fs::write(dir.join("revealed").join(&name), stdout).unwrap();
        stdout = "(the stdout of keys --reveal is in revealed/)\n";
    }
    std::fs::create_dir_all(dir.join("outputs")).unwrap();
    std::fs::write(
        dir.join("outputs").join(&name),
        format!(
            "$ stepgate {}\n{stdout}\n--- stderr\n{}",
            args.join(" "),
            run.stderr
        ),
    )
    .unwrap();
}

/// The project's AWS fault proxy (tests/faults/proxy.py) in front of the
/// emulator, stopped when dropped.
pub struct Proxy {
    child: std::process::Child,
    pub url: String,
}

impl Proxy {
    /// Starts one with these command-line settings (see tests/faults/README.md).
    pub fn start(args: &[&str]) -> Proxy {
        use std::io::BufRead;
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/faults/proxy.py");
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .args(["--upstream", &endpoint(), "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start python3 tests/faults/proxy.py");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the proxy prints its URL");
        let url = line.trim().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "proxy said {url:?}");
        Proxy { child, url }
    }

    /// Changes its settings (POST /_fault/config); returns the new config.
    pub fn config(&self, settings: serde_json::Value) -> serde_json::Value {
        let answer = ureq::post(&format!("{}/_fault/config", self.url))
            .set("Content-Type", "application/json")
            .send_string(&settings.to_string())
            .unwrap_or_else(|e| panic!("proxy config {settings}: {e}"));
        serde_json::from_str(&answer.into_string().unwrap()).unwrap()
    }

    /// Its counters (GET /_fault/stats).
    pub fn stats(&self) -> serde_json::Value {
        let answer = ureq::get(&format!("{}/_fault/stats", self.url))
            .call()
            .unwrap_or_else(|e| panic!("proxy stats: {e}"));
        serde_json::from_str(&answer.into_string().unwrap()).unwrap()
    }

    /// AWS calls it has seen.
    pub fn calls(&self) -> u64 {
        self.stats()["calls"].as_u64().unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The stepgate command, not yet started, set up as `stepgate_in` runs it.
pub fn command(dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    command_at(&endpoint(), dir, args)
}

/// The binary under test: this build's, or `STEPGATE_TEST_BIN` (to show
/// that a new test fails against an older build).
pub fn binary() -> String {
    std::env::var("STEPGATE_TEST_BIN")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_stepgate").to_string())
}

/// stepgate's one API Gateway CloudWatch role for the whole account.
pub const CLOUDWATCH_ROLE: &str = "stepgate-apigateway-cloudwatch";
pub const CLOUDWATCH_ROLE_ARN: &str =
    "arn:aws:iam::000000000000:role/stepgate-apigateway-cloudwatch";
pub const CLOUDWATCH_POLICY_ARN: &str =
    "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs";
/// The trust policy stepgate gives that role (`Inputs::cloudwatch_role`).
pub const CLOUDWATCH_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// What every stack in the account shares, as a first deploy leaves it:
/// stepgate's CloudWatch role, and the region's API Gateway setting naming
/// it (LocalStack starts with a made-up role there, api-gw-cw-role, which
/// does not exist). Put in place once per test process, before its first
/// stepgate run, so that a test's plan and calls do not depend on whether
/// another test happened to deploy first. tests/api_logging.rs covers the
/// first deploy in an account, and someone else's role in the setting.
pub fn account_logging_in_place() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Callers may be inside a runtime already: use a thread of its own.
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(put_account_logging_in_place())
        })
        .join()
        .expect("put the account's CloudWatch role in place");
    });
}

/// Creates stepgate's CloudWatch role if it is missing and points the
/// region's setting at it.
pub async fn put_account_logging_in_place() {
    let config = sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&config);
    if iam
        .get_role()
        .role_name(CLOUDWATCH_ROLE)
        .send()
        .await
        .is_err()
    {
        // Another process may create it at the same moment: fine.
        let _ = iam
            .create_role()
            .role_name(CLOUDWATCH_ROLE)
            .assume_role_policy_document(CLOUDWATCH_TRUST)
            .description("Managed by stepgate")
            .tags(
                aws_sdk_iam::types::Tag::builder()
                    .key("stepgate:shared")
                    .value("apigateway-cloudwatch")
                    .build()
                    .unwrap(),
            )
            .send()
            .await;
        iam.attach_role_policy()
            .role_name(CLOUDWATCH_ROLE)
            .policy_arn(CLOUDWATCH_POLICY_ARN)
            .send()
            .await
            .unwrap();
    }
    set_cloudwatch_role(Some(CLOUDWATCH_ROLE_ARN)).await;
}

/// Sets the region's API Gateway CloudWatch role setting (`None` clears it).
pub async fn set_cloudwatch_role(arn: Option<&str>) {
    use aws_sdk_apigateway::types::{Op, PatchOperation};
    aws_sdk_apigateway::Client::new(&sdk_config().await)
        .update_account()
        .patch_operations(
            PatchOperation::builder()
                .op(Op::Replace)
                .path("/cloudwatchRoleArn")
                .set_value(arn.map(str::to_string))
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// The region's API Gateway CloudWatch role setting, `None` when empty.
pub async fn cloudwatch_role_setting() -> Option<String> {
    aws_sdk_apigateway::Client::new(&sdk_config().await)
        .get_account()
        .send()
        .await
        .unwrap()
        .cloudwatch_role_arn
        .filter(|a| !a.is_empty())
}

/// The stepgate command talking to AWS at `aws_endpoint` (the emulator, or
/// a fault proxy in front of it).
pub fn command_at(
    aws_endpoint: &str,
    dir: &std::path::Path,
    args: &[&str],
) -> std::process::Command {
    account_logging_in_place();
    let mut cmd = std::process::Command::new(binary());
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") || key.starts_with("STEPGATE_") {
            cmd.env_remove(key);
        }
    }
    // tests/run.sh collects every request of the suite, for the deployer
    // policy audit (tests/deployer_policy.rs).
    if let Some(log) = std::env::var_os("STEPGATE_TEST_CALL_LOG").filter(|l| !l.is_empty()) {
        cmd.env("STEPGATE_CALL_LOG", log);
    }
    cmd.current_dir(dir)
        .args(args)
        .env("AWS_ENDPOINT_URL", aws_endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

/// A copy of the project's sources (lambdas, definitions, policies) that a
/// test may edit without touching the repository.
pub fn project_copy(name: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("stepgate-test-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["lambdas", "definitions", "policies", "models", "smoke"] {
        copy_dir(&root.join(sub), &dir.join(sub));
    }
    // The declared routes, API name and machine role live here.
    std::fs::copy(root.join("stepgate.toml"), dir.join("stepgate.toml")).unwrap();
    dir
}

/// Adds `text` at the end of the project's stepgate.toml.
pub fn append_text(dir: &std::path::Path, text: &str) {
    let path = dir.join("stepgate.toml");
    let before = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, format!("{before}\n{text}")).unwrap();
}

/// `settings` (stepgate.toml text of settings only) followed by the stack
/// the repository's stepgate.toml declares (from its `[api]` table on), so
/// a test that writes its own settings still deploys the tutorial.
pub fn with_declarations(settings: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::read_to_string(root.join("stepgate.toml")).unwrap();
    let start = file
        .find("\n[api]")
        .expect("the repository's stepgate.toml declares [api]");
    format!("{settings}\n{}", &file[start..])
}

/// A fresh copy of `examples/{example}`, to change without touching it.
pub fn example_copy(example: &str, name: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(example);
    let dir = std::env::temp_dir().join(format!("stepgate-test-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&root, &dir);
    dir
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

pub const ORDER: &str = r#"{"orderId":"O101","customerName":"Demo Customer","orderDate":"2022-01-15","orderAmount":1400,"paymentStatus":"SUCCESS"}"#;

/// POSTs `order` to the API URL as any client would, then waits (bounded)
/// for the execution it started; returns (status, output).
pub async fn place_order(api_url: &str, order: &str) -> (String, serde_json::Value) {
    let placed = place_order_on(api_url, order).await;
    (placed.status, placed.output)
}

/// What an order placed through the API ran as.
pub struct Placed {
    pub status: String,
    pub output: serde_json::Value,
    pub execution_arn: String,
    /// The machine version it ran (DescribeExecution's stateMachineVersionArn).
    pub version_arn: Option<String>,
}

/// `place_order`, with the execution and the version it ran.
pub async fn place_order_on(api_url: &str, order: &str) -> Placed {
    let url = api_url.to_string();
    let body = order.to_string();
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
    let answer: serde_json::Value =
        serde_json::from_str(&answer).unwrap_or_else(|_| panic!("API answer: {answer}"));
    let arn = &execution_arn(api_url, &answer).await;
    let sfn = aws_sdk_sfn::Client::new(&sdk_config().await);
    for _ in 0..300 {
        let exec = sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .unwrap();
        if exec.status().as_str() != "RUNNING" {
            let output = exec
                .output()
                .map(|o| serde_json::from_str(o).unwrap())
                .unwrap_or_default();
            return Placed {
                status: exec.status().as_str().to_string(),
                output,
                execution_arn: arn.to_string(),
                version_arn: exec.state_machine_version_arn().map(str::to_string),
            };
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("execution {arn} still running after 30 s");
}

/// The ARN of the execution a route's answer names. The answer carries
/// only `executionId` (never the ARN, with the account in it): the ARN is
/// that of the stage's machine (named in the URL) that ran an execution
/// by that name.
pub async fn execution_arn(api_url: &str, answer: &serde_json::Value) -> String {
    let id = answer["executionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no executionId in {answer}"));
    assert!(
        !answer.to_string().contains("arn:"),
        "the answer hands out an ARN: {answer}"
    );
    // .../restapis/API_ID/STAGE/_user_request_/...
    let stage = api_url
        .split("/restapis/")
        .nth(1)
        .and_then(|rest| rest.split('/').nth(1))
        .unwrap_or_else(|| panic!("no stage in {api_url}"));
    let machines = aws_sdk_sfn::Client::new(&sdk_config().await)
        .list_state_machines()
        .send()
        .await
        .unwrap();
    let candidates: Vec<String> = machines
        .state_machines()
        .iter()
        .filter(|m| m.name().contains(&format!("-{stage}-")))
        .map(|m| {
            m.state_machine_arn()
                .replacen(":stateMachine:", ":execution:", 1)
                + ":"
                + id
        })
        .collect();
    let sfn = aws_sdk_sfn::Client::new(&sdk_config().await);
    for arn in &candidates {
        if sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .is_ok()
        {
            return arn.clone();
        }
    }
    panic!("execution {id} belongs to no state machine of stage {stage}");
}

/// Everything named for this stage still in the emulator, one entry per
/// resource ("rest-api orders-x-OrderProcessorAPI" twice for a duplicate),
/// the stage's lock parameter included. The account's shared CloudWatch
/// role is no stage's, so never a leftover; it must still carry its tag.
pub async fn leftovers(stage: &str) -> Vec<String> {
    leftovers_of("orders", stage).await
}

/// What stack `stack` stage `stage` left behind: every resource named for
/// it, and its lock.
pub async fn leftovers_of(stack: &str, stage: &str) -> Vec<String> {
    let config = sdk_config().await;
    if let Ok(shared) = aws_sdk_iam::Client::new(&config)
        .get_role()
        .role_name(CLOUDWATCH_ROLE)
        .send()
        .await
    {
        let tags = shared
            .role
            .map(|r| r.tags)
            .unwrap_or_default()
            .unwrap_or_default();
        assert!(
            tags.iter()
                .any(|t| t.key() == "stepgate:shared" && t.value() == "apigateway-cloudwatch"),
            "role {CLOUDWATCH_ROLE} lost its stepgate:shared tag: {tags:?}"
        );
    }
    let needle = format!("{stack}-{stage}-");
    let mut left = Vec::new();
    let mut keep = |kind: &str, names: Vec<String>| {
        left.extend(
            names
                .into_iter()
                .filter(|n| n.contains(&needle))
                .map(|n| format!("{kind} {n}")),
        )
    };
    let roles = aws_sdk_iam::Client::new(&config)
        .list_roles()
        .send()
        .await
        .unwrap();
    keep(
        "role",
        roles
            .roles()
            .iter()
            .map(|r| r.role_name().to_string())
            .collect(),
    );
    let functions = aws_sdk_lambda::Client::new(&config)
        .list_functions()
        .send()
        .await
        .unwrap();
    keep(
        "function",
        functions
            .functions()
            .iter()
            .filter_map(|f| f.function_name().map(str::to_string))
            .collect(),
    );
    let machines = aws_sdk_sfn::Client::new(&config)
        .list_state_machines()
        .send()
        .await
        .unwrap();
    keep(
        "state-machine",
        machines
            .state_machines()
            .iter()
            .map(|m| m.name().to_string())
            .collect(),
    );
    keep("rest-api", api_names(&config).await);
    let groups = aws_sdk_cloudwatchlogs::Client::new(&config)
        .describe_log_groups()
        .send()
        .await
        .unwrap();
    keep(
        "log-group",
        groups
            .log_groups()
            .iter()
            .filter_map(|g| g.log_group_name().map(str::to_string))
            .collect(),
    );
    let lock = format!("/stepgate/{stack}/{stage}/lock");
    if aws_sdk_ssm::Client::new(&config)
        .get_parameter()
        .name(&lock)
        .send()
        .await
        .is_ok()
    {
        left.push(format!("lock {lock}"));
    }
    left
}

/// The name of every REST API in the emulator, once per API.
pub async fn api_names(config: &SdkConfig) -> Vec<String> {
    aws_sdk_apigateway::Client::new(config)
        .get_rest_apis()
        .limit(500)
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .filter_map(|a| a.name().map(str::to_string))
        .collect()
}

/// How many REST APIs the stage has (more than 1 is a duplicate).
pub async fn api_count(stage: &str) -> usize {
    api_count_named(&format!("orders-{stage}-OrderProcessorAPI")).await
}

/// How many REST APIs are named `name`.
pub async fn api_count_named(name: &str) -> usize {
    api_names(&sdk_config().await)
        .await
        .iter()
        .filter(|n| *n == name)
        .count()
}

/// A stand-in AWS endpoint on loopback that counts the connections made to
/// it and answers each request with an HTML 404, as a web server that is not
/// AWS would. A run pointed at it that ends with `connections() == 0` made
/// no AWS call at all: that is how the bad-input tests prove a check is
/// local. Needs no emulator.
pub struct Sentinel {
    pub url: String,
    connections: std::sync::Arc<AtomicU32>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sentinel {
    pub fn start() -> Sentinel {
        use std::io::{Read, Write};
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, done) = (connections.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: it stops when the Sentinel is dropped.
            while !done.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        count.fetch_add(1, Ordering::Relaxed);
                        let _ = stream.set_nonblocking(false);
                        let _ =
                            stream.set_read_timeout(Some(std::time::Duration::from_millis(500)));
                        let mut buffer = [0u8; 65536];
                        let _ = stream.read(&mut buffer);
                        let body = "<!DOCTYPE html>\n<html>\n<head><title>404 Not Found</title></head>\n\
                                    <body>\n<h1>Not Found</h1>\n<p>nothing here</p>\n</body>\n</html>\n";
                        let _ = write!(
                            stream,
                            "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        Sentinel {
            url,
            connections,
            stop,
            thread: Some(thread),
        }
    }

    pub fn connections(&self) -> u32 {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs stepgate in `dir` with every AWS setting pointing at `endpoint`,
/// dummy keys, no shared config files and nothing from the developer's own
/// environment; `env` adds or overrides variables (an empty value removes
/// one). Needs no emulator.
pub fn offline(dir: &std::path::Path, endpoint: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = std::process::Command::new(binary());
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") || key.starts_with("STEPGATE_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir)
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        );
    // An empty value removes the variable.
    for (key, value) in env {
        if value.is_empty() {
            cmd.env_remove(key);
        } else {
            cmd.env(key, value);
        }
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the stepgate binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The lines of stderr that start with `error:`.
pub fn error_lines(run: &Run) -> Vec<&str> {
    run.stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect()
}

/// A policy document as IAM returns it (URL-encoded; the emulator may not
/// encode it), as JSON.
pub fn policy_json(doc: &str) -> serde_json::Value {
    serde_json::from_str(doc).unwrap_or_else(|_| {
        let mut out = Vec::new();
        let mut bytes = doc.bytes();
        while let Some(b) = bytes.next() {
            match b {
                b'%' => {
                    let hex: String = [bytes.next().unwrap(), bytes.next().unwrap()]
                        .iter()
                        .map(|&c| c as char)
                        .collect();
                    out.push(u8::from_str_radix(&hex, 16).unwrap());
                }
                b'+' => out.push(b' '),
                b => out.push(b),
            }
        }
        serde_json::from_slice(&out).unwrap()
    })
}
