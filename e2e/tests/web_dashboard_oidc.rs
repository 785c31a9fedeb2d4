//! The dashboard's OIDC login in a real headless browser (Debian's Chromium through its
//! ChromeDriver) against a real OpenID provider on loopback (`e2e/oidc-provider`, the example
//! OP of github.com/zitadel/oidc/v3, built from the Go module proxy by `e2e/setup.sh`) and a
//! real hub. Roles come from the `groups` claim: an admin signs in through the provider's own
//! login form and gets the action buttons, a viewer gets none, a user in no mapped group is
//! refused with why; a callback with a forged state is refused; with the provider down the
//! login page says so and an operator token still logs in. Screenshots of the login page and
//! of the refusal are saved in the test's folder, and into `docs/dashboard/` when
//! `FLEETGATE_UPDATE_SCREENSHOTS=1`.

use anyhow::ensure;
use fleetgate_e2e::browser::Browser;
use fleetgate_e2e::hub::{HubCluster, HubTenant};
use fleetgate_e2e::oidc_provider::{OidcProvider, OidcUser};
use fleetgate_e2e::{Hub, TIMEOUT, TestDir, eventually};

async fn shot(browser: &Browser, dir: &TestDir, name: &str) {
    let file = format!("{name}.png");
    let path = dir.path().join(&file);
    browser.screenshot(&path).await.unwrap();
    if std::env::var_os("FLEETGATE_UPDATE_SCREENSHOTS").is_some() {
        let docs = fleetgate_e2e::components::workspace_dir().join("docs/dashboard");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&path, docs.join(&file)).unwrap();
    }
}

const USERS: &[OidcUser] = &[
    OidcUser {
        username: "ada",
        password: "ada-password",
        email: "ada@example.test",
        groups: &["fleet-admins", "staff"],
    },
    OidcUser {
        username: "vera",
        password: "vera-password",
        email: "vera@example.test",
        groups: &["fleet-viewers"],
    },
    OidcUser {
        username: "eve",
        password: "eve-password",
        email: "eve@example.test",
        groups: &["staff"],
    },
];

/// Clicks "Sign in with Test OP" and fills the provider's login form as `user`.
async fn sign_in(browser: &Browser, ui: &str, user: &OidcUser) {
    browser.goto(ui).await.unwrap();
    assert_eq!(
        browser.text("#oidc-login").await.unwrap(),
        "Sign in with Test OP"
    );
    browser.click("#oidc-login").await.unwrap();
    // The provider's page, not the hub's.
    eventually(TIMEOUT, || async {
        ensure!(
            browser.count("#username").await? == 1,
            "not on the provider's login page"
        );
        Ok(())
    })
    .await;
    browser.type_into("#username", user.username).await.unwrap();
    browser.type_into("#password", user.password).await.unwrap();
    browser.click("button[type=submit]").await.unwrap();
}

async fn on_overview(browser: &Browser) {
    eventually(TIMEOUT, || async {
        ensure!(
            browser.count("#tenants").await? == 1,
            "not on the overview yet"
        );
        Ok(())
    })
    .await;
}

/// Logs out and waits for the login page (the form's navigation must finish before the next
/// `goto`).
async fn log_out(browser: &Browser) {
    browser.click("#logout").await.unwrap();
    eventually(TIMEOUT, || async {
        ensure!(browser.count("#token").await? == 1, "not logged out yet");
        Ok(())
    })
    .await;
}

