//! IAM roles: trust policy, at most one inline permissions policy, the
//! managed policies the spec names (none for the stage's roles; AWS's
//! CloudWatch policy for the account's shared role), stepgate's tags. The
//! only module that uses the IAM client.

use anyhow::Result;
use serde_json::{json, Value};

use crate::aws::{code, error, Aws};
use async_trait::async_trait;

use crate::desired::{RoleSpec, INLINE_POLICY};
use crate::model::{Kind, Observed, ResourceId, Tags, SHARED_TAG};
use crate::plan::{Action, ResourcePlan};
use crate::resource::{spec, Attributes, Ctx, Inventory, Known, Resource};

pub async fn read(aws: &Aws, name: &str) -> Result<Option<Observed>> {
    let what = format!("role {name}");
    let role = match aws.iam.get_role().role_name(name).send().await {
        Ok(out) => out.role,
        Err(e) if code(&e) == Some("NoSuchEntity") => return Ok(None),
        Err(e) => return Err(error(&what, "GetRole", e)),
    };
    let Some(role) = role else { return Ok(None) };
    let trust = policy_json(role.assume_role_policy_document().unwrap_or("{}"));
    let tags: Tags = role
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();

    let names = aws
        .iam
        .list_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| error(&what, "ListRolePolicies", e))?
        .policy_names;
    let mut inline = serde_json::Map::new();
    for policy in names {
        let doc = aws
            .iam
            .get_role_policy()
            .role_name(name)
            .policy_name(&policy)
            .send()
            .await
            .map_err(|e| error(&what, "GetRolePolicy", e))?;
        inline.insert(policy, policy_json(doc.policy_document()));
    }
    let managed: Vec<String> = aws
        .iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| error(&what, "ListAttachedRolePolicies", e))?
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect();
    Ok(Some(Observed {
        fields: json!({ "trust_policy": trust, "inline_policies": inline, "managed_policies": managed }),
        tags,
        physical_id: role.arn,
    }))
}

/// Whether role `name` exists: GetRole only.
pub async fn exists(aws: &Aws, name: &str) -> Result<bool> {
    match aws.iam.get_role().role_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e) if code(&e) == Some("NoSuchEntity") => Ok(false),
        Err(e) => Err(error(&format!("role {name}"), "GetRole", e)),
    }
}

pub async fn apply(
    aws: &Aws,
    spec: &RoleSpec,
    tags: &Tags,
    plan: &ResourcePlan,
    live: Option<&Observed>,
) -> Result<()> {
    let what = format!("role {}", spec.name);
    let create = plan.action == Action::Create;
    if create {
        let created = aws
            .iam
            .create_role()
            .role_name(&spec.name)
            .assume_role_policy_document(spec.trust.to_string())
            .description("Managed by stepgate")
            .set_tags(Some(iam_tags(tags)))
            .send()
            .await;
        match created {
            Ok(_) => {}
            // The SDK retried a create whose answer was lost: ours if tagged so.
            Err(e) if code(&e) == Some("EntityAlreadyExists") => {
                if !read(aws, &spec.name)
                    .await?
                    .is_some_and(|o| o.owned_as(tags))
                {
                    return Err(error(&what, "CreateRole", e));
                }
            }
            Err(e) => return Err(error(&what, "CreateRole", e)),
        }
    } else {
        if plan.changed("trust_policy") {
            aws.iam
                .update_assume_role_policy()
                .role_name(&spec.name)
                .policy_document(spec.trust.to_string())
                .send()
                .await
                .map_err(|e| error(&what, "UpdateAssumeRolePolicy", e))?;
        }
        if plan.changed("tags") {
            aws.iam
                .tag_role()
                .role_name(&spec.name)
                .set_tags(Some(iam_tags(tags)))
                .send()
                .await
                .map_err(|e| error(&what, "TagRole", e))?;
        }
    }
    if create || plan.changed("inline_policies") {
        if let Some(permissions) = &spec.permissions {
            aws.iam
                .put_role_policy()
                .role_name(&spec.name)
                .policy_name(INLINE_POLICY)
                .policy_document(permissions.to_string())
                .send()
                .await
                .map_err(|e| error(&what, "PutRolePolicy", e))?;
        }
        // Inline policies added out of band widen the role: remove them.
        for extra in inline_names(live)
            .into_iter()
            .filter(|n| spec.permissions.is_none() || n != INLINE_POLICY)
        {
            aws.iam
                .delete_role_policy()
                .role_name(&spec.name)
                .policy_name(&extra)
                .send()
                .await
                .map_err(|e| error(&what, "DeleteRolePolicy", e))?;
        }
    }
    if create || plan.changed("managed_policies") {
        let attached = managed_arns(live);
        for arn in spec.managed.iter().filter(|a| !attached.contains(a)) {
            // Attaching what is attached already succeeds: safe to repeat.
            aws.iam
                .attach_role_policy()
                .role_name(&spec.name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| error(&what, "AttachRolePolicy", e))?;
        }
        // Managed policies attached out of band widen the role: detach them.
        for arn in attached.iter().filter(|a| !spec.managed.contains(a)) {
            detach(aws, &spec.name, arn).await?;
        }
    }
    Ok(())
}

