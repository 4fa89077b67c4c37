//! The command line: clap-derive definitions, and dispatch to the library.

pub mod demo;
pub mod report;
pub mod scaffold;
/// Where the database is: `--database-url`, `DATABASE_URL`, or the app's `.env`.
pub mod target;
pub mod when;

use crate::db::{self, Session};
use crate::engine::inspect;
use crate::engine::planfile::{PlanOut, PlanTarget};
use crate::engine::runner::{self, Options, Selection};
use crate::error::{Error, Result};
use clap::{Args, Parser, Subcommand};
use report::Format;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

const EXIT_CODES: &str = "Exit codes: 0 ok · 1 runtime error · 2 usage/config error · 3 ledger inconsistent (verify's findings, a damaged ledger) · \
4 lock busy · 5 refused for safety (checksum drift, plan changed, edited rows on revert) · 130/143 interrupted";

/// The heading of the flags the database commands take, before or after the command's name.
const GLOBAL: &str = "Global options (before or after the command; not for new and demo)";

/// Versioned, resumable, revertible data migrations (backfills) for PostgreSQL, MySQL/MariaDB and SQLite.
#[derive(Debug, Parser)]
#[command(name = "backfill", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Database: postgres://, mysql://, mariadb://, sqlite://path or sqlite:/abs/path; wins over --env-file.
    #[arg(long, value_name = "URL", env = "DATABASE_URL", global = true, hide_env_values = true, help_heading = GLOBAL)]
    pub database_url: Option<String>,
    /// The app's Laravel .env: DB_URL, or DB_CONNECTION/HOST/PORT/DATABASE/USERNAME/PASSWORD and DB_SSLMODE.
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL)]
    pub env_file: Option<PathBuf>,
    /// PostgreSQL: the schema of the app's tables, where the ledger lives too (default: the URL's
    /// search_path, DB_SEARCH_PATH/DB_SCHEMA in the .env, else the user's own search_path).
    #[arg(long, value_name = "NAME", global = true, help_heading = GLOBAL)]
    pub schema: Option<String>,
    /// Format of the command's result on stdout.
    #[arg(long, value_enum, default_value = "text", global = true, help_heading = GLOBAL)]
    pub format: Format,
    /// No progress bar or progress lines on stderr from apply and revert (default: shown).
    #[arg(long, short, global = true, help_heading = GLOBAL)]
    pub quiet: bool,
    /// Who runs this, for the audit trail of plan, apply, revert, repair, forget (default: $USER).
    #[arg(long, value_name = "NAME", env = "BACKFILL_OPERATOR", global = true, help_heading = GLOBAL)]
    pub operator: Option<String>,
    /// Format of the logs on stderr; RUST_LOG sets their level (default: warn).
    #[arg(long, value_enum, default_value = "text", global = true, help_heading = GLOBAL)]
    pub log_format: LogFormat,
    /// Where `database_url` came from (the flag or `DATABASE_URL`), for error messages.
    #[arg(skip)]
    pub url_from: crate::cli::target::UrlFrom,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct Batching {
    /// Keys per batch, each batch one transaction with its checkpoint (default: 5000, then adapted to --batch-ms).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_size: Option<u64>,
    /// Milliseconds to sleep between batches, to leave room for the app's own traffic.
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub pause_ms: u64,
    #[command(flatten)]
    pub lock: LockWait,
    /// Cancel any single statement running longer than this many seconds (0: no limit).
    #[arg(long, value_name = "S", default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub statement_timeout: u64,
    /// Resize each batch toward this many milliseconds per transaction (default: 300; none with --batch-size alone).
    #[arg(long, value_name = "MS", allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub batch_ms: Option<u64>,
    /// Before each batch, wait while a replica lags more than this behind (default: no limit).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub max_replica_lag: Option<u64>,
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
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: u64,
}

