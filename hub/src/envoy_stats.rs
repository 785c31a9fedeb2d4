//! Envoy's request stats per tenant: Envoy's `envoy.stat_sinks.metrics_service` sink streams
//! its stats to the hub (`envoy.service.metrics.v3.MetricsService/StreamMetrics`, on the
//! data-plane port next to ADS); the hub keeps the latest flush of each Envoy and adds them up
//! per tenant.
//!
//! Where it sits: beside step 8 (publish), for the operator. The tenant is read from the
//! data-plane cluster's name, which the compiler builds as `t/<tenant>/c/<cluster>/...`
//! (`compile::names`): `cluster.<name>.upstream_rq_total` (requests), `upstream_rq_5xx`
//! (errors) and the `upstream_rq_time` histogram (latency, milliseconds). Everything else Envoy
//! sends is ignored, so what the hub keeps is bounded by tenants, not by routes. [`per_tenant`]
//! is pure and table-tested; [`EnvoyStats`] serves the streams and exports
//! `fleetgate_hub_tenant_*` with the tenant as the only label.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use envoy_types::pb::envoy::service::metrics::v3::StreamMetricsResponse;
use envoy_types::pb::envoy::service::metrics::v3::stream_metrics_message::Identifier;
use envoy_types::pb::io::prometheus::client::MetricFamily;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prost::Message;

/// Tenant names are DNS labels; longer ones are not a tenant (at most this many kept per flush).
const MAX_TENANTS: usize = 10_000;

/// One tenant's requests as one Envoy (or all of them, added up) counted them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantTraffic {
    /// Requests sent upstream (`upstream_rq_total`), cumulative.
    pub requests: u64,
    /// Of which answered 5xx (`upstream_rq_5xx`, Envoy's own 503s included).
    pub errors: u64,
    /// Request time, milliseconds: count, sum and cumulative buckets by upper bound.
    pub latency_count: u64,
    pub latency_sum_ms: f64,
    pub latency_buckets: Vec<(f64, u64)>,
}

impl TenantTraffic {
    fn add(&mut self, o: &TenantTraffic) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.latency_count += o.latency_count;
        self.latency_sum_ms += o.latency_sum_ms;
        for &(bound, n) in &o.latency_buckets {
            match self
                .latency_buckets
                .iter_mut()
                .find(|(b, _)| b.total_cmp(&bound).is_eq())
            {
                Some((_, m)) => *m += n,
                None => self.latency_buckets.push((bound, n)),
            }
        }
        self.latency_buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
}

/// The tenant and the stat of an Envoy cluster stat named `cluster.t/<tenant>/...<.stat>`
/// (object names may hold dots, so the stat is what follows the last one).
pub fn cluster_stat(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("cluster.t/")?;
    let (tenant, rest) = rest.split_once('/')?;
    let (_, stat) = rest.rsplit_once('.')?;
    let valid = !tenant.is_empty()
        && tenant.len() <= 63
        && tenant
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    valid.then_some((tenant, stat))
}

/// What one flush of one Envoy says about each tenant.
pub fn per_tenant(families: &[MetricFamily]) -> BTreeMap<String, TenantTraffic> {
    let mut out: BTreeMap<String, TenantTraffic> = BTreeMap::new();
    for f in families {
        let Some((tenant, stat)) = f.name.as_deref().and_then(cluster_stat) else {
            continue;
        };
        if !matches!(
            stat,
            "upstream_rq_total" | "upstream_rq_5xx" | "upstream_rq_time"
        ) {
            continue;
        }
        if !out.contains_key(tenant) && out.len() >= MAX_TENANTS {
            continue;
        }
        let t = out.entry(tenant.to_string()).or_default();
        for m in &f.metric {
            let counted = m.counter.as_ref().and_then(|c| c.value).unwrap_or(0.0) as u64;
            match stat {
                "upstream_rq_total" => t.requests += counted,
                "upstream_rq_5xx" => t.errors += counted,
                _ => {
                    if let Some(h) = &m.histogram {
                        t.add(&TenantTraffic {
                            latency_count: h.sample_count.unwrap_or(0),
                            latency_sum_ms: h.sample_sum.unwrap_or(0.0),
                            latency_buckets: h
                                .bucket
                                .iter()
                                .filter_map(|b| Some((b.upper_bound?, b.cumulative_count?)))
                                .collect(),
                            ..Default::default()
                        });
                    }
                }
            }
        }
    }
    out
}

