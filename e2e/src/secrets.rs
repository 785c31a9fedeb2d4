//! Secrets never reach a log: a test collects what its secrets are (bootstrap tokens, PEM
//! private keys, raw key files of its folder) and [`Secrets::assert_not_in_logs`] searches every
//! log of its [`crate::process::TestDir`] for them, in the forms a careless log line would show:
//! as written, a PEM block, one line of the PEM body, the whole body on one line, the DER in hex.
//!
//! The product binaries run at `debug` level in the harness (`crate::hub`, `crate::agent`), so
//! this covers debug logging too.

use std::path::{Path, PathBuf};

use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

/// What a log line must never hold. Shorter needles than this are not searched for: they could
/// occur by chance.
const MIN_NEEDLE: usize = 16;

/// The secrets of one test, each with a description for the failure message.
#[derive(Debug, Default)]
pub struct Secrets {
    needles: Vec<(String, String)>,
}

impl Secrets {
    pub fn new() -> Self {
        Self::default()
    }

    /// A secret string (a bootstrap token): the whole of it, and its last `.`-separated part
    /// (a token's MAC) on its own.
    pub fn add(&mut self, what: &str, secret: &str) {
        self.push(what, secret.to_string());
        if let Some((_, tail)) = secret.rsplit_once('.') {
            self.push(&format!("{what} (last part)"), tail.to_string());
        }
    }

    /// A PEM private key: every line of its base64 body, the body joined, its DER in hex.
    pub fn add_key_pem(&mut self, what: &str, pem: &str) {
        let body: Vec<&str> = pem
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("-----"))
            .collect();
        for (i, line) in body.iter().enumerate() {
            self.push(&format!("{what} (PEM line {})", i + 1), line.to_string());
        }
        self.push(&format!("{what} (PEM body on one line)"), body.concat());
        if let Ok(der) = PrivateKeyDer::from_pem_slice(pem.as_bytes()) {
            self.push(&format!("{what} (DER in hex)"), hex(der.secret_der()));
        }
    }

    /// Every `*.key` file under `dir`: PEM keys as in [`Secrets::add_key_pem`], other files (raw
    /// keys such as the hub's `store.key` and `token.key`) in hex and base64.
    pub fn add_key_files(&mut self, dir: &Path) -> anyhow::Result<()> {
        for path in files_under(dir)? {
            if path.extension().is_none_or(|e| e != "key") {
                continue;
            }
            let bytes = std::fs::read(&path)?;
            let what = path.display().to_string();
            match std::str::from_utf8(&bytes) {
                Ok(pem) if pem.contains("-----BEGIN") => self.add_key_pem(&what, pem),
                _ => {
                    self.push(&format!("{what} (hex)"), hex(&bytes));
                    self.push(&format!("{what} (base64)"), base64(&bytes));
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, what: &str, needle: String) {
        if needle.len() >= MIN_NEEDLE {
            self.needles.push((what.to_string(), needle));
        }
    }

    /// How many strings are searched for.
    pub fn len(&self) -> usize {
        self.needles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Panics naming every log under `dir` (any `*.log`, every component's) that holds one of
    /// the secrets or a PEM private key block of any kind.
    pub fn assert_not_in_logs(&self, dir: &Path) {
        let found = self.found_in_logs(dir).expect("reading the test's logs");
        assert!(
            found.is_empty(),
            "secrets in logs:\n{}",
            found
                .iter()
                .map(|(log, what)| format!("  {}: {what}", log.display()))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// (log file, what it holds) for every secret found in a log under `dir`.
    pub fn found_in_logs(&self, dir: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
        let mut found = Vec::new();
        let mut logs = 0;
        for path in files_under(dir)? {
            if path.extension().is_none_or(|e| e != "log") {
                continue;
            }
            logs += 1;
            let text = String::from_utf8_lossy(&std::fs::read(&path)?).into_owned();
            if text.contains("PRIVATE KEY-----") {
                found.push((path.clone(), "a PEM private key block".to_string()));
            }
            for (what, needle) in &self.needles {
                if text.contains(needle.as_str()) {
                    found.push((path.clone(), what.clone()));
                }
            }
        }
        anyhow::ensure!(logs > 0, "no log under {}", dir.display());
        Ok(found)
    }
}

fn files_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let ty = entry.file_type()?;
            if ty.is_dir() {
                todo.push(entry.path());
            } else if ty.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        for (raw, want) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw), want);
        }
    }

    #[test]
    fn every_form_of_a_secret_is_found_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let (pem, _) = crate::pki::key_pair_pem().unwrap();
        let mut secrets = Secrets::new();
        secrets.add("token", "fgb1.abcdefghijklmnop.qrstuvwxyz0123456789");
        secrets.add_key_pem("the key", &pem);
        std::fs::write(dir.path().join("raw.key"), [7u8; 32]).unwrap();
        secrets.add_key_files(dir.path()).unwrap();

        std::fs::write(dir.path().join("clean.log"), "INFO hub running\n").unwrap();
        assert_eq!(secrets.found_in_logs(dir.path()).unwrap(), vec![]);

        let body_line = pem.lines().nth(1).unwrap().to_string();
        for (leak, what) in [
            (
                "token=fgb1.abcdefghijklmnop.qrstuvwxyz0123456789".to_string(),
                "token",
            ),
            ("mac qrstuvwxyz0123456789".to_string(), "token (last part)"),
            (format!("key: {body_line}"), "the key (PEM line 1)"),
            (pem.clone(), "a PEM private key block"),
            (hex(&[7u8; 32]), "raw.key (hex)"),
            (base64(&[7u8; 32]), "raw.key (base64)"),
        ] {
            std::fs::write(dir.path().join("leak.log"), &leak).unwrap();
            let found = secrets.found_in_logs(dir.path()).unwrap();
            assert!(
                found.iter().any(|(_, w)| w.ends_with(what)),
                "{what} not found in {leak:?}: {found:?}"
            );
        }
    }
}
