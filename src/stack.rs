//! The stack as resources: the declared project compiled into one list of
//! `dyn Resource`, each with what it needs; and, for destroy and pruning,
//! what each kind finds the stage owns. Deploy, plan and destroy all start
//! here; the engine knows nothing else of the stack's shape. This is the
//! only place that maps declarations (`project`) to kinds.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use crate::aws::{apigateway, iam, lambda, logs, sfn, Aws};
use crate::desired::Inputs;
use crate::model::{ResourceId, Tags};
use crate::names::{Names, CLOUDWATCH_ROLE};
use crate::project::API_ROLE;
use crate::resource::{Ctx, Inventory, Resource};

pub struct Stack {
    pub names: Names,
    /// The tags every resource carries.
    pub tags: Tags,
    /// What the project declares (for destroy: everything found).
    pub resources: Vec<Box<dyn Resource>>,
    /// Found by the kinds' inventories and not declared: deploy deletes
    /// those the stage owns.
    pub extra: Vec<Box<dyn Resource>>,
}

impl Stack {
    /// For deploy and plan: every declared resource with its desired
    /// state, the graph checked before anything is read.
    pub fn desired(inputs: &Inputs) -> Result<Stack> {
        let stack = Stack {
            tags: inputs.tags(),
            resources: resources(inputs),
            names: inputs.names.clone(),
            extra: Vec::new(),
        };
        crate::engine::graph::validate(&stack.graph_list())?;
        Ok(stack)
    }

    /// For destroy: the resources the account shares between stacks, which
    /// destroy keeps and says so; `find` adds what the stage owns.
    pub fn existing(names: Names) -> Stack {
        let mut resources: Vec<Box<dyn Resource>> = Vec::new();
        resources.push(Box::new(iam::Role {
            name: CLOUDWATCH_ROLE.to_string(),
            spec: None,
            shared: Some("apigateway-cloudwatch"),
        }));
        resources.push(Box::new(apigateway::Account {
            region: names.region.clone(),
            spec: None,
            cloudwatch_role_arn: names.cloudwatch_role_arn(),
            needs: vec![ResourceId::new(iam::KIND, CLOUDWATCH_ROLE)],
        }));
        Stack {
            tags: names.owner_tags(),
            resources,
            names,
            extra: Vec::new(),
        }
    }

    pub fn ctx<'a>(&'a self, aws: &'a Aws) -> Ctx<'a> {
        Ctx {
            aws,
            names: &self.names,
            tags: &self.tags,
        }
    }

    /// Runs every kind's inventory: candidates not declared go to `extra`.
    pub async fn find_extra(&mut self, aws: &Aws) -> Result<()> {
        let found = self.inventory(aws).await?;
        let declared: BTreeSet<ResourceId> = self.resources.iter().map(|r| r.id()).collect();
        self.extra = found
            .into_iter()
            .filter(|r| !declared.contains(&r.id()))
            .collect();
        Ok(())
    }

    /// For destroy: every candidate joins the resources.
    pub async fn find_all(&mut self, aws: &Aws) -> Result<()> {
        let found = self.inventory(aws).await?;
        let mut seen: BTreeSet<ResourceId> = self.resources.iter().map(|r| r.id()).collect();
        for r in found {
            if seen.insert(r.id()) {
                self.resources.push(r);
            }
        }
        Ok(())
    }

    async fn inventory(&self, aws: &Aws) -> Result<Vec<Box<dyn Resource>>> {
        let ctx = self.ctx(aws);
        let kinds: [&dyn Inventory; 5] = [
            &apigateway::ApiInventory,
            &sfn::MachineInventory,
            &lambda::FunctionInventory,
            &iam::RoleInventory,
            &logs::LogGroupInventory,
        ];
        let lists = futures::future::try_join_all(kinds.iter().map(|k| k.list(&ctx))).await?;
        Ok(lists.into_iter().flatten().collect())
    }

    /// Each resource with what it needs.
    pub fn graph(&self) -> BTreeMap<ResourceId, Vec<ResourceId>> {
        self.resources.iter().map(|r| (r.id(), r.needs())).collect()
    }

