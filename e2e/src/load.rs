//! Constant request load through the data plane while a test injects a fault: a few workers
//! send GETs round-robin to a set of targets (host, path, expected body), each on a fresh
//! connection, and count every answer that is not the expected 2xx body and every request that
//! failed outright, keeping a timestamped sample of each.
//!
//! Test support for the chaos suite (`e2e/tests/chaos.rs`), outside the data path. A worker
//! waits a fixed pause between requests, so the rate is bounded by the workers and the pause
//! and falls when the machine is slow; the [`Report`] says what rate was reached.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// How many failures of each kind a report keeps as samples.
const SAMPLES: usize = 5;

/// One route the load exercises: `GET <path>` with `Host: <host>` must answer 2xx `body`.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub path: String,
    pub body: String,
}

impl Target {
    pub fn new(host: &str, path: &str, body: &str) -> Self {
        Self {
            host: host.to_string(),
            path: path.to_string(),
            body: body.to_string(),
        }
    }
}

/// What went wrong with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// An HTTP answer outside 2xx.
    Non2xx,
    /// A 2xx answer with another body than the target's (another backend answered).
    WrongBody,
    /// No HTTP answer: connect refused or reset, timeout, malformed response.
    Connection,
}

/// One failed request: when (since the load started), to which host, what happened.
#[derive(Debug, Clone)]
pub struct Failure {
    pub at: Duration,
    pub host: String,
    pub kind: FailureKind,
    pub what: String,
}

/// Counts of one load run (one worker's, or all of them merged).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub sent: u64,
    pub ok: u64,
    pub non_2xx: u64,
    pub wrong_body: u64,
    pub connection_errors: u64,
    /// The first [`SAMPLES`] failures of each kind, and the last failure of all.
    pub samples: Vec<Failure>,
    pub last_failure: Option<Failure>,
}

impl Tally {
    /// Every request that was not the expected 2xx answer.
    pub fn failed(&self) -> u64 {
        self.non_2xx + self.wrong_body + self.connection_errors
    }

    fn count(&self, kind: FailureKind) -> u64 {
        match kind {
            FailureKind::Non2xx => self.non_2xx,
            FailureKind::WrongBody => self.wrong_body,
            FailureKind::Connection => self.connection_errors,
        }
    }

    /// Counts one answer (`Ok((status, body))`) or error for `target` at `at`.
    pub fn record(&mut self, target: &Target, at: Duration, answer: anyhow::Result<(u16, String)>) {
        self.sent += 1;
        let (kind, what) = match answer {
            Ok((status, body)) if (200..300).contains(&status) && body == target.body => {
                self.ok += 1;
                return;
            }
            Ok((status, body)) if (200..300).contains(&status) => (
                FailureKind::WrongBody,
                format!("{status} {body:?} (want {:?})", target.body),
            ),
            Ok((status, body)) => (FailureKind::Non2xx, format!("{status} {body:?}")),
            Err(e) => (FailureKind::Connection, format!("{e:#}")),
        };
        match kind {
            FailureKind::Non2xx => self.non_2xx += 1,
            FailureKind::WrongBody => self.wrong_body += 1,
            FailureKind::Connection => self.connection_errors += 1,
        }
        let failure = Failure {
            at,
            host: target.host.clone(),
            kind,
            what,
        };
        if self.count(kind) <= SAMPLES as u64 {
            self.samples.push(failure.clone());
        }
        self.last_failure = Some(failure);
    }

    /// Adds `other`'s counts; keeps the earliest samples of each kind and the latest failure.
    pub fn merge(mut self, other: Tally) -> Tally {
        self.sent += other.sent;
        self.ok += other.ok;
        self.non_2xx += other.non_2xx;
        self.wrong_body += other.wrong_body;
        self.connection_errors += other.connection_errors;
        self.samples.extend(other.samples);
        self.samples.sort_by_key(|f| f.at);
        let mut per_kind = std::collections::HashMap::new();
        self.samples.retain(|f| {
            let n = per_kind.entry(f.kind).or_insert(0usize);
            *n += 1;
            *n <= SAMPLES
        });
        self.last_failure = match (self.last_failure, other.last_failure) {
            (Some(a), Some(b)) => Some(if a.at >= b.at { a } else { b }),
            (a, b) => a.or(b),
        };
        self
    }
}