/// The one `--lock-timeout` of every command that touches the ledger.
#[derive(Debug, Args)]
pub struct LockWait {
    /// Seconds to wait for another runner's lock, or a lock held on the ledger, before giving up
    /// (exit 4 for the runner lock).
    #[arg(long, value_name = "S", default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub lock_timeout: u64,
}

impl LockWait {
    fn duration(&self) -> Duration {
        Duration::from_secs(self.lock_timeout)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every migration this binary knows and its state in the ledger.
    Status {
        #[command(flatten)]
        lock: LockWait,
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
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=1000))]
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
    /// Scaffold data_migrations/V<UTC timestamp>__NAME.rs in the current directory.
    New {
        /// The migration's name, snake_case (e.g. backfill_skill_levels).
        name: String,
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
    /// Tell the story on a throwaway SQLite database, running this binary step by step; no server needed.
    Demo {
        /// Keep the demo's folder (database and plan file) and print commands to try on it.
        #[arg(long)]
        keep: bool,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(|| Stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.without_time().with_target(false).try_init(),
    };
}

/// The command line as recorded in the audit table: secrets redacted. A `--database-url` value is
/// redacted as the drivers parse it, so a password with a raw space or `@` is hidden whole.
/// The flags whose value is a URL (and may hold a password).
const URL_FLAGS: [&str; 2] = ["--database-url", "--replica-url"];

/// `--database-url=URL` and the like: the flag and the URL.
fn url_flag(arg: &str) -> Option<(&str, &str)> {
    let (flag, url) = arg.split_once('=')?;
    URL_FLAGS.contains(&flag).then_some((flag, url))
}

fn recorded_arguments() -> String {
    let mut args = Vec::new();
    let mut url_next = false;
    for arg in std::env::args_os().skip(1) {
        let arg = arg.to_string_lossy();
        let shown = if url_next {
            db::url::redact_url(&arg)
        } else if let Some((flag, url)) = url_flag(&arg) {
            format!("{flag}={}", db::url::redact_url(url))
        } else {
            db::url::redact(&arg)
        };
        url_next = URL_FLAGS.contains(&arg.as_ref());
        args.push(shown);
    }
    serde_json::to_string(&args).unwrap_or_else(|_| "[]".into())
}

/// Learns every password the invocation carries (URLs in the arguments, `DATABASE_URL`) before
/// anything parses or prints them, so no message, log line or audit row can show one.
fn remember_secrets() {
    for arg in std::env::args_os().skip(1) {
        let arg = arg.to_string_lossy();
        if arg.contains("://") {
            db::url::remember_secrets_of(url_flag(&arg).map_or(arg.as_ref(), |(_, url)| url));
        }
    }
    if let Some(url) = std::env::var_os("DATABASE_URL") {
        db::url::remember_secrets_of(&url.to_string_lossy());
    }
}

/// stderr for errors, logs and the panic hook: every write is redacted, and a closed or broken
/// stderr drops the text instead of failing (`eprintln!` panics then, and a panic while panicking
/// aborts with 134).
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = db::url::redact(&String::from_utf8_lossy(buf));
        let _ = std::io::stderr().write_all(text.as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// The error line's text: after a signal, exactly what was committed; database hints naming where
/// the setting came from.
fn failure(e: &Error) -> String {
    if let (Error::Interrupted(sig), Some(done)) = (e, crate::engine::progress::interrupted()) {
        let name = match *sig {
            2 => "SIGINT".to_string(),
            15 => "SIGTERM".to_string(),
            n => format!("signal {n}"),
        };
        return format!("interrupted by {name}: {done}; rerun the same command to resume");
    }
    crate::cli::target::attribute(&e.to_string())
}

/// The one error line of a failed command.
fn error_line(message: &str) {
    let _ = writeln!(Stderr, "error: {message}");
}

/// Where the operator name came from: the flag, its environment variable, or `$USER`.
fn operator_source(cli: &Cli) -> &'static str {
    let flag = std::env::args_os().any(|a| {
        let a = a.to_string_lossy();
        a == "--operator" || a.starts_with("--operator=")
    });
    match (&cli.operator, flag) {
        (Some(_), true) => "--operator",
        (Some(_), false) => "BACKFILL_OPERATOR",
        (None, _) => "USER",
    }
}

fn options(cli: &Cli) -> Options {
    Options {
        operator: cli
            .operator
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "unknown".into()),
        arguments: recorded_arguments(),
        quiet: cli.quiet,
        ..Options::default()
    }
}

