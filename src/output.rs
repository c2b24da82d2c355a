//! All output goes through here. stdout carries the command's result (text,
//! or one JSON document with `--output json`); progress and diagnostics go
//! to stderr, so `stepgate outputs --output json | jq` always works.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use indicatif::MultiProgress;
use serde::Serialize;
use serde_json::Value;

use crate::plan::{FieldChange, ResourcePlan};
use crate::report::Calls;
use crate::shown::one_line;

mod plan_markdown;
mod plan_text;
mod progress;
mod style;

pub use plan_markdown::{plan_markdown, Context as MarkdownContext};
pub use plan_text::{plan_text, rollout_text};
pub use progress::Step;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    // plan only: one Markdown document for a pull-request comment.
    Markdown,
}

/// Bumped only on a breaking change to the JSON documents (docs/json-output.md).
pub const SCHEMA: &str = "stepgate/v1";

pub struct Printer {
    pub format: Format,
    quiet: bool,
    /// `plan` lists unchanged resources too (`--show-unchanged`).
    show_unchanged: bool,
    view: progress::View,
    /// `-v`: `detail` lines are printed.
    verbose: u8,
}

/// How the command line asked for output.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub format: Format,
    pub quiet: bool,
    /// `-v`: logs go to stderr too, so progress is not redrawn over them.
    pub verbose: u8,
    pub show_unchanged: bool,
}

impl Printer {
    pub fn new(options: Options) -> Printer {
        let stderr = std::io::stderr();
        let view = if options.format == Format::Text && stderr.is_terminal() {
            // Live lines redraw with escape sequences: only where colour
            // (and so escapes) are welcome.
            let live = (style::enabled(&stderr) && options.verbose == 0).then(MultiProgress::new);
            if let Some(multi) = &live {
                progress::watch_retries_outside(multi.clone());
            }
            progress::View::Terminal { live }
        } else {
            progress::View::Plain
        };
        Printer {
            format: options.format,
            quiet: options.quiet,
            show_unchanged: options.show_unchanged,
            view,
            verbose: options.verbose,
        }
    }

    /// A diagnostic line on stderr, only with `-v` (where the credentials
    /// came from, say).
    pub fn detail(&self, line: &str) {
        if self.verbose > 0 {
            self.progress(line);
        }
    }

    /// A progress line on stderr (never stdout, which is for results);
    /// above the live lines when there are some.
    pub fn progress(&self, line: &str) {
        if self.quiet {
            return;
        }
        let line = crate::shown::redact_userinfo(line);
        match self.view.live() {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => {
                let _ = writeln!(anstream::stderr(), "{line}");
            }
        }
    }

    /// The command's result: `text` for people, `json` for machines.
    pub fn result(&self, text: &str, json: &impl Serialize) {
        match self.format {
            Format::Text | Format::Markdown => {
                if !text.is_empty() {
                    let _ = writeln!(anstream::stdout(), "{text}");
                }
            }
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(json).expect("report serializes")
            ),
        }
    }

    /// plan's result: what would change, and how many resources would not.
    pub fn plan(&self, resources: &[ResourcePlan], report: &Report) {
        let mut text = plan_text(resources, self.show_unchanged);
        text.push_str(&rollout_text(&report.rollouts));
        self.result(&text, report);
    }

    /// Asks on the terminal (prompt on stderr) and returns the answer.
    pub fn ask(&self, prompt: &str) -> anyhow::Result<String> {
        use std::io::Write;
        eprint!("{prompt}");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        Ok(answer)
    }

    pub fn error(&self, err: &anyhow::Error) {
        let _ = writeln!(
            anstream::stderr(),
            "{} {}",
            style::paint(style::FAILED, "error:"),
            crate::shown::redact_userinfo(&one_line(err))
        );
    }
}

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_print_as_one_line_without_repeats() {
        let e = anyhow::anyhow!("connection refused")
            .context("function/f: GetFunction")
            .context("deploy");
        assert_eq!(
            one_line(&e),
            "deploy: function/f: GetFunction: connection refused"
        );
    }
}

