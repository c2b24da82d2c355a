//! Settings for one run, resolved from four layers: the command line over
//! `STEPGATE_*` environment variables over `stepgate.toml` over built-in
//! defaults. Every value is validated where it was given, before any AWS call,
//! so an error can name the flag, variable or file line to fix.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml_edit::{ImDocument, TableLike};

use crate::checks::runtime;
use crate::limits::{bytes, ReadError, DOCUMENT_BYTES};

const CONFIG_FILE_NAME: &str = "stepgate.toml";
pub const DEFAULT_STACK: &str = "orders";
const DEFAULT_STAGE: &str = "dev";
pub const DEFAULT_RUNTIME: &str = "nodejs22.x";
const DEFAULT_MEMORY_MB: i32 = 128;
const DEFAULT_TIMEOUT_S: i32 = 10;
const DEFAULT_LOG_RETENTION_DAYS: i32 = 14;
/// API Gateway's execution-logging levels, for `api_log_level`.
pub const API_LOG_LEVELS: [&str; 3] = ["OFF", "ERROR", "INFO"];
const DEFAULT_API_LOG_LEVEL: &str = "ERROR";
/// Stepgate adds its own ownership tags, so users get fewer than AWS's 50.
const MAX_EXTRA_TAGS: usize = 40;
const RESERVED_TAG_PREFIXES: [&str; 2] = ["aws:", "stepgate:"];
/// The values CloudWatch Logs accepts for a log group's retention.
const LOG_RETENTION_DAYS: [i32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// What the command line gave (`None` = not given). main.rs fills it from clap.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// --config; default: `<project_dir>/stepgate.toml` if it exists.
    pub config: Option<PathBuf>,
    /// --project-dir; default "." (holds lambdas/, definitions/, policies/).
    pub project_dir: Option<PathBuf>,
    pub stack: Option<String>,
    pub stage: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub account: Option<String>,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub runtime: Option<String>,
    pub memory_mb: Option<i32>,
    pub timeout_s: Option<i32>,
    pub log_retention_days: Option<i32>,
    pub api_log_level: Option<String>,
}

/// The settings of one run, every layer applied and validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    pub project_dir: PathBuf,
    /// How the project directory was named (`--project-dir DIR` or
    /// `STEPGATE_PROJECT_DIR=DIR`); `None`: the current directory, by default.
    #[serde(skip)]
    pub project_dir_origin: Option<String>,
    /// The config file actually read, if any.
    pub config_file: Option<PathBuf>,
    pub stack: String,
    pub stage: String,
    /// `None`: left to the AWS SDK's default chain (AWS_REGION, profile).
    pub region: Option<String>,
    /// `None`: the AWS SDK's default chain. A profile named here is used for
    /// credentials even when AWS_ACCESS_KEY_ID is set, as the AWS CLI does.
    pub profile: Option<String>,
    /// Where `profile` was given (`--profile "p"`, `STEPGATE_PROFILE=p` or
    /// `stepgate.toml line 3: profile = "p"`), for errors about it.
    #[serde(skip)]
    pub profile_origin: Option<String>,
    /// `None`: the AWS SDK's default chain (AWS_ENDPOINT_URL).
    pub endpoint_url: Option<String>,
    /// If set, stepgate refuses to run against any other account.
    pub account: Option<String>,
    /// The deployer role to assume (STS AssumeRole) before anything else,
    /// as CDK's `--role-arn` and Terraform's `assume_role` do.
    pub role_arn: Option<String>,
    /// The external ID the role's trust policy asks for. Not a secret (AWS
    /// says so), but never printed: it is the role owner's to share.
    #[serde(skip)]
    pub external_id: Option<String>,
    pub lambda: LambdaSettings,
    pub log_retention_days: i32,
    /// Extra tags on every resource.
    pub tags: BTreeMap<String, String>,
    /// Stage throttling; `None` leaves API Gateway's account defaults.
    pub throttling: Option<Throttling>,
    /// The stage's execution-logging level: OFF, ERROR or INFO.
    pub api_log_level: String,
    /// How `live` moves to a new version.
    pub rollout: Rollout,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LambdaSettings {
    pub runtime: String,
    pub memory_mb: i32,
    pub timeout_s: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Throttling {
    pub burst_limit: i32,
    pub rate_limit: f64,
}

/// Why the settings could not be resolved. Each message is one line that
/// names the bad input and what would be accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file or project directory named by flag or variable is missing.
    #[error("{origin}: {what} not found")]
    NotFound { origin: String, what: &'static str },
    /// The config file exists but cannot be read.
    #[error("{}: cannot read: {error}", path.display())]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The config file is larger than any config file could be: the wrong
    /// file, or a device or pipe.
    #[error(
        "{}: larger than {}, the most stepgate reads from a config file; check that it is the right file",
        path.display(),
        bytes(*limit)
    )]
    TooLarge { path: PathBuf, limit: u64 },
    /// The config file is not TOML, or not laid out as stepgate reads it.
    #[error("{location}: {message}")]
    Syntax { location: String, message: String },
    /// A value breaks a rule; `origin` names the flag, variable or file line.
    #[error("{origin} {problem}")]
    Invalid { origin: String, problem: String },
}

