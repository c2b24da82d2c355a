//! `-v` and `-vv`: logs on stderr through `tracing`, the SDK's own
//! instrumentation.
//!
//! - `-v`: one line per AWS call: service, operation, HTTP status, duration
//!   and retries (`CallLog`, an interceptor on every client); and a line
//!   per retry, with the attempt and AWS's error code (`aws/retry_watch.rs`).
//! - `-vv`: also the SDK's own debug events (`aws*` targets).
//!
//! Never more than debug: the SDK logs what it signs, and the requests
//! themselves, only at trace. And every line passes through `redact`, so
//! that credentials (access key ids, secrets, session tokens) and
//! signatures never reach the terminal or a CI log, whatever an SDK
//! version decides to log. Without `-v` nothing is installed and nothing
//! is logged.

use std::borrow::Cow;
use std::io::Write;
use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the logger for `-v` (1) or `-vv` (2 or more).
pub fn init(verbose: u8) {
    if verbose == 0 {
        return;
    }
    let targets = if verbose == 1 {
        Targets::new().with_target("stepgate", Level::INFO)
    } else {
        Targets::new()
            .with_target("stepgate", Level::DEBUG)
            .with_target("aws", Level::DEBUG)
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(|| RedactingStderr)
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .with_ansi(false);
    let _ = tracing_subscriber::registry()
        .with(targets)
        .with(layer)
        .try_init();
}

/// Logs each AWS operation once it is over, retries included.
#[derive(Debug, Clone, Default)]
pub struct CallLog;

#[derive(Debug, Clone)]
struct Started(Instant);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "stepgate-call-log"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started(Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !tracing::enabled!(target: "stepgate::aws", Level::INFO) {
            return Ok(());
        }
        let Some(meta) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let ms = cfg
            .load::<Started>()
            .map(|s| s.0.elapsed().as_millis() as u64)
            .unwrap_or_default();
        let attempts = cfg
            .load::<RequestAttempts>()
            .map(RequestAttempts::attempts)
            .unwrap_or(0);
        let status = context
            .response()
            .map(|r| r.status().as_u16().to_string())
            .unwrap_or_else(|| "none".into());
        let ok = matches!(context.output_or_error(), Some(Ok(_)));
        tracing::info!(
            target: "stepgate::aws",
            ok,
            status = %status,
            ms,
            retries = attempts.saturating_sub(1),
            "{}.{}",
            meta.service(),
            meta.name()
        );
        Ok(())
    }
}

/// stderr, with every line passed through `redact`. The formatter writes
/// each event in one call, so a secret is never split across two.
struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let text = crate::shown::redact_userinfo(&text);
        std::io::stderr().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

const REDACTED: &str = "** redacted **";

/// Keys whose value is a secret or a signature, as the SDK and HTTP name
/// them (compared without case).
const SECRET_KEYS: [&str; 7] = [
    "signature",
    "credential",
    "authorization",
    "x-amz-security-token",
    "secret_access_key",
    "session_token",
    "access_key_id",
];

/// `text` with the value after each of `SECRET_KEYS` and every access key
/// id (`AKIA...`, `ASIA...`) replaced by `** redacted **`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let lower = text.to_ascii_lowercase();
    // (start, end) of each secret value, found on the lower-cased copy
    // (same byte offsets: only ASCII changes case).
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for key in SECRET_KEYS {
        for (at, _) in lower.match_indices(key) {
            let rest = &text[at + key.len()..];
            let skip = rest
                .find(|c: char| !matches!(c, ' ' | ':' | '=' | '"' | '\''))
                .unwrap_or(rest.len());
            // Only a key followed by ':' or '=' is a key: "signature" in
            // "signature version" is not.
            if !rest[..skip].contains([':', '=']) {
                continue;
            }
            let value = &rest[skip..];
            let len = value
                .find(['"', '\'', ',', ' ', '&', '}', ')', '\n'])
                .unwrap_or(value.len());
            if len > 0 && !value.starts_with(REDACTED) {
                let start = at + key.len() + skip;
                spans.push((start, start + len));
            }
        }
    }
    for prefix in ["AKIA", "ASIA"] {
        for (at, _) in text.match_indices(prefix) {
            let id = &text[at..];
            let len = id
                .find(|c: char| !c.is_ascii_uppercase() && !c.is_ascii_digit())
                .unwrap_or(id.len());
            if len >= 16 {
                spans.push((at, at + len));
            }
        }
    }
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    spans.sort();
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for (start, end) in spans {
        if start < done {
            done = done.max(end);
            continue;
        }
        out.push_str(&text[done..start]);
        out.push_str(REDACTED);
        done = end;
    }
    out.push_str(&text[done..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn signatures_credentials_and_tokens_are_redacted() {
        let header = "authorization: \"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024\"";
        let out = redact(header);
        for secret in [
            "AKIAIOSFODNN7EXAMPLE",
            "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
            "AWS4-HMAC-SHA256",
        ] {
            assert!(!out.contains(secret), "{out}");
        }
        let creds = r#"loaded base credentials creds=Credentials { provider_name: "Profile", access_key_id: "AKIASTEPGATELEAKTEST", secret_access_key: "** redacted **", expires_after: "never" }"#;
        let out = redact(creds);
        assert!(!out.contains("AKIASTEPGATELEAKTEST"), "{out}");
        assert!(out.contains("provider_name: \"Profile\""), "{out}");
        let token = "x-amz-security-token: \"IQoJb3JpZ2luX2VjEPT//////////wEaCXVz\"";
        assert!(!redact(token).contains("IQoJb3JpZ2luX2Vj"));
        let url = "https://sts.amazonaws.com/?X-Amz-Credential=ASIAXXXXXXXXXXXXXXXX%2F2026&X-Amz-Signature=abc123";
        let out = redact(url);
        assert!(
            !out.contains("ASIAXXXX") && !out.contains("abc123"),
            "{out}"
        );
    }

    #[test]
    fn ordinary_lines_are_untouched() {
        for line in [
            "INFO stepgate::aws: IAM.GetRole ok=true status=200 ms=3 retries=0",
            "DEBUG invoke{rpc.service=\"IAM\" rpc.method=\"GetRole\"}: beginning attempt #1",
            "signature version 4 is used",
        ] {
            assert_eq!(redact(line), line);
        }
    }
}
