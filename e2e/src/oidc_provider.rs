//! A real OpenID provider on loopback for the dashboard's OIDC login: `e2e/oidc-provider`
//! (the example OP of github.com/zitadel/oidc/v3 behind a small main of ours, built by
//! `e2e/setup.sh oidc`), with one web client for the hub and the test's users. Its login page
//! is the library's: a username and a password field and a "Login" button.
//!
//! `OidcProvider::start` picks a free loopback port, so the issuer (`http://127.0.0.1:<port>/`)
//! is known before the hub's config is written; it returns once discovery answers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use crate::components;
use crate::eventually::try_eventually;
use crate::ports::free_port;
use crate::process::{Process, TestDir};

/// The client id the provider knows the hub by.
pub const CLIENT_ID: &str = "fleetgate-hub";

/// One user of the provider.
#[derive(Debug, Clone)]
pub struct OidcUser {
    pub username: &'static str,
    pub password: &'static str,
    pub email: &'static str,
    pub groups: &'static [&'static str],
}

/// A running provider.
#[derive(Debug)]
pub struct OidcProvider {
    /// `http://127.0.0.1:<port>/`, exactly as its ID tokens' `iss`.
    pub issuer: String,
    pub addr: SocketAddr,
    /// The file holding the hub's client secret.
    pub secret_file: PathBuf,
    process: Process,
}

impl OidcProvider {
    /// Starts the provider with a client for the hub whose callback is `redirect_uri`, and
    /// `users`.
    pub async fn start(
        dir: &TestDir,
        redirect_uri: &str,
        users: &[OidcUser],
    ) -> anyhow::Result<Self> {
        let bin = components::oidc_provider()?;
        let secret = format!("secret-{}", free_port()?);
        let secret_file = dir.write("oidc-client-secret", &secret)?;
        let users: Vec<_> = users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                json!({"id": format!("user-{i}"), "username": u.username, "password": u.password,
                    "email": u.email, "groups": u.groups})
            })
            .collect();
        let users_file = dir.write("oidc-users.json", serde_json::to_vec(&users)?)?;
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let process = Process::spawn(
            dir,
            "oidc-provider",
            bin,
            [
                "-listen".to_string(),
                addr.to_string(),
                "-client-id".into(),
                CLIENT_ID.into(),
                "-client-secret-file".into(),
                secret_file.display().to_string(),
                "-redirect-uri".into(),
                redirect_uri.into(),
                "-users".into(),
                users_file.display().to_string(),
            ],
        )?;
        let issuer = format!("http://{addr}/");
        let provider = Self {
            issuer,
            addr,
            secret_file,
            process,
        };
        provider.wait_ready().await?;
        Ok(provider)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let addr = self.addr;
        let issuer = self.issuer.clone();
        try_eventually(Duration::from_secs(20), || {
            let issuer = issuer.clone();
            async move {
                let (status, body) = crate::http::get(
                    addr,
                    &addr.to_string(),
                    "/.well-known/openid-configuration",
                    &[],
                )
                .await?;
                anyhow::ensure!(
                    status == 200 && body.contains(&format!("\"issuer\":\"{issuer}\"")),
                    "{status} {body}"
                );
                Ok(())
            }
        })
        .await
        .with_context(|| {
            format!(
                "the OpenID provider did not answer discovery: {}",
                self.process.log_tail(20)
            )
        })
    }

    /// The hub's `adminOidc` section for this provider (a value for the config's top-level
    /// `adminOidc` key): `claim` decides the role, `viewers` and `admins` are its values.
    pub fn hub_config(
        &self,
        redirect_uri: &str,
        claim: &str,
        viewers: &[&str],
        admins: &[&str],
    ) -> serde_json::Value {
        json!({
            "issuer": self.issuer,
            "clientId": CLIENT_ID,
            "clientSecretFile": self.secret_file,
            "redirectUrl": redirect_uri,
            "displayName": "Test OP",
            "roles": {"claim": claim, "viewer": viewers, "admin": admins},
        })
    }

    /// Stops the provider (the hub must cope).
    pub fn stop(&mut self) {
        self.process.kill();
    }

    /// Starts it again on the same address (new signing key, same users and client).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.process.restart()?;
        self.wait_ready().await
    }
}
