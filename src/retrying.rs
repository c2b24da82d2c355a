//! The AWS calls retrying now. The SDK retries throttling and 5xx quietly,
//! for up to minutes (`aws/retry.rs`); a person watching a terminal should
//! see why a step is slow. `aws/retry_watch.rs`, an interceptor on every
//! client, notes each failed attempt here; the progress lines read it
//! (`retrying_for`, `retrying_outside`). Knows no AWS type, so that output
//! can read it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::ResourceId;

/// How long a call retries before a progress line shows it: a retry or two
/// within that is normal and not worth a word.
pub const SHOWN_AFTER: Duration = Duration::from_secs(2);

/// A call that has failed at least once and is being tried again.
#[derive(Clone, Debug)]
pub struct Retrying {
    /// `Lambda.CreateFunction`.
    pub operation: String,
    /// The attempt under way (2 for the first retry).
    pub attempt: u32,
    /// AWS's error code of the last failure (`ThrottlingException`), or
    /// what went wrong below HTTP (`timeout`, `connection error`).
    pub code: String,
    /// The resource whose apply made the call, if any.
    pub resource: Option<ResourceId>,
    /// When the first attempt failed.
    pub since: Instant,
}

impl Retrying {
    /// `retrying Lambda.CreateFunction: attempt 3, TooManyRequestsException`
    pub fn describe(&self) -> String {
        format!(
            "retrying {}: attempt {}, {}",
            self.operation, self.attempt, self.code
        )
    }
}

/// Calls retrying now, by call.
static RETRYING: Mutex<BTreeMap<u64, Retrying>> = Mutex::new(BTreeMap::new());

pub fn table() -> std::sync::MutexGuard<'static, BTreeMap<u64, Retrying>> {
    RETRYING.lock().unwrap_or_else(|e| e.into_inner())
}

/// The call of `resource` retrying for longer than `SHOWN_AFTER`, if any.
pub fn retrying_for(resource: &ResourceId) -> Option<Retrying> {
    longest(|r| r.resource.as_ref() == Some(resource))
}

/// The call made for no one resource (reads, STS, the lock) retrying for
/// longer than `SHOWN_AFTER`, if any.
pub fn retrying_outside() -> Option<Retrying> {
    longest(|r| r.resource.is_none())
}

fn longest(keep: impl Fn(&Retrying) -> bool) -> Option<Retrying> {
    table()
        .values()
        .filter(|r| keep(r) && r.since.elapsed() > SHOWN_AFTER)
        .min_by_key(|r| r.since)
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    #[test]
    fn a_retry_shows_only_after_two_seconds_and_for_its_own_resource() {
        let id = ResourceId::new(Kind("function"), "retrying-test-f");
        let mut retrying = Retrying {
            operation: "Lambda.CreateFunction".into(),
            attempt: 3,
            code: "TooManyRequestsException".into(),
            resource: Some(id.clone()),
            since: Instant::now(),
        };
        table().insert(u64::MAX, retrying.clone());
        assert!(retrying_for(&id).is_none(), "shown at once");
        retrying.since = Instant::now() - SHOWN_AFTER - Duration::from_millis(1);
        table().insert(u64::MAX, retrying);
        let shown = retrying_for(&id).expect("shown after 2 s");
        assert_eq!(
            shown.describe(),
            "retrying Lambda.CreateFunction: attempt 3, TooManyRequestsException"
        );
        let other = ResourceId::new(Kind("function"), "retrying-test-g");
        assert!(retrying_for(&other).is_none());
        table().remove(&u64::MAX);
    }
}
