//! The fragments that let the UPDATE shape's undo journal be written and restored on the server:
//! values go from a table into `backfill_undo` and back as JSON the server builds and reads, never
//! through the client (a round trip of every row's values was most of an UPDATE-shaped batch).
//! The JSON is what `kit::journal` parses too: an object of column -> its exact text
//! ([`Dialect::exact_text`]) or null.

use super::Dialect;

/// The scratch table of [`Dialect::journal_scratch`].
pub(crate) const SCRATCH: &str = "backfill_batch_old";

/// The start of a statement adding journal entries, their columns in order.
pub(crate) const INSERT_ENTRIES: &str = "INSERT INTO backfill_undo \
     (version, run_id, table_name, key_column, row_key, old_values, new_values, value_format)";

impl Dialect {
    /// A JSON object, as text, of `columns` of the row aliased `t`, each as its exact text. Its
    /// members in name order, as `kit::journal` reads them back: revert compares an entry's text to
    /// this object built from the row's values now, so one written the same way matches it text for
    /// text.
    pub(crate) fn exact_json(self, columns: &[&str]) -> String {
        let mut columns = columns.to_vec();
        columns.sort_unstable();
        let values: Vec<String> = columns
            .iter()
            .map(|c| self.exact_text(&format!("t.{c}")))
            .collect();
        let pairs: Vec<(&str, &str)> = columns
            .iter()
            .copied()
            .zip(values.iter().map(String::as_str))
            .collect();
        let object = self.json_object(&pairs);
        match self {
            // json, not text: stored into a TEXT column it is cast explicitly.
            Dialect::Postgres => format!("CAST({object} AS TEXT)"),
            Dialect::Mysql | Dialect::Sqlite => object,
        }
    }

