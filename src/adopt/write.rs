//! The project `adopt` writes: its files as (path, bytes), then written
//! into a directory that must be empty unless `--force`. Building the
//! files is pure; only `write` touches the disk.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::{logical_name, with_placeholders, Found};
use crate::checks::runtime;

/// Lambda's policy for a function's own logs, which the console attaches
/// and stepgate's generated role already grants.
const BASIC_EXECUTION: &str = "service-role/AWSLambdaBasicExecutionRole";
/// API Gateway's own models on every new REST API: nothing of the project's.
const BUILT_IN_MODELS: [&str; 2] = ["Empty", "Error"];
/// The most adopt unpacks from one function's package (Lambda's own limit
/// for an unzipped package).
const UNZIPPED_BYTES: u64 = 250 * 1024 * 1024;

/// One file of the project: its path within it, and its bytes.
pub type File = (PathBuf, Vec<u8>);

/// What the project is for: the stack and stage it deploys as.
pub struct Target<'a> {
    pub stack: &'a str,
    pub stage: &'a str,
}

/// The project's files, and notes on what was changed or left out.
pub fn project_files(found: &Found, target: &Target) -> Result<(Vec<File>, Vec<String>)> {
    let mut files: Vec<File> = Vec::new();
    let mut notes = Vec::new();
    let mut arns: Vec<(String, String)> = Vec::new();
    for f in &found.functions {
        arns.push((f.arn.clone(), logical_name(&f.name)));
    }
    for m in &found.machines {
        arns.push((m.arn.clone(), logical_name(&m.name)));
    }
    let machine_of: BTreeMap<&str, String> = found
        .machines
        .iter()
        .map(|m| (m.arn.as_str(), logical_name(&m.name)))
        .collect();

    let mut toml = String::new();
    let _ = writeln!(
        toml,
        "# Written by `stepgate adopt`{}.",
        match &found.api {
            Some(api) => format!(
                " from REST API {} ({}) stage {}",
                api.name, api.id, api.stage
            ),
            None => String::new(),
        }
    );
    toml.push_str("# Each `name` (and [api] id) makes stepgate manage that exact resource.\n");
    let _ = writeln!(
        toml,
        "# `stepgate plan --stage {0}` lists them as adopt; `stepgate deploy --stage {0} --adopt` takes them.\n",
        target.stage
    );
    let _ = writeln!(toml, "stack = {}", quoted(target.stack));

    if let Some(api) = &found.api {
        let _ = write!(
            toml,
            "\n# The REST API keeps its id, so its URL.\n[api]\nname = {}\nid = {}\n",
            quoted(&api.name),
            quoted(&api.id)
        );
        if let Some(role) = &api.role {
            let _ = write!(
                toml,
                "\n# API Gateway's role for the routes.\n[roles.apigateway]\nname = {}\n",
                quoted(role)
            );
        }
    }

    for f in &found.functions {
        let logical = logical_name(&f.name);
        unpack(&f.code, &Path::new("lambdas").join(&logical), &mut files)
            .with_context(|| format!("function {}: the deployed package", f.name))?;
        let _ = write!(
            toml,
            "\n[functions.{logical}]\nname = {}\n",
            quoted(&f.name)
        );
        if f.handler != format!("index.{logical}") {
            let _ = writeln!(toml, "handler = {}", quoted(&f.handler));
        }
        if runtime::is_supported(&f.runtime) {
            let _ = writeln!(toml, "runtime = {}", quoted(&f.runtime));
        } else {
            notes.push(format!(
                "function {} runs {}, which Lambda no longer supports; the project runs it on stepgate's default runtime ({}), and plan shows the change",
                f.name,
                f.runtime,
                runtime::REPLACEMENT
            ));
        }
        if f.memory_mb != 128 {
            let _ = writeln!(toml, "memory = {}", f.memory_mb);
        }
        if f.timeout_s != 10 {
            let _ = writeln!(toml, "timeout = {}", f.timeout_s);
        }
        if f.architecture != "x86_64" {
            let _ = writeln!(toml, "architecture = {}", quoted(&f.architecture));
        }
        if !f.environment.is_empty() {
            let pairs: Vec<String> = f
                .environment
                .iter()
                .map(|(k, v)| format!("{k} = {}", quoted(v)))
                .collect();
            let _ = writeln!(toml, "environment = {{ {} }}", pairs.join(", "));
        }
        // The function's own role: what it holds beyond its logs becomes
        // the function's permissions file; the role itself is left.
        if let Some(role) = found.roles.get(&f.role) {
            let statements: Vec<Value> = role
                .inline
                .values()
                .flat_map(statements)
                .filter(|s| !only_logs(s))
                .collect();
            if !statements.is_empty() {
                let doc = json!({ "Version": "2012-10-17", "Statement": statements });
                files.push((
                    PathBuf::from(format!("policies/{logical}-permissions.json")),
                    pretty(&doc),
                ));
            }
            for managed in role
                .managed
                .iter()
                .filter(|m| !m.ends_with(BASIC_EXECUTION))
            {
                notes.push(format!(
                    "not followed: role {} of function {} has the managed policy {managed}; write what the function needs into policies/{logical}-permissions.json",
                    f.role, f.name
                ));
            }
        }
        notes.push(format!(
            "function {} will run as the stage's role; its role {} is left as it is (delete it by hand once nothing uses it)",
            f.name, f.role
        ));
    }

    let mut machine_roles: BTreeSet<&str> = BTreeSet::new();
    for m in &found.machines {
        let logical = logical_name(&m.name);
        files.push((
            PathBuf::from(format!("definitions/{logical}.asl.json")),
            with_placeholders(&m.definition, &arns).into_bytes(),
        ));
        let _ = write!(
            toml,
            "\n[state_machines.{logical}]\nname = {}\n",
            quoted(&m.name)
        );
        if m.kind != "STANDARD" {
            let _ = writeln!(toml, "type = {}", quoted(&m.kind));
        }
        if machine_roles.insert(&m.role) {
            let _ = write!(toml, "\n[roles.{logical}]\nname = {}\n", quoted(&m.role));
        } else {
            notes.push(format!(
                "state machine {} shares its role {} with another machine; the project gives it a role of its own",
                m.name, m.role
            ));
        }
    }

    if let Some(api) = &found.api {
        for (name, schema) in &api.models {
            files.push((
                PathBuf::from(format!("models/{name}.schema.json")),
                pretty(schema),
            ));
        }
        for r in &api.routes {
            let Some(machine) = machine_of.get(r.machine.as_str()) else {
                continue;
            };
            let _ = write!(
                toml,
                "\n[[routes]]\nmethod = {}\npath = {}\nstate_machine = {}\nauth = {}\n",
                quoted(&r.method),
                quoted(&r.path),
                quoted(machine),
                quoted(&r.auth)
            );
            if r.passthrough {
                toml.push_str("input_string = \"body.input\"\n");
            }
            if r.api_key {
                notes.push(format!(
                    "not followed: {} {} requires an API key; declare [api] keys and api_key = true to keep it",
                    r.method, r.path
                ));
            }
            if let Some(model) = r
                .model
                .as_ref()
                .filter(|m| !BUILT_IN_MODELS.contains(&m.as_str()))
            {
                let _ = writeln!(
                    toml,
                    "model = {}",
                    quoted(&format!("models/{model}.schema.json"))
                );
            }
        }
    }
    let left: Vec<String> = found
        .functions
        .iter()
        .map(|f| f.role.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|r| !found.machines.iter().any(|m| m.role == *r))
        .filter(|r| found.api.as_ref().and_then(|a| a.role.as_ref()) != Some(r))
        .collect();
    if !left.is_empty() {
        let _ = write!(
            toml,
            "\n# The console's roles the project no longer uses: plan, deploy and\n# destroy say which still exist; stepgate never deletes them.\n[leftovers]\nroles = [{}]\n",
            left.iter().map(|r| quoted(r)).collect::<Vec<_>>().join(", ")
        );
    }
    files.push((PathBuf::from("stepgate.toml"), toml.into_bytes()));
    Ok((files, notes))
}

