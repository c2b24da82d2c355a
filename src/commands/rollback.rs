//! `stepgate rollback`: moves a machine's `live` alias (and nothing else)
//! back to an earlier version, in one call, under the stage's lock; for a
//! machine behind a sync route, a second call points the stage's variable
//! at that version too.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::{connect, deployed_api, not_deployed, pick, release, report, Status};
use crate::config::Settings;
use crate::kinds::{apigateway, machine_alias, machine_version};
use crate::lock;
use crate::names::LIVE_ALIAS;
use crate::output::Printer;
use crate::project::Project;
use crate::report::Rollback;

pub(super) async fn rollback(
    settings: &Settings,
    state_machine: Option<&str>,
    to: Option<u64>,
    lock_timeout: Option<Duration>,
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
    let lock = lock::acquire(&aws, &names, "rollback", lock_timeout, printer).await?;
    let result = async {
        let alias_arn = names.alias_arn(&machine);
        let Some(versions) =
            machine_version::versions(&aws, &names.state_machine_arn(&machine)).await?
        else {
            bail!("{}", not_deployed(&names));
        };
        let Some(routing) = machine_alias::routing(&aws, &alias_arn).await? else {
            bail!("{machine} has no `{LIVE_ALIAS}` alias yet; run `stepgate deploy --stage {}` first", names.stage);
        };
        let from = routing
            .first()
            .map(|(arn, _)| machine_version::version_number(arn))
            .unwrap_or_default();
        let published: Vec<u64> = versions.iter().map(|v| v.number).collect();
        let target = match to {
            Some(n) if published.contains(&n) => n,
            Some(n) => bail!(
                "--to {n}: {machine} has no version {n}; it has {} (see `stepgate history`)",
                list(&published)
            ),
            // The newest version older than the one `live` serves.
            None => match published.iter().copied().filter(|n| *n < from).max() {
                Some(n) => n,
                None => bail!(
                    "`{LIVE_ALIAS}` serves version {from}, the oldest {machine} has; nothing to roll back to (versions: {})",
                    list(&published)
                ),
            },
        };
        if target == from && routing.len() == 1 {
            let mut report = report("rollback", &names, &aws, started);
            report.rollback = Some(Rollback { state_machine: machine.clone(), alias_arn, from, to: target });
            printer.result(&format!("`{LIVE_ALIAS}` already serves {machine} version {target}; nothing changed."), &report);
            return Ok(Status::Ok);
        }
        let version_arn = format!("{}:{target}", names.state_machine_arn(&machine));
        machine_alias::point(&aws, (LIVE_ALIAS, &alias_arn), &version_arn, false).await?;
        // Sync routes start the version the stage's variable names: it
        // follows `live` (one more call, for such a machine only).
        if project.routes.iter().any(|r| r.sync && r.state_machine == machine) {
            let api_id = deployed_api(&aws, &project, &names).await?;
            apigateway::set_live_variable(
                &aws,
                &api_id,
                &names.stage,
                &crate::names::live_variable(&machine),
                target,
            )
            .await?;
        }
        let mut report = report("rollback", &names, &aws, started);
        report.changed = true;
        report.rollback = Some(Rollback {
            state_machine: machine.clone(),
            alias_arn,
            from,
            to: target,
        });
        printer.result(
            &format!("`{LIVE_ALIAS}` of {machine}: version {from} -> {target}. New executions run version {target}; the next deploy moves it to what the project declares."),
            &report,
        );
        Ok(Status::Ok)
    }
    .await;
    release(lock, result, printer).await
}

fn list(versions: &[u64]) -> String {
    let mut sorted = versions.to_vec();
    sorted.sort();
    sorted
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
