//! One file per command: resolve settings, validate local input, then
//! talk to AWS, and return an exit status. What several commands share
//! (connecting, the report, the lock's release, outputs) is here.

mod adopt;
mod deploy;
mod destroy;
mod executions;
mod graph;
mod history;
mod init;
mod invoke;
mod keys;
mod local_checks;
mod logs;
mod outputs;
mod plan;
mod rollback;
mod unlock;

use std::time::Instant;

use anyhow::{bail, Result};

use crate::aws::Aws;
use crate::cli::Command;
use crate::config::Settings;
use crate::desired::Inputs;
use crate::kinds::apigateway;
use crate::lock::Lock;
use crate::model::ResourceId;
use crate::names::Names;
use crate::output::{Outputs, Printer, Report};
use crate::project::Project;
use crate::report::Calls;
use crate::shown::one_line;
use local_checks::Checked;

pub use graph::graph;
pub use init::init;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    Failed = 1,
    /// `plan --detailed-exitcode` found changes.
    Changes = 2,
}

pub async fn run(command: Command, printer: &Printer) -> Result<Status> {
    let settings = Settings::resolve(&command.common().overrides(), &|name| {
        std::env::var(name).ok()
    })?;
    if command.common().output == crate::output::Format::Markdown
        && !matches!(command, Command::Plan { .. })
    {
        bail!("--output markdown is for plan only (a pull-request comment); use text or json");
    }
    printer.detail(&crate::aws::credentials::check(&settings).await?);
    match command {
        Command::Deploy {
            outputs_file,
            lock,
            adopt,
            ..
        } => {
            let run = deploy::Run {
                outputs_file,
                adopt,
            };
            deploy::deploy(&settings, run, lock.lock_timeout, printer).await
        }
        Command::Plan {
            detailed_exitcode, ..
        } => plan::plan(&settings, detailed_exitcode, printer).await,
        Command::Destroy { yes, lock, .. } => {
            destroy::destroy(&settings, yes, lock.lock_timeout, printer).await
        }
        Command::Unlock { .. } => unlock::unlock(&settings, printer).await,
        Command::Outputs { .. } => outputs::outputs(&settings, printer).await,
        Command::Invoke {
            route,
            order,
            payment_status,
            api_key_name,
            token,
            ..
        } => {
            let call = invoke::Call {
                route: route.as_deref(),
                order: &order,
                payment_status: payment_status.as_deref(),
                api_key_name: api_key_name.as_deref(),
                token: token.as_deref(),
            };
            invoke::invoke(&settings, &call, printer).await
        }
        Command::Adopt {
            common,
            api,
            state_machine,
            into,
            force,
        } => {
            let request = adopt::Request {
                api: api.as_deref(),
                stage: common.stage.as_deref(),
                state_machine: state_machine.as_deref(),
                into: &into,
                force,
            };
            adopt::adopt(&settings, &request, printer).await
        }
        Command::Keys { reveal, .. } => keys::keys(&settings, reveal, printer).await,
        Command::Executions {
            state_machine,
            limit,
            status,
            ..
        } => {
            executions::executions(
                &settings,
                state_machine.as_deref(),
                limit.into(),
                status.as_deref(),
                printer,
            )
            .await
        }
        Command::Logs {
            source,
            since,
            follow,
            ..
        } => logs::logs(&settings, source, since, follow, printer).await,
        Command::Rollback {
            state_machine,
            to,
            lock,
            ..
        } => {
            rollback::rollback(
                &settings,
                state_machine.as_deref(),
                to,
                lock.lock_timeout,
                printer,
            )
            .await
        }
        Command::History { state_machine, .. } => {
            history::history(&settings, state_machine.as_deref(), printer).await
        }
    }
}

/// Connects, finds the account (STS) and enforces the account guard before
/// anything else touches AWS.
async fn connect(settings: &Settings) -> Result<(Aws, Names)> {
    let mut aws = Aws::connect(settings).await?;
    let identity = aws.identity().await?;
    if let Some(target) = &aws.assumed {
        check_assumed(&identity, target)?;
    }
    aws.caller = identity.arn;
    let account = identity.account;
    if let Some(expected) = &settings.account {
        if *expected != account {
            bail!(
                "the credentials belong to account {account}, but this run is pinned to account {expected}; refusing to touch it. Use credentials for {expected}, or change the account setting"
            );
        }
    }
    let names = Names::new(&settings.stack, &settings.stage, &aws.region, &account)
        .with_overrides(crate::project::overrides_of(settings)?);
    Ok((aws, names))
}

