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

use anyhow::{anyhow, bail, Context as _, Result};
use backfill::db::admin::Scratch;
use backfill::db::{self, DbResult, Dialect, Row, Session, Target, Tx, Value};
use backfill::engine::runner::{self, Options, Selection};
use backfill::fixtures::{self, Loaded, Shape};
use backfill::registry::{self, Registered};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The migration measured: the competency_versions backfill.
const MIGRATION: &str = "competency_versions";

/// Benchmark harness for backfill (see BENCHMARKS.md).
#[derive(Debug, Parser)]
#[command(name = "bench")]
struct Args {
    /// Competencies to generate (the fixture generator's size).
    #[arg(long, default_value_t = 100_000)]
    size: u64,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Repetitions of every measurement (medians and min–max are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Dialects to measure, comma-separated: postgres, mariadb, sqlite.
    #[arg(long, value_delimiter = ',', default_value = "postgres,mariadb")]
    dialects: Vec<String>,
    /// The backfill binary to run (default: `backfill` next to this binary).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Administrative PostgreSQL URL (the benchmark database is created next to it).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg_admin: String,
    /// Administrative MariaDB/MySQL URL.
    #[arg(long, default_value = "mysql://root@127.0.0.1:3306/mysql")]
    mariadb_admin: String,
    /// Name of the benchmark database (created and dropped by the harness).
    #[arg(long, default_value = "bf_bench")]
    db_name: String,
    /// Old way: stop each run after writing this many rows (it is far too slow for the full size).
    #[arg(long, default_value_t = 1_000)]
    old_way_rows: u64,
    /// Old way: stop each run after this many seconds, whatever it wrote.
    #[arg(long, default_value_t = 60)]
    old_way_seconds: u64,
    /// Batch sizes of the sweep, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "500,1000,2000,5000,10000,20000,50000"
    )]
    sweep: Vec<u64>,
    /// Batch-duration targets of the sweep (`--batch-ms`), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "150,300,600")]
    sweep_ms: Vec<u64>,
    /// Skip the batch-size sweep.
    #[arg(long)]
    no_sweep: bool,
    /// Repetitions of each sweep point.
    #[arg(long, default_value_t = 1)]
    sweep_runs: usize,
    /// Repetitions of the no-op apply.
    #[arg(long, default_value_t = 10)]
    noop_runs: usize,
    /// Log where the in-process runs spend their time, per statement (stderr).
    #[arg(long)]
    profile: bool,
    /// Keep the benchmark databases afterwards.
    #[arg(long)]
    keep: bool,
    /// Sizes to measure one after the other (comma-separated), for the growth table and plot;
    /// default: --size.
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<u64>,
    /// Workers of the parallel figures (`apply --jobs N`, `revert --jobs N`).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(2..=64))]
    jobs: u64,
    /// Runs that also measure the old way (the first ones; it takes long and varies little).
    #[arg(long, default_value_t = 1)]
    old_way_runs: usize,
    /// Directory for the SVG plots (rows/s against size; batch durations over a run) and the
    /// figures they are drawn from (`growth.json`).
    #[arg(long, default_value = "bench-plots")]
    plots: PathBuf,
    /// Measure nothing: draw the plots again from a `growth.json` an earlier run saved.
    #[arg(long, value_name = "FILE")]
    replot: Option<PathBuf>,
    /// Only create and load the databases, keep them, measure nothing (for EXPLAIN by hand).
    #[arg(long)]
    load_only: bool,
    /// Also run `apply` and `revert` with `--batch-size N` (every batch N keys) and report their
    /// median batch: at a fixed size, a batch that costs O(batch) takes as long at any table size.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    fixed_batch: Option<u64>,
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

// ---------------------------------------------------------------------------------------------------
// Machine and statistics

fn machine() -> String {
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
struct LoadWatch {
    samples: std::sync::Arc<std::sync::Mutex<Samples>>,
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl LoadWatch {
    const EVERY: Duration = Duration::from_secs(2);

    fn start() -> LoadWatch {
        let samples = std::sync::Arc::new(std::sync::Mutex::new(Samples::default()));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let shared = samples.clone();
        let thread = std::thread::spawn(move || loop {
            if let (Some(load), Ok(mut s)) = (load_1min(), shared.lock()) {
                s.push(load);
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

    fn finish(self) -> Samples {
        let _ = self.stop.send(());
        let _ = self.thread.join();
        self.samples.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The first field of `/proc/loadavg`; `None` where there is none (not Linux).
fn load_1min() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Busy: more runnable work than cores over the run (median 1-minute load above the core count).
/// The bench itself keeps about one core busy (two with `--jobs 2`), so an idle machine stays below.
fn busy(load: f64) -> bool {
    load > cores() as f64
}

/// `median (min–max) on N cores`, and a flag when the machine was busy.
fn show_load(load: &Samples) -> String {
    if load.0.is_empty() {
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

/// Repeated measurements of one figure.
#[derive(Debug, Clone, Default)]
struct Samples(Vec<f64>);

impl Samples {
    fn push(&mut self, v: f64) {
        self.0.push(v);
    }
    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }
    fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }
    fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }
    fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }
    /// `median (min–max)` with `fmt` for each value.
    fn show(&self, fmt: fn(f64) -> String) -> String {
        if self.0.len() < 2 {
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

fn secs(s: f64) -> String {
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

fn ratio(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}×")
    } else {
        format!("{x:.2}×")
    }
}

fn rate(r: f64) -> String {
    if r >= 10_000.0 {
        format!("{:.0}k rows/s", r / 1000.0)
    } else {
        format!("{r:.0} rows/s")
    }
}

fn mib(kb: f64) -> String {
    format!("{:.1} MiB", kb / 1024.0)
}

fn yes(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**no**"
    }
}

// ---------------------------------------------------------------------------------------------------
// Databases

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Kind {
    Postgres,
    Mariadb,
    Sqlite,
}

impl Kind {
    fn parse(name: &str) -> Result<Kind> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "pg" => Kind::Postgres,
            "mariadb" | "mysql" | "my" => Kind::Mariadb,
            "sqlite" => Kind::Sqlite,
            other => bail!("unknown dialect `{other}`; use postgres, mariadb or sqlite"),
        })
    }
    fn label(self) -> &'static str {
        match self {
            Kind::Postgres => "PostgreSQL",
            Kind::Mariadb => "MariaDB",
            Kind::Sqlite => "SQLite",
        }
    }
}

fn connect(url: &str) -> Result<Box<dyn Session>> {
    let target = Target::parse(url).map_err(|e| anyhow!("{e}"))?;
    db::connect(&target).map_err(|e| anyhow!("{e}"))
}

/// A URL whose connection sends statements the way Laravel's PDO does: native prepares
/// (`PDO::ATTR_EMULATE_PREPARES` is false in Laravel's connectors), so every statement is prepared,
/// executed and closed — a round trip more than a cached statement. The MySQL driver does that
/// without its statement cache; the PostgreSQL driver here prepares every statement anyway.
fn prepare_per_statement(d: Dialect, url: &str) -> String {
    match d {
        Dialect::Mysql => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}stmt_cache_size=0")
        }
        _ => url.to_string(),
    }
}

/// The benchmark's own database: created fresh, dropped on drop (unless kept).
/// The bench's own database (`--db-name`), dropped at the end unless `--keep` / `--load-only`.
struct BenchDb {
    url: String,
    _scratch: Scratch,
}

impl BenchDb {
    fn create(args: &Args, kind: Kind) -> Result<BenchDb> {
        let (dialect, admin) = match kind {
            Kind::Sqlite => (Dialect::Sqlite, std::env::temp_dir().display().to_string()),
            Kind::Postgres => (Dialect::Postgres, args.pg_admin.clone()),
            Kind::Mariadb => (Dialect::Mysql, args.mariadb_admin.clone()),
        };
        let mut scratch = Scratch::create_at(dialect, &admin, &args.db_name).map_err(|e| {
            anyhow!("creating the bench database (--db-name; `make db` starts the servers): {e}")
        })?;
        scratch.keep = args.keep || args.load_only;
        if scratch.keep {
            eprintln!("bench: keeping {}", scratch.url);
        }
        Ok(BenchDb {
            url: scratch.url.clone(),
            _scratch: scratch,
        })
    }
}

// ---------------------------------------------------------------------------------------------------
// A session that times every read-write transaction (BEGIN .. COMMIT), i.e. every batch of the runner.

struct Timed {
    inner: Box<dyn Session>,
    began: Option<Instant>,
    batches: Vec<Duration>,
    /// `--profile`: total time per statement (its first words), and calls.
    statements: Option<std::collections::BTreeMap<String, (Duration, u64)>>,
}

impl Timed {
    fn new(inner: Box<dyn Session>, profile: bool) -> Timed {
        Timed {
            inner,
            began: None,
            batches: Vec::new(),
            statements: profile.then(Default::default),
        }
    }

    fn time<T>(&mut self, what: &str, f: impl FnOnce(&mut dyn Session) -> T) -> T {
        let t = Instant::now();
        let out = f(self.inner.as_mut());
        if let Some(map) = &mut self.statements {
            let key: String = what
                .split_whitespace()
                .take(8)
                .collect::<Vec<_>>()
                .join(" ");
            let e = map.entry(key).or_default();
            e.0 += t.elapsed();
            e.1 += 1;
        }
        out
    }

    fn report_profile(&mut self, label: &str) {
        if let Some(map) = &mut self.statements {
            let mut rows: Vec<_> = std::mem::take(map).into_iter().collect();
            rows.sort_by_key(|r| std::cmp::Reverse(r.1 .0));
            for (sql, (d, n)) in rows.iter().take(12) {
                log(format!(
                    "profile {label}: {:>9.1} ms {n:>6}× {sql}",
                    d.as_secs_f64() * 1000.0
                ));
            }
        }
    }
    fn take(&mut self) -> Vec<Duration> {
        std::mem::take(&mut self.batches)
    }
}

impl Tx for Timed {
    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }
    fn execute(&mut self, sql: &str, params: &[Value]) -> DbResult<u64> {
        self.time(sql, |s| s.execute(sql, params))
    }
    fn query(&mut self, sql: &str, params: &[Value]) -> DbResult<Vec<Row>> {
        self.time(sql, |s| s.query(sql, params))
    }
}

