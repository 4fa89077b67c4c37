//! The format of a declarative migration file, `V<12 digits>__<snake_name>.toml`, and what makes
//! one well formed before any database sees it. README, "Data migrations without Rust", lists every
//! key.

use crate::db::Dialect;
use crate::kit::update::{Override, Part, TunedUpdate, UpdateBackfill};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The keys of a file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    shape: String,
    table: Option<String>,
    key: Option<String>,
    #[serde(rename = "where")]
    only: Option<String>,
    set: Option<BTreeMap<String, String>>,
    skip_when: Option<String>,
    skipped_because: Option<String>,
    reason: Option<String>,
    postgres: Option<Dialected>,
    mysql: Option<Dialected>,
    sqlite: Option<Dialected>,
}

/// `[postgres]`, `[mysql]`, `[sqlite]`: expressions that dialect runs instead.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Dialected {
    set: Option<BTreeMap<String, String>>,
    #[serde(rename = "where")]
    only: Option<String>,
    skip_when: Option<String>,
}

/// A file's shape, checked: what it runs.
pub(super) struct Checked {
    pub update: TunedUpdate,
}

/// `Err((key, what is wrong and the fix))`.
type Refusal = (String, String);

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn required(value: Option<String>, key: &str, example: &str) -> Result<String, Refusal> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err((
            key.into(),
            format!("is missing; add it, e.g. {key} = {example}"),
        )),
    }
}

/// A table or column name as it goes into SQL: letters, digits and `_`, not starting with a digit.
fn identifier(name: &str, key: &str) -> Result<&'static str, Refusal> {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        Ok(leak(name.to_string()))
    } else {
        Err((
            key.into(),
            format!("`{name}` is not a plain name (letters, digits, _); name the table's own column or table"),
        ))
    }
}

impl File {
    /// The file's migration, or the first key that is wrong.
    pub(super) fn check(self) -> Result<Checked, Refusal> {
        let irreversible = match self.shape.as_str() {
            "update" => None,
            "irreversible" => Some(leak(required(self.reason.clone(), "reason", "\"why it cannot be undone\"")?)),
            "insert" => {
                return Err(("shape".into(), "\"insert\" is not supported by this version yet; write it as a Rust migration (`backfill new NAME`)".into()))
            }
            other => {
                return Err(("shape".into(), format!("\"{other}\" is not a shape; use \"update\" or \"irreversible\"")))
            }
        };
        if irreversible.is_none() && self.reason.is_some() {
            return Err((
                "reason".into(),
                "belongs to shape = \"irreversible\"; remove it or change the shape".into(),
            ));
        }
        let table = identifier(
            &required(self.table.clone(), "table", "\"competency_versions\"")?,
            "table",
        )?;
        let key = identifier(&required(self.key.clone(), "key", "\"id\"")?, "key")?;
        let set = self.set.clone().unwrap_or_default();
        if set.is_empty() {
            return Err((
                "set".into(),
                "is missing; add a [set] table: column = \"SQL expression over t\"".into(),
            ));
        }
        let mut columns = Vec::new();
        let mut values = Vec::new();
        for (c, v) in &set {
            columns.push(identifier(c, &format!("set.{c}"))?);
            values.push(leak(required(
                Some(v.clone()),
                &format!("set.{c}"),
                "\"t.column\"",
            )?));
        }
        let skip = match (&self.skip_when, &self.skipped_because) {
            (Some(when), Some(why)) => Some((leak(why.clone()), leak(when.clone()))),
            (None, None) => None,
            (Some(_), None) => {
                return Err((
                    "skip_when".into(),
                    "needs skipped_because, the reason plan gives for those rows; add it".into(),
                ))
            }
            (None, Some(_)) => {
                return Err((
                    "skipped_because".into(),
                    "needs skip_when, the condition over t of the rows left alone; add it".into(),
                ))
            }
        };
        let overrides = self.overrides(&columns)?;
        let update = UpdateBackfill {
            table,
            key,
            columns: Box::leak(columns.into_boxed_slice()),
            values: Box::leak(values.into_boxed_slice()),
            only: self.only.map(leak),
            skip,
        };
        Ok(Checked {
            update: TunedUpdate {
                update,
                overrides: Box::leak(overrides.into_boxed_slice()),
                irreversible,
            },
        })
    }

    /// `[postgres]`, `[mysql]`, `[sqlite]`: each replaces an expression the file has.
    fn overrides(&self, columns: &[&'static str]) -> Result<Vec<Override>, Refusal> {
        let mut out = Vec::new();
        let sections = [
            (Dialect::Postgres, "postgres", &self.postgres),
            (Dialect::Mysql, "mysql", &self.mysql),
            (Dialect::Sqlite, "sqlite", &self.sqlite),
        ];
        for (dialect, name, section) in sections {
            let Some(section) = section else { continue };
            for (c, sql) in section.set.iter().flatten() {
                let Some(column) = columns.iter().find(|k| **k == c.as_str()) else {
                    return Err((format!("{name}.set.{c}"), format!("overrides a column [set] does not set; add `{c}` to [set] or remove it here")));
                };
                out.push(Override {
                    dialect,
                    part: Part::Set(column),
                    sql: leak(sql.clone()),
                });
            }
            let conditions = [
                (Part::Only, "where", &section.only, self.only.is_some()),
                (
                    Part::Skip,
                    "skip_when",
                    &section.skip_when,
                    self.skip_when.is_some(),
                ),
            ];
            for (part, key, sql, base) in conditions {
                let Some(sql) = sql else { continue };
                if !base {
                    return Err((
                        format!("{name}.{key}"),
                        format!(
                            "overrides a `{key}` the file does not have; add `{key}` at the top"
                        ),
                    ));
                }
                out.push(Override {
                    dialect,
                    part,
                    sql: leak(sql.clone()),
                });
            }
        }
        Ok(out)
    }
}
