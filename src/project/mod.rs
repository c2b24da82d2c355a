//! The declared stack: what a project deploys, found by convention and
//! `stepgate.toml`, resolved for one stage and checked before any AWS call.
//!
//! - every directory `lambdas/NAME/` is a function (`[functions.NAME]`);
//! - every `definitions/NAME.asl.json` is a state machine (`[state_machines.NAME]`);
//! - every `[[routes]]` entry is a route of the stage's REST API (`[api]`).
//!
//! This is the only input from which names, desired state, the resource
//! graph and outputs are derived (compile: `stack.rs`, `desired.rs`).
//! docs/stack.md documents every key; docs/errors.md every check.

pub mod access;
pub mod alarms;
pub mod file;
pub mod naming;
pub mod route;
pub mod smoke;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::asl::Definition;
use crate::config::Settings;
use crate::limits::{self, ReadError};
use crate::template;
pub use access::{ApiAccess, Auth, Authorizer, AuthorizerKind};
use file::{line_of, RawDeclarations, RawFunction, RawMachine, RawRoute};
pub use naming::Adoption;
pub use route::{Route, Source};
pub use smoke::SmokeOrder;

/// Where a stage's functions share a role: the one for every function
/// without a policy of its own, which may only write their logs.
pub const SHARED_LAMBDA_ROLE: &str = "lambda";
/// The role API Gateway starts executions with.
pub const API_ROLE: &str = "apigateway";
/// The REST API's name within the stage by default.
const DEFAULT_API_NAME: &str = "api";

pub const ARCHITECTURES: [&str; 2] = ["x86_64", "arm64"];
pub const MACHINE_TYPES: [&str; 2] = ["STANDARD", "EXPRESS"];
pub const LOG_LEVELS: [&str; 4] = ["ALL", "ERROR", "FATAL", "OFF"];
/// How many published versions a function or machine keeps by default,
/// and the range `keep_versions` takes.
pub const KEEP_VERSIONS: u32 = 5;
pub const KEEP_VERSIONS_RANGE: std::ops::RangeInclusive<i64> = 2..=100;

#[derive(Clone, Debug)]
pub struct Project {
    pub functions: BTreeMap<String, Function>,
    pub machines: BTreeMap<String, Machine>,
    pub routes: Vec<Route>,
    pub api: Api,
    /// Model name -> JSON Schema (draft 4), for the routes that validate.
    pub models: BTreeMap<String, Value>,
    /// Policy documents found in `policies/` by role: `ROLE-permissions.json`
    /// and `ROLE-trust.json`, with placeholders still in.
    pub policy_files: BTreeMap<String, RoleFiles>,
    /// `smoke/*.json`: run against each new machine version before `live`
    /// moves to it.
    pub smoke: Vec<SmokeOrder>,
    /// Physical names the project gives (`name = ...`, `[api] id`).
    pub overrides: crate::names::Overrides,
    /// Which named resources deploy may take untagged (`adopt = true`).
    pub adoption: Adoption,
}

#[derive(Clone, Debug, Default)]
pub struct RoleFiles {
    pub permissions: Option<Value>,
    pub trust: Option<Value>,
}

#[derive(Clone, Debug)]
pub struct Function {
    pub name: String,
    pub dir: PathBuf,
    /// `index.NAME` by default.
    pub handler: String,
    /// The handler's module file in `dir` (`index.js`).
    pub entry: String,
    pub runtime: String,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub architecture: String,
    pub environment: BTreeMap<String, String>,
    /// The role it runs as: its own (its name) when it has a policy, else
    /// the stage's shared one.
    pub role: String,
    /// Its own permissions (placeholders in), from `policy` or
    /// `policies/NAME-permissions.json`.
    pub policy: Option<Value>,
    /// Published versions kept after a rollout.
    pub keep_versions: u32,
}

#[derive(Clone, Debug)]
pub struct Machine {
    pub name: String,
    pub file: PathBuf,
    /// STANDARD or EXPRESS.
    pub kind: String,
    /// ALL, ERROR, FATAL or OFF.
    pub logging: String,
    pub tracing: bool,
    pub definition: Definition,
    pub role: String,
    /// Permissions that replace the generated ones, from `policy` or
    /// `policies/ROLE-permissions.json`.
    pub policy: Option<Value>,
    /// The functions its definition names (`${NAMEArn}`).
    pub invokes: BTreeSet<String>,
    /// The machines it starts.
    pub starts: BTreeSet<String>,
    /// Published versions kept after a rollout.
    pub keep_versions: u32,
    /// `[state_machines.NAME.alarms]`.
    pub alarms: alarms::Alarms,
}

#[derive(Clone, Debug)]
pub struct Api {
    pub name: String,
    pub cors_origins: Vec<String>,
    /// Keys, usage plan and resource policy.
    pub access: ApiAccess,
    /// `[authorizers.NAME]`, by name.
    pub authorizers: BTreeMap<String, Authorizer>,
}

