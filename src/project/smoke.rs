//! Smoke orders: `smoke/*.json`, each a request to one route and what the
//! execution it starts must end with: read and checked against the routes
//! they name, turned into the execution's input, and the result judged.
//! Pure: `kinds/machine_alias.rs` starts the executions.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};
use serde_json::Value;

use super::route::{Route, Source};
use crate::limits;

/// One smoke file, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct SmokeOrder {
    /// `smoke/approved.json`, as errors name it.
    pub file: String,
    /// `POST /orderprocess`.
    pub route: String,
    pub state_machine: String,
    /// What the route makes of the request: the execution's input.
    pub input: Value,
    /// SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
    pub status: String,
    /// Fields the output must hold (a subset, compared recursively).
    pub output: Option<Value>,
}

impl SmokeOrder {
    /// Why an execution that ended with `status` and `output` fails this
    /// order (expected, then actual), or `None` if it passes.
    pub fn judge(&self, status: &str, output: Option<&Value>) -> Option<String> {
        if status != self.status {
            return Some(format!("expected status {}, got {status}", self.status));
        }
        let expected = self.output.as_ref()?;
        let actual = output.unwrap_or(&Value::Null);
        mismatch(expected, actual)
            .map(|(path, want, got)| format!("expected output.{path} = {want}, got {got}"))
    }
}

const STATUSES: [&str; 4] = ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];
const KEYS: [&str; 6] = ["route", "body", "path", "query", "headers", "expect"];

/// Every `smoke/*.json` of the project, by file name; none without `smoke/`.
pub fn load(dir: &Path, routes: &[Route]) -> Result<Vec<SmokeOrder>> {
    let smoke = dir.join("smoke");
    let entries = match std::fs::read_dir(&smoke) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => bail!("{}: cannot list it: {e}", smoke.display()),
    };
    let mut files: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().to_str().map(str::to_string))
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|name| {
            let path = smoke.join(&name);
            let text = super::read(&path, limits::ORDER_BYTES, "smoke")?;
            parse(&format!("smoke/{name}"), &text, routes)
        })
        .collect()
}

/// One smoke file's text, checked against the project's routes.
pub fn parse(file: &str, text: &str, routes: &[Route]) -> Result<SmokeOrder> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!("{file}: not JSON ({e}); write {{\"route\": \"POST /path\", \"body\": {{...}}, \"expect\": {{\"status\": \"SUCCEEDED\"}}}}")
    })?;
    let Some(fields) = doc.as_object() else {
        bail!("{file}: a smoke order is a JSON object with route, body and expect");
    };
    if let Some(key) = fields.keys().find(|k| !KEYS.contains(&k.as_str())) {
        bail!(
            "{file}: unknown key {key:?}; a smoke order takes {}",
            KEYS.join(", ")
        );
    }
    let Some(key) = doc["route"].as_str() else {
        bail!("{file}: route is missing; name one of the project's routes, such as \"POST /orderprocess\"");
    };
    let Some(route) = routes.iter().find(|r| r.key() == key) else {
        let known: Vec<String> = routes.iter().map(Route::key).collect();
        bail!(
            "{file}: route {key:?} is not a route of the project{}; use one of {}",
            super::did_you_mean(key, known.iter()),
            if known.is_empty() {
                "(none declared)".to_string()
            } else {
                known.join(", ")
            }
        );
    };
    let strings = |key: &str| -> Result<BTreeMap<String, String>> {
        match &doc[key] {
            Value::Null => Ok(BTreeMap::new()),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| match v.as_str() {
                    Some(s) => Ok((k.clone(), s.to_string())),
                    None => bail!("{file}: {key}.{k} must be a string, as in a request"),
                })
                .collect(),
            _ => bail!("{file}: {key} must be an object of strings"),
        }
    };
    let request = Request {
        body: doc.get("body").cloned().unwrap_or(Value::Null),
        path: strings("path")?,
        query: strings("query")?,
        headers: strings("headers")?,
    };
    let expect = &doc["expect"];
    let Some(status) = expect["status"].as_str() else {
        bail!(
            "{file}: expect.status is missing; say how the execution must end: {}",
            STATUSES.join(", ")
        );
    };
    if !STATUSES.contains(&status) {
        bail!(
            "{file}: expect.status {status:?}: use {}",
            STATUSES.join(", ")
        );
    }
    if let Some(key) = expect
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "status" && *k != "output"))
    {
        bail!("{file}: expect.{key} is not known; expect takes status and output");
    }
    Ok(SmokeOrder {
        file: file.to_string(),
        route: key.to_string(),
        state_machine: route.state_machine.clone(),
        input: input(route, &request),
        status: status.to_string(),
        output: expect.get("output").filter(|o| !o.is_null()).cloned(),
    })
}

/// The parts of a request a route's input may take fields from.
pub struct Request {
    pub body: Value,
    pub path: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
}

