//! The backfill binary, as a deploy script runs it: wall time and peak memory.

use anyhow::{bail, Context as _, Result};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Proc {
    pub(crate) wall: f64,
    /// Peak resident set size in KiB, when it could be measured.
    pub(crate) max_rss_kb: Option<f64>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

pub(crate) fn time_tool() -> Option<&'static Path> {
    let p = Path::new("/usr/bin/time");
    p.is_file().then_some(p)
}

/// Runs `backfill ARGS` with DATABASE_URL set; wall time around spawn..exit, peak RSS via
/// `/usr/bin/time -f %M` when present, else by polling VmHWM in /proc.
pub(crate) fn backfill(
    binary: &Path,
    url: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<Proc> {
    let rss_file = std::env::temp_dir().join(format!("bf-bench-rss-{}", std::process::id()));
    let mut cmd = command(binary, url, args, env, &rss_file);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {}", binary.display()))?;
    let pid = child.id();
    let mut hwm: Option<f64> = None;
    let polled = time_tool().is_none();
    // Drain the pipes in threads so a chatty child never blocks.
    let out_thread = drain(child.stdout.take());
    let err_thread = drain(child.stderr.take());
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if polled {
            if let Some(v) = vm_hwm(pid) {
                hwm = Some(hwm.map_or(v, |h: f64| h.max(v)));
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = started.elapsed().as_secs_f64();
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    let max_rss_kb = if polled {
        hwm
    } else {
        std::fs::read_to_string(&rss_file)
            .ok()
            .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()))
    };
    let _ = std::fs::remove_file(&rss_file);
    if !status.success() {
        bail!(
            "`backfill {}` exited with {status}\n--- stdout\n{stdout}--- stderr\n{stderr}",
            args.join(" ")
        );
    }
    Ok(Proc {
        wall,
        max_rss_kb,
        stdout,
        stderr,
    })
}

/// `backfill ARGS` as a deploy script runs it (under `/usr/bin/time` when present, which writes the
/// peak RSS to `rss_file`), its output piped, no test hook or log filter inherited.
fn command(
    binary: &Path,
    url: &str,
    args: &[&str],
    env: &[(&str, &str)],
    rss_file: &Path,
) -> Command {
    let mut cmd = match time_tool() {
        Some(time) => {
            let mut c = Command::new(time);
            c.arg("-f").arg("%M").arg("-o").arg(rss_file).arg(binary);
            c
        }
        None => Command::new(binary),
    };
    cmd.args(args)
        .env("DATABASE_URL", url)
        .env("BACKFILL_OPERATOR", "bench")
        .env_remove("RUST_LOG")
        .env_remove("BACKFILL_TEST_FAIL_AT_BATCH")
        .env_remove("BACKFILL_TEST_ABORT_AT_BATCH")
        .env_remove("BACKFILL_TEST_BATCH_DELAY_MS")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Reads a child's pipe to its end on a thread of its own, so a chatty child never blocks.
fn drain<R: std::io::Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut s);
        }
        s
    })
}

pub(crate) fn vm_hwm(pid: u32) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
