//! The store's MCP session secret ring (`crate::session_secret`): one row, each secret sealed at
//! rest like a provider key (`crate::seal`, with the secret's id as associated data).
//!
//! Where it sits: beside the intent tables (step 6), read and written only by the AI config
//! publisher. Replacing the ring is a compare-and-swap in one write transaction, so that hubs
//! sharing a store (issue 14) agree on one ring whichever of them rotates first.

use super::kv::{Guard, Txn};
use super::{Store, StoreError, db_err};
use crate::seal::{SealError, is_sealed};
use crate::session_secret::{SecretRing, SessionSecret};

/// Where the ring is kept (the hub's store; several hubs share it once the store is shared).
pub trait SecretStore: Send + Sync {
    /// The ring stored, if any.
    fn load_ring(&self) -> Result<Option<SecretRing>, StoreError>;
    /// Replaces the stored ring with `next` if it is still `expected` (compare-and-swap), and
    /// returns what is stored afterwards: `next`, or the ring another writer stored first.
    fn swap_ring(
        &self,
        expected: Option<&SecretRing>,
        next: &SecretRing,
    ) -> Result<SecretRing, StoreError>;
}

/// The one row: JSON [`StoredRing`].
const ROW: &str = "mcp-session-secrets/v1/ring";

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredSecret {
    id: u32,
    created: u64,
    /// Sealed (`crate::seal`); 64 hex digits in plain only in a store opened without a sealer
    /// (tests of other parts).
    secret: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredRing {
    current: StoredSecret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<StoredSecret>,
}

fn identity(id: u32) -> String {
    format!("fleetgate/mcp-session-secret/v1/{id}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Store {
    fn seal_secret(&self, s: &SessionSecret) -> StoredSecret {
        let plain = hex(&s.bytes);
        StoredSecret {
            id: s.id,
            created: s.created,
            secret: match &self.sealer {
                Some(sealer) => sealer.seal(&plain, &identity(s.id)),
                None => plain,
            },
        }
    }

    fn open_secret(&self, s: StoredSecret) -> Result<SessionSecret, StoreError> {
        let plain = if is_sealed(&s.secret) {
            let sealer = self.sealer.as_ref().ok_or(SealError::NoKey)?;
            sealer.open(&s.secret, &identity(s.id))?
        } else {
            s.secret
        };
        let bytes = unhex(&plain).ok_or_else(|| SealError::Open {
            what: identity(s.id),
        })?;
        Ok(SessionSecret {
            id: s.id,
            created: s.created,
            bytes,
        })
    }

    fn decode_ring(&self, json: &[u8]) -> Result<SecretRing, StoreError> {
        let stored: StoredRing =
            serde_json::from_slice(json).map_err(|source| StoreError::Decode {
                key: "mcp-session-secrets".into(),
                source,
            })?;
        Ok(SecretRing {
            current: self.open_secret(stored.current)?,
            previous: stored.previous.map(|p| self.open_secret(p)).transpose()?,
        })
    }
}

impl SecretStore for Store {
    fn load_ring(&self) -> Result<Option<SecretRing>, StoreError> {
        self.kv.get(ROW)?.map(|v| self.decode_ring(&v)).transpose()
    }

    fn swap_ring(
        &self,
        expected: Option<&SecretRing>,
        next: &SecretRing,
    ) -> Result<SecretRing, StoreError> {
        let raw = self.kv.get(ROW)?;
        let stored = raw.as_deref().map(|v| self.decode_ring(v)).transpose()?;
        if stored.as_ref() != expected {
            // Another writer replaced it first: theirs stands (an empty row cannot follow a
            // stored ring, so `stored` is set here unless `expected` was and the row vanished).
            return Ok(stored.unwrap_or_else(|| next.clone()));
        }
        let json = serde_json::to_vec(&StoredRing {
            current: self.seal_secret(&next.current),
            previous: next.previous.as_ref().map(|p| self.seal_secret(p)),
        })
        .map_err(db_err)?;
        let mut txn = Txn::default();
        txn.guard(Guard::holds(ROW, raw.as_deref()));
        txn.put(ROW, json);
        if self.kv.commit(&txn)? {
            return Ok(next.clone());
        }
        // Another hub wrote between the read and the write: what it stored stands.
        match self.load_ring()? {
            Some(theirs) => Ok(theirs),
            None => Err(StoreError::Conflict {
                what: "the MCP session key ring".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::Sealer;

    fn ring(id: u32, fill: u8) -> SecretRing {
        SecretRing {
            current: SessionSecret {
                id,
                created: 100 + u64::from(id),
                bytes: [fill; 32],
            },
            previous: Some(SessionSecret {
                id: id - 1,
                created: 100,
                bytes: [fill + 1; 32],
            }),
        }
    }

    #[test]
    fn the_ring_is_sealed_at_rest_survives_reopen_and_is_swapped_only_from_what_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        let key = [3u8; 32];
        let store = Store::open_sealed(&path, Sealer::from_key(&key)).unwrap();
        assert_eq!(store.load_ring().unwrap(), None);
        let first = ring(2, 0xab);
        assert_eq!(store.swap_ring(None, &first).unwrap(), first);
        // A writer that did not see `first` loses and is handed what is stored.
        let stale = ring(5, 0x11);
        assert_eq!(store.swap_ring(None, &stale).unwrap(), first);
        let second = ring(3, 0x22);
        assert_eq!(store.swap_ring(Some(&first), &second).unwrap(), second);
        drop(store);

        // Nothing of the secrets in plain in the file.
        let raw = std::fs::read(&path).unwrap();
        let raw = String::from_utf8_lossy(&raw);
        for plain in ["abababab", "acacacac", "22222222", "23232323"] {
            assert!(!raw.contains(plain), "{plain} in plain");
        }

        let reopened = Store::open_sealed(&path, Sealer::from_key(&key)).unwrap();
        assert_eq!(reopened.load_ring().unwrap(), Some(second));
        drop(reopened);
        // Another store key does not open it, and says so.
        let other = Store::open_sealed(&path, Sealer::from_key(&[4u8; 32])).unwrap();
        let e = other.load_ring().unwrap_err().to_string();
        assert!(e.contains("cannot be decrypted"), "{e}");
    }
}
