//! Progress of a long run, always on stderr: a bar on a terminal, a line every few seconds otherwise
//! (deploy logs), nothing with `--quiet`. The fraction done is the cursor's place in the key range the
//! migration walks, so the ETA costs no counting query.
//!
//! The bar fits the terminal's width (80 columns too): `apply V202611230001 [=====     ] 45% 1200
//! rows 3400 rows/s ETA 12s`, the bar taking what the text leaves. When a signal stops the run, the
//! bar is cleared and the command's [`Tally`] says what it committed, for the final error line.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::error::Error;

/// Without a terminal (a deploy log): one line this often.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// What each finished or stopped run of one command did, in order: for the final line after a signal.
#[derive(Debug, Default)]
pub(crate) struct Tally(Vec<Record>);

/// What one run committed, as its progress ended.
#[derive(Debug)]
pub(crate) struct Record {
    label: String,
    rows: u64,
    batches: u64,
    stopped: bool,
}

pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    label: String,
    span: Option<(i64, i64)>,
    started: Instant,
    last_line: Instant,
    /// Where the pace starts: the ETA is measured from the first update, not the run's start (a
    /// resumed run starts part way through the key range).
    first: Option<Start>,
    /// The reviewed plan's row count (`apply --expect-plan`): the ETA then counts rows to write,
    /// which is truer than the key fraction when eligible rows cluster in part of the range.
    planned: Option<u64>,
    rows: u64,
    batches: u64,
    events: crate::engine::events::Events,
    metrics: crate::engine::metrics::Metrics,
    /// The last update's figures, for the ledger's live row (`status`).
    last: Snapshot,
}

/// The first update: the time, the fraction of keys done (when the range is known) and the rows.
#[derive(Clone, Copy)]
struct Start {
    at: Instant,
    fraction: Option<f64>,
    rows: u64,
}

/// A run's progress as of its last update.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Snapshot {
    pub rows: u64,
    pub batches: u64,
    pub rows_per_second: f64,
    /// The fraction of the key range done, when known.
    pub fraction: Option<f64>,
    pub eta: Option<Duration>,
    /// The plan's row count the ETA is measured against, when there is one.
    pub planned: Option<u64>,
}

/// "apply V202611230001" from "apply V202611230001__competency_versions": the bar's short label.
fn short(label: &str) -> &str {
    label.split("__").next().unwrap_or(label)
}

/// 12s, 3m05s, 1h02m.
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

impl Progress {
    pub(crate) fn new(label: String, quiet: bool, span: Option<(i64, i64)>) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = (!quiet && terminal).then(|| {
            let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
            // `wide_bar` takes the columns the rest leaves, so the line never wraps.
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{wide_bar}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(short(&label).to_string());
            bar.set_message("starting");
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            lines: !quiet && !terminal,
            label,
            span,
            started: now,
            last_line: now,
            first: None,
            planned: None,
            rows: 0,
            batches: 0,
            events: crate::engine::events::Events::default(),
            metrics: crate::engine::metrics::Metrics::default(),
            last: Snapshot::default(),
        }
    }

    /// Measures the ETA against a plan's row count instead of the key fraction.
    pub(crate) fn planned(mut self, rows: Option<u64>) -> Self {
        self.planned = rows;
        self
    }

    /// Also tells the command's events and metrics where the run stands.
    pub(crate) fn watched(mut self, opts: &crate::engine::options::Options) -> Self {
        self.events = opts.events.clone();
        self.metrics = opts.metrics.clone();
        self
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        self.last
    }

    /// The fraction of the key range done, when both the range and the cursor are known.
    fn fraction(&self, cursor: Option<i64>) -> Option<f64> {
        let (lo, hi) = self.span?;
        let done = (cursor? as f64 - lo as f64 + 1.0) / ((hi as f64 - lo as f64 + 1.0).max(1.0));
        Some(done.clamp(0.0, 1.0))
    }

    /// The time left, from the pace since the first update; `None` until there is a pace.
    fn eta(&self, fraction: Option<f64>, rows: u64) -> Option<Duration> {
        let start = self.first?;
        let took = start.at.elapsed().as_secs_f64();
        let (done, left) = match self.planned {
            Some(total) => (
                rows.saturating_sub(start.rows) as f64,
                total.saturating_sub(rows) as f64,
            ),
            None => (fraction? - start.fraction?, 1.0 - fraction?),
        };
        (done > 0.0 && took > 0.0).then(|| Duration::from_secs_f64(took * left / done))
    }

