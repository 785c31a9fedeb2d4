//! MCP tool pins, hub side: the one writer of every tenant's pins, across AI gateway replicas
//! and hub restarts.
//!
//! - Gateways report tool definitions their pins did not cover (`McpToolsSeen` on the AI config
//!   stream). [`PinBook::report`] (pure): the first report of a tool pins it; a report of
//!   another hash marks the tool's change pending (the gateways withhold it meanwhile). Reports
//!   are checked against the tenant's published MCP routes and targets, so a replica cannot
//!   fill the book with names no tenant configured, and one tenant's report never touches
//!   another's pins.
//! - The tenant accepts a change with the annotation `fleetgate.dev/mcp-accept-tools` on the
//!   AgentgatewayBackend (admitted into `McpSpec::accept_tools`): [`PinBook::reconcile`]
//!   (pure) pins each accepted hash and drops the pins of routes and targets gone.
//! - [`start_pins`]: the task that owns the book, saves each tenant's pins in the store when they
//!   change and publishes the book; every stream sends its gateway the tenant's pins
//!   ([`PinBook::message`]) after the first Update and whenever they change. Hubs sharing a
//!   store each run one: a tenant's pins are written only over what the hub last read
//!   (compare-and-swap), and a hub that finds another's write takes it
//!   ([`PinBook::merge_stored`]) and applies its change again on top, so the first report of
//!   a tool fleet-wide pins it; each hub also takes the others' writes as they happen.
//! - [`apply_pins`] (pure): the compile loop puts `ToolsPinned` on the AgentgatewayBackends: True
//!   with how many tools are pinned, or False (`ToolDefinitionChanged`) naming each withheld
//!   tool, its new hash and the annotation that accepts it.
//!
//! Bounded: tool names of 1 to [`MAX_TOOL_NAME`] bytes, hashes of 64 hex digits, at most
//! [`MAX_TOOLS_PER_TARGET`] tools per (route, target), and routes and targets only as published.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use fleetgate_proto::aigateway::v1 as pb;
use tokio::sync::{mpsc, watch};

use super::version::Published;
use crate::model::ai::{AiRouteTarget, AiSnapshot, AiTenant, McpSpec};
use crate::model::snapshot::SourceObject;
use crate::model::{ClusterKey, Condition, ObjectStatus};
use crate::store::mcp_pins::PinRow;

/// Longest tool name pinned (the MCP specification's tool names are 1 to 128 characters).
pub const MAX_TOOL_NAME: usize = 128;
/// Most tools pinned per (route, target).
pub const MAX_TOOLS_PER_TARGET: usize = 1024;
/// The condition type on MCP AgentgatewayBackends.
pub const TOOLS_PINNED: &str = "ToolsPinned";
/// The annotation that accepts changed definitions.
pub const ACCEPT_ANNOTATION: &str = "fleetgate.dev/mcp-accept-tools";
/// Withheld tools named one by one in a condition's message; more are counted.
const NAMED_IN_MESSAGE: usize = 8;
/// Reports waiting for the pins task; more are dropped (gateways report again when they see
/// the tool again after a reconnect).
const MAX_WAITING: usize = 1024;

/// (route, target, tool).
pub type ToolKey = (String, String, String);

/// One tool's pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The definition served.
    pub sha256: String,
    /// A changed definition a gateway saw, withheld until the tenant accepts it.
    pub pending: Option<String>,
}

/// Every tenant's pins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinBook {
    pub tenants: BTreeMap<String, BTreeMap<ToolKey, Pin>>,
}

fn is_hash(h: &str) -> bool {
    h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The MCP spec of `route`, when it is an MCP route of the tenant.
fn mcp_spec<'a>(tenant: &'a AiTenant, route: &str) -> Option<&'a McpSpec> {
    match &tenant.routes.get(route)?.target {
        AiRouteTarget::Mcp(m) => Some(m),
        _ => None,
    }
}