/// Writes the files under `dir`. A directory holding anything is refused,
/// before any file is written, unless `force`.
pub fn write(dir: &Path, files: &[File], force: bool) -> Result<()> {
    for (path, bytes) in files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("{}: cannot create it", parent.display()))?;
        }
        if !force && target.exists() {
            bail!(
                "{}: exists; adopt overwrites nothing without --force",
                target.display()
            );
        }
        std::fs::write(&target, bytes)
            .with_context(|| format!("{}: cannot write it", target.display()))?;
    }
    Ok(())
}

/// Refuses a directory that holds anything, unless `force`: checked
/// before any AWS call.
pub fn check_into(dir: &Path, force: bool) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if !force && entries.next().is_some() {
                bail!(
                    "--into {}: the directory is not empty; adopt overwrites nothing there unless --force (then it replaces the files it writes)",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("--into {}: cannot read it", dir.display())),
    }
}

/// The package's files under `into`, as the zip holds them.
fn unpack(zip: &[u8], into: &Path, files: &mut Vec<File>) -> Result<()> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(zip)).context("it is not a zip archive")?;
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i)?;
        if entry.is_dir() {
            continue;
        }
        let Some(path) = entry.enclosed_name() else {
            bail!("{}: a path outside the package", entry.name());
        };
        total += entry.size();
        if total > UNZIPPED_BYTES {
            bail!("larger than 250 MB unzipped, more than Lambda allows");
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes)?;
        files.push((into.join(path), bytes));
    }
    Ok(())
}