/// With `--role-arn`, the calls must run as that role: STS must name the
/// session stepgate opened, in the role's account. Anything else (an
/// endpoint that ignores the credentials, a wrong role) is refused before
/// the run touches anything.
fn check_assumed(
    identity: &crate::aws::Identity,
    target: &crate::aws::assume::Target,
) -> Result<()> {
    let role_account = crate::config::role_arn_account(&target.role_arn).unwrap_or_default();
    let role_name = target.role_arn.rsplit('/').next().unwrap_or_default();
    let expected = format!(
        ":sts::{role_account}:assumed-role/{role_name}/{}",
        target.session_name
    );
    if identity.account != role_account || !identity.arn.ends_with(&expected) {
        bail!(
            "assumed role {} but STS says the run acts as {} (account {}); refusing to go on. Check the role ARN and the endpoint",
            target.role_arn,
            identity.arn,
            identity.account
        );
    }
    Ok(())
}

fn report(command: &'static str, names: &Names, aws: &Aws, started: Instant) -> Report {
    Report {
        schema: crate::output::SCHEMA,
        command,
        stack: names.stack.clone(),
        stage: names.stage.clone(),
        region: names.region.clone(),
        account: names.account.clone(),
        identity: aws.caller.clone(),
        changed: false,
        resources: Vec::new(),
        aws_calls: Calls::from_counts(aws.calls.snapshot()),
        outputs: None,
        execution: None,
        response: None,
        executions: None,
        keys: None,
        log_events: None,
        timing: None,
        lock: None,
        versions: None,
        rollback: None,
        rollouts: Vec::new(),
        duration_seconds: started.elapsed().as_secs_f64(),
    }
}

/// Releases the lock whatever the run's outcome. A failed release never
/// hides the run's own error; it is reported with the way out.
async fn release(lock: Lock, result: Result<Status>, printer: &Printer) -> Result<Status> {
    match (lock.release().await, result) {
        (Ok(()), result) => result,
        (Err(e), Ok(_)) => Err(e.context(
            "the run finished but could not release its lock; run `stepgate unlock` for this stage",
        )),
        (Err(e), Err(run)) => {
            printer.progress(&format!(
                "warning: could not release the lock ({}); run `stepgate unlock` for this stage",
                one_line(&e)
            ));
            Err(run)
        }
    }
}

fn not_deployed(names: &Names) -> String {
    format!(
        "stack {} stage {} is not deployed in account {} {}; run `stepgate deploy --stage {}` first",
        names.stack, names.stage, names.account, names.region, names.stage
    )
}

/// The id of this stack's deployed API, or an error saying how to deploy it.
async fn deployed_api(aws: &Aws, project: &Project, names: &Names) -> Result<String> {
    let name = names.api(&project.api.name);
    let id = names.overrides.api_id.as_deref();
    match apigateway::read_api(aws, &name, id, &names.owner_tags()).await? {
        Some(api) if !apigateway::duplicates(&api).is_empty() => bail!(
            "stack {} stage {} has {} REST APIs named {name} (ids {}, {}); run `stepgate deploy --stage {}` to keep {} (it serves the stage, or is the oldest) and delete the others",
            names.stack,
            names.stage,
            apigateway::duplicates(&api).len() + 1,
            api.physical_id,
            apigateway::duplicates(&api).join(", "),
            names.stage,
            api.physical_id
        ),
        Some(api) if api.owned_by(&names.stack, &names.stage) => Ok(api.physical_id),
        _ => bail!("{}", not_deployed(names)),
    }
}

/// One note per role `[leftovers]` names that still exists: left from the
/// stack built by hand, unused by the project, never deleted by stepgate.
async fn note_leftovers(aws: &Aws, settings: &Settings, printer: &Printer) -> Result<()> {
    for role in crate::project::leftover_roles(settings)? {
        if crate::kinds::iam::exists(aws, &role).await? {
            printer.progress(&format!(
                "Note: role {role} is left from before adoption ([leftovers]): the project does not use it, and stepgate never deletes it; delete it by hand once nothing does"
            ));
        }
    }
    Ok(())
}

/// One note per route anyone on the internet may call (auth = "none" and
/// no API key), so that no route is open unnoticed. `--quiet` silences it.
fn note_open_routes(project: &Project, printer: &Printer) {
    for route in project
        .routes
        .iter()
        .filter(|r| r.auth == crate::project::Auth::Open && !r.api_key)
    {
        printer.progress(&format!(
            "Note: {} is open to anyone who knows its URL (auth = \"none\", no api_key)",
            route.key()
        ));
    }
}

/// The stack's REST API, as the engine knows it.
fn api_resource(project: &Project, names: &Names) -> ResourceId {
    ResourceId::new(apigateway::API_KIND, &names.api(&project.api.name))
}

