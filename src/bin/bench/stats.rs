//! The machine, its load, and the statistics of repeated runs (median, spread), as the tables show them.

use std::time::Duration;

pub(crate) fn machine() -> String {
    let cores = cores();
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {:.1} GiB memory, Linux {kernel}",
        mem_kb / 1024.0 / 1024.0
    )
}

/// The machine's 1-minute load average, sampled in the background while one dialect is measured:
/// on a shared machine other work takes CPU from one side of a ratio or the other, and a figure
/// must say so in its own table, not in a note beside it.
pub(crate) struct LoadWatch {
    pub(crate) samples: std::sync::Arc<std::sync::Mutex<Samples>>,
    pub(crate) stop: std::sync::mpsc::Sender<()>,
    pub(crate) thread: std::thread::JoinHandle<()>,
}

impl LoadWatch {
    pub(crate) const EVERY: Duration = Duration::from_secs(2);

    pub(crate) fn start() -> LoadWatch {
        let samples = std::sync::Arc::new(std::sync::Mutex::new(Samples::default()));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let shared = samples.clone();
        let thread = std::thread::spawn(move || loop {
            if let (Some(load), Ok(mut s)) = (load_1min(), shared.lock()) {
                s.values.push(load);
            }
            if stopped.recv_timeout(Self::EVERY) != Err(std::sync::mpsc::RecvTimeoutError::Timeout)
            {
                return;
            }
        });
        LoadWatch {
            samples,
            stop,
            thread,
        }
    }

    pub(crate) fn finish(self) -> Samples {
        let _ = self.stop.send(());
        let _ = self.thread.join();
        self.samples.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The first field of `/proc/loadavg`; `None` where there is none (not Linux).
pub(crate) fn load_1min() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Busy: more runnable work than cores over the run (median 1-minute load above the core count).
/// The bench itself keeps about one core busy (two with `--jobs 2`), so an idle machine stays below.
pub(crate) fn busy(load: f64) -> bool {
    load > cores() as f64
}

/// `median (min–max) on N cores`, and a flag when the machine was busy.
pub(crate) fn show_load(load: &Samples) -> String {
    if load.is_empty() {
        return "not measured (no /proc/loadavg)".into();
    }
    let flag = if busy(load.median()) {
        ": **busy machine** (more runnable work than cores: other work shared the CPU; the absolute times are inflated and a ratio may be skewed where a burst hit one side only)"
    } else {
        ": idle enough (below the core count)"
    };
    format!(
        "{} on {} cores{flag}",
        load.show(|l| format!("{l:.1}")),
        cores()
    )
}

/// Repeated measurements of one figure, each with the machine's 1-minute load average when it was
/// taken: a ratio's two sides are measured minutes apart, and a burst of other work may hit one only.
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples {
    pub(crate) values: Vec<f64>,
    pub(crate) loads: Vec<f64>,
}

impl Samples {
    /// Values derived from measurements (ratios, rates), which carry no load of their own.
    pub(crate) fn of(values: Vec<f64>) -> Samples {
        Samples {
            values,
            loads: Vec::new(),
        }
    }
    /// Values measured just now (e.g. every batch of one process), under one load sample.
    pub(crate) fn now(values: Vec<f64>) -> Samples {
        Samples {
            values,
            loads: load_1min().into_iter().collect(),
        }
    }
    /// One measurement that has just ended.
    pub(crate) fn push(&mut self, v: f64) {
        self.values.push(v);
        self.loads.extend(load_1min());
    }
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    pub(crate) fn sorted(&self) -> Vec<f64> {
        sorted(&self.values)
    }
    pub(crate) fn median(&self) -> f64 {
        median(&self.values)
    }
    pub(crate) fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }
    pub(crate) fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }
    /// `median (min–max)` with `fmt` for each value.
    pub(crate) fn show(&self, fmt: fn(f64) -> String) -> String {
        if self.values.len() < 2 {
            return fmt(self.median());
        }
        format!(
            "{} ({}–{})",
            fmt(self.median()),
            fmt(self.min()),
            fmt(self.max())
        )
    }
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn median(values: &[f64]) -> f64 {
    let v = sorted(values);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// A table cell: the 1-minute load over every measurement of a row's figures, `median (min–max)`,
/// flagged **busy** when the median is above the core count.
pub(crate) fn load_cell(of: &[&Samples]) -> String {
    let all: Vec<f64> = of.iter().flat_map(|s| s.loads.iter().copied()).collect();
    if all.is_empty() {
        return "–".into();
    }
    let m = median(&all);
    let (lo, hi) = (sorted(&all)[0], sorted(&all)[all.len() - 1]);
    let flag = if busy(m) { " **busy**" } else { "" };
    if hi - lo < 0.05 {
        format!("{m:.1}{flag}")
    } else {
        format!("{m:.1} ({lo:.1}–{hi:.1}){flag}")
    }
}

pub(crate) fn secs(s: f64) -> String {
    if s.is_nan() {
        "n/a".into()
    } else if s >= 10.0 {
        format!("{s:.1} s")
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.0} ms", s * 1000.0)
    }
}

pub(crate) fn ratio(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}×")
    } else {
        format!("{x:.2}×")
    }
}

pub(crate) fn rate(r: f64) -> String {
    if r >= 10_000.0 {
        format!("{:.0}k rows/s", r / 1000.0)
    } else {
        format!("{r:.0} rows/s")
    }
}

pub(crate) fn mib(kb: f64) -> String {
    format!("{:.1} MiB", kb / 1024.0)
}

pub(crate) fn yes(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**no**"
    }
}

pub(crate) fn max_secs(batches: &[Duration]) -> f64 {
    batches
        .iter()
        .map(Duration::as_secs_f64)
        .fold(0.0, f64::max)
}
