//! A backfill process watched while it runs: its stderr read line by line as it comes, so a test
//! waits for what the run says (a throttle's reason) instead of sleeping.

use super::Run;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

pub struct Live {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Live {
    pub fn spawn(mut cmd: Command) -> Live {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start backfill");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Live {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits until a stderr line contains `text` (failing the test after `limit`); returns it.
    pub fn wait_for(&mut self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        if let Some(line) = self.seen.iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no stderr line with {text:?} within {limit:?}; stderr so far:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    /// Waits until `n` stderr lines contain `text`: a state that lasts, seen again and again.
    pub fn wait_for_lines(&mut self, text: &str, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.seen.iter().filter(|l| l.contains(text)).count() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "fewer than {n} stderr lines with {text:?} within {limit:?}:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for the process to end (killing it after `limit`): its exit code, stdout, all stderr.
    pub fn finish(mut self, limit: Duration) -> Run {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for backfill") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "backfill did not end within {limit:?}:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr: self.seen.join("\n"),
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What `--throttle-sql` reads in the tests: a flag table; the run is held while it says 1.
pub const HOLD_SQL: &str = "SELECT v FROM hold_flag";

/// Creates the flag, set: a run with `--throttle-sql` [`HOLD_SQL`] waits before its first batch.
pub fn hold(t: &super::TestDb) {
    t.exec("CREATE TABLE hold_flag (v INTEGER NOT NULL)");
    t.exec("INSERT INTO hold_flag (v) VALUES (1)");
}

/// Clears the flag: the held run goes on.
pub fn release(t: &super::TestDb) {
    t.exec("UPDATE hold_flag SET v = 0");
}

/// `apply` of the first HR migration, 10 keys a batch, each batch slowed by `delay_ms` before it
/// commits, held by the flag ([`hold`]) until [`release`], with `extra` flags.
pub fn held_apply(t: &super::TestDb, extra: &[&str], delay_ms: &str) -> Live {
    let v = super::V_COMPETENCY.to_string();
    let mut args = vec!["apply", v.as_str(), "--batch-size", "10"];
    args.extend_from_slice(&["--throttle-sql", HOLD_SQL, "--throttle-every", "100"]);
    args.extend_from_slice(extra);
    let mut cmd = t.command(&args);
    cmd.env("BACKFILL_TEST_BATCH_DELAY_MS", delay_ms);
    Live::spawn(cmd)
}
