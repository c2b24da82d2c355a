//! Least privilege, checked before any AWS call: no IAM statement in
//! `policies/` may grant every action, every resource or trust everyone.
//!
//! Only `Allow` statements are checked: a `Deny` with a wildcard takes
//! rights away. The one exception is the one AWS imposes: the CloudWatch Logs
//! log-delivery actions that Step Functions needs for execution logging do
//! not support resource-level permissions, so AWS requires `"Resource": "*"`
//! for them (Step Functions Developer Guide, "IAM policies for logging to
//! CloudWatch Logs").

use anyhow::{bail, Result};
use serde_json::Value;

/// The actions that AWS allows only on `"Resource": "*"`.
pub const LOG_DELIVERY_ACTIONS: [&str; 8] = [
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
];

/// Checks every statement of a policy document (trust or permissions).
pub fn check_statements(statements: &[Value]) -> Result<()> {
    for (i, statement) in statements.iter().enumerate() {
        check_statement(i, statement)?;
    }
    Ok(())
}

fn check_statement(i: usize, statement: &Value) -> Result<()> {
    match statement.get("Effect").and_then(Value::as_str) {
        Some("Deny") => return Ok(()),
        Some("Allow") => {}
        _ => bail!("statement {i}: \"Effect\" must be \"Allow\" or \"Deny\""),
    }
    for (key, what, fix) in [
        (
            "NotAction",
            "allows every action it does not list",
            "list the actions the stack needs under \"Action\" instead",
        ),
        (
            "NotResource",
            "allows every resource it does not list",
            "list the stack's resources under \"Resource\" instead",
        ),
        (
            "NotPrincipal",
            "trusts everyone it does not list",
            "name the service that assumes the role under \"Principal\" instead",
        ),
    ] {
        if statement.get(key).is_some() {
            bail!("statement {i} uses \"{key}\", which {what}; {fix}");
        }
    }

    let actions = strings(statement.get("Action"));
    if let Some(wild) = actions.iter().find(|a| a.contains(['*', '?'])) {
        bail!("statement {i} allows \"{wild}\"; name the actions the stack needs instead");
    }
    let log_delivery_only =
        !actions.is_empty() && actions.iter().all(|a| LOG_DELIVERY_ACTIONS.contains(a));
    for resource in strings(statement.get("Resource")) {
        if matches_everything(resource) && !(resource == "*" && log_delivery_only) {
            bail!(
                "statement {i} grants {} on Resource \"{resource}\", which matches every resource; \
                 name the stack's own resources instead, e.g. \"${{stateMachineArn}}\" \
                 (only the log-delivery actions may use \"*\", as AWS requires)",
                actions.join(", ")
            );
        }
    }

    let principals: Vec<&str> = match statement.get("Principal") {
        Some(Value::Object(by_kind)) => by_kind.values().flat_map(|v| strings(Some(v))).collect(),
        other => strings(other),
    };
    if principals.contains(&"*") {
        bail!(
            "statement {i} trusts Principal \"*\" (anyone); name the service that assumes the role, \
             e.g. {{\"Service\": \"lambda.amazonaws.com\"}}"
        );
    }
    Ok(())
}

/// A string or a list of strings, as IAM writes most fields.
fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// `*`, or an ARN whose partition, service, region or account is a
/// wildcard, or whose resource part names no resource (`*`, `function:*`,
/// `role/*`; for S3, `arn:aws:s3:::*`). `${placeholders}` are stepgate's own ARNs and never match.
fn matches_everything(resource: &str) -> bool {
    if resource == "*" {
        return true;
    }
    let Some(rest) = resource.strip_prefix("arn:") else {
        return false;
    };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let [partition, service, region, account, resource] = parts[..] else {
        return false;
    };
    if [partition, service, region, account]
        .iter()
        .any(|p| p.contains('*'))
    {
        return true;
    }
    // S3 ARNs start with the bucket, every other service with a type.
    let after_type = match service {
        "s3" => resource,
        _ => resource
            .split_once([':', '/'])
            .map_or(resource, |(_, name)| name),
    };
    resource == "*" || after_type == "*"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(statement: Value) -> Result<()> {
        check_statements(&[statement])
    }

    #[test]
    fn the_shipped_statements_pass() {
        for statement in [
            json!({"Effect": "Allow", "Action": "states:StartExecution", "Resource": "${stateMachineArn}"}),
            json!({"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                   "Resource": ["${completeOrderLogGroupArn}:*"]}),
            json!({"Effect": "Allow", "Action": LOG_DELIVERY_ACTIONS, "Resource": "*"}),
            json!({"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}),
            // A Deny takes rights away, wildcards and all.
            json!({"Effect": "Deny", "NotAction": "*", "Resource": "*"}),
            json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*"}),
        ] {
            assert!(check(statement.clone()).is_ok(), "{statement}");
        }
    }

    #[test]
    fn grants_of_everything_are_refused_with_the_fix() {
        for (statement, expected) in [
            (
                json!({"Effect": "Allow", "Action": "lambda:*", "Resource": "x"}),
                "allows \"lambda:*\"",
            ),
            (
                json!({"Effect": "Allow", "Action": "s3:Get*", "Resource": "x"}),
                "allows \"s3:Get*\"",
            ),
            (
                json!({"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"}),
                "grants lambda:InvokeFunction on Resource \"*\"",
            ),
            // The exception covers "*" only for log-delivery actions alone.
            (
                json!({"Effect": "Allow", "Action": ["logs:CreateLogDelivery", "logs:PutLogEvents"], "Resource": "*"}),
                "on Resource \"*\"",
            ),
            (
                json!({"Effect": "Allow", "Action": "logs:CreateLogDelivery", "Resource": "arn:aws:logs:*:*:*"}),
                "which matches every resource",
            ),
            (
                json!({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::123456789012:role/*"}),
                "matches every resource",
            ),
            (
                json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::*"}),
                "matches every resource",
            ),
            (
                json!({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
                "uses \"NotAction\"",
            ),
            (
                json!({"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "x"}),
                "uses \"NotResource\"",
            ),
            (
                json!({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}),
                "trusts Principal \"*\"",
            ),
            (
                json!({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}),
                "trusts Principal \"*\"",
            ),
            (
                json!({"Effect": "Allow", "NotPrincipal": {"AWS": "x"}, "Action": "sts:AssumeRole"}),
                "uses \"NotPrincipal\"",
            ),
            (
                json!({"Action": "sts:AssumeRole"}),
                "\"Effect\" must be \"Allow\" or \"Deny\"",
            ),
        ] {
            let message = check(statement.clone()).unwrap_err().to_string();
            assert!(message.starts_with("statement 0"), "{message}");
            assert!(message.contains(expected), "{statement} gave {message}");
        }
    }

    #[test]
    fn wildcard_resources_are_told_apart_from_scoped_ones() {
        for (resource, everything) in [
            ("*", true),
            ("arn:aws:lambda:*:123456789012:function:f", true),
            ("arn:aws:lambda:us-east-1:*:function:f", true),
            ("arn:aws:lambda:us-east-1:123456789012:function:*", true),
            ("arn:aws:lambda:us-east-1:123456789012:*", true),
            ("arn:*:lambda:us-east-1:123456789012:function:f", true),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:orders-*",
                false,
            ),
            (
                "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:*",
                false,
            ),
            ("arn:aws:s3:::bucket/*", false),
            ("${completeOrderArn}", false),
            ("${completeOrderLogGroupArn}:*", false),
        ] {
            assert_eq!(matches_everything(resource), everything, "{resource}");
        }
    }
}
