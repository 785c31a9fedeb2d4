//! The fleet dashboard: server-rendered pages on the hub's admin port, under `/ui/`, made live
//! with htmx and its server-sent-events extension (both served by the hub itself, from
//! `dashboard/static/`).
//!
//! - Login: an operator pastes an operator token ([`super::operator_token`]); the hub checks it
//!   and keeps it in an `HttpOnly`, `SameSite=Strict` cookie scoped to `/ui`, for as long as
//!   the token lives. The role is the token's: viewers read, admins also act. With `adminOidc`
//!   the page also offers "Sign in with <provider>" ([`super::oidc`]), which ends with an
//!   operator token minted for the mapped role in the same cookie.
//! - Pages: the overview (tenants, clusters, allocations; admins get disable/enable/revoke
//!   buttons, each asking for confirmation, and a bootstrap-token form), and one page per
//!   tenant (its objects with the problems its tenant reads, searchable, 50 per page; its AI
//!   usage, budgets left and MCP/A2A catalogs, [`ai`]).
//! - Live: every page holds `GET /ui/events` open; the hub sends an event whenever statuses,
//!   accepted intent or connections change, and the page re-fetches its live part.
//! - Forms (every POST but the login) carry a CSRF token derived from the session (HMAC under
//!   the operator key), and a POST whose `Origin` is not this port is refused; with the
//!   `SameSite=Strict` cookie, another site cannot make an operator's browser act.
//!
//! [`html`] renders (pure, escaping every tenant string); this module routes and checks.

pub mod ai;
pub mod html;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use ring::hmac;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::api::{AdminApi, query_value};
use super::operator_token::Operator;
use super::views;
use crate::fleet::unix_now;
use crate::model::ClusterKey;

type Body = fleetgate_observe::Body;

const COOKIE: &str = "fleetgate_session";
const HTMX: &[u8] = include_bytes!("dashboard/static/htmx.min.js");
const SSE: &[u8] = include_bytes!("dashboard/static/sse.min.js");
/// Largest form body.
const MAX_FORM: usize = 4096;
/// How often the events stream looks at connections (which change without a status change).
const CONNECTIONS_EVERY: Duration = Duration::from_secs(1);

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .header("x-frame-options", "DENY")
        .header(
            "content-security-policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        )
        .body(Full::new(body.into()).boxed())
        .expect("static response parts are valid")
}

fn html(status: StatusCode, body: String) -> Response<Body> {
    respond(status, "text/html; charset=utf-8", body)
}

fn redirect(to: &str, cookie: Option<String>) -> Response<Body> {
    let mut r = respond(StatusCode::SEE_OTHER, "text/plain", "");
    r.headers_mut()
        .insert("location", to.parse().expect("a static location"));
    if let Some(c) = cookie
        && let Ok(v) = c.parse()
    {
        r.headers_mut().insert("set-cookie", v);
    }
    r
}

