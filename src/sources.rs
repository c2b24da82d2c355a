//! Everything stepgate deploys from the repository: `lambdas/`,
//! `definitions/` and `policies/`. Loaded and validated before any AWS call,
//! so bad input fails fast with the file and the fix.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::asl::Definition;
use crate::limits::{self, ReadError};
use crate::names::{Names, RoleFor, FUNCTIONS};
use crate::package::{package_dir, Package};
use crate::template;

pub const DEFINITION_FILE: &str = "definitions/OrderProcessor.asl.json";
/// The order's JSON Schema (draft 4), the API's model for POST bodies.
pub const ORDER_MODEL_FILE: &str = "models/Order.schema.json";

#[derive(Clone, Debug)]
pub struct RolePolicies {
    /// With `${...}` placeholders still in.
    pub trust: Value,
    /// With `${...}` placeholders still in.
    pub permissions: Value,
}

#[derive(Clone, Debug)]
pub struct Sources {
    pub functions: BTreeMap<&'static str, Package>,
    pub definition: Definition,
    /// By `RoleFor::as_str()`.
    pub policies: BTreeMap<&'static str, RolePolicies>,
    /// `models/Order.schema.json`: what API Gateway accepts as an order.
    pub order_model: Value,
}

impl Sources {
    /// `origin` says how the project directory was named (`--project-dir
    /// DIR`), or `None` for the current directory: a missing file's error
    /// suggests --project-dir only when it was not given.
    pub fn load(project_dir: &Path, origin: Option<&str>) -> Result<Sources> {
        // A directory with all three is the project: what is missing is the file.
        let is_project = ["lambdas", "definitions", "policies"]
            .iter()
            .all(|sub| project_dir.join(sub).is_dir());
        let hint = |missing: &str| {
            match origin {
            _ if is_project => format!("{missing} is missing from the project; add it"),
            None => "run stepgate from the project directory or pass --project-dir".to_string(),
            Some(origin) => format!(
                "{origin} holds no {missing}; name the directory that holds lambdas/, definitions/ and policies/"
            ),
        }
        };
        let known: BTreeSet<String> = Names::new("s", "s", "r", "0")
            .placeholders()
            .into_keys()
            .collect();
        let mut functions = BTreeMap::new();
        for key in FUNCTIONS {
            let dir = project_dir.join("lambdas").join(key);
            if !dir.join("index.js").is_file() && !dir.join("index.mjs").is_file() {
                bail!(
                    "{}: no index.js or index.mjs; the handler index.{key} is loaded from there ({})",
                    dir.display(),
                    hint(&format!("lambdas/{key}{}", if dir.is_dir() { "/index.js" } else { "" }))
                );
            }
            functions.insert(
                key,
                package_dir(&dir).with_context(|| format!("package lambdas/{key}"))?,
            );
        }

        let path = project_dir.join(DEFINITION_FILE);
        let text = read(
            &path,
            limits::DEFINITION_FILE_BYTES,
            "definition",
            &hint(DEFINITION_FILE),
        )?;
        let required: BTreeSet<String> = FUNCTIONS.iter().map(|k| format!("{k}Arn")).collect();
        let definition = Definition::parse(&text, &known, &required)
            .with_context(|| path.display().to_string())?;

        let mut policies = BTreeMap::new();
        for purpose in RoleFor::ALL {
            let load = |suffix: &str| -> Result<Value> {
                let file = format!("policies/{}-{suffix}.json", purpose.as_str());
                let path = project_dir.join(&file);
                let doc = parse_policy(&read(
                    &path,
                    limits::DOCUMENT_BYTES,
                    "policy",
                    &hint(&file),
                )?)
                .with_context(|| path.display().to_string())?;
                template::check_known(&doc, &known).with_context(|| path.display().to_string())?;
                Ok(doc)
            };
            policies.insert(
                purpose.as_str(),
                RolePolicies {
                    trust: load("trust")?,
                    permissions: load("permissions")?,
                },
            );
        }
        let path = project_dir.join(ORDER_MODEL_FILE);
        let text = read(
            &path,
            limits::DOCUMENT_BYTES,
            "model",
            &hint(ORDER_MODEL_FILE),
        )?;
        let order_model = parse_model(&text).with_context(|| path.display().to_string())?;
        Ok(Sources {
            functions,
            definition,
            policies,
            order_model,
        })
    }
}

