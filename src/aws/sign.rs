//! SigV4 for `invoke`'s call to a route with `auth = "iam"`: signed for the
//! `execute-api` service with the run's own credentials, as any IAM caller
//! of the API would sign.

use std::time::SystemTime;

use anyhow::{Context, Result};
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

use super::Aws;

pub const EXECUTE_API: &str = "execute-api";

impl Aws {
    /// The headers that sign `method url` with `body` (Authorization,
    /// X-Amz-Date, and X-Amz-Security-Token with temporary credentials).
    pub async fn sign_execute_api(
        &self,
        method: &str,
        url: &str,
        body: &str,
    ) -> Result<Vec<(String, String)>> {
        let provider = self
            .credentials
            .as_ref()
            .context("no credentials to sign the request with")?;
        let credentials = provider
            .provide_credentials()
            .await
            .context("load the credentials to sign the request")?;
        let identity = credentials.into();
        signed_headers(
            &identity,
            &self.region,
            method,
            url,
            body,
            SystemTime::now(),
        )
    }
}

/// The signature's headers, for `identity` in `region` at `time`.
pub fn signed_headers(
    identity: &aws_smithy_runtime_api::client::identity::Identity,
    region: &str,
    method: &str,
    url: &str,
    body: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>> {
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name(EXECUTE_API)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .context("SigV4 signing parameters")?
        .into();
    // What `invoke::call` sends: the body only with methods that carry one.
    let sent = if method == "GET" || method == "DELETE" {
        ""
    } else {
        body
    };
    let headers = [("content-type", "application/json")];
    let request = SignableRequest::new(
        method,
        url,
        headers.into_iter(),
        SignableBody::Bytes(sent.as_bytes()),
    )
    .context("a signable request")?;
    let (instructions, _) = sign(request, &params)
        .context("sign the request")?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    #[test]
    fn the_signature_is_for_execute_api_in_the_region() {
        let identity = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test").into();
        let headers = signed_headers(
            &identity,
            "eu-west-1",
            "POST",
            "https://abc.execute-api.eu-west-1.amazonaws.com/dev/orderprocess",
            "{}",
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
        )
        .unwrap();
        let auth = &headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .unwrap()
            .1;
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-1/execute-api/aws4_request"
            ),
            "{auth}"
        );
        assert!(headers.iter().any(|(n, _)| n == "x-amz-date"));
    }
}
