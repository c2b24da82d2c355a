//! Embeds the example projects `stepgate init` writes: this repository's
//! tutorial (`orders`) and `examples/recipes`, `examples/quote`, `examples/guarded`. The list of
//! files is made here, from the directories themselves, so that a file
//! added to an example is in the binary without anyone listing it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Each example: its name, its directory, and what of it a project holds.
const EXAMPLES: [(&str, &str, &[&str]); 4] = [
    (
        "orders",
        ".",
        &[
            "stepgate.toml",
            "lambdas",
            "definitions",
            "policies",
            "models",
            "smoke",
        ],
    ),
    (
        "recipes",
        "examples/recipes",
        &[
            "stepgate.toml",
            "lambdas",
            "definitions",
            "policies",
            "models",
            "smoke",
        ],
    ),
    (
        "quote",
        "examples/quote",
        &[
            "stepgate.toml",
            "lambdas",
            "definitions",
            "policies",
            "models",
            "smoke",
        ],
    ),
    (
        "guarded",
        "examples/guarded",
        &[
            "stepgate.toml",
            "lambdas",
            "definitions",
            "policies",
            "models",
            "smoke",
        ],
    ),
];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let mut code = String::from("/// (example, [(path in the project, contents)])\npub const EXAMPLES: &[(&str, &[(&str, &str)])] = &[\n");
    for (name, dir, parts) in EXAMPLES {
        let base = root.join(dir);
        let mut files = Vec::new();
        for part in parts {
            let path = base.join(part);
            println!("cargo:rerun-if-changed={}", path.display());
            collect(&path, &mut files);
        }
        files.sort();
        let _ = writeln!(code, "    ({name:?}, &[");
        for file in files {
            let relative = file
                .strip_prefix(&base)
                .unwrap()
                .to_str()
                .unwrap()
                .replace('\\', "/");
            let _ = writeln!(
                code,
                "        ({relative:?}, include_str!({:?})),",
                file.display().to_string()
            );
        }
        code.push_str("    ]),\n");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("examples.rs");
    std::fs::write(out, code).unwrap();
}

/// Every file under `path` (or `path` itself), but hidden ones and
/// `node_modules`.
fn collect(path: &Path, files: &mut Vec<PathBuf>) {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name.starts_with('.') || name == "node_modules" {
        return;
    }
    if path.is_file() {
        files.push(path.to_path_buf());
    } else if path.is_dir() {
        // A new file in the directory reruns this script.
        println!("cargo:rerun-if-changed={}", path.display());
        for entry in std::fs::read_dir(path).unwrap() {
            collect(&entry.unwrap().path(), files);
        }
    }
}
