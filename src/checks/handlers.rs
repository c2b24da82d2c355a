//! The handlers, checked with the local `node` before anything is uploaded:
//! every packaged JavaScript file must parse (what `node --check` checks),
//! then each handler module is loaded to confirm that it exports a function
//! under the configured name. A syntax error or a renamed export otherwise
//! deploys fine and fails only when the first order arrives.
//!
//! One node process does it all (handlers.js), so the check costs one node
//! start; a file it finds does not parse is confirmed with `node --check`,
//! which also gives the line. Loading a module runs its top-level code, as
//! Lambda does on a cold start; the check is given `NODE_TIMEOUT`. Files
//! under `node_modules/` are not parsed one by one (they are published
//! packages, and whatever the handler requires is loaded anyway). Without
//! `node` on the PATH the check is skipped, and the caller says so once.
//!
//! That top-level code is the project's, which in a pipeline may be an
//! untrusted pull request's, so node runs it with nothing to steal:
//! - an empty environment (no `AWS_*`, no CI tokens, no `NODE_OPTIONS`),
//!   node started by its absolute path;
//! - where node has a permission model (`--permission` from node 22.13 and
//!   23.5, `--experimental-permission` from node 20; detected once per run),
//!   reads only of the functions' own files (their directories, and the
//!   directories their symlinks lead to), no file writes, no child
//!   processes, no worker threads, no native addons. A module that needs one
//!   of these at load time cannot be checked; its export is left unchecked
//!   and the caller says so.
//!
//! Why not read the exports without running the module: CommonJS exports
//! are whatever the code assigns (`module.exports = require(...)`,
//! `Object.assign(exports, ...)`), which only running it tells for sure.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::json;

/// How long the check may take, loading included.
const NODE_TIMEOUT: Duration = Duration::from_secs(20);

/// Said once when there is no `node` to check with.
pub const SKIPPED: &str = "note: node is not on the PATH, so the handlers were not checked before upload (syntax, exports); install Node.js to check them";

const SCRIPT: &str = include_str!("handlers.js");

/// A function to check: its directory, the files it packages (relative),
/// the handler's module file and the export its handler names.
pub struct Function<'a> {
    pub dir: PathBuf,
    pub files: &'a [String],
    pub entry: &'a str,
    pub export: &'a str,
}

/// What handlers.js found.
#[derive(Deserialize)]
struct Found {
    suspects: Vec<PathBuf>,
    problem: Option<Problem>,
    /// Modules whose loading the sandbox stopped: (file, node's error).
    #[serde(default)]
    unchecked: Vec<(PathBuf, String)>,
}

#[derive(Deserialize)]
struct Problem {
    file: PathBuf,
    /// The export's type when it is not a function.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Loading failed: the error's first line.
    load: Option<String>,
}