impl Settings {
    /// Resolves the settings of one run. `env` looks up an environment
    /// variable (main passes `|name| std::env::var(name).ok()`).
    pub fn resolve(
        cli: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        // `STEPGATE_X= stepgate ...` is how a shell user unsets a variable.
        let env = |name: &str| env(name).filter(|value| !value.is_empty());

        let (project_dir, project_dir_origin) =
            match explicit_path(&cli.project_dir, "project_dir", &env, Path::is_dir)? {
                Some((dir, origin)) => (dir, Some(origin)),
                None => (PathBuf::from("."), None),
            };
        let config_file = match explicit_path(&cli.config, "config", &env, Path::exists)? {
            Some((file, _)) => Some(file),
            // Without a file every setting has a default, so it may be absent.
            None => Some(project_dir.join(CONFIG_FILE_NAME)).filter(|file| file.exists()),
        };

        // Both layers are checked even where the command line wins, so a bad
        // variable never lurks until the flag is dropped.
        let stage = STAGE
            .check_flag(cli.stage.clone())?
            .or(STAGE.check_env(&env)?);
        let stage = value(stage).unwrap_or_else(|| DEFAULT_STAGE.to_owned());
        let flags = Layer::from_flags(cli)?;
        let vars = Layer::from_env(&env)?;
        let file = match &config_file {
            Some(path) => load(path, &stage)?,
            None => Layer::default(),
        };

        let merged = flags.over(vars.over(file));
        check_role(&merged)?;
        check_partition(&merged, &env)?;
        let (profile, profile_origin) = merged.profile.unzip();
        Ok(Settings {
            project_dir,
            project_dir_origin,
            config_file,
            stack: value(merged.stack).unwrap_or_else(|| DEFAULT_STACK.to_owned()),
            stage,
            region: value(merged.region),
            profile,
            profile_origin,
            endpoint_url: value(merged.endpoint_url),
            account: value(merged.account),
            role_arn: value(merged.role_arn),
            external_id: value(merged.external_id),
            lambda: LambdaSettings {
                runtime: value(merged.runtime).unwrap_or_else(|| DEFAULT_RUNTIME.to_owned()),
                memory_mb: value(merged.memory_mb).unwrap_or(DEFAULT_MEMORY_MB),
                timeout_s: value(merged.timeout_s).unwrap_or(DEFAULT_TIMEOUT_S),
            },
            log_retention_days: value(merged.log_retention_days)
                .unwrap_or(DEFAULT_LOG_RETENTION_DAYS),
            tags: merged.tags,
            throttling: merged.throttling,
            api_log_level: value(merged.api_log_level)
                .unwrap_or_else(|| DEFAULT_API_LOG_LEVEL.to_owned()),
            rollout: merged.rollout.unwrap_or_default(),
        })
    }
}

/// A path from the flag `--<name>`, else from the variable `STEPGATE_<NAME>`,
/// with how to name it in an error. A path named explicitly must exist.
fn explicit_path(
    path: &Option<PathBuf>,
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
    exists: fn(&Path) -> bool,
) -> Result<Option<(PathBuf, String)>, ConfigError> {
    let given = match path {
        Some(path) => Some((path.clone(), format!("{} {}", flag(name), path.display()))),
        None => env(&var(name)).map(|raw| (PathBuf::from(&raw), format!("{}={raw}", var(name)))),
    };
    match given {
        Some((path, origin)) if !exists(&path) => Err(ConfigError::NotFound {
            origin,
            what: if name == "config" {
                "file"
            } else {
                "directory"
            },
        }),
        given => Ok(given),
    }
}

