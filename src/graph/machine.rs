//! One state machine's states and transitions, from its definition: Choice
//! branches labelled with their conditions, caught errors dashed, Parallel
//! branches and a Map's iteration drawn as subgraphs.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Cluster, Graph, Shape};

// Not `end`: Mermaid reads that as the end of a subgraph.
const START: &str = "s_start";
const END: &str = "s_end";

pub fn machine_graph(definition: &Value) -> Graph {
    let mut b = Builder {
        g: Graph {
            top_down: true,
            ..Graph::default()
        },
        next_id: 0,
    };
    b.g.node(START.into(), vec!["start".into()], Shape::Circle);
    let mut top = Cluster::default();
    let first = b.scope(definition, &mut top, END);
    b.g.node(END.into(), vec!["end".into()], Shape::Circle);
    b.g.edge(START, &first, None, false);
    b.g.edges.rotate_right(1);
    b.g.clusters = top.clusters;
    b.g
}

struct Builder {
    g: Graph,
    next_id: usize,
}

impl Builder {
    /// Adds the states of one machine, branch or iteration to `into`;
    /// states that end go to `on_end`. Returns the id of its first state.
    fn scope(&mut self, machine: &Value, into: &mut Cluster, on_end: &str) -> String {
        let empty = serde_json::Map::new();
        let states = machine
            .get("States")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        // Ids first: a transition may name a state defined further down.
        let ids: BTreeMap<&str, String> = states
            .keys()
            .map(|name| {
                self.next_id += 1;
                (name.as_str(), format!("s{}", self.next_id))
            })
            .collect();
        let id_of = |name: &str| ids.get(name).cloned().unwrap_or_else(|| END.to_string());
        for (name, state) in states {
            let id = id_of(name);
            let kind = state.get("Type").and_then(Value::as_str).unwrap_or("Task");
            let next = match state.get("Next").and_then(Value::as_str) {
                Some(n) => id_of(n),
                None if state.get("End").and_then(Value::as_bool) == Some(true) => on_end.into(),
                None => String::new(),
            };
            let (shape, detail) = match kind {
                "Choice" => (Shape::Diamond, None),
                "Succeed" | "Fail" => (Shape::Stadium, Some(kind.to_string())),
                "Task" => (Shape::Rounded, task_target(state)),
                other => (Shape::Box, Some(other.to_string())),
            };
            let mut label = vec![name.clone()];
            label.extend(detail);
            self.g.node(id.clone(), label, shape);
            match kind {
                "Parallel" | "Map" => {
                    let mut group = Cluster {
                        id: format!("{id}_group"),
                        label: name.clone(),
                        nodes: vec![id.clone()],
                        clusters: Vec::new(),
                    };
                    let inner: Vec<(String, &Value)> = if kind == "Parallel" {
                        let branches = state.get("Branches").and_then(Value::as_array);
                        branches
                            .into_iter()
                            .flatten()
                            .enumerate()
                            .map(|(i, b)| (format!("branch {}", i + 1), b))
                            .collect()
                    } else {
                        ["ItemProcessor", "Iterator"]
                            .iter()
                            .find_map(|k| state.get(*k))
                            .map(|p| vec![("each item".to_string(), p)])
                            .unwrap_or_default()
                    };
                    for (i, (label, body)) in inner.into_iter().enumerate() {
                        let mut sub = Cluster {
                            id: format!("{id}_{}", i + 1),
                            label,
                            ..Cluster::default()
                        };
                        let first = self.scope(body, &mut sub, &next);
                        self.g.edge(&id, &first, None, false);
                        // A nested scope's own groups sit inside it.
                        group.clusters.push(sub);
                    }
                    into.clusters.push(group);
                }
                "Choice" => {
                    into.nodes.push(id.clone());
                    let choices = state.get("Choices").and_then(Value::as_array);
                    for choice in choices.into_iter().flatten() {
                        if let Some(to) = choice.get("Next").and_then(Value::as_str) {
                            self.g.edge(&id, &id_of(to), Some(condition(choice)), false);
                        }
                    }
                    if let Some(to) = state.get("Default").and_then(Value::as_str) {
                        self.g.edge(&id, &id_of(to), Some("default".into()), false);
                    }
                }
                _ => {
                    into.nodes.push(id.clone());
                    if !next.is_empty() {
                        self.g.edge(&id, &next, None, false);
                    }
                }
            }
            let catches = state.get("Catch").and_then(Value::as_array);
            for catch in catches.into_iter().flatten() {
                if let Some(to) = catch.get("Next").and_then(Value::as_str) {
                    let errors = strings(catch.get("ErrorEquals")).join(", ");
                    self.g
                        .edge(&id, &id_of(to), Some(format!("catch {errors}")), true);
                }
            }
        }
        let start = machine
            .get("StartAt")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // Top-level states stay loose: `into` is a scratch cluster there.
        id_of(start)
    }
}

