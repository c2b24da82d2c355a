//! Counts every AWS operation stepgate sends, by service and operation, so that
//! the output (and the tests and benchmarks that read it) can tell exactly
//! what a run did: a converged `deploy` must make no mutating call.
//!
//! With `STEPGATE_CALL_LOG=FILE`, it also appends each operation's request
//! to FILE as a JSON line (service, operation, method, path, parameters;
//! never headers, so never credentials): what an audit of the deployer
//! policy needs (`tests/deployer_policy.rs` checks every one against
//! `docs/deployer-policy.json`).

use crate::report::Calls;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::model::ResourceId;

tokio::task_local! {
    /// The resource whose apply is running in this task, if any.
    static RESOURCE: ResourceId;
}

/// Runs `work` (one resource's apply) so that its AWS calls are counted
/// for that resource too: the critical path needs them.
pub async fn in_resource<F: std::future::Future>(id: ResourceId, work: F) -> F::Output {
    RESOURCE.scope(id, work).await
}

/// The resource whose apply made the running call, if any.
pub fn current_resource() -> Option<ResourceId> {
    RESOURCE.try_with(ResourceId::clone).ok()
}

/// A shared tally; cloning it shares the same counts.
#[derive(Clone, Debug, Default)]
pub struct CallRecorder {
    counts: Arc<Mutex<BTreeMap<String, u32>>>,
    by_resource: Arc<Mutex<BTreeMap<ResourceId, u32>>>,
    log: Option<Arc<CallLog>>,
}

/// Where requests are logged, and the stack they are for (an audit renders
/// that stack's deployer policy).
#[derive(Debug)]
struct CallLog {
    file: Mutex<std::fs::File>,
    stack: String,
    /// The project the run read (its name overrides widen the policy).
    project_dir: String,
    /// Set by `stepgate adopt`: its reads are the `--adopt` policy's.
    adopt: std::sync::atomic::AtomicBool,
}

/// The variable naming the file that requests are appended to.
pub const CALL_LOG_VAR: &str = "STEPGATE_CALL_LOG";

