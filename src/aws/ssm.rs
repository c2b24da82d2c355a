//! SSM Parameter Store, as the stage's lock: a parameter created without
//! overwrite exists at most once, so creating it is an atomic "take the
//! lock". The only module that uses the SSM client.

use anyhow::Result;
use aws_sdk_ssm::types::{ParameterType, Tag};

use super::{code, error, Aws};
use crate::model::Tags;

/// Creates the parameter unless it exists. `Ok(false)`: it already existed,
/// possibly because this very call's first attempt created it and its
/// answer was lost; the caller reads it back to tell.
pub async fn create(aws: &Aws, name: &str, value: &str, tags: &Tags) -> Result<bool> {
    let tags = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()?;
    match aws
        .ssm
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::String)
        .description("stepgate lock: who is deploying or destroying this stage")
        .overwrite(false)
        .set_tags(Some(tags))
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if code(&e) == Some("ParameterAlreadyExists") => Ok(false),
        Err(e) => Err(error(&format!("lock {name}"), "PutParameter", e)),
    }
}

/// The parameter's value, if it exists.
pub async fn read(aws: &Aws, name: &str) -> Result<Option<String>> {
    match aws.ssm.get_parameter().name(name).send().await {
        Ok(out) => Ok(out.parameter.and_then(|p| p.value)),
        Err(e) if code(&e) == Some("ParameterNotFound") => Ok(None),
        Err(e) => Err(error(&format!("lock {name}"), "GetParameter", e)),
    }
}

/// Replaces the value of a parameter this run holds (to extend its lease).
pub async fn overwrite(aws: &Aws, name: &str, value: &str) -> Result<()> {
    aws.ssm
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .map_err(|e| error(&format!("lock {name}"), "PutParameter", e))?;
    Ok(())
}

/// Deletes the parameter; gone already is fine.
pub async fn delete(aws: &Aws, name: &str) -> Result<()> {
    match aws.ssm.delete_parameter().name(name).send().await {
        Err(e) if code(&e) != Some("ParameterNotFound") => {
            Err(error(&format!("lock {name}"), "DeleteParameter", e))
        }
        _ => Ok(()),
    }
}
