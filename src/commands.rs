//! One function per command: resolve settings, validate local input, then
//! talk to AWS, and return an exit status.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::aws::{apigateway, sfn, Aws};
use crate::checks::Checked;
use crate::cli::Command;
use crate::config::Settings;
use crate::desired::Inputs;
use crate::engine;
use crate::lock::{self, Lock};
use crate::model::ResourceId;
use crate::names::Names;
use crate::output::{one_line, Calls, Outputs, Printer, Report, ResourceReport};
use crate::project::Project;
use crate::stack::Stack;

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
    printer.detail(&crate::credentials::check(&settings).await?);
    match command {
        Command::Deploy {
            outputs_file, lock, ..
        } => deploy(&settings, outputs_file, lock.lock_timeout, printer).await,
        Command::Plan {
            detailed_exitcode, ..
        } => plan(&settings, detailed_exitcode, printer).await,
        Command::Destroy { yes, lock, .. } => {
            destroy(&settings, yes, lock.lock_timeout, printer).await
        }
        Command::Unlock { .. } => unlock(&settings, printer).await,
        Command::Outputs { .. } => outputs(&settings, printer).await,
        Command::Invoke {
            route,
            order,
            payment_status,
            ..
        } => {
            invoke(
                &settings,
                route.as_deref(),
                &order,
                payment_status.as_deref(),
                printer,
            )
            .await
        }
        Command::Executions {
            state_machine,
            limit,
            status,
            ..
        } => {
            executions(
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
        } => logs(&settings, source, since, follow, printer).await,
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
    let names = Names::new(&settings.stack, &settings.stage, &aws.region, &account);
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
        log_events: None,
        timing: None,
        lock: None,
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

async fn deploy(
    settings: &Settings,
    outputs_file: Option<PathBuf>,
    lock_timeout: Option<Duration>,
    printer: &Printer,
) -> Result<Status> {
    let started = Instant::now();
    let checked = crate::checks::local(settings, outputs_file.as_deref(), printer)?;
    let (aws, names) = connect(settings).await?;
    let lock = lock::acquire(&aws, &names, "deploy", lock_timeout, printer).await?;
    let result = deploy_locked(
        settings,
        &checked,
        &aws,
        &names,
        outputs_file,
        started,
        printer,
    )
    .await;
    release(lock, result, printer).await
}

async fn deploy_locked(
    settings: &Settings,
    checked: &Checked,
    aws: &Aws,
    names: &Names,
    outputs_file: Option<PathBuf>,
    started: Instant,
    printer: &Printer,
) -> Result<Status> {
    printer.progress(&format!(
        "Deploying stack {} stage {} to account {} in {}",
        names.stack, names.stage, names.account, names.region
    ));
    let mut stack = Stack::desired(&inputs(settings, checked, names))?;
    stack.find_extra(aws).await?;
    let live = engine::observe(aws, &stack).await?;
    let plan = engine::plan(&stack, &live);
    for note in plan.notes() {
        printer.progress(&format!("Note: {note}"));
    }
    let setup = started.elapsed();
    let applied = if plan.has_changes() {
        engine::apply(aws, &stack, &live, &plan, printer).await?
    } else {
        printer.progress("No changes: the stack is up to date.");
        engine::Applied::nothing_yet(&live)
    };
    let api_id = applied
        .known
        .get(&api_resource(&checked.project, names))
        .cloned();
    let mut report = report("deploy", names, aws, started);
    report.timing = Some(engine::RunTiming {
        setup_seconds: setup.as_secs_f64(),
        apply_seconds: (started.elapsed() - setup).as_secs_f64(),
        critical_path: applied.critical_path(&stack),
    });
    report.changed = plan
        .resources
        .iter()
        .any(|p| applied.succeeded(&p.resource));
    // Every resource says what was planned and, if it did not happen, why:
    // a pipeline reading the JSON sees exactly where a failed run stopped.
    let interrupted = crate::interrupt::received();
    let why_not = match interrupted {
        Some(signal) => format!("not started: interrupted by {signal}"),
        None => "not attempted: the run stopped after another resource failed".to_string(),
    };
    report.resources = plan
        .resources
        .iter()
        .map(|p| {
            let mut r = ResourceReport::from(p);
            r.error = match applied.errors.get(&p.resource) {
                Some(e) => Some(e.clone()),
                None if p.action != crate::plan::Action::NoChange
                    && !applied.succeeded(&p.resource) =>
                {
                    Some(why_not.clone())
                }
                None => None,
            };
            r
        })
        .collect();
    // A signal between two resources fails nothing in flight, yet leaves
    // changes undone: that is a stopped deploy too.
    let undone = report.resources.iter().any(|r| r.error.is_some());
    if undone {
        printer.stopped(&report);
        if let Some(signal) = interrupted {
            bail!("interrupted by {signal}; what was applied stays applied: run deploy again to finish, or destroy to remove it");
        }
        let errors: Vec<&String> = applied.errors.values().collect();
        bail!(
            "{}; what succeeded stays applied, run deploy again once fixed",
            errors
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let outputs = outputs_for(&checked.project, names, aws, api_id);
    // Checked before deploying; should writing still fail, the result is
    // printed first, so nobody is left guessing whether the stack deployed.
    let written = match &outputs_file {
        Some(path) => std::fs::write(path, serde_json::to_string_pretty(&outputs)? + "\n")
            .with_context(|| format!("the stack is deployed, but --outputs-file {} cannot be written; its outputs are on stdout", path.display())),
        None => Ok(()),
    };
    report.outputs = Some(outputs.clone());
    printer.summary(&report);
    printer.result(&outputs.text(), &report);
    written?;
    Ok(Status::Ok)
}

async fn plan(settings: &Settings, detailed_exitcode: bool, printer: &Printer) -> Result<Status> {
    let started = Instant::now();
    let checked = crate::checks::local(settings, None, printer)?;
    let (aws, names) = connect(settings).await?;
    let mut stack = Stack::desired(&inputs(settings, &checked, &names))?;
    stack.find_extra(&aws).await?;
    // plan takes no lock, but says when a deploy or destroy holds one.
    let (live, held) = tokio::join!(engine::observe(&aws, &stack), lock::holder(&aws, &names));
    let (live, held) = (live?, held?);
    if let Some(holder) = &held {
        printer.progress(&format!(
            "Note: stack {} stage {} is locked by {}; what it is changing may not show yet",
            names.stack,
            names.stage,
            holder.describe()
        ));
    }
    let plan = engine::plan(&stack, &live);
    let mut report = report("plan", &names, &aws, started);
    report.lock = held;
    report.changed = plan.has_changes();
    report.resources = plan.resources.iter().map(ResourceReport::from).collect();
    debug_assert_eq!(
        report.aws_calls.mutating, 0,
        "plan must never change anything"
    );
    printer.plan(&plan.resources, &report);
    // A conflict is not a change deploy could make: deploy would fail on it.
    if let Some(first) = plan.conflicts().first() {
        bail!(
            "{first} exists but is not owned by stack {} stage {}; deploy would refuse it",
            names.stack,
            names.stage
        );
    }
    Ok(if detailed_exitcode && plan.has_changes() {
        Status::Changes
    } else {
        Status::Ok
    })
}

async fn destroy(
    settings: &Settings,
    yes: bool,
    lock_timeout: Option<Duration>,
    printer: &Printer,
) -> Result<Status> {
    let started = Instant::now();
    if !yes && !crate::output::stdin_is_terminal() {
        bail!("destroy needs confirmation and there is no terminal to ask on; pass --yes to confirm non-interactively");
    }
    let (aws, names) = connect(settings).await?;
    // Releasing the lock deletes its parameter: the last thing destroy removes.
    let lock = lock::acquire(&aws, &names, "destroy", lock_timeout, printer).await?;
    let result = destroy_locked(&aws, &names, yes, started, printer).await;
    release(lock, result, printer).await
}

async fn destroy_locked(
    aws: &Aws,
    names: &Names,
    yes: bool,
    started: Instant,
    printer: &Printer,
) -> Result<Status> {
    let mut stack = Stack::existing(names.clone());
    stack.find_all(aws).await?;
    let live = engine::observe(aws, &stack).await?;
    if !yes {
        let owned = live
            .values()
            .flatten()
            .filter(|o| o.owned_by(&names.stack, &names.stage))
            .count();
        let answer = printer.ask(&format!(
            "Destroy stack {} stage {} in account {} {} ({owned} resources)? Type the stage name to confirm: ",
            names.stack, names.stage, names.account, names.region
        ))?;
        if answer.trim() != names.stage {
            bail!("not confirmed; nothing was deleted");
        }
    }
    let removals = engine::destroy(aws, &stack, &live, printer).await;
    let mut report = report("destroy", names, aws, started);
    report.changed = removals.iter().any(|r| r.action == "delete");
    report.resources = removals
        .iter()
        .map(|r| ResourceReport {
            kind: r.resource.kind,
            name: r.resource.name.clone(),
            action: r.action.to_string(),
            changes: Vec::new(),
            note: r.note.map(str::to_string),
            error: r.error.clone(),
        })
        .collect();
    let failed: Vec<String> = removals
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.resource)))
        .collect();
    let count = |a: &str| removals.iter().filter(|r| r.action == a).count();
    let text = format!(
        "Destroyed: {} deleted, {} already absent, {} left alone (not owned), {} kept (shared), {} failed.",
        count("delete"),
        count("absent"),
        count("left-alone"),
        count("kept"),
        failed.len()
    );
    printer.summary(&report);
    printer.result(&text, &report);
    if let Some(signal) = crate::interrupt::received() {
        bail!("interrupted by {signal}; run destroy again to remove what is left");
    }
    if !failed.is_empty() {
        bail!(
            "destroy could not delete {} resource(s): {}; run destroy again once fixed",
            failed.len(),
            failed.join("; ")
        );
    }
    Ok(Status::Ok)
}

/// Removes the stage's lock, whoever holds it.
async fn unlock(settings: &Settings, printer: &Printer) -> Result<Status> {
    let started = Instant::now();
    let (aws, names) = connect(settings).await?;
    let held = lock::force_unlock(&aws, &names).await?;
    let text = match &held {
        Some(holder) => format!(
            "Removed the lock of stack {} stage {}, held by {}.",
            names.stack,
            names.stage,
            holder.describe()
        ),
        None => format!(
            "Stack {} stage {} was not locked.",
            names.stack, names.stage
        ),
    };
    let mut report = report("unlock", &names, &aws, started);
    report.changed = held.is_some();
    report.lock = held;
    printer.result(&text, &report);
    Ok(Status::Ok)
}

async fn outputs(settings: &Settings, printer: &Printer) -> Result<Status> {
    let started = Instant::now();
    let project = Project::load(settings)?;
    let (aws, names) = connect(settings).await?;
    let api_id = match project.routes.is_empty() {
        true => None,
        false => Some(deployed_api(&aws, &project, &names).await?),
    };
    let outputs = outputs_for(&project, &names, &aws, api_id);
    let mut report = report("outputs", &names, &aws, started);
    report.outputs = Some(outputs.clone());
    printer.result(&outputs.text(), &report);
    Ok(Status::Ok)
}

async fn invoke(
    settings: &Settings,
    route: Option<&str>,
    order: &str,
    payment_status: Option<&str>,
    printer: &Printer,
) -> Result<Status> {
    let started = Instant::now();
    let body = crate::invoke::order_from_args(order, payment_status)?;
    let project = Project::load(settings)?;
    let (declared, path) = crate::invoke::pick_route(&project.routes, route)?;
    let (aws, names) = connect(settings).await?;
    let api_id = deployed_api(&aws, &project, &names).await?;
    let url = apigateway::invoke_url(
        &api_id,
        &names.region,
        &names.stage,
        aws.endpoint_url.as_deref(),
    ) + path.trim_start_matches('/');
    printer.progress(&format!("{} {url}\n{body}", declared.method));
    let method = declared.method.clone();
    let (status, answer) =
        tokio::task::spawn_blocking(move || crate::invoke::call(&method, &url, &body)).await??;
    if declared.sync {
        // The answer is the execution's output, or its error with a status.
        let text = serde_json::to_string_pretty(&answer)?;
        let mut report = report("invoke", &names, &aws, started);
        report.response = Some(crate::output::HttpAnswer {
            status,
            body: answer,
        });
        printer.result(&format!("HTTP {status}\n{text}"), &report);
        return Ok(if status < 400 {
            Status::Ok
        } else {
            Status::Failed
        });
    }
    let execution_arn = crate::invoke::execution_arn(status, &answer)
        .with_context(|| format!("{} {path}", declared.method))?;
    let result = sfn::wait_execution(&aws, &execution_arn, Duration::from_secs(120)).await?;
    let text = format!(
        "{} {}\n{}",
        result.status,
        result.execution_arn,
        match (&result.output, &result.error) {
            (Some(output), _) => serde_json::to_string_pretty(output)?,
            (None, Some(error)) => format!("{error}: {}", result.cause.clone().unwrap_or_default()),
            _ => String::new(),
        }
    );
    let succeeded = result.status == "SUCCEEDED";
    let mut report = report("invoke", &names, &aws, started);
    report.execution = Some(result);
    printer.result(&text, &report);
    Ok(if succeeded {
        Status::Ok
    } else {
        Status::Failed
    })
}

/// The stack's most recent executions, newest first.
async fn executions(
    settings: &Settings,
    state_machine: Option<&str>,
    limit: usize,
    status: Option<&str>,
    printer: &Printer,
) -> Result<Status> {
    let started = Instant::now();
    let project = Project::load(settings)?;
    let machine = pick(
        "--state-machine",
        state_machine,
        project.machines.keys(),
        "state machine",
    )?;
    let (aws, names) = connect(settings).await?;
    let status = status.map(str::to_ascii_uppercase);
    let Some(list) = sfn::recent_executions(
        &aws,
        &names.state_machine_arn(&machine),
        limit,
        status.as_deref(),
    )
    .await?
    else {
        bail!("{}", not_deployed(&names));
    };
    let text = executions_text(&list);
    let mut report = report("executions", &names, &aws, started);
    report.executions = Some(list);
    printer.result(&text, &report);
    Ok(Status::Ok)
}

fn executions_text(list: &[sfn::ExecutionSummary]) -> String {
    if list.is_empty() {
        return "No executions.".to_string();
    }
    let mut out = format!(
        "{:<10} {:<24} {:>9}  {:<12} {:<22} {}\n",
        "STATUS", "START", "DURATION", "ORDER", "RESULT", "NAME"
    );
    for e in list {
        let result = e
            .result
            .clone()
            .or_else(|| e.error.clone())
            .unwrap_or_else(|| "-".to_string());
        out.push_str(&format!(
            "{:<10} {:<24} {:>8.2}s  {:<12} {:<22} {}\n",
            e.status,
            e.start,
            e.duration_seconds,
            e.order_id.as_deref().unwrap_or("-"),
            result,
            e.name
        ));
    }
    out.trim_end().to_string()
}

/// How often `logs --follow` asks for new events.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// The stack's log events since `since` ago, oldest first; with `follow`,
/// then every second the new ones, until Ctrl-C or SIGTERM.
async fn logs(
    settings: &Settings,
    source: Option<String>,
    since: Duration,
    follow: bool,
    printer: &Printer,
) -> Result<Status> {
    let started = Instant::now();
    let project = Project::load(settings)?;
    if follow && printer.format == crate::output::Format::Json {
        bail!("--follow prints events as they come, one line each; --output json prints one document at the end: use one or the other");
    }
    let (aws, names) = connect(settings).await?;
    let groups = log_groups(&project, &names, source.as_deref())?;
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default()
    };
    let mut cursor = now_ms() - since.as_millis() as i64;
    // Ids of the events already printed at or after the cursor: the next
    // poll starts at the cursor, inclusive, so they come again.
    let mut seen: std::collections::BTreeMap<String, i64> = Default::default();
    let shown = loop {
        let fetched = futures::future::join_all(
            groups
                .iter()
                .map(|(source, group)| crate::aws::logs::events(&aws, source, group, cursor)),
        )
        .await;
        let mut batch = Vec::new();
        for ((_, group), events) in groups.iter().zip(fetched) {
            let events = match events {
                Ok(events) => events,
                // Ctrl-C during --follow: the refused call is how it ends.
                Err(_) if follow && crate::interrupt::received().is_some() => {
                    return Ok(Status::Ok)
                }
                Err(e) => return Err(e),
            };
            match events {
                Some(events) => batch.extend(events),
                None => bail!("log group {group} does not exist: {}", not_deployed(&names)),
            }
        }
        batch.retain(|e| !seen.contains_key(&e.event_id));
        batch.sort_by_key(|e| e.timestamp_ms);
        if let Some(last) = batch.last() {
            cursor = cursor.max(last.timestamp_ms);
        }
        for e in &batch {
            seen.insert(e.event_id.clone(), e.timestamp_ms);
        }
        seen.retain(|_, ts| *ts >= cursor);
        if !follow {
            break batch;
        }
        let text = logs_text(&batch, source.is_none());
        if !text.is_empty() {
            printer.result(&text, &());
        }
        // Sleep in short steps so that Ctrl-C ends the wait at once.
        let wake = Instant::now() + FOLLOW_EVERY;
        while Instant::now() < wake && crate::interrupt::received().is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if crate::interrupt::received().is_some() {
            return Ok(Status::Ok);
        }
    };
    let text = if shown.is_empty() {
        format!(
            "No log events in the last {}.",
            humantime::format_duration(since)
        )
    } else {
        logs_text(&shown, source.is_none())
    };
    let mut report = report("logs", &names, &aws, started);
    report.log_events = Some(shown);
    printer.result(&text, &report);
    Ok(Status::Ok)
}

/// One line per event (a message's own line breaks kept): the time, the
/// source when several are shown, the message.
fn logs_text(events: &[crate::aws::logs::LogEvent], with_source: bool) -> String {
    events
        .iter()
        .map(|e| {
            if with_source {
                format!("{} {:<13} {}", e.time, e.source, e.message)
            } else {
                format!("{} {}", e.time, e.message)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
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
    match apigateway::read_api(aws, &name, &names.owner_tags()).await? {
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

/// The stack's REST API, as the engine knows it.
fn api_resource(project: &Project, names: &Names) -> ResourceId {
    ResourceId::new(apigateway::API_KIND, &names.api(&project.api.name))
}

fn inputs<'a>(settings: &'a Settings, checked: &'a Checked, names: &'a Names) -> Inputs<'a> {
    Inputs {
        settings,
        project: &checked.project,
        packages: &checked.packages,
        names,
    }
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
