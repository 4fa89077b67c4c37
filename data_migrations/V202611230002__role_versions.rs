//! role_versions: one `new_embryo` version for every role used in a scenario that has no version
//! yet, attributed to the lowest scenario that has the role.
//!
//! `roles.description` is encrypted at rest by the app (Laravel's `encrypted` cast, key `APP_KEY`).
//! Decision: the description is copied as stored, ciphertext to ciphertext, byte for byte; this
//! migration never decrypts it and never writes its plaintext. Decrypting would need `APP_KEY` in the
//! deploy environment and would put the text in clear at rest in a second table, which the app chose
//! not to do for the first. The app reads these rows with the same key, so `RoleVersion` must read
//! `description` through the same `encrypted` cast (README: "Encrypted columns").

use crate::version_backfill::VersionBackfill;

pub static MIGRATION: VersionBackfill = VersionBackfill {
    entity: "roles",
    link: "scenario_roles l",
    link_entity: "l.role_id",
    link_scenario: "l.scenario_id",
    versions: "role_versions",
    fk: "role_id",
};
