//! A session that times every read-write transaction (BEGIN .. COMMIT), i.e. every batch of the runner.

use crate::log;
use backfill::db::{DbResult, Dialect, Row, Session, Tx, Value};
use std::time::{Duration, Instant};

pub(crate) struct Timed {
    pub(crate) inner: Box<dyn Session>,
    pub(crate) began: Option<Instant>,
    pub(crate) batches: Vec<Duration>,
    /// `--profile`: total time per statement (its first words), and calls.
    pub(crate) statements: Option<std::collections::BTreeMap<String, (Duration, u64)>>,
    /// `--profile`: total time and calls per part of the run (`Part`).
    pub(crate) parts: Option<Profile>,
}

/// Where a run's time went: time and round trips per part, in `Part` order.
pub(crate) type Profile = std::collections::BTreeMap<Part, (Duration, u64)>;

/// The parts of a run the profile tells apart, by the statement sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Part {
    /// The migration's own statements in a batch (its INSERT … SELECT, DELETE or UPDATE and reads).
    Step,
    /// The next key range's bound.
    Bounds,
    /// The compare-and-set on the owner and cursor, first in each batch.
    Fence,
    /// The cursor, the row counts and the run's audit count.
    Checkpoint,
    /// The UPDATE shape's undo journal.
    Journal,
    Begin,
    Commit,
    /// Everything outside a batch transaction: lock, ledger rows, preflight, guards.
    Outside,
}

impl Part {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Part::Step => "the migration's statements",
            Part::Bounds => "key range bound",
            Part::Fence => "fence (compare-and-set)",
            Part::Checkpoint => "checkpoint and audit count",
            Part::Journal => "undo journal",
            Part::Begin => "BEGIN",
            Part::Commit => "COMMIT",
            Part::Outside => "outside batches (lock, ledger, preflight)",
        }
    }

    /// Which part a statement is, from its text and whether a batch transaction is open.
    fn of(sql: &str, in_batch: bool) -> Part {
        let ledger_row = [
            "UPDATE backfill_migrations SET",
            "UPDATE backfill_chunks SET",
        ];
        match sql {
            "BEGIN" => Part::Begin,
            "COMMIT" => Part::Commit,
            _ if !in_batch => Part::Outside,
            _ if sql.contains("SET batches = batches WHERE") => Part::Fence,
            _ if ledger_row.iter().any(|p| sql.starts_with(p)) => Part::Checkpoint,
            _ if sql.starts_with("UPDATE backfill_runs SET row_count") => Part::Checkpoint,
            _ if sql.contains("backfill_undo") => Part::Journal,
            _ if sql.starts_with("SELECT MAX(k)") => Part::Bounds,
            _ => Part::Step,
        }
    }
}

impl Timed {
    pub(crate) fn new(inner: Box<dyn Session>, profile: bool) -> Timed {
        Timed {
            inner,
            began: None,
            batches: Vec::new(),
            statements: profile.then(Default::default),
            parts: profile.then(Default::default),
        }
    }

    pub(crate) fn time<T>(&mut self, what: &str, f: impl FnOnce(&mut dyn Session) -> T) -> T {
        let in_batch = self.began.is_some();
        let t = Instant::now();
        let out = f(self.inner.as_mut());
        if let Some(parts) = &mut self.parts {
            let e = parts.entry(Part::of(what, in_batch)).or_default();
            e.0 += t.elapsed();
            e.1 += 1;
        }
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

    pub(crate) fn report_profile(&mut self, label: &str) {
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
    pub(crate) fn take(&mut self) -> Vec<Duration> {
        std::mem::take(&mut self.batches)
    }
    /// The parts' times since the last call (empty without `--profile`).
    pub(crate) fn take_parts(&mut self) -> Profile {
        self.parts.as_mut().map(std::mem::take).unwrap_or_default()
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
