//! API Gateway: the REST API with a resource per route path and its
//! methods (each an AWS-service integration that starts its state machine)
//! and OPTIONS (CORS), the stage that serves a deployment of it, and the
//! region's account setting. One file per object; the only module that
//! uses the API Gateway client.

mod account;
mod api;
mod api_key;
mod authorizers;
mod extras;
mod methods;
mod stage;
mod usage_plan;

pub use account::{Account, ACCOUNT_KIND};
pub use api::{duplicates, read_api, ApiInventory, RestApi};
pub use api_key::{key_value, keys_named, ApiKey, ApiKeyInventory};
pub use authorizers::authorizer_ids;
pub use stage::{set_live_variable, LiveVariable, Stage};
pub use usage_plan::{usage_plan_id, usage_today, UsagePlan, UsagePlanInventory, UsagePlanSpec};

use anyhow::Result;
use aws_sdk_apigateway::types::{Op, PatchOperation};

use crate::aws::{code, error, Aws};
use crate::model::{Kind, Tags};

pub const API_KIND: Kind = Kind("rest-api");
pub const STAGE_KIND: Kind = Kind("stage");
pub const USAGE_PLAN_KIND: Kind = Kind("usage-plan");
pub const API_KEY_KIND: Kind = Kind("api-key");

pub(super) async fn resources(
    aws: &Aws,
    what: &str,
    api_id: &str,
) -> Result<Vec<aws_sdk_apigateway::types::Resource>> {
    aws.apigateway
        .get_resources()
        .rest_api_id(api_id)
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| error(what, "GetResources", e))
}

pub(super) fn patch(op: Op, path: &str, value: Option<String>) -> PatchOperation {
    PatchOperation::builder()
        .op(op)
        .path(path)
        .set_value(value)
        .build()
}

/// Where clients POST orders. With an endpoint override (an emulator) the
/// URL takes LocalStack's path form, since there is no per-API hostname.
/// The stage's base URL, ending in `/`: a route's URL is it plus the
/// route's path without its leading `/`.
pub fn invoke_url(api_id: &str, region: &str, stage: &str, endpoint_url: Option<&str>) -> String {
    match endpoint_url {
        Some(endpoint) => format!(
            "{}/restapis/{api_id}/{stage}/_user_request_/",
            crate::shown::strip_userinfo(endpoint).trim_end_matches('/')
        ),
        None => {
            let domain = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("https://{api_id}.execute-api.{region}.{domain}/{stage}/")
        }
    }
}

/// The put's outcome, with a ConflictException ("already exists") taken
/// as success.
pub(super) fn tolerate_conflict<T, E>(
    result: Result<T, aws_sdk_apigateway::error::SdkError<E>>,
    what: &str,
    operation: &str,
) -> Result<()>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    match result {
        Err(e) if code(&e) != Some("ConflictException") => Err(error(what, operation, e)),
        _ => Ok(()),
    }
}

/// A REST API's or stage's tags as API Gateway's tagging API holds them.
pub(crate) async fn tags_of(aws: &Aws, what: &str, arn: &str) -> Result<Tags> {
    let out = aws
        .apigateway
        .get_tags()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| crate::aws::error(what, "GetTags", e))?;
    Ok(crate::aws::sorted(out.tags()))
}

/// The ARN API Gateway's tagging API knows a REST API by.
pub(crate) fn api_arn(aws: &Aws, id: &str) -> String {
    format!(
        "arn:{}:apigateway:{}::/restapis/{id}",
        partition_of(&aws.region),
        aws.region
    )
}

fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_urls_for_aws_and_an_emulator() {
        assert_eq!(
            invoke_url("abc", "us-east-1", "dev", None),
            "https://abc.execute-api.us-east-1.amazonaws.com/dev/"
        );
        assert_eq!(
            invoke_url("abc", "us-east-1", "dev", Some("http://127.0.0.1:4566/")),
            "http://127.0.0.1:4566/restapis/abc/dev/_user_request_/"
        );
    }
}
