//! Where the real components and the product binaries are on this machine.
//!
//! Real components come from environment variables (what `e2e/setup.sh` prints), falling back to
//! the folders `e2e/setup.sh` installs into by default. Product binaries come from the cargo
//! target dir; the harness never builds them itself.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

const K8S_VERSION: &str = "v1.34.4";
const ETCD_VERSION: &str = "v3.6.16";
const GATEWAY_API_VERSION: &str = "v1.6.3";
const ENVOY_VERSION: &str = "1.40.0";
const HELM_VERSION: &str = "v4.3.2";

fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FLEETGATE_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    Path::new(&home).join(".cache/fleetgate")
}

/// `env` if set, else `default`; fails with a hint to run the setup script when it is missing.
fn component(env: &str, default: PathBuf) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os(env).map(PathBuf::from).unwrap_or(default);
    if !path.exists() {
        bail!(
            "{env}: {} does not exist; run `bash e2e/setup.sh` and export what it prints",
            path.display()
        );
    }
    Ok(path)
}

/// The etcd binary (`FLEETGATE_ETCD`).
pub fn etcd() -> anyhow::Result<PathBuf> {
    component(
        "FLEETGATE_ETCD",
        cache_dir().join(format!("etcd-{ETCD_VERSION}/etcd")),
    )
}

/// The kube-apiserver binary (`FLEETGATE_KUBE_APISERVER`).
pub fn kube_apiserver() -> anyhow::Result<PathBuf> {
    component(
        "FLEETGATE_KUBE_APISERVER",
        cache_dir().join(format!("kube-apiserver-{K8S_VERSION}/kube-apiserver")),
    )
}

/// The folder of Gateway API standard-channel CRD YAMLs (`FLEETGATE_GATEWAY_CRDS`).
pub fn gateway_crds() -> anyhow::Result<PathBuf> {
    component(
        "FLEETGATE_GATEWAY_CRDS",
        cache_dir().join(format!("gateway-api-{GATEWAY_API_VERSION}/standard")),
    )
}

/// The Envoy binary (`FLEETGATE_ENVOY`).
pub fn envoy() -> anyhow::Result<PathBuf> {
    component(
        "FLEETGATE_ENVOY",
        cache_dir().join(format!(
            "envoy-{ENVOY_VERSION}/venv/lib/python3.11/site-packages/envoy/_bin/envoy"
        )),
    )
}

/// Debian's Chromium (`FLEETGATE_CHROMIUM`, default `/usr/bin/chromium`), installed by
/// `e2e/setup.sh` from Debian's packages: the dashboard's browser test.
pub fn chromium() -> anyhow::Result<PathBuf> {
    component("FLEETGATE_CHROMIUM", PathBuf::from("/usr/bin/chromium"))
}

/// Debian's ChromeDriver for that Chromium (`FLEETGATE_CHROMEDRIVER`, default
/// `/usr/bin/chromedriver`).
pub fn chromedriver() -> anyhow::Result<PathBuf> {
    component(
        "FLEETGATE_CHROMEDRIVER",
        PathBuf::from("/usr/bin/chromedriver"),
    )
}

/// The OpenID provider of the dashboard's OIDC tests (`FLEETGATE_OIDC_PROVIDER`), built by
/// `e2e/setup.sh oidc`. Default: the newest `oidc-provider-*` folder holding one.
pub fn oidc_provider() -> anyhow::Result<PathBuf> {
    let default = std::fs::read_dir(cache_dir())
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("oidc-provider"))
        .filter(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("oidc-provider-"))
                && p.is_file()
        })
        .max()
        .unwrap_or_else(|| cache_dir().join("oidc-provider-missing/oidc-provider"));
    component("FLEETGATE_OIDC_PROVIDER", default)
}

/// The helm binary (`FLEETGATE_HELM`), built from the Go module proxy by `e2e/setup.sh`.
pub fn helm() -> anyhow::Result<PathBuf> {
    component(
        "FLEETGATE_HELM",
        cache_dir().join(format!("helm-{HELM_VERSION}/helm")),
    )
}

/// The Python of the AI virtualenv (`FLEETGATE_AI_PYTHON`): llama.cpp's server, the model
/// generator and the vendors' SDKs. Default: the newest `ai-llama-cpp-python-*` folder that
/// `e2e/setup.sh ai` completed.
pub fn ai_python() -> anyhow::Result<PathBuf> {
    let default = std::fs::read_dir(cache_dir())
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("ai-llama-cpp-python-"))
                && p.join(".complete").is_file()
        })
        .max()
        .map(|p| p.join("venv/bin/python"))
        .unwrap_or_else(|| cache_dir().join("ai-llama-cpp-python-missing/venv/bin/python"));
    component("FLEETGATE_AI_PYTHON", default)
}

/// The newest `agents-*` folder `e2e/setup.sh agents` completed (the MCP and A2A SDKs).
fn agents_dir() -> PathBuf {
    std::fs::read_dir(cache_dir())
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("agents-"))
                && p.join(".complete").is_file()
        })
        .max()
        .unwrap_or_else(|| cache_dir().join("agents-missing"))
}

/// The Python with PyPI `mcp` and `a2a-sdk` (`FLEETGATE_AGENTS_PYTHON`).
pub fn agents_python() -> anyhow::Result<PathBuf> {
    component(
        "FLEETGATE_AGENTS_PYTHON",
        agents_dir().join("venv/bin/python"),
    )
}

/// The `node_modules` folder with `@modelcontextprotocol/sdk` (`FLEETGATE_AGENTS_NODE_PATH`),
/// for `NODE_PATH`.
pub fn agents_node_path() -> anyhow::Result<PathBuf> {
    component(
        "FLEETGATE_AGENTS_NODE_PATH",
        agents_dir().join("node/node_modules"),
    )
}

/// The workspace root (the folder above this crate).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ has a parent folder")
        .to_path_buf()
}

/// The cargo target dir: `$CARGO_TARGET_DIR` or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_dir().join(dir)
            }
        }
        None => workspace_dir().join("target"),
    }
}

/// A product binary (`fleetgate-hub`, `fleetgate-agent`) built by `cargo build --bins`.
/// `FLEETGATE_PROFILE=release` picks the release build (what `make bench` measures).
pub fn product_binary(name: &str) -> anyhow::Result<PathBuf> {
    let profile = std::env::var("FLEETGATE_PROFILE").unwrap_or_else(|_| "debug".into());
    let path = target_dir().join(&profile).join(name);
    if !path.is_file() {
        let flag = if profile == "release" {
            " --release"
        } else {
            ""
        };
        bail!(
            "{} not found: run `cargo build{flag} --bins` first",
            path.display()
        );
    }
    Ok(path)
}

/// A file of the repository, e.g. `deploy/agent-rbac.yaml`; `None` if it does not exist (yet).
pub fn repo_file(relative: &str) -> Option<PathBuf> {
    let path = workspace_dir().join(relative);
    path.is_file().then_some(path)
}

/// Reads a file with its path in the error.
pub fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// `RUST_LOG` for the product binaries (hub and agents): `debug` for every crate, so that tests
/// that search logs for secrets ([`crate::secrets`]) see what debug logging would show.
/// `FLEETGATE_E2E_RUST_LOG` overrides it.
pub fn product_log_level() -> String {
    std::env::var("FLEETGATE_E2E_RUST_LOG").unwrap_or_else(|_| "debug".to_string())
}
