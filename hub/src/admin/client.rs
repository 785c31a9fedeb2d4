//! `fleetgate-hub admin ...`: the CLI over the admin API ([`super::api`]). It sends one request,
//! then prints the answer as a table (default) or as the API's JSON (`--output json`); any
//! refusal goes to stderr with the hub's message, and the process exits non-zero.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// What `fleetgate-hub admin` can ask.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminCommand {
    /// Who the token speaks for, and its role.
    Whoami,
    /// Every tenant: clusters, connections, objects, problems, hostnames held.
    Tenants,
    /// Clusters: list them, or disable, enable or revoke one (admin role).
    Clusters {
        #[command(subcommand)]
        command: ClustersCommand,
    },
    /// Bootstrap tokens (admin role).
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// The status of one tenant's objects, as the tenant sees it.
    Status {
        #[arg(long)]
        tenant: String,
        /// Only objects whose kind, namespace or name contains this.
        #[arg(long)]
        query: Option<String>,
    },
    /// L4 address and port allocations, and ports without one.
    Allocations,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ClustersCommand {
    List,
    /// Out of the data plane, its agent refused, until enabled (survives restarts).
    Disable {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        cluster: String,
    },
    /// Lifts an operator's disable (a cluster the configuration disables stays disabled).
    Enable {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        cluster: String,
    },
    /// Refuses every certificate issued to the cluster so far: its agent must enroll again.
    Revoke {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        cluster: String,
    },
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum TokensCommand {
    /// A single-use bootstrap token for one cluster (like `fleetgate-hub token create`,
    /// through the running hub and without its PKI directory).
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        cluster: String,
        /// How long it may be used, in seconds (at most 86400).
        #[arg(long, default_value_t = 900)]
        ttl_seconds: u64,
    },
}

/// The request a command sends: method, path and JSON body.
pub fn request_for(cmd: &AdminCommand) -> (Method, String, Option<Value>) {
    let get = |p: &str| (Method::GET, format!("/api/v1/{p}"), None);
    let action = |t: &str, c: &str, a: &str| {
        (
            Method::POST,
            format!("/api/v1/clusters/{}/{}/{a}", segment(t), segment(c)),
            None,
        )
    };
    match cmd {
        AdminCommand::Whoami => get("whoami"),
        AdminCommand::Tenants => get("tenants"),
        AdminCommand::Allocations => get("allocations"),
        AdminCommand::Clusters { command } => match command {
            ClustersCommand::List => get("clusters"),
            ClustersCommand::Disable { tenant, cluster } => action(tenant, cluster, "disable"),
            ClustersCommand::Enable { tenant, cluster } => action(tenant, cluster, "enable"),
            ClustersCommand::Revoke { tenant, cluster } => action(tenant, cluster, "revoke"),
        },
        AdminCommand::Tokens {
            command:
                TokensCommand::Create {
                    tenant,
                    cluster,
                    ttl_seconds,
                },
        } => (
            Method::POST,
            "/api/v1/tokens".into(),
            Some(
                serde_json::json!({"tenant": tenant, "cluster": cluster, "ttlSeconds": ttl_seconds}),
            ),
        ),
        AdminCommand::Status { tenant, query } => {
            let mut p = format!("/api/v1/tenants/{}/objects", segment(tenant));
            if let Some(q) = query {
                p.push_str("?q=");
                p.push_str(&percent_encode(q));
            }
            (Method::GET, p, None)
        }
    }
}

/// A path segment the operator typed, percent-encoded so it stays one segment.
fn segment(s: &str) -> String {
    percent_encode(s)
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// How to print answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// Why a command failed; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `http://host:port`.
    #[error("--url {0:?}: use the hub's adminListen as http://<host>:<port>")]
    Url(String),
    /// The hub could not be reached.
    #[error(
        "cannot reach the hub's admin API at {url}: {message}; check --url (the hub's adminListen) and that the hub runs"
    )]
    Connect { url: String, message: String },
    /// The hub answered with an error.
    #[error("the hub refused ({status}): {message}")]
    Refused { status: StatusCode, message: String },
    /// The answer was not the JSON the API sends.
    #[error("the hub's answer is not the admin API's JSON: {0}")]
    Answer(String),
}

