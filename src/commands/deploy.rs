//! `stepgate deploy`: check, lock, observe, plan, apply, prune, report.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::local_checks::Checked;
use super::{api_resource, connect, inputs, outputs_for, release, report, Status};
use crate::aws::Aws;
use crate::config::Settings;
use crate::engine;
use crate::lock;
use crate::names::Names;
use crate::output::{Printer, ResourceReport};
use crate::stack::Stack;

/// What this deploy is asked for besides the settings.
pub(super) struct Run {
    /// `--outputs-file`.
    pub outputs_file: Option<PathBuf>,
    /// `--adopt`: take the untagged resources plan lists as adopt.
    pub adopt: bool,
}

pub(super) async fn deploy(
    settings: &Settings,
    run: Run,
    lock_timeout: Option<Duration>,
    printer: &Printer,
) -> Result<Status> {
    let started = Instant::now();
    let checked = super::local_checks::local(settings, run.outputs_file.as_deref(), printer)?;
    let (aws, names) = connect(settings).await?;
    // Once AWS answers: a run refused before prints its one error line only.
    super::note_open_routes(&checked.project, printer);
    let lock = lock::acquire(&aws, &names, "deploy", lock_timeout, printer).await?;
    let result = deploy_locked(settings, &checked, &aws, &names, run, started, printer).await;
    release(lock, result, printer).await
}

pub(super) async fn deploy_locked(
    settings: &Settings,
    checked: &Checked,
    aws: &Aws,
    names: &Names,
    run: Run,
    started: Instant,
    printer: &Printer,
) -> Result<Status> {
    let Run {
        outputs_file,
        adopt,
    } = run;
    printer.progress(&format!(
        "Deploying stack {} stage {} to account {} in {}",
        names.stack, names.stage, names.account, names.region
    ));
    let mut stack = Stack::desired(&inputs(settings, checked, names, aws));
    stack.adopt_all = adopt;
    stack.find_extra(aws).await?;
    let live = engine::observe(aws, &stack).await?;
    let mut plan = engine::plan(&stack, &live);
    crate::adopt::leftovers::annotate(&mut plan.resources);
    for note in plan.notes() {
        printer.progress(&format!("Note: {note}"));
    }
    let setup = started.elapsed();
    let applied = if plan.has_changes() {
        engine::apply(aws, &stack, &live, &plan, printer).await?
    } else {
        printer.progress("No changes: the stack is up to date.");
        engine::Applied::nothing_yet(&live)
    };
    let api_id = applied
        .known
        .get(&api_resource(&checked.project, names))
        .map(|a| a.id.clone());
    let mut report = report("deploy", names, aws, started);
    report.timing = Some(crate::report::RunTiming {
        setup_seconds: setup.as_secs_f64(),
        apply_seconds: (started.elapsed() - setup).as_secs_f64(),
        critical_path: applied.critical_path(&stack),
    });
    report.changed = plan
        .resources
        .iter()
        .any(|p| applied.succeeded(&p.resource));
    // Every resource says what was planned and, if it did not happen, why:
    // a pipeline reading the JSON sees exactly where a failed run stopped.
    let interrupted = crate::interrupt::received();
    let why_not = match interrupted {
        Some(signal) => format!("not started: interrupted by {signal}"),
        None => "not attempted: the run stopped after another resource failed".to_string(),
    };
    report.resources = plan
        .resources
        .iter()
        .map(|p| {
            let mut r = ResourceReport::from(p);
            r.error = match applied.errors.get(&p.resource) {
                Some(e) => Some(e.clone()),
                None if p.action != crate::plan::Action::NoChange
                    && !applied.succeeded(&p.resource) =>
                {
                    Some(why_not.clone())
                }
                None => None,
            };
            r
        })
        .collect();
    // A signal between two resources fails nothing in flight, yet leaves
    // changes undone: that is a stopped deploy too.
    let undone = report.resources.iter().any(|r| r.error.is_some());
    if undone {
        printer.stopped(&report);
        let errors: Vec<&String> = applied.errors.values().collect();
        if let Some(signal) = interrupted {
            // What a resource did about the signal (a bake moving `live`
            // back) is said, not swallowed.
            let why = match errors.is_empty() {
                true => format!("interrupted by {signal}"),
                false => errors
                    .iter()
                    .map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            bail!("{why}; what was applied stays applied: run deploy again to finish, or destroy to remove it");
        }
        bail!(
            "{}; what succeeded stays applied, run deploy again once fixed",
            errors
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let outputs = outputs_for(&checked.project, names, aws, api_id);
    // Checked before deploying; should writing still fail, the result is
    // printed first, so nobody is left guessing whether the stack deployed.
    let written = match &outputs_file {
        Some(path) => std::fs::write(path, serde_json::to_string_pretty(&outputs)? + "\n")
            .with_context(|| format!("the stack is deployed, but --outputs-file {} cannot be written; its outputs are on stdout", path.display())),
        None => Ok(()),
    };
    report.outputs = Some(outputs.clone());
    printer.summary(&report);
    printer.result(&outputs.text(), &report);
    written?;
    Ok(Status::Ok)
}
