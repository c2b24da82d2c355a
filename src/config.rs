//! Settings for one run, resolved from four layers: the command line over
//! `STEPGATE_*` environment variables over `stepgate.toml` over built-in
//! defaults. Every value is validated where it was given, before any AWS call,
//! so an error can name the flag, variable or file line to fix.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::checks::runtime;
use crate::limits::{bytes, ReadError, DOCUMENT_BYTES};

const CONFIG_FILE_NAME: &str = "stepgate.toml";
const DEFAULT_STACK: &str = "orders";
const DEFAULT_STAGE: &str = "dev";
pub const DEFAULT_RUNTIME: &str = "nodejs22.x";
const DEFAULT_MEMORY_MB: i32 = 128;
const DEFAULT_TIMEOUT_S: i32 = 10;
const DEFAULT_LOG_RETENTION_DAYS: i32 = 14;
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
    pub runtime: Option<String>,
    pub memory_mb: Option<i32>,
    pub timeout_s: Option<i32>,
    pub log_retention_days: Option<i32>,
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
    pub lambda: LambdaSettings,
    pub log_retention_days: i32,
    /// Extra tags on every resource.
    pub tags: BTreeMap<String, String>,
    /// Stage throttling; `None` leaves API Gateway's account defaults.
    pub throttling: Option<Throttling>,
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

        let (project_dir, project_dir_origin) = match explicit_path(
            &cli.project_dir,
            "--project-dir",
            "STEPGATE_PROJECT_DIR",
            &env,
        ) {
            Some((dir, origin)) if !dir.is_dir() => {
                return Err(ConfigError::NotFound {
                    origin,
                    what: "directory",
                })
            }
            Some((dir, origin)) => (dir, Some(origin)),
            None => (PathBuf::from("."), None),
        };
        let config_file = match explicit_path(&cli.config, "--config", "STEPGATE_CONFIG", &env) {
            Some((file, origin)) if !file.exists() => {
                return Err(ConfigError::NotFound {
                    origin,
                    what: "file",
                })
            }
            Some((file, _)) => Some(file),
            // Without a file every setting has a default, so it may be absent.
            None => Some(project_dir.join(CONFIG_FILE_NAME)).filter(|file| file.exists()),
        };

        // Both layers are checked even where the command line wins, so a bad
        // variable never lurks until the flag is dropped.
        let stage = STAGE
            .check_flag(cli.stage.clone())?
            .or(STAGE.check_env(&env)?)
            .unwrap_or_else(|| DEFAULT_STAGE.to_owned());
        let flags = Layer::from_flags(cli)?;
        let vars = Layer::from_env(&env)?;
        let file = match &config_file {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };

        let merged = flags.over(vars.over(file.for_stage(&stage)));
        Ok(Settings {
            project_dir,
            project_dir_origin,
            config_file,
            stack: merged.stack.unwrap_or_else(|| DEFAULT_STACK.to_owned()),
            stage,
            region: merged.region,
            profile: merged.profile,
            profile_origin: merged.profile_origin,
            endpoint_url: merged.endpoint_url,
            account: merged.account,
            lambda: LambdaSettings {
                runtime: merged.runtime.unwrap_or_else(|| DEFAULT_RUNTIME.to_owned()),
                memory_mb: merged.memory_mb.unwrap_or(DEFAULT_MEMORY_MB),
                timeout_s: merged.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S),
            },
            log_retention_days: merged
                .log_retention_days
                .unwrap_or(DEFAULT_LOG_RETENTION_DAYS),
            tags: merged.tags,
            throttling: merged.throttling,
        })
    }
}

