//! role_versions: one `new_embryo` version for every role used in a scenario that has no version
//! yet, attributed to the lowest scenario that has the role.

use crate::version_backfill::VersionBackfill;

pub static MIGRATION: VersionBackfill = VersionBackfill {
    entity: "roles",
    link: "scenario_roles l",
    link_entity: "l.role_id",
    link_scenario: "l.scenario_id",
    versions: "role_versions",
    fk: "role_id",
};
