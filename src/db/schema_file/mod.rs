//! An app's schema (or seed data) from SQL files it owns, loaded into a database: per-dialect files,
//! or the dump Laravel's `php artisan schema:dump` writes (`database/schema/pgsql-schema.sql` from
//! `pg_dump`, `mysql-schema.sql` from `mysqldump`, `sqlite-schema.sql` from `sqlite3 .schema`).
//!
//! Files are split as each dialect's own client splits them (see `split`) and run in one
//! transaction (MySQL commits each DDL statement by itself). What a client does rather than the
//! server is done here too: `psql`'s `COPY … FROM stdin` data becomes INSERTs, `\restrict` lines are
//! skipped, `mysql`'s `DELIMITER` is honoured. Skipped, because a scratch database has no use for
//! them and would fail on them: ownership and privileges (`ALTER … OWNER TO`, `GRANT`, `REVOKE`:
//! the app's roles do not exist there), a `SET` of a setting this PostgreSQL does not have (a newer
//! `pg_dump`'s `transaction_timeout`; `psql` reports it and goes on), the file's own
//! `BEGIN`/`COMMIT` (the loader owns the transaction) and SQLite's internal `sqlite_` tables.

mod copy;
mod split;

use super::{DbError, DbResult, Dialect, ErrorKind, Finish, Session, Value};
use split::Piece;
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// Where an app's SQL lives, for each dialect: what [`Schema::load`] runs.
///
/// ```no_run
/// use backfill::db::schema_file::Schema;
/// let mine = Schema::dir("schema/app"); // schema/app/postgres/*.sql, schema/app/mysql.sql, …
/// let laravel = Schema::laravel_dump("database/schema"); // pgsql-schema.sql, mysql-schema.sql, …
/// ```
#[derive(Debug, Clone)]
pub struct Schema {
    origin: Origin,
}

#[derive(Debug, Clone)]
enum Origin {
    Dir(PathBuf),
    Laravel(PathBuf),
    Files(Vec<(Option<Dialect>, PathBuf)>),
    Text(Vec<(Dialect, &'static str, &'static str)>),
}

/// The folder names (and file stems) that hold a dialect's files in [`Schema::dir`].
fn dir_names(dialect: Dialect) -> &'static [&'static str] {
    match dialect {
        Dialect::Postgres => &["postgres", "postgresql", "pgsql"],
        Dialect::Mysql => &["mysql", "mariadb"],
        Dialect::Sqlite => &["sqlite"],
    }
}

/// The connection names Laravel's `schema:dump` writes `<name>-schema.sql` for.
fn laravel_names(dialect: Dialect) -> &'static [&'static str] {
    match dialect {
        Dialect::Postgres => &["pgsql"],
        Dialect::Mysql => &["mysql", "mariadb"],
        Dialect::Sqlite => &["sqlite"],
    }
}

const DIALECTS: [Dialect; 3] = [Dialect::Postgres, Dialect::Mysql, Dialect::Sqlite];

impl Schema {
    /// A folder with one entry per dialect: `<dir>/<dialect>/` (every `*.sql` in it, in name
    /// order) or `<dir>/<dialect>.sql`, where `<dialect>` is `postgres` (or `postgresql`,
    /// `pgsql`), `mysql` (or `mariadb`) or `sqlite`. A dialect without an entry is not loaded.
    pub fn dir(path: impl Into<PathBuf>) -> Schema {
        Schema {
            origin: Origin::Dir(path.into()),
        }
    }

    /// The folder Laravel's `php artisan schema:dump` writes to (`database/schema`): `pgsql-schema.sql`,
    /// `mysql-schema.sql` (or `mariadb-schema.sql`), `sqlite-schema.sql`, whichever are there.
    pub fn laravel_dump(path: impl Into<PathBuf>) -> Schema {
        Schema {
            origin: Origin::Laravel(path.into()),
        }
    }

    /// One file run on every dialect (SQL that all three accept, or an app tested on one).
    pub fn file(path: impl Into<PathBuf>) -> Schema {
        Schema {
            origin: Origin::Files(vec![(None, path.into())]),
        }
    }

    /// A list of files, each for one dialect, run in the order given.
    pub fn files<P: Into<PathBuf>>(files: impl IntoIterator<Item = (Dialect, P)>) -> Schema {
        let files = files.into_iter().map(|(d, p)| (Some(d), p.into()));
        Schema {
            origin: Origin::Files(files.collect()),
        }
    }

