//! Notes each failed attempt of every AWS call in `crate::retrying`'s
//! table (operation, attempt, AWS's error code), and logs each retry at
//! `-v`: retries made visible.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use crate::retrying::{table, Retrying};

static NEXT_CALL: AtomicU64 = AtomicU64::new(0);

/// This call's key in the table.
#[derive(Debug, Clone, Copy)]
struct CallId(u64);

impl Storable for CallId {
    type Storer = StoreReplace<Self>;
}

#[derive(Debug, Clone, Default)]
pub struct RetryWatch;

impl Intercept for RetryWatch {
    fn name(&self) -> &'static str {
        "stepgate-retry-watch"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let id = NEXT_CALL.fetch_add(1, Ordering::Relaxed);
        cfg.interceptor_state().store_put(CallId(id));
        Ok(())
    }

    /// A retry is starting: say so at `-v`, and count the attempt.
    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        let Some(CallId(id)) = cfg.load::<CallId>().copied() else {
            return Ok(());
        };
        if attempt < 2 {
            return Ok(());
        }
        if let Some(retrying) = table().get_mut(&id) {
            retrying.attempt = attempt;
            tracing::info!(
                target: "stepgate::aws",
                "{}: attempt {attempt} after {} ({:.1}s since the first failure)",
                retrying.operation,
                retrying.code,
                retrying.since.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }

    /// An attempt failed: note why, in case the SDK tries again.
    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Err(error)) = context.output_or_error() else {
            return Ok(());
        };
        let (Some(CallId(id)), Some(meta)) =
            (cfg.load::<CallId>().copied(), cfg.load::<Metadata>())
        else {
            return Ok(());
        };
        let code = match context.response() {
            Some(response) => error_code(response),
            None if error.is_timeout_error() => "timeout".to_string(),
            None => "connection error".to_string(),
        };
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        let mut table = table();
        let entry = table.entry(id).or_insert_with(|| Retrying {
            operation: format!("{}.{}", meta.service(), meta.name()),
            attempt,
            code: String::new(),
            resource: crate::aws::calls::current_resource(),
            since: Instant::now(),
        });
        entry.code = code;
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(CallId(id)) = cfg.load::<CallId>() {
            table().remove(id);
        }
        Ok(())
    }
}

/// AWS's error code in an error response, whichever protocol the service
/// speaks: the `x-amzn-ErrorType` header (REST-JSON), `__type` or `code`
/// in a JSON body (JSON 1.0/1.1), `<Code>` in an XML body (IAM, STS);
/// else the HTTP status.
pub fn error_code(response: &HttpResponse) -> String {
    let short = |code: &str| {
        // `ThrottlingException:http://...` and `com.amazon...#ThrottlingException`.
        let code = code.split(':').next().unwrap_or(code);
        code.rsplit('#').next().unwrap_or(code).trim().to_string()
    };
    if let Some(header) = response.headers().get("x-amzn-errortype") {
        return short(header);
    }
    let body = response.body().bytes().unwrap_or_default();
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        for key in ["__type", "code", "Code"] {
            if let Some(code) = json.get(key).and_then(|c| c.as_str()) {
                return short(code);
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    if let Some((_, rest)) = text.split_once("<Code>") {
        if let Some((code, _)) = rest.split_once("</Code>") {
            return short(code);
        }
    }
    format!("HTTP {}", response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::body::SdkBody;

    fn response(status: u16, header: Option<&str>, body: &str) -> HttpResponse {
        let mut r = HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body.to_string()));
        if let Some(h) = header {
            r.headers_mut().insert("x-amzn-ErrorType", h.to_string());
        }
        r
    }

    #[test]
    fn the_error_code_is_read_in_each_protocol() {
        for (r, code) in [
            (
                response(429, Some("TooManyRequestsException:http://internal"), "{}"),
                "TooManyRequestsException",
            ),
            (
                response(
                    400,
                    None,
                    r#"{"__type":"com.amazonaws.swf#ThrottlingException"}"#,
                ),
                "ThrottlingException",
            ),
            (
                response(
                    400,
                    None,
                    "<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>",
                ),
                "Throttling",
            ),
            (response(503, None, "Service Unavailable"), "HTTP 503"),
        ] {
            assert_eq!(error_code(&r), code);
        }
    }
}
