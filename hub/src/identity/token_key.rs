//! The hub's bootstrap-token key: the HMAC-SHA256 key in the PKI directory that `enroll::token`
//! mints and verifies bootstrap tokens with. It lives with the rest of the hub's key material
//! (`identity::init_ca` creates it next to the CA), so that `identity` does not reach into
//! `enroll`.

use std::path::{Path, PathBuf};

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// The token key's file name inside the PKI directory.
pub const TOKEN_KEY: &str = "token.key";

/// The hub's token key (HMAC-SHA256).
pub struct TokenKey(pub(crate) hmac::Key);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

/// Reading or creating the token key failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The key file does not hold 64 hex digits.
    #[error(
        "{path} is not a fleetgate token key (64 hex digits); remove it to create a new one (outstanding tokens then stop working)",
        path = .path.display()
    )]
    Corrupt { path: PathBuf },
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
}

impl TokenKey {
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// Reads `<pki_dir>/token.key`, creating it (0600, 32 random bytes) when it does not exist.
    pub fn load_or_create(pki_dir: &Path) -> Result<Self, KeyError> {
        let path = pki_dir.join(TOKEN_KEY);
        let io = |source| KeyError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = from_hex(text.trim())
                    .filter(|b| b.len() == 32)
                    .ok_or_else(|| KeyError::Corrupt { path: path.clone() })?;
                Ok(Self::from_bytes(&bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                SystemRandom::new()
                    .fill(&mut bytes)
                    .map_err(|_| KeyError::Random)?;
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                // create_new: two processes creating it at once cannot both win.
                let created = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path);
                match created {
                    Ok(mut f) => {
                        f.write_all(format!("{}\n", to_hex(&bytes)).as_bytes())
                            .map_err(io)?;
                        Ok(Self::from_bytes(&bytes))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(pki_dir)
                    }
                    Err(e) => Err(io(e)),
                }
            }
            Err(e) => Err(io(e)),
        }
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}
