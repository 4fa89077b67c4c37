//! One function per command: it turns its flags into [`Options`], opens the database and calls the
//! engine; what it returns is the text for stdout. The dispatcher is a plain match.

use crate::cli::args::{Batching, Bounds, Cli, Command, LockWait, SetArgs};
use crate::cli::init;
use crate::cli::output::{print, recorded_arguments};
use crate::cli::report::{self, Format};
use crate::db::{self, Session};
use crate::engine::inspect;
use crate::engine::ledger;
use crate::engine::options::{Connector, Options, Replica};
use crate::engine::planfile::{self, PlanOut, PlanTarget};
use crate::engine::planning;
use crate::engine::runner::{self, Selection};
use crate::engine::steer;
use crate::error::{Error, Result};
use crate::registry::Catalog;
use std::path::Path;
use std::time::Duration;

/// Runs the parsed command; returns what to print on stdout.
pub(crate) fn run(cli: &Cli, catalog: Catalog) -> Result<String> {
    let catalog = with_files(cli, catalog)?;
    let opts = options(cli, catalog)?;
    match &cli.command {
        Command::New { name, toml } => new(cli, name, *toml, &catalog),
        Command::Init {
            dir,
            backfill_path,
            backfill_git,
            rev,
        } => {
            let source = match (backfill_path, backfill_git) {
                (Some(path), _) => init::Source::Path(path.clone()),
                (None, Some(url)) => init::Source::Git {
                    url: url.clone(),
                    rev: rev.clone(),
                },
                (None, None) => init::Source::Registry,
            };
            init::create(dir, &source)
        }
        Command::Test { .. } => test(cli, &opts),
        Command::Demo { keep } => crate::cli::demo::run(*keep),
        Command::SampleData { size } => sample_data(cli, &opts, *size),
        Command::Status { lock, watch } => match watch {
            Some(every) => watch_status(cli, with_lock(opts, lock), *every),
            None => status(cli, with_lock(opts, lock)),
        },
        Command::Plan {
            version,
            out,
            samples,
        } => plan(cli, opts, *version, out.as_deref(), *samples),
        Command::Apply {
            version,
            to,
            expect_plan,
            batching,
            bounds,
        } => {
            let opts = with_bounds(with_batching(opts, batching)?, bounds)?;
            apply(cli, opts, selection(*version, *to), expect_plan.as_deref())
        }
        Command::Revert {
            version,
            group,
            scenario,
            force,
            batching,
            bounds,
        } => {
            let opts = with_bounds(with_batching(opts, batching)?, bounds)?;
            revert(cli, opts, *version, group.or(*scenario), *force)
        }
        Command::Pause { version } => steer(cli, &opts, *version, steer::Command::Pause),
        Command::Resume { version } => steer(cli, &opts, *version, steer::Command::Resume),
        Command::Cancel { version } => steer(cli, &opts, *version, steer::Command::Cancel),
        Command::Set { version, values } => {
            steer(cli, &opts, *version, steer::Command::Set(tuning(values)))
        }
        Command::Wait { version, timeout } => {
            wait(cli, &opts, *version, timeout.map(Duration::from_secs))
        }
        Command::Verify { data, strict } => verify(cli, &opts, *data, *strict),
        Command::Log { version, since } => log(cli, *version, since.as_deref()),
        Command::Repair {
            version,
            accept_checksum,
            lock,
            ..
        } => repair(cli, &with_lock(opts, lock), *version, *accept_checksum),
        Command::Forget { version, lock } => forget(cli, &with_lock(opts, lock), *version),
    }
}

/// The catalog with the declarative files of `--migrations-dir` (not for the commands that run
/// no migration of the operator's).
fn with_files(cli: &Cli, catalog: Catalog) -> Result<Catalog> {
    let Some(dir) = &cli.migrations_dir else {
        return Ok(catalog);
    };
    if matches!(
        cli.command,
        Command::New { .. }
            | Command::Init { .. }
            | Command::Demo { .. }
            | Command::SampleData { .. }
    ) {
        return Ok(catalog);
    }
    let files = crate::kit::declarative::load(dir)?;
    catalog.with(files).map_err(Error::Usage)
}

