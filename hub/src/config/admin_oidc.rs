//! `adminOidc:` in the hub config file: operators log in to the dashboard through an OpenID
//! Connect provider, next to operator tokens (`crate::admin::oidc`).
//!
//! Validated here, where `fleetgate-hub check --config` sees it: the issuer is an `https` URL
//! (plain `http` only on a loopback host), the redirect URL ends in `/ui/oidc/callback`, the
//! client secret file is readable and not empty, and at least one claim value maps to a role.
//! No mapping means no login: there is no default role.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::parse_config_duration;

/// The path the provider sends the browser back to, on the admin port.
pub const CALLBACK_PATH: &str = "/ui/oidc/callback";
/// Default longest dashboard session after an OIDC login (the ID token's expiry may end it
/// sooner).
pub const DEFAULT_MAX_SESSION: Duration = Duration::from_secs(8 * 3600);
/// Longest `maxSession` (the longest an operator token lives).
pub const MAX_SESSION: Duration = Duration::from_secs(7 * 24 * 3600);

/// `adminOidc:` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAdminOidc {
    /// The provider's issuer URL, exactly as its ID tokens' `iss` (e.g. `https://dex.example/`).
    pub issuer: String,
    pub client_id: String,
    /// A file holding the client secret (trailing whitespace ignored).
    pub client_secret_file: PathBuf,
    /// `http://<adminListen or its public name>/ui/oidc/callback`, registered at the provider.
    pub redirect_url: String,
    /// Which claim decides the role, and the values for each role.
    pub roles: RawOidcRoles,
    /// Scopes asked besides `openid`; default `[email]`, plus `groups` when `roles.claim` is
    /// `groups`.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Longest session after a login, e.g. `8h` (the default); at most 7 days.
    #[serde(default)]
    pub max_session: Option<String>,
    /// What the login button says after "Sign in with"; default the issuer.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `adminOidc.roles`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawOidcRoles {
    /// A claim of the ID token: a string (`email`, `sub`, ...) or a list of strings (`groups`).
    pub claim: String,
    /// Claim values that make a viewer.
    #[serde(default)]
    pub viewer: Vec<String>,
    /// Claim values that make an admin (wins over viewer).
    #[serde(default)]
    pub admin: Vec<String>,
}

/// The validated section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminOidc {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_url: String,
    pub claim: String,
    pub viewer: BTreeSet<String>,
    pub admin: BTreeSet<String>,
    /// Besides `openid`.
    pub scopes: Vec<String>,
    pub max_session: Duration,
    pub display_name: String,
}

/// Why a URL is refused, or its scheme and authority (`https://host:port`).
pub fn origin(url: &str, loopback_http: bool) -> Result<String, String> {
    let uri: hyper::Uri = url.parse().map_err(|_| "is not a URL".to_string())?;
    let scheme = uri.scheme_str().unwrap_or("");
    let host = uri.host().unwrap_or("");
    if host.is_empty() {
        return Err("has no host".into());
    }
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match scheme {
        "https" => {}
        "http" if loopback_http && loopback => {}
        "http" => return Err("must use https (http only on a loopback host)".into()),
        _ => return Err("must be an https URL".into()),
    }
    if uri.query().is_some() || url.contains('#') {
        return Err("must not have a query or fragment".into());
    }
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
    if authority.contains('@') {
        return Err("must not carry credentials".into());
    }
    Ok(format!("{scheme}://{authority}"))
}

