//! Declarative migrations: `V<12 digits>__<snake_name>.toml` files read at run time from a
//! directory (`--migrations-dir`), so a team that does not write Rust runs data migrations with
//! the shipped binary. Each becomes a [`Registered`](crate::registry::Registered) like a compiled
//! one: its version, its name, the checksum of its text (`registry::checksum`, the algorithm
//! compiled migrations use) and its file.
//!
//! A file is refused before anything is written, with one line naming the file, the key and the
//! fix: when it is read (its name, UTF-8, unknown or missing keys, see `file`), and against the
//! database before a command runs
//! ([`DataMigration::unfit`](crate::kit::migration::DataMigration::unfit), see `fit`: its tables,
//! columns and integer keys are there, its SQL prepares there).

mod file;

mod fit;

use crate::db::{DbResult, Tx};
use crate::error::{Error, Result};
use crate::kit::insert_select::InsertSelect;
use crate::kit::migration::{Context, DataMigration, Grouping, Key, KeyRange, Plan, Shape};
use crate::kit::update::TunedUpdate;
use crate::registry::Registered;
use std::path::Path;

/// One file's migration.
pub struct Declarative {
    /// The file, as `status` shows it.
    origin: &'static str,
    form: Form,
}

/// What the file's shape runs.
enum Form {
    Update(TunedUpdate),
    Insert(InsertSelect),
}

/// `V<12 digits>__<snake_name>.toml` as (version, name), by the rules compiled migrations' names
/// follow; `None` for another name.
fn parse_name(file: &str) -> Option<(i64, String)> {
    let stem = file.strip_suffix(".toml")?;
    backfill_build::name::parse(&format!("{stem}.rs")).ok()
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Every `*.toml` in `dir`, in version order (other files are left alone: a README, a .gitkeep).
pub fn load(dir: &Path) -> Result<Vec<Registered>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::Usage(format!(
            "cannot read the migrations directory {}: {e}; check --migrations-dir / BACKFILL_MIGRATIONS_DIR",
            dir.display()
        ))
    })?;
    let mut found = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| Error::Usage(format!("cannot list {}: {e}", dir.display())))?
            .path();
        let is_toml = path
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("toml"));
        if is_toml && path.is_file() {
            found.push(read(&path)?);
        }
    }
    found.sort_by_key(|r| r.version);
    if let Some(w) = found.windows(2).find(|w| w[0].version == w[1].version) {
        return Err(Error::Usage(format!(
            "version {} is used twice: by {} and by {}; give one of them a new version",
            w[0].version, w[0].origin, w[1].origin
        )));
    }
    Ok(found)
}

/// One file, refused with its name, the key and the fix.
fn read(path: &Path) -> Result<Registered> {
    let shown = path.display().to_string();
    let refuse = |what: String| Error::Usage(format!("{shown}: {what}"));
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let Some((version, name)) = parse_name(file_name) else {
        return Err(refuse(
            "the name must be V<12 digits>__<snake_name>.toml (e.g. V202612070900__fill_effective_from.toml); rename it".into(),
        ));
    };
    let bytes = std::fs::read(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        refuse(format!(
            "is not UTF-8 (byte {}); save it as UTF-8",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let parsed: file::File = toml::from_str(&text).map_err(|e| refuse(toml_error(&text, &e)))?;
    let checked = parsed
        .check()
        .map_err(|(key, fix)| refuse(format!("`{key}` {fix}")))?;
    let origin = leak(shown);
    let form = match checked {
        file::Checked::Update(u) => Form::Update(u),
        file::Checked::Insert(i) => Form::Insert(i),
    };
    let migration: &'static Declarative = Box::leak(Box::new(Declarative { origin, form }));
    Ok(Registered {
        version,
        name: leak(name),
        checksum: leak(crate::registry::checksum::checksum(&text)),
        origin,
        migration,
    })
}

/// A TOML error as one line: where, the line itself, what is wrong (serde names an unknown or
/// missing key and the keys it expects).
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let start = e.span().map_or(0, |s| s.start.min(text.len()));
    let line = text[..start].matches('\n').count() + 1;
    let shown = text.lines().nth(line - 1).unwrap_or("").trim();
    // A missing key's span is the whole table: no line to show.
    let at = match (
        e.span(),
        shown.is_empty() || e.message().starts_with("missing"),
    ) {
        (Some(_), false) => format!("line {line} (`{shown}`): "),
        _ => String::new(),
    };
    format!(
        "{at}{}; fix it (README, \"Data migrations without Rust\", lists every key)",
        e.message().trim_end().replace('\n', " ")
    )
}

impl Declarative {
    fn inner(&self) -> &dyn DataMigration {
        match &self.form {
            Form::Update(u) => u,
            Form::Insert(i) => i,
        }
    }
}

impl DataMigration for Declarative {
    fn shape(&self) -> Shape<'_> {
        self.inner().shape()
    }

    fn key(&self) -> Key {
        self.inner().key()
    }

    fn grouping(&self) -> Option<Grouping> {
        self.inner().grouping()
    }

    fn plan(&self, tx: &mut dyn Tx, ctx: &Context, samples: usize) -> DbResult<Plan> {
        self.inner().plan(tx, ctx, samples)
    }

    fn apply(&self, tx: &mut dyn Tx, ctx: &Context, range: KeyRange) -> DbResult<u64> {
        self.inner().apply(tx, ctx, range)
    }

    fn check(&self, tx: &mut dyn Tx, ctx: &Context) -> DbResult<Vec<String>> {
        self.inner().check(tx, ctx)
    }

    fn preflight(&self, tx: &mut dyn Tx) -> DbResult<()> {
        self.inner().preflight(tx)
    }

    fn unfit(&self, tx: &mut dyn Tx) -> DbResult<Option<String>> {
        let why = match &self.form {
            Form::Update(u) => fit::update(tx, u)?,
            Form::Insert(i) => fit::insert(tx, i)?,
        };
        Ok(why.map(|w| format!("{}: {w}", self.origin)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_a_12_digit_version_and_a_snake_name() {
        assert_eq!(
            parse_name("V202612070900__fill_dates.toml"),
            Some((202612070900, "fill_dates".to_string()))
        );
        for bad in [
            "V20261207090__fill.toml",
            "V202612070900_fill.toml",
            "V202612070900__Fill.toml",
            "v202612070900__fill.toml",
            "V2026120709000__fill.toml",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }
}