/// The JSON document every command prints with `--output json`
/// (documented in docs/json-output.md).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub command: &'static str,
    pub stack: String,
    pub stage: String,
    pub region: String,
    pub account: String,
    /// Who the run acted as (STS GetCallerIdentity's ARN): with --role-arn,
    /// the assumed role's session.
    pub identity: String,
    /// Whether anything changed (deploy, destroy) or would change (plan).
    pub changed: bool,
    pub resources: Vec<ResourceReport>,
    pub aws_calls: Calls,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Outputs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<crate::report::ExecutionResult>,
    /// invoke of a sync route: the HTTP answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<HttpAnswer>,
    /// executions: the most recent first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executions: Option<Vec<crate::report::ExecutionSummary>>,
    /// keys: the stage's API keys (values only with --reveal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<crate::report::KeyReport>>,
    /// logs: the events, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_events: Option<Vec<crate::report::LogEvent>>,
    /// deploy: where the time went, and the critical path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<crate::report::RunTiming>,
    /// plan and unlock: who holds (held) the stage's lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<crate::report::Holder>,
    /// history: the machine's versions, newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<crate::report::VersionEntry>>,
    /// rollback: where `live` moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<crate::report::Rollback>,
    /// plan: how each machine's `live` would move.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rollouts: Vec<crate::report::RolloutPlan>,
    pub duration_seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResourceReport {
    pub kind: crate::model::Kind,
    pub name: String,
    /// plan/deploy: create, update, no-change, conflict;
    /// destroy: delete, absent, left-alone, kept, failed.
    pub action: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// plan/deploy: someone else's resource used as it is; destroy: why
    /// it is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<&ResourcePlan> for ResourceReport {
    fn from(p: &ResourcePlan) -> ResourceReport {
        let action = serde_json::to_value(p.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        ResourceReport {
            kind: p.resource.kind,
            name: p.resource.name.clone(),
            action,
            changes: p.changes.clone(),
            note: p.note.clone(),
            error: None,
        }
    }
}

/// What the next pipeline step needs from a deployed stack.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Outputs {
    /// The first route's URL (the only one's, for the tutorial).
    pub api_url: Option<String>,
    pub api_id: Option<String>,
    pub stage: String,
    pub region: String,
    pub account: String,
    /// Every route with its URL and the machine it starts.
    pub routes: Vec<RouteOutput>,
    /// The first state machine's ARN (the only one's, for the tutorial).
    pub state_machine_arn: Option<String>,
    pub state_machine_arns: BTreeMap<String, String>,
    pub function_arns: BTreeMap<String, String>,
    pub role_arns: BTreeMap<String, String>,
    pub log_groups: Vec<String>,
}

/// One route as outputs list it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RouteOutput {
    /// `POST /recipes/{id}/move`.
    pub route: String,
    pub url: Option<String>,
    pub state_machine: String,
}

/// What a sync route answered: the HTTP status and the body.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: Value,
}

impl Outputs {
    pub fn text(&self) -> String {
        let mut out = String::new();
        if self.routes.len() <= 1 {
            out.push_str(&format!(
                "api_url                {}\n",
                self.api_url.as_deref().unwrap_or("(not deployed)")
            ));
        } else {
            for r in &self.routes {
                out.push_str(&format!(
                    "route {} {}\n",
                    r.route,
                    r.url.as_deref().unwrap_or("(not deployed)")
                ));
            }
        }
        if self.state_machine_arns.len() == 1 {
            if let Some(arn) = &self.state_machine_arn {
                out.push_str(&format!("state_machine_arn      {arn}\n"));
            }
        } else {
            for (k, v) in &self.state_machine_arns {
                out.push_str(&format!("{:<22} {v}\n", format!("state_machine {k}")));
            }
        }
        // Labels in a column of 22, always a space before the value.
        let line = |label: String, value: &str| format!("{label:<22} {value}\n");
        for (k, v) in &self.function_arns {
            out.push_str(&line(format!("function {k}"), v));
        }
        for (k, v) in &self.role_arns {
            out.push_str(&line(format!("role {k}"), v));
        }
        for g in &self.log_groups {
            out.push_str(&format!("log_group              {g}\n"));
        }
        out.trim_end().to_string()
    }
}
