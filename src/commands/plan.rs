//! `stepgate plan`: what deploy would change, field by field; never a change.

use std::time::Instant;

use anyhow::Result;

use super::{connect, inputs, report, Status};
use crate::config::Settings;
use crate::engine;
use crate::kinds::{apigateway, iam, lambda, sfn};
use crate::lock;
use crate::names::Names;
use crate::output::{Format, MarkdownContext, Printer, ResourceReport};
use crate::plan::ResourcePlan;
use crate::project::Project;
use crate::stack::Stack;

pub(super) async fn plan(
    settings: &Settings,
    detailed_exitcode: bool,
    printer: &Printer,
) -> Result<Status> {
    let started = Instant::now();
    let checked = super::local_checks::local(settings, None, printer)?;
    let (aws, names) = connect(settings).await?;
    // Once AWS answers: a run refused before prints its one error line only.
    super::note_open_routes(&checked.project, printer);
    super::note_leftovers(&aws, settings, printer).await?;
    let mut stack = Stack::desired(&inputs(settings, &checked, &names, &aws));
    stack.find_extra(&aws).await?;
    // plan takes no lock, but says when a deploy or destroy holds one.
    let (live, held) = tokio::join!(engine::observe(&aws, &stack), lock::holder(&aws, &names));
    let (live, held) = (live?, held?);
    if let Some(holder) = &held {
        printer.progress(&format!(
            "Note: stack {} stage {} is locked by {}; what it is changing may not show yet",
            names.stack,
            names.stage,
            holder.describe()
        ));
    }
    let mut plan = engine::plan(&stack, &live);
    crate::adopt::leftovers::annotate(&mut plan.resources);
    let mut report = report("plan", &names, &aws, started);
    report.lock = held;
    report.changed = plan.has_changes();
    report.resources = plan.resources.iter().map(ResourceReport::from).collect();
    report.rollouts = rollouts(&aws, &plan.resources, &checked.project, &names, settings).await?;
    debug_assert_eq!(
        report.aws_calls.mutating, 0,
        "plan must never change anything"
    );
    if printer.format == Format::Markdown {
        let markdown = markdown(&plan.resources, &checked.project, &names);
        printer.result(&markdown, &report);
    } else {
        printer.plan(&plan.resources, &report);
    }
    // A conflict is not a change deploy could make: deploy would fail on it.
    // The same line deploy would fail with, and its fix.
    if let Some(first) = plan.conflicts().first() {
        return Err(engine::conflict(&stack, &live, first));
    }
    Ok(if detailed_exitcode && plan.has_changes() {
        Status::Changes
    } else {
        Status::Ok
    })
}

/// How each machine's `live` would move: read only for the aliases the
/// plan changes (one DescribeStateMachineAlias each).
async fn rollouts(
    aws: &crate::aws::Aws,
    resources: &[ResourcePlan],
    project: &Project,
    names: &Names,
    settings: &Settings,
) -> Result<Vec<crate::report::RolloutPlan>> {
    use crate::kinds::{function_version, machine_alias, machine_version};
    use crate::plan::Action;
    let action = |kind, name: &str| {
        resources
            .iter()
            .find(|r| r.resource.kind == kind && r.resource.name == name)
            .map(|r| r.action)
    };
    let changes = |kind, name: &str| {
        action(kind, name).is_some_and(|a| !matches!(a, Action::NoChange | Action::Delete))
    };
    let mut out = Vec::new();
    for (machine, m) in &project.machines {
        let alias = format!(
            "{}:{}",
            names.state_machine(machine),
            crate::names::LIVE_ALIAS
        );
        if !changes(machine_alias::KIND, &alias) {
            continue;
        }
        // An alias to create serves nothing yet (and may have no machine).
        let live = match action(machine_alias::KIND, &alias) {
            Some(Action::Create) => Vec::new(),
            _ => machine_alias::routing(aws, &names.alias_arn(machine))
                .await?
                .unwrap_or_default()
                .into_iter()
                .map(|(arn, weight)| (machine_version::version_number(&arn), weight))
                .collect(),
        };
        let publishes = m
            .invokes
            .iter()
            .filter(|f| changes(function_version::KIND, &names.function(f)))
            .map(|f| format!("function {f}"))
            .chain(
                changes(machine_version::KIND, &names.state_machine(machine))
                    .then(|| format!("state machine {machine}")),
            )
            .collect();
        let rollout = &settings.rollout;
        out.push(crate::report::RolloutPlan {
            state_machine: machine.clone(),
            live,
            publishes,
            smoke: project
                .smoke
                .iter()
                .filter(|s| &s.state_machine == machine)
                .map(|s| s.file.clone())
                .collect(),
            strategy: serde_json::to_value(rollout.strategy)?
                .as_str()
                .unwrap_or_default()
                .to_string(),
            steps: rollout.steps(),
            interval_seconds: rollout.interval.as_secs(),
        });
    }
    Ok(out)
}

/// The plan as a pull-request comment: the stack's graph with the
/// resources it changes coloured, and what a reviewer should know.
fn markdown(resources: &[ResourcePlan], project: &Project, names: &Names) -> String {
    use crate::graph;
    let node_of = |r: &ResourcePlan| {
        let name = r.resource.name.as_str();
        let kind = r.resource.kind;
        // (logical name, AWS name) of each of a kind.
        let found = |ids: Vec<(String, String)>, node: fn(&str) -> String| {
            ids.iter()
                .find(|(_, full)| full == name)
                .map(|(logical, _)| node(logical))
        };
        if kind == lambda::KIND {
            found(
                project
                    .functions
                    .keys()
                    .map(|f| (f.clone(), names.function(f)))
                    .collect(),
                graph::function_node,
            )
        } else if kind == sfn::KIND {
            found(
                project
                    .machines
                    .keys()
                    .map(|m| (m.clone(), names.state_machine(m)))
                    .collect(),
                graph::machine_node,
            )
        } else if kind == iam::KIND {
            found(
                project
                    .roles()
                    .keys()
                    .map(|r| (r.clone(), names.role(r)))
                    .collect(),
                graph::role_node,
            )
        } else {
            None
        }
    };
    let mut notes: Vec<String> = project
        .routes
        .iter()
        .map(|r| {
            format!(
                "`{}` is open to anyone who has the URL: no authorizer or API key.",
                r.key()
            )
        })
        .collect();
    if resources
        .iter()
        .any(|r| r.resource.kind == apigateway::ACCOUNT_KIND)
    {
        notes.push("The region's API Gateway CloudWatch role setting and stepgate's role for it are shared by every stack in the account; destroy keeps them.".into());
    }
    crate::output::plan_markdown(
        resources,
        MarkdownContext {
            stack: &names.stack,
            stage: &names.stage,
            region: &names.region,
            graph: graph::stack_graph(project),
            node_of: &node_of,
            drawn: &|r| [lambda::KIND, sfn::KIND, iam::KIND].contains(&r.resource.kind),
            notes,
        },
    )
}
