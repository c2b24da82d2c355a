//! The least-privilege IAM policy a pipeline's deployer role needs to run
//! every stepgate command for one stack: `stepgate deployer-policy` prints
//! it, and `docs/deployer-policy.json` is it for the default stack. Each
//! statement is scoped to the stack's deterministic names; only what AWS
//! cannot scope by name is wider (API Gateway's random ids, and the
//! execution log groups named by them; Step Functions' log delivery,
//! DescribeLogGroups). `tests/deployer_policy.rs` records
//! every request of a full cycle and checks each against it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::names::Overrides;

const TEMPLATE: &str = include_str!("deployer/policy.json");

/// The policy for `stack` in `partition` (aws, aws-cn, aws-us-gov), any
/// account, region and stage.
pub fn policy(stack: &str, partition: &str) -> Value {
    let template: Value = serde_json::from_str(TEMPLATE).expect("the policy template is JSON");
    let values = BTreeMap::from([
        ("stack".to_string(), stack.to_string()),
        // As names.rs writes the stack in resource names.
        ("stackPrefix".to_string(), stack.replace('-', "_")),
        ("partition".to_string(), partition.to_string()),
    ]);
    crate::template::substitute(&template, &values)
}

/// The policy with what a project names itself (`name = ...`): each
/// named role, function, machine and their log groups, exactly; and with
/// `adopt`, the reads `stepgate adopt` makes.
pub fn policy_for(
    stack: &str,
    partition: &str,
    named: &[Overrides],
    leftovers: &[String],
    adopt: bool,
) -> Value {
    let mut policy = policy(stack, partition);
    let arn = |service: &str, rest: String| format!("arn:{partition}:{service}:{rest}");
    let mut add: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for o in named {
        for role in o.roles.values() {
            for sid in ["StackRoles", "PassStackRolesToTheirServices"] {
                add.entry(sid)
                    .or_default()
                    .push(arn("iam", format!(":*:role/{role}")));
            }
        }
        for f in o.functions.values() {
            for sid in ["Functions", "LetApiGatewayInvokeAuthorizers"] {
                let list = add.entry(sid).or_default();
                list.push(arn("lambda", format!("*:*:function:{f}")));
                list.push(arn("lambda", format!("*:*:function:{f}:*")));
            }
            let logs = add.entry("LogGroups").or_default();
            logs.push(arn("logs", format!("*:*:log-group:/aws/lambda/{f}")));
            logs.push(arn("logs", format!("*:*:log-group:/aws/lambda/{f}:*")));
        }
        for m in o.machines.values() {
            let machines = add.entry("StateMachine").or_default();
            machines.push(arn("states", format!("*:*:stateMachine:{m}")));
            machines.push(arn("states", format!("*:*:stateMachine:{m}:*")));
            add.entry("Executions")
                .or_default()
                .push(arn("states", format!("*:*:execution:{m}:*")));
            let logs = add.entry("LogGroups").or_default();
            logs.push(arn(
                "logs",
                format!("*:*:log-group:/aws/vendedlogs/states/{m}"),
            ));
            logs.push(arn(
                "logs",
                format!("*:*:log-group:/aws/vendedlogs/states/{m}:*"),
            ));
        }
    }
    if let Some(statements) = policy["Statement"].as_array_mut() {
        for statement in statements.iter_mut() {
            let Some(extra) = statement["Sid"].as_str().and_then(|sid| add.get(sid)) else {
                continue;
            };
            let mut resources: Vec<Value> = match statement["Resource"].take() {
                Value::Array(items) => items,
                one => vec![one],
            };
            for r in extra {
                if !resources.iter().any(|x| x == r) {
                    resources.push(json!(r));
                }
            }
            statement["Resource"] = Value::Array(resources);
        }
        if !leftovers.is_empty() {
            // Whether the roles a stack built by hand left still exist.
            statements.push(json!({
                "Sid": "SeeLeftoversOfAdoption",
                "Effect": "Allow",
                "Action": "iam:GetRole",
                "Resource": leftovers
                    .iter()
                    .map(|r| arn("iam", format!(":*:role/{r}")))
                    .collect::<Vec<_>>()
            }));
        }
        if adopt {
            statements.push(json!({
                "Sid": "AdoptReadsWhatAStackBuiltByHandHolds",
                "Effect": "Allow",
                "Action": [
                    "apigateway:GET",
                    "states:ListStateMachines",
                    "states:DescribeStateMachine",
                    "lambda:GetFunction",
                    "iam:GetRole",
                    "iam:ListAttachedRolePolicies",
                    "iam:ListRolePolicies",
                    "iam:GetRolePolicy"
                ],
                "Resource": "*"
            }));
        }
    }
    policy
}

