//! Who may call the API: each route's `auth` (`none`, `iam`, or an
//! authorizer of `[authorizers.NAME]`), API keys with the stage's usage
//! plan, and the API's resource policy (`[api] allow_source_ips`,
//! `allow_vpc_endpoints`). Resolved and checked before any AWS call.

use std::collections::BTreeMap;
use std::ops::Range;

use anyhow::{bail, Result};

use super::file::{RawApiAccess, RawAuthorizer, RawUsagePlan};
use super::{check_name, did_you_mean, Function};

/// Who may call a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Anyone who knows the URL.
    Open,
    /// Callers that sign with SigV4 and hold `execute-api:Invoke`.
    Iam,
    /// The authorizer of that name.
    Authorizer(String),
}

impl Auth {
    /// As written in `stepgate.toml`.
    pub fn key(&self) -> &str {
        match self {
            Auth::Open => "none",
            Auth::Iam => "iam",
            Auth::Authorizer(name) => name,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Authorizer {
    pub name: String,
    pub kind: AuthorizerKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AuthorizerKind {
    Cognito {
        user_pool_arns: Vec<String>,
    },
    Lambda {
        /// A function of the project.
        function: String,
        /// `token` or `request`.
        request: bool,
        identity_source: String,
        ttl_s: i32,
    },
}

/// The stage's usage plan: what each of its API keys may do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsagePlan {
    pub rate_limit: Option<f64>,
    pub burst_limit: Option<i32>,
    pub quota: Option<Quota>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Quota {
    pub limit: i32,
    /// DAY, WEEK or MONTH.
    pub period: String,
}

pub const QUOTA_PERIODS: [&str; 3] = ["DAY", "WEEK", "MONTH"];
pub const AUTHORIZER_TYPES: [&str; 2] = ["cognito", "lambda"];
pub const LAMBDA_AUTHORIZER_KINDS: [&str; 2] = ["token", "request"];
pub const DEFAULT_IDENTITY_SOURCE: &str = "method.request.header.Authorization";
pub const DEFAULT_TTL_S: i32 = 300;

/// What `[api]` says about callers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApiAccess {
    /// The API keys' names: one key per name per stage.
    pub keys: Vec<String>,
    pub usage_plan: UsagePlan,
    /// CIDRs (or addresses) the resource policy lets in; empty: any.
    pub allow_source_ips: Vec<String>,
    /// VPC endpoints the resource policy lets in; empty: any.
    pub allow_vpc_endpoints: Vec<String>,
}

impl ApiAccess {
    /// Whether the API has a resource policy of stepgate's.
    pub fn restricted(&self) -> bool {
        !self.allow_source_ips.is_empty() || !self.allow_vpc_endpoints.is_empty()
    }
}

type At<'a> = &'a dyn Fn(Range<usize>) -> String;

pub fn resolve_authorizers(
    raw: BTreeMap<String, RawAuthorizer>,
    functions: &BTreeMap<String, Function>,
    at: At,
) -> Result<BTreeMap<String, Authorizer>> {
    let mut out = BTreeMap::new();
    for (name, raw) in raw {
        let table = format!("[authorizers.{name}]");
        let here = at(raw.kind.span());
        check_name("authorizer", &name, &format!("{here}: {table}"))?;
        if name == "none" || name == "iam" {
            bail!("{here}: {table}: {name} means auth = \"{name}\"; name the authorizer otherwise");
        }
        let wrong = |key: &str, span: Option<Range<usize>>| -> Result<()> {
            match span {
                Some(span) => bail!(
                    "{}: {table} {key} is for a {} authorizer, and this one is type = {:?}",
                    at(span),
                    if key == "user_pool_arns" {
                        "cognito"
                    } else {
                        "lambda"
                    },
                    raw.kind.get_ref()
                ),
                None => Ok(()),
            }
        };
        let kind = match raw.kind.get_ref().as_str() {
            "cognito" => {
                wrong("function", raw.function.as_ref().map(|f| f.span()))?;
                wrong("kind", raw.lambda_kind.as_ref().map(|f| f.span()))?;
                wrong(
                    "identity_source",
                    raw.identity_source.as_ref().map(|f| f.span()),
                )?;
                wrong("ttl", raw.ttl.as_ref().map(|f| f.span()))?;
                let Some(pools) = &raw.user_pool_arns else {
                    bail!("{here}: {table} type = \"cognito\" needs user_pool_arns = [\"arn:aws:cognito-idp:REGION:ACCOUNT:userpool/POOL_ID\"]");
                };
                if pools.get_ref().is_empty() {
                    bail!(
                        "{}: {table} user_pool_arns is empty; name at least one user pool",
                        at(pools.span())
                    );
                }
                for arn in pools.get_ref() {
                    if !user_pool_arn(arn) {
                        bail!(
                            "{}: {table} user_pool_arns: {arn:?} is not a user pool ARN; write arn:aws:cognito-idp:REGION:ACCOUNT:userpool/REGION_ID",
                            at(pools.span())
                        );
                    }
                }
                AuthorizerKind::Cognito {
                    user_pool_arns: pools.get_ref().clone(),
                }
            }
            "lambda" => {
                wrong(
                    "user_pool_arns",
                    raw.user_pool_arns.as_ref().map(|f| f.span()),
                )?;
                let Some(function) = &raw.function else {
                    bail!("{here}: {table} type = \"lambda\" needs function = \"NAME\", a function of the project (lambdas/NAME/)");
                };
                if !functions.contains_key(function.get_ref()) {
                    bail!(
                        "{}: {table} function = {:?} is not a function of the project (lambdas/NAME/){}",
                        at(function.span()),
                        function.get_ref(),
                        did_you_mean(function.get_ref(), functions.keys())
                    );
                }
                let request = match &raw.lambda_kind {
                    None => false,
                    Some(k) if LAMBDA_AUTHORIZER_KINDS.contains(&k.get_ref().as_str()) => {
                        k.get_ref() == "request"
                    }
                    Some(k) => bail!(
                        "{}: {table} kind = {:?}: use token or request",
                        at(k.span()),
                        k.get_ref()
                    ),
                };
                let identity_source = match &raw.identity_source {
                    None => DEFAULT_IDENTITY_SOURCE.to_string(),
                    Some(s) => {
                        let ok = s.get_ref().split(',').all(|part| {
                            let part = part.trim();
                            ["method.request.", "context.", "stageVariables."]
                                .iter()
                                .any(|p| part.starts_with(p) && part.len() > p.len())
                        });
                        if !ok {
                            bail!(
                                "{}: {table} identity_source = {:?}: write API Gateway's form, such as method.request.header.Authorization",
                                at(s.span()),
                                s.get_ref()
                            );
                        }
                        s.get_ref().clone()
                    }
                };
                let ttl_s = match &raw.ttl {
                    None => DEFAULT_TTL_S,
                    Some(t) if (0..=3600).contains(t.get_ref()) => *t.get_ref(),
                    Some(t) => bail!(
                        "{}: {table} ttl = {}: use 0 to 3600 seconds",
                        at(t.span()),
                        t.get_ref()
                    ),
                };
                AuthorizerKind::Lambda {
                    function: function.get_ref().clone(),
                    request,
                    identity_source,
                    ttl_s,
                }
            }
            other => bail!(
                "{here}: {table} type = {other:?}: use {}",
                AUTHORIZER_TYPES.join(" or ")
            ),
        };
        out.insert(name.clone(), Authorizer { name, kind });
    }
    Ok(out)
}

pub fn resolve_api_access(raw: RawApiAccess, at: At) -> Result<ApiAccess> {
    let mut access = ApiAccess::default();
    if let Some(keys) = raw.keys {
        for key in keys.get_ref() {
            check_name("API key", key, &format!("{}: [api] keys", at(keys.span())))?;
            if keys.get_ref().iter().filter(|k| *k == key).count() > 1 {
                bail!(
                    "{}: [api] keys names {key} twice; keep one",
                    at(keys.span())
                );
            }
        }
        access.keys = keys.into_inner();
    }
    if let Some(plan) = raw.usage_plan {
        access.usage_plan = resolve_usage_plan(plan, at)?;
    }
    if let Some(ips) = raw.allow_source_ips {
        for ip in ips.get_ref() {
            if !cidr(ip) {
                bail!(
                    "{}: [api] allow_source_ips: {ip:?} is not a CIDR or an IP address, such as 203.0.113.0/24",
                    at(ips.span())
                );
            }
        }
        access.allow_source_ips = ips.into_inner();
    }
    if let Some(endpoints) = raw.allow_vpc_endpoints {
        for id in endpoints.get_ref() {
            if !vpc_endpoint_id(id) {
                bail!(
                    "{}: [api] allow_vpc_endpoints: {id:?} is not a VPC endpoint id, such as vpce-0123456789abcdef0",
                    at(endpoints.span())
                );
            }
        }
        access.allow_vpc_endpoints = endpoints.into_inner();
    }
    Ok(access)
}

fn resolve_usage_plan(raw: RawUsagePlan, at: At) -> Result<UsagePlan> {
    let mut plan = UsagePlan::default();
    if let Some(rate) = raw.rate_limit {
        if !rate.get_ref().is_finite() || *rate.get_ref() < 0.0 {
            bail!(
                "{}: [api.usage_plan] rate_limit = {}: use a number of requests per second, 0 or more",
                at(rate.span()),
                rate.get_ref()
            );
        }
        plan.rate_limit = Some(*rate.get_ref());
    }
    if let Some(burst) = raw.burst_limit {
        if *burst.get_ref() < 0 {
            bail!(
                "{}: [api.usage_plan] burst_limit = {}: use 0 or more",
                at(burst.span()),
                burst.get_ref()
            );
        }
        plan.burst_limit = Some(*burst.get_ref());
    }
    if let Some(quota) = raw.quota {
        let period = quota.period.get_ref().to_ascii_uppercase();
        if !QUOTA_PERIODS.contains(&period.as_str()) {
            bail!(
                "{}: [api.usage_plan] quota period = {:?}: use DAY, WEEK or MONTH",
                at(quota.period.span()),
                quota.period.get_ref()
            );
        }
        if *quota.limit.get_ref() < 1 {
            bail!(
                "{}: [api.usage_plan] quota limit = {}: use 1 or more requests per period",
                at(quota.limit.span()),
                quota.limit.get_ref()
            );
        }
        plan.quota = Some(Quota {
            limit: *quota.limit.get_ref(),
            period,
        });
    }
    Ok(plan)
}

/// `arn:PARTITION:cognito-idp:REGION:ACCOUNT:userpool/REGION_ID`.
pub fn user_pool_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts[..] else {
        return false;
    };
    let Some(pool) = resource.strip_prefix("userpool/") else {
        return false;
    };
    let pool_ok = pool.split_once('_').is_some_and(|(r, id)| {
        r == region && !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric())
    });
    arn == "arn"
        && partition.starts_with("aws")
        && service == "cognito-idp"
        && !region.is_empty()
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && pool_ok
}

/// An IPv4 or IPv6 address, with or without a prefix length.
pub fn cidr(text: &str) -> bool {
    let (address, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let Ok(ip) = address.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match prefix {
        None => true,
        Some(p) => p.parse::<u8>().is_ok_and(|n| n <= max) && !p.starts_with('+'),
    }
}

/// `vpce-` and 8 or 17 lowercase hex digits.
pub fn vpc_endpoint_id(id: &str) -> bool {
    id.strip_prefix("vpce-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_pool_arns_cidrs_and_endpoint_ids_are_checked() {
        assert!(user_pool_arn(
            "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbC123"
        ));
        for bad in [
            "arn:aws:cognito-idp:us-east-1:123456789012:userpool/eu-west-1_AbC123",
            "arn:aws:cognito-idp:us-east-1:1234:userpool/us-east-1_AbC123",
            "arn:aws:cognito:us-east-1:123456789012:userpool/us-east-1_AbC123",
            "us-east-1_AbC123",
        ] {
            assert!(!user_pool_arn(bad), "{bad}");
        }
        for good in ["203.0.113.0/24", "10.0.0.1", "2001:db8::/32"] {
            assert!(cidr(good), "{good}");
        }
        for bad in [
            "203.0.113.0/33",
            "203.0.113/24",
            "10.0.0.1/",
            "any",
            "::/129",
        ] {
            assert!(!cidr(bad), "{bad}");
        }
        assert!(vpc_endpoint_id("vpce-0123456789abcdef0"));
        assert!(vpc_endpoint_id("vpce-1a2b3c4d"));
        for bad in [
            "vpce-XYZ",
            "vpc-0123456789abcdef0",
            "vpce-0123456789ABCDEF0",
        ] {
            assert!(!vpc_endpoint_id(bad), "{bad}");
        }
    }
}
