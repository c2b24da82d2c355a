//! Deterministic Lambda packages: the same sources always give the same zip
//! bytes, so the CodeSha256 that Lambda reports changes only when the code
//! does. Entries are sorted, timestamps fixed, permissions normalised.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::limits::{bytes, describe, UNZIPPED_BYTES, ZIPPED_BYTES};

/// A zipped function, ready to upload.
#[derive(Clone, Debug)]
pub struct Package {
    pub zip: Vec<u8>,
    /// base64(sha256(zip)): the form Lambda reports as CodeSha256.
    pub sha256: String,
    /// The files in the zip, by name (relative to the function directory).
    pub files: Vec<String>,
}

/// A file to package: its name in the zip and where to read it.
struct Entry {
    name: String,
    path: PathBuf,
}

/// Zips every file under `dir` except tests and tooling files, which do not
/// belong in the deployed function. Symlinks are followed (a link to a
/// directory is packaged as that directory, under the link's name); a link
/// back into a directory that contains it, a dangling link, a special file
/// (pipe, socket, device) and a name that is not UTF-8 are refused. So are
/// packages over Lambda's size limits, before more than the limit is read.
pub fn package_dir(dir: &Path) -> Result<Package> {
    let mut files = Vec::new();
    let mut size = 0;
    let root =
        std::fs::canonicalize(dir).with_context(|| format!("read directory {}", dir.display()))?;
    collect(dir, dir, "", &mut vec![root], &mut files, &mut size)?;
    if files.is_empty() {
        bail!("{}: no files to package", dir.display());
    }
    // In path order, component by component, as before symlinks were followed.
    files.sort_by(|a, b| a.name.split('/').cmp(b.name.split('/')));
    let mut writer = ZipWriter::new(Capped::default());
    // 1980-01-01 is the zip epoch: a fixed stamp, so mtimes never leak in.
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644);
    let too_big = || {
        anyhow!(
            "{}: the zip is over Lambda's limit of {} for a direct upload; remove what the function does not need",
            dir.display(),
            bytes(ZIPPED_BYTES)
        )
    };
    let mut read = 0;
    for file in &files {
        writer
            .start_file(file.name.as_str(), options)
            .map_err(|e| if over_cap(&e) { too_big() } else { e.into() })?;
        // Streamed, never read whole: at most the unzipped limit in all.
        let mut source = std::fs::File::open(&file.path)
            .with_context(|| format!("read {}", file.path.display()))?
            .take(UNZIPPED_BYTES + 1 - read);
        read += std::io::copy(&mut source, &mut writer).map_err(|e| {
            if e.get_ref().is_some_and(|inner| inner.is::<OverCap>()) {
                too_big()
            } else {
                anyhow!(e).context(format!("read {}", file.path.display()))
            }
        })?;
        if read > UNZIPPED_BYTES {
            bail!("{}", unzipped_too_big(dir, read));
        }
    }
    let zip = writer
        .finish()
        .map_err(|e| if over_cap(&e) { too_big() } else { e.into() })?
        .0
        .into_inner();
    let sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&zip));
    let files = files.into_iter().map(|file| file.name).collect();
    Ok(Package { zip, sha256, files })
}

fn unzipped_too_big(dir: &Path, size: u64) -> String {
    format!(
        "{}: its files come to {}, over Lambda's limit of {} for a package once unzipped; remove what the function does not need",
        dir.display(),
        bytes(size),
        bytes(UNZIPPED_BYTES)
    )
}

fn excluded(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with(".test.js")
        || name.ends_with(".test.mjs")
        || name.ends_with(".test.cjs")
        || name == "test"
        || name == "tests"
}

/// Adds the files under `dir` (named `prefix/...` in the zip) to `out`.
/// `ancestors` are the real paths of the directories being walked, to
/// refuse a symlink back into one of them; `size` adds up the files' sizes,
/// to stop as soon as they pass the unzipped limit.
fn collect(
    root: &Path,
    dir: &Path,
    prefix: &str,
    ancestors: &mut Vec<PathBuf>,
    out: &mut Vec<Entry>,
    size: &mut u64,
) -> Result<()> {
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("read directory {}", dir.display()))?
    {
        let entry = entry?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            bail!(
                "{}: the file name is not valid UTF-8; rename it (a Lambda zip holds UTF-8 names)",
                path.display()
            );
        };
        if excluded(&name) {
            continue;
        }
        let name = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        // Follows symlinks.
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(_) if entry.file_type()?.is_symlink() => {
                if let Some(chain) = symlink_loop(&path) {
                    bail!(
                        "{}: a loop of symlinks ({chain}), which never reaches a file; fix or remove the link",
                        path.display()
                    );
                }
                let target = std::fs::read_link(&path)?;
                bail!(
                    "{}: a symlink to {}, which does not exist; fix or remove the link",
                    path.display(),
                    target.display()
                );
            }
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        if meta.is_dir() {
            let real = std::fs::canonicalize(&path)?;
            if let Some(ancestor) = ancestors.iter().find(|a| **a == real) {
                bail!(
                    "{}: a symlink back to {}, which contains it, so the package would never end; remove the link",
                    path.display(),
                    ancestor.display()
                );
            }
            ancestors.push(real);
            collect(root, &path, &name, ancestors, out, size)?;
            ancestors.pop();
        } else if meta.is_file() {
            *size += meta.len();
            if *size > UNZIPPED_BYTES {
                bail!("{}", unzipped_too_big(root, *size));
            }
            out.push(Entry { name, path });
        } else {
            bail!(
                "{}: is {}, not a regular file or directory; remove it from {}",
                path.display(),
                describe(meta.file_type()),
                root.display()
            );
        }
    }
    Ok(())
}

