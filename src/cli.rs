//! The command line. Only parsing lives here; `commands` does the work.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::Overrides;
use crate::output::Format;

#[derive(Parser, Debug)]
#[command(
    name = "stepgate",
    version,
    about = "Deploy and tear down serverless workflow stacks (API Gateway routes, Step Functions, Lambda, IAM) on AWS",
    after_help = "Exit codes: 0 success, 1 error, 2 `plan --detailed-exitcode` found changes, 130/143 interrupted (Ctrl-C, SIGTERM).\n\
                  Credentials, region and endpoint come from the standard AWS chain (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...).\n\
                  Colour and live progress on a terminal only; NO_COLOR and CLICOLOR_FORCE are honoured.\n\n\
                  Example:\n  stepgate plan --stage dev && stepgate deploy --stage dev"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: TopLevel,
}

/// Every subcommand: the stack commands, and the ones about stepgate itself.
#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once, moved once
pub enum TopLevel {
    #[command(flatten)]
    Stack(Command),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  stepgate completions bash > ~/.local/share/bash-completion/completions/stepgate"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the IAM policy a deployer role needs for this stack.
    ///
    /// Least privilege for every stepgate command, any stage, region and
    /// account; docs/deployer-policy.json is the default stack's.
    #[command(
        after_help = "Example:\n  stepgate deployer-policy --stack orders > deployer-policy.json\n  aws iam put-role-policy --role-name deployer --policy-name stepgate --policy-document file://deployer-policy.json"
    )]
    DeployerPolicy {
        /// The stack [default: stack in ./stepgate.toml, else orders]
        #[arg(long)]
        stack: Option<String>,
        /// The AWS partition the role lives in
        #[arg(long, default_value = "aws", value_parser = ["aws", "aws-cn", "aws-us-gov"])]
        partition: String,
        /// The project whose stepgate.toml gives the stack and the names
        /// it overrides (each named resource joins the policy) [default: .]
        #[arg(long, value_name = "DIR")]
        project_dir: Option<PathBuf>,
        /// Add the read-only calls `stepgate adopt` makes on whatever a
        /// stack built by hand holds (Get, List, Describe on any resource)
        #[arg(long)]
        adopt: bool,
    },
    /// Write a new project that deploys as it is, from an example.
    ///
    /// lambdas/ (each function with a node test), definitions/,
    /// stepgate.toml with its routes, a README with the commands that
    /// matter, and a .gitignore. Refuses a directory that is not empty
    /// (hidden entries such as .git aside) unless --force.
    #[command(
        after_help = "Example:\n  stepgate init my-orders && cd my-orders && stepgate deploy\n  stepgate init recipes --example recipes"
    )]
    Init {
        /// Where to write it, created if missing [default: .]
        dir: Option<PathBuf>,
        /// orders: the tutorial (an order routed on its payment status);
        /// recipes: a Parallel state; quote: a synchronous Express route;
        /// guarded: a route behind a Lambda authorizer
        #[arg(long, value_enum, default_value = "orders")]
        example: crate::examples::Example,
        /// Write into a directory that is not empty, over files of the same name
        #[arg(long)]
        force: bool,
    },
    /// Draw the stack, or one state machine's states, as Mermaid or DOT.
    ///
    /// The stack: routes, the state machines they start, the functions
    /// those call, and each role beside what runs as it. With
    /// --state-machine, that machine's states and transitions. Made from
    /// the project's files alone: no AWS call, no credentials.
    #[command(
        after_help = "Example:\n  stepgate graph > stack.mmd\n  stepgate graph --format dot --state-machine OrderProcessor | dot -Tsvg > states.svg"
    )]
    Graph {
        /// Mermaid (GitHub renders it in Markdown) or Graphviz DOT
        #[arg(long, value_enum, default_value = "mermaid")]
        format: crate::graph::render::Format,
        /// Draw this state machine's states instead of the stack
        #[arg(long, value_name = "NAME")]
        state_machine: Option<String>,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Write the man pages (stepgate.1 and one per command).
    #[command(
        after_help = "Example:\n  stepgate man --out-dir target/man && man target/man/stepgate.1"
    )]
    Man {
        /// Directory to write them to; without it, stepgate.1 goes to stdout.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create or update the whole stack; a second run changes nothing.
    #[command(
        after_help = "Example:\n  stepgate deploy --stage prod --account 123456789012 --outputs-file outputs.json"
    )]
    Deploy {
        #[command(flatten)]
        common: Common,
        /// Write the stack's outputs (JSON) here for the next pipeline step.
        #[arg(long, value_name = "PATH")]
        outputs_file: Option<PathBuf>,
        /// Take (tag, then change) the untagged resources stepgate.toml
        /// names and plan lists as adopt; never another stack's.
        #[arg(long)]
        adopt: bool,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Show what deploy would change, field by field. Never changes anything.
    #[command(
        after_help = "Example:\n  stepgate plan --stage prod --detailed-exitcode\n  stepgate plan --stage prod --output markdown > plan.md && gh pr comment --edit-last --create-if-none --body-file plan.md"
    )]
    Plan {
        #[command(flatten)]
        common: Common,
        /// Exit 0 when nothing would change, 2 when something would, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// List the resources that would not change too (the text shows
        /// only what changes; the JSON always lists every resource).
        #[arg(long)]
        show_unchanged: bool,
    },
    /// Write a project for a stack built by hand (in the console), from its
    /// REST API or its state machine, so that stepgate manages it in place.
    ///
    /// Follows API -> stage -> methods -> integrations -> state machine ->
    /// definition -> functions -> roles, and writes lambdas/ (the deployed
    /// code), definitions/ (ARNs as placeholders), models/, policies/ and
    /// stepgate.toml with name overrides. Reads only; changes nothing in AWS.
    #[command(after_help = "Example:
  stepgate adopt --api OrderProcessorAPI --stage dev --state-machine OrderProcessor --into orders
  cd orders && stepgate plan --stage dev && stepgate deploy --stage dev --adopt")]
    Adopt {
        #[command(flatten)]
        common: Common,
        /// The REST API to start from: its name or id
        #[arg(
            long,
            value_name = "NAME_OR_ID",
            required_unless_present = "state_machine"
        )]
        api: Option<String>,
        /// The state machine (name or ARN): to start from, or the one a
        /// route starts when its client names the machine in the body
        #[arg(long, value_name = "NAME")]
        state_machine: Option<String>,
        /// Where to write the project (empty or absent, unless --force)
        #[arg(long, value_name = "DIR")]
        into: PathBuf,
        /// Write into a directory that holds files already, replacing the
        /// files adopt writes
        #[arg(long)]
        force: bool,
    },
    /// Delete everything this stack and stage own, in reverse order.
    #[command(after_help = "Example:\n  stepgate destroy --stage pr-42 --yes")]
    Destroy {
        #[command(flatten)]
        common: Common,
        /// Do not ask for confirmation (required without a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Remove the stage's lock, left by a deploy or destroy that died.
    #[command(after_help = "Example:\n  stepgate unlock --stage prod")]
    Unlock {
        #[command(flatten)]
        common: Common,
    },
    /// Print the deployed stack's outputs (API URL, ARNs, log groups).
    #[command(
        after_help = "Example:\n  stepgate outputs --stage prod --output json | jq -r .outputs.api_url"
    )]
    Outputs {
        #[command(flatten)]
        common: Common,
    },
    /// Call a route of the deployed API and wait for its result.
    #[command(
        after_help = "Example:\n  stepgate invoke --stage dev --payment-status FAILED\n  stepgate invoke --route 'POST /recipes/r42/move' --order '{\"user_id\":\"u7\"}'"
    )]
    Invoke {
        #[command(flatten)]
        common: Common,
        /// The route: METHOD and path, with values for its parameters
        /// (`POST /recipes/r42/move`); the only route without it.
        #[arg(long, value_name = "ROUTE")]
        route: Option<String>,
        /// The order as JSON, or @FILE to read it from a file.
        #[arg(long, default_value = crate::invoke::SAMPLE_ORDER)]
        order: String,
        /// Shortcut: the sample order with this paymentStatus (e.g. FAILED).
        #[arg(long, value_name = "STATUS", conflicts_with = "order")]
        payment_status: Option<String>,
        /// For an api_key route: the key of [api] keys to send (default the first)
        #[arg(long, value_name = "NAME")]
        api_key_name: Option<String>,
        /// For a route with an authorizer: the token to send as Authorization
        #[arg(long, value_name = "TOKEN")]
        token: Option<String>,
    },
    /// List the stage's API keys: names, ids and usage; values only with --reveal.
    #[command(
        after_help = "Example:\n  stepgate keys --stage prod\n  stepgate keys --stage prod --reveal"
    )]
    Keys {
        #[command(flatten)]
        common: Common,
        /// Also print each key's value (a secret: mind where the output goes)
        #[arg(long)]
        reveal: bool,
    },
    /// List the state machine's recent executions, newest first.
    ///
    /// Each with its status, start, duration, the order's orderId and the
    /// result (orderDetails.status of the output) or the error.
    #[command(
        after_help = "Example:\n  stepgate executions --stage prod --limit 5 --status FAILED"
    )]
    Executions {
        #[command(flatten)]
        common: Common,
        /// Whose executions: a state machine of the project; the only one without it
        #[arg(long, value_name = "NAME")]
        state_machine: Option<String>,
        /// How many of the most recent executions to list (1 to 1000)
        #[arg(long, value_name = "N", default_value_t = 20, allow_negative_numbers = true,
              value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
        /// Only executions with this status
        #[arg(long, value_name = "STATUS", ignore_case = true,
              value_parser = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"])]
        status: Option<String>,
    },
    /// Move the state machine's `live` alias back to an earlier version.
    ///
    /// Routes start executions on `live`: this moves it (and nothing else),
    /// in one call, under the stage's lock, to the version before the one it
    /// serves or to --to. Running executions finish on the version they
    /// started on. The next deploy moves `live` to what the project
    /// declares again.
    #[command(after_help = "Example:
  stepgate rollback --stage prod
  stepgate rollback --stage prod --to 3")]
    Rollback {
        #[command(flatten)]
        common: Common,
        /// Whose alias: a state machine of the project; the only one without it
        #[arg(long, value_name = "NAME")]
        state_machine: Option<String>,
        /// The version to serve [default: the one before the version `live` serves]
        #[arg(long, value_name = "VERSION", value_parser = clap::value_parser!(u64).range(1..))]
        to: Option<u64>,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// List the state machine's published versions, newest first.
    ///
    /// Each with when it was published, its description (the git commit and
    /// the deployer) and the share of executions `live` starts on it.
    #[command(after_help = "Example:
  stepgate history --stage prod --output json")]
    History {
        #[command(flatten)]
        common: Common,
        /// Whose versions: a state machine of the project; the only one without it
        #[arg(long, value_name = "NAME")]
        state_machine: Option<String>,
    },
    /// Print the stack's log events from CloudWatch Logs, oldest first.
    ///
    /// The functions' log groups, the state machine's and the API's access
    /// log, merged by time; with --follow, new events as they come until
    /// Ctrl-C.
    #[command(
        after_help = "Example:\n  stepgate logs completeOrder --since 1h\n  stepgate logs api --since 5m\n  stepgate logs --follow"
    )]
    Logs {
        #[command(flatten)]
        common: Common,
        /// Whose logs: a function, a state machine, or `api` (the API's access
        /// log); all of them without it
        source: Option<String>,
        /// How far back to start (e.g. 30s, 10m, 2h; at most 3653d)
        #[arg(long, value_name = "DURATION", default_value = "10m", allow_hyphen_values = true,
              value_parser = parse_since)]
        since: std::time::Duration,
        /// Keep polling for new events (every second) until Ctrl-C
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

