//! A simulated fleet in one process: many real agents, each with its own
//! certificate and port on 127.0.0.1, plus the kinds of broken hosts a real
//! fleet has (a closed port, a host that accepts TCP and never answers, an
//! agent whose certificate comes from another CA), and an inventory file
//! naming them all.
//!
//! Used by `cargo xtask fleet-sim`, `cargo xtask bench fleet` (through the
//! `hostscope-fleet-sim` binary) and the fleet tests.

use std::{
    collections::VecDeque,
    fmt::Write as _,
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use hostscope_agent::{
    backend::{self, Backend},
    server::{Agent, Limits, TlsFiles},
    service::{Inspector, Options},
};
use hostscope_client::pki::{self, CertRole};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

/// A file whose presence says a directory was made by the simulator, so
/// that it may clear its old PKI there; any other non-empty directory is
/// refused rather than overwritten.
const MARKER: &str = ".hostscope-fleet-sim";

/// Sockets a silent host holds at once; older ones are closed when more
/// arrive, so a flood of connections cannot exhaust file descriptors.
const SILENT_MAX_HELD: usize = 4096;

/// How long [`FleetSim::stop`] waits for the servers to finish their
/// in-flight calls before abandoning them.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What to simulate. Hosts are named `sim-0001`, `sim-0002`, ... in this
/// order: good agents, wrong-CA agents, silent hosts, closed ports.
#[derive(Debug, Clone)]
pub struct SimSpec {
    /// Real agent servers, the wrong-CA ones included.
    pub agents: usize,
    /// Inventory entries whose port is closed (connections are refused).
    pub closed: usize,
    /// Inventory entries that accept TCP and never answer.
    pub silent: usize,
    /// How many of `agents` present a certificate from another CA (they
    /// still trust the fleet's client certificates).
    pub wrong_ca: usize,
    /// Where the PKI (`dir/pki`) and the inventory (`dir/inventory.toml`)
    /// go; created if missing.
    pub dir: PathBuf,
}

/// What a simulated host does when a client connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A real agent with a certificate from the fleet CA.
    Good,
    /// Nothing listens on the port.
    Closed,
    /// Accepts TCP and never reads or writes.
    Silent,
    /// A real agent whose certificate comes from another CA.
    WrongCa,
}

impl Kind {
    /// The name used in the inventory's `kind` label and group.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Good => "good",
            Kind::Closed => "closed",
            Kind::Silent => "silent",
            Kind::WrongCa => "wrong-ca",
        }
    }
}

/// One inventory entry of the simulated fleet.
#[derive(Debug, Clone)]
pub struct SimHost {
    /// The host's name, also its certificate's DNS name (`sim-0001`).
    pub name: String,
    /// Where it listens (or, for [`Kind::Closed`], where nothing does).
    pub addr: SocketAddr,
    /// What it does.
    pub kind: Kind,
}

