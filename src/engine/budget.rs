//! Where a command's runs must stop, or wait, whatever the operator does meanwhile: `--limit` (about
//! N rows, a canary), `--run-for` and `--until` (a deadline), `--window` (days and hours in a zone
//! of the tz database), and `--wait-for-window` (wait outside the window instead of stopping). A
//! stop is at a checkpoint, exit 6, and the next run goes on from there.

use chrono::{DateTime, Datelike, Duration as Span, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use std::time::Duration;

/// A command's bounds; the default bounds nothing.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    /// `--limit N`: stop once the command wrote about this many rows.
    pub limit: Option<u64>,
    /// `--run-for` / `--until`: stop at this time; the words say which flag set it.
    pub deadline: Option<(DateTime<Utc>, String)>,
    pub window: Option<Window>,
    /// `--wait-for-window`: outside the window, wait for it to open instead of stopping.
    pub wait_for_window: bool,
}

/// What the budget allows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Go,
    /// Outside the window with `--wait-for-window`: no batch until it opens.
    Wait(String),
    /// Stop at this checkpoint, for this reason.
    Halt(String),
}

impl Budget {
    pub(crate) fn verdict(&self, written: u64, now: DateTime<Utc>) -> Verdict {
        if let Some(limit) = self.limit.filter(|l| written >= *l) {
            return Verdict::Halt(format!("--limit {limit} reached ({written} rows written)"));
        }
        if let Some((_, how)) = self.deadline.as_ref().filter(|(at, _)| now >= *at) {
            return Verdict::Halt(format!("{how} reached"));
        }
        let Some(window) = self.window.as_ref().filter(|w| !w.contains(now)) else {
            return Verdict::Go;
        };
        let opens = window
            .next_open(now)
            .map(|at| format!("it opens {}", at.format("%a %Y-%m-%d %H:%M %Z")))
            .unwrap_or_else(|| "it never opens".into());
        match self.wait_for_window {
            true => Verdict::Wait(format!("outside --window {}: {opens}", window.spec)),
            false => Verdict::Halt(format!("outside --window {} ({opens})", window.spec)),
        }
    }

    /// Rows the command may still write under `--limit`, to size the next batch (keys stand for
    /// rows: about one each in a backfill).
    pub(crate) fn room(&self, written: u64) -> Option<u64> {
        self.limit.map(|l| l.saturating_sub(written).max(1))
    }
}

/// `--window "Mon-Fri 22:00-06:00 Europe/Madrid"`: on the days listed (the day the window opens),
/// from one time to the other, in a tz database zone (default UTC). A window whose end is not after
/// its start closes the next day.
#[derive(Debug, Clone)]
pub struct Window {
    pub spec: String,
    days: [bool; 7],
    open: NaiveTime,
    close: NaiveTime,
    zone: Tz,
}

const WINDOW_EXAMPLE: &str = "\"Mon-Fri 22:00-06:00 Europe/Madrid\"";

impl Window {
    pub fn parse(spec: &str) -> Result<Window, String> {
        let bad = |why: String| {
            format!("--window `{spec}`: {why}; write it like {WINDOW_EXAMPLE} (days and zone optional: every day, UTC)")
        };
        let words: Vec<&str> = spec.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| w.contains(':') && w.contains('-'))
            .ok_or_else(|| bad("no HH:MM-HH:MM hours".into()))?;
        let days = match &words[..at] {
            [] => [true; 7],
            [list] => days(list).map_err(bad)?,
            _ => return Err(bad("one day list, like Mon-Fri or Sat,Sun".into())),
        };
        let (open, close) = words[at]
            .split_once('-')
            .ok_or_else(|| bad("no HH:MM-HH:MM hours".into()))?;
        let time = |t: &str| {
            NaiveTime::parse_from_str(t, "%H:%M")
                .map_err(|_| bad(format!("`{t}` is not a time HH:MM")))
        };
        let zone = match &words[at + 1..] {
            [] => Tz::UTC,
            [zone] => zone.parse::<Tz>().map_err(|_| {
                bad(format!(
                    "`{zone}` is not a zone of the tz database (like Europe/Madrid, UTC)"
                ))
            })?,
            _ => return Err(bad("one zone after the hours".into())),
        };
        Ok(Window {
            spec: spec.trim().to_string(),
            days,
            open: time(open)?,
            close: time(close)?,
            zone,
        })
    }

    /// The window that opens on `day` (local), as UTC instants; `None` when that day is not listed.
    fn on(&self, day: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if !self.days[day.weekday().num_days_from_monday() as usize] {
            return None;
        }
        let close_day = if self.close > self.open {
            day
        } else {
            day.succ_opt()?
        };
        Some((
            local(self.zone, day, self.open)?,
            local(self.zone, close_day, self.close)?,
        ))
    }

    pub(crate) fn contains(&self, now: DateTime<Utc>) -> bool {
        let today = now.with_timezone(&self.zone).date_naive();
        [today.pred_opt(), Some(today)]
            .into_iter()
            .flatten()
            .filter_map(|d| self.on(d))
            .any(|(open, close)| open <= now && now < close)
    }

    /// When the window opens next after `now`, in its zone.
    pub(crate) fn next_open(&self, now: DateTime<Utc>) -> Option<DateTime<Tz>> {
        let today = now.with_timezone(&self.zone).date_naive();
        (0..=8)
            .filter_map(|k| today.checked_add_days(chrono::Days::new(k)))
            .filter_map(|d| self.on(d))
            .map(|(open, _)| open)
            .find(|open| *open > now)
            .map(|open| open.with_timezone(&self.zone))
    }
}