    /// Text `a` is text `b`, byte for byte, whatever the columns' collations (neither NULL).
    pub(crate) fn same_bytes(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Postgres => format!("({a} COLLATE \"C\" = {b} COLLATE \"C\")"),
            // utf8mb4_bin pads with spaces: 'x' = 'x ' there.
            Dialect::Mysql => format!("(CAST({a} AS BINARY) = CAST({b} AS BINARY))"),
            Dialect::Sqlite => format!("({a} = {b} COLLATE BINARY)"),
        }
    }

    /// The exact text a JSON object held in text column `json` has under `key` (a plain
    /// identifier), NULL for a JSON null or a missing key.
    pub(crate) fn json_exact(self, json: &str, key: &str) -> String {
        match self {
            Dialect::Postgres => format!("(CAST({json} AS json) ->> '{key}')"),
            // Not JSON_VALUE: MySQL's returns at most 512 characters. JSON_UNQUOTE alone turns a
            // JSON null into the text 'null'.
            Dialect::Mysql => format!(
                "(CASE WHEN JSON_TYPE(JSON_EXTRACT({json}, '$.\"{key}\"')) <> 'NULL' \
                 THEN JSON_UNQUOTE(JSON_EXTRACT({json}, '$.\"{key}\"')) END)"
            ),
            Dialect::Sqlite => format!("json_extract({json}, '$.\"{key}\"')"),
        }
    }

    /// Whether the JSON object in text column `json` has exactly the members `keys` (plain
    /// identifiers, no two alike).
    pub(crate) fn json_has_keys(self, json: &str, keys: &[&str]) -> String {
        let quoted: Vec<String> = keys.iter().map(|k| format!("'{k}'")).collect();
        let (quoted, n) = (quoted.join(", "), keys.len());
        match self {
            // jsonb's `- keys` and `jsonb_exists_all` (not `?&`, a placeholder here): a fifth of
            // the time of counting `json_object_keys` in a subquery per row.
            Dialect::Postgres => format!(
                "((CAST({json} AS jsonb) - ARRAY[{quoted}]) = CAST('{{}}' AS jsonb) \
                 AND jsonb_exists_all(CAST({json} AS jsonb), ARRAY[{quoted}]))"
            ),
            Dialect::Mysql => {
                let has: Vec<String> = keys
                    .iter()
                    .map(|k| format!("JSON_CONTAINS_PATH({json}, 'one', '$.\"{k}\"')"))
                    .collect();
                format!("(JSON_LENGTH({json}) = {n} AND {})", has.join(" AND "))
            }
            Dialect::Sqlite => {
                let has: Vec<String> = keys
                    .iter()
                    .map(|k| format!("json_type({json}, '$.\"{k}\"') IS NOT NULL"))
                    .collect();
                format!(
                    "((SELECT COUNT(*) FROM json_each({json})) = {n} AND {})",
                    has.join(" AND ")
                )
            }
        }
    }

    /// The value whose [`Dialect::exact_text`] is the SQL expression `exact` (as
    /// [`Dialect::from_exact`] reads a parameter); on PostgreSQL cast to `ty`, the column's type,
    /// which an untyped parameter would have taken.
    pub(crate) fn value_of_exact(self, exact: &str, ty: Option<&str>) -> String {
        let value = self.from_exact().0.replace('?', exact);
        match ty {
            Some(ty) => format!("CAST({value} AS {ty})"),
            None => value,
        }
    }

    /// An UPDATE of `table` (aliased `t`) joined to the undo journal (aliased `u`) on `on`, setting
    /// each `(column, expression)`, for the rows `cond` selects.
    pub(crate) fn update_from_journal(
        self,
        table: &str,
        sets: &[(&str, String)],
        on: &str,
        cond: &str,
    ) -> String {
        match self {
            // The target's columns qualified: the journal has columns such as `id` and `version` too.
            Dialect::Mysql => {
                let sets: Vec<String> = sets.iter().map(|(c, v)| format!("t.{c} = {v}")).collect();
                format!(
                    "UPDATE {table} t JOIN backfill_undo u ON {on} SET {} WHERE {cond}",
                    sets.join(", ")
                )
            }
            Dialect::Postgres | Dialect::Sqlite => {
                let sets: Vec<String> = sets.iter().map(|(c, v)| format!("{c} = {v}")).collect();
                format!(
                    "UPDATE {table} AS t SET {} FROM backfill_undo u WHERE {on} AND {cond}",
                    sets.join(", ")
                )
            }
        }
    }

    /// One statement that journals and writes a batch, where the dialect can (PostgreSQL: an
    /// `UPDATE … RETURNING` in a CTE): the rows `changing` selects (`k`, the key, and `o`, their old
    /// values as [`Dialect::exact_json`], locked) are set to `values`, and an entry per row goes
    /// into the journal with what the row holds after the write. Its parameters: `changing`'s, the
    /// key range again (without it the planner, knowing nothing of `old`, scanned the whole table
    /// for every batch), then the run id, the table and the key column. The old values come out of
    /// the `RETURNING` (which may name `FROM`'s columns), not from joining the two CTEs: with the
    /// table's statistics from before the app wrote the rows, the planner expected one row of each
    /// and joined them by a nested loop, quadratic in the batch (25 s for a batch of 20,000 rows).
    /// `None`: the dialect writes first and reads back.
    pub(crate) fn update_journaled(
        self,
        changing: &str,
        table: &str,
        key: &str,
        columns: &[&str],
        values: &[&str],
        version: i64,
    ) -> Option<String> {
        if self != Dialect::Postgres {
            return None;
        }
        let sets: Vec<String> = columns
            .iter()
            .zip(values)
            .map(|(c, v)| format!("{c} = ({v})"))
            .collect();
        Some(format!(
            "WITH old AS ({changing}), \
             up AS (UPDATE {table} AS t SET {} FROM old WHERE t.{key} = old.k AND t.{key} >= ? AND t.{key} <= ? \
             RETURNING t.{key} AS k, old.o AS o, {} AS n) \
             {INSERT_ENTRIES} SELECT {version}, ?, ?, ?, up.k, up.o, up.n, 'text' FROM up",
            sets.join(", "),
            self.exact_json(columns),
        ))
    }

    /// The per-session scratch table an apply batch journals through where it can neither write and
    /// journal in one statement nor read the journal by key range while writing: `[drop, create]`
    /// of a table of keys (`k`) and old values (`o`, as the journal holds them). MySQL/MariaDB only:
    /// there a statement that reads the journal by range while writing takes next-key locks, which
    /// with `--jobs 2` met the other worker's inserts at the range's edge and deadlocked on every
    /// retry (the bench at 100k, with delete-marked entries of earlier runs not yet purged); the
    /// journal is only inserted into, as when the values crossed to the client. TEMPORARY: no
    /// implicit commit, private to the session, never replicated.
    pub(crate) fn journal_scratch(self) -> Option<[String; 2]> {
        (self == Dialect::Mysql).then(|| {
            [
                format!("DROP TEMPORARY TABLE IF EXISTS {SCRATCH}"),
                format!(
                    "CREATE TEMPORARY TABLE {SCRATCH} (k BIGINT NOT NULL PRIMARY KEY, \
                     o TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL)"
                ),
            ]
        })
    }
}
