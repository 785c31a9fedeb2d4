//! Fuzzing harness code shared by the fuzz targets (`fuzz_targets/`) and the seed generator.
//!
//! Outside the data path: it drives two of its untrusted-input boundaries with arbitrary bytes.
//! `sync_admit` is the hub's: protobuf decoding of an `AgentMessage` (what the Sync stream
//! receives), admission of every object that decodes, then compile and the Envoy resources built
//! from what was admitted. `agent_translate` is the agent's: arbitrary YAML/JSON read as
//! Kubernetes objects (the `--manifests` reader), then translated into the intent the agent
//! sends. Bad input may be refused; it must never panic.

use std::sync::OnceLock;

use fleetgate_hub::admit::{self, Policy, Reserved};
use fleetgate_hub::config::{Config, RawConfig};
use fleetgate_hub::model::{ClusterIntent, ClusterKey, FleetIntent};
use fleetgate_hub::{allocate, compile, fleet, sync, xds};
use fleetgate_proto::spoke::v1 as pb;
use fleetgate_spoke_agent::config::EndpointMode;
use fleetgate_spoke_agent::{l4, l4route, manifests, translate};
use prost::Message;

/// A hub with one tenant whose cluster may use 10.0.0.0/8 and loopback, another tenant's claim
/// on `*.b.example`, an HTTP and a TLS data-plane port, an L4 pool, an AI gateway and an egress
/// allowlist: every admission and compile path is reachable.
const HUB_CONFIG: &str = r#"
agentListen: 0.0.0.0:7443
xdsListen: 127.0.0.1:18000
pkiDir: /nonexistent/pki
storePath: /nonexistent/hub.redb
dataPlane:
  address: 10.9.0.1
  listeners:
  - {port: 80, bind: "0.0.0.0:80"}
  - {port: 443, bind: "0.0.0.0:443", protocol: TLS}
  aiGateways: ["127.0.0.1:18090"]
addressPools: [{name: pool, addresses: [10.9.0.0/30]}]
l4PortRange: {from: 20000, to: 20010}
tenants:
- name: a
  hostnames: ['*.a.example', shop.example]
  egress: [api.openai.com, '*.models.example', 10.200.0.1]
  clusters:
  - {name: c1, endpointCidrs: [10.0.0.0/8, 127.0.0.0/8, 'fd00::/8'], allowSpecialAddresses: true}
- name: b
  hostnames: ['*.b.example']
  clusters: [{name: c1, endpointCidrs: [192.168.0.0/16]}]
"#;

struct Hub {
    config: Config,
    owners: std::collections::BTreeMap<String, String>,
    reserved: Reserved,
}

fn hub() -> &'static Hub {
    static HUB: OnceLock<Hub> = OnceLock::new();
    HUB.get_or_init(|| {
        let raw: RawConfig = serde_yaml::from_str(HUB_CONFIG).expect("the fuzz hub config parses");
        let config = raw.validate().expect("the fuzz hub config is valid");
        // A host with one interface address inside tenant a's CIDRs, beside loopback.
        let reserved = config.reserved(["10.0.0.7".parse().expect("an IP")].into());
        Hub {
            config,
            owners: [("*.b.example".to_string(), "b".to_string())].into(),
            reserved,
        }
    })
}

/// The hub side: decode, admit, compile, build Envoy resources, encode statuses.
pub fn sync_admit(data: &[u8]) {
    let Ok(msg) = pb::AgentMessage::decode(data) else {
        return;
    };
    let update = match msg.kind {
        Some(pb::agent_message::Kind::Update(u)) => u,
        Some(pb::agent_message::Kind::Hello(h)) => {
            // The hub only compares and logs (a bounded prefix of) the claimed cluster.
            let _ = h.cluster.chars().take(64).count();
            return;
        }
        None => return,
    };
    let hub = hub();
    let tenant = &hub.config.tenants["a"];
    let policy = Policy {
        tenant,
        cluster: &tenant.clusters["c1"],
        limits: &hub.config.limits,
        owners: &hub.owners,
        reserved: &hub.reserved,
    };
    let mut ci = ClusterIntent::default();
    for d in &update.deletes {
        let _ = admit::object_key(d);
    }
    for obj in &update.upserts {
        let Some(r) = &obj.r#ref else { continue };
        let Ok(k) = admit::object_key(r) else {
            continue;
        };
        match admit::admit(obj, &policy) {
            Ok(admitted) => admitted.insert_into(k, &mut ci),
            Err(e) => {
                let _ = admit::rejected_status(&k, obj, &e);
            }
        }
    }
    let key = ClusterKey {
        tenant: "a".into(),
        cluster: "c1".into(),
    };
    let intent: FleetIntent = [(key, std::sync::Arc::new(ci))].into();
    let (before, after) = fleet::claims_of(&hub.owners, "a", &intent);
    let mut owners = hub.owners.clone();
    fleet::replace_claims(&mut owners, before, after);
    let l4 = allocate::allocate(
        &hub.config.l4,
        &hub.reserved.listeners,
        &allocate::Allocations::new(),
        &fleet::wanted_ports(&intent),
    );
    let compiled = compile::compile_with_l4(
        &intent,
        &hub.config.data_plane,
        &hub.config.l4,
        &l4.allocations,
        &l4.failures,
    );
    let _ = xds::resources::build(&compiled.snapshot);
    for list in compiled.statuses.values() {
        for s in list.iter() {
            let _ = sync::to_wire(s).encoded_len();
        }
    }
}

/// The whole intent an agent sends for `text` (a manifests file), in both endpoint modes.
pub fn agent_intent(text: &str) -> Option<Vec<pb::Object>> {
    let state = manifests::parse_file(text).ok()?;
    let mut all = Vec::new();
    for mode in [EndpointMode::Node, EndpointMode::Pod] {
        all.extend(translate::translate(&state, mode));
        all.extend(l4route::translate_l4_routes(&state, mode));
        all.extend(l4::translate_services(&state, mode, true));
    }
    Some(all)
}

/// The agent side: arbitrary bytes as a manifests file, translated.
pub fn agent_translate(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(objects) = agent_intent(text) {
        for o in &objects {
            let _ = o.encoded_len();
        }
    }
}
