//! scenario_capabilities: the missing pivot row for every capability discovered in a scenario.
//!
//! Since 2026-01-22 `Capability::booted()` inserts the row (scenario = the capability's
//! `discovered_in_scenario_id`) when a capability is created; capabilities created before have none,
//! and `Step2RoleCompetencyController`, which finds a scenario's competencies through this table,
//! misses them. This writes the hook's own values: role 'target', weight 10, priority 1, no
//! rationale, required level 3, not critical, timestamps now. A capability whose pivot row exists
//! (its values chosen in the app since) is left alone.
//!
//! The pivot has no metadata column, so the keys of the rows inserted are recorded in the ledger;
//! `revert --scenario N` deletes exactly that scenario's, and refuses rows the app edited since.

use backfill::kit::insert::InsertBackfill;
use backfill::kit::migration::{Grouping, Key};

pub static MIGRATION: InsertBackfill = InsertBackfill {
    table: "scenario_capabilities",
    key: "id",
    columns: &[
        "scenario_id",
        "capability_id",
        "strategic_role",
        "strategic_weight",
        "priority",
        "rationale",
        "required_level",
        "is_critical",
    ],
    values: &["s.id", "c.id", "'target'", "10", "1", "NULL", "3", "FALSE"],
    timestamps: true,
    source: "FROM capabilities c JOIN scenarios s ON s.id = c.discovered_in_scenario_id \
             WHERE NOT EXISTS (SELECT 1 FROM scenario_capabilities p \
             WHERE p.scenario_id = s.id AND p.capability_id = c.id)",
    walk: Key {
        table: "capabilities",
        column: "id",
    },
    range: "c.id",
    grouping: Some(Grouping {
        column: "scenario_id",
        label: "scenario",
    }),
};
