//! Which AWS credentials a run uses. A profile named to stepgate (`--profile`,
//! `STEPGATE_PROFILE` or `profile` in stepgate.toml) is the one used, even
//! when AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set, as the AWS CLI
//! gives its `--profile` precedence; it must exist, which is checked before
//! any AWS call. Without one, the AWS SDK's default chain decides as usual.
//! With `-v`, one line says where the credentials come from.

use anyhow::{anyhow, bail, Result};
use aws_config::profile::{Profile, ProfileFileCredentialsProvider, ProfileSet};
use aws_config::provider_config::ProviderConfig;
use aws_config::Region;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_types::os_shim_internal::{Env, Fs};

use crate::aws::reach::ProfileFailed;

use crate::config::Settings;

/// Checks that a profile named to stepgate exists, and returns the line
/// `-v` prints. Reads only the local AWS config files.
pub async fn check(settings: &Settings) -> Result<String> {
    let loaded = aws_config::profile::load(&Fs::real(), &Env::real(), &Default::default(), None)
        .await
        .map_err(|e| crate::shown::one_line(&anyhow!(e)));
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match &settings.profile {
        Some(name) => {
            let origin = settings
                .profile_origin
                .clone()
                .unwrap_or_else(|| format!("profile {name:?}"));
            let profiles = loaded.map_err(|e| {
                anyhow!("{origin}: the AWS config files cannot be read: {e}; fix them")
            })?;
            named(name, &origin, &profiles, &env)
        }
        None => Ok(default_chain(loaded.ok().as_ref(), &env)),
    }
}

/// The credentials of the named profile, whatever the environment holds.
/// Its errors name the profile (reach::first_call reports them).
pub fn provider(profile: &str, region: Option<&str>) -> NamedProfile {
    let config = ProviderConfig::default().with_region(region.map(|r| Region::new(r.to_string())));
    NamedProfile {
        name: profile.to_string(),
        inner: ProfileFileCredentialsProvider::builder()
            .configure(&config)
            .profile_name(profile)
            .build(),
    }
}

#[derive(Debug)]
pub struct NamedProfile {
    name: String,
    inner: ProfileFileCredentialsProvider,
}

impl ProvideCredentials for NamedProfile {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.inner.provide_credentials().await.map_err(|e| {
                CredentialsError::provider_error(ProfileFailed {
                    profile: self.name.clone(),
                    cause: crate::aws::reach::deepest(&e),
                })
            })
        })
    }
}

