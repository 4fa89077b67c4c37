//! competency_versions: one `new_embryo` version for every competency that sits on a capability
//! discovered in a scenario and has no version yet, attributed to the lowest such scenario.
//!
//! Replaces the app's `backfill:competency-versions` command, whose dry-run counted a competency once
//! per capability and whose apply took whichever scenario came first.

use crate::version_backfill::VersionBackfill;

pub static MIGRATION: VersionBackfill = VersionBackfill {
    entity: "competencies",
    link: "capability_competencies l JOIN capabilities c ON c.id = l.capability_id",
    link_entity: "l.competency_id",
    link_scenario: "c.discovered_in_scenario_id",
    versions: "competency_versions",
    fk: "competency_id",
};
