//! This repository's binary: the HR app's migrations (compiled in from `data_migrations/`) handed to
//! backfill's command line, as an app's own crate hands its own (`backfill init`).
fn main() {
    std::process::exit(backfill::cli::main(backfill::registry::compiled()));
}