/// A running simulated fleet. Dropping it signals every server to stop;
/// [`FleetSim::stop`] also waits for them.
pub struct FleetSim {
    hosts: Vec<SimHost>,
    dir: PathBuf,
    shutdown: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

// === impl FleetSim ===

impl FleetSim {
    /// Makes the PKI, starts the servers on the current tokio runtime (a
    /// multi-thread one, for a fleet of any size), and writes the
    /// inventory. The inventory appears (by an atomic rename) only once
    /// every server listens, so its existence means the fleet is ready.
    pub async fn start(spec: SimSpec) -> Result<FleetSim> {
        if spec.wrong_ca > spec.agents {
            bail!(
                "--wrong-ca {} is more than --agents {}: wrong-CA hosts are agents",
                spec.wrong_ca,
                spec.agents
            );
        }
        raise_fd_limit().context("raising the open-files limit")?;
        prepare_dir(&spec.dir)?;

        let names: Vec<String> = (1..=spec.agents + spec.closed + spec.silent)
            .map(|i| format!("sim-{i:04}"))
            .collect();
        let good = spec.agents - spec.wrong_ca;
        let agent_names = names[..spec.agents].to_vec();
        let pki_dir = spec.dir.join("pki");
        let configs = tokio::task::spawn_blocking(move || {
            make_pki(&pki_dir, &agent_names, good).map(|configs| (configs, agent_names))
        })
        .await
        .context("the certificate workers panicked")??;
        let (configs, agent_names) = configs;

        let backend: Arc<dyn Backend> = Arc::from(
            backend::native("/proc".into(), "/sys".into())
                .context("opening /proc and /sys for the agents")?,
        );
        let mut sim = FleetSim {
            hosts: Vec::with_capacity(names.len()),
            dir: spec.dir.clone(),
            shutdown: Vec::with_capacity(spec.agents + spec.silent),
            tasks: Vec::with_capacity(spec.agents + spec.silent),
        };
        for (i, (name, tls)) in agent_names.into_iter().zip(configs).enumerate() {
            let listener = bind().await?;
            let kind = if i < good { Kind::Good } else { Kind::WrongCa };
            sim.push(name, listener.local_addr()?, kind);
            let inspector = Inspector::new(Arc::clone(&backend), Options::default());
            let agent = Agent::new(inspector, Some(tls), Limits::default());
            let (tx, rx) = oneshot::channel::<()>();
            let addr = listener.local_addr()?;
            sim.shutdown.push(tx);
            sim.tasks.push(tokio::spawn(async move {
                let stopped = async {
                    let _ = rx.await;
                };
                if let Err(e) = agent.serve(listener, stopped).await {
                    eprintln!("fleet-sim: the agent on {addr} stopped: {e}");
                }
            }));
        }
        let mut names = names.into_iter().skip(spec.agents);
        for name in names.by_ref().take(spec.silent) {
            let listener = bind().await?;
            sim.push(name, listener.local_addr()?, Kind::Silent);
            let (tx, rx) = oneshot::channel::<()>();
            sim.shutdown.push(tx);
            sim.tasks.push(tokio::spawn(hold_silently(listener, rx)));
        }
        // Closed ports last: a port released earlier could otherwise be
        // handed to one of the listeners above.
        for name in names.take(spec.closed) {
            let addr = bind().await?.local_addr()?;
            sim.push(name, addr, Kind::Closed);
        }
        // Keep the inventory in name order whatever the kinds.
        sim.hosts.sort_by(|a, b| a.name.cmp(&b.name));
        write_atomically(&sim.inventory(), inventory_toml(&sim.hosts).as_bytes())?;
        Ok(sim)
    }

    fn push(&mut self, name: String, addr: SocketAddr, kind: Kind) {
        self.hosts.push(SimHost { name, addr, kind });
    }

    /// Every simulated host, in name order.
    pub fn hosts(&self) -> &[SimHost] {
        &self.hosts
    }

    /// The addresses of the hosts of one kind.
    pub fn addresses(&self, kind: Kind) -> Vec<SocketAddr> {
        self.hosts
            .iter()
            .filter(|h| h.kind == kind)
            .map(|h| h.addr)
            .collect()
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

    /// The command line's certificate flags for this fleet's client:
    /// `--ca`, `--cert` and `--key` with their files.
    pub fn client_tls_args(&self) -> Vec<std::ffi::OsString> {
        let pki = self.pki_dir();
        let mut args = Vec::new();
        for (flag, file) in [
            ("--ca", "ca.pem"),
            ("--cert", "client.pem"),
            ("--key", "client-key.pem"),
        ] {
            args.push(flag.into());
            args.push(pki.join(file).into());
        }
        args
    }

    /// Stops every server and waits (up to a grace period) for in-flight
    /// calls to finish.
    pub async fn stop(mut self) {
        for tx in self.shutdown.drain(..) {
            let _ = tx.send(());
        }
        let tasks = std::mem::take(&mut self.tasks);
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        let all = async {
            for task in tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(STOP_GRACE, all).await.is_err() {
            aborts.iter().for_each(|a| a.abort());
        }
    }
}

impl Drop for FleetSim {
    fn drop(&mut self) {
        for tx in self.shutdown.drain(..) {
            let _ = tx.send(());
        }
    }
}

// === impl BlockingSim ===

/// A [`FleetSim`] for tests that are not async: it runs on a Tokio
/// runtime of its own, with its directory in a temporary one, and is
/// stopped (and waited for) when dropped.
pub struct BlockingSim {
    sim: Option<FleetSim>,
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
}

impl BlockingSim {
    /// Starts the fleet of `spec`, whose `dir` is replaced by `sim` in a
    /// temporary directory.
    pub fn start(spec: SimSpec) -> Result<BlockingSim> {
        let rt = tokio::runtime::Runtime::new()?;
        let dir = tempfile::tempdir()?;
        let spec = SimSpec {
            dir: dir.path().join("sim"),
            ..spec
        };
        let sim = rt.block_on(FleetSim::start(spec))?;
        Ok(BlockingSim {
            sim: Some(sim),
            rt,
            dir,
        })
    }

    /// The running fleet.
    pub fn sim(&self) -> &FleetSim {
        // Taken only by drop.
        self.sim.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// The temporary directory, for the test's own files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for BlockingSim {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.rt.block_on(sim.stop());
        }
    }
}

// === setup ===

/// A fleet of 1,000 agents needs a listener each plus a socket for every
/// client connection and handshake in flight, several thousand descriptors
/// in all, while the usual soft limit is 1,024. The hard limit is what an
/// unprivileged process may raise itself to.
fn raise_fd_limit() -> io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid out pointer for getrlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid, initialised rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Creates `dir`, refusing one that holds anything but an earlier
/// simulation, and clears the earlier simulation's PKI and inventory (the
/// inventory first, so nobody reads a stale one as the new fleet's).
pub(crate) fn prepare_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let marker = dir.join(MARKER);
    let empty = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .next()
        .is_none();
    if !empty && !marker.exists() {
        bail!(
            "{} is not empty and was not made by the fleet simulator: give it an empty or new \
             directory, so that no real PKI is overwritten",
            dir.display()
        );
    }
    std::fs::write(&marker, "made by hostscope-fleet-sim; safe to delete\n")
        .with_context(|| format!("writing {}", marker.display()))?;
    let stale = dir.join("inventory.toml");
    match std::fs::remove_file(&stale) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", stale.display()));
        }
        _ => {}
    }
    let pki_dir = dir.join("pki");
    if pki_dir.exists() {
        std::fs::remove_dir_all(&pki_dir)
            .with_context(|| format!("removing {}", pki_dir.display()))?;
    }
    Ok(())
}

