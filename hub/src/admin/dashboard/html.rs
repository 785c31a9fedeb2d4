//! The dashboard's pages as HTML: pure functions from the admin views ([`super::super::views`])
//! to text. Every string that comes from a tenant or the configuration goes through [`esc`]
//! (object names, condition messages and hostnames are tenant input).

use std::fmt::Write;

use crate::admin::operator_token::{Operator, Role};
use crate::admin::views::{
    AllocationRow, ClusterRow, ClusterState, DataPlane, ObjectRow, TenantRow,
};
use crate::data_plane::EnvoyView;
use crate::envoy_stats::TenantRate;

/// Objects shown per page of a tenant.
pub const PAGE: usize = 50;

/// `s` safe as HTML text and as a quoted attribute value.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` as one URL path segment or query value.
pub fn url(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0 1.5rem 2rem;color:#1d2330}\
header{display:flex;gap:1rem;align-items:center;border-bottom:1px solid #ccd;padding:.6rem 0;margin-bottom:1rem}\
header h1{font-size:1.2rem;margin:0;flex:1}h2{font-size:1.05rem;margin-top:1.6rem}\
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e4e6ee;vertical-align:top}\
th{background:#f3f4f8}.state-connected{color:#17803d}.state-disabled,.problem{color:#b42318}.state-withdrawn{color:#b54708}\
form.inline{display:inline}button{font-size:.8rem;margin-right:.3rem}.muted{color:#667}.token{font-family:monospace;word-break:break-all;background:#f3f4f8;padding:.4rem}";

/// A whole page: `title`, the operator's bar, and `body`; the page listens to the hub's
/// server-sent events and re-fetches its live parts on each.
pub fn page(title: &str, operator: Option<(&Operator, &str)>, body: &str) -> String {
    let bar = match operator {
        Some((op, csrf)) => format!(
            "<span class=\"muted\">{} ({})</span><form class=\"inline\" method=\"post\" action=\"/ui/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button id=\"logout\">Log out</button></form>",
            esc(&op.name),
            op.role.as_str(),
            esc(csrf)
        ),
        None => String::new(),
    };
    let live = if operator.is_some() {
        " hx-ext=\"sse\" sse-connect=\"/ui/events\""
    } else {
        ""
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} - fleetgate</title>\
<meta name=\"viewport\" content=\"width=device-width\"><style>{STYLE}</style>\
<script src=\"/ui/static/htmx.min.js\"></script><script src=\"/ui/static/sse.min.js\"></script></head>\
<body{live}><header><h1><a href=\"/ui/\">fleetgate</a> · {t}</h1>{bar}</header>{body}</body></html>",
        t = esc(title)
    )
}

/// The login form; `error` says why the last attempt failed.
pub fn login(error: Option<&str>, oidc: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"problem\" id=\"login-error\">{}</p>", esc(e)))
        .unwrap_or_default();
    let oidc = oidc
        .map(|name| {
            format!(
                "<p><a id=\"oidc-login\" href=\"/ui/oidc/login\">Sign in with {}</a></p><p class=\"muted\">or</p>",
                esc(name)
            )
        })
        .unwrap_or_default();
    page(
        "log in",
        None,
        &format!(
            "{error}{oidc}<form method=\"post\" action=\"/ui/login\"><p>Paste an operator token \
(<code>fleetgate-hub operator-token create --name &lt;you&gt; --role viewer|admin</code>):</p>\
<p><input name=\"token\" id=\"token\" size=\"80\" autocomplete=\"off\" required></p>\
<p><button id=\"login\">Log in</button></p></form>"
        ),
    )
}

/// The page the OIDC callback answers with: it moves on to the dashboard by itself. (A
/// redirect would not do: the browser arrives from the provider's site, and it keeps the
/// `SameSite=Strict` session cookie out of the whole redirect chain.)
pub fn signed_in(op: &Operator) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url=/ui/\"><title>fleetgate: signed in</title></head>\
<body><p id=\"signed-in\">Signed in as {} ({}). <a href=\"/ui/\">Continue to the dashboard</a>.</p></body></html>",
        esc(&op.name),
        op.role.as_str()
    )
}