/// `opts` carries the defaults (`Options::default()`): a flag left out keeps its default.
fn with_batching(mut opts: Options, b: &Batching) -> Result<Options> {
    opts.batch_size = b.batch_size.unwrap_or(opts.batch_size);
    opts.batch_target = match (b.batch_size, b.batch_ms) {
        (_, Some(ms)) => Some(Duration::from_millis(ms)),
        (Some(_), None) => None,
        (None, None) => opts.batch_target,
    };
    opts.pause = Duration::from_millis(b.pause_ms);
    opts.max_replica_lag = b.max_replica_lag.map(Duration::from_secs);
    opts.jobs = b.jobs as usize;
    opts.lock_timeout = b.lock.duration();
    opts.statement_timeout =
        (b.statement_timeout > 0).then(|| Duration::from_secs(b.statement_timeout));
    opts.replicas = b
        .replica_url
        .iter()
        .map(|url| replica(url))
        .collect::<Result<_>>()?;
    Ok(opts)
}

/// A `--replica-url`, named by host and port in messages (never with its password).
fn replica(url: &str) -> Result<runner::Replica> {
    let target = db::Target::parse(url).map_err(|e| Error::Usage(format!("--replica-url: {e}")))?;
    let name = match (&target.host, target.port) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        _ => target.redacted.clone(),
    };
    Ok(runner::Replica {
        name,
        connect: runner::Connector::new(move || db::connect(&target)),
    })
}

const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(60);

fn connect(cli: &Cli) -> Result<(Box<dyn Session>, db::Target)> {
    if let (Some(file), Some(url)) = (&cli.env_file, &cli.database_url) {
        if !url.trim().is_empty() {
            tracing::warn!(
                "--env-file {} ignored: --database-url / DATABASE_URL takes precedence",
                file.display()
            );
        }
    }
    let target = resolve(cli)?;
    let mut session = db::connect(&target)?;
    // Every command is bounded, the read-only ones too: a lock held on the ledger or the app's
    // tables fails the command instead of hanging it. apply/revert/status set their own flags' values.
    session.set_timeouts(Some(DEFAULT_STATEMENT_TIMEOUT), Some(DEFAULT_LOCK_WAIT))?;
    Ok((session, target))
}

/// The command's target, with `--schema` in place of any other search_path.
fn resolve(cli: &Cli) -> Result<db::Target> {
    let mut target = crate::cli::target::resolve(
        cli.database_url.as_deref(),
        cli.url_from,
        cli.env_file.as_deref(),
    )?;
    if let Some(schema) = &cli.schema {
        if target.dialect != db::Dialect::Postgres {
            return Err(Error::Usage(
                "--schema is for PostgreSQL; a MySQL/MariaDB or SQLite database is one schema: name it in the URL".into(),
            ));
        }
        if schema.trim().is_empty() {
            return Err(Error::Usage(
                "--schema names no schema; give the schema of the app's tables".into(),
            ));
        }
        // One name, exactly as written (quoted: `App` stays `App`).
        target.search_path = Some(format!("\"{}\"", schema.replace('"', "\"\"")));
    }
    Ok(target)
}

