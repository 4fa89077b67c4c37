//! The UPDATE-shaped HR migration V202612060003 (`scenario_generations.scenario_id`): through the
//! testkit, and through the real binary against an oracle computed here from the raw rows: only
//! NULLs are filled, with the lowest scenario made from the generation; a generation whose lowest
//! scenario another one holds stays NULL and is counted as skipped with its reason; revert puts
//! back the NULLs exactly; a second apply writes nothing.

mod common;

use backfill::db::Value;
use common::{seed_generated, Kind, TestDb};
use std::collections::{BTreeMap, BTreeSet};

const V: i64 = 202612060003;
const NAME: &str = "scenario_generation_scenario_ids";
const REASON: &str = "scenario already held by another generation";

#[test]
fn through_the_testkit() {
    backfill::testkit::exercise(V, backfill::testkit::sample_data);
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Null => None,
        other => Some(
            other
                .as_i64()
                .unwrap_or_else(|| panic!("not an id: {other:?}")),
        ),
    }
}

/// Every generation's `scenario_id`, by id.
fn scenario_ids(t: &TestDb) -> BTreeMap<i64, Option<i64>> {
    t.rows("SELECT id, scenario_id FROM scenario_generations ORDER BY id")
        .iter()
        .map(|r| (int(&r[0]).expect("an id"), int(&r[1])))
        .collect()
}

/// The oracle, from the raw rows: (generation → the scenario it should get, generations skipped).
fn expected(t: &TestDb) -> (BTreeMap<i64, i64>, BTreeSet<i64>) {
    let current = scenario_ids(t);
    let held: BTreeSet<i64> = current.values().flatten().copied().collect();
    let mut lowest: BTreeMap<i64, i64> = BTreeMap::new();
    let sources = t.rows("SELECT id, source_generation_id FROM scenarios");
    for row in &sources {
        if let (Some(scenario), Some(generation)) = (int(&row[0]), int(&row[1])) {
            let low = lowest.entry(generation).or_insert(scenario);
            *low = (*low).min(scenario);
        }
    }
    let open = lowest
        .into_iter()
        .filter(|(g, _)| current.get(g) == Some(&None));
    let (skipped, fills): (Vec<_>, Vec<_>) = open.partition(|(_, s)| held.contains(s));
    (
        fills.into_iter().collect(),
        skipped.into_iter().map(|(g, _)| g).collect(),
    )
}

/// Every table but the ledger's, with its rows (the ledger records each run, even an empty one).
fn app_tables(t: &TestDb) -> Vec<String> {
    let mut keep = true;
    let lines = common::dump_all(t).into_iter();
    let kept = lines.filter(|line| {
        if !line.starts_with(' ') {
            keep = !line.starts_with("backfill_");
        }
        keep
    });
    kept.collect()
}

/// This migration's entry in `plan --format json`.
fn plan(t: &TestDb) -> serde_json::Value {
    let doc = t.run(&["--format", "json", "plan"]).expect(0).json();
    let plans = doc["plans"].as_array().expect("plans").clone();
    let ours = plans.into_iter().find(|p| p["name"] == NAME);
    ours.unwrap_or_else(|| panic!("no plan for {NAME}: {doc}"))["plan"].clone()
}

fn fills_lowest_skips_held_and_reverts_exactly(kind: Kind) {
    let t = TestDb::with_app(kind, &format!("hr_gen_{}", kind as u8));
    seed_generated(&t, 200);
    let (fills, skipped) = expected(&t);
    assert!(fills.len() >= 5 && !skipped.is_empty(), "fixture too small");
    let before = scenario_ids(&t);
    let dump = app_tables(&t);

    let p = plan(&t);
    assert_eq!(p["total"], fills.len() as u64, "{p}");
    assert_eq!(p["skipped"], skipped.len() as u64, "{p}");
    assert_eq!(p["skipped_because"], REASON, "{p}");
    let text = t.run(&["plan", &V.to_string()]).expect(0).stdout.clone();
    let said = format!("{} skipped ({REASON})", skipped.len());
    assert!(text.contains(&said), "{text}");

    t.run(&["apply", &V.to_string(), "--batch-size", "7"])
        .expect(0);
    assert_eq!(t.rows_applied(V), fills.len() as i64);
    for (g, now) in scenario_ids(&t) {
        let want = fills.get(&g).copied().or(before[&g]);
        assert_eq!(now, want, "generation {g}");
    }
    for g in &skipped {
        assert_eq!(scenario_ids(&t)[g], None, "conflict {g} stays NULL");
    }

    let after = app_tables(&t);
    t.run(&["apply", &V.to_string()]).expect(0);
    assert!(
        app_tables(&t) == after,
        "a second apply wrote to the app's tables"
    );

    t.run(&["revert", &V.to_string()]).expect(0);
    assert_eq!(scenario_ids(&t), before, "the NULLs are back");
    assert!(app_tables(&t) == dump, "revert left an app table changed");
}

on_every_dialect!(fills_lowest_skips_held_and_reverts_exactly);
