//! Helpers for the end-to-end tests: a throwaway PKI, a real agent on
//! 127.0.0.1 with real mutual TLS, real processes (zombies included) that
//! die with the test, and the `hostscope` command line run in process.
//!
//! # Programs the tests run
//!
//! The agent and the command line as real processes are binaries of this
//! package (`hostscope-test-agent`, `hostscope-cli`, each its crate's own
//! `main`), which cargo builds before any test runs: tests name them with
//! `env!("CARGO_BIN_EXE_<name>")` and never run cargo (a tidy test checks).
//! The in-process command line ([`hostscope`], [`hostscope_in`]) reads only
//! the [`hostscope_cli::Env`] it is given, never this process's
//! environment, so the tests pass whatever HOSTSCOPE_* variables or
//! profile file the person running them has.
//!
//! # Skipped tests
//!
//! A test whose precondition this host lacks (root, setpriv, a writable
//! cgroup v1 hierarchy, the kernel's process events) checks for it at run
//! time and calls [`skip!`] with the reason: it prints
//! `SKIPPED: <test>: <reason>` on the real standard error, which the test
//! harness does not capture, so the line shows among the results of a plain
//! `cargo test`, and returns. libtest has no "skipped" outcome: such a test
//! is listed as `ok`, and the SKIPPED line is what tells it from a pass.
//! With `HOSTSCOPE_NO_SKIP` set (to anything but an empty value) a missing
//! precondition fails the test instead, for runs that must prove every
//! test ran, such as `.ci/deploy`'s run of the privileges tests as root.
//! There is no `#[ignore]`: a test either runs or says why not.

pub mod child;
pub mod pg;
pub mod psutil;
pub mod sim;
pub mod virtual_fleet;

use std::{
    ffi::OsString,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use hostscope_agent::{
    backend,
    server::{Agent, Limits, TlsFiles},
    service::{Inspector, Options, audit::Audit},
};
use hostscope_client::{
    Client, TlsConfig,
    pki::{self, CertRole},
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// Writes a test PKI into `dir`: a fleet CA (`ca.pem`, replacing one
/// there), a server certificate `agent.pem` valid for 127.0.0.1 and
/// localhost, and a client certificate `NAME.pem` for each of `clients`,
/// each with its `-key.pem`.
pub fn write_pki(dir: &Path, clients: &[&str]) -> Result<(), hostscope_client::Error> {
    pki::init(dir, true)?;
    let sans = ["127.0.0.1".to_owned(), "localhost".to_owned()];
    pki::issue(dir, "agent", CertRole::Server, &sans)?;
    for name in clients {
        pki::issue(dir, name, CertRole::Client, &[])?;
    }
    Ok(())
}

/// A fleet CA with an agent certificate for 127.0.0.1/localhost and the
/// client certificates `client` and `operator` (see [`write_pki`]), in a
/// temporary directory.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA, an agent certificate `agent` and a client certificate `client`.
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        write_pki(dir.path(), &["client", "operator"]).expect("the test PKI");
        Pki { dir }
    }

    /// The file `file` of this PKI (`ca.pem`, `client-key.pem`, ...).
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// The directory that holds the PKI.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The agent's side: its certificate, and the CA for client certificates.
    pub fn agent_tls(&self) -> TlsFiles {
        TlsFiles {
            cert: self.path("agent.pem"),
            key: self.path("agent-key.pem"),
            client_ca: self.path("ca.pem"),
        }
    }

    /// A client with the fleet's client certificate.
    pub fn client_tls(&self) -> TlsConfig {
        TlsConfig::from_files(
            &self.path("ca.pem"),
            Some(&self.path("client.pem")),
            Some(&self.path("client-key.pem")),
        )
        .expect("client tls")
    }

    /// A client with the certificate named `operator` (the role is the
    /// agent's to grant: see [`TestAgent::start_with_operator`]).
    pub fn operator_tls(&self) -> TlsConfig {
        TlsConfig::from_files(
            &self.path("ca.pem"),
            Some(&self.path("operator.pem")),
            Some(&self.path("operator-key.pem")),
        )
        .expect("operator tls")
    }

    /// A client that trusts the agent but presents no certificate.
    pub fn anonymous_tls(&self) -> TlsConfig {
        TlsConfig::from_files(&self.path("ca.pem"), None, None).expect("anonymous tls")
    }
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}

/// A real agent serving this host's /proc on 127.0.0.1, stopped on drop.
pub struct TestAgent {
    /// Where it listens: 127.0.0.1 and a port of its own.
    pub addr: SocketAddr,
    /// Its PKI, with the certificates of its clients.
    pub pki: Arc<Pki>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), hostscope_agent::server::Error>>>,
}

