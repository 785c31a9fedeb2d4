//! The protocol state of one AI gateway stream, without I/O (unit-tested directly; the server
//! in `super::server` feeds it).
//!
//! - [`Session::first_update`]: revision 1, `full_state`, every tenant. The gateway's `Hello`
//!   says which versions it serves, but a full state drops every tenant it does not name, so
//!   nothing is left out: a tenant the gateway already serves at that version is sent again and
//!   applied again, unchanged.
//! - [`Session::next_update`]: on each new [`Published`], only the tenants whose version
//!   differs from what this stream was sent, and those gone; revision + 1; nothing when
//!   nothing changed.
//! - [`Session::on_ack`]: per-tenant verdicts of an Update, matched with what that revision
//!   carried. An accepted version is served; a refused one is recorded with the
//!   AgentgatewayBackends it blames while it is the tenant's newest version sent (a refusal
//!   of a version already superseded is logged, not recorded).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use fleetgate_proto::aigateway::v1 as pb;

use super::status::{GatewayView, Refusal};
use super::version::{Published, PublishedTenant};

/// Updates kept for their Acks; a gateway this far behind has its oldest forgotten (an Ack for
/// a forgotten revision is ignored, and the next one brings the view up to date).
pub const MAX_UNACKED: usize = 64;

/// Longest refusal reason kept (the gateway's reasons are one line naming a field).
const MAX_REASON: usize = 1024;

/// What one Update carried.
#[derive(Debug)]
struct Sent {
    full_state: bool,
    tenants: BTreeMap<String, Arc<PublishedTenant>>,
    removed: BTreeSet<String>,
}

/// One stream's state.
#[derive(Debug)]
pub struct Session {
    revision: u64,
    /// The newest version of each tenant this stream sent (what the gateway will serve once
    /// it has applied everything, refusals aside).
    sent: BTreeMap<String, Arc<PublishedTenant>>,
    unacked: BTreeMap<u64, Sent>,
    view: GatewayView,
}

/// What an Ack changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AckOutcome {
    /// The Ack answered no Update this stream still remembers.
    pub unknown_revision: bool,
    /// Refused tenants: (tenant, version, reason), recorded or not.
    pub refused: Vec<(String, u64, String)>,
}

impl Session {
    /// A stream whose gateway said `hello`.
    pub fn new(hello: &pb::Hello) -> Self {
        Self {
            revision: 0,
            sent: BTreeMap::new(),
            unacked: BTreeMap::new(),
            view: GatewayView {
                gateway_id: hello.gateway_id.clone(),
                serving: hello
                    .serving
                    .iter()
                    .map(|t| (t.tenant.clone(), t.version))
                    .collect(),
                refused: BTreeMap::new(),
            },
        }
    }

    /// What this gateway serves and refuses, as far as the hub knows.
    pub fn view(&self) -> &GatewayView {
        &self.view
    }

    /// The first Update of the stream: every tenant, `full_state`.
    pub fn first_update(&mut self, published: &Published) -> pb::Update {
        self.revision = 0;
        self.sent.clear();
        self.unacked.clear();
        self.send(true, published.tenants.clone(), BTreeSet::new())
    }

    /// The incremental Update from what was sent to `published`, if anything changed.
    pub fn next_update(&mut self, published: &Published) -> Option<pb::Update> {
        let upserted: BTreeMap<String, Arc<PublishedTenant>> = published
            .tenants
            .iter()
            .filter(|(t, p)| self.sent.get(*t).is_none_or(|s| s.version != p.version))
            .map(|(t, p)| (t.clone(), p.clone()))
            .collect();
        let removed: BTreeSet<String> = self
            .sent
            .keys()
            .filter(|t| !published.tenants.contains_key(*t))
            .cloned()
            .collect();
        if upserted.is_empty() && removed.is_empty() {
            return None;
        }
        Some(self.send(false, upserted, removed))
    }

