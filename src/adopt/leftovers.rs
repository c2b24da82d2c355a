//! What taking a resource leaves behind, said, never deleted: the role a
//! function moves off, the managed policies a role loses, the deployment
//! a stage stops serving. Pure: read from the plan's changes.

use serde_json::Value;

use crate::kinds::{apigateway, iam, lambda};
use crate::plan::{Action, ResourcePlan};

/// Adds a note to each resource being adopted that leaves something of
/// the console's behind. The notes show in plan and deploy (text and
/// JSON); nothing is deleted because of them.
pub fn annotate(resources: &mut [ResourcePlan]) {
    for r in resources.iter_mut().filter(|r| r.action == Action::Adopt) {
        let mut notes: Vec<String> = r.note.take().into_iter().collect();
        for change in &r.changes {
            match (r.resource.kind, change.field.as_str()) {
                (k, "role") if k == lambda::KIND => {
                    if let Some(old) = change.live.as_str() {
                        let name = old.rsplit('/').next().unwrap_or(old);
                        notes.push(format!("moves off role {name}, which stepgate leaves as it is: delete it by hand once nothing uses it"));
                    }
                }
                (k, "managed_policies") if k == iam::KIND => {
                    let kept = strings(&change.desired);
                    let detached: Vec<String> = strings(&change.live)
                        .into_iter()
                        .filter(|p| !kept.contains(p))
                        .collect();
                    if !detached.is_empty() {
                        notes.push(format!(
                            "loses the managed policies {} (detached; the policies stay in the account)",
                            detached.join(", ")
                        ));
                    }
                }
                (k, "deployment") if k == apigateway::STAGE_KIND => {
                    if let Some(old) = change
                        .live
                        .as_str()
                        .and_then(|d| d.strip_prefix("deployment "))
                    {
                        notes.push(format!("stops serving deployment {old}, which stays in the API (API Gateway keeps old deployments; stepgate deletes none)"));
                    }
                }
                _ => {}
            }
        }
        r.note = (!notes.is_empty()).then(|| notes.join("; "));
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ResourceId;
    use crate::plan::FieldChange;
    use serde_json::json;

    fn planned(
        kind: crate::model::Kind,
        name: &str,
        field: &str,
        live: Value,
        desired: Value,
    ) -> ResourcePlan {
        ResourcePlan {
            resource: ResourceId::new(kind, name),
            action: Action::Adopt,
            changes: vec![FieldChange {
                field: field.into(),
                live,
                desired,
            }],
            note: None,
        }
    }

    #[test]
    fn what_the_console_leaves_is_said_once_per_resource() {
        let mut plans = vec![
            planned(
                lambda::KIND,
                "completeOrder",
                "role",
                json!("arn:aws:iam::0:role/service-role/completeOrder-role-abc"),
                json!("arn:aws:iam::0:role/orders-dev-us-east-1-lambda"),
            ),
            planned(
                iam::KIND,
                "Custom-AWSStepFunctionServiceRole",
                "managed_policies",
                json!(["arn:aws:iam::aws:policy/CloudWatchFullAccess"]),
                json!([]),
            ),
            planned(
                apigateway::STAGE_KIND,
                "dev",
                "deployment",
                json!("deployment tu476ndf7i"),
                json!("stepgate api-config d36ee9c08a5b7f99"),
            ),
            planned(
                apigateway::STAGE_KIND,
                "prod",
                "deployment",
                json!("stepgate api-config 1"),
                json!("stepgate api-config 2"),
            ),
        ];
        annotate(&mut plans);
        assert_eq!(
            plans[0].note.as_deref(),
            Some("moves off role completeOrder-role-abc, which stepgate leaves as it is: delete it by hand once nothing uses it")
        );
        assert_eq!(
            plans[1].note.as_deref(),
            Some("loses the managed policies arn:aws:iam::aws:policy/CloudWatchFullAccess (detached; the policies stay in the account)")
        );
        assert!(plans[2]
            .note
            .as_deref()
            .unwrap()
            .starts_with("stops serving deployment tu476ndf7i"));
        // A deployment of stepgate's own is replaced as always: no note.
        assert_eq!(plans[3].note, None);
    }
}
