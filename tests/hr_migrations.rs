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

/// The INSERT-shaped HR migration V202612060004 (`scenario_capabilities`), whose table has no marker
/// column: the keys it inserts are recorded in the ledger. Checked against an oracle from the raw
/// rows: every capability discovered in a scenario gets its pivot row there with the hook's values,
/// rows the app wrote are untouched, `revert --scenario` deletes exactly that scenario's recorded
/// rows, the edited-row guard holds, and kill -9 mid-apply resumes to exactly the same rows.
mod scenario_capabilities {
    use super::{app_tables, int};
    use crate::common::{seed_generated, Kind, Rng, TestDb};
    use crate::on_every_dialect;
    use std::collections::{BTreeMap, BTreeSet};
    use std::process::Stdio;
    use std::time::Duration;

    const V: i64 = 202612060004;

    #[test]
    fn through_the_testkit() {
        backfill::testkit::exercise(V, backfill::testkit::sample_data);
    }

    /// Every pivot row: (scenario, capability) → id.
    fn pivots(t: &TestDb) -> BTreeMap<(i64, i64), i64> {
        t.rows("SELECT scenario_id, capability_id, id FROM scenario_capabilities")
            .iter()
            .map(|r| {
                (
                    (int(&r[0]).unwrap(), int(&r[1]).unwrap()),
                    int(&r[2]).unwrap(),
                )
            })
            .collect()
    }

    /// The oracle: the (scenario, capability) pairs the backfill must add.
    fn expected(t: &TestDb) -> BTreeSet<(i64, i64)> {
        let present = pivots(t);
        t.rows("SELECT discovered_in_scenario_id, id FROM capabilities")
            .iter()
            .filter_map(|r| Some((int(&r[0])?, int(&r[1])?)))
            .filter(|pair| !present.contains_key(pair))
            .collect()
    }

    /// The ledger's recorded keys of this migration: row key → group.
    fn recorded(t: &TestDb) -> BTreeMap<i64, i64> {
        let sql = format!("SELECT row_key, group_key FROM backfill_inserted WHERE version = {V}");
        t.rows(&sql)
            .iter()
            .map(|r| (int(&r[0]).unwrap(), int(&r[1]).unwrap()))
            .collect()
    }

    /// The rows apply added: pivots now that were not there `before`.
    fn new_rows(t: &TestDb, before: &BTreeMap<(i64, i64), i64>) -> BTreeMap<(i64, i64), i64> {
        let now = pivots(t);
        now.into_iter()
            .filter(|(pair, _)| !before.contains_key(pair))
            .collect()
    }

    /// The recorded keys name exactly the added rows, each with its scenario as its group.
    fn assert_recorded_exactly(t: &TestDb, added: &BTreeMap<(i64, i64), i64>, ctx: &str) {
        let want: BTreeMap<i64, i64> = added.iter().map(|(&(s, _), &id)| (id, s)).collect();
        assert_eq!(recorded(t), want, "{ctx}: recorded keys");
        // A run killed before its first write may have left no ledger row yet.
        let applied = t.state(V).map_or(0, |_| t.rows_applied(V));
        assert_eq!(applied, added.len() as i64, "{ctx}: ledger count");
    }

    fn new_db(kind: Kind, test: &str) -> TestDb {
        let t = TestDb::with_app(kind, &format!("{test}_{}", kind as u8));
        seed_generated(&t, 200);
        t
    }

