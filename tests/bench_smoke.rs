//! The benchmark harness runs end to end at a tiny size and prints its tables and plots. Timings are
//! never asserted: they depend on the machine and on whatever else the database servers are doing.

use std::process::Command;

#[test]
fn bench_runs_at_a_tiny_size_and_prints_the_table() {
    let name = format!("bf_bench_smoke_{}", std::process::id());
    let plots = std::env::temp_dir().join(format!("{name}_plots"));
    let _ = std::fs::remove_dir_all(&plots);
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "--binary",
            env!("CARGO_BIN_EXE_backfill"),
            "--dialects",
            "sqlite,postgres",
            "--db-name",
            &name,
            "--sizes",
            "300",
            "--runs",
            "2",
            "--jobs",
            "2",
            "--sweep",
            "50,5000",
            "--sweep-ms",
            "300",
            "--noop-runs",
            "2",
            "--old-way-rows",
            "20",
            "--fixed-batch",
            "50",
            "--plots",
        ])
        .arg(&plots)
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
        "## PostgreSQL",
        "| single statement | time | rows/s | / best | load (1 min) |",
        "**(best)**",
        "per-entity subquery",
        "grouped derived table joined to competencies",
        "| figure | backfill | reference | ratio | target | met | load (1 min) |",
        "(1 job) / best single statement |",
        "--jobs 2` / best single statement |",
        "--jobs 2` / one DELETE by marker |",
        "/ one GROUP BY count |",
        "vs the old way",
        "longest batch transaction at the default batching",
        "peak RSS of `backfill`: apply / apply --jobs 2 / revert / revert --jobs 2",
        "no-op `apply`",
        "| batch size | batches | apply wall |",
        "| longest revert batch | load (1 min) |",
        "| 50 |",
        "| 5000 |",
        "## How cost grows",
        "| PostgreSQL | 300 |",
        "load average (1 min, every 2 s while measuring): ",
        " cores: ",
        // 300 competencies in batches of 50 keys: six batches each way, each one logged and timed.
        "fixed batches (`--batch-size 50`, 1 job): apply 6 batches, median ",
        "median batch at a fixed size | load (1 min) |",
        " (50 keys) | ",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}\n--- stderr\n{stderr}"
        );
    }
    // Every measured row carries the 1-minute load of its own measurements (a number, or a number
    // with its range and a busy flag), not only the dialect's heading.
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            [
                "| `apply ",
                "| `revert ",
                "| `plan ",
                "| one `DELETE`",
                "| no-op `apply`",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .collect();
    assert!(
        rows.len() >= 12,
        "the figure rows of both dialects:\n{stdout}"
    );
    for row in rows {
        let last = row
            .trim_end_matches('|')
            .rsplit('|')
            .next()
            .unwrap_or_default();
        let load: Option<f64> = last.split_whitespace().next().and_then(|n| n.parse().ok());
        assert!(
            matches!(load, Some(l) if l >= 0.0),
            "row without its load average: {row}"
        );
    }
    // SQLite runs --jobs as 1; PostgreSQL runs the parallel path. At 300 keys one worker may take
    // every chunk before the other has connected, so this checks 1 or 2 writers; tests/jobs.rs
    // proves that both workers write where there is enough work to share.
    let pg = stdout
        .split("## PostgreSQL")
        .nth(1)
        .unwrap_or_default()
        .split("## ")
        .next()
        .unwrap_or_default();
    let writers: Option<u32> = pg
        .split_once("`apply --jobs 2` (first run): ")
        .and_then(|(_, rest)| rest.split_once(" worker(s) wrote batches"))
        .and_then(|(n, _)| n.parse().ok());
    assert!(
        matches!(writers, Some(1 | 2)),
        "PostgreSQL ran the parallel apply (1 or 2 workers wrote), got {writers:?}:\n{pg}"
    );
    for file in [
        "rows-per-second.svg",
        "batches-postgresql.svg",
        "batches-sqlite.svg",
    ] {
        let svg = std::fs::read_to_string(plots.join(file))
            .unwrap_or_else(|e| panic!("plot {file} not written: {e}\n{stdout}"));
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{file}");
        assert!(svg.contains("apply"), "{file} has its series labels");
    }
    let _ = std::fs::remove_dir_all(&plots);
    let db = std::env::temp_dir().join(format!("{name}.db"));
    assert!(!db.exists(), "the bench left {} behind", db.display());
}