/// One more connection to the command's database, with its timeouts, for each worker of `--jobs N`.
/// A worker waits on its siblings' chunk rows for as long as one of their batches may run (the
/// statement timeout), never less: `--lock-timeout` is how long to wait for another runner, and 0
/// (do not wait) would fail every run on its own workers' row locks.
fn connector(target: &db::Target, opts: &Options) -> runner::Connector {
    let statement = opts.statement_timeout;
    let lock_wait = statement.map(|t| t.max(opts.lock_timeout));
    let target = target.clone();
    runner::Connector::new(move || {
        let mut s = db::connect(&target)?;
        s.set_timeouts(statement, lock_wait)?;
        Ok(s)
    })
}

/// Writes the command's result. A reader that went away (`| head`) is not an error; any other
/// failure (`> /dev/full`) is: the result was lost.
fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::Runtime(format!(
            "the command finished, but its output could not be written to stdout ({e}); free space where stdout goes, or redirect it elsewhere, and run the command again to see its result"
        ))),
    }
}

/// Runs the parsed command; returns what to print on stdout.
pub fn run(cli: &Cli) -> Result<String> {
    let opts = options(cli);
    // The audit table's operator_name column holds 255 characters.
    if opts.operator.chars().count() > 255 {
        return Err(Error::Usage(format!(
            "the operator name from {} is longer than 255 characters; shorten it",
            operator_source(cli)
        )));
    }
    let f = cli.format;
    match &cli.command {
        Command::New { name } => {
            let paths =
                crate::cli::scaffold::create(std::path::Path::new("data_migrations"), name)?;
            Ok(paths
                .iter()
                .map(|p| format!("created {}\n", p.display()))
                .collect())
        }
        Command::Demo { keep } => crate::cli::demo::run(*keep),
        Command::SampleData { size } => {
            let target = resolve(cli)?;
            let loaded = crate::fixtures::load_sample(&target, *size)?;
            Ok(report::sample_data(&target.redacted, &loaded, f))
        }
        Command::Status { lock } => {
            let (mut s, target) = connect(cli)?;
            s.set_timeouts(Some(DEFAULT_STATEMENT_TIMEOUT), Some(lock.duration()))?;
            let opts = Options {
                lock_timeout: lock.duration(),
                ..opts
            };
            let lines = inspect::status(s.as_mut(), &opts)?;
            let shown = match s.ledger_place()?.and_then(|p| p.schema) {
                Some(schema) => format!("{} (schema {schema})", target.redacted),
                None => target.redacted.clone(),
            };
            let mut out = report::status(&shown, &lines, f);
            if let (Format::Text, Some(note)) =
                (f, crate::engine::ledger::no_ledger_note(s.as_mut())?)
            {
                out.push_str(&note);
                out.push('\n');
            }
            Ok(out)
        }
        Command::Plan {
            version,
            out,
            samples,
        } => {
            // Before any planning work: a plan that cannot be saved is not worth computing.
            let out = out.as_deref().map(PlanOut::check).transpose()?;
            let (mut s, target) = connect(cli)?;
            let opts = Options {
                samples: *samples as usize,
                ..opts
            };
            let reports = runner::plan(s.as_mut(), *version, &opts)?;
            if let Some(out) = out {
                out.write(&PlanTarget::of(&target, s.as_mut())?, &reports)?;
            }
            Ok(report::plans(&reports, f))
        }
        Command::Apply {
            version,
            to,
            expect_plan,
            batching,
        } => {
            let mut opts = with_batching(opts, batching)?;
            if let Some(path) = expect_plan {
                opts.expect_plan = Some(crate::engine::planfile::read(path)?);
            }
            let selection = match (version, to) {
                (Some(v), _) => Selection::One(*v),
                (None, Some(t)) => Selection::UpTo(*t),
                (None, None) => Selection::Pending,
            };
            let (mut s, target) = connect(cli)?;
            // From the first statement on, so a lock held on the ledger cannot stall us either.
            s.set_timeouts(opts.statement_timeout, Some(opts.lock_timeout))?;
            opts.connect = Some(connector(&target, &opts));
            if let (Some(file), Some(path)) = (&opts.expect_plan, expect_plan) {
                // Before anything else: a plan of another database says nothing about this one.
                crate::engine::planfile::check_target(
                    file,
                    path,
                    &PlanTarget::of(&target, s.as_mut())?,
                )?;
            }
            let done = runner::apply(s.as_mut(), selection, &opts)?;
            Ok(report::outcomes(
                &done,
                f,
                "nothing to apply: every migration is applied (or reverted by an operator)",
            ))
        }
        Command::Revert {
            version,
            group,
            scenario,
            force,
            batching,
        } => {
            let mut opts = with_batching(opts, batching)?;
            let (mut s, target) = connect(cli)?;
            s.set_timeouts(opts.statement_timeout, Some(opts.lock_timeout))?;
            opts.connect = Some(connector(&target, &opts));
            let done = runner::revert(s.as_mut(), *version, group.or(*scenario), *force, &opts)?;
            Ok(report::outcomes(&[done], f, ""))
        }
        Command::Verify { data, strict } => {
            let (mut s, _) = connect(cli)?;
            let found = inspect::verify(s.as_mut(), *data, &opts)?;
            let text = report::verify(&found, crate::registry::all().len(), f);
            let mut problems = found.ledger;
            if *strict {
                problems.extend(found.drift);
            }
            if problems.is_empty() {
                Ok(text)
            } else {
                print(&text)?;
                Err(Error::Inconsistent(problems))
            }
        }
        Command::Log { version, since } => {
            let since = since.as_deref().map(crate::cli::when::parse).transpose()?;
            let (mut s, _) = connect(cli)?;
            let runs = crate::engine::ledger::read_if_any(s.as_mut(), |s| {
                crate::engine::ledger::runs(s, *version, since)
            })?;
            Ok(report::log(&runs, f))
        }
        Command::Repair {
            version,
            accept_checksum,
            lock,
            ..
        } => {
            let opts = Options {
                lock_timeout: lock.duration(),
                ..opts
            };
            let (mut s, _) = connect(cli)?;
            let message = if *accept_checksum {
                inspect::repair_checksum(s.as_mut(), *version, &opts)?
            } else {
                inspect::repair_mark_failed(s.as_mut(), *version, &opts)?
            };
            Ok(format!("{message}\n"))
        }
        Command::Forget { version, lock } => {
            let opts = Options {
                lock_timeout: lock.duration(),
                ..opts
            };
            let (mut s, _) = connect(cli)?;
            Ok(format!(
                "{}\n",
                inspect::forget(s.as_mut(), *version, &opts)?
            ))
        }
    }
}

