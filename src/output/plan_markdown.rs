//! The plan as one Markdown document for a pull-request comment: a summary
//! line, a table of the changes, each resource's field diff collapsed, the
//! stack's Mermaid graph with what changes coloured, and notes. GitHub
//! refuses a comment over 65,536 characters, so the diffs go first when the
//! document would be longer, and the document says so.

use std::fmt::Write as _;

use serde_json::Value;

use crate::graph::{render, Graph, Shape};
use crate::plan::{Action, FieldChange, ResourcePlan};

/// GitHub's limit on a comment's body.
pub const COMMENT_LIMIT: usize = 65_536;

/// What the document is about, besides the plan itself.
pub struct Context<'a> {
    pub stack: &'a str,
    pub stage: &'a str,
    pub region: &'a str,
    /// The declared stack's graph; `node_of` finds a resource in it.
    pub graph: Graph,
    pub node_of: &'a dyn Fn(&ResourcePlan) -> Option<String>,
    /// Whether the graph draws resources of this one's kind.
    pub drawn: &'a dyn Fn(&ResourcePlan) -> bool,
    /// Said under Notes: open routes, what the account shares.
    pub notes: Vec<String>,
}

/// How much of the document fits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Detail {
    All,
    /// Field names in the table, no diffs.
    NoDiffs,
    /// And no graph.
    NoGraph,
}

pub fn plan_markdown(resources: &[ResourcePlan], ctx: Context<'_>) -> String {
    plan_markdown_within(resources, ctx, COMMENT_LIMIT)
}

fn plan_markdown_within(resources: &[ResourcePlan], ctx: Context<'_>, limit: usize) -> String {
    let mut doc = String::new();
    for detail in [Detail::All, Detail::NoDiffs, Detail::NoGraph] {
        doc = document(resources, &ctx, detail);
        if doc.chars().count() <= limit {
            return doc;
        }
    }
    // Still too long: the table itself is cut, with a line that says so.
    let note = "\n\n_The plan is cut here to fit GitHub's comment limit; run `stepgate plan` for all of it._\n";
    let keep = limit.saturating_sub(note.len());
    let cut: String = doc.chars().take(keep).collect();
    let cut = &cut[..cut.rfind('\n').unwrap_or(cut.len())];
    format!("{cut}{note}")
}

fn document(resources: &[ResourcePlan], ctx: &Context<'_>, detail: Detail) -> String {
    let changed: Vec<&ResourcePlan> = resources
        .iter()
        .filter(|r| r.action != Action::NoChange)
        .collect();
    let mut out = format!(
        "### stepgate plan: stack `{}`, stage `{}` ({})\n\n",
        ctx.stack, ctx.stage, ctx.region
    );
    let _ = writeln!(out, "**{}**\n", summary(resources));
    if changed.is_empty() {
        out.push_str("No changes: the stage is as declared.\n");
    } else {
        out.push_str("| action | kind | name | fields |\n|---|---|---|---|\n");
        for r in &changed {
            let _ = writeln!(
                out,
                "| {} {} | {} | `{}` | {} |",
                sign(r.action),
                word(r.action),
                r.resource.kind.as_str(),
                cell(&r.resource.name),
                fields(r)
            );
        }
        out.push('\n');
    }
    if detail == Detail::All {
        for r in changed.iter().filter(|r| !r.changes.is_empty()) {
            let _ = write!(
                out,
                "<details><summary>{} {} <code>{}</code>: {} field{}</summary>\n\n",
                word(r.action),
                r.resource.kind.as_str(),
                html(&r.resource.name),
                r.changes.len(),
                if r.changes.len() == 1 { "" } else { "s" }
            );
            for c in &r.changes {
                out.push_str(&change(c));
            }
            out.push_str("\n</details>\n\n");
        }
    } else {
        out.push_str("_The field diffs are left out to fit GitHub's 65,536-character comment limit; run `stepgate plan` to see them._\n\n");
    }
    if detail != Detail::NoGraph {
        let mut graph = ctx.graph.clone();
        for r in &changed {
            let class = match r.action {
                Action::Create => "create",
                Action::Update | Action::Replace | Action::Adopt => "update",
                Action::Delete => "delete",
                _ => continue,
            };
            match (ctx.node_of)(r) {
                Some(id) if graph.mark(&id, class) => {}
                // A function, machine or role the project no longer
                // declares is not in its graph: drawn apart.
                _ if r.action == Action::Delete && (ctx.drawn)(r) => {
                    let id = crate::graph::node_id("gone", &r.resource.to_string());
                    graph.node(
                        id.clone(),
                        vec![r.resource.to_string(), "deleted".into()],
                        Shape::Box,
                    );
                    graph.mark(&id, class);
                }
                _ => {}
            }
        }
        let _ = write!(out, "```mermaid\n{}```\n\n", render::mermaid(&graph));
    }
    let mut notes: Vec<String> = resources
        .iter()
        .filter_map(|r| r.note.as_ref().map(|n| format!("`{}` {}", r.resource, n)))
        .collect();
    notes.extend(ctx.notes.iter().cloned());
    if !notes.is_empty() {
        out.push_str("**Notes**\n\n");
        for n in notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}

/// `Plan: 2 to create, 1 to update, 0 to delete, 12 unchanged.`
fn summary(resources: &[ResourcePlan]) -> String {
    let count = |a| resources.iter().filter(|r| r.action == a).count();
    let mut parts = vec![
        format!("{} to create", count(Action::Create)),
        format!("{} to update", count(Action::Update)),
    ];
    if count(Action::Replace) > 0 {
        parts.push(format!("{} to replace", count(Action::Replace)));
    }
    parts.push(format!("{} to delete", count(Action::Delete)));
    if count(Action::Adopt) > 0 {
        parts.push(format!("{} to adopt", count(Action::Adopt)));
    }
    if count(Action::Conflict) > 0 {
        parts.push(format!("{} in conflict", count(Action::Conflict)));
    }
    parts.push(format!("{} unchanged", count(Action::NoChange)));
    format!("Plan: {}.", parts.join(", "))
}

fn sign(action: Action) -> &'static str {
    match action {
        Action::Create => "🟢",
        Action::Update => "🟡",
        Action::Replace => "🟠",
        Action::Delete => "🔴",
        Action::Conflict => "⛔",
        Action::Adopt => "🔵",
        Action::NoChange => "",
    }
}