impl TestAgent {
    /// An agent with mutual TLS and default options.
    pub async fn start() -> TestAgent {
        TestAgent::start_with(Options::default()).await
    }

    /// An agent with mutual TLS and the given service options.
    pub async fn start_with(options: Options) -> TestAgent {
        let pki = Pki::new();
        let tls = pki.agent_tls().server_config().expect("server tls");
        TestAgent::serve(pki, Some(tls), options).await
    }

    /// An agent on which the certificate `operator` holds the operator
    /// role, auditing signal requests to `audit_file`.
    pub async fn start_with_operator(audit_file: &Path) -> TestAgent {
        let pki = Pki::new();
        let tls = pki.agent_tls().server_config().expect("server tls");
        let options = Options {
            policy: hostscope_agent::authz::Policy {
                operators: vec!["operator".to_owned()],
                ..Default::default()
            },
            ..Options::default()
        };
        let audit = Audit::to_file(audit_file).expect("audit file");
        TestAgent::serve_inspector(pki, Some(tls), options, audit).await
    }

    /// A client with the operator certificate.
    pub async fn operator(&self) -> Client {
        Client::connect(&self.endpoint(), Some(self.pki.operator_tls()))
            .await
            .expect("connect")
    }

    /// An agent that speaks plaintext HTTP/2 (as with --insecure-plaintext).
    pub async fn start_plaintext() -> TestAgent {
        TestAgent::serve(Pki::new(), None, Options::default()).await
    }

    async fn serve(
        pki: Pki,
        tls: Option<Arc<rustls::ServerConfig>>,
        options: Options,
    ) -> TestAgent {
        TestAgent::serve_inspector(pki, tls, options, Audit::log_only()).await
    }

    async fn serve_inspector(
        pki: Pki,
        tls: Option<Arc<rustls::ServerConfig>>,
        options: Options,
        audit: Audit,
    ) -> TestAgent {
        TestAgent::serve_at(
            "127.0.0.1:0".parse().expect("address"),
            Arc::new(pki),
            tls,
            options,
            audit,
        )
        .await
    }

    /// Stops this agent, waits until it has, and starts a fresh one on the
    /// same address with the same PKI: an agent restart, as clients see it.
    pub async fn restart(mut self) -> TestAgent {
        let stopped = self.stop();
        stopped
            .await
            .expect("agent task")
            .expect("agent stopped cleanly");
        let tls = self.pki.agent_tls().server_config().expect("server tls");
        let pki = Arc::clone(&self.pki);
        TestAgent::serve_at(
            self.addr,
            pki,
            Some(tls),
            Options::default(),
            Audit::log_only(),
        )
        .await
    }

    /// A second agent of this one's fleet: the same PKI, another port.
    pub async fn sibling(&self) -> TestAgent {
        let tls = self.pki.agent_tls().server_config().expect("server tls");
        TestAgent::serve_at(
            "127.0.0.1:0".parse().expect("address"),
            Arc::clone(&self.pki),
            Some(tls),
            Options::default(),
            Audit::log_only(),
        )
        .await
    }

    async fn serve_at(
        addr: SocketAddr,
        pki: Arc<Pki>,
        tls: Option<Arc<rustls::ServerConfig>>,
        options: Options,
        audit: Audit,
    ) -> TestAgent {
        // Rebinding a port just given up can briefly fail while the old
        // agent's last sockets close: retry, within a bound.
        let start = Instant::now();
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(_) if start.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("binding {addr}: {e}"),
            }
        };
        let addr = listener.local_addr().expect("local addr");
        let backend = backend::native("/proc".into(), "/sys".into()).expect("backend");
        let inspector = Inspector::new(Arc::from(backend), options).with_audit(audit);
        let (tx, rx) = oneshot::channel::<()>();
        let agent = Agent::new(inspector, tls, Limits::default());
        let task = tokio::spawn(agent.serve(listener, async {
            let _ = rx.await;
        }));
        TestAgent {
            addr,
            pki,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// A client with the fleet's client certificate.
    pub async fn client(&self) -> Client {
        Client::connect(&self.endpoint(), Some(self.pki.client_tls()))
            .await
            .expect("connect")
    }

    /// Signals shutdown and returns the server task, to await its end.
    pub fn stop(&mut self) -> JoinHandle<Result<(), hostscope_agent::server::Error>> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().expect("agent already stopped")
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A real zombie: a forked child that has exited and that this process has
/// not yet waited for. Reaped on drop.
pub struct Zombie {
    /// The zombie's pid.
    pub pid: u32,
}

impl Zombie {
    /// Forks a child that exits at once, and waits until the kernel shows it
    /// as a zombie.
    pub fn spawn() -> Zombie {
        // SAFETY: the child calls only the async-signal-safe `_exit`, which
        // is sound after fork in a multi-threaded process.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: see above; the child never returns into Rust code.
            unsafe { libc::_exit(0) };
        }
        let pid = pid as u32;
        wait_for(Duration::from_secs(10), || proc_state(pid) == Some('Z'));
        Zombie { pid }
    }
}

