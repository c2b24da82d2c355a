//! The vocabulary every layer shares: what a resource is called, what was
//! read of it, and who owns it. Pure: no AWS, no desired state here.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

pub type Tags = BTreeMap<String, String>;

/// Ownership tags: destroy deletes only what carries both, with these values.
pub const OWNER_STACK_TAG: &str = "stepgate:stack";
pub const OWNER_STAGE_TAG: &str = "stepgate:stage";
/// What one resource shared by every stack in the account is for (the API
/// Gateway CloudWatch role): no stack owns it, so no destroy deletes it.
pub const SHARED_TAG: &str = "stepgate:shared";

/// Whose a live resource is, as the resource itself judges it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// stepgate's: compared field by field and changed to match.
    Ours,
    /// Someone else's: deploy refuses it (a conflict), destroy leaves it.
    Foreign,
    /// Someone else's, and used as it is: nothing to change, and plan and
    /// deploy say so with this note.
    UsedAsIs(String),
}

/// A kind of resource ("role", "function", ...). Each kind's module
/// declares its own constant, so adding a kind touches no list of kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Kind(pub &'static str);

impl Kind {
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// A resource by kind and deterministic name: how stepgate finds its own
/// resources again without a state file. Shown as `kind name`
/// (`log-group /aws/lambda/orders-dev-completeOrder`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ResourceId {
    pub kind: Kind,
    pub name: String,
}

impl ResourceId {
    pub fn new(kind: Kind, name: &str) -> ResourceId {
        ResourceId {
            kind,
            name: name.to_string(),
        }
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.name)
    }
}

/// A resource as read from AWS, reduced to the fields stepgate manages, in
/// the same shape as the desired fields so that the two compare directly.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub fields: Value,
    pub tags: Tags,
    /// The id AWS knows it by where that is not its name (REST API ids).
    pub physical_id: String,
}

impl Observed {
    pub fn owned_by(&self, stack: &str, stage: &str) -> bool {
        self.tags.get(OWNER_STACK_TAG).map(String::as_str) == Some(stack)
            && self.tags.get(OWNER_STAGE_TAG).map(String::as_str) == Some(stage)
    }

    /// Whether it carries the ownership tags among `desired` (a resource's
    /// full desired tags: the stage's owner tags, or the shared tag): how a
    /// create answered "already exists" tells a lost answer to its own
    /// earlier attempt from someone else's resource.
    pub fn owned_as(&self, desired: &Tags) -> bool {
        match (
            desired.get(OWNER_STACK_TAG),
            desired.get(OWNER_STAGE_TAG),
            desired.get(SHARED_TAG),
        ) {
            (Some(stack), Some(stage), _) => self.owned_by(stack, stage),
            (None, None, Some(shared)) => self.tags.get(SHARED_TAG) == Some(shared),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(tags: &[(&str, &str)]) -> Observed {
        Observed {
            fields: Value::Null,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            physical_id: String::new(),
        }
    }

    #[test]
    fn owned_as_the_stage_or_as_the_shared_resource_it_is() {
        let stage = Tags::from([
            (OWNER_STACK_TAG.into(), "orders".into()),
            (OWNER_STAGE_TAG.into(), "dev".into()),
            ("team".into(), "x".into()),
        ]);
        let shared = Tags::from([(SHARED_TAG.into(), "apigateway-cloudwatch".into())]);
        let ours = observed(&[(OWNER_STACK_TAG, "orders"), (OWNER_STAGE_TAG, "dev")]);
        let other_stage = observed(&[(OWNER_STACK_TAG, "orders"), (OWNER_STAGE_TAG, "qa")]);
        let shared_role = observed(&[(SHARED_TAG, "apigateway-cloudwatch")]);
        let untagged = observed(&[]);
        assert!(ours.owned_as(&stage));
        assert!(!other_stage.owned_as(&stage));
        assert!(shared_role.owned_as(&shared));
        assert!(!untagged.owned_as(&shared));
        assert!(!observed(&[(SHARED_TAG, "other")]).owned_as(&shared));
        // A stage's resource is never taken for the shared one, nor back.
        assert!(!ours.owned_as(&shared));
        assert!(!shared_role.owned_as(&stage));
        assert!(!untagged.owned_as(&Tags::new()));
    }
}