/// Sends `method path` (with a JSON `body`) to the admin API at `url` with `token`.
pub async fn call(
    url: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, ClientError> {
    let base = url.trim_end_matches('/');
    if !base.starts_with("http://") || base.len() <= "http://".len() {
        return Err(ClientError::Url(url.to_string()));
    }
    let uri: hyper::Uri = format!("{base}{path}")
        .parse()
        .map_err(|_| ClientError::Url(url.to_string()))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {}", token.trim()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| ClientError::Answer(e.to_string()))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let resp = client
        .request(req)
        .await
        .map_err(|e| ClientError::Connect {
            url: url.to_string(),
            message: e.to_string(),
        })?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| ClientError::Connect {
            url: url.to_string(),
            message: e.to_string(),
        })?
        .to_bytes();
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| {
        ClientError::Answer(String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned())
    })?;
    if !status.is_success() {
        let message = value
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no reason given")
            .to_string();
        return Err(ClientError::Refused { status, message });
    }
    Ok(value)
}

/// The columns a table of each answer shows: (header, JSON field).
pub fn columns(path: &str) -> &'static [(&'static str, &'static str)] {
    if path.ends_with("/tenants") {
        &[
            ("TENANT", "name"),
            ("CLUSTERS", "clusters"),
            ("CONNECTED", "connected"),
            ("OBJECTS", "objects"),
            ("PROBLEMS", "withProblems"),
            ("HOSTNAMES", "ownedHostnames"),
        ]
    } else if path.ends_with("/clusters") {
        &[
            ("TENANT", "tenant"),
            ("CLUSTER", "cluster"),
            ("STATE", "state"),
            ("DISABLED BY", "disabledBy"),
            ("OBJECTS", "objects"),
            ("PROBLEMS", "withProblems"),
        ]
    } else if path.ends_with("/allocations") {
        &[
            ("TENANT", "tenant"),
            ("CLUSTER", "cluster"),
            ("KIND", "owner"),
            ("NAMESPACE", "namespace"),
            ("NAME", "name"),
            ("PORT", "port"),
            ("PROTOCOL", "protocol"),
            ("ADDRESS", "address"),
            ("ERROR", "error"),
        ]
    } else if path.ends_with("/objects") {
        &[
            ("CLUSTER", "cluster"),
            ("KIND", "kind"),
            ("NAMESPACE", "namespace"),
            ("NAME", "name"),
            ("PROBLEMS", "problems"),
        ]
    } else {
        &[]
    }
}

/// One cell: strings as they are, lists joined by commas, problems as their messages, null
/// as `-`.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.is_empty() => "-".into(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::Object(o) => format!(
                    "{} {}: {}",
                    o.get("type").and_then(Value::as_str).unwrap_or(""),
                    o.get("reason").and_then(Value::as_str).unwrap_or(""),
                    o.get("message").and_then(Value::as_str).unwrap_or("")
                ),
                other => cell(Some(other)),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// `rows` (a JSON array) as an aligned text table with `columns`; anything else as JSON.
pub fn table(value: &Value, columns: &[(&str, &str)]) -> String {
    let Some(rows) = value.as_array().filter(|_| !columns.is_empty()) else {
        return serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|(_, f)| cell(r.get(*f))).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (h, _))| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |items: Vec<&str>| {
        let mut s = String::new();
        for (i, item) in items.iter().enumerate() {
            if i + 1 == items.len() {
                s.push_str(item);
            } else {
                s.push_str(&format!("{item:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(columns.iter().map(|(h, _)| *h).collect());
    for r in &cells {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_aligns_columns_and_renders_lists_nulls_and_problems() {
        let rows = serde_json::json!([
            {"tenant": "a", "cluster": "east", "state": "connected", "disabledBy": [], "objects": 3, "withProblems": 0},
            {"tenant": "tenant-b", "cluster": "c1", "state": "disabled", "disabledBy": ["operator"], "objects": 12, "withProblems": 1},
        ]);
        assert_eq!(
            table(&rows, columns("/api/v1/clusters")),
            "TENANT    CLUSTER  STATE      DISABLED BY  OBJECTS  PROBLEMS\n\
             a         east     connected  -            3        0\n\
             tenant-b  c1       disabled   operator     12       1\n"
        );
        let objects = serde_json::json!([{"cluster": "east", "kind": "HttpRoute", "namespace": "default", "name": "api",
            "problems": [{"on": "x", "type": "Accepted", "reason": "NotAllowedByListeners", "message": "no listener"}]}]);
        assert!(
            table(&objects, columns("/api/v1/tenants/a/objects"))
                .contains("Accepted NotAllowedByListeners: no listener")
        );
        // Not a list: the JSON as it came.
        let one = serde_json::json!({"changed": true});
        assert_eq!(
            table(&one, columns("/api/v1/tokens")),
            "{\n  \"changed\": true\n}\n"
        );
    }
}
