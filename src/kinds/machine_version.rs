//! A state machine's published versions, as one resource: the newest must
//! hold what the machine should (definition, role, pinned function
//! versions); when it does not, apply publishes the machine's current
//! revision. Uses the Step Functions client, like `sfn.rs`.

use std::collections::BTreeMap;

use anyhow::Result;
use async_trait::async_trait;
use serde_json::Value;

use super::function_version::owner_tags;
use super::sfn::{live_snapshot, parse_definition};
use crate::aws::{code, error, Aws};
use crate::desired::MachineVersionSpec;
use crate::model::{Kind, Observed, ResourceId, Tags};
use crate::plan::ResourcePlan;
use crate::resource::{spec, Attributes, Ctx, Inventory, Known, Resource};

pub const KIND: Kind = Kind("state-machine-version");

/// One published version, as `history` and retention see it.
#[derive(Clone, Debug)]
pub struct Version {
    pub arn: String,
    pub number: u64,
    /// Seconds since the epoch.
    pub created: f64,
}

/// The machine's versions, newest first; `None` if the machine is gone.
pub async fn versions(aws: &Aws, machine_arn: &str) -> Result<Option<Vec<Version>>> {
    let mut items = Vec::new();
    let mut token = None;
    loop {
        let page = match aws
            .sfn
            .list_state_machine_versions()
            .state_machine_arn(machine_arn)
            .set_next_token(token)
            .send()
            .await
        {
            Ok(page) => page,
            Err(e) if matches!(code(&e), Some("StateMachineDoesNotExist" | "InvalidArn")) => {
                return Ok(None)
            }
            Err(e) => {
                return Err(error(
                    &format!("state-machine {machine_arn}"),
                    "ListStateMachineVersions",
                    e,
                ))
            }
        };
        items.extend(page.state_machine_versions().iter().cloned());
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut versions: Vec<Version> = items
        .iter()
        .map(|v| Version {
            arn: v.state_machine_version_arn().to_string(),
            number: version_number(v.state_machine_version_arn()),
            created: v.creation_date().as_secs_f64(),
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.number));
    Ok(Some(versions))
}

/// `...:stateMachine:NAME:7` -> 7.
pub fn version_number(arn: &str) -> u64 {
    arn.rsplit(':')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// What one version holds (`StateMachineSpec::snapshot`'s shape) and its
/// description; `None` once it is deleted.
pub async fn describe(
    aws: &Aws,
    version_arn: &str,
    pinned: &BTreeMap<String, String>,
) -> Result<Option<(Value, Option<String>)>> {
    let out = match aws
        .sfn
        .describe_state_machine()
        .state_machine_arn(version_arn)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if code(&e) == Some("StateMachineDoesNotExist") => return Ok(None),
        Err(e) => {
            return Err(error(
                &format!("state-machine-version {version_arn}"),
                "DescribeStateMachine",
                e,
            ))
        }
    };
    let snapshot = live_snapshot(
        aws,
        pinned,
        &parse_definition(out.definition()),
        out.role_arn(),
    )
    .await?;
    Ok(Some((snapshot, out.description().map(str::to_string))))
}

/// The description a version was published with.
pub async fn description(aws: &Aws, version_arn: &str) -> Result<Option<String>> {
    let out = aws
        .sfn
        .describe_state_machine()
        .state_machine_arn(version_arn)
        .send()
        .await
        .map_err(|e| {
            error(
                &format!("state-machine-version {version_arn}"),
                "DescribeStateMachine",
                e,
            )
        })?;
    Ok(out.description().map(str::to_string))
}

/// Publishes the machine's current revision. Step Functions publishes a
/// revision once: a retry after a lost answer gets the same version back.
pub async fn publish(aws: &Aws, machine_arn: &str, description: &str) -> Result<String> {
    let out = aws
        .sfn
        .publish_state_machine_version()
        .state_machine_arn(machine_arn)
        .description(description)
        .send()
        .await
        .map_err(|e| {
            error(
                &format!("state-machine {machine_arn}"),
                "PublishStateMachineVersion",
                e,
            )
        })?;
    Ok(out.state_machine_version_arn().to_string())
}

/// Deletes one version; gone already is fine.
pub async fn delete_version(aws: &Aws, version_arn: &str) -> Result<()> {
    match aws
        .sfn
        .delete_state_machine_version()
        .state_machine_version_arn(version_arn)
        .send()
        .await
    {
        Err(e) if code(&e) != Some("StateMachineDoesNotExist") => Err(error(
            &format!("state-machine-version {version_arn}"),
            "DeleteStateMachineVersion",
            e,
        )),
        _ => Ok(()),
    }
}

pub struct MachineVersion {
    /// The machine's name.
    pub machine: String,
    pub machine_arn: String,
    pub spec: Option<MachineVersionSpec>,
    /// The machine.
    pub needs: Vec<ResourceId>,
}

#[async_trait]
impl Resource for MachineVersion {
    fn id(&self) -> ResourceId {
        ResourceId::new(KIND, &self.machine)
    }

    fn needs(&self) -> Vec<ResourceId> {
        self.needs.clone()
    }

    /// Read with its machine, whose tags it is judged by.
    fn read_after(&self) -> Option<ResourceId> {
        Some(ResourceId::new(super::sfn::KIND, &self.machine))
    }

    fn goes_with(&self) -> Option<ResourceId> {
        Some(ResourceId::new(super::sfn::KIND, &self.machine))
    }

    fn tags(&self, stage: &Tags) -> Tags {
        owner_tags(stage)
    }

    fn desired(&self) -> Option<Value> {
        self.spec.as_ref().map(MachineVersionSpec::fields)
    }

    /// The newest version, with its machine's tags.
    async fn read(&self, ctx: &Ctx<'_>, machine: Option<&Observed>) -> Result<Option<Observed>> {
        let Some(machine) = machine else {
            return Ok(None);
        };
        let Some(newest) = versions(ctx.aws, &self.machine_arn)
            .await?
            .and_then(|v| v.into_iter().next())
        else {
            return Ok(None);
        };
        let pinned = self
            .spec
            .as_ref()
            .map(|s| s.machine.pinned.clone())
            .unwrap_or_default();
        let Some((snapshot, _)) = describe(ctx.aws, &newest.arn, &pinned).await? else {
            return Ok(None);
        };
        Ok(Some(Observed {
            fields: snapshot,
            tags: machine.tags.clone(),
            physical_id: newest.arn,
        }))
    }

    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        _: &ResourcePlan,
        _: Option<&Observed>,
        _: &Known,
    ) -> Result<Attributes> {
        let spec = spec(&self.spec, &self.id())?;
        let arn = publish(ctx.aws, &self.machine_arn, &spec.description).await?;
        Ok(Attributes::new(arn.clone(), Some(arn)))
    }

    /// Every version (its alias has gone first).
    async fn delete(&self, ctx: &Ctx<'_>, _: &Observed) -> Result<()> {
        for v in versions(ctx.aws, &self.machine_arn)
            .await?
            .unwrap_or_default()
        {
            delete_version(ctx.aws, &v.arn).await?;
        }
        Ok(())
    }
}

/// The versions of each of the stage's machines (the machine's tags
/// decide).
pub struct MachineVersionInventory;

#[async_trait]
impl Inventory for MachineVersionInventory {
    async fn list(&self, ctx: &Ctx<'_>) -> Result<Vec<Box<dyn Resource>>> {
        Ok(super::sfn::machines(ctx)
            .await?
            .into_iter()
            .map(|(name, arn)| {
                Box::new(MachineVersion {
                    needs: vec![ResourceId::new(super::sfn::KIND, &name)],
                    machine: name,
                    machine_arn: arn,
                    spec: None,
                }) as Box<dyn Resource>
            })
            .collect())
    }
}
