//! `stepgate unlock`: remove the stage's lock, whoever holds it.

use std::time::Instant;

use anyhow::Result;

use super::{connect, report, Status};
use crate::config::Settings;
use crate::lock;
use crate::output::Printer;

/// Removes the stage's lock, whoever holds it.
pub(super) async fn unlock(settings: &Settings, printer: &Printer) -> Result<Status> {
    let started = Instant::now();
    let (aws, names) = connect(settings).await?;
    let held = lock::force_unlock(&aws, &names).await?;
    let text = match &held {
        Some(holder) => format!(
            "Removed the lock of stack {} stage {}, held by {}.",
            names.stack,
            names.stage,
            holder.describe()
        ),
        None => format!(
            "Stack {} stage {} was not locked.",
            names.stack, names.stage
        ),
    };
    let mut report = report("unlock", &names, &aws, started);
    report.changed = held.is_some();
    report.lock = held;
    printer.result(&text, &report);
    Ok(Status::Ok)
}
