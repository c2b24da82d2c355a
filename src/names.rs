//! Deterministic names and ARNs: how stepgate finds its resources again
//! without a state file. Pure: no AWS here.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::model::{Observed, Tags, OWNER_STACK_TAG, OWNER_STAGE_TAG};

/// The one role through which API Gateway writes the logs of every API in
/// the account (the region's `cloudwatchRoleArn` setting names it). IAM is
/// global and the setting is per region, so one role serves every stack,
/// stage and region: its name carries none of them.
pub const CLOUDWATCH_ROLE: &str = "stepgate-apigateway-cloudwatch";

/// The one alias of each state machine: the version the API serves.
pub const LIVE_ALIAS: &str = "live";

/// The stage variable that holds the version number `live` serves, for a
/// machine behind a sync route: StartSyncExecution takes a version ARN but
/// (on LocalStack 4.4, and not documented on AWS) no alias ARN, so a sync
/// route starts `{machine ARN}:${stageVariables.live_NAME}`. Stage variable
/// names take letters, digits and `_` only.
pub fn live_variable(machine: &str) -> String {
    let safe: String = machine
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{LIVE_ALIAS}_{safe}")
}

/// The log group API Gateway writes a stage's execution logs to; the name is
/// AWS's, fixed by the API's id and the stage.
pub fn api_execution_log_group(api_id: &str, stage: &str) -> String {
    format!("API-Gateway-Execution-Logs_{api_id}/{stage}")
}

/// Deterministic names and ARNs for one stack, stage, account and region.
#[derive(Clone, Debug)]
pub struct Names {
    pub stack: String,
    pub stage: String,
    pub region: String,
    pub account: String,
    pub partition: &'static str,
    /// Names the project gives resources itself (`name = "completeOrder"`).
    pub overrides: Overrides,
}

/// Physical names a project gives instead of `{stack}-{stage}-...`: a
/// resource built by hand keeps its name, and naming rules can be met.
/// Keys are the names within the project (function, machine, role).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    pub functions: BTreeMap<String, String>,
    pub machines: BTreeMap<String, String>,
    pub roles: BTreeMap<String, String>,
    /// An existing REST API by id: `[api] name` is then its name as AWS
    /// holds it, not prefixed.
    pub api_id: Option<String>,
}

