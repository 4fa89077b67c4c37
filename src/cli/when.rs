//! Parsing `--since`: a date, a date and time (UTC), or an age like `24h`, `7d`, `30m`.

use crate::error::{Error, Result};
use chrono::{Duration, NaiveDate, NaiveDateTime, Utc};

pub(crate) fn parse(text: &str) -> Result<NaiveDateTime> {
    let t = text.trim();
    if let Ok(dt) = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S") {
        return Ok(dt);
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S") {
        return Ok(dt);
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default());
    }
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: i64 = num.parse().map_err(|_| bad(text))?;
    let age = match unit {
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        _ => None,
    }
    .ok_or_else(|| bad(text))?;
    // An age beyond the calendar's range would overflow (and panic) on subtraction.
    Utc::now()
        .naive_utc()
        .checked_sub_signed(age)
        .ok_or_else(|| bad(text))
}

fn bad(text: &str) -> Error {
    Error::Usage(format!(
        "--since `{text}` is not a time; use 2026-11-25, \"2026-11-25 10:00:00\" (UTC) or an age like 24h, 7d"
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn forms() {
        assert!(super::parse("2026-11-25").is_ok());
        assert!(super::parse("2026-11-25 10:00:00").is_ok());
        assert!(super::parse("24h").is_ok());
        assert!(super::parse("yesterday").is_err());
        assert!(super::parse("5y").is_err());
    }
}
