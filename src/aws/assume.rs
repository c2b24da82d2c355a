//! The deployer role: with `--role-arn` (or `role_arn` in stepgate.toml),
//! stepgate assumes that role through STS before any other call, as CDK's
//! `--role-arn` and Terraform's `assume_role` do, and every client then
//! signs with the role's credentials. This is how one pipeline deploys into
//! several accounts.
//!
//! aws-config has an `AssumeRoleProvider`, but it builds its own STS client,
//! which the call recorder, the `-v` call log and the Ctrl-C guard cannot
//! see. This provider sends AssumeRole through stepgate's own STS client, so
//! the call is counted, logged and retried like every other; the SDK's
//! identity cache (which wraps every provider) refreshes the credentials
//! before they expire, for long runs such as `logs --follow`.

use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::{anyhow, Result};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_credential_types::Credentials;

/// What to assume, and how the session is named.
#[derive(Debug, Clone)]
pub struct Target {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
}

/// The session name CloudTrail shows for every call of the run:
/// `stepgate-{stack}-{stage}`, cut to STS's 64 characters. Stack and stage
/// use only characters STS allows in it.
pub fn session_name(stack: &str, stage: &str) -> String {
    let mut name = format!("stepgate-{stack}-{stage}");
    name.truncate(64);
    name
}

#[derive(Debug)]
pub struct AssumedRole {
    sts: aws_sdk_sts::Client,
    target: Target,
    /// The credentials `assume` got first, handed out once so that the
    /// first request does not assume the role a second time.
    first: Mutex<Option<Credentials>>,
}

impl AssumedRole {
    /// Assumes the role now, so that a refusal is the run's first error,
    /// named in one line, not a failure of whatever call comes first.
    pub async fn assume(
        sts: aws_sdk_sts::Client,
        target: Target,
        region: &str,
        endpoint_url: Option<&str>,
    ) -> Result<AssumedRole> {
        let first = request(&sts, &target)
            .await
            .map_err(|e| refused(e, &target, region, endpoint_url))?;
        Ok(AssumedRole {
            sts,
            target,
            first: Mutex::new(Some(first)),
        })
    }
}

async fn request(
    sts: &aws_sdk_sts::Client,
    target: &Target,
) -> Result<
    Credentials,
    aws_sdk_sts::error::SdkError<aws_sdk_sts::operation::assume_role::AssumeRoleError>,
> {
    let out = sts
        .assume_role()
        .role_arn(&target.role_arn)
        .role_session_name(&target.session_name)
        .set_external_id(target.external_id.clone())
        .send()
        .await?;
    let Some(c) = out.credentials else {
        // STS always returns credentials with a 200; an emulator might not.
        return Err(aws_sdk_sts::error::SdkError::construction_failure(
            "STS AssumeRole answered without credentials",
        ));
    };
    Ok(Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        SystemTime::try_from(c.expiration).ok(),
        "stepgate --role-arn",
    ))
}

/// One line for a failed AssumeRole: the base credentials or the endpoint
/// (as for any first call), else STS's refusal with what to check.
fn refused(
    error: aws_sdk_sts::error::SdkError<aws_sdk_sts::operation::assume_role::AssumeRoleError>,
    target: &Target,
    region: &str,
    endpoint_url: Option<&str>,
) -> anyhow::Error {
    if error.as_service_error().is_none() {
        return crate::aws::reach::first_call_error(error, region, endpoint_url, "AssumeRole");
    }
    let external_id = if target.external_id.is_some() {
        " and the external ID"
    } else {
        ""
    };
    anyhow!(
        "cannot assume role {}: {}; the role's trust policy must allow these credentials (and sts:AssumeRole must be allowed to them){external_id}",
        target.role_arn,
        super::describe(&error)
    )
}

impl ProvideCredentials for AssumedRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            if let Some(first) = self.first.lock().expect("poisoned").take() {
                return Ok(first);
            }
            request(&self.sts, &self.target).await.map_err(|e| {
                CredentialsError::provider_error(anyhow!(
                    "cannot assume role {} again: {}",
                    self.target.role_arn,
                    super::describe(&e)
                ))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_names_stack_and_stage_within_sts_limit() {
        assert_eq!(session_name("orders", "prod"), "stepgate-orders-prod");
        let long = session_name(&"s".repeat(24), &"t".repeat(32));
        assert_eq!(long.len(), 64);
        assert!(long.starts_with("stepgate-ssss"));
    }
}
