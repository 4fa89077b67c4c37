//! scenario_generations.scenario_id: each generation gets the scenario made from it, as the app's
//! `scenario_id` column (2026_02_10_120000, nullable, unique) has expected since it came.
//!
//! It replaces the hand-run `app/Console/Commands/BackfillScenarioGenerationScenarioId.php`. Its
//! rule: only a NULL `scenario_id` is filled, with the lowest `scenarios.id` whose
//! `source_generation_id` is the generation (the old command walked scenarios by ascending id and
//! filled only NULLs, so the lowest won). `updated_at` is left alone, as the command left it.
//!
//! A generation whose lowest scenario another generation already holds is skipped, and the plan
//! counts it with the reason: the simulated import's `updateOrCreate` can hold that scenario, and
//! filling it would break the unique index. The old command died on that unique violation and
//! stopped half done; it never fell back to a later scenario, so neither does this.
//!
//! The journal records each old NULL: `revert` puts back exactly the NULLs it filled.

use crate::kit::update::UpdateBackfill;

pub static MIGRATION: UpdateBackfill = UpdateBackfill {
    table: "scenario_generations",
    key: "id",
    columns: &["scenario_id"],
    values: &["(SELECT MIN(sc.id) FROM scenarios sc WHERE sc.source_generation_id = t.id)"],
    only: Some("t.scenario_id IS NULL"),
    skip: Some((
        "scenario already held by another generation",
        "EXISTS (SELECT 1 FROM scenario_generations o WHERE o.scenario_id = \
         (SELECT MIN(sc.id) FROM scenarios sc WHERE sc.source_generation_id = t.id))",
    )),
};