/// Names the argument (or environment variable) that is not UTF-8; clap only says "one or more".
fn invalid_utf8() -> String {
    let shown = |raw: &std::ffi::OsStr| format!("{:?}", raw.to_string_lossy());
    if let Some((i, arg)) = std::env::args_os()
        .enumerate()
        .skip(1)
        .find(|(_, a)| a.to_str().is_none())
    {
        return format!(
            "argument {i} ({}) is not valid UTF-8; backfill takes UTF-8 text",
            shown(&arg)
        );
    }
    for var in ["DATABASE_URL", "BACKFILL_OPERATOR"] {
        if std::env::var_os(var).is_some_and(|v| v.to_str().is_none()) {
            return format!("the environment variable {var} is not valid UTF-8; fix its value");
        }
    }
    "invalid UTF-8 in the arguments or the environment; backfill takes UTF-8 text".into()
}

/// The git commit this binary was built from: `BACKFILL_GIT_COMMIT` at build time (`make dist` and
/// `make install` set it), else "unknown".
pub const GIT_COMMIT: &str = match option_env!("BACKFILL_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// `backfill --version`: the version, the commit, and every embedded migration with its checksum,
/// so a deploy can check it runs the binary (and the migrations) it reviewed.
pub fn long_version() -> String {
    let all = crate::registry::all();
    let width = all
        .iter()
        .map(|m| format!("V{}__{}", m.version, m.name).len())
        .max()
        .unwrap_or(0);
    let mut text = format!(
        "{}\ncommit {GIT_COMMIT}\nmigrations ({}; SHA-256 of each source file):\n",
        env!("CARGO_PKG_VERSION"),
        all.len()
    );
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
        "--database-url, --env-file, --format, --log-format",
    ),
    (
        "plan",
        "--database-url, --env-file, --format, --operator, --log-format",
    ),
    (
        "apply",
        "--database-url, --env-file, --format, --quiet, --operator, --log-format",
    ),
    (
        "revert",
        "--database-url, --env-file, --format, --quiet, --operator, --log-format",
    ),
    (
        "verify",
        "--database-url, --env-file, --format, --log-format",
    ),
    ("log", "--database-url, --env-file, --format, --log-format"),
    (
        "forget",
        "--database-url, --env-file, --operator, --log-format",
    ),
    (
        "repair",
        "--database-url, --env-file, --operator, --log-format",
    ),
    (
        "sample-data",
        "--database-url, --env-file, --format, --log-format",
    ),
];

