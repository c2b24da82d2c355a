//! Shared harness for the integration tests: every test reaches the one local
//! emulator through `STEPGATE_TEST_ENDPOINT`, which `tests/run.sh` sets.
//! Tests run in parallel against it, so each one works under names of its own
//! (see `unique`).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::Credentials;

pub const REGION: &str = "us-east-1";

/// The emulator's endpoint. Without one the test fails loudly: a test that
/// silently passes with no emulator proves nothing.
pub fn endpoint() -> String {
    match std::env::var("STEPGATE_TEST_ENDPOINT") {
        Ok(url) if !url.is_empty() => {
            assert!(
                url.starts_with("http://127.") || url.starts_with("http://localhost"),
                "STEPGATE_TEST_ENDPOINT={url} is not on loopback; tests only ever talk to a local emulator"
            );
            url
        }
        _ => panic!(
            "STEPGATE_TEST_ENDPOINT is not set, so there is no emulator to test against.\n\
             Run all tests with `bash tests/run.sh` (it installs and starts the emulator), or start one with\n\
             `tests/emulator/start.sh` and `export STEPGATE_TEST_ENDPOINT=$(cat .emulator/endpoint)`."
        ),
    }
}

/// SDK configuration pointing at the emulator with dummy credentials.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "stepgate-tests",
        ))
        .load()
        .await
}

/// A name no other test (or earlier run against the same emulator) uses:
/// `prefix` plus the process id and a per-process counter.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}x{n}", std::process::id() % 100_000)
}
