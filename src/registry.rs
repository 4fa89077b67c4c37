//! The data migrations a binary knows: a crate's own, compiled in by [`include_migrations!`]
//! from what its `build.rs` registered, gathered with any others into a [`Catalog`] that the CLI
//! hands to the engine.
//!
//! [`include_migrations!`]: crate::include_migrations

use crate::kit::migration::DataMigration;

/// The frozen checksum `Registered::checksum` holds (the build helper's own code, one copy).
pub use backfill_build::checksum;

/// One registered migration: `V<version>__<name>` with its frozen checksum.
#[derive(Clone, Copy)]
pub struct Registered {
    /// The version, `YYYYMMDDHHMM` (12 digits).
    pub version: i64,
    /// The snake_case name after `V<version>__`.
    pub name: &'static str,
    /// SHA-256 of the normalized source, see `checksum`.
    pub checksum: &'static str,
    /// Where it came from, as `status` names it (`data_migrations/V…__name.rs`).
    pub origin: &'static str,
    /// The migration itself.
    pub migration: &'static dyn DataMigration,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "V{}__{}", self.version, self.name)
    }
}

/// A crate's name, version and commit, as `--version` names the app a binary was built for.
#[derive(Debug, Clone, Copy)]
pub struct App {
    /// The package name (`CARGO_PKG_NAME`).
    pub name: &'static str,
    /// The package version.
    pub version: &'static str,
    /// The git commit it was built from (`-dirty` with uncommitted changes), or `unknown`.
    pub commit: &'static str,
}

/// This crate's own migrations (the HR app's), one module per `data_migrations/V…__name.rs`,
/// compiled in as any app's are (public for the benchmark, which runs a migration's own SQL as its
/// reference).
#[doc(hidden)]
pub mod generated {
    crate::include_migrations!();
}

/// The migrations one binary runs: those a deploy's `apply` runs (in version order), and examples
/// that run only when named (this crate's own, feature `testkit`).
#[derive(Clone, Copy)]
pub struct Catalog {
    migrations: &'static [Registered],
    examples: &'static [Registered],
    app: Option<&'static App>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.migrations).finish()
    }
}

impl Catalog {
    /// A catalog of `migrations`, which must be in version order without duplicates (what the build
    /// helper generates).
    pub const fn new(migrations: &'static [Registered]) -> Catalog {
        Catalog {
            migrations,
            examples: &[],
            app: None,
        }
    }

    /// This catalog with `examples`: migrations that run only when named (in version order).
    pub const fn with_examples(self, examples: &'static [Registered]) -> Catalog {
        Catalog { examples, ..self }
    }

    /// This catalog as `app`'s: its `--version` names the app's crate and commit beside backfill's.
    pub const fn for_app(self, app: &'static App) -> Catalog {
        Catalog {
            app: Some(app),
            ..self
        }
    }

    /// The crate whose migrations these are (`None`: built by hand, without the macro).
    pub fn app(&self) -> Option<&'static App> {
        self.app
    }

    /// The app crate these migrations come from, unless it is backfill itself.
    pub(crate) fn foreign_app(&self) -> Option<&'static App> {
        self.app.filter(|a| a.name != env!("CARGO_PKG_NAME"))
    }

    /// The migrations a deploy's `apply` runs, in version order.
    pub fn all(&self) -> &'static [Registered] {
        self.migrations
    }

    /// A migration or example by version (examples run only when named).
    pub fn find(&self, version: i64) -> Option<&'static Registered> {
        self.migrations
            .iter()
            .chain(self.examples)
            .find(|m| m.version == version)
    }

    /// This catalog with `more` added (migrations read at run time, which live as long as the
    /// process): refused when a version is already taken, naming both.
    pub fn with(&self, more: Vec<Registered>) -> std::result::Result<Catalog, String> {
        let mut all = self.migrations.to_vec();
        for m in more {
            // `all` holds this catalog's and the added migrations; examples take versions too.
            if let Some(taken) = all
                .iter()
                .chain(self.examples)
                .find(|o| o.version == m.version)
            {
                return Err(format!(
                    "version {} is used twice: by {} and by {}; give one of them a new version",
                    m.version, taken.origin, m.origin
                ));
            }
            all.push(m);
        }
        all.sort_by_key(|m| m.version);
        Ok(Catalog {
            migrations: Box::leak(all.into_boxed_slice()),
            ..*self
        })
    }
}

