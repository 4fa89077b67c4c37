fn main() {
    std::process::exit(backfill::cli::main());
}
