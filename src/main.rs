//! stepgate: deploys and tears down the OrderProcessor serverless stack
//! through the AWS APIs. See README.md for usage and docs/ for the JSON schema, configuration and pipelines.

// All output goes through output::Printer, so results and progress never mix.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod adopt;
mod asl;
mod aws;
mod checks;
mod cli;
mod commands;
mod config;
mod deployer;
mod desired;
mod engine;
mod examples;
mod generate;
mod graph;
mod interrupt;
mod invoke;
mod kinds;
mod limits;
mod lock;
mod logging;
mod model;
mod names;
mod output;
mod package;
mod plan;
mod project;
mod report;
mod resource;
mod retrying;
mod shown;
mod sources;
mod stack;
mod template;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Usage errors exit 1 like every other failure; 2 means "plan found
    // changes" and must not be ambiguous.
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let command = match cli.command {
        cli::TopLevel::Stack(command) => command,
        cli::TopLevel::Completions { shell } => return generate::completions(shell),
        cli::TopLevel::Man { out_dir } => return generate::man(out_dir.as_deref()),
        cli::TopLevel::DeployerPolicy {
            stack,
            partition,
            project_dir,
            adopt,
        } => {
            let request = deployer::Request {
                stack,
                project_dir,
                adopt,
            };
            return deployer::print(request, &partition);
        }
        cli::TopLevel::Init {
            dir,
            example,
            force,
        } => return commands::init(dir.as_deref(), example, force),
        cli::TopLevel::Graph {
            format,
            state_machine,
            project,
        } => return commands::graph(&project, format, state_machine.as_deref()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start the async runtime");
    let common = command.common().clone();
    logging::init(common.verbose);
    let printer = output::Printer::new(output::Options {
        format: common.output,
        quiet: common.quiet,
        verbose: common.verbose,
        show_unchanged: matches!(
            command,
            cli::Command::Plan {
                show_unchanged: true,
                ..
            }
        ),
    });
    let result = runtime.block_on(async {
        interrupt::listen();
        commands::run(command, &printer).await
    });
    // After Ctrl-C or SIGTERM the command has released its lock and said
    // what exists; the exit status says it was interrupted.
    let interrupted = interrupt::exit_code();
    match result {
        Ok(status) => ExitCode::from(interrupted.unwrap_or(status as u8)),
        Err(e) => {
            printer.error(&e);
            ExitCode::from(interrupted.unwrap_or(commands::Status::Failed as u8))
        }
    }
}
