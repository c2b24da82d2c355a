//! The kinds of resource stepgate manages, one module per AWS service (API
//! Gateway one file per object): each kind's desired state turned into
//! that service's calls, its `Resource` and `Inventory` implementations,
//! and the only users of its SDK client. `aws/` is the plumbing they share
//! (clients, errors, retries, call recording), and knows no kind.

pub mod alarm;
pub mod apigateway;
pub mod bake;
pub mod function_version;
pub mod iam;
pub mod lambda;
pub mod logs;
pub mod machine_alias;
pub mod machine_version;
pub mod sfn;
