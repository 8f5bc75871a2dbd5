//! The `hostscope-agent` program: its command line, and serving until a
//! signal says stop. The binary's `main` is [`main`]; the end-to-end tests
//! build the same program as a binary of their own crate.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use crate::{
    backend,
    config::{Config, Flags, LogFormat, Security},
    health::{self, HealthArgs},
    server::Agent,
    service::{Inspector, audit::Audit},
    tls::{self, ReloadableTls},
};
use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

// The command line: the serving flags (whose help texts come with them), or
// one of the subcommands.
#[derive(Debug, Parser)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(flatten)]
    flags: Flags,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ask a running agent's health endpoint (see --health-listen) whether
    /// it serves: prints the status and exits 0 for SERVING, 1 otherwise.
    /// For container probes and host monitoring.
    Health(HealthArgs),
    /// Print the completion script for SHELL (bash, zsh, fish, elvish,
    /// powershell) to standard output.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (hostscope-agent.1 and one per subcommand) into
    /// DIR; packaging uses it.
    #[command(hide = true)]
    Manpages {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// Threads of the blocking pool besides one per scan permit: for the quick
/// reads outside the scans (GetHost, PidExists, interfaces, signals,
/// certificate files).
const BLOCKING_THREADS_BESIDES_SCANS: usize = 16;

/// The `hostscope-agent` binary: parses the process's arguments, then
/// serves, answers `health`, or prints completions or man pages; returns
/// the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.flags).map(|()| ExitCode::SUCCESS),
        Some(Command::Health(args)) => {
            runtime(BLOCKING_THREADS_BESIDES_SCANS).and_then(|rt| rt.block_on(check_health(&args)))
        }
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "hostscope-agent",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Manpages { dir }) => clap_mangen::generate_to(Cli::command(), &dir)
            .with_context(|| format!("writing man pages into {}", dir.display()))
            .map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|e| {
        tracing::error!("{e:#}");
        eprintln!("hostscope-agent: {e:#}");
        ExitCode::FAILURE
    })
}

