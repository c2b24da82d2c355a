//! A route as declared: method, path with `{param}` segments, the machine it
//! starts, and where each field of the execution's input comes from.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{bail, Result};

use super::access::Auth;

/// Where one input field (or the execution's name) is taken from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The whole JSON body.
    Body,
    /// One field of the body (dotted for nested ones), keeping its JSON type.
    BodyField(String),
    Path(String),
    Query(String),
    Header(String),
    RequestId,
    CallerIp,
}

impl Source {
    pub fn parse(text: &str) -> Result<Source> {
        let simple =
            |name: &str, allow: fn(char) -> bool| !name.is_empty() && name.chars().all(allow);
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let header = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        Ok(match text.split_once('.') {
            None if text == "body" => Source::Body,
            Some(("body", field)) if field.split('.').all(|f| simple(f, ident)) => {
                Source::BodyField(field.into())
            }
            Some(("path", name)) if simple(name, ident) => Source::Path(name.into()),
            Some(("query", name)) if simple(name, header) => Source::Query(name.into()),
            Some(("header", name)) if simple(name, header) => Source::Header(name.into()),
            Some(("context", "requestId")) => Source::RequestId,
            Some(("context", "sourceIp")) => Source::CallerIp,
            _ => bail!(
                "{text:?} is not a source; use body, body.FIELD, path.NAME, query.NAME, header.NAME, context.requestId or context.sourceIp"
            ),
        })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Body => write!(f, "body"),
            Source::BodyField(x) => write!(f, "body.{x}"),
            Source::Path(x) => write!(f, "path.{x}"),
            Source::Query(x) => write!(f, "query.{x}"),
            Source::Header(x) => write!(f, "header.{x}"),
            Source::RequestId => write!(f, "context.requestId"),
            Source::CallerIp => write!(f, "context.sourceIp"),
        }
    }
}

/// A route, resolved and checked.
#[derive(Clone, Debug)]
pub struct Route {
    pub method: String,
    /// `/recipes/{id}/move`.
    pub path: String,
    pub state_machine: String,
    /// Field -> source; `None`: the whole body is the input.
    pub input: Option<BTreeMap<String, Source>>,
    /// `input_string = "body.FIELD"`: when the body has that field, a JSON
    /// document written as a string (as StartExecution takes its input, and
    /// as a console-built API's clients send it), it is the input; else
    /// the whole body is. Dotted field path.
    pub input_string: Option<String>,
    /// The API model's name (from the schema file's name), if validated.
    pub model: Option<String>,
    pub execution_name: Option<Source>,
    /// Express only: the HTTP answer is the execution's output.
    pub sync: bool,
    /// Error name -> HTTP status, for sync routes.
    pub errors: BTreeMap<String, u16>,
    /// Who may call it.
    pub auth: Auth,
    /// Callers must also send one of the stage's API keys.
    pub api_key: bool,
    /// OAuth scopes (Cognito authorizers only).
    pub scopes: Vec<String>,
    /// `GET <path>/{executionId}` answers the execution's status.
    pub status: bool,
}

impl Route {
    /// `POST /recipes/{id}/move`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The status route's path, when it has one.
    pub fn status_path(&self) -> Option<String> {
        self.status
            .then(|| format!("{}/{{{STATUS_PARAM}}}", self.path))
    }
}

/// The status route's path parameter.
pub const STATUS_PARAM: &str = "executionId";

pub const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Checks a path: `/`-separated segments of letters, digits, `-`, `_`, `.`,
/// or a whole `{param}`. Returns the parameters' names.
pub fn path_params(path: &str) -> Result<Vec<String>> {
    let Some(rest) = path.strip_prefix('/') else {
        bail!("{path:?} must start with /");
    };
    if rest.is_empty() {
        bail!("{path:?}: a route needs at least one segment; the API's root / has no methods");
    }
    let mut params = Vec::new();
    for segment in rest.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                bail!("{path:?}: {{{name}}} is not a parameter name; use letters, digits and _");
            }
            if params.iter().any(|p| p == name) {
                bail!("{path:?}: {{{name}}} appears twice");
            }
            params.push(name.to_string());
        } else if segment.is_empty()
            || !segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            bail!("{path:?}: segment {segment:?} is not valid; use letters, digits, -, _ and . or a whole {{param}}");
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_and_print_back() {
        for text in [
            "body",
            "body.user_id",
            "body.a.b",
            "path.id",
            "query.page",
            "header.Idempotency-Key",
            "context.requestId",
            "context.sourceIp",
        ] {
            assert_eq!(Source::parse(text).unwrap().to_string(), text);
        }
        for bad in [
            "bodyx",
            "body.",
            "path.",
            "path.a-b",
            "cookie.x",
            "context.x",
            "body.a'b",
        ] {
            assert!(Source::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_name_their_parameters() {
        assert_eq!(path_params("/recipes/{id}/move").unwrap(), ["id"]);
        assert!(path_params("/orderprocess").unwrap().is_empty());
        for bad in [
            "orders",
            "/",
            "/a//b",
            "/a/{}",
            "/a/{x}/{x}",
            "/a/{x-y}",
            "/a b",
        ] {
            assert!(path_params(bad).is_err(), "{bad}");
        }
    }
}
