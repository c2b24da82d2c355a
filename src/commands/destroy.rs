//! `stepgate destroy`: everything the stage owns, found by inventory, deleted in reverse.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::{connect, release, report, Status};
use crate::aws::Aws;
use crate::config::Settings;
use crate::engine;
use crate::lock;
use crate::names::Names;
use crate::output::{Printer, ResourceReport};
use crate::stack::Stack;

pub(super) async fn destroy(
    settings: &Settings,
    yes: bool,
    lock_timeout: Option<Duration>,
    printer: &Printer,
) -> Result<Status> {
    let started = Instant::now();
    if !yes && !crate::output::stdin_is_terminal() {
        bail!("destroy needs confirmation and there is no terminal to ask on; pass --yes to confirm non-interactively");
    }
    let (aws, names) = connect(settings).await?;
    // Releasing the lock deletes its parameter: the last thing destroy removes.
    let lock = lock::acquire(&aws, &names, "destroy", lock_timeout, printer).await?;
    let result = destroy_locked(&aws, &names, yes, started, printer).await;
    let result = match result {
        Ok(status) => super::note_leftovers(&aws, settings, printer)
            .await
            .map(|()| status),
        failed => failed,
    };
    release(lock, result, printer).await
}

pub(super) async fn destroy_locked(
    aws: &Aws,
    names: &Names,
    yes: bool,
    started: Instant,
    printer: &Printer,
) -> Result<Status> {
    let mut stack = Stack::existing(names.clone());
    stack.find_all(aws).await?;
    let live = engine::observe(aws, &stack).await?;
    if !yes {
        let owned = live
            .values()
            .flatten()
            .filter(|o| o.owned_by(&names.stack, &names.stage))
            .count();
        let answer = printer.ask(&format!(
            "Destroy stack {} stage {} in account {} {} ({owned} resources)? Type the stage name to confirm: ",
            names.stack, names.stage, names.account, names.region
        ))?;
        if answer.trim() != names.stage {
            bail!("not confirmed; nothing was deleted");
        }
    }
    let removals = engine::destroy(aws, &stack, &live, printer).await;
    let mut report = report("destroy", names, aws, started);
    report.changed = removals.iter().any(|r| r.action == "delete");
    report.resources = removals
        .iter()
        .map(|r| ResourceReport {
            kind: r.resource.kind,
            name: r.resource.name.clone(),
            action: r.action.to_string(),
            changes: Vec::new(),
            note: r.note.map(str::to_string),
            error: r.error.clone(),
        })
        .collect();
    let failed: Vec<String> = removals
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.resource)))
        .collect();
    let count = |a: &str| removals.iter().filter(|r| r.action == a).count();
    let text = format!(
        "Destroyed: {} deleted, {} already absent, {} left alone (not owned), {} kept (shared), {} failed.",
        count("delete"),
        count("absent"),
        count("left-alone"),
        count("kept"),
        failed.len()
    );
    printer.summary(&report);
    printer.result(&text, &report);
    if let Some(signal) = crate::interrupt::received() {
        bail!("interrupted by {signal}; run destroy again to remove what is left");
    }
    if !failed.is_empty() {
        bail!(
            "destroy could not delete {} resource(s): {}; run destroy again once fixed",
            failed.len(),
            failed.join("; ")
        );
    }
    Ok(Status::Ok)
}