/// One tenant's traffic over the last flush interval of every Envoy, for the dashboard.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantRate {
    pub requests_per_second: f64,
    pub errors_per_second: f64,
    /// Mean request time over the interval (none without requests).
    pub mean_latency_ms: Option<f64>,
    /// Totals since the Envoys started.
    pub requests: u64,
    pub errors: u64,
}

/// The latest two flushes of one Envoy.
struct Reported {
    latest: (Instant, BTreeMap<String, TenantTraffic>),
    previous: Option<(Instant, BTreeMap<String, TenantTraffic>)>,
}

/// The Envoys' latest flushes (see the module header).
#[derive(Default)]
pub struct EnvoyStats {
    streams: Mutex<BTreeMap<u64, Reported>>,
    next: AtomicU64,
}

impl std::fmt::Debug for EnvoyStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvoyStats").finish_non_exhaustive()
    }
}

impl EnvoyStats {
    fn streams(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Reported>> {
        // Plain data, valid after any panic elsewhere.
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every tenant's traffic, added up over the connected Envoys.
    pub fn totals(&self) -> BTreeMap<String, TenantTraffic> {
        let mut out: BTreeMap<String, TenantTraffic> = BTreeMap::new();
        for r in self.streams().values() {
            for (tenant, t) in &r.latest.1 {
                out.entry(tenant.clone()).or_default().add(t);
            }
        }
        out
    }

    /// Every tenant's rates over each Envoy's last flush interval, added up.
    pub fn rates(&self) -> BTreeMap<String, TenantRate> {
        let mut out: BTreeMap<String, (TenantRate, f64, u64)> = BTreeMap::new();
        for r in self.streams().values() {
            let (now, cur) = &r.latest;
            for (tenant, t) in cur {
                let e = out.entry(tenant.clone()).or_default();
                e.0.requests += t.requests;
                e.0.errors += t.errors;
                let Some((then, prev)) = &r.previous else {
                    continue;
                };
                let secs = now.saturating_duration_since(*then).as_secs_f64();
                let before = prev.get(tenant).cloned().unwrap_or_default();
                if secs <= 0.0 {
                    continue;
                }
                e.0.requests_per_second += t.requests.saturating_sub(before.requests) as f64 / secs;
                e.0.errors_per_second += t.errors.saturating_sub(before.errors) as f64 / secs;
                e.1 += (t.latency_sum_ms - before.latency_sum_ms).max(0.0);
                e.2 += t.latency_count.saturating_sub(before.latency_count);
            }
        }
        out.into_iter()
            .map(|(tenant, (mut rate, sum, count))| {
                rate.mean_latency_ms = (count > 0).then(|| sum / count as f64);
                (tenant, rate)
            })
            .collect()
    }

    fn flushed(&self, stream: u64, families: &[MetricFamily]) {
        let now = (Instant::now(), per_tenant(families));
        let mut streams = self.streams();
        match streams.get_mut(&stream) {
            Some(r) => r.previous = Some(std::mem::replace(&mut r.latest, now)),
            None => {
                streams.insert(
                    stream,
                    Reported {
                        latest: now,
                        previous: None,
                    },
                );
            }
        }
    }

    /// The gRPC service to add to the data-plane port (`MetricsService/StreamMetrics`).
    pub fn service(self: &Arc<Self>) -> StatsService {
        StatsService(self.clone())
    }

    /// One stream: the node id from the first message, then every flush until Envoy closes it.
    async fn stream(
        &self,
        mut inbound: tonic::Streaming<LeanFlush>,
    ) -> Result<StreamMetricsResponse, tonic::Status> {
        let stream = self.next.fetch_add(1, Ordering::Relaxed);
        let mut node = String::new();
        let ended = loop {
            match inbound.message().await {
                Ok(Some(m)) => {
                    if node.is_empty()
                        && let Some(n) = m.identifier.as_ref().and_then(|i| i.node.as_ref())
                    {
                        node = n.id.chars().take(128).collect();
                        tracing::info!(node = %node, "Envoy stats stream opened");
                    }
                    self.flushed(stream, &m.read());
                }
                Ok(None) => break Ok(()),
                Err(status) => break Err(status),
            }
        };
        self.streams().remove(&stream);
        match &ended {
            Ok(()) => tracing::debug!(node = %node, "Envoy stats stream closed"),
            Err(status) => tracing::warn!(
                node = %node,
                error = %status.message(),
                "Envoy stats stream failed; its tenant traffic figures stop until Envoy reconnects"
            ),
        }
        ended.map(|()| StreamMetricsResponse {})
    }
}

/// Largest stats flush accepted from one Envoy, in bytes. One flush is one message: with the
/// bootstraps' `stats_matcher` (docs/operations.md) a tenant cluster has about a dozen stats,
/// a few hundred bytes, so 64 MiB holds the flush of a data plane with 100,000 clusters
/// (tonic's default, 4 MiB, closed the stream of an Envoy with 20,000 clusters and every
/// cluster stat at every flush).
const MAX_FLUSH_BYTES: usize = 64 * 1024 * 1024;

/// `StreamMetricsMessage` as the hub reads it: the metric families stay encoded until
/// [`LeanFlush::read`] picks the few the hub counts (a flush of 20,000 clusters holds a few
/// hundred thousand families; decoding them all took the hub hundreds of MiB and much of a
/// core every second).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LeanFlush {
    #[prost(message, optional, tag = "1")]
    pub identifier: Option<Identifier>,
    /// `envoy_metrics`: each an encoded `io.prometheus.client.MetricFamily`.
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub envoy_metrics: Vec<bytes::Bytes>,
}

impl LeanFlush {
    /// The families [`per_tenant`] counts, decoded; the others are skipped by name.
    pub fn read(&self) -> Vec<MetricFamily> {
        self.envoy_metrics
            .iter()
            .filter(|raw| {
                family_name(raw)
                    .and_then(cluster_stat)
                    .is_some_and(|(_, stat)| COUNTED.contains(&stat))
            })
            .filter_map(|raw| MetricFamily::decode(raw.as_ref()).ok())
            .collect()
    }
}

/// The stats [`per_tenant`] counts.
const COUNTED: [&str; 3] = ["upstream_rq_total", "upstream_rq_5xx", "upstream_rq_time"];

/// The `name` (field 1) of an encoded `MetricFamily`, read without decoding the rest.
fn family_name(mut raw: &[u8]) -> Option<&str> {
    use prost::encoding::{WireType, decode_key, decode_varint};
    while !raw.is_empty() {
        let (tag, wire_type) = decode_key(&mut raw).ok()?;
        let len = match wire_type {
            WireType::Varint => {
                decode_varint(&mut raw).ok()?;
                continue;
            }
            WireType::LengthDelimited => usize::try_from(decode_varint(&mut raw).ok()?).ok()?,
            WireType::SixtyFourBit => 8,
            WireType::ThirtyTwoBit => 4,
            _ => return None,
        };
        let (field, rest) = (raw.get(..len)?, raw.get(len..)?);
        if tag == 1 && wire_type == WireType::LengthDelimited {
            return std::str::from_utf8(field).ok();
        }
        raw = rest;
    }
    None
}

/// The hub's `envoy.service.metrics.v3.MetricsService` (see [`EnvoyStats::service`]): the
/// generated server decodes every family of a flush; this one decodes [`LeanFlush`].
#[derive(Clone)]
pub struct StatsService(Arc<EnvoyStats>);

impl tonic::server::NamedService for StatsService {
    const NAME: &'static str = "envoy.service.metrics.v3.MetricsService";
}

/// `StreamMetrics`, a client-streaming method.
struct StreamMetrics(Arc<EnvoyStats>);

impl tonic::server::ClientStreamingService<LeanFlush> for StreamMetrics {
    type Response = StreamMetricsResponse;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<tonic::Response<Self::Response>, tonic::Status>>
                + Send,
        >,
    >;

