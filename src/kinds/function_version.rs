//! A function's published versions, as one resource: the newest must hold
//! what `$LATEST` should (code and configuration); when it does not, apply
//! publishes one. Machines pin these versions; retention deletes the old
//! ones no kept machine version pins. Uses the Lambda client, like
//! `lambda.rs`, and nothing else.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{bail, Result};
use async_trait::async_trait;
use aws_sdk_lambda::types::{FunctionConfiguration, State};
use serde_json::Value;

use crate::aws::retry::{poll, Readiness};
use crate::aws::{code, error, Aws};
use crate::desired::FunctionVersionSpec;
use crate::model::{Kind, Observed, ResourceId, Tags, OWNER_STACK_TAG, OWNER_STAGE_TAG};
use crate::plan::ResourcePlan;
use crate::resource::{spec, Attributes, Ctx, Inventory, Known, Resource};

pub const KIND: Kind = Kind("function-version");

/// How long a new version may take to become Active.
const SETTLE: Duration = Duration::from_secs(300);

/// The function's published versions (not `$LATEST`), oldest first.
pub async fn versions(aws: &Aws, function: &str) -> Result<Option<Vec<FunctionConfiguration>>> {
    let listed = aws
        .lambda
        .list_versions_by_function()
        .function_name(function)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>();
    let mut published: Vec<FunctionConfiguration> = match listed {
        Ok(all) => all.into_iter().filter(|c| number(c).is_some()).collect(),
        Err(e) if code(&e) == Some("ResourceNotFoundException") => return Ok(None),
        Err(e) => {
            return Err(error(
                &format!("function {function}"),
                "ListVersionsByFunction",
                e,
            ))
        }
    };
    published.sort_by_key(number);
    Ok(Some(published))
}

/// A published version's number; `None` for `$LATEST`.
pub fn number(c: &FunctionConfiguration) -> Option<u64> {
    c.version()?.parse().ok()
}

/// The fields of one published version (`None` once it is deleted).
pub async fn version_fields(aws: &Aws, function: &str, version: &str) -> Result<Option<Value>> {
    match aws
        .lambda
        .get_function_configuration()
        .function_name(function)
        .qualifier(version)
        .send()
        .await
    {
        Ok(c) => Ok(Some(super::lambda::fields(&configuration(c)))),
        Err(e) if code(&e) == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(error(
            &format!("function {function}:{version}"),
            "GetFunctionConfiguration",
            e,
        )),
    }
}

fn configuration(
    c: aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput,
) -> FunctionConfiguration {
    FunctionConfiguration::builder()
        .set_code_sha256(c.code_sha256)
        .set_runtime(c.runtime)
        .set_handler(c.handler)
        .set_role(c.role)
        .set_memory_size(c.memory_size)
        .set_timeout(c.timeout)
        .set_environment(c.environment)
        .set_architectures(c.architectures)
        .build()
}

/// Publishes `$LATEST` as a version, if its code is still `sha256`, and
/// waits until the version is Active. Lambda publishes nothing new when
/// `$LATEST` has not changed since the last version, so a retry after a
/// lost answer gets the same version back. Returns its qualified ARN.
pub async fn publish(aws: &Aws, spec: &FunctionVersionSpec) -> Result<String> {
    let name = &spec.function.name;
    let what = format!("function {name}");
    let out = aws
        .lambda
        .publish_version()
        .function_name(name)
        .code_sha256(&spec.function.package.sha256)
        .description(&spec.description)
        .send()
        .await
        .map_err(|e| error(&what, "PublishVersion", e))?;
    let (Some(arn), Some(version)) = (out.function_arn(), out.version()) else {
        bail!("{what}: PublishVersion answered without the version's ARN");
    };
    let qualified = format!("{name}:{version}");
    poll(&format!("function {qualified}"), SETTLE, || async {
        let c = aws
            .lambda
            .get_function_configuration()
            .function_name(name)
            .qualifier(version)
            .send()
            .await
            .map_err(|e| error(&what, "GetFunctionConfiguration", e))?;
        Ok(match c.state() {
            Some(State::Active) | None => Readiness::Ready,
            Some(State::Failed) => bail!(
                "function {qualified}: State Failed: {}",
                c.state_reason().unwrap_or("no reason given")
            ),
            Some(other) => Readiness::NotYet(format!("State {}", other.as_str())),
        })
    })
    .await?;
    Ok(arn.to_string())
}

