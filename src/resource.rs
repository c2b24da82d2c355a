//! What the engine knows of a resource: this trait, and nothing else. Each
//! kind implements it in the module of the AWS service it lives in
//! (`aws::iam::Role`, `aws::lambda::Function`, ...), translating its desired
//! state (`desired::*`) into that service's calls; `stack::resources` lists
//! the stack's resources. Adding a kind is its implementation plus one line
//! in that list: the engine has no per-kind code.

use std::collections::BTreeMap;

use anyhow::Result;
use async_trait::async_trait;
use serde_json::Value;

use crate::aws::Aws;
use crate::model::{Claim, Observed, ResourceId, Tags};
use crate::names::Names;
use crate::plan::ResourcePlan;

/// What every resource may use while it is read, applied or deleted.
pub struct Ctx<'a> {
    pub aws: &'a Aws,
    pub names: &'a Names,
    /// The tags every resource carries: the owner tags and the settings'.
    pub tags: &'a Tags,
}

/// What AWS knows a resource by once it is applied (or was observed), for
/// the resources that need it: how a stage learns its API's id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    /// The identifier AWS's calls take: a REST API's id, a state machine's
    /// ARN, a function's, role's or log group's name.
    pub id: String,
    /// Its ARN, where it has one.
    pub arn: Option<String>,
}

impl Attributes {
    pub fn new(id: impl Into<String>, arn: Option<String>) -> Attributes {
        Attributes { id: id.into(), arn }
    }

    /// From what was read: the id AWS knows it by, an ARN when it is one.
    pub fn observed(physical_id: &str) -> Attributes {
        let arn = physical_id
            .starts_with("arn:")
            .then(|| physical_id.to_string());
        Attributes::new(physical_id, arn)
    }
}

/// The attributes of the resources applied or observed so far.
pub type Known = BTreeMap<ResourceId, Attributes>;

#[async_trait]
pub trait Resource: Send + Sync {
    fn id(&self) -> ResourceId;

    /// What must exist before this is created, and outlive it on destroy.
    fn needs(&self) -> Vec<ResourceId> {
        Vec::new()
    }

    /// A resource whose live state `read` needs (the stage: its API), read
    /// first; everything else is read concurrently.
    fn read_after(&self) -> Option<ResourceId> {
        None
    }

    /// The tags it carries, given the stage's: those by default. What the
    /// account shares between stacks carries its own (or none at all).
    fn tags(&self, stage: &Tags) -> Tags {
        stage.clone()
    }

    /// Whose the live resource is. By default stepgate's when it carries the
    /// ownership tags among `tags` (`Observed::owned_as`), else someone
    /// else's.
    fn claim(&self, live: &Observed, tags: &Tags) -> Claim {
        if live.owned_as(tags) {
            Claim::Ours
        } else {
            Claim::Foreign
        }
    }

    /// Why destroy keeps it though it is stepgate's, if it does: what the
    /// account shares between stacks outlives each of them.
    fn kept_on_destroy(&self) -> Option<&'static str> {
        None
    }

    /// The resource AWS deletes this one with (a state machine's versions
    /// and aliases, a stage's API): replacing that one recreates this one.
    fn goes_with(&self) -> Option<ResourceId> {
        None
    }

    /// The managed fields AWS cannot change in place: a change to one plans
    /// a replace (delete, then create), as Terraform's `ForceNew` does.
    fn replaced_on(&self) -> &'static [&'static str] {
        &[]
    }

    /// The managed fields as they should be, in the shape `read` reports
    /// them. `None` when the stack was listed without its sources (destroy
    /// needs none).
    fn desired(&self) -> Option<Value>;

    /// The live state, or `None` if it does not exist. `before` is the live
    /// state of `read_after()`. Makes no mutating call.
    async fn read(&self, ctx: &Ctx<'_>, before: Option<&Observed>) -> Result<Option<Observed>>;

    /// Creates or updates it as `plan` says; returns what AWS knows it by.
    /// `known` holds the attributes of what it needs.
    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        plan: &ResourcePlan,
        live: Option<&Observed>,
        known: &Known,
    ) -> Result<Attributes>;

    /// Deletes it (and whatever AWS requires to go first); gone is fine.
    async fn delete(&self, ctx: &Ctx<'_>, live: &Observed) -> Result<()>;
}

/// How a kind finds what a stage owns without its sources: each candidate
/// (by name prefix, or by tags where names are AWS's) as a resource listed
/// without desired state, for the engine to read, judge by its tags, and
/// delete. How `destroy` needs no checkout, and how `deploy` prunes what
/// the project no longer declares.
#[async_trait]
pub trait Inventory: Send + Sync {
    async fn list(&self, ctx: &Ctx<'_>) -> Result<Vec<Box<dyn Resource>>>;
}

/// The desired state a resource was listed with, for apply: a stack listed
/// without its sources (for destroy) has none to apply.
pub fn spec<'a, T>(spec: &'a Option<T>, id: &ResourceId) -> Result<&'a T> {
    spec.as_ref()
        .ok_or_else(|| anyhow::anyhow!("{id}: no desired state to apply (listed without sources)"))
}
