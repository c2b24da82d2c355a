//! The facts a command reports, as plain data: what the JSON document and
//! the printer show. A leaf: it names no other module of stepgate, so the
//! modules that produce these facts (aws, engine, lock) and the one that
//! prints them (output) depend on it, never on each other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// AWS calls made, for the reports: tests and benchmarks count them.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Calls {
    pub total: u32,
    /// Calls that change the stack; the lock's own calls are not counted
    /// here, so a converged deploy still reports 0.
    pub mutating: u32,
    /// Calls that take, read or release the stage's lock.
    pub lock: u32,
    pub by_operation: BTreeMap<String, u32>,
}

/// How an execution ended.
#[derive(Clone, Debug, Serialize)]
pub struct ExecutionResult {
    pub execution_arn: String,
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// One execution as `stepgate executions` lists it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ExecutionSummary {
    pub name: String,
    pub execution_arn: String,
    pub status: String,
    /// RFC 3339, UTC.
    pub start: String,
    pub stop: Option<String>,
    /// Until stop, or until now while it runs.
    pub duration_seconds: f64,
    /// `orderId` of the execution's input.
    pub order_id: Option<String>,
    /// `orderDetails.status` of its output (Approved, Rejected).
    pub result: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// One log event as `stepgate logs` prints it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LogEvent {
    /// Which of the stack's log groups: completeOrder, cancelOrder, states, api.
    pub source: String,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    #[serde(skip)]
    pub timestamp_ms: i64,
    pub log_stream: String,
    pub message: String,
    #[serde(skip)]
    pub event_id: String,
}

/// Where a deploy's time went: before apply (credentials, STS, the lock,
/// reading every resource) and in it, with the critical path through it.
#[derive(Clone, Debug, Serialize)]
pub struct RunTiming {
    pub setup_seconds: f64,
    pub apply_seconds: f64,
    pub critical_path: CriticalPath,
}

/// When one resource's apply ran, relative to the start of apply, and how
/// many AWS calls it made.
#[derive(Clone, Debug, Serialize)]
pub struct Timing {
    pub start: f64,
    pub end: f64,
    pub calls: u32,
}

/// The longest chain of resources each of which needed the one before: what
/// bounds a deploy's time however much runs in parallel.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CriticalPath {
    pub resources: Vec<String>,
    /// AWS calls along the chain, one after the other.
    pub calls: u32,
    /// From the chain's first start to its last end.
    pub seconds: f64,
}

/// Who holds the lock, as stored in the parameter and shown to the runs it
/// turns away.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// Unique per acquisition: tells this run's lease from any other.
    pub id: String,
    pub command: String,
    pub host: String,
    pub pid: u32,
    /// RFC 3339, UTC.
    pub since: String,
    pub expires: String,
    /// What identifies the holder's process beyond its pid, so that a run
    /// on the same machine can tell for certain that it has died: the
    /// kernel's boot id, the PID namespace (`pid:[N]`) and the process's
    /// start time (clock ticks after boot, field 22 of /proc/PID/stat).
    /// Absent in leases written before they were recorded, and where there
    /// is no /proc: such a holder is never taken for dead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
}

impl Calls {
    pub fn summary(&self) -> String {
        format!(
            "{} AWS calls, {} mutating, {} for the lock",
            self.total, self.mutating, self.lock
        )
    }
}

/// One of the stage's API keys, as `stepgate keys` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct KeyReport {
    pub name: String,
    pub id: String,
    pub enabled: bool,
    /// Today's requests and what remains of the quota, when the usage plan
    /// has a quota and API Gateway reports it.
    pub usage_today: Option<(i64, i64)>,
    /// Why usage is not shown, when GetUsage failed: the names and ids
    /// are still worth listing (LocalStack 4.4 has no GetUsage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_error: Option<String>,
    /// Only with `--reveal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// One published version of a state machine, as `history` lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VersionEntry {
    pub version: u64,
    pub arn: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// What stepgate wrote when it published it: the git commit and the
    /// deployer, where known.
    pub description: Option<String>,
    /// The share of new executions `live` starts on it (0 to 100), if any.
    pub live_weight: Option<i32>,
}

/// What a deploy would do to one machine's `live` alias, as plan shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RolloutPlan {
    pub state_machine: String,
    /// What `live` serves now: (version, share of new executions); empty
    /// before the first deploy.
    pub live: Vec<(u64, i32)>,
    /// The versions the deploy publishes: `function NAME`, `state machine NAME`.
    pub publishes: Vec<String>,
    /// The smoke files run on the new version before `live` moves.
    pub smoke: Vec<String>,
    /// all-at-once, canary or linear.
    pub strategy: String,
    /// The new version's shares of new executions, in order (the last 100).
    pub steps: Vec<u8>,
    /// How long each share but the last is held and watched.
    pub interval_seconds: u64,
}

/// What `rollback` did to the `live` alias.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rollback {
    pub state_machine: String,
    pub alias_arn: String,
    /// The version `live` served before, and serves now.
    pub from: u64,
    pub to: u64,
}
