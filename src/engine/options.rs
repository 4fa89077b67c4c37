//! How a command runs, as the CLI fills it: batching, throttling, timeouts, jobs, the audit's operator
//! and arguments. Its own module so that the runner, the batch loop and the planner share it without
//! importing one another.

use crate::db::Session;
use std::time::Duration;

/// The first batch's size when `--batch-size` is not given: a size that stays well under a second
/// per batch on both servers in the benchmark's sweep (BENCHMARKS.md).
pub(crate) const DEFAULT_BATCH_SIZE: u64 = 5_000;

/// How long a batch transaction should take when `--batch-size` is not given: long enough that the
/// per-batch fixed costs (commit, checkpoint, re-reading the join's small side) stay near a tenth of
/// the work, short enough that no transaction holds its locks for long (BENCHMARKS.md).
pub(crate) const DEFAULT_BATCH_TARGET: Duration = Duration::from_millis(300);

/// No sleep between batches (`--pause-ms`).
pub(crate) const DEFAULT_PAUSE: Duration = Duration::ZERO;

/// How long to wait for another runner's lock, or a lock held on the ledger (`--lock-timeout`).
pub(crate) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest any one statement may run before the server cancels it (`--statement-timeout`):
/// every command is bounded, the read-only ones too, so a lock held on the app's tables fails it
/// instead of hanging it.
pub(crate) const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(300);

/// Sample rows `plan` shows per scenario (`--samples`).
pub(crate) const DEFAULT_SAMPLES: usize = 5;

/// Workers of a run (`--jobs`): one, on the command's own session.
pub(crate) const DEFAULT_JOBS: usize = 1;

/// How a command runs; filled from the CLI, whose flags default to [`Options::default`]'s values.
#[derive(Debug, Clone)]
pub struct Options {
    /// Keys per batch (`--batch-size`), or the first batch's size when `batch_target` is set.
    pub batch_size: u64,
    /// Sleep between batches (`--pause-ms`).
    pub pause: Duration,
    /// How long to wait for another runner's lock (`--lock-timeout`).
    pub lock_timeout: Duration,
    /// The longest one statement may run (`--statement-timeout`); `None`: no limit.
    pub statement_timeout: Option<Duration>,
    /// Who runs the command, for the audit table.
    pub operator: String,
    /// The command line, secrets redacted, as JSON text for the audit table.
    pub arguments: String,
    /// No progress output (`--quiet`).
    pub quiet: bool,
    /// Sample rows per group in a plan (`--samples`).
    pub samples: usize,
    /// Resize every batch toward this duration, starting from `batch_size`; `None`: fixed size.
    pub batch_target: Option<Duration>,
    /// `apply --expect-plan`: refuse unless the plan now equals the reviewed one.
    pub expect_plan: Option<crate::engine::planfile::PlanFile>,
    /// `--max-replica-lag`: wait between batches while a replica lags more than this.
    pub max_replica_lag: Option<Duration>,
    /// `--replica-url`: replicas to watch besides those the primary reports itself.
    pub replicas: Vec<Replica>,
    /// `--jobs N`: workers, each with its own connection, on disjoint key ranges (chunks). 1: the
    /// plain batch loop on the command's own session. SQLite always runs as 1 (one writer at a time).
    pub jobs: usize,
    /// Opens one more session to the same database, for each worker of a parallel run; `None`: runs
    /// use only the session they are given (as 1 job).
    pub connect: Option<Connector>,
    /// The health throttles (`--max-threads-running`, `--throttle-sql`, …); all off by default.
    pub health: crate::engine::health::Limits,
    /// The migrations this command knows (the binary's, plus any read at run time).
    pub catalog: crate::registry::Catalog,
    /// Where the run's events go (`--notify-url`, `--notify-cmd`); off by default.
    pub events: crate::engine::events::Events,
    /// Served at `--metrics-addr` for the command's lifetime; off by default.
    pub metrics: crate::engine::metrics::Metrics,
    /// `--limit`, `--run-for`, `--until`, `--window`: where the command's runs stop or wait.
    pub budget: crate::engine::budget::Budget,
}

/// Opens another session to the command's database, with the command's timeouts (one per worker of
/// `--jobs N`). The CLI builds it from the resolved target; the session is opened and used on the
/// worker's own thread, so it never crosses threads.
#[derive(Clone)]
pub struct Connector(
    std::sync::Arc<dyn Fn() -> crate::db::DbResult<Box<dyn Session>> + Send + Sync>,
);

impl Connector {
    pub fn new(
        open: impl Fn() -> crate::db::DbResult<Box<dyn Session>> + Send + Sync + 'static,
    ) -> Self {
        Connector(std::sync::Arc::new(open))
    }

    pub fn open(&self) -> crate::db::DbResult<Box<dyn Session>> {
        (self.0)()
    }
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

/// A `--replica-url`: its password-free name, for messages, and how to connect to it.
#[derive(Clone, Debug)]
pub struct Replica {
    pub name: String,
    pub connect: Connector,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_size: DEFAULT_BATCH_SIZE,
            pause: DEFAULT_PAUSE,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            statement_timeout: Some(DEFAULT_STATEMENT_TIMEOUT),
            operator: "unknown".into(),
            arguments: "[]".into(),
            quiet: true,
            samples: DEFAULT_SAMPLES,
            batch_target: Some(DEFAULT_BATCH_TARGET),
            expect_plan: None,
            max_replica_lag: None,
            replicas: Vec::new(),
            jobs: DEFAULT_JOBS,
            connect: None,
            health: crate::engine::health::Limits::default(),
            catalog: crate::registry::compiled(),
            events: crate::engine::events::Events::default(),
            metrics: crate::engine::metrics::Metrics::default(),
            budget: crate::engine::budget::Budget::default(),
        }
    }
}
