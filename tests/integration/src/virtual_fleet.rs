//! A fleet of virtual hosts in one process: thousands of listeners, one on
//! each of 127.1.0.1, 127.1.0.2, ..., behind one TLS configuration and one
//! gRPC server. Every host answers with the agent's own service over a
//! listing of this machine's processes read once per field selection and
//! repeated to a fixed count, so that a fan-out over 10,000 hosts can be
//! measured on one machine without 10,000 scans of `/proc`.
//!
//! The connections are real: a TCP connection and a mutual-TLS handshake
//! to every address, then HTTP/2 and gRPC. The agent's connection limits
//! (see `hostscope_agent::server`) are left out, since every client of the
//! simulation comes from 127.0.0.1.
//!
//! Used by `hostscope-fleet-sim virtual` and `cargo xtask bench fanout`.

use std::{
    fmt::Write as _,
    net::{Ipv4Addr, SocketAddr},
    ops::ControlFlow,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use hostscope_agent::{
    backend::{self, Backend, Error, EventSource, FieldSet, HostInfo, NetInterface, ProcessInfo},
    server::TlsFiles,
    service::{self, Inspector, Options},
};
use hostscope_client::pki::{self, CertRole};
use hostscope_proto as pb;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot},
    task::{JoinHandle, JoinSet},
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;

use crate::sim::{prepare_dir, write_atomically};

/// The name every virtual host's certificate carries, and the inventory's
/// `server_name` for each of them.
pub const SERVER_NAME: &str = "virtual-host";

/// Longest a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pids of the repeated listing: copy `k` of a process has its pid plus
/// `k` times this (Linux's largest pid_max), so every pid stays unique.
const PID_STRIDE: u32 = 1 << 22;

/// Descriptors kept free beyond the listeners, for the connections of a
/// client (256 at a time by default) and the process itself.
const SPARE_DESCRIPTORS: u64 = 2048;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct VirtualSpec {
    /// Virtual hosts, each its own address on 127.1.0.0/16 and beyond.
    pub hosts: usize,
    /// Processes each host lists.
    pub processes: usize,
    /// Where the PKI (`dir/pki`) and the inventory (`dir/inventory.toml`)
    /// go; created if missing.
    pub dir: PathBuf,
}

/// A running virtual fleet. Dropping it stops the listeners and the
/// server.
pub struct VirtualFleet {
    addrs: Vec<SocketAddr>,
    dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    listeners: JoinSet<()>,
}

// === impl VirtualFleet ===

impl VirtualFleet {
    /// Makes the PKI, binds every listener, starts the server on the
    /// current tokio runtime and writes the inventory, by an atomic rename
    /// once every listener is bound.
    pub async fn start(spec: VirtualSpec) -> Result<VirtualFleet> {
        if spec.hosts == 0 || spec.hosts > 254 * 256 * 126 {
            bail!("--hosts must be from 1 to {}", 254 * 256 * 126);
        }
        let limit = hostscope_agent::server::raise_fd_limit()
            .context("raising the open-files limit")?
            .after;
        let needed = spec.hosts as u64 + SPARE_DESCRIPTORS;
        if limit < needed {
            bail!(
                "{} virtual hosts need about {needed} open files, and the limit is {limit}: \
                 raise the hard limit (ulimit -Hn)",
                spec.hosts
            );
        }
        prepare_dir(&spec.dir)?;
        let pki_dir = spec.dir.join("pki");
        let tls = {
            let pki_dir = pki_dir.clone();
            tokio::task::spawn_blocking(move || make_pki(&pki_dir))
                .await
                .context("the certificate worker panicked")??
        };
        let real: Arc<dyn Backend> = Arc::from(
            backend::native("/proc".into(), "/sys".into()).context("opening /proc and /sys")?,
        );
        let canned = Canned {
            real,
            processes: spec.processes,
            listings: Mutex::new(Vec::new()),
        };
        let inspector = Inspector::new(
            Arc::new(canned),
            Options {
                // The listings are in memory: no reason to queue them.
                max_concurrent_scans: 1024,
                max_buffered_bytes: 1 << 30,
                ..Options::default()
            },
        );

        let (tx, rx) = mpsc::channel(1024);
        let acceptor = TlsAcceptor::from(tls);
        let mut listeners = JoinSet::new();
        let mut addrs = Vec::with_capacity(spec.hosts);
        let mut port = 0;
        for i in 0..spec.hosts {
            let ip = address(i);
            let listener = TcpListener::bind((ip, port))
                .await
                .with_context(|| format!("binding {ip}:{port}"))?;
            let addr = listener.local_addr()?;
            // Every host on the first host's port, so that the listeners
            // take no ephemeral ports from the clients.
            port = addr.port();
            addrs.push(addr);
            listeners.spawn(accept_loop(listener, acceptor.clone(), tx.clone()));
        }
        drop(tx);

        let router = tonic::transport::Server::builder().add_service(
            pb::host_inspector_server::HostInspectorServer::new(inspector)
                .max_encoding_message_size(service::MAX_MESSAGE_BYTES),
        );
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let stopped = async {
                let _ = stopped.await;
            };
            if let Err(e) = router
                .serve_with_incoming_shutdown(ReceiverStream::new(rx), stopped)
                .await
            {
                eprintln!("fleet-sim: the server stopped: {e}");
            }
        });
        let fleet = VirtualFleet {
            addrs,
            dir: spec.dir,
            shutdown: Some(shutdown),
            server: Some(server),
            listeners,
        };
        write_atomically(&fleet.inventory(), inventory_toml(&fleet.addrs).as_bytes())?;
        Ok(fleet)
    }

    /// Every host's address, in inventory order.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// `dir/inventory.toml`.
    pub fn inventory(&self) -> PathBuf {
        self.dir.join("inventory.toml")
    }

    /// `dir/pki`: the fleet's `ca.pem`, and `client.pem` and
    /// `client-key.pem` for the client.
    pub fn pki_dir(&self) -> PathBuf {
        self.dir.join("pki")
    }

    /// Stops accepting, then lets the server finish its calls in flight.
    pub async fn stop(mut self) {
        self.listeners.abort_all();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        }
    }
}