/// Deletes the role and everything attached to it (IAM refuses to delete a
/// role that still has policies). Gone already is fine.
pub async fn delete(aws: &Aws, name: &str, live: &Observed) -> Result<()> {
    let what = format!("role {name}");
    for arn in managed_arns(Some(live)) {
        detach(aws, name, &arn).await?;
    }
    for policy in inline_names(Some(live)) {
        match aws
            .iam
            .delete_role_policy()
            .role_name(name)
            .policy_name(&policy)
            .send()
            .await
        {
            Err(e) if code(&e) != Some("NoSuchEntity") => {
                return Err(error(&what, "DeleteRolePolicy", e))
            }
            _ => {}
        }
    }
    match aws.iam.delete_role().role_name(name).send().await {
        Err(e) if code(&e) != Some("NoSuchEntity") => Err(error(&what, "DeleteRole", e)),
        _ => Ok(()),
    }
}

async fn detach(aws: &Aws, role: &str, arn: &str) -> Result<()> {
    match aws
        .iam
        .detach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send()
        .await
    {
        Err(e) if code(&e) != Some("NoSuchEntity") => {
            Err(error(&format!("role {role}"), "DetachRolePolicy", e))
        }
        _ => Ok(()),
    }
}

fn inline_names(live: Option<&Observed>) -> Vec<String> {
    live.and_then(|l| l.fields["inline_policies"].as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn managed_arns(live: Option<&Observed>) -> Vec<String> {
    live.and_then(|l| l.fields["managed_policies"].as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn iam_tags(tags: &Tags) -> Vec<aws_sdk_iam::types::Tag> {
    tags.iter()
        .map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value set")
        })
        .collect()
}

/// IAM returns policy documents URL-encoded (RFC 3986); some emulators do
/// not. Either way the result is compared as JSON.
fn policy_json(text: &str) -> Value {
    serde_json::from_str(text)
        .or_else(|_| serde_json::from_str(&percent_decode(text)))
        .unwrap_or(Value::String(text.to_string()))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub const KIND: Kind = Kind("role");

/// An IAM role: one of the stage's (IAM is global, so its name carries the
/// region), or, with `shared`, the one role every stack in the account
/// shares. That one carries only the tag `stepgate:shared = {shared}`, is
/// known as stepgate's by it, and outlives every destroy.
pub struct Role {
    pub name: String,
    pub spec: Option<RoleSpec>,
    pub shared: Option<&'static str>,
}

#[async_trait]
impl Resource for Role {
    fn id(&self) -> ResourceId {
        ResourceId::new(KIND, &self.name)
    }

    fn tags(&self, stage: &Tags) -> Tags {
        match self.shared {
            Some(what) => Tags::from([(SHARED_TAG.to_string(), what.to_string())]),
            None => stage.clone(),
        }
    }

    fn kept_on_destroy(&self) -> Option<&'static str> {
        self.shared.map(|_| {
            "shared by every stepgate stack in the account, and the API Gateway CloudWatch role setting of any region may name it"
        })
    }

    fn desired(&self) -> Option<Value> {
        self.spec.as_ref().map(RoleSpec::fields)
    }

    async fn read(&self, ctx: &Ctx<'_>, _: Option<&Observed>) -> Result<Option<Observed>> {
        read(ctx.aws, &self.name).await
    }

    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        plan: &ResourcePlan,
        live: Option<&Observed>,
        _: &Known,
    ) -> Result<Attributes> {
        let tags = self.tags(ctx.tags);
        apply(ctx.aws, spec(&self.spec, &self.id())?, &tags, plan, live).await?;
        let arn = format!(
            "arn:{}:iam::{}:role/{}",
            ctx.names.partition, ctx.names.account, self.name
        );
        Ok(Attributes::new(&self.name, Some(arn)))
    }

    async fn delete(&self, ctx: &Ctx<'_>, live: &Observed) -> Result<()> {
        // The engine keeps a shared role (kept_on_destroy); so does this.
        if self.shared.is_some() {
            return Ok(());
        }
        delete(ctx.aws, &self.name, live).await
    }
}

/// A search prefix that survives `fit`'s shortening of long names.
pub fn search_prefix(prefix: &str) -> &str {
    &prefix[..prefix.len().min(55)]
}

/// The stage's roles: every role named with its prefix (its tags decide).
pub struct RoleInventory;

#[async_trait]
impl Inventory for RoleInventory {
    async fn list(&self, ctx: &Ctx<'_>) -> Result<Vec<Box<dyn Resource>>> {
        let prefix = ctx.names.role_prefix();
        let roles = ctx
            .aws
            .iam
            .list_roles()
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| error("the stage's roles", "ListRoles", e))?;
        Ok(roles
            .into_iter()
            .filter(|r| r.role_name().starts_with(search_prefix(&prefix)))
            .map(|r| {
                Box::new(Role {
                    name: r.role_name().to_string(),
                    spec: None,
                    shared: None,
                }) as Box<dyn Resource>
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoded_policy_documents_decode_to_json() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(
            policy_json(encoded),
            json!({"Version": "2012-10-17", "Statement": []})
        );
        assert_eq!(policy_json(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(percent_decode("100%"), "100%");
    }
}
