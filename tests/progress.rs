//! Progress (issue 15): under a real pseudo-terminal of 80 columns (`script`), the bar never
//! wraps and shows rows, rows/s and the ETA; an interrupt clears it and the last line says exactly
//! what was committed; without a terminal, one line every few seconds.

mod common;
use common::{seed_generated, Kind, Run, TestDb, V_COMPETENCY};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a terminal would show, as the lines and redraws the program wrote: split at `\r` and `\n`,
/// escape sequences removed.
fn screen_segments(raw: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters… final byte in @..~
            if chars.peek() == Some(&'[') {
                chars.next();
                for f in chars.by_ref() {
                    if ('@'..='~').contains(&f) {
                        break;
                    }
                }
            }
            continue;
        }
        plain.push(c);
    }
    plain
        .split(['\r', '\n'])
        .map(str::to_string)
        .filter(|s| !s.trim().is_empty())
        .collect()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `backfill ARGS` on a pseudo-terminal of 80 columns; the program's pid is written to `pid_file`.
fn on_pty(t: &TestDb, args: &[&str], delay_ms: &str, pid_file: &Path) -> Child {
    let exe = env!("CARGO_BIN_EXE_backfill");
    let inner = format!(
        "echo $$ > {}; stty cols 80 rows 24; exec {} {}",
        shell_quote(&pid_file.display().to_string()),
        shell_quote(exe),
        args.iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Command::new("script")
        .args(["-qfec", &inner, "/dev/null"])
        .env("DATABASE_URL", &t.url)
        .env("BACKFILL_TEST_BATCH_DELAY_MS", delay_ms)
        .env("TERM", "xterm")
        .env("COLUMNS", "80")
        .env("USER", "tester")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) must be installed")
}

fn pid_of(pid_file: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no pid in {}",
            pid_file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join("backfill-tests").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn bar_fits_80_columns_with_rows_rate_and_eta() {
    let t = TestDb::with_app(Kind::Sqlite, "progress_pty");
    seed_generated(&t, 300);
    let d = temp("progress_pty");
    let child = on_pty(&t, &["apply", "--batch-size", "10"], "60", &d.join("pid"));
    let out = child.wait_with_output().unwrap();
    let raw = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{raw}");
    let segments = screen_segments(&raw);
    let bars: Vec<&String> = segments.iter().filter(|s| s.contains("rows/s")).collect();
    assert!(bars.len() >= 3, "no bar drawn:\n{raw:?}");
    for s in &bars {
        assert!(
            s.chars().count() <= 80,
            "{} columns: {s:?}",
            s.chars().count()
        );
    }
    assert!(
        bars.iter()
            .any(|b| b.starts_with(&format!("apply V{V_COMPETENCY} ["))),
        "{bars:#?}"
    );
    assert!(
        bars.iter()
            .any(|b| b.contains("% ") && b.contains(" rows ") && b.contains("ETA ")),
        "{bars:#?}"
    );
    // The bar is cleared at the end: the result lines follow, whole.
    assert!(
        raw.contains("V202611230001__competency_versions: applied"),
        "{raw}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn interrupt_clears_the_bar_and_says_what_was_committed() {
    let t = TestDb::with_app(Kind::Sqlite, "progress_int");
    seed_generated(&t, 300);
    let d = temp("progress_int");
    let child = on_pty(&t, &["apply", "--batch-size", "10"], "80", &d.join("pid"));
    let pid = pid_of(&d.join("pid"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.state(V_COMPETENCY).as_deref() != Some("running")
        || t.ledger_int(V_COMPETENCY, "batches") < 3
    {
        assert!(Instant::now() < deadline, "the apply never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    common::signal(pid, "INT");
    let out = child.wait_with_output().unwrap();
    let raw = String::from_utf8_lossy(&out.stdout).to_string();
    let segments = screen_segments(&raw);
    let last = segments.last().unwrap();
    let rows = t.rows_applied(V_COMPETENCY);
    let batches = t.ledger_int(V_COMPETENCY, "batches");
    assert!(rows > 0, "{raw}");
    assert_eq!(
        last,
        &format!(
            "error: interrupted by SIGINT: apply V{V_COMPETENCY}__competency_versions committed {rows} rows in {batches} batches before it stopped; rerun the same command to resume"
        ),
        "{raw:?}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn without_a_terminal_one_line_every_few_seconds() {
    let t = TestDb::with_app(Kind::Sqlite, "progress_lines");
    seed_generated(&t, 500);
    let started = Instant::now();
    let out = Run::from(
        t.command(&["apply", &V_COMPETENCY.to_string(), "--batch-size", "10"])
            .env("BACKFILL_TEST_BATCH_DELAY_MS", "220")
            .output()
            .unwrap(),
    );
    let took = started.elapsed();
    out.expect(0);
    let lines: Vec<&str> = out.stderr.lines().collect();
    // 50 batches over about 11 s: a line every 5 s, not one per batch.
    let expected = (took.as_secs_f64() / 5.0).floor() as usize;
    assert!(
        !lines.is_empty() && lines.len() <= expected.max(1),
        "{} lines in {took:?}:\n{}",
        lines.len(),
        out.stderr
    );
    for l in &lines {
        assert!(
            l.starts_with(&format!("apply V{V_COMPETENCY}__competency_versions: "))
                && l.contains("rows/s")
                && l.contains("ETA"),
            "{l}"
        );
    }
    let quiet = TestDb::with_app(Kind::Sqlite, "progress_quiet");
    seed_generated(&quiet, 100);
    let q = Run::from(
        quiet
            .command(&[
                "apply",
                &V_COMPETENCY.to_string(),
                "--batch-size",
                "10",
                "--quiet",
            ])
            .env("BACKFILL_TEST_BATCH_DELAY_MS", "600")
            .output()
            .unwrap(),
    );
    q.expect(0);
    assert!(q.stderr.is_empty(), "{}", q.stderr);
}
