//! This crate's migrations (the HR app's `data_migrations/` with feature `hr-migrations`, and with
//! feature `testkit` the examples) registered through the same helper an app's `build.rs` calls
//! (`backfill init`).

use std::path::Path;

fn main() {
    let mut migrations = backfill_build::migrations();
    // An app's crate carries its own migrations only: `backfill init` turns this default off.
    if std::env::var_os("CARGO_FEATURE_HR_MIGRATIONS").is_none() {
        migrations = migrations.none();
    }
    // The example migrations (one per shape) are test-only: compiled in with the testkit feature,
    // never run by a deploy's `apply` (only when named).
    if std::env::var_os("CARGO_FEATURE_TESTKIT").is_some() {
        migrations = migrations.examples("examples/data_migrations");
    }
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_TESTKIT");
    migrations.generate();
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    // refinery's embed_migrations! tracks only the ledger files that already exist: a new
    // schema/ledger/<dialect>/V<n>__*.sql must rebuild the drivers too.
    println!("cargo:rerun-if-changed={root}/schema/ledger");
    backfill_commit(Path::new(&root));
}

/// `backfill --version` names the commit it was built from (`-dirty` with uncommitted changes), so a
/// deploy can check it runs the binary it reviewed. The Makefile's value wins; none known: `unknown`.
fn backfill_commit(root: &Path) {
    println!("cargo:rerun-if-env-changed=BACKFILL_GIT_COMMIT");
    if std::env::var_os("BACKFILL_GIT_COMMIT").is_some() {
        return;
    }
    if let Some(commit) = backfill_build::commit::commit(root) {
        println!("cargo:rustc-env=BACKFILL_GIT_COMMIT={commit}");
    }
}