impl Names {
    pub fn new(stack: &str, stage: &str, region: &str, account: &str) -> Names {
        let partition = if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        };
        Names {
            stack: stack.into(),
            stage: stage.into(),
            region: region.into(),
            account: account.into(),
            partition,
            overrides: Overrides::default(),
        }
    }

    /// These names, with the project's own names where it gives them.
    pub fn with_overrides(mut self, overrides: Overrides) -> Names {
        self.overrides = overrides;
        self
    }

    /// `{stack}-{stage}`, with each `-` of the stack written `_`, so that no
    /// two stack and stage pairs share names: stack `orders` stage `a-b` is
    /// `orders-a-b`, stack `orders-a` stage `b` is `orders_a-b`. A stack
    /// holds no `_` and no `-` remains in it, so the first `-` always ends
    /// the stack; stacks without `-` (the default `orders`) keep their names.
    fn base(&self) -> String {
        format!("{}-{}", self.stack.replace('-', "_"), self.stage)
    }

    /// IAM is global: the region is in the name so that the same stage in two
    /// regions does not share (and fight over) one role.
    /// A role by its name within the stage (`lambda`, `apigateway`, a
    /// machine's or a function's).
    pub fn role(&self, role: &str) -> String {
        if let Some(name) = self.overrides.roles.get(role) {
            return name.clone();
        }
        fit(format!("{}-{}-{role}", self.base(), self.region), 64)
    }

    /// What every role of the stage's name starts with (inventory).
    pub fn role_prefix(&self) -> String {
        format!("{}-{}-", self.base(), self.region)
    }

    /// What every function, machine and API of the stage's name starts with.
    /// Another stage's names may start alike (stage `dev-x`): ownership
    /// tags tell them apart.
    pub fn prefix(&self) -> String {
        format!("{}-", self.base())
    }

    pub fn function(&self, name: &str) -> String {
        if let Some(named) = self.overrides.functions.get(name) {
            return named.clone();
        }
        fit(self.function_unfitted(name), 64)
    }

    /// The function's name before any shortening: project checks refuse
    /// one over Lambda's limit rather than hide it behind a hash.
    pub fn function_unfitted(&self, name: &str) -> String {
        if let Some(named) = self.overrides.functions.get(name) {
            return named.clone();
        }
        format!("{}-{name}", self.base())
    }

    pub fn state_machine(&self, name: &str) -> String {
        if let Some(named) = self.overrides.machines.get(name) {
            return named.clone();
        }
        fit(self.state_machine_unfitted(name), 80)
    }

    /// `{machine}-failed`, `-timed-out`, `-throttled`: the machine's alarms.
    pub fn alarm(&self, machine: &str, watch: &str) -> String {
        format!(
            "{}-{}",
            self.state_machine(machine),
            watch.replace('_', "-")
        )
    }

    pub fn state_machine_unfitted(&self, name: &str) -> String {
        if let Some(named) = self.overrides.machines.get(name) {
            return named.clone();
        }
        format!("{}-{name}", self.base())
    }

    /// The REST API by its name within the stage (`[api] name`).
    pub fn api(&self, name: &str) -> String {
        if self.overrides.api_id.is_some() {
            return name.to_string();
        }
        format!("{}-{name}", self.base())
    }

    /// API key `name` of the stage (`[api] keys`).
    pub fn api_key(&self, name: &str) -> String {
        format!("{}-{name}", self.base())
    }

    pub fn function_log_group(&self, name: &str) -> String {
        format!("/aws/lambda/{}", self.function(name))
    }

    pub fn state_machine_log_group(&self, name: &str) -> String {
        format!("/aws/vendedlogs/states/{}", self.state_machine(name))
    }

    /// The API stage's access logs: `/aws/apigateway/{stack}-{stage}-access`.
    pub fn api_access_log_group(&self) -> String {
        format!("/aws/apigateway/{}-access", self.base())
    }

    /// The account's shared CloudWatch role for API Gateway.
    pub fn cloudwatch_role_arn(&self) -> String {
        format!(
            "arn:{}:iam::{}:role/{CLOUDWATCH_ROLE}",
            self.partition, self.account
        )
    }

    /// The AWS managed policy that lets API Gateway write to CloudWatch Logs.
    pub fn cloudwatch_push_policy_arn(&self) -> String {
        format!(
            "arn:{}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
            self.partition
        )
    }

    pub fn role_arn(&self, role: &str) -> String {
        format!(
            "arn:{}:iam::{}:role/{}",
            self.partition,
            self.account,
            self.role(role)
        )
    }

    pub fn function_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{}",
            self.partition,
            self.region,
            self.account,
            self.function(name)
        )
    }

    /// The ARN of machine `name`'s execution `id`: what a route's
    /// `executionId` names.
    pub fn execution_arn(&self, name: &str, id: &str) -> String {
        format!(
            "arn:{}:states:{}:{}:execution:{}:{id}",
            self.partition,
            self.region,
            self.account,
            self.state_machine(name)
        )
    }

    /// How API Gateway invokes a Lambda authorizer: the function's
    /// invocation URI.
    pub fn authorizer_uri(&self, function: &str) -> String {
        format!(
            "arn:{}:apigateway:{}:lambda:path/2015-03-31/functions/{}/invocations",
            self.partition,
            self.region,
            self.function_arn(function)
        )
    }

    pub fn state_machine_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:states:{}:{}:stateMachine:{}",
            self.partition,
            self.region,
            self.account,
            self.state_machine(name)
        )
    }

    /// The alias routes start executions on: `{machine ARN}:live`.
    pub fn alias_arn(&self, machine: &str) -> String {
        format!("{}:{LIVE_ALIAS}", self.state_machine_arn(machine))
    }

    pub fn log_group_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:logs:{}:{}:log-group:{name}",
            self.partition, self.region, self.account
        )
    }

    /// Why a same-named resource is not this stack's: whose it is, if it
    /// carries another stepgate stack's or stage's tags.
    pub fn foreign_owner(observed: Option<&Observed>) -> String {
        let tags = observed.map(|o| &o.tags);
        let tag = |key| tags.and_then(|t| t.get(key));
        match (tag(OWNER_STACK_TAG), tag(OWNER_STAGE_TAG)) {
            (Some(stack), Some(stage)) => {
                format!("it belongs to stepgate stack {stack} stage {stage}")
            }
            _ => "it lacks the stepgate:stack/stepgate:stage tags".to_string(),
        }
    }

    /// A REST API this stage owns, or the one `[api] id` names: whose
    /// stage and logs are read with it.
    pub fn api_is_ours_or_named(&self, api: &Observed) -> bool {
        api.owned_by(&self.stack, &self.stage)
            || self.overrides.api_id.as_deref() == Some(api.physical_id.as_str())
    }

    pub fn owner_tags(&self) -> Tags {
        Tags::from([
            (OWNER_STACK_TAG.to_string(), self.stack.clone()),
            (OWNER_STAGE_TAG.to_string(), self.stage.clone()),
        ])
    }
}

