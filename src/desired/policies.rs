//! The roles' documents generated from the declared stack, least privilege
//! by construction: a machine may invoke exactly the functions its
//! definition names (and their versions, which it pins) and start exactly
//! the machines it names; API Gateway may start exactly the `live` aliases
//! of the machines its routes name; the shared Lambda role
//! may only write its functions' logs. A `policies/ROLE-permissions.json`
//! (or a `policy` key) replaces the generated permissions; a
//! `policies/ROLE-trust.json` the trust. Placeholders are filled later, as
//! in the files.

use serde_json::{json, Value};

use crate::project::{Project, RoleOf};

/// The role's permissions, with placeholders.
pub fn permissions(project: &Project, role: &str, of: &RoleOf) -> Value {
    if let Some(file) = project
        .policy_files
        .get(role)
        .and_then(|f| f.permissions.clone())
    {
        if !matches!(of, RoleOf::Lambda) || role == crate::project::SHARED_LAMBDA_ROLE {
            return file;
        }
    }
    match of {
        RoleOf::Lambda => lambda(project, role),
        RoleOf::StateMachine(name) => {
            let machine = &project.machines[name];
            machine
                .policy
                .clone()
                .unwrap_or_else(|| state_machine(project, name))
        }
        RoleOf::ApiGateway => api_gateway(project),
    }
}

/// Who may assume the role, safe from the confused deputy: the service,
/// only for this account (and for a machine's role, only that machine).
pub fn trust(project: &Project, role: &str, of: &RoleOf) -> Value {
    if let Some(file) = project.policy_files.get(role).and_then(|f| f.trust.clone()) {
        return file;
    }
    let statement = match of {
        RoleOf::Lambda => json!({
            "Effect": "Allow",
            "Principal": { "Service": "lambda.amazonaws.com" },
            "Action": "sts:AssumeRole",
        }),
        RoleOf::StateMachine(name) => json!({
            "Effect": "Allow",
            "Principal": { "Service": "states.amazonaws.com" },
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": { "aws:SourceAccount": "${account}" },
                "ArnLike": { "aws:SourceArn": format!("${{{name}Arn}}") },
            },
        }),
        // API Gateway documents no aws:SourceArn for an integration's role.
        RoleOf::ApiGateway => json!({
            "Effect": "Allow",
            "Principal": { "Service": "apigateway.amazonaws.com" },
            "Action": "sts:AssumeRole",
            "Condition": { "StringEquals": { "aws:SourceAccount": "${account}" } },
        }),
    };
    json!({ "Version": "2012-10-17", "Statement": [statement] })
}

fn document(statements: Vec<Value>) -> Value {
    json!({ "Version": "2012-10-17", "Statement": statements })
}

fn one_or_list(mut items: Vec<String>) -> Value {
    if items.len() == 1 {
        json!(items.remove(0))
    } else {
        json!(items)
    }
}

/// A role's functions may write their own log streams, nothing else. A
/// function with a policy of its own gets that policy plus its logs.
fn lambda(project: &Project, role: &str) -> Value {
    let functions: Vec<_> = project.functions_of(role).collect();
    let logs = json!({
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": one_or_list(
            functions.iter().map(|f| format!("${{{}LogGroupArn}}:*", f.name)).collect()
        ),
    });
    let mut statements = Vec::new();
    for f in &functions {
        if let Some(own) = &f.policy {
            statements.extend(own["Statement"].as_array().cloned().unwrap_or_default());
        }
    }
    statements.push(logs);
    document(statements)
}

fn state_machine(project: &Project, name: &str) -> Value {
    let machine = &project.machines[name];
    let mut statements = Vec::new();
    if !machine.invokes.is_empty() {
        statements.push(json!({
            "Sid": "InvokeFunctions",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            // The versions the definition pins, and the function itself.
            "Resource": one_or_list(machine.invokes.iter().flat_map(|f| [format!("${{{f}Arn}}"), format!("${{{f}Arn}}:*")]).collect()),
        }));
    }
    if !machine.starts.is_empty() {
        statements.push(json!({
            "Sid": "StartExecutions",
            "Effect": "Allow",
            "Action": "states:StartExecution",
            "Resource": one_or_list(machine.starts.iter().map(|m| format!("${{{m}Arn}}")).collect()),
        }));
    }
    // Step Functions delivers logs through CloudWatch Logs' vended-log
    // delivery, which IAM cannot scope to one group (AWS's documented policy).
    statements.push(json!({
        "Sid": "DeliverExecutionLogs",
        "Effect": "Allow",
        "Action": crate::checks::policy::LOG_DELIVERY_ACTIONS,
        "Resource": "*",
    }));
    if machine.tracing {
        statements.push(json!({
            "Sid": "SendTraces",
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
            ],
            "Resource": "*",
        }));
    }
    document(statements)
}

fn api_gateway(project: &Project) -> Value {
    let routed = |sync: bool| -> Vec<String> {
        let names: std::collections::BTreeSet<&String> = project
            .routes
            .iter()
            .filter(|r| r.sync == sync)
            .map(|r| &r.state_machine)
            .collect();
        // Async routes start the `live` alias; sync routes the version it
        // serves, whichever number that is.
        let qualifier = if sync { "*" } else { crate::names::LIVE_ALIAS };
        names
            .into_iter()
            .map(|m| format!("${{{m}Arn}}:{qualifier}"))
            .collect()
    };
    let mut statements = Vec::new();
    let (start, sync) = (routed(false), routed(true));
    if !start.is_empty() {
        statements.push(json!({
            "Sid": "StartExecutions",
            "Effect": "Allow",
            "Action": "states:StartExecution",
            "Resource": one_or_list(start),
        }));
    }
    if !sync.is_empty() {
        statements.push(json!({
            "Sid": "StartSyncExecutions",
            "Effect": "Allow",
            "Action": "states:StartSyncExecution",
            "Resource": one_or_list(sync),
        }));
    }
    // Status routes describe their machine's executions, and no other's.
    let described: std::collections::BTreeSet<&String> = project
        .routes
        .iter()
        .filter(|r| r.status)
        .map(|r| &r.state_machine)
        .collect();
    if !described.is_empty() {
        statements.push(json!({
            "Sid": "DescribeExecutions",
            "Effect": "Allow",
            "Action": "states:DescribeExecution",
            "Resource": one_or_list(described.into_iter().map(|m| format!("${{{m}ExecutionsArn}}")).collect()),
        }));
    }
    document(statements)
}
