//! The API's authorizers (Cognito user pools, Lambda functions): read back
//! by name in the shape desired, created or patched before the methods
//! that name them, and deleted once no method does.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::Value;

use aws_sdk_apigateway::types::{AuthorizerType, Op, PatchOperation};

use super::patch;
use crate::aws::{code, error, Aws};
use crate::desired::api::{ApiSpec, AuthorizerSpec};
use crate::model::Observed;
use crate::plan::{Action, ResourcePlan};

/// An authorizer as AWS reports it.
pub(super) struct LiveAuthorizer {
    pub id: String,
    pub name: String,
    pub spec: AuthorizerSpec,
}

pub(super) async fn read_authorizers(
    aws: &Aws,
    what: &str,
    api_id: &str,
) -> Result<Vec<LiveAuthorizer>> {
    let out = aws
        .apigateway
        .get_authorizers()
        .rest_api_id(api_id)
        .limit(500)
        .send()
        .await
        .map_err(|e| error(what, "GetAuthorizers", e))?;
    Ok(out
        .items()
        .iter()
        .map(|a| {
            let mut provider_arns = a.provider_arns().to_vec();
            provider_arns.sort();
            LiveAuthorizer {
                id: a.id().unwrap_or_default().to_string(),
                name: a.name().unwrap_or_default().to_string(),
                spec: AuthorizerSpec {
                    kind: a.r#type().map(|t| t.as_str()).unwrap_or_default().into(),
                    provider_arns,
                    authorizer_uri: a.authorizer_uri().map(str::to_string),
                    identity_source: a.identity_source().unwrap_or_default().into(),
                    ttl: a.authorizer_result_ttl_in_seconds().unwrap_or(300),
                },
            }
        })
        .collect())
}

/// The API's authorizers, name -> id: what a Lambda authorizer's function
/// scopes API Gateway's permission to.
pub async fn authorizer_ids(aws: &Aws, api_id: &str) -> Result<BTreeMap<String, String>> {
    let what = format!("{} {api_id}", super::API_KIND.as_str());
    Ok(read_authorizers(aws, &what, api_id)
        .await?
        .into_iter()
        .map(|a| (a.name, a.id))
        .collect())
}

/// Name -> settings, as `ApiSpec::fields` has them.
pub(super) fn by_name(live: &[LiveAuthorizer]) -> Value {
    Value::Object(
        live.iter()
            .map(|a| {
                (
                    a.name.clone(),
                    serde_json::to_value(&a.spec).unwrap_or(Value::Null),
                )
            })
            .collect(),
    )
}

/// Creates the authorizers that are missing and patches those that differ;
/// returns name -> id for the methods to name.
pub(super) async fn apply_authorizers(
    aws: &Aws,
    what: &str,
    api_id: &str,
    spec: &ApiSpec,
    plan: &ResourcePlan,
) -> Result<BTreeMap<String, String>> {
    let live = read_authorizers(aws, what, api_id).await?;
    let mut ids: BTreeMap<String, String> = live
        .iter()
        .map(|a| (a.name.clone(), a.id.clone()))
        .collect();
    if !(plan.action == Action::Create || plan.changed("authorizers")) {
        return Ok(ids);
    }
    let gw = &aws.apigateway;
    for (name, desired) in &spec.authorizers {
        match live.iter().find(|a| a.name == *name) {
            Some(found) if found.spec == *desired => {}
            Some(found) => {
                gw.update_authorizer()
                    .rest_api_id(api_id)
                    .authorizer_id(&found.id)
                    .set_patch_operations(Some(patches(&found.spec, desired)))
                    .send()
                    .await
                    .map_err(|e| error(what, &format!("UpdateAuthorizer {name}"), e))?;
            }
            None => {
                let created = gw
                    .create_authorizer()
                    .rest_api_id(api_id)
                    .name(name)
                    .r#type(AuthorizerType::from(desired.kind.as_str()))
                    .set_provider_arns(
                        (!desired.provider_arns.is_empty()).then(|| desired.provider_arns.clone()),
                    )
                    .set_authorizer_uri(desired.authorizer_uri.clone())
                    .identity_source(&desired.identity_source)
                    .authorizer_result_ttl_in_seconds(desired.ttl)
                    .send()
                    .await
                    .map_err(|e| error(what, &format!("CreateAuthorizer {name}"), e))?;
                ids.insert(
                    name.clone(),
                    created.id.context("CreateAuthorizer returned no id")?,
                );
            }
        }
    }
    Ok(ids)
}

