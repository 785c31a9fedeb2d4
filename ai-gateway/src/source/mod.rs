//! Where configuration comes from: the [`ConfigSource`] seam. A source owns the
//! [`ConfigStore`] (the one writer, [`crate::publish`]) and feeds it until it ends.
//!
//! - [`FileSource`]: the `--config` YAML file, re-read when its content changes (polled) or on
//!   SIGHUP; a file that fails validation is logged and ignored, the last good one keeps serving.
//!   A polled change is taken only once two polls in a row read the same text, so a file caught
//!   half-written (an editor or `cp` truncates, then writes) is never applied as a smaller
//!   configuration. Replacing the file by rename is still the safe way to change it.
//! - [`ChannelSource`]: whole configurations sent over a channel (tests, embedding).
//! - [`grpc::HubSource`]: the hub's per-tenant, acknowledged stream (see
//!   `proto/fleetgate/aigateway/v1/aigateway.proto`), which also carries this replica's MCP tool
//!   reports ([`mcp_pins`]) and LLM usage ([`usage_report`]) to the hub.

pub mod grpc;
pub mod mcp_pins;
pub mod usage_report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;

use crate::config::{Config, ConfigError, RawConfig};
use crate::publish::ConfigStore;

/// Why a source stopped.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The configuration file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The configuration is not valid.
    #[error("{path}: {source}")]
    Invalid { path: PathBuf, source: ConfigError },
    /// The hub's stream failed.
    #[error("hub config stream: {0}")]
    Stream(String),
    /// The hub's address or the gateway id cannot be used.
    #[error("{0}")]
    Hub(String),
}

/// Feeds the store until the source ends (or forever).
pub trait ConfigSource: Send + 'static {
    fn run(self: Box<Self>, store: ConfigStore) -> BoxFuture<'static, Result<(), SourceError>>;
}

/// The `--config` file.
#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
    poll: Duration,
    last: String,
    /// A changed text seen once, taken when the next poll reads it again.
    pending: Option<String>,
}

/// What one poll does with the text it read.
#[derive(Debug, PartialEq, Eq)]
enum Poll {
    /// Nothing new.
    Unchanged,
    /// New text, not yet seen twice: wait for the next poll.
    Settling,
    /// Parse and apply it.
    Take,
}

/// Pure decision for one poll: `last` is the text last taken, `pending` a change seen once;
/// `forced` is a SIGHUP (the operator says the file is complete).
fn poll(text: &str, last: &str, pending: Option<&str>, forced: bool) -> Poll {
    if forced {
        Poll::Take
    } else if text == last {
        Poll::Unchanged
    } else if pending == Some(text) {
        Poll::Take
    } else {
        Poll::Settling
    }
}

impl FileSource {
    /// Reads and validates the file once (a bad file at start-up is an error, not an empty
    /// gateway); returns the source for later changes and the configuration to start with.
    pub fn open(path: &Path, poll: Duration) -> Result<(Self, Config), SourceError> {
        let text = read(path)?;
        let config = parse(path, &text)?;
        Ok((
            Self {
                path: path.to_path_buf(),
                poll,
                last: text,
                pending: None,
            },
            config,
        ))
    }

    async fn watch(mut self, mut store: ConfigStore) -> Result<(), SourceError> {
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let hup_recv = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hup_recv = std::future::pending::<()>();
            let forced = tokio::select! {
                _ = tokio::time::sleep(self.poll) => false,
                _ = hup_recv => true,
            };
            let text = match read(&self.path) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e, "configuration file unreadable; keeping the last good one");
                    continue;
                }
            };
            match poll(&text, &self.last, self.pending.as_deref(), forced) {
                Poll::Unchanged => {
                    self.pending = None;
                    continue;
                }
                Poll::Settling => {
                    self.pending = Some(text);
                    continue;
                }
                Poll::Take => self.pending = None,
            }
            match parse(&self.path, &text) {
                Ok(config) => {
                    store.replace(config);
                    self.last = text;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "configuration file refused; keeping the last good one");
                    self.last = text;
                }
            }
        }
    }
}