impl Project {
    /// Reads and checks the project for `settings.stage`. Reads no code:
    /// packaging is `package::package_dir`'s, once the project is sound.
    pub fn load(settings: &Settings) -> Result<Project> {
        let dir = settings.project_dir.clone();
        let config = settings.config_file.as_deref();
        let shown_config = config
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "stepgate.toml".into());
        let (raw, text) = file::read(config)?;
        let at = |span: std::ops::Range<usize>| {
            format!("{shown_config} line {}", line_of(&text, span.start))
        };
        let hint = |missing: &str| {
            match settings.project_dir_origin.as_deref() {
            None => format!("{missing} is not in the current directory; run stepgate from the project directory or pass --project-dir"),
            Some(origin) => format!("{origin} holds no {missing}; create it, or name the project's directory"),
        }
        };
        let (overrides, adoption) = naming::resolve(&raw, &settings.stage, &at)?;
        let stage = raw.stages.get(&settings.stage);
        let roles_declared: BTreeSet<String> = raw
            .roles
            .keys()
            .chain(stage.into_iter().flat_map(|s| s.roles.keys()))
            .cloned()
            .collect();
        let RawDeclarations {
            functions: raw_functions,
            state_machines: raw_machines,
            routes: raw_routes,
            api: mut raw_api,
            authorizers: raw_authorizers,
            ..
        } = raw;

        // Functions: the directories, then their settings.
        let found = subdirectories(&dir.join("lambdas"))?;
        if found.is_empty() {
            bail!("{}", hint("lambdas/ with a function directory"));
        }
        for name in raw_functions.keys() {
            if !found.contains(name) {
                bail!(
                    "{shown_config}: [functions.{name}] names no function: there is no lambdas/{name}/; create it, or remove the table{}",
                    did_you_mean(name, found.iter())
                );
            }
        }
        if let Some(stage) = stage {
            if let Some(name) = stage.functions.keys().find(|n| !found.contains(*n)) {
                bail!(
                    "{shown_config}: [stages.{}.functions.{name}] names no function: there is no lambdas/{name}/{}",
                    settings.stage,
                    did_you_mean(name, found.iter())
                );
            }
        }
        let policy_files = read_policy_files(&dir)?;
        let mut functions = BTreeMap::new();
        for name in &found {
            let base = raw_functions.get(name).cloned().unwrap_or_default();
            let raw = match stage.and_then(|s| s.functions.get(name)) {
                Some(over) => over.clone().over(base),
                None => base,
            };
            let function = resolve_function(settings, &dir, name, raw, &policy_files, &at)?;
            functions.insert(name.clone(), function);
        }

        // State machines: the definitions, then their settings.
        let found = definition_files(&dir.join("definitions"))?;
        for name in raw_machines.keys() {
            if !found.contains(name) {
                bail!(
                    "{shown_config}: [state_machines.{name}] names no state machine: there is no definitions/{name}.asl.json; create it, or remove the table{}",
                    did_you_mean(name, found.iter())
                );
            }
        }
        if found.is_empty() {
            bail!(
                "{}",
                hint("definitions/ with a state machine (definitions/NAME.asl.json)")
            );
        }
        for name in &found {
            check_name(
                "state machine",
                name,
                &format!("definitions/{name}.asl.json"),
            )?;
            if functions.contains_key(name) {
                bail!(
                    "definitions/{name}.asl.json: a function is named {name} too, and ${{{name}Arn}} would name both; rename one"
                );
            }
        }
        let known = known_placeholders(functions.keys(), found.iter());
        let mut machines = BTreeMap::new();
        for name in &found {
            let base = raw_machines.get(name).cloned().unwrap_or_default();
            let raw = match stage.and_then(|s| s.state_machines.get(name)) {
                Some(over) => over.clone().over(base),
                None => base,
            };
            let scope = MachineScope {
                dir: &dir,
                policy_files: &policy_files,
                known: &known,
                functions: &functions,
                machines: &found,
                at: &at,
            };
            let machine = resolve_machine(&scope, name, raw)?;
            machines.insert(name.clone(), machine);
        }
        check_no_cycle(&machines)?;
        if settings.rollout.strategy != crate::config::Strategy::AllAtOnce {
            if let Some(m) = machines.values().find(|m| m.kind == "EXPRESS") {
                bail!(
                    "definitions/{}.asl.json: the stage's rollout strategy {} watches the new version's executions, which Step Functions lists for STANDARD machines only, and {} is EXPRESS; use strategy = \"all-at-once\" for stage {}",
                    m.name,
                    serde_json::to_value(settings.rollout.strategy).unwrap_or_default(),
                    m.name,
                    settings.stage
                );
            }
        }

