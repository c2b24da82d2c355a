//! What deploy and plan check before their first AWS call, beyond the
//! settings (config.rs): the declared stack (project/), each function's
//! package and handler, each definition's size as sent, and
//! `--outputs-file`. docs/errors.md lists every check.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::checks::handlers;
use crate::config::Settings;
use crate::limits::{bytes, DEFINITION_BYTES};
use crate::names::Names;
use crate::output::Printer;
use crate::package::{package_dir, Package};
use crate::project::Project;

/// The declared stack and its functions' packages, checked.
pub struct Checked {
    pub project: Project,
    pub packages: BTreeMap<String, Package>,
}

/// Runs every local check and returns the project with its packages:
/// nothing that can be known without AWS is left to fail half-way through
/// a deploy.
pub fn local(
    settings: &Settings,
    outputs_file: Option<&Path>,
    printer: &Printer,
) -> Result<Checked> {
    if let Some(path) = outputs_file {
        check_outputs_file(path)?;
    }
    let project = Project::load(settings)?;
    check_definition_sizes(settings, &project)?;
    let mut packages = BTreeMap::new();
    for (name, f) in &project.functions {
        let package = package_dir(&f.dir).with_context(|| format!("package lambdas/{name}"))?;
        packages.insert(name.clone(), package);
    }
    let functions: Vec<handlers::Function> = project
        .functions
        .values()
        .map(|f| handlers::Function {
            dir: f.dir.clone(),
            files: &packages[&f.name].files,
            entry: &f.entry,
            export: f.handler.rsplit('.').next().unwrap_or_default(),
        })
        .collect();
    match handlers::check(&functions)? {
        None => printer.progress(handlers::SKIPPED),
        Some(notes) => notes.iter().for_each(|note| printer.progress(note)),
    }
    Ok(Checked { project, packages })
}

/// The longest region name, for sizes when the region is left to the SDK.
const LONGEST_REGION: &str = "ap-southeast-7";

/// Each definition as sent (placeholders filled in, as aws::sfn serializes
/// it) must fit Step Functions' limit. The account is always 12 digits; the
/// region, when the SDK will choose it, is counted at its longest.
fn check_definition_sizes(settings: &Settings, project: &Project) -> Result<()> {
    let region = settings.region.as_deref().unwrap_or(LONGEST_REGION);
    let names = Names::new(&settings.stack, &settings.stage, region, "000000000000")
        .with_overrides(project.overrides.clone());
    for (name, machine) in &project.machines {
        let values = crate::desired::placeholders(&names, project, Some(name));
        let sent = serde_json::to_string_pretty(&machine.definition.render(&values))?;
        let size = sent.len() as u64;
        if size > DEFINITION_BYTES {
            bail!(
                "{}: the definition is {} as sent to Step Functions, over its limit of {}; make it smaller",
                machine.file.display(),
                bytes(size),
                bytes(DEFINITION_BYTES)
            );
        }
    }
    Ok(())
}

/// `--outputs-file` must name a file stepgate can write, so that a deploy
/// never succeeds only to fail on its last step. Probes by opening the file
/// for appending (creating it only if it did not exist, and then removing it).
pub fn check_outputs_file(path: &Path) -> Result<()> {
    let shown = format!("--outputs-file {}", path.display());
    if path.is_dir() {
        bail!("{shown}: is a directory; name a file");
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        let problem = if parent.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        bail!(
            "{shown}: the directory {} {problem}; create it or name a file in an existing directory",
            parent.display()
        );
    }
    let existed = path.symlink_metadata().is_ok();
    match OpenOptions::new().append(true).create(true).open(path) {
        Ok(_) => {
            if !existed {
                let _ = std::fs::remove_file(path);
            }
            Ok(())
        }
        Err(e) => bail!("{shown}: cannot write it ({e}); name a file you can write"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_file_must_be_writable_and_the_probe_leaves_nothing() {
        let dir = std::env::temp_dir().join(format!("stepgate-outputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fresh = dir.join("out.json");
        check_outputs_file(&fresh).unwrap();
        assert!(!fresh.exists(), "the probe removed the file it created");
        std::fs::write(&fresh, "kept").unwrap();
        check_outputs_file(&fresh).unwrap();
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "kept");
        check_outputs_file(Path::new("relative.json")).unwrap();

        let file_as_dir = fresh.join("out.json");
        for (path, expected) in [
            (dir.clone(), "is a directory; name a file".to_string()),
            (
                dir.join("missing/out.json"),
                format!("the directory {}/missing does not exist", dir.display()),
            ),
            (
                file_as_dir,
                format!("the directory {} is not a directory", fresh.display()),
            ),
        ] {
            let message = check_outputs_file(&path).unwrap_err().to_string();
            assert!(
                message.starts_with(&format!("--outputs-file {}: ", path.display())),
                "{message}"
            );
            assert!(message.contains(&expected), "{message}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
