//! One error type for the whole tool. Every variant carries a single-line message that says what went
//! wrong and what to do; the variant decides the documented exit code.

use crate::db::DbError;

/// Why a command failed: one line for the operator, and the exit code ([`Error::exit_code`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags, bad URL, bad file: the operator must fix the invocation. Exit 2.
    #[error("{0}")]
    Usage(String),
    /// Something failed while running (server gone, SQL error). Exit 1.
    #[error("{0}")]
    Runtime(String),
    /// `verify` found problems; each is one line. Exit 3.
    #[error("verify found {} problem(s)", .0.len())]
    Inconsistent(Vec<String>),
    /// The ledger itself is not as this binary expects (a row in an unknown state, a missing column).
    /// Exit 3, like `verify`'s findings; `verify` lists it as a problem.
    #[error("{0}")]
    Ledger(String),
    /// Another runner holds the lock. Exit 4.
    #[error("{0}")]
    Busy(String),
    /// Refused for safety (checksum drift, plan changed, edited rows). Exit 5.
    #[error("{0}")]
    Refused(String),
    /// Stopped by a signal after committing the current batch. Exit 128 + signal.
    /// (Also before any batch ran, waiting for the lock: the message claims no committed batch.)
    #[error(
        "interrupted by signal {0}; what it committed stays, rerun the same command to resume"
    )]
    Interrupted(i32),
    /// [`Error::Interrupted`] as apply and revert report it, with what this process committed
    /// (`committed`, see `crate::engine::progress::Tally`). Exit 128 + signal.
    #[error(
        "interrupted by {}: {committed}; rerun the same command to resume",
        signal_name(*.signal)
    )]
    Stopped {
        /// The signal's number.
        signal: i32,
        /// What this process committed before it stopped.
        committed: String,
    },
    /// Stopped at a checkpoint because it was asked to: by `backfill cancel` (`cancelled`), or by the
    /// end of its window or budget (`--window`, `--run-for`, `--until`, `--limit`). Its committed
    /// batches stay; rerunning resumes. Exit 6.
    #[error("{message}")]
    OnRequest {
        /// Stopped by `backfill cancel` (not by a window or budget).
        cancelled: bool,
        /// What stopped it and what to do next.
        message: String,
    },
    /// An error about the database, with where its setting came from (`origin`: `--database-url`,
    /// `DATABASE_URL`, a line of the `.env`) in place of the words the drivers use for it
    /// (`crate::db::URL_WORDS`): the operator fixes the right place. The inner error's exit code.
    #[error("{}", .error.to_string().replace(crate::db::URL_WORDS, .origin))]
    Located {
        /// Where the setting came from, e.g. `--database-url`.
        origin: String,
        /// The error itself.
        error: Box<Error>,
    },
}

/// SIGINT and SIGTERM by name, the way operators know them.
fn signal_name(signal: i32) -> String {
    match signal {
        2 => "SIGINT".to_string(),
        15 => "SIGTERM".to_string(),
        n => format!("signal {n}"),
    }
}

impl Error {
    /// The documented exit code: 1 runtime, 2 usage, 3 inconsistent, 4 busy, 5 refused, 6 stopped
    /// on request, 128 + signal when interrupted.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Runtime(_) => 1,
            Error::Usage(_) => 2,
            Error::Inconsistent(_) | Error::Ledger(_) => 3,
            Error::Busy(_) => 4,
            Error::Refused(_) => 5,
            Error::OnRequest { .. } => 6,
            Error::Interrupted(sig) | Error::Stopped { signal: sig, .. } => 128 + sig,
            Error::Located { error, .. } => error.exit_code(),
        }
    }

    /// This error, naming `origin` as where the database setting came from (see [`Error::Located`]).
    pub fn located(self, origin: &str) -> Error {
        match self {
            Error::Located { .. } => self,
            error => Error::Located {
                origin: origin.to_string(),
                error: Box::new(error),
            },
        }
    }
}

impl Error {
    /// `message` about a failed database call, with the exit code its kind decides: the operator's
    /// to fix (a wrong password, a missing privilege: exit 2), or a runtime failure (exit 1).
    pub fn from_db(e: &DbError, message: String) -> Error {
        if e.is_config() {
            Error::Usage(message)
        } else {
            Error::Runtime(message)
        }
    }
}

impl From<DbError> for Error {
    fn from(e: DbError) -> Self {
        if e.kind == crate::db::ErrorKind::Interrupted {
            return Error::Interrupted(crate::signals::requested().unwrap_or(15));
        }
        if e.is_config() {
            Error::Usage(e.to_string())
        } else {
            Error::Runtime(e.to_string())
        }
    }
}

/// What the commands and the engine return.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_located_error_names_where_the_url_came_from_and_keeps_its_exit_code() {
        let inner = Error::Usage(format!(
            "bad password (check it in {})",
            crate::db::URL_WORDS
        ));
        let err = inner.located("DB_PASSWORD in /srv/app/.env");
        assert_eq!(
            err.to_string(),
            "bad password (check it in DB_PASSWORD in /srv/app/.env)"
        );
        assert_eq!(err.exit_code(), 2);
        // The first origin stays: it is where the setting came from.
        assert!(err
            .located("--database-url")
            .to_string()
            .contains("/srv/app/.env"));
    }
}