/// Checks every function. `Ok(None)`: no node, nothing was checked; else
/// notes for the caller to print (what could not be checked).
pub fn check(functions: &[Function]) -> Result<Option<Vec<String>>> {
    let Some(node) = find_node() else {
        return Ok(None);
    };
    let node = node.canonicalize().unwrap_or(node);
    // A passed check is remembered by content, so an unchanged project pays
    // for starting node once, not on every deploy and plan.
    let passed = passed_marker(&node, functions);
    if passed.as_ref().is_some_and(|m| m.exists()) {
        return Ok(Some(Vec::new()));
    }
    let sandbox = sandbox_args(&node, functions)?;
    // Paths as shown in errors, by the absolute path node is given.
    let mut shown = std::collections::BTreeMap::new();
    let mut check = Vec::new();
    let mut load = Vec::new();
    for function in functions {
        let dir = std::path::absolute(&function.dir)?;
        for file in function.files {
            let is_js = [".js", ".mjs", ".cjs"]
                .iter()
                .any(|ext| file.ends_with(ext));
            if is_js && !file.split('/').any(|part| part == "node_modules") {
                shown.insert(dir.join(file), function.dir.join(file));
                check.push(dir.join(file));
            }
        }
        let entry = function.entry;
        shown.insert(dir.join(entry), function.dir.join(entry));
        load.push(json!([dir, dir.join(entry), function.export]));
    }
    let input = json!({ "check": check, "load": load }).to_string();
    let mut args = sandbox.clone();
    args.extend(
        [
            "--experimental-vm-modules",
            "--no-warnings",
            "-e",
            SCRIPT,
            "--",
            &input,
        ]
        .map(std::ffi::OsString::from),
    );
    let out = run(&node, &args)?;
    let found: Found = serde_json::from_str(&out.stdout).map_err(|_| {
        anyhow::anyhow!(
            "node could not check the handlers: {}; run with node 18 or later, or take node off the PATH to skip the check",
            out.stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("no output")
        )
    })?;
    let show = |file: &Path| {
        shown
            .get(file)
            .cloned()
            .unwrap_or_else(|| file.to_path_buf())
    };
    for suspect in &found.suspects {
        check_syntax(&node, &sandbox, suspect, &show(suspect))?;
    }
    if let Some(problem) = found.problem {
        let file = show(&problem.file);
        let export = functions
            .iter()
            .find(|f| file.starts_with(&f.dir))
            .map_or("handler", |f| f.export);
        let entry = file.file_stem().unwrap_or_default().to_string_lossy();
        match (problem.load, problem.kind.as_deref()) {
            (Some(error), _) => bail!(
                "{}: loading it failed: {error}; fix it so that the module loads (node {} shows the whole error)",
                file.display(),
                file.display()
            ),
            (None, Some("undefined")) => bail!(
                "{} does not export a function named {export}, which the handler {entry}.{export} needs; export it, e.g. exports.{export} = async (event) => ...",
                file.display()
            ),
            (None, kind) => bail!(
                "{} exports {export} as {}, not a function; the handler {entry}.{export} must be a function",
                file.display(),
                a_type(kind.unwrap_or("something else"))
            ),
        }
    }
    let notes: Vec<String> = found
        .unchecked
        .iter()
        .map(|(file, error)| {
            format!(
                "note: {}: loading it needs what the handler check does not allow ({error}), so its export was not checked",
                show(file).display()
            )
        })
        .collect();
    if let Some(marker) = passed.filter(|_| notes.is_empty()) {
        // Best effort: without a writable cache the check just runs again.
        let _ = marker.parent().map(std::fs::create_dir_all);
        let _ = std::fs::write(&marker, b"");
    }
    Ok(Some(notes))
}

/// node's permission flag, if it has a permission model: `--permission`
/// (node 22.13, 23.5 and later) or `--experimental-permission` (node 20).
/// Asked once per run (node refuses an option it does not know, even with
/// `--version`).
fn permission_flag(node: &Path) -> Option<&'static str> {
    static FLAG: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();
    *FLAG.get_or_init(|| {
        ["--permission", "--experimental-permission"]
            .into_iter()
            .find(|flag| {
                Command::new(node)
                    .args([flag, "--version"])
                    .env_clear()
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|status| status.success())
            })
    })
}

/// The permission flags node runs the check with: reads of the functions'
/// directories and of wherever their files really are (a symlink may lead
/// out of the directory, and node loads a module by its real path), and
/// nothing else. Empty when node has no permission model.
fn sandbox_args(node: &Path, functions: &[Function]) -> Result<Vec<std::ffi::OsString>> {
    let Some(flag) = permission_flag(node) else {
        return Ok(Vec::new());
    };
    let mut readable: Vec<PathBuf> = Vec::new();
    for function in functions {
        let dir = std::path::absolute(&function.dir)?;
        readable.push(dir.canonicalize().unwrap_or_else(|_| dir.clone()));
        readable.push(dir.clone());
        for file in function.files {
            if let Some(parent) = dir
                .join(file)
                .canonicalize()
                .ok()
                .as_deref()
                .and_then(Path::parent)
            {
                readable.push(parent.to_path_buf());
            }
        }
    }
    readable.sort();
    readable.dedup();
    // A directory already readable covers those under it.
    let mut kept: Vec<PathBuf> = Vec::new();
    for path in readable {
        if !kept.iter().any(|k| path.starts_with(k)) {
            kept.push(path);
        }
    }
    let mut args = vec![std::ffi::OsString::from(flag)];
    for path in kept {
        let mut arg = std::ffi::OsString::from("--allow-fs-read=");
        arg.push(path);
        args.push(arg);
    }
    Ok(args)
}

