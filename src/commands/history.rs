//! `stepgate history`: a state machine's published versions, newest first,
//! and which of them `live` serves.

use std::time::Instant;

use anyhow::{bail, Result};
use futures::StreamExt;

use super::{connect, not_deployed, pick, report, Status};
use crate::config::Settings;
use crate::kinds::{logs, machine_alias, machine_version};
use crate::output::Printer;
use crate::project::Project;
use crate::report::VersionEntry;

/// How many versions DescribeStateMachine is asked about at once.
const DESCRIBE_CONCURRENCY: usize = 8;

pub(super) async fn history(
    settings: &Settings,
    state_machine: Option<&str>,
    printer: &Printer,
) -> Result<Status> {
    let started = Instant::now();
    let project = Project::load(settings)?;
    let machine = pick(
        "--state-machine",
        state_machine,
        project.machines.keys(),
        "state machine",
    )?;
    let (aws, names) = connect(settings).await?;
    let Some(versions) =
        machine_version::versions(&aws, &names.state_machine_arn(&machine)).await?
    else {
        bail!("{}", not_deployed(&names));
    };
    let routing = machine_alias::routing(&aws, &names.alias_arn(&machine))
        .await?
        .unwrap_or_default();
    let aws = &aws;
    let entries: Vec<Result<VersionEntry>> = futures::stream::iter(versions)
        .map(|v| {
            let weight = routing.iter().find(|(arn, _)| *arn == v.arn).map(|r| r.1);
            async move {
                Ok(VersionEntry {
                    description: machine_version::description(aws, &v.arn).await?,
                    version: v.number,
                    created: logs::format_millis((v.created * 1000.0) as i64),
                    arn: v.arn,
                    live_weight: weight,
                })
            }
        })
        .buffered(DESCRIBE_CONCURRENCY)
        .collect()
        .await;
    let entries = entries.into_iter().collect::<Result<Vec<_>>>()?;
    let text = history_text(&machine, &entries);
    let mut report = report("history", &names, aws, started);
    report.versions = Some(entries);
    printer.result(&text, &report);
    Ok(Status::Ok)
}

fn history_text(machine: &str, entries: &[VersionEntry]) -> String {
    if entries.is_empty() {
        return format!("{machine} has no published versions; deploy publishes one.");
    }
    let mut out = format!(
        "{:<8} {:<24} {:<10} {}\n",
        "VERSION", "PUBLISHED", "LIVE", "DESCRIPTION"
    );
    for e in entries {
        let live = match e.live_weight {
            Some(w) => format!("live {w}%"),
            None => "-".into(),
        };
        out.push_str(&format!(
            "{:<8} {:<24} {:<10} {}\n",
            e.version,
            e.created,
            live,
            e.description.as_deref().unwrap_or("-")
        ));
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_marks_the_version_live_serves() {
        let entry = |version: u64, live_weight| VersionEntry {
            version,
            arn: format!("arn:aws:states:us-east-1:1:stateMachine:m:{version}"),
            created: "2026-12-04T23:00:00.000Z".into(),
            description: Some(format!("stepgate commit abc{version}")),
            live_weight,
        };
        assert_eq!(
            history_text("OrderProcessor", &[entry(2, None), entry(1, Some(100))]),
            "VERSION  PUBLISHED                LIVE       DESCRIPTION\n\
             2        2026-12-04T23:00:00.000Z -          stepgate commit abc2\n\
             1        2026-12-04T23:00:00.000Z live 100%  stepgate commit abc1"
        );
    }
}
