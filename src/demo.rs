//! `backfill demo`: the whole flow on a generated SQLite database, with the real output of each step.

use crate::db::{self, Session, Target};
use crate::error::{Error, Result};
use crate::inspect;
use crate::report::{self, Format};
use crate::runner::{self, Options, Selection};
use std::path::{Path, PathBuf};

fn demo_path() -> PathBuf {
    std::env::temp_dir().join(format!("backfill-demo-{}.db", std::process::id()))
}

fn step(out: &mut String, command: &str, text: String) {
    out.push_str(&format!("\n$ backfill {command}\n{text}"));
}

pub fn run(keep: bool, format: Format) -> Result<String> {
    let path = demo_path();
    std::fs::File::create(&path).map_err(|e| {
        Error::Runtime(format!(
            "cannot create the demo database {}: {e}",
            path.display()
        ))
    })?;
    let result = walk(&path, format);
    if !keep {
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(format!("{}.backfill-lock", path.display()));
    }
    let mut text = result?;
    if keep {
        text.push_str(&format!(
            "\nkept {}; try: DATABASE_URL=sqlite://{} backfill log\n",
            path.display(),
            path.display()
        ));
    }
    Ok(text)
}

fn walk(path: &Path, f: Format) -> Result<String> {
    let target = Target::parse(&format!("sqlite://{}", path.display()))?;
    let mut session: Box<dyn Session> = db::connect(&target)?;
    let s = session.as_mut();
    crate::fixtures::load_schema(s)?;
    let loaded = crate::fixtures::generate(s, &crate::fixtures::Shape::default())?;
    let opts = Options {
        operator: "demo".into(),
        arguments: "[\"demo\"]".into(),
        ..Options::default()
    };
    let mut out = format!(
        "demo database: {} ({} competencies, {} capabilities, {} links, {} scenarios, {} roles, {} existing versions)\n",
        path.display(),
        loaded.competencies,
        loaded.capabilities,
        loaded.links,
        loaded.scenarios,
        loaded.roles,
        loaded.preexisting_versions
    );
    let version = crate::registry::all().first().map_or(0, |m| m.version);
    let status = |s: &mut dyn Session| -> Result<String> {
        Ok(report::status(
            &target.redacted,
            &inspect::status(s, &opts)?,
            f,
        ))
    };
    step(&mut out, "status", status(s)?);
    step(
        &mut out,
        "plan --samples 2",
        report::plans(
            &runner::plan(
                s,
                None,
                &Options {
                    samples: 2,
                    ..opts.clone()
                },
            )?,
            f,
        ),
    );
    let nothing = "nothing to apply";
    step(
        &mut out,
        "apply",
        report::outcomes(&runner::apply(s, Selection::Pending, &opts)?, f, nothing),
    );
    let problems = inspect::verify(s, true, &opts)?;
    step(
        &mut out,
        "verify --data",
        report::verify(&problems, crate::registry::all().len(), f),
    );
    let reverted = runner::revert(s, version, None, false, &opts)?;
    step(
        &mut out,
        &format!("revert {version}"),
        report::outcomes(&[reverted], f, ""),
    );
    step(&mut out, "status", status(s)?);
    step(
        &mut out,
        "log --format markdown",
        report::log(&crate::ledger::runs(s, None, None)?, Format::Markdown),
    );
    Ok(out)
}