/// Where a passed check of exactly these files, with this node and this
/// check, is recorded: `$XDG_CACHE_HOME/stepgate/handlers-passed/<hash>`
/// (else under `~/.cache`). `None` when there is no cache directory or a
/// file cannot be read (then the check runs, and says why it fails).
fn passed_marker(node: &Path, functions: &[Function]) -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    passed_marker_in(&cache, node, functions)
}

fn passed_marker_in(cache: &Path, node: &Path, functions: &[Function]) -> Option<PathBuf> {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(SCRIPT);
    hash.update(node.as_os_str().as_encoded_bytes());
    for function in functions {
        hash.update(format!("\0{}\0{}\0", function.entry, function.export));
        for file in function.files {
            let bytes = std::fs::read(function.dir.join(file)).ok()?;
            hash.update(format!("\0{file}\0{}\0", bytes.len()));
            hash.update(&bytes);
        }
    }
    let key: String = hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Some(cache.join("stepgate/handlers-passed").join(key))
}

/// Confirms that `file` does not parse, with `node --check`, and says where.
/// A file node --check accepts passes.
fn check_syntax(
    node: &Path,
    sandbox: &[std::ffi::OsString],
    file: &Path,
    shown: &Path,
) -> Result<()> {
    let mut args = sandbox.to_vec();
    args.extend(["--check".into(), file.as_os_str().to_owned()]);
    let out = run(node, &args)?;
    if out.code == Some(0) {
        return Ok(());
    }
    // `<path>:<line>`, the source line, a caret, then `SyntaxError: ...`.
    let line = out
        .stderr
        .lines()
        .find_map(|l| {
            l.rsplit_once(':')
                .filter(|(path, _)| Path::new(path) == file)
        })
        .map(|(_, line)| format!(":{line}"))
        .unwrap_or_default();
    let error = out
        .stderr
        .lines()
        .find(|l| l.contains("Error"))
        .unwrap_or("node --check failed");
    bail!(
        "{}{line}: {}; fix it (node --check {} shows where)",
        shown.display(),
        error.trim(),
        shown.display()
    )
}

