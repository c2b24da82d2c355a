//! `stepgate graph`: the declared stack, or one state machine, as a
//! picture. Reads the project's files only: no credentials, no AWS call.

use std::process::ExitCode;

use anyhow::Result;

use super::pick;
use crate::cli::ProjectArgs;
use crate::config::Settings;
use crate::graph::{machine::machine_graph, render, stack_graph};
use crate::output::{Format, Options, Printer};
use crate::project::Project;

pub fn graph(project: &ProjectArgs, format: render::Format, machine: Option<&str>) -> ExitCode {
    let printer = Printer::new(Options {
        format: Format::Text,
        quiet: false,
        verbose: 0,
        show_unchanged: false,
    });
    match draw(project, format, machine) {
        Ok(text) => {
            printer.result(text.trim_end(), &());
            ExitCode::SUCCESS
        }
        Err(e) => {
            printer.error(&e);
            ExitCode::from(super::Status::Failed as u8)
        }
    }
}

fn draw(args: &ProjectArgs, format: render::Format, machine: Option<&str>) -> Result<String> {
    let settings = Settings::resolve(&args.overrides(), &|name| std::env::var(name).ok())?;
    let project = Project::load(&settings)?;
    let graph = match machine {
        None => stack_graph(&project),
        Some(name) => {
            let name = pick(
                "--state-machine",
                Some(name),
                project.machines.keys(),
                "state machine",
            )?;
            machine_graph(project.machines[&name].definition.template())
        }
    };
    Ok(render::render(&graph, format))
}
