//! What a migration file is called: `V<12 digits>__<snake_case>.rs`.

/// Every version has this many digits, `YYYYMMDDHHMM` (what `backfill new` writes), so that versions
/// sort by the time they were made, as numbers and as text alike.
pub const VERSION_DIGITS: usize = 12;

/// The version and name of `file` (`V202612011200__fill_levels.rs`), or why it is not a migration's
/// name.
pub fn parse(file: &str) -> Result<(i64, String), String> {
    let stem = file.strip_suffix(".rs").ok_or("not a .rs file")?;
    let rest = stem.strip_prefix('V').ok_or("name must start with `V`")?;
    let (digits, name) = rest
        .split_once("__")
        .ok_or("name must be V<version>__<name>.rs")?;
    let digits_only = digits.chars().all(|c| c.is_ascii_digit());
    if digits.len() != VERSION_DIGITS || !digits_only || digits.starts_with('0') {
        return Err(format!(
            "version `{digits}` must have {VERSION_DIGITS} digits (YYYYMMDDHHMM, as `backfill new` writes them) so that versions sort by date"
        ));
    }
    let version: i64 = digits
        .parse()
        .map_err(|_| "version must be a positive integer".to_string())?;
    if !snake_case(name) {
        return Err("name must be snake_case (a-z, 0-9, _), starting with a letter".into());
    }
    Ok((version, name.to_string()))
}

/// Lowercase letters, digits and underscores, starting with a letter.
pub fn snake_case(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn twelve_digits_and_snake_case() {
        assert_eq!(
            parse("V202612011200__fill_levels.rs"),
            Ok((202612011200, "fill_levels".into()))
        );
        for bad in [
            "V20261201__short.rs",
            "V0000000000000__zero.rs",
            "V000000000000__zero.rs",
            "v202612011200__lower_v.rs",
            "V202612011200_one_underscore.rs",
            "V202612011200__Camel.rs",
            "V202612011200__fill.sql",
            "V-20261201120__minus.rs",
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }
}
