//! One deploy or destroy at a time per stack and stage, as Terraform locks
//! its state and CloudFormation refuses a second update of a stack in
//! progress. The lock is a lease in the target account: an SSM parameter
//! created without overwrite (atomic: of two runs, exactly one creates it),
//! holding who took it and until when.
//!
//! - Released on success, failure and Ctrl-C (`Lock::release`).
//! - A run that died (SIGKILL, a lost machine) cannot release it; its lease
//!   expires `LEASE` after it was last renewed, and the next run takes it
//!   over. On the host it ran on, the next run sees at once that the holder
//!   process is gone and takes it over. `stepgate unlock` removes it at once
//!   from anywhere.
//! - A live run renews its lease every `RENEW_EVERY`, so a long deploy never
//!   loses it.
//!
//! Not guaranteed: two runs that find the same *expired* lease at the same
//! instant may both break it; each then creates the parameter anew, and only
//! one succeeds, unless one deletes it between the other's create and its
//! read-back. That window is a few milliseconds, once per expired lease.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::aws::{retry, ssm, Aws};
use crate::names::Names;
use crate::output::Printer;

/// How long a lease lasts unless renewed.
pub const LEASE: Duration = Duration::from_secs(600);
const RENEW_EVERY: Duration = Duration::from_secs(120);

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
}

impl Holder {
    fn new(command: &str) -> Holder {
        let now = SystemTime::now();
        let host = hostname();
        let pid = std::process::id();
        let nanos = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Holder {
            id: format!("{host}-{pid}-{nanos}"),
            command: command.to_string(),
            host,
            pid,
            since: humantime::format_rfc3339_seconds(now).to_string(),
            expires: humantime::format_rfc3339_seconds(now + LEASE).to_string(),
        }
    }

    fn renewed(&self) -> Holder {
        Holder {
            expires: humantime::format_rfc3339_seconds(SystemTime::now() + LEASE).to_string(),
            ..self.clone()
        }
    }

    /// A lease whose expiry cannot be read is treated as live: breaking a
    /// lock by mistake is worse than asking for `stepgate unlock`.
    fn expired(&self) -> bool {
        humantime::parse_rfc3339(&self.expires).is_ok_and(|t| t < SystemTime::now())
    }

    /// Whether the holder was a process on this very host that no longer
    /// runs stepgate: a run killed here need not wait for its lease to
    /// expire. Elsewhere (another CI runner) nothing can be known.
    fn died_here(&self) -> bool {
        if self.host != hostname() || self.pid == 0 || !Path::new("/proc/self").exists() {
            return false;
        }
        match std::fs::read(format!("/proc/{}/cmdline", self.pid)) {
            Ok(cmdline) => !String::from_utf8_lossy(&cmdline).contains("stepgate"),
            Err(_) => true,
        }
    }

    /// "deploy (pid 4242 on build-7) since 2026-11-22T06:00:00Z".
    pub fn describe(&self) -> String {
        format!(
            "{} (pid {} on {}) since {}",
            self.command, self.pid, self.host, self.since
        )
    }

    fn parse(value: &str) -> Holder {
        serde_json::from_str(value).unwrap_or_else(|_| Holder {
            id: String::new(),
            command: format!("an unreadable lease ({value:.80})"),
            host: "?".into(),
            pid: 0,
            since: "?".into(),
            expires: "?".into(),
        })
    }

