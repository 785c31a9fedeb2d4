//! Each tenant's data-plane limits as Envoy filters (typed protobufs only).
//!
//! Part of step 8 (publish), pure. the runtime's `traffic_limits` put the limits on the snapshot;
//! here they become:
//! - a request-rate limit per virtual host of the tenant: the HTTP connection manager of every
//!   HTTP port has `envoy.filters.http.local_ratelimit` disabled by default (`disabled: true`,
//!   so requests to other virtual hosts do not run it), and a limited tenant's virtual hosts
//!   enable it through `typed_per_filter_config` with their own token bucket; a request past
//!   it gets 429;
//! - a connection limit per L4 listener: `envoy.filters.network.connection_limit` before the
//!   TCP proxy; a connection past it is closed at once.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::config::listener::v3::{Filter, filter};
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
use envoy_types::pb::envoy::extensions::filters::network::connection_limit::v3::ConnectionLimit;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter, http_filter,
};
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, TokenBucket, fractional_percent};
use envoy_types::pb::google::protobuf::{Any, Duration, UInt32Value, UInt64Value};
use envoy_types::util::pack_any;

use crate::model::policy::RequestRate;

/// Name of Envoy's local rate limit HTTP filter, in the connection manager and in a virtual
/// host's `typed_per_filter_config`.
pub const LOCAL_RATE_LIMIT_FILTER: &str = "envoy.filters.http.local_ratelimit";
/// Name of Envoy's connection limit network filter.
pub const CONNECTION_LIMIT_FILTER: &str = "envoy.filters.network.connection_limit";

/// The stat prefix of rate limits; never a tenant string.
const RATE_LIMIT_STATS: &str = "tenant_rate_limit";

fn all_requests() -> Option<RuntimeFractionalPercent> {
    Some(RuntimeFractionalPercent {
        default_value: Some(FractionalPercent {
            numerator: 100,
            denominator: fractional_percent::DenominatorType::Hundred as i32,
        }),
        runtime_key: String::new(),
    })
}

/// The filter in every HTTP connection manager: disabled by default and without a token
/// bucket, so it runs (and limits) only for requests to a virtual host that configures it; the
/// virtual hosts of unlimited tenants do not run it at all (issue 15).
pub fn rate_limit_filter() -> HttpFilter {
    HttpFilter {
        disabled: true,
        name: LOCAL_RATE_LIMIT_FILTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
            LocalRateLimit {
                stat_prefix: RATE_LIMIT_STATS.to_string(),
                ..Default::default()
            },
        ))),
        ..Default::default()
    }
}

/// The per-virtual-host rate limit: `burst` requests at once, refilled at `per_second`,
/// enforced on every request; past it, 429.
pub fn rate_limit(rate: RequestRate) -> LocalRateLimit {
    LocalRateLimit {
        stat_prefix: RATE_LIMIT_STATS.to_string(),
        token_bucket: Some(TokenBucket {
            max_tokens: rate.burst.max(1),
            tokens_per_fill: Some(UInt32Value {
                value: rate.per_second.max(1),
            }),
            fill_interval: Some(Duration {
                seconds: 1,
                nanos: 0,
            }),
        }),
        filter_enabled: all_requests(),
        filter_enforced: all_requests(),
        ..Default::default()
    }
}

/// `typed_per_filter_config` of a virtual host with `rate` (empty without one).
pub fn virtual_host_config(rate: Option<RequestRate>) -> HashMap<String, Any> {
    rate.map(|r| (LOCAL_RATE_LIMIT_FILTER.to_string(), pack_any(rate_limit(r))))
        .into_iter()
        .collect()
}

/// The connection limit filter of an L4 listener, `None` when unlimited.
pub fn connection_limit_filter(stat_prefix: &str, max: Option<u32>) -> Option<Filter> {
    let max = max.filter(|m| *m > 0)?;
    Some(Filter {
        name: CONNECTION_LIMIT_FILTER.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(ConnectionLimit {
            stat_prefix: stat_prefix.to_string(),
            max_connections: Some(UInt64Value {
                value: u64::from(max),
            }),
            ..Default::default()
        }))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn virtual_host_rate_limit_is_enforced_with_its_token_bucket() {
        assert!(virtual_host_config(None).is_empty());
        let cfg = virtual_host_config(Some(RequestRate {
            per_second: 5,
            burst: 10,
        }));
        let any = &cfg[LOCAL_RATE_LIMIT_FILTER];
        let rl = LocalRateLimit::decode(&*any.value).unwrap();
        let tb = rl.token_bucket.unwrap();
        assert_eq!(tb.max_tokens, 10);
        assert_eq!(tb.tokens_per_fill, Some(UInt32Value { value: 5 }));
        assert_eq!(tb.fill_interval.unwrap().seconds, 1);
        assert_eq!(rl.filter_enabled, all_requests());
        assert_eq!(rl.filter_enforced, all_requests());
        // 0 means the default status, 429.
        assert_eq!(rl.status, None);
    }

    #[test]
    fn the_connection_managers_filter_runs_only_where_a_virtual_host_enables_it() {
        let f = rate_limit_filter();
        assert!(f.disabled, "disabled unless a virtual host configures it");
        let Some(http_filter::ConfigType::TypedConfig(any)) = f.config_type else {
            panic!("typed config expected")
        };
        assert_eq!(
            LocalRateLimit::decode(&*any.value).unwrap().token_bucket,
            None
        );
    }

    #[test]
    fn connection_limit_only_when_limited() {
        assert_eq!(connection_limit_filter("x", None), None);
        assert_eq!(connection_limit_filter("x", Some(0)), None);
        let f = connection_limit_filter("x", Some(7)).unwrap();
        assert_eq!(f.name, CONNECTION_LIMIT_FILTER);
        let Some(filter::ConfigType::TypedConfig(any)) = f.config_type else {
            panic!("typed config expected")
        };
        let cl = ConnectionLimit::decode(&*any.value).unwrap();
        assert_eq!(cl.max_connections, Some(UInt64Value { value: 7 }));
    }
}