/// The migrations compiled into this crate (the HR app's, and with feature `testkit` its examples).
pub fn compiled() -> Catalog {
    generated::catalog()
}

/// The production migrations compiled into this crate: what its own binary lists and applies.
pub fn all() -> &'static [Registered] {
    generated::MIGRATIONS
}

/// A compiled-in production or example migration by version.
pub fn find(version: i64) -> Option<&'static Registered> {
    compiled().find(version)
}

// The shipped migrations are the fixtures here.
#[cfg(all(test, feature = "hr-migrations"))]
mod tests {
    use super::*;

    fn like(first: &Registered, version: i64, origin: &'static str) -> Registered {
        Registered {
            version,
            origin,
            ..*first
        }
    }

    /// Applied in production: their checksums, taken before the build helper replaced `build.rs`'s
    /// own code, must never change (a changed one makes `apply` refuse the HR app's deploys).
    #[test]
    fn the_applied_hr_migrations_keep_their_checksums() {
        let frozen = [
            (
                202611230001,
                "c4825ae8153bb30d2b05c148a91886c2557715a39aa78b771e3ff86187dfd2cc",
            ),
            (
                202611230002,
                "0311f2c382189303d97eb3336d39e2dc7ef091eceb76d7a48c0f062d11b5c7e1",
            ),
            (
                202612060003,
                "1160641b6cbccd1ffa06bef55c4b6b4c4dbdcb061ae022cf90021a5b9b0c67ef",
            ),
        ];
        for (version, sum) in frozen {
            let m = find(version).unwrap_or_else(|| panic!("V{version} is not compiled in"));
            assert_eq!(m.checksum, sum, "{m:?}");
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(m.origin);
            let source = std::fs::read_to_string(&path).expect("the migration's file");
            assert_eq!(checksum::checksum(&source), sum, "{}", path.display());
        }
    }

    #[test]
    fn added_migrations_sort_in_and_a_taken_version_is_refused() {
        let base = compiled();
        let first = base.all()[0];
        let later = like(&first, i64::MAX, "more/V…__later.toml");
        let grown = base.with(vec![later]).expect("a new version");
        assert_eq!(grown.all().len(), base.all().len() + 1);
        assert_eq!(grown.all().last().map(|m| m.version), Some(i64::MAX));
        assert_eq!(
            grown.find(first.version).map(|m| m.origin),
            Some(first.origin)
        );
        let twin = like(&first, first.version, "more/V…__twin.toml");
        let refused = base.with(vec![twin]).expect_err("a taken version");
        assert!(
            refused.contains(first.origin) && refused.contains("twin.toml"),
            "{refused}"
        );
        let pair = [i64::MAX - 1, i64::MAX - 1].map(|v| like(&first, v, "more/V…__pair.toml"));
        let refused = base
            .with(pair.to_vec())
            .expect_err("one version added twice");
        assert!(refused.contains("used twice"), "{refused}");
        let example = like(&first, i64::MAX - 2, "examples/V…__example.rs");
        let with_example = base.with_examples(Box::leak(Box::new([example])));
        let clash = like(&first, i64::MAX - 2, "more/V…__clash.toml");
        let refused = with_example
            .with(vec![clash])
            .expect_err("an example's version");
        assert!(
            refused.contains("example.rs") && refused.contains("clash.toml"),
            "{refused}"
        );
    }
}