/// The overview: a live section re-fetched from `/ui/fragments/overview` on every event.
pub fn overview_page(op: &Operator, csrf: &str, live: &str) -> String {
    page(
        "fleet",
        Some((op, csrf)),
        &format!(
            "<div id=\"overview\" hx-get=\"/ui/fragments/overview\" hx-trigger=\"sse:fleet\" hx-swap=\"innerHTML\">{live}</div>{}",
            if op.role == Role::Admin {
                token_form(csrf)
            } else {
                String::new()
            }
        ),
    )
}

fn token_form(csrf: &str) -> String {
    format!(
        "<h2>Bootstrap token</h2><form id=\"token-form\" hx-post=\"/ui/tokens\" hx-target=\"#token-result\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<label>tenant <input name=\"tenant\" required></label> <label>cluster <input name=\"cluster\" required></label> \
<button>Create</button></form><div id=\"token-result\"></div>",
        esc(csrf)
    )
}

/// The overview's live part: tenants, clusters (with the admin's actions), allocations and
/// the data plane.
pub fn overview(
    op: &Operator,
    csrf: &str,
    tenants: &[TenantRow],
    clusters: &[ClusterRow],
    allocations: &[AllocationRow],
    data_plane: &DataPlane,
) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<h2>Tenants ({})</h2><table id=\"tenants\"><tr><th>tenant</th><th>clusters</th><th>connected</th><th>objects</th><th>with problems</th><th>hostnames held</th></tr>",
        tenants.len()
    );
    for t in tenants {
        let _ = write!(
            s,
            "<tr data-tenant=\"{n}\"><td><a href=\"/ui/tenants/{u}\">{n}</a></td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            t.clusters,
            t.connected,
            t.objects,
            if t.with_problems > 0 { "problem" } else { "" },
            t.with_problems,
            held(&t.owned_hostnames),
            n = esc(&t.name),
            u = url(&t.name),
        );
    }
    s.push_str("</table>");
    let _ = write!(
        s,
        "<h2>Clusters ({})</h2><table id=\"clusters\"><tr><th>tenant</th><th>cluster</th><th>state</th><th>disabled by</th><th>objects</th><th>with problems</th>{}</tr>",
        clusters.len(),
        if op.role == Role::Admin {
            "<th>actions</th>"
        } else {
            ""
        }
    );
    for c in clusters {
        let state = match c.state {
            ClusterState::Connected => "connected",
            ClusterState::Disconnected => "disconnected",
            ClusterState::Withdrawn => "withdrawn",
            ClusterState::Disabled => "disabled",
        };
        let actions = if op.role == Role::Admin {
            let first = if c.state == ClusterState::Disabled {
                "enable"
            } else {
                "disable"
            };
            format!(
                "<td>{}{}</td>",
                action_button(csrf, c, first),
                action_button(csrf, c, "revoke")
            )
        } else {
            String::new()
        };
        let _ = write!(
            s,
            "<tr data-cluster=\"{t}/{n}\"><td>{t}</td><td>{n}</td><td class=\"state state-{state}\">{state}</td><td>{}</td><td>{}</td><td>{}</td>{actions}</tr>",
            esc(&c.disabled_by.join(", ")),
            c.objects,
            c.with_problems,
            t = esc(&c.tenant),
            n = esc(&c.cluster),
        );
    }
    s.push_str("</table>");
    let _ = write!(
        s,
        "<h2>L4 allocations ({})</h2><table id=\"allocations\"><tr><th>tenant</th><th>cluster</th><th>object</th><th>port</th><th>address</th></tr>",
        allocations.len()
    );
    for a in allocations {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{} {}/{}</td><td>{}/{}</td><td>{}</td></tr>",
            esc(&a.tenant),
            esc(&a.cluster),
            a.owner,
            esc(&a.namespace),
            esc(&a.name),
            a.port,
            a.protocol,
            esc(a.address.as_deref().or(a.error.as_deref()).unwrap_or("-")),
        );
    }
    s.push_str("</table>");
    envoys(&mut s, &data_plane.envoys);
    let _ = write!(
        s,
        "<h2>AI gateways ({})</h2><table id=\"ai-gateways\"><tr><th>replica</th><th>tenants served (version)</th><th>refused</th></tr>",
        data_plane.ai_gateways.len()
    );
    for g in &data_plane.ai_gateways {
        let serving: Vec<String> = g
            .serving
            .iter()
            .map(|(t, v)| format!("{} ({v})", esc(t)))
            .collect();
        let refused: Vec<String> = g
            .refused
            .iter()
            .map(|r| {
                format!(
                    "<div class=\"problem\">{} v{}: {}</div>",
                    esc(&r.tenant),
                    r.version,
                    esc(&r.reason)
                )
            })
            .collect();
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&g.id),
            serving.join(", "),
            if refused.is_empty() {
                "-".to_string()
            } else {
                refused.concat()
            }
        );
    }
    s.push_str("</table>");
    let _ = write!(
        s,
        "<h2>Envoy rejections standing ({})</h2><table id=\"envoy-rejections\"><tr><th>type</th><th>Envoy</th><th>version</th><th>error</th><th>blamed</th></tr>",
        data_plane.envoy_rejections.len()
    );
    for n in &data_plane.envoy_rejections {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"problem\">{}</td><td>{}</td></tr>",
            esc(n.type_url.rsplit('.').next().unwrap_or(&n.type_url)),
            esc(&n.node),
            esc(&n.version),
            esc(&n.message),
            esc(&n.blamed.join(", ")),
        );
    }
    s.push_str("</table>");
    s
}