impl Session for Timed {
    fn begin(&mut self, read_only: bool) -> DbResult<()> {
        self.began = (!read_only).then(Instant::now);
        self.time("BEGIN", |s| s.begin(read_only))
    }
    fn commit(&mut self) -> DbResult<()> {
        let result = self.time("COMMIT", |s| s.commit());
        if let Some(t) = self.began.take() {
            self.batches.push(t.elapsed());
        }
        result
    }
    fn rollback(&mut self) -> DbResult<()> {
        self.began = None;
        self.inner.rollback()
    }
    fn identity(&mut self) -> DbResult<backfill::db::Identity> {
        self.inner.identity()
    }
    fn migrate_ledger(&mut self) -> DbResult<()> {
        self.inner.migrate_ledger()
    }
    fn ledger_ddl(&self, table: &str) -> String {
        self.inner.ledger_ddl(table)
    }
    fn set_timeouts(
        &mut self,
        statement: Option<Duration>,
        lock_wait: Option<Duration>,
    ) -> DbResult<()> {
        self.inner.set_timeouts(statement, lock_wait)
    }
    fn replica_lag(&mut self) -> DbResult<Option<Duration>> {
        self.inner.replica_lag()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

// ---------------------------------------------------------------------------------------------------
// The backfill binary, as a deploy script runs it.

struct Proc {
    wall: f64,
    /// Peak resident set size in KiB, when it could be measured.
    max_rss_kb: Option<f64>,
    stdout: String,
    stderr: String,
}

fn time_tool() -> Option<&'static Path> {
    let p = Path::new("/usr/bin/time");
    p.is_file().then_some(p)
}

/// Runs `backfill ARGS` with DATABASE_URL set; wall time around spawn..exit, peak RSS via
/// `/usr/bin/time -f %M` when present, else by polling VmHWM in /proc.
fn backfill(binary: &Path, url: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Proc> {
    let rss_file = std::env::temp_dir().join(format!("bf-bench-rss-{}", std::process::id()));
    let mut cmd = match time_tool() {
        Some(time) => {
            let mut c = Command::new(time);
            c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(binary);
            c
        }
        None => Command::new(binary),
    };
    cmd.args(args)
        .env("DATABASE_URL", url)
        .env("BACKFILL_OPERATOR", "bench")
        .env_remove("RUST_LOG")
        .env_remove("BACKFILL_TEST_FAIL_AT_BATCH")
        .env_remove("BACKFILL_TEST_ABORT_AT_BATCH")
        .env_remove("BACKFILL_TEST_BATCH_DELAY_MS")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {}", binary.display()))?;
    let pid = child.id();
    let mut hwm: Option<f64> = None;
    let polled = time_tool().is_none();
    // Drain the pipes in threads so a chatty child never blocks.
    let mut so = child.stdout.take();
    let mut se = child.stderr.take();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = so.as_mut() {
            let _ = std::io::Read::read_to_string(p, &mut s);
        }
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = se.as_mut() {
            let _ = std::io::Read::read_to_string(p, &mut s);
        }
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if polled {
            if let Some(v) = vm_hwm(pid) {
                hwm = Some(hwm.map_or(v, |h: f64| h.max(v)));
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = started.elapsed().as_secs_f64();
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    let max_rss_kb = if polled {
        hwm
    } else {
        std::fs::read_to_string(&rss_file)
            .ok()
            .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()))
    };
    let _ = std::fs::remove_file(&rss_file);
    if !status.success() {
        bail!(
            "`backfill {}` exited with {status}\n--- stdout\n{stdout}--- stderr\n{stderr}",
            args.join(" ")
        );
    }
    Ok(Proc {
        wall,
        max_rss_kb,
        stdout,
        stderr,
    })
}

fn vm_hwm(pid: u32) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------------------
// The reference SQL: what backfill does, as one statement, no batching, no ledger.

/// The migration measured, as its module defines it: the floor runs its own SQL, unranged.
use backfill::registry::generated::v202611230001__competency_versions::MIGRATION as COMPETENCY_VERSIONS;

fn floor_group_by(d: Dialect) -> String {
    COMPETENCY_VERSIONS.count_by_scenario_sql(d)
}

fn context(version: i64, run_id: &str) -> backfill::kit::migration::Context {
    backfill::kit::migration::Context {
        version,
        run_id: uuid::Uuid::parse_str(run_id).unwrap_or_else(|_| uuid::Uuid::nil()),
        run_date: chrono::Utc::now().date_naive(),
        group: None,
        ledger_rows: 0,
    }
}

/// One way to write every pending version in a single `INSERT … SELECT`.
struct Form {
    label: &'static str,
    sql: String,
}

/// Every single-statement form of the apply this harness knows for the dialect, the migration's own
/// first (its SQL, unranged). Each writes exactly the migration's rows, with the same expressions
/// (UUID, marker, date, times); they differ only in how the lowest scenario per competency and the
/// "no version yet" test are computed. The fastest one is the reference for `apply`.
fn single_statements(d: Dialect, version: i64, run_id: &str) -> Vec<Form> {
    let ctx = context(version, run_id);
    let m = &COMPETENCY_VERSIONS;
    let (entity, link, le, ls, versions, fk) = (
        m.entity,
        m.link,
        m.link_entity,
        m.link_scenario,
        m.versions,
        m.fk,
    );
    let insert = |from: String| {
        format!(
            "INSERT INTO {versions} (organization_id, {fk}, version_group_id, name, description, effective_from, \
             evolution_state, metadata, created_by, created_at, updated_at) \
             SELECT organization_id, id, {uuid}, name, description, {date}, 'new_embryo', {metadata}, NULL, {now}, {now} \
             {from} ORDER BY id",
            uuid = d.uuid_v4(),
            date = d.date_param(),
            now = d.utc_now(),
            metadata = backfill::kit::marker::json(d, &ctx, Some(("scenario_id", "scenario_id"))),
        )
    };
    let grouped = format!(
        "(SELECT {le} AS entity_id, MIN({ls}) AS scenario_id FROM {link} WHERE {ls} IS NOT NULL GROUP BY {le}) s"
    );
    let not_versioned = format!("NOT EXISTS (SELECT 1 FROM {versions} v WHERE v.{fk} = e.id)");
    let grouped_join = insert(format!(
        "FROM {grouped} JOIN {entity} e ON e.id = s.entity_id WHERE {not_versioned}"
    ));
    let per_entity = insert(format!(
        "FROM (SELECT e.id, e.organization_id, e.name, e.description, \
         (SELECT MIN({ls}) FROM {link} WHERE {le} = e.id) AS scenario_id \
         FROM {entity} e WHERE {not_versioned}) p WHERE p.scenario_id IS NOT NULL"
    ));
    let anti_join = insert(format!(
        "FROM {grouped} JOIN {entity} e ON e.id = s.entity_id \
         LEFT JOIN (SELECT {fk} AS versioned FROM {versions} WHERE {fk} IS NOT NULL) v ON v.versioned = e.id \
         WHERE v.versioned IS NULL"
    ));
    let own = COMPETENCY_VERSIONS.insert_sql(d, false, &ctx);
    // The migration's own statement is one of the shapes below (src/kit/version_backfill.rs): the
    // per-entity subquery on MariaDB, the grouped join elsewhere. It is listed once, as itself.
    let mut forms = vec![Form {
        label: match d {
            Dialect::Mysql => "per-entity subquery (the migration's own statement, unranged)",
            _ => "grouped derived table joined to competencies (the migration's own statement, unranged)",
        },
        sql: own,
    }];
    match d {
        Dialect::Mysql => forms.push(Form {
            label: "grouped derived table joined to competencies",
            sql: grouped_join,
        }),
        _ => forms.push(Form {
            label: "per-entity subquery",
            sql: per_entity,
        }),
    }
    forms.push(Form {
        label: "grouped derived table, anti-join (LEFT JOIN … IS NULL) instead of NOT EXISTS",
        sql: anti_join,
    });
    if d == Dialect::Postgres {
        let distinct_on = format!(
            "(SELECT DISTINCT ON ({le}) {le} AS entity_id, {ls} AS scenario_id FROM {link} \
             WHERE {ls} IS NOT NULL ORDER BY {le}, {ls}) s"
        );
        forms.push(Form {
            label: "DISTINCT ON (lowest scenario first) joined to competencies",
            sql: insert(format!(
                "FROM {distinct_on} JOIN {entity} e ON e.id = s.entity_id WHERE {not_versioned}"
            )),
        });
    }
    forms
}

/// The migration's own marker condition (the kit's), as revert uses it.
fn marker(d: Dialect, version: i64) -> String {
    backfill::kit::marker::condition(d, "metadata", &context(version, ""), None).0
}

fn floor_delete(d: Dialect, version: i64) -> String {
    format!(
        "DELETE FROM competency_versions WHERE {}",
        marker(d, version)
    )
}

/// What `backfill` does when no `--batch-size` is given.
fn default_batching() -> String {
    let o = Options::default();
    match o.batch_target {
        Some(t) => format!(
            "start at {} keys, resized toward {} ms per batch",
            o.batch_size,
            t.as_millis()
        ),
        None => format!("{} keys per batch", o.batch_size),
    }
}

fn today() -> String {
    chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

// ---------------------------------------------------------------------------------------------------
// The benchmark of one dialect

struct Bench<'a> {
    args: &'a Args,
    /// Competencies generated.
    size: u64,
    kind: Kind,
    binary: &'a Path,
    reg: &'static Registered,
    db: BenchDb,
    s: Box<dyn Session>,
    d: Dialect,
    version_text: String,
    /// The highest competency_versions id after loading: every row above it is the benchmark's own.
    baseline_id: i64,
}

#[derive(Default, Clone)]
struct Figures {
    plan: Samples,
    group_by: Samples,
    /// Every single-statement form of the apply, in `single_statements` order.
    forms: Vec<(String, Samples)>,
    delete: Samples,
    apply: Samples,
    revert: Samples,
    apply_jobs: Samples,
    revert_jobs: Samples,
    apply_rows: u64,
    /// Per run: the longest batch transaction of each process run, from its debug log.
    longest_apply: Samples,
    longest_revert: Samples,
    longest_apply_jobs: Samples,
    longest_revert_jobs: Samples,
    /// Per run: the median batch of `apply` (1 job), and how many batches it took.
    median_batch: Samples,
    batches: u64,
    /// Over all runs: batches of `apply --jobs N` / `revert --jobs N`, and the attempts that
    /// conflicts (deadlocks between the workers) rolled back and retried.
    jobs_batches: u64,
    jobs_retries: u64,
    /// The batches of the first run's `apply` and `apply --jobs N`, for the plot.
    timeline_apply: Vec<BatchEvent>,
    timeline_jobs: Vec<BatchEvent>,
    old_way_rate: Samples,
    old_way_rows: u64,
    old_way_capabilities: u64,
    old_way_seconds: f64,
    old_way_load: f64,
    rss_apply: Samples,
    rss_revert: Samples,
    rss_apply_jobs: Samples,
    rss_revert_jobs: Samples,
    rss_plan: Samples,
    rss_noop: Samples,
    noop: Samples,
    /// Steps that failed (e.g. a shared server restarted under us) and were redone from a clean state.
    retried: Vec<String>,
    /// The 1-minute load average while measuring.
    load: Samples,
    /// `--fixed-batch N`: every committed batch of one `apply` and one `revert` at N keys (seconds).
    fixed_apply: Samples,
    fixed_revert: Samples,
}

/// One committed batch of a `backfill` process, from its debug log: when it ended (seconds since the
/// first batch began), how long it took, and which worker ran it (0 with one job).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct BatchEvent {
    end: f64,
    secs: f64,
    worker: usize,
    /// 1, or more when deadlocks or certification conflicts rolled earlier attempts back.
    attempts: u32,
}

/// The batches a `backfill --log-format json` process logged at debug level (`batch N: …, Tms` with
/// one job, `worker W chunk C batch N: …, Tms` with several).
fn batch_events(stderr: &str) -> Vec<BatchEvent> {
    let mut raw = Vec::new();
    for line in stderr.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(msg), Some(at)) = (v["fields"]["message"].as_str(), v["timestamp"].as_str())
        else {
            continue;
        };
        let worker = match msg.strip_prefix("worker ") {
            Some(rest) => rest.split(' ').next().and_then(|w| w.parse().ok()),
            None => msg.starts_with("batch ").then_some(0),
        };
        let ms = msg
            .rsplit(", ")
            .next()
            .and_then(|t| t.strip_suffix("ms"))
            .and_then(|t| t.parse::<f64>().ok());
        let at = chrono::DateTime::parse_from_rfc3339(at).ok();
        let attempts = msg
            .split(", ")
            .find_map(|part| part.strip_suffix(" attempts"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        if let (Some(worker), Some(ms), Some(at)) = (worker, ms, at) {
            raw.push((at, ms / 1000.0, worker, attempts));
        }
    }
    let micros = |d: chrono::TimeDelta| d.num_microseconds().unwrap_or(0) as f64 / 1e6;
    let Some(first) = raw
        .iter()
        .map(|(at, secs, ..)| *at - chrono::TimeDelta::microseconds((secs * 1e6) as i64))
        .min()
    else {
        return Vec::new();
    };
    raw.into_iter()
        .map(|(at, secs, worker, attempts)| BatchEvent {
            end: micros(at - first),
            secs,
            worker,
            attempts,
        })
        .collect()
}

/// One dialect at one size, for the growth table and the plots (also saved as `growth.json` beside
/// the plots, which `--replot` draws again).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct GrowthPoint {
    kind: Kind,
    size: u64,
    rows: u64,
    /// Medians, seconds: the best single statement, `apply`, `apply --jobs N`.
    statement: f64,
    apply: f64,
    jobs: f64,
    /// The longest batch transaction of `apply` and `apply --jobs N` (seconds), and the highest peak
    /// RSS of any `backfill` process (KiB).
    longest: f64,
    rss_kb: f64,
    timeline_apply: Vec<BatchEvent>,
    timeline_jobs: Vec<BatchEvent>,
    /// The median 1-minute load average while measuring (absent from runs before it was recorded).
    #[serde(default)]
    load: Option<f64>,
    /// `--fixed-batch N`: N and the median apply batch at N keys (seconds).
    #[serde(default)]
    fixed: Option<(u64, f64)>,
}

