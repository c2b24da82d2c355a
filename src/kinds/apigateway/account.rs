//! The region's API Gateway account setting `cloudwatchRoleArn`, shared by
//! every API in the region.

use anyhow::Result;
use async_trait::async_trait;
use serde_json::{json, Value};

use aws_sdk_apigateway::types::Op;

use super::patch;
use crate::aws::{code, error, Aws};
use crate::desired::api::{cloudwatch_role_claim, AccountSpec};
use crate::model::{Claim, Kind, Observed, ResourceId, Tags};
use crate::plan::ResourcePlan;
use crate::resource::{spec, Attributes, Ctx, Known, Resource};

/// API Gateway's answer to UpdateAccount naming a role it cannot use yet:
/// for seconds after the role is created or given its policy (IAM
/// propagation) it says one of these (tests/faults/README.md has sources).
pub(super) fn cloudwatch_role_not_ready<E>(e: &aws_sdk_apigateway::error::SdkError<E>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = crate::aws::describe(e);
    code(e) == Some("BadRequestException")
        && (message.contains("The role ARN does not have required permissions")
            || message.contains(
                "API Gateway could not successfully write to CloudWatch Logs using the ARN specified",
            ))
}

/// The region's CloudWatch role setting, as `apigateway-account` reports it.
pub(super) async fn read_account(aws: &Aws, region: &str) -> Result<Observed> {
    let out = aws
        .apigateway
        .get_account()
        .send()
        .await
        .map_err(|e| error(&format!("apigateway-account {region}"), "GetAccount", e))?;
    let arn = out.cloudwatch_role_arn().filter(|a| !a.is_empty());
    Ok(Observed {
        fields: json!({ "cloudwatch_role_arn": arn }),
        tags: Tags::new(),
        physical_id: arn.unwrap_or_default().to_string(),
    })
}

pub const ACCOUNT_KIND: Kind = Kind("apigateway-account");

/// The region's API Gateway account setting `cloudwatchRoleArn`: the role
/// through which API Gateway writes every API's logs in the region. Shared
/// by every API there, so stepgate sets it only when it is empty or already
/// names stepgate's shared role, uses anyone else's as it is (and says so),
/// and never clears it.
pub struct Account {
    pub region: String,
    pub spec: Option<AccountSpec>,
    /// stepgate's shared role, which the setting names when it is ours.
    pub cloudwatch_role_arn: String,
    pub needs: Vec<ResourceId>,
}

#[async_trait]
impl Resource for Account {
    fn id(&self) -> ResourceId {
        ResourceId::new(ACCOUNT_KIND, &self.region)
    }

    fn needs(&self) -> Vec<ResourceId> {
        self.needs.clone()
    }

    /// A setting carries no tags.
    fn tags(&self, _: &Tags) -> Tags {
        Tags::new()
    }

    fn claim(&self, live: &Observed, _: &Tags) -> Claim {
        cloudwatch_role_claim(
            live.fields["cloudwatch_role_arn"].as_str(),
            &self.cloudwatch_role_arn,
        )
    }

    fn kept_on_destroy(&self) -> Option<&'static str> {
        Some("every API in the region uses this setting; stepgate never clears it")
    }

    fn desired(&self) -> Option<Value> {
        self.spec.as_ref().map(AccountSpec::fields)
    }

    async fn read(&self, ctx: &Ctx<'_>, _: Option<&Observed>) -> Result<Option<Observed>> {
        read_account(ctx.aws, &self.region).await.map(Some)
    }

    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        _: &ResourcePlan,
        _: Option<&Observed>,
        _: &Known,
    ) -> Result<Attributes> {
        let spec = spec(&self.spec, &self.id())?;
        let what = format!("apigateway-account {}", self.region);
        // Someone may have set a role since it was read: theirs stays.
        let now = read_account(ctx.aws, &self.region).await?;
        if let Claim::UsedAsIs(_) = self.claim(&now, &Tags::new()) {
            return Ok(Attributes::observed(&now.physical_id));
        }
        if now.physical_id == spec.cloudwatch_role_arn {
            return Ok(Attributes::observed(&now.physical_id));
        }
        // A role created seconds ago is refused until IAM has propagated.
        // Two deploys setting it at once may get 429, which the SDK retries.
        crate::aws::retry::until_consistent(cloudwatch_role_not_ready, || {
            ctx.aws
                .apigateway
                .update_account()
                .patch_operations(patch(
                    Op::Replace,
                    "/cloudwatchRoleArn",
                    Some(spec.cloudwatch_role_arn.clone()),
                ))
                .send()
        })
        .await
        .map_err(|e| error(&what, "UpdateAccount", e))?;
        Ok(Attributes::observed(&spec.cloudwatch_role_arn))
    }

    /// Never cleared: other APIs in the region log through it.
    async fn delete(&self, _: &Ctx<'_>, _: &Observed) -> Result<()> {
        Ok(())
    }
}
