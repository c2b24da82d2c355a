//! Some operations prepend a prefix to the endpoint's host: Step Functions
//! sends StartSyncExecution to `sync-states.REGION.amazonaws.com`. On an
//! endpoint override that is an IP address or `localhost` (an emulator, a
//! proxy on the loopback) the prefixed host, `sync-127.0.0.1`, cannot
//! resolve, so the call never leaves the machine. For those endpoints the
//! prefix is dropped, as botocore's `inject_host_prefix = False` does; on a
//! named endpoint, AWS's own included, it is kept.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::endpoint::EndpointPrefix;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_types::endpoint_config::EndpointUrl;

/// Drops the operation's host prefix when the endpoint override cannot take
/// one.
#[derive(Debug)]
pub struct NoHostPrefixOnAddress;

impl Intercept for NoHostPrefixOnAddress {
    fn name(&self) -> &'static str {
        "stepgate-no-host-prefix"
    }

    // After the operation has set its prefix (before serialization), before
    // the endpoint is applied (in each attempt).
    fn modify_before_retry_loop(
        &self,
        _context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let overridden = cfg.load::<EndpointUrl>().map(|url| url.0.clone());
        if overridden.is_some_and(|url| cannot_take_a_prefix(&url)) {
            cfg.interceptor_state().unset::<EndpointPrefix>();
        }
        Ok(())
    }
}

/// Whether `endpoint_url`'s host is one no prefix can be added to: an IPv4
/// or IPv6 address, or `localhost`.
pub fn cannot_take_a_prefix(endpoint_url: &str) -> bool {
    match url::Url::parse(endpoint_url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => true,
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::cannot_take_a_prefix;

    #[test]
    fn addresses_and_localhost_take_no_prefix_named_hosts_do() {
        for url in [
            "http://127.0.0.1:4566",
            "http://localhost:4566",
            "http://LOCALHOST",
            "https://10.0.0.7",
            "http://[::1]:4566/",
        ] {
            assert!(cannot_take_a_prefix(url), "{url}");
        }
        for url in [
            "https://states.us-east-1.amazonaws.com",
            "http://localstack:4566",
            "https://vpce-0abc.states.us-east-1.vpce.amazonaws.com",
            "not a url",
        ] {
            assert!(!cannot_take_a_prefix(url), "{url}");
        }
    }
}