    fn graph_list(&self) -> Vec<(ResourceId, Vec<ResourceId>)> {
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

/// Every declared resource, in dependency order of kinds.
fn resources(inputs: &Inputs) -> Vec<Box<dyn Resource>> {
    let names = inputs.names;
    let project = inputs.project;
    let role = |logical: &str| ResourceId::new(iam::KIND, &names.role(logical));
    let log_group = |name: &str| ResourceId::new(logs::KIND, name);
    let function = |name: &str| ResourceId::new(lambda::KIND, &names.function(name));
    let machine = |name: &str| ResourceId::new(sfn::KIND, &names.state_machine(name));
    let has_api = !project.routes.is_empty();

    let mut list: Vec<Box<dyn Resource>> = Vec::new();
    for (logical, of) in project.roles() {
        list.push(Box::new(iam::Role {
            name: names.role(&logical),
            spec: Some(inputs.role(&logical, &of)),
            shared: None,
        }));
    }
    if has_api {
        // API Gateway's CloudWatch role: one for the whole account, kept on
        // destroy, so that no stack's destroy breaks another API's logging.
        list.push(Box::new(iam::Role {
            name: CLOUDWATCH_ROLE.to_string(),
            spec: Some(inputs.cloudwatch_role()),
            shared: Some("apigateway-cloudwatch"),
        }));
    }
    let mut groups: Vec<String> = project
        .functions
        .keys()
        .map(|f| names.function_log_group(f))
        .chain(
            project
                .machines
                .keys()
                .map(|m| names.state_machine_log_group(m)),
        )
        .collect();
    if has_api {
        groups.push(names.api_access_log_group());
    }
    for group in groups {
        list.push(Box::new(logs::LogGroup {
            spec: Some(inputs.log_group(&group)),
            name: group,
        }));
    }
    let account = ResourceId::new(apigateway::ACCOUNT_KIND, &names.region);
    if has_api {
        // The region's setting that names it: set when empty, kept on destroy.
        list.push(Box::new(apigateway::Account {
            region: names.region.clone(),
            spec: Some(inputs.apigateway_account()),
            cloudwatch_role_arn: names.cloudwatch_role_arn(),
            needs: vec![ResourceId::new(iam::KIND, CLOUDWATCH_ROLE)],
        }));
    }
    for (name, f) in &project.functions {
        list.push(Box::new(lambda::Function {
            name: names.function(name),
            spec: Some(inputs.function(name)),
            needs: vec![role(&f.role), log_group(&names.function_log_group(name))],
        }));
    }
    for (name, m) in &project.machines {
        list.push(Box::new(sfn::StateMachine {
            name: names.state_machine(name),
            arn: names.state_machine_arn(name),
            spec: Some(inputs.state_machine(name)),
            needs: [
                role(&m.role),
                log_group(&names.state_machine_log_group(name)),
            ]
            .into_iter()
            .chain(m.invokes.iter().map(|f| function(f)))
            .chain(m.starts.iter().map(|s| machine(s)))
            .collect(),
        }));
    }
    if has_api {
        let api = ResourceId::new(apigateway::API_KIND, &names.api(&project.api.name));
        list.push(Box::new(apigateway::RestApi {
            name: names.api(&project.api.name),
            spec: Some(inputs.api()),
            needs: vec![role(API_ROLE)],
        }));
        // Before the stage turns logging on, so that AWS does not create it
        // untagged and without expiry.
        list.push(Box::new(logs::ExecutionLogGroup {
            stage: names.stage.clone(),
            api: api.clone(),
            spec: Some(inputs.log_group("")),
        }));
        // The stage serves a deployment that starts these machines: they
        // exist before it does.
        let routed: BTreeSet<&String> = project.routes.iter().map(|r| &r.state_machine).collect();
        list.push(Box::new(apigateway::Stage {
            name: names.stage.clone(),
            spec: Some(inputs.stage()),
            api,
            needs: [
                log_group(&names.api_access_log_group()),
                account,
                ResourceId::new(logs::EXECUTION_KIND, &names.stage),
            ]
            .into_iter()
            .chain(routed.into_iter().map(|m| machine(m)))
            .collect(),
        }));
    }
    list
}