/// The Envoys connected to the ADS server: since when, the version of each type they last
/// ACKed, their last NACK.
fn envoys(s: &mut String, envoys: &[EnvoyView]) {
    let _ = write!(
        s,
        "<h2>Envoys connected ({})</h2><table id=\"envoys\"><tr><th>Envoy</th><th>connected since</th><th>versions ACKed</th><th>last new version ACKed</th><th>last NACK</th></tr>",
        envoys.len()
    );
    for e in envoys {
        let acked: Vec<String> = e
            .acked
            .iter()
            .map(|(t, v)| {
                format!(
                    "<div>{} <code>{}</code></div>",
                    esc(t.rsplit('.').next().unwrap_or(t)),
                    esc(&v.chars().take(12).collect::<String>())
                )
            })
            .collect();
        let nack = match &e.last_nack {
            None => "-".to_string(),
            Some(n) => format!(
                "<div class=\"problem\">{} <code>{}</code> at {}: {}</div>",
                esc(n.type_url.rsplit('.').next().unwrap_or(&n.type_url)),
                esc(&n.version.chars().take(12).collect::<String>()),
                utc(n.at),
                esc(&n.message)
            ),
        };
        let _ = write!(
            s,
            "<tr data-envoy=\"{n}\"><td>{n}</td><td>{}</td><td>{}</td><td class=\"last-ack\">{}</td><td>{nack}</td></tr>",
            utc(e.connected_since),
            if acked.is_empty() {
                "-".to_string()
            } else {
                acked.concat()
            },
            e.last_ack_at.map(utc).unwrap_or_else(|| "-".into()),
            n = esc(&e.node),
        );
    }
    s.push_str("</table>");
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => unix.to_string(),
    }
}

/// Hostnames held, the first three named (the tenant's page lists them all).
fn held(hosts: &[String]) -> String {
    let shown: Vec<&str> = hosts.iter().take(3).map(String::as_str).collect();
    let more = hosts.len().saturating_sub(shown.len());
    let mut s = esc(&shown.join(", "));
    if more > 0 {
        let _ = write!(s, " and {more} more");
    }
    s
}

