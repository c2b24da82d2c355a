//! `stepgate init`: a new project that deploys as it is, from one of the
//! examples embedded in the binary (`examples.rs`). Writes files only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::examples::Example;
use crate::output::{Format, Options, Printer};

pub fn init(dir: Option<&Path>, example: Example, force: bool) -> ExitCode {
    let printer = Printer::new(Options {
        format: Format::Text,
        quiet: false,
        verbose: 0,
        show_unchanged: false,
    });
    let dir = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    match write(&dir, example, force) {
        Ok(count) => {
            printer.result(&next_steps(&dir, example, count), &());
            ExitCode::SUCCESS
        }
        Err(e) => {
            printer.error(&e);
            ExitCode::from(super::Status::Failed as u8)
        }
    }
}

/// Writes the example's project into `dir`; returns how many files.
fn write(dir: &Path, example: Example, force: bool) -> Result<usize> {
    let shown = dir.display();
    if dir.exists() && !dir.is_dir() {
        bail!("{shown} is a file; name a new or empty directory");
    }
    let files = example.project();
    if dir.is_dir() && !force {
        // Like `cdk init`: hidden entries (.git, .idea) do not make it
        // non-empty, but no file is ever written over without --force.
        let mut visible = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("{shown}: cannot list it"))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                visible.push(name);
            }
        }
        visible.sort();
        if let Some(first) = visible.first() {
            bail!(
                "{shown} is not empty (it holds {first}{}); name a new or empty directory, or pass --force to write the project over what is there",
                if visible.len() > 1 { format!(" and {} more", visible.len() - 1) } else { String::new() }
            );
        }
        if let Some((path, _)) = files.iter().find(|(path, _)| dir.join(path).exists()) {
            bail!("{shown}/{path} exists; pass --force to write over it");
        }
    }
    for (path, text) in &files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, text)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    Ok(files.len())
}

fn next_steps(dir: &Path, example: Example, count: usize) -> String {
    let mut out = format!(
        "Wrote the {} example to {} ({count} files). Next:\n",
        example.name(),
        dir.display()
    );
    if dir != Path::new(".") {
        out.push_str(&format!("  cd {}\n", dir.display()));
    }
    out.push_str(&format!(
        "  stepgate deploy --stage dev\n  stepgate invoke --stage dev{}\n  stepgate destroy --stage dev --yes",
        example.invoke_args()
    ));
    out
}