impl PinBook {
    /// The book as stored.
    pub fn from_rows(rows: BTreeMap<String, Vec<PinRow>>) -> Self {
        let tenants = rows
            .into_iter()
            .map(|(t, rows)| {
                let pins = rows
                    .into_iter()
                    .map(|r| {
                        (
                            (r.route, r.target, r.tool),
                            Pin {
                                sha256: r.sha256,
                                pending: r.pending,
                            },
                        )
                    })
                    .collect();
                (t, pins)
            })
            .collect();
        Self { tenants }
    }

    /// `tenant`'s pins as stored.
    pub fn rows(&self, tenant: &str) -> Vec<PinRow> {
        self.tenants
            .get(tenant)
            .into_iter()
            .flatten()
            .map(|((route, target, tool), p)| PinRow {
                route: route.clone(),
                target: target.clone(),
                tool: tool.clone(),
                sha256: p.sha256.clone(),
                pending: p.pending.clone(),
            })
            .collect()
    }

    /// Takes `tenant`'s pins as another hub stored them: the stored pin of a tool wins (it was
    /// there first); a tool only this book pins keeps its pin (this hub's report, not yet
    /// stored); a change this book holds pending for the same pin stays pending.
    pub fn merge_stored(&mut self, tenant: &str, stored: &[PinRow]) {
        let local = self.tenants.remove(tenant).unwrap_or_default();
        let mut merged: BTreeMap<ToolKey, Pin> = stored
            .iter()
            .map(|r| {
                (
                    (r.route.clone(), r.target.clone(), r.tool.clone()),
                    Pin {
                        sha256: r.sha256.clone(),
                        pending: r.pending.clone(),
                    },
                )
            })
            .collect();
        for (key, pin) in local {
            match merged.get_mut(&key) {
                None => {
                    merged.insert(key, pin);
                }
                Some(there) => {
                    if there.sha256 == pin.sha256 && there.pending.is_none() {
                        there.pending = pin.pending;
                    }
                }
            }
        }
        if !merged.is_empty() {
            self.tenants.insert(tenant.to_string(), merged);
        }
    }

    /// A gateway's report on `content` (the tenant's published AI routes; `None`: the tenant
    /// has none). Returns whether the tenant's pins changed; rows that name no MCP route and
    /// target of the tenant, or are malformed, or exceed the caps, are ignored.
    pub fn report(&mut self, content: Option<&AiTenant>, seen: &pb::McpToolsSeen) -> bool {
        let Some(content) = content else {
            return false;
        };
        let mut changed = false;
        for s in &seen.tools {
            let known = mcp_spec(content, &s.route)
                .is_some_and(|m| m.targets.iter().any(|t| t.name == s.target));
            let well_formed = !s.tool.is_empty()
                && s.tool.len() <= MAX_TOOL_NAME
                && is_hash(&s.sha256)
                && (s.pinned_sha256.is_empty() || is_hash(&s.pinned_sha256));
            if !known || !well_formed {
                continue;
            }
            let pins = self.tenants.entry(seen.tenant.clone()).or_default();
            let key = (s.route.clone(), s.target.clone(), s.tool.clone());
            match pins.get_mut(&key) {
                None => {
                    let on_target = pins
                        .keys()
                        .filter(|(r, t, _)| *r == s.route && *t == s.target)
                        .count();
                    if on_target >= MAX_TOOLS_PER_TARGET {
                        continue;
                    }
                    // First report wins. One that names the pin its replica held (a pin this
                    // book no longer has) pins that, with the change pending.
                    let pin = if s.pinned_sha256.is_empty() || s.pinned_sha256 == s.sha256 {
                        Pin {
                            sha256: s.sha256.clone(),
                            pending: None,
                        }
                    } else {
                        Pin {
                            sha256: s.pinned_sha256.clone(),
                            pending: Some(s.sha256.clone()),
                        }
                    };
                    pins.insert(key, pin);
                    changed = true;
                }
                Some(pin) => {
                    if pin.sha256 != s.sha256 && pin.pending.as_ref() != Some(&s.sha256) {
                        pin.pending = Some(s.sha256.clone());
                        changed = true;
                    }
                }
            }
        }
        changed
    }