/// What the route's mapping template makes of `request`: the whole body,
/// or the fields its `input` maps (an absent parameter is "", as there).
pub fn input(route: &Route, request: &Request) -> Value {
    // `input_string`: the field's string is the input document itself.
    if let Some(field) = &route.input_string {
        if let Some(text) = request.body.get(field).and_then(Value::as_str) {
            return serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.into()));
        }
    }
    let Some(fields) = &route.input else {
        return request.body.clone();
    };
    let text = |map: &BTreeMap<String, String>, key: &str| {
        Value::String(map.get(key).cloned().unwrap_or_default())
    };
    fields
        .iter()
        .map(|(field, source)| {
            let value = match source {
                Source::Body => request.body.clone(),
                Source::BodyField(path) => path
                    .split('.')
                    .try_fold(&request.body, |v, k| v.get(k))
                    .cloned()
                    .unwrap_or(Value::Null),
                Source::Path(p) => text(&request.path, p),
                Source::Query(q) => text(&request.query, q),
                Source::Header(h) => text(&request.headers, h),
                Source::RequestId => Value::String("stepgate-smoke".into()),
                Source::CallerIp => Value::String("127.0.0.1".into()),
            };
            (field.clone(), value)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The first way `actual` falls short of `expected` (a subset: every field
/// of `expected`, recursively, with the same value), as
/// `(dotted path, expected, actual)`.
pub fn mismatch(expected: &Value, actual: &Value) -> Option<(String, Value, Value)> {
    fn walk(path: &str, expected: &Value, actual: &Value) -> Option<(String, Value, Value)> {
        match expected {
            Value::Object(fields) => fields.iter().find_map(|(k, v)| {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(&sub, v, actual.get(k).unwrap_or(&Value::Null))
            }),
            _ if expected == actual => None,
            _ => Some((path.to_string(), expected.clone(), actual.clone())),
        }
    }
    walk("", expected, actual)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn routes() -> Vec<Route> {
        vec![Route {
            method: "POST".into(),
            path: "/orderprocess".into(),
            state_machine: "OrderProcessor".into(),
            input: None,
            model: None,
            execution_name: None,
            sync: false,
            errors: BTreeMap::new(),
            auth: crate::project::access::Auth::Open,
            api_key: false,
            scopes: Vec::new(),
            status: false,
            input_string: None,
        }]
    }

    #[test]
    fn a_smoke_order_names_its_route_body_and_expected_end() {
        let order = parse(
            "smoke/approved.json",
            r#"{"route": "POST /orderprocess", "body": {"orderId": "1"},
                "expect": {"status": "SUCCEEDED", "output": {"orderDetails": {"status": "Approved"}}}}"#,
            &routes(),
        )
        .unwrap();
        assert_eq!(order.state_machine, "OrderProcessor");
        assert_eq!(order.input, serde_json::json!({"orderId": "1"}));
        assert_eq!(order.status, "SUCCEEDED");
    }

    #[test]
    fn bad_smoke_files_are_refused_with_the_fix() {
        let refused = |text: &str| {
            parse("smoke/x.json", text, &routes())
                .unwrap_err()
                .to_string()
        };
        assert!(refused("{").starts_with("smoke/x.json: not JSON"));
        assert_eq!(
            refused(r#"{"route": "POST /orderproces", "expect": {"status": "SUCCEEDED"}}"#),
            "smoke/x.json: route \"POST /orderproces\" is not a route of the project (did you mean POST /orderprocess?); use one of POST /orderprocess"
        );
        assert_eq!(
            refused(r#"{"route": "POST /orderprocess", "expect": {"status": "OK"}}"#),
            "smoke/x.json: expect.status \"OK\": use SUCCEEDED, FAILED, TIMED_OUT, ABORTED"
        );
        assert!(refused(r#"{"route": "POST /orderprocess"}"#).contains("expect.status is missing"));
        assert!(refused(r#"{"route": "POST /orderprocess", "bdy": {}}"#)
            .contains("unknown key \"bdy\""));
    }

    #[test]
    fn the_expected_output_is_a_subset_compared_field_by_field() {
        let actual = json!({"orderDetails": {"status": "Rejected", "id": 7}, "message": "x"});
        assert_eq!(mismatch(&json!({"orderDetails": {"id": 7}}), &actual), None);
        assert_eq!(
            mismatch(&json!({"orderDetails": {"status": "Approved"}}), &actual),
            Some((
                "orderDetails.status".into(),
                json!("Approved"),
                json!("Rejected")
            ))
        );
        assert_eq!(
            mismatch(&json!({"missing": 1}), &actual),
            Some(("missing".into(), json!(1), Value::Null))
        );
    }

    #[test]
    fn a_route_with_an_input_mapping_takes_its_fields_from_the_request() {
        let route = Route {
            method: "POST".into(),
            path: "/recipes/{id}".into(),
            state_machine: "M".into(),
            input: Some(BTreeMap::from([
                ("id".to_string(), Source::Path("id".into())),
                ("size".to_string(), Source::BodyField("a.size".into())),
                ("who".to_string(), Source::Header("X-Who".into())),
            ])),
            model: None,
            execution_name: None,
            sync: false,
            errors: BTreeMap::new(),
            auth: crate::project::access::Auth::Open,
            api_key: false,
            scopes: Vec::new(),
            status: false,
            input_string: None,
        };
        let request = Request {
            body: json!({"a": {"size": 3}}),
            path: BTreeMap::from([("id".to_string(), "r1".to_string())]),
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
        };
        assert_eq!(
            input(&route, &request),
            json!({"id": "r1", "size": 3, "who": ""})
        );
    }
}
