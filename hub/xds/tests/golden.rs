//! Golden files for the translation snapshot -> Envoy resources (step 7 then step 8), in the style
//! of Envoy Gateway's `internal/gatewayapi/translator_test.go`: each `testdata/<case>.in.yaml`
//! holds the hub's model intent (as admission produced it) and the data plane; the test compiles
//! it (`fleetgate-hub-compile`), translates the snapshot (`resources::build`) and compares every
//! Envoy resource, decoded and printed, with `testdata/<case>.out.txt`.
//!
//! After an intended change to the translation, regenerate the files with one command and review
//! the diff:
//!
//! ```sh
//! FLEETGATE_BLESS=1 cargo test -p fleetgate-hub-xds --test golden
//! ```

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, ScopedRouteConfiguration};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::{Cors, CorsPolicy};
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::connection_limit::v3::ConnectionLimit;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use envoy_types::pb::envoy::extensions::filters::udp::udp_proxy::v3::{
    Route as UdpRoute, UdpProxyConfig,
};
use envoy_types::pb::envoy::extensions::http::early_header_mutation::header_mutation::v3::HeaderMutation as EarlyHeaderMutation;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    DownstreamTlsContext, Secret,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use fleetgate_hub_model::ai::AiBackend;
use fleetgate_hub_model::data_plane::{DataPlane, DataPlaneListener};
use fleetgate_hub_model::{
    ClusterIntent, ClusterKey, FleetIntent, Gateway, GrpcRoute, HttpRoute, ListenerSet, TlsRoute,
};
use fleetgate_hub_xds::resources::{self, PUSH_ORDER};
use prost::{Message, Name};
use serde::Deserialize;

/// One case: the data plane and each cluster's accepted objects.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    data_plane: CaseDataPlane,
    clusters: Vec<CaseCluster>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseDataPlane {
    address: IpAddr,
    listeners: Vec<DataPlaneListener>,
    #[serde(default)]
    ai_gateways: Vec<SocketAddr>,
}

/// One cluster's objects, each keyed by its `meta` namespace and name as the store keys them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseCluster {
    tenant: String,
    cluster: String,
    #[serde(default)]
    gateways: Vec<Gateway>,
    #[serde(default)]
    listener_sets: Vec<ListenerSet>,
    #[serde(default)]
    http_routes: Vec<HttpRoute>,
    #[serde(default)]
    grpc_routes: Vec<GrpcRoute>,
    #[serde(default)]
    tls_routes: Vec<TlsRoute>,
    #[serde(default)]
    ai_backends: Vec<AiBackend>,
}

fn intent(case: &Case) -> FleetIntent {
    let key = |m: &fleetgate_hub_model::Meta| (m.namespace.clone(), m.name.clone());
    case.clusters
        .iter()
        .map(|c| {
            let ci = ClusterIntent {
                gateways: c
                    .gateways
                    .iter()
                    .map(|o| (key(&o.meta), o.clone()))
                    .collect(),
                listener_sets: c
                    .listener_sets
                    .iter()
                    .map(|o| (key(&o.meta), o.clone()))
                    .collect(),
                http_routes: c
                    .http_routes
                    .iter()
                    .map(|o| (key(&o.meta), o.clone()))
                    .collect(),
                grpc_routes: c
                    .grpc_routes
                    .iter()
                    .map(|o| (key(&o.meta), o.clone()))
                    .collect(),
                tls_routes: c
                    .tls_routes
                    .iter()
                    .map(|o| (key(&o.meta), o.clone()))
                    .collect(),
                ai_backends: c
                    .ai_backends
                    .iter()
                    .map(|o| (key(&o.meta), o.clone()))
                    .collect(),
                ..Default::default()
            };
            let ck = ClusterKey {
                tenant: c.tenant.clone(),
                cluster: c.cluster.clone(),
            };
            (ck, std::sync::Arc::new(ci))
        })
        .collect()
}

/// The text of every resource the case's snapshot translates to, in push order.
fn render(case: &Case) -> String {
    let dp = DataPlane {
        address: case.data_plane.address,
        listeners: case.data_plane.listeners.clone(),
        ai_gateways: case.data_plane.ai_gateways.clone(),
    };
    let compiled = fleetgate_hub_compile::compile(&intent(case), &dp);
    let built = resources::build(&compiled.snapshot);
    let mut out = String::new();
    // What the compiler told each object, so that a case shows why an object has no resources.
    for (ck, statuses) in &compiled.statuses {
        for st in statuses.iter() {
            let k = &st.key;
            writeln!(
                out,
                "--- status {ck} {:?} {}/{}",
                k.kind, k.namespace, k.name
            )
            .unwrap();
            out.push_str(&serde_yaml::to_string(st).expect("a status serialises"));
        }
    }
    for type_url in PUSH_ORDER {
        for r in built.of(type_url) {
            let short = type_url.rsplit('.').next().unwrap_or(type_url);
            writeln!(out, "--- {short} {}", r.name).unwrap();
            let text = pretty(&decode(&r.any.type_url, &r.any.value));
            // Fields left at their protobuf default say nothing; a change from the default
            // still shows, as an added line.
            for line in text.lines().filter(|l| !is_default_field(l)) {
                writeln!(out, "{line}").unwrap();
            }
        }
    }
    out
}