/// Names longer than AWS allows keep a readable prefix and end in a short
/// hash of the full name, so they stay unique and deterministic.
fn fit(name: String, limit: usize) -> String {
    if name.len() <= limit {
        return name;
    }
    let hash = hex8(&name);
    format!("{}-{hash}", &name[..limit - hash.len() - 1])
}

fn hex8(text: &str) -> String {
    Sha256::digest(text.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_deterministic_and_differ_per_stage_and_region() {
        let a = Names::new("orders", "dev", "us-east-1", "000000000000");
        let b = Names::new("orders", "prod", "us-east-1", "000000000000");
        let c = Names::new("orders", "dev", "eu-west-1", "000000000000");
        assert_eq!(a.function("completeOrder"), "orders-dev-completeOrder");
        assert_eq!(a.role("states"), "orders-dev-us-east-1-states");
        assert_ne!(a.function("completeOrder"), b.function("completeOrder"));
        assert_ne!(a.role("lambda"), c.role("lambda"));
        assert_eq!(
            a.state_machine_arn("OrderProcessor"),
            "arn:aws:states:us-east-1:000000000000:stateMachine:orders-dev-OrderProcessor"
        );
        assert_eq!(Names::new("s", "d", "cn-north-1", "1").partition, "aws-cn");
        // One CloudWatch role for the whole account, whatever the stage.
        assert_eq!(a.cloudwatch_role_arn(), b.cloudwatch_role_arn());
        assert_eq!(a.cloudwatch_role_arn(), c.cloudwatch_role_arn());
        assert_eq!(
            a.cloudwatch_role_arn(),
            "arn:aws:iam::000000000000:role/stepgate-apigateway-cloudwatch"
        );
        assert_eq!(
            Names::new("s", "d", "cn-north-1", "1").cloudwatch_push_policy_arn(),
            "arn:aws-cn:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
        );
    }

    #[test]
    fn no_two_stack_and_stage_pairs_share_a_name() {
        let pairs = [
            ("orders", "a-b"),
            ("orders-a", "b"),
            ("orders", "a-b-c"),
            ("orders-a", "b-c"),
            ("orders-a-b", "c"),
            ("orders", "a_b"),
            ("orders-a", "_b"),
            ("o", "rders-a-b"),
        ];
        let mut seen = std::collections::BTreeMap::new();
        for (stack, stage) in pairs {
            let names = Names::new(stack, stage, "us-east-1", "0");
            for name in [
                names.function("completeOrder"),
                names.role("lambda"),
                names.state_machine("OrderProcessor"),
                names.api("OrderProcessorAPI"),
                names.api_access_log_group(),
            ] {
                if let Some(other) = seen.insert(name.clone(), (stack, stage)) {
                    panic!("{name} is both {other:?} and {:?}", (stack, stage));
                }
            }
        }
        // Stacks without '-' keep the names they always had.
        let names = Names::new("orders", "a-b", "us-east-1", "0");
        assert_eq!(names.function("completeOrder"), "orders-a-b-completeOrder");
        let names = Names::new("orders-a", "b", "us-east-1", "0");
        assert_eq!(names.function("completeOrder"), "orders_a-b-completeOrder");
        assert_eq!(names.role("states"), "orders_a-b-us-east-1-states");
        assert_eq!(
            names.api_access_log_group(),
            "/aws/apigateway/orders_a-b-access"
        );
        // The tags still carry the stack as named.
        assert_eq!(names.owner_tags()[OWNER_STACK_TAG], "orders-a");
    }

    #[test]
    fn a_foreign_owner_is_named_when_it_is_another_stepgate_stack() {
        let observed = |tags: &[(&str, &str)]| Observed {
            fields: serde_json::Value::Null,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            physical_id: String::new(),
        };
        let other = observed(&[(OWNER_STACK_TAG, "shop"), (OWNER_STAGE_TAG, "qa")]);
        assert_eq!(
            Names::foreign_owner(Some(&other)),
            "it belongs to stepgate stack shop stage qa"
        );
        let plain = observed(&[("team", "x")]);
        assert_eq!(
            Names::foreign_owner(Some(&plain)),
            "it lacks the stepgate:stack/stepgate:stage tags"
        );
    }

    #[test]
    fn a_name_override_is_the_physical_name_and_everything_derived_from_it() {
        let plain = Names::new("orders", "dev", "us-east-1", "000000000000");
        let named = plain.clone().with_overrides(Overrides {
            functions: BTreeMap::from([("completeOrder".into(), "completeOrder".into())]),
            machines: BTreeMap::from([("OrderProcessor".into(), "OrderProcessor".into())]),
            roles: BTreeMap::from([("states".into(), "Custom-AWSStepFunctionServiceRole".into())]),
            api_id: Some("a1b2c3d4e5".into()),
        });
        assert_eq!(named.function("completeOrder"), "completeOrder");
        assert_eq!(named.function_unfitted("completeOrder"), "completeOrder");
        assert_eq!(
            named.function_log_group("completeOrder"),
            "/aws/lambda/completeOrder"
        );
        assert_eq!(
            named.function_arn("completeOrder"),
            "arn:aws:lambda:us-east-1:000000000000:function:completeOrder"
        );
        assert_eq!(
            named.state_machine_arn("OrderProcessor"),
            "arn:aws:states:us-east-1:000000000000:stateMachine:OrderProcessor"
        );
        assert_eq!(named.role("states"), "Custom-AWSStepFunctionServiceRole");
        assert_eq!(named.api("OrderProcessorAPI"), "OrderProcessorAPI");
        // What the project does not name keeps its generated name.
        assert_eq!(named.function("cancelOrder"), plain.function("cancelOrder"));
        assert_eq!(named.role("lambda"), plain.role("lambda"));
        assert_eq!(named.api_access_log_group(), plain.api_access_log_group());
        assert_eq!(
            plain.api("OrderProcessorAPI"),
            "orders-dev-OrderProcessorAPI"
        );
    }

    #[test]
    fn long_names_fit_aws_limits_and_stay_unique() {
        let long = "x".repeat(24);
        let stage_a = format!("{}a", "s".repeat(31));
        let stage_b = format!("{}b", "s".repeat(31));
        let a = Names::new(&long, &stage_a, "ap-southeast-3", "1");
        let b = Names::new(&long, &stage_b, "ap-southeast-3", "1");
        for p in ["lambda", "states", "apigateway"] {
            assert!(a.role(p).len() <= 64, "{}", a.role(p));
            assert_ne!(a.role(p), b.role(p));
        }
        assert!(a.function("completeOrder").len() <= 64);
        assert!(a.state_machine("OrderProcessor").len() <= 80);
        assert_eq!(a.role("lambda"), a.role("lambda"));
    }
}
