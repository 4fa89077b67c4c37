//! `--max-replica-lag`: between batches, wait while a replica is further behind than allowed (as
//! gh-ost's and pt-online-schema-change's `--max-lag`), so a backfill never leaves the app's read
//! replicas serving stale data for long. The health throttles (`health`) hold the run here too:
//! [`Gauge::over`] says what holds it, [`Gauge::reason`] what held it at the last look.
//!
//! Where the lag comes from: the primary itself (`pg_stat_replication`; Galera's flow control), and
//! each `--replica-url` (a MySQL/MariaDB replica's own `Seconds_Behind_Master`; for a Galera node or a
//! PostgreSQL standby, the age of the oldest of our writes it has not applied yet).

use crate::db::{ReplicaState, Session};
use crate::engine::events::{Event, Events};
use crate::engine::health::{Found, Health};
use crate::engine::metrics::Metrics;
use crate::engine::options::{Options, Replica};
use crate::engine::progress::Progress;
use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(500);
/// A replica must answer its lag query within this; one that does not counts as lagging.
const REPLICA_STATEMENT_LIMIT: Duration = Duration::from_secs(5);

/// A replica too far behind, or not applying at all.
#[derive(Debug, Clone)]
pub(crate) struct Lagging {
    /// Which: the primary's replicas, or a `--replica-url` (password-free).
    pub who: String,
    /// `None`: it applies nothing now (stopped, unreachable), for the reason in `why`.
    pub lag: Option<Duration>,
    pub why: String,
}

impl Lagging {
    fn behind(who: String, lag: Duration) -> Lagging {
        Lagging {
            who,
            lag: Some(lag),
            why: String::new(),
        }
    }

    fn stopped(who: String, why: String) -> Lagging {
        Lagging {
            who,
            lag: None,
            why,
        }
    }

    /// For the progress line.
    pub(crate) fn short(&self, limit: Duration) -> String {
        match self.lag {
            Some(lag) => format!(
                "waiting: {} lag {:.0}s > {}s",
                self.who,
                lag.as_secs_f64(),
                limit.as_secs()
            ),
            None => format!("waiting: {} {}", self.who, self.why),
        }
    }

    /// For the log, once when a wait starts.
    pub(crate) fn long(&self, limit: Duration) -> String {
        match self.lag {
            Some(lag) => format!(
                "{} lag {:.1}s is over --max-replica-lag {}s: waiting",
                self.who,
                lag.as_secs_f64(),
                limit.as_secs()
            ),
            None => format!(
                "{}: {}; waiting until it replicates again (--max-replica-lag {}s)",
                self.who,
                self.why,
                limit.as_secs()
            ),
        }
    }
}

/// What holds the run before its next batch.
#[derive(Debug, Clone)]
pub(crate) enum Hold {
    Lag { lagging: Lagging, limit: Duration },
    Health(Found),
}

impl Hold {
    /// For the progress line, `status` and events.
    pub(crate) fn short(&self) -> String {
        match self {
            Hold::Lag { lagging, limit } => lagging.short(*limit),
            Hold::Health(found) => format!("waiting: {}", found.text),
        }
    }

    /// For the log, once when a wait starts.
    pub(crate) fn long(&self) -> String {
        match self {
            Hold::Lag { lagging, limit } => lagging.long(*limit),
            Hold::Health(found) => format!("{}: waiting", found.text),
        }
    }

    /// The metric label: `replica_lag`, or the health check's name.
    fn kind(&self) -> &'static str {
        match self {
            Hold::Lag { .. } => "replica_lag",
            Hold::Health(found) => found.kind,
        }
    }
}

struct Watched {
    replica: Replica,
    session: Option<Box<dyn Session>>,
}

/// Reads the lag for one run: `None` limit means no throttling at all.
pub(crate) struct Gauge {
    limit: Option<Duration>,
    replicas: Vec<Watched>,
    /// The primary's write position before each look, oldest first, while some replica that
    /// reports positions has not applied it.
    marks: VecDeque<(Instant, i64)>,
    /// The health throttles' watcher, when any is asked for.
    health: Option<Health>,
    /// What held the run at the last look, and when that look was (the seconds since count as
    /// throttled).
    holding: Option<(Hold, Instant)>,
    /// Told when a hold starts (`throttled`).
    events: Events,
    /// Seconds throttled by reason, the run's state, the replica lag.
    metrics: Metrics,
}

