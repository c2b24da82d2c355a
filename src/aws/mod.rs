//! The AWS side of stepgate: one module per service, each the only place its
//! SDK client is used, plus what they share: the clients, the call recorder
//! and the retry policy.

pub mod assume;
pub mod calls;
pub mod credentials;
pub mod host_prefix;
pub mod reach;
pub mod retry;
pub mod retry_watch;
pub mod sign;
pub mod ssm;

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::Settings;
use calls::CallRecorder;

/// Every client stepgate uses, built from one `SdkConfig` so that they share
/// credentials, region and endpoint, and all report to one `CallRecorder`.
#[derive(Clone)]
pub struct Aws {
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sts: aws_sdk_sts::Client,
    /// Parameter Store, for the stage's lock only. Its calls are not refused
    /// after Ctrl-C, so that the lock is always released.
    pub ssm: aws_sdk_ssm::Client,
    /// Step Functions for moving `live` back during a bake only. Its calls
    /// are not refused after Ctrl-C either, so that a signal never leaves
    /// a canary serving part of the traffic.
    pub sfn_rollback: aws_sdk_sfn::Client,
    pub calls: CallRecorder,
    pub region: String,
    /// Set when requests go to an endpoint override (an emulator, usually).
    pub endpoint_url: Option<String>,
    /// The role assumed for this run (`--role-arn`), if any.
    pub assumed: Option<assume::Target>,
    /// Who the run acts as, once `identity` has asked STS; for the report.
    pub caller: String,
    /// The run's credentials, for signing `invoke`'s calls to IAM routes.
    pub credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
}

/// Who the run acts as (STS GetCallerIdentity).
#[derive(Debug, Clone)]
pub struct Identity {
    pub account: String,
    /// The caller's ARN: a user, a role, or `assumed-role/ROLE/SESSION`.
    pub arn: String,
}

impl Aws {
    /// Loads the standard AWS chain (profile, environment, IMDS, ...) with
    /// stepgate's settings layered over it.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Aws> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = &settings.profile {
            loader = loader.profile_name(profile);
            // The profile's own credentials, even if the environment has keys.
            let named = crate::aws::credentials::provider(profile, settings.region.as_deref());
            loader = loader.credentials_provider(named);
        }
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(retry) = retry::sdk_retry_config(&|name| std::env::var(name).ok()) {
            loader = loader.retry_config(retry);
        }
        let sdk = loader.load().await;
        let calls = CallRecorder::from_env(&settings.stack, &settings.project_dir);
        let Some(role_arn) = &settings.role_arn else {
            return Aws::from_sdk_config(&sdk, calls, None);
        };
        // The base credentials are used for AssumeRole only; every client
        // then signs as the role.
        let target = assume::Target {
            role_arn: role_arn.clone(),
            external_id: settings.external_id.clone(),
            session_name: assume::session_name(&settings.stack, &settings.stage),
        };
        let base = Aws::from_sdk_config(&sdk, calls.clone(), None)?;
        let role = assume::AssumedRole::assume(
            base.sts,
            target.clone(),
            &base.region,
            base.endpoint_url.as_deref(),
        )
        .await?;
        let sdk = sdk
            .into_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(role),
            )
            .build();
        Aws::from_sdk_config(&sdk, calls, Some(target))
    }

    /// Clients for `sdk`, all reporting to `calls`.
    pub fn from_sdk_config(
        sdk: &SdkConfig,
        calls: CallRecorder,
        assumed: Option<assume::Target>,
    ) -> anyhow::Result<Aws> {
        let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| {
            anyhow::anyhow!(
                "no AWS region is set; pass --region, set STEPGATE_REGION or AWS_REGION, or put region in stepgate.toml"
            )
        })?;
        // Every client counts its calls; all but the lock's stop starting
        // new ones after Ctrl-C.
        macro_rules! client {
            ($krate:ident $(, $extra:expr)?) => {
                $krate::Client::from_conf(
                    $krate::config::Builder::from(sdk)
                        .interceptor(crate::interrupt::RefuseAfterSignal)
                        .interceptor(calls.clone())
                        .interceptor(crate::logging::CallLog)
                        .interceptor(retry_watch::RetryWatch)
                        .interceptor(host_prefix::NoHostPrefixOnAddress)
                        $(.retry_classifier($extra))?
                        .build(),
                )
            };
        }
        Ok(Aws {
            iam: client!(aws_sdk_iam),
            lambda: client!(aws_sdk_lambda),
            sfn: client!(aws_sdk_sfn),
            apigateway: client!(aws_sdk_apigateway, retry::RetryAfterHint),
            logs: client!(aws_sdk_cloudwatchlogs),
            cloudwatch: client!(aws_sdk_cloudwatch),
            sts: client!(aws_sdk_sts, retry::UnreachableFailsFast),
            ssm: aws_sdk_ssm::Client::from_conf(
                aws_sdk_ssm::config::Builder::from(sdk)
                    .interceptor(calls.clone())
                    .interceptor(crate::logging::CallLog)
                    .interceptor(retry_watch::RetryWatch)
                    .build(),
            ),
            sfn_rollback: aws_sdk_sfn::Client::from_conf(
                aws_sdk_sfn::config::Builder::from(sdk)
                    .interceptor(calls.clone())
                    .interceptor(crate::logging::CallLog)
                    .build(),
            ),
            calls,
            credentials: sdk.credentials_provider(),
            region,
            endpoint_url: sdk.endpoint_url().map(str::to_string),
            assumed,
            caller: String::new(),
        })
    }

    /// Who the credentials belong to (STS GetCallerIdentity).
    pub async fn identity(&self) -> anyhow::Result<Identity> {
        let out = self.sts.get_caller_identity().send().await.map_err(|e| {
            crate::aws::reach::first_call_error(
                e,
                &self.region,
                self.endpoint_url.as_deref(),
                "GetCallerIdentity",
            )
        })?;
        let account = out
            .account
            .ok_or_else(|| anyhow::anyhow!("STS GetCallerIdentity returned no account"))?;
        Ok(Identity {
            account,
            arn: out.arn.unwrap_or_default(),
        })
    }
}

/// Turns an SDK error into one line naming the operation and the service's own
/// message (the SDK's Display alone often says just "service error").
pub fn error<E>(what: &str, operation: &str, err: aws_sdk_sts::error::SdkError<E>) -> anyhow::Error
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    anyhow::anyhow!("{what}: {operation}: {}", describe(&err))
}

/// The most useful one-line description of an SDK error.
pub fn describe<E>(err: &aws_sdk_sts::error::SdkError<E>) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_sts::error::SdkError;
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match (e.code(), e.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_string(),
                _ => format!("{e}"),
            }
        }
        other => interrupted(other).unwrap_or_else(|| chain(other)),
    }
}

/// "not started: interrupted by SIGINT" when Ctrl-C is why the call failed:
/// that, not the SDK's wrapping of it, is what the user needs to read.
fn interrupted(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = Some(err);
    while let Some(s) = source {
        if let Some(i) = s.downcast_ref::<crate::interrupt::Interrupted>() {
            return Some(i.to_string());
        }
        source = s.source();
    }
    None
}

/// An error with all its sources on one line: a dispatch failure's root
/// cause (connection refused, DNS, TLS) is what the user can act on.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// AWS's unordered maps as the ordered maps the specs compare with.
pub fn sorted<V: Clone>(
    map: Option<&std::collections::HashMap<String, V>>,
) -> std::collections::BTreeMap<String, V> {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// The error code of a service error, if the service answered at all.
pub fn code<E>(err: &aws_sdk_sts::error::SdkError<E>) -> Option<&str>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code())
}
