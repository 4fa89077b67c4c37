//! The benchmark harness runs end to end at a tiny size and prints its tables. Timings are never
//! asserted: they depend on the machine and on whatever else the database servers are doing.

use std::process::Command;

#[test]
fn bench_runs_at_a_tiny_size_and_prints_the_table() {
    let name = format!("bf_bench_smoke_{}", std::process::id());
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "--binary",
            env!("CARGO_BIN_EXE_backfill"),
            "--dialects",
            "sqlite",
            "--db-name",
            &name,
            "--size",
            "300",
            "--runs",
            "2",
            "--sweep",
            "50,5000",
            "--noop-runs",
            "2",
            "--old-way-rows",
            "20",
        ])
        .env_remove("DATABASE_URL")
        .output()
        .expect("run the bench binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    for expected in [
        "## SQLite",
        "| figure | backfill | reference | ratio | target | met |",
        "/ one INSERT…SELECT |",
        "/ one GROUP BY count |",
        "/ one DELETE by marker |",
        "vs the old way",
        "longest batch transaction, apply at the default batching",
        "peak RSS of `backfill`",
        "no-op `apply`",
        "| batch size | batches | apply wall |",
        "| 50 |",
        "| 5000 |",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}\n--- stderr\n{stderr}"
        );
    }
    let db = std::env::temp_dir().join(format!("{name}.db"));
    assert!(!db.exists(), "the bench left {} behind", db.display());
}
