//! What a deploy or destroy says while it works: a line per resource as it
//! settles, and a closing summary.
//!
//! Without a terminal (a pipe, CI, `--output json`) these are the plain
//! lines pipelines have always read, pinned by tests/terminal.rs. On a
//! terminal each resource in flight has a live line (spinner, action, id,
//! elapsed time) that settles into its coloured result, and the run ends
//! with a summary: counts by outcome, time, AWS calls. Live lines need
//! escape sequences, so `NO_COLOR` (or `TERM=dumb`) keeps the settled
//! lines and the summary but drops the spinners.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressState, ProgressStyle};

use super::style::{paint, CONFLICT, CREATE, DELETE, DIM, FAILED, UPDATE};
use super::{Printer, Report, ResourceReport};
use crate::model::ResourceId;
use crate::plan::Action;
use crate::report::Calls;
use crate::retrying;

/// How progress reaches stderr.
pub(super) enum View {
    /// No terminal: the plain lines.
    Plain,
    /// A terminal: settled lines in colour and a summary, with a live line
    /// per resource in flight when `live` is set.
    Terminal { live: Option<MultiProgress> },
}

impl View {
    pub(super) fn live(&self) -> Option<&MultiProgress> {
        match self {
            View::Terminal { live } => live.as_ref(),
            View::Plain => None,
        }
    }
}

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
            Action::Create | Action::Replace => Step::Create,
            Action::Delete => Step::Delete,
            _ => Step::Update,
        }
    }
}

impl Step {
    /// The live line's verb, the settled line's, its sign and colour.
    fn words(self) -> (&'static str, &'static str, &'static str, anstyle::Style) {
        match self {
            Step::Create => ("creating", "created", "+", CREATE),
            Step::Update => ("updating", "updated", "~", UPDATE),
            Step::Delete => ("deleting", "deleted", "-", DELETE),
        }
    }
}

/// One resource in flight, from `resource_started` to `resource_finished`.
#[must_use = "pass it to Printer::resource_finished"]
pub struct Task {
    id: ResourceId,
    step: Step,
    started: Instant,
    bar: Option<ProgressBar>,
}

/// A live line: spinner, what is done to `id`, the time so far, and the
/// call retrying for it, once that has gone on for 2 s.
fn spinner_style(id: ResourceId) -> ProgressStyle {
    ProgressStyle::with_template("  {spinner} {msg}  {secs}{retry}")
        .expect("template parses")
        .with_key(
            "secs",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&paint(DIM, seconds(state.elapsed())));
            },
        )
        .with_key(
            "retry",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                if let Some(r) = retrying::retrying_for(&id) {
                    let _ = write!(w, "  {}", paint(CONFLICT, r.describe()));
                }
            },
        )
}

