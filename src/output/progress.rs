//! What a deploy or destroy says while it works: a line per resource as it
//! settles, and a closing summary.

use std::time::Instant;

use super::{ids, Printer, Report, ResourceReport};
use crate::plan::{Action, ResourceId};

/// What is being done to a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Create,
    Update,
    Delete,
}

impl From<Action> for Step {
    fn from(action: Action) -> Step {
        match action {
            Action::Create => Step::Create,
            _ => Step::Update,
        }
    }
}

/// One resource in flight, from `resource_started` to `resource_finished`.
#[must_use = "pass it to Printer::resource_finished"]
pub struct Task {
    id: ResourceId,
    step: Step,
    started: Instant,
}

impl Printer {
    /// A resource is about to be created, updated or deleted.
    pub fn resource_started(&self, id: &ResourceId, step: Step) -> Task {
        Task {
            id: id.clone(),
            step,
            started: Instant::now(),
        }
    }

    /// It is done, or failed with `error`.
    pub fn resource_finished(&self, task: Task, error: Option<&anyhow::Error>) {
        self.progress(&settled_plain(&task, error));
    }

    /// destroy found it, but it is not this stack and stage's to delete.
    pub fn left_alone(&self, id: &ResourceId, stack: &str, stage: &str) {
        self.progress(&format!(
            "left alone {id}: it exists but is not owned by stack {stack} stage {stage}"
        ));
    }

    /// The closing line of a deploy: time and AWS calls.
    pub fn summary(&self, report: &Report) {
        if report.command == "deploy" {
            self.progress(&format!(
                "Done in {:.1}s: {}.",
                report.duration_seconds,
                report.aws_calls.summary()
            ));
        }
    }

    /// The result of a deploy that stopped early: each resource it meant to
    /// change, done or not, so a person sees what now exists.
    pub fn stopped(&self, report: &Report) {
        self.result(&stopped_text(&report.resources), report);
    }
}

/// The line a settled resource leaves without a terminal (the contract
/// pinned by tests/terminal.rs): the cause of a failed create or update is
/// in the one error line at the end; destroy, which goes on past failures,
/// names each one as it happens.
fn settled_plain(task: &Task, error: Option<&anyhow::Error>) -> String {
    let id = &task.id;
    let secs = task.started.elapsed().as_secs_f64();
    match (task.step, error) {
        (Step::Create, None) => format!("created {id} ({secs:.1}s)"),
        (Step::Update, None) => format!("updated {id} ({secs:.1}s)"),
        (Step::Delete, None) => format!("deleted {id}"),
        (Step::Delete, Some(e)) => format!("failed {id}: {}", ids::clean(&format!("{e:#}"))),
        (_, Some(_)) => format!("failed {id}"),
    }
}

fn stopped_text(resources: &[ResourceReport]) -> String {
    let mut out = String::from("The deploy stopped before the end:");
    for r in resources.iter().filter(|r| r.action != "no-change") {
        let state = match &r.error {
            None => "done".to_string(),
            Some(e) => format!("not done: {}", ids::clean(e)),
        };
        out.push_str(&format!(
            "\n  {} {} {}: {state}",
            r.action,
            r.kind.as_str(),
            r.name
        ));
    }
    out
}
