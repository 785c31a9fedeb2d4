//! LLM usage the AI gateways report (`UsageReport` on the config stream), summed over replicas,
//! for the operators' dashboard: tokens and requests per tenant, backend kind and model.
//! Budgets are the ledger's ([`super::budget`]); this counts every tenant, budgeted or not.
//!
//! Pure. A report is untrusted input: each replica sends cumulative counts since it started
//! (its boot id); the book adds the difference to that replica's previous report, so a
//! repeated report adds nothing and a lost one loses nothing. Bounded: entries of tenants the
//! hub does not serve, with an unknown backend kind or a malformed model are dropped; a
//! tenant's (backend, model) pairs past [`MAX_PAIRS_PER_TENANT`] are counted under model
//! `other`; reports past [`MAX_COUNTS_PER_REPORT`] entries are cut, and past [`MAX_GATEWAYS`]
//! remembered replicas the one that reported longest ago is forgotten (replica ids are
//! usually pod names, new with every pod: a hub that outlives many rollouts keeps counting the
//! new ones; a forgotten replica that reports again has its counts added again). Counts live
//! in the hub's memory (since the hub started).

use std::collections::BTreeMap;

use fleetgate_proto::aigateway::v1 as pb;
use serde::Serialize;

/// Entries of one report read at most.
pub const MAX_COUNTS_PER_REPORT: usize = 10_000;
/// (backend, model) pairs kept per tenant; more are counted under model `other`.
pub const MAX_PAIRS_PER_TENANT: usize = 64;
/// Replicas whose previous report is remembered; past it, the longest silent is forgotten.
pub const MAX_GATEWAYS: usize = 1024;
/// Longest model name kept.
pub const MAX_MODEL_BYTES: usize = 128;
/// The backend kinds a gateway labels usage with.
pub const BACKENDS: [&str; 5] = ["openai", "anthropic", "gemini", "mixed", "unknown"];

/// Cumulative counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub requests: u64,
    /// Requests answered with a status >= 400.
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Counts {
    fn of(c: &pb::UsageCount) -> Self {
        Self {
            requests: c.requests,
            errors: c.errors,
            input_tokens: c.input_tokens,
            output_tokens: c.output_tokens,
        }
    }

    /// Adds `o`, saturating (reports are untrusted).
    pub fn add(&mut self, o: &Counts) {
        self.requests = self.requests.saturating_add(o.requests);
        self.errors = self.errors.saturating_add(o.errors);
        self.input_tokens = self.input_tokens.saturating_add(o.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(o.output_tokens);
    }

    /// `self - before`; a count that went down means the replica's counts restarted, so all of
    /// `self` is new.
    fn since(&self, before: &Counts) -> Counts {
        let restarted = self.requests < before.requests
            || self.errors < before.errors
            || self.input_tokens < before.input_tokens
            || self.output_tokens < before.output_tokens;
        if restarted {
            return *self;
        }
        Counts {
            requests: self.requests - before.requests,
            errors: self.errors - before.errors,
            input_tokens: self.input_tokens - before.input_tokens,
            output_tokens: self.output_tokens - before.output_tokens,
        }
    }
}

/// One row of a tenant's usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageRow {
    pub backend: String,
    pub model: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// (tenant, backend, model).
type Key = (String, String, String);

/// A replica's last report.
#[derive(Debug, Default)]
struct Previous {
    boot_id: String,
    counts: BTreeMap<Key, Counts>,
    /// When the replica last reported ([`UsageBook::reports`] then).
    seen: u64,
}

/// Why a report was not taken at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The boot id is empty, too long or not printable.
    #[error("UsageReport.boot_id must be 1..=64 printable ASCII characters")]
    BootId,
}

/// Every tenant's usage, summed over replicas.
#[derive(Debug, Default)]
pub struct UsageBook {
    previous: BTreeMap<String, Previous>,
    /// Reports taken so far (orders the replicas by their last report).
    reports: u64,
    totals: BTreeMap<String, BTreeMap<(String, String), Counts>>,
}

fn model_ok(m: &str) -> bool {
    !m.is_empty() && m.len() <= MAX_MODEL_BYTES && m.bytes().all(|b| b.is_ascii_graphic())
}