    fn send(
        &mut self,
        full_state: bool,
        tenants: BTreeMap<String, Arc<PublishedTenant>>,
        removed: BTreeSet<String>,
    ) -> pb::Update {
        self.revision += 1;
        for t in &removed {
            self.sent.remove(t);
        }
        self.sent
            .extend(tenants.iter().map(|(t, p)| (t.clone(), p.clone())));
        let update = pb::Update {
            revision: self.revision,
            full_state,
            tenants: tenants.values().map(|p| p.config.clone()).collect(),
            removed_tenants: removed.iter().cloned().collect(),
        };
        self.unacked.insert(
            self.revision,
            Sent {
                full_state,
                tenants,
                removed,
            },
        );
        while self.unacked.len() > MAX_UNACKED {
            self.unacked.pop_first();
        }
        update
    }

    /// Takes the gateway's verdicts on one Update.
    pub fn on_ack(&mut self, ack: &pb::Ack) -> AckOutcome {
        let mut outcome = AckOutcome::default();
        // Acks come in order: older Updates left unanswered are answered by none now.
        let Some(sent) = self.unacked.remove(&ack.revision) else {
            outcome.unknown_revision = true;
            return outcome;
        };
        self.unacked.retain(|r, _| *r > ack.revision);
        let view = &mut self.view;
        if sent.full_state {
            // The gateway dropped every tenant the full state did not name.
            view.serving.retain(|t, _| sent.tenants.contains_key(t));
            view.refused.retain(|t, _| sent.tenants.contains_key(t));
        }
        for t in &sent.removed {
            view.serving.remove(t);
            view.refused.remove(t);
        }
        for status in &ack.tenants {
            let Some(published) = sent.tenants.get(&status.tenant) else {
                continue;
            };
            if status.version != published.version {
                continue;
            }
            if status.accepted {
                view.serving.insert(status.tenant.clone(), status.version);
                view.refused.remove(&status.tenant);
                continue;
            }
            let reason: String = status.reason.chars().take(MAX_REASON).collect();
            outcome
                .refused
                .push((status.tenant.clone(), status.version, reason.clone()));
            let newest = self
                .sent
                .get(&status.tenant)
                .is_some_and(|p| p.version == status.version);
            if newest {
                let sources = blamed(published, &reason);
                view.refused.insert(
                    status.tenant.clone(),
                    Refusal {
                        version: status.version,
                        reason,
                        sources,
                    },
                );
            }
        }
        outcome
    }
}

/// The AgentgatewayBackends a refusal blames: those whose route id the reason names
/// (`...routes.<route id>.` or `...routes.<route id>:`), else every route of the tenant.
fn blamed(
    tenant: &PublishedTenant,
    reason: &str,
) -> BTreeSet<crate::model::snapshot::SourceObject> {
    let named: Vec<&String> = tenant
        .content
        .routes
        .keys()
        .filter(|id| names_route(reason, id))
        .collect();
    // `ns/x` is also found inside `ns/x.y`'s name: the longer one is the one named.
    let named: Vec<&String> = named
        .iter()
        .filter(|id| {
            !named
                .iter()
                .any(|other| other.len() > id.len() && other.starts_with(&format!("{id}.")))
        })
        .copied()
        .collect();
    let ids: Vec<&String> = if named.is_empty() {
        tenant.content.routes.keys().collect()
    } else {
        named
    };
    ids.into_iter()
        .filter_map(|id| tenant.source(id).cloned())
        .collect()
}