/// A path from the flag, else from the variable, with how to name it in an error.
fn explicit_path(
    flag_value: &Option<PathBuf>,
    flag: &str,
    var: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<(PathBuf, String)> {
    match flag_value {
        Some(path) => Some((path.clone(), format!("{flag} {}", path.display()))),
        None => env(var).map(|value| (PathBuf::from(&value), format!("{var}={value}"))),
    }
}

/// The values one layer gives; `None` leaves a setting to the layers below.
#[derive(Default)]
struct Layer {
    stack: Option<String>,
    region: Option<String>,
    profile: Option<String>,
    /// Where `profile` came from, shown as in errors.
    profile_origin: Option<String>,
    endpoint_url: Option<String>,
    account: Option<String>,
    runtime: Option<String>,
    memory_mb: Option<i32>,
    timeout_s: Option<i32>,
    log_retention_days: Option<i32>,
    tags: BTreeMap<String, String>,
    throttling: Option<Throttling>,
}

impl Layer {
    /// `self` over `below`, key by key: tags merge, throttling is replaced whole.
    fn over(self, below: Layer) -> Layer {
        let mut tags = below.tags;
        tags.extend(self.tags);
        let (profile, profile_origin) = match self.profile {
            Some(profile) => (Some(profile), self.profile_origin),
            None => (below.profile, below.profile_origin),
        };
        Layer {
            stack: self.stack.or(below.stack),
            region: self.region.or(below.region),
            profile,
            profile_origin,
            endpoint_url: self.endpoint_url.or(below.endpoint_url),
            account: self.account.or(below.account),
            runtime: self.runtime.or(below.runtime),
            memory_mb: self.memory_mb.or(below.memory_mb),
            timeout_s: self.timeout_s.or(below.timeout_s),
            log_retention_days: self.log_retention_days.or(below.log_retention_days),
            tags,
            throttling: self.throttling.or(below.throttling),
        }
    }

    fn from_flags(cli: &Overrides) -> Result<Layer, ConfigError> {
        Ok(Layer {
            stack: STACK.check_flag(cli.stack.clone())?,
            region: REGION.check_flag(cli.region.clone())?,
            profile: PROFILE.check_flag(cli.profile.clone())?,
            profile_origin: cli
                .profile
                .as_ref()
                .map(|p| Origin::Flag(PROFILE.flag).show(p)),
            endpoint_url: ENDPOINT_URL.check_flag(cli.endpoint_url.clone())?,
            account: ACCOUNT.check_flag(cli.account.clone())?,
            runtime: RUNTIME.check_flag(cli.runtime.clone())?,
            memory_mb: MEMORY.check_flag(cli.memory_mb)?,
            timeout_s: TIMEOUT.check_flag(cli.timeout_s)?,
            log_retention_days: LOG_RETENTION.check_flag(cli.log_retention_days)?,
            ..Layer::default()
        })
    }

    fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Layer, ConfigError> {
        Ok(Layer {
            stack: STACK.check_env(env)?,
            region: REGION.check_env(env)?,
            profile: PROFILE.check_env(env)?,
            profile_origin: env(PROFILE.var).map(|raw| format!("{}={raw}", PROFILE.var)),
            endpoint_url: ENDPOINT_URL.check_env(env)?,
            account: ACCOUNT.check_env(env)?,
            runtime: RUNTIME.check_env(env)?,
            memory_mb: MEMORY.check_env(env)?,
            timeout_s: TIMEOUT.check_env(env)?,
            log_retention_days: LOG_RETENTION.check_env(env)?,
            ..Layer::default()
        })
    }
}

/// Where a value came from, to point at it in an error.
enum Origin<'a> {
    Flag(&'static str),
    Env { var: &'static str, raw: &'a str },
    File { at: String, key: &'static str },
}

impl Origin<'_> {
    /// `--stage "x"`, `STEPGATE_STAGE=x` or `stepgate.toml line 3: region = "x"`.
    fn show(&self, value: &dyn fmt::Debug) -> String {
        match self {
            Origin::Flag(flag) => format!("{flag} {value:?}"),
            Origin::Env { var, raw } => format!("{var}={raw}"),
            Origin::File { at, key } => format!("{at}: {key} = {value:?}"),
        }
    }

    fn invalid(&self, value: &dyn fmt::Debug, problem: &str) -> ConfigError {
        ConfigError::Invalid {
            origin: self.show(value),
            problem: problem.to_owned(),
        }
    }
}

/// A check a value must pass, and what to say when it does not.
struct Rule<T> {
    ok: fn(&T) -> bool,
    problem: &'static str,
    /// A more specific problem for some values (a deprecated runtime).
    detail: Option<fn(&T) -> Option<String>>,
}

impl<T: fmt::Debug> Rule<T> {
    fn check(&self, value: T, origin: &Origin) -> Result<T, ConfigError> {
        if (self.ok)(&value) {
            return Ok(value);
        }
        match self.detail.and_then(|detail| detail(&value)) {
            Some(problem) => Err(origin.invalid(&value, &problem)),
            None => Err(origin.invalid(&value, self.problem)),
        }
    }
}

/// A setting the command line and environment can give, and the file under `key`.
struct Field<T> {
    flag: &'static str,
    var: &'static str,
    /// Empty for settings the file cannot give.
    key: &'static str,
    rule: Rule<T>,
}

impl<T: fmt::Debug + FromStr> Field<T> {
    fn check_flag(&self, value: Option<T>) -> Result<Option<T>, ConfigError> {
        value
            .map(|value| self.rule.check(value, &Origin::Flag(self.flag)))
            .transpose()
    }

    fn check_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<T>, ConfigError> {
        let Some(raw) = env(self.var) else {
            return Ok(None);
        };
        let origin = Origin::Env {
            var: self.var,
            raw: &raw,
        };
        // Only numbers can fail to parse (String's FromStr cannot). Digits that
        // overflow i32 are out of range rather than "not a number".
        let value = raw.parse().map_err(|_| {
            let digits = raw.strip_prefix('-').unwrap_or(&raw);
            let problem = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                self.rule.problem
            } else {
                "is not a whole number"
            };
            origin.invalid(&raw, problem)
        })?;
        self.rule.check(value, &origin).map(Some)
    }

    fn check_file(
        &self,
        file: &FileText,
        value: Option<Spanned<T>>,
    ) -> Result<Option<T>, ConfigError> {
        value
            .map(|value| {
                let origin = file.origin(value.span(), self.key);
                self.rule.check(value.into_inner(), &origin)
            })
            .transpose()
    }
}

const STACK: Field<String> = Field {
    flag: "--stack",
    var: "STEPGATE_STACK",
    key: "stack",
    rule: Rule {
        ok: |s| {
            s.len() <= 24
                && s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        },
        problem: "is not valid: start with a letter, then use letters, digits or '-' (at most 24 characters)",
        detail: None,
    },
};

const STAGE: Field<String> = Field {
    flag: "--stage",
    var: "STEPGATE_STAGE",
    key: "",
    rule: Rule {
        ok: |s| is_stage_name(s),
        problem: "is not valid: use letters, digits, '-' or '_' (at most 32 characters)",
        detail: None,
    },
};

