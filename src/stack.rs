//! The stack as resources: the declared project compiled into one list of
//! `dyn Resource`, each with what it needs; and, for destroy and pruning,
//! what each kind finds the stage owns. Deploy, plan and destroy all start
//! here; the engine knows nothing else of the stack's shape. This is the
//! only place that maps declarations (`project`) to kinds.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use crate::aws::Aws;
use crate::desired::Inputs;
use crate::kinds::{
    alarm, apigateway, function_version, iam, lambda, logs, machine_alias, machine_version, sfn,
};
use crate::model::{ResourceId, Tags};
use crate::names::{Names, CLOUDWATCH_ROLE};
use crate::project::{Project, API_ROLE};
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
    /// What a name override names (and what is named after it), which
    /// plan shows as `adopt` when it exists untagged; `true` where the
    /// file says `adopt = true`.
    pub adoptable: BTreeMap<ResourceId, bool>,
    /// `deploy --adopt`: every adoptable resource may be taken.
    pub adopt_all: bool,
}

impl Stack {
    /// For deploy and plan: every declared resource with its desired
    /// state (the engine checks the graph before it reads anything).
    pub fn desired(inputs: &Inputs) -> Stack {
        Stack {
            tags: inputs.tags(),
            resources: resources(inputs),
            names: inputs.names.clone(),
            extra: Vec::new(),
            adoptable: adoptable(inputs.project, inputs.names),
            adopt_all: false,
        }
    }

    /// Whether deploy may take `id`, which plan lists as `adopt`.
    pub fn may_adopt(&self, id: &ResourceId) -> bool {
        self.adopt_all || self.adoptable.get(id).copied().unwrap_or(false)
    }

