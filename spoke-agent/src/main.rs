//! `fleetgate-agent`: parses the command line and runs [`fleetgate_spoke_agent::run`].

use std::io::IsTerminal;

use clap::Parser;
use fleetgate_spoke_agent::config::Cli;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = match Cli::parse().validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fleetgate-agent: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match fleetgate_spoke_agent::run(config).await {
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
