//! The client against a stand-in agent: a real tonic server over real
//! (m)TLS on 127.0.0.1, answering from canned data. It checks what the
//! client and the command line make of real handshakes, real rejections
//! and real rich errors, with answers that a real agent's host would not
//! give the same way twice.

use std::{collections::HashMap, net::SocketAddr, path::Path, pin::Pin, sync::Arc};

use hostscope_client::{
    Client, Error, RejectedBy,
    proto::{self, host_inspector_server::HostInspectorServer},
};
use hostscope_integration::{CliRun, Pki, hostscope_async};
use tokio::{
    net::TcpListener,
    sync::{Notify, oneshot},
};
use tokio_stream::{
    Stream, StreamExt,
    wrappers::{ReceiverStream, TcpListenerStream},
};
use tonic::{
    Code, Request, Response, Status,
    transport::{Certificate, Identity, Server, ServerTlsConfig},
};
use tonic_types::{ErrorDetails, StatusExt};

/// Canned answers: pid 1 is alive, pid 2 a zombie, pid 3 unreadable, and
/// every other pid missing. With `release`, a listing sends its first
/// batch and holds the rest back until the test notifies it.
struct Mock {
    release: Option<Arc<Notify>>,
}

fn rich(code: Code, reason: &str, pid: u32) -> Status {
    let meta = HashMap::from([("pid".to_owned(), pid.to_string())]);
    Status::with_error_details(
        code,
        format!("{reason} for {pid}"),
        ErrorDetails::with_error_info(reason, proto::ERROR_DOMAIN, meta),
    )
}