impl Drop for VirtualFleet {
    fn drop(&mut self) {
        self.listeners.abort_all();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The address of virtual host `i`: 127.1.0.1 onwards, skipping the .0
/// and .255 of every /24.
fn address(i: usize) -> Ipv4Addr {
    let (block, host) = (i / 254, i % 254 + 1);
    Ipv4Addr::new(
        127,
        1 + (block / 256) as u8,
        (block % 256) as u8,
        host as u8,
    )
}

/// The fleet CA, the client certificate, and one server certificate for
/// [`SERVER_NAME`] that every host presents; returns the server's TLS
/// configuration, built by the agent's own code.
fn make_pki(dir: &Path) -> Result<Arc<rustls::ServerConfig>> {
    pki::init(dir, true).context("making the fleet CA")?;
    pki::issue(dir, "client", CertRole::Client, &[]).context("issuing the client certificate")?;
    pki::issue(dir, SERVER_NAME, CertRole::Server, &[])
        .context("issuing the server certificate")?;
    let files = TlsFiles {
        cert: pki::cert_path(dir, SERVER_NAME),
        key: pki::key_path(dir, SERVER_NAME),
        client_ca: pki::cert_path(dir, "ca"),
    };
    files
        .server_config()
        .context("the virtual hosts' TLS configuration")
}

/// Accepts on one listener, completing each TLS handshake on a task of its
/// own, and hands the connections to the server.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<Result<TlsStream<TcpStream>, std::io::Error>>,
) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            // Out of descriptors or the like: pause instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            // A failed handshake is the client's to report.
            if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            {
                let _ = tx.send(Ok(tls)).await;
            }
        });
    }
}

/// One `[[hosts]]` table a virtual host, named `vhost-00001` onwards.
fn inventory_toml(addrs: &[SocketAddr]) -> String {
    let mut out = String::from(
        "# Virtual hosts written by hostscope-fleet-sim virtual: one process, one address \
         each on 127.0.0.0/8.\n",
    );
    for (i, addr) in addrs.iter().enumerate() {
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "\n[[hosts]]\nname = \"vhost-{n:05}\"\naddress = \"{addr}\"\n\
             server_name = \"{SERVER_NAME}\"\nlabels = {{ sim = \"virtual\" }}\n",
            n = i + 1,
        );
    }
    out
}

// === impl Canned ===

/// A backend whose process listing is this machine's, read once for each
/// field selection and repeated (with pids made unique) to `processes`
/// entries; host facts and interfaces are the machine's own.
struct Canned {
    real: Arc<dyn Backend>,
    processes: usize,
    listings: Mutex<Vec<(FieldSet, Arc<[ProcessInfo]>)>>,
}

impl Canned {
    fn listing(&self, fields: FieldSet) -> Result<Arc<[ProcessInfo]>, Error> {
        // A panic elsewhere leaves the cache as valid as before.
        let mut listings = self.listings.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, listing)) = listings.iter().find(|(f, _)| *f == fields) {
            return Ok(Arc::clone(listing));
        }
        let mut read = Vec::new();
        self.real.for_each_process(fields, &mut |p| {
            read.push(p);
            ControlFlow::Continue(())
        })?;
        if read.is_empty() {
            return Err(Error::Unsupported {
                what: "a listing of no process",
            });
        }
        let listing: Arc<[ProcessInfo]> = (0..self.processes)
            .map(|i| {
                let mut p = read[i % read.len()].clone();
                p.pid = p.pid.wrapping_add((i / read.len()) as u32 * PID_STRIDE);
                p
            })
            .collect();
        listings.push((fields, Arc::clone(&listing)));
        Ok(listing)
    }
}

impl Backend for Canned {
    fn host(&self) -> Result<HostInfo, Error> {
        self.real.host()
    }

    fn for_each_process(
        &self,
        fields: FieldSet,
        visit: &mut dyn FnMut(ProcessInfo) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        for p in self.listing(fields)?.iter() {
            if visit(p.clone()).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn process(&self, pid: u32, fields: FieldSet) -> Result<ProcessInfo, Error> {
        self.listing(fields)?
            .iter()
            .find(|p| p.pid == pid)
            .cloned()
            .ok_or(Error::NoSuchProcess { pid })
    }

    fn pid_exists(&self, pid: u32) -> Result<bool, Error> {
        Ok(self.listing(FieldSet::EMPTY)?.iter().any(|p| p.pid == pid))
    }

    fn net_interfaces(&self) -> Result<Vec<NetInterface>, Error> {
        self.real.net_interfaces()
    }

    fn signal(&self, _pid: u32, _signal: i32, _expected: Option<f64>) -> Result<(), Error> {
        Err(Error::Unsupported {
            what: "signalling a virtual host's process",
        })
    }

    fn events(
        &self,
        _mode: backend::WatchMode,
        _poll_interval: Duration,
    ) -> Result<Box<dyn EventSource>, Error> {
        Err(Error::Unsupported {
            what: "watching a virtual host's processes",
        })
    }
}