    /// Takes the tenants' accepted definitions (each pins its hash, and a pending change of that
    /// hash is no longer pending) and drops pins of tenants, routes and targets that are not
    /// published any more. Returns the tenants whose pins changed.
    pub fn reconcile(&mut self, ai: &BTreeMap<String, &AiTenant>) -> BTreeSet<String> {
        let mut changed = BTreeSet::new();
        self.tenants.retain(|t, pins| {
            let keep = ai.contains_key(t);
            if !keep && !pins.is_empty() {
                changed.insert(t.clone());
            }
            keep
        });
        for (tenant, content) in ai {
            let pins = self.tenants.entry(tenant.clone()).or_default();
            let before = pins.clone();
            pins.retain(|(route, target, _), _| {
                mcp_spec(content, route)
                    .is_some_and(|m| m.targets.iter().any(|t| &t.name == target))
            });
            for (route, r) in &content.routes {
                let AiRouteTarget::Mcp(m) = &r.target else {
                    continue;
                };
                for a in &m.accept_tools {
                    let key = (route.clone(), a.target.clone(), a.tool.clone());
                    let pin = pins.entry(key).or_insert_with(|| Pin {
                        sha256: a.sha256.clone(),
                        pending: None,
                    });
                    if pin.pending.as_ref() == Some(&a.sha256) {
                        pin.pending = None;
                    }
                    pin.sha256.clone_from(&a.sha256);
                }
            }
            if *pins != before {
                changed.insert(tenant.clone());
            }
        }
        self.tenants.retain(|_, pins| !pins.is_empty());
        changed
    }

    /// `tenant`'s pins for its gateways.
    pub fn message(&self, tenant: &str) -> pb::McpPins {
        pb::McpPins {
            tenant: tenant.to_string(),
            pins: self
                .tenants
                .get(tenant)
                .into_iter()
                .flatten()
                .map(|((route, target, tool), p)| pb::McpPin {
                    route: route.clone(),
                    target: target.clone(),
                    tool: tool.clone(),
                    sha256: p.sha256.clone(),
                    pending_sha256: p.pending.clone().unwrap_or_default(),
                })
                .collect(),
        }
    }
}

/// The `ToolsPinned` condition of one backend, from its routes' pins.
fn condition(pins: &[(&ToolKey, &Pin)]) -> Condition {
    let withheld: Vec<(&ToolKey, &String)> = pins
        .iter()
        .filter_map(|(k, p)| p.pending.as_ref().map(|h| (*k, h)))
        .collect();
    if withheld.is_empty() {
        return Condition::new(
            TOOLS_PINNED,
            true,
            "Pinned",
            format!(
                "{} MCP tool definition(s) pinned; a target that changes one has it withheld until you accept the change (annotation {ACCEPT_ANNOTATION})",
                pins.len()
            ),
        );
    }
    let mut named: Vec<String> = withheld
        .iter()
        .take(NAMED_IN_MESSAGE)
        .map(|((_, target, tool), h)| {
            format!(
                "target {target} changed tool {} (new definition sha256 {h})",
                tool.chars().take(MAX_TOOL_NAME).collect::<String>()
            )
        })
        .collect();
    if withheld.len() > NAMED_IN_MESSAGE {
        named.push(format!("{} more", withheld.len() - NAMED_IN_MESSAGE));
    }
    let accept: BTreeSet<String> = withheld
        .iter()
        .take(NAMED_IN_MESSAGE)
        .map(|((_, target, tool), h)| format!("{target}_{tool}={h}"))
        .collect();
    Condition::new(
        TOOLS_PINNED,
        false,
        "ToolDefinitionChanged",
        format!(
            "{} MCP tool(s) withheld from clients because their definition changed since it was pinned: {}. Review the new definitions; to accept them, annotate this AgentgatewayBackend with {ACCEPT_ANNOTATION}: \"{}\"",
            withheld.len(),
            named.join("; "),
            accept.into_iter().collect::<Vec<_>>().join(",")
        ),
    )
}

