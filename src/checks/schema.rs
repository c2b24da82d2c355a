//! API Gateway models are JSON Schema draft 4. A model that is not a valid
//! draft-4 schema (`"type": "banana"`, `"required": "orderId"`) passes as
//! JSON but is refused by CreateModel ("Invalid model schema specified"),
//! after the roles, functions and state machine already exist. So every
//! model is validated against the draft-4 meta-schema before any AWS call.

use anyhow::{bail, Result};
use serde_json::Value;

/// Checks `doc` against the JSON Schema draft-4 meta-schema; the error names
/// the first key at fault (as a JSON pointer into the model) and what is
/// wrong with it, on one line.
pub fn check_draft4_model(doc: &Value) -> Result<()> {
    let Err(error) = jsonschema::draft4::meta::validate(doc) else {
        return Ok(());
    };
    let at = error.instance_path().to_string();
    let key = at.rsplit('/').next().unwrap_or_default();
    let takes = match expected(key) {
        Some(takes) => format!("`{key}` takes {takes}"),
        None => format!(
            "the draft-4 meta-schema says: {}",
            one_line(&error.to_string())
        ),
    };
    bail!(
        "not a valid JSON Schema draft 4, which API Gateway requires of a model: {}: {} is not a draft-4 schema value here; {takes}",
        if at.is_empty() { "/" } else { &at },
        one_line(&error.instance().to_string()),
    )
}

/// What the draft-4 meta-schema accepts for the keys most often got wrong.
fn expected(key: &str) -> Option<&'static str> {
    Some(match key {
        "type" => "one of array, boolean, integer, null, number, object, string, or a list of them",
        "required" | "enum" => "a list of at least one value (property names for `required`)",
        "properties" | "patternProperties" | "definitions" => "an object of schemas",
        "minLength" | "maxLength" | "minItems" | "maxItems" | "minProperties" | "maxProperties" => {
            "a whole number, 0 or more"
        }
        "minimum" | "maximum" | "multipleOf" => "a number",
        "pattern" | "title" | "description" | "$schema" | "id" | "format" => "a string",
        _ => return None,
    })
}

/// At most 200 characters of `text` on one line.
fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order(property: Value, required: Value) -> Value {
        json!({
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "object",
            "properties": {"orderId": property},
            "required": required,
        })
    }

    #[test]
    fn the_shipped_model_and_valid_draft4_schemas_pass() {
        let shipped: Value =
            serde_json::from_str(include_str!("../../models/Order.schema.json")).unwrap();
        check_draft4_model(&shipped).unwrap();
        check_draft4_model(&order(
            json!({"type": ["string", "null"]}),
            json!(["orderId"]),
        ))
        .unwrap();
    }

    #[test]
    fn schemas_aws_would_refuse_are_refused_naming_the_key() {
        for (doc, expected) in [
            (
                order(json!({"type": "banana"}), json!(["orderId"])),
                "/properties/orderId/type: \"banana\" is not a draft-4 schema value here",
            ),
            (
                order(json!({"type": "string"}), json!("orderId")),
                "/required: \"orderId\" is not a draft-4 schema value here",
            ),
            (
                order(json!({"type": "string"}), json!([])),
                "/required: [] is not a draft-4 schema value here",
            ),
            (
                order(
                    json!({"type": "string", "minLength": -1}),
                    json!(["orderId"]),
                ),
                "/properties/orderId/minLength: -1 is not a draft-4 schema value here",
            ),
        ] {
            let message = check_draft4_model(&doc).unwrap_err().to_string();
            assert!(message.contains(expected), "{doc}: {message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }
}
