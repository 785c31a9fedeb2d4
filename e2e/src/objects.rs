//! YAML builders of the objects a tenant applies in the e2e tests: GatewayClass, Gateway and
//! listeners, HTTPRoute, NodePort Service. Pure text, no harness: [`crate::fleet`] and
//! [`crate::fixtures`] (which re-exports them) both build on them.
//!
//! Test support, outside the data path. The builders return YAML text for
//! `TenantCluster::apply`; every name and value they take is the test's own literal.

/// GatewayClass `fleetgate`, claimed by fleetgate (`controllerName: fleetgate.dev/hub`).
pub const GATEWAY_CLASS: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: fleetgate
spec:
  controllerName: fleetgate.dev/hub
"#;

/// One item of a Gateway's `listeners:` (indented for [`gateway`]); `hostname` is optional.
pub fn listener(name: &str, protocol: &str, port: u16, hostname: Option<&str>) -> String {
    let host = hostname
        .map(|h| format!("    hostname: \"{h}\"\n"))
        .unwrap_or_default();
    format!("  - name: {name}\n    protocol: {protocol}\n    port: {port}\n{host}")
}

/// Gateway `name` in `default`, class `fleetgate`, with `listeners` (items from [`listener`],
/// or any YAML list indented by 2).
pub fn gateway(name: &str, listeners: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  gatewayClassName: fleetgate\n  listeners:\n{listeners}"
    )
}

/// [`GATEWAY_CLASS`] and Gateway `web` with one HTTP listener `http` on port 80 (`hostname`
/// optional): what most HTTP tests start from.
pub fn class_and_http_gateway(hostname: Option<&str>) -> String {
    format!(
        "{GATEWAY_CLASS}---\n{}",
        gateway("web", &listener("http", "HTTP", 80, hostname))
    )
}

/// HTTPRoute `namespace/name`. `parents` are parentRefs in YAML flow style (`{name: web}`),
/// `rules` is the YAML under `rules:` (items indented by 2, e.g. from [`rule_to`]).
pub fn http_route(
    namespace: &str,
    name: &str,
    parents: &[&str],
    hostnames: &[&str],
    rules: &str,
) -> String {
    let parents: String = parents.iter().map(|p| format!("  - {p}\n")).collect();
    let hostnames = if hostnames.is_empty() {
        String::new()
    } else {
        format!("  hostnames: [{}]\n", hostnames.join(", "))
    };
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  parentRefs:\n{parents}{hostnames}  rules:\n{rules}"
    )
}

/// HTTPRoute `name` in `default` on Gateway `web` for `hostname`, one rule: all paths to
/// Service `default/svc` port 8080.
pub fn simple_http_route(name: &str, hostname: &str, svc: &str) -> String {
    route_in("default", name, "web", hostname, svc)
}

/// HTTPRoute `namespace/name` on Gateway `default/gateway` for `hostname`, one rule: all paths
/// to Service `default/svc` port 8080 (a cross-namespace reference unless `namespace` is
/// `default`).
pub fn route_in(namespace: &str, name: &str, gateway: &str, hostname: &str, svc: &str) -> String {
    http_route(
        namespace,
        name,
        &[&format!("{{name: {gateway}, namespace: default}}")],
        &[&format!("\"{hostname}\"")],
        &rule_to(None, &[(&format!("default/{svc}"), 1)]),
    )
}

/// One `rules:` item: PathPrefix `path` (all paths when `None`) to (Service, weight)s on port
/// 8080; a Service `ns/name` is in another namespace.
pub fn rule_to(path: Option<&str>, backends: &[(&str, u32)]) -> String {
    let matches = path
        .map(|p| format!("    matches:\n    - path: {{type: PathPrefix, value: {p}}}\n"))
        .unwrap_or_default();
    let refs: String = backends
        .iter()
        .map(|(svc, w)| {
            let (ns, name) = match svc.split_once('/') {
                Some((ns, name)) => (format!(", namespace: {ns}"), name),
                None => (String::new(), *svc),
            };
            format!("    - {{name: {name}{ns}, port: 8080, weight: {w}}}\n")
        })
        .collect();
    let head = if matches.is_empty() {
        "  - backendRefs:\n".to_string()
    } else {
        format!("  -{}    backendRefs:\n", &matches[3..])
    };
    format!("{head}{refs}")
}

