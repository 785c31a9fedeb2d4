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
//! - [`views`]: pure functions from the hub's state to the rows the API answers.
//! - [`api`]: the HTTP routes under `/api/v1/`, authentication, roles, errors.
//! - [`client`]: `fleetgate-hub admin ...`, the CLI over that API, `--output table|json`.

pub mod api;
pub mod client;
pub mod operator_token;
pub mod views;
