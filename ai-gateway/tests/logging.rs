//! Structured logs, as a log collector reads them: the binary started with stderr on a pipe
//! (not a terminal) writes one JSON object per line with its level and message and no colour
//! codes; `FLEETGATE_LOG_FORMAT=text` gives plain text, still without colour; an unknown format
//! is named in a warning. Shared by every fleetgate binary (`fleetgate_observe::log`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The first `n` lines the gateway writes to stderr, started with `format` (None: unset) and
/// a hub nobody listens on (it keeps logging that it cannot reach it).
fn first_lines(format: Option<&str>, n: usize) -> Vec<String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fleetgate-ai-gateway"));
    cmd.args(["--listen", "127.0.0.1:0", "--hub", "http://127.0.0.1:1"])
        .args(["--hub-max-backoff-ms", "100"])
        .env("RUST_LOG", "info")
        .env_remove("FLEETGATE_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(f) = format {
        cmd.env("FLEETGATE_LOG_FORMAT", f);
    }
    let mut child = cmd.spawn().expect("the gateway starts");
    let lines: Vec<String> = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .take(n)
        .map(|l| l.unwrap())
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[test]
fn off_a_terminal_every_log_line_is_a_json_object() {
    let lines = first_lines(None, 3);
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "a colour code: {line:?}");
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(
            ["INFO", "WARN", "ERROR"].contains(&v["level"].as_str().unwrap_or("")),
            "{line}"
        );
        assert!(v["fields"]["message"].is_string(), "{line}");
        assert!(v["timestamp"].is_string(), "{line}");
    }
}

#[test]
fn text_on_request_still_without_colour_and_a_bad_format_is_named() {
    let lines = first_lines(Some("text"), 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "a colour code: {line:?}");
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_err(),
            "JSON: {line}"
        );
    }
    let lines = first_lines(Some("yaml"), 1);
    assert!(
        lines[0]
            .contains("FLEETGATE_LOG_FORMAT=\\\"yaml\\\" is not a log format: use json or text"),
        "{lines:?}"
    );
}
