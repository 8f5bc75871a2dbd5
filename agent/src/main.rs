//! `hostscope-agent`: serves this host's processes and network interfaces.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use hostscope_agent::{
    backend,
    config::{Config, Flags, LogFormat, Security},
    server::Agent,
    service::{Inspector, audit::Audit},
};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let flags = Flags::parse();
    match run(flags).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("hostscope-agent: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(flags: Flags) -> anyhow::Result<()> {
    let config = Config::resolve(flags)?;
    init_logging(config.log_format);
    // Exactly one crypto provider, chosen here, so that rustls never has to
    // guess between ring and another one pulled in by a dependency.
    let _ = rustls::crypto::ring::default_provider().install_default();
    hostscope_agent::server::log_fd_limit(&config.limits);

    let backend = backend::native(config.procfs.clone(), config.sysfs.clone())
        .with_context(|| format!("opening procfs at {}", config.procfs.display()))?;
    let tls = match &config.security {
        Security::MutualTls(files) => Some(files.server_config()?),
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
        mode => tracing::warn!(
            watch_mode = mode,
            "process events by polling the process table: processes shorter than the poll \
             interval are missed and exit codes are unknown (netlink needs CAP_NET_ADMIN)"
        ),
    }
    Agent::new(inspector, tls, config.limits.clone())
        .serve(listener, shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
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
