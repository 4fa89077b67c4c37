//! Creating and dropping whole databases on a server: for the test suite, the testkit, the benchmark
//! and sample data. Never used by apply/revert.

use super::{connect, DbError, DbResult, Dialect, ErrorKind, Row, Session, Target};
use std::path::PathBuf;

/// A database name we create: plain identifier characters only (it is spliced into DDL), within the
/// server's limit (PostgreSQL 63 bytes, MySQL/MariaDB 64).
fn checked(dialect: Dialect, name: &str) -> DbResult<&str> {
    let max = if dialect == Dialect::Postgres { 63 } else { 64 };
    let ok = !name.is_empty()
        && name.len() <= max
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(name)
    } else {
        Err(DbError::new(
            ErrorKind::Config,
            format!("`{name}` is not a usable database name (letters, digits, _; at most {max})"),
        ))
    }
}

/// The admin URL of a server kind, overridable for other machines.
pub(crate) fn admin_url(dialect: Dialect) -> String {
    let (var, default) = match dialect {
        Dialect::Postgres => (
            "BACKFILL_TEST_POSTGRES",
            "postgres://postgres@127.0.0.1:5432/postgres",
        ),
        Dialect::Mysql => ("BACKFILL_TEST_MYSQL", "mysql://root@127.0.0.1:3306/mysql"),
        Dialect::Sqlite => ("BACKFILL_TEST_SQLITE_DIR", ""),
    };
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

/// A database of its own, created empty and dropped on Drop, also when a test panics.
pub struct Scratch {
    /// The server's kind.
    pub dialect: Dialect,
    /// The database's name (lower case).
    pub name: String,
    /// The URL that reaches it.
    pub url: String,
    /// Left in place on Drop (the bench's `--keep`).
    pub keep: bool,
    admin: String,
    sqlite_path: Option<PathBuf>,
}

impl Scratch {
    /// Creates (or recreates) database `name` on the server of `dialect`; a file for SQLite.
    pub fn create(dialect: Dialect, name: &str) -> DbResult<Scratch> {
        Self::create_at(dialect, &admin_url(dialect), name)
    }

    /// [`Scratch::create`] through the server's `admin` URL (for SQLite: the folder; empty, the
    /// default).
    pub fn create_at(dialect: Dialect, admin: &str, name: &str) -> DbResult<Scratch> {
        let name = checked(dialect, name)?.to_lowercase();
        let admin = admin.to_string();
        if dialect == Dialect::Sqlite {
            let dir = match admin.as_str() {
                "" => std::env::temp_dir().join("backfill-tests"),
                d => PathBuf::from(d),
            };
            let fail = |e: std::io::Error| {
                DbError::new(ErrorKind::Config, format!("{}: {e}", dir.display()))
            };
            std::fs::create_dir_all(&dir).map_err(fail)?;
            let path = dir.join(format!("{name}.db"));
            let _ = std::fs::remove_file(&path);
            std::fs::File::create(&path).map_err(fail)?;
            return Ok(Scratch {
                dialect,
                url: format!("sqlite://{}", path.display()),
                name,
                keep: false,
                admin,
                sqlite_path: Some(path),
            });
        }
        let mut a = connect(&Target::parse(&admin)?)?;
        drop_sql(dialect, &name)
            .iter()
            .try_for_each(|sql| a.execute(sql, &[]).map(|_| ()))?;
        let create = match dialect {
            Dialect::Mysql => {
                format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            }
            _ => format!("CREATE DATABASE {name}"),
        };
        a.execute(&create, &[])?;
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        Ok(Scratch {
            dialect,
            url: format!("{base}/{name}"),
            name,
            keep: false,
            admin,
            sqlite_path: None,
        })
    }

    /// The SQLite file, for SQLite.
    pub fn sqlite_path(&self) -> Option<&PathBuf> {
        self.sqlite_path.as_ref()
    }
}

fn drop_sql(dialect: Dialect, name: &str) -> Vec<String> {
    match dialect {
        Dialect::Postgres => vec![format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")],
        Dialect::Mysql => vec![format!("DROP DATABASE IF EXISTS {name}")],
        Dialect::Sqlite => Vec::new(),
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Some(p) = &self.sqlite_path {
            let _ = std::fs::remove_file(p);
            return;
        }
        if let Ok(mut a) = Target::parse(&self.admin).and_then(|t| connect(&t)) {
            for sql in drop_sql(self.dialect, &self.name) {
                let _ = a.execute(&sql, &[]);
            }
        }
    }
}

/// One table: its columns and every row, ordered by the first column.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRows {
    /// The table's name.
    pub name: String,
    /// Its column names, in table order.
    pub columns: Vec<String>,
    /// Every row, ordered by the first column.
    pub rows: Vec<Row>,
}

/// Every base table of the session's schema (database) with its columns and rows, in name order: two
/// dumps are equal exactly when nothing was written, rows or the shape of a table.
pub fn dump(session: &mut dyn Session) -> DbResult<Vec<TableRows>> {
    let dialect = session.dialect();
    let names = session.query(dialect.tables_sql(), &[])?;
    let mut tables = Vec::new();
    for name in names
        .iter()
        .filter_map(|r| r.first()?.as_str().map(String::from))
    {
        let columns = session
            .query(&dialect.columns_sql(&name), &[])?
            .iter()
            .filter_map(|r| r.first()?.as_str().map(String::from))
            .collect();
        let rows = session.query(&format!("SELECT * FROM {name} ORDER BY 1"), &[])?;
        tables.push(TableRows {
            name,
            columns,
            rows,
        });
    }
    Ok(tables)
}
