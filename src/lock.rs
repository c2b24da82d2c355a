//! One deploy or destroy at a time per stack and stage, as Terraform locks
//! its state and CloudFormation refuses a second update of a stack in
//! progress. The lock is a lease in the target account: an SSM parameter
//! created without overwrite (atomic: of two runs, exactly one creates it),
//! holding who took it and until when.
//!
//! - Released on success, failure and Ctrl-C (`Lock::release`).
//! - A run that died (SIGKILL, a lost machine) cannot release it; its lease
//!   expires `LEASE` after it was last renewed, and the next run takes it
//!   over. On the machine it ran on, in the same PID namespace, the next
//!   run sees at once that the holder process is gone (its pid is free, or
//!   names a process that started at another time) and takes it over.
//!   Nothing else counts as death: not a command line without "stepgate"
//!   (a renamed binary, a wrapper), not a pid that cannot be seen (another
//!   container with the same hostname). `stepgate unlock` removes it at
//!   once from anywhere.
//! - A live run renews its lease every `RENEW_EVERY`, so a long deploy never
//!   loses it: five renewals in a row may fail (an outage of AWS or of the
//!   network) before it runs out, and a clock up to two and a half minutes
//!   ahead of the holder's still sees it live.
//!
//! Not guaranteed: two runs that find the same *expired* lease at the same
//! instant may both break it; each then creates the parameter anew, and only
//! one succeeds, unless one deletes it between the other's create and its
//! read-back. That window is a few milliseconds, once per expired lease.

pub use crate::report::Holder;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Result};

use crate::aws::{retry, ssm, Aws};
use crate::names::Names;
use crate::output::Printer;

/// How long a lease lasts unless renewed: how long a run that died
/// elsewhere (another host or container) blocks the stage.
pub const LEASE: Duration = Duration::from_secs(180);
const RENEW_EVERY: Duration = Duration::from_secs(30);

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
            boot_id: this_machine::boot_id(),
            pid_namespace: this_machine::pid_namespace(),
            start_time: this_machine::start_time(pid),
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

    /// Whether the holder is known for certain to have died: it ran on this
    /// very machine since its last boot (same boot id), in this PID
    /// namespace, and the process with its pid is gone or started at
    /// another time (the pid was reused). Then a run killed here need not
    /// wait for its lease to expire. Anything less certain (another host,
    /// another container that shares the hostname, a lease without these
    /// fields, /proc unreadable) is not evidence: the lease is left to expire.
    fn died_here(&self) -> bool {
        let (Some(boot_id), Some(namespace), Some(started)) =
            (&self.boot_id, &self.pid_namespace, self.start_time)
        else {
            return false;
        };
        if self.pid == 0
            || this_machine::boot_id().as_ref() != Some(boot_id)
            || this_machine::pid_namespace().as_ref() != Some(namespace)
            || !this_machine::proc_is_ours()
        {
            return false;
        }
        match this_machine::read_start_time(self.pid) {
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            Ok(now) => now.is_some_and(|now| now != started),
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
            boot_id: None,
            pid_namespace: None,
            start_time: None,
        })
    }

    fn to_json(&self) -> String {
        serde_json::to_string(self).expect("holder serializes")
    }
}

/// What /proc says about this machine and its processes; `None` where it
/// cannot be read (no /proc: not Linux, or not mounted).
mod this_machine {
    pub fn boot_id() -> Option<String> {
        let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        Some(id.trim().to_string()).filter(|id| !id.is_empty())
    }

    /// `pid:[4026531836]`: which PID namespace this process sees pids in.
    pub fn pid_namespace() -> Option<String> {
        let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
        Some(link.to_str()?.to_string())
    }

