//! The stack stepgate manages: every resource's deterministic name, ARN,
//! tags and dependencies, and (for deploy) its desired specification.
//! Names and tags are the identity: no state file is needed to find a stack
//! again, and two stages never touch each other's resources.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::aws::{apigateway, iam, lambda, logs, sfn};
use crate::config::Settings;
use crate::plan::{Kind, Observed, ResourceId};
use crate::sources::Sources;

pub type Tags = BTreeMap<String, String>;

/// Ownership tags: destroy deletes only what carries both, with these values.
pub const OWNER_STACK_TAG: &str = "stepgate:stack";
pub const OWNER_STAGE_TAG: &str = "stepgate:stage";

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

/// Every resource of the stack with what it depends on, by id. The same
/// layout serves deploy (forward) and destroy (reverse), and needs no sources.
pub fn layout(names: &Names) -> BTreeMap<ResourceId, Vec<ResourceId>> {
    let id = |kind, name: String| ResourceId { kind, name };
    let role = |p| id(Kind::Role, names.role(p));
    let sm_log = id(Kind::LogGroup, names.state_machine_log_group());
    let sm = id(Kind::StateMachine, names.state_machine());
    let api = id(Kind::RestApi, names.api());
    let mut deps = BTreeMap::new();
    for p in RoleFor::ALL {
        deps.insert(role(p), vec![]);
    }
    let mut sm_deps = vec![role(RoleFor::States), sm_log.clone()];
    for key in FUNCTIONS {
        let log = id(Kind::LogGroup, names.function_log_group(key));
        let function = id(Kind::Function, names.function(key));
        deps.insert(log.clone(), vec![]);
        deps.insert(function.clone(), vec![role(RoleFor::Lambda), log]);
        sm_deps.push(function);
    }
    deps.insert(sm_log, vec![]);
    deps.insert(sm.clone(), sm_deps);
    deps.insert(api.clone(), vec![role(RoleFor::ApiGateway), sm]);
    deps.insert(id(Kind::Stage, names.stage.clone()), vec![api]);
    deps
}

/// What one resource should be.
#[derive(Clone, Debug)]
pub enum Spec {
    Role(iam::RoleSpec),
    LogGroup(logs::LogGroupSpec),
    Function(lambda::FunctionSpec),
    StateMachine(sfn::StateMachineSpec),
    RestApi(apigateway::ApiSpec),
    Stage(apigateway::StageSpec),
}

impl Spec {
    /// The managed fields, in the shape the service module reads them back.
    pub fn fields(&self) -> Value {
        match self {
            Spec::Role(s) => s.fields(),
            Spec::LogGroup(s) => s.fields(),
            Spec::Function(s) => s.fields(),
            Spec::StateMachine(s) => s.fields(),
            Spec::RestApi(s) => s.fields(),
            Spec::Stage(s) => s.fields(),
        }
    }
}

/// The whole desired stack for deploy and plan.
#[derive(Clone, Debug)]
pub struct DesiredStack {
    pub names: Names,
    pub tags: Tags,
    pub deps: BTreeMap<ResourceId, Vec<ResourceId>>,
    pub specs: BTreeMap<ResourceId, Spec>,
}

impl DesiredStack {
    pub fn build(settings: &Settings, sources: &Sources, names: Names) -> DesiredStack {
        let mut tags = settings.tags.clone();
        tags.extend(names.owner_tags());
        let values = names.placeholders();
        let mut specs = BTreeMap::new();
        let id = |kind, name: String| ResourceId { kind, name };

        for purpose in RoleFor::ALL {
            let policy = &sources.policies[&purpose.as_str()];
            let spec = iam::RoleSpec {
                name: names.role(purpose),
                trust: policy.trust.clone(),
                permissions: crate::template::substitute(&policy.permissions, &values),
            };
            specs.insert(id(Kind::Role, spec.name.clone()), Spec::Role(spec));
        }
        let log_group = |name: String| logs::LogGroupSpec {
            name,
            retention_days: settings.log_retention_days,
        };
        for key in FUNCTIONS {
            let lg = log_group(names.function_log_group(key));
            specs.insert(id(Kind::LogGroup, lg.name.clone()), Spec::LogGroup(lg));
            let spec = lambda::FunctionSpec {
                name: names.function(key),
                handler: format!("index.{key}"),
                role_arn: names.role_arn(RoleFor::Lambda),
                runtime: settings.lambda.runtime.clone(),
                memory_mb: settings.lambda.memory_mb,
                timeout_s: settings.lambda.timeout_s,
                package: sources.functions[key].clone(),
            };
            specs.insert(id(Kind::Function, spec.name.clone()), Spec::Function(spec));
        }
        let sm_log = log_group(names.state_machine_log_group());
        let sm = sfn::StateMachineSpec {
            name: names.state_machine(),
            arn: names.state_machine_arn(),
            role_arn: names.role_arn(RoleFor::States),
            definition: sources.definition.render(&values),
            log_group_arn: names.log_group_arn(&sm_log.name),
        };
        specs.insert(
            id(Kind::LogGroup, sm_log.name.clone()),
            Spec::LogGroup(sm_log),
        );
        specs.insert(
            id(Kind::StateMachine, sm.name.clone()),
            Spec::StateMachine(sm),
        );
        let api = apigateway::ApiSpec {
            name: names.api(),
            region: names.region.clone(),
            partition: names.partition.to_string(),
            state_machine_arn: names.state_machine_arn(),
            role_arn: names.role_arn(RoleFor::ApiGateway),
        };
        let stage = apigateway::StageSpec {
            name: names.stage.clone(),
            api_config_hash: api.config_hash(),
            throttling: settings.throttling.clone(),
        };
        specs.insert(id(Kind::RestApi, api.name.clone()), Spec::RestApi(api));
        specs.insert(id(Kind::Stage, stage.name.clone()), Spec::Stage(stage));

        let deps = layout(&names);
        debug_assert_eq!(
            deps.keys().collect::<Vec<_>>(),
            specs.keys().collect::<Vec<_>>()
        );
        DesiredStack {
            names,
            tags,
            deps,
            specs,
        }
    }
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
                names.role(RoleFor::Lambda),
                names.state_machine(),
                names.api(),
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
        assert_eq!(names.role(RoleFor::States), "orders_a-b-us-east-1-states");
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

    #[test]
    fn layout_orders_roles_before_functions_before_state_machine_before_api() {
        let names = Names::new("orders", "dev", "us-east-1", "0");
        let waves = crate::plan::waves(&layout(&names));
        let kinds: Vec<Vec<Kind>> = waves
            .iter()
            .map(|w| w.iter().map(|r| r.kind).collect())
            .collect();
        assert_eq!(
            kinds,
            vec![
                vec![
                    Kind::Role,
                    Kind::Role,
                    Kind::Role,
                    Kind::LogGroup,
                    Kind::LogGroup,
                    Kind::LogGroup
                ],
                vec![Kind::Function, Kind::Function],
                vec![Kind::StateMachine],
                vec![Kind::RestApi],
                vec![Kind::Stage],
            ]
        );
    }
}
