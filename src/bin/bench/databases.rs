//! The servers measured and the benchmark's own databases on them.

use crate::Args;
use anyhow::{anyhow, bail, Result};
use backfill::db::admin::Scratch;
use backfill::db::{self, Dialect, Session, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Kind {
    Postgres,
    Mariadb,
    Sqlite,
}

impl Kind {
    pub(crate) fn parse(name: &str) -> Result<Kind> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "pg" => Kind::Postgres,
            "mariadb" | "mysql" | "my" => Kind::Mariadb,
            "sqlite" => Kind::Sqlite,
            other => bail!("unknown dialect `{other}`; use postgres, mariadb or sqlite"),
        })
    }
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Postgres => "PostgreSQL",
            Kind::Mariadb => "MariaDB",
            Kind::Sqlite => "SQLite",
        }
    }
}

pub(crate) fn connect(url: &str) -> Result<Box<dyn Session>> {
    let target = Target::parse(url).map_err(|e| anyhow!("{e}"))?;
    db::connect(&target).map_err(|e| anyhow!("{e}"))
}

/// A URL whose connection sends statements the way Laravel's PDO does: native prepares
/// (`PDO::ATTR_EMULATE_PREPARES` is false in Laravel's connectors), so every statement is prepared,
/// executed and closed — a round trip more than a cached statement. The MySQL driver does that
/// without its statement cache; the PostgreSQL driver here prepares every statement anyway.
pub(crate) fn prepare_per_statement(d: Dialect, url: &str) -> String {
    match d {
        Dialect::Mysql => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}stmt_cache_size=0")
        }
        _ => url.to_string(),
    }
}

/// The benchmark's own database: created fresh, dropped on drop (unless kept).
/// The bench's own database (`--db-name`), dropped at the end unless `--keep` / `--load-only`.
pub(crate) struct BenchDb {
    pub(crate) url: String,
    /// `None` with `--reuse`: a database an earlier run kept, left as it is.
    pub(crate) _scratch: Option<Scratch>,
}

impl BenchDb {
    pub(crate) fn create(args: &Args, kind: Kind) -> Result<BenchDb> {
        let (dialect, admin) = match kind {
            Kind::Sqlite => (Dialect::Sqlite, std::env::temp_dir().display().to_string()),
            Kind::Postgres => (Dialect::Postgres, args.pg_admin.clone()),
            Kind::Mariadb => (Dialect::Mysql, args.mariadb_admin.clone()),
        };
        if args.reuse {
            if dialect == Dialect::Sqlite {
                bail!("--reuse measures a kept server database; SQLite's is a temporary file");
            }
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            let url = format!("{base}/{}", args.db_name.to_lowercase());
            eprintln!("bench: reusing {url}");
            return Ok(BenchDb {
                url,
                _scratch: None,
            });
        }
        let mut scratch = Scratch::create_at(dialect, &admin, &args.db_name).map_err(|e| {
            anyhow!("creating the bench database (--db-name; `make db` starts the servers): {e}")
        })?;
        scratch.keep = args.keep || args.load_only;
        if scratch.keep {
            eprintln!("bench: keeping {}", scratch.url);
        }
        Ok(BenchDb {
            url: scratch.url.clone(),
            _scratch: Some(scratch),
        })
    }
}