#[derive(Default, Clone)]
struct SweepPoint {
    label: String,
    apply: Samples,
    revert: Samples,
    longest_apply: Samples,
    longest_revert: Samples,
    batches: u64,
}

impl SweepPoint {
    fn add(&mut self, apply: &InProcess, revert: &InProcess) {
        self.apply.push(apply.wall);
        self.revert.push(revert.wall);
        self.longest_apply.push(max_secs(&apply.batches));
        self.longest_revert.push(max_secs(&revert.batches));
        self.batches = apply.batches.len() as u64;
    }
}

fn log(msg: impl AsRef<str>) {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let t = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    eprintln!("bench [{t:7.1}s] {}", msg.as_ref());
}

impl<'a> Bench<'a> {
    fn new(
        args: &'a Args,
        size: u64,
        kind: Kind,
        binary: &'a Path,
        reg: &'static Registered,
    ) -> Result<Bench<'a>> {
        let db = BenchDb::create(args, kind)?;
        let s = connect(&db.url)?;
        let d = s.dialect();
        Ok(Bench {
            args,
            size,
            kind,
            binary,
            reg,
            db,
            s,
            d,
            version_text: reg.version.to_string(),
            baseline_id: 0,
        })
    }

    fn server_version(&mut self) -> String {
        let sql = match self.kind {
            Kind::Sqlite => "SELECT 'SQLite ' || sqlite_version()",
            _ => "SELECT version()",
        };
        self.s
            .query_scalar(sql, &[])
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    fn exec(&mut self, sql: &str) -> Result<u64> {
        self.s.execute(sql, &[]).map_err(|e| anyhow!("{sql}: {e}"))
    }

    fn count(&mut self, sql: &str) -> Result<i64> {
        self.s
            .query_scalar(sql, &[])
            .map_err(|e| anyhow!("{sql}: {e}"))?
            .as_i64()
            .ok_or_else(|| anyhow!("{sql}: not a number"))
    }

    fn marked(&mut self) -> Result<i64> {
        let sql = format!(
            "SELECT COUNT(*) FROM competency_versions WHERE {}",
            marker(self.d, self.reg.version)
        );
        self.count(&sql)
    }

    /// Between timed steps: let the server clean up after the previous one, so each step starts from
    /// the same state (PostgreSQL: vacuum and checkpoint; MariaDB: wait for purge to catch up).
    fn settle(&mut self) -> Result<()> {
        match self.kind {
            Kind::Postgres => {
                self.exec("VACUUM (ANALYZE) competency_versions")?;
                self.exec("CHECKPOINT")?;
            }
            Kind::Mariadb => {
                // Purge of the previous step's deleted rows runs in the background and would compete
                // with the next step: wait for it to go idle (bounded: another session's long read
                // view can hold purge back indefinitely on a shared server).
                let started = Instant::now();
                loop {
                    let status = self
                        .s
                        .query("SHOW ENGINE INNODB STATUS", &[])
                        .ok()
                        .and_then(|rows| rows.into_iter().next())
                        .and_then(|r| r.into_iter().nth(2))
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    let idle = status
                        .lines()
                        .find(|l| l.starts_with("Purge done"))
                        .is_none_or(|l| l.contains("idle"));
                    if idle {
                        break;
                    }
                    if started.elapsed() > Duration::from_secs(15) {
                        log("MariaDB purge still busy after 15 s (another session's transaction?); going on");
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            Kind::Sqlite => {}
        }
        Ok(())
    }

    fn run_backfill(&mut self, args: &[&str]) -> Result<Proc> {
        let mut full = vec!["--quiet"];
        full.extend_from_slice(args);
        backfill(self.binary, &self.db.url, &full, &[])
    }

    fn run(mut self) -> Result<(String, Option<GrowthPoint>)> {
        let label = self.kind.label();
        let server = self.server_version();
        log(format!(
            "{label}: loading {} competencies into {}",
            self.size, self.db.url
        ));
        let t = Instant::now();
        fixtures::load_schema(self.s.as_mut()).map_err(|e| anyhow!("{e}"))?;
        let loaded = fixtures::generate(
            self.s.as_mut(),
            &Shape {
                competencies: self.size,
                seed: self.args.seed,
            },
        )
        .map_err(|e| anyhow!("{e}"))?;
        let load_secs = t.elapsed().as_secs_f64();
        log(format!(
            "{label}: loaded in {} ({} links, {} pending competency versions)",
            secs(load_secs),
            loaded.links,
            loaded.pending_competency_versions
        ));
        if self.kind == Kind::Postgres {
            // A table that has been live for a while has been vacuumed: its visibility map is set,
            // so index-only scans read no heap. Fresh tables get there whenever autovacuum comes by,
            // which would make the runs differ by when it did; vacuum once, before anything is timed.
            self.exec(&format!("VACUUM (ANALYZE) {}", fixtures::TABLES.join(", ")))?;
        }
        if self.kind == Kind::Mariadb {
            // Statistics for the fresh tables, as PostgreSQL's loader does with ANALYZE.
            for t in fixtures::TABLES {
                self.s
                    .query(&format!("ANALYZE TABLE {t}"), &[])
                    .map_err(|e| anyhow!("ANALYZE TABLE {t}: {e}"))?;
            }
        }
        if self.args.load_only {
            self.run_backfill(&["status"])?;
            let report = format!(
                "## {label}: loaded {} ({} pending rows) in {}\n",
                self.db.url,
                loaded.pending_competency_versions,
                secs(load_secs)
            );
            return Ok((report, None));
        }
        // The ledger tables exist before anything is timed (a real database has them after its first
        // deploy); this also warms the caches for every side alike.
        self.run_backfill(&["status"])?;
        self.warm()?;
        self.baseline_id = self.count("SELECT COALESCE(MAX(id), 0) FROM competency_versions")?;
        let watch = LoadWatch::start();

        let expected = loaded.pending_competency_versions;
        let mut f = Figures {
            apply_rows: expected,
            ..Figures::default()
        };
        for r in 0..self.args.runs {
            let what = format!("{label}: run {}/{}", r + 1, self.args.runs);
            self.retrying(&mut f, &what, |b, f| b.one_run(f, r, expected))?;
        }
        let mut sweep = Vec::new();
        let points: Vec<Batching> = if self.args.no_sweep {
            Vec::new()
        } else {
            let sizes = self.args.sweep.iter().map(|&n| Batching::Fixed(n));
            let targets = self.args.sweep_ms.iter().map(|&ms| Batching::Toward(ms));
            std::iter::once(Batching::Default)
                .chain(sizes)
                .chain(targets)
                .collect()
        };
        for batching in points {
            let mut p = SweepPoint {
                label: batching.to_string(),
                ..SweepPoint::default()
            };
            for _ in 0..self.args.sweep_runs.max(1) {
                let what = format!("{label}: sweep, {batching}");
                let (apply, revert) =
                    self.retrying(&mut f, &what, |b, _| b.in_process(batching, expected))?;
                p.add(&apply, &revert);
            }
            sweep.push(p);
        }
        self.retrying(&mut f, &format!("{label}: no-op apply"), |b, f| b.noop(f))?;
        if let Some(n) = self.args.fixed_batch {
            let what = format!("{label}: apply and revert at --batch-size {n}");
            self.retrying(&mut f, &what, |b, f| b.fixed_batch(f, n, expected))?;
        }
        f.load = watch.finish();
        let report = self.report(&server, &loaded, load_secs, &f, &sweep);
        let rss = [&f.rss_apply, &f.rss_apply_jobs, &f.rss_revert_jobs]
            .iter()
            .map(|s| s.max())
            .filter(|x| !x.is_nan())
            .fold(0.0, f64::max);
        let point = GrowthPoint {
            kind: self.kind,
            size: self.size,
            rows: expected,
            statement: best_form(&f).map_or(f64::NAN, |(_, s)| s.median()),
            apply: f.apply.median(),
            jobs: f.apply_jobs.median(),
            longest: f.longest_apply.max().max(f.longest_apply_jobs.max()),
            rss_kb: rss,
            timeline_apply: f.timeline_apply.clone(),
            timeline_jobs: f.timeline_jobs.clone(),
            load: (!f.load.0.is_empty()).then(|| f.load.median()),
            fixed: self.args.fixed_batch.map(|n| (n, f.fixed_apply.median())),
        };
        Ok((report, Some(point)))
    }

    /// One repetition of every paired measurement, in alternating order.
    fn one_run(&mut self, f: &mut Figures, r: usize, expected: u64) -> Result<()> {
        self.plan_pair(f, r % 2 == 1)?;
        if r.is_multiple_of(2) {
            self.forms_pair(f, expected)?;
            self.backfill_pair(f, r, expected)?;
        } else {
            self.backfill_pair(f, r, expected)?;
            self.forms_pair(f, expected)?;
        }
        if r < self.args.old_way_runs {
            self.old_way(f)?;
        }
        Ok(())
    }

    /// Runs `step`; if it fails (the servers are shared, and some test suites restart them), puts
    /// the database back in its loaded state and redoes the step from scratch, four times at most. The
    /// figures of a failed attempt are dropped, and the report lists every retry.
    fn retrying<T>(
        &mut self,
        f: &mut Figures,
        what: &str,
        mut step: impl FnMut(&mut Self, &mut Figures) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            log(what);
            let saved = f.clone();
            match step(self, f) {
                Ok(v) => return Ok(v),
                Err(e) if attempt < 4 => {
                    attempt += 1;
                    let first = format!("{e:#}");
                    let first = first
                        .lines()
                        .find(|l| l.starts_with("error:"))
                        .unwrap_or(first.lines().next().unwrap_or_default());
                    log(format!(
                        "{what} failed ({first}); restoring the data and retrying"
                    ));
                    *f = saved;
                    f.retried.push(format!("{what}: {first}"));
                    self.restore()?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for the server, reconnects, and removes everything the benchmark wrote since loading
    /// (rows above the baseline id, the ledger's record of the migration).
    fn restore(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(180);
        self.s = loop {
            match connect(&self.db.url) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_secs(1)),
                Err(e) => return Err(e.context("the database did not come back within 180 s")),
            }
        };
        // A test suite that restarts the server usually does it several times in a row: wait until
        // it has been up for a while.
        let uptime = match self.kind {
            Kind::Postgres => {
                Some("SELECT CAST(EXTRACT(EPOCH FROM now() - pg_postmaster_start_time()) AS BIGINT)")
            }
            Kind::Mariadb => Some(
                "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'UPTIME'",
            ),
            Kind::Sqlite => None,
        };
        if let Some(sql) = uptime {
            while Instant::now() < deadline {
                match self.s.query_scalar(sql, &[]).ok().and_then(|v| v.as_i64()) {
                    Some(up) if up >= 30 => break,
                    Some(_) => std::thread::sleep(Duration::from_secs(2)),
                    None => {
                        std::thread::sleep(Duration::from_secs(2));
                        if let Ok(s) = connect(&self.db.url) {
                            self.s = s;
                        }
                    }
                }
            }
        }
        self.exec(&format!(
            "DELETE FROM competency_versions WHERE id > {}",
            self.baseline_id
        ))?;
        self.exec("DELETE FROM backfill_migrations")?;
        self.settle()?;
        // A restarted server has cold caches: warm them as before the first run.
        self.warm()?;
        Ok(())
    }

    /// Reads what every measured side reads (the floor's count), so no side pays for cold caches.
    fn warm(&mut self) -> Result<()> {
        self.count(&format!(
            "SELECT COUNT(*) FROM ({}) t",
            floor_group_by(self.d)
        ))
        .map(|_| ())
    }

    /// `backfill plan V` vs one GROUP BY count in a read-only transaction.
    fn plan_pair(&mut self, f: &mut Figures, binary_first: bool) -> Result<()> {
        let version = self.version_text.clone();
        for step in 0..2 {
            if (step == 0) == binary_first {
                let p = self.run_backfill(&["plan", &version])?;
                if !p.stdout.contains(&f.apply_rows.to_string()) {
                    bail!(
                        "plan does not show the expected {} rows:\n{}",
                        f.apply_rows,
                        p.stdout
                    );
                }
                f.plan.push(p.wall);
                if let Some(kb) = p.max_rss_kb {
                    f.rss_plan.push(kb);
                }
            } else {
                let sql = floor_group_by(self.d);
                let t = Instant::now();
                self.s.begin(true).map_err(|e| anyhow!("{e}"))?;
                let rows = self.s.query(&sql, &[]).map_err(|e| anyhow!("{sql}: {e}"))?;
                self.s.rollback().map_err(|e| anyhow!("{e}"))?;
                f.group_by.push(t.elapsed().as_secs_f64());
                let total: i64 = rows.iter().map(|r| r[1].as_i64().unwrap_or(0)).sum();
                if total as u64 != f.apply_rows {
                    bail!("GROUP BY counted {total}, expected {}", f.apply_rows);
                }
            }
        }
        Ok(())
    }

    /// Every single-statement form: one INSERT … SELECT, then one DELETE by marker, each in one
    /// transaction.
    fn forms_pair(&mut self, f: &mut Figures, expected: u64) -> Result<()> {
        let run_id = uuid::Uuid::now_v7().to_string();
        let forms = single_statements(self.d, self.reg.version, &run_id);
        if f.forms.len() != forms.len() {
            f.forms = forms
                .iter()
                .map(|form| (form.label.to_string(), Samples::default()))
                .collect();
        }
        for (i, form) in forms.iter().enumerate() {
            self.settle()?;
            let t = Instant::now();
            self.s.begin(false).map_err(|e| anyhow!("{e}"))?;
            let rows = self
                .s
                .execute(&form.sql, &[Value::Text(today())])
                .map_err(|e| anyhow!("{}: {}: {e}", form.label, form.sql))?;
            self.s.commit().map_err(|e| anyhow!("{e}"))?;
            f.forms[i].1.push(t.elapsed().as_secs_f64());
            if rows != expected {
                bail!(
                    "single statement `{}` wrote {rows} rows, expected {expected}",
                    form.label
                );
            }
            self.settle()?;
            let sql = floor_delete(self.d, self.reg.version);
            let t = Instant::now();
            self.s.begin(false).map_err(|e| anyhow!("{e}"))?;
            let rows = self
                .s
                .execute(&sql, &[])
                .map_err(|e| anyhow!("{sql}: {e}"))?;
            self.s.commit().map_err(|e| anyhow!("{e}"))?;
            f.delete.push(t.elapsed().as_secs_f64());
            if rows != expected {
                bail!("DELETE deleted {rows} rows, expected {expected}");
            }
        }
        Ok(())
    }

    /// `backfill apply V` then `backfill revert V`, as processes, with 1 job and with `--jobs N` (in
    /// alternating order), each logging its batches (debug, JSON) for the longest batch and the plot.
    fn backfill_pair(&mut self, f: &mut Figures, r: usize, expected: u64) -> Result<()> {
        let version = self.version_text.clone();
        let jobs = self.args.jobs.to_string();
        let order: [bool; 2] = if r.is_multiple_of(2) {
            [false, true]
        } else {
            [true, false]
        };
        for parallel in order {
            let mut apply = vec!["apply", version.as_str()];
            let mut revert = vec!["revert", version.as_str()];
            if parallel {
                apply.extend(["--jobs", jobs.as_str()]);
                revert.extend(["--jobs", jobs.as_str()]);
            }
            let (p, events, longest) = self.run_batches(&apply, parallel, f)?;
            if parallel {
                f.apply_jobs.push(p.wall);
                f.longest_apply_jobs.push(longest);
                if let Some(kb) = p.max_rss_kb {
                    f.rss_apply_jobs.push(kb);
                }
                if r == 0 {
                    f.timeline_jobs = events;
                }
            } else {
                f.apply.push(p.wall);
                f.longest_apply.push(longest);
                if let Some(kb) = p.max_rss_kb {
                    f.rss_apply.push(kb);
                }
                let mut all = Samples::default();
                events.iter().for_each(|e| all.push(e.secs));
                f.median_batch.push(all.median());
                f.batches = events.len() as u64;
                if r == 0 {
                    f.timeline_apply = events;
                }
            }
            let marked = self.marked()?;
            if marked as u64 != expected {
                bail!(
                    "backfill {} wrote {marked} rows, expected {expected}",
                    apply.join(" ")
                );
            }
            let (p, _, longest) = self.run_batches(&revert, parallel, f)?;
            if parallel {
                f.revert_jobs.push(p.wall);
                f.longest_revert_jobs.push(longest);
                if let Some(kb) = p.max_rss_kb {
                    f.rss_revert_jobs.push(kb);
                }
            } else {
                f.revert.push(p.wall);
                f.longest_revert.push(longest);
                if let Some(kb) = p.max_rss_kb {
                    f.rss_revert.push(kb);
                }
            }
            let left = self.marked()?;
            if left != 0 {
                bail!("backfill {} left {left} rows", revert.join(" "));
            }
        }
        Ok(())
    }

    /// `backfill ARGS` with its batches logged (debug level, JSON lines on stderr, one per batch).
    /// One apply or revert as a process, after the server settles: the process, its batches (from
    /// its debug log) and the longest one; a parallel run's batches and conflict retries are added
    /// to the `--jobs` totals.
    fn run_batches(
        &mut self,
        args: &[&str],
        parallel: bool,
        f: &mut Figures,
    ) -> Result<(Proc, Vec<BatchEvent>, f64)> {
        self.settle()?;
        let p = self.run_logged(args)?;
        let events = batch_events(&p.stderr);
        let longest = events.iter().map(|e| e.secs).fold(0.0, f64::max);
        if parallel {
            f.jobs_batches += events.len() as u64;
            f.jobs_retries += events
                .iter()
                .map(|e| u64::from(e.attempts - 1))
                .sum::<u64>();
        }
        Ok((p, events, longest))
    }

    fn run_logged(&mut self, args: &[&str]) -> Result<Proc> {
        let mut full = vec!["--quiet", "--log-format", "json"];
        full.extend_from_slice(args);
        backfill(
            self.binary,
            &self.db.url,
            &full,
            &[("RUST_LOG", "backfill=debug")],
        )
    }

    /// `apply` then `revert` as processes with every batch `n` keys: their batches' durations.
    fn fixed_batch(&mut self, f: &mut Figures, n: u64, expected: u64) -> Result<()> {
        let (version, size) = (self.version_text.clone(), n.to_string());
        let apply = ["apply", version.as_str(), "--batch-size", size.as_str()];
        let (_, events, _) = self.run_batches(&apply, false, f)?;
        f.fixed_apply = Samples(events.iter().map(|e| e.secs).collect());
        let marked = self.marked()?;
        if marked as u64 != expected {
            bail!(
                "backfill {} wrote {marked} rows, expected {expected}",
                apply.join(" ")
            );
        }
        let revert = ["revert", version.as_str(), "--batch-size", size.as_str()];
        let (_, events, _) = self.run_batches(&revert, false, f)?;
        f.fixed_revert = Samples(events.iter().map(|e| e.secs).collect());
        match self.marked()? {
            0 => Ok(()),
            left => bail!("backfill {} left {left} rows", revert.join(" ")),
        }
    }

    /// The runner in this process, through the timing session: apply then revert.
    fn in_process(&mut self, batching: Batching, expected: u64) -> Result<(InProcess, InProcess)> {
        let defaults = Options::default();
        let batch_label = batching.to_string();
        let (batch_size, batch_target) = match batching {
            Batching::Default => (defaults.batch_size, defaults.batch_target),
            Batching::Fixed(n) => (n, None),
            Batching::Toward(ms) => (defaults.batch_size, Some(Duration::from_millis(ms))),
        };
        let opts = Options {
            batch_size,
            batch_target,
            statement_timeout: Some(Duration::from_secs(300)),
            operator: "bench".into(),
            arguments: "[\"bench\"]".into(),
            ..Options::default()
        };
        let mut timed = Timed::new(connect(&self.db.url)?, self.args.profile);
        self.settle()?;
        let t = Instant::now();
        let done = runner::apply(&mut timed, Selection::One(self.reg.version), &opts)
            .map_err(|e| anyhow!("in-process apply: {e}"))?;
        let apply = InProcess {
            wall: t.elapsed().as_secs_f64(),
            batches: timed.take(),
        };
        timed.report_profile(&format!("apply batch {batch_label}, {}", secs(apply.wall)));
        let rows: u64 = done.iter().map(|o| o.rows).sum();
        if rows != expected {
            bail!("in-process apply wrote {rows} rows, expected {expected}");
        }
        self.settle()?;
        let t = Instant::now();
        let done = runner::revert(&mut timed, self.reg.version, None, false, &opts)
            .map_err(|e| anyhow!("in-process revert: {e}"))?;
        let revert = InProcess {
            wall: t.elapsed().as_secs_f64(),
            batches: timed.take(),
        };
        timed.report_profile(&format!(
            "revert batch {batch_label}, {}",
            secs(revert.wall)
        ));
        if done.rows != expected {
            bail!(
                "in-process revert deleted {} rows, expected {expected}",
                done.rows
            );
        }
        Ok((apply, revert))
    }

    /// The app's original command, statement by statement as Eloquent sends them, in autocommit:
    /// every capability with a scenario; per capability its competencies; per competency whether a
    /// version exists; one INSERT per missing version. Stops after `--old-way-rows` rows (or
    /// `--old-way-seconds`), then deletes what it wrote.
    fn old_way(&mut self, f: &mut Figures) -> Result<()> {
        self.settle()?;
        let before = self
            .count("SELECT COALESCE(MAX(id), 0) FROM competency_versions")
            .context("old way")?;
        let returning = if self.d == Dialect::Postgres {
            " RETURNING id"
        } else {
            ""
        };
        let insert = format!(
            "INSERT INTO competency_versions (organization_id, competency_id, version_group_id, name, description, \
             effective_from, evolution_state, metadata, created_by, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?){returning}"
        );
        let budget = Duration::from_secs(self.args.old_way_seconds);
        let limit = self.args.old_way_rows.max(1);
        let mut own = connect(&prepare_per_statement(self.d, &self.db.url))?;
        let s = own.as_mut();
        let q = |s: &mut dyn Session, sql: &str, p: &[Value]| -> Result<Vec<Row>> {
            s.query(sql, p).map_err(|e| anyhow!("old way: {sql}: {e}"))
        };
        let t = Instant::now();
        let capabilities = q(
            s,
            "SELECT * FROM capabilities WHERE discovered_in_scenario_id IS NOT NULL",
            &[],
        )?;
        let load = t.elapsed().as_secs_f64();
        let (mut written, mut visited) = (0u64, 0u64);
        'outer: for cap in &capabilities {
            let cap_id = cap[0].clone();
            let scenario = cap[3].as_i64().unwrap_or(0);
            visited += 1;
            let competencies = q(
                s,
                "SELECT competencies.*, capability_competencies.capability_id AS pivot_capability_id, \
                 capability_competencies.competency_id AS pivot_competency_id FROM competencies \
                 INNER JOIN capability_competencies ON competencies.id = capability_competencies.competency_id \
                 WHERE capability_competencies.capability_id = ?",
                &[cap_id],
            )?;
            for c in competencies {
                let exists = q(
                    s,
                    "SELECT EXISTS(SELECT * FROM competency_versions WHERE competency_id = ?) AS e",
                    &[c[0].clone()],
                )?;
                if exists
                    .first()
                    .and_then(|r| r.first())
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    != 0
                {
                    continue;
                }
                let now = Value::Timestamp(chrono::Utc::now().naive_utc().with_nanosecond0());
                let params = [
                    c[1].clone(),
                    c[0].clone(),
                    Value::Text(uuid::Uuid::new_v4().to_string()),
                    c[2].clone(),
                    c[3].clone(),
                    Value::Date(chrono::Utc::now().date_naive()),
                    Value::Text("new_embryo".into()),
                    Value::Text(format!(
                        r#"{{"source":"backfill","scenario_id":{scenario}}}"#
                    )),
                    Value::Null,
                    now.clone(),
                    now,
                ];
                if returning.is_empty() {
                    s.execute(&insert, &params)
                        .map_err(|e| anyhow!("old way insert: {e}"))?;
                } else {
                    q(s, &insert, &params)?;
                }
                written += 1;
                if written >= limit || t.elapsed() >= budget {
                    break 'outer;
                }
            }
            if t.elapsed() >= budget {
                break;
            }
        }
        let elapsed = t.elapsed().as_secs_f64();
        if written == 0 {
            bail!("the old way wrote nothing in {}", secs(elapsed));
        }
        // The command loads every capability once, then pays per row: the rate of the whole run is
        // projected from the subset's per-row cost, with the load counted once, not once per subset.
        let per_row = (elapsed - load) / written as f64;
        let pending = f.apply_rows as f64;
        f.old_way_rate.push(pending / (load + per_row * pending));
        f.old_way_load = load;
        f.old_way_rows = written;
        f.old_way_capabilities = visited;
        f.old_way_seconds = elapsed;
        self.exec(&format!(
            "DELETE FROM competency_versions WHERE id > {before}"
        ))?;
        Ok(())
    }

    /// Everything applied, then `backfill apply` with nothing pending, `--noop-runs` times.
    fn noop(&mut self, f: &mut Figures) -> Result<()> {
        self.settle()?;
        self.run_backfill(&["apply", &self.version_text.clone()])?;
        self.run_backfill(&["apply"])?;
        for _ in 0..self.args.noop_runs.max(1) {
            let p = self.run_backfill(&["apply"])?;
            if !p.stdout.contains("nothing to apply") {
                bail!("the no-op apply did something:\n{}", p.stdout);
            }
            f.noop.push(p.wall);
            if let Some(kb) = p.max_rss_kb {
                f.rss_noop.push(kb);
            }
        }
        Ok(())
    }

    fn report(
        &self,
        server: &str,
        loaded: &Loaded,
        load_secs: f64,
        f: &Figures,
        sweep: &[SweepPoint],
    ) -> String {
        let v = self.reg.version;
        let rows = f.apply_rows;
        let jobs = self.args.jobs;
        let paired = |a: &Samples, b: &Samples| -> Samples {
            Samples(a.0.iter().zip(&b.0).map(|(x, y)| x / y).collect())
        };
        let cell = |a: &Samples, b: &Samples| -> (f64, String) {
            let r = a.median() / b.median();
            let pairs = paired(a, b);
            let shown = if pairs.0.len() < 2 {
                ratio(r)
            } else {
                format!(
                    "{} ({}–{})",
                    ratio(r),
                    ratio(pairs.min()),
                    ratio(pairs.max())
                )
            };
            (r, shown)
        };
        let mut o = String::new();
        o.push_str(&format!("## {} — {server}\n\n", self.kind.label()));
        o.push_str(&format!(
            "data: {} competencies, {} capabilities ({} without scenario), {} links, {} scenarios, {} existing versions; \
             V{v} writes {rows} rows; loaded in {}\n\n",
            loaded.competencies,
            loaded.capabilities,
            loaded.undiscovered_capabilities,
            loaded.links,
            loaded.scenarios,
            loaded.preexisting_versions,
            secs(load_secs)
        ));
        o.push_str(&format!(
            "load average (1 min, every {} s while measuring): {}\n\n",
            LoadWatch::EVERY.as_secs(),
            show_load(&f.load)
        ));
        if let Some(n) = self.args.fixed_batch {
            o.push_str(&format!(
                "fixed batches (`--batch-size {n}`, 1 job): apply {} batches, median {} (min–max {}–{}); \
                 revert {} batches, median {}\n\n",
                f.fixed_apply.0.len(),
                secs(f.fixed_apply.median()),
                secs(f.fixed_apply.min()),
                secs(f.fixed_apply.max()),
                f.fixed_revert.0.len(),
                secs(f.fixed_revert.median()),
            ));
        }
        let Some((best_label, best)) = best_form(f) else {
            return o;
        };
        o.push_str(&format!(
            "Single statements (each one `INSERT … SELECT` of all {rows} rows in one transaction):\n\n"
        ));
        o.push_str("| single statement | time | rows/s | / best |\n|---|---|---|---|\n");
        for (label, t) in &f.forms {
            let mark = if label == best_label {
                " **(best)**"
            } else {
                ""
            };
            o.push_str(&format!(
                "| {label}{mark} | {} | {} | {} |\n",
                t.show(secs),
                rate(rows as f64 / t.median()),
                ratio(t.median() / best.median())
            ));
        }
        o.push_str(&format!(
            "| one `DELETE` by marker (the revert's reference) | {} | {} | |\n\n",
            f.delete.show(secs),
            rate(rows as f64 / f.delete.median())
        ));
        o.push_str("| figure | backfill | reference | ratio | target | met |\n");
        o.push_str("|---|---|---|---|---|---|\n");
        let mut row = |what: String, a: &Samples, b: &Samples, target: f64| {
            let (r, shown) = cell(a, b);
            o.push_str(&format!(
                "| {what} | {} | {} | {shown} | ≤ {target}× | {} |\n",
                a.show(secs),
                b.show(secs),
                yes(r <= target)
            ));
        };
        row(
            format!("`apply {v}` (1 job) / best single statement"),
            &f.apply,
            best,
            1.2,
        );
        row(
            format!("`apply {v} --jobs {jobs}` / best single statement"),
            &f.apply_jobs,
            best,
            0.8,
        );
        row(
            format!("`revert {v} --jobs {jobs}` / one DELETE by marker"),
            &f.revert_jobs,
            &f.delete,
            1.0,
        );
        row(
            format!("`revert {v}` (1 job) / one DELETE by marker"),
            &f.revert,
            &f.delete,
            1.5,
        );
        row(
            format!("`plan {v}` / one GROUP BY count"),
            &f.plan,
            &f.group_by,
            1.2,
        );
        if !f.old_way_rate.0.is_empty() {
            let apply_rate = Samples(f.apply.0.iter().map(|w| rows as f64 / w).collect());
            let speedup = apply_rate.median() / f.old_way_rate.median();
            o.push_str(&format!(
                "| `apply` rows/s vs the old way (projected from a subset: {} rows from {} capabilities in {}, of which {} loading the capabilities, counted once) | {} | {} | {} faster | ≥ 30× | {} |\n",
                f.old_way_rows,
                f.old_way_capabilities,
                secs(f.old_way_seconds),
                secs(f.old_way_load),
                apply_rate.show(rate),
                f.old_way_rate.show(rate),
                ratio(speedup),
                yes(speedup >= 30.0)
            ));
        }
        let longest = [
            &f.longest_apply,
            &f.longest_apply_jobs,
            &f.longest_revert,
            &f.longest_revert_jobs,
        ]
        .iter()
        .map(|s| s.max())
        .fold(0.0, f64::max);
        o.push_str(&format!(
            "| longest batch transaction at the default batching ({}): apply / apply --jobs {jobs} / revert / revert --jobs {jobs} (apply: {} batches, median {}) | {} / {} / {} / {} | | | < 1 s | {} |\n",
            default_batching(),
            f.batches,
            secs(f.median_batch.median()),
            secs(f.longest_apply.max()),
            secs(f.longest_apply_jobs.max()),
            secs(f.longest_revert.max()),
            secs(f.longest_revert_jobs.max()),
            yes(longest < 1.0)
        ));
        let rss = [
            &f.rss_apply,
            &f.rss_apply_jobs,
            &f.rss_revert,
            &f.rss_revert_jobs,
            &f.rss_plan,
            &f.rss_noop,
        ];
        let rss_max = rss
            .iter()
            .map(|s| s.max())
            .filter(|x| !x.is_nan())
            .fold(f64::NAN, f64::max);
        o.push_str(&format!(
            "| peak RSS of `backfill`: apply / apply --jobs {jobs} / revert / revert --jobs {jobs} / plan / no-op | {} | | | < 64 MiB | {} |\n",
            rss.iter().map(|s| mib(s.max())).collect::<Vec<_>>().join(" / "),
            yes(rss_max < 64.0 * 1024.0)
        ));
        o.push_str(&format!(
            "| no-op `apply` (connect + ledger check), {} runs | {} | | | < 100 ms | {} |\n",
            f.noop.0.len(),
            f.noop.show(secs),
            yes(f.noop.median() < 0.1)
        ));
        o.push_str(&format!(
            "\nValues are median (min–max) over the runs; ratios are of the medians, with the range of the per-run ratios \
             (each run measures both sides). The best single statement is `{best_label}` ({}).\n",
            rate(rows as f64 / best.median())
        ));
        let mut per_worker = std::collections::BTreeMap::new();
        for e in &f.timeline_jobs {
            *per_worker.entry(e.worker).or_insert(0u64) += 1;
        }
        let counts: Vec<String> = per_worker.values().map(u64::to_string).collect();
        o.push_str(&format!(
            "`apply --jobs {jobs}` (first run): {} worker(s) wrote batches ({} batches each). Over every \
             `--jobs {jobs}` run: {} batches, {} attempts rolled back by a conflict between the workers and retried. \
             Batch times are each committed transaction's (BEGIN to COMMIT), from the processes' own debug log.\n",
            per_worker.len(),
            counts.join(", "),
            f.jobs_batches,
            f.jobs_retries
        ));
        for r in &f.retried {
            o.push_str(&format!(
                "\nretried from a clean state after an error (shared server): {r}\n"
            ));
        }
        if sweep.is_empty() {
            return o;
        }
        o.push_str(&format!(
            "\nbatch-size sweep (in process, 1 job, {} run(s) each; walls include the ledger and lock work):\n\n",
            self.args.sweep_runs.max(1),
        ));
        o.push_str("| batch size | batches | apply wall | apply / best single statement | longest apply batch | revert wall | revert / DELETE | longest revert batch |\n");
        o.push_str("|---|---|---|---|---|---|---|---|\n");
        for p in sweep {
            o.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                p.label,
                p.batches,
                p.apply.show(secs),
                ratio(p.apply.median() / best.median()),
                secs(p.longest_apply.max()),
                p.revert.show(secs),
                ratio(p.revert.median() / f.delete.median()),
                secs(p.longest_revert.max()),
            ));
        }
        o
    }
}

/// The fastest single statement (lowest median): the reference for `apply`.
fn best_form(f: &Figures) -> Option<(&str, &Samples)> {
    f.forms
        .iter()
        .filter(|(_, s)| !s.0.is_empty())
        .min_by(|a, b| a.1.median().total_cmp(&b.1.median()))
        .map(|(label, s)| (label.as_str(), s))
}

/// How cost grows with size: rows/s of the best single statement, `apply` and `apply --jobs N`, the
/// longest batch and the peak RSS, per dialect and size.
fn growth_table(points: &[GrowthPoint], jobs: u64) -> String {
    let mut o = String::from("## How cost grows\n\n");
    o.push_str(&format!(
        "| dialect | competencies | rows written | best single statement | apply (1 job) | apply --jobs {jobs} | longest batch | peak RSS | median batch at a fixed size | load (1 min) |\n"
    ));
    o.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for p in points {
        let r = p.rows as f64;
        let fixed = p.fixed.map_or("–".into(), |(n, median)| {
            format!("{} ({n} keys)", secs(median))
        });
        let load = p.load.map_or("–".into(), |l| {
            let flag = if busy(l) { " **busy**" } else { "" };
            format!("{l:.1}{flag}")
        });
        o.push_str(&format!(
            "| {} | {} | {} | {} ({}) | {} ({}) | {} ({}) | {} | {} | {fixed} | {load} |\n",
            p.kind.label(),
            p.size,
            p.rows,
            rate(r / p.statement),
            secs(p.statement),
            rate(r / p.apply),
            secs(p.apply),
            rate(r / p.jobs),
            secs(p.jobs),
            secs(p.longest),
            mib(p.rss_kb)
        ));
    }
    o
}

/// The SVG plots, drawn by the harness itself (plotters, SVG backend only).
mod plots {
    use super::{GrowthPoint, Kind};
    use anyhow::{anyhow, Context as _, Result};
    use plotters::prelude::*;
    use std::path::{Path, PathBuf};

    const STYLES: [RGBColor; 3] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
    ];

    /// A line of the growth plot: its name, which time it plots, its marker.
    type Series = (&'static str, fn(&GrowthPoint) -> f64, Mark);

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Mark {
        Cross,
        Circle,
        Triangle,
    }

    fn err(e: impl std::fmt::Debug) -> anyhow::Error {
        anyhow!("drawing a plot: {e:?}")
    }

    /// Writes `rows-per-second.svg` (rows/s against size, per dialect: the best single statement,
    /// `apply`, `apply --jobs N`) and `batches-<dialect>.svg` (the batch durations of `apply` and
    /// `apply --jobs N` over one run at the largest size); returns their paths.
    pub fn write(dir: &Path, points: &[GrowthPoint], jobs: u64) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut written = vec![rows_per_second(dir, points, jobs)?];
        let mut kinds: Vec<Kind> = Vec::new();
        for p in points {
            if !kinds.contains(&p.kind) {
                kinds.push(p.kind);
            }
        }
        for kind in kinds {
            let largest = points
                .iter()
                .filter(|p| p.kind == kind)
                .max_by_key(|p| p.size);
            // A point read back without its batches (`--replot` of hand-kept figures) has no
            // timeline to draw.
            if let Some(p) = largest.filter(|p| !p.timeline_apply.is_empty()) {
                written.push(batches(dir, p, jobs)?);
            }
        }
        Ok(written)
    }

    fn rows_per_second(dir: &Path, points: &[GrowthPoint], jobs: u64) -> Result<PathBuf> {
        let path = dir.join("rows-per-second.svg");
        let root = SVGBackend::new(&path, (900, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let min = points.iter().map(|p| p.size).min().unwrap_or(1).max(1) as f64;
        let max = points.iter().map(|p| p.size).max().unwrap_or(1).max(1) as f64;
        let top = points
            .iter()
            .flat_map(|p| [p.statement, p.apply, p.jobs].map(|t| p.rows as f64 / t))
            .filter(|r| r.is_finite())
            .fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "rows written per second against size (higher is better)",
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d((min * 0.8..max * 1.25).log_scale(), 0.0..top * 1.15)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("competencies")
            .y_desc("rows/s")
            .x_label_formatter(&|x| format!("{:.0}k", x / 1000.0))
            .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
            .draw()
            .map_err(err)?;
        let mut kinds: Vec<Kind> = Vec::new();
        for p in points {
            if !kinds.contains(&p.kind) {
                kinds.push(p.kind);
            }
        }
        for (k, kind) in kinds.iter().enumerate() {
            let color = STYLES[k % STYLES.len()];
            let mine: Vec<&GrowthPoint> = points.iter().filter(|p| p.kind == *kind).collect();
            let series: [Series; 3] = [
                ("best single statement", |p| p.statement, Mark::Cross),
                ("apply, 1 job", |p| p.apply, Mark::Circle),
                ("apply --jobs N", |p| p.jobs, Mark::Triangle),
            ];
            for (name, time, mark) in series {
                let data: Vec<(f64, f64)> = mine
                    .iter()
                    .map(|p| (p.size as f64, p.rows as f64 / time(p)))
                    .filter(|(_, r)| r.is_finite())
                    .collect();
                let label = format!("{}: {}", kind.label(), name.replace('N', &jobs.to_string()));
                let line = color.stroke_width(if mark == Mark::Triangle { 3 } else { 1 });
                let drawn = if mark == Mark::Cross {
                    chart.draw_series(DashedLineSeries::new(data.clone(), 6, 4, line))
                } else {
                    chart.draw_series(LineSeries::new(data.clone(), line))
                };
                drawn
                    .map_err(err)?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line));
                for &(x, y) in &data {
                    match mark {
                        Mark::Cross => chart
                            .draw_series(std::iter::once(Cross::new(
                                (x, y),
                                5,
                                color.stroke_width(2),
                            )))
                            .map(|_| ()),
                        Mark::Circle => chart
                            .draw_series(std::iter::once(Circle::new((x, y), 4, color.filled())))
                            .map(|_| ()),
                        Mark::Triangle => chart
                            .draw_series(std::iter::once(TriangleMarker::new(
                                (x, y),
                                6,
                                color.filled(),
                            )))
                            .map(|_| ()),
                    }
                    .map_err(err)?;
                }
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
        Ok(path.clone())
    }

    fn batches(dir: &Path, p: &GrowthPoint, jobs: u64) -> Result<PathBuf> {
        let name = p.kind.label().to_lowercase();
        let path = dir.join(format!("batches-{name}.svg"));
        let root = SVGBackend::new(&path, (900, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let all = p.timeline_apply.iter().chain(&p.timeline_jobs);
        let right = all.clone().map(|e| e.end).fold(1.0, f64::max);
        // Up to at least the 1 s limit, drawn as a line.
        let top = all.map(|e| e.secs * 1000.0).fold(1000.0, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "{}: every batch transaction of one apply, {} competencies (one dot each)",
                    p.kind.label(),
                    p.size
                ),
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..right * 1.02, 0.0..top * 1.15)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds into the run (batch end)")
            .y_desc("batch duration, ms")
            .draw()
            .map_err(err)?;
        let runs = [
            ("apply, 1 job".to_string(), &p.timeline_apply),
            (format!("apply --jobs {jobs}"), &p.timeline_jobs),
        ];
        for (i, (label, events)) in runs.iter().enumerate() {
            let color = STYLES[i % STYLES.len()];
            let mut workers: Vec<usize> = events.iter().map(|e| e.worker).collect();
            workers.sort_unstable();
            workers.dedup();
            for (n, w) in workers.iter().enumerate() {
                let data: Vec<(f64, f64)> = events
                    .iter()
                    .filter(|e| e.worker == *w)
                    .map(|e| (e.end, e.secs * 1000.0))
                    .collect();
                let series = chart
                    .draw_series(LineSeries::new(data.clone(), color.stroke_width(1)))
                    .map_err(err)?;
                if n == 0 {
                    series
                        .label(label.clone())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
                }
                chart
                    .draw_series(
                        data.iter()
                            .map(|&(x, y)| Circle::new((x, y), 2, color.filled())),
                    )
                    .map_err(err)?;
            }
        }
        let limit = BLACK.mix(0.4);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, 1000.0), (right * 1.02, 1000.0)],
                6,
                4,
                limit.into(),
            ))
            .map_err(err)?
            .label("the 1 s limit for one batch")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], limit));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
        Ok(path.clone())
    }
}

/// How the in-process runs size their batches.
#[derive(Debug, Clone, Copy)]
enum Batching {
    /// What `backfill` does without `--batch-size`.
    Default,
    /// `--batch-size N`: every batch N keys.
    Fixed(u64),
    /// `--batch-ms MS`: from the default first size, resized toward MS per batch.
    Toward(u64),
}

impl std::fmt::Display for Batching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Batching::Default => write!(f, "default"),
            Batching::Fixed(n) => write!(f, "{n}"),
            Batching::Toward(ms) => write!(f, "toward {ms} ms"),
        }
    }
}

struct InProcess {
    wall: f64,
    batches: Vec<Duration>,
}

fn max_secs(batches: &[Duration]) -> f64 {
    batches
        .iter()
        .map(Duration::as_secs_f64)
        .fold(0.0, f64::max)
}

/// Laravel writes timestamps without fractional seconds.
trait WholeSeconds {
    fn with_nanosecond0(self) -> Self;
}

impl WholeSeconds for chrono::NaiveDateTime {
    fn with_nanosecond0(self) -> Self {
        chrono::Timelike::with_nanosecond(&self, 0).unwrap_or(self)
    }
}