impl Drop for Zombie {
    fn drop(&mut self) {
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a valid out pointer.
        unsafe { libc::waitpid(self.pid as libc::pid_t, &mut status, 0) };
    }
}

/// The state letter of `pid` from /proc, if it exists.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Polls `done` until it holds, panicking after `limit`. Used to wait for
/// the kernel to reach a state, never to assert on speed.
pub fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "condition not reached in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A pid that does not exist now: above the kernel's pid_max.
pub fn missing_pid() -> u32 {
    let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4_194_304);
    max + 1
}

// === skipped tests ===

/// The variable that turns a skip into a failure (see the crate's docs).
pub const NO_SKIP: &str = "HOSTSCOPE_NO_SKIP";

/// Ends the calling test, which must return `()`, as skipped, for the
/// reason given as `format!` arguments: see [the crate's docs](crate)
/// for what that prints and when it fails instead.
#[macro_export]
macro_rules! skip {
    ($($reason:tt)+) => {{
        $crate::skipping(&::std::format!($($reason)+));
        return;
    }};
}

/// What [`skip!`] does before it returns: prints `SKIPPED: <test>:
/// <reason>` past the harness's capture, or panics under [`NO_SKIP`].
pub fn skipping(reason: &str) {
    let thread = std::thread::current();
    // libtest runs each test on a thread named after it.
    let test = thread.name().unwrap_or("a test");
    if let Some(line) = skip_line(test, reason, std::env::var_os(NO_SKIP).as_deref()) {
        use std::io::Write;
        // Not eprintln!, which the harness captures and shows only for
        // failures: a skip must show in a run that passes.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    } else {
        panic!("{test} cannot run here, and {NO_SKIP} is set: {reason}");
    }
}

/// The line a skip of `test` prints, or `None` when `no_skip` (the value
/// of [`NO_SKIP`]) forbids skipping.
pub fn skip_line(test: &str, reason: &str, no_skip: Option<&std::ffi::OsStr>) -> Option<String> {
    match no_skip.is_some_and(|value| !value.is_empty()) {
        true => None,
        false => Some(format!("SKIPPED: {test}: {reason}")),
    }
}

// === the command line ===

/// What one in-process run of the `hostscope` command line did.
#[derive(Debug)]
pub struct CliRun {
    /// The exit code: 0 when every host answered, 2 when some failed, 1 on
    /// usage or local errors.
    pub code: u8,
    /// What it printed to stdout.
    pub out: String,
    /// What it printed to stderr.
    pub err: String,
}

/// Runs `hostscope ARGS` in this process, reading `stdin` where it reads
/// standard input, in an empty environment: no HOSTSCOPE_* variable and
/// no profile file, whatever this process's environment holds (see
/// [`hostscope_in`]).
///
/// It builds a Tokio runtime of its own, so call it from a plain thread
/// (or [`hostscope_async`]), never from async code.
pub fn hostscope<I, S>(args: I, stdin: &str) -> CliRun
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    hostscope_in(&hostscope_cli::Env::default(), args, stdin)
}

/// [`hostscope`] in the environment `env`: the HOSTSCOPE_* variables and
/// the profile file a test writes down. The command line never reads this
/// process's own environment (only the binary's `main` does), which a test
/// cannot change safely while other tests run.
pub fn hostscope_in<I, S>(env: &hostscope_cli::Env, args: I, stdin: &str) -> CliRun
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let argv: Vec<OsString> = std::iter::once(OsString::from("hostscope"))
        .chain(args.into_iter().map(Into::into))
        .collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = hostscope_cli::run_with(argv, env, &mut stdin.as_bytes(), &mut out, &mut err);
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    CliRun {
        code,
        out: text(out),
        err: text(err),
    }
}

/// [`hostscope`] for async tests: runs it on Tokio's blocking pool.
pub async fn hostscope_async(args: Vec<OsString>, stdin: String) -> CliRun {
    tokio::task::spawn_blocking(move || hostscope(args, &stdin))
        .await
        .expect("the command line's thread")
}
