//! Per-tenant concurrency: between route and provider. Each tenant has its own budget of
//! requests in flight on this replica, so a tenant whose provider is slow fills only its own
//! budget and never delays another tenant's requests. A request over the budget is answered 429
//! at once (OpenAI's `rate_limit_error`, which SDKs retry with backoff) instead of queueing.
//!
//! The permit lives as long as the response body: a stream counts until its last byte.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One tenant's budget. Cheap to clone; clones share the budget.
#[derive(Debug, Clone)]
pub struct TenantLimit {
    max: u32,
    semaphore: Arc<Semaphore>,
}

impl TenantLimit {
    pub fn new(max: u32) -> Self {
        Self {
            max,
            semaphore: Arc::new(Semaphore::new(max as usize)),
        }
    }

    /// The configured maximum.
    pub fn max(&self) -> u32 {
        self.max
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u32 {
        self.max - self.semaphore.available_permits() as u32
    }

    /// A permit, or `None` when the tenant is at its limit.
    pub fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.semaphore.clone().try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_tenant_does_not_take_from_another() {
        let a = TenantLimit::new(2);
        let b = TenantLimit::new(2);
        let held: Vec<_> = (0..2).map(|_| a.try_acquire().unwrap()).collect();
        assert!(a.try_acquire().is_none());
        assert_eq!(a.in_flight(), 2);
        assert!(b.try_acquire().is_some());
        drop(held);
        assert!(a.try_acquire().is_some());
    }
}