fn statements(doc: &Value) -> Vec<Value> {
    match &doc["Statement"] {
        Value::Array(items) => items.clone(),
        Value::Object(_) => vec![doc["Statement"].clone()],
        _ => Vec::new(),
    }
}

/// A statement about logs only, which the generated role grants already.
fn only_logs(statement: &Value) -> bool {
    let actions: Vec<&str> = match &statement["Action"] {
        Value::String(a) => vec![a.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    !actions.is_empty() && actions.iter().all(|a| a.starts_with("logs:"))
}

fn pretty(value: &Value) -> Vec<u8> {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text.into_bytes()
}

/// A TOML string.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::super::{FoundApi, FoundFunction, FoundMachine, FoundRole, FoundRoute};
    use super::*;

    fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut out);
        for (name, text) in files {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut w, text.as_bytes()).unwrap();
        }
        w.finish().unwrap();
        out.into_inner()
    }

    fn console() -> Found {
        let arn = |n: &str| format!("arn:aws:lambda:us-east-1:000000000000:function:{n}");
        let function = |n: &str| FoundFunction {
            name: n.into(),
            arn: arn(n),
            handler: "index.handler".into(),
            runtime: "nodejs14.x".into(),
            memory_mb: 128,
            timeout_s: 3,
            architecture: "x86_64".into(),
            environment: BTreeMap::new(),
            role: format!("{n}-role-abc123"),
            code: zip_of(&[("index.js", "exports.handler = async () => 1;\n")]),
        };
        let machine = "arn:aws:states:us-east-1:000000000000:stateMachine:OrderProcessor";
        Found {
            api: Some(FoundApi {
                id: "a1b2c3d4e5".into(),
                name: "OrderProcessorAPI".into(),
                stage: "dev".into(),
                role: Some("Custom-APIGatewayToStepFunctionsRole".into()),
                routes: vec![FoundRoute {
                    method: "POST".into(),
                    path: "/orderprocess".into(),
                    machine: machine.into(),
                    auth: "none".into(),
                    api_key: false,
                    model: None,
                    passthrough: true,
                }],
                models: BTreeMap::new(),
            }),
            machines: vec![FoundMachine {
                name: "OrderProcessor".into(),
                arn: machine.into(),
                kind: "STANDARD".into(),
                definition: format!(
                    "{{\"StartAt\":\"A\",\"States\":{{\"A\":{{\"Type\":\"Task\",\"Resource\":\"{}\",\"End\":true}}}}}}",
                    arn("completeOrder")
                ),
                role: "Custom-AWSStepFunctionServiceRole".into(),
            }],
            functions: vec![function("completeOrder"), function("cancelOrder")],
            roles: BTreeMap::from([(
                "completeOrder-role-abc123".to_string(),
                FoundRole {
                    managed: vec![format!("arn:aws:iam::aws:policy/{BASIC_EXECUTION}")],
                    inline: BTreeMap::new(),
                },
            )]),
            notes: Vec::new(),
        }
    }

    #[test]
    fn the_console_stack_becomes_a_project_with_its_names() {
        let target = Target {
            stack: "orders",
            stage: "dev",
        };
        let (files, notes) = project_files(&console(), &target).unwrap();
        let file = |p: &str| {
            let found = files.iter().find(|(path, _)| path == Path::new(p));
            String::from_utf8(found.unwrap_or_else(|| panic!("no {p}")).1.clone()).unwrap()
        };
        let toml = file("stepgate.toml");
        for expected in [
            "[api]\nname = \"OrderProcessorAPI\"\nid = \"a1b2c3d4e5\"\n",
            "[roles.apigateway]\nname = \"Custom-APIGatewayToStepFunctionsRole\"\n",
            "[functions.completeOrder]\nname = \"completeOrder\"\nhandler = \"index.handler\"\ntimeout = 3\n",
            "[state_machines.OrderProcessor]\nname = \"OrderProcessor\"\n",
            "[roles.OrderProcessor]\nname = \"Custom-AWSStepFunctionServiceRole\"\n",
            "[[routes]]\nmethod = \"POST\"\npath = \"/orderprocess\"\nstate_machine = \"OrderProcessor\"\nauth = \"none\"\ninput_string = \"body.input\"\n",
            // The functions' own roles: left, and said so.
            "[leftovers]\nroles = [\"cancelOrder-role-abc123\", \"completeOrder-role-abc123\"]\n",
        ] {
            assert!(toml.contains(expected), "{expected}\nnot in\n{toml}");
        }
        // The deprecated runtime is not written: the project's default runs it.
        assert!(!toml.contains("nodejs14.x"), "{toml}");
        assert!(
            notes.iter().any(|n| n.contains("runs nodejs14.x")),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.contains("its role completeOrder-role-abc123 is left")),
            "{notes:?}"
        );
        assert_eq!(
            file("definitions/OrderProcessor.asl.json"),
            "{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Task\",\"Resource\":\"${completeOrderArn}\",\"End\":true}}}"
        );
        assert_eq!(
            file("lambdas/completeOrder/index.js"),
            "exports.handler = async () => 1;\n"
        );
        // Nothing beyond the logs on the console's roles: no policy files.
        assert!(!files.iter().any(|(p, _)| p.starts_with("policies")));
    }

    #[test]
    fn a_function_roles_own_statements_become_its_permissions_file() {
        let mut found = console();
        found.roles.get_mut("completeOrder-role-abc123").unwrap().inline.insert(
            "orders-table".into(),
            json!({ "Version": "2012-10-17", "Statement": [
                { "Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "arn:aws:dynamodb:us-east-1:0:table/orders" },
                { "Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": "*" }
            ]}),
        );
        let target = Target {
            stack: "orders",
            stage: "dev",
        };
        let (files, _) = project_files(&found, &target).unwrap();
        let (_, doc) = files
            .iter()
            .find(|(p, _)| p == Path::new("policies/completeOrder-permissions.json"))
            .expect("a permissions file");
        let doc: Value = serde_json::from_slice(doc).unwrap();
        assert_eq!(doc["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(doc["Statement"][0]["Action"], "dynamodb:PutItem");
    }

    #[test]
    fn a_routes_model_is_written_and_named_but_api_gateways_own_are_not() {
        let mut found = console();
        let api = found.api.as_mut().unwrap();
        api.routes[0].model = Some("Order".into());
        api.models
            .insert("Order".into(), json!({ "type": "object" }));
        let mut empty = api.routes[0].clone();
        empty.path = "/ping".into();
        empty.model = Some("Empty".into());
        api.routes.push(empty);
        let target = Target {
            stack: "orders",
            stage: "dev",
        };
        let (files, _) = project_files(&found, &target).unwrap();
        let toml = String::from_utf8(
            files
                .iter()
                .find(|(p, _)| p == Path::new("stepgate.toml"))
                .unwrap()
                .1
                .clone(),
        )
        .unwrap();
        assert!(toml.contains("path = \"/orderprocess\"\nstate_machine = \"OrderProcessor\"\nauth = \"none\"\ninput_string = \"body.input\"\nmodel = \"models/Order.schema.json\"\n"), "{toml}");
        assert!(!toml.contains("Empty"), "{toml}");
        assert!(files
            .iter()
            .any(|(p, _)| p == Path::new("models/Order.schema.json")));
    }

    #[test]
    fn a_directory_with_anything_in_it_is_refused_unless_forced() {
        let dir = std::env::temp_dir().join(format!("stepgate-adopt-into-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        check_into(&dir, false).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        check_into(&dir, false).unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        let e = check_into(&dir, false).unwrap_err().to_string();
        assert!(e.ends_with("the directory is not empty; adopt overwrites nothing there unless --force (then it replaces the files it writes)"), "{e}");
        check_into(&dir, true).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
