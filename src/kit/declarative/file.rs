//! The format of a declarative migration file, `V<12 digits>__<snake_name>.toml`, and what makes
//! one well formed before any database sees it. README, "Data migrations without Rust", lists every
//! key.

use crate::db::Dialect;
use crate::kit::insert_select::InsertSelect;
use crate::kit::migration::{Grouping, Key};
use crate::kit::placeholders::{self, Ranged};
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
    walk: Option<String>,
    columns: Option<Vec<String>>,
    select: Option<String>,
    group: Option<String>,
    timestamps: Option<bool>,
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
    select: Option<String>,
}

/// A file's shape, checked: what it runs.
pub(super) enum Checked {
    Update(TunedUpdate),
    Insert(InsertSelect),
}

/// The keys each shape takes (`DIALECT.` for a key of `[postgres]`, `[mysql]` or `[sqlite]`).
const UPDATE_KEYS: &[&str] = &[
    "shape",
    "table",
    "key",
    "where",
    "set",
    "skip_when",
    "skipped_because",
    "reason",
    "DIALECT.set",
    "DIALECT.where",
    "DIALECT.skip_when",
];
const INSERT_KEYS: &[&str] = &[
    "shape",
    "table",
    "key",
    "walk",
    "columns",
    "select",
    "group",
    "timestamps",
    "DIALECT.select",
];

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
            "irreversible" => Some(leak(required(
                self.reason.clone(),
                "reason",
                "\"why it cannot be undone\"",
            )?)),
            "insert" => {
                self.takes_only(INSERT_KEYS)?;
                return Ok(Checked::Insert(self.insert()?));
            }
            other => {
                return Err((
                    "shape".into(),
                    format!(
                    "\"{other}\" is not a shape; use \"update\", \"insert\" or \"irreversible\""
                ),
                ))
            }
        };
        self.takes_only(UPDATE_KEYS)?;
        self.update(irreversible).map(Checked::Update)
    }

    /// Refuses a key the file's shape does not take (serde refuses the keys no shape takes).
    fn takes_only(&self, keys: &[&str]) -> Result<(), Refusal> {
        let Some(given) = self.given().into_iter().find(|k| {
            let generic = k
                .split_once('.')
                .map_or(k.clone(), |(_, rest)| format!("DIALECT.{rest}"));
            !keys.contains(&generic.as_str())
        }) else {
            return Ok(());
        };
        let takes = keys
            .join(", ")
            .replace("DIALECT.", "[postgres]/[mysql]/[sqlite] ");
        Err((
            given,
            format!(
                "is not a key of shape = \"{}\" (it takes {takes}); remove it or change the shape",
                self.shape
            ),
        ))
    }

    /// The keys the file gives, as `takes_only` names them.
    fn given(&self) -> Vec<String> {
        let top = [
            ("table", self.table.is_some()),
            ("key", self.key.is_some()),
            ("where", self.only.is_some()),
            ("set", self.set.is_some()),
            ("skip_when", self.skip_when.is_some()),
            ("skipped_because", self.skipped_because.is_some()),
            ("reason", self.reason.is_some()),
            ("walk", self.walk.is_some()),
            ("columns", self.columns.is_some()),
            ("select", self.select.is_some()),
            ("group", self.group.is_some()),
            ("timestamps", self.timestamps.is_some()),
        ];
        let mut given: Vec<String> = top
            .iter()
            .filter(|(_, there)| *there)
            .map(|(k, _)| k.to_string())
            .collect();
        for (name, section) in self.sections() {
            let Some(d) = section else { continue };
            let keys = [
                ("set", d.set.is_some()),
                ("where", d.only.is_some()),
                ("skip_when", d.skip_when.is_some()),
                ("select", d.select.is_some()),
            ];
            given.extend(
                keys.iter()
                    .filter(|(_, there)| *there)
                    .map(|(k, _)| format!("{name}.{k}")),
            );
        }
        given
    }

    fn sections(&self) -> [(&'static str, &Option<Dialected>); 3] {
        [
            ("postgres", &self.postgres),
            ("mysql", &self.mysql),
            ("sqlite", &self.sqlite),
        ]
    }

    /// `shape = "update"` or `"irreversible"` (with its reason).
    fn update(self, irreversible: Option<&'static str>) -> Result<TunedUpdate, Refusal> {
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
            let key = format!("set.{c}");
            values.push(expression(
                required(Some(v.clone()), &key, "\"t.column\"")?,
                &key,
            )?);
        }
        let skip = match (&self.skip_when, &self.skipped_because) {
            (Some(when), Some(why)) => {
                Some((leak(why.clone()), expression(when.clone(), "skip_when")?))
            }
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
            only: self.only.map(|o| expression(o, "where")).transpose()?,
            skip,
        };
        Ok(TunedUpdate {
            update,
            overrides: Box::leak(overrides.into_boxed_slice()),
            irreversible,
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
                    sql: expression(sql.clone(), &format!("{name}.set.{c}"))?,
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
                    sql: expression(sql.clone(), &format!("{name}.{key}"))?,
                });
            }
        }
        Ok(out)
    }

    /// `shape = "insert"`: an INSERT … SELECT over a walked key, its keys recorded in the ledger.
    fn insert(self) -> Result<InsertSelect, Refusal> {
        let table = identifier(
            &required(self.table.clone(), "table", "\"scenario_capabilities\"")?,
            "table",
        )?;
        let key = identifier(&required(self.key.clone(), "key", "\"id\"")?, "key")?;
        let walk = walk(&required(self.walk.clone(), "walk", "\"capabilities.id\"")?)?;
        let timestamps = self.timestamps.unwrap_or(false);
        let columns = columns(self.columns.clone().unwrap_or_default(), timestamps)?;
        let example =
            "\"SELECT … FROM capabilities c WHERE c.id BETWEEN :lo AND :hi AND NOT EXISTS (…)\"";
        let select = placeholders(required(self.select.clone(), "select", example)?, "select")?;
        let grouping = match &self.group {
            Some(g) => Some(grouping(g, columns)?),
            None => None,
        };
        let mut overrides = Vec::new();
        for (dialect, (name, section)) in [Dialect::Postgres, Dialect::Mysql, Dialect::Sqlite]
            .into_iter()
            .zip(self.sections())
        {
            if let Some(sql) = section.as_ref().and_then(|d| d.select.clone()) {
                overrides.push((dialect, placeholders(sql, &format!("{name}.select"))?));
            }
        }
        Ok(InsertSelect {
            table,
            key,
            columns,
            select,
            overrides: Box::leak(overrides.into_boxed_slice()),
            timestamps,
            walk,
            grouping,
        })
    }
}

