//! `stepgate init`: each example, written anywhere, deploys, answers and
//! is destroyed as its README says; the binary's copy of each example is
//! the repository's, file for file; a directory in use is refused.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{stepgate_in, unique};

/// (example, its directory in the repository, what of it a project holds)
const EXAMPLES: [(&str, &str); 4] = [
    ("orders", "."),
    ("recipes", "examples/recipes"),
    ("quote", "examples/quote"),
    ("guarded", "examples/guarded"),
];
const PARTS: [&str; 6] = [
    "stepgate.toml",
    "lambdas",
    "definitions",
    "policies",
    "models",
    "smoke",
];

fn init(dir: &Path, args: &[&str]) -> common::Run {
    let mut cmd = std::process::Command::new(common::binary());
    cmd.arg("init").arg(dir).args(args);
    common::run(cmd)
}

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stepgate-init-{}", unique(name)));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Every file under `dir`, by path relative to `base`.
fn files(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    if dir.is_file() {
        let path = dir
            .strip_prefix(base)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        out.insert(path, std::fs::read_to_string(dir).unwrap());
    } else if dir.is_dir() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy();
            if !name.starts_with('.') && name != "node_modules" {
                files(base, &path, out);
            }
        }
    }
}

#[test]
fn each_example_written_is_the_repositorys_file_for_file() {
    for (example, source) in EXAMPLES {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(source);
        let mut expected = BTreeMap::new();
        for part in PARTS {
            files(&root, &root.join(part), &mut expected);
        }
        let dir = fresh(example);
        let run = init(&dir, &["--example", example]).ok();
        assert!(
            run.stdout
                .contains(&format!("Wrote the {example} example to ")),
            "{}",
            run.stdout
        );
        let mut written = BTreeMap::new();
        files(&dir, &dir, &mut written);
        assert!(
            written.remove("README.md").is_some(),
            "{example}: no README.md"
        );
        assert!(dir.join(".gitignore").is_file(), "{example}: no .gitignore");
        assert_eq!(
            written.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{example}: the files written are not the repository's; rebuild stepgate"
        );
        for (path, text) in &expected {
            assert_eq!(
                &written[path], text,
                "{example}: {path} differs from the repository's"
            );
        }
        // A node test per function.
        for function in std::fs::read_dir(dir.join("lambdas")).unwrap() {
            let function = function.unwrap().path();
            assert!(
                function.join("index.test.js").is_file(),
                "{}: no test",
                function.display()
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_directory_in_use_is_refused_unless_forced() {
    let dir = fresh("busy");
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    init(&dir, &[]).ok(); // hidden entries such as .git do not count
    let again = init(&dir, &["--example", "quote"]);
    assert_eq!(again.code, 1);
    assert_eq!(
        again.stderr.trim_end(),
        format!(
            "error: {} is not empty (it holds README.md and 6 more); name a new or empty directory, or pass --force to write the project over what is there",
            dir.display()
        )
    );
    assert!(!dir.join("lambdas/quote").exists(), "nothing written");
    std::fs::write(dir.join("lambdas/completeOrder/index.js"), "// mine").unwrap();
    init(&dir, &["--force"]).ok();
    let restored = std::fs::read_to_string(dir.join("lambdas/completeOrder/index.js")).unwrap();
    assert_ne!(
        restored, "// mine",
        "--force writes over files of the same name"
    );
    let file = dir.join("README.md");
    let run = init(&file, &[]);
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "error: {} is a file; name a new or empty directory",
            file.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's command line, as a shell would split it (single quotes).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    out.push(word);
    out
}

/// Each example, written to a new directory: its node tests pass, and the
/// README's three commands deploy it, call its route, and destroy it.
#[tokio::test]
async fn each_example_deploys_answers_and_is_destroyed_as_its_readme_says() {
    for (example, expected) in [
        ("orders", "SUCCEEDED "),
        ("recipes", "SUCCEEDED "),
        ("quote", "HTTP 200\n"),
        ("guarded", "HTTP 200\n"),
    ] {
        let dir = fresh(example);
        init(&dir, &["--example", example]).ok();
        let node = std::process::Command::new("node")
            .args(["--test", "lambdas/"])
            .current_dir(&dir)
            .output()
            .expect("run node --test");
        assert!(
            node.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&node.stdout)
        );

        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        let stage = unique("init");
        let commands: Vec<Vec<String>> = readme
            .lines()
            .filter(|l| l.starts_with("stepgate "))
            .take(3)
            .map(|l| {
                words(&l.replace("--stage dev", &format!("--stage {stage}")))
                    .into_iter()
                    .skip(1)
                    .collect()
            })
            .collect();
        let verbs: Vec<&str> = commands.iter().map(|c| c[0].as_str()).collect();
        assert_eq!(
            verbs,
            ["deploy", "invoke", "destroy"],
            "{example}: {readme}"
        );
        for (i, args) in commands.iter().enumerate() {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = stepgate_in(&dir, &args).ok();
            if i == 1 {
                assert!(
                    run.stdout.starts_with(expected),
                    "{example}: {}",
                    run.stdout
                );
            }
        }
        // The stack is named after the example.
        let left = common::leftovers_of(example, &stage).await;
        assert!(left.is_empty(), "{example}: destroy left {left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