    fn adds_missing_pivots_with_the_hooks_values(kind: Kind) {
        let t = new_db(kind, "hr_pivot");
        let want = expected(&t);
        let before = pivots(&t);
        assert!(want.len() >= 5 && before.len() >= 5, "fixture too small");
        let dump = app_tables(&t);

        let doc = t
            .run(&["--format", "json", "plan", &V.to_string()])
            .expect(0)
            .json();
        let p = &doc["plans"][0]["plan"];
        assert_eq!(p["total"], want.len() as u64, "{p}");
        let mut per_scenario: BTreeMap<i64, u64> = BTreeMap::new();
        want.iter()
            .for_each(|(s, _)| *per_scenario.entry(*s).or_default() += 1);
        let groups: BTreeMap<i64, u64> = p["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| (g["key"].as_i64().unwrap(), g["count"].as_u64().unwrap()))
            .collect();
        assert_eq!(groups, per_scenario, "plan groups by scenario");

        t.run(&["apply", &V.to_string(), "--batch-size", "7"])
            .expect(0);
        let added = new_rows(&t, &before);
        assert_eq!(added.keys().copied().collect::<BTreeSet<_>>(), want);
        assert_recorded_exactly(&t, &added, "apply");
        let values = t.rows(&format!(
            "SELECT strategic_role, strategic_weight, priority, rationale, required_level, is_critical, \
             position_x, is_fixed, CASE WHEN created_at = updated_at AND created_at IS NOT NULL THEN 1 ELSE 0 END \
             FROM scenario_capabilities WHERE id IN ({})",
            added.values().map(i64::to_string).collect::<Vec<_>>().join(", ")
        ));
        let hook = |r: &Vec<backfill::db::Value>| {
            let text = r[0].as_str().map(str::to_string);
            let ints: Vec<Option<i64>> = r[1..].iter().map(int).collect();
            (text, ints)
        };
        for r in &values {
            let want = vec![
                Some(10),
                Some(1),
                None,
                Some(3),
                Some(0),
                None,
                Some(0),
                Some(1),
            ];
            assert_eq!(hook(r), (Some("target".into()), want), "{r:?}");
        }
        for (pair, id) in &before {
            assert_eq!(
                pivots(&t).get(pair),
                Some(id),
                "the app's row {pair:?} moved"
            );
        }

        let after = app_tables(&t);
        t.run(&["apply", &V.to_string()]).expect(0);
        assert!(app_tables(&t) == after, "a second apply wrote");
        // Older shipped migrations are pending here, which verify reports; none of ours is wrong.
        let verify = t.run(&["verify", "--data"]).stdout.clone();
        assert!(!verify.contains("scenario_capabilities"), "{verify}");

        t.run(&["revert", &V.to_string()]).expect(0);
        assert!(app_tables(&t) == dump, "revert left an app table changed");
        assert!(
            recorded(&t).is_empty(),
            "revert forgets the keys it deleted"
        );
    }

    fn revert_by_scenario_deletes_that_scenarios_recorded_rows(kind: Kind) {
        let t = new_db(kind, "hr_pivot_scn");
        let before = pivots(&t);
        t.run(&["apply", &V.to_string(), "--batch-size", "5"])
            .expect(0);
        let added = new_rows(&t, &before);
        let mut by_count: BTreeMap<i64, usize> = BTreeMap::new();
        added
            .keys()
            .for_each(|(s, _)| *by_count.entry(*s).or_default() += 1);
        let (&scenario, _) = by_count
            .iter()
            .max_by_key(|(_, n)| **n)
            .expect("a scenario");
        // The app also has pivot rows of its own in that scenario (or elsewhere): never touched.
        let theirs: Vec<(i64, i64)> = before.keys().copied().collect();

        let revert = [
            "revert",
            &V.to_string(),
            "--scenario",
            &scenario.to_string(),
        ];
        let out = t.run(&revert).expect(0).stdout.clone();
        assert!(
            out.contains(&format!("deleted {} row", by_count[&scenario])),
            "{out}"
        );
        let left = new_rows(&t, &before);
        let want: BTreeMap<(i64, i64), i64> = added
            .iter()
            .filter(|((s, _), _)| *s != scenario)
            .map(|(k, v)| (*k, *v))
            .collect();
        assert_eq!(left, want, "exactly scenario {scenario}'s rows are gone");
        assert_recorded_left(&t, &want);
        for pair in &theirs {
            assert!(
                pivots(&t).contains_key(pair),
                "the app's row {pair:?} was deleted"
            );
        }

        // The app edits one of ours (Laravel touches updated_at): revert refuses, naming it.
        let (&(_, _), &edited) = want.iter().next().expect("rows left");
        t.exec(&format!(
            "UPDATE scenario_capabilities SET priority = 5, updated_at = '2030-01-01 00:00:00' WHERE id = {edited}"
        ));
        let line = t
            .run(&["revert", &V.to_string()])
            .one_line_error(5)
            .to_string();
        assert!(
            line.contains(&format!("ids: {edited}")) && line.contains("--force"),
            "{line}"
        );
        assert_eq!(new_rows(&t, &before), want, "refusal changed nothing");
        let drift = t.run(&["verify", "--data"]).expect(3).stdout.clone();
        assert!(drift.contains("edited since"), "{drift}");

        // A top-up writes the reverted scenario's rows again, recorded again.
        t.run(&["apply", &V.to_string()]).expect(0);
        let again = new_rows(&t, &before);
        assert_eq!(again.len(), added.len());
        assert_recorded_left(&t, &again);

        t.run(&["revert", &V.to_string(), "--force"]).expect(0);
        assert_eq!(
            pivots(&t),
            before,
            "--force deletes every recorded row, and only those"
        );
        assert!(recorded(&t).is_empty());
    }

    fn assert_recorded_left(t: &TestDb, left: &BTreeMap<(i64, i64), i64>) {
        let want: BTreeMap<i64, i64> = left.iter().map(|(&(s, _), &id)| (id, s)).collect();
        assert_eq!(recorded(t), want, "recorded keys");
    }

    /// kill -9 mid-apply (at a random moment, or between a batch's writes and its commit), then a
    /// rerun: exactly the rows of an uninterrupted run, each recorded once, none recorded that is not
    /// there. Between trials the recorded rows are deleted by hand: the table must then be as before,
    /// so no committed row went unrecorded.
    fn kill_mid_apply_then_resume_exactly(kind: Kind) {
        let t = new_db(kind, "hr_pivot_kill");
        t.create_ledger(); // a kill before the first run made it must still leave it to read
        let before = pivots(&t);
        let want = expected(&t);
        let mut rng = Rng::from_time();
        let seed = rng.0;
        let mut cut = 0;
        for trial in 0..4 {
            let ctx = format!("seed {seed} trial {trial}");
            let mut cmd = t.command(&["apply", &V.to_string(), "--batch-size", "3", "--quiet"]);
            cmd.env("BACKFILL_TEST_BATCH_DELAY_MS", "15")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if trial % 2 == 1 {
                cmd.env("BACKFILL_TEST_ABORT_AT_BATCH", rng.range(2, 6).to_string());
                assert!(
                    cmd.status().expect("run").code().is_none(),
                    "{ctx}: not aborted"
                );
            } else {
                let mut child = cmd.spawn().expect("spawn");
                std::thread::sleep(Duration::from_millis(rng.range(60, 300)));
                let _ = child.kill();
                let _ = child.wait();
            }
            cut += usize::from(t.state(V).as_deref() != Some("applied"));
            let partial = new_rows(&t, &before);
            assert_recorded_exactly(&t, &partial, &format!("{ctx}, after the kill"));
            t.run(&["apply", &V.to_string(), "--batch-size", "4"])
                .expect(0);
            let done = new_rows(&t, &before);
            assert_eq!(done.keys().copied().collect::<BTreeSet<_>>(), want, "{ctx}");
            assert_recorded_exactly(&t, &done, &ctx);
            t.exec(&format!(
                "DELETE FROM scenario_capabilities WHERE id IN (SELECT row_key FROM backfill_inserted WHERE version = {V})"
            ));
            assert_eq!(pivots(&t), before, "{ctx}: a committed row went unrecorded");
            for table in ["backfill_inserted", "backfill_migrations", "backfill_runs"] {
                t.exec(&format!("DELETE FROM {table}"));
            }
        }
        assert!(
            cut >= 2,
            "seed {seed}: only {cut} of 4 attempts were cut mid-run"
        );
    }

    on_every_dialect!(
        adds_missing_pivots_with_the_hooks_values,
        revert_by_scenario_deletes_that_scenarios_recorded_rows,
        kill_mid_apply_then_resume_exactly,
    );
}