impl Gauge {
    /// Connects to every `--replica-url` and checks it is a replica, before anything is written.
    pub(crate) fn open(opts: &Options, primary: &mut dyn Session) -> Result<Gauge> {
        let mut gauge = Gauge {
            limit: opts.max_replica_lag,
            replicas: Vec::new(),
            marks: VecDeque::new(),
            health: None,
            holding: None,
            events: opts.events.clone(),
            metrics: opts.metrics.clone(),
        };
        if gauge.limit.is_some() && opts.replicas.is_empty() {
            refuse_hidden_replicas(primary)?;
        }
        for replica in &opts.replicas {
            let mut session = open(replica)?;
            if session.dialect() != primary.dialect() {
                return Err(Error::Usage(format!(
                    "--replica-url {} is a {:?} database and this one is {:?}: give a replica of this database",
                    replica.name,
                    session.dialect(),
                    primary.dialect()
                )));
            }
            let state = session
                .replica_state()
                .map_err(|e| replica_error(replica, "reading its replication state failed", e))?;
            if state == ReplicaState::NotAReplica {
                return Err(Error::Usage(format!(
                    "--replica-url {} is not a replica (no replica status, not a Galera node, not in recovery); give the URL of one of the primary's replicas",
                    replica.name
                )));
            }
            if matches!(state, ReplicaState::Applied(_)) && primary.write_position()?.is_none() {
                return Err(Error::Usage(format!(
                    "--replica-url {} reports positions this database has none of: is it a replica of this database?",
                    replica.name
                )));
            }
            gauge.replicas.push(Watched {
                replica: replica.clone(),
                session: Some(session),
            });
        }
        gauge.health = Health::start(&opts.health, opts.connect.as_ref(), primary.dialect())?;
        Ok(gauge)
    }

    /// Whether anything may hold a run (a lag limit, a health throttle).
    pub(crate) fn active(&self) -> bool {
        self.limit.is_some() || self.health.is_some()
    }

    /// The run that starts now walks and writes these tables (a VACUUM on one holds it).
    pub(crate) fn watch_tables(&self, tables: Vec<String>) {
        if let Some(health) = &self.health {
            health.watch_tables(tables);
        }
    }

    /// Why the run waited at the last look (`waiting: …`), or `None` while it goes on: the throttle
    /// reason for the progress line and `status`.
    pub(crate) fn reason(&self) -> Option<String> {
        self.holding.as_ref().map(|(hold, _)| hold.short())
    }

    /// `backfill set --max-replica-lag`: the new limit from the next look on.
    pub(crate) fn retune(&mut self, limit: Option<Duration>) {
        self.limit = limit.or(self.limit);
    }

    /// One look: what holds the run now, a lagging replica first (the worst), else a health
    /// throttle.
    pub(crate) fn over(&mut self, primary: &mut dyn Session) -> Result<Option<Hold>> {
        let lag = match self.limit {
            Some(limit) => self
                .lagging(primary, limit)?
                .map(|lagging| Hold::Lag { lagging, limit }),
            None => None,
        };
        let hold = lag.or_else(|| self.health.as_ref()?.found().map(Hold::Health));
        self.holding = match (self.holding.take(), hold) {
            (Some((was, since)), Some(hold)) => {
                self.metrics.throttled(was.kind(), since.elapsed());
                Some((hold, Instant::now()))
            }
            (None, Some(hold)) => {
                let reason = hold.short();
                self.events.emit(Event::Throttled { reason });
                self.metrics.state("throttled");
                Some((hold, Instant::now()))
            }
            (Some((was, since)), None) => {
                self.metrics.throttled(was.kind(), since.elapsed());
                self.metrics.state("running");
                None
            }
            (None, None) => None,
        };
        Ok(self.holding.as_ref().map(|(hold, _)| hold.clone()))
    }

    /// The worst replica past the limit, if any.
    fn lagging(&mut self, primary: &mut dyn Session, limit: Duration) -> Result<Option<Lagging>> {
        let over = |lagging: &Lagging| lagging.lag.is_none_or(|lag| lag > limit);
        let mut found: Vec<Lagging> = primary
            .replica_lag()
            .map_err(|e| Error::Runtime(format!("reading replica lag failed: {e}")))?
            .map(|lag| Lagging::behind("replica".into(), lag))
            .into_iter()
            .collect();
        if !self.replicas.is_empty() {
            if let Some(at) = primary.write_position()? {
                self.marks.push_back((Instant::now(), at));
            }
        }
        let mut slowest_applied: Option<i64> = None;
        for watched in &mut self.replicas {
            let reading = watched.look(&self.marks);
            if let Some(applied) = reading.applied {
                slowest_applied = Some(slowest_applied.map_or(applied, |s| s.min(applied)));
            }
            found.extend(reading.lagging);
        }
        // Positions every replica has applied are no one's lag any more.
        while self
            .marks
            .front()
            .is_some_and(|(_, at)| slowest_applied.is_some_and(|s| *at <= s))
        {
            self.marks.pop_front();
        }
        let worst = found.iter().filter_map(|l| l.lag).max();
        self.metrics.replica_lag(worst.unwrap_or(Duration::ZERO));
        // The worst first: one that applies nothing, then the longest lag.
        Ok(found
            .into_iter()
            .filter(over)
            .max_by_key(|l| l.lag.unwrap_or(Duration::MAX)))
    }
}