/// What turns `live` into `desired`: one replace per setting, and the
/// user pools added or removed one by one (API Gateway's list patch).
fn patches(live: &AuthorizerSpec, desired: &AuthorizerSpec) -> Vec<PatchOperation> {
    let mut out = Vec::new();
    if live.kind != desired.kind {
        out.push(patch(Op::Replace, "/type", Some(desired.kind.clone())));
    }
    if live.authorizer_uri != desired.authorizer_uri {
        out.push(patch(
            Op::Replace,
            "/authorizerUri",
            desired.authorizer_uri.clone(),
        ));
    }
    if live.identity_source != desired.identity_source {
        out.push(patch(
            Op::Replace,
            "/identitySource",
            Some(desired.identity_source.clone()),
        ));
    }
    if live.ttl != desired.ttl {
        out.push(patch(
            Op::Replace,
            "/authorizerResultTtlInSeconds",
            Some(desired.ttl.to_string()),
        ));
    }
    for arn in desired.provider_arns.iter() {
        if !live.provider_arns.contains(arn) {
            out.push(patch(Op::Add, &format!("/providerARNs/{arn}"), None));
        }
    }
    for arn in live.provider_arns.iter() {
        if !desired.provider_arns.contains(arn) {
            out.push(patch(Op::Remove, &format!("/providerARNs/{arn}"), None));
        }
    }
    out
}

/// Deletes the authorizers stepgate does not declare, once the methods
/// that named them have been put back without them.
pub(super) async fn delete_extra_authorizers(
    aws: &Aws,
    what: &str,
    api_id: &str,
    spec: &ApiSpec,
    live: Option<&Observed>,
) -> Result<()> {
    let Some(extra) = live.and_then(|l| l.fields["authorizers"].as_object()) else {
        return Ok(());
    };
    if extra.keys().all(|name| spec.authorizers.contains_key(name)) {
        return Ok(());
    }
    for found in read_authorizers(aws, what, api_id).await? {
        if spec.authorizers.contains_key(&found.name) {
            continue;
        }
        match aws
            .apigateway
            .delete_authorizer()
            .rest_api_id(api_id)
            .authorizer_id(&found.id)
            .send()
            .await
        {
            Err(e) if code(&e) != Some("NotFoundException") => {
                return Err(error(what, &format!("DeleteAuthorizer {}", found.name), e))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_differs_is_patched() {
        let live = AuthorizerSpec {
            kind: "COGNITO_USER_POOLS".into(),
            provider_arns: vec!["a".into(), "b".into()],
            authorizer_uri: None,
            identity_source: "method.request.header.Authorization".into(),
            ttl: 300,
        };
        let mut desired = live.clone();
        assert!(patches(&live, &desired).is_empty());
        desired.provider_arns = vec!["b".into(), "c".into()];
        desired.ttl = 60;
        let ops: Vec<String> = patches(&live, &desired)
            .iter()
            .map(|p| format!("{:?} {}", p.op(), p.path().unwrap_or_default()))
            .collect();
        assert_eq!(
            ops,
            [
                "Some(Replace) /authorizerResultTtlInSeconds",
                "Some(Add) /providerARNs/c",
                "Some(Remove) /providerARNs/a"
            ]
        );
    }
}