        // The API, who may call it, and its routes.
        let access = access::resolve_api_access(raw_api.access(), &at)?;
        let authorizers = access::resolve_authorizers(raw_authorizers, &functions, &at)?;
        let api = Api {
            name: match raw_api.name {
                Some(n) => {
                    check_name("API", n.get_ref(), &format!("{}: [api] name", at(n.span())))?;
                    n.into_inner()
                }
                None => DEFAULT_API_NAME.into(),
            },
            cors_origins: match raw_api.cors_origins {
                Some(o) => {
                    let origins = o.get_ref().clone();
                    if origins.len() != 1 || origins[0].is_empty() || origins[0].contains('\'') {
                        bail!(
                            "{}: [api] cors_origins = {:?}: give exactly one origin, such as \"*\" or \"https://shop.example.com\" (API Gateway answers with one Access-Control-Allow-Origin)",
                            at(o.span()),
                            origins
                        );
                    }
                    origins
                }
                None => vec!["*".into()],
            },
            access,
            authorizers,
        };
        let mut models = BTreeMap::new();
        let mut routes: Vec<Route> = Vec::new();
        for (i, raw) in raw_routes.into_iter().enumerate() {
            let route = resolve_route(&dir, i, raw, &machines, &api, &mut models, &at)?;
            if let Some(other) = routes.iter().find(|r| r.key() == route.key()) {
                bail!(
                    "{shown_config}: [[routes]] {} is declared twice; keep one (the second is route #{})",
                    other.key(),
                    i + 1
                );
            }
            routes.push(route);
        }
        let smoke = smoke::load(&dir, &routes)?;
        if overrides.api_id.is_some() && routes.is_empty() {
            bail!("{shown_config}: [api] id names the REST API the routes are served by, and the project declares no [[routes]]; add the routes, or remove id");
        }
        let project = Project {
            functions,
            machines,
            routes,
            api,
            models,
            policy_files,
            smoke,
            overrides,
            adoption,
        };
        let roles = project.roles();
        for role in &roles_declared {
            if !roles.contains_key(role) {
                bail!(
                    "{shown_config}: [roles.{role}] names no role of the stage; its roles are {}{}",
                    roles.keys().cloned().collect::<Vec<_>>().join(", "),
                    did_you_mean(role, roles.keys())
                );
            }
        }
        project.check_roles()?;
        project.check_name_lengths(settings)?;
        Ok(project)
    }

    /// The roles of the stage, by logical name, each with who it is for.
    pub fn roles(&self) -> BTreeMap<String, RoleOf> {
        let mut roles = BTreeMap::new();
        for f in self.functions.values() {
            roles.insert(f.role.clone(), RoleOf::Lambda);
        }
        for m in self.machines.values() {
            roles.insert(m.role.clone(), RoleOf::StateMachine(m.name.clone()));
        }
        if !self.routes.is_empty() {
            roles.insert(API_ROLE.into(), RoleOf::ApiGateway);
        }
        roles
    }

    /// The functions that run as `role`.
    pub fn functions_of(&self, role: &str) -> impl Iterator<Item = &Function> {
        let role = role.to_string();
        self.functions.values().filter(move |f| f.role == role)
    }

    /// Two roles may not share a name: a function's own role is named after
    /// it, a machine's after its `role` key or itself.
    fn check_roles(&self) -> Result<()> {
        let mut owners: BTreeMap<&str, String> = BTreeMap::new();
        for f in self
            .functions
            .values()
            .filter(|f| f.role != SHARED_LAMBDA_ROLE)
        {
            if f.role == API_ROLE {
                bail!("lambdas/{}: a function with its own policy gets a role named after it, and {API_ROLE} is API Gateway's; rename the function", f.name);
            }
            owners.insert(&f.role, format!("function {}", f.name));
        }
        for m in self.machines.values() {
            if m.role == SHARED_LAMBDA_ROLE || m.role == API_ROLE {
                bail!("definitions/{}.asl.json: the machine's role would be named {}, which the stage uses for {}; set [state_machines.{}] role to another name", m.name, m.role, if m.role == API_ROLE { "API Gateway" } else { "its functions" }, m.name);
            }
            if let Some(other) = owners.insert(&m.role, format!("state machine {}", m.name)) {
                bail!("definitions/{}.asl.json: its role would be named {}, like the role of {other}; set [state_machines.{}] role to another name", m.name, m.role, m.name);
            }
        }
        Ok(())
    }

    /// Function and machine names must fit AWS's limits once prefixed with
    /// the stack and stage: a hash would hide which function is which.
    fn check_name_lengths(&self, settings: &Settings) -> Result<()> {
        let names = crate::names::Names::new(&settings.stack, &settings.stage, "r", "0")
            .with_overrides(self.overrides.clone());
        for f in self.functions.keys() {
            let full = names.function_unfitted(f);
            if full.len() > 64 {
                bail!("lambdas/{f}: the function would be named {full} ({} characters), over Lambda's limit of 64; shorten the directory's name or the stack or stage", full.len());
            }
        }
        for m in self.machines.keys() {
            let full = names.state_machine_unfitted(m);
            if full.len() > 80 {
                bail!("definitions/{m}.asl.json: the state machine would be named {full} ({} characters), over Step Functions' limit of 80; shorten the file's name or the stack or stage", full.len());
            }
        }
        Ok(())
    }
}