/// Shows, on a line of its own, a call made for no one resource (STS, the
/// reads of `plan`, the lock) once it has been retrying for 2 s; removes
/// the line when it is over. Runs for the life of the process.
pub(super) fn watch_retries_outside(multi: MultiProgress) {
    std::thread::spawn(move || {
        let mut shown: Option<ProgressBar> = None;
        loop {
            match (retrying::retrying_outside(), &shown) {
                (Some(r), Some(bar)) => bar.set_message(r.describe()),
                (Some(r), None) => {
                    let bar = multi.add(
                        ProgressBar::new_spinner()
                            .with_style(
                                ProgressStyle::with_template("  {spinner} {msg}")
                                    .expect("template parses"),
                            )
                            .with_message(r.describe()),
                    );
                    bar.enable_steady_tick(Duration::from_millis(100));
                    shown = Some(bar);
                }
                (None, Some(bar)) => {
                    bar.finish_and_clear();
                    multi.remove(bar);
                    shown = None;
                }
                (None, None) => {}
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl Printer {
    /// A resource is about to be created, updated or deleted.
    pub fn resource_started(&self, id: &ResourceId, step: Step) -> Task {
        let bar = self.view.live().filter(|_| !self.quiet).map(|multi| {
            let (doing, ..) = step.words();
            let bar = multi.add(
                ProgressBar::new_spinner()
                    .with_style(spinner_style(id.clone()))
                    .with_message(format!("{doing} {id}")),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Task {
            id: id.clone(),
            step,
            started: Instant::now(),
            bar,
        }
    }

    /// It is done, or failed with `error`.
    pub fn resource_finished(&self, task: Task, error: Option<&anyhow::Error>) {
        if let (Some(bar), Some(multi)) = (&task.bar, self.view.live()) {
            bar.finish_and_clear();
            multi.remove(bar);
        }
        let line = match self.view {
            View::Plain => settled_plain(&task, error),
            View::Terminal { .. } => settled_terminal(&task, error),
        };
        self.progress(&line);
    }

    /// destroy found it, but it is not this stack and stage's to delete.
    pub fn left_alone(&self, id: &ResourceId, stack: &str, stage: &str) {
        let why = format!("it exists but is not owned by stack {stack} stage {stage}");
        self.progress(&match self.view {
            View::Plain => format!("left alone {id}: {why}"),
            View::Terminal { .. } => format!("  {} {id}: {why}", paint(CONFLICT, "! left alone")),
        });
    }

    /// destroy found it, and keeps it: the account shares it between stacks.
    pub fn kept(&self, id: &ResourceId, why: &str) {
        self.progress(&match self.view {
            View::Plain => format!("kept {id}: {why}"),
            View::Terminal { .. } => format!("  {} {id}: {why}", paint(DIM, "= kept    ")),
        });
    }

    /// The closing summary of a deploy or destroy. Without a terminal,
    /// deploy's one `Done in` line, as it always was (destroy had none).
    pub fn summary(&self, report: &Report) {
        match self.view {
            View::Plain if report.command == "deploy" => self.progress(&format!(
                "Done in {:.1}s: {}.",
                report.duration_seconds,
                report.aws_calls.summary()
            )),
            View::Plain => {}
            View::Terminal { .. } => self.progress(&summary_terminal(report)),
        }
    }

    /// The result of a deploy that stopped early: each resource it meant to
    /// change, done or not, so a person sees what now exists.
    pub fn stopped(&self, report: &Report) {
        self.result(&stopped_text(&report.resources), report);
    }
}

/// `  + created  function orders-dev-completeOrder  0.4s`
fn settled_terminal(task: &Task, error: Option<&anyhow::Error>) -> String {
    let (_, done, sign, style) = task.step.words();
    let time = paint(DIM, seconds(task.started.elapsed()));
    match error {
        None => format!(
            "  {} {}  {time}",
            paint(style, format!("{sign} {done:<8}")),
            task.id
        ),
        Some(e) => {
            let mut line = format!("  {} {}  {time}", paint(FAILED, "! failed  "), task.id);
            // As without a terminal: destroy names each failure as it goes,
            // a deploy's cause is in the one error line at the end.
            if task.step == Step::Delete {
                let _ = write!(line, ": {e:#}");
            }
            line
        }
    }
}

/// `Done in 1.3s: 8 created, 3 unchanged. 46 AWS calls: 29 mutating, 16 reads, 1 for the lock.`
fn summary_terminal(report: &Report) -> String {
    let count = |action: &str| {
        report
            .resources
            .iter()
            .filter(|r| r.action == action && r.error.is_none())
            .count()
    };
    let failed = report
        .resources
        .iter()
        .filter(|r| r.error.is_some())
        .count();
    let outcomes = [
        (count("create"), "created", CREATE),
        (count("update"), "updated", UPDATE),
        (count("delete"), "deleted", DELETE),
        (count("no-change"), "unchanged", DIM),
        (count("absent"), "already absent", DIM),
        (count("left-alone"), "left alone", CONFLICT),
        (count("kept"), "kept", DIM),
        (failed, "failed", FAILED),
    ];
    let mut counts: Vec<String> = outcomes
        .iter()
        .filter(|(n, ..)| *n > 0)
        .map(|(n, word, style)| paint(*style, format!("{n} {word}")))
        .collect();
    if counts.is_empty() {
        counts.push("nothing to do".into());
    }
    format!(
        "Done in {:.1}s: {}. {}.",
        report.duration_seconds,
        counts.join(", "),
        calls_terminal(&report.aws_calls)
    )
}

fn calls_terminal(calls: &Calls) -> String {
    format!(
        "{} AWS calls: {} mutating, {} reads, {} for the lock",
        calls.total,
        calls.mutating,
        calls.total - calls.mutating - calls.lock,
        calls.lock
    )
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
        (Step::Delete, Some(e)) => format!("failed {id}: {e:#}"),
        (_, Some(_)) => format!("failed {id}"),
    }
}

fn stopped_text(resources: &[ResourceReport]) -> String {
    let mut out = String::from("The deploy stopped before the end:");
    for r in resources.iter().filter(|r| r.action != "no-change") {
        let state = match &r.error {
            None => "done".to_string(),
            Some(e) => format!("not done: {e}"),
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