impl ConfigSource for FileSource {
    fn run(self: Box<Self>, store: ConfigStore) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(self.watch(store))
    }
}

fn read(path: &Path) -> Result<String, SourceError> {
    std::fs::read_to_string(path).map_err(|source| SourceError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn parse(path: &Path, text: &str) -> Result<Config, SourceError> {
    RawConfig::from_yaml(text)
        .and_then(|raw| raw.validate())
        .map_err(|source| SourceError::Invalid {
            path: path.to_path_buf(),
            source,
        })
}

/// Whole configurations from a channel; ends when every sender is dropped.
#[derive(Debug)]
pub struct ChannelSource(pub mpsc::Receiver<Config>);

impl ConfigSource for ChannelSource {
    fn run(self: Box<Self>, mut store: ConfigStore) -> BoxFuture<'static, Result<(), SourceError>> {
        let mut rx = self.0;
        Box::pin(async move {
            while let Some(config) = rx.recv().await {
                store.replace(config);
            }
            Ok(())
        })
    }
}

/// No changes ever: the gateway serves its initial configuration (no `--config`, or tests).
#[derive(Debug, Default)]
pub struct StaticSource;

impl ConfigSource for StaticSource {
    fn run(self: Box<Self>, store: ConfigStore) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            // Keeps the store (and so the published table) alive.
            let _store = store;
            std::future::pending::<()>().await;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_taken_only_when_two_polls_agree_or_on_sighup() {
        assert_eq!(poll("a", "a", None, false), Poll::Unchanged);
        assert_eq!(poll("ab", "a", None, false), Poll::Settling);
        assert_eq!(poll("abc", "a", Some("ab"), false), Poll::Settling);
        assert_eq!(poll("abc", "a", Some("abc"), false), Poll::Take);
        assert_eq!(poll("a", "a", None, true), Poll::Take);
        assert_eq!(poll("ab", "a", None, true), Poll::Take);
    }

    const V1: &str = "version: 1\ntenants:\n  a:\n    routes:\n      r: { ai: { provider: { openai: {}, host: h } } }\n";

    #[tokio::test]
    async fn the_file_is_reread_when_it_changes_and_a_bad_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ai.yaml");
        std::fs::write(&path, V1).unwrap();
        let (source, initial) = FileSource::open(&path, Duration::from_millis(20)).unwrap();
        assert_eq!(initial.version, 1);
        let (mut store, mut rx) = ConfigStore::new();
        store.replace(initial);
        tokio::spawn(Box::new(source).run(store));

        let wait_version = |rx: &mut tokio::sync::watch::Receiver<_>, v: u64| {
            let mut rx = rx.clone();
            async move {
                tokio::time::timeout(
                    Duration::from_secs(5),
                    rx.wait_for(|t: &std::sync::Arc<crate::route::RouteTable>| t.version() == v),
                )
                .await
                .expect("the change is picked up")
                .unwrap();
            }
        };
        std::fs::write(&path, V1.replace("version: 1", "version: 2")).unwrap();
        wait_version(&mut rx, 2).await;

        // A bad file: refused, version 2 keeps serving; a good one after it is taken.
        std::fs::write(&path, "version: 3\ntenants:\n  a:\n    maxConcurrency: 0\n").unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(rx.borrow_and_update().version(), 2);
        std::fs::write(&path, V1.replace("version: 1", "version: 4")).unwrap();
        wait_version(&mut rx, 4).await;

        // A bad file at start-up is an error, naming the field.
        std::fs::write(&path, "tenants:\n  a:\n    maxConcurrency: 0\n").unwrap();
        let err = FileSource::open(&path, Duration::from_millis(20)).unwrap_err();
        assert!(
            err.to_string().contains("tenants.a.maxConcurrency"),
            "{err}"
        );
    }
}