/// The physical names `stepgate.toml` gives for `settings.stage`, read
/// from the file alone: what every command's names need, destroy's too
/// (it needs no sources). `Project::load` checks them the same way.
pub fn overrides_of(settings: &Settings) -> Result<crate::names::Overrides> {
    let config = settings.config_file.as_deref();
    let shown = config
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "stepgate.toml".into());
    let (raw, text) = file::read(config)?;
    let at = |span: std::ops::Range<usize>| format!("{shown} line {}", line_of(&text, span.start));
    Ok(naming::resolve(&raw, &settings.stage, &at)?.0)
}

/// `[leftovers] roles`: roles of a stack built by hand that the project no
/// longer uses, read from the file alone (destroy needs no sources).
pub fn leftover_roles(settings: &Settings) -> Result<Vec<String>> {
    Ok(file::read(settings.config_file.as_deref())?
        .0
        .leftovers
        .roles)
}

/// The name overrides of every stage the file mentions (and `settings.stage`),
/// each list the union: what a deployer role for the project must reach.
pub fn overrides_of_every_stage(settings: &Settings) -> Result<Vec<crate::names::Overrides>> {
    let config = settings.config_file.as_deref();
    let shown = config
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "stepgate.toml".into());
    let (raw, text) = file::read(config)?;
    let at = |span: std::ops::Range<usize>| format!("{shown} line {}", line_of(&text, span.start));
    let mut stages: BTreeSet<&String> = raw.stages.keys().collect();
    stages.insert(&settings.stage);
    stages
        .into_iter()
        .map(|stage| Ok(naming::resolve(&raw, stage, &at)?.0))
        .collect()
}

/// Who a role is for: what service may assume it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleOf {
    Lambda,
    StateMachine(String),
    ApiGateway,
}

