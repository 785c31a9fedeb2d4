//! The fleet dashboard (`/ui/` on the hub's admin port) in a real headless browser: Debian's
//! Chromium through its ChromeDriver, against a real fleet (kube-apiservers, agents, hub,
//! Envoy) with two tenants. An admin logs in, sees both tenants, watches a route appear on a
//! tenant's page without reloading it after the tenant applies it, sees a rejection with the
//! reason its tenant got, disables a cluster from the page (confirming the dialog) and sees its
//! traffic stop; a viewer gets no buttons. Screenshots of each step are saved in the test's
//! folder, and into `docs/dashboard/` when `FLEETGATE_UPDATE_SCREENSHOTS=1`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::ensure;
use fleetgate_e2e::browser::Browser;
use fleetgate_e2e::fixtures::{TENANT_A, TENANT_B, wait_served};
use fleetgate_e2e::objects::{class_and_http_gateway, simple_http_route};
use fleetgate_e2e::{Fleet, FleetOptions, TIMEOUT, eventually};

async fn shot(browser: &Browser, fleet: &Fleet, name: &str) {
    let file = format!("{name}.png");
    let path = fleet.dir.path().join(&file);
    browser.screenshot(&path).await.unwrap();
    if std::env::var_os("FLEETGATE_UPDATE_SCREENSHOTS").is_some() {
        let docs: PathBuf = fleetgate_e2e::components::workspace_dir().join("docs/dashboard");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&path, docs.join(&file)).unwrap();
    }
}

async fn log_in(browser: &Browser, admin: SocketAddr, token: &str) {
    browser.goto(&format!("http://{admin}/ui/")).await.unwrap();
    browser.type_into("#token", token).await.unwrap();
    browser.click("#login").await.unwrap();
    eventually(TIMEOUT, || async {
        ensure!(
            browser.count("#tenants").await? == 1,
            "not on the overview yet"
        );
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_watches_and_steers_the_fleet_from_the_dashboard() {
    let admin = fleetgate_e2e::ports::free_addr().unwrap();
    let mut hub_extra = serde_json::Map::new();
    hub_extra.insert("adminListen".into(), admin.to_string().into());
    let fleet = Fleet::start_with_options(
        &[TENANT_A, TENANT_B],
        FleetOptions {
            hub_extra,
            ..FleetOptions::default()
        },
    )
    .await
    .unwrap();
    let a = fleet.tenant("tenant-a");
    let ip = a.create_node("node-1", 10).await.unwrap();
    let _echo = a
        .node_port_backend("echo", ip, "tenant-a-echo")
        .await
        .unwrap();
    a.cluster
        .apply(&class_and_http_gateway(Some("*.a.example")))
        .await
        .unwrap();
    a.cluster
        .apply(&simple_http_route("app", "app.a.example", "echo"))
        .await
        .unwrap();
    wait_served(&fleet, "app.a.example", "/", "tenant-a-echo").await;

    let browser = Browser::start(&fleet.dir).await.unwrap();
    // A wrong token is refused on the login page, with what to do.
    browser.goto(&format!("http://{admin}/ui/")).await.unwrap();
    browser
        .type_into("#token", "fgo1.not-a-token")
        .await
        .unwrap();
    browser.click("#login").await.unwrap();
    let why = eventually(TIMEOUT, || browser.text("#login-error")).await;
    assert!(why.contains("malformed"), "{why}");

    // Log in as admin: both tenants.
    let token = fleet.hub.create_operator_token("ada", "admin").unwrap();
    log_in(&browser, admin, &token).await;
    for t in ["tenant-a", "tenant-b"] {
        assert_eq!(
            browser
                .count(&format!("#tenants tr[data-tenant=\"{t}\"]"))
                .await
                .unwrap(),
            1,
            "{t} on the overview"
        );
    }
    eventually(TIMEOUT, || async {
        let state = browser
            .text("#clusters tr[data-cluster^=\"tenant-a/\"] td.state")
            .await?;
        ensure!(state == "connected", "tenant-a's cluster: {state}");
        Ok(())
    })
    .await;
    shot(&browser, &fleet, "overview").await;

    // The tenant's page; a route applied in the tenant cluster appears without a reload.
    browser
        .goto(&format!("http://{admin}/ui/tenants/tenant-a"))
        .await
        .unwrap();
    let row = "tr[data-object=\"HttpRoute/default/late\"]";
    assert_eq!(browser.count(row).await.unwrap(), 0);
    a.cluster
        .apply(&simple_http_route("late", "late.a.example", "echo"))
        .await
        .unwrap();
    eventually(TIMEOUT, || async {
        ensure!(
            browser.count(row).await? == 1,
            "the new route is not on the page yet"
        );
        Ok(())
    })
    .await;
    // A route for another tenant's hostname: the rejection and its reason, live too.
    a.cluster
        .apply(&simple_http_route("foreign", "shop.b.example", "echo"))
        .await
        .unwrap();
    let problem = eventually(TIMEOUT, || async {
        let text = browser
            .text("tr[data-object=\"HttpRoute/default/foreign\"] .problem")
            .await?;
        ensure!(text.contains("shop.b.example"), "{text}");
        Ok(text)
    })
    .await;
    assert!(problem.starts_with("Accepted "), "{problem}");
    shot(&browser, &fleet, "tenant").await;
    // Search narrows the list.
    browser.type_into("#search", "foreign").await.unwrap();
    browser.click("#search-button").await.unwrap();
    eventually(TIMEOUT, || async {
        let count = browser.text("#count").await?;
        ensure!(count.starts_with("1 objects"), "{count}");
        Ok(())
    })
    .await;

    // Disable tenant-a's cluster from the page: confirmed, then its traffic stops.
    browser.goto(&format!("http://{admin}/ui/")).await.unwrap();
    browser
        .click("#clusters tr[data-cluster^=\"tenant-a/\"] button.disable")
        .await
        .unwrap();
    let asked = browser.accept_alert().await.unwrap();
    assert!(asked.starts_with("Disable cluster"), "{asked}");
    eventually(TIMEOUT, || async {
        let state = browser
            .text("#clusters tr[data-cluster^=\"tenant-a/\"] td.state")
            .await?;
        ensure!(state == "disabled", "tenant-a's cluster: {state}");
        Ok(())
    })
    .await;
    eventually(TIMEOUT, || async {
        let (status, _) = fleet.get("app.a.example", "/").await?;
        ensure!(status != 200, "app.a.example still served ({status})");
        Ok(())
    })
    .await;
    shot(&browser, &fleet, "disabled").await;

    // A viewer sees the same fleet and no action.
    browser.click("#logout").await.unwrap();
    let viewer = fleet.hub.create_operator_token("vera", "viewer").unwrap();
    log_in(&browser, admin, &viewer).await;
    assert_eq!(
        browser
            .count("button.disable, button.enable, button.revoke")
            .await
            .unwrap(),
        0
    );
    assert_eq!(browser.count("#token-form").await.unwrap(), 0);
    assert!(browser.source().await.unwrap().contains("vera (viewer)"));
}