    /// SQL compiled into the program, per dialect, each with the name errors give it (the HR app's
    /// schema in `backfill demo`, which runs without this repository's files).
    pub fn text(files: Vec<(Dialect, &'static str, &'static str)>) -> Schema {
        Schema {
            origin: Origin::Text(files),
        }
    }

    /// The dialects this schema has SQL for.
    pub fn dialects(&self) -> DbResult<Vec<Dialect>> {
        let mut found = Vec::new();
        for d in DIALECTS {
            if !self.sources(d)?.is_empty() {
                found.push(d);
            }
        }
        Ok(found)
    }

    /// Runs this schema's SQL for the session's dialect. Settings the SQL changes for the session
    /// (`pg_dump`'s empty `search_path`) are reset after it on PostgreSQL; on MySQL a dump restores
    /// its own. Fails, naming the file, the line and the statement, on the first statement the
    /// server refuses, and when there is no SQL for this dialect.
    pub fn load(&self, session: &mut dyn Session) -> DbResult<()> {
        let dialect = session.dialect();
        let sources = self.sources(dialect)?;
        if sources.is_empty() {
            return Err(DbError::new(
                ErrorKind::Config,
                format!("{} has no SQL for {dialect:?}", self.describe()),
            ));
        }
        for (name, text) in sources {
            load_sql(session, &name, &text)?;
        }
        Ok(())
    }

    /// Where the SQL comes from, for messages.
    pub fn describe(&self) -> String {
        match &self.origin {
            Origin::Dir(p) => format!("schema folder {}", p.display()),
            Origin::Laravel(p) => format!("Laravel schema dump folder {}", p.display()),
            Origin::Files(f) => {
                let names: Vec<String> = f.iter().map(|(_, p)| p.display().to_string()).collect();
                format!("schema files {}", names.join(", "))
            }
            Origin::Text(t) => {
                let names: Vec<&str> = t.iter().map(|(_, n, _)| *n).collect();
                format!("schema {}", names.join(", "))
            }
        }
    }

    /// The (name, text) of every file for `dialect`, in the order they run.
    fn sources(&self, dialect: Dialect) -> DbResult<Vec<(String, Cow<'static, str>)>> {
        let paths = match &self.origin {
            Origin::Text(t) => {
                return Ok(t
                    .iter()
                    .filter(|(d, _, _)| *d == dialect)
                    .map(|(_, name, text)| (name.to_string(), Cow::Borrowed(*text)))
                    .collect())
            }
            Origin::Dir(dir) => dir_files(dir, dialect)?,
            Origin::Laravel(dir) => {
                folder(dir)?;
                let names = laravel_names(dialect).iter();
                let mut paths = names.map(|n| dir.join(format!("{n}-schema.sql")));
                paths.find(|p| p.is_file()).into_iter().collect()
            }
            Origin::Files(files) => {
                let mine = files.iter().filter(|(d, _)| d.is_none_or(|d| d == dialect));
                mine.map(|(_, p)| p.clone()).collect()
            }
        };
        paths
            .into_iter()
            .map(|p| read(&p).map(|text| (p.display().to_string(), Cow::Owned(text))))
            .collect()
    }
}

fn config(message: String) -> DbError {
    DbError::new(ErrorKind::Config, message)
}

fn folder(dir: &Path) -> DbResult<()> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(config(format!(
            "schema folder {} does not exist (give the folder that holds the SQL files)",
            dir.display()
        )))
    }
}

fn read(path: &Path) -> DbResult<String> {
    std::fs::read_to_string(path)
        .map_err(|e| config(format!("cannot read SQL file {}: {e}", path.display())))
}

