//! The least-privilege IAM policy a pipeline's deployer role needs to run
//! every stepgate command for one stack: `stepgate deployer-policy` prints
//! it, and `docs/deployer-policy.json` is it for the default stack. Each
//! statement is scoped to the stack's deterministic names; only what AWS
//! cannot scope by name is wider (API Gateway's random ids, and the
//! execution log groups named by them; Step Functions' log delivery,
//! DescribeLogGroups). `tests/deployer_policy.rs` records
//! every request of a full cycle and checks each against it.

use std::collections::BTreeMap;

use serde_json::Value;

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

/// `stepgate deployer-policy`: the stack from `--stack`, else as a deploy
/// here would name it (STEPGATE_STACK, stepgate.toml). Makes no AWS call.
pub fn print(stack: Option<String>, partition: &str) -> std::process::ExitCode {
    let overrides = crate::config::Overrides {
        stack,
        ..Default::default()
    };
    match crate::config::Settings::resolve(&overrides, &|name| std::env::var(name).ok()) {
        Ok(settings) => {
            let mut text = serde_json::to_string_pretty(&policy(&settings.stack, partition))
                .expect("a policy serializes");
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