const REGION: Field<String> = Field {
    flag: "--region",
    var: "STEPGATE_REGION",
    key: "region",
    rule: Rule {
        ok: |s| {
            let parts: Vec<&str> = s.split('-').collect();
            parts.len() >= 3
                && parts.iter().all(|part| {
                    !part.is_empty()
                        && part
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                })
        },
        problem: "is not an AWS region: expected a name like us-east-1 or eu-central-2",
        detail: None,
    },
};

const PROFILE: Field<String> = Field {
    flag: "--profile",
    var: "STEPGATE_PROFILE",
    key: "profile",
    rule: Rule {
        ok: |s| !s.is_empty(),
        problem: "is empty: name a profile from the AWS config or credentials file",
        detail: None,
    },
};

const ENDPOINT_URL: Field<String> = Field {
    flag: "--endpoint-url",
    var: "STEPGATE_ENDPOINT_URL",
    key: "",
    rule: Rule {
        ok: |s| {
            ["http://", "https://"]
                .iter()
                .any(|scheme| s.strip_prefix(scheme).is_some_and(|rest| !rest.is_empty()))
        },
        problem: "is not a URL: it must start with http:// or https://",
        detail: None,
    },
};

const ACCOUNT: Field<String> = Field {
    flag: "--account",
    var: "STEPGATE_ACCOUNT",
    key: "account",
    rule: Rule {
        ok: |s| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()),
        problem: "is not an AWS account ID: it must be exactly 12 digits",
        detail: None,
    },
};

const RUNTIME: Field<String> = Field {
    flag: "--runtime",
    var: "STEPGATE_RUNTIME",
    key: "runtime",
    rule: Rule {
        ok: |s| runtime::is_supported(s),
        problem: runtime::UNSUPPORTED,
        detail: Some(|s| runtime::deprecation(s)),
    },
};

const MEMORY: Field<i32> = Field {
    flag: "--memory",
    var: "STEPGATE_MEMORY",
    key: "memory",
    rule: Rule {
        ok: |mb| (128..=10240).contains(mb),
        problem: "is out of range; Lambda memory must be 128..=10240 MB",
        detail: None,
    },
};

const TIMEOUT: Field<i32> = Field {
    flag: "--timeout",
    var: "STEPGATE_TIMEOUT",
    key: "timeout",
    rule: Rule {
        ok: |s| (1..=900).contains(s),
        problem: "is out of range; a Lambda timeout must be 1..=900 seconds",
        detail: None,
    },
};

const LOG_RETENTION: Field<i32> = Field {
    flag: "--log-retention-days",
    var: "STEPGATE_LOG_RETENTION_DAYS",
    key: "log_retention_days",
    rule: Rule {
        ok: |days| LOG_RETENTION_DAYS.contains(days),
        problem: "is not a retention CloudWatch Logs allows; use one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653",
        detail: None,
    },
};

const BURST_LIMIT: Rule<i32> = Rule {
    ok: |burst| *burst >= 0,
    problem: "is negative; burst_limit must be 0 or more",
    detail: None,
};

const RATE_LIMIT: Rule<f64> = Rule {
    ok: |rate| rate.is_finite() && *rate >= 0.0,
    problem: "is not allowed; rate_limit must be a finite number, 0 or more",
    detail: None,
};

fn is_stage_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `stepgate.toml` as written. Spans let errors name the line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    stack: Option<Spanned<String>>,
    #[serde(default)]
    defaults: RawSection,
    #[serde(default)]
    stages: BTreeMap<Spanned<String>, RawSection>,
}

/// `[defaults]` or one `[stages.NAME]`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSection {
    region: Option<Spanned<String>>,
    account: Option<Spanned<String>>,
    runtime: Option<Spanned<String>>,
    memory: Option<Spanned<i32>>,
    timeout: Option<Spanned<i32>>,
    log_retention_days: Option<Spanned<i32>>,
    #[serde(default)]
    tags: BTreeMap<Spanned<String>, Spanned<String>>,
    throttling: Option<RawThrottling>,
    profile: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThrottling {
    burst_limit: Spanned<i32>,
    rate_limit: Spanned<f64>,
}

/// The config file, validated: `[defaults]` (carrying the top-level `stack`)
/// and each `[stages.NAME]`.
#[derive(Default)]
struct ConfigFile {
    defaults: Layer,
    stages: BTreeMap<String, Layer>,
}

