//! Deterministic names and ARNs: how stepgate finds its resources again
//! without a state file. Pure: no AWS here.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::model::{Tags, OWNER_STACK_TAG, OWNER_STAGE_TAG};

/// The two functions of the order-processing stack: `lambdas/<key>/` holds
/// the code, `index.<key>` is the handler, `${<key>Arn}` the placeholder.
pub const FUNCTIONS: [&str; 2] = ["completeOrder", "cancelOrder"];

/// Who each role is for; the suffix of its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleFor {
    Lambda,
    States,
    ApiGateway,
}

impl RoleFor {
    pub const ALL: [RoleFor; 3] = [RoleFor::Lambda, RoleFor::States, RoleFor::ApiGateway];

    /// Also the prefix of its policy files in `policies/`.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleFor::Lambda => "lambda",
            RoleFor::States => "states",
            RoleFor::ApiGateway => "apigateway",
        }
    }
}

/// Deterministic names and ARNs for one stack, stage, account and region.
#[derive(Clone, Debug)]
pub struct Names {
    pub stack: String,
    pub stage: String,
    pub region: String,
    pub account: String,
    pub partition: &'static str,
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
        }
    }

    fn base(&self) -> String {
        format!("{}-{}", self.stack, self.stage)
    }

    /// IAM is global: the region is in the name so that the same stage in two
    /// regions does not share (and fight over) one role.
    pub fn role(&self, purpose: RoleFor) -> String {
        fit(
            format!("{}-{}-{}", self.base(), self.region, purpose.as_str()),
            64,
        )
    }

    pub fn function(&self, key: &str) -> String {
        fit(format!("{}-{key}", self.base()), 64)
    }

    pub fn state_machine(&self) -> String {
        fit(format!("{}-OrderProcessor", self.base()), 80)
    }

    pub fn api(&self) -> String {
        format!("{}-OrderProcessorAPI", self.base())
    }

    pub fn function_log_group(&self, key: &str) -> String {
        format!("/aws/lambda/{}", self.function(key))
    }

    pub fn state_machine_log_group(&self) -> String {
        format!("/aws/vendedlogs/states/{}", self.state_machine())
    }

    pub fn role_arn(&self, purpose: RoleFor) -> String {
        format!(
            "arn:{}:iam::{}:role/{}",
            self.partition,
            self.account,
            self.role(purpose)
        )
    }

    pub fn function_arn(&self, key: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{}",
            self.partition,
            self.region,
            self.account,
            self.function(key)
        )
    }

    pub fn state_machine_arn(&self) -> String {
        format!(
            "arn:{}:states:{}:{}:stateMachine:{}",
            self.partition,
            self.region,
            self.account,
            self.state_machine()
        )
    }

    pub fn log_group_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:logs:{}:{}:log-group:{name}",
            self.partition, self.region, self.account
        )
    }

    /// The placeholders the definition and policies may use, with values.
    pub fn placeholders(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for key in FUNCTIONS {
            out.insert(format!("{key}Arn"), self.function_arn(key));
            out.insert(
                format!("{key}LogGroupArn"),
                self.log_group_arn(&self.function_log_group(key)),
            );
        }
        out.insert("stateMachineArn".into(), self.state_machine_arn());
        out.insert(
            "stateMachineLogGroupArn".into(),
            self.log_group_arn(&self.state_machine_log_group()),
        );
        out.insert("region".into(), self.region.clone());
        out.insert("account".into(), self.account.clone());
        out.insert("partition".into(), self.partition.into());
        out
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
        assert_eq!(a.role(RoleFor::States), "orders-dev-us-east-1-states");
        assert_ne!(a.function("completeOrder"), b.function("completeOrder"));
        assert_ne!(a.role(RoleFor::Lambda), c.role(RoleFor::Lambda));
        assert_eq!(
            a.state_machine_arn(),
            "arn:aws:states:us-east-1:000000000000:stateMachine:orders-dev-OrderProcessor"
        );
        assert_eq!(Names::new("s", "d", "cn-north-1", "1").partition, "aws-cn");
    }

    #[test]
    fn long_names_fit_aws_limits_and_stay_unique() {
        let long = "x".repeat(24);
        let stage_a = format!("{}a", "s".repeat(31));
        let stage_b = format!("{}b", "s".repeat(31));
        let a = Names::new(&long, &stage_a, "ap-southeast-3", "1");
        let b = Names::new(&long, &stage_b, "ap-southeast-3", "1");
        for p in RoleFor::ALL {
            assert!(a.role(p).len() <= 64, "{}", a.role(p));
            assert_ne!(a.role(p), b.role(p));
        }
        assert!(a.function("completeOrder").len() <= 64);
        assert!(a.state_machine().len() <= 80);
        assert_eq!(a.role(RoleFor::Lambda), a.role(RoleFor::Lambda));
    }
}
