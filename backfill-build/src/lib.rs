//! The build-script half of backfill (the data-migration tool): finds a crate's
//! `data_migrations/V<YYYYMMDDHHMM>__<name>.rs`, refuses bad names and taken versions (naming the
//! file), and generates the registry with each file's frozen SHA-256 checksum, which
//! `backfill::include_migrations!()` then compiles into the crate.
//!
//! ```no_run
//! // build.rs
//! fn main() {
//!     backfill_build::migrations().generate();
//! }
//! ```
//!
//! It depends on `sha2` only, so a build script does not compile backfill itself.

#![warn(missing_docs)]
// The example above is a whole build script: its `fn main` is the point.
#![allow(clippy::needless_doctest_main)]

pub mod checksum;
mod codegen;
pub mod commit;
mod discover;
pub mod name;

pub use discover::Migration;
use std::path::{Path, PathBuf};

/// The file `backfill::include_migrations!()` includes from `OUT_DIR`.
pub const GENERATED: &str = "backfill_migrations.rs";

/// What a build script registers: a crate's `data_migrations/` and, optionally, examples.
#[derive(Debug, Clone)]
pub struct Migrations {
    root: PathBuf,
    dir: Option<PathBuf>,
    examples: Option<PathBuf>,
}

/// The crate's `data_migrations/` (beside its `Cargo.toml`).
pub fn migrations() -> Migrations {
    let root = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(PathBuf::new, PathBuf::from);
    Migrations {
        dir: Some(root.join("data_migrations")),
        root,
        examples: None,
    }
}

impl Migrations {
    /// Migrations from `dir` (relative to the crate) instead of `data_migrations/`.
    pub fn dir(mut self, dir: impl AsRef<Path>) -> Migrations {
        self.dir = Some(self.root.join(dir));
        self
    }

    /// None of the crate's own: an empty `MIGRATIONS` (examples still register). For a crate whose
    /// migrations are optional, as backfill's are without its `hr-migrations` feature.
    pub fn none(mut self) -> Migrations {
        self.dir = None;
        self
    }

    /// Also `dir`'s migrations, as examples: they run only when named, never in a deploy's `apply`.
    pub fn examples(mut self, dir: impl AsRef<Path>) -> Migrations {
        self.examples = Some(self.root.join(dir));
        self
    }

    /// Writes `OUT_DIR/backfill_migrations.rs`; fails the build with every bad file named.
    pub fn generate(self) {
        if let Err(why) = self.try_generate() {
            panic!("\n\n{why}\n\n");
        }
    }

    /// [`generate`](Self::generate), returning the file written or the reason instead of failing.
    pub fn try_generate(self) -> Result<PathBuf, String> {
        let (migrations, examples) = self.scan()?;
        println!("cargo:rerun-if-env-changed=BACKFILL_APP_COMMIT");
        let commit = std::env::var("BACKFILL_APP_COMMIT")
            .ok()
            .or_else(|| commit::commit(&self.root))
            .unwrap_or_else(|| "unknown".into());
        let text = codegen::generate(&migrations, &examples, &self.root, &commit)?;
        let out = std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set: run from build.rs")?;
        let out = Path::new(&out).join(GENERATED);
        std::fs::write(&out, text).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        Ok(out)
    }

    /// The migrations and examples, each folder watched by cargo; one warning per ignored file.
    fn scan(&self) -> Result<(Vec<Migration>, Vec<Migration>), String> {
        let mut errors = Vec::new();
        let mut found = Vec::new();
        for (i, dir) in [self.dir.as_ref(), self.examples.as_ref()]
            .into_iter()
            .enumerate()
        {
            let Some(dir) = dir else {
                found.push(Vec::new());
                continue;
            };
            println!("cargo:rerun-if-changed={}", dir.display());
            let label = dir
                .strip_prefix(&self.root)
                .unwrap_or(dir)
                .display()
                .to_string();
            let taken = if i == 0 { &[][..] } else { &found[0][..] };
            let scan = discover::scan(dir, &label, taken)?;
            for m in &scan.migrations {
                println!("cargo:rerun-if-changed={}", m.path.display());
            }
            for line in &scan.ignored {
                println!("cargo:warning={line}");
            }
            errors.extend(scan.errors);
            found.push(scan.migrations);
        }
        if !errors.is_empty() {
            return Err(format!(
                "bad data migration file(s):\n  {}",
                errors.join("\n  ")
            ));
        }
        let examples = found.pop().unwrap_or_default();
        Ok((found.pop().unwrap_or_default(), examples))
    }
}
