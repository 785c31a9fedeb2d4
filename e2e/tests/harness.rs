//! The harness proves itself against the real components, without the product: API servers,
//! CRDs, apply/get/delete, isolation of tenant clusters on one etcd, the agent user's RBAC,
//! Envoy's admin interface and the echo backends.

use std::time::Duration;

use fleetgate_e2e::fixtures::{GATEWAY_CLASS, class_and_http_gateway, gateway, listener};
use fleetgate_e2e::{Echo, Envoy, Etcd, TIMEOUT, TenantCluster, TestDir, eventually, http};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::GroupVersionKind;

/// Gateway `web` with one HTTP listener for `app.a.example`.
fn gateway_web() -> String {
    gateway("web", &listener("http", "HTTP", 80, Some("app.a.example")))
}

fn test_dir(name: &str) -> TestDir {
    TestDir::new(name).expect("test folder")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_starts_with_gateway_api_and_applies_a_gateway() {
    let dir = test_dir("harness-apiserver");
    let etcd = Etcd::start(&dir).await.expect("etcd starts");
    let cluster = TenantCluster::start("tenant-a", &etcd)
        .await
        .expect("kube-apiserver starts with the CRDs");

    let applied = cluster
        .apply(&class_and_http_gateway(Some("app.a.example")))
        .await
        .expect("apply GatewayClass and Gateway");
    assert_eq!(applied.len(), 2);

    let gw = cluster
        .get_json("Gateway", "default", "web")
        .await
        .unwrap()
        .expect("the Gateway exists");
    assert_eq!(gw["spec"]["listeners"][0]["hostname"], "app.a.example");
    assert_eq!(gw["metadata"]["generation"], 1);
    // The CRD's defaulting ran, so this is the real schema, not a pass-through.
    assert_eq!(
        gw["spec"]["listeners"][0]["allowedRoutes"]["namespaces"]["from"],
        "Same"
    );

    // CEL / OpenAPI validation from the real CRDs rejects an invalid object.
    let invalid = gateway_web().replace("port: 80", "port: 0");
    let err = cluster.apply(&invalid).await.unwrap_err();
    assert!(format!("{err:#}").contains("port"), "{err:#}");

    // Nodes with an InternalIP and EndpointSlices are accepted without a kubelet.
    cluster.create_node("node-1", "127.0.1.10").await.unwrap();
    let node = cluster
        .get_json("Node", "", "node-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(node["status"]["addresses"][0]["type"], "InternalIP");
    assert_eq!(node["status"]["addresses"][0]["address"], "127.0.1.10");
    cluster
        .apply(&fleetgate_e2e::fixtures::http_service(
            "default", "echo", 30080,
        ))
        .await
        .unwrap();
    let svc = cluster
        .get_json("Service", "default", "echo")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30080);
    cluster
        .create_endpoint_slice("default", "echo", "http", 8080, &["10.1.0.20"])
        .await
        .unwrap();
    // The API server refuses loopback endpoints (CVE-2021-25737), so pod-mode tests cannot
    // point EndpointSlices at loopback backends; node mode (InternalIP x nodePort) can.
    let err = cluster
        .create_endpoint_slice("default", "echo-lo", "http", 8080, &["127.0.1.20"])
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("loopback"), "{err:#}");
    let slice = cluster
        .get_json("EndpointSlice", "default", "echo-e2e")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(slice["endpoints"][0]["addresses"][0], "10.1.0.20");

    cluster.delete("Gateway", "default", "web").await.unwrap();
    eventually(TIMEOUT, || async {
        let gw = cluster.get_json("Gateway", "default", "web").await?;
        anyhow::ensure!(gw.is_none(), "still there: {gw:?}");
        Ok(())
    })
    .await;
    // Deleting what is gone is not an error.
    cluster.delete("Gateway", "default", "web").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apiservers_on_one_etcd_are_isolated() {
    let dir = test_dir("harness-isolation");
    let etcd = Etcd::start(&dir).await.expect("etcd starts");
    let (a, b) = futures::future::try_join(
        TenantCluster::start("tenant-a", &etcd),
        TenantCluster::start("tenant-b", &etcd),
    )
    .await
    .expect("both API servers start");
    assert_ne!(a.server(), b.server());

    a.apply(&class_and_http_gateway(Some("app.a.example")))
        .await
        .unwrap();
    assert!(
        a.get_json("Gateway", "default", "web")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        b.get_json("Gateway", "default", "web")
            .await
            .unwrap()
            .is_none(),
        "tenant-b's API server sees tenant-a's Gateway"
    );
    assert!(
        b.get_json("GatewayClass", "", "fleetgate")
            .await
            .unwrap()
            .is_none()
    );

    // Each cluster's CA only vouches for its own users: tenant-b's admin credentials, pointed
    // at tenant-a's API server, are refused.
    let mut kc = kube::config::Kubeconfig::read_from(b.admin_kubeconfig()).unwrap();
    kc.clusters[0].cluster.as_mut().unwrap().server = Some(a.server().to_string());
    // tenant-a's serving cert is signed by tenant-a's CA; trust it so only client auth is tested.
    kc.clusters[0]
        .cluster
        .as_mut()
        .unwrap()
        .certificate_authority = Some(
        a.admin_kubeconfig()
            .parent()
            .unwrap()
            .join("tenant-a-pki/ca.crt")
            .display()
            .to_string(),
    );
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let cross = kube::Client::try_from(config).unwrap();
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cross);
    match ns.get("default").await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 401, "{e:?}"),
        other => panic!("tenant-b's admin credentials against tenant-a's API server: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_user_can_list_gateways_but_not_create_them() {
    let dir = test_dir("harness-agent-rbac");
    let etcd = Etcd::start(&dir).await.expect("etcd starts");
    let cluster = TenantCluster::start("tenant-a", &etcd)
        .await
        .expect("kube-apiserver starts");
    assert!(
        fleetgate_e2e::components::repo_file("deploy/agent-rbac.yaml").is_some(),
        "deploy/agent-rbac.yaml is missing: the agent's ClusterRole and binding are not written yet"
    );
    cluster.apply(GATEWAY_CLASS).await.unwrap();

    let agent = cluster.agent_client().await.unwrap();
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "Gateway");
    let (ar, _) = kube::discovery::pinned_kind(&cluster.admin(), &gvk)
        .await
        .unwrap();
    let gateways: Api<DynamicObject> = Api::all_with(agent.clone(), &ar);
    // RBAC bindings take effect asynchronously in the authorizer's cache.
    eventually(TIMEOUT, || async {
        gateways
            .list(&Default::default())
            .await
            .map_err(|e| anyhow::anyhow!("agent cannot list Gateways: {e}"))?;
        Ok(())
    })
    .await;

    let gw: DynamicObject = serde_yaml::from_str(&gateway_web()).unwrap();
    let namespaced: Api<DynamicObject> = Api::namespaced_with(agent, "default", &ar);
    match namespaced.create(&PostParams::default(), &gw).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 403, "{e:?}"),
        other => panic!("the agent user created a Gateway: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_starts_and_answers_on_its_admin_port() {
    let dir = test_dir("harness-envoy");
    // No control plane behind this address: Envoy must still come up and, after its initial
    // fetch timeout, go LIVE with an empty configuration.
    let xds = fleetgate_e2e::ports::free_addr().unwrap();
    let mut envoy = Envoy::start(&dir, 0, xds).await.expect("envoy starts");
    let (status, body) = envoy.admin_get("/server_info").await.unwrap();
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["node"]["id"], "envoy-0");
    assert_eq!(info["node"]["cluster"], "fleetgate");
    assert!(
        info["version"]
            .as_str()
            .unwrap_or_default()
            .contains("1.40.0"),
        "{}",
        info["version"]
    );
    envoy.wait_live(Duration::from_secs(60)).await.unwrap();

    let old_pid = envoy.process().pid();
    envoy.restart().await.expect("envoy restarts");
    assert_ne!(envoy.process().pid(), old_pid);
    let (status, _) = envoy.admin_get("/server_info").await.unwrap();
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_backends_answer_with_their_name() {
    let a = Echo::start("a-1", "127.0.1.10".parse().unwrap())
        .await
        .unwrap();
    let b = Echo::start("b-1", "127.0.2.10".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(a.addr().ip().to_string(), "127.0.1.10");
    for (echo, name) in [(&a, "a-1"), (&b, "b-1")] {
        let r = http::request(echo.addr(), "app.example", "/x", &[("x-probe", "1")])
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, name);
        assert_eq!(r.header("x-echo-path"), Some("/x"));
        assert_eq!(r.header("x-echo-header-host"), Some("app.example"));
        assert_eq!(r.header("x-echo-header-x-probe"), Some("1"));
    }
    assert_eq!(a.requests(), 1);
    drop(a);
    let addr: std::net::SocketAddr = "127.0.1.10:1".parse().unwrap();
    assert!(http::get(addr, "x", "/", &[]).await.is_err());
}
