//! `hostscope-fleet-sim`: a simulated fleet of real agents on 127.0.0.1 for
//! trying fleet queries and benchmarking them (`cargo xtask fleet-sim`,
//! `cargo xtask bench fleet`), the floor such a query is measured
//! against (`handshake-floor`), and a throwaway PostgreSQL cluster for
//! `cargo xtask bench collect` (`postgres`).

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use hostscope_integration::{
    pg::PgCluster,
    sim::{FleetSim, Kind, SimSpec},
    virtual_fleet::{VirtualFleet, VirtualSpec},
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio::{
    io::AsyncWriteExt,
    net::TcpStream,
    signal::unix::{SignalKind, signal},
    task::JoinSet,
};
use tokio_rustls::TlsConnector;

/// Real hostscope agents (each with its own certificate and port on
/// 127.0.0.1) plus broken hosts, with an inventory file naming them all.
#[derive(Debug, Parser)]
#[command(
    name = "hostscope-fleet-sim",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(flatten)]
    run: RunArgs,
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Real agent servers, including the --wrong-ca ones.
    #[arg(long, required = true)]
    agents: Option<usize>,
    /// Extra inventory entries whose port is closed.
    #[arg(long, default_value_t = 0)]
    closed: usize,
    /// Extra inventory entries that accept TCP and never answer.
    #[arg(long, default_value_t = 0)]
    silent: usize,
    /// How many of the agents present a certificate from another CA.
    #[arg(long, default_value_t = 0)]
    wrong_ca: usize,
    /// Where the PKI (DIR/pki) and the inventory (DIR/inventory.toml) go.
    #[arg(long, required = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Stop after this long ("90s", "10m"); SIGINT and SIGTERM stop sooner.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// The floor of a fleet query: one TCP connect and mutual-TLS handshake
    /// (ALPN h2, the fleet's client certificate) to every host of an
    /// inventory, then close; no gRPC. Prints the wall time to stderr; exits 2
    /// when a host failed.
    HandshakeFloor(FloorArgs),
    /// Thousands of virtual hosts in this one process: a listener on each of
    /// 127.1.0.1, 127.1.0.2, ... with real mutual TLS, all answering with the
    /// agent's service over a canned listing (this machine's processes read
    /// once per field selection, repeated to --processes) instead of a scan
    /// of /proc per call.
    Virtual(VirtualArgs),
    /// A throwaway PostgreSQL cluster, as the store's tests start one (run
    /// as nobody, a Unix socket only, no TCP): prints `url: URL` once it
    /// accepts connections, and stops it, killing its processes, when
    /// stdin ends, on SIGINT or SIGTERM, or after --duration.
    Postgres(PostgresArgs),
}

#[derive(Debug, Args)]
struct PostgresArgs {
    /// Stop after this long ("90s", "10m") even if stdin is still open.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
}

#[derive(Debug, Args)]
struct VirtualArgs {
    /// Virtual hosts, each on an address of its own.
    #[arg(long)]
    hosts: usize,
    /// Processes each host lists.
    #[arg(long, default_value_t = 600)]
    processes: usize,
    /// Where the PKI (DIR/pki) and the inventory (DIR/inventory.toml) go.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Stop after this long ("90s", "10m"); SIGINT and SIGTERM stop sooner.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
}

