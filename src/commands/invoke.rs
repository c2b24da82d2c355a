//! `stepgate invoke`: call a route as a client would and wait for the result.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{connect, deployed_api, report, Status};
use crate::config::Settings;
use crate::kinds::{apigateway, sfn};
use crate::output::Printer;
use crate::project::{Auth, Project};

/// What `stepgate invoke` was asked to send.
pub(super) struct Call<'a> {
    pub route: Option<&'a str>,
    pub order: &'a str,
    pub payment_status: Option<&'a str>,
    pub api_key_name: Option<&'a str>,
    pub token: Option<&'a str>,
}

pub(super) async fn invoke(
    settings: &Settings,
    call: &Call<'_>,
    printer: &Printer,
) -> Result<Status> {
    let started = Instant::now();
    let body = crate::invoke::order_from_args(call.order, call.payment_status)?;
    let project = Project::load(settings)?;
    let (declared, path) = crate::invoke::pick_route(&project.routes, call.route)?;
    if let Some(name) = call.api_key_name {
        if !project.api.access.keys.iter().any(|k| k == name) {
            bail!(
                "--api-key-name {name}: [api] keys has no {name}{}",
                crate::project::did_you_mean(name, project.api.access.keys.iter())
            );
        }
    }
    if let (Auth::Authorizer(name), None) = (&declared.auth, call.token) {
        bail!(
            "{} is protected by the authorizer {name}: pass its token with --token TOKEN",
            declared.key()
        );
    }
    let (aws, names) = connect(settings).await?;
    let api_id = deployed_api(&aws, &project, &names).await?;
    let url = apigateway::invoke_url(
        &api_id,
        &names.region,
        &names.stage,
        aws.endpoint_url.as_deref(),
    ) + path.trim_start_matches('/');
    printer.progress(&format!("{} {url}\n{body}", declared.method));
    // What the route asks of a caller; values never reach the output.
    let mut headers: Vec<(String, String)> = Vec::new();
    if declared.api_key {
        let name = call
            .api_key_name
            .or(project.api.access.keys.first().map(String::as_str))
            .unwrap_or_default();
        let value = apigateway::key_value(&aws, &names.api_key(name)).await?;
        headers.push(("X-API-Key".into(), value));
    }
    if let Some(token) = call.token {
        headers.push(("Authorization".into(), token.to_string()));
    }
    if declared.auth == Auth::Iam {
        headers.extend(
            aws.sign_execute_api(&declared.method, &url, &body.to_string())
                .await?,
        );
    }
    let method = declared.method.clone();
    let (status, answer) =
        tokio::task::spawn_blocking(move || crate::invoke::call(&method, &url, &headers, &body))
            .await??;
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