/// Where the AWS config files are, as the SDK finds them.
fn files(env: &dyn Fn(&str) -> Option<String>) -> String {
    let config = env("AWS_CONFIG_FILE").unwrap_or_else(|| "~/.aws/config".into());
    let credentials =
        env("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_else(|| "~/.aws/credentials".into());
    format!("{config}, {credentials}")
}

fn named(
    name: &str,
    origin: &str,
    profiles: &ProfileSet,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String> {
    let Some(profile) = profiles.get_profile(name) else {
        let mut known: Vec<&str> = profiles.profiles().collect();
        known.sort_unstable();
        if known.is_empty() {
            bail!(
                "{origin} is not a profile in the AWS config files, which have none ({}); create it (aws configure --profile {name}) or point AWS_CONFIG_FILE at the file that has it",
                files(env)
            );
        }
        bail!(
            "{origin} is not a profile in the AWS config files; profiles there: {}. Name one of them, or create it (aws configure --profile {name})",
            known.join(", ")
        );
    };
    Ok(format!(
        "credentials: profile \"{name}\" ({origin}), {}; keys in the environment are not used",
        source(profile)
    ))
}

/// How a profile gets its credentials, in the order the SDK tries them.
fn source(profile: &Profile) -> String {
    if let Some(role) = profile.get("role_arn") {
        format!("by assuming role {role}")
    } else if profile.get("sso_session").is_some() || profile.get("sso_start_url").is_some() {
        "from AWS IAM Identity Center (SSO)".into()
    } else if profile.get("credential_process").is_some() {
        "from its credential_process".into()
    } else if profile.get("aws_access_key_id").is_some() {
        "from its access keys".into()
    } else {
        "though it sets none of role_arn, sso_session, credential_process or aws_access_key_id"
            .into()
    }
}

/// Which source of the SDK's default chain (environment, profile, web
/// identity, container, instance metadata) will answer.
fn default_chain(profiles: Option<&ProfileSet>, env: &dyn Fn(&str) -> Option<String>) -> String {
    if env("AWS_ACCESS_KEY_ID").is_some() {
        return "credentials: the environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the first source in the AWS chain)".into();
    }
    let (name, origin) = match env("AWS_PROFILE") {
        Some(name) => (name.clone(), format!("AWS_PROFILE={name}")),
        None => ("default".to_string(), "the default profile".to_string()),
    };
    if let Some(profile) = profiles.and_then(|p| p.get_profile(&name)) {
        return format!(
            "credentials: profile \"{name}\" ({origin}), {}",
            source(profile)
        );
    }
    if env("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() {
        return "credentials: the web identity token in AWS_WEB_IDENTITY_TOKEN_FILE, for the role in AWS_ROLE_ARN".into();
    }
    if env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || env("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
    {
        return "credentials: the container credentials endpoint (ECS or EKS)".into();
    }
    if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return format!(
            "credentials: none found: no keys in the environment, no profile \"{name}\" in {}, and instance metadata is disabled",
            files(env)
        );
    }
    "credentials: the instance metadata service (IMDS), the last source in the AWS chain".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    async fn profiles(config: &str) -> ProfileSet {
        let fs = Fs::from_slice(&[("/config", config)]);
        let env = Env::from_slice(&[("AWS_CONFIG_FILE", "/config")]);
        aws_config::profile::load(&fs, &env, &Default::default(), None)
            .await
            .unwrap()
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    const CONFIG: &str =
        "[default]\nregion = us-east-1\naws_access_key_id = A\naws_secret_access_key = B\n\
        [profile keys]\naws_access_key_id = A\naws_secret_access_key = B\n\
        [profile process]\ncredential_process = /bin/creds\n\
        [profile role]\nrole_arn = arn:aws:iam::123456789012:role/deploy\nsource_profile = keys\n\
        [profile sso]\nsso_session = corp\nsso_account_id = 123456789012\n\
        [profile empty]\nregion = eu-west-1\n";

    #[tokio::test]
    async fn a_named_profile_must_exist_and_says_how_it_gets_credentials() {
        let set = profiles(CONFIG).await;
        let env = env_of(&[("AWS_ACCESS_KEY_ID", "ENVKEY")]);
        for (name, expected) in [
            ("keys", "from its access keys"),
            ("process", "from its credential_process"),
            (
                "role",
                "by assuming role arn:aws:iam::123456789012:role/deploy",
            ),
            ("sso", "from AWS IAM Identity Center (SSO)"),
            ("empty", "though it sets none of"),
        ] {
            let line = named(name, "--profile \"x\"", &set, &env).unwrap();
            assert!(line.contains(expected), "{line}");
            assert!(
                line.ends_with("keys in the environment are not used"),
                "{line}"
            );
        }
        let message = named("nope", "--profile \"nope\"", &set, &env)
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "--profile \"nope\" is not a profile in the AWS config files; profiles there: \
             default, empty, keys, process, role, sso. Name one of them, or create it (aws configure --profile nope)"
        );
        let none = profiles("").await;
        let message = named("nope", "STEPGATE_PROFILE=nope", &none, &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("which have none (~/.aws/config, ~/.aws/credentials)"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn the_default_chain_is_described_in_its_order() {
        let set = profiles(CONFIG).await;
        for (vars, expected) in [
            (
                &[("AWS_ACCESS_KEY_ID", "K"), ("AWS_PROFILE", "role")][..],
                "the environment variables AWS_ACCESS_KEY_ID",
            ),
            (
                &[("AWS_PROFILE", "process")],
                "profile \"process\" (AWS_PROFILE=process), from its credential_process",
            ),
            (
                &[],
                "profile \"default\" (the default profile), from its access keys",
            ),
            (
                &[
                    ("AWS_PROFILE", "missing"),
                    ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
                ],
                "web identity token",
            ),
            (
                &[
                    ("AWS_PROFILE", "missing"),
                    ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://x"),
                ],
                "container",
            ),
            (
                &[
                    ("AWS_PROFILE", "missing"),
                    ("AWS_EC2_METADATA_DISABLED", "true"),
                ],
                "credentials: none found",
            ),
            (&[("AWS_PROFILE", "missing")], "instance metadata service"),
        ] {
            let line = default_chain(Some(&set), &env_of(vars));
            assert!(line.starts_with("credentials: "), "{line}");
            assert!(line.contains(expected), "{vars:?}: {line}");
        }
    }
}
