//! `stepgate graph`: the tutorial's and the examples' stacks and machines,
//! as Mermaid and DOT, pinned by snapshots. No AWS: it runs with no
//! credentials and an endpoint nothing listens on.

mod common;

use std::path::{Path, PathBuf};

/// Every project `graph` is pinned for: (name, directory, its machines).
fn projects() -> Vec<(&'static str, PathBuf, &'static str)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    vec![
        ("tutorial", root.to_path_buf(), "OrderProcessor"),
        ("recipes", root.join("examples/recipes"), "RecipeMover"),
        ("quote", root.join("examples/quote"), "Quote"),
    ]
}

/// Runs `stepgate graph ARGS` in `dir` with no AWS settings at all.
fn graph(dir: &Path, args: &[&str]) -> common::Run {
    let mut cmd = std::process::Command::new(common::binary());
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") || key.starts_with("STEPGATE_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir)
        .arg("graph")
        .args(args)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        );
    common::run(cmd)
}

/// Each drawing: (snapshot name, directory, arguments).
fn drawings() -> Vec<(String, PathBuf, Vec<String>)> {
    let mut all = Vec::new();
    for (name, dir, machine) in projects() {
        for format in ["mermaid", "dot"] {
            let f = vec!["--format".to_string(), format.to_string()];
            all.push((format!("{name}_stack_{format}"), dir.clone(), f.clone()));
            let mut m = f.clone();
            m.extend(["--state-machine".to_string(), machine.to_string()]);
            all.push((format!("{name}_machine_{format}"), dir.clone(), m));
        }
    }
    all
}

#[test]
fn the_stacks_and_their_machines_as_mermaid_and_dot() {
    for (name, dir, args) in drawings() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = graph(&dir, &args).ok();
        assert!(run.stderr.is_empty(), "{name}: {}", run.stderr);
        insta::assert_snapshot!(name, run.stdout);
    }
}

#[test]
fn mermaid_is_the_default_and_an_unknown_machine_is_named() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = graph(root, &[]).ok();
    assert!(run.stdout.starts_with("flowchart LR\n"), "{}", run.stdout);
    let run = graph(root, &["--state-machine", "OrderProcesor"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr.trim_end(),
        "error: --state-machine OrderProcesor: the project has no state machine OrderProcesor (did you mean OrderProcessor?); it has OrderProcessor"
    );
}

/// Every DOT drawing parses with Graphviz. Needs `dot` (Debian's
/// graphviz), which CI does not install: run by tests/graph/check.sh.
#[test]
#[ignore = "needs graphviz: run tests/graph/check.sh"]
fn every_dot_drawing_parses_with_graphviz() {
    for (name, dir, args) in drawings().into_iter().filter(|(n, ..)| n.ends_with("_dot")) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let text = graph(&dir, &args).ok().stdout;
        let out = pipe("dot", &["-Tsvg"], &text);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every Mermaid drawing renders with mermaid-cli (`mmdc`): run by
/// tests/graph/check.sh, which installs it.
#[test]
#[ignore = "needs mermaid-cli: run tests/graph/check.sh"]
fn every_mermaid_drawing_renders_with_mermaid_cli() {
    let mmdc = std::env::var("STEPGATE_MMDC").unwrap_or_else(|_| "mmdc".into());
    let out_dir = std::env::temp_dir().join(format!("stepgate-mmdc-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    for (name, dir, args) in drawings()
        .into_iter()
        .filter(|(n, ..)| n.ends_with("_mermaid"))
    {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let input = out_dir.join(format!("{name}.mmd"));
        std::fs::write(&input, graph(&dir, &args).ok().stdout).unwrap();
        let svg = out_dir.join(format!("{name}.svg"));
        let mut cmd = std::process::Command::new(&mmdc);
        cmd.arg("-i").arg(&input).arg("-o").arg(&svg);
        if let Ok(config) = std::env::var("STEPGATE_MMDC_PUPPETEER_CONFIG") {
            cmd.args(["-p", &config]);
        }
        let out = cmd.output().expect("run mmdc");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            std::fs::read_to_string(&svg).unwrap().contains("<svg"),
            "{name}"
        );
    }
}

fn pipe(program: &str, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The README shows the tutorial's graph as `stepgate graph` draws it.
#[test]
fn the_readme_shows_the_tutorials_graph_as_drawn() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let drawn = graph(root, &[]).ok().stdout;
    assert!(
        readme.contains(&format!("```mermaid\n{drawn}```\n")),
        "README.md's Mermaid block differs from `stepgate graph`; paste its output:\n{drawn}"
    );
}