fn known_placeholders<'a>(
    functions: impl Iterator<Item = &'a String>,
    machines: impl Iterator<Item = &'a String>,
) -> BTreeSet<String> {
    let mut known: BTreeSet<String> = ["region", "account", "partition"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for name in functions.chain(machines) {
        known.insert(format!("{name}Arn"));
        known.insert(format!("{name}LogGroupArn"));
    }
    // The machine a document is about (its role's, or the only one).
    known.insert("stateMachineArn".into());
    known.insert("stateMachineLogGroupArn".into());
    known
}

fn resolve_function(
    settings: &Settings,
    dir: &Path,
    name: &str,
    raw: RawFunction,
    policy_files: &BTreeMap<String, RoleFiles>,
    at: &dyn Fn(std::ops::Range<usize>) -> String,
) -> Result<Function> {
    let fdir = dir.join("lambdas").join(name);
    check_name("function", name, &format!("lambdas/{name}/"))?;
    let table = format!("[functions.{name}]");
    let handler = match raw.handler {
        Some(h) => {
            let value = h.get_ref();
            if !value.contains('.') || value.starts_with('.') || value.ends_with('.') {
                bail!(
                    "{}: {table} handler = {value:?}: write FILE.EXPORT, such as index.{name}",
                    at(h.span())
                );
            }
            h.into_inner()
        }
        None => format!("index.{name}"),
    };
    let (module, _) = handler.rsplit_once('.').unwrap_or(("index", ""));
    let entry = ["js", "mjs", "cjs"]
        .iter()
        .map(|ext| format!("{module}.{ext}"))
        .find(|f| fdir.join(f).is_file());
    let Some(entry) = entry else {
        bail!(
            "{}: no {module}.js, {module}.mjs or {module}.cjs; the handler {handler} is loaded from there, so add it (or set {table} handler)",
            fdir.display()
        );
    };
    let runtime = match raw.runtime {
        Some(r) => {
            let value = r.get_ref();
            if let Some(why) = crate::checks::runtime::deprecation(value) {
                bail!("{}: {table} runtime = {value:?} {why}", at(r.span()));
            }
            if !crate::checks::runtime::is_supported(value) {
                bail!(
                    "{}: {table} runtime = {value:?} {}",
                    at(r.span()),
                    crate::checks::runtime::UNSUPPORTED
                );
            }
            r.into_inner()
        }
        None => settings.lambda.runtime.clone(),
    };
    let memory_mb = match raw.memory {
        Some(m) if !(128..=10240).contains(m.get_ref()) => bail!(
            "{}: {table} memory = {} is out of range; Lambda takes 128 to 10240 MB",
            at(m.span()),
            m.get_ref()
        ),
        Some(m) => m.into_inner(),
        None => settings.lambda.memory_mb,
    };
    let timeout_s = match raw.timeout {
        Some(t) if !(1..=900).contains(t.get_ref()) => bail!(
            "{}: {table} timeout = {} is out of range; Lambda takes 1 to 900 seconds",
            at(t.span()),
            t.get_ref()
        ),
        Some(t) => t.into_inner(),
        None => settings.lambda.timeout_s,
    };
    let architecture = match raw.architecture {
        Some(a) if !ARCHITECTURES.contains(&a.get_ref().as_str()) => bail!(
            "{}: {table} architecture = {:?}: use x86_64 or arm64",
            at(a.span()),
            a.get_ref()
        ),
        Some(a) => a.into_inner(),
        None => ARCHITECTURES[0].into(),
    };
    let environment = match raw.environment {
        Some(env) => {
            for key in env.get_ref().keys() {
                let ok = key.starts_with(|c: char| c.is_ascii_alphabetic())
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok || RESERVED_ENV.contains(&key.as_str()) || key.starts_with("AWS_") {
                    bail!(
                        "{}: {table} environment: {key:?} is not a name Lambda accepts; start with a letter, use letters, digits and _, and avoid AWS_ and Lambda's reserved names",
                        at(env.span())
                    );
                }
            }
            let size: usize = env.get_ref().iter().map(|(k, v)| k.len() + v.len()).sum();
            if size > 4096 {
                bail!(
                    "{}: {table} environment is {size} bytes; Lambda allows 4 KB in all",
                    at(env.span())
                );
            }
            env.into_inner()
        }
        None => BTreeMap::new(),
    };
    let policy = match &raw.policy {
        Some(p) => Some(policy_file(dir, p, &table, name, at)?),
        None => policy_files.get(name).and_then(|f| f.permissions.clone()),
    };
    let keep_versions = keep_versions(raw.keep_versions.as_ref(), &table, at)?;
    Ok(Function {
        keep_versions,
        name: name.into(),
        dir: fdir,
        handler,
        entry,
        runtime,
        memory_mb,
        timeout_s,
        architecture,
        environment,
        role: if policy.is_some() {
            name.into()
        } else {
            SHARED_LAMBDA_ROLE.into()
        },
        policy,
    })
}

/// `keep_versions`, checked: at least the version `live` serves and the
/// one before it, for a rollback.
fn keep_versions(
    raw: Option<&toml::Spanned<i64>>,
    table: &str,
    at: &dyn Fn(std::ops::Range<usize>) -> String,
) -> Result<u32> {
    match raw {
        None => Ok(KEEP_VERSIONS),
        Some(k) if KEEP_VERSIONS_RANGE.contains(k.get_ref()) => Ok(*k.get_ref() as u32),
        Some(k) => bail!(
            "{}: {table} keep_versions = {} is out of range; keep {} to {} versions (the one `live` serves and at least one to roll back to)",
            at(k.span()),
            k.get_ref(),
            KEEP_VERSIONS_RANGE.start(),
            KEEP_VERSIONS_RANGE.end()
        ),
    }
}

/// Variables Lambda sets itself and refuses in a function's configuration.
const RESERVED_ENV: [&str; 6] = [
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "TZ",
    "_AWS_XRAY_DAEMON_ADDRESS",
];

/// The permissions file a `policy` key names.
fn policy_file(
    dir: &Path,
    key: &toml::Spanned<String>,
    table: &str,
    role: &str,
    at: &dyn Fn(std::ops::Range<usize>) -> String,
) -> Result<Value> {
    let path = dir.join(key.get_ref());
    if !path.is_file() {
        bail!(
            "{}: {table} policy = {:?}: no such file in the project; name a permissions file such as policies/{role}-permissions.json",
            at(key.span()),
            key.get_ref()
        );
    }
    crate::sources::parse_policy(&read(&path, limits::DOCUMENT_BYTES, "policy")?)
        .with_context(|| path.display().to_string())
}

/// What a machine's declaration is resolved against.
struct MachineScope<'a> {
    dir: &'a Path,
    policy_files: &'a BTreeMap<String, RoleFiles>,
    /// The placeholders a definition may use.
    known: &'a BTreeSet<String>,
    functions: &'a BTreeMap<String, Function>,
    machines: &'a BTreeSet<String>,
    at: &'a dyn Fn(std::ops::Range<usize>) -> String,
}

fn resolve_machine(scope: &MachineScope, name: &str, raw: RawMachine) -> Result<Machine> {
    let MachineScope {
        dir,
        policy_files,
        known,
        functions,
        machines,
        at,
    } = *scope;
    let table = format!("[state_machines.{name}]");
    let file = dir.join("definitions").join(format!("{name}.asl.json"));
    let text = read(&file, limits::DEFINITION_FILE_BYTES, "definition")?;
    let definition = Definition::parse(&text, known, &BTreeSet::new())
        .with_context(|| file.display().to_string())?;
    let used = template::placeholders(definition.template());
    let named = |suffix: &str, names: &mut dyn Iterator<Item = &String>| -> BTreeSet<String> {
        names
            .filter(|n| used.contains(&format!("{n}{suffix}")))
            .cloned()
            .collect()
    };
    let invokes = named("Arn", &mut functions.keys());
    let starts = named("Arn", &mut machines.iter());
    let one_of = |value: &toml::Spanned<String>, allowed: &[&str], key: &str| -> Result<String> {
        let v = value.get_ref().to_ascii_uppercase();
        if !allowed.contains(&v.as_str()) {
            bail!(
                "{}: {table} {key} = {:?}: use {}",
                at(value.span()),
                value.get_ref(),
                allowed.join(", ")
            );
        }
        Ok(v)
    };
    let kind = match &raw.kind {
        Some(k) => one_of(k, &MACHINE_TYPES, "type")?,
        None => MACHINE_TYPES[0].into(),
    };
    let logging = match &raw.logging {
        Some(l) => one_of(l, &LOG_LEVELS, "logging")?,
        None => LOG_LEVELS[0].into(),
    };
    let role = match raw.role {
        Some(r) => {
            check_name(
                "role",
                r.get_ref(),
                &format!("{}: {table} role", at(r.span())),
            )?;
            r.into_inner()
        }
        None => name.into(),
    };
    let policy = match &raw.policy {
        Some(p) => Some(policy_file(dir, p, &table, &role, at)?),
        None => policy_files.get(&role).and_then(|f| f.permissions.clone()),
    };
    let keep_versions = keep_versions(raw.keep_versions.as_ref(), &table, at)?;
    let alarms = alarms::Alarms::resolve(raw.alarms.as_ref(), &table, at)?;
    Ok(Machine {
        keep_versions,
        alarms,
        name: name.into(),
        file,
        kind,
        logging,
        tracing: raw.tracing.map(|t| t.into_inner()).unwrap_or(false),
        definition,
        role,
        policy,
        invokes,
        starts,
    })
}

