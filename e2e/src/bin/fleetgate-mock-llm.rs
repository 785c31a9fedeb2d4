//! `fleetgate-mock-llm --listen ADDR --key KEY [--token-delay-ms N]`: the mock OpenAI, Anthropic
//! and Gemini APIs of the e2e tests (`fleetgate_e2e::mock_llm`, proven with each vendor's SDK by
//! `e2e/tests/mock_providers.rs`) as a process, the common upstream of the AI gateway benchmark
//! (`scripts/bench-ai.sh`: fleetgate and LiteLLM's proxy in front of the same mock).

use std::net::SocketAddr;
use std::time::Duration;

fn usage(problem: &str) -> ! {
    eprintln!(
        "fleetgate-mock-llm: {problem}\nusage: fleetgate-mock-llm --listen <ip:port> --key <key> [--token-delay-ms <n>]"
    );
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let mut listen: Option<SocketAddr> = None;
    let mut key: Option<String> = None;
    let mut delay = Duration::ZERO;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--listen" => {
                listen =
                    Some(value.parse().unwrap_or_else(|_| {
                        usage(&format!("--listen {value:?} is not an ip:port"))
                    }))
            }
            "--key" => key = Some(value),
            "--token-delay-ms" => {
                delay = Duration::from_millis(value.parse().unwrap_or_else(|_| {
                    usage(&format!("--token-delay-ms {value:?} is not a number"))
                }))
            }
            other => usage(&format!("unknown flag {other}")),
        }
    }
    let listen = listen.unwrap_or_else(|| usage("--listen is required"));
    let key = key.unwrap_or_else(|| usage("--key is required"));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .unwrap_or_else(|e| usage(&format!("binding {listen}: {e}")));
    eprintln!("fleetgate-mock-llm: serving OpenAI, Anthropic and Gemini APIs on {listen}");
    fleetgate_e2e::mock_llm::serve_forever(listener, "mock", &key, delay).await;
}
