//! The project's JSON documents as stepgate reads them: API models (JSON
//! Schema draft 4) and IAM policies. Validated before any AWS call, so bad
//! input fails fast with the file and the fix. The project itself (what is
//! declared where) is `project`'s.

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// A model is a JSON Schema draft 4 object, the only draft API Gateway
/// accepts.
pub fn parse_model(text: &str) -> Result<Value> {
    let doc: Value = serde_json::from_str(text).context("not valid JSON")?;
    if !doc.is_object() {
        bail!("a model must be a JSON Schema object");
    }
    match doc.get("$schema").and_then(Value::as_str) {
        Some("http://json-schema.org/draft-04/schema#") => {
            crate::checks::schema::check_draft4_model(&doc).map(|()| doc)
        }
        _ => bail!(
            "\"$schema\" must be \"http://json-schema.org/draft-04/schema#\": API Gateway models are JSON Schema draft 4"
        ),
    }
}

/// A policy must be JSON with a Version and a Statement list, and must not
/// grant everything (checks::policy): least privilege is part of what
/// stepgate promises.
pub fn parse_policy(text: &str) -> Result<Value> {
    let doc: Value = serde_json::from_str(text).context("not valid JSON")?;
    if doc.get("Version").and_then(Value::as_str) != Some("2012-10-17") {
        bail!("\"Version\" must be \"2012-10-17\"");
    }
    let statements = doc
        .get("Statement")
        .and_then(Value::as_array)
        .context("\"Statement\" must be a list")?;
    crate::checks::policy::check_statements(statements)?;
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_must_be_json_schema_draft_4() {
        assert!(parse_model(r#"{"$schema":"http://json-schema.org/draft-04/schema#"}"#).is_ok());
        let err = parse_model(r#"{"$schema":"https://json-schema.org/draft/2020-12/schema"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("draft 4"), "{err}");
        assert!(parse_model("[]").is_err() && parse_model("{").is_err());
    }

    #[test]
    fn wildcard_actions_are_refused() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*"}]}"#;
        assert!(parse_policy(doc)
            .unwrap_err()
            .to_string()
            .contains("\"lambda:*\""));
    }
}
