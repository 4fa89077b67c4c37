//! `backfill demo`: the story of the tool on a throwaway SQLite database, told step by step. Each step
//! says in a line what it does, then runs this very binary as a child process (`$ backfill …`) and
//! shows its short result: sample data, a plan saved for review, an `--expect-plan` refused because
//! the data moved, an apply killed with SIGKILL mid-way and resumed, a one-scenario revert, the audit
//! trail. The output streams as it goes and fits about two screens of 80 columns.

use crate::db::{self, Session, Target, Value};
use crate::engine::planfile::PlanFile;
use crate::error::{Error, Result};
use crate::registry::Registered;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WIDTH: usize = 80;

/// Writes the demo's lines as they happen. A reader that went away (`| head`) ends the output
/// quietly; any other failure to write is an error.
struct Out;

impl Out {
    /// The demo's own words: wrapped lines keep the first's indentation.
    fn line(&self, text: &str) -> Result<()> {
        self.write(text, WIDTH, 0)
    }

    /// A command to paste: never wrapped, however long its path.
    fn command(&self, text: &str) -> Result<()> {
        self.write(text, usize::MAX, 0)
    }

    /// A command's output: wrapped lines indented two more.
    fn output(&self, text: &str) -> Result<()> {
        self.write(text, WIDTH, 2)
    }

    fn write(&self, text: &str, width: usize, hang: usize) -> Result<()> {
        let mut out = std::io::stdout().lock();
        let mut text = wrap(text, width, hang);
        text.push('\n');
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(Error::Runtime(format!(
                "the demo's output could not be written ({e})"
            ))),
        }
    }
}

/// Wraps a line at spaces to `width` columns, continuation lines indented `hang` more than the first.
fn wrap(text: &str, width: usize, hang: usize) -> String {
    let indent = text.len() - text.trim_start().len();
    let more = " ".repeat(indent + hang);
    let mut lines: Vec<String> = Vec::new();
    let mut line = text[..indent].to_string();
    for word in text.split(' ').skip(indent) {
        let used = line.chars().count();
        let fresh = line.trim().is_empty();
        if !fresh && used + 1 + word.chars().count() > width {
            lines.push(std::mem::replace(&mut line, more.clone()));
        } else if !fresh {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines.join("\n")
}

/// A finished child run of this binary.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

struct Demo {
    exe: PathBuf,
    dir: PathBuf,
    url: String,
    out: Out,
    step: usize,
}

impl Demo {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.args(args)
            .current_dir(&self.dir)
            .env("DATABASE_URL", &self.url)
            .env("BACKFILL_OPERATOR", "demo")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("BACKFILL_TEST_") {
                cmd.env_remove(name);
            }
        }
        cmd
    }

    /// A numbered step: what it does, in one line.
    fn step(&mut self, what: &str) -> Result<()> {
        self.step += 1;
        self.out.line("")?;
        self.out.line(&format!("{}. {what}", self.step))
    }

    /// Runs `backfill ARGS`, showing the command line.
    fn run(&self, args: &[&str]) -> Result<Ran> {
        self.out.line(&format!("$ backfill {}", args.join(" ")))?;
        let output = self.command(args).output().map_err(|e| {
            Error::Runtime(format!(
                "the demo could not run {}: {e}",
                self.exe.display()
            ))
        })?;
        Ok(Ran {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Runs `backfill ARGS`, which must succeed, and shows its output (or the lines `keep` picks).
    fn show(&self, args: &[&str], keep: impl Fn(&str) -> bool) -> Result<Ran> {
        let ran = self.run(args)?;
        if ran.code != Some(0) {
            return Err(self.failed(args, &ran));
        }
        for line in ran.stdout.lines().filter(|l| !l.is_empty() && keep(l)) {
            self.out.output(line)?;
        }
        Ok(ran)
    }

    fn failed(&self, args: &[&str], ran: &Ran) -> Error {
        Error::Runtime(format!(
            "demo step `backfill {}` failed unexpectedly (exit {:?}): {}",
            args.join(" "),
            ran.code,
            ran.stderr.trim()
        ))
    }

    fn session(&self) -> Result<Box<dyn Session>> {
        Ok(db::connect(&Target::parse(&self.url)?)?)
    }
}

fn int(s: &mut dyn Session, sql: &str) -> Result<i64> {
    Ok(s.query_scalar(sql, &[])?.as_i64().unwrap_or(0))
}

/// How `backfill` is spelled in the commands to try next: the name alone when it is on PATH,
/// else this binary's path (relative to here when under it, like `target/release/backfill`).
fn spelled(exe: &Path) -> String {
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            dir.join("backfill")
                .canonicalize()
                .is_ok_and(|p| exe.canonicalize().is_ok_and(|e| e == p))
        })
    });
    if on_path {
        return "backfill".into();
    }
    let here = std::env::current_dir().ok();
    match here.as_deref().and_then(|h| exe.strip_prefix(h).ok()) {
        Some(rel) => rel.display().to_string(),
        None => exe.display().to_string(),
    }
}