impl ConfigFile {
    /// Reads and validates the whole file, every stage's section included,
    /// so a mistake is caught whichever stage runs.
    fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
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
        let mut stages = BTreeMap::new();
        for (name, section) in raw.stages {
            let table = format!("stages.{}", toml_key(name.get_ref()));
            if !is_stage_name(name.get_ref()) {
                return Err(ConfigError::Invalid {
                    origin: format!("{}: [{table}]", file.at(name.span())),
                    problem: STAGE.rule.problem.to_owned(),
                });
            }
            let layer = file.section(section, &table, &defaults.tags)?;
            stages.insert(name.into_inner(), layer);
        }
        Ok(ConfigFile { defaults, stages })
    }

    /// The stage's section over `[defaults]`; a stage without one gets `[defaults]`.
    fn for_stage(mut self, stage: &str) -> Layer {
        self.stages
            .remove(stage)
            .unwrap_or_default()
            .over(self.defaults)
    }
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

    fn origin(&self, span: Range<usize>, key: &'static str) -> Origin<'static> {
        Origin::File {
            at: self.at(span),
            key,
        }
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
            runtime: RUNTIME.check_file(self, raw.runtime)?,
            memory_mb: MEMORY.check_file(self, raw.memory)?,
            timeout_s: TIMEOUT.check_file(self, raw.timeout)?,
            log_retention_days: LOG_RETENTION.check_file(self, raw.log_retention_days)?,
            tags: self.tags(raw.tags, table, inherited_tags)?,
            throttling: raw.throttling.map(|raw| self.throttling(raw)).transpose()?,
            profile_origin: raw
                .profile
                .as_ref()
                .map(|p| self.origin(p.span(), PROFILE.key).show(p.get_ref())),
            profile: PROFILE.check_file(self, raw.profile)?,
            ..Layer::default()
        })
    }

    fn throttling(&self, raw: RawThrottling) -> Result<Throttling, ConfigError> {
        let burst_origin = self.origin(raw.burst_limit.span(), "burst_limit");
        let rate_origin = self.origin(raw.rate_limit.span(), "rate_limit");
        Ok(Throttling {
            burst_limit: BURST_LIMIT.check(raw.burst_limit.into_inner(), &burst_origin)?,
            rate_limit: RATE_LIMIT.check(raw.rate_limit.into_inner(), &rate_origin)?,
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
        let first_start = raw.keys().map(|key| key.span().start).min();
        let mut total = inherited.clone();
        let mut tags = BTreeMap::new();
        for (key, value) in raw {
            let origin = format!("{}: tag {:?}", self.at(key.span()), key.get_ref());
            let invalid = |problem: String| ConfigError::Invalid {
                origin: origin.clone(),
                problem,
            };
            let key_chars = key.get_ref().chars().count();
            if !(1..=128).contains(&key_chars) {
                return Err(invalid(format!(
                    "has a key of {key_chars} characters; tag keys must be 1..=128 characters"
                )));
            }
            let lowercase = key.get_ref().to_lowercase();
            if RESERVED_TAG_PREFIXES
                .iter()
                .any(|prefix| lowercase.starts_with(prefix))
            {
                return Err(invalid(
                    "is reserved: tag keys may not start with \"aws:\" or \"stepgate:\"".to_owned(),
                ));
            }
            for (text, part) in [(key.get_ref(), "keys"), (value.get_ref(), "values")] {
                if let Some(c) = crate::checks::tags::refused_char(text) {
                    return Err(invalid(format!(
                        "has a character AWS does not allow in tag {part} ({c:?}); use letters, digits, spaces and _ . : / = + - @"
                    )));
                }
            }
            let value_chars = value.get_ref().chars().count();
            if value_chars > 256 {
                return Err(invalid(format!(
                    "has a value of {value_chars} characters; tag values may have at most 256"
                )));
            }
            total.insert(key.get_ref().clone(), value.get_ref().clone());
            tags.insert(key.into_inner(), value.into_inner());
        }
        if total.len() > MAX_EXTRA_TAGS {
            let start = first_start.unwrap_or_default();
            return Err(ConfigError::Invalid {
                origin: format!("{}: [{table}.tags]", self.at(start..start)),
                problem: format!(
                    "brings the stage to {} tags; at most {MAX_EXTRA_TAGS} extra tags are allowed",
                    total.len()
                ),
            });
        }
        Ok(tags)
    }

    /// Turns toml's error, which spans several lines, into one line that
    /// names the line and the key.
    fn syntax_error(&self, error: &toml::de::Error) -> ConfigError {
        let message = one_line(error.message())
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

fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
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
    fn find(tree: &KeyTree, text: &str, span: &Range<usize>) -> Option<Vec<String>> {
        tree.0.iter().find_map(|(key, child)| {
            let names_span = key.span() == *span
                || text
                    .get(key.span().end..span.start)
                    .is_some_and(|between| between.trim() == "=");
            let mut path = if names_span {
                Vec::new()
            } else {
                find(child, text, span)?
            };
            path.insert(0, toml_key(key.get_ref()));
            Some(path)
        })
    }
    find(&toml::from_str(text).ok()?, text, span)
}

/// Every key of a TOML document with where it was written, nested as the
/// tables are; values other than tables are skipped.
#[derive(Default)]
struct KeyTree(Vec<(Spanned<String>, KeyTree)>);

impl<'de> Deserialize<'de> for KeyTree {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyTreeVisitor)
    }
}

struct KeyTreeVisitor;

