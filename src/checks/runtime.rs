//! The Node.js runtimes Lambda accepts, in one place. Lambda deprecates a
//! runtime when its Node.js version reaches end of life, then blocks creating
//! and later updating functions with it; stepgate refuses deprecated
//! runtimes up front, naming the replacement.
//!
//! Source: AWS Lambda Developer Guide, "Lambda runtimes" (supported and
//! deprecated runtimes). Update this list, and `CHECKED`, when Lambda adds or
//! deprecates a Node.js runtime; docs/errors.md and docs/configuration.md
//! quote it.

/// When the lists below were last checked against the Lambda documentation.
pub const CHECKED: &str = "2026-11-22";

/// The Node.js runtimes Lambda accepts for new functions, oldest first
/// (nodejs22.x is deprecated on 2027-04-30, nodejs24.x on 2028-04-30).
pub const SUPPORTED: [&str; 2] = ["nodejs22.x", "nodejs24.x"];

/// What to use instead of a deprecated runtime: the oldest supported one,
/// the smallest step up, and stepgate's default.
pub const REPLACEMENT: &str = "nodejs22.x";

/// Deprecated Node.js runtimes with the date Lambda deprecated each.
pub const DEPRECATED: [(&str, &str); 11] = [
    ("nodejs20.x", "2026-04-30"),
    ("nodejs18.x", "2025-09-01"),
    ("nodejs16.x", "2024-06-12"),
    ("nodejs14.x", "2023-12-04"),
    ("nodejs12.x", "2023-03-31"),
    ("nodejs10.x", "2021-07-30"),
    ("nodejs8.10", "2020-03-06"),
    ("nodejs6.10", "2019-08-12"),
    ("nodejs4.3-edge", "2019-04-30"),
    ("nodejs4.3", "2020-03-06"),
    ("nodejs", "2016-10-31"),
];

/// The problem with any other runtime (a static text, as config rules use).
/// A test keeps it in step with `SUPPORTED` and `CHECKED`.
pub const UNSUPPORTED: &str = "is not supported: the handlers need a Node.js runtime that Lambda accepts: nodejs22.x or nodejs24.x (Lambda's runtimes as checked on 2026-11-22)";

pub fn is_supported(runtime: &str) -> bool {
    SUPPORTED.contains(&runtime)
}

/// Why a deprecated runtime is refused, with its replacement.
pub fn deprecation(runtime: &str) -> Option<String> {
    let (_, since) = DEPRECATED.iter().find(|(name, _)| *name == runtime)?;
    Some(format!(
        "is deprecated: Lambda deprecated it on {since}; use {REPLACEMENT} (Lambda's runtimes as checked on {CHECKED})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_lists_exactly_the_supported_runtimes_and_the_date() {
        let listed = SUPPORTED.join(" or ");
        assert!(
            UNSUPPORTED.contains(&format!("accepts: {listed} (")),
            "{UNSUPPORTED}"
        );
        assert!(UNSUPPORTED.contains(CHECKED), "{UNSUPPORTED}");
        assert!(is_supported(REPLACEMENT));
        assert!(is_supported(crate::config::DEFAULT_RUNTIME));
    }

    #[test]
    fn deprecated_runtimes_name_their_date_and_replacement() {
        for (runtime, since) in [("nodejs14.x", "2023-12-04"), ("nodejs20.x", "2026-04-30")] {
            let message = deprecation(runtime).unwrap();
            assert!(
                message.contains(since) && message.contains("use nodejs22.x"),
                "{message}"
            );
            assert!(!is_supported(runtime));
        }
        for runtime in SUPPORTED.iter().chain(&["nodejs999.x", "python3.12"]) {
            assert_eq!(deprecation(runtime), None, "{runtime}");
        }
        // No runtime is both.
        assert!(DEPRECATED.iter().all(|(name, _)| !is_supported(name)));
    }
}