/// The flag and the variable that give the setting `name` (`log_retention_days`:
/// `--log-retention-days`, `STEPGATE_LOG_RETENTION_DAYS`).
fn flag(name: &str) -> String {
    format!("--{}", name.replace('_', "-"))
}

fn var(name: &str) -> String {
    format!("STEPGATE_{}", name.to_uppercase())
}

/// A value with where it was given, as errors name it: `--stage "x"`,
/// `STEPGATE_STAGE=x` or `stepgate.toml line 3: region = "x"`.
type Given<T> = Option<(T, String)>;

fn value<T>(given: Given<T>) -> Option<T> {
    given.map(|(value, _)| value)
}

/// Declares `Layer`, the values one layer gives (`None` leaves a setting to
/// the layers below), with the layers the command line and the environment
/// give. Each of these settings is named once, with its `Field`.
macro_rules! layer {
    ($($name:ident: $type:ty = $field:ident,)*) => {
        #[derive(Default)]
        struct Layer {
            $($name: Given<$type>,)*
            tags: BTreeMap<String, String>,
            throttling: Option<Throttling>,
            rollout: Option<Rollout>,
        }

        impl Layer {
            /// `self` over `below`, key by key: tags merge, throttling and
            /// rollout are replaced whole.
            fn over(self, below: Layer) -> Layer {
                let mut tags = below.tags;
                tags.extend(self.tags);
                let throttling = self.throttling.or(below.throttling);
                let rollout = self.rollout.or(below.rollout);
                Layer { $($name: self.$name.or(below.$name),)* tags, throttling, rollout }
            }

            fn from_flags(cli: &Overrides) -> Result<Layer, ConfigError> {
                Ok(Layer {
                    $($name: $field.check_flag(Clone::clone(&cli.$name))?,)*
                    ..Layer::default()
                })
            }

            fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Layer, ConfigError> {
                Ok(Layer { $($name: $field.check_env(env)?,)* ..Layer::default() })
            }
        }
    };
}

layer! {
    stack: String = STACK,
    region: String = REGION,
    profile: String = PROFILE,
    endpoint_url: String = ENDPOINT_URL,
    account: String = ACCOUNT,
    role_arn: String = ROLE_ARN,
    external_id: String = EXTERNAL_ID,
    runtime: String = RUNTIME,
    memory_mb: i32 = MEMORY,
    timeout_s: i32 = TIMEOUT,
    log_retention_days: i32 = LOG_RETENTION,
    api_log_level: String = API_LOG_LEVEL,
}

/// A setting and the rule its value must pass. Its `name` is its file key,
/// and names its flag and variable.
struct Field<T> {
    name: &'static str,
    ok: fn(&T) -> bool,
    problem: &'static str,
    /// A more specific problem for some values (a deprecated runtime).
    detail: Option<fn(&T) -> Option<String>>,
}

impl<T: fmt::Debug + FromStr> Field<T> {
    const fn new(name: &'static str, ok: fn(&T) -> bool, problem: &'static str) -> Field<T> {
        Field {
            name,
            ok,
            problem,
            detail: None,
        }
    }

    /// The value if it passes the rule, else an error naming it by `origin`.
    fn check(&self, origin: String, value: T) -> Result<(T, String), ConfigError> {
        if (self.ok)(&value) {
            return Ok((value, origin));
        }
        let detail = self.detail.and_then(|detail| detail(&value));
        // An endpoint URL may hold a password: never shown.
        let origin = crate::shown::redact_userinfo(&origin).into_owned();
        Err(invalid(origin, detail.as_deref().unwrap_or(self.problem)))
    }

    fn check_flag(&self, value: Option<T>) -> Result<Given<T>, ConfigError> {
        let origin = |value: &T| format!("{} {value:?}", flag(self.name));
        value
            .map(|value| self.check(origin(&value), value))
            .transpose()
    }