impl UsageBook {
    /// Takes `gateway`'s report; `served(tenant)` says whether the hub serves the tenant.
    /// Returns how many entries were dropped.
    pub fn apply(
        &mut self,
        gateway: &str,
        report: &pb::UsageReport,
        served: impl Fn(&str) -> bool,
    ) -> Result<usize, ReportError> {
        let b = &report.boot_id;
        if b.is_empty() || b.len() > 64 || !b.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(ReportError::BootId);
        }
        if !self.previous.contains_key(gateway) && self.previous.len() >= MAX_GATEWAYS {
            let stalest = self
                .previous
                .iter()
                .min_by_key(|(_, p)| p.seen)
                .map(|(g, _)| g.clone());
            if let Some(g) = stalest {
                self.previous.remove(&g);
            }
        }
        self.reports += 1;
        let mut dropped = report.counts.len().saturating_sub(MAX_COUNTS_PER_REPORT);
        let mut now: BTreeMap<Key, Counts> = BTreeMap::new();
        for c in report.counts.iter().take(MAX_COUNTS_PER_REPORT) {
            if !served(&c.tenant) || !BACKENDS.contains(&c.backend.as_str()) || !model_ok(&c.model)
            {
                dropped += 1;
                continue;
            }
            now.entry((c.tenant.clone(), c.backend.clone(), c.model.clone()))
                .or_default()
                .add(&Counts::of(c));
        }
        let prev = self.previous.entry(gateway.to_string()).or_default();
        prev.seen = self.reports;
        if prev.boot_id != *b {
            // A new process: its counts start from zero.
            prev.boot_id = b.clone();
            prev.counts.clear();
        }
        for (key, counts) in &now {
            let delta = counts.since(prev.counts.get(key).unwrap_or(&Counts::default()));
            if delta == Counts::default() {
                continue;
            }
            let (tenant, backend, model) = key;
            let pairs = self.totals.entry(tenant.clone()).or_default();
            let pair = (backend.clone(), model.clone());
            let pair = if pairs.contains_key(&pair) || pairs.len() < MAX_PAIRS_PER_TENANT {
                pair
            } else {
                (backend.clone(), "other".to_string())
            };
            pairs.entry(pair).or_default().add(&delta);
        }
        // What this report left out (a tenant the hub does not serve right now, say while its
        // cluster is withdrawn) stays remembered, or its counts would be added again in full
        // when it comes back; bounded like a report.
        for (key, counts) in std::mem::take(&mut prev.counts) {
            if now.len() >= MAX_COUNTS_PER_REPORT {
                break;
            }
            now.entry(key).or_insert(counts);
        }
        prev.counts = now;
        Ok(dropped)
    }

    /// `tenant`'s usage, by backend and model.
    pub fn tenant(&self, tenant: &str) -> Vec<UsageRow> {
        self.totals
            .get(tenant)
            .into_iter()
            .flatten()
            .map(|((backend, model), counts)| UsageRow {
                backend: backend.clone(),
                model: model.clone(),
                counts: *counts,
            })
            .collect()
    }

    /// Every tenant's usage summed over backends and models.
    pub fn per_tenant(&self) -> BTreeMap<String, Counts> {
        self.totals
            .iter()
            .map(|(t, pairs)| {
                let mut sum = Counts::default();
                for c in pairs.values() {
                    sum.add(c);
                }
                (t.clone(), sum)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(tenant: &str, model: &str, requests: u64, tokens: u64) -> pb::UsageCount {
        pb::UsageCount {
            tenant: tenant.into(),
            backend: "openai".into(),
            model: model.into(),
            requests,
            errors: 0,
            input_tokens: tokens,
            output_tokens: 2 * tokens,
        }
    }

    fn report(boot: &str, counts: Vec<pb::UsageCount>) -> pb::UsageReport {
        pb::UsageReport {
            boot_id: boot.into(),
            counts,
        }
    }

    fn served(t: &str) -> bool {
        t == "a" || t == "b"
    }

    fn totals(book: &UsageBook, t: &str) -> Vec<(String, u64, u64)> {
        book.tenant(t)
            .into_iter()
            .map(|r| (r.model, r.counts.requests, r.counts.input_tokens))
            .collect()
    }

    #[test]
    fn replicas_are_summed_and_repeated_reports_count_once() {
        let mut book = UsageBook::default();
        book.apply("r1", &report("x", vec![count("a", "tiny", 2, 10)]), served)
            .unwrap();
        // The same cumulative report again (a reconnect): nothing new.
        book.apply("r1", &report("x", vec![count("a", "tiny", 2, 10)]), served)
            .unwrap();
        book.apply("r2", &report("y", vec![count("a", "tiny", 1, 4)]), served)
            .unwrap();
        // r1 grew by 3 requests, 6 tokens: 5 + 1 requests, 16 + 4 tokens.
        book.apply("r1", &report("x", vec![count("a", "tiny", 5, 16)]), served)
            .unwrap();
        assert_eq!(totals(&book, "a"), [("tiny".into(), 6, 20)]);
        let out = book.tenant("a")[0].counts.output_tokens;
        assert_eq!(out, 40);
        // r1 restarted: its new counts are all new.
        book.apply("r1", &report("z", vec![count("a", "tiny", 1, 1)]), served)
            .unwrap();
        assert_eq!(totals(&book, "a"), [("tiny".into(), 7, 21)]);
        assert_eq!(book.per_tenant()["a"].requests, 7);
        assert!(book.tenant("b").is_empty());
    }

    #[test]
    fn a_tenant_served_again_is_not_counted_again() {
        let mut book = UsageBook::default();
        let r = report("x", vec![count("a", "tiny", 2, 10)]);
        book.apply("r1", &r, served).unwrap();
        // The tenant's AI routes are withdrawn for a while: its entries are dropped...
        assert_eq!(book.apply("r1", &r, |t| t == "b"), Ok(1));
        // ...and when it is served again, the same cumulative counts add nothing.
        book.apply("r1", &r, served).unwrap();
        assert_eq!(totals(&book, "a"), [("tiny".into(), 2, 10)]);
        // Growth while it was away is counted once.
        book.apply("r1", &report("x", vec![count("a", "tiny", 3, 12)]), served)
            .unwrap();
        assert_eq!(totals(&book, "a"), [("tiny".into(), 3, 12)]);
    }

    #[test]
    fn untrusted_entries_are_dropped_and_pairs_are_capped() {
        let mut book = UsageBook::default();
        let mut hostile = vec![
            count("not-served", "tiny", 1, 1),
            count("a", "", 1, 1),
            count("a", "bad\nmodel", 1, 1),
            count("a", &"m".repeat(MAX_MODEL_BYTES + 1), 1, 1),
        ];
        let mut wrong_backend = count("a", "tiny", 1, 1);
        wrong_backend.backend = "<script>".into();
        hostile.push(wrong_backend);
        assert_eq!(book.apply("r1", &report("x", hostile), served), Ok(5));
        assert!(book.tenant("a").is_empty() && book.per_tenant().is_empty());

        let many: Vec<_> = (0..MAX_PAIRS_PER_TENANT + 10)
            .map(|i| count("a", &format!("m{i}"), 1, 1))
            .collect();
        assert_eq!(book.apply("r1", &report("x", many), served), Ok(0));
        let rows = book.tenant("a");
        assert_eq!(rows.len(), MAX_PAIRS_PER_TENANT + 1);
        let other = rows.iter().find(|r| r.model == "other").unwrap();
        assert_eq!(other.counts.requests, 10);

        assert_eq!(
            book.apply("r1", &report("", vec![]), served),
            Err(ReportError::BootId)
        );
        let too_long: Vec<_> = (0..MAX_COUNTS_PER_REPORT + 3)
            .map(|_| count("a", "m0", 0, 0))
            .collect();
        assert_eq!(book.apply("r2", &report("y", too_long), served), Ok(3));
    }

    #[test]
    fn past_the_cap_the_longest_silent_gateway_is_forgotten() {
        let mut book = UsageBook::default();
        for i in 0..MAX_GATEWAYS {
            book.apply(&format!("r{i}"), &report("x", vec![]), served)
                .unwrap();
        }
        // r0 reports again: r1 is now the longest silent.
        book.apply("r0", &report("x", vec![count("a", "t", 1, 1)]), served)
            .unwrap();
        // A new replica (a new pod) is still counted.
        book.apply(
            "one-more",
            &report("x", vec![count("a", "t", 2, 2)]),
            served,
        )
        .unwrap();
        assert_eq!(totals(&book, "a"), [("t".into(), 3, 3)]);
        assert_eq!(book.previous.len(), MAX_GATEWAYS);
        assert!(
            !book.previous.contains_key("r1"),
            "the longest silent is forgotten"
        );
        // r0 is still remembered: its repeated report counts nothing.
        book.apply("r0", &report("x", vec![count("a", "t", 1, 1)]), served)
            .unwrap();
        assert_eq!(totals(&book, "a"), [("t".into(), 3, 3)]);
    }
}