/// A finished load run.
#[derive(Debug, Clone)]
pub struct Report {
    pub tally: Tally,
    pub elapsed: Duration,
}

impl Report {
    /// Requests per second over the whole run.
    pub fn rate(&self) -> f64 {
        self.tally.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        write!(
            f,
            "sent={} ok={} failed={} (non-2xx {}, wrong backend {}, connection errors {}) over {:.1}s ({:.0} req/s)",
            t.sent,
            t.ok,
            t.failed(),
            t.non_2xx,
            t.wrong_body,
            t.connection_errors,
            self.elapsed.as_secs_f64(),
            self.rate()
        )?;
        for s in &t.samples {
            write!(
                f,
                "\n  at {:.2}s {} {:?}: {}",
                s.at.as_secs_f64(),
                s.host,
                s.kind,
                s.what
            )?;
        }
        if let Some(s) = &t.last_failure {
            write!(
                f,
                "\n  last failure at {:.2}s {}: {}",
                s.at.as_secs_f64(),
                s.host,
                s.what
            )?;
        }
        Ok(())
    }
}

/// A running load; [`Load::stop`] ends it and returns the [`Report`].
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    started: Instant,
    workers: Vec<JoinHandle<Tally>>,
}

impl Load {
    /// Starts `workers` tasks sending GETs to `addr`, each going round the `targets` (worker
    /// `i` starting at target `i`) with `pause` between requests.
    pub fn start(addr: SocketAddr, targets: &[Target], workers: usize, pause: Duration) -> Self {
        assert!(!targets.is_empty(), "a load needs at least one target");
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let workers = (0..workers)
            .map(|w| {
                let (stop, sent, targets) = (stop.clone(), sent.clone(), targets.to_vec());
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    let mut i = w;
                    while !stop.load(Ordering::Relaxed) {
                        let target = &targets[i % targets.len()];
                        let answer = crate::http::get(addr, &target.host, &target.path, &[]).await;
                        tally.record(target, started.elapsed(), answer);
                        sent.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                        tokio::time::sleep(pause).await;
                    }
                    tally
                })
            })
            .collect();
        Self {
            stop,
            sent,
            started,
            workers,
        }
    }

    /// Time since the load started (to tell when a fault happened in the samples).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Requests completed so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Waits until `n` more requests have completed (at most `timeout`).
    pub async fn wait_more(&self, n: u64, timeout: Duration) {
        let target = self.sent() + n;
        let deadline = Instant::now() + timeout;
        while self.sent() < target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the workers and merges their counts.
    pub async fn stop(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        let mut tally = Tally::default();
        for w in self.workers {
            tally = tally.merge(w.await.expect("a load worker does not panic"));
        }
        Report {
            tally,
            elapsed: self.started.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_failure_is_counted_and_sampled() {
        let t = Target::new("app.a.example", "/", "tenant-a-echo");
        let mut a = Tally::default();
        a.record(
            &t,
            Duration::from_millis(1),
            Ok((200, "tenant-a-echo".into())),
        );
        a.record(
            &t,
            Duration::from_millis(2),
            Ok((503, "no healthy upstream".into())),
        );
        a.record(
            &t,
            Duration::from_millis(3),
            Ok((200, "tenant-b-echo".into())),
        );
        let mut b = Tally::default();
        b.record(
            &t,
            Duration::from_millis(4),
            Err(anyhow::anyhow!("connection refused")),
        );
        for i in 0..10 {
            b.record(&t, Duration::from_millis(10 + i), Ok((404, String::new())));
        }
        let all = a.merge(b);
        assert_eq!((all.sent, all.ok, all.failed()), (14, 1, 13));
        assert_eq!(
            (all.non_2xx, all.wrong_body, all.connection_errors),
            (11, 1, 1)
        );
        // At most 5 samples of each kind, in time order; the last failure is kept.
        assert_eq!(all.samples.len(), 5 + 1 + 1);
        assert!(all.samples.windows(2).all(|w| w[0].at <= w[1].at));
        assert_eq!(all.last_failure.unwrap().at, Duration::from_millis(19));
    }
}
