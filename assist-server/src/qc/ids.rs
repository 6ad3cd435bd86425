//! Deterministic call ids for batch QC, so a rerun finds what it already inspected.
//!
//! - Text sources (chat logs, transcripts): `qc:<source>:<conversation id>`, where `<source>`
//!   is 12 hex digits of the SHA-256 of the file's absolute path. The same conversation id in
//!   two different files is two conversations; the same file inspected again is the same.
//! - Recordings: `qc:wav:<24 hex digits of the SHA-256 of the file's bytes>`, so a recording
//!   that was copied or renamed is still recognized.
//!
//! Ids stay within the store's limits (at most 200 bytes, no NUL): a very long conversation id
//! is cut and a hash of the whole id appended.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// The most bytes of a conversation id kept verbatim in the call id.
const MAX_EXTERNAL: usize = 120;

fn hex(bytes: &[u8], digits: usize) -> String {
    bytes
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .take(digits)
        .map(|n| char::from_digit(u32::from(n), 16).unwrap_or('0'))
        .collect()
}

/// The namespace of a text file: a hash of its absolute path.
pub fn source_key(path: &Path) -> String {
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let digest = Sha256::digest(absolute.to_string_lossy().as_bytes());
    hex(&digest, 12)
}

/// The call id of conversation `external` of the text file with namespace `source`.
pub fn text_call_id(source: &str, external: &str) -> String {
    let clean: String = external
        .chars()
        .map(|c| if c == '\0' || c.is_control() { '_' } else { c })
        .collect();
    if clean.len() <= MAX_EXTERNAL {
        return format!("qc:{source}:{clean}");
    }
    let mut cut = MAX_EXTERNAL;
    while !clean.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = Sha256::digest(external.as_bytes());
    format!("qc:{source}:{}~{}", &clean[..cut], hex(&digest, 12))
}

/// The call id of a recording: a hash of its bytes (read in pieces, not loaded whole).
pub fn recording_call_id(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("qc:wav:{}", hex(&hasher.finalize(), 24)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_bounded() {
        assert_eq!(text_call_id("abc", "C-1"), "qc:abc:C-1");
        let long = "x".repeat(500);
        let id = text_call_id("abc", &long);
        assert!(id.len() <= 200, "{}", id.len());
        assert_eq!(id, text_call_id("abc", &long));
        assert_ne!(id, text_call_id("abc", &"x".repeat(501)));
        assert_eq!(text_call_id("abc", "a\0b"), "qc:abc:a_b");
    }
}
