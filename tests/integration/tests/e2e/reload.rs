//! Certificate and CA rotation without a restart: the agent's TLS files are
//! replaced as an operator or a Kubernetes secret update would replace
//! them, and new handshakes see the new files. A rotation to a second,
//! unrelated fleet CA ends the old fleet's access whichever way it comes
//! back: a new handshake is refused, a TLS session made before cannot be
//! resumed, and a connection made before serves no further call.
//!
//! The last test runs the real `hostscope-agent` binary and rotates with
//! SIGHUP; [`AgentProcess`] and [`agent_binary`] serve the privileges tests
//! too.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hostscope_agent::{
    backend,
    server::{Agent, Limits},
    service::{Inspector, Options},
    tls::{ReloadableTls, Reloaded, TlsFiles},
};
use hostscope_client::{Client, Error};
use hostscope_integration::Pki;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// How long a rotation may take to show before a test fails.
const LIMIT: Duration = Duration::from_secs(30);

/// The agent's TLS files in a directory of their own, replaced the way an
/// operator does it: each new file written beside the old one, then renamed
/// over it.
struct LiveFiles {
    dir: tempfile::TempDir,
}

impl LiveFiles {
    fn from(pki: &Pki) -> LiveFiles {
        let live = LiveFiles {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        live.install(pki);
        live
    }

    fn files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.dir.path().join("agent.pem"),
            key: self.dir.path().join("agent-key.pem"),
            client_ca: self.dir.path().join("ca.pem"),
        }
    }

    /// Puts `pki`'s agent certificate, key and CA in place.
    fn install(&self, pki: &Pki) {
        for name in ["agent.pem", "agent-key.pem", "ca.pem"] {
            self.write(name, &std::fs::read(pki.path(name)).expect("read pki file"));
        }
    }

    fn write(&self, name: &str, contents: &[u8]) {
        let aside = self.dir.path().join(format!(".{name}.new"));
        std::fs::write(&aside, contents).expect("write new file");
        std::fs::rename(&aside, self.dir.path().join(name)).expect("rename over");
    }
}

/// The leaf certificate of `pki`'s agent, as DER.
fn agent_leaf(pki: &Pki) -> CertificateDer<'static> {
    CertificateDer::pem_file_iter(pki.path("agent.pem"))
        .expect("agent.pem")
        .next()
        .expect("a certificate")
        .expect("PEM")
}

