//! `backfill test`: the testkit's checks from the shipped binary, for a team whose CI has no Rust.
//! Each migration runs on a scratch database of its own per dialect (SQLite by default; PostgreSQL
//! and MariaDB through `--admin-url`), loaded with the app's schema and seed, and is checked by
//! `engine::exercise`; the scratch database is dropped even when a check fails.

use crate::db::admin::Scratch;
use crate::db::schema_file::{load_sql, Schema};
use crate::db::{connect, Dialect, Target};
use crate::engine::exercise;
use crate::engine::options::Options;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// What `backfill test` was asked.
pub(crate) struct Request<'a> {
    pub versions: &'a [i64],
    pub schema: &'a str,
    pub seed: Option<&'a Path>,
    pub dialects: &'a [Dialect],
    pub admin_urls: &'a [String],
    pub allow_empty: bool,
}

/// One `--schema` entry: Laravel's `schema:dump` folder (it holds `<connection>-schema.sql`), a
/// folder per dialect, a dump of one connection, or SQL every dialect runs.
fn schema_of(path: &Path) -> Schema {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let dumped = |d: &Path| {
        std::fs::read_dir(d).is_ok_and(|mut e| {
            e.any(|f| f.is_ok_and(|f| f.file_name().to_string_lossy().ends_with("-schema.sql")))
        })
    };
    let one = match name {
        "pgsql-schema.sql" => Some(Dialect::Postgres),
        "mysql-schema.sql" | "mariadb-schema.sql" => Some(Dialect::Mysql),
        "sqlite-schema.sql" => Some(Dialect::Sqlite),
        _ => None,
    };
    match (path.is_dir(), one) {
        (true, _) if dumped(path) => Schema::laravel_dump(path),
        (true, _) => Schema::dir(path),
        (false, Some(d)) => Schema::files([(d, path)]),
        (false, None) => Schema::file(path),
    }
}

/// The admin URL for `dialect`: the one `--admin-url` of its scheme; SQLite needs none.
fn admin_url(dialect: Dialect, urls: &[String]) -> Result<String> {
    if dialect == Dialect::Sqlite {
        return Ok(String::new());
    }
    for url in urls {
        if Target::parse(url)?.dialect == dialect {
            return Ok(url.clone());
        }
    }
    let example = match dialect {
        Dialect::Postgres => "postgres://postgres@127.0.0.1:5432/postgres",
        _ => "mysql://root@127.0.0.1:3306/mysql",
    };
    Err(Error::Usage(format!(
        "--dialects {} needs a server to make scratch databases on: add --admin-url {example}",
        format!("{dialect:?}").to_lowercase()
    )))
}

/// Runs every requested check; the text lists each migration and dialect, and the failures.
pub(crate) fn run(opts: &Options, req: &Request) -> Result<String> {
    let versions: Vec<i64> = match req.versions {
        [] => opts
            .catalog
            .all()
            .iter()
            .filter(|m| m.origin.ends_with(".toml"))
            .map(|m| m.version)
            .collect(),
        given => given.to_vec(),
    };
    if versions.is_empty() {
        return Err(Error::Usage(
            "nothing to test: no V…__name.toml in --migrations-dir, and no VERSION given".into(),
        ));
    }
    let schema: Vec<PathBuf> = req.schema.split(',').map(PathBuf::from).collect();
    let seed = match req.seed {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| Error::Usage(format!("cannot read the seed {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let mut out = String::new();
    let mut failed = 0;
    for &dialect in req.dialects {
        let admin = admin_url(dialect, req.admin_urls)?;
        for &version in &versions {
            let reg = crate::engine::runner::find(&opts.catalog, version)?;
            let shown = format!(
                "V{}__{} on {}",
                version,
                reg.name,
                format!("{dialect:?}").to_lowercase()
            );
            let failures = match one(
                dialect,
                &admin,
                version,
                &schema,
                req,
                seed.as_deref(),
                opts,
            ) {
                Ok(f) => f,
                Err(e) => vec![e.to_string()],
            };
            if failures.is_empty() {
                out.push_str(&format!("ok   {shown}\n"));
            }
            for f in &failures {
                out.push_str(&format!("FAIL {shown}: {f}\n"));
            }
            failed += failures.len();
        }
    }
    if failed > 0 {
        crate::cli::output::print(&out)?;
        return Err(Error::Runtime(format!(
            "backfill test: {failed} check(s) failed"
        )));
    }
    Ok(out)
}

/// One migration on one dialect, on a scratch database dropped when this returns.
fn one(
    dialect: Dialect,
    admin: &str,
    version: i64,
    schema: &[PathBuf],
    req: &Request,
    seed: Option<&str>,
    opts: &Options,
) -> Result<Vec<String>> {
    let suite = std::env::var("BF_TEST_SUITE").unwrap_or_default();
    let name = scratch_name(&suite, std::process::id(), version);
    let db = Scratch::create_at(dialect, admin, &name)?;
    let mut session = connect(&Target::parse(&db.url)?)?;
    let mut loaded = false;
    for path in schema {
        let s = schema_of(path);
        if s.dialects()?.contains(&dialect) {
            s.load(session.as_mut())?;
            loaded = true;
        }
    }
    if !loaded {
        return Err(Error::Usage(format!(
            "--schema {} has no SQL for {dialect:?}; give that dialect's schema file",
            req.schema
        )));
    }
    if let (Some(text), Some(path)) = (seed, req.seed) {
        load_sql(session.as_mut(), &path.display().to_string(), text)?;
    }
    exercise::check(session.as_mut(), version, opts, req.allow_empty)
}

/// `bf_test_[<suite>_]<pid>_<version>`: `suite` is `BF_TEST_SUITE` read as the test harness reads
/// it (letters and digits, lowercase, at most 8), so suites of two checkouts running `backfill test`
/// against one server never share a database, as their own test databases do not.
fn scratch_name(suite: &str, pid: u32, version: i64) -> String {
    let tag: String = suite
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_lowercase();
    match tag.is_empty() {
        true => format!("bf_test_{pid}_{version}"),
        false => format!("bf_test_{tag}_{pid}_{version}"),
    }
}

#[cfg(test)]
mod tests {
    use super::scratch_name;

    #[test]
    fn scratch_databases_carry_the_suite_tag() {
        assert_eq!(scratch_name("", 42, 7), "bf_test_42_7");
        assert_eq!(scratch_name("Decl-2!", 42, 7), "bf_test_decl2_42_7");
        assert_eq!(scratch_name("abcdefghijk", 1, 2), "bf_test_abcdefgh_1_2");
        assert_eq!(scratch_name("--", 1, 2), "bf_test_1_2");
    }
}
