//! Every size limit stepgate enforces before an AWS call, and bounded reads:
//! no file stepgate reads (orders, configuration, sources) can make it read
//! without limit, whatever it turns out to be (a device, a pipe, a huge file).
//! docs/errors.md cites the AWS documentation for each AWS limit.

use std::io::Read;
use std::path::Path;

/// Step Functions: the largest input an execution accepts (an order).
pub const ORDER_BYTES: u64 = 262_144;
/// Step Functions: the largest state machine definition.
pub const DEFINITION_BYTES: u64 = 1_048_576;
/// The largest definition file read. The file may be indented more than the
/// definition stepgate sends, so the exact check is on what is sent.
pub const DEFINITION_FILE_BYTES: u64 = 4 * DEFINITION_BYTES;
/// The largest config or policy file read; either is a few hundred bytes.
pub const DOCUMENT_BYTES: u64 = 1_048_576;

/// Lambda: the largest .zip uploaded directly (not through S3).
pub const ZIPPED_BYTES: u64 = 50 * 1024 * 1024;
/// Lambda: the largest package once unzipped.
pub const UNZIPPED_BYTES: u64 = 250 * 1024 * 1024;

/// `1048576` as `1,048,576 bytes`.
pub fn bytes(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    format!("{out} bytes")
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("larger than {}", bytes(*limit))]
    TooLarge { limit: u64 },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads at most `limit` bytes of `path`; more is `TooLarge`.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut data = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(data)
}

/// `read_bounded`, as UTF-8 text.
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read_bounded(path, limit)?).map_err(|_| {
        ReadError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8 text",
        ))
    })
}

/// What `path` is, if it exists and is not a regular file (following
/// symlinks): reading a named pipe would block, reading a device might never
/// end, so project files must be regular files.
pub fn not_regular(path: &Path) -> Option<&'static str> {
    let file_type = std::fs::metadata(path).ok()?.file_type();
    if file_type.is_file() {
        return None;
    }
    Some(describe(file_type))
}

/// "a directory", "a named pipe", "a socket", "a device", ...
pub fn describe(file_type: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a named pipe";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_block_device() || file_type.is_char_device() {
            return "a device";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symlink"
    } else if file_type.is_file() {
        "a file"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_are_grouped_in_thousands() {
        for (n, text) in [
            (0, "0 bytes"),
            (999, "999 bytes"),
            (1000, "1,000 bytes"),
            (262_144, "262,144 bytes"),
            (52_428_800, "52,428,800 bytes"),
        ] {
            assert_eq!(bytes(n), text);
        }
    }

    #[test]
    fn reads_stop_at_the_limit_even_on_an_endless_device() {
        let error = read_bounded(Path::new("/dev/zero"), 1000).unwrap_err();
        assert_eq!(error.to_string(), "larger than 1,000 bytes");
        let file = std::env::temp_dir().join(format!("stepgate-limits-{}", std::process::id()));
        std::fs::write(&file, "exactly").unwrap();
        assert_eq!(read_text(&file, 7).unwrap(), "exactly");
        assert!(matches!(
            read_text(&file, 6),
            Err(ReadError::TooLarge { limit: 6 })
        ));
        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        assert_eq!(
            read_text(&file, 10).unwrap_err().to_string(),
            "not UTF-8 text"
        );
        let _ = std::fs::remove_file(&file);
    }
}