    /// For destroy: the resources the account shares between stacks, which
    /// destroy keeps and says so; `find` adds what the stage owns.
    pub fn existing(names: Names) -> Stack {
        let mut resources: Vec<Box<dyn Resource>> = vec![
            Box::new(iam::Role {
                name: CLOUDWATCH_ROLE.to_string(),
                spec: None,
                shared: Some("apigateway-cloudwatch"),
            }),
            Box::new(apigateway::Account {
                region: names.region.clone(),
                spec: None,
                cloudwatch_role_arn: names.cloudwatch_role_arn(),
                needs: vec![ResourceId::new(iam::KIND, CLOUDWATCH_ROLE)],
            }),
        ];
        resources.extend(named(&names));
        Stack {
            tags: names.owner_tags(),
            resources,
            names,
            extra: Vec::new(),
            adoptable: BTreeMap::new(),
            adopt_all: false,
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
        let kinds: [&dyn Inventory; 11] = [
            &alarm::AlarmInventory,
            &apigateway::ApiInventory,
            &apigateway::UsagePlanInventory,
            &apigateway::ApiKeyInventory,
            &sfn::MachineInventory,
            &machine_version::MachineVersionInventory,
            &machine_alias::AliasInventory,
            &lambda::FunctionInventory,
            &function_version::FunctionVersionInventory,
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

    /// Each resource with what it needs, duplicates kept (for the check).
    pub fn graph_list(&self) -> Vec<(ResourceId, Vec<ResourceId>)> {
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

/// What the name overrides name, listed without sources for destroy: no
/// inventory finds them by the stage's prefix. Destroy judges each by its
/// tags, so a resource never adopted is left alone.
fn named(names: &Names) -> Vec<Box<dyn Resource>> {
    let o = &names.overrides;
    let mut out: Vec<Box<dyn Resource>> = Vec::new();
    for f in o.functions.keys() {
        out.push(Box::new(lambda::Function {
            name: names.function(f),
            spec: None,
            needs: Vec::new(),
            api: None,
        }));
        out.push(Box::new(logs::LogGroup {
            name: names.function_log_group(f),
            spec: None,
        }));
    }
    for m in o.machines.keys() {
        out.push(Box::new(sfn::StateMachine {
            name: names.state_machine(m),
            arn: names.state_machine_arn(m),
            spec: None,
            needs: Vec::new(),
        }));
        out.push(Box::new(logs::LogGroup {
            name: names.state_machine_log_group(m),
            spec: None,
        }));
        // Its alarms are named after it, not with the stage's prefix.
        for watch in ["failed", "timed_out", "throttled"] {
            out.push(Box::new(alarm::Alarm {
                name: names.alarm(m, watch),
                spec: None,
                needs: Vec::new(),
            }));
        }
    }
    for r in o.roles.keys() {
        out.push(Box::new(iam::Role {
            name: names.role(r),
            spec: None,
            shared: None,
        }));
    }
    // The API `[api] id` names, by its id (its name is not in `names`),
    // with its stage and execution logs, which go with it.
    if let Some(id) = &o.api_id {
        let api = ResourceId::new(apigateway::API_KIND, id);
        out.push(Box::new(apigateway::Stage {
            name: names.stage.clone(),
            spec: None,
            api: api.clone(),
            needs: Vec::new(),
            live: Vec::new(),
        }));
        out.push(Box::new(logs::ExecutionLogGroup {
            stage: names.stage.clone(),
            api,
            spec: None,
        }));
        out.push(Box::new(apigateway::RestApi {
            name: id.clone(),
            id: Some(id.clone()),
            spec: None,
            needs: Vec::new(),
        }));
    }
    out
}

/// The resources a name override names, and those named after them (a
/// function's log group, an adopted API's stage), each with whether the
/// file allows taking it untagged (`adopt = true`).
fn adoptable(project: &Project, names: &Names) -> BTreeMap<ResourceId, bool> {
    let o = &names.overrides;
    let a = &project.adoption;
    let mut out = BTreeMap::new();
    for f in o
        .functions
        .keys()
        .filter(|f| project.functions.contains_key(*f))
    {
        let allowed = a.functions.contains(f);
        out.insert(ResourceId::new(lambda::KIND, &names.function(f)), allowed);
        out.insert(
            ResourceId::new(logs::KIND, &names.function_log_group(f)),
            allowed,
        );
    }
    for m in o
        .machines
        .keys()
        .filter(|m| project.machines.contains_key(*m))
    {
        let allowed = a.machines.contains(m);
        out.insert(ResourceId::new(sfn::KIND, &names.state_machine(m)), allowed);
        out.insert(
            ResourceId::new(logs::KIND, &names.state_machine_log_group(m)),
            allowed,
        );
    }
    for r in o.roles.keys() {
        out.insert(
            ResourceId::new(iam::KIND, &names.role(r)),
            a.roles.contains(r),
        );
    }
    if o.api_id.is_some() && !project.routes.is_empty() {
        for id in [
            ResourceId::new(apigateway::API_KIND, &names.api(&project.api.name)),
            ResourceId::new(apigateway::STAGE_KIND, &names.stage),
            ResourceId::new(logs::EXECUTION_KIND, &names.stage),
        ] {
            out.insert(id, a.api);
        }
    }
    out
}

/// Every declared resource, in dependency order of kinds.
fn resources(inputs: &Inputs) -> Vec<Box<dyn Resource>> {
    let names = inputs.names;
    let project = inputs.project;
    let role = |logical: &str| ResourceId::new(iam::KIND, &names.role(logical));
    let log_group = |name: &str| ResourceId::new(logs::KIND, name);
    let function = |name: &str| ResourceId::new(lambda::KIND, &names.function(name));
    let function_version =
        |name: &str| ResourceId::new(function_version::KIND, &names.function(name));
    let machine = |name: &str| ResourceId::new(sfn::KIND, &names.state_machine(name));
    let machine_version =
        |name: &str| ResourceId::new(machine_version::KIND, &names.state_machine(name));
    let alias = |name: &str| {
        ResourceId::new(
            machine_alias::KIND,
            &format!("{}:{}", names.state_machine(name), crate::names::LIVE_ALIAS),
        )
    };
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
    let api_id = ResourceId::new(apigateway::API_KIND, &names.api(&project.api.name));
    for (name, f) in &project.functions {
        let spec = inputs.function(name);
        // A function behind an authorizer lets this API invoke it: its
        // permission names the API's id, so the API comes first.
        let api = (!spec.invoked_by.is_empty() && has_api).then(|| api_id.clone());
        list.push(Box::new(lambda::Function {
            name: names.function(name),
            spec: Some(spec),
            needs: [role(&f.role), log_group(&names.function_log_group(name))]
                .into_iter()
                .chain(api.clone())
                .collect(),
            api,
        }));
    }
    // Versions of the functions machines pin (retention runs with each
    // machine's rollout; a function no machine calls is not published).
    let pinned: BTreeSet<&String> = project.machines.values().flat_map(|m| &m.invokes).collect();
    for name in pinned {
        list.push(Box::new(function_version::FunctionVersion {
            function: names.function(name),
            spec: Some(inputs.function_version(name)),
            needs: vec![function(name)],
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
            // It pins their versions.
            .chain(m.invokes.iter().map(|f| function_version(f)))
            .chain(m.starts.iter().map(|s| machine(s)))
            .collect(),
        }));
    }
    for name in project.machines.keys() {
        for spec in inputs.alarms(name) {
            list.push(Box::new(alarm::Alarm {
                name: spec.name.clone(),
                spec: Some(spec),
                needs: vec![machine(name)],
            }));
        }
    }
    for name in project.machines.keys() {
        list.push(Box::new(machine_version::MachineVersion {
            machine: names.state_machine(name),
            machine_arn: names.state_machine_arn(name),
            spec: Some(inputs.machine_version(name)),
            needs: vec![machine(name)],
        }));
    }
    // Machines behind sync routes: the stage names the version their `live`
    // serves, so moving `live` also writes the stage's variable, on this
    // API.
    let sync_routed: BTreeSet<&String> = project
        .routes
        .iter()
        .filter(|r| r.sync)
        .map(|r| &r.state_machine)
        .collect();
    for name in project.machines.keys() {
        let api = sync_routed.contains(name).then(|| api_id.clone());
        list.push(Box::new(machine_alias::MachineAlias {
            machine: names.state_machine(name),
            arn: names.alias_arn(name),
            spec: Some(inputs.alias(name)),
            needs: [machine_version(name)]
                .into_iter()
                .chain(api.clone())
                .collect(),
            api,
        }));
    }
    if has_api {
        let api = ResourceId::new(apigateway::API_KIND, &names.api(&project.api.name));
        list.push(Box::new(apigateway::RestApi {
            name: names.api(&project.api.name),
            id: names.overrides.api_id.clone(),
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
        // The stage serves a deployment that starts these machines' `live`
        // aliases: they exist before it does.
        let routed: BTreeSet<&String> = project.routes.iter().map(|r| &r.state_machine).collect();
        list.push(Box::new(apigateway::Stage {
            name: names.stage.clone(),
            spec: Some(inputs.stage()),
            api: api.clone(),
            needs: [
                log_group(&names.api_access_log_group()),
                account,
                ResourceId::new(logs::EXECUTION_KIND, &names.stage),
            ]
            .into_iter()
            .chain(routed.into_iter().map(|m| alias(m)))
            .collect(),
            live: sync_routed
                .iter()
                .map(|m| apigateway::LiveVariable {
                    variable: crate::names::live_variable(m),
                    alias_arn: names.alias_arn(m),
                })
                .collect(),
        }));
        // API keys: the stage's usage plan, then one key per name in it.
        let keys = &project.api.access.keys;
        if !keys.is_empty() {
            let plan_name = names.api(&project.api.name);
            list.push(Box::new(apigateway::UsagePlan {
                name: plan_name.clone(),
                spec: Some(apigateway::UsagePlanSpec {
                    settings: project.api.access.usage_plan.clone(),
                    stage: names.stage.clone(),
                }),
                api,
                needs: vec![ResourceId::new(apigateway::STAGE_KIND, &names.stage)],
            }));
            for key in keys {
                list.push(Box::new(apigateway::ApiKey {
                    name: names.api_key(key),
                    declared: true,
                    usage_plan: ResourceId::new(apigateway::USAGE_PLAN_KIND, &plan_name),
                }));
            }
        }
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, Settings};
    use crate::project::RoleOf;

    /// The repository's own project (the tutorial), compiled for
    /// orders/dev in us-east-1.
    fn tutorial(test: impl FnOnce(&Stack, &Inputs)) {
        let overrides = Overrides {
            project_dir: Some(env!("CARGO_MANIFEST_DIR").into()),
            ..Overrides::default()
        };
        let settings = Settings::resolve(&overrides, &|_| None).unwrap();
        let project = Project::load(&settings).unwrap();
        let packages = project
            .functions
            .iter()
            .map(|(n, f)| (n.clone(), crate::package::package_dir(&f.dir).unwrap()))
            .collect();
        let names = Names::new("orders", "dev", "us-east-1", "000000000000");
        let inputs = Inputs {
            settings: &settings,
            project: &project,
            packages: &packages,
            names: &names,
            release: String::new(),
        };
        test(&Stack::desired(&inputs), &inputs);
    }

    /// A stage deployed before the stack was declared as data keeps its
    /// names. Since routes start the `live` alias, the API's configuration
    /// (and so its deployment) changes once: an update, never a rename.
    #[test]
    fn the_tutorial_keeps_every_name_it_had() {
        tutorial(|stack, inputs| {
            let ids: Vec<String> = stack.ordered().iter().map(|r| r.id().to_string()).collect();
            assert_eq!(
                ids,
                [
                    "role orders-dev-us-east-1-apigateway",
                    "role orders-dev-us-east-1-lambda",
                    "role orders-dev-us-east-1-states",
                    "role stepgate-apigateway-cloudwatch",
                    "log-group /aws/apigateway/orders-dev-access",
                    "log-group /aws/lambda/orders-dev-cancelOrder",
                    "log-group /aws/lambda/orders-dev-completeOrder",
                    "log-group /aws/vendedlogs/states/orders-dev-OrderProcessor",
                    "apigateway-account us-east-1",
                    "function orders-dev-cancelOrder",
                    "function orders-dev-completeOrder",
                    "function-version orders-dev-cancelOrder",
                    "function-version orders-dev-completeOrder",
                    "state-machine orders-dev-OrderProcessor",
                    "state-machine-version orders-dev-OrderProcessor",
                    "state-machine-alias orders-dev-OrderProcessor:live",
                    "rest-api orders-dev-OrderProcessorAPI",
                    "execution-log-group dev",
                    "stage dev",
                ]
            );
            let api = inputs.api();
            assert_eq!(api.routes[0].route.key(), "POST /orderprocess");
            // Routes start the machine's `live` alias, and the async route
            // answers with the execution's name (not its ARN) and API
            // Gateway's own 401/403/429 answers are JSON with CORS: a stage
            // deployed before (its deployment named after 66d158239e77c363)
            // plans an in-place update of its REST API and of its stage (a
            // new deployment), never a replace or a rename.
            assert!(api.routes[0]
                .state_machine_arn
                .ends_with(":stateMachine:orders-dev-OrderProcessor:live"));
            assert_eq!(api.config_hash(), "aea603d9ae93acf7");
        });
    }

    #[test]
    fn name_overrides_name_the_resources_and_what_derives_from_them() {
        use crate::names::Overrides;
        use std::collections::BTreeMap;
        let overrides = Overrides {
            functions: BTreeMap::from([("completeOrder".into(), "completeOrder".into())]),
            machines: BTreeMap::from([("OrderProcessor".into(), "OrderProcessor".into())]),
            roles: BTreeMap::from([("states".into(), "Custom-AWSStepFunctionServiceRole".into())]),
            api_id: Some("a1b2c3d4e5".into()),
        };
        tutorial(|_, inputs| {
            let mut project = inputs.project.clone();
            project.adoption.functions.insert("completeOrder".into());
            let names = inputs.names.clone().with_overrides(overrides.clone());
            let named = Inputs {
                project: &project,
                names: &names,
                settings: inputs.settings,
                packages: inputs.packages,
                release: inputs.release.clone(),
            };
            let stack = Stack::desired(&named);
            let ids: Vec<String> = stack.ordered().iter().map(|r| r.id().to_string()).collect();
            for id in [
                "role Custom-AWSStepFunctionServiceRole",
                "role orders-dev-us-east-1-lambda",
                "log-group /aws/lambda/completeOrder",
                "log-group /aws/lambda/orders-dev-cancelOrder",
                "log-group /aws/vendedlogs/states/OrderProcessor",
                "function completeOrder",
                "function orders-dev-cancelOrder",
                "state-machine OrderProcessor",
                "rest-api OrderProcessorAPI",
            ] {
                assert!(ids.contains(&id.to_string()), "{id} not in {ids:?}");
            }
            let adoptable =
                |kind, name: &str| stack.adoptable.get(&ResourceId::new(kind, name)).copied();
            assert_eq!(adoptable(lambda::KIND, "completeOrder"), Some(true));
            assert_eq!(
                adoptable(logs::KIND, "/aws/lambda/completeOrder"),
                Some(true)
            );
            assert_eq!(
                adoptable(iam::KIND, "Custom-AWSStepFunctionServiceRole"),
                Some(false)
            );
            assert_eq!(adoptable(apigateway::STAGE_KIND, "dev"), Some(false));
            assert_eq!(adoptable(lambda::KIND, "orders-dev-cancelOrder"), None);
            // The machine runs as the named role and calls the named function.
            let machine = named.state_machine("OrderProcessor");
            assert_eq!(
                machine.role_arn,
                "arn:aws:iam::000000000000:role/Custom-AWSStepFunctionServiceRole"
            );
            assert!(machine
                .definition
                .to_string()
                .contains("arn:aws:lambda:us-east-1:000000000000:function:completeOrder\""));
        });
    }

    #[test]
    fn generated_trust_keeps_the_confused_deputy_conditions() {
        tutorial(|_, inputs| {
            let states = inputs.role("states", &RoleOf::StateMachine("OrderProcessor".into()));
            let condition = &states.trust["Statement"][0]["Condition"];
            assert_eq!(
                condition["StringEquals"]["aws:SourceAccount"],
                "000000000000"
            );
            assert_eq!(
                condition["ArnLike"]["aws:SourceArn"],
                "arn:aws:states:us-east-1:000000000000:stateMachine:orders-dev-OrderProcessor"
            );
            let api = inputs.role(API_ROLE, &RoleOf::ApiGateway);
            assert_eq!(
                api.trust["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"],
                "000000000000"
            );
        });
    }

    #[test]
    fn the_stage_waits_for_its_logs_its_accounts_setting_and_its_machines_live_aliases() {
        tutorial(|stack, _| {
            let waves: Vec<Vec<String>> = crate::plan::waves(&stack.graph())
                .iter()
                .map(|w| w.iter().map(|r| r.kind.0.to_string()).collect())
                .collect();
            assert_eq!(
                waves[1],
                ["apigateway-account", "function", "function", "rest-api"]
            );
            assert_eq!(
                waves[2],
                [
                    "execution-log-group",
                    "function-version",
                    "function-version"
                ]
            );
            assert_eq!(waves[3], ["state-machine"]);
            assert_eq!(waves[4], ["state-machine-version"]);
            assert_eq!(waves[5], ["state-machine-alias"]);
            assert_eq!(waves[6], ["stage"]);
        });
    }
}
