//! Hostile clients against a real agent on 127.0.0.0/8 over real mutual
//! TLS: silent TCP floods, TLS sessions that never speak HTTP/2, idle
//! connections, more connections than a peer may hold, huge strings. Every
//! loop here is bounded and stops by itself; every test checks that a
//! well-behaved client keeps getting answers meanwhile.
//!
//! Distinct peers are distinct loopback networks (the agent counts
//! handshakes and connections per IPv4 /24): each test that floods uses an
//! address of its own, so that its log lines can be told apart from those
//! of tests running beside it.

use std::{
    collections::VecDeque,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use hostscope_agent::{
    authz::Policy,
    backend,
    server::{self, Limits},
    service::{Inspector, Options, audit::Audit, watch::WatchOptions},
};
use hostscope_client::Client;
use hostscope_integration::{Pki, missing_pid, wait_for};
use hostscope_proto as pb;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpSocket, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};
use tokio_rustls::{TlsConnector, client::TlsStream};
use tonic::codegen::{Bytes, http};

/// A generous bound on "eventually": reached only when something is wrong.
pub(crate) const EVENTUALLY: Duration = Duration::from_secs(60);

/// The HTTP/2 client preface, then an empty SETTINGS frame.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

// === A real agent with limits of the test's choosing ===

pub(crate) struct Agent {
    pub(crate) addr: SocketAddr,
    pub(crate) pki: Pki,
    /// The agent's service, for what it counts inside.
    pub(crate) inspector: Inspector,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), server::Error>>>,
}

impl Agent {
    pub(crate) async fn start(limits: Limits) -> Agent {
        Agent::start_with(limits, Options::default(), Audit::log_only()).await
    }

    pub(crate) async fn start_with(limits: Limits, options: Options, audit: Audit) -> Agent {
        let pki = Pki::new();
        let tls = pki.agent_tls().server_config().expect("server tls");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let backend = backend::native("/proc".into(), "/sys".into()).expect("backend");
        let inspector = Inspector::new(Arc::from(backend), options).with_audit(audit);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(
            server::Agent::new(inspector.clone(), Some(tls), limits).serve(listener, async {
                let _ = rx.await;
            }),
        );
        Agent {
            addr,
            pki,
            inspector,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// A fresh client with the fleet's client certificate.
    pub(crate) async fn client(&self) -> Client {
        Client::connect(&self.addr.to_string(), Some(self.pki.client_tls()))
            .await
            .expect("a well-behaved client connects")
    }

    /// Asserts that a fresh client gets an answer.
    pub(crate) async fn answers(&self) {
        let host = self.client().await.host().await.expect("an answer");
        assert!(!host.hostname.is_empty());
    }

    /// Signals shutdown and returns the server task, to await its end.
    fn stop(&mut self) -> JoinHandle<Result<(), server::Error>> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().expect("agent already stopped")
    }

    /// Stops the agent and waits until it has, failing with `stuck` if it
    /// does not in time.
    async fn shut_down(&mut self, stuck: &str) {
        tokio::time::timeout(EVENTUALLY, self.stop())
            .await
            .expect(stuck)
            .expect("server task")
            .expect("server stopped cleanly");
    }

    /// A TLS session from `source` with the fleet's client certificate,
    /// that has said nothing yet; Err if the agent refused it.
    pub(crate) async fn tls_from(&self, source: IpAddr) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = connect_from(source, self.addr).await?;
        let name = ServerName::try_from("localhost").expect("server name");
        connector(&self.pki).connect(name, tcp).await
    }