/// `walk = "table.column"`: the integer key the runner walks.
fn walk(text: &str) -> Result<Key, Refusal> {
    let fix = || {
        (
            "walk".to_string(),
            format!("`{text}` is not table.column; name the integer key the runner walks, e.g. walk = \"capabilities.id\""),
        )
    };
    let (table, column) = text.split_once('.').ok_or_else(fix)?;
    Ok(Key {
        table: identifier(table, "walk").map_err(|_| fix())?,
        column: identifier(column, "walk").map_err(|_| fix())?,
    })
}

/// `columns`: plain names, each once, without the two `timestamps` writes.
fn columns(names: Vec<String>, timestamps: bool) -> Result<&'static [&'static str], Refusal> {
    if names.is_empty() {
        return Err((
            "columns".into(),
            "is missing; add the columns the select fills, in its order, e.g. columns = [\"scenario_id\", \"capability_id\"]".into(),
        ));
    }
    let mut out: Vec<&'static str> = Vec::new();
    for name in &names {
        let column = identifier(name, "columns")?;
        if out.contains(&column) {
            return Err((
                "columns".into(),
                format!("names {column} twice; name it once"),
            ));
        }
        if timestamps && ["created_at", "updated_at"].contains(&column) {
            return Err((
                "columns".into(),
                format!("names {column}, which timestamps = true writes; remove it from columns (and its field from select)"),
            ));
        }
        out.push(column);
    }
    Ok(Box::leak(out.into_boxed_slice()))
}

/// An expression of an update (a value or a condition over `t`) as it goes into the statements,
/// refused under `key` when it has a `?` of its own.
fn expression(sql: String, key: &str) -> Result<&'static str, Refusal> {
    placeholders::expression(&sql)
        .map(leak)
        .map_err(|e| (key.into(), e))
}

/// A select with both ends of the range, refused under `key` otherwise.
fn placeholders(sql: String, key: &str) -> Result<&'static str, Refusal> {
    match Ranged::parse(&sql) {
        Ok(_) => Ok(leak(sql)),
        Err(e) => Err((key.into(), e)),
    }
}

/// `group = "scenario_id"`: one of the columns; its label (`scenario`, for `revert --scenario`'s
/// words) is the name without `_id`.
fn grouping(group: &str, columns: &[&'static str]) -> Result<Grouping, Refusal> {
    let Some(column) = columns.iter().find(|c| **c == group) else {
        return Err((
            "group".into(),
            format!("`{group}` is not one of columns; group by a column the insert writes, or remove group"),
        ));
    };
    Ok(Grouping {
        column,
        label: leak(column.strip_suffix("_id").unwrap_or(column).to_string()),
    })
}
