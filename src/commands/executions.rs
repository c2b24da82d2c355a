//! `stepgate executions`: a machine's recent executions.

use std::time::Instant;

use anyhow::{bail, Result};

use super::{connect, not_deployed, pick, report, Status};
use crate::config::Settings;
use crate::kinds::sfn;
use crate::output::Printer;
use crate::project::Project;

/// The stack's most recent executions, newest first.
pub(super) async fn executions(
    settings: &Settings,
    state_machine: Option<&str>,
    limit: usize,
    status: Option<&str>,
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
    let status = status.map(str::to_ascii_uppercase);
    let Some(list) = sfn::recent_executions(
        &aws,
        &names.state_machine_arn(&machine),
        limit,
        status.as_deref(),
    )
    .await?
    else {
        bail!("{}", not_deployed(&names));
    };
    let text = executions_text(&list);
    let mut report = report("executions", &names, &aws, started);
    report.executions = Some(list);
    printer.result(&text, &report);
    Ok(Status::Ok)
}

pub(super) fn executions_text(list: &[crate::report::ExecutionSummary]) -> String {
    if list.is_empty() {
        return "No executions.".to_string();
    }
    let mut out = format!(
        "{:<10} {:<24} {:>9}  {:<12} {:<22} {}\n",
        "STATUS", "START", "DURATION", "ORDER", "RESULT", "NAME"
    );
    for e in list {
        let result = e
            .result
            .clone()
            .or_else(|| e.error.clone())
            .unwrap_or_else(|| "-".to_string());
        out.push_str(&format!(
            "{:<10} {:<24} {:>8.2}s  {:<12} {:<22} {}\n",
            e.status,
            e.start,
            e.duration_seconds,
            e.order_id.as_deref().unwrap_or("-"),
            result,
            e.name
        ));
    }
    out.trim_end().to_string()
}