    fn to_json(&self) -> String {
        serde_json::to_string(self).expect("holder serializes")
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// The lock's parameter. `/` cannot appear in a stack or stage name, so
/// every stack and stage has its own.
pub fn parameter_name(names: &Names) -> String {
    format!("/stepgate/{}/{}/lock", names.stack, names.stage)
}

/// Who holds the lock now, if anyone (expired leases included).
pub async fn holder(aws: &Aws, names: &Names) -> Result<Option<Holder>> {
    Ok(ssm::read(aws, &parameter_name(names))
        .await?
        .map(|v| Holder::parse(&v)))
}

/// Removes the lock whoever holds it (`stepgate unlock`); returns who did.
pub async fn force_unlock(aws: &Aws, names: &Names) -> Result<Option<Holder>> {
    let held = holder(aws, names).await?;
    if held.is_some() {
        ssm::delete(aws, &parameter_name(names)).await?;
    }
    Ok(held)
}

/// A lock this run holds.
pub struct Lock {
    aws: Aws,
    name: String,
    holder: Holder,
    renewal: tokio::task::JoinHandle<()>,
}

/// Takes the lock for `command`. Held by a live run: fails at once naming
/// the holder, or with `wait` waits for it (bounded, with backoff).
pub async fn acquire(
    aws: &Aws,
    names: &Names,
    command: &str,
    wait: Option<Duration>,
    printer: &Printer,
) -> Result<Lock> {
    let name = parameter_name(names);
    let deadline = Instant::now() + wait.unwrap_or_default();
    let mut attempt = 0;
    loop {
        attempt += 1;
        if attempt > 100 {
            bail!("could not take the lock {name}: it changed hands 100 times in a row");
        }
        if let Some(signal) = crate::interrupt::received() {
            bail!("interrupted by {signal} while waiting for the lock {name}");
        }
        let mine = Holder::new(command);
        if ssm::create(aws, &name, &mine.to_json(), &names.owner_tags()).await? {
            return Ok(Lock::held(aws, name, mine));
        }
        let Some(value) = ssm::read(aws, &name).await? else {
            continue; // released in between: try again at once
        };
        let held = Holder::parse(&value);
        if held.id == mine.id {
            // This run's own create, whose answer was lost and retried.
            return Ok(Lock::held(aws, name, mine));
        }
        if held.expired() || held.died_here() {
            let why = if held.expired() {
                format!("expired {}", held.expires)
            } else {
                "that process has died".to_string()
            };
            printer.progress(&format!(
                "Taking over the lock of {} ({why})",
                held.describe()
            ));
            ssm::delete(aws, &name).await?;
            continue;
        }
        let now = Instant::now();
        if now >= deadline {
            let waited = match wait {
                Some(w) => format!(
                    "waited {}; ",
                    humantime::format_duration(Duration::from_secs(w.as_secs()))
                ),
                None => String::from("pass --lock-timeout 5m to wait for it, or "),
            };
            bail!(
                "stack {} stage {} is locked by {} (lease until {}); {waited}run `stepgate unlock --stack {} --stage {}` if that run has died",
                names.stack,
                names.stage,
                held.describe(),
                held.expires,
                names.stack,
                names.stage
            );
        }
        if attempt == 1 {
            printer.progress(&format!("Waiting for the lock held by {}", held.describe()));
        }
        tokio::time::sleep(retry::backoff(attempt).min(deadline - now)).await;
    }
}

impl Lock {
    fn held(aws: &Aws, name: String, holder: Holder) -> Lock {
        let renewal = tokio::spawn(renew(aws.clone(), name.clone(), holder.clone()));
        Lock {
            aws: aws.clone(),
            name,
            holder,
            renewal,
        }
    }

    /// Gives the lock up, unless another run has taken it over meanwhile
    /// (after this run's lease expired): that one is not ours to delete.
    pub async fn release(self) -> Result<()> {
        self.renewal.abort();
        match ssm::read(&self.aws, &self.name).await? {
            Some(v) if Holder::parse(&v).id == self.holder.id => {
                ssm::delete(&self.aws, &self.name).await
            }
            _ => Ok(()),
        }
    }
}

/// Extends the lease while the run lives; stops if the lease is no longer
/// this run's.
async fn renew(aws: Aws, name: String, holder: Holder) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        match ssm::read(&aws, &name).await {
            Ok(Some(v)) if Holder::parse(&v).id == holder.id => {
                let _ = ssm::overwrite(&aws, &name, &holder.renewed().to_json()).await;
            }
            Ok(_) => return,
            Err(_) => {} // try again at the next tick
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_lease_is_live_and_an_old_one_expired() {
        let live = Holder::new("deploy");
        assert!(!live.expired());
        let old = Holder {
            expires: "2020-01-01T00:00:00Z".into(),
            ..live.clone()
        };
        assert!(old.expired());
        assert_eq!(Holder::parse(&live.to_json()), live);
    }

    #[test]
    fn a_lease_of_a_dead_process_here_is_dead_and_of_a_live_one_or_elsewhere_is_not() {
        let mut held = Holder::new("deploy");
        assert!(!held.died_here(), "this very test process holds it");
        held.pid = u32::MAX - 1; // no such process
        assert!(held.died_here());
        held.host = "another-host".into();
        assert!(!held.died_here(), "nothing is known of another host");
    }

    #[test]
    fn an_unreadable_lease_is_never_taken_for_expired() {
        let odd = Holder::parse("not json");
        assert!(!odd.expired());
        assert!(odd.describe().contains("unreadable"), "{}", odd.describe());
    }

    #[test]
    fn each_stack_and_stage_has_its_own_parameter() {
        let a = Names::new("orders", "a-b", "us-east-1", "1");
        let b = Names::new("orders-a", "b", "us-east-1", "1");
        assert_ne!(parameter_name(&a), parameter_name(&b));
        assert_eq!(parameter_name(&a), "/stepgate/orders/a-b/lock");
    }
}