/// Deletes one published version; gone already is fine.
pub async fn delete_version(aws: &Aws, function: &str, version: &str) -> Result<()> {
    match aws
        .lambda
        .delete_function()
        .function_name(function)
        .qualifier(version)
        .send()
        .await
    {
        Err(e) if code(&e) != Some("ResourceNotFoundException") => Err(error(
            &format!("function {function}:{version}"),
            "DeleteFunction",
            e,
        )),
        _ => Ok(()),
    }
}

/// Deletes the versions of `function` beyond the newest `keep`, but those
/// in `protected` (pinned by a machine version that is kept). Returns the
/// versions deleted.
pub async fn retain(
    aws: &Aws,
    function: &str,
    keep: u32,
    protected: &BTreeSet<String>,
) -> Result<Vec<String>> {
    let Some(all) = versions(aws, function).await? else {
        return Ok(Vec::new());
    };
    let old = all.len().saturating_sub(keep as usize);
    let mut deleted = Vec::new();
    for c in &all[..old] {
        let version = c.version().unwrap_or_default().to_string();
        if !protected.contains(&version) {
            delete_version(aws, function, &version).await?;
            deleted.push(version);
        }
    }
    Ok(deleted)
}

/// Only the owner tags: the function carries the rest, and a version has
/// no tags of its own (it is read with its function's).
pub fn owner_tags(stage: &Tags) -> Tags {
    stage
        .iter()
        .filter(|(k, _)| *k == OWNER_STACK_TAG || *k == OWNER_STAGE_TAG)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub struct FunctionVersion {
    /// The function's name.
    pub function: String,
    pub spec: Option<FunctionVersionSpec>,
    /// The function.
    pub needs: Vec<ResourceId>,
}

#[async_trait]
impl Resource for FunctionVersion {
    fn id(&self) -> ResourceId {
        ResourceId::new(KIND, &self.function)
    }

    fn needs(&self) -> Vec<ResourceId> {
        self.needs.clone()
    }

    /// Read with its function, whose tags it is judged by.
    fn read_after(&self) -> Option<ResourceId> {
        Some(ResourceId::new(super::lambda::KIND, &self.function))
    }

    fn goes_with(&self) -> Option<ResourceId> {
        Some(ResourceId::new(super::lambda::KIND, &self.function))
    }

    fn tags(&self, stage: &Tags) -> Tags {
        owner_tags(stage)
    }

    fn desired(&self) -> Option<Value> {
        self.spec.as_ref().map(FunctionVersionSpec::fields)
    }

    /// The newest published version, with its function's tags.
    async fn read(&self, ctx: &Ctx<'_>, function: Option<&Observed>) -> Result<Option<Observed>> {
        let Some(function) = function else {
            return Ok(None);
        };
        let Some(newest) = versions(ctx.aws, &self.function)
            .await?
            .and_then(|mut v| v.pop())
        else {
            return Ok(None);
        };
        Ok(Some(Observed {
            fields: super::lambda::fields(&newest),
            tags: function.tags.clone(),
            physical_id: newest.function_arn().unwrap_or_default().to_string(),
        }))
    }

    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        _: &ResourcePlan,
        _: Option<&Observed>,
        _: &Known,
    ) -> Result<Attributes> {
        let arn = publish(ctx.aws, spec(&self.spec, &self.id())?).await?;
        Ok(Attributes::new(arn.clone(), Some(arn)))
    }

    /// Every published version (before the function itself goes).
    async fn delete(&self, ctx: &Ctx<'_>, _: &Observed) -> Result<()> {
        for c in versions(ctx.aws, &self.function).await?.unwrap_or_default() {
            delete_version(ctx.aws, &self.function, c.version().unwrap_or_default()).await?;
        }
        Ok(())
    }
}

/// The versions of each of the stage's functions (the function's tags
/// decide).
pub struct FunctionVersionInventory;

#[async_trait]
impl Inventory for FunctionVersionInventory {
    async fn list(&self, ctx: &Ctx<'_>) -> Result<Vec<Box<dyn Resource>>> {
        let functions = super::lambda::FunctionInventory.list(ctx).await?;
        Ok(functions
            .into_iter()
            .map(|f| {
                let id = f.id();
                Box::new(FunctionVersion {
                    function: id.name.clone(),
                    spec: None,
                    needs: vec![id],
                }) as Box<dyn Resource>
            })
            .collect())
    }
}