#[derive(Debug, Args)]
struct FloorArgs {
    /// The inventory written by the simulator.
    #[arg(long, value_name = "FILE")]
    inventory: PathBuf,
    /// The directory with ca.pem, client.pem and client-key.pem.
    #[arg(long, value_name = "DIR")]
    pki: PathBuf,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Longest one host's connect and handshake may take.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hostscope-fleet-sim: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.mode {
            Some(Mode::HandshakeFloor(args)) => handshake_floor(args).await,
            Some(Mode::Virtual(args)) => simulate_virtual(args).await.map(|()| true),
            Some(Mode::Postgres(args)) => postgres(args).await.map(|()| true),
            None => simulate(cli.run).await.map(|()| true),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("hostscope-fleet-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// === simulate ===

async fn simulate(args: RunArgs) -> Result<()> {
    // clap enforces both unless a subcommand is given.
    let (Some(agents), Some(dir)) = (args.agents, args.dir) else {
        anyhow::bail!("--agents and --dir are required");
    };
    let dir = std::path::absolute(&dir).with_context(|| format!("{}", dir.display()))?;
    let started = Instant::now();
    let spec = SimSpec {
        agents,
        closed: args.closed,
        silent: args.silent,
        wrong_ca: args.wrong_ca,
        dir,
    };
    let sim = FleetSim::start(spec).await?;
    let counts: Vec<String> = [Kind::Good, Kind::WrongCa, Kind::Silent, Kind::Closed]
        .into_iter()
        .map(|kind| format!("{} {}", kind.as_str(), sim.addresses(kind).len()))
        .collect();
    let pki = sim.pki_dir();
    println!(
        "fleet-sim: {} hosts on 127.0.0.1 ({}); ready in {:.1} s, stopping after {}",
        sim.hosts().len(),
        counts.join(", "),
        started.elapsed().as_secs_f64(),
        humantime::format_duration(args.duration),
    );
    println!("inventory: {}", sim.inventory().display());
    // `cargo xtask fleet-sim` builds the CLI beside this binary; name it by
    // its path, since a freshly built one is on no PATH.
    let cli = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("hostscope"))
        .filter(|cli| cli.exists())
        .map_or_else(|| "hostscope".to_owned(), |cli| cli.display().to_string());
    println!(
        "try: {cli} --inventory {} --ca {} --cert {} --key {} host",
        sim.inventory().display(),
        pki.join("ca.pem").display(),
        pki.join("client.pem").display(),
        pki.join("client-key.pem").display(),
    );

    let why = stopped(args.duration).await?;
    println!("fleet-sim: stopping ({why})");
    sim.stop().await;
    Ok(())
}

/// Waits for `duration`, SIGINT or SIGTERM; says which came.
async fn stopped(duration: Duration) -> Result<&'static str> {
    let mut term = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    Ok(tokio::select! {
        () = tokio::time::sleep(duration) => "the duration is over",
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    })
}

// === virtual ===

async fn simulate_virtual(args: VirtualArgs) -> Result<()> {
    let dir = std::path::absolute(&args.dir).with_context(|| format!("{}", args.dir.display()))?;
    let started = Instant::now();
    let fleet = VirtualFleet::start(VirtualSpec {
        hosts: args.hosts,
        processes: args.processes,
        dir,
    })
    .await?;
    let addrs = fleet.addresses();
    println!(
        "fleet-sim: {} virtual hosts in one process, {} to {}; each lists {} processes \
         (this machine's, read once per field selection and repeated, not a scan per call); \
         ready in {:.1} s, stopping after {}",
        addrs.len(),
        addrs.first().map_or_else(String::new, ToString::to_string),
        addrs.last().map_or_else(String::new, ToString::to_string),
        args.processes,
        started.elapsed().as_secs_f64(),
        humantime::format_duration(args.duration),
    );
    println!("inventory: {}", fleet.inventory().display());
    let why = stopped(args.duration).await?;
    println!("fleet-sim: stopping ({why})");
    fleet.stop().await;
    Ok(())
}

// === postgres ===

async fn postgres(args: PostgresArgs) -> Result<()> {
    let cluster = tokio::task::spawn_blocking(PgCluster::start).await??;
    cluster.create_db("fleet")?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "url: {}", cluster.url("fleet"))?;
        stdout.flush()?;
    }
    // Whoever started this holds stdin open while it needs the cluster:
    // its end, even by a crash, stops the cluster.
    // On a thread of its own rather than the runtime's blocking pool,
    // which would wait for it at exit.
    let (tx, eof) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = tx.send(());
    });
    let why = tokio::select! {
        _ = eof => "stdin ended",
        why = stopped(args.duration) => why?,
    };
    eprintln!("fleet-sim postgres: stopping ({why})");
    drop(cluster);
    Ok(())
}