fn action_button(csrf: &str, c: &ClusterRow, action: &str) -> String {
    let what = match action {
        "disable" => "Disable cluster {} of tenant {}? Its traffic stops and its agent is refused.",
        "enable" => "Enable cluster {} of tenant {} again?",
        _ => "Revoke every certificate of cluster {} of tenant {}? Its agent must enroll again.",
    };
    let confirm = what
        .replacen("{}", &c.cluster, 1)
        .replacen("{}", &c.tenant, 1);
    format!(
        "<button class=\"{action}\" hx-post=\"/ui/clusters/{}/{}/{action}\" hx-vals='{{\"csrf\": \"{}\"}}' hx-confirm=\"{}\" hx-target=\"#overview\">{action}</button>",
        url(&c.tenant),
        url(&c.cluster),
        esc(csrf),
        esc(&confirm)
    )
}

/// The parts of a tenant's page rendered elsewhere (HTML).
pub struct TenantParts<'a> {
    /// Its traffic ([`traffic`]), re-fetched every 5 s.
    pub traffic: &'a str,
    /// Its objects, re-fetched on every event.
    pub live: &'a str,
    /// The AI usage section ([`super::ai::section`]).
    pub ai: &'a str,
}

/// One tenant's page: the hostnames it holds, its traffic, a search box, and a live part
/// re-fetched on every event; then the AI usage section.
pub fn tenant_page(
    op: &Operator,
    csrf: &str,
    tenant: &str,
    held: &[String],
    query: &str,
    parts: &TenantParts<'_>,
) -> String {
    let TenantParts { traffic, live, ai } = parts;
    page(
        &format!("tenant {tenant}"),
        Some((op, csrf)),
        &format!(
            "<p class=\"muted\" id=\"held\">Hostnames held ({}): {}</p>\
<div id=\"traffic\" hx-get=\"/ui/fragments/tenants/{u}/traffic\" hx-trigger=\"every 5s\" hx-swap=\"innerHTML\">{traffic}</div><form method=\"get\" action=\"/ui/tenants/{u}\"><input name=\"q\" id=\"search\" value=\"{q}\" placeholder=\"kind, namespace or name\"> <button id=\"search-button\">Search</button></form>\
<div id=\"objects\" hx-get=\"/ui/fragments/tenants/{u}?q={uq}\" hx-trigger=\"sse:fleet\" hx-swap=\"innerHTML\">{live}</div>{ai}",
            held.len(),
            esc(&held.join(", ")),
            u = url(tenant),
            q = esc(query),
            uq = url(query),
        ),
    )
}

/// A tenant's traffic as Envoy's stats sink reports it (see `crate::envoy_stats`).
pub fn traffic(rate: Option<&TenantRate>) -> String {
    let Some(r) = rate else {
        return "<p class=\"muted\" id=\"no-traffic\">No traffic reported by Envoy for this tenant (Envoy streams its stats to the hub with the metrics_service stats sink; docs/operations.md).</p>".into();
    };
    let ratio = if r.requests_per_second > 0.0 {
        format!(
            "{:.1}%",
            100.0 * r.errors_per_second / r.requests_per_second
        )
    } else {
        "-".into()
    };
    format!(
        "<h2>Traffic</h2><table id=\"traffic-table\"><tr><th>requests/s</th><th>5xx/s</th><th>error ratio</th><th>mean latency</th><th>requests (total)</th><th>5xx (total)</th></tr>\
<tr><td>{:.2}</td><td>{:.2}</td><td>{ratio}</td><td>{}</td><td id=\"requests-total\">{}</td><td id=\"errors-total\">{}</td></tr></table>",
        r.requests_per_second,
        r.errors_per_second,
        r.mean_latency_ms
            .map(|ms| format!("{ms:.1} ms"))
            .unwrap_or_else(|| "-".into()),
        r.requests,
        r.errors,
    )
}