    /// A TLS session from 127.0.0.1, as [`Agent::tls_from`].
    pub(crate) async fn tls(&self) -> TlsStream<TcpStream> {
        self.tls_from(IpAddr::from([127, 0, 0, 1]))
            .await
            .expect("TLS session")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A rustls client with the fleet's client certificate, speaking HTTP/2.
pub(crate) fn connector(pki: &Pki) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(pki.path("ca.pem")).expect("ca.pem") {
        roots.add(ca.expect("CA certificate")).expect("usable CA");
    }
    let certs = CertificateDer::pem_file_iter(pki.path("client.pem"))
        .expect("client.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("client certificate");
    let key = PrivateKeyDer::from_pem_file(pki.path("client-key.pem")).expect("client key");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_client_auth_cert(certs, key)
    .expect("client identity");
    config.alpn_protocols = vec![b"h2".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// A TCP connection to `agent` from the loopback address `source`.
pub(crate) async fn connect_from(source: IpAddr, agent: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(agent).await
}

/// Whether the agent closes `stream` (end of stream or an error) before
/// [`EVENTUALLY`]; what it sends meanwhile is read and dropped.
pub(crate) async fn closed_by_agent(stream: &mut (impl AsyncRead + Unpin)) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(EVENTUALLY, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Sends the HTTP/2 preface on `tls` and reads the frame header of the
/// agent's SETTINGS: the agent serves this connection.
pub(crate) async fn speak_http2(tls: &mut TlsStream<TcpStream>) {
    tls.write_all(PREFACE).await.expect("send the preface");
    let mut header = [0u8; 9];
    tls.read_exact(&mut header)
        .await
        .expect("the agent's first frame");
    assert_eq!(header[3], 0x4, "the agent's first frame is SETTINGS");
}

/// The WARN lines captured so far.
pub(crate) fn warnings() -> String {
    let logs = super::captured_logs();
    let text = String::from_utf8_lossy(&logs.lock().expect("log buffer")).into_owned();
    text.lines()
        .filter(|l| l.contains("WARN"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Raises this test process's open-files limit: a flood opens hundreds of
/// sockets on both of its ends.
pub(crate) fn enough_files() {
    server::raise_fd_limit().expect("raise the open-files limit");
}

// === Floods of silent TCP connections ===

/// Opens TCP connections to `agent` from `source` that never send a byte,
/// keeping the newest `keep` open, until `done` is set or `attempts` were
/// made; counts the connections it opened in `opened`.
async fn silent_flood(
    agent: SocketAddr,
    source: IpAddr,
    attempts: usize,
    keep: usize,
    opened: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
) {
    let mut open = VecDeque::with_capacity(keep + 1);
    for _ in 0..attempts {
        if done.load(Ordering::SeqCst) {
            break;
        }
        match connect_from(source, agent).await {
            Ok(tcp) => {
                open.push_back(tcp);
                opened.fetch_add(1, Ordering::SeqCst);
                if open.len() > keep {
                    open.pop_front();
                }
            }
            Err(_) => tokio::task::yield_now().await,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_flood_from_another_address_locks_no_one_out_and_logs_little() {
    enough_files();
    let _ = super::captured_logs();
    let agent = Agent::start(Limits::default()).await;
    // Another network than the client's: the agent counts peers by /24.
    let attacker = IpAddr::from([127, 0, 2, 2]);
    let opened = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let flood = tokio::spawn(silent_flood(
        agent.addr,
        attacker,
        20_000,
        300,
        Arc::clone(&opened),
        Arc::clone(&done),
    ));
    // More silent connections than the agent has handshake slots...
    let count = Arc::clone(&opened);
    tokio::task::spawn_blocking(move || {
        wait_for(EVENTUALLY, || {
            count.load(Ordering::SeqCst) > Limits::default().max_handshakes
        })
    })
    .await
    .expect("waiting for the flood");
    // ...and new ones all the time: fresh clients still get answers.
    for _ in 0..5 {
        agent.answers().await;
    }
    done.store(true, Ordering::SeqCst);
    flood.await.expect("flood task");
    let opened = opened.load(Ordering::SeqCst);

    // Hundreds of connections were shed, but only a few were logged one
    // by one; the rest are summed up once per interval.
    let peer = format!("peer={attacker}:");
    let one_by_one = warnings().lines().filter(|l| l.contains(&peer)).count();
    assert!(
        one_by_one * 4 < opened,
        "{one_by_one} log lines for {opened} connections"
    );
    let listen = format!("listen={}", agent.addr);
    tokio::task::spawn_blocking(move || {
        wait_for(EVENTUALLY, || {
            warnings()
                .lines()
                .any(|l| l.contains(&listen) && l.contains("more connections turned away"))
        })
    })
    .await
    .expect("waiting for the summary line");
    agent.answers().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_connections_from_the_clients_own_address_do_not_lock_it_out() {
    enough_files();
    let agent = Agent::start(Limits::default()).await;
    // More than every handshake slot, held open, from the very address the
    // client comes from (a NAT, or an attacker on the same host).
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(TcpStream::connect(agent.addr).await.expect("connect"));
    }
    for _ in 0..3 {
        agent.answers().await;
    }
    drop(silent);
}

// === TLS sessions that never speak HTTP/2, and idle ones ===

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_session_without_the_http2_preface_is_closed() {
    let _ = super::captured_logs();
    let agent = Agent::start(Limits {
        handshake_timeout: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    let mut silent = agent.tls().await;
    let local = silent.get_ref().0.local_addr().expect("local addr");
    assert!(
        closed_by_agent(&mut silent).await,
        "a session without the HTTP/2 preface stays open"
    );
    // Closed for the missing preface, not for a refused certificate.
    let peer = format!("peer={local}");
    tokio::task::spawn_blocking(move || {
        wait_for(EVENTUALLY, || {
            warnings()
                .lines()
                .any(|l| l.contains(&peer) && l.contains("no HTTP/2 preface"))
        })
    })
    .await
    .expect("waiting for the log line");
    agent.answers().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_at_its_connection_limit_is_refused_until_it_closes_one() {
    let agent = Agent::start(Limits {
        // No deadline gets in the way: connections stay until closed.
        handshake_timeout: Duration::from_secs(3600),
        max_connections: 8,
        max_connections_per_peer: 4,
        ..Limits::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut tls = agent.tls().await;
        speak_http2(&mut tls).await;
        held.push(tls);
    }
    // A fifth from the same address is closed, during its handshake or
    // right after it.
    let own = IpAddr::from([127, 0, 0, 1]);
    match agent.tls_from(own).await {
        Err(_) => {}
        Ok(mut fifth) => assert!(
            closed_by_agent(&mut fifth).await,
            "a fifth connection from one address stays open"
        ),
    }
    // Another network has room of its own.
    let mut other = agent
        .tls_from(IpAddr::from([127, 0, 3, 1]))
        .await
        .expect("a session from another address");
    speak_http2(&mut other).await;

    // Once the peer closes its connections, it gets in again.
    drop(held);
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        let answered =
            match Client::connect(&agent.addr.to_string(), Some(agent.pki.client_tls())).await {
                Ok(client) => client.host().await.is_ok(),
                Err(_) => false,
            };
        if answered {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the peer's connections were never given back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An HTTP/2 client over a fresh TLS session, its connection driven by a
/// task of its own that ends when the agent closes the connection.
pub(crate) async fn http2_client(
    agent: &Agent,
) -> (h2::client::SendRequest<Bytes>, JoinHandle<()>) {
    let tls = agent.tls().await;
    let (send, connection) = h2::client::handshake(tls).await.expect("HTTP/2 handshake");
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    (send, driver)
}

/// A gRPC request for `method` of HostInspector carrying `message`.
pub(crate) fn grpc_request(method: &str) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!(
            "https://localhost/hostscope.v1.HostInspector/{method}"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("request")
}

/// `message` in gRPC's length-prefixed framing.
pub(crate) fn grpc_frame(message: &impl prost::Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut frame = Vec::with_capacity(5 + body.len());
    frame.push(0);
    frame.extend_from_slice(&u32::try_from(body.len()).expect("small").to_be_bytes());
    frame.extend_from_slice(&body);
    Bytes::from(frame)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_connection_is_closed_but_one_with_a_call_open_is_not() {
    let agent = Agent::start(Limits {
        idle_timeout: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;

    // A connection that carries a watch.
    let (mut busy, busy_driver) = http2_client(&agent).await;
    let (watch, mut request) = busy
        .send_request(grpc_request("WatchProcesses"), false)
        .expect("send watch");
    request
        .send_data(
            grpc_frame(&pb::WatchProcessesRequest {
                // No process has this name: the watch stays open and quiet.
                filter: Some(pb::ProcessFilter {
                    name: "no-such-process-name-7c1e".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            true,
        )
        .expect("send watch request");
    let watch = watch.await.expect("watch response headers");
    assert_eq!(watch.status(), 200);
    assert!(
        watch.headers().get("grpc-status").is_none(),
        "the watch failed at once: {:?}",
        watch.headers()
    );

    // A connection that carries nothing, opened after the busy one. Its
    // HTTP/2 client answers the agent's pings, so only the idle timeout
    // ends it.
    let (_idle, idle_driver) = http2_client(&agent).await;
    tokio::time::timeout(EVENTUALLY, idle_driver)
        .await
        .expect("an idle connection stays open")
        .expect("driver task");

    // The busy connection has been open longer than the idle one was, and
    // is still served.
    assert!(!busy_driver.is_finished(), "the busy connection was closed");
    let pid_exists = pb::PidExistsRequest {
        pid: std::process::id(),
    };
    let (status, message) =
        raw_call(&mut busy, "PidExists", grpc_frame(&pid_exists).to_vec()).await;
    assert_eq!(status, "0", "{message}");
    drop(watch);
    drop(busy);
}

// === Streams a client never reads ===

/// An HTTP/2 client whose receive windows are 0, so that it takes none of
/// its streams' data, until `open` is sent.
pub(crate) struct Window0 {
    send: h2::client::SendRequest<Bytes>,
    open: Option<oneshot::Sender<()>>,
    pub(crate) driver: JoinHandle<()>,
}

impl Window0 {
    pub(crate) async fn connect(agent: &Agent) -> Window0 {
        let tls = agent.tls().await;
        let (send, mut connection) = h2::client::Builder::new()
            .initial_window_size(0)
            .handshake::<_, Bytes>(tls)
            .await
            .expect("HTTP/2 handshake");
        let (open, opened) = oneshot::channel::<()>();
        let driver = tokio::spawn(async move {
            tokio::select! {
                _ = &mut connection => return,
                opened = opened => {
                    if opened.is_ok() {
                        connection
                            .set_initial_window_size(1 << 20)
                            .expect("open the windows");
                    }
                }
            }
            let _ = connection.await;
        });
        Window0 {
            send,
            open: Some(open),
            driver,
        }
    }

    /// Starts a call of `method` with `message`; its response headers.
    pub(crate) async fn call(
        &mut self,
        method: &str,
        message: &impl prost::Message,
    ) -> h2::client::ResponseFuture {
        let (response, mut request) = self
            .send
            .send_request(grpc_request(method), false)
            .expect("send request");
        request
            .send_data(grpc_frame(message), true)
            .expect("send request message");
        response
    }

    /// From now on, takes the data of its streams.
    pub(crate) fn open(&mut self) {
        if let Some(open) = self.open.take() {
            let _ = open.send(());
        }
    }
}

/// The grpc-status and grpc-message that end `response`, reading (and
/// dropping) its data. grpc-message is percent-encoded: only its spaces
/// are decoded, which is all these tests read.
pub(crate) async fn final_status(response: http::Response<h2::RecvStream>) -> (String, String) {
    let (head, mut body) = response.into_parts();
    let mut fields = head.headers;
    if fields.get("grpc-status").is_none() {
        while let Some(data) = body.data().await {
            let data = data.expect("body");
            let _ = body.flow_control().release_capacity(data.len());
        }
        fields = body
            .trailers()
            .await
            .expect("trailers")
            .expect("grpc trailers");
    }
    let text = |name: &str| {
        fields
            .get(name)
            .map(|v| v.to_str().expect("ascii").replace("%20", " "))
            .unwrap_or_default()
    };
    (text("grpc-status"), text("grpc-message"))
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_a_client_never_reads_do_not_starve_other_clients() {
    let agent = Agent::start(Limits::default()).await;
    let scans = Options::default().max_concurrent_scans;
    let mut stalled = Window0::connect(&agent).await;
    // Twice as many listings as there are scan permits, none of them read.
    let mut held = Vec::new();
    for _ in 0..2 * scans {
        held.push(
            stalled
                .call("ListProcesses", &pb::ListProcessesRequest::default())
                .await,
        );
    }
    // Their headers arrive (they are not flow-controlled): the agent has
    // taken every one of them on.
    let mut responses = Vec::new();
    for response in held {
        let response = tokio::time::timeout(EVENTUALLY, response)
            .await
            .expect("a stalled listing's headers")
            .expect("response");
        responses.push(response);
    }

    // Meanwhile a well-behaved client lists processes, again and again.
    let client = agent.client().await;
    for _ in 0..3 {
        let listing = tokio::time::timeout(EVENTUALLY, async {
            let stream = client
                .processes(&[pb::ProcessField::Name], pb::ProcessFilter::default())
                .await
                .expect("listing");
            tokio_stream::StreamExt::collect::<Vec<_>>(stream).await
        })
        .await
        .expect("a listing starved by streams nobody reads");
        let pids: Vec<u32> = listing
            .into_iter()
            .map(|p| p.expect("process").pid())
            .collect();
        assert!(pids.contains(&std::process::id()));
    }
    drop(responses);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_whose_client_takes_nothing_is_ended_with_a_status_and_frees_its_slot() {
    let agent = Agent::start_with(
        Limits::default(),
        Options {
            stream_stall_timeout: Duration::from_secs(1),
            watch: WatchOptions {
                max_watchers_per_client: 1,
                watcher_buffer: 4,
                ..WatchOptions::default()
            },
            ..Options::default()
        },
        Audit::log_only(),
    )
    .await;
    let mut stalled = Window0::connect(&agent).await;
    // Every process's events, none of them taken.
    let response = stalled
        .call("WatchProcesses", &pb::WatchProcessesRequest::default())
        .await;
    let response = tokio::time::timeout(EVENTUALLY, response)
        .await
        .expect("the watch's headers")
        .expect("response");
    assert!(
        response.headers().get("grpc-status").is_none(),
        "{:?}",
        response.headers()
    );

    // Processes start and exit (some of them this test's own) until the
    // watch is ended: then the client's only watcher slot is free again.
    let client = agent.client().await;
    let mut raw = pb::host_inspector_client::HostInspectorClient::new(client.channel());
    let quiet = pb::WatchProcessesRequest {
        filter: Some(pb::ProcessFilter {
            name: "no-such-process-name-7c1e".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    let second = loop {
        tokio::task::spawn_blocking(|| {
            for _ in 0..4 {
                let _ = std::process::Command::new("true").status();
            }
        })
        .await
        .expect("spawning true");
        match raw.watch_processes(quiet.clone()).await {
            Ok(stream) => break stream,
            Err(status) => assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled watch keeps its slot"
        );
    };

    // Should the client read again, it learns why its watch ended.
    stalled.open();
    let (code, message) = tokio::time::timeout(EVENTUALLY, final_status(response))
        .await
        .expect("the ended watch's status");
    assert_eq!(code, "4", "DEADLINE_EXCEEDED: {message}");
    assert!(message.contains("took none of this stream"), "{message}");
    drop(second);
    drop(stalled.driver);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_is_not_held_up_by_watches_nobody_reads() {
    let mut agent = Agent::start(Limits {
        shutdown_grace: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    let mut stalled = Window0::connect(&agent).await;
    let mut watches = Vec::new();
    for _ in 0..3 {
        let response = stalled
            .call("WatchProcesses", &pb::WatchProcessesRequest::default())
            .await;
        watches.push(
            tokio::time::timeout(EVENTUALLY, response)
                .await
                .expect("the watch's headers")
                .expect("response"),
        );
    }
    agent
        .shut_down("shutdown waits for watches nobody reads")
        .await;
    drop(watches);
}

// === Bad values ===

/// A child that sleeps, killed and reaped on drop.
struct Sleeper(std::process::Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An agent on which the certificate `operator` may signal, auditing to
/// `path`.
pub(crate) async fn operator_agent(path: &std::path::Path) -> Agent {
    Agent::start_with(
        Limits::default(),
        Options {
            policy: Policy {
                operators: vec!["operator".to_owned()],
                ..Policy::default()
            },
            ..Options::default()
        },
        Audit::to_file(path).expect("audit file"),
    )
    .await
}

/// The audit file's lines.
pub(crate) fn audit_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("audit file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_finite_create_time_is_refused_and_nothing_is_signalled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let agent = operator_agent(&path).await;
    let operator = Client::connect(&agent.addr.to_string(), Some(agent.pki.operator_tls()))
        .await
        .expect("operator connects");
    let mut sleeper = Sleeper(
        std::process::Command::new("sleep")
            .arg("300")
            .spawn()
            .expect("spawn sleep"),
    );
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = operator
            .signal(sleeper.0.id(), "KILL", Some(bad))
            .await
            .expect_err("a signal with a non-finite create_time");
        assert!(
            matches!(&err, hostscope_client::Error::InvalidArgument { message }
                if message.contains("expected_create_time")),
            "{bad}: {err:?}"
        );
    }
    assert!(
        sleeper.0.try_wait().expect("try_wait").is_none(),
        "the process was signalled"
    );
    let refused: Vec<_> = audit_lines(&path)
        .into_iter()
        .filter(|l| l["reason"] == "INVALID_ARGUMENT")
        .collect();
    assert_eq!(refused.len(), 3, "{refused:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signal_request_refused_before_decoding_is_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let agent = operator_agent(&path).await;
    let (mut send, _driver) = http2_client(&agent).await;
    // Field 2 (signal) as a string that is not UTF-8.
    let (code, message) = raw_call(
        &mut send,
        "SignalProcess",
        vec![0, 0, 0, 0, 3, 0x12, 1, 0xff],
    )
    .await;
    assert_eq!(code, "3", "{message}");
    let lines = audit_lines(&path);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["outcome"], "refused");
    assert_eq!(line["reason"], "INVALID_ARGUMENT");
    assert_eq!(line["client"], "client");
    assert!(
        line["message"]
            .as_str()
            .expect("message")
            .contains("malformed SignalProcess"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pid_asked_for_thirty_thousand_times_is_answered_once() {
    let agent = Agent::start(Limits::default()).await;
    let client = agent.client().await;
    // Pid 1 takes one byte on the wire: 30,000 of them fit a request.
    let stream = client
        .processes(
            &[pb::ProcessField::Name],
            pb::ProcessFilter {
                pids: vec![1; 30_000],
                ..Default::default()
            },
        )
        .await
        .expect("listing");
    let listed: Vec<u32> = tokio_stream::StreamExt::collect::<Vec<_>>(stream)
        .await
        .into_iter()
        .map(|p| p.expect("process").pid())
        .collect();
    assert_eq!(listed, [1]);
}

// === Huge strings ===

#[tokio::test(flavor = "multi_thread")]
async fn huge_signal_names_are_bounded_in_the_audit_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let agent = operator_agent(&path).await;
    let reader = agent.client().await;
    let operator = Client::connect(&agent.addr.to_string(), Some(agent.pki.operator_tls()))
        .await
        .expect("operator connects");
    let huge = "A".repeat(60_000);
    let pid = missing_pid();
    const CALLS: usize = 100;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..CALLS {
        // Half from a reader (refused for the role), half from an operator
        // (refused for the signal, whose message quotes it).
        let client = if i % 2 == 0 {
            reader.clone()
        } else {
            operator.clone()
        };
        let huge = huge.clone();
        calls.spawn(async move { client.signal(pid, &huge, None).await });
    }
    while let Some(result) = calls.join_next().await {
        assert!(
            result.expect("call task").is_err(),
            "a huge signal was sent"
        );
    }

    // Every attempt is accounted for, one line each or in a summary, and
    // no line holds more than a trace of the name.
    let accounted = |text: &str| -> usize {
        text.lines()
            .map(|l| {
                let line: serde_json::Value = serde_json::from_str(l).expect("JSON line");
                match line["outcome"].as_str() {
                    Some("refused") => 1,
                    Some("suppressed") => line["count"].as_u64().expect("count") as usize,
                    other => panic!("unexpected outcome {other:?}: {l}"),
                }
            })
            .sum()
    };
    let audit_path = path.clone();
    tokio::task::spawn_blocking(move || {
        wait_for(EVENTUALLY, || {
            accounted(&std::fs::read_to_string(&audit_path).expect("audit file")) == CALLS
        })
    })
    .await
    .expect("waiting for the audit lines");
    let text = std::fs::read_to_string(&path).expect("audit file");
    for line in text.lines() {
        assert!(line.len() < 2048, "an audit line of {} bytes", line.len());
    }
    // The refusal message quotes the name, cut to a few hundred bytes.
    assert!(
        !text.contains(&"A".repeat(600)),
        "the name was written whole"
    );
    assert!(text.contains("[60000 bytes]"), "{text}");
    agent.answers().await;
}

/// Sends raw `body` as the request of `method` and returns the status code
/// and message.
pub(crate) async fn raw_call(
    send: &mut h2::client::SendRequest<Bytes>,
    method: &str,
    body: Vec<u8>,
) -> (String, String) {
    let (response, mut request) = send
        .send_request(grpc_request(method), false)
        .expect("send request");
    request
        .send_data(Bytes::from(body), true)
        .expect("send body");
    final_status(response.await.expect("response")).await
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_oversized_requests_are_invalid_arguments() {
    let agent = Agent::start(Limits::default()).await;
    let (mut send, _driver) = http2_client(&agent).await;
    const INVALID_ARGUMENT: &str = "3";

    // A varint that never ends.
    let (code, message) = raw_call(&mut send, "GetProcess", vec![0, 0, 0, 0, 2, 0x08, 0xff]).await;
    assert_eq!(code, INVALID_ARGUMENT, "{message}");
    assert!(message.contains("malformed"), "{message}");

    // More than the request limit.
    let mut big = vec![0, 0, 2, 0, 0];
    big.resize(5 + 128 * 1024, 0);
    let (code, message) = raw_call(&mut send, "GetHost", big).await;
    assert_eq!(code, INVALID_ARGUMENT, "{message}");
    assert_eq!(
        message,
        "request too large: 131072 bytes, the limit is 65536 bytes"
    );

    // No message at all.
    let (code, message) = raw_call(&mut send, "PidExists", Vec::new()).await;
    assert_eq!(code, INVALID_ARGUMENT, "{message}");

    // A huge string through the client library: too large as well.
    let err = agent
        .client()
        .await
        .signal(missing_pid(), &"A".repeat(100_000), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, hostscope_client::Error::InvalidArgument { message } if message.contains("too large")),
        "{err:?}"
    );

    // A well-formed call on the same connection is answered.
    let (code, message) = raw_call(
        &mut send,
        "PidExists",
        grpc_frame(&pb::PidExistsRequest {
            pid: std::process::id(),
        })
        .to_vec(),
    )
    .await;
    assert_eq!(code, "0", "{message}");
}

// === Shutdown ===

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_closes_connections_still_busy_after_the_grace_period() {
    let mut agent = Agent::start(Limits {
        shutdown_grace: Duration::from_secs(1),
        request_timeout: Duration::from_secs(3600),
        ..Limits::default()
    })
    .await;
    // A call that never ends by itself: its request message never comes.
    let (mut send, driver) = http2_client(&agent).await;
    let (response, _request_body) = send
        .send_request(grpc_request("PidExists"), false)
        .expect("send request");
    agent
        .shut_down("the agent waits for a call that never ends")
        .await;
    tokio::time::timeout(EVENTUALLY, driver)
        .await
        .expect("the connection outlives the agent")
        .expect("driver task");
    drop(response);
}
