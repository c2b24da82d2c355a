//! `stepgate adopt`: what was found by following a console-built stack
//! (`read.rs`), and the project written from it. This file is pure: the
//! found stack in, the project's files out, so all of it is unit-tested.

pub mod leftovers;
pub mod read;
pub mod write;

use std::collections::BTreeMap;

use serde_json::Value;

/// A stack as it exists, followed from its REST API or its state machine.
#[derive(Clone, Debug, Default)]
pub struct Found {
    pub api: Option<FoundApi>,
    pub machines: Vec<FoundMachine>,
    pub functions: Vec<FoundFunction>,
    /// Roles by name, with what they hold.
    pub roles: BTreeMap<String, FoundRole>,
    /// What adopt could not follow, or changed, one line each.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct FoundApi {
    pub id: String,
    pub name: String,
    pub stage: String,
    /// API Gateway's role for the integrations (their `credentials`).
    pub role: Option<String>,
    pub routes: Vec<FoundRoute>,
    /// Model name -> JSON Schema, the ones routes use.
    pub models: BTreeMap<String, Value>,
}

#[derive(Clone, Debug)]
pub struct FoundRoute {
    pub method: String,
    pub path: String,
    /// The machine's ARN.
    pub machine: String,
    /// `none` or `iam`.
    pub auth: String,
    pub api_key: bool,
    pub model: Option<String>,
    /// The body passed through as StartExecution's request: its clients
    /// send the input as a string in `input`, which the project keeps
    /// taking (`input_string = "body.input"`).
    pub passthrough: bool,
}

#[derive(Clone, Debug)]
pub struct FoundMachine {
    pub name: String,
    pub arn: String,
    pub kind: String,
    /// As Step Functions holds it, byte for byte.
    pub definition: String,
    pub role: String,
}

#[derive(Clone, Debug)]
pub struct FoundFunction {
    pub name: String,
    pub arn: String,
    pub handler: String,
    pub runtime: String,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub architecture: String,
    pub environment: BTreeMap<String, String>,
    pub role: String,
    /// The deployed package (a zip).
    pub code: Vec<u8>,
}

#[derive(Clone, Debug, Default)]
pub struct FoundRole {
    pub managed: Vec<String>,
    /// Inline policy name -> document.
    pub inline: BTreeMap<String, Value>,
}

/// The name a function or machine gets within the project: its own when
/// stepgate accepts it (a letter, then letters, digits, - and _), else
/// those characters of it.
pub fn logical_name(name: &str) -> String {
    let kept: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    match kept.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => kept,
        _ => format!("x{kept}"),
    }
}

/// The definition with each function's and machine's ARN written as its
/// placeholder (`${completeOrderArn}`), and nothing else changed: filled in
/// again, it is the deployed text byte for byte. A qualified function ARN
/// keeps its qualifier after the placeholder.
pub fn with_placeholders(definition: &str, arns: &[(String, String)]) -> String {
    let mut out = definition.to_string();
    // Longest ARN first: a function named `order` must not eat `orderX`.
    let mut arns = arns.to_vec();
    arns.sort_by_key(|(arn, _)| std::cmp::Reverse(arn.len()));
    for (arn, logical) in arns {
        let placeholder = format!("${{{logical}Arn}}");
        for end in ['"', ':'] {
            out = out.replace(&format!("{arn}{end}"), &format!("{placeholder}{end}"));
        }
    }
    out
}

/// What a Task state's `Resource` (or `lambda:invoke`'s `FunctionName`)
/// calls: a Lambda function's ARN, unqualified; `None` for anything else.
pub fn lambda_of(state: &Value) -> Option<String> {
    let resource = state["Resource"].as_str()?;
    let arn = if resource.ends_with(":states:::lambda:invoke")
        || resource.ends_with(":states:::lambda:invoke.waitForTaskToken")
    {
        state["Parameters"]["FunctionName"].as_str()?
    } else {
        resource
    };
    let parts: Vec<&str> = arn.split(':').collect();
    // arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
    (parts.len() >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function")
        .then(|| parts[..7].join(":"))
}

/// Every Task state of a definition, nested ones (Parallel branches, Map
/// iterators) too, by name.
pub fn tasks(definition: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let Some(states) = definition["States"].as_object() else {
        return out;
    };
    for (name, state) in states {
        match state["Type"].as_str() {
            Some("Task") => out.push((name.clone(), state.clone())),
            Some("Parallel") => {
                for branch in state["Branches"].as_array().into_iter().flatten() {
                    out.extend(tasks(branch));
                }
            }
            Some("Map") => {
                for key in ["ItemProcessor", "Iterator"] {
                    if state[key].is_object() {
                        out.extend(tasks(&state[key]));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COMPLETE: &str = "arn:aws:lambda:us-east-1:000000000000:function:completeOrder";

    #[test]
    fn arns_become_placeholders_and_nothing_else_changes() {
        let text = format!(
            "{{\n  \"A\": {{ \"Resource\": \"{COMPLETE}\" }},\n  \"B\": {{ \"Resource\": \"{COMPLETE}:live\" }},\n  \"C\": {{ \"Resource\": \"{COMPLETE}X\" }}\n}}"
        );
        let arns = vec![(COMPLETE.to_string(), "completeOrder".to_string())];
        let out = with_placeholders(&text, &arns);
        assert!(
            out.contains("\"Resource\": \"${completeOrderArn}\""),
            "{out}"
        );
        assert!(out.contains("\"${completeOrderArn}:live\""), "{out}");
        // Another function whose name starts alike is not touched.
        assert!(out.contains(&format!("\"{COMPLETE}X\"")), "{out}");
        assert_eq!(out.replace("${completeOrderArn}", COMPLETE), text);
    }

    #[test]
    fn tasks_are_found_nested_and_lambdas_told_from_other_services() {
        let definition = json!({
            "StartAt": "A",
            "States": {
                "A": { "Type": "Task", "Resource": COMPLETE, "Next": "P" },
                "P": { "Type": "Parallel", "Branches": [{ "StartAt": "B", "States": {
                    "B": { "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                           "Parameters": { "FunctionName": format!("{COMPLETE}:$LATEST") }, "End": true }
                }}], "Next": "S" },
                "S": { "Type": "Task", "Resource": "arn:aws:states:::sns:publish", "End": true }
            }
        });
        let found: BTreeMap<String, Option<String>> = tasks(&definition)
            .into_iter()
            .map(|(n, s)| (n, lambda_of(&s)))
            .collect();
        assert_eq!(found["A"].as_deref(), Some(COMPLETE));
        assert_eq!(found["B"].as_deref(), Some(COMPLETE));
        assert_eq!(found["S"], None);
    }

    #[test]
    fn logical_names_are_names_stepgate_accepts() {
        assert_eq!(logical_name("completeOrder"), "completeOrder");
        assert_eq!(logical_name("order-fn_2"), "order-fn_2");
        assert_eq!(logical_name("1st.fn"), "x1stfn");
    }
}
