//! `stepgate plan`: what deploy would change, field by field; never a change.

use std::time::Instant;

use anyhow::Result;

use super::{connect, inputs, report, Status};
use crate::config::Settings;
use crate::engine;
use crate::lock;
use crate::output::{Printer, ResourceReport};
use crate::stack::Stack;

pub(super) async fn plan(
    settings: &Settings,
    detailed_exitcode: bool,
    printer: &Printer,
) -> Result<Status> {
    let started = Instant::now();
    let checked = super::local_checks::local(settings, None, printer)?;
    let (aws, names) = connect(settings).await?;
    let mut stack = Stack::desired(&inputs(settings, &checked, &names, &aws));
    stack.find_extra(&aws).await?;
    // plan takes no lock, but says when a deploy or destroy holds one.
    let (live, held) = tokio::join!(engine::observe(&aws, &stack), lock::holder(&aws, &names));
    let (live, held) = (live?, held?);
    if let Some(holder) = &held {
        printer.progress(&format!(
            "Note: stack {} stage {} is locked by {}; what it is changing may not show yet",
            names.stack,
            names.stage,
            holder.describe()
        ));
    }
    let plan = engine::plan(&stack, &live);
    let mut report = report("plan", &names, &aws, started);
    report.lock = held;
    report.changed = plan.has_changes();
    report.resources = plan.resources.iter().map(ResourceReport::from).collect();
    debug_assert_eq!(
        report.aws_calls.mutating, 0,
        "plan must never change anything"
    );
    printer.plan(&plan.resources, &report);
    // A conflict is not a change deploy could make: deploy would fail on it.
    // The same line deploy would fail with, and its fix.
    if let Some(first) = plan.conflicts().first() {
        return Err(engine::conflict(&stack, &live, first));
    }
    Ok(if detailed_exitcode && plan.has_changes() {
        Status::Changes
    } else {
        Status::Ok
    })
}
