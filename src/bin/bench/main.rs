//! `bench`: measures `backfill` against the fastest single statement doing the same work and against
//! the app's original per-row command, on data from `backfill::fixtures`. See BENCHMARKS.md.
//!
//! For each size (`--sizes`) and dialect it creates its own database (`bf_bench` by default), loads
//! the app's tables and the competencies, and then, `--runs` times, in alternating order so that
//! neither side always runs on a warmer cache:
//! - `backfill plan V` (the release binary, as a process) vs one `GROUP BY` count;
//! - every single-statement form of the apply it knows for the dialect (the migration's own, the
//!   grouped derived table, the per-entity subquery, an anti-join, `DISTINCT ON`), each one
//!   `INSERT … SELECT` in one transaction followed by one `DELETE` by marker: the fastest is "the best
//!   single statement";
//! - `backfill apply V` and `backfill revert V` with 1 job and with `--jobs N`, as processes, their
//!   batch durations read from their own debug log (one line per committed batch);
//! - the old way (the app's original command, emulated statement by statement) on a subset.
//!
//! Then an optional batch-size sweep (in process), and the no-op `apply` wall time. It prints markdown
//! tables on stdout (per dialect, then the growth table across sizes), writes SVG plots (rows/s against
//! size; batch durations over a run), logs progress on stderr, and drops its databases (unless
//! `--keep`).

use crate::databases::Kind;
use crate::dialect::Bench;
use crate::figures::GrowthPoint;
use crate::reference::default_batching;
use crate::report::growth_table;
use crate::stats::machine;
use anyhow::{anyhow, bail, Context as _, Result};
use backfill::registry::{self};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

mod databases;
mod dialect;
mod figures;
mod measures;
mod old_way;
mod plots;
mod process;
mod reference;
mod report;
mod stats;
mod timed;
mod update_shape;

/// The migration measured: the competency_versions backfill.
pub(crate) const MIGRATION: &str = "competency_versions";

