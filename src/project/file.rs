//! The stack's declarations in `stepgate.toml`, as written: `[functions.NAME]`,
//! `[state_machines.NAME]`, `[[routes]]`, `[api]`, `[authorizers.NAME]`, and their per-stage
//! overrides `[stages.S.functions.NAME]` / `[stages.S.state_machines.NAME]`.
//! Settings (how to run) are config.rs's; this is what to deploy. Spans let
//! every error name its line.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};
use serde::Deserialize;
use toml::Spanned;

use crate::limits::{read_text, DOCUMENT_BYTES};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RawDeclarations {
    pub functions: BTreeMap<String, RawFunction>,
    pub state_machines: BTreeMap<String, RawMachine>,
    pub routes: Vec<RawRoute>,
    pub api: RawApi,
    pub authorizers: BTreeMap<String, RawAuthorizer>,
    /// `[roles.ROLE]`: a role of the stage by its name within it.
    pub roles: BTreeMap<String, RawRole>,
    /// `[leftovers]`: what a stack built by hand leaves once adopted.
    pub leftovers: RawLeftovers,
    pub stages: BTreeMap<String, RawStageDeclarations>,
}

/// What a `[stages.S]` table may override of the declarations.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RawStageDeclarations {
    pub functions: BTreeMap<String, RawFunction>,
    pub state_machines: BTreeMap<String, RawMachine>,
    pub roles: BTreeMap<String, RawRole>,
}

/// `[leftovers]`, written by `stepgate adopt`: resources of the stack
/// built by hand that the project no longer uses. plan, deploy and
/// destroy say which still exist; stepgate never deletes them.
#[derive(Deserialize, Default, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct RawLeftovers {
    pub roles: Vec<String>,
}

/// A name override and whether deploy may take an untagged resource of
/// that name (`adopt = true`), as every table that names a resource has.
#[derive(Deserialize, Default, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct RawRole {
    pub name: Option<Spanned<String>>,
    pub adopt: Option<Spanned<bool>>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct RawFunction {
    pub handler: Option<Spanned<String>>,
    pub runtime: Option<Spanned<String>>,
    pub memory: Option<Spanned<i32>>,
    pub timeout: Option<Spanned<i32>>,
    pub architecture: Option<Spanned<String>>,
    pub environment: Option<Spanned<BTreeMap<String, String>>>,
    pub policy: Option<Spanned<String>>,
    pub keep_versions: Option<Spanned<i64>>,
    /// The function's name in AWS, instead of `{stack}-{stage}-NAME`.
    pub name: Option<Spanned<String>>,
    /// Deploy may take an untagged function of that name.
    pub adopt: Option<Spanned<bool>>,
}

impl RawFunction {
    /// `self` over `base`, key by key (a stage's override over the project's).
    pub fn over(self, base: RawFunction) -> RawFunction {
        RawFunction {
            handler: self.handler.or(base.handler),
            runtime: self.runtime.or(base.runtime),
            memory: self.memory.or(base.memory),
            timeout: self.timeout.or(base.timeout),
            architecture: self.architecture.or(base.architecture),
            environment: self.environment.or(base.environment),
            policy: self.policy.or(base.policy),
            keep_versions: self.keep_versions.or(base.keep_versions),
            name: self.name.or(base.name),
            adopt: self.adopt.or(base.adopt),
        }
    }
}

#[derive(Deserialize, Default, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct RawMachine {
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    pub logging: Option<Spanned<String>>,
    pub tracing: Option<Spanned<bool>>,
    pub policy: Option<Spanned<String>>,
    /// The role's name within the stage (`{stack}-{stage}-{region}-ROLE`);
    /// default the machine's name.
    pub role: Option<Spanned<String>>,
    pub keep_versions: Option<Spanned<i64>>,
    pub alarms: Option<super::alarms::RawAlarms>,
    /// The machine's name in AWS, instead of `{stack}-{stage}-NAME`.
    pub name: Option<Spanned<String>>,
    pub adopt: Option<Spanned<bool>>,
}

