//! The dashboard's OIDC login against a REAL OpenID provider (`FLEETGATE_OIDC_PROVIDER`, the
//! example OP of github.com/zitadel/oidc/v3 built by `e2e/setup.sh oidc`), over raw HTTP: the
//! hub sends the browser to the provider with PKCE, state and nonce; the provider's own login
//! form is filled; the callback gives a session with the role the `email` claim maps to. A
//! replayed callback, a forged state, a callback without the login's cookie and a user with no
//! mapped role are refused; with the provider down the login page says so and operator tokens
//! still log in. `fleetgate-hub check --config` names each wrong `adminOidc` field. The browser
//! itself is driven in `e2e/tests/web_dashboard_oidc.rs`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod support;
use support::{AdminAnswer, TENANT_A, TestHub, admin_port, free_port};

/// The provider, killed when dropped.
struct Provider {
    child: Child,
    port: u16,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn provider_binary() -> PathBuf {
    match std::env::var_os("FLEETGATE_OIDC_PROVIDER") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "FLEETGATE_OIDC_PROVIDER is not set: run `e2e/setup.sh oidc` and export what it prints"
        ),
    }
}

async fn start_provider(dir: &std::path::Path, redirect: &str) -> Provider {
    std::fs::write(dir.join("secret"), "hub-secret\n").unwrap();
    std::fs::write(
        dir.join("users.json"),
        r#"[{"id": "u1", "username": "ada", "password": "ada-pw", "email": "ada@example.test"},
            {"id": "u2", "username": "vera", "password": "vera-pw", "email": "vera@example.test"},
            {"id": "u3", "username": "eve", "password": "eve-pw", "email": "eve@example.test"}]"#,
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(provider_binary())
        .args(["-listen", &format!("127.0.0.1:{port}"), "-client-id", "hub"])
        .arg("-client-secret-file")
        .arg(dir.join("secret"))
        .args(["-redirect-uri", redirect, "-users"])
        .arg(dir.join("users.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start the OpenID provider (FLEETGATE_OIDC_PROVIDER)");
    let provider = Provider {
        child,
        port,
        issuer: format!("http://127.0.0.1:{port}/"),
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return provider;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the OpenID provider did not listen on {port}");
}

fn header<'a>(a: &'a AdminAnswer, name: &str) -> Vec<&'a str> {
    a.head
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(": ")?;
            k.eq_ignore_ascii_case(name).then_some(v)
        })
        .collect()
}

/// `http://127.0.0.1:<port>/path?q` or `/path?q` -> `/path?q`.
fn path_of(location: &str, port: u16) -> String {
    location
        .strip_prefix(&format!("http://127.0.0.1:{port}"))
        .unwrap_or(location)
        .to_string()
}

/// The cookie `name=value` a response sets.
fn set_cookie(a: &AdminAnswer, name: &str) -> Option<String> {
    header(a, "set-cookie")
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
}

/// Starts a login at the hub; the pending-login cookie and the provider URL (path).
async fn start_login(hub_port: u16, op: &Provider) -> (String, String) {
    let a = admin_port(hub_port, "GET", "/ui/oidc/login", &[], "").await;
    assert_eq!(a.status, 303, "{}", a.body);
    let cookie = header(&a, "set-cookie")
        .into_iter()
        .find(|c| c.starts_with("fleetgate_oidc="))
        .expect("a pending-login cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Path=/ui/oidc"),
        "{cookie}"
    );
    let location = header(&a, "location")[0];
    assert!(
        location.starts_with(&format!("{}auth?", op.issuer)),
        "{location}"
    );
    for p in [
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "scope=openid%20email",
    ] {
        assert!(location.contains(p), "{p} in {location}");
    }
    (
        format!("cookie: {}", cookie.split(';').next().unwrap()),
        path_of(location, op.port),
    )
}