impl Command {
    pub fn common(&self) -> &Common {
        match self {
            Command::Deploy { common, .. }
            | Command::Plan { common, .. }
            | Command::Destroy { common, .. }
            | Command::Outputs { common }
            | Command::Unlock { common }
            | Command::Invoke { common, .. }
            | Command::Keys { common, .. }
            | Command::Executions { common, .. }
            | Command::Rollback { common, .. }
            | Command::History { common, .. }
            | Command::Logs { common, .. }
            | Command::Adopt { common, .. } => common,
        }
    }
}

/// Where the project is, for the commands that read only its files.
#[derive(Args, Debug, Clone)]
pub struct ProjectArgs {
    /// Stage whose per-stage settings apply [default: dev]
    #[arg(long)]
    pub stage: Option<String>,
    /// Directory holding lambdas/, definitions/ and policies/ [default: .]
    #[arg(long, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    /// Config file [default: <project-dir>/stepgate.toml if present]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ProjectArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            project_dir: self.project_dir.clone(),
            stage: self.stage.clone(),
            ..Overrides::default()
        }
    }
}

/// How deploy and destroy treat a stage another run holds.
#[derive(Args, Debug, Clone, Copy)]
pub struct LockArgs {
    /// Wait this long for another deploy or destroy of the stage to finish
    /// (e.g. 30s, 5m; at most 24h) instead of failing at once
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true,
          value_parser = parse_lock_timeout)]
    pub lock_timeout: Option<std::time::Duration>,
}

