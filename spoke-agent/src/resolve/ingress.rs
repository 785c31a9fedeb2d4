//! Resolve: an Ingress backend (`service.name` + `port.number` or `port.name`, or a `resource`)
//! -> a [`Backend`], by the code HTTPRoute backendRefs use; a port name is looked up among the
//! Service's ports first. Used by `translate::ingress` (what is sent) and `status::ingress`
//! (what is reported on the Ingress), so both say the same.
//!
//! Where it sits: step 2 of the data path, pure.

use k8s_openapi::api::networking::v1::IngressBackend;

use super::{Backend, BackendRef, Index, Problem, Reason, resolve_backend_ref};
use crate::state::ClusterState;

/// An Ingress backend in namespace `ns` -> a resolved backend (weight 1), or one with the
/// problem that explains why it has no endpoints.
pub fn resolve_ingress_backend(
    ns: &str,
    b: &IngressBackend,
    state: &ClusterState,
    index: &Index<'_>,
) -> Backend {
    let unresolved = |name: &str, port: u32, reason: Reason, message: String| Backend {
        namespace: ns.to_string(),
        name: name.to_string(),
        port,
        weight: 1,
        app_protocol: String::new(),
        endpoints: Vec::new(),
        problem: Some(Problem { reason, message }),
        kind: String::new(),
    };
    let Some(svc) = &b.service else {
        let what = b
            .resource
            .as_ref()
            .map(|r| {
                format!(
                    "{} {}",
                    match &r.api_group {
                        Some(g) if !g.is_empty() => format!("{}.{g}", r.kind),
                        _ => r.kind.clone(),
                    },
                    r.name
                )
            })
            .unwrap_or_else(|| "(none)".into());
        return unresolved(
            "",
            0,
            Reason::InvalidKind,
            format!(
                "Ingress backend resource {what} is not supported: fleetgate routes Ingresses to Services only (backend.service)"
            ),
        );
    };
    let port = svc.port.as_ref();
    let number = match (
        port.and_then(|p| p.number),
        port.and_then(|p| p.name.as_deref()),
    ) {
        (Some(n), _) => Some(n),
        (None, Some(port_name)) => {
            let found = state.services.iter().find(|s| {
                s.metadata.namespace.as_deref() == Some(ns)
                    && s.metadata.name.as_deref() == Some(svc.name.as_str())
            });
            match found {
                // Resolved below, which says the Service is not found.
                None => None,
                Some(s) => match s
                    .spec
                    .iter()
                    .flat_map(|sp| sp.ports.iter().flatten())
                    .find(|p| p.name.as_deref() == Some(port_name))
                {
                    Some(p) => Some(p.port),
                    None => {
                        return unresolved(
                            &svc.name,
                            0,
                            Reason::BackendNotFound,
                            format!(
                                "Service {ns}/{} has no port named {port_name:?}; name one of its ports in the Ingress backend (service.port.name or service.port.number)",
                                svc.name
                            ),
                        );
                    }
                },
            }
        }
        (None, None) => None,
    };
    resolve_backend_ref(
        "HTTPRoute",
        ns,
        BackendRef {
            group: None,
            kind: None,
            namespace: None,
            name: &svc.name,
            port: number,
            weight: None,
        },
        index,
        "TCP",
    )
}
