//! The migration checksum: the build helper computes it into the registry a binary embeds, and
//! backfill computes it for migrations it reads at run time (one copy of the algorithm).
//!
//! Algorithm "v1", frozen: SHA-256 over the source with CRLF/CR turned into LF, trailing whitespace
//! removed from every line and trailing blank lines dropped. Changing it would make every applied
//! migration look edited (refinery #161, Flyway #2027), so any change must come as a new, opt-in version.

use sha2::{Digest, Sha256};

/// The text the checksum covers: LF line endings, no trailing whitespace, no trailing blank lines.
pub fn normalize(source: &str) -> String {
    let unified = source.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = unified.lines().map(str::trim_end).collect();
    let end = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(0, |i| i + 1);
    let mut out = lines[..end].join("\n");
    out.push('\n');
    out
}

/// SHA-256 of [`normalize`]d `source`, as 64 lowercase hex digits.
pub fn checksum(source: &str) -> String {
    let digest = Sha256::digest(normalize(source).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_and_trailing_space_do_not_matter() {
        let a = checksum("fn a() {\n    x();\n\n}\n");
        assert_eq!(a, checksum("fn a() {\r\n    x();   \r\n    \r\n}\r\n\r\n"));
        assert_ne!(a, checksum("fn a() {\n    y();\n\n}\n"));
        assert_eq!(a.len(), 64);
    }
}