/// "a number", "an object", ...
fn a_type(name: &str) -> String {
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// `node` from the PATH, if there is one.
fn find_node() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("node"))
        .find(|candidate| candidate.is_file())
}

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs node with an empty environment, killing it after `NODE_TIMEOUT`.
/// Output is read concurrently (so a chatty module cannot block on a full
/// pipe) and kept to 64 KiB per stream.
fn run<S: AsRef<std::ffi::OsStr>>(node: &Path, args: &[S]) -> Result<Output> {
    let mut child = Command::new(node)
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run {}", node.display()))?;
    let drain = |stream: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            if let Some(mut stream) = stream {
                let _ = (&mut stream).take(65_536).read_to_end(&mut kept);
                let _ = std::io::copy(&mut stream, &mut std::io::sink());
            }
            String::from_utf8_lossy(&kept).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let stderr = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > NODE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "node did not finish checking the handlers within {} s; does loading one of them wait for something? (take node off the PATH to skip the check)",
                NODE_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(Output {
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function directory with `files` (name, text); returns it and the
    /// names, as a package lists them.
    fn function(name: &str, files: &[(&str, &str)]) -> (PathBuf, Vec<String>) {
        let dir =
            std::env::temp_dir().join(format!("stepgate-handlers-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (file, text) in files {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        (dir, files.iter().map(|(f, _)| f.to_string()).collect())
    }

    fn check_one(dir: &Path, files: &[String], export: &str) -> Result<Option<Vec<String>>> {
        assert!(find_node().is_some(), "these tests need node on the PATH");
        let entry = if dir.join("index.mjs").is_file() {
            "index.mjs"
        } else {
            "index.js"
        };
        check(&[Function {
            dir: dir.to_path_buf(),
            files,
            entry,
            export,
        }])
    }

    #[test]
    fn a_passed_check_is_remembered_by_content_only() {
        let (dir, files) = function("cache", &[("index.js", "exports.go = async () => 1;\n")]);
        let marker = |files: &[String]| {
            let f = Function {
                dir: dir.clone(),
                files,
                entry: "index.js",
                export: "go",
            };
            passed_marker_in(Path::new("/c"), Path::new("/usr/bin/node"), &[f]).unwrap()
        };
        let first = marker(&files);
        assert!(first.starts_with("/c/stepgate/handlers-passed"));
        assert_eq!(marker(&files), first, "same content, same record");
        std::fs::write(dir.join("index.js"), "exports.go = async () => 2;\n").unwrap();
        assert_ne!(marker(&files), first, "changed content is checked again");
    }

    #[test]
    fn commonjs_es_modules_and_shebangs_pass() {
        let (dir, files) = function(
            "good",
            &[
                ("index.js", "#!/usr/bin/env node\nconst u = require('./lib/util.cjs');\nexports.go = async () => u;\n"),
                ("lib/util.cjs", "module.exports = 1;\n"),
                ("lib/esm.mjs", "import fs from 'node:fs';\nexport const x = await Promise.resolve(fs);\n"),
                ("lib/detected.js", "export const y = 2;\n"),
                ("node_modules/dep/broken.js", "this is not checked (\n"),
            ],
        );
        assert_eq!(check_one(&dir, &files, "go").unwrap(), Some(vec![]));
        let (dir, files) = function("esm", &[("index.mjs", "export async function go() {}\n")]);
        assert_eq!(check_one(&dir, &files, "go").unwrap(), Some(vec![]));
    }

    #[test]
    fn a_file_that_does_not_parse_is_named_with_its_line() {
        let (dir, files) = function(
            "syntax",
            &[
                ("index.js", "exports.go = async () => 1;\n"),
                ("lib/util.js", "const a = 1;\n\nconst b = ;\n"),
            ],
        );
        let message = check_one(&dir, &files, "go").unwrap_err().to_string();
        assert!(
            message.starts_with(&format!(
                "{}:3: SyntaxError: Unexpected token ';'",
                dir.join("lib/util.js").display()
            )),
            "{message}"
        );
    }

    #[test]
    fn exports_are_checked_by_name_and_type() {
        for (text, expected) in [
            (
                "exports.other = async () => 1;\n",
                "does not export a function named go, which the handler index.go needs",
            ),
            (
                "exports.go = 'text';\n",
                "exports go as a string, not a function",
            ),
            (
                "exports.go = {};\n",
                "exports go as an object, not a function",
            ),
            (
                "throw new Error('no config');\n",
                "index.js: loading it failed: Error: no config",
            ),
        ] {
            let (dir, files) = function("exports", &[("index.js", text)]);
            let message = check_one(&dir, &files, "go").unwrap_err().to_string();
            assert!(message.contains(expected), "{text:?}: {message}");
        }
    }

    #[test]
    fn node_runs_sandboxed_and_a_module_that_needs_more_is_left_unchecked() {
        let node = find_node().expect("these tests need node on the PATH");
        assert!(
            permission_flag(&node).is_some(),
            "this machine's node (20 or later) has a permission model"
        );
        let out = std::env::temp_dir().join(format!("stepgate-sandbox-{}", std::process::id()));
        let _ = std::fs::remove_file(&out);
        let writes = format!("require('fs').writeFileSync({out:?}, 'x');\nexports.go = 1;\n");
        let (dir, files) = function("writes", &[("index.js", &writes)]);
        let notes = check_one(&dir, &files, "go").unwrap().unwrap();
        assert!(!out.exists(), "the module wrote a file");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("index.js: loading it needs what the handler check does not allow (ERR_ACCESS_DENIED"),
            "{notes:?}"
        );
        assert!(
            notes[0].ends_with("so its export was not checked"),
            "{notes:?}"
        );
    }

    #[test]
    fn files_linked_from_outside_the_function_are_readable_to_the_check() {
        let (shared, _) = function("shared", &[("util.js", "module.exports = () => 1;\n")]);
        let (dir, _) = function(
            "linked",
            &[("index.js", "exports.go = require('./lib/util.js');\n")],
        );
        std::os::unix::fs::symlink(&shared, dir.join("lib")).unwrap();
        let files = vec!["index.js".to_string(), "lib/util.js".to_string()];
        assert_eq!(check_one(&dir, &files, "go").unwrap(), Some(vec![]));
    }

    #[test]
    fn type_names_take_their_article() {
        assert_eq!(a_type("object"), "an object");
        assert_eq!(a_type("number"), "a number");
    }
}
