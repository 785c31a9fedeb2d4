//! `fleetgate-agent`: parses the command line and runs [`fleetgate_spoke_agent::run`].

use clap::Parser;
use fleetgate_spoke_agent::config::Cli;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    fleetgate_observe::log::init("info");
    let config = match Cli::parse().validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fleetgate-agent: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // Off unless OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set; flushed before exiting.
    let traces = fleetgate_observe::trace::init("fleetgate-agent");
    let ran = fleetgate_spoke_agent::run(config).await;
    traces.shutdown().await;
    match ran {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "fleetgate-agent: {}",
                fleetgate_spoke_agent::sync::error_chain(&e)
            );
            std::process::ExitCode::FAILURE
        }
    }
}