    fn check_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Given<T>, ConfigError> {
        let var = var(self.name);
        let Some(raw) = env(&var) else {
            return Ok(None);
        };
        let origin = format!("{var}={raw}");
        // Only numbers can fail to parse (String's FromStr cannot). Digits that
        // overflow i32 are out of range rather than "not a number".
        let Ok(value) = raw.parse() else {
            let digits = raw.strip_prefix('-').unwrap_or(&raw);
            let overflow = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            let problem = if overflow {
                self.problem
            } else {
                "is not a whole number"
            };
            return Err(invalid(origin, problem));
        };
        self.check(origin, value).map(Some)
    }

    fn check_spanned(
        &self,
        file: &FileText,
        value: Spanned<T>,
    ) -> Result<(T, String), ConfigError> {
        let origin = format!(
            "{}: {} = {:?}",
            file.at(value.span()),
            self.name,
            value.get_ref()
        );
        self.check(origin, value.into_inner())
    }

    fn check_file(
        &self,
        file: &FileText,
        value: Option<Spanned<T>>,
    ) -> Result<Given<T>, ConfigError> {
        value
            .map(|value| self.check_spanned(file, value))
            .transpose()
    }
}

fn invalid(origin: String, problem: &str) -> ConfigError {
    ConfigError::Invalid {
        origin,
        problem: problem.to_owned(),
    }
}

const STACK: Field<String> = Field::new(
    "stack",
    |s| {
        s.len() <= 24
            && s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    },
    "is not valid: start with a letter, then use letters, digits or '-' (at most 24 characters)",
);

const STAGE: Field<String> = Field::new(
    "stage",
    |s| {
        (1..=32).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    },
    "is not valid: use letters, digits, '-' or '_' (at most 32 characters)",
);

const REGION: Field<String> = Field::new(
    "region",
    |s| {
        let parts: Vec<&str> = s.split('-').collect();
        parts.len() >= 3
            && parts.iter().all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
    },
    "is not an AWS region: expected a name like us-east-1 or eu-central-2",
);

const PROFILE: Field<String> = Field::new(
    "profile",
    |s| !s.is_empty(),
    "is empty: name a profile from the AWS config or credentials file",
);

const ENDPOINT_URL: Field<String> = Field::new(
    "endpoint_url",
    |s| {
        ["http://", "https://"]
            .iter()
            .any(|scheme| s.strip_prefix(scheme).is_some_and(|rest| !rest.is_empty()))
    },
    "is not a URL: it must start with http:// or https://",
);

const ACCOUNT: Field<String> = Field::new(
    "account",
    |s| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()),
    "is not an AWS account ID: it must be exactly 12 digits",
);

const ROLE_ARN: Field<String> = Field::new(
    "role_arn",
    |s| role_arn_account(s).is_some(),
    "is not an IAM role ARN: expected arn:aws:iam::123456789012:role/NAME (the role stepgate assumes to deploy)",
);

/// The account of an IAM role ARN (`arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`),
/// if it is one; names as IAM allows them.
pub fn role_arn_account(arn: &str) -> Option<&str> {
    let rest = ["aws", "aws-cn", "aws-us-gov"]
        .iter()
        .find_map(|partition| arn.strip_prefix(&format!("arn:{partition}:iam::")))?;
    let (account, resource) = rest.split_once(':')?;
    let path_and_name = resource.strip_prefix("role/")?;
    let name = path_and_name.rsplit('/').next()?;
    let iam_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    let ok = (ACCOUNT.ok)(&account.to_owned())
        && (1..=64).contains(&name.len())
        && path_and_name.len() <= 512 + 64
        && path_and_name.chars().all(|c| iam_char(c) || c == '/');
    ok.then_some(account)
}

const EXTERNAL_ID: Field<String> = Field::new(
    "external_id",
    |s| {
        (2..=1224).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/_-".contains(c))
    },
    "is not an external ID STS accepts: 2 to 1224 characters of letters, digits and + = , . @ : / _ -",
);