/// The longest `logs --since`: 3653 days, the longest retention CloudWatch
/// Logs offers (and stepgate sets), so no event is older.
pub const MAX_SINCE: Duration = Duration::from_secs(3653 * 86_400);
/// The longest `--lock-timeout`: a day. A deploy holds the lock for minutes.
pub const MAX_LOCK_TIMEOUT: Duration = Duration::from_secs(86_400);

fn parse_since(text: &str) -> Result<Duration, String> {
    bounded_duration(
        text,
        MAX_SINCE,
        "3653d, the longest CloudWatch Logs keeps events",
    )
}

fn parse_lock_timeout(text: &str) -> Result<Duration, String> {
    bounded_duration(text, MAX_LOCK_TIMEOUT, "24h")
}

/// A duration from 0 to `max` (`longest` says what that is): every later
/// sum or difference with it fits, so none can overflow. A negative one is
/// named as such (the flag takes values that start with '-' for that).
fn bounded_duration(text: &str, max: Duration, longest: &str) -> Result<Duration, String> {
    let example = "write a duration such as 90s, 5m or 1h";
    if let Some(magnitude) = text.strip_prefix('-') {
        return Err(match humantime::parse_duration(magnitude) {
            Ok(_) => format!("a duration cannot be negative; {example}"),
            Err(_) => format!("not a duration; {example}"),
        });
    }
    let duration = humantime::parse_duration(text).map_err(|e| format!("{e}; {example}"))?;
    if duration > max {
        return Err(format!("longer than {longest}; give at most that"));
    }
    Ok(duration)
}

