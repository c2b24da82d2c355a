//! The deployer policy (`docs/deployer-policy.json`, `stepgate
//! deployer-policy`) can never drift from the code: a full cycle runs as an
//! assumed deployer role in a second account (deploy, a deploy that changes
//! code, definition, policies, settings and tags, drift repair, plan,
//! invoke, executions, logs, outputs, a held lock and unlock, destroy),
//! every request is taken from stepgate's call log, and each is checked
//! against the policy as IAM would: the action (and the actions AWS
//! requires with it, such as iam:PassRole), the resource ARN, and the
//! conditions the policy uses. The policy must also not allow what no
//! request needed.
//!
//! The emulator does not enforce IAM, so the evaluation is this file's:
//! Allow statements only (stepgate's policy has no Deny), wildcards in
//! Action and Resource, and the condition operators the policy uses; an
//! operator or key this file does not know fails the test rather than
//! pass it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{json, Value};

const DEPLOYER_ACCOUNT: &str = "111111111111";
const REGION: &str = "us-east-1";

fn role_arn() -> String {
    format!("arn:aws:iam::{DEPLOYER_ACCOUNT}:role/deployer")
}

/// What one request needs from IAM: an action on a resource, with the
/// request's values of the condition keys.
#[derive(Debug, Clone)]
struct Need {
    action: String,
    resource: String,
    context: BTreeMap<String, String>,
}

fn need(action: &str, resource: impl Into<String>) -> Need {
    Need {
        action: action.into(),
        resource: resource.into(),
        context: BTreeMap::new(),
    }
}

fn pass_role(role: &str, service: &str) -> Need {
    let mut n = need("iam:PassRole", role);
    n.context.insert(
        "iam:PassedToService".into(),
        format!("{service}.amazonaws.com"),
    );
    n
}

/// The actions Step Functions requires of whoever creates, updates or
/// deletes a state machine that logs to CloudWatch Logs (Step Functions
/// developer guide, "IAM policies for logging to CloudWatch Logs").
fn log_delivery() -> Vec<Need> {
    [
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    ]
    .iter()
    .map(|action| need(action, "*"))
    .collect()
}