/// What a Task calls, when it names a function of the project:
/// `${completeOrderArn}` directly or as the FunctionName of lambda:invoke.
fn task_target(state: &Value) -> Option<String> {
    let arn = |v: Option<&Value>| {
        let text = v?.as_str()?;
        let name = text.strip_prefix("${")?.strip_suffix("Arn}")?;
        Some(format!("λ {name}"))
    };
    arn(state.get("Resource"))
        .or_else(|| arn(state.pointer("/Parameters/FunctionName")))
        .or_else(|| arn(state.pointer("/Arguments/FunctionName")))
        .or_else(|| {
            state
                .get("Resource")
                .and_then(Value::as_str)
                .map(short_resource)
        })
}

/// `arn:aws:states:::sqs:sendMessage` as `sqs:sendMessage`.
fn short_resource(arn: &str) -> String {
    arn.strip_prefix("arn:aws:states:::")
        .unwrap_or(arn)
        .to_string()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// A Choice rule as people write it: `$.paymentStatus == "SUCCESS"`.
pub fn condition(rule: &Value) -> String {
    if let Some(c) = rule.get("Condition").and_then(Value::as_str) {
        // JSONata: `{% $states.input.total > 100 %}`.
        let c = c.trim();
        let inner = c.strip_prefix("{%").and_then(|c| c.strip_suffix("%}"));
        return inner.unwrap_or(c).trim().to_string();
    }
    let all = |key: &str, joiner: &str| {
        let parts: Vec<String> = rule
            .get(key)?
            .as_array()?
            .iter()
            .map(|r| format!("({})", condition(r)))
            .collect();
        Some(parts.join(joiner))
    };
    if let Some(text) = all("And", " and ").or_else(|| all("Or", " or ")) {
        return text;
    }
    if let Some(inner) = rule.get("Not") {
        return format!("not ({})", condition(inner));
    }
    let variable = rule.get("Variable").and_then(Value::as_str).unwrap_or("?");
    let Some(obj) = rule.as_object() else {
        return variable.to_string();
    };
    for (key, value) in obj {
        if matches!(key.as_str(), "Variable" | "Next" | "Comment" | "Assign") {
            continue;
        }
        let (test, is_path) = match key.strip_suffix("Path") {
            Some(test) => (test, true),
            None => (key.as_str(), false),
        };
        let shown = match value {
            Value::String(s) if is_path => s.clone(),
            other => other.to_string(),
        };
        let op = match test {
            t if t.ends_with("GreaterThanEquals") => ">=",
            t if t.ends_with("LessThanEquals") => "<=",
            t if t.ends_with("GreaterThan") => ">",
            t if t.ends_with("LessThan") => "<",
            t if t.ends_with("Equals") => "==",
            "StringMatches" => "matches",
            "IsNull" | "IsPresent" | "IsNumeric" | "IsString" | "IsBoolean" | "IsTimestamp" => {
                let what = test.trim_start_matches("Is").to_lowercase();
                let not = if value == &Value::Bool(false) {
                    "not "
                } else {
                    ""
                };
                return format!("{variable} is {not}{what}");
            }
            other => other,
        };
        return format!("{variable} {op} {shown}");
    }
    variable.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_read_as_written() {
        for (rule, text) in [
            (
                json!({"Variable": "$.s", "StringEquals": "SUCCESS"}),
                r#"$.s == "SUCCESS""#,
            ),
            (
                json!({"Variable": "$.n", "NumericGreaterThanEquals": 10}),
                "$.n >= 10",
            ),
            (
                json!({"Variable": "$.n", "NumericLessThanPath": "$.max"}),
                "$.n < $.max",
            ),
            (
                json!({"Variable": "$.x", "IsPresent": false}),
                "$.x is not present",
            ),
            (
                json!({"And": [{"Variable": "$.a", "BooleanEquals": true}, {"Not": {"Variable": "$.b", "StringMatches": "x*"}}]}),
                r#"($.a == true) and (not ($.b matches "x*"))"#,
            ),
            (
                json!({"Condition": "{% $states.input.total > 100 %}"}),
                "$states.input.total > 100",
            ),
        ] {
            assert_eq!(condition(&rule), text);
        }
    }

    #[test]
    fn parallel_branches_are_subgraphs_that_join_at_next() {
        let definition = json!({
            "StartAt": "P",
            "States": {
                "P": {"Type": "Parallel", "Next": "Done", "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}
                ]},
                "Done": {"Type": "Succeed"}
            }
        });
        let g = machine_graph(&definition);
        let group = &g.clusters[0];
        assert_eq!(group.label, "P");
        assert_eq!(group.clusters.len(), 2);
        let id = |label: &str| {
            g.nodes
                .iter()
                .find(|n| n.label[0] == label)
                .unwrap()
                .id
                .clone()
        };
        for branch in ["A", "B"] {
            assert!(g
                .edges
                .iter()
                .any(|e| e.from == id("P") && e.to == id(branch)));
            assert!(g
                .edges
                .iter()
                .any(|e| e.from == id(branch) && e.to == id("Done")));
        }
    }
}
