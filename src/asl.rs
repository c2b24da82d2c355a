//! The state machine definition: Amazon States Language with named
//! placeholders (`${completeOrderArn}`) for values only known at deploy time.
//! Validated before any AWS call, so a typo fails in a second, not half-way
//! through a deploy.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::template;

#[derive(Clone, Debug)]
pub struct Definition {
    template: Value,
}

impl Definition {
    /// Parses and validates `text`. `known` are the placeholders stepgate can
    /// fill; `required` must all be used (every function is wired in).
    pub fn parse(
        text: &str,
        known: &BTreeSet<String>,
        required: &BTreeSet<String>,
    ) -> Result<Definition> {
        let template: Value = serde_json::from_str(text).context("not valid JSON")?;
        validate_machine(&template, "")?;
        let used = template::check_known(&template, known)?;
        if let Some(unused) = required.difference(&used).next() {
            bail!("placeholder ${{{unused}}} is never used: every function must be wired into a Task state");
        }
        Ok(Definition { template })
    }

    /// The definition as written, placeholders in.
    pub fn template(&self) -> &Value {
        &self.template
    }

    /// The definition with every placeholder replaced by its value.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Value {
        template::substitute(&self.template, values)
    }
}

/// Checks one state machine (or a Parallel branch / Map processor, which
/// have their own StartAt and States). `scope` prefixes error locations.
fn validate_machine(machine: &Value, scope: &str) -> Result<()> {
    let start = machine
        .get("StartAt")
        .and_then(Value::as_str)
        .with_context(|| format!("{scope}StartAt is missing; name the first state"))?;
    let states = machine
        .get("States")
        .and_then(Value::as_object)
        .with_context(|| format!("{scope}States is missing or not an object"))?;
    if !states.contains_key(start) {
        bail!("{scope}StartAt \"{start}\" is not a state; define it under States or fix the name");
    }
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, state) in states {
        let at = format!("{scope}state \"{name}\"");
        let kind = state
            .get("Type")
            .and_then(Value::as_str)
            .with_context(|| format!("{at}: Type is missing"))?;
        let targets = transitions(state);
        for target in &targets {
            if !states.contains_key(*target) {
                bail!("{at}: transition to \"{target}\", which is not a state; define it under States or fix the name");
            }
        }
        let ends = state.get("End").and_then(Value::as_bool) == Some(true);
        match kind {
            "Choice" => {
                if state
                    .get("Choices")
                    .and_then(Value::as_array)
                    .is_none_or(|c| c.is_empty())
                {
                    bail!("{at}: a Choice state needs a non-empty Choices list");
                }
            }
            "Succeed" | "Fail" => {}
            "Task" | "Pass" | "Wait" | "Parallel" | "Map" => {
                if ends == state.get("Next").is_some() {
                    bail!("{at}: a {kind} state needs exactly one of Next or \"End\": true");
                }
            }
            other => bail!("{at}: unknown Type \"{other}\""),
        }
        for (i, branch) in state
            .get("Branches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            validate_machine(branch, &format!("{at} branch {i}: "))?;
        }
        for key in ["ItemProcessor", "Iterator"] {
            if let Some(inner) = state.get(key) {
                validate_machine(inner, &format!("{at} {key}: "))?;
            }
        }
        edges.insert(name.as_str(), targets);
    }
    // Every state must be reachable from StartAt, or it is dead code.
    let mut seen = BTreeSet::from([start]);
    let mut queue = VecDeque::from([start]);
    while let Some(state) = queue.pop_front() {
        for next in edges.get(state).into_iter().flatten() {
            if seen.insert(next) {
                queue.push_back(next);
            }
        }
    }
    if let Some(dead) = states.keys().find(|k| !seen.contains(k.as_str())) {
        bail!("{scope}state \"{dead}\" is unreachable from StartAt \"{start}\"; connect it or remove it");
    }
    Ok(())
}

/// Every state a state can move to: Next, Default, each Choice rule's Next
/// and each Catch's Next.
fn transitions(state: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    for key in ["Next", "Default"] {
        out.extend(state.get(key).and_then(Value::as_str));
    }
    for list in ["Choices", "Catch"] {
        for rule in state
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.extend(rule.get("Next").and_then(Value::as_str));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn parse(text: &str) -> Result<Definition> {
        let fns = names(&["completeOrderArn", "cancelOrderArn"]);
        Definition::parse(text, &fns, &fns)
    }

    fn shipped() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/definitions/OrderProcessor.asl.json"
        ))
        .unwrap()
    }

    #[test]
    fn the_shipped_definition_is_valid_and_renders_both_arns() {
        let def = parse(&shipped()).unwrap();
        let values = BTreeMap::from([
            ("completeOrderArn".to_string(), "arn:complete".to_string()),
            ("cancelOrderArn".to_string(), "arn:cancel".to_string()),
        ]);
        let out = def.render(&values);
        assert_eq!(out["States"]["CompleteOrder"]["Resource"], "arn:complete");
        assert_eq!(out["States"]["CancelOrder"]["Resource"], "arn:cancel");
        assert!(template::placeholders(&out).is_empty());
        // An unknown payment status ends in a Fail state, not NoChoiceMatched.
        let default = out["States"]["CheckPaymentStatus"]["Default"]
            .as_str()
            .unwrap();
        assert_eq!(out["States"][default]["Type"], "Fail");
    }

    fn broken(from: &str, to: &str) -> String {
        let text = shipped();
        assert!(
            text.contains(from),
            "fixture text {from:?} not in the definition"
        );
        parse(&text.replacen(from, to, 1)).unwrap_err().to_string()
    }

    #[test]
    fn rejects_invalid_json() {
        assert!(parse("{ not json")
            .unwrap_err()
            .to_string()
            .contains("not valid JSON"));
    }

    #[test]
    fn rejects_a_missing_start_state() {
        let e = broken(
            "\"StartAt\": \"CheckPaymentStatus\"",
            "\"StartAt\": \"Nope\"",
        );
        assert!(e.contains("StartAt \"Nope\" is not a state"), "{e}");
    }

    #[test]
    fn rejects_a_dangling_transition() {
        let e = broken("\"Next\": \"CancelOrder\"", "\"Next\": \"CancelOrdr\"");
        assert!(e.contains("\"CancelOrdr\", which is not a state"), "{e}");
    }

    #[test]
    fn rejects_an_unreachable_state() {
        let e = broken(
            "\"Default\": \"UnknownPaymentStatus\"",
            "\"Default\": \"CancelOrder\"",
        );
        assert!(e.contains("\"UnknownPaymentStatus\" is unreachable"), "{e}");
    }

    #[test]
    fn rejects_unknown_and_unused_placeholders() {
        let e = broken("${cancelOrderArn}", "${refundOrderArn}");
        assert!(e.contains("unknown placeholder ${refundOrderArn}"), "{e}");
        let e = broken("${cancelOrderArn}", "${completeOrderArn}");
        assert!(e.contains("${cancelOrderArn} is never used"), "{e}");
    }

    #[test]
    fn rejects_a_task_without_next_or_end() {
        let text = shipped().replacen("\"End\": true", "\"Comment\": \"x\"", 1);
        assert!(parse(&text)
            .unwrap_err()
            .to_string()
            .contains("exactly one of Next or \"End\""));
    }
}
