//! The retry policy, in one place.
//! - Throttling, 5xx and dropped connections: the SDK's standard retries,
//!   with more attempts than its default (`sdk_retry_config`) and API
//!   Gateway's `Retry-After` hint honoured (`RetryAfterHint`).
//! - A refused connection or an unknown host on STS, the first call of
//!   every run: no retry (`UnreachableFailsFast`). Nothing listens there,
//!   and eight attempts with backoff only delay the one line that says so.
//! - Errors that mean "not yet", such as a role created seconds ago that
//!   Lambda or Step Functions cannot assume yet: `until_consistent`. Only
//!   errors the caller names are retried, with bounded exponential backoff:
//!   no fixed sleeps, no retry-on-anything.

use std::future::Future;
use std::time::Duration;

use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority, RetryReason,
};
use aws_smithy_types::retry::RetryConfig;

/// Attempts per AWS call (the SDK's default is 3) and the longest wait
/// between two. AWS asks clients to back off on throttling; API Gateway's
/// control plane allows one DeleteRestApi per 30 s per account, so a hint of
/// up to 30 s is honoured. Eight attempts of at most 30 s bound a call to
/// about 4 minutes.
pub const SDK_MAX_ATTEMPTS: u32 = 8;
const SDK_MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The SDK retry configuration, unless the user set one in the environment
/// (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE), which then wins.
pub fn sdk_retry_config(env: &dyn Fn(&str) -> Option<String>) -> Option<RetryConfig> {
    if env("AWS_MAX_ATTEMPTS").is_some() || env("AWS_RETRY_MODE").is_some() {
        return None;
    }
    Some(
        RetryConfig::standard()
            .with_max_attempts(SDK_MAX_ATTEMPTS)
            .with_max_backoff(SDK_MAX_BACKOFF),
    )
}

/// API Gateway answers its quotas with 429 and a `Retry-After` header in
/// seconds. The SDK reads only `x-amz-retry-after`, so without this it would
/// retry on its own schedule, usually too soon, and spend its attempts.
#[derive(Debug, Default)]
pub struct RetryAfterHint;

impl RetryAfterHint {
    fn hint(ctx: &InterceptorContext) -> Option<Duration> {
        let seconds: f64 = ctx
            .response()?
            .headers()
            .get("retry-after")?
            .trim()
            .parse()
            .ok()?;
        (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
    }
}

impl ClassifyRetry for RetryAfterHint {
    fn classify_retry(&self, _ctx: &InterceptorContext) -> RetryAction {
        RetryAction::NoActionIndicated
    }

