//! What each resource should be, built from the repository's sources and
//! the settings: the managed fields that plan compares with what AWS
//! reports. Pure data: nothing here knows an AWS client; `aws::*` translates
//! it into calls.

pub mod api;
pub mod pins;
pub mod policies;

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::config::Settings;
use crate::model::Tags;
use crate::names::Names;
use crate::package::Package;
use crate::project::{Project, RoleOf};

/// What desired state is built from: the settings, the declared stack,
/// its functions' packages and the names of this stack, stage, account and
/// region.
pub struct Inputs<'a> {
    pub settings: &'a Settings,
    pub project: &'a Project,
    pub packages: &'a BTreeMap<String, Package>,
    pub names: &'a Names,
    /// What each version published by this run says of itself: the git
    /// commit and the deployer, where known.
    pub release: String,
}

impl Inputs<'_> {
    /// Every resource's tags: the settings' plus the owner tags.
    pub fn tags(&self) -> Tags {
        let mut tags = self.settings.tags.clone();
        tags.extend(self.names.owner_tags());
        tags
    }

    pub fn role(&self, role: &str, of: &RoleOf) -> RoleSpec {
        // Trust policies name the account and the state machine in their
        // confused-deputy conditions (aws:SourceAccount, aws:SourceArn).
        let machine = match of {
            RoleOf::StateMachine(name) => Some(name.as_str()),
            _ => None,
        };
        let placeholders = placeholders(self.names, self.project, machine);
        let render = |doc: Value| crate::template::substitute(&doc, &placeholders);
        RoleSpec {
            name: self.names.role(role),
            trust: render(policies::trust(self.project, role, of)),
            permissions: Some(render(policies::permissions(self.project, role, of))),
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

    pub fn function(&self, name: &str) -> FunctionSpec {
        let f = &self.project.functions[name];
        FunctionSpec {
            name: self.names.function(name),
            handler: f.handler.clone(),
            role_arn: self.names.role_arn(&f.role),
            runtime: f.runtime.clone(),
            memory_mb: f.memory_mb,
            timeout_s: f.timeout_s,
            architecture: f.architecture.clone(),
            environment: f.environment.clone(),
            package: self.packages[name].clone(),
            invoked_by: self.invoked_by(name),
        }
    }

    /// Who else may invoke the function: API Gateway, for each Lambda
    /// authorizer it backs, from that one authorizer of this API only
    /// (statement id -> source ARN). The ids are AWS's, known once the API
    /// and its authorizers exist: the API's is written `{api}`, the
    /// authorizer's `{authorizer:NAME}` (`authorizer_placeholder`).
    fn invoked_by(&self, function: &str) -> BTreeMap<String, String> {
        use crate::project::AuthorizerKind;
        let n = self.names;
        self.project
            .api
            .authorizers
            .values()
            .filter(
                |a| matches!(&a.kind, AuthorizerKind::Lambda { function: f, .. } if f == function),
            )
            .map(|a| {
                (
                    format!("{AUTHORIZER_PERMISSION_PREFIX}{}", a.name),
                    format!(
                        "arn:{}:execute-api:{}:{}:{{api}}/authorizers/{}",
                        n.partition,
                        n.region,
                        n.account,
                        authorizer_placeholder(&a.name)
                    ),
                )
            })
            .collect()
    }

    pub fn function_version(&self, name: &str) -> FunctionVersionSpec {
        FunctionVersionSpec {
            function: self.function(name),
            description: self.release.clone(),
        }
    }

    /// The machine's alarms, one per watched metric.
    pub fn alarms(&self, machine: &str) -> Vec<AlarmSpec> {
        let alarms = &self.project.machines[machine].alarms;
        alarms
            .thresholds
            .iter()
            .map(|(watch, threshold)| AlarmSpec {
                name: self.names.alarm(machine, watch.key()),
                metric: watch.metric().to_string(),
                threshold: *threshold,
                state_machine_arn: self.names.state_machine_arn(machine),
                notify: alarms.notify.clone(),
            })
            .collect()
    }

    pub fn machine_version(&self, name: &str) -> MachineVersionSpec {
        MachineVersionSpec {
            machine: self.state_machine(name),
            description: self.release.clone(),
        }
    }

    /// The `live` alias: it serves the version of what is declared, once
    /// the machine's smoke orders pass on it.
    pub fn alias(&self, name: &str) -> AliasSpec {
        let names = self.names;
        let m = &self.project.machines[name];
        let machine = self.state_machine(name);
        AliasSpec {
            name: crate::names::LIVE_ALIAS.to_string(),
            snapshot: machine.snapshot(),
            machine,
            smoke: self
                .project
                .smoke
                .iter()
                .filter(|s| s.state_machine == name)
                .cloned()
                .collect(),
            keep_versions: m.keep_versions,
            alarms: self.alarms(name).into_iter().map(|a| a.name).collect(),
            rollout: self.settings.rollout.clone(),
            stage_variable: self
                .project
                .routes
                .iter()
                .any(|r| r.sync && r.state_machine == name)
                .then(|| crate::names::live_variable(name)),
            functions: m
                .invokes
                .iter()
                .map(|f| (names.function(f), self.project.functions[f].keep_versions))
                .collect(),
        }
    }

    pub fn state_machine(&self, name: &str) -> StateMachineSpec {
        let names = self.names;
        let m = &self.project.machines[name];
        StateMachineSpec {
            pins: m
                .invokes
                .iter()
                .map(|f| (names.function(f), self.function(f).versioned()))
                .collect(),
            pinned: m
                .invokes
                .iter()
                .map(|f| (names.function_arn(f), names.function(f)))
                .collect(),
            name: names.state_machine(name),
            arn: names.state_machine_arn(name),
            role_arn: names.role_arn(&m.role),
            definition: m
                .definition
                .render(&placeholders(names, self.project, Some(name))),
            log_group_arn: names.log_group_arn(&names.state_machine_log_group(name)),
            kind: m.kind.clone(),
            log_level: m.logging.clone(),
            tracing: m.tracing,
        }
    }

    pub fn api(&self) -> api::ApiSpec {
        let names = self.names;
        api::ApiSpec {
            name: names.api(&self.project.api.name),
            region: names.region.clone(),
            partition: names.partition.to_string(),
            role_arn: names.role_arn(crate::project::API_ROLE),
            routes: self
                .project
                .routes
                .iter()
                .map(|r| api::RouteSpec {
                    route: r.clone(),
                    // Routes start the version `live` serves, never the
                    // machine's latest revision: async ones through the
                    // alias, sync ones by its number in a stage variable.
                    state_machine_arn: if r.sync {
                        format!(
                            "{}:${{stageVariables.{}}}",
                            names.state_machine_arn(&r.state_machine),
                            crate::names::live_variable(&r.state_machine)
                        )
                    } else {
                        names.alias_arn(&r.state_machine)
                    },
                })
                .collect(),
            models: self.project.models.clone(),
            cors_origin: self.project.api.cors_origins[0].clone(),
            authorizers: self
                .project
                .api
                .authorizers
                .iter()
                .map(|(name, a)| (name.clone(), self.authorizer(a)))
                .collect(),
            policy: api::resource_policy(&self.project.api.access),
        }
    }

    fn authorizer(&self, a: &crate::project::Authorizer) -> api::AuthorizerSpec {
        use crate::project::AuthorizerKind;
        match &a.kind {
            AuthorizerKind::Cognito { user_pool_arns } => api::AuthorizerSpec {
                kind: "COGNITO_USER_POOLS".into(),
                provider_arns: {
                    let mut arns = user_pool_arns.clone();
                    arns.sort();
                    arns
                },
                authorizer_uri: None,
                identity_source: crate::project::access::DEFAULT_IDENTITY_SOURCE.into(),
                ttl: crate::project::access::DEFAULT_TTL_S,
            },
            AuthorizerKind::Lambda {
                function,
                request,
                identity_source,
                ttl_s,
            } => api::AuthorizerSpec {
                kind: if *request { "REQUEST" } else { "TOKEN" }.into(),
                provider_arns: Vec::new(),
                authorizer_uri: Some(self.names.authorizer_uri(function)),
                identity_source: identity_source.clone(),
                ttl: *ttl_s,
            },
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

/// The placeholders every document of `project` may use, with values;
/// `machine` is the one `${stateMachineArn}` names, if any.
pub fn placeholders(
    names: &Names,
    project: &Project,
    machine: Option<&str>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in project.functions.keys() {
        out.insert(format!("{name}Arn"), names.function_arn(name));
        out.insert(
            format!("{name}LogGroupArn"),
            names.log_group_arn(&names.function_log_group(name)),
        );
    }
    for name in project.machines.keys() {
        out.insert(format!("{name}Arn"), names.state_machine_arn(name));
        // Every execution of it: what a status route may describe.
        out.insert(
            format!("{name}ExecutionsArn"),
            names.execution_arn(name, "*"),
        );
        out.insert(
            format!("{name}LogGroupArn"),
            names.log_group_arn(&names.state_machine_log_group(name)),
        );
    }
    // The machine a document is about: its role's, or the only one.
    let only = (project.machines.len() == 1)
        .then(|| project.machines.keys().next())
        .flatten();
    if let Some(name) = machine.or(only.map(String::as_str)) {
        out.insert("stateMachineArn".into(), names.state_machine_arn(name));
        out.insert(
            "stateMachineLogGroupArn".into(),
            names.log_group_arn(&names.state_machine_log_group(name)),
        );
    }
    out.insert("region".into(), names.region.clone());
    out.insert("account".into(), names.account.clone());
    out.insert("partition".into(), names.partition.into());
    out
}

/// The statement ids stepgate gives the permissions it adds to a function's
/// resource policy (API Gateway invoking an authorizer): others are left alone.
pub const AUTHORIZER_PERMISSION_PREFIX: &str = "stepgate-authorizer-";

/// How a function's desired permission writes the id of the authorizer
/// `name`, which AWS gives only when it creates it.
pub fn authorizer_placeholder(name: &str) -> String {
    format!("{{authorizer:{name}}}")
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
    pub architecture: String,
    pub environment: BTreeMap<String, String>,
    pub package: Package,
    /// Statement id -> source ARN of API Gateway's permission to invoke it
    /// (Lambda authorizers), `{api}` standing for the REST API's id and
    /// `{authorizer:NAME}` for the authorizer's.
    pub invoked_by: BTreeMap<String, String>,
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
            // Exactly the declared variables: any others are drift.
            "environment": self.environment,
            "architecture": self.architecture,
            "invoked_by": self.invoked_by,
        })
    }

    /// What a published version of it holds: its configuration and code,
    /// not its resource policy (who may invoke it is the function's, not
    /// a version's).
    pub fn versioned(&self) -> Value {
        let mut fields = self.fields();
        if let Value::Object(map) = &mut fields {
            map.remove("invoked_by");
        }
        fields
    }
}

#[derive(Clone, Debug)]
pub struct StateMachineSpec {
    pub name: String,
    pub arn: String,
    pub role_arn: String,
    pub definition: Value,
    pub log_group_arn: String,
    /// STANDARD or EXPRESS: AWS cannot change it, so a change replaces the machine.
    pub kind: String,
    /// ALL, ERROR, FATAL or OFF.
    pub log_level: String,
    pub tracing: bool,
    /// The version of each function it invokes, by the fields the version
    /// must hold (as `FunctionSpec::fields`): the definition names each
    /// one's qualified ARN.
    pub pins: BTreeMap<String, Value>,
    /// Each invoked function's unqualified ARN, with its name: where the
    /// definition pins a version.
    pub pinned: BTreeMap<String, String>,
}

impl StateMachineSpec {
    /// What a version of it holds: the definition (functions unqualified),
    /// the role, and the versions of the functions it pins.
    pub fn snapshot(&self) -> Value {
        json!({
            "definition": self.definition,
            "role": self.role_arn,
            "pins": self.pins,
        })
    }

    pub fn fields(&self) -> Value {
        json!({
            "pins": self.pins,
            "definition": self.definition,
            "role": self.role_arn,
            "type": self.kind,
            "logging": {
                "level": self.log_level,
                "include_execution_data": self.log_level != "OFF",
                "destination": (self.log_level != "OFF").then(|| self.log_destination()),
            },
            "tracing": self.tracing,
        })
    }

    /// Step Functions wants the log group ARN with the ":*" suffix.
    pub fn log_destination(&self) -> String {
        format!("{}:*", self.log_group_arn)
    }
}

/// A function's newest published version: it holds what `$LATEST` should.
#[derive(Clone, Debug)]
pub struct FunctionVersionSpec {
    pub function: FunctionSpec,
    /// The new version's description.
    pub description: String,
}

impl FunctionVersionSpec {
    pub fn fields(&self) -> Value {
        self.function.versioned()
    }
}

/// A machine's newest published version: it holds what the machine should.
#[derive(Clone, Debug)]
pub struct MachineVersionSpec {
    pub machine: StateMachineSpec,
    pub description: String,
}

impl MachineVersionSpec {
    pub fn fields(&self) -> Value {
        self.machine.snapshot()
    }
}

/// A CloudWatch alarm on one of a machine's metrics: ALARM when at least
/// `threshold` executions failed (timed out, were throttled) in a minute.
#[derive(Clone, Debug)]
pub struct AlarmSpec {
    pub name: String,
    /// `ExecutionsFailed`, `ExecutionsTimedOut` or `ExecutionThrottled`.
    pub metric: String,
    pub threshold: u32,
    pub state_machine_arn: String,
    /// The SNS topic told when it goes to ALARM.
    pub notify: Option<String>,
}

impl AlarmSpec {
    /// In the shape the alarm kind reads back.
    pub fn fields(&self) -> Value {
        json!({
            "metric": format!("AWS/States {}", self.metric),
            "state_machine_arn": self.state_machine_arn,
            "condition": format!("Sum >= {} in 1 period of 60s, missing data not breaching", self.threshold),
            "notify": self.notify,
        })
    }
}

/// The alias routes start executions on.
#[derive(Clone, Debug)]
pub struct AliasSpec {
    /// `live`.
    pub name: String,
    pub machine: StateMachineSpec,
    /// What the version it serves must hold (`StateMachineSpec::snapshot`).
    pub snapshot: Value,
    /// Run on the new version before the alias moves to it.
    pub smoke: Vec<crate::project::SmokeOrder>,
    pub keep_versions: u32,
    /// The machine's alarms: one in ALARM during a bake moves `live` back.
    pub alarms: Vec<String>,
    /// For a machine behind a sync route: the stage variable that must
    /// name the version `live` serves (`names::live_variable`).
    pub stage_variable: Option<String>,
    /// How `live` moves to the new version.
    pub rollout: crate::config::Rollout,
    /// The functions its machine pins, each with how many versions it keeps.
    pub functions: BTreeMap<String, u32>,
}

impl AliasSpec {
    pub fn fields(&self) -> Value {
        json!({ "serves": self.snapshot, "weight": 100 })
    }
}
