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
        let source = std::fs::read_to_string(entry_path(&dir, &file)).expect("read");
        assert!(
            source.contains("UpdateBackfill") && source.contains("t.description"),
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
