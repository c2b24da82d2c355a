//! A canary or linear rollout of `live`: each share below 100 is held for
//! the rollout's interval while the new version's executions are watched
//! (ListExecutions on the version) with the machine's alarms (DescribeAlarms
//! in ALARM). Too many failures, an alarm, Ctrl-C or SIGTERM move `live`
//! back to the version it served, and the deploy fails saying why. Uses the
//! Step Functions client, like `machine_alias.rs`, and `alarm.rs`.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use aws_sdk_sfn::types::{ExecutionStatus, RoutingConfigurationListItem};

use crate::aws::{error, Aws};
use crate::config::Rollout;

/// How often the new version's executions are looked at during a bake.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Sets the alias's routing: each (version ARN, weight), weights summing
/// to 100. One call.
pub async fn route(
    client: &aws_sdk_sfn::Client,
    alias_arn: &str,
    routes: &[(&str, i32)],
) -> Result<()> {
    let items = routes
        .iter()
        .map(|(arn, weight)| {
            RoutingConfigurationListItem::builder()
                .state_machine_version_arn(*arn)
                .weight(*weight)
                .build()
                .map_err(|e| anyhow::anyhow!("alias {alias_arn}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    client
        .update_state_machine_alias()
        .state_machine_alias_arn(alias_arn)
        .set_routing_configuration(Some(items))
        .send()
        .await
        .map_err(|e| error(&format!("alias {alias_arn}"), "UpdateStateMachineAlias", e))?;
    Ok(())
}

/// Moves `live` from `old` to `new` in the rollout's steps, watching each
/// share below 100 for the interval.
pub async fn shift(
    aws: &Aws,
    alias_arn: &str,
    old: &str,
    new: &str,
    rollout: &Rollout,
    alarms: &[String],
) -> Result<()> {
    let version = |arn: &str| arn.rsplit(':').next().unwrap_or_default().to_string();
    let back = |why: String| async move {
        route(&aws.sfn_rollback, alias_arn, &[(old, 100)]).await?;
        bail!("{why}; `live` is back on version {}", version(old))
    };
    for share in rollout.steps() {
        if share >= 100 {
            return route(&aws.sfn, alias_arn, &[(new, 100)]).await;
        }
        route(
            &aws.sfn,
            alias_arn,
            &[(new, share as i32), (old, 100 - share as i32)],
        )
        .await?;
        let since = std::time::SystemTime::now();
        let until = Instant::now() + rollout.interval;
        while Instant::now() < until {
            tokio::time::sleep(WATCH_EVERY.min(until - Instant::now())).await;
            if let Some(signal) = crate::interrupt::received() {
                return back(format!(
                    "interrupted by {signal} while version {} served {share}% of new executions",
                    version(new)
                ))
                .await;
            }
            let failed = match failures(aws, new, since).await {
                Ok(failed) => failed,
                // A call refused after a signal: caught above next time.
                Err(_) if crate::interrupt::received().is_some() => continue,
                Err(e) => return back(format!("{e:#}")).await,
            };
            let alarmed = match super::alarm::in_alarm(aws, alarms).await {
                Ok(alarmed) => alarmed,
                Err(_) if crate::interrupt::received().is_some() => continue,
                Err(e) => return back(format!("{e:#}")).await,
            };
            if let Some(alarm) = alarmed.first() {
                return back(format!(
                    "{alarm} while version {} served {share}%",
                    version(new)
                ))
                .await;
            }
            if failed.len() > rollout.max_failures as usize {
                return back(format!(
                    "{} failed, timed-out or aborted execution{} of version {} while it served {share}% (more than max_failures = {}): {}",
                    failed.len(),
                    if failed.len() == 1 { "" } else { "s" },
                    version(new),
                    rollout.max_failures,
                    failed.join(", ")
                ))
                .await;
            }
        }
    }
    Ok(())
}

/// The new version's executions that started since `since` and failed,
/// timed out or were aborted, as `ARN (STATUS)`, newest first.
async fn failures(
    aws: &Aws,
    version_arn: &str,
    since: std::time::SystemTime,
) -> Result<Vec<String>> {
    let since = since
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let out = aws
        .sfn
        .list_executions()
        .state_machine_arn(version_arn)
        .max_results(1000)
        .send()
        .await
        .map_err(|e| {
            error(
                &format!("state-machine-version {version_arn}"),
                "ListExecutions",
                e,
            )
        })?;
    Ok(out
        .executions()
        .iter()
        .filter(|e| e.start_date().as_secs_f64() >= since)
        .filter(|e| {
            matches!(
                e.status(),
                ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted
            )
        })
        .map(|e| format!("{} ({})", e.execution_arn(), e.status().as_str()))
        .collect())
}
