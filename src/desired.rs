//! What each resource should be, built from the repository's sources and
//! the settings: the managed fields that plan compares with what AWS
//! reports. Pure data: nothing here knows an AWS client; `aws::*` translates
//! it into calls.

pub mod api;

use serde_json::{json, Value};

use crate::config::Settings;
use crate::model::Tags;
use crate::names::{Names, RoleFor};
use crate::package::Package;
use crate::sources::Sources;

/// What desired state is built from: the settings, the repository's
/// sources and the names of this stack, stage, account and region.
pub struct Inputs<'a> {
    pub settings: &'a Settings,
    pub sources: &'a Sources,
    pub names: &'a Names,
}

impl Inputs<'_> {
    /// Every resource's tags: the settings' plus the owner tags.
    pub fn tags(&self) -> Tags {
        let mut tags = self.settings.tags.clone();
        tags.extend(self.names.owner_tags());
        tags
    }

    pub fn role(&self, purpose: RoleFor) -> RoleSpec {
        let policy = &self.sources.policies[&purpose.as_str()];
        let placeholders = self.names.placeholders();
        RoleSpec {
            name: self.names.role(purpose),
            // Trust policies name the account and the state machine in their
            // confused-deputy conditions (aws:SourceAccount, aws:SourceArn).
            trust: crate::template::substitute(&policy.trust, &placeholders),
            permissions: Some(crate::template::substitute(
                &policy.permissions,
                &placeholders,
            )),
            managed: Vec::new(),
        }
    }

    /// The account's shared role for API Gateway's CloudWatch logging: API
    /// Gateway may assume it, and AWS's managed policy is all it holds. Not
    /// a project file: every stack in the account shares it, so no one
    /// project may change it.
    pub fn cloudwatch_role(&self) -> RoleSpec {
        RoleSpec {
            name: crate::names::CLOUDWATCH_ROLE.to_string(),
            trust: json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": { "Service": "apigateway.amazonaws.com" },
                    "Action": "sts:AssumeRole",
                }],
            }),
            permissions: None,
            managed: vec![self.names.cloudwatch_push_policy_arn()],
        }
    }

    pub fn apigateway_account(&self) -> api::AccountSpec {
        api::AccountSpec {
            cloudwatch_role_arn: self.names.cloudwatch_role_arn(),
        }
    }

    pub fn log_group(&self, name: &str) -> LogGroupSpec {
        LogGroupSpec {
            name: name.to_string(),
            retention_days: self.settings.log_retention_days,
        }
    }

    pub fn function(&self, key: &str) -> FunctionSpec {
        let lambda = &self.settings.lambda;
        FunctionSpec {
            name: self.names.function(key),
            handler: format!("index.{key}"),
            role_arn: self.names.role_arn(RoleFor::Lambda),
            runtime: lambda.runtime.clone(),
            memory_mb: lambda.memory_mb,
            timeout_s: lambda.timeout_s,
            package: self.sources.functions[key].clone(),
        }
    }

    pub fn state_machine(&self) -> StateMachineSpec {
        let names = self.names;
        StateMachineSpec {
            name: names.state_machine(),
            arn: names.state_machine_arn(),
            role_arn: names.role_arn(RoleFor::States),
            definition: self.sources.definition.render(&names.placeholders()),
            log_group_arn: names.log_group_arn(&names.state_machine_log_group()),
        }
    }

    pub fn api(&self) -> api::ApiSpec {
        let names = self.names;
        api::ApiSpec {
            name: names.api(),
            region: names.region.clone(),
            partition: names.partition.to_string(),
            state_machine_arn: names.state_machine_arn(),
            role_arn: names.role_arn(RoleFor::ApiGateway),
            order_model: self.sources.order_model.clone(),
        }
    }

    pub fn stage(&self) -> api::StageSpec {
        let names = self.names;
        api::StageSpec {
            name: names.stage.clone(),
            api_config_hash: self.api().config_hash(),
            throttling: self.settings.throttling.clone(),
            access_log_arn: names.log_group_arn(&names.api_access_log_group()),
            log_level: self.settings.api_log_level.clone(),
        }
    }
}

/// The name of the one inline policy stepgate puts on each role.
pub const INLINE_POLICY: &str = "stepgate";

#[derive(Clone, Debug)]
pub struct RoleSpec {
    pub name: String,
    pub trust: Value,
    /// The one inline policy, `INLINE_POLICY`, if the role has one.
    pub permissions: Option<Value>,
    /// ARNs of the managed policies attached (AWS's, for the shared role).
    pub managed: Vec<String>,
}

impl RoleSpec {
    pub fn fields(&self) -> Value {
        let mut managed = self.managed.clone();
        managed.sort();
        json!({
            "trust_policy": self.trust,
            "inline_policies": self.permissions.as_ref().map(|p| json!({ INLINE_POLICY: p })),
            // Least privilege: any other policy attached out of band is drift.
            "managed_policies": managed,
        })
    }
}

#[derive(Clone, Debug)]
pub struct LogGroupSpec {
    pub name: String,
    pub retention_days: i32,
}

impl LogGroupSpec {
    pub fn fields(&self) -> Value {
        json!({ "retention_days": self.retention_days })
    }
}

#[derive(Clone, Debug)]
pub struct FunctionSpec {
    pub name: String,
    pub handler: String,
    pub role_arn: String,
    pub runtime: String,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub package: Package,
}

impl FunctionSpec {
    pub fn fields(&self) -> Value {
        json!({
            "code_sha256": self.package.sha256,
            "runtime": self.runtime,
            "handler": self.handler,
            "role": self.role_arn,
            "memory": self.memory_mb,
            "timeout": self.timeout_s,
            // stepgate sets no variables: any that appear are drift.
            "environment": {},
        })
    }
}

#[derive(Clone, Debug)]
pub struct StateMachineSpec {
    pub name: String,
    pub arn: String,
    pub role_arn: String,
    pub definition: Value,
    pub log_group_arn: String,
}

impl StateMachineSpec {
    pub fn fields(&self) -> Value {
        json!({
            "definition": self.definition,
            "role": self.role_arn,
            "type": "STANDARD",
            "logging": {
                "level": "ALL",
                "include_execution_data": true,
                "destination": self.log_destination(),
            },
        })
    }

    /// Step Functions wants the log group ARN with the ":*" suffix.
    pub fn log_destination(&self) -> String {
        format!("{}:*", self.log_group_arn)
    }
}