    /// Called after each committed batch with this run's totals so far.
    pub(crate) fn update(&mut self, rows: u64, batches: u64, cursor: Option<i64>) {
        (self.rows, self.batches) = (rows, batches);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = rows as f64 / secs;
        let fraction = self.fraction(cursor);
        let eta = self.eta(fraction, rows);
        if self.first.is_none() && (fraction.is_some() || self.planned.is_some()) {
            self.first = Some(Start {
                at: Instant::now(),
                fraction,
                rows,
            });
        }
        self.events.progress((rows, batches, rate), eta, fraction);
        self.metrics.progress(rows, batches, eta);
        self.last = Snapshot {
            rows,
            batches,
            rows_per_second: rate,
            fraction,
            eta,
            planned: self.planned,
        };
        if let Some(bar) = &self.bar {
            let percent = fraction.map_or_else(String::new, |f| {
                bar.set_position((f * 1000.0) as u64);
                format!("{:.0}% ", f * 100.0)
            });
            let eta = eta.map_or_else(|| "ETA -".into(), |d| format!("ETA {}", human(d)));
            bar.set_message(format!("{percent}{rows} rows {rate:.0} rows/s {eta}"));
        }
        if self.lines && self.last_line.elapsed() >= LINE_EVERY {
            self.last_line = Instant::now();
            let done =
                fraction.map_or_else(String::new, |f| format!("{:.0}% of keys, ", f * 100.0));
            let eta = eta.map_or_else(String::new, |d| format!(", ETA {}", human(d)));
            // Never `eprintln!`: it panics when stderr is a closed pipe.
            let _ = writeln!(
                std::io::stderr(),
                "{}: {done}{} in {}, {rate:.0} rows/s{eta}",
                self.label,
                crate::engine::text::count(rows, "row"),
                crate::engine::text::count(batches, "batch"),
            );
        }
    }

    /// A state that holds the run up (waiting for replicas): on the bar, or one line, unless quiet.
    pub(crate) fn note(&mut self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_string());
        } else if self.lines {
            let _ = writeln!(std::io::stderr(), "{}: {text}", self.label);
        }
    }

    /// Clears the bar; returns what this run committed, for the command's [`Tally`].
    pub(crate) fn finish(&self) -> Record {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        Record {
            label: self.label.clone(),
            rows: self.rows,
            batches: self.batches,
            stopped: crate::signals::requested().is_some(),
        }
    }
}

impl Tally {
    pub(crate) fn push(&mut self, run: Record) {
        self.0.push(run);
    }

    /// `err` as the command reports it: an interruption during a run says what the command
    /// committed ([`Error::Stopped`]); any other error, or one before any run, as it is.
    pub(crate) fn report(&self, err: Error) -> Error {
        match (err, self.committed()) {
            (Error::Interrupted(signal), Some(committed)) => Error::Stopped { signal, committed },
            (err, _) => err,
        }
    }

    /// After a signal stopped a run: exactly what this command committed, e.g. "apply
    /// V202611230001__competency_versions committed 40 rows in 4 batches before it stopped", with
    /// the runs that finished before it. `None` when no run was under way.
    fn committed(&self) -> Option<String> {
        let runs = &self.0;
        let stopped = runs.iter().rev().find(|r| r.stopped)?;
        let mut text = format!(
            "{} committed {} in {} before it stopped",
            stopped.label,
            crate::engine::text::count(stopped.rows, "row"),
            crate::engine::text::count(stopped.batches, "batch")
        );
        let finished: Vec<String> = runs
            .iter()
            .filter(|r| !r.stopped)
            .map(|r| {
                format!(
                    "{} ({})",
                    r.label,
                    crate::engine::text::count(r.rows, "row")
                )
            })
            .collect();
        if !finished.is_empty() {
            text.push_str(&format!(", after finishing {}", finished.join(", ")));
        }
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(label: &str, rows: u64, batches: u64, stopped: bool) -> Record {
        Record {
            label: label.to_string(),
            rows,
            batches,
            stopped,
        }
    }

    #[test]
    fn a_signal_reports_what_the_commands_runs_committed() {
        let mut tally = Tally::default();
        assert!(matches!(
            tally.report(Error::Interrupted(2)),
            Error::Interrupted(2)
        ));
        tally.push(run("apply V1__a", 1, 1, false));
        tally.push(run("apply V2__b", 40, 4, true));
        let err = tally.report(Error::Interrupted(2));
        assert_eq!(err.exit_code(), 130);
        assert_eq!(
            err.to_string(),
            "interrupted by SIGINT: apply V2__b committed 40 rows in 4 batches before it stopped, \
             after finishing apply V1__a (1 row); rerun the same command to resume"
        );
        assert!(matches!(
            tally.report(Error::Runtime("x".into())),
            Error::Runtime(_)
        ));
    }
}