/// The links followed from `link` when they come back to one already seen
/// ("a -> b -> a"), each named as written; `None` if they end (at nothing).
fn symlink_loop(link: &Path) -> Option<String> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut names = vec![link.file_name()?.to_string_lossy().into_owned()];
    let mut at = link.to_path_buf();
    // The kernel gives up after 40 links; so does this.
    for _ in 0..40 {
        let target = std::fs::read_link(&at).ok()?;
        names.push(target.display().to_string());
        let next = at.parent()?.join(&target);
        let real = next.parent()?.canonicalize().ok()?.join(next.file_name()?);
        if seen.contains(&real)
            || real == link.parent()?.canonicalize().ok()?.join(link.file_name()?)
        {
            return Some(names.join(" -> "));
        }
        seen.push(real);
        at = next;
    }
    Some(names.join(" -> "))
}

/// The zip being written, in memory, refusing to grow past Lambda's limit
/// for a direct upload: a package that cannot be uploaded is never built
/// whole. Once over, it fails that write and discards every later one (the
/// zip writer still finishes the archive when dropped).
#[derive(Default)]
struct Capped(std::io::Cursor<Vec<u8>>, bool);

#[derive(Debug, thiserror::Error)]
#[error("the zip is over the size limit")]
struct OverCap;

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.1 {
            return Ok(buf.len());
        }
        if self.0.position() + buf.len() as u64 > ZIPPED_BYTES {
            self.1 = true;
            return Err(std::io::Error::other(OverCap));
        }
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl Seek for Capped {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
}

/// Whether a zip error is the cap being hit.
fn over_cap(error: &zip::result::ZipError) -> bool {
    match error {
        zip::result::ZipError::Io(e) => e.get_ref().is_some_and(|inner| inner.is::<OverCap>()),
        _ => false,
    }
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
    fn symlinks_are_followed_and_named_as_the_link() {
        let dir = scratch("links");
        let shared = dir.with_extension("shared");
        let _ = std::fs::remove_dir_all(&shared);
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::write(shared.join("helper.js"), "module.exports = 4;\n").unwrap();
        std::os::unix::fs::symlink(&shared, dir.join("shared")).unwrap();
        std::os::unix::fs::symlink("lib/util.js", dir.join("util.js")).unwrap();
        // Two links to one directory are fine: only a link back is a loop.
        std::os::unix::fs::symlink(&shared, dir.join("lib/again")).unwrap();
        let package = package_dir(&dir).unwrap();
        let archive = zip::ZipArchive::new(std::io::Cursor::new(package.zip)).unwrap();
        let names: Vec<&str> = archive.file_names().collect();
        assert_eq!(
            names,
            [
                "index.js",
                "lib/again/helper.js",
                "lib/util.js",
                "shared/helper.js",
                "util.js"
            ]
        );
    }

    /// Streaming each file into the zip gives the bytes that writing it
    /// whole gave, so CodeSha256 of deployed functions does not change.
    #[test]
    fn streamed_files_zip_to_the_same_bytes_as_whole_ones() {
        let dir = scratch("stream");
        let big: String = (0..20_000)
            .map(|i| format!("const v{i} = {i};\n"))
            .collect();
        std::fs::write(dir.join("lib/big.js"), &big).unwrap();
        let mut writer = ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(DateTime::default())
            .unix_permissions(0o644);
        for name in ["index.js", "lib/big.js", "lib/util.js"] {
            writer.start_file(name, options).unwrap();
            writer
                .write_all(&std::fs::read(dir.join(name)).unwrap())
                .unwrap();
        }
        let whole = writer.finish().unwrap().into_inner();
        assert_eq!(package_dir(&dir).unwrap().zip, whole);
    }

    #[test]
    fn entries_keep_path_order() {
        // Component by component: "a/b" sorts before "a-b", as PathBuf does.
        let dir = scratch("order");
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("a/b.js"), "1").unwrap();
        std::fs::write(dir.join("a-b.js"), "2").unwrap();
        let package = package_dir(&dir).unwrap();
        let archive = zip::ZipArchive::new(std::io::Cursor::new(package.zip)).unwrap();
        let names: Vec<&str> = archive.file_names().collect();
        assert_eq!(names, ["a/b.js", "a-b.js", "index.js", "lib/util.js"]);
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
