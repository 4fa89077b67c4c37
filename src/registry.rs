//! The data migrations a binary knows: this crate's, compiled in by `build.rs` from
//! `data_migrations/`, gathered with any others into a [`Catalog`] that the CLI hands to the engine.

use crate::kit::migration::DataMigration;

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

/// One module per `data_migrations/V<version>__<name>.rs` (public for the benchmark, which runs a
/// migration's own SQL as its reference).
pub mod generated {
    use super::Registered;
    include!(concat!(env!("OUT_DIR"), "/registry.rs"));
}

/// The migrations one binary runs: those a deploy's `apply` runs (in version order), and examples
/// that run only when named (this crate's own, feature `testkit`).
#[derive(Clone, Copy)]
pub struct Catalog {
    migrations: &'static [Registered],
    examples: &'static [Registered],
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
        }
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
            if let Some(taken) = self
                .find(m.version)
                .or(all.iter().find(|o| o.version == m.version))
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
            examples: self.examples,
        })
    }
}

/// The migrations compiled into this crate (the HR app's, and with feature `testkit` its examples).
pub fn compiled() -> Catalog {
    Catalog {
        migrations: generated::MIGRATIONS,
        examples: generated::EXAMPLES,
    }
}

/// The production migrations compiled into this crate: what its own binary lists and applies.
pub fn all() -> &'static [Registered] {
    generated::MIGRATIONS
}

/// A compiled-in production or example migration by version.
pub fn find(version: i64) -> Option<&'static Registered> {
    compiled().find(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(first: &Registered, version: i64, origin: &'static str) -> Registered {
        Registered {
            version,
            origin,
            ..*first
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
    }
}