/// `backfill test`: its flags, and the global `--schema` read as the app's schema files.
fn test(cli: &Cli, opts: &Options) -> Result<String> {
    let Command::Test {
        versions,
        seed,
        dialects,
        admin_url,
        allow_empty,
    } = &cli.command
    else {
        return Err(Error::Usage("not `backfill test`".into()));
    };
    let dialects: Vec<_> = dialects.iter().map(|d| d.dialect()).collect();
    let Some(schema) = cli.connection.schema.as_deref() else {
        return Err(Error::Usage(
            "backfill test needs --schema FILE[,FILE…]: the app's schema (per-dialect SQL, or Laravel's schema:dump folder)".into(),
        ));
    };
    let req = crate::cli::testing::Request {
        versions,
        schema,
        seed: seed.as_deref(),
        dialects: &dialects,
        admin_urls: admin_url,
        allow_empty: *allow_empty,
    };
    crate::cli::testing::run(opts, &req)
}

fn new(cli: &Cli, name: &str, toml: bool, catalog: &Catalog) -> Result<String> {
    let app = catalog.foreign_app().map(|a| a.name);
    let paths = match (toml, &cli.migrations_dir) {
        (true, Some(dir)) => vec![crate::cli::scaffold::create_toml(dir, name)?],
        _ => crate::cli::scaffold::create(Path::new("data_migrations"), name, app)?,
    };
    Ok(paths
        .iter()
        .map(|p| format!("created {}\n", p.display()))
        .collect())
}

fn sample_data(cli: &Cli, opts: &Options, size: u64) -> Result<String> {
    let (target, origin) = resolve(cli)?;
    let loaded = crate::fixtures::load_sample(&target, size).map_err(|e| e.located(&origin))?;
    let pending = connect(cli)?.run(|s, _| Ok(planning::would_write(s, opts)))?;
    Ok(report::sample_data(
        &target.redacted,
        &loaded,
        &pending,
        cli.format,
    ))
}

fn status(cli: &Cli, opts: Options) -> Result<String> {
    connect(cli)?.run(|s, target| {
        s.set_timeouts(opts.statement_timeout, Some(opts.lock_timeout))?;
        let lines = inspect::status(s, &opts)?;
        let shown = match s.ledger_place()?.and_then(|p| p.schema) {
            Some(schema) => format!("{} (schema {schema})", target.redacted),
            None => target.redacted.clone(),
        };
        let mut out = report::status(&shown, &lines, cli.format);
        if let (Format::Text, Some(note)) = (cli.format, ledger::no_ledger_note(s)?) {
            out.push_str(&note);
            out.push('\n');
        }
        Ok(out)
    })
}

fn plan(
    cli: &Cli,
    opts: Options,
    version: Option<i64>,
    out: Option<&Path>,
    samples: u64,
) -> Result<String> {
    // Before any planning work: a plan that cannot be saved is not worth computing.
    let out = out.map(PlanOut::check).transpose()?;
    let opts = Options {
        samples: samples as usize,
        ..opts
    };
    connect(cli)?.run(|s, target| {
        let reports = runner::plan(s, version, &opts)?;
        if let Some(out) = out {
            out.write(&PlanTarget::of(target, s)?, &reports)?;
        }
        Ok(report::plans(&reports, cli.format))
    })
}

fn selection(version: Option<i64>, to: Option<i64>) -> Selection {
    match (version, to) {
        (Some(v), _) => Selection::One(v),
        (None, Some(t)) => Selection::UpTo(t),
        (None, None) => Selection::Pending,
    }
}

