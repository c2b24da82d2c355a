//! Deterministic Lambda packages: the same sources always give the same zip
//! bytes, so the CodeSha256 that Lambda reports changes only when the code
//! does. Entries are sorted, timestamps fixed, permissions normalised.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// A zipped function, ready to upload.
#[derive(Clone, Debug)]
pub struct Package {
    pub zip: Vec<u8>,
    /// base64(sha256(zip)): the form Lambda reports as CodeSha256.
    pub sha256: String,
}

/// Zips every file under `dir` except tests and tooling files, which do not
/// belong in the deployed function.
pub fn package_dir(dir: &Path) -> Result<Package> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    if files.is_empty() {
        bail!("{}: no files to package", dir.display());
    }
    files.sort();
    let mut writer = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // 1980-01-01 is the zip epoch: a fixed stamp, so mtimes never leak in.
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644);
    for rel in &files {
        let name = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let bytes = std::fs::read(dir.join(rel))
            .with_context(|| format!("read {}", dir.join(rel).display()))?;
        writer.start_file(name.as_str(), options)?;
        writer.write_all(&bytes)?;
    }
    let zip = writer.finish()?.into_inner();
    let sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&zip));
    Ok(Package { zip, sha256 })
}

fn excluded(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with(".test.js")
        || name.ends_with(".test.mjs")
        || name.ends_with(".test.cjs")
        || name == "test"
        || name == "tests"
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("read directory {}", dir.display()))?
    {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if excluded(&name) {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect(root, &path, out)?;
        } else {
            out.push(path.strip_prefix(root).expect("under root").to_path_buf());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("stepgate-pkg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        std::fs::write(dir.join("index.js"), "exports.h = async () => 1;\n").unwrap();
        std::fs::write(dir.join("lib/util.js"), "module.exports = 2;\n").unwrap();
        std::fs::write(dir.join("index.test.js"), "test\n").unwrap();
        dir
    }

    #[test]
    fn same_sources_give_same_bytes_even_after_touching_files() {
        let dir = scratch("same");
        let first = package_dir(&dir).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        // Rewrite with identical content: mtime changes, bytes must not.
        std::fs::write(dir.join("index.js"), "exports.h = async () => 1;\n").unwrap();
        let second = package_dir(&dir).unwrap();
        assert_eq!(first.zip, second.zip);
        assert_eq!(first.sha256, second.sha256);
    }

    #[test]
    fn changed_code_changes_the_hash_and_tests_are_left_out() {
        let dir = scratch("changed");
        let before = package_dir(&dir).unwrap();
        let archive = zip::ZipArchive::new(std::io::Cursor::new(before.zip.clone())).unwrap();
        let names: Vec<&str> = archive.file_names().collect();
        assert_eq!(names, ["index.js", "lib/util.js"]);
        std::fs::write(dir.join("index.js"), "exports.h = async () => 3;\n").unwrap();
        assert_ne!(before.sha256, package_dir(&dir).unwrap().sha256);
    }

    #[test]
    fn the_repo_lambdas_package_deterministically() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("lambdas/completeOrder");
        assert_eq!(
            package_dir(&dir).unwrap().sha256,
            package_dir(&dir).unwrap().sha256
        );
    }
}
