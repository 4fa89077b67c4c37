//! The three dialects, and the SQL fragments that differ between them so migrations can stay
//! dialect-neutral.

/// Which SQL a server speaks: what a migration's statements and the driver are chosen by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL and MariaDB.
    Mysql,
    /// SQLite.
    Sqlite,
}

/// SQL fragments that differ between dialects, so migrations can stay dialect-neutral.
impl Dialect {
    /// The names of the base tables in the session's schema (database), in name order.
    pub(crate) fn tables_sql(self) -> &'static str {
        match self {
            Dialect::Postgres => "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
            Dialect::Mysql => "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY 1",
            Dialect::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1",
        }
    }

    /// The column names of `table` (a name `Dialect::tables_sql` returned), in table order.
    pub fn columns_sql(self, table: &str) -> String {
        let table = table.replace('\'', "''");
        match self {
            Dialect::Postgres => format!("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position"),
            Dialect::Mysql => format!("SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{table}' ORDER BY ordinal_position"),
            Dialect::Sqlite => format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
        }
    }

    /// The declared type of `table.column` (names checked to be plain identifiers), one row or none.
    pub(crate) fn column_type_sql(self, table: &str, column: &str) -> String {
        let (table, column) = (table.replace('\'', "''"), column.replace('\'', "''"));
        match self {
            Dialect::Postgres => format!("SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '{table}' AND column_name = '{column}'"),
            Dialect::Mysql => format!("SELECT CAST(data_type AS CHAR) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{table}' AND column_name = '{column}'"),
            Dialect::Sqlite => format!("SELECT type FROM pragma_table_info('{table}') WHERE name = '{column}'"),
        }
    }

    /// Whether a type [`Dialect::column_type_sql`] returned holds integers (SQLite: its INTEGER
    /// affinity, any declared type containing INT).
    pub(crate) fn is_integer_type(self, ty: &str) -> bool {
        let ty = ty.to_ascii_lowercase();
        match self {
            Dialect::Postgres => ["smallint", "integer", "bigint"].contains(&ty.as_str()),
            Dialect::Mysql => {
                ["tinyint", "smallint", "mediumint", "int", "bigint"].contains(&ty.as_str())
            }
            Dialect::Sqlite => ty.contains("int"),
        }
    }

    /// A fresh random UUID v4 per row, as text.
    pub fn uuid_v4(self) -> &'static str {
        match self {
            Dialect::Postgres => "gen_random_uuid()",
            // MariaDB's UUID() is v1; build a v4 from 120 random bits (30 hex digits) by inserting
            // the dashes, the version digit and the variant digit (its 2 free bits from RAND()).
            // One RANDOM_BYTES call per row: six of them cost a measurable share of an apply (BENCHMARKS.md).
            Dialect::Mysql => "LOWER(INSERT(INSERT(INSERT(INSERT(HEX(RANDOM_BYTES(15)), 19, 0, '-'), 16, 0, CONCAT('-', ELT(1 + FLOOR(RAND() * 4), '8', '9', 'a', 'b'))), 13, 0, '-4'), 9, 0, '-'))",
            Dialect::Sqlite => "(lower(hex(randomblob(4)))||'-'||lower(hex(randomblob(2)))||'-4'||substr(lower(hex(randomblob(2))),2)||'-'||substr('89ab',1+(abs(random())%4),1)||substr(lower(hex(randomblob(2))),2)||'-'||lower(hex(randomblob(6))))",
        }
    }

    /// Current UTC time, for `created_at`/`updated_at` columns without a time zone.
    pub fn utc_now(self) -> &'static str {
        match self {
            Dialect::Postgres => "(now() AT TIME ZONE 'UTC')::timestamp(0)",
            Dialect::Mysql => "UTC_TIMESTAMP()",
            Dialect::Sqlite => "strftime('%Y-%m-%d %H:%M:%S','now')",
        }
    }

    /// The server's clock as whole seconds since the Unix epoch: lease times compare on one clock,
    /// the server's, whatever the runners' hosts think the time is.
    pub(crate) fn epoch_now(self) -> &'static str {
        match self {
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS BIGINT)",
            Dialect::Mysql => "UNIX_TIMESTAMP()",
            Dialect::Sqlite => "CAST(strftime('%s','now') AS INTEGER)",
        }
    }

    /// A JSON object built from `(key, sql expression)` pairs; keys must be plain identifiers.
    pub(crate) fn json_object(self, pairs: &[(&str, &str)]) -> String {
        let args: Vec<String> = pairs.iter().map(|(k, v)| format!("'{k}', {v}")).collect();
        let func = match self {
            Dialect::Postgres => "json_build_object",
            Dialect::Mysql => "JSON_OBJECT",
            Dialect::Sqlite => "json_object",
        };
        format!("{func}({})", args.join(", "))
    }

    /// A top-level JSON field as text (numbers as their decimal text); NULL when absent or not JSON.
    pub fn json_text(self, column: &str, key: &str) -> String {
        match self {
            Dialect::Postgres => format!("({column}->>'{key}')"),
            Dialect::Mysql => {
                format!("(CASE WHEN JSON_VALID({column}) THEN JSON_UNQUOTE(JSON_EXTRACT({column}, '$.{key}')) END)")
            }
            Dialect::Sqlite => format!(
                "(CASE WHEN json_valid({column}) THEN CAST(json_extract({column}, '$.{key}') AS TEXT) END)"
            ),
        }
    }

    /// `a` and `b` differ, NULL counting as a value (NULL vs 1 differs, NULL vs NULL does not).
    /// Text compares as bytes, whatever the column's collation: a case-only change or a trimmed
    /// trailing space is a change. PostgreSQL compares the text forms (a json column has no `=`);
    /// callers give `b` already cast to `a`'s type, so equal values of one type print alike.
    pub fn distinct(self, a: &str, b: &str) -> String {
        match self {
            // "C": a nondeterministic (case-insensitive) collation would call 'A' and 'a' equal.
            Dialect::Postgres => format!(
                "(CAST({a} AS TEXT) COLLATE \"C\" IS DISTINCT FROM CAST({b} AS TEXT) COLLATE \"C\")"
            ),
            // Bytes for character strings only (`COLLATION` is `binary` for numbers, dates and
            // blobs): a DECIMAL(10,4) holding 1.2300 equals a computed 1.23.
            Dialect::Mysql => format!(
                "(NOT ({a} <=> {b}) OR (COLLATION({a}) <> 'binary' AND NOT (CAST({a} AS BINARY) <=> CAST({b} AS BINARY))))"
            ),
            Dialect::Sqlite => format!("({a} IS NOT ({b}) COLLATE BINARY)"),
        }
    }

    /// A value as text that names it exactly, for the undo journal: every digit of a decimal,
    /// microseconds and zone of a timestamp, blob bytes, and (SQLite) its storage class.
    /// [`Dialect::from_exact`] turns it back into the same value.
    pub(crate) fn exact_text(self, expr: &str) -> String {
        match self {
            // The type's own output function; its input function reads it back in the same
            // session settings (a timestamptz carries its offset).
            Dialect::Postgres => format!("CAST({expr} AS TEXT)"),
            // Hex of the value's bytes as the server prints it: blobs and any character set.
            Dialect::Mysql => format!("HEX(CAST({expr} AS BINARY))"),
            Dialect::Sqlite => format!(
                "(CASE typeof({expr}) WHEN 'integer' THEN 'i' || ({expr}) WHEN 'real' THEN 'r' || printf('%!.17g', {expr}) \
                 WHEN 'text' THEN 't' || ({expr}) WHEN 'blob' THEN 'b' || hex({expr}) END)"
            ),
        }
    }

    /// The SQL that turns one `Dialect::exact_text` parameter back into its value, and how many
    /// times that parameter must be passed (SQLite reads it once per storage class).
    pub fn from_exact(self) -> (&'static str, usize) {
        match self {
            // An untyped parameter takes the column's type and its input function.
            Dialect::Postgres => ("?", 1),
            Dialect::Mysql => ("UNHEX(?)", 1),
            Dialect::Sqlite => (
                "(CASE substr(?, 1, 1) WHEN 'i' THEN CAST(substr(?, 2) AS INTEGER) WHEN 'r' THEN CAST(substr(?, 2) AS REAL) \
                 WHEN 't' THEN substr(?, 2) WHEN 'b' THEN unhex(substr(?, 2)) END)",
                5,
            ),
        }
    }

    /// An UPDATE of the rows whose keys are the `keys` parameters, setting `columns` to `values`,
    /// expressions over the row `t` as it was before the statement. The values never leave the
    /// server, so nothing is lost on the way, whatever the type.
    pub(crate) fn update_rows(
        self,
        table: &str,
        key: &str,
        columns: &[&str],
        values: &[&str],
        keys: usize,
    ) -> String {
        let list = vec!["?"; keys].join(", ");
        self.update_where(table, key, columns, values, &format!("t.{key} IN ({list})"))
    }

    /// [`Dialect::update_rows`] for the rows `cond`, a condition over `t`, selects.
    pub(crate) fn update_where(
        self,
        table: &str,
        key: &str,
        columns: &[&str],
        values: &[&str],
        cond: &str,
    ) -> String {
        match self {
            // One column: its expression sees the row as it was. Not when the expression names the
            // table (MySQL refuses a subquery over the table it updates; the derived table below
            // is materialized first). A fifth faster than the derived table (BENCHMARKS.md).
            Dialect::Mysql if columns.len() == 1 && !names_table(values[0], table) => {
                format!(
                    "UPDATE {table} t SET t.{} = ({}) WHERE {cond}",
                    columns[0], values[0]
                )
            }
            // MySQL assigns left to right (a later expression would see an earlier column's new
            // value): every value comes from a derived table of the rows as they were.
            Dialect::Mysql => {
                let news: Vec<String> = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| format!("({v}) AS n{i}"))
                    .collect();
                let sets: Vec<String> = columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("t.{c} = s.n{i}"))
                    .collect();
                format!(
                    "UPDATE {table} t JOIN (SELECT t.{key} AS k, {} FROM {table} t WHERE {cond}) s \
                     ON t.{key} = s.k SET {}",
                    news.join(", "),
                    sets.join(", ")
                )
            }
            Dialect::Postgres | Dialect::Sqlite => {
                let sets: Vec<String> = columns
                    .iter()
                    .zip(values)
                    .map(|(c, v)| format!("{c} = ({v})"))
                    .collect();
                format!("UPDATE {table} AS t SET {} WHERE {cond}", sets.join(", "))
            }
        }
    }

    /// A value as a reader would want to see it in a plan (the exact text, where the journal's
    /// form is not readable).
    pub(crate) fn readable_text(self, expr: &str) -> String {
        match self {
            Dialect::Postgres => format!("CAST({expr} AS TEXT)"),
            Dialect::Mysql => format!("CAST({expr} AS CHAR)"),
            Dialect::Sqlite => expr.to_string(),
        }
    }

    /// The declared type of each column of a table (one parameter: the table's name), as `(name,
    /// type)` rows, where an expression must be cast to its column's type to compare as stored
    /// (PostgreSQL: `numeric(10,2)`); `None` where comparing as is already does.
    pub(crate) fn column_types_sql(self) -> Option<&'static str> {
        match self {
            Dialect::Postgres => Some(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute \
                 WHERE attrelid = CAST(CAST(? AS TEXT) AS regclass) AND attnum > 0 AND NOT attisdropped",
            ),
            Dialect::Mysql | Dialect::Sqlite => None,
        }
    }

    /// Locks the rows a SELECT reads until the transaction ends (SQLite's write transaction already
    /// excludes every other writer).
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Dialect::Postgres | Dialect::Mysql => " FOR UPDATE",
            Dialect::Sqlite => "",
        }
    }

    /// The query naming the server's version, for [`Dialect::has_returning`].
    pub(crate) fn version_sql(self) -> &'static str {
        match self {
            Dialect::Postgres | Dialect::Mysql => "SELECT version()",
            Dialect::Sqlite => "SELECT sqlite_version()",
        }
    }

    /// Whether a server of this `version` (what [`Dialect::version_sql`] returned) has
    /// `INSERT … RETURNING`: PostgreSQL always, SQLite from 3.35, MariaDB from 10.5; MySQL has none.
    pub(crate) fn has_returning(self, version: &str) -> bool {
        let release = |text: &str| -> (u32, u32) {
            let mut parts = text
                .split(|c: char| !c.is_ascii_digit())
                .filter(|p| !p.is_empty());
            let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            (next(), next())
        };
        match self {
            Dialect::Postgres => true,
            Dialect::Sqlite => release(version) >= (3, 35),
            Dialect::Mysql => version.contains("MariaDB") && release(version) >= (10, 5),
        }
    }

    /// A date parameter placeholder (`?` typed as DATE where the dialect needs it).
    pub fn date_param(self) -> &'static str {
        match self {
            Dialect::Postgres => "CAST(CAST(? AS TEXT) AS DATE)",
            Dialect::Mysql => "CAST(? AS DATE)",
            Dialect::Sqlite => "?",
        }
    }
}

/// Whether SQL text `expr` may name `table` (any mention, case-insensitively: a false alarm only
/// costs the slower statement).
fn names_table(expr: &str, table: &str) -> bool {
    expr.to_ascii_lowercase()
        .contains(&table.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::Dialect;

    #[test]
    fn returning_by_server_version() {
        assert!(Dialect::Mysql.has_returning("10.11.19-MariaDB-0+deb12u1"));
        assert!(!Dialect::Mysql.has_returning("10.4.34-MariaDB"));
        assert!(!Dialect::Mysql.has_returning("8.0.36"));
        assert!(Dialect::Sqlite.has_returning("3.45.0"));
        assert!(!Dialect::Sqlite.has_returning("3.34.1"));
        assert!(Dialect::Postgres.has_returning("PostgreSQL 15.20"));
    }
}