/// One page of a tenant's objects (0-based `page`), with links to the others.
pub fn objects(tenant: &str, query: &str, rows: &[ObjectRow], page: usize) -> String {
    let pages = rows.len().div_ceil(PAGE).max(1);
    let page = page.min(pages - 1);
    let mut s = format!(
        "<p class=\"muted\" id=\"count\">{} objects{}</p><table id=\"object-table\"><tr><th>cluster</th><th>kind</th><th>namespace</th><th>name</th><th>problems</th></tr>",
        rows.len(),
        if query.is_empty() {
            String::new()
        } else {
            format!(" matching “{}”", esc(query))
        }
    );
    for r in rows.iter().skip(page * PAGE).take(PAGE) {
        let problems: Vec<String> = r
            .problems
            .iter()
            .map(|p| {
                format!(
                    "<div class=\"problem\">{} {}: {}</div>",
                    esc(&p.type_),
                    esc(&p.reason),
                    esc(&p.message)
                )
            })
            .collect();
        let _ = write!(
            s,
            "<tr data-object=\"{k}/{ns}/{n}\"><td>{}</td><td>{k}</td><td>{ns}</td><td>{n}</td><td>{}</td></tr>",
            esc(&r.cluster),
            if problems.is_empty() {
                "<span class=\"state-connected\">ok</span>".to_string()
            } else {
                problems.concat()
            },
            k = esc(&r.kind),
            ns = esc(&r.namespace),
            n = esc(&r.name),
        );
    }
    s.push_str("</table>");
    if pages > 1 {
        s.push_str("<p class=\"pages\">");
        for p in 0..pages {
            if p == page {
                let _ = write!(s, "<b>{}</b> ", p + 1);
            } else {
                let _ = write!(
                    s,
                    "<a href=\"/ui/tenants/{}?q={}&amp;page={}\">{}</a> ",
                    url(tenant),
                    url(query),
                    p,
                    p + 1
                );
            }
        }
        s.push_str("</p>");
    }
    s
}

/// What a created bootstrap token looks like on the page.
pub fn token_result(tenant: &str, cluster: &str, token: &str, expires: u64) -> String {
    format!(
        "<p>Single-use bootstrap token for cluster {} of tenant {} (expires at Unix time {expires}):</p><p class=\"token\" id=\"bootstrap-token\">{}</p>",
        esc(cluster),
        esc(tenant),
        esc(token)
    )
}

