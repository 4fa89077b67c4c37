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

fn main() {
    let dir =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("data_migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut found: BTreeMap<u64, (String, std::path::PathBuf)> = BTreeMap::new();
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut errors = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with('.') || file == "README.md" {
            continue;
        }
        println!("cargo:rerun-if-changed={}", entry.path().display());
        match parse_name(&file) {
            Err(why) => errors.push(format!("data_migrations/{file}: {why}")),
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
    let mut modules = String::new();
    let mut entries = String::new();
    for (version, (name, path)) in &found {
        let source = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let sum = checksum::checksum(&source);
        let module = format!("v{version}__{name}");
        modules.push_str(&format!(
            "#[path = {:?}]\n#[allow(non_snake_case)]\npub mod {module};\n",
            path.display().to_string()
        ));
        entries.push_str(&format!(
            "    Registered {{ version: {version}, name: {name:?}, checksum: {sum:?}, migration: &{module}::MIGRATION }},\n"
        ));
    }
    let generated = format!("{modules}\n/// Every data migration compiled into this binary, in version order.\npub static MIGRATIONS: &[Registered] = &[\n{entries}];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("registry.rs");
    std::fs::write(&out, generated)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
