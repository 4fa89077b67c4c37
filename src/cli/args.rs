//! The command line as clap sees it: the derive definitions, with the flag groups commands share
//! flattened in, and what derive cannot say (each command's help naming the global flags that apply
//! to it, the long `--version`, flags refused where they mean nothing).

use crate::cli::output::{clap_error_line, error_line, invalid_utf8};
use crate::cli::report::Format;
use crate::cli::target::UrlFrom;
use crate::engine::options::{
    DEFAULT_BATCH_SIZE, DEFAULT_BATCH_TARGET, DEFAULT_JOBS, DEFAULT_LOCK_TIMEOUT, DEFAULT_PAUSE,
    DEFAULT_SAMPLES, DEFAULT_STATEMENT_TIMEOUT,
};
use crate::registry::Catalog;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

const EXIT_CODES: &str = "Exit codes: 0 ok · 1 runtime error · 2 usage/config error · 3 ledger inconsistent (verify's findings, a damaged ledger) · \
4 lock busy (wait: timed out) · 5 refused for safety (checksum drift, plan changed, edited rows on revert) · \
6 stopped on request (cancel, end of --window, --run-for, --until or --limit; rerunning resumes) · 130/143 interrupted";

/// The heading of the flags the database commands take, before or after the command's name.
const GLOBAL: &str = "Global options (before or after the command; not for new and demo)";

/// Versioned, resumable, revertible data migrations (backfills) for PostgreSQL, MySQL/MariaDB and SQLite.
#[derive(Debug, Parser)]
#[command(name = "backfill", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub connection: Connection,
    /// Format of the command's result on stdout.
    #[arg(long, value_enum, default_value = "text", global = true, help_heading = GLOBAL)]
    pub format: Format,
    /// No progress bar or progress lines on stderr from apply and revert (default: shown).
    #[arg(long, short, global = true, help_heading = GLOBAL)]
    pub quiet: bool,
    /// Who runs this, for the audit trail of plan, apply, revert, repair, forget (default: $USER,
    /// else $LOGNAME, else the system's name for the process's user).
    #[arg(long, value_name = "NAME", env = "BACKFILL_OPERATOR", global = true, help_heading = GLOBAL)]
    pub operator: Option<String>,
    /// Format of the logs on stderr; RUST_LOG sets their level (default: warn).
    #[arg(long, value_enum, default_value = "text", global = true, help_heading = GLOBAL)]
    pub(crate) log_format: LogFormat,
    /// Also run the declarative migrations (V<12 digits>__<name>.toml) in this directory, in one
    /// version order with the compiled ones (README: "Data migrations without Rust").
    #[arg(long, value_name = "DIR", env = "BACKFILL_MIGRATIONS_DIR", global = true, help_heading = GLOBAL)]
    pub migrations_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// Which database: the flags every command that opens one shares.
#[derive(Debug, Args)]
pub(crate) struct Connection {
    /// Database: postgres://, mysql://, mariadb://, sqlite://path or sqlite:/abs/path; wins over --env-file.
    #[arg(long, value_name = "URL", env = "DATABASE_URL", global = true, hide_env_values = true, help_heading = GLOBAL)]
    pub(crate) database_url: Option<String>,
    /// The app's Laravel .env: DB_URL, or DB_CONNECTION/HOST/PORT/DATABASE/USERNAME/PASSWORD and DB_SSLMODE.
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL)]
    pub env_file: Option<PathBuf>,
    /// PostgreSQL: the schema of the app's tables, where the ledger lives too (default: the URL's
    /// search_path, DB_SEARCH_PATH/DB_SCHEMA in the .env, else the user's own search_path). For
    /// `test`: the app's schema files, FILE[,FILE…].
    #[arg(long, value_name = "NAME", global = true, help_heading = GLOBAL)]
    pub schema: Option<String>,
    /// Where `database_url` came from (the flag or `DATABASE_URL`), for error messages.
    #[arg(skip)]
    pub(crate) url_from: UrlFrom,
}

/// A dialect `backfill test` checks on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TestDialect {
    Postgres,
    Mysql,
    Sqlite,
}