fn inputs<'a>(
    settings: &'a Settings,
    checked: &'a Checked,
    names: &'a Names,
    aws: &Aws,
) -> Inputs<'a> {
    Inputs {
        settings,
        project: &checked.project,
        packages: &checked.packages,
        names,
        release: version_description(settings, aws),
    }
}

/// What a version published by this run says of itself: the project's git
/// commit (`+dirty` with uncommitted changes) and who deployed it, where
/// known; at most 256 characters, as Lambda and Step Functions allow.
fn version_description(settings: &Settings, aws: &Aws) -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&settings.project_dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let mut parts = vec!["stepgate".to_string()];
    if let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) {
        let dirty = git(&["status", "--porcelain", "--untracked-files=no", "."])
            .is_some_and(|s| !s.is_empty());
        parts.push(format!(
            "commit {commit}{}",
            if dirty { "+dirty" } else { "" }
        ));
    }
    if !aws.caller.is_empty() {
        parts.push(format!("by {}", aws.caller));
    }
    parts.join(" ").chars().take(256).collect()
}

/// The one `what` a flag names, or the only one there is.
fn pick<'a>(
    flag: &str,
    given: Option<&str>,
    all: impl Iterator<Item = &'a String>,
    what: &str,
) -> Result<String> {
    let all: Vec<&String> = all.collect();
    let list = all
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    match (given, all.as_slice()) {
        (Some(name), _) if all.iter().any(|n| *n == name) => Ok(name.to_string()),
        (Some(name), _) => bail!(
            "{flag} {name}: the project has no {what} {name}{}; it has {list}",
            crate::project::did_you_mean(name, all.iter().copied()),
        ),
        (None, [only]) => Ok(only.to_string()),
        (None, []) => bail!("the project has no {what}"),
        (None, _) => bail!("the project has several: name one with {flag} ({list})"),
    }
}

/// The log groups `stepgate logs SOURCE` reads: a function's, a machine's,
/// the API's access log (`api`), or all of them.
fn log_groups(
    project: &Project,
    names: &Names,
    source: Option<&str>,
) -> Result<Vec<(String, String)>> {
    let mut all: Vec<(String, String)> = Vec::new();
    for f in project.functions.keys() {
        all.push((f.clone(), names.function_log_group(f)));
    }
    for m in project.machines.keys() {
        all.push((m.clone(), names.state_machine_log_group(m)));
    }
    if !project.routes.is_empty() {
        all.push(("api".into(), names.api_access_log_group()));
    }
    let Some(source) = source else {
        return Ok(all);
    };
    // `states`: the only machine, as before machines were named.
    let source = match source {
        "states" if project.machines.len() == 1 => {
            project.machines.keys().next().cloned().unwrap_or_default()
        }
        other => other.to_string(),
    };
    match all.iter().find(|(s, _)| *s == source) {
        Some(found) => Ok(vec![found.clone()]),
        None => {
            let known: Vec<String> = all.iter().map(|(s, _)| s.clone()).collect();
            bail!(
                "logs {source}: not a function, state machine or `api` of the project{}; use one of {}",
                crate::project::did_you_mean(&source, known.iter()),
                known.join(", ")
            )
        }
    }
}

fn outputs_for(project: &Project, names: &Names, aws: &Aws, api_id: Option<String>) -> Outputs {
    let base = api_id.as_deref().map(|id| {
        apigateway::invoke_url(id, &names.region, &names.stage, aws.endpoint_url.as_deref())
    });
    Outputs {
        routes: project
            .routes
            .iter()
            .map(|r| crate::output::RouteOutput {
                route: r.key(),
                url: base
                    .as_ref()
                    .map(|b| format!("{b}{}", r.path.trim_start_matches('/'))),
                state_machine: r.state_machine.clone(),
            })
            .collect(),
        api_url: base
            .as_ref()
            .zip(project.routes.first())
            .map(|(b, r)| format!("{b}{}", r.path.trim_start_matches('/'))),
        api_id,
        stage: names.stage.clone(),
        region: names.region.clone(),
        account: names.account.clone(),
        state_machine_arn: project
            .machines
            .keys()
            .next()
            .map(|m| names.state_machine_arn(m)),
        state_machine_arns: project
            .machines
            .keys()
            .map(|m| (m.clone(), names.state_machine_arn(m)))
            .collect(),
        function_arns: project
            .functions
            .keys()
            .map(|f| (f.clone(), names.function_arn(f)))
            .collect(),
        role_arns: project
            .roles()
            .keys()
            .map(|r| (r.clone(), names.role_arn(r)))
            .collect(),
        log_groups: log_groups(project, names, None)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, g)| g)
            .collect(),
    }
}