pub(crate) fn run(keep: bool) -> Result<String> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::Runtime(format!("the demo cannot find its own binary: {e}")))?;
    let dir = std::env::temp_dir().join(format!("backfill-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| {
        Error::Runtime(format!(
            "cannot create the demo folder {}: {e}",
            dir.display()
        ))
    })?;
    let db = dir.join("app.db");
    let mut demo = Demo {
        url: format!("sqlite://{}", db.display()),
        exe,
        dir: dir.clone(),
        out: Out,
        step: 0,
    };
    let told = tell(&mut demo);
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    told?;
    let out = &demo.out;
    let me = spelled(&demo.exe);
    out.line("")?;
    if keep {
        out.line(&format!("Kept {}. Try next:", db.display()))?;
        out.command(&format!("  export DATABASE_URL={}", demo.url))?;
        out.command(&format!("  {me} status"))?;
        out.command(&format!("  {me} plan 202611230001 --samples 3"))?;
        out.command(&format!("  {me} log --format markdown"))?;
    } else {
        // Commands on lines of their own: a wrapped command cannot be pasted.
        out.line("The demo database is deleted. To keep one and try commands on it:")?;
        out.command(&format!("  {me} demo --keep"))?;
        out.line("To load the same data into an empty database of yours:")?;
        out.command(&format!("  {me} sample-data --database-url URL"))?;
    }
    Ok(String::new())
}

fn tell(d: &mut Demo) -> Result<()> {
    let all = crate::registry::all();
    let Some(first) = all.first() else {
        return Err(Error::Runtime(
            "the demo needs the shipped competency_versions migration".into(),
        ));
    };
    introduce(d, all)?;

    d.step("Load sample data: the app's tables and 300 competencies.")?;
    d.show(&["sample-data", "--size", "300"], |_| true)?;

    // Every command names the first migration: the story stays two screens however many ship.
    let v = first.version.to_string();
    d.step("Plan: what apply would write per scenario, read-only, saved for review.")?;
    let plan = ["plan", &v, "--samples", "0", "--out", "plan.json"];
    show_plan(d, &plan, Some(first.version))?;

    let mut s = d.session()?;
    refused_apply(d, s.as_mut(), &v)?;

    d.step("Review again; apply in batches of 20 keys, and kill -9 it mid-way.")?;
    show_plan(d, &plan, None)?;
    let planned = crate::engine::planfile::read(&d.dir.join("plan.json"))?;
    killed_apply(d, s.as_mut(), first.version)?;

    resume(d, s.as_mut(), &planned, first.version)?;
    revert_one_scenario(d, s.as_mut(), &planned, first.version)?;

    d.step("The audit trail: each plan, apply and revert, who ran it, what it did.")?;
    d.show(&["log", &first.version.to_string()], |_| true)?;
    Ok(())
}

/// What the demo is about: the app, and every migration compiled into this binary (a bare
/// `apply` runs them all), listed from the registry so the prose stays true as migrations ship.
fn introduce(d: &mut Demo, all: &[Registered]) -> Result<()> {
    d.out.line(&format!(
        "backfill demo: data migrations step by step on a throwaway SQLite database ({}); each `$ backfill` line runs this binary.",
        d.dir.join("app.db").display()
    ))?;
    d.out.line("")?;
    d.out.line(&format!(
        "The app plans in scenarios (what-if plans); this binary has {} migrations:",
        all.len()
    ))?;
    for m in all {
        d.out.line(&format!(
            "  V{}__{}: {}",
            m.version,
            m.name,
            crate::cli::report::writes(m)
        ))?;
    }
    d.out
        .line("The demo follows the first, whose rows a revert can undo scenario by scenario.")
}

