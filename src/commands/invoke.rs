//! `stepgate invoke`: call a route as a client would and wait for the result.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{connect, deployed_api, report, Status};
use crate::aws::{apigateway, sfn};
use crate::config::Settings;
use crate::output::Printer;
use crate::project::Project;

pub(super) async fn invoke(
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
    let execution_id = crate::invoke::execution_id(status, &answer)
        .with_context(|| format!("{} {path}", declared.method))?;
    let execution_arn = names.execution_arn(&declared.state_machine, &execution_id);
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
