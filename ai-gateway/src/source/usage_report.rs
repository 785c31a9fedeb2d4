//! LLM usage on the hub stream, gateway side: this replica's cumulative counts
//! ([`AiMetrics::totals`], the metrics' bounded labels) become a `UsageReport` for the hub's
//! dashboard, sent every [`REPORT_EVERY`] while they change, and again on each new stream (the
//! hub adds the difference to the last report of the same boot id, so a repeated report
//! counts nothing twice and a lost one loses nothing).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fleetgate_proto::aigateway::v1 as pb;

use crate::metrics::usage::AiMetrics;

/// How often a changed usage report is sent.
pub const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Counts reported at most: the hub drops entries past its own cap (per tenant and per report)
/// too; labels are bounded by the configuration, so this is only a backstop.
pub const MAX_COUNTS: usize = 10_000;

/// A new id for this process's counts: its start time and process id.
pub fn boot_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{:x}", std::process::id())
}

/// The report of `metrics` now; `None` when nothing was counted yet.
pub fn report(boot_id: &str, metrics: &AiMetrics) -> Option<pb::UsageReport> {
    let counts: Vec<pb::UsageCount> = metrics
        .totals()
        .into_iter()
        .take(MAX_COUNTS)
        .map(|(l, c)| pb::UsageCount {
            tenant: l.tenant,
            backend: l.backend.to_string(),
            model: l.model,
            requests: c.requests,
            errors: c.errors,
            input_tokens: c.input_tokens,
            output_tokens: c.output_tokens,
        })
        .collect();
    (!counts.is_empty()).then(|| pb::UsageReport {
        boot_id: boot_id.to_string(),
        counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::usage::Labels;
    use crate::usage::{Usage, UsageSource};

    #[test]
    fn counts_become_one_report_per_boot() {
        let m = AiMetrics::default();
        assert_eq!(report("b", &m), None, "nothing counted, nothing sent");
        let labels = Labels {
            tenant: "a".into(),
            backend: "openai",
            model: "tiny".into(),
        };
        let usage = |status| Usage {
            prompt_tokens: 5,
            completion_tokens: 7,
            source: UsageSource::Reported,
            streamed: false,
            status,
            time_to_first_token: None,
            duration: None,
            error: None,
        };
        m.record(&labels, &usage(200));
        m.record(&labels, &usage(502));
        let r = report("boot-1", &m).unwrap();
        assert_eq!(r.boot_id, "boot-1");
        assert_eq!(
            r.counts,
            [pb::UsageCount {
                tenant: "a".into(),
                backend: "openai".into(),
                model: "tiny".into(),
                requests: 2,
                errors: 1,
                input_tokens: 10,
                output_tokens: 14,
            }]
        );
        assert_ne!(boot_id(), "");
    }
}