    /// Refines a verdict the SDK's own classifiers already made: the header
    /// alone never makes an error retryable.
    fn classify_retry_v2(&self, ctx: &InterceptorContext, previous: &RetryAction) -> RetryAction {
        match (previous, Self::hint(ctx)) {
            (
                RetryAction::RetryIndicated(RetryReason::RetryableError {
                    kind,
                    retry_after: None,
                }),
                Some(delay),
            ) => RetryAction::retryable_error_with_explicit_delay(*kind, delay),
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "stepgate-retry-after-hint"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// Forbids the SDK's retries when the endpoint refused the connection or
/// its host does not resolve: the endpoint is wrong or down, and waiting
/// half a minute will not change that. Set on the STS client, which makes
/// the first call of every run; throttling, 5xx and connections dropped
/// mid-call keep their retries.
#[derive(Debug, Default)]
pub struct UnreachableFailsFast;

impl UnreachableFailsFast {
    /// A refused TCP connection, or a failed DNS lookup (hyper's connector
    /// calls it "dns error"; the resolver's own words vary by platform).
    pub fn unreachable(error: &(dyn std::error::Error + 'static)) -> bool {
        std::iter::successors(Some(error), |e| e.source()).any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
                || e.to_string().starts_with("dns error")
        })
    }
}

impl ClassifyRetry for UnreachableFailsFast {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let connector = ctx
            .output_or_error()
            .and_then(Result::err)
            .and_then(|e| e.as_connector_error());
        match connector {
            Some(e) if Self::unreachable(e) => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "stepgate-unreachable-fails-fast"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// First wait, growth and ceiling: 0.25 s doubling to 1 s, for at most 60 s
/// in all, which covers IAM propagation on AWS (usually under 10 s). The
/// ceiling is low because the wait is for something that clears at an
/// unknown moment: with 1 s between tries a run starts at most 1 s after
/// a role becomes usable (doubling to 8 s overshot a 5 s window by 2.75 s).
const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(1);
pub const CONSISTENCY_BUDGET: Duration = Duration::from_secs(60);

/// Runs `op` until it succeeds, fails with an error `retryable` does not
/// accept, or `CONSISTENCY_BUDGET` is spent (then the last error is returned).
pub async fn until_consistent<T, E, F, Fut>(
    retryable: impl Fn(&E) -> bool,
    mut op: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = tokio::time::Instant::now();
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e)
                if started.elapsed() + backoff(attempt) <= CONSISTENCY_BUDGET && retryable(&e) =>
            {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// What one look at a resource found, for `poll`.
pub enum Readiness {
    Ready,
    /// Not yet, with what it is instead (for the time-out message).
    NotYet(String),
}

/// Looks at a resource until it is ready: at once, then after 50 ms,
/// doubling to at most 2 s between looks, for at most `limit`. The SDK's
/// waiters wait at least 1 s between looks, which on the emulator (and for
/// Lambda updates on AWS, often done in a few hundred ms) is most of a
/// deploy's time. A `check` that fails (a Failed state) ends the wait.
pub async fn poll<F, Fut>(what: &str, limit: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Readiness>>,
{
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        match check().await? {
            Readiness::Ready => return Ok(()),
            Readiness::NotYet(state) if started.elapsed() + delay > limit => {
                anyhow::bail!("{what}: still {state} after {}s", limit.as_secs())
            }
            Readiness::NotYet(_) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// The wait after the `attempt`-th try (from 1): 0.25 s doubling to 1 s.
pub fn backoff(attempt: u32) -> Duration {
    FIRST_DELAY
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn refused_connections_and_unknown_hosts_are_unreachable_a_reset_is_not() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let io = |kind, text: &str| {
            ConnectorError::io(std::io::Error::new(kind, text.to_string()).into())
        };
        let refused = io(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        assert!(UnreachableFailsFast::unreachable(&refused));
        let reset = io(
            std::io::ErrorKind::ConnectionReset,
            "Connection reset by peer",
        );
        assert!(!UnreachableFailsFast::unreachable(&reset));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_the_named_error_and_then_succeeds() {
        let calls = Cell::new(0);
        let result: Result<u32, &str> = until_consistent(
            |e: &&str| *e == "not yet",
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 3 {
                        Err("not yet")
                    } else {
                        Ok(n)
                    }
                }
            },
        )
        .await;
        assert_eq!(result, Ok(3));
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_fail_at_once() {
        let calls = Cell::new(0);
        let result: Result<(), &str> = until_consistent(
            |e: &&str| *e == "not yet",
            || {
                calls.set(calls.get() + 1);
                async { Err("denied") }
            },
        )
        .await;
        assert_eq!(result, Err("denied"));
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn poll_looks_again_quickly_and_gives_up_at_the_limit() {
        let looks = Cell::new(0);
        let started = tokio::time::Instant::now();
        poll("f", Duration::from_secs(5), || {
            looks.set(looks.get() + 1);
            let n = looks.get();
            async move {
                Ok(if n < 3 {
                    Readiness::NotYet("Pending".into())
                } else {
                    Readiness::Ready
                })
            }
        })
        .await
        .unwrap();
        // At once, after 50 ms, after 100 more: no 1 s floor.
        assert_eq!(started.elapsed(), Duration::from_millis(150));

        let err = poll("function f", Duration::from_secs(5), || async {
            Ok(Readiness::NotYet("State Pending".into()))
        })
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "function f: still State Pending after 5s");
        assert!(started.elapsed() <= Duration::from_millis(150) + Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_when_the_budget_is_spent_and_never_waits_over_a_second() {
        let calls = Cell::new(0);
        let started = tokio::time::Instant::now();
        let result: Result<(), &str> = until_consistent(
            |_: &&str| true,
            || {
                calls.set(calls.get() + 1);
                async { Err("not yet") }
            },
        )
        .await;
        assert_eq!(result, Err("not yet"));
        assert!(
            started.elapsed() <= CONSISTENCY_BUDGET,
            "{:?}",
            started.elapsed()
        );
        assert!(started.elapsed() >= CONSISTENCY_BUDGET - MAX_DELAY);
        // 0.25 s, 0.5 s, then one try a second.
        assert!(calls.get() >= 58, "{}", calls.get());
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(3), MAX_DELAY);
        assert_eq!(backoff(30), MAX_DELAY);
    }
}