/// Options every command takes. The stack settings also come from
/// STEPGATE_* variables and stepgate.toml; see docs/configuration.md.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Stage to work on; each stage is a separate copy of the stack [default: dev]
    #[arg(long)]
    pub stage: Option<String>,
    /// Stack name, the first part of every resource name [default: orders]
    #[arg(long)]
    pub stack: Option<String>,
    /// AWS region (else the AWS chain: AWS_REGION, profile)
    #[arg(long)]
    pub region: Option<String>,
    /// AWS profile (else AWS_PROFILE)
    #[arg(long)]
    pub profile: Option<String>,
    /// Send AWS requests here, e.g. a local emulator (else AWS_ENDPOINT_URL)
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Refuse to run unless the credentials belong to this account
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// Assume this IAM role (STS AssumeRole) before anything else: how a
    /// pipeline deploys into another account
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// The external ID the role's trust policy requires (with --role-arn)
    #[arg(long, value_name = "ID")]
    pub external_id: Option<String>,
    /// Directory holding lambdas/, definitions/ and policies/ [default: .]
    #[arg(long, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    /// Config file [default: <project-dir>/stepgate.toml if present]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Lambda runtime [default: nodejs22.x]
    #[arg(long)]
    pub runtime: Option<String>,
    /// Lambda memory in MB [default: 128]
    #[arg(long, value_name = "MB", allow_negative_numbers = true)]
    pub memory: Option<i32>,
    /// Lambda timeout in seconds [default: 10]
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub timeout: Option<i32>,
    /// Retention of the stack's log groups, in days [default: 14]
    #[arg(long, value_name = "DAYS", allow_negative_numbers = true)]
    pub log_retention_days: Option<i32>,
    /// The API stage's execution-logging level: OFF, ERROR or INFO [default: ERROR]
    #[arg(long, value_name = "LEVEL")]
    pub api_log_level: Option<String>,
    /// Result format on stdout (markdown: plan only, for a pull-request comment)
    #[arg(long, value_enum, default_value = "text")]
    pub output: Format,
    /// No progress lines on stderr
    #[arg(long, short)]
    pub quiet: bool,
    /// Log each AWS call (service, operation, status, duration, retries)
    /// and where the credentials come from; -vv adds the AWS SDK's own
    /// debug events. Never credentials.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

impl Common {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            project_dir: self.project_dir.clone(),
            stack: self.stack.clone(),
            stage: self.stage.clone(),
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
            account: self.account.clone(),
            role_arn: self.role_arn.clone(),
            external_id: self.external_id.clone(),
            runtime: self.runtime.clone(),
            memory_mb: self.memory,
            timeout_s: self.timeout,
            log_retention_days: self.log_retention_days,
            api_log_level: self.api_log_level.clone(),
        }
    }
}
