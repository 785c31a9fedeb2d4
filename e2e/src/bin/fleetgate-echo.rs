//! `fleetgate-echo --listen ADDR --name NAME`: an HTTP backend that answers every request with
//! its own name, so a person (or `make demo`) can see which backend Envoy reached. The same code
//! the e2e tests use (`fleetgate_e2e::Echo`).

use std::net::SocketAddr;

fn usage(problem: &str) -> ! {
    eprintln!("fleetgate-echo: {problem}\nusage: fleetgate-echo --listen <ip:port> --name <name>");
    std::process::exit(2);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut listen: Option<SocketAddr> = None;
    let mut name: Option<String> = None;
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
            "--name" => name = Some(value),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    let listen = listen.unwrap_or_else(|| usage("--listen is required"));
    let name = name.unwrap_or_else(|| usage("--name is required"));
    let echo = match fleetgate_e2e::Echo::start_at(&name, listen).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("fleetgate-echo: {e:#}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "fleetgate-echo {} listening on {}",
        echo.name(),
        echo.addr()
    );
    let _ = tokio::signal::ctrl_c().await;
}