/// A NodePort Service `namespace/name` with one port (`protocol`, `port` -> targetPort `port`,
/// the given `node_port`, optional appProtocol), selecting `app: name`.
pub fn node_port_service(
    namespace: &str,
    name: &str,
    protocol: &str,
    port: u16,
    node_port: u16,
    app_protocol: Option<&str>,
) -> String {
    let app = app_protocol
        .map(|p| format!("    appProtocol: {p}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  type: NodePort\n  selector:\n    app: {name}\n  ports:\n  - name: p\n    protocol: {protocol}\n    port: {port}\n    targetPort: {port}\n    nodePort: {node_port}\n{app}"
    )
}

/// A NodePort Service for an HTTP echo backend: port 8080 -> targetPort 8080, `node_port`.
pub fn http_service(namespace: &str, name: &str, node_port: u16) -> String {
    node_port_service(namespace, name, "TCP", 8080, node_port, None)
}

/// `e2e/ai/tenant-openai-backend.yaml`: a tenant's hostname-less `agentgateway` Gateway `ai`
/// with an HTTPRoute to AgentgatewayBackend `default/llm`, an OpenAI-compatible provider behind
/// NodePort Service `mock` on `node_port`, its key `key` in a Secret.
pub fn tenant_openai_backend(node_port: u16, key: &str) -> String {
    include_str!("../ai/tenant-openai-backend.yaml")
        .replace("NODE_PORT", &node_port.to_string())
        .replace("PROVIDER_KEY", key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every builder's output parses as YAML with the fields the tests rely on.
    #[test]
    fn builders_produce_the_objects_they_name() {
        let docs: Vec<serde_json::Value> = class_and_http_gateway(Some("*.a.example"))
            .split("---\n")
            .map(|d| serde_yaml::from_str(d).unwrap())
            .collect();
        assert_eq!(docs[0]["spec"]["controllerName"], "fleetgate.dev/hub");
        let l = &docs[1]["spec"]["listeners"][0];
        assert_eq!(
            (l["name"].as_str(), l["port"].as_u64()),
            (Some("http"), Some(80))
        );
        assert_eq!(l["hostname"], "*.a.example");

        let r: serde_json::Value = serde_yaml::from_str(&http_route(
            "team",
            "r",
            &["{name: web, namespace: default, sectionName: http, port: 80}"],
            &["x.a.example"],
            &format!(
                "{}{}",
                rule_to(Some("/p"), &[("one", 80), ("other/two", 20)]),
                rule_to(None, &[("one", 1)])
            ),
        ))
        .unwrap();
        assert_eq!(r["metadata"]["namespace"], "team");
        assert_eq!(r["spec"]["parentRefs"][0]["port"], 80);
        assert_eq!(r["spec"]["hostnames"][0], "x.a.example");
        let rules = &r["spec"]["rules"];
        assert_eq!(rules[0]["matches"][0]["path"]["value"], "/p");
        assert_eq!(rules[0]["backendRefs"][1]["namespace"], "other");
        assert_eq!(rules[0]["backendRefs"][1]["weight"], 20);
        assert!(rules[1]["matches"].is_null());
        assert_eq!(rules[1]["backendRefs"][0]["name"], "one");

        let s: serde_json::Value = serde_yaml::from_str(&node_port_service(
            "default",
            "db",
            "TCP",
            5432,
            30432,
            Some("kubernetes.io/h2c"),
        ))
        .unwrap();
        let p = &s["spec"]["ports"][0];
        assert_eq!(
            (p["port"].as_u64(), p["nodePort"].as_u64()),
            (Some(5432), Some(30432))
        );
        assert_eq!(p["appProtocol"], "kubernetes.io/h2c");
        let s: serde_json::Value =
            serde_yaml::from_str(&http_service("default", "echo-a", 30123)).unwrap();
        assert_eq!(s["spec"]["type"], "NodePort");
        assert_eq!(s["spec"]["ports"][0]["port"], 8080);
        assert_eq!(s["spec"]["ports"][0]["nodePort"], 30123);
    }
}
