//! The plan as people read it: what changes, field by field, and a count
//! of what does not.

use serde_json::Value;

use super::style::{paint, CONFLICT, CREATE, DELETE, DIM, UPDATE};
use crate::plan::{Action, FieldChange, ResourcePlan};
use crate::report::RolloutPlan;

/// One line per resource that changes (and per unchanged one with
/// `show_unchanged`), each differing field under it, a line diff for
/// documents, then the counts. Styled; the caller's stream drops the styles
/// when it should.
pub fn plan_text(resources: &[ResourcePlan], show_unchanged: bool) -> String {
    let mut out = String::new();
    for r in resources {
        let line = match r.action {
            Action::Create => paint(CREATE, format!("+ {} (create)", r.resource)),
            Action::Update => format!(
                "{} {} {}",
                paint(UPDATE, "~"),
                r.resource,
                paint(UPDATE, "(update)")
            ),
            Action::Replace => paint(
                CONFLICT,
                format!(
                    "-/+ {} (replace: AWS cannot change it in place)",
                    r.resource
                ),
            ),
            Action::Delete => paint(
                DELETE,
                format!("- {} (delete: no longer declared)", r.resource),
            ),
            Action::NoChange if show_unchanged => {
                paint(DIM, format!("= {} (no change)", r.resource))
            }
            Action::NoChange => continue,
            Action::Conflict => paint(
                CONFLICT,
                format!(
                    "! {} (conflict: exists, not owned by this stack and stage)",
                    r.resource
                ),
            ),
            Action::Adopt => format!(
                "{} {} {}",
                paint(UPDATE, "&"),
                r.resource,
                paint(
                    UPDATE,
                    "(adopt: exists untagged, named in stepgate.toml; deploy --adopt takes it)"
                )
            ),
        };
        out.push_str(&line);
        out.push('\n');
        for change in &r.changes {
            out.push_str(&change_text(change));
        }
    }
    // Someone else's resource used as it is: said whether it is listed or not.
    for r in resources {
        if let Some(note) = &r.note {
            out.push_str(&paint(UPDATE, format!("Note: {} {note}\n", r.resource)));
        }
    }
    let count = |a| resources.iter().filter(|r| r.action == a).count();
    let (create, update, same, conflict) = (
        count(Action::Create),
        count(Action::Update),
        count(Action::NoChange),
        count(Action::Conflict),
    );
    let some = |style, n: usize, text: &str| {
        let text = format!("{n} {text}");
        if n > 0 {
            paint(style, text)
        } else {
            text
        }
    };
    // Replaces and deletes are counted only when there are some, so the
    // line reads as it always has for plans without them.
    let mut extra = String::new();
    for (action, style, text) in [
        (Action::Replace, CONFLICT, "to replace"),
        (Action::Delete, DELETE, "to delete"),
        (Action::Adopt, UPDATE, "to adopt"),
    ] {
        let n = count(action);
        if n > 0 {
            extra.push_str(&format!(", {}", some(style, n, text)));
        }
    }
    out.push_str(&format!(
        "Plan: {}, {}{extra}, {same} unchanged, {}.",
        some(CREATE, create, "to create"),
        some(UPDATE, update, "to update"),
        some(CONFLICT, conflict, "in conflict"),
    ));
    out
}