    /// The start time of process `pid` (field 22 of /proc/PID/stat), as
    /// this process's /proc shows it. `Err` if it cannot be read (no such
    /// process gives `NotFound`).
    pub fn read_start_time(pid: u32) -> std::io::Result<Option<u64>> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        Ok(parse_start_time(&stat))
    }

    pub fn start_time(pid: u32) -> Option<u64> {
        read_start_time(pid).ok().flatten()
    }

    /// `pid (comm) state ppid ...`: the command may hold spaces and
    /// parentheses, so fields are counted after the last `)`; the start
    /// time is the 22nd field, the 20th after it.
    pub fn parse_start_time(stat: &str) -> Option<u64> {
        let (_, rest) = stat.rsplit_once(')')?;
        rest.split_whitespace().nth(19)?.parse().ok()
    }

    /// Whether this process's /proc shows pids of its own PID namespace:
    /// /proc/self is this very process. (A /proc mounted from another
    /// namespace would show other processes under the same pids.)
    pub fn proc_is_ours() -> bool {
        std::fs::read_link("/proc/self")
            .ok()
            .and_then(|link| link.to_str()?.parse::<u32>().ok())
            == Some(std::process::id())
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
        held.boot_id = Some("another-boot".into());
        assert!(!held.died_here(), "nothing is known of another host");
    }

    /// A holder that is `child`, a live process, as its own run would
    /// have recorded it.
    fn held_by(child: &std::process::Child) -> Holder {
        let pid = child.id();
        Holder {
            pid,
            start_time: this_machine::start_time(pid),
            ..Holder::new("deploy")
        }
    }

    /// A live process whose command line does not say "stepgate": the
    /// binary installed under another name (here a link named `sg`), or
    /// run through a wrapper.
    fn renamed_process() -> std::process::Child {
        let dir = std::env::temp_dir().join(format!("sg-lock-{}", std::process::id()));
        // Nothing in the command line may say "stepgate", not even the
        // directory of the link.
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("sg");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/bin/sleep", &link).unwrap();
        std::process::Command::new(&link).arg("30").spawn().unwrap()
    }

    #[test]
    fn a_live_holder_under_another_name_is_live() {
        let mut child = renamed_process();
        let held = held_by(&child);
        assert!(held.start_time.is_some());
        let dead = held.died_here();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!dead, "a live run of a renamed binary was taken for dead");
        // Once it has exited, it is dead.
        assert!(held.died_here());
    }

    #[test]
    fn a_holder_in_another_pid_namespace_or_boot_is_never_taken_for_dead() {
        let here = Holder::new("deploy");
        let gone = u32::MAX - 1; // no such process in this namespace
        for other in [
            Holder {
                pid: gone,
                pid_namespace: Some("pid:[1]".into()),
                ..here.clone()
            },
            Holder {
                pid: gone,
                boot_id: Some("00000000-0000-0000-0000-000000000000".into()),
                ..here.clone()
            },
            // A container that shares the hostname but shows its own pids:
            // this very pid, with another start time, is someone else.
            Holder {
                start_time: here.start_time.map(|t| t + 1),
                pid_namespace: Some("pid:[1]".into()),
                ..here.clone()
            },
        ] {
            assert!(!other.died_here(), "{other:?}");
        }
    }

    #[test]
    fn a_reused_pid_is_a_dead_holder() {
        // This process's pid, as a process that started at another time
        // recorded it: that process has died, and its pid went to this one.
        let here = Holder::new("deploy");
        let before = Holder {
            start_time: here.start_time.map(|t| t.saturating_sub(1)),
            ..here.clone()
        };
        assert!(before.died_here());
        assert!(!here.died_here());
    }

    #[test]
    fn a_lease_without_the_process_identity_is_live_until_it_expires() {
        // As leases written before boot id, namespace and start time were
        // recorded: nothing can be known for certain, so only expiry frees it.
        let old = r#"{"id":"h-1-2","command":"deploy","host":"HOST","pid":4294967294,"since":"2026-01-01T00:00:00Z","expires":"2999-01-01T00:00:00Z"}"#
            .replace("HOST", &hostname());
        let held = Holder::parse(&old);
        assert_eq!(held.pid, u32::MAX - 1);
        assert!(!held.died_here() && !held.expired());
    }

    #[test]
    fn the_start_time_is_read_after_the_command_whatever_it_holds() {
        let stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1 1";
        assert_eq!(this_machine::parse_start_time(stat), Some(98765));
        assert_eq!(this_machine::parse_start_time("garbage"), None);
        assert!(this_machine::start_time(std::process::id()).is_some());
        assert!(this_machine::proc_is_ours());
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
