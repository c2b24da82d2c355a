//! The first AWS call of a run (STS GetCallerIdentity) is where missing
//! credentials and an unreachable or wrong endpoint show up. The SDK reports
//! those in several lines, or as a bare "dispatch failure"; this turns them
//! into one line naming the problem and the fix.

use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

/// One line for an error of the first call, when it is about credentials or
/// the endpoint (`endpoint`: where the call went); `None` leaves the error
/// to the usual description.
pub fn first_call<E>(
    error: &SdkError<E, HttpResponse>,
    endpoint: &str,
    operation: &str,
) -> Option<anyhow::Error>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let check = "check --endpoint-url or AWS_ENDPOINT_URL";
    let Some(credentials) = sources(error).find_map(|e| e.downcast_ref::<CredentialsError>())
    else {
        return match error {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => Some(anyhow::anyhow!(
                "cannot reach AWS at {endpoint} (STS {operation}): {}; {check}, and that the endpoint is up",
                deepest(error)
            )),
            // An answer that is not AWS's: a web server, a proxy's error page.
            SdkError::ResponseError(e) => Some(not_aws(endpoint, operation, e.raw().status().as_u16(), check)),
            SdkError::ServiceError(e) if e.err().code().is_none() => {
                Some(not_aws(endpoint, operation, e.raw().status().as_u16(), check))
            }
            _ => None,
        };
    };
    Some(match credentials {
        CredentialsError::CredentialsNotLoaded(_) => anyhow::anyhow!(
            "no AWS credentials found (the AWS chain looked in environment variables, the AWS config files, web identity, container and instance metadata); pass --profile or set AWS_PROFILE, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ),
        other => {
            let (from, cause) = match sources(other).find_map(|e| e.downcast_ref::<ProfileFailed>()) {
                Some(failed) => (format!(" from profile \"{}\"", failed.profile), failed.cause.clone()),
                None => (String::new(), deepest(other)),
            };
            anyhow::anyhow!(
                "cannot get AWS credentials{from}: {cause}; fix the profile in the AWS config files (stepgate -v shows where the credentials come from)"
            )
        }
    })
}

fn not_aws(endpoint: &str, operation: &str, status: u16, check: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{endpoint} answered STS {operation} with HTTP {status}, which is not an AWS answer; {check}"
    )
}

/// The error of the first call (STS AssumeRole or GetCallerIdentity), as
/// one line. `endpoint_url`: the override the call went to, if any.
pub fn first_call_error<E>(
    error: SdkError<E, HttpResponse>,
    region: &str,
    endpoint_url: Option<&str>,
    operation: &str,
) -> anyhow::Error
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    // Without an override the SDK calls the regional STS endpoint.
    let endpoint = match endpoint_url {
        Some(url) => url.to_owned(),
        None => format!("https://sts.{region}.amazonaws.com"),
    };
    first_call(&error, &endpoint, operation)
        .unwrap_or_else(|| crate::aws::error("sts", operation, error))
}

/// The error and its sources, outermost first.
fn sources<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source())
}

/// The innermost cause's first line: what went wrong, without the layers
/// that say "an error occurred while loading credentials" again and again.
pub fn deepest(error: &(dyn std::error::Error + 'static)) -> String {
    let last = sources(error)
        .last()
        .map(ToString::to_string)
        .unwrap_or_default();
    let line = last.lines().next().unwrap_or_default().trim_end();
    // A credential_process that printed nothing ends in an empty "Stderr:".
    line.strip_suffix("Stderr:")
        .unwrap_or(line)
        .trim_end()
        .trim_end_matches('.')
        .to_string()
}

/// A named profile could not give credentials (see credentials::provider).
#[derive(Debug, thiserror::Error)]
#[error("profile {profile:?}: {cause}")]
pub struct ProfileFailed {
    pub profile: String,
    pub cause: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::result::ConnectorError;

    #[test]
    fn the_deepest_cause_is_kept_on_one_line() {
        let inner = std::io::Error::other(
            "external process exited with code exit status: 1. Stderr: \nmore",
        );
        let outer = CredentialsError::provider_error(inner);
        assert_eq!(
            deepest(&outer),
            "external process exited with code exit status: 1"
        );
    }

    #[test]
    fn a_connection_failure_names_the_endpoint() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let error: SdkError<
            aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError,
            HttpResponse,
        > = SdkError::dispatch_failure(ConnectorError::io(refused.into()));
        let message = first_call(&error, "http://127.0.0.1:9", "GetCallerIdentity")
            .unwrap()
            .to_string();
        assert_eq!(
            message,
            "cannot reach AWS at http://127.0.0.1:9 (STS GetCallerIdentity): Connection refused; \
             check --endpoint-url or AWS_ENDPOINT_URL, and that the endpoint is up"
        );
        let no_credentials: SdkError<
            aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError,
            HttpResponse,
        > = SdkError::dispatch_failure(ConnectorError::other(
            CredentialsError::not_loaded_no_source().into(),
            None,
        ));
        let message = first_call(&no_credentials, "x", "AssumeRole")
            .unwrap()
            .to_string();
        assert!(message.starts_with("no AWS credentials found"), "{message}");
        assert!(!message.contains('\n'));
    }
}