/// What `stepgate deployer-policy` is asked for.
pub struct Request {
    pub stack: Option<String>,
    pub project_dir: Option<PathBuf>,
    pub adopt: bool,
}

/// `stepgate deployer-policy`: the stack from `--stack`, else as a deploy
/// here would name it (STEPGATE_STACK, stepgate.toml), with the names the
/// project gives itself. Makes no AWS call.
pub fn print(request: Request, partition: &str) -> std::process::ExitCode {
    let overrides = crate::config::Overrides {
        stack: request.stack,
        project_dir: request.project_dir,
        ..Default::default()
    };
    let resolved = crate::config::Settings::resolve(&overrides, &|name| std::env::var(name).ok())
        .map_err(anyhow::Error::from)
        .and_then(|settings| {
            let named = crate::project::overrides_of_every_stage(&settings)?;
            let leftovers = crate::project::leftover_roles(&settings)?;
            Ok(policy_for(
                &settings.stack,
                partition,
                &named,
                &leftovers,
                request.adopt,
            ))
        });
    match resolved {
        Ok(policy) => {
            let mut text = serde_json::to_string_pretty(&policy).expect("a policy serializes");
            text.push('\n');
            crate::generate::write_stdout(text.as_bytes())
        }
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled_and_names_follow_the_stack() {
        let policy = policy("web-shop", "aws-cn");
        assert!(crate::template::placeholders(&policy).is_empty());
        let text = policy.to_string();
        assert!(text.contains("arn:aws-cn:iam::*:role/web_shop-*"));
        assert!(text.contains("parameter/stepgate/web-shop/*"));
    }

    #[test]
    fn named_resources_join_the_policy_exactly_and_adopt_reads_only_with_adopt() {
        let named = Overrides {
            functions: BTreeMap::from([("completeOrder".into(), "completeOrder".into())]),
            machines: BTreeMap::from([("OrderProcessor".into(), "OrderProcessor".into())]),
            roles: BTreeMap::from([("states".into(), "Custom-AWSStepFunctionServiceRole".into())]),
            api_id: Some("a1b2c3d4e5".into()),
        };
        let plain = policy_for("orders", "aws", &[], &[], false);
        assert_eq!(plain, policy("orders", "aws"));
        let with = policy_for("orders", "aws", &[named], &[], false);
        let resources = |sid: &str| -> Vec<String> {
            let statement = with["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["Sid"] == sid)
                .unwrap();
            match &statement["Resource"] {
                Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect(),
                one => vec![one.as_str().unwrap().to_string()],
            }
        };
        assert!(resources("StackRoles")
            .contains(&"arn:aws:iam::*:role/Custom-AWSStepFunctionServiceRole".to_string()));
        assert!(resources("PassStackRolesToTheirServices")
            .contains(&"arn:aws:iam::*:role/Custom-AWSStepFunctionServiceRole".to_string()));
        assert!(resources("Functions")
            .contains(&"arn:aws:lambda:*:*:function:completeOrder".to_string()));
        assert!(resources("StateMachine")
            .contains(&"arn:aws:states:*:*:stateMachine:OrderProcessor".to_string()));
        assert!(resources("LogGroups")
            .contains(&"arn:aws:logs:*:*:log-group:/aws/lambda/completeOrder".to_string()));
        // No wildcard beyond the names: another function stays out.
        assert!(!with.to_string().contains("function:complete*"));
        assert!(!with.to_string().contains("AdoptReads"));
        let adopting = policy_for("orders", "aws", &[], &[], true);
        assert!(adopting
            .to_string()
            .contains("AdoptReadsWhatAStackBuiltByHandHolds"));
    }

    #[test]
    fn the_documented_policy_is_the_default_stacks() {
        let documented: Value =
            serde_json::from_str(include_str!("../docs/deployer-policy.json")).unwrap();
        assert_eq!(
            documented,
            policy(crate::config::DEFAULT_STACK, "aws"),
            "docs/deployer-policy.json is stale: stepgate deployer-policy > docs/deployer-policy.json"
        );
    }
}
