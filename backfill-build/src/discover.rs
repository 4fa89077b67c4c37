//! Finding the migrations in a folder: bad names and taken versions are errors that name the file;
//! anything that is not a `.rs` file (an editor's `V….rs.bak`) is ignored with one warning line.

use crate::name;
use std::path::{Path, PathBuf};

/// One migration file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// `YYYYMMDDHHMM`, from the file name.
    pub version: i64,
    /// The snake_case name after `V<version>__`.
    pub name: String,
    /// The file.
    pub path: PathBuf,
}

/// What a folder holds: its migrations in version order, the files ignored, the errors.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub(crate) migrations: Vec<Migration>,
    pub(crate) ignored: Vec<String>,
    pub(crate) errors: Vec<String>,
}

/// The migrations in `dir` (called `label` in messages), refusing versions already in `taken`.
pub(crate) fn scan(dir: &Path, label: &str, taken: &[Migration]) -> Result<Scan, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "cannot read {}: {e} (create it: it holds the data migrations)",
            dir.display()
        )
    })?;
    let mut scan = Scan::default();
    let mut files: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    for file in files {
        if file.starts_with('.') || file == "README.md" {
            continue;
        }
        if !file.ends_with(".rs") {
            scan.ignored
                .push(format!("{label}/{file}: not a .rs file, ignored"));
            continue;
        }
        match name::parse(&file) {
            Err(why) => scan.errors.push(format!("{label}/{file}: {why}")),
            Ok((version, name)) => {
                let seen = taken.iter().chain(&scan.migrations);
                if let Some(other) = seen.clone().find(|m| m.version == version) {
                    scan.errors.push(format!(
                        "{label}/{file}: version {version} is already used by V{version}__{}.rs",
                        other.name
                    ));
                } else {
                    let path = dir.join(&file);
                    scan.migrations.push(Migration {
                        version,
                        name,
                        path,
                    });
                }
            }
        }
    }
    scan.migrations.sort_by_key(|m| m.version);
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_and_taken_versions_are_errors_and_other_files_are_ignored() {
        let dir = std::env::temp_dir().join(format!("backfill-build-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for file in [
            "V202612011201__later.rs",
            "V202612011200__first.rs",
            "V202612011200__twin.rs",
            "V1__short.rs",
            "V202612011201__later.rs.bak",
            "README.md",
        ] {
            std::fs::write(dir.join(file), "").expect("write");
        }
        let scan = scan(&dir, "data_migrations", &[]).expect("readable");
        let _ = std::fs::remove_dir_all(&dir);
        let found: Vec<_> = scan.migrations.iter().map(|m| m.version).collect();
        assert_eq!(found, [202612011200, 202612011201]);
        assert_eq!(
            scan.ignored,
            ["data_migrations/V202612011201__later.rs.bak: not a .rs file, ignored"]
        );
        assert_eq!(scan.errors.len(), 2, "{:?}", scan.errors);
        assert!(scan.errors[0].starts_with("data_migrations/V1__short.rs: version"));
        assert!(scan.errors[1].contains("already used by V202612011200__first.rs"));
    }
}
