//! Where a request to a backend connects: the backend's `endpoints` (the tenant's resolved
//! Service endpoints, sent by the hub) spread round-robin, the next one tried when a connection
//! cannot be made; without endpoints, `host:port` itself. The Host header is always the
//! backend's `host:port`, whichever address is dialled.
//!
//! Only a connect error moves on to the next endpoint: then nothing of the request has been
//! sent, so trying again cannot repeat it. Any later failure is the request's answer.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::AiBackend;

/// The round-robin position of one route, shared by the requests on it (and reset when the
/// route's configuration is swapped).
#[derive(Debug, Default)]
pub struct RoundRobin(AtomicUsize);

impl RoundRobin {
    /// The position for the next request.
    pub fn next(&self) -> usize {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// `host:port`, with an IPv6 literal in brackets: the Host header and, without endpoints, the
/// address dialled.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The authorities to try for one request, in order: every endpoint once, starting at
/// `start` (modulo their number) and wrapping around; or `host:port` alone.
pub fn attempts(ai: &AiBackend, start: usize) -> Vec<String> {
    attempts_to(&ai.host, ai.port, &ai.endpoints, start)
}

/// [`attempts`] for any backend that has a host, a port and endpoints (LLM providers, A2A
/// agents).
pub fn attempts_to(
    host: &str,
    port: u16,
    endpoints: &[std::net::SocketAddr],
    start: usize,
) -> Vec<String> {
    let n = endpoints.len();
    if n == 0 {
        return vec![authority(host, port)];
    }
    (0..n)
        .map(|i| endpoints[(start % n + i) % n].to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Provider;

    fn ai(host: &str, endpoints: &[&str]) -> AiBackend {
        AiBackend {
            tls: false,
            provider: Provider::OpenAi { model: None },
            host: host.into(),
            port: 8080,
            path: None,
            path_prefix: None,
            endpoints: endpoints.iter().map(|e| e.parse().unwrap()).collect(),
            auth: None,
        }
    }

    #[test]
    fn endpoints_are_tried_round_robin_then_the_rest_in_order() {
        let b = ai("llm.svc", &["127.0.3.1:1", "127.0.3.2:2", "[::1]:3"]);
        assert_eq!(attempts(&b, 0), ["127.0.3.1:1", "127.0.3.2:2", "[::1]:3"]);
        assert_eq!(attempts(&b, 1), ["127.0.3.2:2", "[::1]:3", "127.0.3.1:1"]);
        assert_eq!(attempts(&b, 5), attempts(&b, 2));
        assert_eq!(attempts(&b, usize::MAX).len(), 3);
        // Successive requests start at successive endpoints.
        let rr = RoundRobin::default();
        let firsts: Vec<String> = (0..4).map(|_| attempts(&b, rr.next())[0].clone()).collect();
        assert_eq!(
            firsts,
            ["127.0.3.1:1", "127.0.3.2:2", "[::1]:3", "127.0.3.1:1"]
        );
    }

    #[test]
    fn without_endpoints_the_host_is_dialled() {
        assert_eq!(
            attempts(&ai("api.example.com", &[]), 7),
            ["api.example.com:8080"]
        );
        assert_eq!(attempts(&ai("fd00::1", &[]), 0), ["[fd00::1]:8080"]);
        assert_eq!(authority("h", 80), "h:80");
    }
}