fn str_of<'a>(params: &'a Value, key: &str) -> &'a str {
    params[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {params}"))
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// What IAM checks for one logged request, from the Service Authorization
/// Reference: the action named after the operation (API Gateway's are its
/// HTTP methods on the path), its resource, and the dependent actions.
fn needs(call: &Value, account: &str) -> Vec<Need> {
    let service = call["service"].as_str().unwrap();
    let op = call["operation"].as_str().unwrap();
    let params = &call["params"];
    let path = call["path"].as_str().unwrap();
    let path = path.split('?').next().unwrap();
    let region = REGION;
    let role = |name: &str| format!("arn:aws:iam::{account}:role/{name}");
    let function = |name: &str| {
        if name.starts_with("arn:") {
            name.to_string()
        } else {
            format!("arn:aws:lambda:{region}:{account}:function:{name}")
        }
    };
    let log_group = |name: &str| format!("arn:aws:logs:{region}:{account}:log-group:{name}");
    match service {
        // GetCallerIdentity needs no permission; AssumeRole is allowed by
        // the role's trust policy and the caller's own policy, not this one.
        "STS" => vec![],
        // What each kind's inventory lists: IAM scopes none of these to a
        // resource (Service Authorization Reference).
        "IAM" if op == "ListRoles" => vec![need("iam:ListRoles", "*")],
        "Lambda" if op == "ListFunctions" => vec![need("lambda:ListFunctions", "*")],
        "SFN" if op == "ListStateMachines" => vec![need("states:ListStateMachines", "*")],
        "IAM" => {
            let target = role(str_of(params, "RoleName"));
            let mut out = vec![need(&format!("iam:{op}"), &target)];
            if op == "CreateRole" && params.get("Tags.member.1.Key").is_some() {
                out.push(need("iam:TagRole", &target));
            }
            if let Some(policy) = params.get("PolicyArn").and_then(Value::as_str) {
                out[0].context.insert("iam:PolicyARN".into(), policy.into());
            }
            out
        }
        "Lambda" => {
            let mut out = Vec::new();
            let name = if let Some(tagged) = path.strip_prefix("/2017-03-31/tags/") {
                percent_decoded(tagged)
            } else if op == "CreateFunction" {
                str_of(params, "FunctionName").to_string()
            } else {
                let rest = path
                    .strip_prefix("/2015-03-31/functions/")
                    .unwrap_or_else(|| panic!("unexpected Lambda path {path}"));
                percent_decoded(rest.split('/').next().unwrap())
            };
            let target = function(&name);
            out.push(need(&format!("lambda:{op}"), &target));
            if op == "CreateFunction" && params.get("Tags").is_some() {
                out.push(need("lambda:TagResource", &target));
            }
            if let Some(r) = params.get("Role").and_then(Value::as_str) {
                out.push(pass_role(r, "lambda"));
            }
            out
        }
        "SFN" => {
            // An alias is created by name on a version's machine.
            let new_alias = (op == "CreateStateMachineAlias").then(|| {
                let version = params["routingConfiguration"][0]["stateMachineVersionArn"]
                    .as_str()
                    .unwrap();
                let machine = version.rsplit_once(':').unwrap().0;
                format!("{machine}:{}", str_of(params, "name"))
            });
            let target = [
                "stateMachineArn",
                "stateMachineVersionArn",
                "stateMachineAliasArn",
                "executionArn",
                "resourceArn",
            ]
            .iter()
            .find_map(|k| params.get(*k).and_then(Value::as_str).map(str::to_string))
            .or(new_alias)
            .unwrap_or_else(|| {
                format!(
                    "arn:aws:states:{region}:{account}:stateMachine:{}",
                    str_of(params, "name")
                )
            });
            let mut out = vec![need(&format!("states:{op}"), &target)];
            if op == "CreateStateMachine" && params.get("tags").is_some() {
                out.push(need("states:TagResource", &target));
            }
            if let Some(r) = params.get("roleArn").and_then(Value::as_str) {
                out.push(pass_role(r, "states"));
            }
            if params.get("loggingConfiguration").is_some() || op == "DeleteStateMachine" {
                out.extend(log_delivery());
            }
            out
        }
        "CloudWatch Logs" => {
            let target = if op == "DescribeLogGroups" {
                // Not scoped by name in IAM: the resource is every group.
                log_group("*")
            } else if let Some(arn) = params.get("resourceArn").and_then(Value::as_str) {
                arn.to_string()
            } else {
                log_group(str_of(params, "logGroupName"))
            };
            let mut out = vec![need(&format!("logs:{op}"), &target)];
            if op == "CreateLogGroup" && params.get("tags").is_some() {
                out.push(need("logs:TagResource", &target));
            }
            out
        }
        // DescribeAlarms lists by prefix and reads a bake's alarms: IAM
        // scopes it to no resource (Service Authorization Reference).
        "CloudWatch" if op == "DescribeAlarms" => vec![need("cloudwatch:DescribeAlarms", "*")],
        "CloudWatch" => {
            let name = ["AlarmName", "AlarmNames.member.1"]
                .iter()
                .find_map(|k| params.get(*k).and_then(Value::as_str));
            let target = match (name, params.get("ResourceARN").and_then(Value::as_str)) {
                (Some(name), _) => format!("arn:aws:cloudwatch:{region}:{account}:alarm:{name}"),
                (None, Some(arn)) => arn.to_string(),
                (None, None) => panic!("CloudWatch {op} names no alarm: {params}"),
            };
            let mut out = vec![need(&format!("cloudwatch:{op}"), &target)];
            if op == "PutMetricAlarm" && params.get("Tags.member.1.Key").is_some() {
                out.push(need("cloudwatch:TagResource", &target));
            }
            out
        }
        "SSM" => {
            let target = format!(
                "arn:aws:ssm:{region}:{account}:parameter{}",
                str_of(params, "Name")
            );
            let mut out = vec![need(&format!("ssm:{op}"), &target)];
            if op == "PutParameter" && params.get("Tags").is_some() {
                out.push(need("ssm:AddTagsToResource", &target));
            }
            out
        }
        "API Gateway" => {
            let method = call["method"].as_str().unwrap();
            let target = format!("arn:aws:apigateway:{region}::{}", percent_decoded(path));
            let mut out = vec![need(&format!("apigateway:{method}"), &target)];
            if params
                .get("tags")
                .is_some_and(|t| t.as_object().is_some_and(|t| !t.is_empty()))
            {
                out.push(need(
                    "apigateway:PUT",
                    format!("arn:aws:apigateway:{region}::/tags/*"),
                ));
            }
            let mut roles: Vec<&str> = Vec::new();
            if let Some(r) = params.get("credentials").and_then(Value::as_str) {
                roles.push(r);
            }
            for patch in params["patchOperations"].as_array().into_iter().flatten() {
                if patch["path"] == "/cloudwatchRoleArn" {
                    roles.extend(patch["value"].as_str());
                }
            }
            out.extend(roles.into_iter().map(|r| pass_role(r, "apigateway")));
            out
        }
        other => panic!("no IAM mapping for service {other} ({op}); add one"),
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` one.
fn matches(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if case_insensitive {
        (
            pattern.to_lowercase().chars().collect(),
            text.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(&p, &t)
}

fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        other => panic!("expected a string or a list of strings, got {other}"),
    }
}

fn condition_holds(condition: &Value, context: &BTreeMap<String, String>) -> bool {
    let Some(operators) = condition.as_object() else {
        return true;
    };
    operators.iter().all(|(operator, keys)| {
        keys.as_object().unwrap().iter().all(|(key, wanted)| {
            const KNOWN: [&str; 2] = ["iam:PassedToService", "iam:PolicyARN"];
            assert!(
                KNOWN.contains(&key.as_str()),
                "the policy uses condition key {key}, which this test cannot evaluate; teach it"
            );
            let Some(actual) = context.get(key) else {
                return false; // IAM: a missing key fails a condition without IfExists
            };
            let wanted = strings(wanted);
            match operator.as_str() {
                "StringEquals" | "ArnEquals" => wanted.contains(&actual.as_str()),
                "StringLike" | "ArnLike" => wanted.iter().any(|w| matches(w, actual, false)),
                other => panic!("the policy uses condition operator {other}; teach this test"),
            }
        })
    })
}

/// The statements that allow `n`, by Sid.
fn allowed_by<'a>(policy: &'a Value, n: &Need) -> Vec<&'a str> {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            assert_eq!(
                s["Effect"], "Allow",
                "this test evaluates Allow statements only"
            );
            strings(&s["Action"])
                .iter()
                .any(|a| matches(a, &n.action, true))
                && strings(&s["Resource"])
                    .iter()
                    .any(|r| matches(r, &n.resource, false))
                && condition_holds(&s["Condition"], &n.context)
        })
        .map(|s| s["Sid"].as_str().unwrap_or("?"))
        .collect()
}

fn policy() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/deployer-policy.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_evaluator_refuses_what_the_policy_does_not_allow() {
    // So that the cycle below can fail: each of these is one step outside.
    let policy = policy();
    let denied = [
        need(
            "lambda:UpdateFunctionCode",
            "arn:aws:lambda:us-east-1:1:function:other-dev-x",
        ),
        need(
            "lambda:UpdateFunctionCode",
            "arn:aws:lambda:us-east-1:1:function:orders_x-dev-x",
        ),
        need("iam:CreateRole", "arn:aws:iam::1:role/admin"),
        need("iam:CreateUser", "arn:aws:iam::1:user/orders-dev"),
        pass_role("arn:aws:iam::1:role/orders-dev-us-east-1-lambda", "ec2"),
        need(
            "iam:PassRole",
            "arn:aws:iam::1:role/orders-dev-us-east-1-lambda",
        ),
        need(
            "ssm:PutParameter",
            "arn:aws:ssm:us-east-1:1:parameter/stepgate/other/dev/lock",
        ),
        need(
            "logs:DeleteLogGroup",
            "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/other-dev-x",
        ),
        need(
            "states:StartExecution",
            "arn:aws:states:us-east-1:1:stateMachine:orders-dev-OrderProcessor",
        ),
    ];
    let mut attach_admin = need(
        "iam:AttachRolePolicy",
        "arn:aws:iam::1:role/stepgate-apigateway-cloudwatch",
    );
    attach_admin.context.insert(
        "iam:PolicyARN".into(),
        "arn:aws:iam::aws:policy/AdministratorAccess".into(),
    );
    let mut denied = denied.to_vec();
    denied.push(attach_admin);
    denied.push(need(
        "iam:DeleteRole",
        "arn:aws:iam::1:role/stepgate-apigateway-cloudwatch",
    ));
    for n in denied {
        assert!(
            allowed_by(&policy, &n).is_empty(),
            "allowed, but must not be: {n:?}"
        );
    }
    let allowed = pass_role("arn:aws:iam::1:role/orders-dev-us-east-1-lambda", "lambda");
    assert_eq!(
        allowed_by(&policy, &allowed),
        ["PassStackRolesToTheirServices"]
    );
}

/// Runs stepgate as the deployer role, logging its requests to `log`.
fn run(dir: &Path, log: &Path, args: &[&str]) -> common::Run {
    let role = role_arn();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--role-arn", &role, "--output", "json", "-q"]);
    let mut cmd = common::command(dir, &all);
    cmd.env("STEPGATE_CALL_LOG", log);
    let run = common::run(cmd);
    assert_eq!(run.code, 0, "stepgate {args:?} failed: {}", run.stderr);
    run
}

fn deployer_sdk(config: &aws_config::SdkConfig) -> aws_config::SdkConfig {
    // The emulator takes a 12-digit access key id as the account.
    config
        .to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    DEPLOYER_ACCOUNT,
                    "test",
                    None,
                    None,
                    "test",
                ),
            ),
        )
        .build()
}

#[tokio::test]
async fn every_request_of_a_full_cycle_is_allowed_by_the_deployer_policy() {
    let stage = common::unique("policy");
    let s = stage.as_str();
    let dir = common::project_copy(&stage);
    let log = dir.join("calls.jsonl");

    // The deployer's account as a new one: no API Gateway CloudWatch role
    // set, no shared role, so the cycle takes the account-setting path too.
    let sdk = deployer_sdk(&common::sdk_config().await);
    let iam = aws_sdk_iam::Client::new(&sdk);
    let _ = iam
        .detach_role_policy()
        .role_name("stepgate-apigateway-cloudwatch")
        .policy_arn("arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")
        .send()
        .await;
    let _ = iam
        .delete_role()
        .role_name("stepgate-apigateway-cloudwatch")
        .send()
        .await;
    aws_sdk_apigateway::Client::new(&sdk)
        .update_account()
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/cloudwatchRoleArn")
                .build(),
        )
        .send()
        .await
        .unwrap();

    // Deploy as the assumed role: the identity is the role's session.
    let deployed = run(&dir, &log, &["deploy", "--stage", s]).json();
    assert_eq!(deployed["account"], DEPLOYER_ACCOUNT);
    assert_eq!(
        deployed["identity"],
        format!("arn:aws:sts::{DEPLOYER_ACCOUNT}:assumed-role/deployer/stepgate-orders-{s}")
    );
    assert_eq!(deployed["aws_calls"]["by_operation"]["STS.AssumeRole"], 1);
    // It landed in the role's account, not the caller's.
    let function = format!("orders-{s}-completeOrder");
    let in_account = |sdk: aws_config::SdkConfig| {
        let function = function.clone();
        async move {
            aws_sdk_lambda::Client::new(&sdk)
                .get_function()
                .function_name(function)
                .send()
                .await
                .is_ok()
        }
    };
    let default = common::sdk_config().await;
    assert!(in_account(deployer_sdk(&default)).await);
    assert!(!in_account(default).await);

    // A deploy that changes everything it can: code, definition, a role's
    // policy, a setting and tags.
    let handler = dir.join("lambdas/completeOrder/index.js");
    let code = std::fs::read_to_string(&handler).unwrap();
    std::fs::write(&handler, format!("{code}\n// changed\n")).unwrap();
    let definition = dir.join("definitions/OrderProcessor.asl.json");
    let mut asl: Value =
        serde_json::from_str(&std::fs::read_to_string(&definition).unwrap()).unwrap();
    asl["Comment"] = json!("changed by the deployer policy test");
    std::fs::write(&definition, asl.to_string()).unwrap();
    let policy_file = dir.join("policies/lambda-permissions.json");
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&policy_file).unwrap()).unwrap();
    doc["Statement"][0]["Sid"] = json!("WriteOwnLogsChanged");
    std::fs::write(&policy_file, doc.to_string()).unwrap();
    std::fs::write(
        dir.join("stepgate.toml"),
        common::with_declarations(
            "[defaults.tags]\nteam = \"payments\"\n[defaults.throttling]\nburst_limit = 10\nrate_limit = 5.0\n",
        ),
    )
    .unwrap();
    let changed = run(&dir, &log, &["deploy", "--stage", s, "--memory", "256"]).json();
    assert_eq!(changed["changed"], true);

    // Drift made out of band in the deployer's account, repaired by deploy.
    let lambda_role = format!("orders-{s}-us-east-1-lambda");
    iam.attach_role_policy()
        .role_name(&lambda_role)
        .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
        .send()
        .await
        .unwrap();
    iam.update_assume_role_policy()
        .role_name(&lambda_role)
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    run(&dir, &log, &["deploy", "--stage", s]);

    for command in ["plan", "outputs", "invoke", "executions", "logs"] {
        run(&dir, &log, &[command, "--stage", s]);
    }

    // A lock left by a run on another host, removed by unlock.
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let lease = json!({"id": "other", "command": "deploy", "host": "elsewhere", "pid": 1,
        "since": "2026-01-01T00:00:00Z", "expires": "2999-01-01T00:00:00Z"});
    ssm.put_parameter()
        .name(format!("/stepgate/orders/{s}/lock"))
        .value(lease.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    run(&dir, &log, &["unlock", "--stage", s]);
    run(&dir, &log, &["destroy", "--stage", s, "--yes"]);

    // Every request, checked.
    let policy = policy();
    let calls: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let operations: BTreeSet<String> = calls
        .iter()
        .map(|c| {
            format!(
                "{}.{}",
                c["service"].as_str().unwrap(),
                c["operation"].as_str().unwrap()
            )
        })
        .collect();
    assert!(operations.contains("STS.AssumeRole"), "{operations:?}");
    let mut refused = Vec::new();
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for call in &calls {
        for n in needs(call, DEPLOYER_ACCOUNT) {
            let by = allowed_by(&policy, &n);
            if by.is_empty() {
                refused.push(format!(
                    "{} {} needs {} on {} {:?}",
                    call["service"], call["operation"], n.action, n.resource, n.context
                ));
            }
            for sid in by {
                used.entry(sid.to_string())
                    .or_default()
                    .insert(n.action.to_lowercase());
            }
        }
    }
    refused.sort();
    refused.dedup();
    assert!(
        refused.is_empty(),
        "the deployer policy refuses:\n{}",
        refused.join("\n")
    );

    // Least privilege: every action a statement grants was needed by some
    // request through that statement, but for the paths this cycle does not
    // take (each named with why; an entry the cycle does reach is stale).
    let not_reached: BTreeMap<&str, &str> = BTreeMap::from([
        (
            "LetApiGatewayInvokeAuthorizers: lambda:addpermission",
            "the tutorial declares no Lambda authorizer: tests/access.rs declares one, and the suite-wide audit checks it",
        ),
        (
            "LetApiGatewayInvokeAuthorizers: lambda:removepermission",
            "the tutorial declares no Lambda authorizer: tests/access.rs removes one, and the suite-wide audit checks it",
        ),
        (
            "ApiKeysAndUsagePlans: apigateway:post",
            "the tutorial declares no [api] keys: tests/access.rs creates keys and a usage plan, and the suite-wide audit checks them",
        ),
        (
            "ApiKeysAndUsagePlans: apigateway:patch",
            "the tutorial declares no [api] keys: tests/access.rs changes a usage plan, and the suite-wide audit checks it",
        ),
        (
            "ApiKeysAndUsagePlans: apigateway:delete",
            "the tutorial declares no [api] keys: tests/access.rs deletes a key and a usage plan, and the suite-wide audit checks them",
        ),
        (
            "MachineAlarms: cloudwatch:putmetricalarm",
            "the tutorial declares no alarms: tests/rollout.rs creates and changes them, and the suite-wide audit checks it",
        ),
        (
            "MachineAlarms: cloudwatch:deletealarms",
            "the tutorial declares no alarms: tests/rollout.rs prunes them, and the suite-wide audit checks it",
        ),
        (
            "MachineAlarms: cloudwatch:listtagsforresource",
            "the tutorial declares no alarms: tests/rollout.rs reads them back, and the suite-wide audit checks it",
        ),
        (
            "MachineAlarms: cloudwatch:tagresource",
            "the tutorial declares no alarms: tests/rollout.rs tags them, and the suite-wide audit checks it",
        ),
        (
            "SmokeOrdersOnNewVersions: states:startsyncexecution",
            "smoke orders of an EXPRESS machine; the tutorial's is STANDARD: tests/rollout.rs runs the quote example's, and the suite-wide audit checks it",
        ),
    ]);
    let mut unused = Vec::new();
    for statement in policy["Statement"].as_array().unwrap() {
        let sid = statement["Sid"].as_str().unwrap();
        for action in strings(&statement["Action"]) {
            let action = action.to_lowercase();
            let needed = used.get(sid).is_some_and(|u| u.contains(&action));
            match (needed, not_reached.get(format!("{sid}: {action}").as_str())) {
                (false, None) => unused.push(format!("{sid}: {action}")),
                (true, Some(why)) => {
                    panic!("{sid}: {action} is reached now ({why}): drop it from not_reached")
                }
                _ => {}
            }
        }
    }
    assert!(
        unused.is_empty(),
        "the policy grants what no request needed:\n{}",
        unused.join("\n")
    );
    assert!(
        common::leftovers(s).await.is_empty(),
        "nothing of the stage is left in the default account either"
    );
}

/// Every request any test of the suite made through stepgate, checked
/// against its stack's deployer policy: drift repairs, duplicate APIs,
/// lock takeovers, retries under injected faults and the rest, beyond the
/// cycle above. `tests/run.sh` collects them (`STEPGATE_TEST_CALL_LOG`)
/// and runs this after the suite.
#[test]
#[ignore = "run by tests/run.sh after the whole suite"]
fn every_request_the_suite_made_is_allowed_by_the_deployer_policy() {
    let path = std::env::var("STEPGATE_TEST_CALL_LOG")
        .expect("STEPGATE_TEST_CALL_LOG names the suite's call log");
    let text = std::fs::read_to_string(&path).unwrap();
    let calls: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        calls.len() > 1000,
        "only {} requests logged: is the log collected?",
        calls.len()
    );
    let mut policies: BTreeMap<(String, String, bool), Value> = BTreeMap::new();
    let mut refused = BTreeSet::new();
    for call in &calls {
        let stack = call["stack"].as_str().unwrap().to_string();
        // The project's name overrides join its stack's policy; adopt's
        // reads are the `--adopt` policy's.
        let project = call["project_dir"].as_str().unwrap_or_default().to_string();
        let adopt = call["adopt"].as_bool().unwrap_or(false);
        let key = (stack.clone(), project.clone(), adopt);
        let policy = policies.entry(key).or_insert_with(|| {
            let mut args = vec!["deployer-policy", "--stack", &stack];
            if Path::new(&project).join("stepgate.toml").is_file() {
                args.extend(["--project-dir", &project]);
            }
            if adopt {
                args.push("--adopt");
            }
            let out = std::process::Command::new(common::binary())
                .args(&args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).unwrap()
        });
        for n in needs(call, "000000000000") {
            if allowed_by(policy, &n).is_empty() {
                refused.insert(format!(
                    "stack {stack}: {} {} needs {} on {} {:?}",
                    call["service"], call["operation"], n.action, n.resource, n.context
                ));
            }
        }
    }
    assert!(
        refused.is_empty(),
        "of {} requests, the deployer policy refuses:\n{}",
        calls.len(),
        refused.into_iter().collect::<Vec<_>>().join("\n")
    );
}