/// `hostscope-agent health`: one line on stdout, the exit code for probes.
async fn check_health(args: &HealthArgs) -> anyhow::Result<ExitCode> {
    let status = health::check(args).await?;
    println!("{}", status.as_str_name());
    Ok(if status == health::ServingStatus::Serving {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A multi-threaded runtime whose blocking pool holds at most
/// `blocking_threads` threads; blocking work beyond them waits its turn
/// (tokio's default, 512, would let a burst of calls start hundreds of
/// threads).
fn runtime(blocking_threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking_threads.max(1))
        .build()
        .context("starting the async runtime")
}

/// Serves until a signal says stop, on a runtime sized by the
/// configuration.
fn serve(flags: Flags) -> anyhow::Result<()> {
    let config = Config::resolve(flags)?;
    let blocking = config
        .service
        .max_concurrent_scans
        .saturating_add(BLOCKING_THREADS_BESIDES_SCANS);
    runtime(blocking)?.block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    init_logging(config.log_format);
    // Exactly one crypto provider, chosen here, so that rustls never has to
    // guess between ring and another one pulled in by a dependency.
    let _ = rustls::crypto::ring::default_provider().install_default();
    crate::server::log_fd_limit(&config.limits);

    let backend = backend::native(config.procfs.clone(), config.sysfs.clone())
        .with_context(|| format!("opening procfs at {}", config.procfs.display()))?;
    // Installed before anything can take a while, so that an early SIGHUP
    // (a certificate rotation racing the start) does not kill the agent.
    let hangups = hangups();
    let tls = match &config.security {
        Security::MutualTls(files) => Some(Arc::new(files.load_detached().await?)),
        Security::Plaintext => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let local = listener.local_addr().context("reading the bound address")?;
    tracing::info!(
        listen = %local,
        security = if tls.is_some() { "mutual-tls" } else { "plaintext" },
        procfs = %config.procfs.display(),
        environ = config.service.environ,
        version = env!("CARGO_PKG_VERSION"),
        "hostscope-agent serving"
    );
    if tls.is_none() {
        tracing::warn!("serving plaintext without client authentication: for local use only");
    }

    let audit = match &config.audit_file {
        Some(path) => Audit::to_file(path)?,
        None => Audit::log_only(),
    };
    if config.service.policy.operators.is_empty() {
        tracing::info!("no operator configured: SignalProcess is refused to every client");
    } else {
        tracing::info!(operators = ?config.service.policy.operators, "operators may signal processes");
    }
    let inspector = Inspector::new(Arc::from(backend), config.service.clone()).with_audit(audit);
    match inspector.watch_mode() {
        "netlink" => tracing::info!(
            watch_mode = "netlink",
            "process events from the kernel's process connector"
        ),
        "kqueue" => tracing::info!(
            watch_mode = "kqueue",
            "process events from kqueue, new processes found by polling the table"
        ),
        mode => tracing::warn!(
            watch_mode = mode,
            "process events by polling the process table: processes shorter than the poll \
             interval are missed and exit codes are unknown (netlink needs CAP_NET_ADMIN)"
        ),
    }

    let (stop, stopping) = watch::channel(());
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(());
    });
    let health = match config.health_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening for health checks on {addr}"))?;
            tracing::info!(health_listen = %addr, "plaintext health endpoint serving");
            Some(tokio::spawn(health::serve(
                listener,
                stopped(stopping.clone()),
            )))
        }
        None => None,
    };
    tokio::spawn(keep_tls_current(tls.clone(), hangups));
    let client_ca = tls.as_ref().map(|tls| tls.client_ca());
    Agent::new(
        inspector,
        tls.map(|tls| tls.server_config()),
        config.limits.clone(),
    )
    .check_client_ca(client_ca)
    .serve(listener, stopped(stopping))
    .await?;
    if let Some(health) = health {
        health
            .await
            .context("health endpoint task")?
            .context("health endpoint")?;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves once shutdown has begun.
async fn stopped(mut stopping: watch::Receiver<()>) {
    // An error means the sender is gone, which also means stop.
    let _ = stopping.changed().await;
}

/// SIGHUP, where the platform has it. `None` if it cannot be watched: the
/// certificate files are still polled.
#[cfg(unix)]
fn hangups() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup())
        .inspect_err(
            |e| tracing::warn!(error = %e, "cannot watch SIGHUP; TLS files are only polled"),
        )
        .ok()
}

#[cfg(not(unix))]
fn hangups() -> Option<()> {
    None
}

/// Reloads the TLS files on SIGHUP and whenever they change on disk. With
/// plaintext there is nothing to reload, but SIGHUP is still caught so that
/// it does not end the agent.
#[cfg(unix)]
async fn keep_tls_current(
    tls: Option<Arc<ReloadableTls>>,
    hangups: Option<tokio::signal::unix::Signal>,
) {
    let on_hangup = async {
        let Some(mut hangups) = hangups else {
            return;
        };
        while hangups.recv().await.is_some() {
            match &tls {
                Some(tls) => tls.reload_and_log("SIGHUP").await,
                None => tracing::info!("SIGHUP: serving plaintext, no TLS files to reload"),
            }
        }
    };
    let polling = async {
        if let Some(tls) = &tls {
            tls.watch_files(tls::RELOAD_POLL).await;
        }
    };
    tokio::join!(on_hangup, polling);
}

#[cfg(not(unix))]
async fn keep_tls_current(tls: Option<Arc<ReloadableTls>>, _hangups: Option<()>) {
    if let Some(tls) = tls {
        tls.watch_files(tls::RELOAD_POLL).await;
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Resolves on SIGTERM or SIGINT; the server then drains calls in flight.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; stopping on SIGINT only");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down: finishing calls in flight");
}
