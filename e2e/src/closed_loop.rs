//! A closed-loop HTTP/1.1 load generator for benchmarks: `connections` keep-alive connections,
//! each sending the next `GET` as soon as the previous answer's body has been read, for a fixed
//! time; every request's latency is kept (microseconds), so percentiles come from all samples.
//!
//! Test support for `e2e/tests/bench.rs` (the data-plane comparison of issue 15), outside the
//! data path. It runs on its own OS thread with a single-threaded runtime, so it uses at most
//! one core whatever the test's runtime does; on a two-core machine it still competes with the
//! Envoy it loads and with the echo backend (docs/benchmarks.md says so next to its figures).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Requests answered 200 (latency kept).
    pub ok: u64,
    /// Requests answered otherwise or failed (a failed connection is opened again).
    pub errors: u64,
    pub elapsed: Duration,
    /// Latency of every 200, microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl Run {
    /// 200s per second.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p` quantile (0..=1) of the latencies, in milliseconds (0 without samples).
    pub fn quantile_ms(&self, p: f64) -> f64 {
        quantile_us(&self.latencies_us, p) as f64 / 1e3
    }

    /// Several runs as one: counts and samples added, time summed.
    pub fn merge(runs: &[Run]) -> Run {
        let mut out = Run::default();
        for r in runs {
            out.ok += r.ok;
            out.errors += r.errors;
            out.elapsed += r.elapsed;
            out.latencies_us.extend_from_slice(&r.latencies_us);
        }
        out.latencies_us.sort_unstable();
        out
    }
}

/// The `p` quantile of sorted samples (nearest rank), 0 when there are none.
pub fn quantile_us(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as usize;
    sorted[i]
}

/// Loads `addr` with `GET <path>` and `Host: <host>` on `connections` connections for
/// `duration`, on a thread of its own (the caller's runtime only waits for the result).
pub async fn run(
    addr: SocketAddr,
    host: &str,
    path: &str,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let (host, path) = (host.to_string(), path.to_string());
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("closed-loop".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let result = match rt {
                Ok(rt) => rt.block_on(load(addr, host, path, connections, duration)),
                Err(e) => Err(anyhow::Error::from(e).context("closed-loop runtime")),
            };
            let _ = tx.send(result);
        })
        .context("starting the closed-loop thread")?;
    rx.await.context("the closed-loop thread ended early")?
}

async fn load(
    addr: SocketAddr,
    host: String,
    path: String,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let started = Instant::now();
    let until = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(one_connection(addr, host.clone(), path.clone(), until)))
        .collect();
    let mut runs = Vec::new();
    for t in tasks {
        runs.push(t.await.context("a load connection panicked")?);
    }
    let mut all = Run::merge(&runs);
    all.elapsed = started.elapsed();
    anyhow::ensure!(
        all.ok > 0,
        "no request to {addr} (Host {host}) was answered 200 ({} errors)",
        all.errors
    );
    Ok(all)
}

/// One connection's loop until `until`: reconnects after an error.
async fn one_connection(addr: SocketAddr, host: String, path: String, until: Instant) -> Run {
    let mut run = Run::default();
    while Instant::now() < until {
        let Ok(mut sender) = connect(addr).await else {
            run.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        while Instant::now() < until {
            let req = hyper::Request::get(path.as_str())
                .header(hyper::header::HOST, host.as_str())
                .body(Empty::<Bytes>::new())
                .expect("a GET with a Host header is a valid request");
            let t = Instant::now();
            let answer = match sender.send_request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    resp.into_body().collect().await.map(|_| status)
                }
                Err(e) => Err(e),
            };
            match answer {
                Ok(s) if s == hyper::StatusCode::OK => {
                    run.ok += 1;
                    let us = t.elapsed().as_micros();
                    run.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                }
                Ok(_) => run.errors += 1,
                Err(_) => {
                    run.errors += 1;
                    break;
                }
            }
        }
    }
    run
}

async fn connect(addr: SocketAddr) -> anyhow::Result<http1::SendRequest<Empty<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank_and_merges_add_up() {
        assert_eq!(quantile_us(&[], 0.5), 0);
        let a = Run {
            ok: 3,
            errors: 1,
            elapsed: Duration::from_secs(1),
            latencies_us: vec![10, 30, 50],
        };
        let b = Run {
            ok: 2,
            errors: 0,
            elapsed: Duration::from_secs(1),
            latencies_us: vec![20, 40],
        };
        let m = Run::merge(&[a, b]);
        assert_eq!((m.ok, m.errors), (5, 1));
        assert_eq!(m.latencies_us, vec![10, 20, 30, 40, 50]);
        assert_eq!(quantile_us(&m.latencies_us, 0.5), 30);
        assert_eq!(quantile_us(&m.latencies_us, 1.0), 50);
        assert!((m.throughput() - 2.5).abs() < 1e-9);
    }

    #[tokio::test]
    async fn loads_an_echo_backend_and_counts_every_answer() {
        let echo = crate::Echo::start("load", [127, 0, 0, 1].into())
            .await
            .unwrap();
        let run = run(echo.addr(), "x.example", "/", 4, Duration::from_millis(300))
            .await
            .unwrap();
        assert_eq!(run.errors, 0);
        assert_eq!(run.ok, echo.requests());
        assert_eq!(run.latencies_us.len() as u64, run.ok);
    }
}