/// What one look at a replica found.
struct Reading {
    lagging: Option<Lagging>,
    /// The position it has applied, when it reports one.
    applied: Option<i64>,
}

impl Watched {
    fn look(&mut self, marks: &VecDeque<(Instant, i64)>) -> Reading {
        let who = format!("replica {}", self.replica.name);
        let stopped = |why: String| Reading {
            lagging: Some(Lagging::stopped(who.clone(), why)),
            applied: None,
        };
        // A replica that went away is waited for, and reconnected to on the next look.
        let mut session = match self.session.take() {
            Some(s) => s,
            None => match open(&self.replica) {
                Ok(s) => s,
                Err(e) => return stopped(format!("is unreachable ({e})")),
            },
        };
        let state = match session.replica_state() {
            Ok(state) => state,
            Err(e) => return stopped(format!("did not answer ({e})")),
        };
        self.session = Some(session);
        let behind = |lag: Duration| Lagging::behind(who.clone(), lag);
        match state {
            ReplicaState::Behind(lag) => Reading {
                lagging: Some(behind(lag)),
                applied: None,
            },
            ReplicaState::Applied(at) => {
                let oldest = marks.iter().find(|(_, mark)| *mark > at);
                Reading {
                    lagging: Some(behind(oldest.map_or(Duration::ZERO, |(t, _)| t.elapsed()))),
                    applied: Some(at),
                }
            }
            ReplicaState::Stopped(why) => stopped(why),
            ReplicaState::NotAReplica => stopped("is no longer a replica".into()),
        }
    }
}

/// A lag nobody can read must not pass for no lag: the run would never wait.
fn refuse_hidden_replicas(primary: &mut dyn Session) -> Result<()> {
    let hidden = primary
        .hidden_replicas()
        .map_err(|e| Error::Runtime(format!("reading the replicas' positions failed: {e}")))?;
    if hidden > 0 {
        return Err(Error::Usage(format!(
            "--max-replica-lag cannot read the lag: this user may not see the positions of the {hidden} replica(s) in pg_stat_replication; grant it pg_monitor (GRANT pg_monitor TO the user), or name each standby with --replica-url"
        )));
    }
    Ok(())
}

fn open(replica: &Replica) -> Result<Box<dyn Session>> {
    let mut session = replica
        .connect
        .open()
        .map_err(|e| replica_error(replica, "connecting failed", e))?;
    session
        .set_timeouts(Some(REPLICA_STATEMENT_LIMIT), Some(REPLICA_STATEMENT_LIMIT))
        .map_err(|e| replica_error(replica, "setting its timeouts failed", e))?;
    Ok(session)
}

fn replica_error(replica: &Replica, what: &str, e: crate::db::DbError) -> Error {
    let text = e.message.replace(crate::db::URL_WORDS, "--replica-url");
    // A wrong password or a missing privilege is the operator's to fix, as on --database-url (exit 2).
    Error::from_db(
        &e,
        format!(
            "--replica-url {}: {what}: {text}; check the URL and that this user may read replication status there",
            replica.name
        ),
    )
}

/// The single-job batch loop's wait: returns once no replica lags past the limit and no health
/// throttle holds the run. Renews the lease meanwhile, and stops on SIGINT/SIGTERM.
pub(crate) fn wait_while_throttled(
    session: &mut dyn Session,
    gauge: &mut Gauge,
    lease: &mut crate::engine::lock::Lease,
    progress: &mut Progress,
    steer: &mut crate::engine::control::Steering,
) -> Result<()> {
    if !gauge.active() {
        return Ok(());
    }
    let mut waiting = false;
    while let Some(hold) = gauge.over(session)? {
        if !waiting {
            tracing::info!("{}", hold.long());
        }
        // As `status` shows it too (`Gauge::reason`).
        progress.note(&gauge.reason().unwrap_or_else(|| hold.short()));
        steer.throttled(Some(gauge.reason().unwrap_or_else(|| hold.short())));
        steer.show(None);
        steer.report(session, &progress.snapshot(), false);
        waiting = true;
        if let Some(sig) = crate::signals::requested() {
            return Err(Error::Interrupted(sig));
        }
        // A long wait must not cost the lease: it expires after a minute without renewal.
        crate::engine::lock::renew(session, lease)?;
        std::thread::sleep(POLL);
    }
    if waiting {
        tracing::info!("no throttle holds the run now: going on");
        steer.throttled(None);
    }
    Ok(())
}