/// The data moves after the review: an apply that expects the reviewed plan is refused.
fn refused_apply(d: &mut Demo, s: &mut dyn Session, version: &str) -> Result<()> {
    let moved = move_the_data(s)?;
    d.step("Before the deploy, the app moves on: a user links one more competency.")?;
    d.out.output(&format!("sql> {moved}"))?;
    let args = ["apply", version, "--expect-plan", "plan.json"];
    let ran = d.run(&args)?;
    if ran.code != Some(5) {
        return Err(d.failed(&args, &ran));
    }
    for line in ran.stderr.lines().filter(|l| !l.is_empty()) {
        d.out.output(line)?;
    }
    d.out
        .line("(exit 5: refused, nothing written: the data is not what was reviewed)")
}

/// `FROM competency_versions WHERE` the rows migration `version` wrote.
fn marked(s: &dyn Session, version: i64) -> String {
    format!(
        "FROM competency_versions WHERE {} = '{}'",
        s.dialect().json_text("metadata", "migration"),
        version
    )
}

/// After the kill: apply again, and check that what was written is what was planned.
fn resume(d: &mut Demo, s: &mut dyn Session, planned: &PlanFile, version: i64) -> Result<()> {
    let total = planned
        .migrations
        .iter()
        .find(|m| m.version == version)
        .map_or(0, |m| m.total);
    d.step("Apply again: the dead runner's work resumes from its last checkpoint.")?;
    d.show(&["apply", &version.to_string()], |_| true)?;
    let marked = marked(s, version);
    let rows = int(s, &format!("SELECT COUNT(*) {marked}"))?;
    let distinct = int(s, &format!("SELECT COUNT(DISTINCT competency_id) {marked}"))?;
    d.out.line(&format!(
        "check: {rows} competency versions for {distinct} competencies, as planned: {total}"
    ))?;
    d.show(&["verify", "--data"], |_| true)?;
    Ok(())
}

/// Revert the scenario with the most rows, and check that the others' rows remain.
fn revert_one_scenario(
    d: &mut Demo,
    s: &mut dyn Session,
    planned: &PlanFile,
    version: i64,
) -> Result<()> {
    let (scenario, count) = planned
        .migrations
        .iter()
        .find(|m| m.version == version)
        .and_then(|m| m.counts.iter().max_by_key(|(k, c)| (**c, -**k)))
        .map(|(k, c)| (*k, *c))
        .unwrap_or((1, 0));
    d.step(&format!(
        "Revert one scenario: delete only the {count} rows written for scenario {scenario}."
    ))?;
    d.show(
        &[
            "revert",
            &version.to_string(),
            "--scenario",
            &scenario.to_string(),
        ],
        |_| true,
    )?;
    let sql = format!("SELECT COUNT(*) {}", marked(s, version));
    let left = int(s, &sql)?;
    d.out
        .line(&format!("check: {left} rows of the other scenarios remain"))
}

/// A plan's output: each migration's head line, and for the migration `grid` the first row of its
/// grid of groups (scenario ids over row counts).
fn show_plan(d: &Demo, args: &[&str], grid: Option<i64>) -> Result<()> {
    let ran = d.run(args)?;
    if ran.code != Some(0) {
        return Err(d.failed(args, &ran));
    }
    let mut groups = 0;
    let mut groups_too = false;
    for line in ran.stdout.lines().filter(|l| !l.is_empty()) {
        if line.starts_with(' ') {
            groups += 1;
            match groups {
                1 | 2 if groups_too => d.out.output(line)?,
                3 if groups_too => d.out.output("  …")?,
                _ => {}
            }
        } else {
            groups = 0;
            groups_too = grid.is_some_and(|v| line.starts_with(&format!("V{v}__")));
            d.out.output(line)?;
        }
    }
    Ok(())
}