fn process(pid: u32) -> proto::Process {
    proto::Process {
        pid,
        ppid: Some(1),
        name: Some(format!("p{pid}")),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl proto::host_inspector_server::HostInspector for Mock {
    async fn get_host(
        &self,
        _: Request<proto::GetHostRequest>,
    ) -> Result<Response<proto::Host>, Status> {
        Ok(Response::new(proto::Host {
            hostname: "mock".to_owned(),
            ..Default::default()
        }))
    }

    type ListProcessesStream =
        Pin<Box<dyn Stream<Item = Result<proto::ProcessBatch, Status>> + Send>>;

    async fn list_processes(
        &self,
        _: Request<proto::ListProcessesRequest>,
    ) -> Result<Response<Self::ListProcessesStream>, Status> {
        let batches = vec![
            Ok(proto::ProcessBatch {
                processes: vec![process(10), process(11)],
            }),
            Ok(proto::ProcessBatch { processes: vec![] }),
            Ok(proto::ProcessBatch {
                processes: vec![process(12)],
            }),
        ];
        let Some(release) = self.release.clone() else {
            return Ok(Response::new(Box::pin(tokio_stream::iter(batches))));
        };
        let (tx, rx) = tokio::sync::mpsc::channel(batches.len());
        tokio::spawn(async move {
            let mut batches = batches.into_iter();
            if let Some(first) = batches.next()
                && tx.send(first).await.is_err()
            {
                return;
            }
            release.notified().await;
            for batch in batches {
                if tx.send(batch).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_process(
        &self,
        request: Request<proto::GetProcessRequest>,
    ) -> Result<Response<proto::Process>, Status> {
        match request.into_inner().pid {
            1 => Ok(Response::new(process(1))),
            2 => Ok(Response::new(proto::Process {
                status: Some(proto::ProcessStatus::Zombie as i32),
                field_errors: vec![proto::FieldError {
                    field: proto::ProcessField::Exe as i32,
                    kind: proto::ErrorKind::ZombieProcess as i32,
                }],
                ..process(2)
            })),
            3 => Err(rich(Code::PermissionDenied, "ACCESS_DENIED", 3)),
            0 => Err(Status::invalid_argument("pid 0 is not a process")),
            pid => Err(rich(Code::NotFound, "NO_SUCH_PROCESS", pid)),
        }
    }

    async fn pid_exists(
        &self,
        request: Request<proto::PidExistsRequest>,
    ) -> Result<Response<proto::PidExistsResponse>, Status> {
        let pid = request.into_inner().pid;
        Ok(Response::new(proto::PidExistsResponse {
            exists: pid == 1 || pid == 2,
        }))
    }

    async fn list_net_interfaces(
        &self,
        _: Request<proto::ListNetInterfacesRequest>,
    ) -> Result<Response<proto::ListNetInterfacesResponse>, Status> {
        Ok(Response::new(proto::ListNetInterfacesResponse {
            interfaces: vec![proto::NetInterface {
                name: "lo".to_owned(),
                ..Default::default()
            }],
        }))
    }

    // The stand-in has no zombies to find and signals nothing: these
    // tests are about connections, errors and the CLI, not those calls.
    async fn find_zombies(
        &self,
        _: Request<proto::FindZombiesRequest>,
    ) -> Result<Response<proto::FindZombiesResponse>, Status> {
        Err(Status::unimplemented("the stand-in agent finds no zombies"))
    }

    async fn signal_process(
        &self,
        _: Request<proto::SignalProcessRequest>,
    ) -> Result<Response<proto::SignalProcessResponse>, Status> {
        Err(Status::unimplemented("the stand-in agent signals nothing"))
    }

    type WatchProcessesStream = tokio_stream::Empty<Result<proto::ProcessEvent, Status>>;

    async fn watch_processes(
        &self,
        _: Request<proto::WatchProcessesRequest>,
    ) -> Result<Response<Self::WatchProcessesStream>, Status> {
        Err(Status::unimplemented("the stand-in agent watches nothing"))
    }

    async fn get_system(
        &self,
        _: Request<proto::GetSystemRequest>,
    ) -> Result<Response<proto::System>, Status> {
        Err(Status::unimplemented("the stand-in agent has no system"))
    }

    async fn list_disks(
        &self,
        _: Request<proto::ListDisksRequest>,
    ) -> Result<Response<proto::ListDisksResponse>, Status> {
        Err(Status::unimplemented("the stand-in agent has no disks"))
    }

    type ListConnectionsStream = tokio_stream::Empty<Result<proto::ConnectionBatch, Status>>;

    async fn list_connections(
        &self,
        _: Request<proto::ListConnectionsRequest>,
    ) -> Result<Response<Self::ListConnectionsStream>, Status> {
        Err(Status::unimplemented("the stand-in agent has no sockets"))
    }

    type ListOpenFilesStream = tokio_stream::Empty<Result<proto::OpenFileBatch, Status>>;

    async fn list_open_files(
        &self,
        _: Request<proto::ListOpenFilesRequest>,
    ) -> Result<Response<Self::ListOpenFilesStream>, Status> {
        Err(Status::unimplemented(
            "the stand-in agent has no open files",
        ))
    }
}

/// A running stand-in agent; stops when dropped.
struct Agent {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Agent {
    /// Starts an agent; with `pki_dir`, over mTLS with `agent.pem` from it
    /// and client certificates demanded from its CA.
    async fn start(pki_dir: Option<&Path>) -> Agent {
        Agent::start_held(pki_dir, None).await
    }

    /// [`Agent::start`], with listings held after their first batch until
    /// `release` is notified.
    async fn start_held(pki_dir: Option<&Path>, release: Option<Arc<Notify>>) -> Agent {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let mut builder = Server::builder();
        if let Some(dir) = pki_dir {
            let read = |name: &str| std::fs::read(dir.join(name)).expect("pki file");
            let tls = ServerTlsConfig::new()
                .identity(Identity::from_pem(read("agent.pem"), read("agent-key.pem")))
                .client_ca_root(Certificate::from_pem(read("ca.pem")));
            builder = builder.tls_config(tls).expect("server TLS");
        }
        let router = builder.add_service(HostInspectorServer::new(Mock { release }));
        tokio::spawn(
            router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                drop(stopped.await)
            }),
        );
        Agent { addr, _stop: stop }
    }

    fn endpoint(&self) -> String {
        self.addr.to_string()
    }
}

#[tokio::test]
async fn calls_over_mutual_tls() {
    let pki = Pki::new();
    let agent = Agent::start(Some(pki.dir())).await;
    let client = Client::connect(&agent.endpoint(), Some(pki.client_tls()))
        .await
        .expect("connect");

    assert_eq!(client.host().await.expect("host").hostname, "mock");

    let pids: Vec<u32> = client
        .processes(
            &[proto::ProcessField::Name],
            proto::ProcessFilter::default(),
        )
        .await
        .expect("list")
        .map(|p| p.expect("process").pid())
        .collect()
        .await;
    assert_eq!(pids, [10, 11, 12], "batches are flattened in order");

    let zombie = client.process(2, &[]).await.expect("a zombie is returned");
    assert_eq!(zombie.status().ok(), Some(proto::ProcessStatus::Zombie));
    let e = zombie.exe().expect_err("a zombie's exe");
    assert!(
        matches!(e, Error::ZombieProcess { pid: 2, .. }) && e.is_not_found(),
        "{e:?}"
    );

    let e = client.process(4321, &[]).await.expect_err("missing pid");
    assert!(
        matches!(e, Error::NoSuchProcess { pid: Some(4321) }),
        "{e:?}"
    );
    let e = client.process(3, &[]).await.expect_err("unreadable pid");
    assert!(
        matches!(e, Error::AccessDenied { pid: Some(3), .. }),
        "{e:?}"
    );
    let e = client.process(0, &[]).await.expect_err("pid 0");
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");

    assert!(client.pid_exists(2).await.expect("pid_exists"));
    assert!(!client.pid_exists(5).await.expect("pid_exists"));
    assert_eq!(client.net_interfaces().await.expect("nics")[0].name, "lo");
}

#[tokio::test]
async fn a_client_without_a_certificate_is_told_so() {
    let pki = Pki::new();
    let agent = Agent::start(Some(pki.dir())).await;
    // TLS 1.3: the handshake completes from the client's view; the agent's
    // refusal arrives with the first call.
    let result = match Client::connect(&agent.endpoint(), Some(pki.anonymous_tls())).await {
        Ok(client) => client.host().await.map(drop),
        Err(e) => Err(e),
    };
    let e = result.expect_err("no client certificate");
    assert!(matches!(e, Error::NoClientCertificate { .. }), "{e:?}");
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_told_so() {
    let pki = Pki::new();
    let other = Pki::new();
    let agent = Agent::start(Some(pki.dir())).await;
    let mut config = pki.client_tls();
    config.identity = Some((
        std::fs::read(other.path("client.pem")).expect("read"),
        std::fs::read(other.path("client-key.pem")).expect("read"),
    ));
    let result = match Client::connect(&agent.endpoint(), Some(config)).await {
        Ok(client) => client.host().await.map(drop),
        Err(e) => Err(e),
    };
    let e = result.expect_err("foreign client certificate");
    assert!(
        matches!(
            e,
            Error::UnknownCa {
                side: RejectedBy::Agent,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn an_agent_from_another_ca_is_refused_at_connect() {
    let pki = Pki::new();
    let other = Pki::new();
    let agent = Agent::start(Some(other.dir())).await;
    let e = Client::connect(&agent.endpoint(), Some(pki.client_tls()))
        .await
        .expect_err("foreign agent");
    assert!(
        matches!(
            e,
            Error::UnknownCa {
                side: RejectedBy::Client,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_name_mismatch_is_refused_at_connect() {
    let pki = Pki::new();
    let agent = Agent::start(Some(pki.dir())).await;
    let mut config = pki.client_tls();
    config.server_name = Some("web9.example".to_owned());
    let e = Client::connect(&agent.endpoint(), Some(config))
        .await
        .expect_err("wrong name");
    assert!(
        matches!(&e, Error::NameMismatch { name, .. } if name == "web9.example"),
        "{e:?}"
    );
}

#[tokio::test]
async fn tls_and_plaintext_do_not_mix() {
    let pki = Pki::new();
    let tls_agent = Agent::start(Some(pki.dir())).await;
    let result = match Client::connect(&tls_agent.endpoint(), None).await {
        Ok(client) => client.host().await.map(drop),
        Err(e) => Err(e),
    };
    let e = result.expect_err("plaintext client, TLS agent");
    assert!(matches!(e, Error::NotTls { .. }), "{e:?}");

    let plain_agent = Agent::start(None).await;
    let e = Client::connect(&plain_agent.endpoint(), Some(pki.client_tls()))
        .await
        .expect_err("TLS client, plaintext agent");
    assert!(matches!(e, Error::NotTls { .. }), "{e:?}");

    // And plaintext to plaintext works.
    let client = Client::connect(&plain_agent.endpoint(), None)
        .await
        .expect("h2c");
    assert_eq!(client.host().await.expect("host").hostname, "mock");
}

// === the command line ===

/// The command line end to end, in process, against the stand-in agent.
mod cli {
    use super::*;

    /// Runs `hostscope ARGS` in process with `stdin`; returns its exit
    /// code, stdout and stderr.
    async fn run_with(args: Vec<String>, stdin: &str) -> (u8, String, String) {
        let args = args.into_iter().map(Into::into).collect();
        let CliRun { code, out, err } = hostscope_async(args, stdin.to_owned()).await;
        (code, out, err)
    }

    /// Runs `hostscope ARGS` in process with nothing on stdin.
    async fn hostscope(args: Vec<String>) -> (u8, String, String) {
        run_with(args, "").await
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cli_over_mutual_tls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki_dir = dir.path().join("pki");
        let d = pki_dir.to_str().expect("utf-8 path").to_owned();
        let (code, out, err) = hostscope(args(&["pki", "init", "--dir", &d])).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("ca-key.pem"), "{out}");
        let (code, _, err) = hostscope(args(&["pki", "init", "--dir", &d])).await;
        assert_eq!(code, 1);
        assert!(
            err.starts_with("error: ") && err.contains("exists already"),
            "{err}"
        );
        for role in [
            ["--name", "agent", "--server", "--san", "127.0.0.1"],
            ["--name", "alice", "--client", "--san", "alice"],
        ] {
            let mut a = args(&["pki", "issue", "--dir", &d]);
            a.extend(args(&role));
            let (code, _, err) = hostscope(a).await;
            assert_eq!(code, 0, "{err}");
        }

        let agent = Agent::start(Some(&pki_dir)).await;
        let endpoint = agent.endpoint();
        let connect = |more: &[&str]| {
            let mut a = args(&["--host", &endpoint, "--ca", &format!("{d}/ca.pem")]);
            a.extend(args(&[
                "--cert",
                &format!("{d}/alice.pem"),
                "--key",
                &format!("{d}/alice-key.pem"),
            ]));
            a.extend(args(more));
            a
        };

        let (code, out, err) = hostscope(connect(&["host"])).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with("hostname: mock\n"), "{out}");

        let (code, out, err) = hostscope(connect(&["ps", "--output", "json"])).await;
        assert_eq!(code, 0, "{err}");
        let records: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
        assert_eq!(records.as_array().map(Vec::len), Some(3), "{out}");
        assert!(
            out.contains(&format!(
                "{{\n    \"host\": \"{endpoint}\",\n    \"pid\": 10,"
            )),
            "{out}"
        );

        let (code, out, err) = hostscope(connect(&[
            "ps", "--fields", "pid,name", "--output", "ndjson",
        ]))
        .await;
        assert_eq!(code, 0, "{err}");
        let first = out.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            format!(r#"{{"host":"{endpoint}","pid":10,"name":"p10"}}"#)
        );

        let (code, out, err) = hostscope(connect(&["ps", "--fields", "name,ppid"])).await;
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            out,
            "PID NAME PPID\n 10 p10     1\n 11 p11     1\n 12 p12     1\n"
        );

        let (code, out, err) = hostscope(connect(&["proc", "2"])).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("\nexe: <zombie process>\n"), "{out}");
        assert!(out.starts_with("pid: 2\nppid: 1\nname: p2\n"), "{out}");

        // The host answered, but not with the process: that host failed.
        let (code, out, err) = hostscope(connect(&["proc", "4321"])).await;
        assert_eq!((code, out.as_str()), (2, ""));
        assert_eq!(err, "error: no such process (pid 4321)\n");

        let (code, out, err) = hostscope(connect(&["nics", "-o", "ndjson"])).await;
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            out,
            format!("{{\"host\":\"{endpoint}\",\"name\":\"lo\",\"addresses\":[]}}\n")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cli_usage_and_connection_errors_are_clear() {
        let (code, _, err) = hostscope(args(&["host"])).await;
        assert_eq!(code, 1);
        assert!(
            err.contains("--ca FILE --cert FILE --key FILE") && err.contains("--plaintext"),
            "{err}"
        );

        let (code, _, err) = hostscope(args(&["ps", "--fields", "pid,rss"])).await;
        assert_eq!(code, 1, "a usage error");
        assert!(
            err.contains("unknown field \"rss\"; valid fields: pid, ppid"),
            "{err}"
        );

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = listener.local_addr().expect("addr").to_string();
        drop(listener);
        let (code, _, err) = hostscope(args(&["--plaintext", "--host", &endpoint, "host"])).await;
        assert_eq!(code, 2, "the host failed; a single host gets no summary");
        assert_eq!(
            err,
            format!(
                "error: {endpoint} refused the connection: is hostscope-agent running and listening there?\n"
            )
        );

        let agent = Agent::start(None).await;
        let (code, out, err) = hostscope(args(&[
            "host",
            "--plaintext",
            "--host",
            &agent.endpoint(),
            "-o",
            "json",
        ]))
        .await;
        assert_eq!(code, 0, "{err}");
        assert!(
            out.starts_with(&format!(
                "{{\n  \"host\": \"{}\",\n  \"hostname\": \"mock\"",
                agent.endpoint()
            )),
            "{out}"
        );
    }

    // === many hosts ===

    /// Two stand-in agents over mTLS and a closed port, and the flags
    /// that reach them with the fleet's PKI.
    struct ThreeHosts {
        _pki: Pki,
        _agents: [Agent; 2],
        good: [String; 2],
        closed: String,
        tls: Vec<String>,
    }

    async fn three_hosts() -> ThreeHosts {
        let pki = Pki::new();
        let agents = [
            Agent::start(Some(pki.dir())).await,
            Agent::start(Some(pki.dir())).await,
        ];
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let closed = listener.local_addr().expect("addr").to_string();
        drop(listener);
        let file = |name: &str| pki.path(name).display().to_string();
        let tls = vec![
            "--ca".to_owned(),
            file("ca.pem"),
            "--cert".to_owned(),
            file("client.pem"),
            "--key".to_owned(),
            file("client-key.pem"),
        ];
        ThreeHosts {
            good: [agents[0].endpoint(), agents[1].endpoint()],
            closed,
            _agents: agents,
            _pki: pki,
            tls,
        }
    }

    impl ThreeHosts {
        /// The TLS flags, `--hosts` with all three, and `more`.
        fn args(&self, more: &[&str]) -> Vec<String> {
            let mut a = self.tls.clone();
            let hosts = format!("{},{},{}", self.good[0], self.closed, self.good[1]);
            a.extend(args(&["--hosts", &hosts, "--timeout", "5s"]));
            a.extend(args(more));
            a
        }

        /// Runs `more` against the three hosts, which always ends in exit
        /// code 2 (one host is dead); returns stdout and stderr.
        async fn ask(&self, more: &[&str]) -> (String, String) {
            let (code, out, err) = run_with(self.args(more), "").await;
            assert_eq!(code, 2, "{err}");
            (out, err)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ps_over_three_hosts_names_the_dead_one_and_exits_2() {
        let fleet = three_hosts().await;
        let (out, err) = fleet
            .ask(&["ps", "--fields", "pid,name", "--retries", "0"])
            .await;
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(lines[0].starts_with("2 ok, 1 failed in "), "{err}");
        assert_eq!(
            lines[1],
            format!(
                "  {0}: connection-refused: refused the connection: is hostscope-agent \
                 running and listening there?",
                fleet.closed
            )
        );
        // A part per good host, each under its heading, in either order.
        for good in &fleet.good {
            let part = format!("== {good}\nPID NAME\n 10 p10\n 11 p11\n 12 p12\n");
            assert!(out.contains(&part), "{out}");
        }
        assert!(!out.contains(&fleet.closed), "{out}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ndjson_lines_parse_and_carry_their_host() {
        let fleet = three_hosts().await;
        let (out, _) = fleet.ask(&["ps", "-o", "ndjson"]).await;
        let mut per_host = HashMap::<String, Vec<u64>>::new();
        for line in out.lines() {
            let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let object = record.as_object().expect("an object");
            let (first, host) = object.iter().next().expect("a key");
            assert_eq!(first, "host", "host comes first: {line}");
            let host = host.as_str().expect("a string").to_owned();
            let pid = record["pid"].as_u64().expect("a pid");
            per_host.entry(host).or_default().push(pid);
        }
        assert_eq!(per_host.len(), 2, "{out}");
        for good in &fleet.good {
            assert_eq!(
                per_host.get(good).map(Vec::as_slice),
                Some(&[10, 11, 12][..])
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn csv_parses_with_a_header() {
        let fleet = three_hosts().await;
        let (out, _) = fleet
            .ask(&["ps", "--fields", "pid,name,ppid,memory_info", "-o", "csv"])
            .await;
        let mut reader = csv::Reader::from_reader(out.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .expect("a header row")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            header[..5],
            ["host", "pid", "name", "ppid", "memory_info.rss"].map(String::from)
        );
        let rows: Vec<csv::StringRecord> =
            reader.records().collect::<Result<_, _>>().expect("rows");
        assert_eq!(rows.len(), 6, "{out}");
        for row in &rows {
            assert_eq!(row.len(), header.len());
            assert!(fleet.good.iter().any(|g| g == &row[0]), "{row:?}");
            assert_eq!(&row[2], &format!("p{}", &row[1]));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inventories_select_hosts_and_name_them() {
        let fleet = three_hosts().await;
        let inventory = format!(
            "[[hosts]]\nname = \"web1\"\naddress = \"{}\"\ngroups = [\"web\"]\n\n\
             [[hosts]]\nname = \"web2\"\naddress = \"{}\"\nlabels = {{ dc = \"fra1\" }}\n\n\
             [[hosts]]\nname = \"dead\"\naddress = \"{}\"\ngroups = [\"web\"]\n",
            fleet.good[0], fleet.good[1], fleet.closed
        );
        let mut a = fleet.tls.clone();
        a.extend(args(&[
            "--inventory",
            "-",
            "--group",
            "web",
            "host",
            "-o",
            "json",
        ]));
        let (code, out, err) = run_with(a, &inventory).await;
        assert_eq!(code, 2, "{err}");
        let records: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
        assert_eq!(records.as_array().map(Vec::len), Some(1), "{out}");
        assert_eq!(records[0]["host"], "web1");
        assert_eq!(records[0]["hostname"], "mock");
        assert!(
            err.contains(&format!("  dead ({}): connection-refused: ", fleet.closed)),
            "{err}"
        );

        // One file per host, named after it.
        let dir = tempfile::tempdir().expect("tempdir");
        let out_dir = dir.path().join("inventory");
        let mut a = fleet.tls.clone();
        a.extend(args(&[
            "--inventory",
            "-",
            "inventory",
            "--select",
            "dc=fra1",
            "--top",
            "2",
            "--out-dir",
            out_dir.to_str().expect("utf-8 path"),
        ]));
        let (code, out, err) = run_with(a, &inventory).await;
        assert_eq!(code, 0, "{err}");
        let path = out_dir.join("web2.json");
        assert_eq!(out, format!("{}\n", path.display()));
        let text = std::fs::read_to_string(&path).expect("the host's file");
        let record: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(record["host"], "web2");
        assert_eq!(record["system"]["hostname"], "mock");
        assert_eq!(record["interfaces"][0]["name"], "lo");
        assert_eq!(record["processes"]["total"], 3);
        assert_eq!(
            record["processes"]["top_rss"].as_array().map(Vec::len),
            Some(0)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_malformed_inventory_names_its_line() {
        let (code, out, err) = run_with(
            args(&["--plaintext", "--inventory", "-", "host"]),
            "[[hosts]]\nname = \"a\"\naddress = \"web1:http\"\n",
        )
        .await;
        assert_eq!((code, out.as_str()), (1, ""));
        assert!(err.starts_with("error: <stdin>:3: "), "{err}");
        assert!(err.contains("port"), "{err}");
    }
}

// === Streaming ===

/// How long a step may take on a loaded machine before the test gives up.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// `ps -o ndjson` over two real agents and a stand-in whose listing stops
/// after its first batch: the lines of every host, the held one's first
/// batch included, are on stdout while that host has not finished, and
/// its last batch follows once it is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_prints_each_batch_before_the_last_host_has_answered() {
    use std::io::BufRead;

    use hostscope_integration::{TestAgent, child::ChildGroup};

    let fast = TestAgent::start().await;
    let other = fast.sibling().await;
    let release = Arc::new(Notify::new());
    let held = Agent::start_held(Some(fast.pki.dir()), Some(Arc::clone(&release))).await;
    let home = tempfile::tempdir().expect("tempdir");
    let hosts = [fast.endpoint(), held.endpoint(), other.endpoint()];
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hostscope-cli"));
    command
        .arg("--ca")
        .arg(fast.pki.path("ca.pem"))
        .arg("--cert")
        .arg(fast.pki.path("client.pem"))
        .arg("--key")
        .arg(fast.pki.path("client-key.pem"))
        .args(["--hosts", &hosts.join(","), "--timeout", "10m"])
        .args(["ps", "--fields", "pid,name,status", "-o", "ndjson"])
        .env_remove("HOSTSCOPE_HOST")
        .env_remove("HOSTSCOPE_CA")
        .env_remove("HOSTSCOPE_CERT")
        .env_remove("HOSTSCOPE_KEY")
        // No profile of the user's.
        .env("XDG_CONFIG_HOME", home.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = ChildGroup::spawn(&mut command).expect("run hostscope");
    let stdout = child.take_stdout().expect("piped stdout");
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Pids by host, as the lines come.
    let mut seen: HashMap<String, Vec<u64>> = HashMap::new();
    let take = |seen: &mut HashMap<String, Vec<u64>>, line: String| {
        let record: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        let host = record["host"].as_str().expect("a host").to_owned();
        assert!(record["name"].is_string(), "{line}");
        let pid = record["pid"].as_u64().expect("a pid");
        seen.entry(host).or_default().push(pid);
    };
    let mut next = async || {
        tokio::time::timeout(LIMIT, lines.recv())
            .await
            .expect("a line within the limit")
    };
    loop {
        let ready = {
            let seen_of = |host: &String| seen.get(host).map_or(0, Vec::len);
            seen_of(&hosts[0]) > 0 && seen_of(&hosts[2]) > 0 && seen_of(&hosts[1]) == 2
        };
        if ready {
            break;
        }
        take(
            &mut seen,
            next()
                .await
                .expect("stdout open while the held host is held"),
        );
    }
    assert_eq!(seen[&hosts[1]], [10, 11]);
    // The held host has not finished, so neither has the query.
    assert!(child.try_wait().expect("wait").is_none());

    release.notify_one();
    while let Some(line) = next().await {
        take(&mut seen, line);
    }
    let status = child.wait(LIMIT);
    let mut err = String::new();
    if let Some(mut stderr) = child.take_stderr() {
        std::io::Read::read_to_string(&mut stderr, &mut err).expect("stderr");
    }
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.starts_with("3 ok, 0 failed in "), "{err}");
    assert_eq!(seen[&hosts[1]], [10, 11, 12]);
    assert_eq!(seen.len(), 3, "{seen:?}");
}
