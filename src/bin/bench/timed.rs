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
}

impl Timed {
    pub(crate) fn new(inner: Box<dyn Session>, profile: bool) -> Timed {
        Timed {
            inner,
            began: None,
            batches: Vec::new(),
            statements: profile.then(Default::default),
        }
    }

    pub(crate) fn time<T>(&mut self, what: &str, f: impl FnOnce(&mut dyn Session) -> T) -> T {
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