/// Links a competency that had no link to a capability discovered in a scenario: one more row for
/// the competency backfill. Returns the statement, as shown.
fn move_the_data(s: &mut dyn Session) -> Result<String> {
    // Not eligible yet: on no capability discovered in a scenario, and without a version.
    let competency = int(
        s,
        "SELECT MIN(id) FROM competencies c WHERE NOT EXISTS \
         (SELECT 1 FROM capability_competencies l JOIN capabilities p ON p.id = l.capability_id \
          WHERE l.competency_id = c.id AND p.discovered_in_scenario_id IS NOT NULL) AND NOT EXISTS \
         (SELECT 1 FROM competency_versions v WHERE v.competency_id = c.id)",
    )?;
    let row = s.query(
        "SELECT id, discovered_in_scenario_id FROM capabilities \
         WHERE discovered_in_scenario_id IS NOT NULL ORDER BY id LIMIT 1",
        &[],
    )?;
    let (capability, scenario) = match row.first().map(|r| (r[0].as_i64(), r[1].as_i64())) {
        Some((Some(c), Some(s))) if competency > 0 => (c, s),
        _ => {
            return Err(Error::Runtime(
                "the demo data has no unlinked competency to link".into(),
            ))
        }
    };
    let sql = format!(
        "INSERT INTO capability_competencies (scenario_id, capability_id, competency_id, required_level, created_at, updated_at) \
         VALUES ({scenario}, {capability}, {competency}, 3, {now}, {now})",
        now = "'2026-11-30 09:00:00'"
    );
    s.execute(&sql, &[])?;
    Ok(format!(
        "INSERT INTO capability_competencies (scenario_id, capability_id, competency_id) VALUES ({scenario}, {capability}, {competency})"
    ))
}

/// Starts `apply` paced to about six batches a second and kills it (SIGKILL) once three batches of
/// `version` have committed; shows what the ledger and the table hold then.
fn killed_apply(d: &Demo, s: &mut dyn Session, version: i64) -> Result<()> {
    let v = version.to_string();
    let args = [
        "apply",
        &v,
        "--expect-plan",
        "plan.json",
        "--batch-size",
        "20",
        "--pause-ms",
        "150",
    ];
    // Two lines, as a shell continues one: a command wrapped at 80 columns could not be pasted.
    let (head, pace) = args.split_at(4);
    d.out
        .command(&format!("$ backfill {} \\", head.join(" ")))?;
    d.out.command(&format!("    {}", pace.join(" ")))?;
    let mut child = d
        .command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::Runtime(format!("the demo could not run {}: {e}", d.exe.display())))?;
    let ledger = format!(
        "SELECT batches, rows_applied, state FROM backfill_migrations WHERE version = {version}"
    );
    let seen = kill_after_three_batches(&mut child, s, &ledger)?;
    // The ledger as the kill left it: read again, the last batch may have committed meanwhile.
    let row = s.query(&ledger, &[])?.into_iter().next().unwrap_or(seen);
    let text = |v: &Value| match v {
        Value::Text(t) => t.clone(),
        other => other.as_i64().map_or_else(String::new, |n| n.to_string()),
    };
    let sql = format!("SELECT COUNT(*) {}", marked(s, version));
    let marked = int(s, &sql)?;
    d.out.line(&format!(
        "killed -9 after {} batches: the ledger says {}, {} rows; the table has {marked}",
        text(&row[0]),
        text(&row[2]),
        text(&row[1]),
    ))
}

/// Waits until the ledger says the apply `child` committed three batches, then kills it (-9): the
/// ledger row it read then.
fn kill_after_three_batches(
    child: &mut std::process::Child,
    s: &mut dyn Session,
    ledger: &str,
) -> Result<crate::db::Row> {
    let started = Instant::now();
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Error::Runtime(e.to_string()))?
        {
            return Err(Error::Runtime(format!(
                "the demo's apply ended ({status}) before it could be killed"
            )));
        }
        let row = s.query(ledger, &[]).ok().and_then(|r| r.into_iter().next());
        if let Some(row) = row.filter(|r| r[0].as_i64().unwrap_or(0) >= 3) {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(row);
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Runtime(
                "the demo's apply made no progress in 60 s".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
