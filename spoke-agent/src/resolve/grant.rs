//! ReferenceGrant checks: may an object in one namespace refer to an object in another?
//!
//! Where it sits: inside step 2 (resolve) of the agent, on the [`crate::state::ClusterState`]
//! snapshot, for cross-namespace backendRefs (HTTPRoute, TLSRoute -> Service) and
//! certificateRefs (Gateway -> Secret). A reference inside one namespace needs no grant. Across
//! namespaces it is allowed only when a ReferenceGrant in the *target* namespace lists the
//! referring group/kind/namespace in `from` and the target group/kind (and, if set, name) in
//! `to`. The snapshot follows the cluster, so deleting the grant withdraws the access on the
//! next translation. Pure.

use gateway_api::referencegrants::ReferenceGrant;

/// The core API group ("" in Gateway API references).
pub const CORE_GROUP: &str = "";

/// One side of a reference: group, kind, namespace (and, for the target, name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefEnd<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// Whether `from` may refer to `to` under `grants` (all ReferenceGrants of the cluster).
pub fn allowed(grants: &[ReferenceGrant], from: RefEnd<'_>, to: RefEnd<'_>) -> bool {
    if from.namespace == to.namespace {
        return true;
    }
    grants
        .iter()
        .filter(|g| g.metadata.namespace.as_deref() == Some(to.namespace))
        .any(|g| {
            g.spec.from.iter().any(|f| {
                f.group == from.group && f.kind == from.kind && f.namespace == from.namespace
            }) && g.spec.to.iter().any(|t| {
                t.group == to.group
                    && t.kind == to.kind
                    && t.name
                        .as_deref()
                        .is_none_or(|n| n.is_empty() || n == to.name)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_api::referencegrants::{ReferenceGrantFrom, ReferenceGrantSpec, ReferenceGrantTo};
    use kube::api::ObjectMeta;

    fn grant(ns: &str, from: (&str, &str, &str), to: (&str, &str, Option<&str>)) -> ReferenceGrant {
        ReferenceGrant {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some("g".into()),
                ..Default::default()
            },
            spec: ReferenceGrantSpec {
                from: vec![ReferenceGrantFrom {
                    group: from.0.into(),
                    kind: from.1.into(),
                    namespace: from.2.into(),
                }],
                to: vec![ReferenceGrantTo {
                    group: to.0.into(),
                    kind: to.1.into(),
                    name: to.2.map(str::to_string),
                }],
            },
        }
    }

    const GW: &str = "gateway.networking.k8s.io";

    fn route_to_svc(
        route_ns: &'static str,
        svc_ns: &'static str,
        svc: &'static str,
    ) -> (RefEnd<'static>, RefEnd<'static>) {
        (
            RefEnd {
                group: GW,
                kind: "HTTPRoute",
                namespace: route_ns,
                name: "r",
            },
            RefEnd {
                group: CORE_GROUP,
                kind: "Service",
                namespace: svc_ns,
                name: svc,
            },
        )
    }

    #[test]
    fn grant_matching_table() {
        let from_app = (GW, "HTTPRoute", "app");
        type Case<'a> = (&'a str, Vec<ReferenceGrant>, (RefEnd<'a>, RefEnd<'a>), bool);
        let cases: Vec<Case<'_>> = vec![
            (
                "same namespace needs no grant",
                vec![],
                route_to_svc("app", "app", "web"),
                true,
            ),
            (
                "cross namespace without grant",
                vec![],
                route_to_svc("app", "backend", "web"),
                false,
            ),
            (
                "grant for all Services of the namespace",
                vec![grant("backend", from_app, ("", "Service", None))],
                route_to_svc("app", "backend", "web"),
                true,
            ),
            (
                "grant naming this Service",
                vec![grant("backend", from_app, ("", "Service", Some("web")))],
                route_to_svc("app", "backend", "web"),
                true,
            ),
            (
                "grant naming another Service",
                vec![grant("backend", from_app, ("", "Service", Some("db")))],
                route_to_svc("app", "backend", "web"),
                false,
            ),
            (
                "grant in the referring namespace does not count",
                vec![grant("app", from_app, ("", "Service", None))],
                route_to_svc("app", "backend", "web"),
                false,
            ),
            (
                "grant for another referring namespace",
                vec![grant(
                    "backend",
                    (GW, "HTTPRoute", "other"),
                    ("", "Service", None),
                )],
                route_to_svc("app", "backend", "web"),
                false,
            ),
            (
                "grant for another referring kind",
                vec![grant(
                    "backend",
                    (GW, "TLSRoute", "app"),
                    ("", "Service", None),
                )],
                route_to_svc("app", "backend", "web"),
                false,
            ),
            (
                "grant to Secrets does not open Services",
                vec![grant("backend", from_app, ("", "Secret", None))],
                route_to_svc("app", "backend", "web"),
                false,
            ),
            (
                "grant with a group typo",
                vec![grant(
                    "backend",
                    ("gateway.networking.k8s.io.", "HTTPRoute", "app"),
                    ("", "Service", None),
                )],
                route_to_svc("app", "backend", "web"),
                false,
            ),
        ];
        for (name, grants, (from, to), want) in cases {
            assert_eq!(allowed(&grants, from, to), want, "{name}");
        }
    }

    #[test]
    fn gateway_to_secret() {
        let g = grant(
            "certs",
            (GW, "Gateway", "infra"),
            ("", "Secret", Some("web-tls")),
        );
        let from = RefEnd {
            group: GW,
            kind: "Gateway",
            namespace: "infra",
            name: "web",
        };
        let to = |name| RefEnd {
            group: CORE_GROUP,
            kind: "Secret",
            namespace: "certs",
            name,
        };
        assert!(allowed(std::slice::from_ref(&g), from, to("web-tls")));
        assert!(!allowed(std::slice::from_ref(&g), from, to("other-tls")));
    }
}
