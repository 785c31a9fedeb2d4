//! `fleetgate-hub`: parses the command line and hands over to the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: the compile loop and the xDS build allocate and
/// free millions of small objects per change; glibc malloc spent a third of that time
/// consolidating its free lists (measurements in docs/benchmarks.md, Scale). Inside a counter
/// of live bytes, for the metrics (`fleetgate_hub::heap`); no limit is set.
#[global_allocator]
static GLOBAL: cap::Cap<mimalloc::MiMalloc> = cap::Cap::new(mimalloc::MiMalloc, usize::MAX);

/// Transparent huge pages off for the hub process (docs/operations.md, "The hub's memory").
/// mimalloc marks the memory it reserves `MADV_HUGEPAGE`, so on a host whose THP setting is
/// `madvise` (or `always`) the kernel backs it with 2 MiB pages when first touched, and
/// khugepaged later collapses 2 MiB ranges in which as few as one 4 KiB page is in use (its
/// default `max_ptes_none` is 511). The hub's RSS then counts whole 2 MiB pages where a few
/// small objects live on after a change, and grows with the churn while its live heap does not
/// (the soak in e2e/tests/chaos.rs). Called first thing in `main`: only what mimalloc reserved
/// before it may already be in huge pages. The error is logged once logging is up.
#[cfg(target_os = "linux")]
fn no_transparent_huge_pages() -> std::io::Result<()> {
    rustix::thread::disable_transparent_huge_pages(true).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn no_transparent_huge_pages() -> std::io::Result<()> {
    Ok(())
}

/// The purge delay the hub gives mimalloc unless the environment already sets one: freed memory
/// goes back to the kernel at once (docs/operations.md, "The hub's memory").
const PURGE_DELAY: (&str, &str) = ("MIMALLOC_PURGE_DELAY", "0");

/// mimalloc returns freed pages to the kernel only `MIMALLOC_PURGE_DELAY` ms after a free (1,000
/// by default), and only when a later free or allocation looks: a hub that goes quiet after a
/// change keeps what the change freed (tens of MiB at a few thousand routes; the soak in
/// e2e/tests/chaos.rs read 55-90 MiB of RSS over a live heap of 2 MiB). mimalloc reads its
/// options from the environment when the process loads, before `main`, so the hub runs itself
/// again (the same executable, arguments and pid) with the option set. `Ok(())` when the option
/// is already set; an `Err` (the hub runs on with mimalloc's default) is logged once logging is
/// up.
#[cfg(target_os = "linux")]
fn allocator_options() -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let (name, value) = PURGE_DELAY;
    if std::env::var_os(name).is_some() {
        return Ok(());
    }
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_default();
    // `exec` returns only when it failed.
    Err(std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env(name, value)
        .exec())
}

