//! The secrets the tenants' MCP session keys are derived from, and their rotation.
//!
//! Where it sits: below `store` (which keeps the ring, sealed at rest: `store::SecretStore`)
//! and `ai_config` (whose publisher task is the one writer: it loads the ring at start, rotates
//! it when due and sends every tenant its keys). A tenant's key under one secret is HMAC-SHA256 of the tenant's name
//! (so tenants never share a key); each secret has a short id that the gateway writes into the
//! session ids it seals, so that an id sealed under the previous secret still opens during the
//! grace period. Pure, but for [`SessionSecret::generate`].

use std::time::Duration;

use fleetgate_proto::aigateway::v1 as pb;
use ring::rand::{SecureRandom, SystemRandom};

/// One secret. Its Debug never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionSecret {
    /// Short id, unique within a ring (the next secret's id is this one's plus one).
    pub id: u32,
    /// When it became the current secret (Unix seconds).
    pub created: u64,
    pub bytes: [u8; 32],
}

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSecret")
            .field("id", &self.id)
            .field("created", &self.created)
            .field("bytes", &"<redacted>")
            .finish()
    }
}

impl SessionSecret {
    /// A fresh random secret.
    pub fn generate(id: u32, created: u64) -> Self {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .unwrap_or_else(|_| panic!("the system has no random source"));
        Self { id, created, bytes }
    }

    /// The key of `tenant`'s MCP session ids under this secret.
    pub fn tenant_key(&self, tenant: &str) -> Vec<u8> {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.bytes);
        ring::hmac::sign(&key, format!("fleetgate-mcp-session:{tenant}").as_bytes())
            .as_ref()
            .to_vec()
    }
}

/// The current secret and the one before it, while its grace period lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRing {
    pub current: SessionSecret,
    pub previous: Option<SessionSecret>,
}

/// How often the current secret is replaced, and how long the one it replaced still opens
/// session ids (`mcpSessionKeys` in the hub config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Zero: never rotate.
    pub every: Duration,
    /// After a rotation, the previous secret is kept this long (and at most until the next
    /// rotation: a ring holds two secrets).
    pub grace: Duration,
}

/// Defaults of `mcpSessionKeys.rotateEvery` and `.grace`.
pub const DEFAULT_ROTATION: Rotation = Rotation {
    every: Duration::from_secs(24 * 3600),
    grace: Duration::from_secs(24 * 3600),
};

impl SecretRing {
    /// A ring of one fresh secret.
    pub fn generate(now: u64) -> Self {
        Self {
            current: SessionSecret::generate(1, now),
            previous: None,
        }
    }

    /// The ids of the secrets, current first.
    pub fn ids(&self) -> Vec<u32> {
        std::iter::once(self.current.id)
            .chain(self.previous.as_ref().map(|p| p.id))
            .collect()
    }

    /// When (Unix seconds) [`SecretRing::next`] next has something to do; `None`: never.
    pub fn due(&self, rotation: &Rotation) -> Option<u64> {
        let rotate = (!rotation.every.is_zero()).then(|| {
            self.current
                .created
                .saturating_add(rotation.every.as_secs())
        });
        let retire = self.previous.as_ref().map(|_| {
            self.current
                .created
                .saturating_add(rotation.grace.as_secs())
        });
        rotate.into_iter().chain(retire).min()
    }

    /// The ring at `now`: rotated to `fresh` (its id set to the current id plus one) when the
    /// current secret is older than `rotation.every`; the previous secret dropped once
    /// `rotation.grace` has passed since the rotation. `None`: nothing changes.
    pub fn next(&self, now: u64, rotation: &Rotation, fresh: [u8; 32]) -> Option<SecretRing> {
        let every = rotation.every.as_secs();
        if every > 0 && now >= self.current.created.saturating_add(every) {
            let current = SessionSecret {
                id: self.current.id.wrapping_add(1),
                created: now,
                bytes: fresh,
            };
            let previous = (!rotation.grace.is_zero()).then(|| self.current.clone());
            return Some(SecretRing { current, previous });
        }
        if self.previous.is_some()
            && now
                >= self
                    .current
                    .created
                    .saturating_add(rotation.grace.as_secs())
        {
            return Some(SecretRing {
                current: self.current.clone(),
                previous: None,
            });
        }
        None
    }

    /// `tenant`'s key ring on the wire, current first.
    pub fn tenant_keys(&self, tenant: &str) -> Vec<pb::McpSessionKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|s| pb::McpSessionKey {
                id: s.id,
                key: s.tenant_key(tenant),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Rotation = Rotation {
        every: Duration::from_secs(100),
        grace: Duration::from_secs(30),
    };

    fn ring(id: u32, created: u64) -> SecretRing {
        SecretRing {
            current: SessionSecret {
                id,
                created,
                bytes: [id as u8; 32],
            },
            previous: None,
        }
    }

    #[test]
    fn a_ring_rotates_when_due_and_retires_the_previous_secret_after_the_grace() {
        let r = ring(1, 1000);
        assert_eq!(r.due(&R), Some(1100));
        assert_eq!(r.next(1099, &R, [9; 32]), None, "not due yet");
        let rotated = r.next(1100, &R, [9; 32]).unwrap();
        assert_eq!(rotated.ids(), [2, 1]);
        assert_eq!(rotated.current.created, 1100);
        assert_eq!(rotated.current.bytes, [9; 32]);
        assert_eq!(rotated.previous.as_ref(), Some(&r.current));
        assert_eq!(rotated.due(&R), Some(1130), "the grace ends first");
        assert_eq!(rotated.next(1129, &R, [8; 32]), None);
        let retired = rotated.next(1130, &R, [8; 32]).unwrap();
        assert_eq!(retired.ids(), [2]);
        assert_eq!(retired.current, rotated.current);
        assert_eq!(retired.due(&R), Some(1200));
        // A hub that was down past both: one rotation, keeping the secret it replaces.
        let late = rotated.next(5000, &R, [7; 32]).unwrap();
        assert_eq!(late.ids(), [3, 2]);
    }

    #[test]
    fn zero_means_never_rotate_or_no_grace() {
        let never = Rotation {
            every: Duration::ZERO,
            grace: Duration::from_secs(30),
        };
        assert_eq!(ring(1, 0).due(&never), None);
        assert_eq!(ring(1, 0).next(u64::MAX, &never, [0; 32]), None);
        let no_grace = Rotation {
            every: Duration::from_secs(10),
            grace: Duration::ZERO,
        };
        assert_eq!(ring(1, 0).next(10, &no_grace, [0; 32]).unwrap().ids(), [2]);
        // Ids wrap around rather than overflow.
        assert_eq!(
            ring(u32::MAX, 0)
                .next(10, &no_grace, [0; 32])
                .unwrap()
                .ids(),
            [0]
        );
    }

    #[test]
    fn each_tenant_gets_its_own_keys_and_debug_hides_the_secret() {
        let r = ring(1, 0).next(100, &R, [9; 32]).unwrap();
        let a = r.tenant_keys("a");
        let b = r.tenant_keys("b");
        assert_eq!(a.iter().map(|k| k.id).collect::<Vec<_>>(), [2, 1]);
        assert!(a.iter().all(|k| k.key.len() == 32));
        assert_ne!(a[0].key, b[0].key, "tenants never share a key");
        assert_ne!(a[0].key, a[1].key, "secrets give different keys");
        assert_eq!(a, r.tenant_keys("a"), "derivation is stable");
        let shown = format!("{r:?}");
        assert!(
            shown.contains("<redacted>") && !shown.contains("9, 9"),
            "{shown}"
        );
    }
}