fn resolve_route(
    dir: &Path,
    index: usize,
    raw: RawRoute,
    machines: &BTreeMap<String, Machine>,
    api: &Api,
    models: &mut BTreeMap<String, Value>,
    at: &dyn Fn(std::ops::Range<usize>) -> String,
) -> Result<Route> {
    let n = index + 1;
    let method = raw.method.get_ref().to_ascii_uppercase();
    if !route::METHODS.contains(&method.as_str()) {
        bail!(
            "{}: [[routes]] #{n} method = {:?}: use one of {}",
            at(raw.method.span()),
            raw.method.get_ref(),
            route::METHODS.join(", ")
        );
    }
    let path = raw.path.get_ref().clone();
    let params = route::path_params(&path)
        .map_err(|e| anyhow::anyhow!("{}: [[routes]] #{n} path {e}", at(raw.path.span())))?;
    let key = format!("{method} {path}");
    let machine_name = raw.state_machine.get_ref();
    let Some(machine) = machines.get(machine_name) else {
        bail!(
            "{}: [[routes]] {key}: state_machine = {machine_name:?} is not a state machine of the project (definitions/NAME.asl.json){}",
            at(raw.state_machine.span()),
            did_you_mean(machine_name, machines.keys())
        );
    };
    let source = |text: &str, span: std::ops::Range<usize>, key_name: &str| -> Result<Source> {
        let s = Source::parse(text).map_err(|e| {
            anyhow::anyhow!("{}: [[routes]] {key}: {key_name}: {e}", at(span.clone()))
        })?;
        if let Source::Path(p) = &s {
            if !params.contains(p) {
                bail!(
                    "{}: [[routes]] {key}: {key_name} = \"path.{p}\", but the path has no {{{p}}}; use one of its parameters ({}) or add it to the path",
                    at(span),
                    if params.is_empty() { "it has none".to_string() } else { params.join(", ") }
                );
            }
        }
        Ok(s)
    };
    let input = match &raw.input {
        Some(map) => {
            let mut out = BTreeMap::new();
            for (field, text) in map.get_ref() {
                if field.is_empty() || field.contains('"') || field.contains('\\') {
                    bail!(
                        "{}: [[routes]] {key}: input field {field:?} is not a plain name",
                        at(map.span())
                    );
                }
                out.insert(
                    field.clone(),
                    source(text, map.span(), &format!("input.{field}"))?,
                );
            }
            Some(out)
        }
        None => None,
    };
    let input_string = match &raw.input_string {
        Some(text) => {
            if raw.input.is_some() {
                bail!(
                    "{}: [[routes]] {key}: input_string and input both say what the input is; keep one",
                    at(text.span())
                );
            }
            match Source::parse(text.get_ref()) {
                Ok(Source::BodyField(field)) => Some(field),
                _ => bail!(
                    "{}: [[routes]] {key}: input_string = {:?}: name a body field, such as \"body.input\"",
                    at(text.span()),
                    text.get_ref()
                ),
            }
        }
        None => None,
    };
    let sync = raw.sync.as_ref().is_some_and(|s| *s.get_ref());
    if sync && machine.kind != "EXPRESS" {
        bail!(
            "{}: [[routes]] {key}: sync = true needs an EXPRESS machine, and {machine_name} is {}; set [state_machines.{machine_name}] type = \"EXPRESS\", or drop sync",
            at(raw.sync.as_ref().map(|s| s.span()).unwrap_or_default()),
            machine.kind
        );
    }
    let (auth, api_key, scopes, status) = resolve_route_access(&raw, &key, sync, api, at)?;
    let errors = match raw.errors {
        Some(e) if !sync => bail!(
            "{}: [[routes]] {key}: errors maps a sync route's failures to statuses; this route is not sync = true",
            at(e.span())
        ),
        Some(e) => {
            for (name, status) in e.get_ref() {
                if !(400..=599).contains(status) {
                    bail!("{}: [[routes]] {key}: errors.{name} = {status}: use a status from 400 to 599", at(e.span()));
                }
            }
            e.into_inner()
        }
        None => BTreeMap::new(),
    };
    let execution_name = match &raw.execution_name {
        Some(text) => {
            if machine.kind != "STANDARD" || sync {
                bail!(
                    "{}: [[routes]] {key}: execution_name makes a Standard workflow run once per name; {machine_name} is {}, where names do not deduplicate; drop it",
                    at(text.span()),
                    machine.kind
                );
            }
            Some(source(text.get_ref(), text.span(), "execution_name")?)
        }
        None => None,
    };
    let model = match &raw.model {
        Some(file) => {
            let path = dir.join(file.get_ref());
            let name = model_name(file.get_ref()).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: [[routes]] {key}: model = {:?}: name the schema file NAME.schema.json or NAME.json, NAME of letters and digits",
                    at(file.span()),
                    file.get_ref()
                )
            })?;
            if !models.contains_key(&name) {
                let text = read(&path, limits::DOCUMENT_BYTES, "model")?;
                let schema = crate::sources::parse_model(&text)
                    .with_context(|| path.display().to_string())?;
                models.insert(name.clone(), schema);
            }
            Some(name)
        }
        None => None,
    };
    Ok(Route {
        method,
        path,
        state_machine: machine_name.clone(),
        input,
        input_string,
        model,
        execution_name,
        sync,
        errors,
        auth,
        api_key,
        scopes,
        status,
    })
}