/// Benchmark harness for backfill (see BENCHMARKS.md).
#[derive(Debug, Parser)]
#[command(name = "bench")]
pub(crate) struct Args {
    /// Competencies to generate (the fixture generator's size).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) size: u64,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Repetitions of every measurement (medians and min–max are reported).
    #[arg(long, default_value_t = 3)]
    pub(crate) runs: usize,
    /// Dialects to measure, comma-separated: postgres, mariadb, sqlite.
    #[arg(long, value_delimiter = ',', default_value = "postgres,mariadb")]
    pub(crate) dialects: Vec<String>,
    /// The backfill binary to run (default: `backfill` next to this binary).
    #[arg(long)]
    pub(crate) binary: Option<PathBuf>,
    /// Administrative PostgreSQL URL (the benchmark database is created next to it).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub(crate) pg_admin: String,
    /// Administrative MariaDB/MySQL URL.
    #[arg(long, default_value = "mysql://root@127.0.0.1:3306/mysql")]
    pub(crate) mariadb_admin: String,
    /// Name of the benchmark database (created and dropped by the harness).
    #[arg(long, default_value = "bf_bench")]
    pub(crate) db_name: String,
    /// Old way: stop each run after writing this many rows (it is far too slow for the full size).
    #[arg(long, default_value_t = 1_000)]
    pub(crate) old_way_rows: u64,
    /// Old way: stop each run after this many seconds, whatever it wrote.
    #[arg(long, default_value_t = 60)]
    pub(crate) old_way_seconds: u64,
    /// Batch sizes of the sweep, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "500,1000,2000,5000,10000,20000,50000"
    )]
    pub(crate) sweep: Vec<u64>,
    /// Batch-duration targets of the sweep (`--batch-ms`), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "150,300,600")]
    pub(crate) sweep_ms: Vec<u64>,
    /// Skip the batch-size sweep.
    #[arg(long)]
    pub(crate) no_sweep: bool,
    /// Repetitions of each sweep point.
    #[arg(long, default_value_t = 1)]
    pub(crate) sweep_runs: usize,
    /// Repetitions of the no-op apply.
    #[arg(long, default_value_t = 10)]
    pub(crate) noop_runs: usize,
    /// Log where the in-process runs spend their time, per statement (stderr).
    #[arg(long)]
    pub(crate) profile: bool,
    /// Keep the benchmark databases afterwards.
    #[arg(long)]
    pub(crate) keep: bool,
    /// Sizes to measure one after the other (comma-separated), for the growth table and plot;
    /// default: --size.
    #[arg(long, value_delimiter = ',')]
    pub(crate) sizes: Vec<u64>,
    /// Workers of the parallel figures (`apply --jobs N`, `revert --jobs N`).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(2..=64))]
    pub(crate) jobs: u64,
    /// Runs that also measure the old way (the first ones; it takes long and varies little).
    #[arg(long, default_value_t = 1)]
    pub(crate) old_way_runs: usize,
    /// Directory for the SVG plots (rows/s against size; batch durations over a run) and the
    /// figures they are drawn from (`growth.json`).
    #[arg(long, default_value = "bench-plots")]
    pub(crate) plots: PathBuf,
    /// Measure nothing: draw the plots again from a `growth.json` an earlier run saved.
    #[arg(long, value_name = "FILE")]
    pub(crate) replot: Option<PathBuf>,
    /// Only create and load the databases, keep them, measure nothing (for EXPLAIN by hand).
    #[arg(long)]
    pub(crate) load_only: bool,
    /// Measure on the database a `--load-only` run kept (`--db-name`, one size), without creating
    /// or loading it again: it must be as loaded (the migration not applied). Kept afterwards.
    #[arg(long, conflicts_with = "load_only")]
    pub(crate) reuse: bool,
    /// Skip the UPDATE shape's figures (the example `V202611300001` over one version row per
    /// competency, against one `UPDATE`).
    #[arg(long)]
    pub(crate) no_update_shape: bool,
    /// Measure only the UPDATE shape (no competency runs, sweep or no-op): a quick before/after of
    /// the shape alone, e.g. on a `--reuse`d database.
    #[arg(long, conflicts_with = "no_update_shape")]
    pub(crate) update_shape_only: bool,
    /// Also run `apply` and `revert` with `--batch-size N` (every batch N keys) and report their
    /// median batch: at a fixed size, a batch that costs O(batch) takes as long at any table size.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) fixed_batch: Option<u64>,
    /// Measure only the `--fixed-batch` apply and revert (their batches and the pages they read),
    /// e.g. on a `--reuse`d database under another server cache size.
    #[arg(long, requires = "fixed_batch", conflicts_with = "update_shape_only")]
    pub(crate) fixed_batch_only: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    log("starting");
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if let Some(file) = &args.replot {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let growth: Vec<GrowthPoint> =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        print!("{}", growth_table(&growth, args.jobs));
        for path in plots::write(&args.plots, &growth, args.jobs)? {
            println!("plot: {}", path.display());
        }
        return Ok(());
    }
    let binary = backfill_binary(args)?;
    let reg = registry::all()
        .iter()
        .find(|r| r.name == MIGRATION)
        .ok_or_else(|| anyhow!("this build has no {MIGRATION} migration"))?;
    let machine = machine();
    let sizes = if args.sizes.is_empty() {
        vec![args.size]
    } else {
        args.sizes.clone()
    };
    let mut out = header(args, &sizes, &binary, &machine);
    let mut growth = Vec::new();
    for &size in &sizes {
        for name in &args.dialects {
            let kind = Kind::parse(name)?;
            let bench = Bench::new(args, size, kind, &binary, reg)?;
            let (report, point) = bench.run()?;
            out.push('\n');
            out.push_str(&report);
            growth.extend(point);
            // Print as we go: a long run should not lose a finished dialect to a later failure.
            print!("{}", std::mem::take(&mut out));
        }
    }
    if !growth.is_empty() {
        print!("\n{}", growth_table(&growth, args.jobs));
        let written = plots::write(&args.plots, &growth, args.jobs)?;
        let saved = args.plots.join("growth.json");
        std::fs::write(&saved, serde_json::to_string_pretty(&growth)?)
            .with_context(|| format!("writing {}", saved.display()))?;
        for path in written {
            println!("plot: {}", path.display());
        }
    }
    Ok(())
}

/// The `backfill` binary measured: `--binary`, or the one next to this harness.
fn backfill_binary(args: &Args) -> Result<PathBuf> {
    let binary = match &args.binary {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(|d| d.join("backfill"))
            .ok_or_else(|| anyhow!("cannot locate the backfill binary; pass --binary"))?,
    };
    if !binary.is_file() {
        bail!(
            "no backfill binary at {}; build it (cargo build --release) or pass --binary",
            binary.display()
        );
    }
    Ok(binary)
}

/// The report's title and how to reproduce it.
fn header(args: &Args, sizes: &[u64], binary: &Path, machine: &str) -> String {
    let shown: Vec<String> = sizes.iter().map(u64::to_string).collect();
    let mut out = String::new();
    out.push_str(&format!(
        "# backfill bench: {} competencies (seed {}), {} run(s), default batching: {}, parallel: --jobs {}\n\n",
        shown.join(", "),
        args.seed,
        args.runs,
        default_batching(),
        args.jobs
    ));
    out.push_str(&format!("machine: {machine}\n"));
    out.push_str(&format!("binary: {}\n", binary.display()));
    out.push_str(&format!(
        "reproduce: target/release/bench --sizes {} --runs {} --dialects {}  (make bench SIZE=N for one size)\n",
        shown.join(","),
        args.runs,
        args.dialects.join(",")
    ));
    out
}

fn log(msg: impl AsRef<str>) {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let t = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    eprintln!("bench [{t:7.1}s] {}", msg.as_ref());
}