/// Logs `user` in at the provider's own form; the hub callback path the provider sends back.
async fn at_provider(op: &Provider, auth: &str, user: &str, password: &str) -> String {
    let a = admin_port(op.port, "GET", auth, &[], "").await;
    assert_eq!(a.status, 302, "{}", a.body);
    let login = path_of(header(&a, "location")[0], op.port);
    let id = login
        .split("authRequestID=")
        .nth(1)
        .expect("an auth request id");
    let form = admin_port(op.port, "GET", &login, &[], "").await;
    assert!(
        form.body.contains("name=\"password\""),
        "the provider's login form"
    );
    let a = admin_port(
        op.port,
        "POST",
        "/login/username",
        &["content-type: application/x-www-form-urlencoded".into()],
        &format!("id={id}&username={user}&password={password}"),
    )
    .await;
    assert_eq!(a.status, 302, "{}", a.body);
    let a = admin_port(
        op.port,
        "GET",
        &path_of(header(&a, "location")[0], op.port),
        &[],
        "",
    )
    .await;
    assert_eq!(a.status, 302, "{}", a.body);
    header(&a, "location")[0].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_log_in_through_a_real_openid_provider() {
    let hub_port = free_port();
    let redirect = format!("http://127.0.0.1:{hub_port}/ui/oidc/callback");
    let op_dir = tempfile::tempdir().unwrap();
    let op = start_provider(op_dir.path(), &redirect).await;
    let secret = op_dir.path().join("secret");
    let extra = format!(
        "adminListen: 127.0.0.1:{hub_port}\nadminOidc:\n  issuer: {}\n  clientId: hub\n  clientSecretFile: {}\n  redirectUrl: {redirect}\n  displayName: Test OP\n  roles: {{claim: email, viewer: [vera@example.test], admin: [ada@example.test]}}\n",
        op.issuer,
        secret.display()
    );
    let mut hub = TestHub::start_with(&extra, TENANT_A, false).await;

    // The login page offers both ways in.
    let page = admin_port(hub_port, "GET", "/ui/", &[], "").await;
    assert!(
        page.body.contains(">Sign in with Test OP</a>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"token\""));

    // ada: admin.
    let (pending, auth) = start_login(hub_port, &op).await;
    let back = at_provider(&op, &auth, "ada", "ada-pw").await;
    assert!(back.starts_with(&redirect), "{back}");
    let callback = path_of(&back, hub_port);
    let a = admin_port(
        hub_port,
        "GET",
        &callback,
        std::slice::from_ref(&pending),
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body.contains("Signed in as ada-example-test (admin)"),
        "{}",
        a.body
    );
    let session = set_cookie(&a, "fleetgate_session").expect("a session cookie");
    assert!(session.len() > "fleetgate_session=".len());
    assert_eq!(
        set_cookie(&a, "fleetgate_oidc").as_deref(),
        Some("fleetgate_oidc="),
        "the pending login is cleared"
    );
    let overview = admin_port(hub_port, "GET", "/ui/", &[format!("cookie: {session}")], "").await;
    assert!(
        overview.body.contains("ada-example-test (admin)"),
        "{}",
        overview.body
    );
    assert!(
        overview.body.contains("id=\"token-form\""),
        "an admin gets the token form"
    );

    // The same callback again (a replayed URL with its cookie): refused, no session.
    let again = admin_port(
        hub_port,
        "GET",
        &callback,
        std::slice::from_ref(&pending),
        "",
    )
    .await;
    assert_eq!(again.status, 401, "{}", again.body);
    assert!(again.body.contains("already completed"), "{}", again.body);
    assert_eq!(set_cookie(&again, "fleetgate_session"), None);

    // vera: viewer, no token form.
    let (pending, auth) = start_login(hub_port, &op).await;
    let back = at_provider(&op, &auth, "vera", "vera-pw").await;
    let a = admin_port(hub_port, "GET", &path_of(&back, hub_port), &[pending], "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let session = set_cookie(&a, "fleetgate_session").unwrap();
    let overview = admin_port(hub_port, "GET", "/ui/", &[format!("cookie: {session}")], "").await;
    assert!(
        overview.body.contains("vera-example-test (viewer)"),
        "{}",
        overview.body
    );
    assert!(!overview.body.contains("id=\"token-form\""));

    // eve: signed in at the provider, but no role at the hub.
    let (pending, auth) = start_login(hub_port, &op).await;
    let back = at_provider(&op, &auth, "eve", "eve-pw").await;
    let a = admin_port(hub_port, "GET", &path_of(&back, hub_port), &[pending], "").await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        a.body
            .contains("no role is mapped to your email (&quot;eve@example.test&quot;)"),
        "{}",
        a.body
    );
    assert_eq!(set_cookie(&a, "fleetgate_session"), None);

    // A forged state with a real pending login; a callback without the login's cookie.
    let (pending, auth) = start_login(hub_port, &op).await;
    let back = at_provider(&op, &auth, "ada", "ada-pw").await;
    let code = back
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let forged = admin_port(
        hub_port,
        "GET",
        &format!("/ui/oidc/callback?code={code}&state=forged"),
        std::slice::from_ref(&pending),
        "",
    )
    .await;
    assert_eq!(forged.status, 401, "{}", forged.body);
    assert!(
        forged.body.contains("state does not match"),
        "{}",
        forged.body
    );
    let no_cookie = admin_port(hub_port, "GET", &path_of(&back, hub_port), &[], "").await;
    assert_eq!(no_cookie.status, 401);
    assert!(
        no_cookie.body.contains("no login in progress"),
        "{}",
        no_cookie.body
    );
    // Another hub's (or an altered) pending cookie is no login either.
    let altered = pending.replacen("fleetgate_oidc=", "fleetgate_oidc=x", 1);
    let a = admin_port(hub_port, "GET", &path_of(&back, hub_port), &[altered], "").await;
    assert!(a.body.contains("no login in progress"), "{}", a.body);

    // The provider goes down: the login page says so; operator tokens still log in.
    drop(op);
    let a = admin_port(hub_port, "GET", "/ui/oidc/login", &[], "").await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert!(a.body.contains("cannot be reached"), "{}", a.body);
    assert!(
        a.body.contains("id=\"token\""),
        "the token form is still there"
    );
    let token = {
        use fleetgate_hub::admin::operator_token::{Role, mint, operator_key};
        let key = operator_key(
            &fleetgate_hub::enroll::token::TokenKey::load_or_create(&hub.pki()).unwrap(),
        );
        mint(&key, "tess", Role::Viewer, u64::MAX / 4).unwrap()
    };
    let a = admin_port(
        hub_port,
        "POST",
        "/ui/login",
        &[],
        &format!("token={token}"),
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.body);
    hub.stop().await;
}

/// `fleetgate-hub check --config` refuses a wrong `adminOidc` section, naming each field, and
/// accepts a right one, without the provider running.
#[test]
fn check_names_what_to_fix_in_admin_oidc() {
    let dir = tempfile::tempdir().unwrap();
    let base = "agentListen: 127.0.0.1:0\nxdsListen: 127.0.0.1:0\nadminListen: 127.0.0.1:9901\npkiDir: /nonexistent/pki\nstorePath: /nonexistent/hub.redb\ndataPlane:\n  address: 127.0.0.1\n  listeners: [{port: 80, bind: '0.0.0.0:8080'}]\n";
    let check = |oidc: &str| {
        let path = dir.path().join("hub.yaml");
        std::fs::write(&path, format!("{base}adminOidc:\n{oidc}")).unwrap();
        Command::new(env!("CARGO_BIN_EXE_fleetgate-hub"))
            .args(["check", "--config", path.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let good = format!(
        "  issuer: https://dex.example.com/\n  clientId: hub\n  clientSecretFile: {}\n  redirectUrl: http://127.0.0.1:9901/ui/oidc/callback\n  roles: {{claim: groups, admin: [ops]}}\n",
        secret.display()
    );
    let out = check(&good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = good
        .replace("https://dex.example.com/", "http://dex.example.com/")
        .replace(&secret.display().to_string(), "/nonexistent/secret")
        .replace("/ui/oidc/callback", "/callback")
        .replace("admin: [ops]", "admin: []");
    let out = check(&bad);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for field in [
        "adminOidc.issuer \"http://dex.example.com/\" must use https",
        "adminOidc.clientSecretFile /nonexistent/secret: cannot read it",
        "adminOidc.redirectUrl",
        "adminOidc.roles: list groups values under viewer or admin",
    ] {
        assert!(err.contains(field), "{field:?} in {err}");
    }
}