#[cfg(not(target_os = "linux"))]
fn allocator_options() -> std::io::Result<()> {
    Ok(())
}

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
    /// Check a configuration file without starting anything: prints what to fix and exits
    /// non-zero when the hub would refuse it (e.g. before rolling out a changed ConfigMap).
    Check {
        /// The hub configuration file (YAML).
        #[arg(long, env = "FLEETGATE_HUB_CONFIG")]
        config: PathBuf,
    },
    /// Manage the hub's certificate authority and agent identities.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Bootstrap tokens: how an agent gets its identity without anyone copying keys.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Operator tokens for the admin API and `fleetgate-hub admin`.
    OperatorToken {
        #[command(subcommand)]
        command: OperatorTokenCommand,
    },
    /// Back up the hub's store into a file, or restore one (docs/operations.md).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Talk to a running hub's admin API (its adminListen port).
    Admin {
        /// The hub's adminListen, e.g. http://127.0.0.1:9901.
        #[arg(long, env = "FLEETGATE_ADMIN_URL")]
        url: String,
        /// An operator token (`fleetgate-hub operator-token create`).
        #[arg(long, env = "FLEETGATE_OPERATOR_TOKEN", hide_env_values = true)]
        token: String,
        #[arg(long, value_enum, default_value = "table")]
        output: fleetgate_hub::admin::client::Output,
        #[command(subcommand)]
        command: fleetgate_hub::admin::client::AdminCommand,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy every key of the configured store into a new backup file (an embedded store
    /// file). On etcd the hubs may keep running (one consistent read); an embedded store's
    /// hub must be stopped first (it holds the file).
    Backup {
        /// The hub configuration file: its storePath or storeEtcd is read.
        #[arg(long, env = "FLEETGATE_HUB_CONFIG")]
        config: PathBuf,
        /// The backup file to create (must not exist).
        #[arg(long)]
        to: PathBuf,
    },
    /// Copy a backup file into the configured store, which must be empty (a new file or an
    /// etcd prefix no hub uses); then start the hubs on it with the same PKI folder.
    Restore {
        #[arg(long, env = "FLEETGATE_HUB_CONFIG")]
        config: PathBuf,
        /// A file made by `fleetgate-hub store backup` (or a stopped hub's storePath).
        #[arg(long)]
        from: PathBuf,
    },
}

#[derive(Subcommand)]
enum OperatorTokenCommand {
    /// Print an operator token (needs only the PKI directory, not a running hub).
    Create {
        #[arg(long, env = "FLEETGATE_PKI_DIR")]
        pki_dir: PathBuf,
        /// Who it is for (a DNS label, e.g. alice); logged with every action.
        #[arg(long)]
        name: String,
        /// viewer (reads) or admin (also acts).
        #[arg(long)]
        role: String,
        /// How long it works, e.g. 8h, 30m (at most 7 days).
        #[arg(long, default_value = "8h")]
        ttl: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a single-use bootstrap token for one cluster of one tenant (needs only the PKI
    /// directory, not a running hub). Pass it to `fleetgate-agent --bootstrap-token`.
    Create {
        #[arg(long, env = "FLEETGATE_PKI_DIR")]
        pki_dir: PathBuf,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        cluster: String,
        /// How long the token may be used, e.g. 15m, 1h, 90s (at most 24h).
        #[arg(long, default_value = "15m")]
        ttl: String,
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
        /// Do nothing (and succeed) when the folder already holds a CA: for an init container
        /// that runs at every start and must never replace the CA agents trust.
        #[arg(long)]
        if_missing: bool,
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

/// `fleetgate-hub store backup|restore`: the configured store and a backup file, copied one
/// into the other (`store::backup`).
fn store_command(command: StoreCommand) -> anyhow::Result<()> {
    use fleetgate_hub::store::{backup, kv};
    let (config, file, backing_up) = match command {
        StoreCommand::Backup { config, to } => (config, to, true),
        StoreCommand::Restore { config, from } => (config, from, false),
    };
    let config = fleetgate_hub::config::RawConfig::from_file(&config)?.validate()?;
    if backing_up && file.exists() {
        anyhow::bail!(
            "--to {}: the file exists; name a new file (a backup never overwrites one)",
            file.display()
        );
    }
    if !backing_up && !file.is_file() {
        anyhow::bail!(
            "--from {}: no such file; name a file made by `fleetgate-hub store backup`",
            file.display()
        );
    }
    let configured = kv::configured(&config)?;
    let file_kv = kv::RedbKv::open(&file)?;
    let (from, to): (&dyn kv::Kv, &dyn kv::Kv) = if backing_up {
        (configured.as_ref(), &file_kv)
    } else {
        (&file_kv, configured.as_ref())
    };
    let copied = backup::copy_all(from, to)?;
    eprintln!(
        "copied {} keys ({} bytes) from {} to {}",
        copied.keys,
        copied.bytes,
        from.describe(),
        to.describe()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let options = allocator_options();
    let thp = no_transparent_huge_pages();
    fleetgate_hub::heap::count_with(|| GLOBAL.allocated());
    fleetgate_observe::log::init("info,h2=warn,tower=warn,hyper=warn");
    if let Err(e) = options {
        tracing::warn!(error = %e, "could not run the hub again with {}={} (it keeps memory freed by a change until a later change; set it in the environment to skip the re-run)", PURGE_DELAY.0, PURGE_DELAY.1);
    }
    if let Err(e) = thp {
        tracing::warn!(error = %e, "could not turn transparent huge pages off for the hub (prctl PR_SET_THP_DISABLE): its RSS may count 2 MiB pages that hold little");
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().command {
        Command::Run { config: path } => {
            let raw = fleetgate_hub::config::RawConfig::from_file(&path)?;
            let config = raw.validate()?;
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            rt.block_on(async {
                // Off unless OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set; flushed at the end.
                let traces = fleetgate_observe::trace::init("fleetgate-hub");
                let ran = run_hub(config, path).await;
                traces.shutdown().await;
                ran
            })?;
        }
        Command::Check { config: path } => {
            let raw = fleetgate_hub::config::RawConfig::from_file(&path)?;
            let config = raw.validate()?;
            println!(
                "{}: valid ({} tenants)",
                path.display(),
                config.tenants.len()
            );
        }
        Command::Store { command } => store_command(command)?,
        Command::Token {
            command:
                TokenCommand::Create {
                    pki_dir,
                    tenant,
                    cluster,
                    ttl,
                },
        } => {
            use fleetgate_hub::enroll::token;
            // Tenant and cluster must be what a certificate URI can carry.
            fleetgate_hub::identity::SpiffeId::new("fleetgate", &tenant, &cluster)?;
            let ttl = fleetgate_hub::config::parse_config_duration(&ttl)
                .ok()
                .filter(|d| !d.is_zero() && *d <= token::MAX_TTL)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--ttl {ttl:?}: use a duration such as 15m, 1h or 90s, at most 24h"
                    )
                })?;
            if !pki_dir.join(fleetgate_hub::identity::CA_KEY).is_file() {
                anyhow::bail!(
                    "{} holds no hub CA; create it with `fleetgate-hub ca init --pki-dir {}`",
                    pki_dir.display(),
                    pki_dir.display()
                );
            }
            let key = token::TokenKey::load_or_create(&pki_dir)?;
            let expires = fleetgate_hub::fleet::unix_now() as u64 + ttl.as_secs();
            let t = token::mint(&key, &tenant, &cluster, expires)?;
            eprintln!(
                "single-use bootstrap token for cluster {cluster} of tenant {tenant}, valid {}s:",
                ttl.as_secs()
            );
            println!("{t}");
        }
        Command::OperatorToken {
            command:
                OperatorTokenCommand::Create {
                    pki_dir,
                    name,
                    role,
                    ttl,
                },
        } => {
            use fleetgate_hub::admin::operator_token;
            if !operator_token::is_label(&name) {
                anyhow::bail!(
                    "--name {name:?}: use a DNS label (lower-case letters, digits and '-', at most 63), e.g. alice"
                );
            }
            let role: operator_token::Role = role
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--role: {e}"))?;
            let ttl = fleetgate_hub::config::parse_config_duration(&ttl)
                .ok()
                .filter(|d| !d.is_zero() && *d <= operator_token::MAX_TTL)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--ttl {ttl:?}: use a duration such as 8h or 30m, at most 7 days (168h)"
                    )
                })?;
            if !pki_dir.join(fleetgate_hub::identity::CA_KEY).is_file() {
                anyhow::bail!(
                    "{} holds no hub CA; create it with `fleetgate-hub ca init --pki-dir {}`",
                    pki_dir.display(),
                    pki_dir.display()
                );
            }
            let key = fleetgate_hub::enroll::token::TokenKey::load_or_create(&pki_dir)?;
            let expires = fleetgate_hub::fleet::unix_now() as u64 + ttl.as_secs();
            let t =
                operator_token::mint(&operator_token::operator_key(&key), &name, role, expires)?;
            eprintln!(
                "operator token for {name} ({}), valid {}s:",
                role.as_str(),
                ttl.as_secs()
            );
            println!("{t}");
        }
        Command::Admin {
            url,
            token,
            output,
            command,
        } => {
            use fleetgate_hub::admin::client;
            let (method, path, body) = client::request_for(&command);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let answer = rt.block_on(client::call(&url, &token, method, &path, body))?;
            match output {
                client::Output::Json => println!("{}", serde_json::to_string_pretty(&answer)?),
                client::Output::Table => {
                    let route = path.split('?').next().unwrap_or_default();
                    print!("{}", client::table(&answer, client::columns(route)));
                }
            }
        }
        Command::Ca { command } => match command {
            CaCommand::Init {
                pki_dir,
                server_sans,
                if_missing,
            } => {
                if if_missing && pki_dir.join(fleetgate_hub::identity::CA_KEY).is_file() {
                    println!("{} already holds a CA; left as it is", pki_dir.display());
                    return Ok(());
                }
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

/// `fleetgate-hub run`: serves until SIGTERM or SIGINT, re-reading the configuration on SIGHUP.
async fn run_hub(
    config: fleetgate_hub::config::Config,
    path: std::path::PathBuf,
) -> anyhow::Result<()> {
    // SIGHUP re-reads the configuration file (so does a change of its contents).
    let (hup_tx, hup_rx) = tokio::sync::mpsc::channel(1);
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot install a SIGHUP handler")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let _ = hup_tx.try_send(());
        }
    });
    let source = fleetgate_hub::reload::ReloadSource {
        path,
        poll: fleetgate_hub::reload::DEFAULT_POLL,
        trigger: Some(hup_rx),
    };
    fleetgate_hub::run::run_reloading(config, Some(source), shutdown_signal()).await?;
    anyhow::Ok(())
}
