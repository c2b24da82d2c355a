//! Counts every AWS operation stepgate sends, by service and operation, so that
//! the output (and the tests and benchmarks that read it) can tell exactly
//! what a run did: a converged `deploy` must make no mutating call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
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

/// A shared tally; cloning it shares the same counts.
#[derive(Clone, Debug, Default)]
pub struct CallRecorder {
    counts: Arc<Mutex<BTreeMap<String, u32>>>,
    by_resource: Arc<Mutex<BTreeMap<ResourceId, u32>>>,
}

impl CallRecorder {
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
/// every read-only operation this way; anything else counts as a change.
pub fn is_mutating(operation: &str) -> bool {
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