/// `<dir>/<name>/*.sql` in name order, else `<dir>/<name>.sql`, for the first name of `dialect`
/// that has either.
fn dir_files(dir: &Path, dialect: Dialect) -> DbResult<Vec<PathBuf>> {
    folder(dir)?;
    for name in dir_names(dialect) {
        let sub = dir.join(name);
        if sub.is_dir() {
            let entries = std::fs::read_dir(&sub)
                .map_err(|e| config(format!("cannot list {}: {e}", sub.display())))?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| Some(e.ok()?.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                .collect();
            files.sort();
            return Ok(files);
        }
        let file = dir.join(format!("{name}.sql"));
        if file.is_file() {
            return Ok(vec![file]);
        }
    }
    Ok(Vec::new())
}

/// Runs the SQL text of file `name` in one transaction (see the module's notes on what is skipped).
pub fn load_sql(session: &mut dyn Session, name: &str, text: &str) -> DbResult<()> {
    let dialect = session.dialect();
    let pieces = split::split(dialect, text)
        .map_err(|(line, why)| config(format!("{name}:{line}: {why}")))?;
    let done = session.transaction(|s| {
        for piece in &pieces {
            run_piece(s, piece).map_err(|e| located(name, piece, e))?;
        }
        Ok::<_, DbError>(Finish::Commit(()))
    });
    if dialect == Dialect::Postgres {
        session.execute("RESET ALL", &[])?;
    }
    done
}

fn run_piece(s: &mut dyn Session, piece: &Piece) -> DbResult<()> {
    match piece {
        Piece::Sql { text, .. } => {
            if !skipped(s, text)? {
                s.execute(text, &[])?;
            }
        }
        Piece::Copy { head, rows, .. } => {
            for (at, line) in rows {
                let values: Vec<Value> = copy::row(line);
                let sql = copy::insert_sql(head, values.len()).map_err(config)?;
                s.execute(&sql, &values).map_err(|e| {
                    DbError::new(e.kind, format!("COPY data line {at}: {}", e.message))
                })?;
            }
        }
        Piece::Meta { text, .. } => {
            let command = text.split_whitespace().next().unwrap_or(text);
            if !matches!(command, "\\restrict" | "\\unrestrict") {
                return Err(config(format!(
                    "`{command}` is a psql command, not SQL; only \\restrict and \\unrestrict are understood"
                )));
            }
        }
    }
    Ok(())
}

/// A statement the loader does not run (see the module's notes).
fn skipped(s: &mut dyn Session, text: &str) -> DbResult<bool> {
    let upper = text.to_uppercase();
    let words: Vec<&str> = upper.split_whitespace().collect();
    let transaction = matches!(
        words.as_slice(),
        ["BEGIN"]
            | ["BEGIN", "TRANSACTION" | "WORK"]
            | ["START", "TRANSACTION"]
            | ["COMMIT"]
            | ["COMMIT", "TRANSACTION" | "WORK"]
            | ["END", "TRANSACTION"]
    );
    let skip = match s.dialect() {
        Dialect::Postgres => {
            let owner = words.first() == Some(&"ALTER") && upper.contains(" OWNER TO ");
            let acl = matches!(words.first(), Some(&"GRANT" | &"REVOKE"));
            owner || acl || unknown_setting(s, &words)?
        }
        Dialect::Sqlite => {
            matches!(words.as_slice(), ["CREATE", "TABLE", t, ..] if t.trim_matches('"').starts_with("SQLITE_"))
        }
        Dialect::Mysql => false,
    };
    Ok(transaction || skip)
}

/// `SET name = …` (or `TO`) of a setting this PostgreSQL does not know; dotted names are an
/// extension's or the app's own, which PostgreSQL accepts.
fn unknown_setting(s: &mut dyn Session, words: &[&str]) -> DbResult<bool> {
    let words = match words {
        ["SET", "SESSION" | "LOCAL", rest @ ..] => rest,
        ["SET", rest @ ..] => rest,
        _ => return Ok(false),
    };
    let (name, assigns) = match words {
        [name, next, ..] if *next == "=" || *next == "TO" => (*name, true),
        [name, ..] => match name.split_once('=') {
            Some((n, _)) => (n, true),
            None => (*name, false),
        },
        [] => return Ok(false),
    };
    if !assigns || name.contains('.') || name.is_empty() {
        return Ok(false);
    }
    let name = name.to_lowercase();
    let known = s.query("SELECT 1 FROM pg_settings WHERE name = ?", &[name.into()])?;
    Ok(known.is_empty())
}

/// `err` with the file, the line and the start of the statement it came from.
fn located(name: &str, piece: &Piece, err: DbError) -> DbError {
    let (line, text) = match piece {
        Piece::Sql { line, text }
        | Piece::Copy {
            line, head: text, ..
        } => (line, text),
        Piece::Meta { line, text } => (line, text),
    };
    let first: String = text.lines().next().unwrap_or("").chars().take(80).collect();
    let more = if first.len() < text.len() { " …" } else { "" };
    DbError::new(
        err.kind,
        format!("{name}:{line}: {} (statement: {first}{more})", err.message),
    )
}