/// The command line as clap builds it from [`Cli`], plus what derive cannot say. The global flags
/// are described once, in `backfill --help`: each command's help only names those that apply to it
/// (none for `new` and `demo`), though they are accepted before or after any command's name. And
/// `--version` tells the build.
pub fn command() -> clap::Command {
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
        cmd = cmd.mut_subcommand(name, move |mut sc| {
            // A hidden copy of each global flag: clap then leaves the subcommand its own.
            for arg in globals {
                sc = sc.arg(arg.hide(true));
            }
            match applies {
                Some(flags) => {
                    sc.after_help(format!("Global options ({flags}): see `backfill --help`."))
                }
                None => sc,
            }
        });
    }
    let version = format!("{} (commit {GIT_COMMIT})", env!("CARGO_PKG_VERSION"));
    cmd.version(leak(version))
        .long_version(leak(long_version()))
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
    if !matches!(name, "new" | "demo") {
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
            let instead = if name == "demo" {
                "the demo makes its own SQLite database; `backfill sample-data` loads the same data into yours"
            } else {
                "it only writes a file under data_migrations/"
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
        cli.url_from = crate::cli::target::UrlFrom::Environment;
    }
    Ok(cli)
}

/// Parses arguments; clap's own errors become one line and exit 2.
fn parse() -> std::result::Result<Cli, i32> {
    let parsed = command().try_get_matches().and_then(|m| {
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
            let text = e.to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments");
            let first = first.trim_start_matches("error: ");
            // "the following required arguments were not provided:" lists them on the next lines.
            let listed: Vec<&str> = if first.ends_with(':') {
                text.lines()
                    .skip_while(|l| !l.contains(first))
                    .skip(1)
                    .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
                    .map(str::trim)
                    .collect()
            } else {
                Vec::new()
            };
            let joined = format!("{first} {}", listed.join(", "));
            let first = if listed.is_empty() {
                first
            } else {
                joined.as_str()
            };
            // clap lists the accepted values on a line of their own; keep them on ours.
            let valid: Vec<String> = match e.get(clap::error::ContextKind::ValidValue) {
                Some(clap::error::ContextValue::Strings(v)) => v.clone(),
                _ => Vec::new(),
            };
            let valid = if valid.is_empty() || first.contains("possible values") {
                String::new()
            } else {
                format!(" (possible values: {})", valid.join(", "))
            };
            error_line(&format!("{first}{valid}; see `backfill --help`"));
            Err(2)
        }
    }
}

/// The whole program: returns the process exit code.
pub fn main() -> i32 {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(Stderr, "error: internal error, please report it: {message}");
    }));
    remember_secrets();
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    init_logging(cli.log_format);
    crate::signals::install();
    match run(&cli).and_then(|text| print(&text)) {
        Ok(()) => 0,
        Err(e) => {
            error_line(&failure(&e));
            e.exit_code()
        }
    }
}
