//! The `fleetgate-ai-gateway` binary as an operator runs it: `--listen`, `--config FILE`, logs at
//! trace level. The backend's key reaches the upstream, yet appears nowhere in the process's
//! output, also not when a reloaded file is refused; SIGTERM drains and exits 0.

use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const KEY: &str = "sk-backend-SECRET-4f1c9a";

/// Answers `{"key_ok": true}` when the request carries `Authorization: Bearer KEY`, and says
/// whether the client's own credential leaked.
async fn checking_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let auth = req
                        .headers()
                        .get_all("authorization")
                        .iter()
                        .map(|v| v.to_str().unwrap_or("").to_string())
                        .collect::<Vec<_>>();
                    let body = serde_json::json!({
                        "object": "list",
                        "data": [],
                        "key_ok": auth == [format!("Bearer {KEY}")],
                        "identity_headers": req.headers().keys().filter(|k| k.as_str().starts_with("x-fleetgate")).count(),
                    });
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(
                        body.to_string(),
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

/// A status and JSON body, or why the request failed.
type Answer = Result<(u16, serde_json::Value), String>;

async fn get(gw: SocketAddr) -> Answer {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    let req = hyper::Request::get(format!("http://{gw}/v1/models"))
        .header("authorization", "Bearer sk-client-own-key")
        .header("x-fleetgate-tenant", "tenant-a")
        .header("x-fleetgate-route", "llm/local-llm")
        .body(http_body_util::Empty::new())
        .unwrap();
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Ok((
        status,
        serde_json::from_slice(&body).map_err(|e| e.to_string())?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_a_config_file_and_never_logs_the_key() {
    let upstream = checking_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ai.yaml");
    let yaml = format!(
        "version: 1\ntenants:\n  tenant-a:\n    routes:\n      llm/local-llm:\n        ai: {{ provider: {{ openai: {{}}, host: \"{}\", port: {} }} }}\n        policies: {{ auth: {{ key: {KEY} }} }}\n",
        upstream.ip(),
        upstream.port()
    );
    std::fs::write(&config, &yaml).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen: SocketAddr = ([127, 0, 0, 1], port).into();
    let log_path = dir.path().join("gateway.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fleetgate-ai-gateway"))
        .args(["--listen", &listen.to_string(), "--config"])
        .arg(&config)
        .args(["--config-poll-ms", "50"])
        .env("RUST_LOG", "trace")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();

    let started = Instant::now();
    let (status, body) = loop {
        match get(listen).await {
            Ok(r) => break r,
            Err(e) => {
                assert!(started.elapsed() < Duration::from_secs(20), "never up: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["key_ok"], true,
        "the upstream got the backend's key, only it"
    );
    assert_eq!(
        body["identity_headers"], 0,
        "identity headers stay in the data plane"
    );

    // A reloaded file with a bad key (a space) is refused without repeating it.
    std::fs::write(
        &config,
        yaml.replace(KEY, &format!("{KEY} x"))
            .replace("version: 1", "version: 2"),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = get(listen).await.unwrap();
    assert_eq!((status, &body["key_ok"]), (200, &serde_json::json!(true)));

    // SIGTERM: drains and exits 0.
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut output = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    assert!(exit.success(), "{exit}\n{output}");
    assert!(output.contains("AI gateway listening"), "{output}");
    assert!(output.contains("configuration file refused"), "{output}");
    assert!(
        !output.contains("SECRET"),
        "the key is in the log:\n{output}"
    );
    assert!(
        !output.contains("sk-client-own-key"),
        "the client's key is in the log"
    );
}

/// The binary's exit status and everything it printed, for flags that must fail at start-up.
fn run_to_exit(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fleetgate-ai-gateway"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("FLEETGATE_AI_CONFIG")
        .env_remove("FLEETGATE_AI_HUB")
        .env_remove("FLEETGATE_AI_GATEWAY_ID")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn hub_and_config_file_are_exclusive_and_bad_hub_flags_fail_at_start() {
    let (code, text) = run_to_exit(&["--config", "ai.yaml", "--hub", "http://127.0.0.1:1"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("'--config <CONFIG>' cannot be used with '--hub <HUB>'"),
        "{text}"
    );
    let (code, text) = run_to_exit(&["--gateway-id", "gw-0"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--hub <HUB>"), "{text}");
    let (code, text) = run_to_exit(&["--hub", "127.0.0.1:18000"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("must be http://<host>:<port>"), "{text}");
    let (code, text) = run_to_exit(&["--hub", "http://127.0.0.1:1", "--gateway-id", "a b"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("--gateway-id: gateway id \"a b\""), "{text}");
}