/// Reads a project file: a regular file of at most `limit` bytes. `hint`
/// says what to do if it cannot be read.
fn read(path: &Path, limit: u64, kind: &str, hint: &str) -> Result<String> {
    if let Some(what) = limits::not_regular(path) {
        bail!(
            "{}: is {what}, not a regular file; put the {kind} file itself there",
            path.display()
        );
    }
    match limits::read_text(path, limit) {
        Ok(text) => Ok(text),
        Err(ReadError::TooLarge { limit }) => bail!(
            "{}: larger than {}, the most stepgate reads from a {kind} file; check that it is the right file",
            path.display(),
            limits::bytes(limit)
        ),
        Err(ReadError::Io(e)) => {
            Err(e).with_context(|| format!("{}: cannot read it; {hint}", path.display()))
        }
    }
}

/// A model is a JSON Schema draft 4 object, the only draft API Gateway
/// accepts.
fn parse_model(text: &str) -> Result<Value> {
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
fn parse_policy(text: &str) -> Result<Value> {
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
    fn the_repository_sources_load() {
        let sources = Sources::load(Path::new(env!("CARGO_MANIFEST_DIR")), None).unwrap();
        assert_eq!(sources.functions.len(), 2);
        assert_eq!(sources.policies.len(), 3);
    }

    #[test]
    fn shipped_permissions_are_scoped_to_the_stack() {
        let sources = Sources::load(Path::new(env!("CARGO_MANIFEST_DIR")), None).unwrap();
        let names = Names::new("orders", "dev", "us-east-1", "123456789012");
        let render = |p: &str| {
            template::substitute(&sources.policies[p].permissions, &names.placeholders())
                .to_string()
        };
        let states = render("states");
        assert!(states.contains(&names.function_arn("completeOrder")));
        assert!(states.contains(&names.function_arn("cancelOrder")));
        let api = render("apigateway");
        assert!(api.contains(&names.state_machine_arn()) && api.contains("states:StartExecution"));
        assert!(!api.contains("\"*\""));
        assert!(!render("lambda").contains("\"*\""));
    }

    #[test]
    fn service_trust_is_limited_to_this_account_and_state_machine() {
        let sources = Sources::load(Path::new(env!("CARGO_MANIFEST_DIR")), None).unwrap();
        let names = Names::new("orders", "dev", "us-east-1", "123456789012");
        let condition = |p: &str| {
            template::substitute(&sources.policies[p].trust, &names.placeholders())["Statement"][0]
                ["Condition"]
                .clone()
        };
        let states = condition("states");
        assert_eq!(states["StringEquals"]["aws:SourceAccount"], "123456789012");
        assert_eq!(
            states["ArnLike"]["aws:SourceArn"],
            names.state_machine_arn()
        );
        let api = condition("apigateway");
        assert_eq!(api["StringEquals"]["aws:SourceAccount"], "123456789012");
    }

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

    #[test]
    fn a_missing_lambda_directory_names_the_fix() {
        let empty = std::env::temp_dir().join(format!("stepgate-empty-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let err = format!("{:#}", Sources::load(&empty, None).unwrap_err());
        assert!(
            err.contains("lambdas/completeOrder") && err.contains("--project-dir"),
            "{err}"
        );
        // Named explicitly, the hint is about what the directory lacks.
        let origin = format!("--project-dir {}", empty.display());
        let err = format!("{:#}", Sources::load(&empty, Some(&origin)).unwrap_err());
        assert!(
            err.ends_with(&format!(
                "({origin} holds no lambdas/completeOrder; name the directory that holds lambdas/, definitions/ and policies/)"
            )),
            "{err}"
        );
        assert!(!err.contains("pass --project-dir"), "{err}");
    }
}