/// A refusal shown in place of what was asked.
pub fn refusal(message: &str) -> String {
    format!("<p class=\"problem\" id=\"refusal\">{}</p>", esc(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::views::Problem;
    use crate::model::{Kind, ObjectKey, ObjectStatus};

    fn op(role: Role) -> Operator {
        Operator {
            name: "ada".into(),
            role,
            expires: 1,
        }
    }

    #[test]
    fn tenant_strings_are_escaped_everywhere_they_appear() {
        let evil = "<script>alert('x')</script>\"&";
        let row = ObjectRow {
            cluster: "east".into(),
            kind: "HttpRoute".into(),
            namespace: "default".into(),
            name: evil.into(),
            problems: vec![Problem {
                on: evil.into(),
                type_: "Accepted".into(),
                reason: "HostnameNotAllowed".into(),
                message: evil.into(),
            }],
            status: ObjectStatus {
                key: ObjectKey {
                    kind: Kind::HttpRoute,
                    namespace: "default".into(),
                    name: evil.into(),
                },
                observed_generation: 1,
                conditions: vec![],
                addresses: vec![],
                listeners: vec![],
                parents: vec![],
                load_balancer: vec![],
                attached_listener_sets: 0,
            },
        };
        let html = objects("t", evil, &[row], 0);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"));
        let tenants = [TenantRow {
            name: "t".into(),
            clusters: 1,
            connected: 1,
            allowed_hostnames: vec![],
            owned_hostnames: vec![evil.into()],
            objects: 1,
            with_problems: 1,
        }];
        let data_plane = DataPlane {
            envoys: vec![EnvoyView {
                node: evil.into(),
                connected_since: 0,
                acked: [(evil.to_string(), evil.to_string())].into(),
                last_ack_at: Some(0),
                last_nack: Some(crate::data_plane::NackView {
                    type_url: evil.into(),
                    version: evil.into(),
                    message: evil.into(),
                    at: 0,
                }),
            }],
            ai_gateways: vec![crate::admin::views::AiGatewayRow {
                id: evil.into(),
                serving: [(evil.to_string(), 1)].into(),
                refused: vec![crate::admin::views::RefusedRow {
                    tenant: evil.into(),
                    version: 2,
                    reason: evil.into(),
                }],
            }],
            envoy_rejections: vec![crate::admin::views::EnvoyRejectionRow {
                type_url: evil.into(),
                node: evil.into(),
                version: evil.into(),
                message: evil.into(),
                blamed: vec![evil.into()],
            }],
        };
        let html = overview(&op(Role::Viewer), "c", &tenants, &[], &[], &data_plane);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("id=\"ai-gateways\"") && html.contains("id=\"envoy-rejections\""));
        assert!(html.contains("id=\"envoys\"") && html.contains("1970-01-01 00:00:00 UTC"));
        assert!(!login(Some(evil), Some(evil)).contains("<script>alert"));
        assert!(login(None, Some("Dex")).contains(">Sign in with Dex</a>"));
        assert!(!login(None, None).contains("oidc-login"));
        assert_eq!(url("a/b c?&"), "a%2Fb%20c%3F%26");
    }

    #[test]
    fn only_admins_get_action_buttons_and_each_asks_for_confirmation() {
        let clusters = [ClusterRow {
            tenant: "tenant-a".into(),
            cluster: "east".into(),
            state: ClusterState::Connected,
            disabled_by: vec![],
            objects: 0,
            with_problems: 0,
        }];
        let viewer = overview(
            &op(Role::Viewer),
            "c",
            &[],
            &clusters,
            &[],
            &DataPlane::default(),
        );
        assert!(!viewer.contains("hx-post"), "{viewer}");
        let admin = overview(
            &op(Role::Admin),
            "tok",
            &[],
            &clusters,
            &[],
            &DataPlane::default(),
        );
        assert!(admin.contains("hx-post=\"/ui/clusters/tenant-a/east/disable\""));
        assert!(admin.contains("hx-post=\"/ui/clusters/tenant-a/east/revoke\""));
        assert_eq!(admin.matches("hx-confirm=").count(), 2);
        assert_eq!(admin.matches("&quot;csrf&quot;").count(), 0);
        assert_eq!(admin.matches("{\"csrf\": \"tok\"}").count(), 2);
    }

    #[test]
    fn traffic_shows_rates_ratio_and_latency_or_says_none_was_reported() {
        assert!(traffic(None).contains("id=\"no-traffic\""));
        let html = traffic(Some(&TenantRate {
            requests_per_second: 4.0,
            errors_per_second: 1.0,
            mean_latency_ms: Some(2.5),
            requests: 40,
            errors: 10,
        }));
        for want in [
            "4.00",
            "1.00",
            "25.0%",
            "2.5 ms",
            "<td id=\"requests-total\">40</td>",
        ] {
            assert!(html.contains(want), "{want} not in {html}");
        }
    }

    #[test]
    fn objects_are_paged() {
        let row = |i: usize| ObjectRow {
            cluster: "east".into(),
            kind: "HttpRoute".into(),
            namespace: "default".into(),
            name: format!("r{i:03}"),
            problems: vec![],
            status: ObjectStatus {
                key: ObjectKey {
                    kind: Kind::HttpRoute,
                    namespace: "default".into(),
                    name: format!("r{i:03}"),
                },
                observed_generation: 1,
                conditions: vec![],
                addresses: vec![],
                listeners: vec![],
                parents: vec![],
                load_balancer: vec![],
                attached_listener_sets: 0,
            },
        };
        let rows: Vec<ObjectRow> = (0..120).map(row).collect();
        let first = objects("t", "", &rows, 0);
        assert_eq!(first.matches("data-object=").count(), PAGE);
        assert!(first.contains("r000") && !first.contains("r050"));
        let last = objects("t", "", &rows, 9);
        assert_eq!(
            last.matches("data-object=").count(),
            20,
            "past the end: the last page"
        );
        assert!(last.contains("r119"));
        assert!(first.contains("page=2\">3</a>"));
    }
}
