//! The dashboard under `/ui/` on the admin port, over raw HTTP: what a browser never shows but
//! an attacker tries. Without a session every page sends to the login, every fragment and the
//! event stream are 401; a bad token is refused on the login page; a form without the
//! session's CSRF token, or sent from another origin, is refused; a viewer's action is refused
//! even with a valid CSRF token; an admin's works. The browser itself is driven in
//! `e2e/tests/web_dashboard.rs`; the first page's time at 100 tenants and 10,000 routes is
//! [`the_first_page_with_100_tenants_and_10000_routes`] (`make bench`).

use std::time::{Duration, Instant};

mod support;
use support::{
    SyncStream, TWO_TENANTS, TestHub, admin_port, backend, free_port, http_gateway, http_route,
    mtls_channel,
};

fn operator(hub: &TestHub, name: &str, role: fleetgate_hub::admin::operator_token::Role) -> String {
    use fleetgate_hub::admin::operator_token::{mint, operator_key};
    let key =
        operator_key(&fleetgate_hub::enroll::token::TokenKey::load_or_create(&hub.pki()).unwrap());
    mint(&key, name, role, u64::MAX / 4).unwrap()
}

/// Logs in with `token`: the session cookie header, and the page's CSRF token.
async fn log_in(port: u16, token: &str) -> (String, String) {
    let a = admin_port(port, "POST", "/ui/login", &[], &format!("token={token}")).await;
    assert_eq!(a.status, 303, "{}", a.body);
    let cookie = a
        .head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = format!("cookie: {}", cookie.split(';').next().unwrap());
    let page = admin_port(port, "GET", "/ui/", std::slice::from_ref(&cookie), "").await;
    assert_eq!(page.status, 200);
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a CSRF token in the page")
        .to_string();
    (cookie, csrf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_refuses_what_a_browser_never_shows() {
    use fleetgate_hub::admin::operator_token::Role;
    let port = free_port();
    let mut hub = TestHub::start_with(
        &format!("adminListen: 127.0.0.1:{port}"),
        TWO_TENANTS,
        false,
    )
    .await;

    // No session: pages lead to the login, the rest is 401, the static scripts are served.
    let a = admin_port(port, "GET", "/ui/", &[], "").await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("id=\"token\""), "the login form");
    assert!(
        a.head
            .contains("content-security-policy: default-src 'self'"),
        "{}",
        a.head
    );
    assert_eq!(
        admin_port(port, "GET", "/ui/tenants/tenant-a", &[], "")
            .await
            .status,
        303
    );
    for path in [
        "/ui/fragments/overview",
        "/ui/events",
        "/ui/fragments/tenants/tenant-a",
    ] {
        assert_eq!(
            admin_port(port, "GET", path, &[], "").await.status,
            401,
            "{path}"
        );
    }
    assert_eq!(
        admin_port(port, "POST", "/ui/clusters/tenant-a/east/disable", &[], "")
            .await
            .status,
        401
    );
    let js = admin_port(port, "GET", "/ui/static/htmx.min.js", &[], "").await;
    assert_eq!(js.status, 200);
    assert!(js.head.contains("text/javascript"));

    // A bad token on the login page: refused, with why; a forged cookie too.
    let a = admin_port(port, "POST", "/ui/login", &[], "token=fgo1.nope").await;
    assert_eq!(a.status, 401);
    assert!(a.body.contains("malformed"), "{}", a.body);
    let forged = vec!["cookie: fleetgate_session=fgo1.x.1.admin.eve.00".to_string()];
    assert!(
        admin_port(port, "GET", "/ui/", &forged, "")
            .await
            .body
            .contains("id=\"token\"")
    );

    // A viewer: reads, cannot act even with the right CSRF token.
    let (viewer, viewer_csrf) = log_in(port, &operator(&hub, "vera", Role::Viewer)).await;
    let page = admin_port(port, "GET", "/ui/", std::slice::from_ref(&viewer), "").await;
    assert!(
        page.body.contains("data-tenant=\"tenant-a\"")
            && page.body.contains("data-tenant=\"tenant-b\"")
    );
    assert!(
        !page.body.contains("hx-post=\"/ui/clusters"),
        "no buttons for a viewer"
    );
    let a = admin_port(
        port,
        "POST",
        "/ui/clusters/tenant-a/east/disable",
        std::slice::from_ref(&viewer),
        &format!("csrf={viewer_csrf}"),
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = admin_port(
        port,
        "POST",
        "/ui/tokens",
        std::slice::from_ref(&viewer),
        &format!("csrf={viewer_csrf}&tenant=tenant-a&cluster=east"),
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.body);

    // An admin: an agent is connected; a form without CSRF, with another session's, or from
    // another origin is refused and changes nothing.
    let id = hub.issue("tenant-a", "east");
    let mut s = SyncStream::open(mtls_channel(hub.agent_addr, &id).await.unwrap(), "east")
        .await
        .unwrap();
    s.send(
        1,
        true,
        vec![
            http_gateway("web", "http", "*.a.example"),
            http_route(
                "app",
                "web",
                "app.a.example",
                backend("app", 8080, "10.1.0.5", 30080),
            ),
        ],
    )
    .await;
    s.verdict().await.unwrap();
    let (admin, csrf) = log_in(port, &operator(&hub, "ada", Role::Admin)).await;
    let disable = "/ui/clusters/tenant-a/east/disable";
    for (headers, body, why) in [
        (vec![admin.clone()], String::new(), "no CSRF token"),
        (
            vec![admin.clone()],
            format!("csrf={viewer_csrf}"),
            "another session's CSRF token",
        ),
        (
            vec![admin.clone(), "origin: http://evil.example".to_string()],
            format!("csrf={csrf}"),
            "another origin",
        ),
    ] {
        let a = admin_port(port, "POST", disable, &headers, &body).await;
        assert_eq!(a.status, 403, "{why}: {}", a.body);
    }
    let clusters = admin_port(
        port,
        "GET",
        "/ui/fragments/overview",
        std::slice::from_ref(&admin),
        "",
    )
    .await;
    assert!(
        clusters.body.contains("state-connected\">connected"),
        "nothing changed"
    );
    // The same form, right: the agent's stream is closed and the page says disabled.
    let a = admin_port(
        port,
        "POST",
        disable,
        std::slice::from_ref(&admin),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("state-disabled\">disabled"), "{}", a.body);
    let closed = tokio::time::timeout(Duration::from_secs(10), s.verdict())
        .await
        .expect("closed");
    assert!(closed.is_err());
    // A bootstrap token from the page, escaped and whole; not for a disabled cluster.
    let a = admin_port(
        port,
        "POST",
        "/ui/tokens",
        std::slice::from_ref(&admin),
        &format!("csrf={csrf}&tenant=tenant-b&cluster=west"),
    )
    .await;
    assert!(
        a.body.contains("id=\"bootstrap-token\">fgb1."),
        "{}",
        a.body
    );
    let a = admin_port(
        port,
        "POST",
        "/ui/tokens",
        std::slice::from_ref(&admin),
        &format!("csrf={csrf}&tenant=tenant-a&cluster=east"),
    )
    .await;
    assert!(a.body.contains("disabled: enable it first"), "{}", a.body);
    // Log out: the cookie is cleared.
    let a = admin_port(
        port,
        "POST",
        "/ui/logout",
        std::slice::from_ref(&admin),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(a.status, 303);
    assert!(a.head.contains("fleetgate_session=; "), "{}", a.head);
    hub.stop().await;
}

const TENANTS: usize = 100;
const ROUTES: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with `make bench`"]
async fn the_first_page_with_100_tenants_and_10000_routes() {
    use fleetgate_hub::admin::operator_token::Role;
    let tenants: String = (0..TENANTS)
        .map(|t| format!("\n- name: t{t}\n  hostnames: [\"*.t{t}.example\"]\n  clusters: [{{name: c1, endpointCidrs: [10.9.0.0/16]}}]"))
        .collect();
    let port = free_port();
    let mut hub =
        TestHub::start_with(&format!("adminListen: 127.0.0.1:{port}"), &tenants, false).await;
    let mut streams = Vec::new();
    for t in 0..TENANTS {
        let id = hub.issue(&format!("t{t}"), "c1");
        let mut s = SyncStream::open(mtls_channel(hub.agent_addr, &id).await.unwrap(), "c1")
            .await
            .unwrap();
        let mut objects = vec![http_gateway("web", "http", &format!("*.t{t}.example"))];
        objects.extend((0..ROUTES).map(|r| {
            http_route(
                &format!("r{r}"),
                "web",
                &format!("r{r}.t{t}.example"),
                backend("app", 8080, "10.9.0.5", 30080),
            )
        }));
        s.send(1, true, objects).await;
        s.verdict().await.unwrap();
        streams.push(s);
    }
    let (admin, _) = log_in(port, &operator(&hub, "ada", Role::Admin)).await;
    // Until the statuses of all 10,000 routes are compiled.
    let started = Instant::now();
    loop {
        let page = admin_port(
            port,
            "GET",
            "/ui/tenants/t99",
            std::slice::from_ref(&admin),
            "",
        )
        .await;
        if page.body.contains(&format!("{} objects", ROUTES + 1)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "statuses never compiled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (what, path) in [
        ("overview", "/ui/"),
        ("tenant", "/ui/tenants/t42"),
        ("search", "/ui/tenants/t42?q=r42"),
    ] {
        let mut samples = Vec::new();
        let mut size = 0;
        for _ in 0..30 {
            let start = Instant::now();
            let page = admin_port(port, "GET", path, std::slice::from_ref(&admin), "").await;
            samples.push(start.elapsed());
            assert_eq!(page.status, 200);
            size = page.body.len();
        }
        samples.sort();
        println!(
            "BENCH dashboard_{what}: tenants={TENANTS} routes={} p50={:.1}ms max={:.1}ms bytes={size}",
            TENANTS * ROUTES,
            samples[samples.len() / 2].as_secs_f64() * 1000.0,
            samples[samples.len() - 1].as_secs_f64() * 1000.0,
        );
    }
    hub.stop().await;
}
