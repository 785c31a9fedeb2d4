//! Polling instead of sleeping: retry a check until it passes or a timeout expires.
//!
//! The check is an async closure returning `anyhow::Result<T>`; its error is the "last value"
//! shown when the timeout expires, so write errors that say what was seen, e.g.
//! `ensure!(status == 200, "status {status}, body {body:?}")`. A check that fails with
//! [`crate::process::Exited`] (a component died) ends the wait at once.

use std::future::Future;
use std::panic::Location;
use std::time::{Duration, Instant};

/// How long to wait between attempts.
const INTERVAL: Duration = Duration::from_millis(250);

/// Retries `check` until it returns `Ok`, and returns its value; panics after `timeout` with the
/// caller's location and the last error.
#[track_caller]
pub fn eventually<T, F, Fut>(timeout: Duration, check: F) -> impl Future<Output = T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let caller = Location::caller();
    async move {
        match try_eventually(timeout, check).await {
            Ok(v) => v,
            Err(e) => panic!("eventually at {caller}: {e:#}"),
        }
    }
}

/// Like [`eventually`], returning the timeout as an error instead of panicking.
pub async fn try_eventually<T, F, Fut>(timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let start = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let remaining = timeout.saturating_sub(start.elapsed());
        let last = match tokio::time::timeout(remaining.max(INTERVAL), check()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) if e.downcast_ref::<crate::process::Exited>().is_some() => {
                return Err(e);
            }
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => "the attempt itself did not finish in time".to_string(),
        };
        if start.elapsed() >= timeout {
            anyhow::bail!(
                "condition not met within {timeout:?} ({attempts} attempts); last attempt: {last}"
            );
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_the_value_once_the_check_passes() {
        let n = AtomicU32::new(0);
        let v = eventually(Duration::from_secs(5), || async {
            let i = n.fetch_add(1, Ordering::SeqCst);
            anyhow::ensure!(i >= 2, "only {i} so far");
            Ok(i)
        })
        .await;
        assert_eq!(v, 2);
    }

    #[tokio::test]
    async fn the_timeout_error_shows_the_last_value() {
        let err = try_eventually(Duration::from_millis(600), || async {
            anyhow::bail!("status 503, body \"no healthy upstream\"");
            #[allow(unreachable_code)]
            Ok(())
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("within 600ms"), "{err}");
        assert!(
            err.contains("status 503, body \"no healthy upstream\""),
            "{err}"
        );
    }

    #[tokio::test]
    #[should_panic(expected = "eventually at")]
    async fn eventually_panics_with_its_location() {
        eventually(Duration::from_millis(300), || async {
            anyhow::bail!("never");
            #[allow(unreachable_code)]
            Ok(())
        })
        .await
    }
}
