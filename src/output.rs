//! All output goes through here. stdout carries the command's result (text,
//! or one JSON document with `--output json`); progress and diagnostics go
//! to stderr, so `stepgate outputs --output json | jq` always works.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::io::IsTerminal;

use serde::Serialize;
use serde_json::Value;

use crate::plan::{Action, FieldChange, ResourcePlan};

mod ids;
mod progress;

pub use progress::Step;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Bumped only on a breaking change to the JSON documents (docs/json-output.md).
pub const SCHEMA: &str = "stepgate/v1";

pub struct Printer {
    pub format: Format,
    quiet: bool,
}

impl Printer {
    pub fn new(format: Format, quiet: bool) -> Printer {
        Printer { format, quiet }
    }

    /// A progress line on stderr (never stdout, which is for results).
    pub fn progress(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    /// The command's result: `text` for people, `json` for machines.
    pub fn result(&self, text: &str, json: &impl Serialize) {
        match self.format {
            Format::Text => {
                if !text.is_empty() {
                    println!("{text}");
                }
            }
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(json).expect("report serializes")
            ),
        }
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
        eprintln!("error: {}", ids::clean(&one_line(err)));
    }
}

/// The error and its causes on one line: `a: b: c`, skipping a cause already
/// contained in the text before it.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// AWS calls made, for the reports: tests and benchmarks count them.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Calls {
    pub total: u32,
    /// Calls that change the stack; the lock's own calls are not counted
    /// here, so a converged deploy still reports 0.
    pub mutating: u32,
    /// Calls that take, read or release the stage's lock.
    pub lock: u32,
    pub by_operation: BTreeMap<String, u32>,
}

impl Calls {
    pub fn from_counts(by_operation: BTreeMap<String, u32>) -> Calls {
        use crate::aws::calls::{is_lock, is_mutating};
        let count = |keep: &dyn Fn(&str) -> bool| {
            by_operation
                .iter()
                .filter(|(op, _)| keep(op))
                .map(|(_, n)| n)
                .sum()
        };
        Calls {
            total: count(&|_| true),
            mutating: count(&|op| is_mutating(op) && !is_lock(op)),
            lock: count(&is_lock),
            by_operation,
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{} AWS calls, {} mutating, {} for the lock",
            self.total, self.mutating, self.lock
        )
    }
}

/// The plan as text: one line per resource, and for updates each field
/// that differs, with a line diff for documents.
pub fn plan_text(resources: &[ResourcePlan]) -> String {
    let mut out = String::new();
    for r in resources {
        let sign = match r.action {
            Action::Create => "+",
            Action::Update => "~",
            Action::NoChange => "=",
            Action::Conflict => "!",
        };
        let word = match r.action {
            Action::Create => "create",
            Action::Update => "update",
            Action::NoChange => "no change",
            Action::Conflict => "conflict: exists, not owned by this stack and stage",
        };
        out.push_str(&format!("{sign} {} ({word})\n", r.resource));
        for change in &r.changes {
            out.push_str(&change_text(change));
        }
    }
    let count = |a| resources.iter().filter(|r| r.action == a).count();
    out.push_str(&format!(
        "Plan: {} to create, {} to update, {} unchanged, {} in conflict.",
        count(Action::Create),
        count(Action::Update),
        count(Action::NoChange),
        count(Action::Conflict)
    ));
    out
}

fn change_text(c: &FieldChange) -> String {
    let show = |v: &Value| match v {
        Value::Null => "(none)".to_string(),
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    let multi = |v: &Value| match v {
        Value::String(s) => s.contains('\n'),
        Value::Object(_) | Value::Array(_) => true,
        _ => false,
    };
    if !multi(&c.live) && !multi(&c.desired) {
        return format!(
            "    {}: {} -> {}\n",
            c.field,
            show(&c.live),
            show(&c.desired)
        );
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => serde_json::to_string_pretty(other).expect("json"),
    };
    let (live, desired) = (text(&c.live), text(&c.desired));
    let mut out = format!("    {}:\n", c.field);
    for change in similar::TextDiff::from_lines(&live, &desired).iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => "-",
            similar::ChangeTag::Insert => "+",
            similar::ChangeTag::Equal => " ",
        };
        out.push_str(&format!("      {sign} {}", change.value()));
        if !change.value().ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Kind, ResourceId};
    use serde_json::json;

    #[test]
    fn plan_text_shows_fields_and_document_diffs() {
        let r = ResourcePlan {
            resource: ResourceId {
                kind: Kind::Function,
                name: "f".into(),
            },
            action: Action::Update,
            changes: vec![
                FieldChange {
                    field: "memory".into(),
                    live: json!(128),
                    desired: json!(256),
                },
                FieldChange {
                    field: "methods.POST.integration.requestTemplates.application/json".into(),
                    live: json!("a\nb\n"),
                    desired: json!("a\nc\n"),
                },
            ],
        };
        let text = plan_text(&[r]);
        assert!(text.contains("~ function f (update)"), "{text}");
        assert!(text.contains("memory: 128 -> 256"), "{text}");
        assert!(text.contains("- b") && text.contains("+ c"), "{text}");
        assert!(text.ends_with("Plan: 0 to create, 1 to update, 0 unchanged, 0 in conflict."));
    }

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
    /// Whether anything changed (deploy, destroy) or would change (plan).
    pub changed: bool,
    pub resources: Vec<ResourceReport>,
    pub aws_calls: Calls,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Outputs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<crate::aws::sfn::ExecutionResult>,
    /// plan and unlock: who holds (held) the stage's lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<crate::lock::Holder>,
    pub duration_seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResourceReport {
    pub kind: crate::plan::Kind,
    pub name: String,
    /// plan/deploy: create, update, no-change, conflict;
    /// destroy: delete, absent, left-alone, failed.
    pub action: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ids::serialize_clean"
    )]
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
            error: None,
        }
    }
}

/// What the next pipeline step needs from a deployed stack.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Outputs {
    pub api_url: Option<String>,
    pub api_id: Option<String>,
    pub stage: String,
    pub region: String,
    pub account: String,
    pub state_machine_arn: String,
    pub function_arns: BTreeMap<String, String>,
    pub role_arns: BTreeMap<String, String>,
    pub log_groups: Vec<String>,
}

impl Outputs {
    pub fn text(&self) -> String {
        let mut out = format!(
            "api_url                {}\n",
            self.api_url.as_deref().unwrap_or("(not deployed)")
        );
        out.push_str(&format!(
            "state_machine_arn      {}\n",
            self.state_machine_arn
        ));
        for (k, v) in &self.function_arns {
            out.push_str(&format!("function {k:<14}{v}\n"));
        }
        for (k, v) in &self.role_arns {
            out.push_str(&format!("role {k:<18}{v}\n"));
        }
        for g in &self.log_groups {
            out.push_str(&format!("log_group              {g}\n"));
        }
        out.trim_end().to_string()
    }
}