fn apply(
    cli: &Cli,
    mut opts: Options,
    selection: Selection,
    expect_plan: Option<&Path>,
) -> Result<String> {
    if let Some(path) = expect_plan {
        opts.expect_plan = Some(planfile::read(path)?);
    }
    connect_run(cli, &mut opts)?.run(|s, target| {
        if let (Some(file), Some(path)) = (&opts.expect_plan, expect_plan) {
            // Before anything else: a plan of another database says nothing about this one.
            planfile::check_target(file, path, &PlanTarget::of(target, s)?)?;
        }
        let done = runner::apply(s, selection, &opts)?;
        Ok(report::outcomes(
            &done,
            cli.format,
            "nothing to apply: every migration is applied (or reverted by an operator)",
        ))
    })
}

fn revert(
    cli: &Cli,
    mut opts: Options,
    version: i64,
    group: Option<i64>,
    force: bool,
) -> Result<String> {
    connect_run(cli, &mut opts)?.run(|s, _| {
        let done = runner::revert(s, version, group, force, &opts)?;
        Ok(report::outcomes(&[done], cli.format, ""))
    })
}

/// Prints the report itself when it finds problems: the error line then only counts them.
fn verify(cli: &Cli, opts: &Options, data: bool, strict: bool) -> Result<String> {
    connect(cli)?.run(|s, _| {
        let found = inspect::verify(s, data, opts)?;
        let text = report::verify(&found, opts.catalog.all().len(), cli.format);
        let mut problems = found.ledger;
        if strict {
            problems.extend(found.drift);
        }
        if problems.is_empty() {
            Ok(text)
        } else {
            print(&text)?;
            Err(Error::Inconsistent(problems))
        }
    })
}

fn log(cli: &Cli, version: Option<i64>, since: Option<&str>) -> Result<String> {
    let since = since.map(crate::cli::when::parse).transpose()?;
    connect(cli)?.run(|s, _| {
        let runs = ledger::read_if_any(s, |s| ledger::runs(s, version, since))?;
        Ok(report::log(&runs, cli.format))
    })
}

/// `pause`, `resume`, `cancel`, `set`: a request to the run under way, through the ledger.
fn steer(cli: &Cli, opts: &Options, version: i64, command: steer::Command) -> Result<String> {
    connect(cli)?.run(|s, _| steer::steer(s, version, command, opts))
}

fn tuning(values: &SetArgs) -> steer::TuningArgs {
    steer::TuningArgs {
        batch_size: values.batch_size,
        batch_ms: values.batch_ms,
        pause_ms: values.pause_ms,
        max_replica_lag: values.max_replica_lag,
        jobs: values.jobs,
    }
}

/// `wait`: polls the ledger until the migration ends one way or the other.
fn wait(cli: &Cli, opts: &Options, version: i64, timeout: Option<Duration>) -> Result<String> {
    connect(cli)?.run(|s, _| crate::engine::wait::wait(s, &opts.catalog, version, timeout))
}

/// `status --watch S`: the status redrawn every S seconds until SIGINT/SIGTERM, each time from the
/// top of the terminal (JSON: one document per line).
fn watch_status(cli: &Cli, opts: Options, every: u64) -> Result<String> {
    loop {
        let text = status(cli, opts.clone())?;
        let page = match cli.format {
            Format::Json => text.replace('\n', "") + "\n",
            _ => format!("\x1b[H\x1b[2J{text}"),
        };
        print(&page)?;
        crate::signals::pause(Duration::from_secs(every));
        if crate::signals::requested().is_some() {
            return Ok(String::new());
        }
    }
}

/// `--accept-checksum`, else `--mark-failed` (clap requires one of them).
fn repair(cli: &Cli, opts: &Options, version: i64, accept_checksum: bool) -> Result<String> {
    connect(cli)?.run(|s, _| {
        let message = if accept_checksum {
            inspect::repair_checksum(s, version, opts)?
        } else {
            inspect::repair_mark_failed(s, version, opts)?
        };
        Ok(format!("{message}\n"))
    })
}

