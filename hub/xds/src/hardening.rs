//! Envoy edge hardening, in one place, applied to every listener, HTTP connection manager and
//! cluster the hub builds.
//!
//! Part of step 8 (publish), pure. `super::resources`, `super::tls` and `super::l4` call these
//! where they build a Listener, an HTTP connection manager or a Cluster. The values follow
//! Envoy's "Configuring Envoy as an edge proxy" best practices: bounded buffers, header size
//! and count limits (a request over them gets 431), HTTP/2 stream and window limits, timeouts
//! for idle connections, idle streams and slow request headers, the client address taken from
//! the connection (not from `X-Forwarded-For`), and paths normalised before routing so that
//! `/a/../b`, `//b` or `%2F` cannot sidestep a route match. The admin interface is never on a
//! listener the hub builds (the bootstrap binds it to loopback, see docs/limits.md).

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{
    Http2ProtocolOptions, HttpProtocolOptions, http_protocol_options,
};
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager,
};
use envoy_types::pb::google::protobuf::{BoolValue, Duration, UInt32Value};

/// Bytes Envoy buffers per connection, downstream and upstream.
pub const BUFFER_LIMIT_BYTES: u32 = 32 * 1024;
/// The most request header bytes (KiB) Envoy accepts; more gets 431.
pub const MAX_REQUEST_HEADERS_KB: u32 = 60;
/// The most request headers Envoy accepts; more gets 431.
pub const MAX_HEADERS_COUNT: u32 = 100;
/// Concurrent HTTP/2 streams per connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 100;
/// HTTP/2 flow-control windows: 64 KiB per stream, 1 MiB per connection.
pub const INITIAL_STREAM_WINDOW: u32 = 64 * 1024;
pub const INITIAL_CONNECTION_WINDOW: u32 = 1024 * 1024;
/// A connection with no active stream is closed after this long.
pub const IDLE_TIMEOUT_SECS: i64 = 3600;
/// A stream with no activity is reset after this long.
pub const STREAM_IDLE_TIMEOUT_SECS: i64 = 300;
/// A client must send all request headers within this long.
pub const REQUEST_HEADERS_TIMEOUT_SECS: i64 = 10;

fn secs(seconds: i64) -> Option<Duration> {
    Some(Duration { seconds, nanos: 0 })
}

fn u32v(value: u32) -> Option<UInt32Value> {
    Some(UInt32Value { value })
}

/// HTTP/2 limits, downstream and upstream.
pub fn http2_options() -> Http2ProtocolOptions {
    Http2ProtocolOptions {
        max_concurrent_streams: u32v(MAX_CONCURRENT_STREAMS),
        initial_stream_window_size: u32v(INITIAL_STREAM_WINDOW),
        initial_connection_window_size: u32v(INITIAL_CONNECTION_WINDOW),
        ..Default::default()
    }
}

/// An HTTP connection manager with only the edge hardening set; the caller fills in the rest
/// with struct update syntax (`..edge_connection_manager()`).
pub fn edge_connection_manager() -> HttpConnectionManager {
    HttpConnectionManager {
        use_remote_address: Some(BoolValue { value: true }),
        max_request_headers_kb: u32v(MAX_REQUEST_HEADERS_KB),
        common_http_protocol_options: Some(HttpProtocolOptions {
            idle_timeout: secs(IDLE_TIMEOUT_SECS),
            max_headers_count: u32v(MAX_HEADERS_COUNT),
            headers_with_underscores_action:
                http_protocol_options::HeadersWithUnderscoresAction::RejectRequest as i32,
            ..Default::default()
        }),
        http2_protocol_options: Some(http2_options()),
        stream_idle_timeout: secs(STREAM_IDLE_TIMEOUT_SECS),
        request_headers_timeout: secs(REQUEST_HEADERS_TIMEOUT_SECS),
        normalize_path: Some(BoolValue { value: true }),
        merge_slashes: true,
        path_with_escaped_slashes_action:
            http_connection_manager::PathWithEscapedSlashesAction::UnescapeAndRedirect as i32,
        ..Default::default()
    }
}

/// Bounds a listener's per-connection buffer.
pub fn harden_listener(l: &mut Listener) {
    l.per_connection_buffer_limit_bytes = u32v(BUFFER_LIMIT_BYTES);
}

/// Bounds an upstream cluster's per-connection buffer.
pub fn harden_cluster(c: &mut Cluster) {
    c.per_connection_buffer_limit_bytes = u32v(BUFFER_LIMIT_BYTES);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_connection_manager_follows_envoy_edge_practice() {
        let hcm = edge_connection_manager();
        assert_eq!(hcm.use_remote_address, Some(BoolValue { value: true }));
        assert_eq!(hcm.max_request_headers_kb, u32v(60));
        let common = hcm.common_http_protocol_options.unwrap();
        assert_eq!(common.max_headers_count, u32v(100));
        assert_eq!(common.idle_timeout, secs(3600));
        assert_eq!(
            common.headers_with_underscores_action,
            http_protocol_options::HeadersWithUnderscoresAction::RejectRequest as i32
        );
        assert_eq!(hcm.http2_protocol_options, Some(http2_options()));
        assert_eq!(hcm.stream_idle_timeout, secs(300));
        assert_eq!(hcm.request_headers_timeout, secs(10));
        assert_eq!(hcm.normalize_path, Some(BoolValue { value: true }));
        assert!(hcm.merge_slashes);
        assert_eq!(
            hcm.path_with_escaped_slashes_action,
            http_connection_manager::PathWithEscapedSlashesAction::UnescapeAndRedirect as i32
        );
        let h2 = http2_options();
        assert_eq!(h2.max_concurrent_streams, u32v(100));
        assert_eq!(h2.initial_stream_window_size, u32v(65536));
        assert_eq!(h2.initial_connection_window_size, u32v(1048576));
    }
}
