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
    let mut stack = Stack::desired(&inputs(settings, &checked, &names));
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
