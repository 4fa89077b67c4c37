//! What the CLI writes besides a command's result: stderr (logs, the panic hook, the one error
//! line), always redacted, and stdout's result; the command line as the audit table records it.

use crate::cli::args::LogFormat;
use crate::db;
use crate::error::{Error, Result};
use std::io::Write;

/// Every panic is one redacted error line, asking for a report.
pub(crate) fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(Stderr, "error: internal error, please report it: {message}");
    }));
}

/// Logs go to [`Stderr`], redacted; `RUST_LOG` sets their level.
pub(crate) fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(|| Stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.without_time().with_target(false).try_init(),
    };
}

/// The flags whose value is a URL (and may hold a password).
const URL_FLAGS: [&str; 2] = ["--database-url", "--replica-url"];

/// Flags whose whole value is a secret: a webhook's URL is its token, a command may carry one.
const SECRET_FLAGS: [&str; 2] = ["--notify-url", "--notify-cmd"];

/// `--database-url=URL` and the like: the flag and the URL.
fn url_flag(arg: &str) -> Option<(&str, &str)> {
    let (flag, url) = arg.split_once('=')?;
    URL_FLAGS.contains(&flag).then_some((flag, url))
}

/// The command line as recorded in the audit table: secrets redacted. A `--database-url` value is
/// redacted as the drivers parse it, so a password with a raw space or `@` is hidden whole.
pub(crate) fn recorded_arguments() -> String {
    let mut args = Vec::new();
    let (mut url_next, mut secret_next) = (false, false);
    for arg in std::env::args_os().skip(1) {
        let arg = arg.to_string_lossy();
        let shown = if secret_next {
            "***".to_string()
        } else if let Some((flag, _)) = arg
            .split_once('=')
            .filter(|(f, _)| SECRET_FLAGS.contains(f))
        {
            format!("{flag}=***")
        } else if url_next {
            db::url::redact_url(&arg)
        } else if let Some((flag, url)) = url_flag(&arg) {
            format!("{flag}={}", db::url::redact_url(url))
        } else {
            db::url::redact(&arg)
        };
        url_next = URL_FLAGS.contains(&arg.as_ref());
        secret_next = SECRET_FLAGS.contains(&arg.as_ref());
        args.push(shown);
    }
    serde_json::to_string(&args).unwrap_or_else(|_| "[]".into())
}

/// Learns every password the invocation carries (URLs in the arguments, `DATABASE_URL`) before
/// anything parses or prints them, so no message, log line or audit row can show one.
pub(crate) fn remember_secrets() {
    for arg in std::env::args_os().skip(1) {
        let arg = arg.to_string_lossy();
        if arg.contains("://") {
            db::url::remember_secrets_of(url_flag(&arg).map_or(arg.as_ref(), |(_, url)| url));
        }
    }
    if let Some(url) = std::env::var_os("DATABASE_URL") {
        db::url::remember_secrets_of(&url.to_string_lossy());
    }
}

/// stderr for errors, logs and the panic hook: every write is redacted, and a closed or broken
/// stderr drops the text instead of failing (`eprintln!` panics then, and a panic while panicking
/// aborts with 134).
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = db::url::redact(&String::from_utf8_lossy(buf));
        let _ = std::io::stderr().write_all(text.as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// The one error line of a failed command.
pub(crate) fn error_line(message: &str) {
    let _ = writeln!(Stderr, "error: {message}");
}

/// Writes the command's result. A reader that went away (`| head`) is not an error; any other
/// failure (`> /dev/full`) is: the result was lost.
pub(crate) fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::Runtime(format!(
            "the command finished, but its output could not be written to stdout ({e}); free space where stdout goes, or redirect it elsewhere, and run the command again to see its result"
        ))),
    }
}

/// Names the argument (or environment variable) that is not UTF-8; clap only says "one or more".
pub(crate) fn invalid_utf8() -> String {
    let shown = |raw: &std::ffi::OsStr| format!("{:?}", raw.to_string_lossy());
    if let Some((i, arg)) = std::env::args_os()
        .enumerate()
        .skip(1)
        .find(|(_, a)| a.to_str().is_none())
    {
        return format!(
            "argument {i} ({}) is not valid UTF-8; backfill takes UTF-8 text",
            shown(&arg)
        );
    }
    for var in ["DATABASE_URL", "BACKFILL_OPERATOR"] {
        if std::env::var_os(var).is_some_and(|v| v.to_str().is_none()) {
            return format!("the environment variable {var} is not valid UTF-8; fix its value");
        }
    }
    "invalid UTF-8 in the arguments or the environment; backfill takes UTF-8 text".into()
}

/// clap's error as our one line: its first line, with what it lists on the lines after (missing
/// arguments, accepted values) kept on it.
pub(crate) fn clap_error_line(e: &clap::Error, program: &str) -> String {
    let text = e.to_string();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments");
    let first = first.trim_start_matches("error: ");
    // "the following required arguments were not provided:" lists them on the next lines.
    let listed: Vec<&str> = if first.ends_with(':') {
        text.lines()
            .skip_while(|l| !l.contains(first))
            .skip(1)
            .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
            .map(str::trim)
            .collect()
    } else {
        Vec::new()
    };
    let joined = format!("{first} {}", listed.join(", "));
    let first = if listed.is_empty() {
        first
    } else {
        joined.as_str()
    };
    // clap lists the accepted values on a line of their own; keep them on ours.
    let valid: Vec<String> = match e.get(clap::error::ContextKind::ValidValue) {
        Some(clap::error::ContextValue::Strings(v)) => v.clone(),
        _ => Vec::new(),
    };
    let valid = if valid.is_empty() || first.contains("possible values") {
        String::new()
    } else {
        format!(" (possible values: {})", valid.join(", "))
    };
    format!("{first}{valid}; see `{program} --help`")
}