/// Puts `ToolsPinned` on every AgentgatewayBackend whose MCP routes have pins. Objects without
/// a status (not compiled) are left alone.
pub fn apply_pins(
    statuses: &mut BTreeMap<ClusterKey, Arc<Vec<ObjectStatus>>>,
    ai: &AiSnapshot,
    book: &PinBook,
) {
    for (tenant, pins) in &book.tenants {
        let Some(content) = ai.tenants.get(tenant) else {
            continue;
        };
        let mut by_source: BTreeMap<&SourceObject, Vec<(&ToolKey, &Pin)>> = BTreeMap::new();
        for (key, pin) in pins {
            if let Some(r) = content.routes.get(&key.0) {
                by_source.entry(&r.source).or_default().push((key, pin));
            }
        }
        for (src, pins) in by_source {
            let Some(status) = statuses
                .get_mut(&src.cluster)
                .and_then(|l| Arc::make_mut(l).iter_mut().find(|s| s.key == src.object))
            else {
                continue;
            };
            status.conditions.retain(|c| c.type_ != TOOLS_PINNED);
            status.conditions.push(condition(&pins));
        }
    }
}

/// What a stream shares with the pins task: where reports go, and the book to follow; and
/// where the hub's store follower sends the pins other hubs wrote.
#[derive(Clone)]
pub struct PinsLink {
    pub reports: mpsc::Sender<pb::McpToolsSeen>,
    pub book: watch::Receiver<Arc<PinBook>>,
    pub stored: mpsc::Sender<(String, Vec<PinRow>)>,
}

/// Writes one tenant's pins over what the hub last read of them: `Ok(None)` written,
/// `Ok(Some(rows))` another hub wrote `rows` first (nothing written), `Err` the store failed.
pub type SwapPins =
    dyn Fn(&str, &[PinRow], &[PinRow]) -> Result<Option<Vec<PinRow>>, String> + Send + Sync;

/// How often one change is applied again over another hub's write before the hub gives up
/// until the tenant's next change (each round means another hub wrote in between).
const SWAP_ROUNDS: usize = 8;

/// One change of the book: run again after a conflict, on top of the stored pins.
enum Step {
    Reconcile,
    Report(pb::McpToolsSeen),
}

/// The pins task's state: the book, and each tenant's rows as last read from or written to
/// the store (what a write is guarded on).
struct Writer {
    book: PinBook,
    known: BTreeMap<String, Vec<PinRow>>,
    swap: Box<SwapPins>,
}

impl Writer {
    /// Applies `step` to the book; returns the tenants it changed.
    fn apply(&mut self, step: &Step, published: &Published) -> BTreeSet<String> {
        match step {
            Step::Reconcile => self.book.reconcile(&contents(published)),
            Step::Report(seen) => {
                let content = published.tenants.get(&seen.tenant).map(|t| &t.content);
                if self.book.report(content, seen) {
                    tracing::info!(tenant = %seen.tenant, tools = seen.tools.len(), "MCP tool pins changed by a gateway's report");
                    [seen.tenant.clone()].into()
                } else {
                    BTreeSet::new()
                }
            }
        }
    }