/// A route's `auth`, `api_key`, `scopes` and `status`, checked against the
/// declared authorizers and keys. No `auth` at all is an error: no route
/// is open by accident.
fn resolve_route_access(
    raw: &RawRoute,
    key: &str,
    sync: bool,
    api: &Api,
    at: &dyn Fn(std::ops::Range<usize>) -> String,
) -> Result<(Auth, bool, Vec<String>, bool)> {
    let Some(written) = &raw.auth else {
        bail!(
            "{}: [[routes]] {key}: no auth; say who may call it: auth = \"none\" (anyone), \"iam\" (SigV4), or an authorizer of [authorizers.NAME]",
            at(raw.method.span())
        );
    };
    let auth = match written.get_ref().as_str() {
        "none" => Auth::Open,
        "iam" => Auth::Iam,
        name if api.authorizers.contains_key(name) => Auth::Authorizer(name.to_string()),
        name => {
            let mut known: Vec<String> = vec!["none".into(), "iam".into()];
            known.extend(api.authorizers.keys().cloned());
            bail!(
                "{}: [[routes]] {key}: auth = {name:?} is not none, iam or an authorizer of [authorizers.NAME]{}",
                at(written.span()),
                did_you_mean(name, known.iter())
            );
        }
    };
    let api_key = raw.api_key.as_ref().is_some_and(|k| *k.get_ref());
    if api_key && api.access.keys.is_empty() {
        bail!(
            "{}: [[routes]] {key}: api_key = true, but [api] keys names no key; add keys = [\"NAME\"] to [api]",
            at(raw.api_key.as_ref().map(|k| k.span()).unwrap_or_default())
        );
    }
    let scopes = match &raw.scopes {
        None => Vec::new(),
        Some(s) => {
            let cognito = match &auth {
                Auth::Authorizer(name) => {
                    matches!(api.authorizers[name].kind, AuthorizerKind::Cognito { .. })
                }
                _ => false,
            };
            if !cognito {
                bail!(
                    "{}: [[routes]] {key}: scopes are checked by a Cognito authorizer, and this route's auth is {:?}; drop scopes or use a type = \"cognito\" authorizer",
                    at(s.span()),
                    auth.key()
                );
            }
            if s.get_ref()
                .iter()
                .any(|x| x.is_empty() || x.contains(char::is_whitespace))
            {
                bail!(
                    "{}: [[routes]] {key}: scopes: each scope is one word, such as orders/write",
                    at(s.span())
                );
            }
            s.get_ref().clone()
        }
    };
    let status = raw.status.as_ref().is_some_and(|s| *s.get_ref());
    if status && sync {
        bail!(
            "{}: [[routes]] {key}: status = true adds a route to poll an execution, and a sync route answers with its output already; drop status",
            at(raw.status.as_ref().map(|s| s.span()).unwrap_or_default())
        );
    }
    Ok((auth, api_key, scopes, status))
}

/// `models/Order.schema.json` -> `Order`: API Gateway model names are
/// alphanumeric.
fn model_name(file: &str) -> Option<String> {
    let base = Path::new(file).file_name()?.to_str()?;
    let stem = base
        .strip_suffix(".schema.json")
        .or_else(|| base.strip_suffix(".json"))?;
    (!stem.is_empty() && stem.chars().all(|c| c.is_ascii_alphanumeric())).then(|| stem.into())
}

