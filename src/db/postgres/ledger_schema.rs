//! The ledger's own schema (`schema/ledger/postgres`), applied through the simple query protocol.

use super::PgSession;
use crate::db::{DbError, DbResult, Session};

refinery::embed_migrations!("schema/ledger/postgres");

/// The ledger's DDL for `table`, for `init --print-sql`.
pub(super) fn ddl(table: &str) -> String {
    crate::db::ledger_statements(migrations::runner(), table)
}

/// Creates or upgrades the ledger's tables.
pub(super) fn migrate(session: &mut PgSession) -> DbResult<()> {
    crate::db::run_ledger_schema(migrations::runner(), &mut SimpleProtocol(session))
}

/// refinery's own PostgreSQL driver reads its history table with a named prepared statement, which
/// fails through a transaction-pooling PgBouncer; this one uses only the simple query protocol, each
/// statement in a transaction that starts with the session's `SET LOCAL`s.
struct SimpleProtocol<'a>(&'a mut PgSession);

impl refinery_core::traits::sync::Transaction for SimpleProtocol<'_> {
    type Error = DbError;

    fn execute<'a, T: Iterator<Item = &'a str>>(&mut self, queries: T) -> DbResult<usize> {
        let session = &mut *self.0;
        session.begin(false)?;
        let mut count = 0;
        for query in queries {
            if let Err(e) = session.batch(query) {
                let _ = session.rollback();
                return Err(e);
            }
            count += 1;
        }
        session.commit()?;
        Ok(count)
    }
}

impl refinery_core::traits::sync::Query<Vec<refinery::Migration>> for SimpleProtocol<'_> {
    fn query(&mut self, query: &str) -> DbResult<Vec<refinery::Migration>> {
        use tokio_postgres::SimpleQueryMessage;
        let session = &mut *self.0;
        session.begin(true)?;
        let messages = session.io.wait(false, session.client.simple_query(query));
        let _ = session.rollback();
        let bad = |what: &str| DbError::query(format!("backfill_schema_history has a bad {what}"));
        let mut applied = Vec::new();
        for message in messages? {
            let SimpleQueryMessage::Row(row) = message else {
                continue;
            };
            let cell = |i: usize| row.get(i).unwrap_or_default();
            let version = cell(0).parse().map_err(|_| bad("version"))?;
            let on = time::OffsetDateTime::parse(
                cell(2),
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(|_| bad("applied_on"))?;
            let checksum = cell(3).parse().map_err(|_| bad("checksum"))?;
            applied.push(refinery::Migration::applied(
                version,
                cell(1).to_string(),
                on,
                checksum,
            ));
        }
        Ok(applied)
    }
}

impl refinery::Migrate for SimpleProtocol<'_> {}