impl CallRecorder {
    /// A recorder that also logs requests if `STEPGATE_CALL_LOG` names a
    /// file, each line naming `stack`. A file that cannot be opened is
    /// reported and not used: the log is for audits, never a reason to fail
    /// a deploy.
    pub fn from_env(stack: &str, project_dir: &std::path::Path) -> CallRecorder {
        let log = std::env::var_os(CALL_LOG_VAR)
            .filter(|path| !path.is_empty())
            .and_then(|path| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| {
                        tracing::warn!(
                            "{CALL_LOG_VAR}={}: cannot open: {e}",
                            path.to_string_lossy()
                        )
                    })
                    .ok()
            });
        CallRecorder {
            log: log.map(|file| {
                Arc::new(CallLog {
                    file: Mutex::new(file),
                    stack: stack.to_owned(),
                    project_dir: std::path::absolute(project_dir)
                        .unwrap_or_else(|_| project_dir.to_path_buf())
                        .display()
                        .to_string(),
                    adopt: Default::default(),
                })
            }),
            ..CallRecorder::default()
        }
    }

    /// From now on, the log marks each request as `stepgate adopt`'s.
    pub fn mark_adopt(&self) {
        if let Some(log) = &self.log {
            log.adopt.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// "Service.Operation" -> number of times it was sent (retries of one
    /// call count once: this counts what stepgate asked for).
    pub fn snapshot(&self) -> BTreeMap<String, u32> {
        self.counts.lock().expect("call recorder poisoned").clone()
    }

    /// Calls made so far on behalf of one resource's apply.
    pub fn for_resource(&self, id: &ResourceId) -> u32 {
        let counts = self.by_resource.lock().expect("call recorder poisoned");
        counts.get(id).copied().unwrap_or_default()
    }

    fn record(&self, key: String) {
        *self
            .counts
            .lock()
            .expect("call recorder poisoned")
            .entry(key)
            .or_default() += 1;
        if let Ok(id) = RESOURCE.try_with(ResourceId::clone) {
            *self
                .by_resource
                .lock()
                .expect("call recorder poisoned")
                .entry(id)
                .or_default() += 1;
        }
    }
}

/// Whether an operation ("Service.Operation") can change anything. AWS names
/// every read-only operation this way; anything else counts as a change,
/// except STS's: AssumeRole hands out credentials and changes nothing.
pub fn is_mutating(operation: &str) -> bool {
    if operation.starts_with("STS.") {
        return false;
    }
    let name = operation.rsplit('.').next().unwrap_or(operation);
    const READS: [&str; 5] = ["Get", "List", "Describe", "TestInvoke", "FilterLogEvents"];
    !READS.iter().any(|prefix| name.starts_with(prefix))
}

/// Whether an operation is the lock's (SSM Parameter Store is used for
/// nothing else).
pub fn is_lock(operation: &str) -> bool {
    operation.starts_with("SSM.")
}

impl Intercept for CallRecorder {
    fn name(&self) -> &'static str {
        "stepgate-call-recorder"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Runs once per operation (not per retry), after the operation's
        // metadata is in the bag.
        if let Some(meta) = cfg.load::<Metadata>() {
            self.record(format!("{}.{}", meta.service(), meta.name()));
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Every attempt: a retried request needs the same permission.
        let (Some(log), Some(meta)) = (&self.log, cfg.load::<Metadata>()) else {
            return Ok(());
        };
        let mut line = request_line(log, meta, context.request());
        line.push('\n');
        use std::io::Write;
        // One write per line on an O_APPEND file: lines from concurrent
        // calls (and concurrent runs) never interleave.
        let mut file = log.file.lock().expect("call log poisoned");
        if let Err(e) = file.write_all(line.as_bytes()) {
            tracing::warn!("{CALL_LOG_VAR}: cannot write: {e}");
        }
        Ok(())
    }
}

/// One request as the call log writes it.
fn request_line(
    log: &CallLog,
    meta: &Metadata,
    request: &aws_smithy_runtime_api::http::Request,
) -> String {
    let body = request.body().bytes().unwrap_or_default();
    let params = if request
        .headers()
        .get("content-type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"))
    {
        // IAM and STS: Action=...&RoleName=...
        let pairs = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
            .collect();
        serde_json::Value::Object(pairs)
    } else {
        serde_json::from_slice(body).unwrap_or(serde_json::Value::Null)
    };
    serde_json::json!({
        "stack": log.stack,
        "project_dir": log.project_dir,
        "adopt": log.adopt.load(std::sync::atomic::Ordering::Relaxed),
        "service": meta.service(),
        "operation": meta.name(),
        "method": request.method(),
        "path": path_of(request.uri()),
        "params": shortened(params),
    })
    .to_string()
}

/// `https://host/a/b?c` -> `/a/b?c`: the endpoint is not the request.
fn path_of(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    rest.find('/').map_or("/", |at| &rest[at..])
}

/// Parameters with long strings (code, definitions, documents) cut: the
/// log keeps names and ARNs, not payloads.
fn shortened(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    const LONGEST: usize = 2048;
    match value {
        Value::String(s) if s.len() > LONGEST => Value::String(format!("({} bytes)", s.len())),
        Value::Array(items) => Value::Array(items.into_iter().map(shortened).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, shortened(v))).collect())
        }
        other => other,
    }
}

/// The report's counts from the recorder's, by what each operation is.
impl Calls {
    pub fn from_counts(by_operation: BTreeMap<String, u32>) -> Calls {
        let count = |keep: &dyn Fn(&str) -> bool| {
            by_operation
                .iter()
                .filter(|(op, _)| keep(op))
                .map(|(_, n)| n)
                .sum()
        };
        Calls {
            total: count(&|_| true),
            mutating: count(&|op| is_mutating(op) && !is_lock(op)),
            lock: count(&is_lock),
            by_operation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_not_mutating_and_everything_else_is() {
        for read in [
            "Lambda.GetFunction",
            "IAM.ListRoleTags",
            "SFN.DescribeStateMachine",
            "API Gateway.GetRestApis",
            "CloudWatch Logs.FilterLogEvents",
            "STS.AssumeRole",
        ] {
            assert!(!is_mutating(read), "{read}");
        }
        for write in [
            "Lambda.UpdateFunctionCode",
            "IAM.PutRolePolicy",
            "SFN.TagResource",
            "API Gateway.CreateDeployment",
            "CloudWatch Logs.PutRetentionPolicy",
        ] {
            assert!(is_mutating(write), "{write}");
        }
    }
}
