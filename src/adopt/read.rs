//! Follows a stack built by hand, read-only: REST API -> stage -> methods
//! -> integrations (action, credentials role, template) -> state machine
//! -> definition -> the functions its Task states call -> their roles.
//! Every call here is a Get, List or Describe.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use super::{
    lambda_of, tasks, Found, FoundApi, FoundFunction, FoundMachine, FoundRole, FoundRoute,
};
use crate::aws::{code, error, Aws};

/// Where adopt starts: the API (name or id) and its stage, or a machine.
pub struct Start<'a> {
    pub api: Option<&'a str>,
    /// The stage as given; `None` is fine when the API has one.
    pub stage: Option<&'a str>,
    /// The machine (name or ARN): where the integration lets the client
    /// name it, or where adopt starts without an API.
    pub state_machine: Option<&'a str>,
}

/// The largest package adopt downloads (Lambda's limit for a zip upload is 50 MB).
const PACKAGE_BYTES: u64 = 70 * 1024 * 1024;

pub async fn follow(aws: &Aws, start: &Start<'_>) -> Result<Found> {
    let mut found = Found::default();
    let given_machine = match start.state_machine {
        Some(name) => Some(machine_arn(aws, name).await?),
        None => None,
    };
    let mut machine_arns: Vec<String> = Vec::new();
    if let Some(api) = start.api {
        let api = read_api(
            aws,
            api,
            start.stage,
            given_machine.as_deref(),
            &mut found.notes,
        )
        .await?;
        for route in &api.routes {
            if !machine_arns.contains(&route.machine) {
                machine_arns.push(route.machine.clone());
            }
        }
        found.api = Some(api);
    }
    if let Some(arn) = given_machine {
        if !machine_arns.contains(&arn) {
            machine_arns.push(arn);
        }
    }
    let mut function_arns: Vec<String> = Vec::new();
    for arn in &machine_arns {
        let machine = read_machine(aws, arn).await?;
        let definition: Value = serde_json::from_str(&machine.definition).with_context(|| {
            format!("state machine {}: its definition is not JSON", machine.name)
        })?;
        for (state, task) in tasks(&definition) {
            match lambda_of(&task) {
                Some(f) if !function_arns.contains(&f) => function_arns.push(f),
                Some(_) => {}
                None => found.notes.push(format!(
                    "not followed: state {state} of {} calls {}, not a Lambda function; its ARN stays literal in the definition, and its permissions are not in the generated role (add them to policies/{}-permissions.json)",
                    machine.name,
                    task["Resource"].as_str().unwrap_or("an unknown resource"),
                    super::logical_name(&machine.name),
                )),
            }
        }
        found.machines.push(machine);
    }
    for arn in &function_arns {
        found.functions.push(read_function(aws, arn).await?);
    }
    let mut roles: BTreeSet<String> = found.functions.iter().map(|f| f.role.clone()).collect();
    roles.extend(found.machines.iter().map(|m| m.role.clone()));
    roles.extend(found.api.iter().filter_map(|a| a.role.clone()));
    for role in roles {
        if let Some(live) = crate::kinds::iam::read(aws, &role).await? {
            let f = &live.fields;
            found.roles.insert(
                role,
                FoundRole {
                    managed: f["managed_policies"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect(),
                    inline: f["inline_policies"]
                        .as_object()
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default(),
                },
            );
        } else {
            found
                .notes
                .push(format!("not followed: role {role} does not exist"));
        }
    }
    Ok(found)
}

async fn read_api(
    aws: &Aws,
    wanted: &str,
    stage: Option<&str>,
    given_machine: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<FoundApi> {
    let gw = &aws.apigateway;
    let apis: Vec<_> = gw
        .get_rest_apis()
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| error(&format!("rest-api {wanted}"), "GetRestApis", e))?;
    let by_id: Vec<_> = apis.iter().filter(|a| a.id() == Some(wanted)).collect();
    let by_name: Vec<_> = apis.iter().filter(|a| a.name() == Some(wanted)).collect();
    let api = match (by_id.as_slice(), by_name.as_slice()) {
        ([api], _) | ([], [api]) => *api,
        ([], []) => bail!(
            "--api {wanted}: no REST API has that name or id in region {} ({} others do; `aws apigateway get-rest-apis` lists them)",
            aws.region,
            apis.len()
        ),
        (_, several) => {
            bail!(
            "--api {wanted}: {} REST APIs have that name (ids {}); give the id of the one to adopt",
            several.len(),
            several.iter().filter_map(|a| a.id()).collect::<Vec<_>>().join(", ")
        )
        }
    };
    let id = api.id().unwrap_or_default().to_string();
    let name = api.name().unwrap_or_default().to_string();
    let what = format!("rest-api {name}");
    let stages: Vec<String> = gw
        .get_stages()
        .rest_api_id(&id)
        .send()
        .await
        .map_err(|e| error(&what, "GetStages", e))?
        .item()
        .iter()
        .filter_map(|s| s.stage_name().map(str::to_string))
        .collect();
    let stage = match (stage, stages.as_slice()) {
        (Some(s), _) if stages.iter().any(|x| x == s) => s.to_string(),
        (Some(s), []) => {
            bail!("--stage {s}: REST API {name} ({id}) has no stage; deploy it to a stage first")
        }
        (Some(s), _) => bail!(
            "--stage {s}: REST API {name} ({id}) has no such stage; it has {}",
            stages.join(", ")
        ),
        (None, [only]) => only.clone(),
        (None, []) => bail!("REST API {name} ({id}) has no stage; deploy it to a stage first"),
        (None, _) => bail!(
            "REST API {name} ({id}) has stages {}; name the one to adopt with --stage",
            stages.join(", ")
        ),
    };
    let resources: Vec<_> = gw
        .get_resources()
        .rest_api_id(&id)
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| error(&what, "GetResources", e))?;
    let mut routes = Vec::new();
    let mut role: Option<String> = None;
    let mut model_names: BTreeSet<String> = BTreeSet::new();
    let mut paths: Vec<(String, String, String)> = Vec::new();
    for r in &resources {
        let (Some(path), Some(rid)) = (r.path(), r.id()) else {
            continue;
        };
        for http in r.resource_methods().into_iter().flat_map(|m| m.keys()) {
            if http != "OPTIONS" {
                paths.push((path.to_string(), rid.to_string(), http.clone()));
            }
        }
    }
    paths.sort();
    for (path, rid, http) in paths {
        let key = format!("{http} {path}");
        let method = gw
            .get_method()
            .rest_api_id(&id)
            .resource_id(&rid)
            .http_method(&http)
            .send()
            .await
            .map_err(|e| error(&what, &format!("GetMethod {key}"), e))?;
        let integration = method
            .method_integration()
            .ok_or_else(|| anyhow!("{key}: has no integration; adopt follows methods that start a Step Functions execution"))?;
        let uri = integration.uri().unwrap_or_default();
        let kind = integration.r#type().map(|t| t.as_str()).unwrap_or("none");
        let action = uri.rsplit_once(":states:action/").map(|(_, a)| a);
        if kind != "AWS" || !matches!(action, Some("StartExecution") | Some("StartSyncExecution")) {
            bail!(
                "{key}: its integration is {kind} {}, not Step Functions' StartExecution; adopt follows routes that start a state machine only",
                if uri.is_empty() { "(no URI)" } else { uri }
            );
        }
        if let Some(arn) = integration.credentials() {
            let name = arn.rsplit('/').next().unwrap_or(arn).to_string();
            match &role {
                Some(r) if *r != name => notes.push(format!(
                    "{key}: its integration runs as role {name}, another than the other routes' {r}; the project gives every route one role"
                )),
                _ => role = Some(name),
            }
        }
        let template = integration
            .request_templates()
            .and_then(|t| t.get("application/json"))
            .cloned()
            .unwrap_or_default();
        let passthrough = machine_in(&template).is_none();
        let machine = match (machine_in(&template), given_machine) {
            (Some(arn), _) => arn,
            (None, Some(arn)) => {
                notes.push(format!(
                    "{key}: the client names the state machine in the body; the project pins {arn} and ignores the client's, and keeps taking the input from the body's \"input\" string (or the whole body without it)"
                ));
                arn.to_string()
            }
            (None, None) => bail!(
                "{key}: its integration passes the body through, so the client names the state machine; name it with --state-machine NAME"
            ),
        };
        let auth = match method.authorization_type().unwrap_or("NONE") {
            "NONE" => "none".to_string(),
            "AWS_IAM" => "iam".to_string(),
            other => {
                notes.push(format!(
                    "not followed: {key} is protected by a {other} authorizer; the project declares it auth = \"none\" until you declare the authorizer"
                ));
                "none".to_string()
            }
        };
        let model = method
            .request_models()
            .and_then(|m| m.get("application/json"))
            .cloned();
        model_names.extend(model.clone());
        routes.push(FoundRoute {
            method: http,
            path,
            machine,
            auth,
            api_key: method.api_key_required().unwrap_or(false),
            model,
            passthrough,
        });
    }
    let mut models = BTreeMap::new();
    for model in model_names
        .iter()
        .filter(|m| !["Empty", "Error"].contains(&m.as_str()))
    {
        let got = gw
            .get_model()
            .rest_api_id(&id)
            .model_name(model)
            .send()
            .await
            .map_err(|e| error(&what, &format!("GetModel {model}"), e))?;
        let schema: Value = serde_json::from_str(got.schema().unwrap_or("{}"))
            .with_context(|| format!("{what}: model {model} is not JSON"))?;
        models.insert(model.clone(), schema);
    }
    Ok(FoundApi {
        id,
        name,
        stage,
        role,
        routes,
        models,
    })
}

