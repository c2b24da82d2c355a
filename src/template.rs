//! `${name}` placeholders inside JSON documents (the state machine definition
//! and the IAM policies), filled at deploy time with ARNs that depend on the
//! account, region and stage.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Names of every `${name}` in the document's strings.
pub fn placeholders(value: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk_strings(value, &mut |s| {
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            out.insert(after[..end].to_string());
            rest = &after[end + 1..];
        }
    });
    out
}

/// The document with every known `${name}` replaced by its value.
pub fn substitute(value: &Value, values: &BTreeMap<String, String>) -> Value {
    match value {
        Value::String(s) => {
            let mut out = s.clone();
            for (name, v) in values {
                out = out.replace(&format!("${{{name}}}"), v);
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, values)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, values)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn walk_strings<'a>(value: &'a Value, f: &mut impl FnMut(&'a str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|v| walk_strings(v, f)),
        Value::Object(map) => map.values().for_each(|v| walk_strings(v, f)),
        _ => {}
    }
}

/// Fails unless every placeholder in `doc` is one of `known`, naming the
/// first stranger and the accepted names.
pub fn check_known(doc: &Value, known: &BTreeSet<String>) -> anyhow::Result<BTreeSet<String>> {
    let used = placeholders(doc);
    if let Some(unknown) = used.difference(known).next() {
        anyhow::bail!(
            "unknown placeholder ${{{unknown}}}; the known ones are {}",
            known
                .iter()
                .map(|k| format!("${{{k}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_and_fills_placeholders_in_nested_strings() {
        let doc = json!({"a": ["x ${one} y", {"b": "${two}${one}"}], "n": 3});
        assert_eq!(
            placeholders(&doc),
            ["one", "two"].iter().map(|s| s.to_string()).collect()
        );
        let values = BTreeMap::from([("one".into(), "1".into()), ("two".into(), "2".into())]);
        assert_eq!(
            substitute(&doc, &values),
            json!({"a": ["x 1 y", {"b": "21"}], "n": 3})
        );
    }

    #[test]
    fn unknown_placeholders_are_named() {
        let known = BTreeSet::from(["one".to_string()]);
        let err = check_known(&json!("${uno}"), &known)
            .unwrap_err()
            .to_string();
        assert!(err.contains("${uno}") && err.contains("${one}"), "{err}");
    }
}