/// `Debug` of the message an `Any` holds, with every nested `Any` decoded the same way.
fn decode(type_url: &str, value: &[u8]) -> String {
    macro_rules! known {
        ($($t:ty),* $(,)?) => {
            $(if type_url == <$t>::type_url() {
                let m = <$t>::decode(value).expect("a resource decodes as its own type");
                return nested_any(&format!("{m:?}"));
            })*
        };
    }
    known!(
        Listener,
        RouteConfiguration,
        Cluster,
        ClusterLoadAssignment,
        Secret,
        HttpConnectionManager,
        Router,
        TcpProxy,
        UdpProxyConfig,
        UdpRoute,
        LocalRateLimit,
        ConnectionLimit,
        Cors,
        CorsPolicy,
        TlsInspector,
        DownstreamTlsContext,
        HttpProtocolOptions,
        ScopedRouteConfiguration,
        EarlyHeaderMutation,
    );
    format!("Undecoded {{ type_url: {type_url:?}, value: {value:?} }}")
}

/// Replaces each `Any { type_url: "...", value: [..] }` of a `Debug` text by what it holds.
fn nested_any(text: &str) -> String {
    const HEAD: &str = "Any { type_url: \"";
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(HEAD) {
        out.push_str(&rest[..i]);
        let after = &rest[i + HEAD.len()..];
        let url_end = after.find('"').expect("a closing quote");
        let url = &after[..url_end];
        let after = &after[url_end..];
        let open = after.find('[').expect("the value's bytes");
        let close = after.find(']').expect("the end of the value's bytes");
        let bytes: Vec<u8> = after[open + 1..close]
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(|b| b.parse().expect("a byte"))
            .collect();
        let close_any = after[close..].find('}').expect("the end of the Any") + close;
        let short = url.rsplit('.').next().unwrap_or(url);
        write!(out, "Any<{short}> {{ {} }}", decode(url, &bytes)).unwrap();
        rest = &after[close_any + 1..];
    }
    out.push_str(rest);
    out
}

/// A `name: <protobuf default>` line of [`pretty`]'s output.
fn is_default_field(line: &str) -> bool {
    let l = line.trim().trim_end_matches(',');
    let Some((name, value)) = l.split_once(": ") else {
        return false;
    };
    name.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && matches!(value, "None" | "[]" | "{}" | "\"\"" | "false" | "0")
}

/// A `Debug` text indented one field per line, so that a change shows as a small diff.
fn pretty(text: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let newline = |out: &mut String, depth: usize| {
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' | '(' => {
                // Empty groups stay on one line.
                let close = match c {
                    '{' => '}',
                    '[' => ']',
                    _ => ')',
                };
                if chars.peek() == Some(&close) {
                    out.push(c);
                    out.push(chars.next().unwrap_or(close));
                    continue;
                }
                out.push(c);
                depth += 1;
                newline(&mut out, depth);
                while chars.peek() == Some(&' ') {
                    chars.next();
                }
            }
            '}' | ']' | ')' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
                while chars.peek() == Some(&' ') {
                    chars.next();
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

#[test]
fn golden() {
    let bless = std::env::var_os("FLEETGATE_BLESS").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(testdata())
        .expect("hub/xds/testdata")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".in.yaml"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no testdata/*.in.yaml");
    let mut failed = Vec::new();
    for input in cases {
        let text = std::fs::read_to_string(&input).expect("readable input");
        let case: Case =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        let got = render(&case);
        let out = PathBuf::from(input.to_string_lossy().replace(".in.yaml", ".out.txt"));
        if bless {
            std::fs::write(&out, &got).expect("writable output");
            continue;
        }
        let want = std::fs::read_to_string(&out).unwrap_or_default();
        if got != want {
            let line = got
                .lines()
                .zip(want.lines())
                .position(|(g, w)| g != w)
                .unwrap_or(got.lines().count().min(want.lines().count()));
            failed.push(format!(
                "{} differs from what the translation gives now, first at line {}",
                out.display(),
                line + 1
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{}\nif the change is intended, regenerate with \
         `FLEETGATE_BLESS=1 cargo test -p fleetgate-hub-xds --test golden` and review the diff",
        failed.join("\n")
    );
}