/// Machines that start each other would start each other forever (and
/// their roles would each need the other's ARN first).
fn check_no_cycle(machines: &BTreeMap<String, Machine>) -> Result<()> {
    fn visit<'a>(
        name: &'a str,
        machines: &'a BTreeMap<String, Machine>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Result<()> {
        if let Some(at) = path.iter().position(|n| *n == name) {
            let mut cycle: Vec<&str> = path[at..].to_vec();
            cycle.push(name);
            bail!(
                "definitions/{}.asl.json: state machines start each other ({}); a machine may start another only if that one does not start it back",
                path[at],
                cycle.join(" -> ")
            );
        }
        if !done.insert(name) {
            return Ok(());
        }
        path.push(name);
        for next in &machines[name].starts {
            visit(next, machines, path, done)?;
        }
        path.pop();
        done.remove(name);
        done.insert(name);
        Ok(())
    }
    let mut done = BTreeSet::new();
    for name in machines.keys() {
        let mut path = Vec::new();
        let mut seen = BTreeSet::new();
        visit(name, machines, &mut path, &mut seen)?;
        done.extend(seen);
    }
    Ok(())
}

/// Names that become part of AWS names and placeholders.
fn check_name(what: &str, name: &str, place: &str) -> Result<()> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        bail!("{place}: {name:?} is not a valid {what} name; start with a letter and use letters, digits, - and _");
    }
    Ok(())
}

/// " (did you mean X?)" when one of `candidates` is a likely typo of `name`.
pub fn did_you_mean<'a>(name: &str, candidates: impl Iterator<Item = &'a String>) -> String {
    candidates
        .map(|c| (distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| format!(" (did you mean {c}?)"))
        .unwrap_or_default()
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn subdirectories(dir: &Path) -> Result<BTreeSet<String>> {
    list(dir, |entry| {
        entry
            .path()
            .is_dir()
            .then(|| entry.file_name().to_str().map(str::to_string))
            .flatten()
    })
}

fn definition_files(dir: &Path) -> Result<BTreeSet<String>> {
    list(dir, |entry| {
        let name = entry.file_name().to_str()?.to_string();
        name.strip_suffix(".asl.json").map(str::to_string)
    })
}

/// The names `pick` takes from a directory's entries; none if it is absent.
fn list(
    dir: &Path,
    pick: impl Fn(&std::fs::DirEntry) -> Option<String>,
) -> Result<BTreeSet<String>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut out = BTreeSet::new();
            for entry in entries {
                let entry = entry.with_context(|| format!("read {}", dir.display()))?;
                if entry.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                out.extend(pick(&entry));
            }
            Ok(out)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(e).with_context(|| format!("{}: cannot read it", dir.display())),
    }
}

/// Every `policies/ROLE-permissions.json` and `policies/ROLE-trust.json`.
fn read_policy_files(dir: &Path) -> Result<BTreeMap<String, RoleFiles>> {
    let pdir = dir.join("policies");
    let files = list(&pdir, |e| e.file_name().to_str().map(str::to_string))?;
    let mut out: BTreeMap<String, RoleFiles> = BTreeMap::new();
    for file in files {
        let (role, permissions) = match (
            file.strip_suffix("-permissions.json"),
            file.strip_suffix("-trust.json"),
        ) {
            (Some(role), _) => (role, true),
            (_, Some(role)) => (role, false),
            _ => continue,
        };
        let path = pdir.join(&file);
        let doc = crate::sources::parse_policy(&read(&path, limits::DOCUMENT_BYTES, "policy")?)
            .with_context(|| path.display().to_string())?;
        let entry = out.entry(role.to_string()).or_default();
        if permissions {
            entry.permissions = Some(doc);
        } else {
            entry.trust = Some(doc);
        }
    }
    Ok(out)
}

/// Reads a project file: a regular file of at most `limit` bytes.
pub fn read(path: &Path, limit: u64, kind: &str) -> Result<String> {
    if let Some(what) = limits::not_regular(path) {
        bail!(
            "{}: is {what}, not a regular file; put the {kind} file itself there",
            path.display()
        );
    }
    match limits::read_text(path, limit) {
        Ok(text) => Ok(text),
        Err(ReadError::TooLarge { limit }) => bail!(
            "{}: larger than {}, the most stepgate reads from a {kind} file; check that it is the right file",
            path.display(),
            limits::bytes(limit)
        ),
        Err(ReadError::Io(e)) => Err(e).with_context(|| format!("{}: cannot read it", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_suggests_close_names_only() {
        let names: Vec<String> = vec!["RecipeMover".into(), "OrderProcessor".into()];
        assert_eq!(
            did_you_mean("RecipeMovr", names.iter()),
            " (did you mean RecipeMover?)"
        );
        assert_eq!(did_you_mean("Billing", names.iter()), "");
    }

    #[test]
    fn model_names_come_from_the_schema_file() {
        assert_eq!(
            model_name("models/Order.schema.json").as_deref(),
            Some("Order")
        );
        assert_eq!(model_name("models/Quote.json").as_deref(), Some("Quote"));
        assert_eq!(model_name("models/my-order.json"), None);
    }
}