fn forget(cli: &Cli, opts: &Options, version: i64) -> Result<String> {
    connect(cli)?.run(|s, _| Ok(format!("{}\n", inspect::forget(s, version, opts)?)))
}

/// apply and revert: their own timeouts from the first statement on, so a lock held on the ledger
/// cannot stall them either, and a way to open a connection for each worker.
fn connect_run(cli: &Cli, opts: &mut Options) -> Result<Database> {
    let mut db = connect(cli)?;
    db.run(|s, target| {
        s.set_timeouts(opts.statement_timeout, Some(opts.lock_timeout))?;
        opts.connect = Some(connector(target, opts));
        Ok(())
    })?;
    Ok(db)
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
        (None, _) => "the login name",
    }
}

/// Who runs this when nobody said: `$USER`, `$LOGNAME`, else the process's user as the system names
/// it (a container's or a scheduler's job often sets neither variable), else `uid N`.
fn login_name() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    if let Some(name) = var("USER").or_else(|| var("LOGNAME")) {
        return Some(name);
    }
    // Linux: /proc/self belongs to the process's user.
    let uid = std::fs::metadata("/proc/self").ok()?.uid().to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let named = passwd.lines().find_map(|l| {
        let mut fields = l.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_string())
    });
    Some(named.unwrap_or_else(|| format!("uid {uid}")))
}

/// The options every command starts from: the defaults, with the invocation's operator, arguments
/// and quietness.
fn options(cli: &Cli, catalog: Catalog) -> Result<Options> {
    let defaults = Options::default();
    let operator = cli
        .operator
        .clone()
        .or_else(login_name)
        .unwrap_or(defaults.operator.clone());
    // The audit table's operator_name column holds 255 characters.
    if operator.chars().count() > 255 {
        return Err(Error::Usage(format!(
            "the operator name from {} is longer than 255 characters; shorten it",
            operator_source(cli)
        )));
    }
    Ok(Options {
        operator,
        arguments: recorded_arguments(),
        quiet: cli.quiet,
        catalog,
        ..defaults
    })
}