/// After the counts, a paragraph per machine whose `live` would move: what
/// it serves now, what is published, the smoke orders, and how it moves.
pub fn rollout_text(rollouts: &[RolloutPlan]) -> String {
    let mut out = String::new();
    for r in rollouts {
        let live = match r.live.as_slice() {
            [] => "nothing yet".to_string(),
            shares => shares
                .iter()
                .map(|(v, w)| format!("version {v} ({w}%)"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let how = match r.strategy.as_str() {
            "all-at-once" => "all at once".to_string(),
            strategy => format!(
                "{strategy}: {}%, each held {}s while its executions are watched",
                r.steps
                    .iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join("% -> "),
                r.interval_seconds
            ),
        };
        out.push_str(&format!(
            "\nRollout of {}: `live` serves {live}.\n  publishes: {}\n  smoke orders: {}\n  then `live` moves {how}.",
            r.state_machine,
            r.publishes.join(", "),
            if r.smoke.is_empty() {
                "none".to_string()
            } else {
                r.smoke.join(", ")
            },
        ));
    }
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
            paint(DELETE, show(&c.live)),
            paint(CREATE, show(&c.desired))
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
        let line = change.value().trim_end_matches('\n');
        let line = match change.tag() {
            similar::ChangeTag::Delete => paint(DELETE, format!("- {line}")),
            similar::ChangeTag::Insert => paint(CREATE, format!("+ {line}")),
            similar::ChangeTag::Equal => format!("  {line}"),
        };
        out.push_str(&format!("      {line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, ResourceId};
    use serde_json::json;

    fn id(kind: Kind, name: &str) -> ResourceId {
        ResourceId {
            kind,
            name: name.into(),
        }
    }

    /// One of each: a create, an update of a scalar and of a document, an
    /// unchanged resource and a conflict.
    fn sample() -> Vec<ResourcePlan> {
        vec![
            ResourcePlan {
                resource: id(Kind("role"), "orders-dev-us-east-1-lambda"),
                action: Action::Conflict,
                changes: vec![],
                note: None,
            },
            ResourcePlan {
                resource: id(Kind("log-group"), "/aws/lambda/orders-dev-completeOrder"),
                action: Action::NoChange,
                changes: vec![],
                note: None,
            },
            ResourcePlan {
                resource: id(Kind("log-group"), "/aws/lambda/orders-dev-cancelOrder"),
                action: Action::Create,
                changes: vec![],
                note: None,
            },
            ResourcePlan {
                resource: id(Kind("function"), "orders-dev-completeOrder"),
                action: Action::Update,
                changes: vec![FieldChange {
                    field: "memory".into(),
                    live: json!(128),
                    desired: json!(256),
                }],
                note: None,
            },
            ResourcePlan {
                resource: id(Kind("rest-api"), "orders-dev-OrderProcessorAPI"),
                action: Action::Update,
                changes: vec![FieldChange {
                    field: "methods.POST.integration.requestTemplates.application/json".into(),
                    live: json!("{\n  \"input\": \"$util.escapeJavaScript($input.json('$'))\",\n  \"stateMachineArn\": \"arn:old\"\n}"),
                    desired: json!("{\n  \"input\": \"$util.escapeJavaScript($input.json('$'))\",\n  \"stateMachineArn\": \"arn:new\"\n}"),
                }],
                note: None,
            },
        ]
    }

    /// Escape sequences made visible for the snapshot.
    fn visible(text: &str) -> String {
        text.replace('\u{1b}', "\\e")
    }

    fn plain(text: &str) -> String {
        anstream::adapter::strip_str(text).to_string()
    }

    #[test]
    fn plan_shows_only_changes_by_default() {
        let text = plan_text(&sample(), false);
        insta::assert_snapshot!(plain(&text));
        assert!(!plain(&text).contains("no change"));
        assert!(
            plain(&text).ends_with("Plan: 1 to create, 2 to update, 1 unchanged, 1 in conflict.")
        );
    }

    #[test]
    fn show_unchanged_lists_them_too() {
        let text = plain(&plan_text(&sample(), true));
        insta::assert_snapshot!(text);
        assert!(text.contains("= log-group /aws/lambda/orders-dev-completeOrder (no change)"));
    }

    #[test]
    fn plan_in_colour() {
        insta::assert_snapshot!(visible(&plan_text(&sample(), true)));
    }

    #[test]
    fn nothing_to_do_is_one_line() {
        let same = vec![ResourcePlan {
            resource: id(Kind("stage"), "dev"),
            action: Action::NoChange,
            changes: vec![],
            note: None,
        }];
        assert_eq!(
            plain(&plan_text(&same, false)),
            "Plan: 0 to create, 0 to update, 1 unchanged, 0 in conflict."
        );
    }

    #[test]
    fn a_note_shows_whether_or_not_unchanged_resources_are_listed() {
        let used = vec![ResourcePlan {
            resource: id(Kind("apigateway-account"), "us-east-1"),
            action: Action::NoChange,
            changes: vec![],
            note: Some("uses the account's existing CloudWatch role r (not stepgate's)".into()),
        }];
        for listed in [false, true] {
            let text = plain(&plan_text(&used, listed));
            assert!(
                text.contains("Note: apigateway-account us-east-1 uses the account's existing CloudWatch role r (not stepgate's)\n"),
                "{text}"
            );
            assert!(text.ends_with("1 unchanged, 0 in conflict."), "{text}");
        }
    }
}
