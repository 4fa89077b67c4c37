//! `cargo package`: the published crates hold every file their builds read (the migrations build.rs
//! registers, the ledger schema refinery embeds, the files `include_str!` compiles in) and nothing
//! else, none of the test suite. Only the file lists (a second); `make package` runs the verifying
//! build.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What `cargo package --list` puts in `package`'s crate file.
fn listed(package: &str) -> BTreeSet<String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["package", "--list", "--allow-dirty", "-p", package])
        .current_dir(ROOT)
        .output()
        .expect("run cargo package --list");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cargo package --list: {stderr}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// The files cargo writes into every crate file itself.
fn cargo_own(name: &str) -> bool {
    [
        "Cargo.toml",
        "Cargo.toml.orig",
        "Cargo.lock",
        ".cargo_vcs_info.json",
    ]
    .contains(&name)
}

/// Every file under `dir` (relative to the crate), as paths relative to the crate.
fn files_under(dir: &str, keep: impl Fn(&Path) -> bool + Copy) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![Path::new(ROOT).join(dir)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if keep(&path) {
                found.push(relative(&path));
            }
        }
    }
    found
}

fn relative(path: &Path) -> String {
    let root = std::fs::canonicalize(ROOT).expect("the crate's folder");
    let path = std::fs::canonicalize(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path.strip_prefix(&root)
        .unwrap_or_else(|_| panic!("{} is outside the crate", path.display()))
        .to_string_lossy()
        .into_owned()
}

fn is_rust(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "rs")
}

/// The string arguments of every `macro!("…")` call in `source`.
fn macro_paths<'a>(source: &'a str, call: &str) -> Vec<&'a str> {
    source
        .split(call)
        .skip(1)
        .filter_map(|rest| rest.split_once("\")").map(|(path, _)| path))
        .collect()
}

/// What backfill's build reads: its build script, its sources, the migrations build.rs registers
/// (the examples compile in with the testkit feature an app's tests turn on), the ledger schema
/// refinery embeds, and every file a source includes.
fn backfill_needs() -> BTreeSet<String> {
    let mut needed: BTreeSet<String> = ["build.rs", "README.md"].map(String::from).into();
    needed.extend(files_under("data_migrations", is_rust));
    needed.extend(files_under("examples/data_migrations", is_rust));
    for source in files_under("src", is_rust) {
        let text = std::fs::read_to_string(Path::new(ROOT).join(&source)).expect("read");
        let folder = Path::new(ROOT).join(&source).parent().map(PathBuf::from);
        for included in macro_paths(&text, "include_str!(\"") {
            let folder = folder.as_ref().expect("a source's folder");
            needed.insert(relative(&folder.join(included)));
        }
        for dir in macro_paths(&text, "embed_migrations!(\"") {
            needed.extend(files_under(dir, |_| true));
        }
        needed.insert(source);
    }
    needed
}

#[test]
fn backfill_packages_exactly_what_its_build_reads() {
    let needed = backfill_needs();
    for must in [
        "data_migrations/V202611230001__competency_versions.rs",
        "schema/ledger/postgres/V1__ledger.sql",
        "schema/app/sqlite/app.sql",
        "src/cli/init/Cargo.toml.in",
    ] {
        assert!(needed.contains(must), "the scan missed {must}");
    }
    let listed = listed("backfill");
    let missing: Vec<&String> = needed.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "not packaged, yet the build reads: {missing:?}"
    );
    let extra: Vec<&String> = listed
        .iter()
        .filter(|f| !needed.contains(*f) && !cargo_own(f))
        .collect();
    assert!(extra.is_empty(), "packaged, yet no build reads: {extra:?}");
}

#[test]
fn backfill_build_packages_its_sources() {
    let listed = listed("backfill-build");
    let sources = files_under("backfill-build/src", is_rust);
    assert!(!sources.is_empty());
    for source in sources {
        let inside = source.trim_start_matches("backfill-build/");
        assert!(listed.contains(inside), "{inside} not packaged: {listed:?}");
    }
    assert!(
        listed.iter().all(|f| f.starts_with("src/") || cargo_own(f)),
        "{listed:?}"
    );
}