impl TestDialect {
    pub(crate) fn dialect(self) -> crate::db::Dialect {
        match self {
            TestDialect::Postgres => crate::db::Dialect::Postgres,
            TestDialect::Mysql => crate::db::Dialect::Mysql,
            TestDialect::Sqlite => crate::db::Dialect::Sqlite,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct Batching {
    // Its help names the default, so it is written where the default is read.
    #[arg(long, value_name = "N", help = batch_size_help(), allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_size: Option<u64>,
    /// Milliseconds to sleep between batches, to leave room for the app's own traffic.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_PAUSE.as_millis() as u64, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub(crate) pause_ms: u64,
    #[command(flatten)]
    pub lock: LockWait,
    /// Cancel any single statement running longer than this many seconds (0: no limit).
    #[arg(long, value_name = "S", default_value_t = DEFAULT_STATEMENT_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub statement_timeout: u64,
    // Its help names the default, so it is written where the default is read.
    #[arg(long, value_name = "MS", help = batch_ms_help(), allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub(crate) batch_ms: Option<u64>,
    /// Before each batch, wait while a replica lags more than this behind (default: no limit).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) max_replica_lag: Option<u64>,
    /// A replica to watch for --max-replica-lag, repeatable (default: only the replicas a PostgreSQL primary reports itself).
    ///
    /// A MySQL/MariaDB replica (its Seconds_Behind_Master; stopped replication waits), another Galera
    /// node or a PostgreSQL standby (how far it is behind our writes). The user needs to read
    /// replication status there (REPLICATION CLIENT / SLAVE MONITOR on MySQL/MariaDB).
    #[arg(long, value_name = "URL", requires = "max_replica_lag")]
    pub replica_url: Vec<String>,
    /// Workers, each with its own connection, on disjoint key ranges (default 1; SQLite runs as 1:
    /// one writer at a time). README: when more jobs help and when they hurt.
    ///
    /// A run holds N + 1 connections (one per job and the coordinator's; each --replica-url adds one
    /// there). On MySQL/MariaDB, with fewer connections left under max_connections, it runs with as
    /// many jobs as fit and says so.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_JOBS as u64, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: u64,
    #[command(flatten)]
    pub(crate) watching: crate::cli::watching::Watching,
}

fn batch_size_help() -> String {
    format!(
        "Keys per batch, each batch one transaction with its checkpoint (default: {DEFAULT_BATCH_SIZE}, then adapted to --batch-ms)"
    )
}

fn batch_ms_help() -> String {
    format!(
        "Resize each batch toward this many milliseconds per transaction (default: {}; none with --batch-size alone)",
        DEFAULT_BATCH_TARGET.as_millis()
    )
}

/// Where apply and revert stop or wait (exit 6 on a stop; the next run goes on from there).
#[derive(Debug, Args)]
pub(crate) struct Bounds {
    /// Stop at a checkpoint once about N rows are written (a canary); the next apply goes on (default: no limit).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Stop at a checkpoint once the command has run this long: 90m, 2h30m, 45s, 1d (default: no limit).
    #[arg(long, value_name = "DURATION", value_parser = crate::engine::budget::parse_duration)]
    pub run_for: Option<Duration>,
    /// Stop at a checkpoint at this time of this host's clock (its TZ), HH:MM (default: no limit).
    #[arg(long, value_name = "HH:MM")]
    pub until: Option<String>,
    /// Write only inside this window, e.g. "Mon-Fri 22:00-06:00 Europe/Madrid" (days: the day it
    /// opens; days and zone optional: every day, UTC); outside it, stop at a checkpoint (default: always).
    #[arg(long, value_name = "SPEC", value_parser = crate::engine::budget::Window::parse)]
    pub window: Option<crate::engine::budget::Window>,
    /// Outside --window, wait for it to open (holding the lock, no transaction) instead of stopping.
    #[arg(long, requires = "window")]
    pub wait_for_window: bool,
}

/// `backfill set`: the values to change in a running run; at least one.
#[derive(Debug, Args)]
#[group(required = true, multiple = true)]
pub(crate) struct SetArgs {
    /// Keys per batch from the next batch on, fixed (with --batch-ms: the size to adapt from; default: unchanged).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_size: Option<u64>,
    /// Resize each batch toward this many milliseconds from the next batch on (default: unchanged).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub batch_ms: Option<u64>,
    /// Milliseconds to sleep between batches from now on (default: unchanged).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub pause_ms: Option<u64>,
    /// Wait between batches while a replica lags more than this many seconds (default: unchanged).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub max_replica_lag: Option<u64>,
    /// Workers of a parallel run (started with --jobs 2 or more): added, or retired after their
    /// current batch, handing their chunks to the others (default: unchanged).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: Option<u64>,
}

/// The one `--lock-timeout` of every command that touches the ledger.
#[derive(Debug, Args)]
pub(crate) struct LockWait {
    /// Seconds to wait for another runner's lock, or a lock held on the ledger, before giving up
    /// (exit 4 for the runner lock).
    #[arg(long, value_name = "S", default_value_t = DEFAULT_LOCK_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub(crate) lock_timeout: u64,
}

impl LockWait {
    pub(super) fn duration(&self) -> Duration {
        Duration::from_secs(self.lock_timeout)
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Every migration this binary knows and its state in the ledger.
    Status {
        #[command(flatten)]
        lock: LockWait,
        /// Redraw every S seconds (default 2) until Ctrl-C, within 80 columns.
        #[arg(long, value_name = "S", num_args = 0..=1, default_missing_value = "2", value_parser = clap::value_parser!(u64).range(1..=3600))]
        watch: Option<u64>,
    },
    /// What `apply` would write, per scenario, without writing it (read-only transaction).
    Plan {
        /// One migration (default: every pending one).
        #[arg(allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..))]
        version: Option<i64>,
        /// Save the plan to review, for `apply --expect-plan` (default: not saved).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Sample rows shown per scenario.
        #[arg(long, default_value_t = DEFAULT_SAMPLES as u64, value_parser = clap::value_parser!(u64).range(0..=1000))]
        samples: u64,
    },
    /// Run pending migrations in version order (safe on every deploy, from several hosts at once).
    Apply {
        /// Only this migration, even one an operator reverted (default: every pending one).
        #[arg(allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..), conflicts_with = "to")]
        version: Option<i64>,
        /// Pending migrations up to and including this version (default: every pending one).
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
        to: Option<i64>,
        /// Refuse (exit 5) unless the plan now equals this reviewed plan file (default: no check).
        #[arg(long, value_name = "FILE")]
        expect_plan: Option<PathBuf>,
        #[command(flatten)]
        batching: Batching,
        #[command(flatten)]
        bounds: Bounds,
    },
    /// Undo exactly what one migration wrote: delete the rows it inserted, or restore those it updated.
    Revert {
        /// The migration to revert (one at a time, always named; `status` lists them).
        #[arg(allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..))]
        version: i64,
        /// Only the rows of this group, in the migration's own grouping (default: every group).
        #[arg(long, value_name = "ID", allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..))]
        group: Option<i64>,
        /// The same as --group, for migrations that group by scenario (default: every scenario).
        #[arg(long, value_name = "ID", conflicts_with = "group", allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..))]
        scenario: Option<i64>,
        /// Also undo rows edited after the backfill (they are listed and refused otherwise).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        batching: Batching,
        #[command(flatten)]
        bounds: Bounds,
    },
    /// Pause a running apply or revert after its current batch, from any host; it keeps its lock.
    Pause {
        /// The running migration (`backfill status` shows what runs).
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        version: i64,
    },
    /// Let a paused apply or revert go on.
    Resume {
        /// The paused migration.
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        version: i64,
    },
    /// Stop a running apply or revert at its next checkpoint (it exits 6): `apply VERSION` resumes it,
    /// `revert VERSION` undoes it; a deploy's apply leaves it alone.
    Cancel {
        /// The running migration.
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        version: i64,
    },
    /// Change a running apply or revert's batching and throttling, from its next batch on.
    Set {
        /// The running migration.
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        version: i64,
        #[command(flatten)]
        values: SetArgs,
    },
    /// A deploy gate: wait until a migration is applied (exit 0); exit 1 if it failed, was
    /// cancelled or reverted; exit 4 at --timeout.
    Wait {
        /// The migration to wait for.
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        version: i64,
        /// Give up after this many seconds, exit 4 (default: wait as long as it takes).
        #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(0..=604_800))]
        timeout: Option<u64>,
    },
    /// Check the ledger for CI: drift, unknown versions, failed runs, out-of-order pending (exit 3).
    Verify {
        /// Also run each applied migration's data checks; data drift is reported with exit 0 (default: ledger only).
        #[arg(long)]
        data: bool,
        /// With --data: exit 3 on data drift too.
        #[arg(long, requires = "data")]
        strict: bool,
    },
    /// The audit trail of runs (`--format markdown` for a deploy issue).
    Log {
        /// Only this migration's runs (default: every run).
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        version: Option<i64>,
        /// Only runs since 2026-11-25, "2026-11-25 10:00:00" (UTC) or an age like 24h, 7d (default: all).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
    },
    /// Scaffold data_migrations/V<UTC timestamp>__NAME.rs here, or with --toml a declarative file in --migrations-dir.
    New {
        /// The migration's name, snake_case (e.g. backfill_skill_levels).
        name: String,
        /// Write a declarative V<timestamp>__NAME.toml into --migrations-dir instead (no Rust needed).
        #[arg(long, requires = "migrations_dir")]
        toml: bool,
    },
    /// Drop an UPDATE-shaped migration's undo journal once it is final; it can no longer be reverted.
    Forget {
        /// The migration whose journal to drop.
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        version: i64,
        #[command(flatten)]
        lock: LockWait,
    },
    /// Fix the ledger after a deliberate change, with an audit row.
    Repair {
        /// The migration whose ledger row to fix.
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        version: i64,
        /// The migration's source was edited on purpose: record the new checksum.
        #[arg(
            long,
            conflicts_with = "mark_failed",
            required_unless_present = "mark_failed"
        )]
        accept_checksum: bool,
        /// A run is recorded as running but its process is gone: mark it failed so it can be resumed.
        #[arg(long)]
        mark_failed: bool,
        #[command(flatten)]
        lock: LockWait,
    },
    /// Load generated app data (the HR app's tables and rows) into an empty database, to try backfill.
    SampleData {
        /// Competencies to generate; the other tables scale with it.
        #[arg(long, value_name = "N", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        size: u64,
    },
    /// Create a crate of your own for your app's migrations: it depends on backfill, registers its
    /// data_migrations/ and builds a binary with every command (no fork of backfill needed).
    Init {
        /// The new crate's folder (created; refused unless empty); its name is the crate's.
        dir: PathBuf,
        /// Depend on the backfill checkout at PATH (default: backfill from crates.io).
        #[arg(long, value_name = "PATH", conflicts_with = "backfill_git")]
        backfill_path: Option<PathBuf>,
        /// Depend on backfill from this git repository (default: see --backfill-path).
        #[arg(long, value_name = "URL")]
        backfill_git: Option<String>,
        /// The commit, tag or branch of --backfill-git (default: the repository's default branch).
        #[arg(long, value_name = "R", requires = "backfill_git")]
        rev: Option<String>,
    },
    /// Check migrations on scratch databases: plan == apply, idempotent, verify clean, exact revert (exit 1 on a failure).
    ///
    /// Each VERSION (default: every file of --migrations-dir) runs on a database of its own per
    /// dialect, loaded with --schema and --seed, dropped afterwards even when a check fails.
    Test {
        /// The migrations to check (default: every declarative file of --migrations-dir).
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        versions: Vec<i64>,
        /// SQL run after --schema on each scratch database: the rows the migration must change (default: none).
        #[arg(long, value_name = "FILE")]
        seed: Option<PathBuf>,
        /// The dialects to check on, comma-separated (default: sqlite, which needs no server).
        #[arg(long, value_enum, value_delimiter = ',', default_value = "sqlite")]
        dialects: Vec<TestDialect>,
        /// A server to make scratch databases on, one per dialect (postgres://…, mysql://…; default: none).
        #[arg(long, value_name = "URL")]
        admin_url: Vec<String>,
        /// Pass a migration that writes nothing on the seed (default: that is a failure).
        #[arg(long)]
        allow_empty: bool,
    },
    /// Tell the story on a throwaway SQLite database, running this binary step by step; no server needed.
    Demo {
        /// Keep the demo's folder (database and plan file) and print commands to try on it.
        #[arg(long)]
        keep: bool,
    },
}

/// The git commit this binary was built from: `BACKFILL_GIT_COMMIT` at build time (`make dist` and
/// `make install` set it), else "unknown".
const GIT_COMMIT: &str = match option_env!("BACKFILL_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// `backfill --version`: the version, the commit, and every embedded migration with its checksum,
/// so a deploy can check it runs the binary (and the migrations) it reviewed. An app's binary names
/// the app's crate and commit first, then backfill's.
fn long_version(catalog: &Catalog) -> String {
    let all = catalog.all();
    let width = all
        .iter()
        .map(|m| format!("V{}__{}", m.version, m.name).len())
        .max()
        .unwrap_or(0);
    let backfill = env!("CARGO_PKG_VERSION");
    let mut text = match catalog.foreign_app() {
        Some(app) => format!(
            "{}\ncommit {}\nbackfill {backfill} (commit {GIT_COMMIT})\n",
            app.version, app.commit
        ),
        None => format!("{backfill}\ncommit {GIT_COMMIT}\n"),
    };
    text.push_str(&format!(
        "migrations ({}; SHA-256 of each source file):\n",
        all.len()
    ));
    for m in all {
        let name = format!("V{}__{}", m.version, m.name);
        text.push_str(&format!("  {name:<width$}  {}\n", m.checksum));
    }
    text.trim_end().to_string()
}

/// The global flags that mean something to each command, named at the foot of its help.
const APPLIES: &[(&str, &str)] = &[
    (
        "status",
        "--database-url, --env-file, --migrations-dir, --format, --log-format",
    ),
    (
        "plan",
        "--database-url, --env-file, --migrations-dir, --format, --operator, --log-format",
    ),
    (
        "apply",
        "--database-url, --env-file, --migrations-dir, --format, --quiet, --operator, --log-format",
    ),
    (
        "revert",
        "--database-url, --env-file, --migrations-dir, --format, --quiet, --operator, --log-format",
    ),
    (
        "verify",
        "--database-url, --env-file, --migrations-dir, --format, --log-format",
    ),
    (
        "log",
        "--database-url, --env-file, --migrations-dir, --format, --log-format",
    ),
    (
        "forget",
        "--database-url, --env-file, --migrations-dir, --operator, --log-format",
    ),
    (
        "repair",
        "--database-url, --env-file, --migrations-dir, --operator, --log-format",
    ),
    (
        "pause",
        "--database-url, --env-file, --operator, --log-format",
    ),
    (
        "resume",
        "--database-url, --env-file, --operator, --log-format",
    ),
    (
        "cancel",
        "--database-url, --env-file, --operator, --log-format",
    ),
    (
        "set",
        "--database-url, --env-file, --operator, --log-format",
    ),
    ("wait", "--database-url, --env-file, --log-format"),
    (
        "test",
        "--migrations-dir, --schema (the app's schema files), --format, --log-format",
    ),
    (
        "sample-data",
        "--database-url, --env-file, --format, --log-format",
    ),
];

/// The command line as clap builds it from `Cli`, plus what derive cannot say. The global flags
/// are described once, in `backfill --help`: each command's help only names those that apply to it
/// (none for `new` and `demo`), though they are accepted before or after any command's name. And
/// `--version` tells the build.
pub fn command() -> clap::Command {
    command_for(&crate::registry::compiled())
}

/// [`command`] for a binary that runs `catalog` (its `--version` lists those migrations).
pub(crate) fn command_for(catalog: &Catalog) -> clap::Command {
    let program = program_name(catalog);
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let globals: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for name in names {
        let globals = globals.clone();
        let applies = APPLIES.iter().find(|(n, _)| *n == name).map(|(_, a)| *a);
        let program = program.clone();
        cmd = cmd.mut_subcommand(name, move |mut sc| {
            // A hidden copy of each global flag: clap then leaves the subcommand its own.
            for arg in globals {
                sc = sc.arg(arg.hide(true));
            }
            match applies {
                Some(flags) => {
                    sc.after_help(format!("Global options ({flags}): see `{program} --help`."))
                }
                None => sc,
            }
        });
    }
    let backfill = format!("{} (commit {GIT_COMMIT})", env!("CARGO_PKG_VERSION"));
    if let Some(app) = catalog.foreign_app() {
        let version = format!(
            "{} (commit {}; backfill {backfill})",
            app.version, app.commit
        );
        cmd = cmd.name(app.name).version(leak(version));
    } else {
        cmd = cmd.version(leak(backfill));
    }
    cmd.long_version(leak(long_version(catalog)))
}

/// What the operator calls this binary, so the help's pointers (`see `NAME --help``) name what
/// clap's `Usage:` line names: argv[0]'s file name (an app's binary, or a renamed copy), else the
/// app's crate name, else backfill.
fn program_name(catalog: &Catalog) -> String {
    std::env::args_os()
        .next()
        .and_then(|arg0| {
            let name = std::path::Path::new(&arg0)
                .file_name()?
                .to_str()?
                .to_string();
            Some(name)
        })
        .filter(|name| !name.is_empty())
        .or_else(|| catalog.foreign_app().map(|app| app.name.to_string()))
        .unwrap_or_else(|| "backfill".into())
}

/// clap keeps version texts as `&'static str`; these two are made once per process.
fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// `new` and `demo` open no database of the operator's: refuse a database given to them on the
/// command line instead of ignoring it (`DATABASE_URL` in the environment is fine).
fn refuse_database_flags(matches: &clap::ArgMatches) -> std::result::Result<(), String> {
    let Some((name, sub)) = matches.subcommand() else {
        return Ok(());
    };
    if !matches!(name, "new" | "demo" | "init") {
        return Ok(());
    }
    for (id, flag) in [
        ("database_url", "--database-url"),
        ("env_file", "--env-file"),
    ] {
        let given = [matches, sub]
            .iter()
            .any(|m| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine));
        if given {
            let instead = match name {
                "demo" => "the demo makes its own SQLite database; `backfill sample-data` loads the same data into yours",
                "init" => "it only writes a new crate's files",
                _ => "it only writes a file under data_migrations/",
            };
            return Err(format!("{flag} does not apply to `{name}`: {instead}"));
        }
    }
    Ok(())
}

fn from_matches(matches: &clap::ArgMatches) -> std::result::Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let mut cli = Cli::from_arg_matches(matches)?;
    let from_env = [Some(matches), matches.subcommand().map(|(_, m)| m)]
        .into_iter()
        .flatten()
        .any(|m| m.value_source("database_url") == Some(clap::parser::ValueSource::EnvVariable));
    if from_env {
        cli.connection.url_from = UrlFrom::Environment;
    }
    Ok(cli)
}

/// Parses arguments; clap's own errors become one line and exit 2.
pub(crate) fn parse(catalog: &Catalog) -> std::result::Result<Cli, i32> {
    let program = program_name(catalog);
    let parsed = command_for(catalog).try_get_matches().and_then(|m| {
        if let Err(message) = refuse_database_flags(&m) {
            error_line(&message);
            return Ok(None);
        }
        from_matches(&m).map(Some)
    });
    match parsed {
        Ok(Some(cli)) => Ok(cli),
        Ok(None) => Err(2),
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            let _ = e.print();
            Err(0)
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            Err(2)
        }
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidUtf8 => {
            error_line(&invalid_utf8());
            Err(2)
        }
        Err(e) => {
            error_line(&clap_error_line(&e, &program));
            Err(2)
        }
    }
}
