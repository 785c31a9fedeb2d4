//! A real OpenAI-compatible model server: llama.cpp's Python server (PyPI
//! `llama-cpp-python[server]`, built by `e2e/setup.sh ai`) serving a tiny model with random
//! weights that the test tree generates itself (`e2e/ai/make_tiny_model.py`; nothing is
//! downloaded). Its answers are gibberish; the wire format, streaming, usage and errors are
//! llama.cpp's own.
//!
//! The server requires `api_key` (a wrong one gets 401 with FastAPI's `{"detail": ...}` body) and
//! serves the model under [`LlamaServer::MODEL`], for chat completions and embeddings. `--interrupt_requests False` keeps a concurrent
//! request from cutting a running stream short.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::components::{ai_python, target_dir, workspace_dir};
use crate::eventually::try_eventually;
use crate::ports::free_port_on;
use crate::process::{Process, TestDir};

/// A running llama.cpp server.
#[derive(Debug)]
pub struct LlamaServer {
    addr: SocketAddr,
    api_key: String,
    model_path: PathBuf,
    process: Process,
}

/// The seed of the generated model: same seed, same bytes, same answers at temperature 0.
pub const MODEL_SEED: u64 = 42;

/// Generates the tiny model once into `target/e2e-cache/` (cheap, ~0.5 MiB, but shared by every
/// test of a run) and returns its path.
pub fn tiny_model() -> anyhow::Result<PathBuf> {
    let dir = target_dir().join("e2e-cache");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("tiny-llama-{MODEL_SEED}.gguf"));
    if !path.is_file() {
        generate_model(&path, MODEL_SEED)?;
    }
    Ok(path)
}

/// Runs `e2e/ai/make_tiny_model.py OUT --seed SEED` with the AI virtualenv's Python.
pub fn generate_model(out: &Path, seed: u64) -> anyhow::Result<()> {
    let script = workspace_dir().join("e2e/ai/make_tiny_model.py");
    let status = std::process::Command::new(ai_python()?)
        .arg(&script)
        .arg(out)
        .args(["--seed", &seed.to_string()])
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    anyhow::ensure!(status.success(), "{} failed: {status}", script.display());
    Ok(())
}

impl LlamaServer {
    /// The model alias the server answers under.
    pub const MODEL: &'static str = "tiny";

    /// Starts the server on `ip` (a loopback address) with `api_key` and waits until
    /// `GET /v1/models` answers.
    pub async fn start(dir: &TestDir, ip: IpAddr, api_key: &str) -> anyhow::Result<Self> {
        Self::start_at(dir, SocketAddr::new(ip, free_port_on(ip)?), api_key).await
    }

    /// Like [`LlamaServer::start`], on `addr` (e.g. a node address and a Service's nodePort,
    /// where a real kube-proxy would forward).
    pub async fn start_at(dir: &TestDir, addr: SocketAddr, api_key: &str) -> anyhow::Result<Self> {
        let model_path = tiny_model()?;
        let (ip, port) = (addr.ip(), addr.port());
        let args = vec![
            "-m".to_string(),
            "llama_cpp.server".into(),
            "--model".into(),
            model_path.display().to_string(),
            "--host".into(),
            ip.to_string(),
            "--port".into(),
            port.to_string(),
            "--model_alias".into(),
            Self::MODEL.into(),
            // About one token per character with this vocabulary: room for the prompts tests send.
            "--n_ctx".into(),
            "1024".into(),
            "--n_threads".into(),
            "1".into(),
            "--interrupt_requests".into(),
            "False".into(),
            // /v1/embeddings too (this model has no pooling: one vector per token).
            "--embedding".into(),
            "true".into(),
        ];
        let name = format!("llama-{ip}");
        // The key through the environment (the server's settings read API_KEY), not the command
        // line, which the harness writes into the process's log.
        let process =
            Process::spawn_with_env(dir, &name, ai_python()?, args, [("API_KEY", api_key)])?;
        let mut server = Self {
            addr,
            api_key: api_key.to_string(),
            model_path,
            process,
        };
        let key = server.api_key.clone();
        let process = &mut server.process;
        try_eventually(crate::TIMEOUT, || {
            let running = process.ensure_running();
            let key = key.clone();
            async move {
                running?;
                let auth = format!("Bearer {key}");
                let r = crate::http::request(
                    addr,
                    &addr.to_string(),
                    "/v1/models",
                    &[("authorization", auth.as_str())],
                )
                .await?;
                anyhow::ensure!(r.status == 200, "GET /v1/models: {} {}", r.status, r.body);
                Ok(())
            }
        })
        .await
        .with_context(|| format!("llama.cpp server on {addr} did not come up"))?;
        Ok(server)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The key it requires.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The generated model file.
    pub fn model_path(&self) -> &Path {
        &self.model_path
    }

    /// The server's log (stdout and stderr).
    pub fn log(&self) -> String {
        self.process.log()
    }

    pub fn process_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}
