//! `stepgate keys`: the stage's API keys, their ids and today's usage;
//! their values only with `--reveal`, the one place stepgate shows them.

use std::time::Instant;

use anyhow::Result;

use super::{connect, report, Status};
use crate::config::Settings;
use crate::kinds::apigateway;
use crate::output::Printer;
use crate::project::Project;
use crate::report::KeyReport;

pub(super) async fn keys(settings: &Settings, reveal: bool, printer: &Printer) -> Result<Status> {
    let started = Instant::now();
    let project = Project::load(settings)?;
    let (aws, names) = connect(settings).await?;
    let live = apigateway::keys_named(&aws, &names.prefix(), reveal).await?;
    let plan_id = apigateway::usage_plan_id(&aws, &names.api(&project.api.name)).await?;
    let today =
        humantime::format_rfc3339(std::time::SystemTime::now()).to_string()[..10].to_string();
    let mut out = Vec::new();
    for name in &project.api.access.keys {
        let full = names.api_key(name);
        let Some(key) = live.iter().find(|k| k.name() == Some(full.as_str())) else {
            continue;
        };
        let id = key.id().unwrap_or_default().to_string();
        let (usage_today, usage_error) = match &plan_id {
            Some(plan) => match apigateway::usage_today(&aws, plan, &id, &today).await {
                Ok(usage) => (usage, None),
                Err(e) => (None, Some(crate::shown::one_line(&e))),
            },
            None => (None, None),
        };
        out.push(KeyReport {
            name: name.clone(),
            id,
            enabled: key.enabled(),
            usage_today,
            usage_error,
            value: reveal.then(|| key.value().unwrap_or_default().to_string()),
        });
    }
    let mut text = String::new();
    for k in &out {
        let usage = match (k.usage_today, &k.usage_error) {
            (Some((used, left)), _) => format!("{used} today, {left} left"),
            (None, Some(e)) => format!("usage unavailable: {e}"),
            (None, None) => "no quota, no usage reported".into(),
        };
        text.push_str(&format!("{}  {}  {usage}", k.name, k.id));
        if let Some(value) = &k.value {
            text.push_str(&format!("  {value}"));
        }
        text.push('\n');
    }
    if out.is_empty() {
        text.push_str("no API keys deployed ([api] keys in stepgate.toml)\n");
    }
    let mut report = report("keys", &names, &aws, started);
    report.keys = Some(out);
    printer.result(text.trim_end(), &report);
    Ok(Status::Ok)
}
