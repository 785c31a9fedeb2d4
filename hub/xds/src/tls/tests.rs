use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager,
};
use prost::Message;

use super::*;
use crate::model::PrivateKeyPem;
use crate::resources::{LISTENER_TYPE, ROUTE_TYPE, build};
use crate::snapshot::{ListenerSnapshot, Snapshot, WeightedCluster};

fn snap(cert: &str) -> Snapshot {
    let http = ListenerSnapshot {
        name: "port/443/sni/app.a.example".into(),
        port: 443,
        bind: "127.0.0.1:18443".parse().unwrap(),
        virtual_hosts: vec![],
        gateways: BTreeSet::new(),
    };
    Snapshot {
        tls_listeners: vec![TlsListenerSnapshot {
            name: "port/443".into(),
            port: 443,
            bind: "127.0.0.1:18443".parse().unwrap(),
            chains: vec![
                TlsChain {
                    name: "port/443/sni/app.a.example".into(),
                    server_names: vec!["app.a.example".into()],
                    action: TlsChainAction::Terminate {
                        secrets: vec!["t/a/c/c1/default/app-tls/secret".into()],
                        http,
                    },
                },
                TlsChain {
                    name: "port/443/sni/db.a.example".into(),
                    server_names: vec!["db.a.example".into()],
                    action: TlsChainAction::Passthrough {
                        clusters: vec![
                            WeightedCluster::new("c1", 3),
                            WeightedCluster::new("c2", 1),
                        ],
                        source: crate::snapshot::SourceObject {
                            cluster: crate::model::ClusterKey {
                                tenant: "a".into(),
                                cluster: "c1".into(),
                            },
                            object: crate::model::ObjectKey {
                                kind: crate::model::Kind::Gateway,
                                namespace: "default".into(),
                                name: "web".into(),
                            },
                        },
                        max_connections: Some(50),
                    },
                },
            ],
            gateways: BTreeSet::new(),
        }],
        secrets: vec![SecretSnapshot {
            name: "t/a/c/c1/default/app-tls/secret".into(),
            cert_chain_pem: cert.into(),
            private_key_pem: PrivateKeyPem("KEY".into()),
            source: None,
        }],
        ..Default::default()
    }
}

#[test]
fn sni_listener_terminates_with_sds_over_ads_and_passes_through_by_sni() {
    let s = snap("CHAIN");
    let l = listener(&s.tls_listeners[0]);
    assert_eq!(
        l.listener_filters[0].name,
        "envoy.filters.listener.tls_inspector"
    );
    assert_eq!(l.filter_chains.len(), 2);
    let term = &l.filter_chains[0];
    assert_eq!(
        term.filter_chain_match.as_ref().unwrap().server_names,
        vec!["app.a.example"]
    );
    let Some(transport_socket::ConfigType::TypedConfig(any)) =
        term.transport_socket.as_ref().unwrap().config_type.clone()
    else {
        panic!("typed transport socket expected")
    };
    let dtc = DownstreamTlsContext::decode(&*any.value).unwrap();
    let sds = &dtc
        .common_tls_context
        .unwrap()
        .tls_certificate_sds_secret_configs;
    assert_eq!(sds.len(), 1);
    assert_eq!(sds[0].name, "t/a/c/c1/default/app-tls/secret");
    assert_eq!(sds[0].sds_config, Some(ads()));
    let Some(filter::ConfigType::TypedConfig(any)) = term.filters[0].config_type.clone() else {
        panic!("typed hcm expected")
    };
    let hcm = HttpConnectionManager::decode(&*any.value).unwrap();
    let Some(http_connection_manager::RouteSpecifier::Rds(rds)) = hcm.route_specifier else {
        panic!("rds expected")
    };
    assert_eq!(rds.route_config_name, "port/443/sni/app.a.example");

    let pass = &l.filter_chains[1];
    assert!(pass.transport_socket.is_none());
    // The tenant's connection limit, then the proxy.
    assert_eq!(
        pass.filters[0].name,
        crate::tenant_limits::CONNECTION_LIMIT_FILTER
    );
    assert_eq!(pass.filters[1].name, "envoy.filters.network.tcp_proxy");
    let Some(filter::ConfigType::TypedConfig(any)) = pass.filters[1].config_type.clone() else {
        panic!("typed tcp proxy expected")
    };
    let tp = TcpProxy::decode(&*any.value).unwrap();
    let Some(tcp_proxy::ClusterSpecifier::WeightedClusters(w)) = tp.cluster_specifier else {
        panic!("weighted expected")
    };
    let got: Vec<(String, u32)> = w
        .clusters
        .iter()
        .map(|c| (c.name.clone(), c.weight))
        .collect();
    assert_eq!(got, vec![("c1".into(), 3), ("c2".into(), 1)]);
}

#[test]
fn resources_hold_secrets_and_one_route_configuration_per_terminating_chain() {
    let r = build(&snap("CHAIN"));
    let secrets = r.of(SECRET_TYPE);
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].any.type_url, SECRET_TYPE);
    let sec = Secret::decode(&*secrets[0].any.value).unwrap();
    let Some(secret::Type::TlsCertificate(tc)) = sec.r#type else {
        panic!("tls certificate expected")
    };
    assert_eq!(
        tc.certificate_chain.unwrap().specifier,
        Some(data_source::Specifier::InlineString("CHAIN".into()))
    );
    let routes: Vec<String> = r.of(ROUTE_TYPE).iter().map(|x| x.name.clone()).collect();
    assert_eq!(routes, vec!["port/443/sni/app.a.example"]);
    let rc = RouteConfiguration::decode(&*r.of(ROUTE_TYPE)[0].any.value).unwrap();
    assert_eq!(rc.name, "port/443/sni/app.a.example");
}

#[test]
fn rotation_changes_the_secret_and_not_the_listener() {
    let (a, b) = (build(&snap("OLD")), build(&snap("NEW")));
    assert_eq!(a.of(LISTENER_TYPE), b.of(LISTENER_TYPE));
    assert_eq!(a.of(ROUTE_TYPE), b.of(ROUTE_TYPE));
    assert_ne!(a.of(SECRET_TYPE), b.of(SECRET_TYPE));
}

#[test]
fn secrets_are_pushed_before_listeners() {
    let order = crate::resources::PUSH_ORDER;
    let pos = |t: &str| order.iter().position(|x| *x == t).unwrap();
    assert!(pos(SECRET_TYPE) < pos(LISTENER_TYPE));
}