/// Completes a TLS handshake with the agent at `addr` as a client of `pki`
/// (trusting its CA, presenting its client certificate) and returns the
/// leaf certificate the agent presented. Fails when the agent's
/// certificate is not from `pki`'s CA.
async fn served_certificate(
    addr: SocketAddr,
    pki: &Pki,
) -> std::io::Result<CertificateDer<'static>> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(pki.path("ca.pem")).expect("ca.pem") {
        roots.add(ca.expect("CA PEM")).expect("CA");
    }
    let chain = CertificateDer::pem_file_iter(pki.path("client.pem"))
        .expect("client.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("client PEM");
    let key = PrivateKeyDer::from_pem_file(pki.path("client-key.pem")).expect("client key");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .expect("client identity");
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("server name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| cert.clone().into_owned());
    leaf.ok_or_else(|| std::io::Error::other("no certificate presented"))
}

/// Asserts that the agent at `addr` presents `pki`'s agent certificate to
/// a new connection now; `when` says at which point of the test.
async fn assert_served(addr: SocketAddr, pki: &Pki, when: &str) {
    let served = served_certificate(addr, pki).await;
    assert_eq!(served.ok(), Some(agent_leaf(pki)), "{when}");
}

/// Waits until the agent at `addr` presents `pki`'s agent certificate to a
/// new connection.
async fn wait_until_served(addr: SocketAddr, pki: &Pki) {
    let want = agent_leaf(pki);
    let start = Instant::now();
    loop {
        let served = served_certificate(addr, pki).await;
        if served.as_ref().is_ok_and(|cert| *cert == want) {
            return;
        }
        assert!(
            start.elapsed() < LIMIT,
            "the new certificate is not served after {LIMIT:?}; last: {served:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client of `pki`'s fleet; connecting or its first call fails when the
/// agent does not accept that fleet.
async fn first_call(addr: SocketAddr, pki: &Pki) -> Result<(), Error> {
    let client = Client::connect(&addr.to_string(), Some(pki.client_tls())).await?;
    client.host().await.map(drop)
}

/// An agent served in this process with a TLS configuration the test can
/// reload; stopped on drop.
struct InProcess {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    _task: JoinHandle<Result<(), hostscope_agent::server::Error>>,
}

impl InProcess {
    /// Serves `tls`, checking every call's client certificate against its
    /// client CA in force, as the agent binary does.
    async fn start(tls: &ReloadableTls) -> InProcess {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let backend = backend::native("/proc".into(), "/sys".into()).expect("backend");
        let inspector = Inspector::new(Arc::from(backend), Options::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let agent = Agent::new(inspector, Some(tls.server_config()), Limits::default())
            .check_client_ca(Some(tls.client_ca()));
        let task = tokio::spawn(agent.serve(listener, async {
            let _ = stopped.await;
        }));
        InProcess {
            addr,
            stop: Some(stop),
            _task: task,
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn new_handshakes_use_rotated_files_and_a_replaced_ca_serves_no_further_call() {
    let first = Pki::new();
    let live = LiveFiles::from(&first);
    let tls = Arc::new(live.files().load().expect("load TLS files"));
    let agent = InProcess::start(&tls).await;
    let watching = tokio::spawn({
        let tls = Arc::clone(&tls);
        async move { tls.watch_files(Duration::from_millis(50)).await }
    });

    let old_client = Client::connect(&agent.addr.to_string(), Some(first.client_tls()))
        .await
        .expect("connect");
    old_client.host().await.expect("served before the rotation");
    assert_served(agent.addr, &first, "before the rotation").await;

    let second = Pki::new();
    live.install(&second);
    wait_until_served(agent.addr, &second).await;

    // New handshakes: the new fleet is served, the old one refused both
    // ways (its clients do not trust the new certificate, and the agent no
    // longer trusts their CA).
    first_call(agent.addr, &second)
        .await
        .expect("a client of the new fleet");
    let refused = first_call(agent.addr, &first)
        .await
        .expect_err("a new connection from the old fleet");
    assert!(matches!(refused, Error::UnknownCa { .. }), "{refused:?}");

    // The connection made before the rotation is still open, but its
    // client's certificate is checked again on every call, against the
    // client CA in force.
    let refused = old_client
        .host()
        .await
        .expect_err("a call from the old fleet on its established connection");
    assert!(
        matches!(refused, Error::Unauthenticated { .. }),
        "{refused:?}"
    );
    assert_eq!(refused.label(), "unauthenticated");
    assert!(!refused.is_retryable());
    watching.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_new_files_are_refused_and_the_served_certificate_stays() {
    let logs = super::captured_logs();
    let first = Pki::new();
    let second = Pki::new();
    let live = LiveFiles::from(&first);
    let files = live.files();
    let tls = live.files().load().expect("load TLS files");
    let agent = InProcess::start(&tls).await;
    assert_eq!(tls.reload().expect("same files"), Reloaded::Unchanged);

    let key = std::fs::read(second.path("agent-key.pem")).expect("key");
    let cert = std::fs::read(second.path("agent.pem")).expect("cert");
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "agent.pem",
            b"-----BEGIN CERTIFICATE-----\ntruncated",
            "agent.pem",
        ),
        // The new certificate arrived, its key not yet.
        ("agent.pem", &cert, "do not make a usable identity"),
        // A CA file that holds a key and no certificate.
        ("ca.pem", &key, "no certificate in the file"),
    ];
    for (name, contents, reason) in cases {
        live.install(&first);
        live.write(name, contents);
        let err = tls.reload().expect_err("a bad file is refused");
        assert!(err.to_string().contains(reason), "{name}: {err}");
        assert_served(agent.addr, &first, name).await;
        first_call(agent.addr, &first)
            .await
            .expect("the old fleet is still served");
    }

    // The refusal is logged with the file and the reason.
    live.install(&first);
    live.write("agent.pem", b"not PEM at all");
    tls.reload_and_log("test").await;
    let cert_path = files.cert.display().to_string();
    hostscope_integration::wait_for(LIMIT, || {
        String::from_utf8_lossy(&logs.lock().expect("log buffer"))
            .lines()
            .any(|l| l.contains("refused new TLS files") && l.contains(&cert_path))
    });

    // Whole, consistent files are taken.
    live.install(&second);
    assert!(matches!(
        tls.reload().expect("good files"),
        Reloaded::Replaced { .. }
    ));
    wait_until_served(agent.addr, &second).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_makes_the_agent_binary_serve_rotated_files() {
    let first = Pki::new();
    let live = LiveFiles::from(&first);
    let files = live.files();
    let mut command = Command::new(agent_binary());
    command
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--cert")
        .arg(&files.cert)
        .arg("--key")
        .arg(&files.key)
        .arg("--client-ca")
        .arg(&files.client_ca);
    let mut agent = AgentProcess::start(command);
    assert_served(agent.addr, &first, "before the rotation").await;

    let second = Pki::new();
    live.install(&second);
    agent.signal(libc::SIGHUP);
    // The file poll may see the change first; either way the reload for
    // SIGHUP is logged, and the agent lives on.
    agent.wait_for_line(|line| line["fields"]["cause"] == "SIGHUP");
    wait_until_served(agent.addr, &second).await;
    first_call(agent.addr, &second)
        .await
        .expect("the rotated agent serves the new fleet");
}

// === sessions made under a replaced client CA ===

/// A rustls client configuration of `pki`'s fleet that keeps the TLS
/// sessions it is given in its own store, and offers them again.
fn resuming_client(pki: &Pki) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(pki.path("ca.pem")).expect("ca.pem") {
        roots.add(ca.expect("CA PEM")).expect("CA");
    }
    let chain = CertificateDer::pem_file_iter(pki.path("client.pem"))
        .expect("client.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("client PEM");
    let key = PrivateKeyDer::from_pem_file(pki.path("client-key.pem")).expect("client key");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .expect("TLS 1.3")
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .expect("client identity");
    config.alpn_protocols = vec![b"h2".to_vec()];
    config.resumption = rustls::client::Resumption::store(Arc::new(
        rustls::client::ClientSessionMemoryCache::new(16),
    ));
    Arc::new(config)
}

/// Connects to `addr` with `config` and calls GetHost over HTTP/2 by hand.
/// Returns how the handshake went (full or resumed) once it completed, and
/// the call's grpc-status, or what failed.
async fn get_host_with(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
) -> (Option<rustls::HandshakeKind>, Result<String, String>) {
    use tonic::codegen::{Bytes, http};
    let tcp = match tokio::net::TcpStream::connect(addr).await {
        Ok(tcp) => tcp,
        Err(e) => return (None, Err(format!("connect: {e}"))),
    };
    let name = ServerName::try_from("localhost").expect("server name");
    let tls = match tokio_rustls::TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await
    {
        Ok(tls) => tls,
        Err(e) => return (None, Err(format!("TLS handshake: {e}"))),
    };
    let kind = tls.get_ref().1.handshake_kind();
    let call = async {
        let (mut send, connection) = h2::client::handshake(tls)
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = http::Request::builder()
            .method("POST")
            .uri("https://localhost/hostscope.v1.HostInspector/GetHost")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .expect("request");
        let (response, mut body) = send
            .send_request(request, false)
            .map_err(|e| format!("request: {e}"))?;
        body.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), true)
            .map_err(|e| format!("request body: {e}"))?;
        let response = response.await.map_err(|e| format!("response: {e}"))?;
        let (head, mut body) = response.into_parts();
        let mut fields = head.headers;
        if fields.get("grpc-status").is_none() {
            while let Some(data) = body.data().await {
                let data = data.map_err(|e| format!("response body: {e}"))?;
                let _ = body.flow_control().release_capacity(data.len());
            }
            fields = body
                .trailers()
                .await
                .map_err(|e| format!("trailers: {e}"))?
                .ok_or("no trailers")?;
        }
        driver.abort();
        fields
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| "no grpc-status".to_owned())
    };
    let outcome = tokio::time::timeout(LIMIT, call)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {LIMIT:?}")));
    (kind, outcome)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_session_made_before_the_client_ca_was_replaced_is_not_resumed() {
    let first = Pki::new();
    let second = Pki::new();
    let live = LiveFiles::from(&first);
    let tls = live.files().load().expect("load TLS files");
    let agent = InProcess::start(&tls).await;
    let client = resuming_client(&first);

    // A full handshake, whose call lets the client take the agent's
    // session tickets; then a resumed one. Both are served.
    let (kind, status) = get_host_with(agent.addr, &client).await;
    assert_eq!(kind, Some(rustls::HandshakeKind::Full));
    assert_eq!(status.as_deref(), Ok("0"), "the first call");
    let (kind, status) = get_host_with(agent.addr, &client).await;
    assert_eq!(kind, Some(rustls::HandshakeKind::Resumed), "{status:?}");
    assert_eq!(status.as_deref(), Ok("0"), "the resumed call");

    // Only the client CA changes: the agent's certificate stays, so the
    // client would accept a full handshake's server side.
    live.write(
        "ca.pem",
        &std::fs::read(second.path("ca.pem")).expect("second CA"),
    );
    assert!(matches!(tls.reload(), Ok(Reloaded::Replaced { .. })));

    // The client offers its saved session; the agent has forgotten it, so
    // the handshake is a full one, which the old client certificate fails,
    // and no call is served.
    let (kind, status) = get_host_with(agent.addr, &client).await;
    assert_ne!(kind, Some(rustls::HandshakeKind::Resumed), "{status:?}");
    assert!(status.is_err(), "a call was served: {status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_as_the_client_ca_is_refused_on_sighup_and_the_agent_still_stops() {
    use rustix::fs::{CWD, FileType, Mode, mknodat};
    let first = Pki::new();
    let live = LiveFiles::from(&first);
    let files = live.files();
    let mut command = Command::new(agent_binary());
    command
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--cert")
        .arg(&files.cert)
        .arg("--key")
        .arg(&files.key)
        .arg("--client-ca")
        .arg(&files.client_ca);
    let mut agent = AgentProcess::start(command);

    // A FIFO nobody writes to: a blocking read of it never returns.
    std::fs::remove_file(&files.client_ca).expect("remove ca.pem");
    mknodat(
        CWD,
        &files.client_ca,
        FileType::Fifo,
        Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
    agent.signal(libc::SIGHUP);
    let refused = agent.wait_for_line(|line| {
        line["fields"]["cause"] == "SIGHUP"
            && line["fields"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("is a FIFO, not a regular file"))
    });
    assert_eq!(refused["level"], "ERROR", "{refused}");
    first_call(agent.addr, &first)
        .await
        .expect("the agent still serves with the CA it had");

    agent.signal(libc::SIGTERM);
    let status = agent.wait_exit();
    assert!(status.success(), "{status}\n{}", agent.log());
}

// === the agent binary ===

/// The `hostscope-agent` program: this package's `hostscope-test-agent`
/// binary, which cargo builds before the tests (the agent's own `main`, see
/// src/bin/hostscope-test-agent.rs), so no test runs cargo.
/// `HOSTSCOPE_AGENT_BIN` names a binary to test instead, such as the one a
/// package installed (.ci/deploy).
pub(crate) fn agent_binary() -> PathBuf {
    match std::env::var_os("HOSTSCOPE_AGENT_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_BIN_EXE_hostscope-test-agent")),
    }
}

/// A `hostscope-agent` process (possibly started through a wrapper such
/// as setpriv that execs it), logging JSON, listening where its "serving"
/// line says. Its process group is killed and reaped on drop.
pub(crate) struct AgentProcess {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// The address it serves on.
    pub(crate) addr: SocketAddr,
}

impl AgentProcess {
    /// Starts `command`, which must run the agent with `--log-format json`,
    /// and waits until it serves.
    pub(crate) fn start(mut command: Command) -> AgentProcess {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn().expect("start the agent");
        let stderr = child.stderr.take().expect("stderr piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("agent log").push(line);
            }
        });
        let mut agent = AgentProcess {
            child,
            lines,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let serving =
            agent.wait_for_line(|line| line["fields"]["message"] == "hostscope-agent serving");
        agent.addr = serving["fields"]["listen"]
            .as_str()
            .and_then(|addr| addr.parse().ok())
            .expect("the serving line names the address");
        agent
    }

    /// The agent's pid (that of the wrapper too, which exec'd it).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the agent.
    pub(crate) fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory preconditions; the pid is our own
        // child, not yet reaped, so it cannot have been reused.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Waits for a log line (parsed JSON) that satisfies `wanted`, and
    /// returns it. Fails with the whole log if the agent exits first.
    pub(crate) fn wait_for_line(
        &mut self,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let found = self
                .lines
                .lock()
                .expect("agent log")
                .iter()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .find(|line| wanted(line));
            if let Some(line) = found {
                return line;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the agent exited ({status}):\n{}", self.log());
            }
            assert!(
                start.elapsed() < LIMIT,
                "no such log line after {LIMIT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the agent to exit, and returns how it did. Fails with the
    /// whole log if it has not exited within the test's bound.
    pub(crate) fn wait_exit(&mut self) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                start.elapsed() < LIMIT,
                "the agent has not exited after {LIMIT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the agent logged so far.
    pub(crate) fn log(&self) -> String {
        self.lines.lock().expect("agent log").join("\n")
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        // SAFETY: as in `signal`; the group is the one `start` made.
        unsafe { libc::killpg(self.pid() as libc::pid_t, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}
