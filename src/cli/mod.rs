//! The command line: `args` (what clap parses), `commands` (one function per command, calling the
//! library), `output` (stderr, redaction, the error line); `main` ties them together.

mod args;
mod commands;
pub(crate) mod demo;
mod init;
mod output;
pub(crate) mod report;
pub(crate) mod scaffold;
/// Where the database is: `--database-url`, `DATABASE_URL`, or the app's `.env`.
pub(crate) mod target;
mod testing;
mod watching;
pub(crate) mod when;

pub use args::command;

/// The whole program: returns the process exit code.
pub fn main(catalog: crate::registry::Catalog) -> i32 {
    output::install_panic_hook();
    output::remember_secrets();
    let cli = match args::parse(&catalog) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    output::init_logging(cli.log_format);
    crate::signals::install();
    match commands::run(&cli, catalog).and_then(|text| output::print(&text)) {
        Ok(()) => 0,
        Err(e) => {
            output::error_line(&e.to_string());
            e.exit_code()
        }
    }
}