/// `day` at `time` in `zone`: the earlier of an hour that happens twice (autumn), and the hour after
/// one that never happens (spring).
fn local(zone: Tz, day: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let naive = day.and_time(time);
    zone.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(naive + Span::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

/// `Mon-Fri`, `Sat,Sun`, `Mon,Wed-Fri`: the days listed, Monday first.
fn days(list: &str) -> Result<[bool; 7], String> {
    let day = |d: &str| {
        d.parse::<Weekday>()
            .map(|w| w.num_days_from_monday() as usize)
            .map_err(|_| format!("`{d}` is not a day (Mon, Tue, … Sun)"))
    };
    let mut set = [false; 7];
    for part in list.split(',') {
        let (from, to) = match part.split_once('-') {
            Some((a, b)) => (day(a)?, day(b)?),
            None => (day(part)?, day(part)?),
        };
        let mut d = from;
        loop {
            set[d] = true;
            if d == to {
                break;
            }
            d = (d + 1) % 7;
        }
    }
    Ok(set)
}

/// `--run-for 90m`, `2h30m`, `45s`, `1d`: a duration of whole units.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad =
        || format!("--run-for `{text}` is not a duration; write it like 90m, 2h30m, 45s or 1d");
    let (mut total, mut number) = (0u64, String::new());
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// `--until HH:MM`: the next time the clock of this host (its local zone, `TZ`) shows it.
pub fn parse_until(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let time = NaiveTime::parse_from_str(text.trim(), "%H:%M").map_err(|_| {
        format!("--until `{text}` is not a time; write it like 06:00 (this host's local time)")
    })?;
    let zone = chrono::Local;
    let today = now.with_timezone(&zone).date_naive();
    [
        Some(today),
        today.succ_opt(),
        today.checked_add_days(chrono::Days::new(2)),
    ]
    .into_iter()
    .flatten()
    .filter_map(|d| zone.from_local_datetime(&d.and_time(time)).earliest())
    .map(|t| t.with_timezone(&Utc))
    .find(|t| *t > now)
    .ok_or_else(|| {
        format!("--until `{text}`: this host's clock never shows that time in the next two days")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("rfc3339")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_night_window_in_a_zone_spans_midnight_on_its_opening_days() {
        let w = Window::parse("Mon-Fri 22:00-06:00 Europe/Madrid").expect("parses");
        // 2026-12-07 is a Monday; Madrid is UTC+1 in December.
        assert!(!w.contains(at("2026-12-07T20:59:00Z")), "Mon 21:59 Madrid");
        assert!(w.contains(at("2026-12-07T21:00:00Z")), "Mon 22:00 Madrid");
        assert!(w.contains(at("2026-12-08T04:59:00Z")), "Tue 05:59 Madrid");
        assert!(!w.contains(at("2026-12-08T05:00:00Z")), "Tue 06:00 Madrid");
        assert!(
            w.contains(at("2026-12-12T04:00:00Z")),
            "Sat 05:00: Friday's window"
        );
        assert!(
            !w.contains(at("2026-12-12T22:00:00Z")),
            "Sat 23:00: no window opens on Saturday"
        );
        let next = w.next_open(at("2026-12-12T22:00:00Z")).expect("opens");
        assert_eq!(
            next.to_rfc3339(),
            "2026-12-14T22:00:00+01:00",
            "Monday night"
        );
    }

    #[test]
    fn a_window_follows_summer_time() {
        let w = Window::parse("09:00-17:00 Europe/Madrid").expect("parses");
        assert!(
            w.contains(at("2026-07-01T07:00:00Z")),
            "09:00 CEST is 07:00 UTC"
        );
        assert!(!w.contains(at("2026-12-01T07:30:00Z")), "08:30 CET");
        assert!(w.contains(at("2026-12-01T08:00:00Z")));
    }

    #[test]
    fn bad_windows_say_what_is_wrong() {
        for (spec, says) in [
            ("Mon-Fri", "no HH:MM-HH:MM"),
            ("Mon-Fry 22:00-06:00", "`Fry` is not a day"),
            ("22:00-25:00", "`25:00` is not a time"),
            ("22:00-06:00 Mars/Olympus", "not a zone of the tz database"),
        ] {
            let err = Window::parse(spec).expect_err(spec);
            assert!(
                err.contains(says) && err.contains("write it like"),
                "{spec}: {err}"
            );
        }
    }

    #[test]
    fn durations_and_budget_verdicts() {
        assert_eq!(parse_duration("2h30m"), Ok(Duration::from_secs(9000)));
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("90").is_err() && parse_duration("0m").is_err());
        assert!(parse_duration("5x").is_err() && parse_duration("").is_err());
        let now = at("2026-12-07T12:00:00Z");
        let limited = Budget {
            limit: Some(100),
            ..Budget::default()
        };
        assert_eq!(limited.verdict(99, now), Verdict::Go);
        assert!(matches!(limited.verdict(100, now), Verdict::Halt(r) if r.contains("--limit 100")));
        assert_eq!(limited.room(60), Some(40));
        let late = Budget {
            deadline: Some((now, "--run-for 1h".into())),
            ..Budget::default()
        };
        assert!(matches!(late.verdict(0, now), Verdict::Halt(r) if r == "--run-for 1h reached"));
        let mut closed = Budget {
            window: Some(Window::parse("Sat 01:00-02:00").expect("parses")),
            ..Budget::default()
        };
        assert!(
            matches!(closed.verdict(0, now), Verdict::Halt(r) if r.contains("opens Sat 2026-12-12 01:00 UTC"))
        );
        closed.wait_for_window = true;
        assert!(matches!(closed.verdict(0, now), Verdict::Wait(_)));
    }
}
