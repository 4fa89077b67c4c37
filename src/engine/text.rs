//! Words for counts in what the engine prints and records (progress lines, outcomes, the audit row).

/// "1 row", "2 rows", "1 batch", "3 batches".
pub(crate) fn count(n: u64, noun: &str) -> String {
    match (n, noun.ends_with(['s', 'h'])) {
        (1, _) => format!("1 {noun}"),
        (_, true) => format!("{n} {noun}es"),
        _ => format!("{n} {noun}s"),
    }
}