// === handshake-floor ===

#[derive(serde::Deserialize)]
struct Inventory {
    hosts: Vec<InventoryHost>,
}

#[derive(serde::Deserialize)]
struct InventoryHost {
    name: String,
    address: String,
    server_name: Option<String>,
}

/// Handshakes with every host; true when all of them succeeded.
async fn handshake_floor(args: FloorArgs) -> Result<bool> {
    let text = std::fs::read_to_string(&args.inventory)
        .with_context(|| format!("reading {}", args.inventory.display()))?;
    let inventory: Inventory =
        toml::from_str(&text).with_context(|| format!("{}", args.inventory.display()))?;
    let connector = TlsConnector::from(client_config(&args.pki)?);
    let total = inventory.hosts.len();
    let concurrency = args.concurrency.max(1);

    let started = Instant::now();
    let mut in_flight = JoinSet::new();
    let mut failures = Vec::new();
    let mut hosts = inventory.hosts.into_iter();
    loop {
        while in_flight.len() < concurrency {
            let Some(host) = hosts.next() else { break };
            let connector = connector.clone();
            let timeout = args.timeout;
            in_flight.spawn(async move {
                let shaken = tokio::time::timeout(timeout, handshake(&connector, &host)).await;
                match shaken {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(format!("{}: {e:#}", host.name)),
                    Err(_) => Err(format!("{}: timed out after {timeout:?}", host.name)),
                }
            });
        }
        match in_flight.join_next().await {
            Some(Ok(Ok(()))) => {}
            Some(Ok(Err(failure))) => failures.push(failure),
            Some(Err(e)) => failures.push(format!("a handshake task failed: {e}")),
            None => break,
        }
    }
    let elapsed = started.elapsed();
    // On stderr, like the summary of a `hostscope` fleet query.
    eprintln!(
        "handshake-floor: {total} hosts, {} ok, {} failed, {:.1} ms ({:.0} hosts/s)",
        total - failures.len(),
        failures.len(),
        elapsed.as_secs_f64() * 1e3,
        total as f64 / elapsed.as_secs_f64(),
    );
    for failure in failures.iter().take(10) {
        eprintln!("  {failure}");
    }
    Ok(failures.is_empty())
}

/// What a fleet client's TLS does: the fleet CA as the only root, the
/// fleet's client certificate, and HTTP/2 by ALPN as gRPC asks.
fn client_config(pki: &Path) -> Result<Arc<rustls::ClientConfig>> {
    let pem = |name: &str| -> Result<Vec<u8>> {
        let path = pki.join(name);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&pem("ca.pem")?) {
        roots.add(ca.context("ca.pem")?).context("ca.pem")?;
    }
    let chain = CertificateDer::pem_slice_iter(&pem("client.pem")?)
        .collect::<Result<Vec<_>, _>>()
        .context("client.pem")?;
    let key = PrivateKeyDer::from_pem_slice(&pem("client-key.pem")?).context("client-key.pem")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .context("the client certificate and key")?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// One TCP connect and TLS handshake, then a close_notify.
async fn handshake(connector: &TlsConnector, host: &InventoryHost) -> Result<()> {
    let name = host.server_name.as_deref().unwrap_or(&host.name).to_owned();
    let server_name = ServerName::try_from(name).context("server name")?;
    let tcp = TcpStream::connect(&host.address)
        .await
        .with_context(|| format!("connecting to {}", host.address))?;
    tcp.set_nodelay(true)?;
    let mut tls = connector
        .connect(server_name, tcp)
        .await
        .context("TLS handshake")?;
    tls.shutdown().await.context("closing")?;
    Ok(())
}
