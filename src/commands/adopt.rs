//! `stepgate adopt`: a project for a stack built by hand, written from
//! what its resources say. Reads only; the next plan and `deploy --adopt`
//! take the resources.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::{connect, Status};
use crate::adopt::read::{follow, Start};
use crate::adopt::write::{check_into, project_files, write, Target};
use crate::config::Settings;
use crate::kinds::apigateway;
use crate::output::Printer;

pub(super) struct Request<'a> {
    pub api: Option<&'a str>,
    /// `--stage` as given (the API's only stage without it).
    pub stage: Option<&'a str>,
    pub state_machine: Option<&'a str>,
    pub into: &'a Path,
    pub force: bool,
}

/// What adopt found and wrote, for `--output json`.
#[derive(Serialize)]
struct Adopted {
    into: String,
    api_id: Option<String>,
    stage: String,
    url: Option<String>,
    functions: Vec<String>,
    state_machines: Vec<String>,
    roles: Vec<String>,
    files: Vec<String>,
    notes: Vec<String>,
}

pub(super) async fn adopt(
    settings: &Settings,
    request: &Request<'_>,
    printer: &Printer,
) -> Result<Status> {
    // A directory it must not write into is refused before any AWS call.
    check_into(request.into, request.force)?;
    let (aws, _) = connect(settings).await?;
    aws.calls.mark_adopt();
    let start = Start {
        api: request.api,
        stage: request.stage,
        state_machine: request.state_machine,
    };
    let found = follow(&aws, &start).await?;
    let stage = found
        .api
        .as_ref()
        .map(|a| a.stage.clone())
        .unwrap_or_else(|| settings.stage.clone());
    let target = Target {
        stack: &settings.stack,
        stage: &stage,
    };
    let (files, mut notes) = project_files(&found, &target)?;
    notes.splice(0..0, found.notes.iter().cloned());
    write(request.into, &files, request.force)?;

    let url = found
        .api
        .as_ref()
        .map(|a| apigateway::invoke_url(&a.id, &aws.region, &a.stage, aws.endpoint_url.as_deref()));
    let adopted = Adopted {
        into: request.into.display().to_string(),
        api_id: found.api.as_ref().map(|a| a.id.clone()),
        stage: stage.clone(),
        url: url.clone(),
        functions: found.functions.iter().map(|f| f.name.clone()).collect(),
        state_machines: found.machines.iter().map(|m| m.name.clone()).collect(),
        roles: found.roles.keys().cloned().collect(),
        files: files.iter().map(|(p, _)| p.display().to_string()).collect(),
        notes: notes.clone(),
    };
    let mut text = String::new();
    if let Some(api) = &found.api {
        text.push_str(&format!(
            "Found REST API {} ({}) stage {stage}: {}\n",
            api.name,
            api.id,
            api.routes
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for m in &found.machines {
        text.push_str(&format!(
            "Found state machine {} (role {})\n",
            m.name, m.role
        ));
    }
    for f in &found.functions {
        text.push_str(&format!(
            "Found function {} ({}, role {})\n",
            f.name, f.runtime, f.role
        ));
    }
    for note in &notes {
        text.push_str(&format!("Note: {note}\n"));
    }
    text.push_str(&format!(
        "Wrote {} files into {}. Next:\n  stepgate plan --project-dir {} --stage {stage}\n  stepgate deploy --project-dir {} --stage {stage} --adopt",
        files.len(),
        request.into.display(),
        request.into.display(),
        request.into.display()
    ));
    printer.result(&text, &adopted);
    Ok(Status::Ok)
}
