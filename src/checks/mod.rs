//! Rules for what a project holds, each checked without AWS: policies,
//! JSON Schema models, runtimes, tags, and the handlers with `node`. Pure
//! (they know no settings and no project): commands/local_checks.rs runs
//! them before the first AWS call. docs/errors.md lists every check with
//! its message; each error is one line naming the file, flag or key and
//! the fix.

pub mod handlers;
pub mod policy;
pub mod runtime;
pub mod schema;
pub mod tags;