impl<'de> Visitor<'de> for KeyTreeVisitor {
    type Value = KeyTree;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyTree, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key()? {
            entries.push((key, map.next_value()?));
        }
        Ok(KeyTree(entries))
    }

    // No setting lives in an array, so arrays (of tables) are skipped.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyTree, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(KeyTree::default())
    }

    fn visit_bool<E>(self, _: bool) -> Result<KeyTree, E> {
        Ok(KeyTree::default())
    }

    fn visit_i64<E>(self, _: i64) -> Result<KeyTree, E> {
        Ok(KeyTree::default())
    }

    fn visit_f64<E>(self, _: f64) -> Result<KeyTree, E> {
        Ok(KeyTree::default())
    }

    fn visit_str<E>(self, _: &str) -> Result<KeyTree, E> {
        Ok(KeyTree::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "stepgate-config-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            // A crashed run with the same pid may have left it behind.
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    /// Resolves with `dir` as the project directory, so the repository's own
    /// stepgate.toml is never picked up by accident.
    fn resolve_in(
        dir: &TempDir,
        cli: Overrides,
        vars: &[(&str, &str)],
    ) -> Result<Settings, ConfigError> {
        let cli = Overrides {
            project_dir: Some(dir.0.clone()),
            ..cli
        };
        Settings::resolve(&cli, &env_of(vars))
    }

    fn error_in(dir: &TempDir, cli: Overrides, vars: &[(&str, &str)]) -> String {
        match resolve_in(dir, cli, vars) {
            Ok(settings) => panic!("expected an error, got {settings:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn stage(name: &str) -> Overrides {
        Overrides {
            stage: Some(name.to_owned()),
            ..Overrides::default()
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn defaults_without_a_file() {
        let dir = TempDir::new();
        let settings = resolve_in(&dir, Overrides::default(), &[]).unwrap();
        assert_eq!(
            settings,
            Settings {
                project_dir: dir.0.clone(),
                project_dir_origin: Some(format!("--project-dir {}", dir.0.display())),
                config_file: None,
                stack: "orders".into(),
                stage: "dev".into(),
                region: None,
                profile: None,
                profile_origin: None,
                endpoint_url: None,
                account: None,
                lambda: LambdaSettings {
                    runtime: "nodejs22.x".into(),
                    memory_mb: 128,
                    timeout_s: 10,
                },
                log_retention_days: 14,
                tags: BTreeMap::new(),
                throttling: None,
            }
        );
    }

    #[test]
    fn command_line_beats_environment_beats_file_beats_defaults() {
        let dir = TempDir::new();
        dir.write(
            "stepgate.toml",
            r#"
stack = "file-stack"
[defaults]
region = "eu-west-1"
account = "111111111111"
runtime = "nodejs22.x"
memory = 256
timeout = 20
log_retention_days = 30
"#,
        );
        let cli = Overrides {
            region: Some("eu-west-3".into()),
            profile: Some("cli-profile".into()),
            runtime: Some("nodejs24.x".into()),
            memory_mb: Some(1024),
            ..Overrides::default()
        };
        let vars = [
            ("STEPGATE_STACK", "env-stack"),
            ("STEPGATE_REGION", "eu-west-2"),
            ("STEPGATE_PROFILE", "env-profile"),
            ("STEPGATE_ENDPOINT_URL", "http://127.0.0.1:4566"),
            ("STEPGATE_ACCOUNT", "222222222222"),
            ("STEPGATE_MEMORY", "512"),
        ];
        let settings = resolve_in(&dir, cli, &vars).unwrap();
        // Command line over environment over file.
        assert_eq!(settings.region.as_deref(), Some("eu-west-3"));
        assert_eq!(settings.lambda.memory_mb, 1024);
        // Command line over file.
        assert_eq!(settings.lambda.runtime, "nodejs24.x");
        // Command line over environment.
        assert_eq!(settings.profile.as_deref(), Some("cli-profile"));
        // Environment over file.
        assert_eq!(settings.stack, "env-stack");
        assert_eq!(settings.account.as_deref(), Some("222222222222"));
        // Environment over default.
        assert_eq!(
            settings.endpoint_url.as_deref(),
            Some("http://127.0.0.1:4566")
        );
        // File over defaults.
        assert_eq!(settings.lambda.timeout_s, 20);
        assert_eq!(settings.log_retention_days, 30);
    }

    const STAGED: &str = r#"
[defaults]
region = "us-east-1"
memory = 256
timeout = 30
[defaults.tags]
team = "payments"
owner = "alice"
[defaults.throttling]
burst_limit = 100
rate_limit = 50.0

[stages.prod]
region = "eu-west-1"
memory = 1024
[stages.prod.tags]
owner = "bob"
cost-center = "42"
[stages.prod.throttling]
burst_limit = 500
rate_limit = 250
"#;

    #[test]
    fn stage_section_overrides_defaults_and_merges_tags() {
        let dir = TempDir::new();
        dir.write("stepgate.toml", STAGED);

        let prod = resolve_in(&dir, Overrides::default(), &[("STEPGATE_STAGE", "prod")]).unwrap();
        assert_eq!(prod.stage, "prod");
        assert_eq!(prod.region.as_deref(), Some("eu-west-1"));
        assert_eq!(prod.lambda.memory_mb, 1024);
        assert_eq!(
            prod.lambda.timeout_s, 30,
            "not in [stages.prod]: from [defaults]"
        );
        assert_eq!(
            prod.tags,
            tags(&[
                ("team", "payments"),
                ("owner", "bob"),
                ("cost-center", "42")
            ])
        );
        assert_eq!(
            prod.throttling,
            Some(Throttling {
                burst_limit: 500,
                rate_limit: 250.0
            })
        );

        // A stage without a section gets [defaults]; --stage beats STEPGATE_STAGE.
        let dev = resolve_in(&dir, stage("dev"), &[("STEPGATE_STAGE", "prod")]).unwrap();
        assert_eq!(dev.stage, "dev");
        assert_eq!(dev.region.as_deref(), Some("us-east-1"));
        assert_eq!(dev.lambda.memory_mb, 256);
        assert_eq!(dev.tags, tags(&[("team", "payments"), ("owner", "alice")]));
        assert_eq!(
            dev.throttling,
            Some(Throttling {
                burst_limit: 100,
                rate_limit: 50.0
            })
        );
    }

    #[test]
    fn the_profile_comes_from_any_layer_and_knows_where() {
        let dir = TempDir::new();
        let path = dir.write(
            "stepgate.toml",
            "[defaults]\nprofile = \"dev-account\"\n[stages.prod]\nprofile = \"prod-account\"\n",
        );
        let shown = path.display();
        for (cli, vars, profile, origin) in [
            (
                stage("dev"),
                &[][..],
                "dev-account",
                format!("{shown} line 2: profile = \"dev-account\""),
            ),
            (
                stage("prod"),
                &[],
                "prod-account",
                format!("{shown} line 4: profile = \"prod-account\""),
            ),
            (
                stage("prod"),
                &[("STEPGATE_PROFILE", "ops")],
                "ops",
                "STEPGATE_PROFILE=ops".to_string(),
            ),
            (
                Overrides {
                    profile: Some("mine".into()),
                    ..stage("prod")
                },
                &[("STEPGATE_PROFILE", "ops")],
                "mine",
                "--profile \"mine\"".to_string(),
            ),
        ] {
            let settings = resolve_in(&dir, cli, vars).unwrap();
            assert_eq!(settings.profile.as_deref(), Some(profile));
            assert_eq!(settings.profile_origin, Some(origin));
        }
        dir.write("stepgate.toml", "[stages.qa]\nprofile = \"\"\n");
        assert!(error_in(&dir, Overrides::default(), &[])
            .ends_with("line 2: profile = \"\" is empty: name a profile from the AWS config or credentials file"));
    }

    #[test]
    fn unknown_key_names_file_line_and_table() {
        let dir = TempDir::new();
        let path = dir.write(
            "stepgate.toml",
            "stack = \"orders\"\n\n[defaults]\nmemory = 128\n\n[stages.prod]\nmemroy = 256\n",
        );
        let error = resolve_in(&dir, Overrides::default(), &[]).unwrap_err();
        assert!(matches!(error, ConfigError::Syntax { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!(
                "{} line 7: unknown key `memroy` in [stages.prod]; expected one of: \
                 region, account, runtime, memory, timeout, log_retention_days, tags, throttling, profile",
                path.display()
            )
        );

        // The table is found however the file spells it.
        for (text, expected) in [
            (
                "\nstak = \"orders\"\n",
                "line 2: unknown key `stak` at the top level; expected one of: stack, defaults, stages",
            ),
            (
                "[stages]\nqa = { timeout = 5, burst = 1 }\n",
                "line 2: unknown key `burst` in [stages.qa]; expected one of: region,",
            ),
            (
                "[defaults]\nthrottling.burst_limit = 1\nthrottling.rate_limit = 2\nthrottling.rate = 3\n",
                "line 4: unknown key `rate` in [defaults.throttling]; expected one of: burst_limit, rate_limit",
            ),
        ] {
            let path = dir.write("stepgate.toml", text);
            let message = error_in(&dir, Overrides::default(), &[]);
            assert!(
                message.starts_with(&format!("{} {expected}", path.display())),
                "{text:?} gave {message}"
            );
        }
    }

    #[test]
    fn out_of_range_file_value_names_file_and_line() {
        let dir = TempDir::new();
        let path = dir.write(
            "stepgate.toml",
            "[defaults]\nmemory = 128\n\n[defaults.tags]\nteam = \"payments\"\n\n\
             [stages.prod]\nregion = \"eu-west-1\"\nmemory = 64\n",
        );
        // The whole file is checked, not only the stage being run (dev here).
        assert_eq!(
            error_in(&dir, Overrides::default(), &[]),
            format!(
                "{} line 9: memory = 64 is out of range; Lambda memory must be 128..=10240 MB",
                path.display()
            )
        );
        // The command line overriding the value does not hide the mistake.
        let cli = Overrides {
            memory_mb: Some(256),
            ..Overrides::default()
        };
        assert!(error_in(&dir, cli, &[]).contains("line 9: memory = 64"));
    }

    #[test]
    fn malformed_file_gives_one_line_with_its_line_number() {
        let dir = TempDir::new();
        for (text, expected) in [
            (
                "[defaults]\ntimeout = \"ten\"\n",
                "line 2: defaults.timeout: invalid type: string \"ten\", expected a whole number",
            ),
            (
                "[defaults]\nthrottling = { burst_limit = 1 }\n",
                "line 2: defaults.throttling: missing field `rate_limit`",
            ),
            ("[defaults]\n\n[stages.prod\n", "line 3: "),
            (
                "[defaults.throttling]\nburst_limit = 10\n",
                "line 1: missing field `rate_limit`",
            ),
            (
                "[stages.\"my stage\"]\nmemory = 256\n",
                "line 1: [stages.\"my stage\"] is not valid: use letters, digits, '-' or '_'",
            ),
        ] {
            let path = dir.write("stepgate.toml", text);
            let message = error_in(&dir, Overrides::default(), &[]);
            assert!(
                message.starts_with(&format!("{} {expected}", path.display())),
                "{text:?} gave {message}"
            );
            assert!(!message.contains('\n'), "{text:?} gave {message}");
        }
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let dir = TempDir::new();
        for (var, value, expected) in [
            ("STEPGATE_MEMORY", "abc", "STEPGATE_MEMORY=abc is not a whole number"),
            (
                "STEPGATE_MEMORY",
                "64",
                "STEPGATE_MEMORY=64 is out of range; Lambda memory must be 128..=10240 MB",
            ),
            (
                "STEPGATE_TIMEOUT",
                "99999999999",
                "STEPGATE_TIMEOUT=99999999999 is out of range; a Lambda timeout must be 1..=900 seconds",
            ),
            (
                "STEPGATE_ACCOUNT",
                "1234",
                "STEPGATE_ACCOUNT=1234 is not an AWS account ID: it must be exactly 12 digits",
            ),
        ] {
            assert_eq!(
                error_in(&dir, Overrides::default(), &[(var, value)]),
                expected
            );
        }
        // Checked even where the command line wins.
        let cli = Overrides {
            region: Some("us-east-1".into()),
            ..Overrides::default()
        };
        assert!(error_in(&dir, cli, &[("STEPGATE_REGION", "Ireland")])
            .starts_with("STEPGATE_REGION=Ireland is not an AWS region"));
    }

    #[test]
    fn empty_environment_values_count_as_unset() {
        let dir = TempDir::new();
        let vars = [
            ("STEPGATE_STAGE", ""),
            ("STEPGATE_MEMORY", ""),
            ("STEPGATE_CONFIG", ""),
        ];
        let settings = resolve_in(&dir, Overrides::default(), &vars).unwrap();
        assert_eq!(settings.stage, "dev");
        assert_eq!(settings.lambda.memory_mb, 128);
        assert_eq!(settings.config_file, None);
    }

    #[test]
    fn bad_stage_name_is_rejected() {
        let dir = TempDir::new();
        assert_eq!(
            error_in(&dir, stage("my stage"), &[]),
            "--stage \"my stage\" is not valid: use letters, digits, '-' or '_' (at most 32 characters)"
        );
        assert!(resolve_in(&dir, stage(&"s".repeat(32)), &[]).is_ok());
        assert!(resolve_in(&dir, stage(&"s".repeat(33)), &[]).is_err());
        assert!(
            error_in(&dir, Overrides::default(), &[("STEPGATE_STAGE", "a.b")])
                .starts_with("STEPGATE_STAGE=a.b is not valid")
        );
    }

    #[test]
    fn explicitly_named_config_must_exist() {
        let dir = TempDir::new();
        let missing = dir.0.join("nope.toml");
        let cli = Overrides {
            config: Some(missing.clone()),
            ..Overrides::default()
        };
        let error = resolve_in(&dir, cli, &[]).unwrap_err();
        assert!(matches!(error, ConfigError::NotFound { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!("--config {}: file not found", missing.display())
        );

        let var = missing.to_str().unwrap();
        assert_eq!(
            error_in(&dir, Overrides::default(), &[("STEPGATE_CONFIG", var)]),
            format!("STEPGATE_CONFIG={var}: file not found")
        );

        let cli = Overrides {
            project_dir: Some(missing.clone()),
            ..Overrides::default()
        };
        assert_eq!(
            Settings::resolve(&cli, &env_of(&[]))
                .unwrap_err()
                .to_string(),
            format!("--project-dir {}: directory not found", missing.display())
        );
    }

    #[test]
    fn default_file_is_read_from_the_project_dir() {
        let dir = TempDir::new();
        let default_file = dir.write("stepgate.toml", "stack = \"shop\"\n");
        let settings = resolve_in(&dir, Overrides::default(), &[]).unwrap();
        assert_eq!(settings.stack, "shop");
        assert_eq!(settings.config_file, Some(default_file));

        // A config named explicitly replaces it.
        let other = dir.write("other.toml", "stack = \"market\"\n");
        let cli = Overrides {
            config: Some(other.clone()),
            ..Overrides::default()
        };
        let settings = resolve_in(&dir, cli, &[]).unwrap();
        assert_eq!(settings.stack, "market");
        assert_eq!(settings.config_file, Some(other));
    }

    #[test]
    fn values_outside_the_rules_are_rejected() {
        let dir = TempDir::new();
        let stack = |v: &str| Overrides {
            stack: Some(v.into()),
            ..Default::default()
        };
        let region = |v: &str| Overrides {
            region: Some(v.into()),
            ..Default::default()
        };
        let profile = |v: &str| Overrides {
            profile: Some(v.into()),
            ..Default::default()
        };
        let endpoint = |v: &str| Overrides {
            endpoint_url: Some(v.into()),
            ..Default::default()
        };
        let account = |v: &str| Overrides {
            account: Some(v.into()),
            ..Default::default()
        };
        let runtime = |v: &str| Overrides {
            runtime: Some(v.into()),
            ..Default::default()
        };
        let memory = |v| Overrides {
            memory_mb: Some(v),
            ..Default::default()
        };
        let timeout = |v| Overrides {
            timeout_s: Some(v),
            ..Default::default()
        };
        let retention = |v| Overrides {
            log_retention_days: Some(v),
            ..Default::default()
        };
        let cases = [
            (stack("a-1"), true),
            (stack(&"a".repeat(24)), true),
            (stack(&"a".repeat(25)), false),
            (stack("1abc"), false),
            (stack("my_stack"), false),
            (region("us-gov-west-1"), true),
            (region("cn-north-1"), true),
            (region("eu-central-2"), true),
            (region("us-east"), false),
            (region("US-EAST-1"), false),
            (region("us--1"), false),
            (profile("work"), true),
            (profile(""), false),
            (endpoint("https://x.example"), true),
            (endpoint("localhost:4566"), false),
            (endpoint("http://"), false),
            (account("012345678901"), true),
            (account("12345678901"), false),
            (account("12345678901a"), false),
            (runtime("nodejs22.x"), true),
            (runtime("nodejs24.x"), true),
            (runtime("nodejs20.x"), false),
            (runtime("nodejs14.x"), false),
            (runtime("nodejs999.x"), false),
            (runtime("python3.12"), false),
            (runtime("nodejs.x"), false),
            (runtime("nodejs22"), false),
            (memory(128), true),
            (memory(10240), true),
            (memory(127), false),
            (memory(10241), false),
            (timeout(1), true),
            (timeout(900), true),
            (timeout(0), false),
            (timeout(901), false),
            (retention(3653), true),
            (retention(2), false),
        ];
        for (cli, valid) in cases {
            let result = resolve_in(&dir, cli.clone(), &[]);
            assert_eq!(result.is_ok(), valid, "{cli:?} gave {result:?}");
        }
        let message = error_in(&dir, retention(2), &[]);
        let allowed: Vec<String> = LOG_RETENTION_DAYS.iter().map(i32::to_string).collect();
        assert!(message.ends_with(&allowed.join(", ")), "{message}");
    }

    #[test]
    fn file_tags_and_throttling_are_checked() {
        let dir = TempDir::new();
        let many: String = (0..30).map(|i| format!("t{i} = \"x\"\n")).collect();
        let more: String = (30..41).map(|i| format!("t{i} = \"x\"\n")).collect();
        for (text, expected) in [
            (
                "[defaults.tags]\n\"aws:owner\" = \"me\"\n".to_owned(),
                "line 2: tag \"aws:owner\" is reserved: tag keys may not start with \"aws:\" or \"stepgate:\"",
            ),
            (
                "[stages.prod.tags]\n\"Stepgate:stack\" = \"x\"\n".to_owned(),
                "line 2: tag \"Stepgate:stack\" is reserved",
            ),
            (
                "[defaults.tags]\n\"cost#center\" = \"42\"\n".to_owned(),
                "line 2: tag \"cost#center\" has a character AWS does not allow in tag keys ('#')",
            ),
            (
                "[stages.prod.tags]\nteam = \"a|b\"\n".to_owned(),
                "line 2: tag \"team\" has a character AWS does not allow in tag values ('|')",
            ),
            (
                format!("[defaults.tags]\nnote = \"{}\"\n", "x".repeat(257)),
                "line 2: tag \"note\" has a value of 257 characters; tag values may have at most 256",
            ),
            (
                format!("[defaults.tags]\n{many}\n[stages.prod.tags]\n{more}"),
                "line 34: [stages.prod.tags] brings the stage to 41 tags; at most 40 extra tags are allowed",
            ),
            (
                "[defaults.throttling]\nburst_limit = -1\nrate_limit = 1.0\n".to_owned(),
                "line 2: burst_limit = -1 is negative; burst_limit must be 0 or more",
            ),
            (
                "[stages.prod.throttling]\nburst_limit = 1\nrate_limit = inf\n".to_owned(),
                "line 3: rate_limit = inf is not allowed",
            ),
        ] {
            let path = dir.write("stepgate.toml", &text);
            let message = error_in(&dir, Overrides::default(), &[]);
            assert!(
                message.starts_with(&format!("{} {expected}", path.display())),
                "{expected:?} gave {message}"
            );
        }
        // Exactly at the limit is fine, and a tag may be 256 characters long.
        let text = format!(
            "[defaults.tags]\n{many}\n[stages.prod.tags]\n{}\nlong = \"{}\"\n",
            (30..39)
                .map(|i| format!("t{i} = \"x\"\n"))
                .collect::<String>(),
            "x".repeat(256)
        );
        dir.write("stepgate.toml", &text);
        assert_eq!(resolve_in(&dir, stage("prod"), &[]).unwrap().tags.len(), 40);
    }

    /// The example at the repository root must describe the tutorial stack's
    /// defaults exactly, and its commented-out settings must stay valid.
    #[test]
    fn repository_example_matches_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("stepgate.toml");
        let dir = TempDir::new();
        for name in ["dev", "prod"] {
            let without = resolve_in(&dir, stage(name), &[]).unwrap();
            let cli = Overrides {
                config: Some(example.clone()),
                ..stage(name)
            };
            let mut with = resolve_in(&dir, cli, &[]).unwrap();
            assert_eq!(with.config_file.as_deref(), Some(example.as_path()));
            with.config_file = None;
            assert_eq!(with, without, "stage {name}");
        }

        // Settings are commented out as "# key = value" or "# [table]".
        let text = std::fs::read_to_string(&example).unwrap();
        let mut uncommented_lines = 0;
        let uncommented: String = text
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest)
                    if rest.starts_with('[')
                        || rest
                            .split_once(" = ")
                            .is_some_and(|(key, _)| toml_key(key) == key) =>
                {
                    uncommented_lines += 1;
                    format!("{rest}\n")
                }
                _ => format!("{line}\n"),
            })
            .collect();
        assert!(uncommented_lines >= 10, "{uncommented}");
        let cli = Overrides {
            config: Some(dir.write("uncommented.toml", &uncommented)),
            ..stage("prod")
        };
        let prod = resolve_in(&dir, cli, &[]).unwrap();
        assert_eq!(prod.region.as_deref(), Some("eu-west-1"));
        assert_eq!(prod.lambda.memory_mb, 256);
    }
}
