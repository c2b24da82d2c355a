//! Shell completions and man pages, generated from the same clap
//! definitions as `--help`, so the three never disagree.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::Cli;

/// `stepgate completions SHELL`: the script on stdout.
pub fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "stepgate", &mut out);
    write_stdout(&out)
}

/// `stepgate man`: stepgate.1 on stdout, or with a directory, stepgate.1
/// and stepgate-COMMAND.1 for each command written there.
pub fn man(out_dir: Option<&Path>) -> ExitCode {
    let result = match out_dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), dir))
            .map(|()| Vec::new()),
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map(|()| page)
        }
    };
    match result {
        Ok(page) => write_stdout(&page),
        Err(e) => {
            let dir = out_dir.map(|d| d.display().to_string()).unwrap_or_default();
            let _ = writeln!(std::io::stderr(), "error: man {dir}: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn write_stdout(bytes: &[u8]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn man_page_lists_every_command() {
        let mut page = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut page)
            .unwrap();
        let page = String::from_utf8(page).unwrap();
        for command in [
            "deploy",
            "plan",
            "destroy",
            "unlock",
            "outputs",
            "invoke",
            "completions",
        ] {
            assert!(
                page.contains(command),
                "{command} missing from the man page"
            );
        }
    }

    #[test]
    fn completions_for_every_shell() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::PowerShell,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "stepgate", &mut out);
            let script = String::from_utf8(out).unwrap();
            assert!(script.contains("show-unchanged"), "{shell}: {script:.200}");
        }
    }
}
