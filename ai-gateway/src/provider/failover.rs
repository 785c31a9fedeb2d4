//! `ai.groups`: priority failover between providers.
//!
//! The request goes to the first group's providers (round-robin among them) and moves on, to the
//! next provider of the group and then to the next group, when a provider answers 429 or 5xx,
//! cannot be connected to, or times out (the gateway's own 502 and 504). Nothing has reached the
//! client then: error answers are buffered, so trying another provider is safe; a successful
//! answer, streamed or not, is never retried. A provider that failed is ejected for its
//! `Retry-After` (seconds or an HTTP date) or [`DEFAULT_EJECTION`], and skipped while ejected;
//! when every provider is ejected they are all tried in order anyway, since failing without
//! trying helps nobody. Providers whose API does not serve the request's path (OpenAI's
//! Responses API asked of an Anthropic or Gemini member) are left out, so a mixed group
//! answers it from the members that can; when none can, the first answers its 404. The last
//! provider's answer is the client's. A provider with its own
//! `policies.auth` (a tenant's `providers[].policies.auth`) is sent its own key, the others the
//! backend's.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::header;
use hyper::{Request, Response, StatusCode};
use tokio::sync::OwnedSemaphorePermit;

use crate::config::{AiBackend, Policies};
use crate::{Body, BoxError, RequestCtx};

/// How long a failed provider is skipped when it gives no `Retry-After`.
pub const DEFAULT_EJECTION: Duration = Duration::from_secs(10);
/// The longest ejection a `Retry-After` can ask for.
pub const MAX_EJECTION: Duration = Duration::from_secs(300);

