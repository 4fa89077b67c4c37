//! UPDATE-shaped test migration over a table holding every column type of each dialect
//! (`exact_values`, created by `tests/update_exact.rs`): each column gets a new value of its own type,
//! and revert must put back every old one exactly (30-digit decimals, NaN, microseconds and zones,
//! blob bytes, arrays, NULL vs empty, trailing spaces).

use crate::db::{DbResult, Dialect, Tx};
use crate::kit::update::UpdateBackfill;
use crate::migration::{Context, DataMigration, Key, KeyRange, Plan, Shape};

/// One UPDATE-shaped migration per dialect, since the column types differ.
pub struct PerDialect {
    postgres: UpdateBackfill,
    mysql: UpdateBackfill,
    sqlite: UpdateBackfill,
}

impl PerDialect {
    fn pick(&self, d: Dialect) -> &UpdateBackfill {
        match d {
            Dialect::Postgres => &self.postgres,
            Dialect::Mysql => &self.mysql,
            Dialect::Sqlite => &self.sqlite,
        }
    }
}

impl DataMigration for PerDialect {
    fn shape(&self) -> Shape<'_> {
        Shape::Update
    }
    fn key(&self) -> Key {
        self.sqlite.key()
    }
    fn plan(&self, tx: &mut dyn Tx, ctx: &Context, samples: usize) -> DbResult<Plan> {
        self.pick(tx.dialect()).plan(tx, ctx, samples)
    }
    fn apply(&self, tx: &mut dyn Tx, ctx: &Context, range: KeyRange) -> DbResult<u64> {
        self.pick(tx.dialect()).apply(tx, ctx, range)
    }
}

pub static MIGRATION: PerDialect = PerDialect {
    postgres: UpdateBackfill {
        table: "exact_values",
        key: "id",
        columns: &[
            "num", "dnum", "big", "mon", "ts", "tstz", "tm", "dt", "iv", "js", "jb", "bin", "u",
            "b", "e", "arr", "tarr", "tx", "vc", "ne",
        ],
        values: &[
            "t.num + 1",
            "t.dnum * 2",
            "t.big - 1",
            "t.mon + CAST('0.01' AS money)",
            "t.ts + interval '1 day'",
            "t.tstz + interval '1 day'",
            "t.tm + interval '1 second'",
            "t.dt + 1",
            "t.iv * 2",
            "CAST('{\"b\": 2,  \"a\": [1, 2.50]}' AS json)",
            "t.jb || CAST('{\"x\": 1.10}' AS jsonb)",
            "t.bin || CAST('\\x00ff' AS bytea)",
            "CAST('00000000-0000-4000-8000-00000000000a' AS uuid)",
            "NOT t.b",
            "CAST('sad' AS exact_mood)",
            "array_append(t.arr, 4)",
            "array_append(t.tarr, 'a \"b\", c')",
            "t.tx || '  '",
            "upper(t.vc)",
            "CASE WHEN t.ne IS NULL THEN '' END",
        ],
        only: None,
        skip: None,
    },
    mysql: UpdateBackfill {
        table: "exact_values",
        key: "id",
        columns: &[
            "num", "big", "ubig", "dbl", "ts", "dtm", "tm", "dt", "yr", "js", "bl", "vb", "u", "b",
            "e", "st", "tx", "lat", "ne",
        ],
        values: &[
            "t.num + 1",
            "t.big - 1",
            "t.ubig - 1",
            "t.dbl * 3",
            "t.ts + INTERVAL 1 DAY",
            "t.dtm + INTERVAL 1 DAY",
            "ADDTIME(t.tm, '00:00:01')",
            "t.dt + INTERVAL 1 DAY",
            "t.yr + 1",
            "'{\"b\": 2,  \"a\": [1, 2.50]}'",
            "CONCAT(t.bl, UNHEX('00FF'))",
            "UNHEX('FF00FE')",
            "'00000000-0000-4000-8000-00000000000a'",
            "NOT t.b",
            "'sad'",
            "'a,c'",
            "CONCAT(t.tx, '  ')",
            "UPPER(t.lat)",
            "CASE WHEN t.ne IS NULL THEN '' END",
        ],
        only: None,
        skip: None,
    },
    sqlite: UpdateBackfill {
        table: "exact_values",
        key: "id",
        columns: &["num", "big", "r", "ts", "js", "bl", "anyv", "b", "tx", "ne"],
        values: &[
            "t.num * 2",
            "t.big - 1",
            "t.r * 3",
            "datetime(t.ts, '+1 day')",
            "json_set(t.js, '$.x', 1)",
            "x'00ff10'",
            "'x'",
            "NOT t.b",
            "t.tx || '  '",
            "CASE WHEN t.ne IS NULL THEN '' END",
        ],
        only: None,
        skip: None,
    },
};
