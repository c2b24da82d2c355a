//! `[defaults.rollout]` / `[stages.S.rollout]`: how `live` moves to a new
//! version once its smoke orders pass. All at once (the default), or a
//! canary share, or linear steps, each held for `interval` while the new
//! version's executions are watched.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{invalid, ConfigError, FileText};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    AllAtOnce,
    Canary,
    Linear,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rollout {
    pub strategy: Strategy,
    /// The canary's share, or each linear step, of new executions (1 to 99).
    pub percent: u8,
    /// How long each share is held and watched.
    #[serde(with = "humantime_serde_secs")]
    pub interval: Duration,
    /// Failed, timed-out or aborted executions of the new version tolerated
    /// during the bake; one more moves `live` back.
    pub max_failures: u32,
}

/// Seconds in the JSON the settings print as.
mod humantime_serde_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

impl Default for Rollout {
    fn default() -> Rollout {
        Rollout {
            strategy: Strategy::AllAtOnce,
            percent: 10,
            interval: Duration::from_secs(300),
            max_failures: 0,
        }
    }
}

impl Rollout {
    /// The shares of new executions the new version gets, in order; the
    /// last is always 100.
    pub fn steps(&self) -> Vec<u8> {
        match self.strategy {
            Strategy::AllAtOnce => vec![100],
            Strategy::Canary => vec![self.percent, 100],
            Strategy::Linear => {
                let mut steps: Vec<u8> = (1..)
                    .map(|i| self.percent.saturating_mul(i))
                    .take_while(|p| *p < 100)
                    .collect();
                steps.push(100);
                steps
            }
        }
    }
}

/// The longest `interval`: a bake holds the stage's lock.
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRollout {
    strategy: Option<Spanned<String>>,
    percent: Option<Spanned<i64>>,
    interval: Option<Spanned<String>>,
    max_failures: Option<Spanned<i64>>,
}

impl FileText<'_> {
    pub(super) fn rollout(&self, raw: RawRollout, table: &str) -> Result<Rollout, ConfigError> {
        let mut rollout = Rollout::default();
        let at = |span: std::ops::Range<usize>, key: &str, value: &dyn std::fmt::Debug| {
            format!("{}: [{table}.rollout] {key} = {value:?}", self.at(span))
        };
        if let Some(s) = raw.strategy {
            rollout.strategy = match s.get_ref().as_str() {
                "all-at-once" => Strategy::AllAtOnce,
                "canary" => Strategy::Canary,
                "linear" => Strategy::Linear,
                other => {
                    return Err(invalid(
                        at(s.span(), "strategy", &other),
                        "is not a strategy; use all-at-once, canary or linear",
                    ))
                }
            };
        }
        if let Some(p) = raw.percent {
            if !(1..=99).contains(p.get_ref()) {
                return Err(invalid(
                    at(p.span(), "percent", p.get_ref()),
                    "is out of range; the new version's share of executions is 1 to 99",
                ));
            }
            rollout.percent = *p.get_ref() as u8;
        }
        if let Some(i) = raw.interval {
            let parsed = humantime::parse_duration(i.get_ref()).ok();
            match parsed {
                Some(d) if d >= Duration::from_secs(1) && d <= MAX_INTERVAL => rollout.interval = d,
                _ => {
                    return Err(invalid(
                        at(i.span(), "interval", i.get_ref()),
                        "is not a bake time from 1s to 1h; write a duration such as 30s or 5m",
                    ))
                }
            }
        }
        if let Some(m) = raw.max_failures {
            if !(0..=1000).contains(m.get_ref()) {
                return Err(invalid(
                    at(m.span(), "max_failures", m.get_ref()),
                    "is out of range; tolerate 0 to 1000 failed executions",
                ));
            }
            rollout.max_failures = *m.get_ref() as u32;
        }
        Ok(rollout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_strategy_moves_live_in_its_steps() {
        let with = |strategy, percent| Rollout {
            strategy,
            percent,
            ..Rollout::default()
        };
        assert_eq!(with(Strategy::AllAtOnce, 10).steps(), [100]);
        assert_eq!(with(Strategy::Canary, 50).steps(), [50, 100]);
        assert_eq!(with(Strategy::Linear, 25).steps(), [25, 50, 75, 100]);
        assert_eq!(with(Strategy::Linear, 40).steps(), [40, 80, 100]);
        assert_eq!(with(Strategy::Linear, 99).steps(), [99, 100]);
    }
}
