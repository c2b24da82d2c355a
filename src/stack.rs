//! The stack stepgate manages, as one list: every resource with what it
//! needs. Deploy, plan and destroy all start here; the engine knows nothing
//! else of the stack's shape. Adding a resource kind is its implementation
//! of `Resource` plus one entry in `resources` below.

use std::collections::BTreeMap;

use crate::aws::{apigateway, iam, lambda, logs, sfn, Aws};
use crate::config::Settings;
use crate::desired::Inputs;
use crate::model::{ResourceId, Tags};
use crate::names::{Names, RoleFor, CLOUDWATCH_ROLE, FUNCTIONS};
use crate::resource::{Ctx, Resource};
use crate::sources::Sources;

pub struct Stack {
    pub names: Names,
    /// The tags every resource carries.
    pub tags: Tags,
    pub resources: Vec<Box<dyn Resource>>,
}

impl Stack {
    /// For deploy and plan: every resource with its desired state.
    pub fn desired(settings: &Settings, sources: &Sources, names: Names) -> Stack {
        let inputs = Inputs {
            settings,
            sources,
            names: &names,
        };
        Stack {
            tags: inputs.tags(),
            resources: resources(&names, Some(&inputs)),
            names,
        }
    }

    /// For destroy: what to look for and delete. Needs no sources, so a
    /// stage can be destroyed from any checkout.
    pub fn existing(names: Names) -> Stack {
        Stack {
            tags: names.owner_tags(),
            resources: resources(&names, None),
            names,
        }
    }

    pub fn ctx<'a>(&'a self, aws: &'a Aws) -> Ctx<'a> {
        Ctx {
            aws,
            names: &self.names,
            tags: &self.tags,
        }
    }

    /// Each resource with what it needs.
    pub fn graph(&self) -> BTreeMap<ResourceId, Vec<ResourceId>> {
        self.resources.iter().map(|r| (r.id(), r.needs())).collect()
    }

    /// The resources in the order plans list them: kind by kind as the list
    /// below introduces them, by name within a kind. Stable, and a valid
    /// dependency order, since the list introduces a kind after what it needs.
    pub fn ordered(&self) -> Vec<&dyn Resource> {
        let rank = |kind| {
            self.resources
                .iter()
                .position(|r| r.id().kind == kind)
                .unwrap_or(usize::MAX)
        };
        let mut ordered: Vec<&dyn Resource> = self.resources.iter().map(|r| r.as_ref()).collect();
        ordered.sort_by_key(|r| {
            let id = r.id();
            (rank(id.kind), id.name)
        });
        ordered
    }
}