    /// Stores each of `tenants`' pins; where another hub wrote first, takes its pins and
    /// applies `step` again on top.
    fn persist(&mut self, tenants: BTreeSet<String>, step: &Step, published: &Published) {
        for t in tenants {
            for round in 0.. {
                let rows = self.book.rows(&t);
                let expected = self.known.get(&t).cloned().unwrap_or_default();
                if rows == expected {
                    break;
                }
                match (self.swap)(&t, &expected, &rows) {
                    Ok(None) => {
                        self.known.insert(t.clone(), rows);
                        break;
                    }
                    Ok(Some(stored)) if round + 1 < SWAP_ROUNDS => {
                        tracing::info!(tenant = %t, "another hub stored this tenant's MCP tool pins first; applying this change on top of them");
                        self.take(&t, stored);
                        self.apply(step, published);
                    }
                    Ok(Some(stored)) => {
                        tracing::warn!(tenant = %t, "MCP tool pins keep changing under this hub; taking the stored ones, this change is applied with the tenant's next one");
                        self.take(&t, stored);
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(tenant = %t, error = %e, "cannot store the tenant's MCP tool pins; kept in memory");
                        break;
                    }
                }
            }
        }
    }

    /// Takes `tenant`'s pins as the store holds them.
    fn take(&mut self, tenant: &str, stored: Vec<PinRow>) {
        self.book.merge_stored(tenant, &stored);
        if stored.is_empty() {
            self.known.remove(tenant);
        } else {
            self.known.insert(tenant.to_string(), stored);
        }
    }
}

/// Starts the pins writer of this hub: from `stored` (the store's rows), following `published`
/// (accepts, routes gone), the gateways' reports and the pins other hubs store; `swap` writes
/// one tenant's rows ([`SwapPins`]; a failure is logged, and the pins are saved again with
/// the tenant's next change).
pub fn start_pins(
    stored: BTreeMap<String, Vec<PinRow>>,
    mut published: watch::Receiver<Arc<Published>>,
    swap: impl Fn(&str, &[PinRow], &[PinRow]) -> Result<Option<Vec<PinRow>>, String>
    + Send
    + Sync
    + 'static,
) -> (PinsLink, tokio::task::JoinHandle<()>) {
    let mut w = Writer {
        book: PinBook::from_rows(stored.clone()),
        known: stored,
        swap: Box::new(swap),
    };
    let (reports_tx, mut reports) = mpsc::channel::<pb::McpToolsSeen>(MAX_WAITING);
    let (stored_tx, mut others) = mpsc::channel::<(String, Vec<PinRow>)>(MAX_WAITING);
    let (book_tx, book_rx) = watch::channel(Arc::new(w.book.clone()));
    let task = tokio::spawn(async move {
        let mut first = true;
        loop {
            let before = w.book.clone();
            let step = if first {
                first = false;
                Step::Reconcile
            } else {
                tokio::select! {
                    r = published.changed() => {
                        if r.is_err() {
                            return;
                        }
                        Step::Reconcile
                    }
                    seen = reports.recv() => {
                        let Some(seen) = seen else { return };
                        Step::Report(seen)
                    }
                    other = others.recv() => {
                        let Some((tenant, rows)) = other else { return };
                        if w.known.get(&tenant).map_or(rows.is_empty(), |k| *k == rows) {
                            // This hub's own write, seen again.
                            continue;
                        }
                        w.take(&tenant, rows);
                        Step::Reconcile
                    }
                }
            };
            let p = published.borrow_and_update().clone();
            let changed = w.apply(&step, &p);
            w.persist(changed, &step, &p);
            // Also tenants taken from another hub whose pins this hub had to add to.
            let behind: BTreeSet<String> = w
                .book
                .tenants
                .keys()
                .filter(|t| w.known.get(*t) != Some(&w.book.rows(t)))
                .cloned()
                .collect();
            w.persist(behind, &Step::Reconcile, &p);
            if w.book != before {
                book_tx.send_replace(Arc::new(w.book.clone()));
            }
        }
    });
    (
        PinsLink {
            reports: reports_tx,
            book: book_rx,
            stored: stored_tx,
        },
        task,
    )
}

