//! The first AWS call of a run (STS GetCallerIdentity) is where missing
//! credentials and an unreachable or wrong endpoint show up. The SDK reports
//! those in several lines, or as a bare "dispatch failure"; this turns them
//! into one line naming the problem and the fix.

use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

/// One line for an error of the first call, when it is about credentials;
/// `None` leaves the error to the usual description.
pub fn first_call<E>(error: &SdkError<E, HttpResponse>) -> Option<anyhow::Error>
where
    E: std::error::Error + 'static,
{
    let credentials = sources(error).find_map(|e| e.downcast_ref::<CredentialsError>())?;
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

/// The error of the first call (STS GetCallerIdentity), as one line.
pub fn first_call_error<E>(error: SdkError<E, HttpResponse>) -> anyhow::Error
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    first_call(&error).unwrap_or_else(|| crate::aws::error("sts", "GetCallerIdentity", error))
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