/// Whether `reason` names route `id` as `routes.<id>` followed by `.`, `:`, a space or the end.
fn names_route(reason: &str, id: &str) -> bool {
    let needle = format!("routes.{id}");
    reason.match_indices(&needle).any(|(i, _)| {
        matches!(
            reason[i + needle.len()..].chars().next(),
            None | Some('.' | ':' | ' ')
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai_config::convert::tests::{route, source};
    use crate::ai_config::version::Versioner;
    use crate::model::ai::{AiAuth, AiSnapshot, AiTenant};

    /// Tenants with their routes' ports: `("a", &[("x", 1)])`.
    fn snap(tenants: &[(&str, &[(&str, u16)])]) -> AiSnapshot {
        AiSnapshot {
            tenants: tenants
                .iter()
                .map(|(t, routes)| {
                    let routes = routes
                        .iter()
                        .map(|(name, port)| {
                            (
                                format!("c1/llm/{name}"),
                                route(t, name, *port, AiAuth::None),
                            )
                        })
                        .collect();
                    (
                        t.to_string(),
                        AiTenant {
                            routes,
                            ..Default::default()
                        },
                    )
                })
                .collect(),
        }
    }

    fn hello(serving: &[(&str, u64)]) -> pb::Hello {
        pb::Hello {
            gateway_id: "gw-0".into(),
            gateway_version: "0.1.0".into(),
            serving: serving
                .iter()
                .map(|(t, v)| pb::TenantVersion {
                    tenant: t.to_string(),
                    version: *v,
                })
                .collect(),
        }
    }

    fn names(u: &pb::Update) -> Vec<(&str, u64)> {
        u.tenants
            .iter()
            .map(|t| (t.tenant.as_str(), t.version))
            .collect()
    }

    fn verdict(tenant: &str, version: u64, accepted: bool, reason: &str) -> pb::TenantStatus {
        pb::TenantStatus {
            tenant: tenant.into(),
            version,
            accepted,
            reason: reason.into(),
        }
    }

    #[test]
    fn full_state_first_then_only_what_changed() {
        let mut v = Versioner::default();
        let p1 = v.publish(
            &Published::default(),
            &snap(&[("a", &[("x", 1)]), ("b", &[("y", 1)])]),
            100,
        );
        // The gateway already serves a at 100: it is sent anyway (a full state names all).
        let mut s = Session::new(&hello(&[("a", 100), ("old", 3)]));
        assert_eq!(
            s.view().serving,
            [("a".into(), 100), ("old".into(), 3)].into()
        );
        let first = s.first_update(&p1);
        assert_eq!((first.revision, first.full_state), (1, true));
        assert_eq!(names(&first), [("a", 100), ("b", 101)]);
        assert!(first.removed_tenants.is_empty());
        assert_eq!(s.next_update(&p1), None, "nothing changed");

        // b changes, c appears, a stays: only b and c.
        let p2 = v.publish(
            &p1,
            &snap(&[("a", &[("x", 1)]), ("b", &[("y", 2)]), ("c", &[("z", 1)])]),
            200,
        );
        let u = s.next_update(&p2).unwrap();
        assert_eq!((u.revision, u.full_state), (2, false));
        assert_eq!(names(&u), [("b", 200), ("c", 201)]);
        // a removed.
        let p3 = v.publish(&p2, &snap(&[("b", &[("y", 2)]), ("c", &[("z", 1)])]), 300);
        let u = s.next_update(&p3).unwrap();
        assert_eq!(u.revision, 3);
        assert!(u.tenants.is_empty());
        assert_eq!(u.removed_tenants, ["a"]);
        assert_eq!(s.next_update(&p3), None);

        // A new stream (reconnect) starts over with a full state.
        let mut again = Session::new(&hello(&[("b", 200), ("c", 201)]));
        let first = again.first_update(&p3);
        assert_eq!((first.revision, first.full_state), (1, true));
        assert_eq!(names(&first), [("b", 200), ("c", 201)]);
    }

    #[test]
    fn acks_record_what_is_served_and_what_is_refused() {
        let mut v = Versioner::default();
        let p1 = v.publish(
            &Published::default(),
            &snap(&[("a", &[("x", 1)]), ("b", &[("y", 1), ("y.z", 1)])]),
            100,
        );
        let mut s = Session::new(&hello(&[("old", 3), ("b", 7)]));
        s.first_update(&p1);
        let out = s.on_ack(&pb::Ack {
            revision: 1,
            tenants: vec![
                verdict("a", 100, true, ""),
                verdict(
                    "b",
                    101,
                    false,
                    "tenants.b.routes.c1/llm/y.z.ai.provider.port: 0 is not a port",
                ),
            ],
        });
        assert_eq!(
            out.refused,
            [(
                "b".to_string(),
                101,
                "tenants.b.routes.c1/llm/y.z.ai.provider.port: 0 is not a port".to_string()
            )]
        );
        let view = s.view();
        // "old" was dropped by the full state; b keeps serving 7, its previous version.
        assert_eq!(view.serving, [("a".into(), 100), ("b".into(), 7)].into());
        let refusal = &view.refused["b"];
        assert_eq!(refusal.version, 101);
        // Only y.z is named (not y, whose name is the start of it).
        assert_eq!(refusal.sources, [source("b", "y.z")].into());

        // A tenant-wide reason blames every route of the tenant.
        let p2 = v.publish(
            &p1,
            &snap(&[("a", &[("x", 1)]), ("b", &[("y", 2), ("y.z", 1)])]),
            200,
        );
        let u = s.next_update(&p2).unwrap();
        let out = s.on_ack(&pb::Ack {
            revision: u.revision,
            tenants: vec![verdict(
                "b",
                200,
                false,
                "tenants.b.maxConcurrency: 0 is outside 1..=1000000",
            )],
        });
        assert_eq!(out.refused.len(), 1);
        assert_eq!(
            s.view().refused["b"].sources,
            [source("b", "y"), source("b", "y.z")].into()
        );

        // The fix is accepted: served, refusal gone.
        let p3 = v.publish(&p2, &snap(&[("a", &[("x", 1)]), ("b", &[("y", 3)])]), 300);
        let u = s.next_update(&p3).unwrap();
        s.on_ack(&pb::Ack {
            revision: u.revision,
            tenants: vec![verdict("b", 300, true, "")],
        });
        assert_eq!(s.view().serving["b"], 300);
        assert!(s.view().refused.is_empty());

        // A removal's Ack: no longer served.
        let p4 = v.publish(&p3, &snap(&[("b", &[("y", 3)])]), 400);
        let u = s.next_update(&p4).unwrap();
        s.on_ack(&pb::Ack {
            revision: u.revision,
            tenants: vec![verdict("a", 0, true, "")],
        });
        assert_eq!(s.view().serving, [("b".into(), 300)].into());
    }

    #[test]
    fn stale_and_unknown_acks_change_nothing_they_should_not() {
        let mut v = Versioner::default();
        let p1 = v.publish(&Published::default(), &snap(&[("a", &[("x", 1)])]), 100);
        let mut s = Session::new(&hello(&[]));
        s.first_update(&p1);
        // A second version goes out before the first is answered.
        let p2 = v.publish(&p1, &snap(&[("a", &[("x", 2)])]), 200);
        let u2 = s.next_update(&p2).unwrap();
        // The refusal of version 100 arrives: logged, not recorded (200 is on its way).
        let out = s.on_ack(&pb::Ack {
            revision: 1,
            tenants: vec![verdict("a", 100, false, "bad")],
        });
        assert_eq!(out.refused.len(), 1);
        assert!(s.view().refused.is_empty());
        // A verdict naming a version that revision did not carry, an Ack of no Update.
        let out = s.on_ack(&pb::Ack {
            revision: u2.revision,
            tenants: vec![
                verdict("a", 999, false, "bad"),
                verdict("zz", 200, false, "bad"),
            ],
        });
        assert!(out.refused.is_empty() && !out.unknown_revision);
        assert!(
            s.on_ack(&pb::Ack {
                revision: 1,
                tenants: vec![]
            })
            .unknown_revision
        );
        assert!(
            s.on_ack(&pb::Ack {
                revision: 77,
                tenants: vec![]
            })
            .unknown_revision
        );
        assert!(s.view().serving.is_empty() && s.view().refused.is_empty());
    }

    #[test]
    fn a_gateway_that_never_acks_costs_bounded_memory() {
        let mut v = Versioner::default();
        let mut p = v.publish(&Published::default(), &snap(&[("a", &[("x", 1)])]), 1);
        let mut s = Session::new(&hello(&[]));
        s.first_update(&p);
        for port in 2..200 {
            p = v.publish(&p, &snap(&[("a", &[("x", port)])]), 1);
            s.next_update(&p).unwrap();
        }
        assert_eq!(s.unacked.len(), MAX_UNACKED);
        assert!(
            s.on_ack(&pb::Ack {
                revision: 1,
                tenants: vec![]
            })
            .unknown_revision
        );
    }

    #[test]
    fn route_names_are_matched_whole() {
        for (reason, id, want) in [
            (
                "tenants.t.routes.c1/ns/x.ai.provider.port: 0",
                "c1/ns/x",
                true,
            ),
            ("tenants.t.routes.c1/ns/x: name", "c1/ns/x", true),
            ("tenants.t.routes.c1/ns/x", "c1/ns/x", true),
            ("tenants.t.routes.c1/ns/x2.ai", "c1/ns/x", false),
            ("tenants.t.maxConcurrency: 0", "c1/ns/x", false),
        ] {
            assert_eq!(names_route(reason, id), want, "{reason} {id}");
        }
    }
}