fn contents(p: &Published) -> BTreeMap<String, &AiTenant> {
    p.tenants
        .iter()
        .map(|(t, pt)| (t.clone(), &pt.content))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai_config::convert::tests::source;
    use crate::model::ai::{AiRoute, AiUpstream, McpTarget, McpToolAccept};

    const ROUTE: &str = "c1/default/tools";

    fn tenant(accept: Vec<McpToolAccept>) -> AiTenant {
        let spec = McpSpec {
            targets: vec![McpTarget {
                name: "alpha".into(),
                host: "alpha.tools.svc.cluster.local".into(),
                port: 8080,
                path: None,
                protocol: "StreamableHTTP".into(),
                upstream: AiUpstream::External,
            }],
            failure_mode: "FailClosed".into(),
            prefix_mode: "Conditional".into(),
            session_routing: "Stateful".into(),
            authentication: None,
            authorization: None,
            accept_tools: accept,
        };
        AiTenant {
            routes: [(
                ROUTE.to_string(),
                AiRoute {
                    target: AiRouteTarget::Mcp(spec),
                    model_aliases: Default::default(),
                    source: source("a", "tools"),
                },
            )]
            .into(),
            ..Default::default()
        }
    }

    fn seen(tenant: &str, target: &str, tool: &str, h: &str, pinned: &str) -> pb::McpToolsSeen {
        pb::McpToolsSeen {
            tenant: tenant.into(),
            tools: vec![pb::McpToolSeen {
                route: ROUTE.into(),
                target: target.into(),
                tool: tool.into(),
                sha256: h.into(),
                pinned_sha256: pinned.into(),
            }],
        }
    }

    fn key(tool: &str) -> ToolKey {
        (ROUTE.into(), "alpha".into(), tool.into())
    }

    #[test]
    fn a_stored_pin_wins_over_this_books_and_pins_only_this_book_has_are_kept() {
        let (h1, h2, h3) = ("1".repeat(64), "2".repeat(64), "3".repeat(64));
        let mut book = PinBook::default();
        let t = tenant(vec![]);
        book.report(Some(&t), &seen("a", "alpha", "add", &h2, ""));
        book.report(Some(&t), &seen("a", "alpha", "mul", &h3, ""));
        let row = |tool: &str, sha: &str| PinRow {
            route: ROUTE.into(),
            target: "alpha".into(),
            tool: tool.into(),
            sha256: sha.into(),
            pending: None,
        };
        book.merge_stored("a", &[row("add", &h1)]);
        let pins = &book.tenants["a"];
        assert_eq!(pins[&key("add")].sha256, h1, "the stored pin was first");
        assert_eq!(pins[&key("mul")].sha256, h3, "only this hub saw mul: kept");
        // Nothing stored and nothing here: no tenant entry.
        book.merge_stored("b", &[]);
        assert!(!book.tenants.contains_key("b"));
    }

    fn published_for_a(content: AiTenant) -> Published {
        Published {
            tenants: [(
                "a".to_string(),
                Arc::new(crate::ai_config::version::PublishedTenant {
                    version: 1,
                    content,
                    config: Default::default(),
                    key_ids: Vec::new(),
                }),
            )]
            .into(),
        }
    }

    async fn wait_for_pin(link: &PinsLink, tool: &str, want: &Pin) {
        let mut book = link.book.clone();
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                if book
                    .borrow_and_update()
                    .tenants
                    .get("a")
                    .and_then(|p| p.get(&key(tool)))
                    == Some(want)
                {
                    return;
                }
                book.changed().await.unwrap();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{tool} never became {want:?}: {:?}", link.book.borrow()));
    }

    /// Two hubs sharing one store, each with its own pins task and gateways: the first report
    /// of a tool anywhere pins it; the other hub's different definition is held pending, not
    /// pinned, and each hub ends with the same pins.
    #[tokio::test]
    async fn hubs_sharing_a_store_pin_the_first_report_fleet_wide() {
        let (h1, h2) = ("1".repeat(64), "2".repeat(64));
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::Store::open(&dir.path().join("hub.redb")).unwrap());
        let (_published_tx, published) = watch::channel(Arc::new(published_for_a(tenant(vec![]))));
        let swap = |s: Arc<crate::store::Store>| {
            move |t: &str, expected: &[PinRow], rows: &[PinRow]| {
                s.swap_mcp_pins(t, expected, rows)
                    .map_err(|e| e.to_string())
            }
        };
        let (a, _task_a) = start_pins(BTreeMap::new(), published.clone(), swap(store.clone()));
        let (b, _task_b) = start_pins(BTreeMap::new(), published.clone(), swap(store.clone()));

        // Hub A's gateway reports first.
        a.reports
            .send(seen("a", "alpha", "add", &h1, ""))
            .await
            .unwrap();
        let first = Pin {
            sha256: h1.clone(),
            pending: None,
        };
        wait_for_pin(&a, "add", &first).await;
        // Hub B has not seen A's write; its gateway sees another definition. B's write
        // conflicts: it takes A's pin, and its report marks the change pending on top.
        b.reports
            .send(seen("a", "alpha", "add", &h2, ""))
            .await
            .unwrap();
        let held = Pin {
            sha256: h1.clone(),
            pending: Some(h2.clone()),
        };
        wait_for_pin(&b, "add", &held).await;
        let stored = store.load_mcp_pins().unwrap().remove("a").unwrap();
        assert_eq!(
            (stored.len(), &stored[0].sha256, &stored[0].pending),
            (1, &h1, &Some(h2.clone()))
        );
        // A follows B's write (as the store's watch hands it over).
        a.stored.send(("a".into(), stored.clone())).await.unwrap();
        wait_for_pin(&a, "add", &held).await;
        // Its own write seen again changes nothing.
        a.stored.send(("a".into(), stored)).await.unwrap();
        wait_for_pin(&a, "add", &held).await;
    }

    #[test]
    fn the_first_report_wins_a_change_is_pending_and_acceptance_pins_it() {
        let (h1, h2) = ("1".repeat(64), "2".repeat(64));
        let a = tenant(vec![]);
        let mut book = PinBook::default();
        assert!(book.report(Some(&a), &seen("a", "alpha", "add", &h1, "")));
        // Another replica's first sighting, of another definition, comes second: a change.
        assert!(book.report(Some(&a), &seen("a", "alpha", "add", &h2, "")));
        assert_eq!(
            book.tenants["a"][&key("add")],
            Pin {
                sha256: h1.clone(),
                pending: Some(h2.clone())
            }
        );
        assert_eq!(
            book.message("a").pins[0].sha256,
            h1,
            "gateways keep the first"
        );
        // The same report again changes nothing.
        assert!(!book.report(Some(&a), &seen("a", "alpha", "add", &h2, &h1)));

        // The tenant accepts h2.
        let accepted = tenant(vec![McpToolAccept {
            target: "alpha".into(),
            tool: "add".into(),
            sha256: h2.clone(),
        }]);
        let changed = book.reconcile(&[("a".to_string(), &accepted)].into());
        assert_eq!(changed, ["a".to_string()].into());
        assert_eq!(
            book.tenants["a"][&key("add")],
            Pin {
                sha256: h2.clone(),
                pending: None
            }
        );
        // Reconciling again with the annotation still there changes nothing.
        assert!(
            book.reconcile(&[("a".to_string(), &accepted)].into())
                .is_empty()
        );
        // Stored and loaded back, the same book.
        let again = PinBook::from_rows([("a".to_string(), book.rows("a"))].into());
        assert_eq!(again, book);
    }

    #[test]
    fn reports_outside_the_tenants_mcp_routes_or_caps_are_ignored() {
        let h = "1".repeat(64);
        let a = tenant(vec![]);
        let mut book = PinBook::default();
        for (what, s) in [
            ("unknown target", seen("a", "gamma", "add", &h, "")),
            ("bad hash", seen("a", "alpha", "add", "XYZ", "")),
            ("long name", seen("a", "alpha", &"t".repeat(129), &h, "")),
            ("empty name", seen("a", "alpha", "", &h, "")),
        ] {
            assert!(!book.report(Some(&a), &s), "{what}");
        }
        assert!(
            !book.report(None, &seen("b", "alpha", "add", &h, "")),
            "a tenant without routes"
        );
        let mut other_route = seen("a", "alpha", "add", &h, "");
        other_route.tools[0].route = "c1/default/other".into();
        assert!(!book.report(Some(&a), &other_route));
        assert!(book.tenants.is_empty());
        for i in 0..MAX_TOOLS_PER_TARGET {
            assert!(book.report(Some(&a), &seen("a", "alpha", &format!("t{i}"), &h, "")));
        }
        assert!(!book.report(Some(&a), &seen("a", "alpha", "one-more", &h, "")));
    }

    #[test]
    fn pins_of_tenants_and_routes_gone_are_dropped() {
        let h = "1".repeat(64);
        let a = tenant(vec![]);
        let mut book = PinBook::default();
        book.report(Some(&a), &seen("a", "alpha", "add", &h, ""));
        assert!(book.reconcile(&[("a".to_string(), &a)].into()).is_empty());
        let changed = book.reconcile(&BTreeMap::new());
        assert_eq!(changed, ["a".to_string()].into());
        assert!(book.tenants.is_empty());
    }

    #[test]
    fn the_backend_says_which_tools_are_withheld_and_how_to_accept_them() {
        let (h1, h2) = ("1".repeat(64), "2".repeat(64));
        let a = tenant(vec![]);
        let mut book = PinBook::default();
        book.report(Some(&a), &seen("a", "alpha", "add", &h1, ""));
        book.report(Some(&a), &seen("a", "alpha", "whoami", &h1, ""));
        let src = source("a", "tools");
        let status = ObjectStatus {
            key: src.object.clone(),
            observed_generation: 1,
            conditions: vec![Condition::new("Accepted", true, "Accepted", "")],
            addresses: vec![],
            listeners: vec![],
            parents: vec![],
            load_balancer: vec![],
            attached_listener_sets: 0,
        };
        let ai = AiSnapshot {
            tenants: [("a".to_string(), a.clone())].into(),
        };
        let mut statuses: BTreeMap<ClusterKey, Arc<Vec<ObjectStatus>>> =
            [(src.cluster.clone(), Arc::new(vec![status]))].into();
        let pinned = |statuses: &BTreeMap<ClusterKey, Arc<Vec<ObjectStatus>>>| {
            statuses[&src.cluster][0]
                .conditions
                .iter()
                .find(|c| c.type_ == TOOLS_PINNED)
                .cloned()
                .unwrap()
        };
        apply_pins(&mut statuses, &ai, &book);
        let c = pinned(&statuses);
        assert!(c.status && c.reason == "Pinned", "{c:?}");
        assert!(
            c.message.starts_with("2 MCP tool definition(s) pinned"),
            "{}",
            c.message
        );

        book.report(Some(&a), &seen("a", "alpha", "add", &h2, &h1));
        apply_pins(&mut statuses, &ai, &book);
        let c = pinned(&statuses);
        assert!(!c.status && c.reason == "ToolDefinitionChanged", "{c:?}");
        assert!(
            c.message.contains(&format!(
                "target alpha changed tool add (new definition sha256 {h2})"
            )) && c.message.contains(&format!(
                "fleetgate.dev/mcp-accept-tools: \"alpha_add={h2}\""
            )),
            "{}",
            c.message
        );
        assert_eq!(
            statuses[&src.cluster][0]
                .conditions
                .iter()
                .filter(|c| c.type_ == TOOLS_PINNED)
                .count(),
            1
        );
    }
}
