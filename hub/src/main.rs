//! `fleetgate-hub`: parses the command line and hands over to the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: the compile loop and the xDS build allocate and
/// free millions of small objects per change; glibc malloc spent a third of that time
/// consolidating its free lists (measurements in docs/benchmarks.md, Scale).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "fleetgate-hub",
    version,
    about = "The fleetgate hub: admits tenant intent and programs the shared data plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub.
    Run {
        /// The hub configuration file (YAML).
        #[arg(long, env = "FLEETGATE_HUB_CONFIG")]
        config: PathBuf,
    },
    /// Manage the hub's certificate authority and agent identities.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Create the CA and the hub's serving certificate.
    Init {
        #[arg(long, env = "FLEETGATE_PKI_DIR")]
        pki_dir: PathBuf,
        /// Extra IP addresses or DNS names agents use to reach the hub.
        #[arg(long = "server-san")]
        server_sans: Vec<String>,
    },
    /// Issue an agent identity for one cluster of one tenant.
    Issue {
        #[arg(long, env = "FLEETGATE_PKI_DIR")]
        pki_dir: PathBuf,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        cluster: String,
        /// Where to write ca.crt, tls.crt and tls.key.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "fleetgate")]
        trust_domain: String,
        /// Certificate lifetime in hours (at most 24).
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=24))]
        valid_hours: u32,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,h2=warn,tower=warn,hyper=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().command {
        Command::Run { config } => {
            let raw = fleetgate_hub::config::RawConfig::from_file(&config)?;
            let config = raw.validate()?;
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            rt.block_on(fleetgate_hub::run::run(config, shutdown_signal()))?;
        }
        Command::Ca { command } => match command {
            CaCommand::Init {
                pki_dir,
                server_sans,
            } => {
                fleetgate_hub::identity::init_ca(&pki_dir, &server_sans)?;
                println!("created CA and hub certificate in {}", pki_dir.display());
            }
            CaCommand::Issue {
                pki_dir,
                tenant,
                cluster,
                out,
                trust_domain,
                valid_hours,
            } => {
                let id = fleetgate_hub::identity::SpiffeId::new(&trust_domain, &tenant, &cluster)?;
                fleetgate_hub::identity::issue_agent(
                    &pki_dir,
                    &id,
                    time::Duration::hours(i64::from(valid_hours)),
                    &out,
                )?;
                println!("issued {} into {}", id.uri(), out.display());
            }
        },
    }
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler cannot fail on Unix");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
