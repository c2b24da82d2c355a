//! The one retry policy for AWS's eventual consistency. The SDK already
//! retries throttling and transient faults; this covers errors that mean
//! "not yet": a role created seconds ago that Lambda or Step Functions cannot
//! assume yet. Only errors the caller names are retried, with bounded
//! exponential backoff: no fixed sleeps, no retry-on-anything.

use std::future::Future;
use std::time::Duration;

/// First wait, growth and ceiling: 0.25 s doubling to 8 s, about 60 s in all,
/// which covers IAM propagation on AWS (usually under 10 s).
const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(8);
const MAX_ATTEMPTS: u32 = 11;

/// Runs `op` until it succeeds, fails with an error `retryable` does not
/// accept, or the attempts run out (then the last error is returned).
pub async fn until_consistent<T, E, F, Fut>(
    retryable: impl Fn(&E) -> bool,
    mut op: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delay = FIRST_DELAY;
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if attempt < MAX_ATTEMPTS && retryable(&e) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_DELAY);
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

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
    async fn gives_up_after_bounded_attempts() {
        let calls = Cell::new(0);
        let result: Result<(), &str> = until_consistent(
            |_: &&str| true,
            || {
                calls.set(calls.get() + 1);
                async { Err("not yet") }
            },
        )
        .await;
        assert_eq!(result, Err("not yet"));
        assert_eq!(calls.get(), MAX_ATTEMPTS);
    }
}
