//! `stepgate logs`: the stack's log events, merged by time, or followed.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::{connect, log_groups, not_deployed, report, Status};
use crate::config::Settings;
use crate::output::Printer;
use crate::project::Project;

/// How often `logs --follow` asks for new events.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// The stack's log events since `since` ago, oldest first; with `follow`,
/// then every second the new ones, until Ctrl-C or SIGTERM.
pub(super) async fn logs(
    settings: &Settings,
    source: Option<String>,
    since: Duration,
    follow: bool,
    printer: &Printer,
) -> Result<Status> {
    let started = Instant::now();
    let project = Project::load(settings)?;
    if follow && printer.format == crate::output::Format::Json {
        bail!("--follow prints events as they come, one line each; --output json prints one document at the end: use one or the other");
    }
    let (aws, names) = connect(settings).await?;
    let groups = log_groups(&project, &names, source.as_deref())?;
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default()
    };
    let mut cursor = now_ms() - since.as_millis() as i64;
    // Ids of the events already printed at or after the cursor: the next
    // poll starts at the cursor, inclusive, so they come again.
    let mut seen: std::collections::BTreeMap<String, i64> = Default::default();
    let shown = loop {
        let fetched = futures::future::join_all(
            groups
                .iter()
                .map(|(source, group)| crate::kinds::logs::events(&aws, source, group, cursor)),
        )
        .await;
        let mut batch = Vec::new();
        for ((_, group), events) in groups.iter().zip(fetched) {
            let events = match events {
                Ok(events) => events,
                // Ctrl-C during --follow: the refused call is how it ends.
                Err(_) if follow && crate::interrupt::received().is_some() => {
                    return Ok(Status::Ok)
                }
                Err(e) => return Err(e),
            };
            match events {
                Some(events) => batch.extend(events),
                None => bail!("log group {group} does not exist: {}", not_deployed(&names)),
            }
        }
        batch.retain(|e| !seen.contains_key(&e.event_id));
        batch.sort_by_key(|e| e.timestamp_ms);
        if let Some(last) = batch.last() {
            cursor = cursor.max(last.timestamp_ms);
        }
        for e in &batch {
            seen.insert(e.event_id.clone(), e.timestamp_ms);
        }
        seen.retain(|_, ts| *ts >= cursor);
        if !follow {
            break batch;
        }
        let text = logs_text(&batch, source.is_none());
        if !text.is_empty() {
            printer.result(&text, &());
        }
        // Sleep in short steps so that Ctrl-C ends the wait at once.
        let wake = Instant::now() + FOLLOW_EVERY;
        while Instant::now() < wake && crate::interrupt::received().is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if crate::interrupt::received().is_some() {
            return Ok(Status::Ok);
        }
    };
    let text = if shown.is_empty() {
        format!(
            "No log events in the last {}.",
            humantime::format_duration(since)
        )
    } else {
        logs_text(&shown, source.is_none())
    };
    let mut report = report("logs", &names, &aws, started);
    report.log_events = Some(shown);
    printer.result(&text, &report);
    Ok(Status::Ok)
}

/// One line per event (a message's own line breaks kept): the time, the
/// source when several are shown, the message.
pub(super) fn logs_text(events: &[crate::report::LogEvent], with_source: bool) -> String {
    events
        .iter()
        .map(|e| {
            if with_source {
                format!("{} {:<13} {}", e.time, e.source, e.message)
            } else {
                format!("{} {}", e.time, e.message)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
