//! The handlers, checked with the local `node` before anything is uploaded:
//! `node --check` on every packaged JavaScript file, then the handler module
//! is loaded to confirm that it exports a function under the configured
//! name. A syntax error or a renamed export otherwise deploys fine and fails
//! only when the first order arrives.
//!
//! Loading a module runs its top-level code, as Lambda does on a cold start.
//! Each node process is given `NODE_TIMEOUT`; files under `node_modules/` are
//! not syntax-checked one by one (they are published packages, and whatever
//! the handler requires is loaded anyway). Without `node` on the PATH the
//! check is skipped, and the caller says so once.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long one node process may take.
const NODE_TIMEOUT: Duration = Duration::from_secs(10);

/// Said once when there is no `node` to check with.
pub const SKIPPED: &str = "note: node is not on the PATH, so the handlers were not checked before upload (syntax, exports); install Node.js to check them";

/// Loads the module named by argv[1] and checks its export argv[2]. Exit 0:
/// a function; 3: something else (its type on stdout); 4: loading failed
/// (the error's first line on stdout).
const LOAD: &str = r#"
const [file, name] = process.argv.slice(1);
import(require("node:url").pathToFileURL(file).href).then(
  (m) => {
    let f = m[name];
    if (f === undefined && m.default != null && typeof m.default === "object") f = m.default[name];
    if (typeof f === "function") process.exit(0);
    process.stdout.write(f === undefined ? "undefined" : f === null ? "null" : typeof f);
    process.exit(3);
  },
  (e) => {
    process.stdout.write(String((e && e.stack) || e).split("\n")[0]);
    process.exit(4);
  },
);
"#;

/// A function to check: its directory, the files it packages (relative)
/// and the export its handler `index.<export>` names.
pub struct Function<'a> {
    pub dir: PathBuf,
    pub files: &'a [String],
    pub export: &'a str,
}

/// Checks every function, concurrently. `Ok(false)`: no node, not checked.
pub fn check(functions: &[Function]) -> Result<bool> {
    let Some(node) = find_node() else {
        return Ok(false);
    };
    std::thread::scope(|scope| {
        let checks: Vec<_> = functions
            .iter()
            .map(|function| scope.spawn(|| check_function(&node, function)))
            .collect();
        for check in checks {
            check.join().expect("handler check thread")?;
        }
        Ok(true)
    })
}

fn check_function(node: &Path, function: &Function) -> Result<()> {
    for file in function.files {
        let is_js = [".js", ".mjs", ".cjs"]
            .iter()
            .any(|ext| file.ends_with(ext));
        if is_js && !file.split('/').any(|part| part == "node_modules") {
            check_syntax(node, &function.dir, file)?;
        }
    }
    let entry = if function.dir.join("index.js").is_file() {
        "index.js"
    } else {
        "index.mjs"
    };
    check_export(node, &function.dir, entry, function.export)
}

fn check_syntax(node: &Path, dir: &Path, file: &str) -> Result<()> {
    let shown = dir.join(file);
    let absolute = std::path::absolute(&shown)?;
    let out = run(
        node,
        &[OsArg::from("--check"), absolute.clone().into()],
        dir,
    )?;
    if out.code == Some(0) {
        return Ok(());
    }
    // `<path>:<line>`, the source line, a caret, then `SyntaxError: ...`.
    let line = out
        .stderr
        .lines()
        .find_map(|l| {
            l.rsplit_once(':')
                .filter(|(path, _)| Path::new(path) == absolute)
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

fn check_export(node: &Path, dir: &Path, entry: &str, export: &str) -> Result<()> {
    let shown = dir.join(entry);
    let out = run(
        node,
        &[
            OsArg::from("-e"),
            OsArg::from(LOAD),
            OsArg::from("--"),
            std::path::absolute(&shown)?.into(),
            OsArg::from(export),
        ],
        dir,
    )?;
    let entry_name = entry.trim_end_matches(".js").trim_end_matches(".mjs");
    match out.code {
        Some(0) => Ok(()),
        Some(3) if out.stdout == "undefined" => bail!(
            "{} does not export a function named {export}, which the handler {entry_name}.{export} needs; export it, e.g. exports.{export} = async (event) => ...",
            shown.display()
        ),
        Some(3) => bail!(
            "{} exports {export} as {}, not a function; the handler {entry_name}.{export} must be a function",
            shown.display(),
            a_type(&out.stdout)
        ),
        Some(4) => bail!(
            "{}: loading it failed: {}; fix it so that the module loads (node {} shows the whole error)",
            shown.display(),
            out.stdout.trim(),
            shown.display()
        ),
        _ => bail!(
            "{}: loading it with node failed: {}",
            shown.display(),
            out.stderr.lines().next().unwrap_or("no output")
        ),
    }
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

type OsArg = std::ffi::OsString;

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs node in `dir`, killing it after `NODE_TIMEOUT`. Output is read
/// concurrently (so a chatty module cannot block on a full pipe) and kept
/// to 64 KiB per stream.
fn run(node: &Path, args: &[OsArg], dir: &Path) -> Result<Output> {
    let mut child = Command::new(node)
        .args(args)
        .current_dir(dir)
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
                "{}: node did not finish checking it within {} s (does loading it wait for something?)",
                dir.display(),
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