/// The machine a mapping template pins: `"stateMachineArn": "arn:..."`.
fn machine_in(template: &str) -> Option<String> {
    let at = template.find(":stateMachine:")?;
    let start = template[..at].rfind("arn:")?;
    let end = template[at..]
        .find(|c: char| c == '"' || c == '\'' || c.is_whitespace())
        .map_or(template.len(), |e| at + e);
    Some(template[start..end].to_string())
}

/// A machine's ARN from its name or ARN.
async fn machine_arn(aws: &Aws, wanted: &str) -> Result<String> {
    if wanted.starts_with("arn:") {
        return Ok(wanted.to_string());
    }
    let machines: Vec<_> = aws
        .sfn
        .list_state_machines()
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| error(&format!("state-machine {wanted}"), "ListStateMachines", e))?;
    machines
        .iter()
        .find(|m| m.name() == wanted)
        .map(|m| m.state_machine_arn().to_string())
        .ok_or_else(|| {
            anyhow!(
                "--state-machine {wanted}: no state machine has that name in region {}",
                aws.region
            )
        })
}

async fn read_machine(aws: &Aws, arn: &str) -> Result<FoundMachine> {
    let what = format!("state-machine {arn}");
    let out = match aws
        .sfn
        .describe_state_machine()
        .state_machine_arn(arn)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if code(&e) == Some("StateMachineDoesNotExist") => {
            bail!("{arn}: no such state machine (the API's integration names it)")
        }
        Err(e) => return Err(error(&what, "DescribeStateMachine", e)),
    };
    Ok(FoundMachine {
        name: out.name().to_string(),
        arn: out.state_machine_arn().to_string(),
        kind: out.r#type().as_str().to_string(),
        definition: out.definition().to_string(),
        role: out
            .role_arn()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string(),
    })
}