/// Whether an answer of `status` moves the request to the next provider.
pub fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// How long to eject a provider that answered with these headers.
pub fn ejection(headers: &hyper::HeaderMap, now: SystemTime) -> Duration {
    let Some(v) = headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
    else {
        return DEFAULT_EJECTION;
    };
    let d = match v.trim().parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => match httpdate_secs(v.trim()) {
            Some(at) => at.duration_since(now).unwrap_or(Duration::ZERO),
            None => DEFAULT_EJECTION,
        },
    };
    d.min(MAX_EJECTION)
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`), the other form Retry-After takes.
fn httpdate_secs(s: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(s).ok()
}

/// The order providers are tried in: `(group, member)` pairs, healthy ones first in priority
/// order (round-robin inside a group, from `start`), then the ejected ones.
pub fn order(
    groups: &[Vec<AiBackend>],
    start: usize,
    ejected: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let mut healthy = Vec::new();
    let mut sick = Vec::new();
    let mut base = 0;
    for g in groups {
        for k in 0..g.len() {
            let i = base + (start + k) % g.len();
            if ejected(i) {
                sick.push(i);
            } else {
                healthy.push(i);
            }
        }
        base += g.len();
    }
    healthy.extend(sick);
    healthy
}

pub async fn handle(
    mut ctx: RequestCtx,
    groups: &[Vec<AiBackend>],
    policies: &Policies,
    req: Request<Bytes>,
) -> Response<Body> {
    let flat: Vec<&AiBackend> = groups.iter().flatten().collect();
    let route = ctx.route.clone();
    let permit = ctx.permit.take();
    let (parts, bytes) = req.into_parts();
    let tries = order(groups, route.round_robin.next(), |i| {
        route.health.ejected(i)
    });
    let tries = serving(&flat, tries, &parts.method, parts.uri.path());
    let last = tries.len().saturating_sub(1);
    for (n, i) in tries.into_iter().enumerate() {
        let attempt = RequestCtx {
            route: route.clone(),
            started: ctx.started,
            upstream: ctx.upstream.clone(),
            usage: ctx.usage.clone(),
            permit: None,
            limits: ctx.limits,
            virtual_key: ctx.virtual_key.clone(),
            mcp: ctx.mcp.clone(),
            a2a: ctx.a2a.clone(),
        };
        let req = Request::from_parts(parts.clone(), bytes.clone());
        let own;
        let policies = match &flat[i].auth {
            // A provider with its own `policies.auth`: that instead of the backend's.
            Some(auth) => {
                own = Policies {
                    auth: Some(auth.clone()),
                    request_timeout: policies.request_timeout,
                    model_aliases: policies.model_aliases.clone(),
                };
                &own
            }
            None => policies,
        };
        let resp = super::handle(attempt, flat[i], policies, req).await;
        if n < last && retryable(resp.status()) {
            let d = ejection(resp.headers(), SystemTime::now());
            route.health.eject(i, d);
            tracing::info!(tenant = %route.tenant, route = %route.name, provider = i, status = resp.status().as_u16(), ejected_for = ?d, "provider failed; trying the next");
            continue;
        }
        if retryable(resp.status()) {
            route
                .health
                .eject(i, ejection(resp.headers(), SystemTime::now()));
        }
        let (rparts, rbody) = resp.into_parts();
        let held = Held {
            inner: rbody,
            _permit: permit,
        };
        return Response::from_parts(rparts, held.boxed_unsync());
    }
    crate::errors::ApiError::upstream_unreachable(&route.name, "no provider configured")
        .into_response()
}

/// The providers of `tries` (in order) whose API serves `method path`; all of them when none
/// does, so the client gets the first one's 404 naming what it serves.
pub fn serving(
    providers: &[&AiBackend],
    tries: Vec<usize>,
    method: &hyper::Method,
    path: &str,
) -> Vec<usize> {
    let able: Vec<usize> = tries
        .iter()
        .copied()
        .filter(|&i| {
            providers
                .get(i)
                .is_some_and(|p| super::serves(&p.provider, method, path))
        })
        .collect();
    if able.is_empty() { tries } else { able }
}

/// A body that keeps the tenant's concurrency permit until it ends.
struct Held {
    inner: Body,
    _permit: Option<OwnedSemaphorePermit>,
}

impl HttpBody for Held {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Provider;

    fn p() -> AiBackend {
        AiBackend {
            tls: false,
            provider: Provider::OpenAi { model: None },
            host: "h".into(),
            port: 1,
            path: None,
            path_prefix: None,
            endpoints: vec![],
            auth: None,
        }
    }

    #[test]
    fn healthy_providers_come_first_in_priority_order() {
        let groups = vec![vec![p(), p()], vec![p()]];
        assert_eq!(order(&groups, 0, |_| false), [0, 1, 2]);
        assert_eq!(
            order(&groups, 1, |_| false),
            [1, 0, 2],
            "round-robin inside a group"
        );
        assert_eq!(order(&groups, 0, |i| i == 0), [1, 2, 0]);
        assert_eq!(
            order(&groups, 0, |_| true),
            [0, 1, 2],
            "all ejected: all tried"
        );
    }

    #[test]
    fn only_providers_serving_the_path_are_tried() {
        use hyper::Method;
        let anthropic = AiBackend {
            provider: Provider::Anthropic { model: None },
            ..p()
        };
        let gemini = AiBackend {
            provider: Provider::Gemini { model: None },
            ..p()
        };
        let openai = p();
        let flat = [&anthropic, &openai, &gemini, &openai];
        let all = vec![0, 1, 2, 3];
        let post = Method::POST;
        assert_eq!(
            serving(&flat, all.clone(), &post, "/v1/responses"),
            [1, 3],
            "the Responses API: OpenAI-compatible members only"
        );
        assert_eq!(
            serving(&flat, vec![2, 3, 0, 1], &post, "/v1/responses"),
            [3, 1],
            "in the order given"
        );
        assert_eq!(
            serving(&flat, all.clone(), &post, "/v1/chat/completions"),
            all,
            "every API serves chat completions"
        );
        assert_eq!(
            serving(&flat, all.clone(), &post, "/v1/messages"),
            [0, 1, 3]
        );
        assert_eq!(
            serving(&flat, all.clone(), &Method::GET, "/v1/models"),
            [1, 3]
        );
        assert_eq!(
            serving(&[&anthropic, &gemini], vec![1, 0], &post, "/v1/responses"),
            [1, 0],
            "none serves it: all, so the first answers its 404"
        );
    }

    #[test]
    fn retry_after_sets_the_ejection() {
        let mut h = hyper::HeaderMap::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(ejection(&h, now), DEFAULT_EJECTION);
        h.insert(header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(ejection(&h, now), Duration::from_secs(3));
        h.insert(header::RETRY_AFTER, "99999".parse().unwrap());
        assert_eq!(ejection(&h, now), MAX_EJECTION);
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        h.insert(
            header::RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:47 GMT".parse().unwrap(),
        );
        assert_eq!(ejection(&h, now), Duration::from_secs(10));
        h.insert(header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(ejection(&h, now), DEFAULT_EJECTION);
        for s in [429, 500, 502, 503, 504] {
            assert!(retryable(StatusCode::from_u16(s).unwrap()));
        }
        for s in [200, 400, 401, 404, 413] {
            assert!(!retryable(StatusCode::from_u16(s).unwrap()));
        }
    }
}