/// The fleet CA and client certificate in `dir`, another CA in
/// `dir/other-ca`, and a server certificate for each of `names` (valid
/// for the name and 127.0.0.1): from the fleet CA for the first `good`,
/// from the other CA for the rest. Returns each agent's TLS configuration,
/// built by the agent's own code from those files.
///
/// Issuing is spread over every core: one certificate is a P-256 key, a
/// signature and a verification, well under a millisecond each, so the
/// files' writes dominate.
fn make_pki(dir: &Path, names: &[String], good: usize) -> Result<Vec<Arc<rustls::ServerConfig>>> {
    let other = dir.join("other-ca");
    pki::init(dir, true).context("making the fleet CA")?;
    pki::issue(dir, "client", CertRole::Client, &[]).context("issuing the client certificate")?;
    if names.len() > good {
        pki::init(&other, true).context("making the other CA")?;
    }
    let sans = ["127.0.0.1".to_owned()];
    let issue_one = |i: usize, name: &String| -> Result<Arc<rustls::ServerConfig>> {
        let issuer = if i < good { dir } else { &other };
        pki::issue(issuer, name, CertRole::Server, &sans)
            .with_context(|| format!("issuing the certificate of {name}"))?;
        let files = TlsFiles {
            cert: pki::cert_path(issuer, name),
            key: pki::key_path(issuer, name),
            client_ca: pki::cert_path(dir, "ca"),
        };
        files
            .server_config()
            .with_context(|| format!("the TLS configuration of {name}"))
    };
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = names.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .chunks(chunk)
            .enumerate()
            .map(|(c, names)| {
                scope.spawn(move || {
                    names
                        .iter()
                        .enumerate()
                        .map(|(j, name)| issue_one(c * chunk + j, name))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut configs = Vec::with_capacity(names.len());
        for handle in handles {
            match handle.join() {
                Ok(chunk) => configs.extend(chunk?),
                Err(_) => bail!("a certificate worker panicked"),
            }
        }
        Ok(configs)
    })
}

async fn bind() -> Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a port on 127.0.0.1")
}

/// A host that is up but never speaks: accepts connections and holds them
/// open without reading or writing, until `stop` fires.
async fn hold_silently(listener: TcpListener, mut stop: oneshot::Receiver<()>) {
    let mut held: VecDeque<TcpStream> = VecDeque::new();
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    if held.len() == SILENT_MAX_HELD {
                        held.pop_front();
                    }
                    held.push_back(tcp);
                }
                // Out of descriptors or the like: pause instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
        }
    }
}

/// The inventory in the format of `deploy/`'s example: one `[[hosts]]`
/// table a host, its kind as a label and a group.
fn inventory_toml(hosts: &[SimHost]) -> String {
    let mut out = String::from(
        "# A simulated fleet written by hostscope-fleet-sim: every host listens on 127.0.0.1.\n",
    );
    for h in hosts {
        let kind = h.kind.as_str();
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "\n[[hosts]]\nname = \"{name}\"\naddress = \"{addr}\"\nserver_name = \"{name}\"\n\
             labels = {{ sim = \"true\", kind = \"{kind}\" }}\ngroups = [\"sim\", \"{kind}\"]\n",
            name = h.name,
            addr = h.addr,
        );
    }
    out
}

/// Writes through a temporary file and a rename, so that a reader sees no
/// file or the whole file.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, contents)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("writing {}", path.display()))
}
