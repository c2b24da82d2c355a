//! `[state_machines.NAME.alarms]`: CloudWatch alarms on the machine's
//! execution metrics, each optionally notifying an SNS topic. One in ALARM
//! while a rollout bakes moves `live` back.

use anyhow::{bail, Result};
use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize, Default, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct RawAlarms {
    pub failed: Option<Spanned<i64>>,
    pub timed_out: Option<Spanned<i64>>,
    pub throttled: Option<Spanned<i64>>,
    pub notify: Option<Spanned<String>>,
}

/// What an alarm watches: the key in the table, and Step Functions' metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Watch {
    Failed,
    TimedOut,
    Throttled,
}

impl Watch {
    /// The table's key, and the alarm name's suffix (`-timed-out`).
    pub fn key(self) -> &'static str {
        match self {
            Watch::Failed => "failed",
            Watch::TimedOut => "timed_out",
            Watch::Throttled => "throttled",
        }
    }

    /// Step Functions' metric in `AWS/States`, per state machine ARN.
    pub fn metric(self) -> &'static str {
        match self {
            Watch::Failed => "ExecutionsFailed",
            Watch::TimedOut => "ExecutionsTimedOut",
            Watch::Throttled => "ExecutionThrottled",
        }
    }
}

/// The largest threshold taken: a count of executions in one minute.
const MAX_THRESHOLD: i64 = 1_000_000;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Alarms {
    /// Each watched metric with its threshold (executions in one minute).
    pub thresholds: Vec<(Watch, u32)>,
    /// The SNS topic each alarm notifies when it goes to ALARM.
    pub notify: Option<String>,
}

impl Alarms {
    pub fn resolve(
        raw: Option<&RawAlarms>,
        table: &str,
        at: &dyn Fn(std::ops::Range<usize>) -> String,
    ) -> Result<Alarms> {
        let Some(raw) = raw else {
            return Ok(Alarms::default());
        };
        let mut thresholds = Vec::new();
        for (watch, value) in [
            (Watch::Failed, &raw.failed),
            (Watch::TimedOut, &raw.timed_out),
            (Watch::Throttled, &raw.throttled),
        ] {
            let Some(v) = value else { continue };
            if !(1..=MAX_THRESHOLD).contains(v.get_ref()) {
                bail!(
                    "{}: {table}.alarms {} = {} is out of range; give the number of executions in one minute that raises the alarm, 1 to {MAX_THRESHOLD}",
                    at(v.span()),
                    watch.key(),
                    v.get_ref()
                );
            }
            thresholds.push((watch, *v.get_ref() as u32));
        }
        let notify = match &raw.notify {
            Some(topic) if is_topic_arn(topic.get_ref()) => Some(topic.get_ref().clone()),
            Some(topic) => bail!(
                "{}: {table}.alarms notify = {:?} is not an SNS topic ARN; use arn:aws:sns:REGION:ACCOUNT:TOPIC",
                at(topic.span()),
                topic.get_ref()
            ),
            None => None,
        };
        if thresholds.is_empty() {
            let at = raw
                .notify
                .as_ref()
                .map(|n| at(n.span()))
                .unwrap_or_else(|| table.to_string());
            bail!("{at}: {table}.alarms sets no threshold; set failed, timed_out or throttled (executions in one minute), or remove the table");
        }
        Ok(Alarms { thresholds, notify })
    }
}

/// `arn:PARTITION:sns:REGION:ACCOUNT:TOPIC`.
fn is_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "sns"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && (1..=256).contains(&parts[5].len())
        && parts[5]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_arns_are_told_from_other_text() {
        assert!(is_topic_arn(
            "arn:aws:sns:us-east-1:123456789012:orders-alerts"
        ));
        assert!(is_topic_arn(
            "arn:aws-cn:sns:cn-north-1:123456789012:a.fifo"
        ));
        for bad in [
            "orders-alerts",
            "arn:aws:sqs:us-east-1:123456789012:q",
            "arn:aws:sns:us-east-1:1234:t",
            "arn:aws:sns:us-east-1:123456789012:",
            "arn:aws:sns:us-east-1:123456789012:a b",
        ] {
            assert!(!is_topic_arn(bad), "{bad}");
        }
    }
}