/// Every resource of the stack, in dependency order; each with its desired
/// state when `inputs` are given.
fn resources(names: &Names, inputs: Option<&Inputs>) -> Vec<Box<dyn Resource>> {
    let role = |p| ResourceId::new(iam::KIND, &names.role(p));
    let log_group = |name: &str| ResourceId::new(logs::KIND, name);
    let function = |key| ResourceId::new(lambda::KIND, &names.function(key));
    let api = ResourceId::new(apigateway::API_KIND, &names.api());
    let sm_log_group = names.state_machine_log_group();
    let access_log_group = names.api_access_log_group();
    let account = ResourceId::new(apigateway::ACCOUNT_KIND, &names.region);

    let mut list: Vec<Box<dyn Resource>> = Vec::new();
    for purpose in RoleFor::ALL {
        list.push(Box::new(iam::Role {
            name: names.role(purpose),
            spec: inputs.map(|i| i.role(purpose)),
            shared: None,
        }));
    }
    // API Gateway's CloudWatch role: one for the whole account, kept on
    // destroy, so that no stack's destroy breaks another API's logging.
    list.push(Box::new(iam::Role {
        name: CLOUDWATCH_ROLE.to_string(),
        spec: inputs.map(Inputs::cloudwatch_role),
        shared: Some("apigateway-cloudwatch"),
    }));
    for group in FUNCTIONS
        .iter()
        .map(|key| names.function_log_group(key))
        .chain([sm_log_group.clone(), access_log_group.clone()])
    {
        list.push(Box::new(logs::LogGroup {
            spec: inputs.map(|i| i.log_group(&group)),
            name: group,
        }));
    }
    // The region's setting that names it: set when empty, kept on destroy.
    list.push(Box::new(apigateway::Account {
        region: names.region.clone(),
        spec: inputs.map(Inputs::apigateway_account),
        cloudwatch_role_arn: names.cloudwatch_role_arn(),
        needs: vec![ResourceId::new(iam::KIND, CLOUDWATCH_ROLE)],
    }));
    for key in FUNCTIONS {
        list.push(Box::new(lambda::Function {
            name: names.function(key),
            spec: inputs.map(|i| i.function(key)),
            needs: vec![
                role(RoleFor::Lambda),
                log_group(&names.function_log_group(key)),
            ],
        }));
    }
    list.push(Box::new(sfn::StateMachine {
        name: names.state_machine(),
        arn: names.state_machine_arn(),
        spec: inputs.map(Inputs::state_machine),
        needs: [role(RoleFor::States), log_group(&sm_log_group)]
            .into_iter()
            .chain(FUNCTIONS.map(function))
            .collect(),
    }));
    list.push(Box::new(apigateway::RestApi {
        name: names.api(),
        spec: inputs.map(Inputs::api),
        needs: vec![role(RoleFor::ApiGateway)],
    }));
    // Before the stage turns logging on, so that AWS does not create it
    // untagged and without expiry.
    list.push(Box::new(logs::ExecutionLogGroup {
        stage: names.stage.clone(),
        api: api.clone(),
        spec: inputs.map(|i| i.log_group("")),
    }));
    list.push(Box::new(apigateway::Stage {
        name: names.stage.clone(),
        spec: inputs.map(Inputs::stage),
        api,
        needs: vec![
            log_group(&access_log_group),
            account,
            ResourceId::new(logs::EXECUTION_KIND, &names.stage),
        ],
    }));
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_list_roles_then_log_groups_account_functions_machine_api_and_stage_with_its_logs() {
        let stack = Stack::existing(Names::new("orders", "dev", "us-east-1", "0"));
        let kinds: Vec<&str> = stack.ordered().iter().map(|r| r.id().kind.0).collect();
        assert_eq!(
            kinds,
            [
                "role",
                "role",
                "role",
                "role",
                "log-group",
                "log-group",
                "log-group",
                "log-group",
                "apigateway-account",
                "function",
                "function",
                "state-machine",
                "rest-api",
                "execution-log-group",
                "stage"
            ]
        );
    }

    #[test]
    fn the_api_waits_only_for_its_role_so_it_is_built_beside_the_functions() {
        let stack = Stack::existing(Names::new("orders", "dev", "us-east-1", "0"));
        let kinds: Vec<Vec<&str>> = crate::plan::waves(&stack.graph())
            .iter()
            .map(|w| w.iter().map(|r| r.kind.0).collect())
            .collect();
        assert_eq!(
            kinds[1],
            ["apigateway-account", "function", "function", "rest-api"]
        );
        // The stage's execution log group needs the API's id; the stage
        // turns logging on only once that group exists.
        assert_eq!(kinds[2], ["execution-log-group", "state-machine"]);
        assert_eq!(kinds[3], ["stage"]);
    }

    #[test]
    fn the_stage_logs_only_once_its_group_and_the_accounts_role_setting_are_there() {
        let names = Names::new("orders", "dev", "us-east-1", "0");
        let graph = Stack::existing(names.clone()).graph();
        let stage = &graph[&ResourceId::new(apigateway::STAGE_KIND, "dev")];
        assert!(stage.contains(&ResourceId::new(
            logs::KIND,
            "/aws/apigateway/orders-dev-access"
        )));
        assert!(stage.contains(&ResourceId::new(apigateway::ACCOUNT_KIND, "us-east-1")));
        assert_eq!(
            graph[&ResourceId::new(apigateway::ACCOUNT_KIND, "us-east-1")],
            [ResourceId::new(iam::KIND, CLOUDWATCH_ROLE)]
        );
    }

    #[test]
    fn destroy_keeps_what_the_account_shares_and_only_that() {
        let stack = Stack::existing(Names::new("orders", "dev", "us-east-1", "0"));
        let kept: Vec<String> = stack
            .resources
            .iter()
            .filter(|r| r.kept_on_destroy().is_some())
            .map(|r| r.id().to_string())
            .collect();
        assert_eq!(
            kept,
            [
                "role stepgate-apigateway-cloudwatch",
                "apigateway-account us-east-1"
            ]
        );
    }
}
