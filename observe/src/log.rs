//! How every fleetgate process logs: to stderr, as JSON lines when stderr is not a terminal
//! (a file, a pipe, a container runtime collecting it), as coloured text when it is.
//! `FLEETGATE_LOG_FORMAT=json|text` overrides the choice; `RUST_LOG` filters as usual.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The environment variable that picks the format.
pub const FORMAT_ENV: &str = "FLEETGATE_LOG_FORMAT";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (with `message`).
    Json,
    /// Human-readable lines; `colour` only on a terminal.
    Text { colour: bool },
}

/// The format for `FLEETGATE_LOG_FORMAT` = `env` on a stderr that `is_terminal` or not; an
/// unknown value is an error saying what to write (the caller falls back to the default).
pub fn choose(env: Option<&str>, is_terminal: bool) -> Result<Format, String> {
    match env.map(str::trim) {
        None | Some("") => Ok(if is_terminal {
            Format::Text { colour: true }
        } else {
            Format::Json
        }),
        Some("json") => Ok(Format::Json),
        Some("text") => Ok(Format::Text {
            colour: is_terminal,
        }),
        Some(other) => Err(format!(
            "{FORMAT_ENV}={other:?} is not a log format: use json or text"
        )),
    }
}

/// Installs the process's logger: `default_filter` unless `RUST_LOG` says otherwise.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let terminal = std::io::stderr().is_terminal();
    let env = std::env::var(FORMAT_ENV).ok();
    let (format, problem) = match choose(env.as_deref(), terminal) {
        Ok(f) => (f, None),
        Err(e) => (choose(None, terminal).unwrap_or(Format::Json), Some(e)),
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        Format::Json => builder.json().with_ansi(false).init(),
        Format::Text { colour } => builder.with_ansi(colour).init(),
    }
    if let Some(problem) = problem {
        tracing::warn!("{problem}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_off_a_terminal_text_on_one_unless_told() {
        assert_eq!(choose(None, false), Ok(Format::Json));
        assert_eq!(choose(None, true), Ok(Format::Text { colour: true }));
        assert_eq!(
            choose(Some("text"), false),
            Ok(Format::Text { colour: false })
        );
        assert_eq!(choose(Some("json"), true), Ok(Format::Json));
        assert_eq!(choose(Some(""), false), Ok(Format::Json));
        let err = choose(Some("yaml"), false).unwrap_err();
        assert!(err.contains("use json or text"), "{err}");
    }
}
