//! `backfill init DIR`: a crate of the app's own for its data migrations, depending on backfill
//! (crates.io, a checkout or a git repository), whose binary has every command.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Where the new crate takes backfill (and its build helper) from.
pub(crate) enum Source {
    /// crates.io, this version.
    Registry,
    /// A checkout on disk (`backfill-build/` inside it).
    Path(PathBuf),
    /// A git repository, optionally at a revision.
    Git { url: String, rev: Option<String> },
}

/// The files of a new crate, relative to its folder, and their templates.
const FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("Cargo.toml.in")),
    ("build.rs", include_str!("build.rs.in")),
    ("src/lib.rs", include_str!("lib.rs.in")),
    ("src/main.rs", include_str!("main.rs.in")),
    (
        "data_migrations/README.md",
        include_str!("data_migrations.md.in"),
    ),
    ("schema/README.md", include_str!("schema.md.in")),
    ("schema/postgres.sql", include_str!("postgres.sql.in")),
    ("schema/mysql.sql", include_str!("mysql.sql.in")),
    ("schema/sqlite.sql", include_str!("sqlite.sql.in")),
    ("tests/seed.sql", include_str!("seed.sql.in")),
    ("tests/migrations.rs", include_str!("migrations.rs.in")),
    (".gitignore", include_str!("gitignore.in")),
    ("README.md", include_str!("README.md.in")),
];

/// Creates the crate in `dir` (which must not exist or be empty); returns what to print.
pub(crate) fn create(dir: &Path, source: &Source) -> Result<String> {
    let krate = crate_name(dir)?;
    refuse_non_empty(dir)?;
    let deps = dependencies(source)?;
    let lib = krate.replace('-', "_");
    let mut out = String::new();
    for (file, template) in FILES {
        let text = template
            .replace("__CRATE__", &krate)
            .replace("__LIB__", &lib)
            .replace("__BACKFILL__", &deps[0])
            .replace("__BUILD__", &deps[1])
            .replace("__TESTKIT__", &deps[2]);
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| cannot("create", parent, &e))?;
        }
        std::fs::write(&path, text).map_err(|e| cannot("write", &path, &e))?;
        out.push_str(&format!("created {}\n", path.display()));
    }
    if let Source::Path(checkout) = source {
        // The versions backfill is tested with, rather than whatever is newest today.
        let lock = dir.join("Cargo.lock");
        if std::fs::copy(checkout.join("Cargo.lock"), &lock).is_ok() {
            out.push_str(&format!("created {} (backfill's own)\n", lock.display()));
        }
    }
    out.push_str(&format!(
        "next: cd {}, `cargo run -- new <name>` for a migration, `cargo test` for its test\n",
        dir.display()
    ));
    Ok(out)
}

fn cannot(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::Runtime(format!("cannot {what} {}: {e}", path.display()))
}

/// The package name: the folder's name, which cargo must accept.
fn crate_name(dir: &Path) -> Result<String> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok || name == "backfill" || name == "backfill-build" {
        return Err(Error::Usage(format!(
            "cannot name a crate after the folder `{}`; pick a folder name of letters, digits, - and _, starting with a letter (not backfill itself)",
            dir.display()
        )));
    }
    Ok(name)
}

fn refuse_non_empty(dir: &Path) -> Result<()> {
    let Ok(mut entries) = std::fs::read_dir(dir) else {
        if dir.exists() {
            return Err(Error::Usage(format!(
                "{} exists and is not a folder; pick a new folder",
                dir.display()
            )));
        }
        return Ok(());
    };
    if entries.next().is_some() {
        return Err(Error::Usage(format!(
            "{} is not empty; `init` creates a new crate: pick a new or empty folder",
            dir.display()
        )));
    }
    Ok(())
}

/// The dependency lines for backfill, its build helper, and backfill with its testkit (tests).
fn dependencies(source: &Source) -> Result<[String; 3]> {
    let version = env!("CARGO_PKG_VERSION");
    let (lib, build) = match source {
        Source::Registry => (
            format!("version = \"{version}\""),
            format!("version = \"{version}\""),
        ),
        Source::Path(path) => {
            let root = path
                .canonicalize()
                .ok()
                .filter(|p| p.join("backfill-build/Cargo.toml").is_file());
            let root = root.ok_or_else(|| {
                Error::Usage(format!(
                    "--backfill-path {}: not a backfill checkout (no backfill-build/Cargo.toml in it)",
                    path.display()
                ))
            })?;
            let at = |p: &Path| format!("path = {}", toml_string(&p.display().to_string()));
            (at(&root), at(&root.join("backfill-build")))
        }
        Source::Git { url, rev } => {
            let mut spec = format!("git = {}", toml_string(url));
            if let Some(rev) = rev {
                spec.push_str(&format!(", rev = {}", toml_string(rev)));
            }
            (spec.clone(), spec)
        }
    };
    // Without the default `hr-migrations`: the app's binary and tests carry its migrations only.
    Ok([
        format!("{{ {lib}, default-features = false }}"),
        format!("{{ {build} }}"),
        format!("{{ {lib}, default-features = false, features = [\"testkit\"] }}"),
    ])
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