    fn call(&mut self, request: tonic::Request<tonic::Streaming<LeanFlush>>) -> Self::Future {
        let stats = self.0.clone();
        Box::pin(async move {
            stats
                .stream(request.into_inner())
                .await
                .map(tonic::Response::new)
        })
    }
}

impl<B> tonic::codegen::Service<tonic::codegen::http::Request<B>> for StatsService
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: tonic::codegen::http::Request<B>) -> Self::Future {
        let stats = self.0.clone();
        Box::pin(async move {
            if req.uri().path() != "/envoy.service.metrics.v3.MetricsService/StreamMetrics" {
                return Ok(tonic::Status::unimplemented("not a MetricsService method").into_http());
            }
            let codec = tonic_prost::ProstCodec::<StreamMetricsResponse, LeanFlush>::default();
            let mut grpc = tonic::server::Grpc::new(codec)
                .apply_max_message_size_config(Some(MAX_FLUSH_BYTES), None);
            Ok(grpc.client_streaming(StreamMetrics(stats), req).await)
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
}

/// Exports the totals on each scrape: `fleetgate_hub_tenant_requests_total`,
/// `fleetgate_hub_tenant_request_errors_total` and the
/// `fleetgate_hub_tenant_request_duration_seconds` histogram (Envoy's buckets), per tenant.
#[derive(Debug)]
pub struct TenantTrafficCollector(pub Arc<EnvoyStats>);

/// A counter family exported per tenant: name, help, and the value read from a tenant's traffic.
type Counter = (&'static str, &'static str, fn(&TenantTraffic) -> u64);

impl Collector for TenantTrafficCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let totals = self.0.totals();
        let counters: [Counter; 2] = [
            (
                "tenant_requests",
                "Requests Envoy sent upstream for the tenant's routes (from Envoy's stats sink)",
                |t| t.requests,
            ),
            (
                "tenant_request_errors",
                "Of those, answered 5xx (Envoy's own 503s included)",
                |t| t.errors,
            ),
        ];
        for (name, help, value) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (tenant, t) in &totals {
                let labels = TenantLabels {
                    tenant: tenant.clone(),
                };
                ConstCounter::new(value(t)).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut latency = encoder.encode_descriptor(
            "tenant_request_duration_seconds",
            "Time Envoy took for the tenant's requests (upstream request time)",
            None,
            MetricType::Histogram,
        )?;
        for (tenant, t) in &totals {
            let labels = TenantLabels {
                tenant: tenant.clone(),
            };
            let buckets: Vec<(f64, u64)> = t
                .latency_buckets
                .iter()
                .map(|&(ms, n)| (ms / 1000.0, n))
                .chain(std::iter::once((f64::INFINITY, t.latency_count)))
                .collect();
            latency
                .encode_family(&labels)?
                .encode_histogram::<TenantLabels>(
                    t.latency_sum_ms / 1000.0,
                    t.latency_count,
                    &buckets,
                    None,
                )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::io::prometheus::client::{
        Bucket, Counter, Histogram, Metric, MetricType as PromType,
    };

    /// A flush as Envoy encodes it, read lazily: only the families the hub counts are decoded,
    /// each whole; the node id is read.
    #[test]
    fn a_flush_is_read_for_the_counted_families_only() {
        use envoy_types::pb::envoy::config::core::v3::Node;
        use envoy_types::pb::envoy::service::metrics::v3::StreamMetricsMessage;
        let families = vec![
            counter("server.uptime", 7.0),
            counter(
                "cluster.t/a/c/east/default/app/backend/8080.upstream_rq_total",
                3.0,
            ),
            counter(
                "cluster.t/a/c/east/default/app/backend/8080.upstream_rq_2xx",
                3.0,
            ),
            counter(
                "cluster.t/b/c/west/default/api.v1/backend/80.upstream_rq_5xx",
                1.0,
            ),
            counter("cluster.xds_cluster.upstream_rq_total", 9.0),
        ];
        let encoded = StreamMetricsMessage {
            identifier: Some(Identifier {
                node: Some(Node {
                    id: "envoy-1".into(),
                    ..Default::default()
                }),
            }),
            envoy_metrics: families.clone(),
        }
        .encode_to_vec();
        let lean = LeanFlush::decode(encoded.as_slice()).unwrap();
        assert_eq!(
            lean.identifier
                .and_then(|i| i.node)
                .map(|n| n.id)
                .as_deref(),
            Some("envoy-1")
        );
        assert_eq!(lean.envoy_metrics.len(), 5);
        let read = LeanFlush::decode(encoded.as_slice()).unwrap().read();
        assert_eq!(read, vec![families[1].clone(), families[3].clone()]);
        assert_eq!(per_tenant(&read), per_tenant(&families));
        // A family that is not a protobuf message, or has no name, is skipped.
        assert_eq!(family_name(&[0xff, 0xff]), None);
        assert_eq!(family_name(&[]), None);
    }

    fn counter(name: &str, v: f64) -> MetricFamily {
        MetricFamily {
            name: Some(name.into()),
            r#type: Some(PromType::Counter as i32),
            metric: vec![Metric {
                counter: Some(Counter {
                    value: Some(v),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn histogram(name: &str, count: u64, sum: f64, buckets: &[(f64, u64)]) -> MetricFamily {
        MetricFamily {
            name: Some(name.into()),
            r#type: Some(PromType::Histogram as i32),
            metric: vec![Metric {
                histogram: Some(Histogram {
                    sample_count: Some(count),
                    sample_sum: Some(sum),
                    bucket: buckets
                        .iter()
                        .map(|&(b, n)| Bucket {
                            upper_bound: Some(b),
                            cumulative_count: Some(n),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_tenant_and_stat_come_from_the_cluster_name() {
        let cases = [
            (
                "cluster.t/a/c/east/default/app/r0/b0.upstream_rq_total",
                Some(("a", "upstream_rq_total")),
            ),
            // Object names may hold dots: the stat is after the last one.
            (
                "cluster.t/a/c/east/default/app.v1/r0/b0.upstream_rq_5xx",
                Some(("a", "upstream_rq_5xx")),
            ),
            ("cluster.xds_cluster.upstream_rq_total", None),
            ("cluster.t/A_b/c/x.upstream_rq_total", None),
            ("http.port_80.downstream_rq_total", None),
            ("cluster.t/a", None),
        ];
        for (name, want) in cases {
            assert_eq!(cluster_stat(name), want, "{name}");
        }
    }

    #[test]
    fn requests_errors_and_latency_are_added_up_per_tenant() {
        let flush = vec![
            counter(
                "cluster.t/a/c/east/default/app/r0/b0.upstream_rq_total",
                3.0,
            ),
            counter(
                "cluster.t/a/c/west/default/api/r0/b0.upstream_rq_total",
                2.0,
            ),
            counter("cluster.t/a/c/east/default/app/r0/b0.upstream_rq_5xx", 1.0),
            counter("cluster.t/b/c/c1/default/x/r0/b0.upstream_rq_total", 7.0),
            counter("cluster.t/b/c/c1/default/x/r0/b0.upstream_cx_total", 99.0),
            counter("cluster.xds_cluster.upstream_rq_total", 50.0),
            histogram(
                "cluster.t/a/c/east/default/app/r0/b0.upstream_rq_time",
                3,
                12.0,
                &[(5.0, 2), (10.0, 3)],
            ),
            histogram(
                "cluster.t/a/c/west/default/api/r0/b0.upstream_rq_time",
                2,
                30.0,
                &[(5.0, 0), (10.0, 1)],
            ),
        ];
        let t = per_tenant(&flush);
        assert_eq!(t.keys().collect::<Vec<_>>(), vec!["a", "b"]);
        let a = &t["a"];
        assert_eq!((a.requests, a.errors), (5, 1));
        assert_eq!((a.latency_count, a.latency_sum_ms), (5, 42.0));
        assert_eq!(a.latency_buckets, vec![(5.0, 2), (10.0, 4)]);
        assert_eq!((t["b"].requests, t["b"].errors), (7, 0));
    }

    #[test]
    fn totals_and_rates_add_up_the_envoys() {
        let s = EnvoyStats::default();
        let total = |n: f64| counter("cluster.t/a/c/east/default/app/r0/b0.upstream_rq_total", n);
        s.flushed(1, &[total(10.0)]);
        s.flushed(2, &[total(5.0)]);
        assert_eq!(s.totals()["a"].requests, 15);
        // A first flush has no interval yet.
        assert_eq!(s.rates()["a"].requests_per_second, 0.0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        s.flushed(1, &[total(12.0)]);
        let r = &s.rates()["a"];
        assert_eq!(r.requests, 17);
        assert!(r.requests_per_second > 0.0, "{r:?}");
        assert_eq!(r.mean_latency_ms, None);
    }
}
