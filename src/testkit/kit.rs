//! [`Kit`]: which schema, which seed, which migrations; then `exercise(version)` on every dialect
//! the schema has SQL for.

use super::check::{check_one, AppDb};
use crate::db::admin::Scratch;
use crate::db::schema_file::Schema;
use crate::db::{connect, Dialect, Session, Target};
use crate::registry::Catalog;
use std::path::PathBuf;

/// A seed written in Rust: it fills the scratch database through a session.
type SeedFn<'a> = Box<dyn Fn(&mut dyn Session) + 'a>;

/// One step that fills the scratch database after the schema: SQL files or a Rust function.
enum Seed<'a> {
    Sql(Schema),
    Fn(SeedFn<'a>),
}

/// A test of one migration against an app's own schema and seed data, built step by step:
///
/// ```ignore
/// use backfill::testkit::{Kit, Schema};
///
/// #[test]
/// fn fills_effective_dates() {
///     Kit::new()
///         .schema(Schema::laravel_dump("database/schema"))
///         .seed_sql("tests/seed.sql")
///         .catalog(my_app::catalog())
///         .exercise(202612011200);
/// }
/// ```
///
/// `exercise` runs on every dialect the schema has SQL for (narrowed by [`Kit::dialects`]), each on
/// a scratch database of its own that is dropped even when the test fails, and panics with what
/// went wrong: a schema or seed statement the server refused (its file, line and statement), a
/// plan that differs from what apply wrote, a migration that writes nothing on the seed, a
/// top-up that writes again, `verify --data` findings, or a revert that leaves any table changed
/// (the first such table and its first differing row).
pub struct Kit<'a> {
    schema: Option<Schema>,
    seeds: Vec<Seed<'a>>,
    allow_empty: bool,
    dialects: Option<Vec<Dialect>>,
    catalog: Catalog,
}

impl Default for Kit<'_> {
    fn default() -> Self {
        Kit::new()
    }
}

impl<'a> Kit<'a> {
    /// A kit with no schema yet, no seed, this crate's compiled migrations, on every dialect.
    pub fn new() -> Self {
        Kit {
            schema: None,
            seeds: Vec::new(),
            allow_empty: false,
            dialects: None,
            catalog: crate::registry::compiled(),
        }
    }

    /// The app's tables: `Schema::dir("schema/app")`, `Schema::laravel_dump("database/schema")`,
    /// `Schema::file(…)` or `Schema::files([…])`.
    pub fn schema(mut self, schema: Schema) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Seed rows from SQL: a file (run on every dialect) or a folder laid out as [`Schema::dir`]
    /// (one entry per dialect). Runs after the schema and the seeds given before it.
    pub fn seed_sql(mut self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let sql = if path.is_dir() {
            Schema::dir(path)
        } else {
            Schema::file(path)
        };
        self.seeds.push(Seed::Sql(sql));
        self
    }

    /// Seed rows from Rust, on a session to the scratch database. Runs after the schema and the
    /// seeds given before it.
    pub fn seed(mut self, seed: impl Fn(&mut dyn Session) + 'a) -> Self {
        self.seeds.push(Seed::Fn(Box::new(seed)));
        self
    }

    /// Lets the migration write nothing on this seed (say, a guard for data only old installs
    /// hold); otherwise writing nothing fails, since then nothing it does was checked.
    pub fn allow_empty(mut self) -> Self {
        self.allow_empty = true;
        self
    }

    /// Only these dialects (each must have SQL in the schema).
    pub fn dialects(mut self, dialects: &[Dialect]) -> Self {
        self.dialects = Some(dialects.to_vec());
        self
    }

    /// The migrations to find `version` in: the app's own (`my_app::catalog()`); this crate's
    /// compiled ones by default.
    pub fn catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = catalog;
        self
    }

    /// Runs migration `version` through plan, apply, top-up, verify and revert on each dialect,
    /// after the schema and the seeds; panics with what went wrong (see [`Kit`]).
    pub fn exercise(&self, version: i64) {
        let schema = self.schema.as_ref().unwrap_or_else(|| {
            panic!("Kit::exercise: no schema; give one with .schema(Schema::dir(…)) or .schema(Schema::laravel_dump(…))")
        });
        for dialect in self.chosen(schema) {
            let mut app = self.prepare(schema, dialect, version);
            check_one(&mut app, version, self.catalog, dialect, self.allow_empty);
        }
    }

    /// The dialects to run on: the schema's, narrowed to those asked for.
    fn chosen(&self, schema: &Schema) -> Vec<Dialect> {
        let has = schema.dialects().unwrap_or_else(|e| panic!("{e}"));
        let Some(asked) = &self.dialects else {
            assert!(
                !has.is_empty(),
                "{} has no SQL for any dialect",
                schema.describe()
            );
            return has;
        };
        if let Some(missing) = asked.iter().find(|d| !has.contains(d)) {
            panic!("{} has no SQL for {missing:?}", schema.describe());
        }
        asked.clone()
    }

    /// A scratch database for `dialect` with the schema loaded and every seed run.
    fn prepare(&self, schema: &Schema, dialect: Dialect, version: i64) -> AppDb {
        let db = scratch(dialect, version);
        load(&db, schema, "the schema");
        let mut session = open(&db);
        for seed in &self.seeds {
            match seed {
                Seed::Sql(sql) => load(&db, sql, "the seed"),
                Seed::Fn(f) => f(session.as_mut()),
            }
        }
        AppDb { db, session }
    }
}

/// A database of its own: the process and a count, so two tests, or two CI jobs on one server,
/// never share one.
fn scratch(dialect: Dialect, version: i64) -> Scratch {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tag = match dialect {
        Dialect::Postgres => "pg",
        Dialect::Mysql => "my",
        Dialect::Sqlite => "lite",
    };
    let name = format!("bf_kit_{tag}_{version}_{}_{n}", std::process::id());
    Scratch::create(dialect, &name).unwrap_or_else(|e| {
        panic!("cannot create test database {name}: {e} (is the server up? `make db`)")
    })
}

fn open(db: &Scratch) -> Box<dyn Session> {
    let target = Target::parse(&db.url).unwrap_or_else(|e| panic!("{}: {e}", db.url));
    connect(&target).unwrap_or_else(|e| panic!("cannot connect to {}: {e}", db.url))
}

/// Loads SQL on a connection of its own: what a dump sets for its session stays off the tests'.
fn load(db: &Scratch, sql: &Schema, what: &str) {
    sql.load(open(db).as_mut())
        .unwrap_or_else(|e| panic!("{:?}: cannot load {what}: {e}", db.dialect));
}