/// The role to assume must agree with the rest, before any AWS call: an
/// external ID needs a role, and a role in another account than the one
/// the run is pinned to can only end in the account guard refusing.
fn check_role(merged: &Layer) -> Result<(), ConfigError> {
    match (&merged.role_arn, &merged.external_id, &merged.account) {
        (None, Some((_, origin)), _) => Err(invalid(
            origin.clone(),
            "is given without a role to assume; add --role-arn (or role_arn in stepgate.toml), or drop the external ID",
        )),
        (Some((arn, origin)), _, Some((account, account_origin))) => {
            match role_arn_account(arn) {
                Some(role_account) if role_account != account => Err(invalid(
                    origin.clone(),
                    &format!(
                        "is a role in account {role_account}, but {account_origin} pins the run to account {account}; assume a role in {account}, or change the account"
                    ),
                )),
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// The partition of a region, as ARNs name it: `cn-*` is aws-cn,
/// `us-gov-*` aws-us-gov; `None` for the isolated partitions' regions
/// (`us-iso-*`, `eu-isoe-*`, ...), which stepgate does not target.
fn region_partition(region: &str) -> Option<&'static str> {
    if region.starts_with("cn-") {
        Some("aws-cn")
    } else if region.starts_with("us-gov-") {
        Some("aws-us-gov")
    } else if region
        .split('-')
        .nth(1)
        .is_some_and(|p| p.starts_with("iso"))
    {
        None
    } else {
        Some("aws")
    }
}

/// A role to assume must be in the partition of the region the run calls:
/// STS of one partition cannot assume a role of another. The region is the
/// settings' own, else `AWS_REGION` (a region from an AWS profile is not
/// known here; STS answers then).
fn check_partition(
    merged: &Layer,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let Some((arn, origin)) = &merged.role_arn else {
        return Ok(());
    };
    let Some((region, region_origin)) = merged.region.clone().or_else(|| {
        env("AWS_REGION").map(|region| (region.clone(), format!("AWS_REGION={region}")))
    }) else {
        return Ok(());
    };
    let role = arn.split(':').nth(1).unwrap_or_default();
    match region_partition(&region) {
        Some(partition) if partition != role => Err(invalid(
            origin.clone(),
            &format!(
                "is a role in the {role} partition, but {region_origin} is a region of the {partition} partition; assume a role of the {partition} partition (arn:{partition}:iam::...), or name a region of {role}"
            ),
        )),
        _ => Ok(()),
    }
}

const RUNTIME: Field<String> = Field {
    name: "runtime",
    ok: |s| runtime::is_supported(s),
    problem: runtime::UNSUPPORTED,
    detail: Some(|s| runtime::deprecation(s)),
};

const MEMORY: Field<i32> = Field::new(
    "memory",
    |mb| (128..=10240).contains(mb),
    "is out of range; Lambda memory must be 128..=10240 MB",
);

const TIMEOUT: Field<i32> = Field::new(
    "timeout",
    |s| (1..=900).contains(s),
    "is out of range; a Lambda timeout must be 1..=900 seconds",
);

const LOG_RETENTION: Field<i32> = Field::new("log_retention_days", |days| LOG_RETENTION_DAYS.contains(days), "is not a retention CloudWatch Logs allows; use one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653");

const API_LOG_LEVEL: Field<String> = Field::new(
    "api_log_level",
    |level| API_LOG_LEVELS.contains(&level.as_str()),
    "is not an API Gateway execution-logging level; use OFF, ERROR or INFO",
);

const BURST_LIMIT: Field<i32> = Field::new(
    "burst_limit",
    |burst| *burst >= 0,
    "is negative; burst_limit must be 0 or more",
);

const RATE_LIMIT: Field<f64> = Field::new(
    "rate_limit",
    |rate| rate.is_finite() && *rate >= 0.0,
    "is not allowed; rate_limit must be a finite number, 0 or more",
);

/// `stepgate.toml` as written. Spans let errors name the line.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawFile {
    stack: Option<Spanned<String>>,
    defaults: RawSection,
    stages: BTreeMap<Spanned<String>, RawSection>,
    // The stack's declarations: project/file.rs reads and checks them.
    functions: Option<toml::Value>,
    state_machines: Option<toml::Value>,
    routes: Option<toml::Value>,
    api: Option<toml::Value>,
    authorizers: Option<toml::Value>,
    roles: Option<toml::Value>,
    leftovers: Option<toml::Value>,
}

/// `[defaults]` or one `[stages.NAME]`.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawSection {
    region: Option<Spanned<String>>,
    account: Option<Spanned<String>>,
    role_arn: Option<Spanned<String>>,
    external_id: Option<Spanned<String>>,
    runtime: Option<Spanned<String>>,
    memory: Option<Spanned<i32>>,
    timeout: Option<Spanned<i32>>,
    log_retention_days: Option<Spanned<i32>>,
    tags: BTreeMap<Spanned<String>, Spanned<String>>,
    throttling: Option<RawThrottling>,
    rollout: Option<rollout::RawRollout>,
    profile: Option<Spanned<String>>,
    api_log_level: Option<Spanned<String>>,
    // A stage's overrides of the declarations (project/file.rs).
    functions: Option<toml::Value>,
    state_machines: Option<toml::Value>,
    roles: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThrottling {
    burst_limit: Spanned<i32>,
    rate_limit: Spanned<f64>,
}

/// Reads and validates the whole config file, every stage's section
/// included, so a mistake is caught whichever stage runs. Gives `stage`'s
/// section over `[defaults]` (which carries the top-level `stack`); a stage
/// without a section gets `[defaults]`.
fn load(path: &Path, stage: &str) -> Result<Layer, ConfigError> {
    let text = crate::limits::read_text(path, DOCUMENT_BYTES).map_err(|error| match error {
        ReadError::TooLarge { limit } => ConfigError::TooLarge {
            path: path.to_owned(),
            limit,
        },
        ReadError::Io(error) => ConfigError::Unreadable {
            path: path.to_owned(),
            error,
        },
    })?;
    let file = FileText { path, text: &text };
    let raw: RawFile = toml::from_str(&text).map_err(|error| file.syntax_error(&error))?;

    let mut defaults = file.section(raw.defaults, "defaults", &BTreeMap::new())?;
    defaults.stack = STACK.check_file(&file, raw.stack)?;
    let mut chosen = Layer::default();
    for (name, section) in raw.stages {
        let table = format!("stages.{}", toml_key(name.get_ref()));
        if !(STAGE.ok)(name.get_ref()) {
            let origin = format!("{}: [{table}]", file.at(name.span()));
            return Err(invalid(origin, STAGE.problem));
        }
        let layer = file.section(section, &table, &defaults.tags)?;
        if name.get_ref() == stage {
            chosen = layer;
        }
    }
    Ok(chosen.over(defaults))
}

/// A config file's path and text, to turn spans into "path line N".
struct FileText<'a> {
    path: &'a Path,
    text: &'a str,
}

impl FileText<'_> {
    fn at(&self, span: Range<usize>) -> String {
        let before = &self.text.as_bytes()[..span.start.min(self.text.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        format!("{} line {line}", self.path.display())
    }

    fn section(
        &self,
        raw: RawSection,
        table: &str,
        inherited_tags: &BTreeMap<String, String>,
    ) -> Result<Layer, ConfigError> {
        Ok(Layer {
            region: REGION.check_file(self, raw.region)?,
            account: ACCOUNT.check_file(self, raw.account)?,
            role_arn: ROLE_ARN.check_file(self, raw.role_arn)?,
            external_id: EXTERNAL_ID.check_file(self, raw.external_id)?,
            runtime: RUNTIME.check_file(self, raw.runtime)?,
            memory_mb: MEMORY.check_file(self, raw.memory)?,
            timeout_s: TIMEOUT.check_file(self, raw.timeout)?,
            log_retention_days: LOG_RETENTION.check_file(self, raw.log_retention_days)?,
            tags: self.tags(raw.tags, table, inherited_tags)?,
            throttling: raw.throttling.map(|raw| self.throttling(raw)).transpose()?,
            rollout: raw
                .rollout
                .map(|raw| self.rollout(raw, table))
                .transpose()?,
            profile: PROFILE.check_file(self, raw.profile)?,
            api_log_level: API_LOG_LEVEL.check_file(self, raw.api_log_level)?,
            ..Layer::default()
        })
    }

    fn throttling(&self, raw: RawThrottling) -> Result<Throttling, ConfigError> {
        Ok(Throttling {
            burst_limit: BURST_LIMIT.check_spanned(self, raw.burst_limit)?.0,
            rate_limit: RATE_LIMIT.check_spanned(self, raw.rate_limit)?.0,
        })
    }

    /// Checks `[<table>.tags]`; with the tags it inherits they must stay within
    /// the limit, since every resource of the stage gets both.
    fn tags(
        &self,
        raw: BTreeMap<Spanned<String>, Spanned<String>>,
        table: &str,
        inherited: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        let start = raw.keys().map(|key| key.span().start).min();
        let mut tags = BTreeMap::new();
        for (key, value) in raw {
            if let Some(problem) = tag_problem(key.get_ref(), value.get_ref()) {
                let origin = format!("{}: tag {:?}", self.at(key.span()), key.get_ref());
                return Err(invalid(origin, &problem));
            }
            tags.insert(key.into_inner(), value.into_inner());
        }
        let total = inherited
            .keys()
            .chain(tags.keys())
            .collect::<BTreeSet<_>>()
            .len();
        if total > MAX_EXTRA_TAGS {
            let start = start.unwrap_or_default();
            let origin = format!("{}: [{table}.tags]", self.at(start..start));
            return Err(invalid(
                origin,
                &format!(
                "brings the stage to {total} tags; at most {MAX_EXTRA_TAGS} extra tags are allowed"
            ),
            ));
        }
        Ok(tags)
    }

    /// Turns toml's error, which spans several lines, into one line that
    /// names the line and the key.
    fn syntax_error(&self, error: &toml::de::Error) -> ConfigError {
        let message = (error.message().lines().map(str::trim))
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
            .replace("expected i32", "expected a whole number")
            .replace("expected f64", "expected a number");
        let Some(span) = error.span() else {
            return ConfigError::Syntax {
                location: self.path.display().to_string(),
                message,
            };
        };
        let path = key_path(self.text, &span);
        let unknown = message
            .strip_prefix("unknown field")
            .and_then(|rest| rest.split_once(", expected"));
        let message = match (unknown, path) {
            // Rewords serde's "unknown field `x`, expected one of `a`, `b`",
            // naming the table, which the error does not carry.
            (Some((_, expected)), path) => {
                let key = self.text.get(span.clone()).unwrap_or("?");
                let place = match path.as_deref() {
                    Some([_]) => " at the top level".to_owned(),
                    Some([tables @ .., _]) => format!(" in [{}]", tables.join(".")),
                    _ => String::new(),
                };
                let expected: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
                format!(
                    "unknown key `{key}`{place}; expected one of: {}",
                    expected.join(", ")
                )
            }
            (None, Some(path)) => format!("{}: {message}", path.join(".")),
            (None, None) => message,
        };
        ConfigError::Syntax {
            location: self.at(span),
            message,
        }
    }
}

/// What AWS or stepgate would refuse in a tag, if anything.
fn tag_problem(key: &str, value: &str) -> Option<String> {
    let (key_chars, value_chars) = (key.chars().count(), value.chars().count());
    if !(1..=128).contains(&key_chars) {
        return Some(format!(
            "has a key of {key_chars} characters; tag keys must be 1..=128 characters"
        ));
    }
    let lowercase = key.to_lowercase();
    if RESERVED_TAG_PREFIXES
        .iter()
        .any(|prefix| lowercase.starts_with(prefix))
    {
        return Some(
            "is reserved: tag keys may not start with \"aws:\" or \"stepgate:\"".to_owned(),
        );
    }
    let refused = |text, part| {
        crate::checks::tags::refused_char(text).map(|c| format!(
            "has a character AWS does not allow in tag {part} ({c:?}); use letters, digits, spaces and _ . : / = + - @"
        ))
    };
    refused(key, "keys")
        .or_else(|| refused(value, "values"))
        .or_else(|| {
            (value_chars > 256).then(|| {
                format!("has a value of {value_chars} characters; tag values may have at most 256")
            })
        })
}

/// A key as TOML would write it: bare when it can be, else quoted.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// The keys (as TOML writes them) leading to the key written at `span`, or
/// to the key whose value is written there, that key last. Handles headers,
/// dotted keys and inline tables alike.
fn key_path(text: &str, span: &Range<usize>) -> Option<Vec<String>> {
    fn find(table: &dyn TableLike, text: &str, span: &Range<usize>) -> Option<Vec<String>> {
        table.iter().find_map(|(name, item)| {
            let key = table.key(name)?.span()?;
            let names_span = key == *span
                || text
                    .get(key.end..span.start)
                    .is_some_and(|between| between.trim() == "=");
            let mut path = if names_span {
                Vec::new()
            } else {
                find(item.as_table_like()?, text, span)?
            };
            path.insert(0, toml_key(name));
            Some(path)
        })
    }
    find(ImDocument::parse(text).ok()?.as_table(), text, span)
}

mod rollout;
pub use rollout::{Rollout, Strategy};

#[cfg(test)]
mod tests;
