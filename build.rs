//! Discovers `data_migrations/V<version>__<name>.rs` and generates the registry with checksums.
//! A bad file name or a duplicate version fails the build with a message that says which file.

#[path = "src/checksum.rs"]
mod checksum;

use std::collections::BTreeMap;
use std::path::Path;

fn parse_name(file: &str) -> Result<(u64, String), String> {
    let stem = file.strip_suffix(".rs").ok_or("not a .rs file")?;
    let rest = stem.strip_prefix('V').ok_or("name must start with `V`")?;
    let (version, name) = rest
        .split_once("__")
        .ok_or("name must be V<version>__<name>.rs")?;
    let version: u64 = version
        .parse()
        .map_err(|_| "version must be a positive integer".to_string())?;
    if version == 0 || version > i64::MAX as u64 {
        return Err("version must be a positive 64-bit integer".into());
    }
    let snake = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !snake {
        return Err("name must be snake_case (a-z, 0-9, _), starting with a letter".into());
    }
    Ok((version, name.to_string()))
}

/// Every version has this many digits, `YYYYMMDDHHMM` (what `backfill new` writes), so that versions
/// sort by the time they were made, as numbers and as text alike.
const VERSION_DIGITS: usize = 12;

type Found = BTreeMap<u64, (String, std::path::PathBuf)>;

fn main() {
    let root =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .to_path_buf();
    let found = discover(&root.join("data_migrations"), &mut Found::new());
    // The example migrations (one per shape) are test-only: compiled in with the testkit feature,
    // never run by a deploy's `apply` (only when named).
    let mut examples = Found::new();
    if std::env::var_os("CARGO_FEATURE_TESTKIT").is_some() {
        examples = discover(&root.join("examples/data_migrations"), &mut found.clone());
        examples.retain(|v, _| !found.contains_key(v));
    }
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_TESTKIT");
    // refinery's embed_migrations! tracks only the ledger files that already exist: a new
    // schema/ledger/<dialect>/V<n>__*.sql must rebuild the drivers too.
    println!(
        "cargo:rerun-if-changed={}",
        root.join("schema/ledger").display()
    );
    git_commit(&root);
    let mut modules = String::new();
    let production = entries(&found, &mut modules);
    let examples = entries(&examples, &mut modules);
    let generated = format!("{modules}\n/// Every data migration compiled into this binary, in version order.\npub static MIGRATIONS: &[Registered] = &[\n{production}];\n\n/// Test-only example migrations (feature `testkit`).\npub static EXAMPLES: &[Registered] = &[\n{examples}];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("registry.rs");
    std::fs::write(&out, generated)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

/// The migrations in `dir`, added to `found` (which holds those seen before, for duplicates).
fn discover(dir: &Path, found: &mut Found) -> Found {
    let before: Vec<u64> = found.keys().copied().collect();
    println!("cargo:rerun-if-changed={}", dir.display());
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut errors = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with('.') || file == "README.md" {
            continue;
        }
        // An editor's backup (`V….rs.bak`, `V….rs~`) is not a migration: say so once, build on.
        if !file.ends_with(".rs") {
            println!(
                "cargo:warning={}/{file}: not a .rs file, ignored",
                dir.file_name()
                    .map_or_else(String::new, |d| d.to_string_lossy().into_owned())
            );
            continue;
        }
        println!("cargo:rerun-if-changed={}", entry.path().display());
        match parse_name(&file) {
            Err(why) => errors.push(format!("data_migrations/{file}: {why}")),
            Ok((version, _)) if version.to_string().len() != VERSION_DIGITS => errors.push(format!(
                "data_migrations/{file}: version {version} has {} digits; every version has {VERSION_DIGITS} (YYYYMMDDHHMM, as `backfill new` writes them) so that versions sort by date",
                version.to_string().len()
            )),
            Ok((version, name)) => {
                if let Some((other, _)) = found.get(&version) {
                    errors.push(format!("data_migrations/{file}: version {version} is already used by V{version}__{other}.rs"));
                } else {
                    found.insert(version, (name, entry.path()));
                }
            }
        }
    }
    if !errors.is_empty() {
        panic!(
            "\n\nbad data migration file(s):\n  {}\n\n",
            errors.join("\n  ")
        );
    }
    found
        .iter()
        .filter(|(v, _)| !before.contains(v))
        .map(|(v, e)| (*v, e.clone()))
        .collect()
}

/// Module declarations (appended to `modules`) and registry entries for `found`.
fn entries(found: &Found, modules: &mut String) -> String {
    let mut entries = String::new();
    for (version, (name, path)) in found {
        let source = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let sum = checksum::checksum(&source);
        let module = format!("v{version}__{name}");
        modules.push_str(&format!(
            "#[path = {:?}]\n#[allow(non_snake_case)]\npub mod {module};\n",
            path.display().to_string()
        ));
        // What `status` shows: the file relative to the crate, wherever the checkout is.
        let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        let origin = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        entries.push_str(&format!(
            "    Registered {{ version: {version}, name: {name:?}, checksum: {sum:?}, origin: {origin:?}, migration: &{module}::MIGRATION }},\n"
        ));
    }
    entries
}

/// `backfill --version` names the commit it was built from (`-dirty` with uncommitted changes), so a
/// deploy can check it runs the binary it reviewed. The Makefile's value wins; no git: `unknown`.
fn git_commit(root: &Path) {
    println!("cargo:rerun-if-env-changed=BACKFILL_GIT_COMMIT");
    let git = root.join(".git");
    if git.is_dir() {
        println!("cargo:rerun-if-changed={}", git.join("HEAD").display());
        println!("cargo:rerun-if-changed={}", git.join("index").display());
    }
    if std::env::var_os("BACKFILL_GIT_COMMIT").is_some() {
        return;
    }
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    let Some(head) = run(&["rev-parse", "--short=12", "HEAD"]) else {
        return;
    };
    let mut commit = String::from_utf8_lossy(&head.stdout).trim().to_string();
    if run(&["diff", "--quiet", "HEAD", "--"]).is_none() {
        commit.push_str("-dirty");
    }
    println!("cargo:rustc-env=BACKFILL_GIT_COMMIT={commit}");
}
