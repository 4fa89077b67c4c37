//! Progress of a long run, always on stderr: a bar on a terminal, a line every few seconds otherwise
//! (deploy logs), nothing with `--quiet`. The fraction done is the cursor's place in the key range the
//! migration walks, so the ETA costs no counting query.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const LINE_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    label: String,
    span: Option<(i64, i64)>,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    pub fn new(label: String, quiet: bool, span: Option<(i64, i64)>) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = (!quiet && terminal).then(|| {
            let len = span.map_or(0, |(lo, hi)| (hi - lo + 1).max(0) as u64);
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            let template = "{prefix} [{bar:30}] {percent}% {msg} elapsed {elapsed} ETA {eta}";
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(label.clone());
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
        }
    }

    /// The fraction of the key range done, when both the range and the cursor are known.
    fn fraction(&self, cursor: Option<i64>) -> Option<f64> {
        let (lo, hi) = self.span?;
        let done = (cursor? - lo + 1) as f64 / ((hi - lo + 1).max(1) as f64);
        Some(done.clamp(0.0, 1.0))
    }

    pub fn update(&mut self, rows: u64, batches: u64, cursor: Option<i64>) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = rows as f64 / secs;
        if let Some(bar) = &self.bar {
            if let (Some((lo, _)), Some(c)) = (self.span, cursor) {
                bar.set_position((c - lo + 1).max(0) as u64);
            }
            bar.set_message(format!("{rows} rows, {rate:.0} rows/s"));
        }
        if self.lines && self.last_line.elapsed() >= LINE_EVERY {
            self.last_line = Instant::now();
            let (done, eta) = match self.fraction(cursor) {
                Some(f) if f > 0.0 => (
                    format!("{:.0}% of keys, ", f * 100.0),
                    format!(", ETA {:.0}s", secs / f - secs),
                ),
                _ => (String::new(), String::new()),
            };
            // Never `eprintln!`: it panics when stderr is a closed pipe.
            let _ = writeln!(
                std::io::stderr(),
                "{}: {done}{rows} rows in {batches} batches, {rate:.0} rows/s{eta}",
                self.label
            );
        }
    }

    /// A state that holds the run up (waiting for replicas): on the bar, or one line, unless quiet.
    pub fn note(&mut self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_string());
        } else if self.lines {
            let _ = writeln!(std::io::stderr(), "{}: {text}", self.label);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
