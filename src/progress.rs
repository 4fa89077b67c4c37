//! Progress of a long run, always on stderr: a bar on a terminal, a line every few seconds otherwise
//! (deploy logs), nothing with `--quiet`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

const LINE_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    label: String,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    pub fn new(label: String, quiet: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = (!quiet && terminal).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} {spinner} {human_pos} rows, {per_sec}, {elapsed}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(label.clone());
            bar
        });
        Progress {
            bar,
            lines: !quiet && !terminal,
            label,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    pub fn update(&mut self, rows: u64, batches: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(rows);
        }
        if self.lines && self.last_line.elapsed() >= LINE_EVERY {
            self.last_line = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            eprintln!(
                "{}: {rows} rows in {batches} batches, {:.0} rows/s",
                self.label,
                rows as f64 / secs
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