async fn read_function(aws: &Aws, arn: &str) -> Result<FoundFunction> {
    let what = format!("function {arn}");
    let out = aws
        .lambda
        .get_function()
        .function_name(arn)
        .send()
        .await
        .map_err(|e| error(&what, "GetFunction", e))?;
    let config = out
        .configuration()
        .ok_or_else(|| anyhow!("{what}: GetFunction returned no configuration"))?;
    let name = config.function_name().unwrap_or_default().to_string();
    let location = out
        .code()
        .and_then(|c| c.location())
        .ok_or_else(|| anyhow!("function {name}: GetFunction gave no code location (an image function?); adopt follows zip packages"))?
        .to_string();
    let code = download(&location)
        .await
        .with_context(|| format!("function {name}: its code"))?;
    Ok(FoundFunction {
        arn: config
            .function_arn()
            .map(|a| a.split(':').take(7).collect::<Vec<_>>().join(":"))
            .unwrap_or_else(|| arn.to_string()),
        handler: config.handler().unwrap_or_default().to_string(),
        runtime: config
            .runtime()
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
        memory_mb: config.memory_size().unwrap_or(128),
        timeout_s: config.timeout().unwrap_or(3),
        architecture: config
            .architectures()
            .first()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| "x86_64".into()),
        environment: config
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        role: config
            .role()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string(),
        code,
        name,
    })
}

/// The package from GetFunction's presigned URL (on AWS, S3; on an
/// emulator, its own loopback endpoint). The URL is a credential for ten
/// minutes: never printed.
async fn download(url: &str) -> Result<Vec<u8>> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
        use std::io::Read;
        let response = ureq::get(&url)
            .timeout(std::time::Duration::from_secs(120))
            .call()
            .map_err(|e| match e {
                ureq::Error::Status(status, _) => anyhow!("the download answered HTTP {status}"),
                ureq::Error::Transport(t) => anyhow!("the download failed: {}", t.kind()),
            })?;
        let mut bytes = Vec::new();
        response
            .into_reader()
            .take(PACKAGE_BYTES + 1)
            .read_to_end(&mut bytes)?;
        if bytes.len() as u64 > PACKAGE_BYTES {
            bail!("larger than 70 MB");
        }
        Ok(bytes)
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_pins_its_machine() {
        let template = r#"{"input": "$util.escapeJavaScript($input.json('$'))", "stateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:OrderProcessor"}"#;
        assert_eq!(
            machine_in(template).as_deref(),
            Some("arn:aws:states:us-east-1:000000000000:stateMachine:OrderProcessor")
        );
        assert_eq!(machine_in(""), None);
        assert_eq!(machine_in("$input.body"), None);
    }
}
