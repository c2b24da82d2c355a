//! `stepgate outputs`: the deployed stack's URLs and ARNs.

use std::time::Instant;

use anyhow::Result;

use super::{connect, deployed_api, outputs_for, report, Status};
use crate::config::Settings;
use crate::output::Printer;
use crate::project::Project;

pub(super) async fn outputs(settings: &Settings, printer: &Printer) -> Result<Status> {
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