/// The CSRF token of a session: derived from its operator token, so a page of another session
/// (or another site) cannot know it.
pub fn csrf(key: &hmac::Key, session: &str) -> String {
    let tag = hmac::sign(key, format!("csrf|{session}").as_bytes());
    tag.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn session_cookie(req: &Request<Incoming>) -> Option<String> {
    named_cookie(req, COOKIE)
}

/// Whether a POST comes from this port's own pages (no `Origin` at all: not a browser's
/// cross-site request).
fn same_origin(req: &Request<Incoming>) -> bool {
    let Some(origin) = req.headers().get("origin").and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = req
        .headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin.strip_prefix("http://") == Some(host)
}

async fn form(req: Request<Incoming>) -> Option<String> {
    let body = Limited::new(req.into_body(), MAX_FORM)
        .collect()
        .await
        .ok()?
        .to_bytes();
    String::from_utf8(body.to_vec()).ok()
}

/// Answers one request under `/ui`.
pub async fn handle(api: &AdminApi, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/ui") => return redirect("/ui/", None),
        (&Method::GET, "/ui/static/htmx.min.js") => {
            return respond(StatusCode::OK, "text/javascript", HTMX);
        }
        (&Method::GET, "/ui/static/sse.min.js") => {
            return respond(StatusCode::OK, "text/javascript", SSE);
        }
        (&Method::POST, "/ui/login") => return login(api, req).await,
        (&Method::GET, "/ui/oidc/login") => return oidc_begin(api).await,
        (&Method::GET, "/ui/oidc/callback") => return oidc_callback(api, &req, &query).await,
        _ => {}
    }
    let session = session_cookie(&req);
    let operator = session.as_deref().map(|s| api.verify(s));
    let (operator, session) = match (operator, session) {
        (Some(Ok(op)), Some(s)) => (op, s),
        (found, _) => {
            let why = match found {
                Some(Err(r)) => Some(r.1),
                _ => None,
            };
            return match (&method, path.as_str()) {
                (&Method::GET, "/ui/") => html(
                    StatusCode::OK,
                    html::login(why.as_deref(), oidc_name(api).as_deref()),
                ),
                (&Method::GET, p) if !p.starts_with("/ui/fragments") && p != "/ui/events" => {
                    redirect("/ui/", None)
                }
                _ => {
                    let mut r = html(
                        StatusCode::UNAUTHORIZED,
                        html::refusal(
                            why.as_deref()
                                .unwrap_or("not logged in: log in again at /ui/"),
                        ),
                    );
                    r.headers_mut()
                        .insert("hx-redirect", "/ui/".parse().expect("static"));
                    r
                }
            };
        }
    };
    let csrf = csrf(api.operator_key(), &session);
    if method == Method::POST {
        if !same_origin(&req) {
            return html(
                StatusCode::FORBIDDEN,
                html::refusal("this form was sent from another site: use the dashboard's own page"),
            );
        }
        let Some(form) = form(req).await else {
            return html(
                StatusCode::PAYLOAD_TOO_LARGE,
                html::refusal("the form is too large"),
            );
        };
        let sent = query_value(&form, "csrf").unwrap_or_default();
        if !constant_time_eq(sent.as_bytes(), csrf.as_bytes()) {
            return html(
                StatusCode::FORBIDDEN,
                html::refusal(
                    "the form's CSRF token does not match this session: reload the page and try again",
                ),
            );
        }
        return post(api, &operator, &csrf, &path, &form);
    }
    if method != Method::GET {
        return html(
            StatusCode::METHOD_NOT_ALLOWED,
            html::refusal("the dashboard takes GET and POST"),
        );
    }
    let page = query_value(&query, "page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let q = query_value(&query, "q").unwrap_or_default();
    let segments: Vec<&str> = path.trim_start_matches("/ui/").split('/').collect();
    match segments.as_slice() {
        [""] => html(
            StatusCode::OK,
            html::overview_page(&operator, &csrf, &overview(api, &operator, &csrf)),
        ),
        ["fragments", "overview"] => html(StatusCode::OK, overview(api, &operator, &csrf)),
        ["fragments", "tenants", tenant, "traffic"] => {
            let tenant = super::api::percent_decode(tenant);
            html(StatusCode::OK, html::traffic(api.traffic().get(&tenant)))
        }
        ["fragments", "tenants", tenant, "ai"] => {
            let tenant = super::api::percent_decode(tenant);
            match api.ai_usage(&tenant) {
                Some(view) => html(StatusCode::OK, ai::live(&view)),
                None => html(
                    StatusCode::NOT_FOUND,
                    html::refusal(&format!("no tenant {tenant:?} at this hub")),
                ),
            }
        }
        ["tenants", tenant] | ["fragments", "tenants", tenant] => {
            let tenant = super::api::percent_decode(tenant);
            let state = api.state();
            let Some(rows) = views::objects(&state, &tenant, Some(&q)) else {
                return html(
                    StatusCode::NOT_FOUND,
                    html::page(
                        "not found",
                        Some((&operator, &csrf)),
                        &html::refusal(&format!("no tenant {tenant:?} at this hub")),
                    ),
                );
            };
            let live = html::objects(&tenant, &q, &rows, page);
            if segments[0] == "fragments" {
                html(StatusCode::OK, live)
            } else {
                let held: Vec<String> = state
                    .owners
                    .iter()
                    .filter(|(_, owner)| **owner == tenant)
                    .map(|(host, _)| host.clone())
                    .collect();
                let ai = api
                    .ai_usage(&tenant)
                    .map(|v| ai::section(&tenant, &ai::live(&v)))
                    .unwrap_or_default();
                html(
                    StatusCode::OK,
                    html::tenant_page(
                        &operator,
                        &csrf,
                        &tenant,
                        &held,
                        &q,
                        &html::TenantParts {
                            traffic: &html::traffic(api.traffic().get(&tenant)),
                            live: &live,
                            ai: &ai,
                        },
                    ),
                )
            }
        }
        ["events"] => events(api),
        _ => html(
            StatusCode::NOT_FOUND,
            html::page(
                "not found",
                Some((&operator, &csrf)),
                &html::refusal(&format!("{path}: no such page")),
            ),
        ),
    }
}

fn overview(api: &AdminApi, operator: &Operator, csrf: &str) -> String {
    let state = api.state();
    html::overview(
        operator,
        csrf,
        &views::tenants(&state),
        &views::clusters(&state),
        &views::allocations(&state),
        &views::data_plane(&state),
    )
}

async fn login(api: &AdminApi, req: Request<Incoming>) -> Response<Body> {
    if !same_origin(&req) {
        return html(
            StatusCode::FORBIDDEN,
            html::login(
                Some("this form was sent from another site"),
                oidc_name(api).as_deref(),
            ),
        );
    }
    let token = form(req)
        .await
        .and_then(|f| query_value(&f, "token"))
        .unwrap_or_default();
    let token = token.trim();
    match api.verify(token) {
        Ok(op) => {
            tracing::info!(operator = %op.name, role = op.role.as_str(), "dashboard login");
            let max_age = op.expires.saturating_sub(unix_now() as u64);
            redirect(
                "/ui/",
                Some(format!(
                    "{COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}"
                )),
            )
        }
        Err(r) => html(
            StatusCode::UNAUTHORIZED,
            html::login(Some(&r.1), oidc_name(api).as_deref()),
        ),
    }
}

/// What the login page's OIDC button names, when `adminOidc` is configured.
fn oidc_name(api: &AdminApi) -> Option<String> {
    api.fleet()
        .config()
        .admin_oidc
        .as_ref()
        .map(|o| o.display_name.clone())
}

fn named_cookie(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

/// The pending-login cookie, set (`Some`) or cleared.
fn pending_cookie(value: Option<&str>) -> String {
    let name = super::oidc::flow::COOKIE;
    match value {
        Some(v) => format!(
            "{name}={v}; Path=/ui/oidc; HttpOnly; SameSite=Lax; Max-Age={}",
            super::oidc::flow::PENDING_TTL
        ),
        None => format!("{name}=; Path=/ui/oidc; HttpOnly; SameSite=Lax; Max-Age=0"),
    }
}

/// `GET /ui/oidc/login`: to the provider, with a fresh pending login.
async fn oidc_begin(api: &AdminApi) -> Response<Body> {
    let config = api.fleet().config();
    let Some(oidc) = config.admin_oidc.as_ref() else {
        return html(
            StatusCode::NOT_FOUND,
            html::login(
                Some("OIDC login is not configured at this hub (adminOidc)"),
                None,
            ),
        );
    };
    match super::oidc::begin(oidc, api.operator_key(), unix_now() as u64).await {
        Ok((url, cookie)) => {
            let mut r = respond(StatusCode::SEE_OTHER, "text/plain", "");
            match url.parse() {
                Ok(v) => {
                    r.headers_mut().insert("location", v);
                }
                Err(_) => {
                    return html(
                        StatusCode::BAD_GATEWAY,
                        html::login(
                            Some("the OIDC provider's authorization_endpoint is not a usable URL"),
                            Some(&oidc.display_name),
                        ),
                    );
                }
            }
            if let Ok(v) = pending_cookie(Some(&cookie)).parse() {
                r.headers_mut().append("set-cookie", v);
            }
            r
        }
        Err(e) => {
            tracing::warn!(error = %e, "dashboard OIDC login cannot start");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                html::login(Some(&e.to_string()), Some(&oidc.display_name)),
            )
        }
    }
}

/// `GET /ui/oidc/callback`: the provider sends the browser back; on success the session
/// cookie is set exactly as a token login sets it.
async fn oidc_callback(api: &AdminApi, req: &Request<Incoming>, query: &str) -> Response<Body> {
    let config = api.fleet().config();
    let Some(oidc) = config.admin_oidc.as_ref() else {
        return html(
            StatusCode::NOT_FOUND,
            html::login(
                Some("OIDC login is not configured at this hub (adminOidc)"),
                None,
            ),
        );
    };
    let pending = named_cookie(req, super::oidc::flow::COOKIE).filter(|v| !v.is_empty());
    let now = unix_now() as u64;
    let result = super::oidc::finish(
        oidc,
        api.operator_key(),
        api.oidc_completed(),
        pending.as_deref(),
        |name| query_value(query, name),
        now,
    )
    .await;
    let mut r = match result {
        Ok((token, op)) => {
            let mut r = html(StatusCode::OK, html::signed_in(&op));
            let max_age = op.expires.saturating_sub(now);
            if let Ok(v) =
                format!("{COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}")
                    .parse()
            {
                r.headers_mut().append("set-cookie", v);
            }
            r
        }
        Err(e) => {
            tracing::warn!(error = %e, "dashboard OIDC login refused");
            let status = if e.forbidden() {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNAUTHORIZED
            };
            html(
                status,
                html::login(Some(&e.to_string()), Some(&oidc.display_name)),
            )
        }
    };
    if let Ok(v) = pending_cookie(None).parse() {
        r.headers_mut().append("set-cookie", v);
    }
    r
}

fn post(api: &AdminApi, operator: &Operator, csrf: &str, path: &str, form: &str) -> Response<Body> {
    let segments: Vec<&str> = path.trim_start_matches("/ui/").split('/').collect();
    match segments.as_slice() {
        ["logout"] => redirect(
            "/ui/",
            Some(format!(
                "{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"
            )),
        ),
        ["clusters", tenant, cluster, action] => {
            let key = ClusterKey {
                tenant: super::api::percent_decode(tenant),
                cluster: super::api::percent_decode(cluster),
            };
            match api.cluster_action(operator, &key, action) {
                Ok(_) => html(StatusCode::OK, overview(api, operator, csrf)),
                Err(r) if r.0 == StatusCode::FORBIDDEN => {
                    html(StatusCode::FORBIDDEN, html::refusal(&r.1))
                }
                Err(r) => html(
                    StatusCode::OK,
                    html::refusal(&r.1) + &overview(api, operator, csrf),
                ),
            }
        }
        ["tokens"] => {
            let tenant = query_value(form, "tenant").unwrap_or_default();
            let cluster = query_value(form, "cluster").unwrap_or_default();
            let ttl = crate::enroll::token::DEFAULT_TTL.as_secs();
            match api.bootstrap_token(operator, tenant.trim(), cluster.trim(), ttl) {
                Ok((token, expires)) => html(
                    StatusCode::OK,
                    html::token_result(&tenant, &cluster, &token, expires),
                ),
                Err(r) if r.0 == StatusCode::FORBIDDEN => {
                    html(StatusCode::FORBIDDEN, html::refusal(&r.1))
                }
                Err(r) => html(StatusCode::OK, html::refusal(&r.1)),
            }
        }
        _ => html(
            StatusCode::NOT_FOUND,
            html::refusal(&format!("{path}: no such action")),
        ),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `GET /ui/events`: an event `fleet` whenever what the pages show may have changed.
fn events(api: &AdminApi) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    let fleet = api.fleet().clone();
    let mut statuses = api.statuses();
    let mut revision = fleet.subscribe();
    let mut config = fleet.subscribe_config();
    let envoys = api.envoys();
    tokio::spawn(async move {
        // Polled with the connections: Envoys ACK often, the page need not follow each ACK.
        let digest = |f: &crate::fleet::Fleet| {
            (
                f.connected_anywhere(),
                f.operator_disabled(),
                envoys.borrow().clone(),
            )
        };
        let mut last = digest(&fleet);
        let mut tick = tokio::time::interval(CONNECTIONS_EVERY);
        let mut n = 0u64;
        if tx
            .send(Ok(Frame::data(Bytes::from_static(b"retry: 2000\n\n"))))
            .await
            .is_err()
        {
            return;
        }
        loop {
            tokio::select! {
                r = statuses.changed() => if r.is_err() { return },
                r = revision.changed() => if r.is_err() { return },
                r = config.changed() => if r.is_err() { return },
                _ = tick.tick() => {
                    let now = digest(&fleet);
                    if now == last { continue; }
                    last = now;
                }
                _ = tx.closed() => return,
            }
            n += 1;
            let event = format!("event: fleet\ndata: {n}\n\n");
            if tx.send(Ok(Frame::data(Bytes::from(event)))).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-store")
        .body(StreamBody::new(ReceiverStream::new(rx)).boxed())
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_hex(b: &[u8]) -> String {
        ring::digest::digest(&ring::digest::SHA256, b)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn the_vendored_scripts_are_the_ones_listed() {
        let readme = include_str!("dashboard/static/README.md");
        for (name, bytes) in [("htmx.min.js", HTMX), ("sse.min.js", SSE)] {
            let hash = sha256_hex(bytes);
            assert!(
                readme
                    .lines()
                    .any(|l| l.contains(&format!("`{name}`")) && l.contains(&hash)),
                "{name} ({hash}) is not the file static/README.md lists"
            );
        }
    }

    #[test]
    fn csrf_tokens_are_per_session_and_per_key() {
        let k1 = hmac::Key::new(hmac::HMAC_SHA256, &[1; 32]);
        let k2 = hmac::Key::new(hmac::HMAC_SHA256, &[2; 32]);
        assert_eq!(csrf(&k1, "a").len(), 32);
        assert_eq!(csrf(&k1, "a"), csrf(&k1, "a"));
        assert_ne!(csrf(&k1, "a"), csrf(&k1, "b"));
        assert_ne!(csrf(&k1, "a"), csrf(&k2, "a"));
        assert!(constant_time_eq(b"ab", b"ab"));
        assert!(!constant_time_eq(b"ab", b"ac"));
        assert!(!constant_time_eq(b"ab", b"abc"));
    }
}
