//! Certificate renewal: at half of the certificate's life the agent makes a new key, asks the hub
//! for a certificate over `EnrollService/Renew` (authenticated by the current one), stores it
//! and publishes it, upon which `sync` reconnects with it (and resends its full state, so no
//! intent is lost).
//!
//! Where it sits: beside the data path; the only writer of the identity `watch` channel that
//! `sync`'s connections read. The timing rules ([`renew_at`], [`retry_delay`]) are pure.

use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info, warn};

use super::storage::{IdentityStore, Stored};
use super::{EnrollError, renew_once};
use crate::identity::Identity;

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_second()
}

/// When a certificate valid from `not_before` to `not_after` is renewed: half-way.
pub fn renew_at(not_before: i64, not_after: i64) -> i64 {
    not_before + (not_after - not_before).max(0) / 2
}

/// How long to wait after a failed renewal: a tenth of the time left, between 5 s and 60 s.
pub fn retry_delay(now: i64, not_after: i64) -> Duration {
    let left = (not_after - now).max(0) as u64;
    Duration::from_secs((left / 10).clamp(5, 60))
}

/// Renews the identity in `current` forever (until the process stops).
pub struct Renewer {
    pub hub: String,
    pub server_name: String,
    pub store: IdentityStore,
    /// Kept with every renewed identity, so a restart with the same token reuses it.
    pub token_sha256: Option<String>,
    pub current: watch::Sender<Identity>,
}

impl Renewer {
    pub async fn run(self) {
        loop {
            let identity = self.current.borrow().clone();
            let (not_before, not_after) = match identity.validity() {
                Ok(v) => v,
                Err(e) => {
                    error!("cannot read the current certificate, not renewing it: {e}");
                    return;
                }
            };
            let at = renew_at(not_before, not_after);
            let wait = (at - unix_now()).max(0) as u64;
            info!(
                renew_in_s = wait,
                not_after, "certificate renewal scheduled"
            );
            tokio::time::sleep(Duration::from_secs(wait)).await;
            loop {
                match self.renew(&identity).await {
                    Ok(()) => break,
                    Err(e) => {
                        let delay = retry_delay(unix_now(), not_after);
                        warn!(
                            retry_in_s = delay.as_secs(),
                            "certificate renewal failed: {}",
                            crate::sync::error_chain(&e)
                        );
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
    }

    async fn renew(&self, identity: &Identity) -> Result<(), EnrollError> {
        let renewed = renew_once(&self.hub, &self.server_name, identity).await?;
        let stored = Stored {
            identity: renewed.clone(),
            token_sha256: self.token_sha256.clone(),
        };
        if let Err(e) = self.store.save(&stored).await {
            // The new certificate is still used; a restart falls back to the old one (or to
            // enrollment) until the next renewal stores one.
            error!("renewed certificate could not be stored: {e}");
        }
        let not_after = renewed.validity().map(|v| v.1).unwrap_or_default();
        self.current.send_replace(renewed);
        info!(
            not_after,
            "certificate renewed; reconnecting to the hub with it"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_half_way_and_retries_are_bounded() {
        assert_eq!(renew_at(1000, 1000 + 86_400), 1000 + 43_200);
        assert_eq!(renew_at(1000, 900), 1000);
        assert_eq!(retry_delay(0, 86_400), Duration::from_secs(60));
        assert_eq!(retry_delay(0, 200), Duration::from_secs(20));
        assert_eq!(retry_delay(0, 10), Duration::from_secs(5));
        assert_eq!(retry_delay(100, 10), Duration::from_secs(5));
    }
}
