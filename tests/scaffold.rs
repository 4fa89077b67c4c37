//! `backfill new`: a migration and its test, one version width, names refused in one line.

mod common;

use common::bin;

fn scaffold_in(dir: &std::path::Path, name: &str) -> common::Run {
    let out = bin()
        .current_dir(dir)
        .args(["new", name])
        .output()
        .expect("run backfill new");
    common::Run::from(out)
}

fn project(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("backfill-scaffold-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data_migrations")).expect("mkdir");
    std::fs::create_dir_all(dir.join("tests")).expect("mkdir");
    dir
}

#[test]
fn new_writes_a_migration_and_its_test_with_twelve_digit_versions() {
    let dir = project("writes");
    scaffold_in(&dir, "fill_levels").expect(0);
    scaffold_in(&dir, "fill_more").expect(0);
    let mut versions = Vec::new();
    for entry in std::fs::read_dir(dir.join("data_migrations")).expect("list") {
        let file = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let version = file
            .strip_prefix('V')
            .and_then(|r| r.split_once("__"))
            .map(|(v, _)| v.to_string())
            .unwrap_or_default();
        assert_eq!(version.len(), 12, "{file}: one width, YYYYMMDDHHMM");
        assert!(version.chars().all(|c| c.is_ascii_digit()), "{file}");
        let test = dir
            .join("tests")
            .join(format!("migration_v{version}_{}", &file[15..]));
        let text =
            std::fs::read_to_string(&test).unwrap_or_else(|e| panic!("{}: {e}", test.display()));
        assert!(text.contains(&format!("exercise({version},")), "{text}");
        let stem = file.trim_end_matches(".rs");
        assert!(text.starts_with(&format!("//! {stem} on")), "{text}");
        let source = std::fs::read_to_string(entry_path(&dir, &file)).expect("read");
        assert!(
            source.contains("use backfill::kit::update::UpdateBackfill")
                && source.contains("t.description"),
            "a no-op template"
        );
        versions.push(version);
    }
    versions.sort();
    versions.dedup();
    assert_eq!(
        versions.len(),
        2,
        "two migrations made the same minute get two versions"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn entry_path(dir: &std::path::Path, file: &str) -> std::path::PathBuf {
    dir.join("data_migrations").join(file)
}

#[test]
fn new_refuses_bad_names_and_duplicates() {
    let dir = project("refuses");
    let line = scaffold_in(&dir, "Bad-Name").one_line_error(2).to_string();
    assert!(line.contains("snake_case"), "{line}");
    scaffold_in(&dir, "once").expect(0);
    let line = scaffold_in(&dir, "once").one_line_error(2).to_string();
    assert!(line.contains("already exists"), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A migration's checksum covers its text, so formatting it after it was applied is drift: every
/// migration here, and what `new` writes, is already as rustfmt leaves it (cargo fmt cannot see
/// `data_migrations/`, which the build script includes by path).
#[test]
fn migrations_and_the_scaffold_are_rustfmt_clean() {
    let dir = project("rustfmt");
    scaffold_in(&dir, "fill_levels").expect(0);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for d in [
        root.join("data_migrations"),
        root.join("examples/data_migrations"),
        dir.join("data_migrations"),
        dir.join("tests"),
    ] {
        for entry in std::fs::read_dir(&d).expect("list") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 4, "{files:?}");
    let out = std::process::Command::new("rustfmt")
        .args(["--check", "--edition", "2021"])
        .args(&files)
        .output()
        .expect("rustfmt comes with the Rust toolchain");
    assert!(
        out.status.success(),
        "run `rustfmt --edition 2021` on these before they are applied:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