impl RawMachine {
    pub fn over(self, base: RawMachine) -> RawMachine {
        RawMachine {
            kind: self.kind.or(base.kind),
            logging: self.logging.or(base.logging),
            tracing: self.tracing.or(base.tracing),
            policy: self.policy.or(base.policy),
            role: self.role.or(base.role),
            keep_versions: self.keep_versions.or(base.keep_versions),
            alarms: self.alarms.or(base.alarms),
            name: self.name.or(base.name),
            adopt: self.adopt.or(base.adopt),
        }
    }
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub method: Spanned<String>,
    pub path: Spanned<String>,
    pub state_machine: Spanned<String>,
    #[serde(default)]
    pub input: Option<Spanned<BTreeMap<String, String>>>,
    /// A body field holding the input as a JSON string (StartExecution's
    /// own form), used when present.
    #[serde(default)]
    pub input_string: Option<Spanned<String>>,
    #[serde(default)]
    pub model: Option<Spanned<String>>,
    #[serde(default)]
    pub execution_name: Option<Spanned<String>>,
    #[serde(default)]
    pub sync: Option<Spanned<bool>>,
    #[serde(default)]
    pub errors: Option<Spanned<BTreeMap<String, u16>>>,
    /// `none`, `iam` or an authorizer's name; required.
    #[serde(default)]
    pub auth: Option<Spanned<String>>,
    #[serde(default)]
    pub api_key: Option<Spanned<bool>>,
    /// OAuth scopes a Cognito authorizer's token must carry.
    #[serde(default)]
    pub scopes: Option<Spanned<Vec<String>>>,
    /// Adds `GET <path>/{executionId}`.
    #[serde(default)]
    pub status: Option<Spanned<bool>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RawApi {
    /// The REST API's name within the stage (`{stack}-{stage}-NAME`).
    pub name: Option<Spanned<String>>,
    pub cors_origins: Option<Spanned<Vec<String>>>,
    pub keys: Option<Spanned<Vec<String>>>,
    pub usage_plan: Option<RawUsagePlan>,
    pub allow_source_ips: Option<Spanned<Vec<String>>>,
    pub allow_vpc_endpoints: Option<Spanned<Vec<String>>>,
    /// An existing REST API by its id: `name` is then its name as AWS
    /// holds it, not prefixed.
    pub id: Option<Spanned<String>>,
    pub adopt: Option<Spanned<bool>>,
}

impl RawApi {
    /// The keys about who may call the API.
    pub fn access(&mut self) -> RawApiAccess {
        RawApiAccess {
            keys: self.keys.take(),
            usage_plan: self.usage_plan.take(),
            allow_source_ips: self.allow_source_ips.take(),
            allow_vpc_endpoints: self.allow_vpc_endpoints.take(),
        }
    }
}

/// `[api]`'s keys about callers (project/access.rs resolves them).
pub struct RawApiAccess {
    pub keys: Option<Spanned<Vec<String>>>,
    pub usage_plan: Option<RawUsagePlan>,
    pub allow_source_ips: Option<Spanned<Vec<String>>>,
    pub allow_vpc_endpoints: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RawUsagePlan {
    pub rate_limit: Option<Spanned<f64>>,
    pub burst_limit: Option<Spanned<i32>>,
    pub quota: Option<RawQuota>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuota {
    pub limit: Spanned<i32>,
    pub period: Spanned<String>,
}

/// `[authorizers.NAME]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthorizer {
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    #[serde(default)]
    pub user_pool_arns: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub function: Option<Spanned<String>>,
    /// A Lambda authorizer's `kind`: token or request.
    #[serde(default, rename = "kind")]
    pub lambda_kind: Option<Spanned<String>>,
    #[serde(default)]
    pub identity_source: Option<Spanned<String>>,
    #[serde(default)]
    pub ttl: Option<Spanned<i32>>,
}

/// The declarations of the config file at `path`, or none without one.
/// Returns the text too, to turn spans into line numbers.
pub fn read(path: Option<&Path>) -> Result<(RawDeclarations, String)> {
    let Some(path) = path else {
        return Ok((RawDeclarations::default(), String::new()));
    };
    // config.rs has read and checked this file already (size, syntax).
    let text = read_text(path, DOCUMENT_BYTES)
        .map_err(|_| anyhow::anyhow!("{}: cannot read it", path.display()))?;
    match toml::from_str(&text) {
        Ok(raw) => Ok((raw, text)),
        Err(e) => {
            let line = e
                .span()
                .map(|s| line_of(&text, s.start))
                .map(|l| format!(" line {l}"))
                .unwrap_or_default();
            let message = e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            bail!("{}{line}: {message}", path.display())
        }
    }
}

/// The 1-based line of byte offset `at`.
pub fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
