//! The operators' admin API and its CLI: what a fleet operator reads and does without logs.
//!
//! Where it sits: beside the data path, on the hub's `adminListen` port (with /metrics,
//! /healthz and /readyz, `fleetgate_observe`), never on a tenant-facing port. It reads what the
//! hub already publishes (the fleet's accepted intent, its compiled statuses, who is connected)
//! and its actions go through [`crate::fleet::Fleet`], the one writer of that state.
//!
//! - [`operator_token`]: bearer tokens for operators, minted by `fleetgate-hub operator-token
//!   create` with the hub's key (no running hub needed), each with a role: `viewer` reads,
//!   `admin` also acts.
//! - [`views`]: pure functions from the hub's state to the rows the API answers; [`ai_usage`]:
//!   one tenant's AI usage, budgets left and MCP/A2A catalogs.
//! - [`api`]: the HTTP routes under `/api/v1/`, authentication, roles, errors.
//! - [`client`]: `fleetgate-hub admin ...`, the CLI over that API, `--output table|json`.
//! - [`dashboard`]: the same, as live web pages under `/ui/`.
//! - [`oidc`]: the dashboard's login through an OpenID Connect provider (`adminOidc`).

pub mod ai_usage;
pub mod api;
pub mod client;
pub mod dashboard;
pub mod oidc;
pub mod operator_token;
pub mod views;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

/// Answers a request on the admin port that is not /metrics or health: `/api/` goes to the
/// API, `/ui` to the dashboard.
pub async fn serve(
    api: &api::AdminApi,
    req: Request<Incoming>,
) -> Response<fleetgate_observe::Body> {
    let path = req.uri().path();
    if path.starts_with("/api/") {
        api.handle(req).await.map(|b| b.boxed())
    } else if path == "/ui" || path.starts_with("/ui/") {
        dashboard::handle(api, req).await
    } else {
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header("content-type", "text/plain")
            .body(
                Full::new(Bytes::from(
                    "not found: this port serves /metrics, /healthz, /readyz, the admin API under /api/v1/ and the dashboard under /ui/\n",
                ))
                .boxed(),
            )
            .expect("static response parts are valid")
    }
}
