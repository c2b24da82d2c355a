//! Ctrl-C and SIGTERM. Once one arrives no new AWS call starts: the SDK
//! interceptor below refuses it before anything is sent. Calls in flight
//! finish, so nothing is cut half-way through a request; the command then
//! releases its lock, reports what exists and exits 130 (SIGINT) or 143
//! (SIGTERM). A second signal exits at once.

use std::sync::atomic::{AtomicI32, Ordering};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_types::config_bag::ConfigBag;

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// The signal received, 0 while none has been.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Starts listening for SIGINT and SIGTERM; call once, inside the runtime.
pub fn listen() {
    tokio::spawn(async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        loop {
            let signal = tokio::select! {
                _ = tokio::signal::ctrl_c() => SIGINT,
                _ = term.recv() => SIGTERM,
            };
            if RECEIVED.swap(signal, Ordering::SeqCst) != 0 {
                // The user insists: leave now, lock and all.
                std::process::exit(128 + signal);
            }
        }
    });
}

/// The signal's name, once one has arrived.
pub fn received() -> Option<&'static str> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        SIGTERM => Some("SIGTERM"),
        _ => Some("SIGINT"),
    }
}

/// 130 after SIGINT, 143 after SIGTERM: what shells report for a process
/// the signal ended.
pub fn exit_code() -> Option<u8> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(128 + signal as u8),
    }
}

/// The error an AWS call gets when it would start after a signal.
#[derive(Debug, thiserror::Error)]
#[error("not started: interrupted by {0}")]
pub struct Interrupted(pub &'static str);

/// Refuses every AWS operation that would start after a signal. Retries of
/// an operation already under way are not new operations and go on.
#[derive(Debug, Clone, Default)]
pub struct RefuseAfterSignal;

impl Intercept for RefuseAfterSignal {
    fn name(&self) -> &'static str {
        "stepgate-refuse-after-signal"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match received() {
            Some(signal) => Err(Box::new(Interrupted(signal))),
            None => Ok(()),
        }
    }
}