/// `--lock-timeout` of the commands that take only that flag.
fn with_lock(opts: Options, lock: &LockWait) -> Options {
    Options {
        lock_timeout: lock.duration(),
        ..opts
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
    b.watching.fill(&mut opts)?;
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

/// `--limit`, `--run-for`, `--until`, `--window`: the command's bounds, its deadlines from now.
fn with_bounds(mut opts: Options, b: &Bounds) -> Result<Options> {
    let now = chrono::Utc::now();
    let run_for = b.run_for.map(|d| {
        let spelled = format!("--run-for {}", crate::engine::progress::human(d));
        let at = chrono::Duration::from_std(d).map_or(now, |d| now + d);
        (at, spelled)
    });
    let until = match &b.until {
        Some(hhmm) => {
            let at = crate::engine::budget::parse_until(hhmm, now).map_err(Error::Usage)?;
            Some((at, format!("--until {hhmm}")))
        }
        None => None,
    };
    // Both: whichever comes first.
    let deadline = [run_for, until]
        .into_iter()
        .flatten()
        .min_by_key(|(at, _)| *at);
    opts.budget = crate::engine::budget::Budget {
        limit: b.limit,
        deadline,
        window: b.window.clone(),
        wait_for_window: b.wait_for_window,
    };
    Ok(opts)
}

/// A `--replica-url`, named by host and port in messages (never with its password).
fn replica(url: &str) -> Result<Replica> {
    let target = db::Target::parse(url).map_err(|e| Error::Usage(format!("--replica-url: {e}")))?;
    let name = match (&target.host, target.port) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        _ => target.redacted.clone(),
    };
    Ok(Replica {
        name,
        connect: Connector::new(move || db::connect(&target)),
    })
}

/// The command's database: a session to it, its target, and where its setting came from.
struct Database {
    session: Box<dyn Session>,
    target: db::Target,
    origin: String,
}

impl Database {
    /// Runs `work` on the database; its errors name where the database setting came from.
    fn run<T>(
        &mut self,
        work: impl FnOnce(&mut dyn Session, &db::Target) -> Result<T>,
    ) -> Result<T> {
        work(self.session.as_mut(), &self.target).map_err(|e| e.located(&self.origin))
    }
}

fn connect(cli: &Cli) -> Result<Database> {
    if let (Some(file), Some(url)) = (&cli.connection.env_file, &cli.connection.database_url) {
        if !url.trim().is_empty() {
            tracing::warn!(
                "--env-file {} ignored: --database-url / DATABASE_URL takes precedence",
                file.display()
            );
        }
    }
    let (target, origin) = resolve(cli)?;
    let open = || -> Result<Box<dyn Session>> {
        let mut session = db::connect(&target)?;
        // Every command is bounded, the read-only ones too: a lock held on the ledger or the app's
        // tables fails the command instead of hanging it. apply/revert/status set their own flags'
        // values.
        let defaults = Options::default();
        session.set_timeouts(defaults.statement_timeout, Some(defaults.lock_timeout))?;
        Ok(session)
    };
    let session = open().map_err(|e| e.located(&origin))?;
    Ok(Database {
        session,
        target,
        origin,
    })
}

/// The command's target, with `--schema` in place of any other search_path.
fn resolve(cli: &Cli) -> Result<(db::Target, String)> {
    let (mut target, origin) = crate::cli::target::resolve(
        cli.connection.database_url.as_deref(),
        cli.connection.url_from,
        cli.connection.env_file.as_deref(),
    )?;
    if let Some(schema) = &cli.connection.schema {
        target.search_path =
            Some(schema_path(target.dialect, schema).map_err(|e| e.located(&origin))?);
    }
    Ok((target, origin))
}

/// `--schema`: one name, exactly as written (quoted: `App` stays `App`).
fn schema_path(dialect: db::Dialect, schema: &str) -> Result<String> {
    if dialect != db::Dialect::Postgres {
        return Err(Error::Usage(
            "--schema is for PostgreSQL; a MySQL/MariaDB or SQLite database is one schema: name it in the URL".into(),
        ));
    }
    if schema.trim().is_empty() {
        return Err(Error::Usage(
            "--schema names no schema; give the schema of the app's tables".into(),
        ));
    }
    Ok(format!("\"{}\"", schema.replace('"', "\"\"")))
}

/// One more connection to the command's database, with its timeouts, for each worker of `--jobs N`.
/// A worker waits on its siblings' chunk rows for as long as one of their batches may run (the
/// statement timeout), never less: `--lock-timeout` is how long to wait for another runner, and 0
/// (do not wait) would fail every run on its own workers' row locks.
fn connector(target: &db::Target, opts: &Options) -> Connector {
    let statement = opts.statement_timeout;
    let lock_wait = statement.map(|t| t.max(opts.lock_timeout));
    let target = target.clone();
    Connector::new(move || {
        let mut s = db::connect(&target)?;
        s.set_timeouts(statement, lock_wait)?;
        Ok(s)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A flag left out means what `Options::default()` says: the defaults have one home.
    #[test]
    fn flags_left_out_are_the_options_defaults() {
        let want = Options::default();
        let cli = Cli::try_parse_from(["backfill", "apply"]).expect("apply parses");
        let Command::Apply { batching, .. } = &cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        let got = with_batching(Options::default(), batching).expect("no replica to parse");
        assert_eq!(
            (got.batch_size, got.batch_target, got.pause, got.jobs),
            (want.batch_size, want.batch_target, want.pause, want.jobs)
        );
        assert_eq!(
            (got.lock_timeout, got.statement_timeout, got.max_replica_lag),
            (
                want.lock_timeout,
                want.statement_timeout,
                want.max_replica_lag
            )
        );
        let cli = Cli::try_parse_from(["backfill", "plan"]).expect("plan parses");
        let Command::Plan { samples, .. } = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(samples as usize, want.samples);
    }
}