const BUTTONS: &str = "button.disable, button.enable, button.revoke";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_sign_in_with_a_real_openid_provider_in_the_browser() {
    let dir = TestDir::new("web_dashboard_oidc").unwrap();
    let admin = fleetgate_e2e::ports::free_addr().unwrap();
    let ui = format!("http://{admin}/ui/");
    let redirect = format!("http://{admin}/ui/oidc/callback");
    let mut op = OidcProvider::start(&dir, &redirect, USERS).await.unwrap();
    let mut extra = serde_json::Map::new();
    extra.insert("adminListen".into(), admin.to_string().into());
    extra.insert(
        "adminOidc".into(),
        op.hub_config(&redirect, "groups", &["fleet-viewers"], &["fleet-admins"]),
    );
    let tenants = [HubTenant {
        name: "tenant-a".into(),
        hostnames: vec!["*.a.example".into()],
        clusters: vec![HubCluster {
            name: "east".into(),
            endpoint_cidrs: vec!["127.0.1.0/24".into()],
        }],
    }];
    let hub = Hub::start_with(&dir, &tenants, extra).await.unwrap();
    // The admin port starts last.
    eventually(TIMEOUT, || async {
        let (status, _) = fleetgate_e2e::http::get(admin, "localhost", "/readyz", &[]).await?;
        ensure!(status == 200, "/readyz: {status}");
        Ok(())
    })
    .await;
    let browser = Browser::start(&dir).await.unwrap();

    browser.goto(&ui).await.unwrap();
    shot(&browser, &dir, "oidc-login").await;
    // ada is in fleet-admins: an admin, with the action buttons and the token form.
    sign_in(&browser, &ui, &USERS[0]).await;
    on_overview(&browser).await;
    let page = browser.source().await.unwrap();
    assert!(page.contains("ada-example-test (admin)"), "{page}");
    assert!(browser.count(BUTTONS).await.unwrap() > 0, "{page}");
    assert_eq!(browser.count("#token-form").await.unwrap(), 1);

    // vera is in fleet-viewers: a viewer, no button, no token form.
    log_out(&browser).await;
    sign_in(&browser, &ui, &USERS[1]).await;
    on_overview(&browser).await;
    assert!(
        browser
            .source()
            .await
            .unwrap()
            .contains("vera-example-test (viewer)")
    );
    assert_eq!(browser.count(BUTTONS).await.unwrap(), 0);
    assert_eq!(browser.count("#token-form").await.unwrap(), 0);

    // eve signs in at the provider but is in no mapped group: refused with why, no session.
    log_out(&browser).await;
    sign_in(&browser, &ui, &USERS[2]).await;
    let why = eventually(TIMEOUT, || browser.text("#login-error")).await;
    assert!(
        why.contains("no role is mapped to your groups (\"staff\")"),
        "{why}"
    );
    shot(&browser, &dir, "oidc-refused").await;
    browser.goto(&ui).await.unwrap();
    assert_eq!(browser.count("#tenants").await.unwrap(), 0, "no session");

    // A callback with a forged state, while a real login is pending in this browser.
    browser.goto(&ui).await.unwrap();
    browser.click("#oidc-login").await.unwrap();
    eventually(TIMEOUT, || async {
        ensure!(
            browser.count("#username").await? == 1,
            "not at the provider"
        );
        Ok(())
    })
    .await;
    browser
        .goto(&format!("{redirect}?code=stolen&state=forged"))
        .await
        .unwrap();
    let why = browser.text("#login-error").await.unwrap();
    assert!(why.contains("state does not match"), "{why}");
    browser.goto(&ui).await.unwrap();
    assert_eq!(browser.count("#tenants").await.unwrap(), 0, "no session");

    // The provider goes down: the login page says so, and a token still logs in.
    op.stop();
    browser.goto(&ui).await.unwrap();
    browser.click("#oidc-login").await.unwrap();
    let why = eventually(TIMEOUT, || browser.text("#login-error")).await;
    assert!(why.contains("cannot be reached"), "{why}");
    let token = hub.create_operator_token("tess", "viewer").unwrap();
    browser.type_into("#token", &token).await.unwrap();
    browser.click("#login").await.unwrap();
    on_overview(&browser).await;

    // Back up (with a new signing key): OIDC logins work again, nothing cached.
    op.restart().await.unwrap();
    log_out(&browser).await;
    sign_in(&browser, &ui, &USERS[0]).await;
    on_overview(&browser).await;
    assert!(
        browser
            .source()
            .await
            .unwrap()
            .contains("ada-example-test (admin)")
    );
}