impl RawAdminOidc {
    pub fn validate(&self, admin_listen: bool, errs: &mut Vec<String>) -> Option<AdminOidc> {
        let before = errs.len();
        if !admin_listen {
            errs.push("adminOidc: set adminListen too (the dashboard is served there)".into());
        }
        if let Err(e) = origin(&self.issuer, true) {
            errs.push(format!(
                "adminOidc.issuer {:?} {e}: write the provider's issuer URL, e.g. https://dex.example.com/",
                self.issuer
            ));
        }
        if self.client_id.trim().is_empty() {
            errs.push("adminOidc.clientId: the client id registered at the provider".into());
        }
        let secret = match std::fs::read_to_string(&self.client_secret_file) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
            Ok(_) => {
                errs.push(format!(
                    "adminOidc.clientSecretFile {}: the file is empty; write the client secret in it",
                    self.client_secret_file.display()
                ));
                String::new()
            }
            Err(e) => {
                errs.push(format!(
                    "adminOidc.clientSecretFile {}: cannot read it ({e})",
                    self.client_secret_file.display()
                ));
                String::new()
            }
        };
        match origin(&self.redirect_url, true) {
            Err(e) => errs.push(format!("adminOidc.redirectUrl {:?} {e}", self.redirect_url)),
            Ok(o) if self.redirect_url != format!("{o}{CALLBACK_PATH}") => errs.push(format!(
                "adminOidc.redirectUrl {:?}: must be {o}{CALLBACK_PATH} (the dashboard's callback)",
                self.redirect_url
            )),
            Ok(_) => {}
        }
        let claim = self.roles.claim.trim();
        if claim.is_empty() {
            errs.push("adminOidc.roles.claim: name the ID token claim that decides the role, e.g. groups or email".into());
        }
        if self.roles.viewer.is_empty() && self.roles.admin.is_empty() {
            errs.push(format!(
                "adminOidc.roles: list {claim} values under viewer or admin (nobody gets a role by default)"
            ));
        }
        if self
            .roles
            .viewer
            .iter()
            .chain(&self.roles.admin)
            .any(|v| v.trim().is_empty())
        {
            errs.push("adminOidc.roles: an empty value maps nobody; remove it".into());
        }
        let max_session = match self.max_session.as_deref().map(parse_config_duration) {
            None => DEFAULT_MAX_SESSION,
            Some(Ok(d)) if !d.is_zero() && d <= MAX_SESSION => d,
            Some(_) => {
                errs.push(format!(
                    "adminOidc.maxSession {:?}: use a duration such as 8h or 30m, at most 168h",
                    self.max_session.as_deref().unwrap_or("")
                ));
                DEFAULT_MAX_SESSION
            }
        };
        let scopes = match &self.scopes {
            Some(s) => s.clone(),
            None if claim == "groups" => vec!["email".into(), "groups".into()],
            None => vec!["email".into()],
        };
        if let Some(bad) = scopes.iter().find(|s| {
            s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        }) {
            errs.push(format!("adminOidc.scopes: {bad:?} is not a scope"));
        }
        if errs.len() > before {
            return None;
        }
        Some(AdminOidc {
            issuer: self.issuer.clone(),
            client_id: self.client_id.trim().to_string(),
            client_secret: secret,
            redirect_url: self.redirect_url.clone(),
            claim: claim.to_string(),
            viewer: self.roles.viewer.iter().cloned().collect(),
            admin: self.roles.admin.iter().cloned().collect(),
            scopes: scopes.into_iter().filter(|s| s != "openid").collect(),
            max_session,
            display_name: self
                .display_name
                .clone()
                .unwrap_or_else(|| self.issuer.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(secret_file: PathBuf) -> RawAdminOidc {
        serde_yaml::from_str(&format!(
            "issuer: https://dex.example.com/\nclientId: hub\nclientSecretFile: {}\n\
redirectUrl: http://127.0.0.1:9901/ui/oidc/callback\nroles: {{claim: groups, admin: [ops]}}\n",
            secret_file.display()
        ))
        .unwrap()
    }

    #[test]
    fn a_valid_section_reads_its_secret_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("secret");
        std::fs::write(&f, "s3cret\n").unwrap();
        let mut errs = vec![];
        let c = raw(f).validate(true, &mut errs).unwrap();
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(c.client_secret, "s3cret");
        assert_eq!(c.scopes, ["email", "groups"]);
        assert_eq!(c.max_session, DEFAULT_MAX_SESSION);
        assert_eq!(c.display_name, "https://dex.example.com/");
    }

    #[test]
    fn each_mistake_names_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        for (edit, field) in [
            (
                &(|r: &mut RawAdminOidc| r.issuer = "not a url".into())
                    as &dyn Fn(&mut RawAdminOidc),
                "adminOidc.issuer",
            ),
            (
                &|r| r.issuer = "http://dex.example.com/".into(),
                "adminOidc.issuer",
            ),
            (
                &|r| r.issuer = "https://dex.example.com/?x=1".into(),
                "adminOidc.issuer",
            ),
            (&|_| {}, "adminOidc.clientSecretFile"),
            (
                &|r| r.redirect_url = "http://127.0.0.1:9901/cb".into(),
                "adminOidc.redirectUrl",
            ),
            (
                &|r| r.redirect_url = "ftp://h/ui/oidc/callback".into(),
                "adminOidc.redirectUrl",
            ),
            (&|r| r.roles.admin.clear(), "adminOidc.roles"),
            (&|r| r.roles.claim = " ".into(), "adminOidc.roles.claim"),
            (
                &|r| r.max_session = Some("30d".into()),
                "adminOidc.maxSession",
            ),
            (
                &|r| r.max_session = Some("1000h".into()),
                "adminOidc.maxSession",
            ),
            (&|r| r.client_id = "".into(), "adminOidc.clientId"),
        ] {
            let mut r = raw(missing.clone());
            edit(&mut r);
            let mut errs = vec![];
            assert!(r.validate(true, &mut errs).is_none());
            assert!(
                errs.iter().any(|e| e.starts_with(field)),
                "{field} not named in {errs:?}"
            );
        }
        let mut errs = vec![];
        assert!(raw(missing).validate(false, &mut errs).is_none());
        assert!(errs.iter().any(|e| e.contains("adminListen")), "{errs:?}");
    }

    #[test]
    fn http_is_for_loopback_issuers_only() {
        assert_eq!(
            origin("http://127.0.0.1:5556/", true).unwrap(),
            "http://127.0.0.1:5556"
        );
        assert_eq!(
            origin("http://[::1]:5556/dex", true).unwrap(),
            "http://[::1]:5556"
        );
        assert!(origin("http://10.0.0.1/", true).is_err());
        assert!(origin("http://127.0.0.1/", false).is_err());
        assert!(origin("https://u:p@dex.example/", true).is_err());
        assert_eq!(
            origin("https://dex.example/", false).unwrap(),
            "https://dex.example"
        );
    }
}