fn word(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Delete => "delete",
        Action::Conflict => "conflict",
        Action::Adopt => "adopt",
        Action::NoChange => "no change",
    }
}

/// The top-level fields that change, once each.
fn fields(r: &ResourcePlan) -> String {
    let mut tops: Vec<&str> = r.changes.iter().map(FieldChange::top).collect();
    tops.dedup();
    tops.iter()
        .map(|t| format!("`{}`", cell(t)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One field's change: a line for a value, a `diff` block for a document.
fn change(c: &FieldChange) -> String {
    let multi = |v: &Value| match v {
        Value::String(s) => s.contains('\n'),
        Value::Object(_) | Value::Array(_) => true,
        _ => false,
    };
    let show = |v: &Value| match v {
        Value::Null => "(none)".to_string(),
        other => other.to_string(),
    };
    if !multi(&c.live) && !multi(&c.desired) {
        return format!(
            "- `{}`: `{}` → `{}`\n",
            cell(&c.field),
            show(&c.live).replace('`', "'"),
            show(&c.desired).replace('`', "'")
        );
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => serde_json::to_string_pretty(other).expect("json"),
    };
    let (live, desired) = (text(&c.live), text(&c.desired));
    let mut out = format!("- `{}`:\n\n```diff\n", cell(&c.field));
    for line in similar::TextDiff::from_lines(&live, &desired).iter_all_changes() {
        let sign = match line.tag() {
            similar::ChangeTag::Delete => '-',
            similar::ChangeTag::Insert => '+',
            similar::ChangeTag::Equal => ' ',
        };
        // A line of backticks would close the block.
        let text = line.value().trim_end_matches('\n').replace("```", "'''");
        let _ = writeln!(out, "{sign}{text}");
    }
    out.push_str("```\n");
    out
}

/// Text in a table cell: a `|` would end it.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, ResourceId};
    use serde_json::json;

    fn plan(name: &str, definition_lines: usize) -> ResourcePlan {
        let doc = |word: &str| {
            (0..definition_lines)
                .map(|i| format!("{word} {i}\n"))
                .collect::<String>()
        };
        ResourcePlan {
            resource: ResourceId::new(Kind("state-machine"), name),
            action: Action::Update,
            changes: vec![FieldChange {
                field: "definition".into(),
                live: json!(doc("old")),
                desired: json!(doc("new")),
            }],
            note: None,
        }
    }

    fn context<'a>(node_of: &'a dyn Fn(&ResourcePlan) -> Option<String>) -> Context<'a> {
        Context {
            stack: "s",
            stage: "dev",
            region: "r",
            graph: Graph::default(),
            node_of,
            drawn: &|_| false,
            notes: vec![],
        }
    }

    #[test]
    fn a_plan_too_long_for_a_comment_loses_its_diffs_first_and_says_so() {
        let none = |_: &ResourcePlan| None;
        let resources: Vec<ResourcePlan> = (0..40).map(|i| plan(&format!("m{i}"), 100)).collect();
        let full = document(&resources, &context(&none), Detail::All);
        assert!(full.chars().count() > COMMENT_LIMIT, "{}", full.len());
        let doc = plan_markdown(&resources, context(&none));
        assert!(doc.chars().count() <= COMMENT_LIMIT);
        assert!(!doc.contains("```diff"), "the diffs go first");
        assert!(doc.contains(
            "The field diffs are left out to fit GitHub's 65,536-character comment limit"
        ));
        assert!(
            doc.contains("| 🟡 update | state-machine | `m39` | `definition` |"),
            "the table stays"
        );

        // Smaller than that: the table is cut, and says so.
        let doc = plan_markdown_within(&resources, context(&none), 1000);
        assert!(doc.chars().count() <= 1000);
        assert!(
            doc.ends_with("run `stepgate plan` for all of it._\n"),
            "{doc}"
        );
    }
}
