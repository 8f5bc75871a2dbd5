//! End to end: a real agent over real mutual TLS on 127.0.0.1, reading this
//! host's real /proc, queried by the client crate and the command line.
//!
//! The workspace's only integration test binary: every module below is a
//! part of it, so the helpers and the dependencies link once.

use std::{
    collections::HashSet,
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use hostscope_client::{Client, Error, proto as pb};
use hostscope_integration::{TestAgent, Zombie, child::ChildGroup, missing_pid};
use hostscope_proto::EnumName;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_types::StatusExt;

mod backend_live;
mod child;
mod cli_env;
mod cli_polish;
mod ctrl_c;
mod files;
mod fleet;
mod fuzz_corpora;
mod hostile;
mod hostile_input;
mod hostile_limits;
mod hostile_tls;
mod mock_agent;
mod privacy;
mod privileges;
mod procx;
mod readme;
mod reap;
mod reload;
mod sim;
mod skip;
mod sockets;
mod store;
mod sys_cli;
mod system;
mod tidy;
mod watch;
mod watch_cli;
mod zombies;

async fn list(
    client: &Client,
    fields: &[pb::ProcessField],
    filter: pb::ProcessFilter,
) -> Vec<hostscope_client::Process> {
    let stream = client
        .processes(fields, filter)
        .await
        .expect("list processes");
    stream
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("process stream")
}

/// This process's start time as psutil computes it, from /proc directly.
fn own_create_time() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_comm = stat.rsplit_once(')').unwrap().1;
    // Fields after comm start at field 3 (state); starttime is field 22.
    let starttime: f64 = after_comm
        .split_whitespace()
        .nth(22 - 3)
        .unwrap()
        .parse()
        .unwrap();
    let btime: f64 = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    btime + starttime / ticks
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_contains_this_process_as_the_kernel_sees_it() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let me = std::process::id();
    let procs = list(&client, &[], pb::ProcessFilter::default()).await;
    assert!(procs.len() > 1, "only {} processes", procs.len());
    let own = procs
        .iter()
        .find(|p| p.pid() == me)
        .expect("own pid listed");

    // SAFETY: getppid/getuid/geteuid have no preconditions.
    let (ppid, uid, euid) = unsafe { (libc::getppid(), libc::getuid(), libc::geteuid()) };
    assert_eq!(own.ppid().unwrap(), ppid as u32);
    let args: Vec<String> = std::env::args().collect();
    assert_eq!(own.cmdline().unwrap(), args.as_slice());
    let exe = std::env::current_exe().unwrap();
    let base = exe.file_name().unwrap().to_str().unwrap();
    assert!(
        base.starts_with(own.name().unwrap()),
        "name {:?} vs exe {base}",
        own.name()
    );
    assert_eq!(own.exe().unwrap(), exe.to_str().unwrap());
    let uids = own.uids().unwrap();
    assert_eq!((uids.real, uids.effective), (uid, euid));
    let created = own.create_time().unwrap();
    assert!(
        (created - own_create_time()).abs() < 0.010,
        "create_time {created} vs {}",
        own_create_time()
    );
    assert!(own.memory_info().unwrap().rss > 0);
    assert!(own.num_threads().unwrap() >= 1);
    // This process sleeps while it awaits the answer, or runs.
    assert!(
        matches!(
            own.status().unwrap(),
            pb::ProcessStatus::Running | pb::ProcessStatus::Sleeping
        ),
        "{:?}",
        own.status()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_zombie_is_listed_and_refines_not_found() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let zombie = Zombie::spawn();

    let zombies = list(
        &client,
        &[pb::ProcessField::Status, pb::ProcessField::Ppid],
        pb::ProcessFilter {
            statuses: vec![pb::ProcessStatus::Zombie as i32],
            ..Default::default()
        },
    )
    .await;
    let listed = zombies
        .iter()
        .find(|p| p.pid() == zombie.pid)
        .expect("zombie listed");
    assert_eq!(listed.status().unwrap(), pb::ProcessStatus::Zombie);
    assert_eq!(listed.ppid().unwrap(), std::process::id());

    assert!(client.pid_exists(zombie.pid).await.unwrap());

    let p = client.process(zombie.pid, &[]).await.expect("get zombie");
    assert_eq!(p.status().unwrap(), pb::ProcessStatus::Zombie);
    let zombie_errors: HashSet<pb::ProcessField> = p
        .proto()
        .field_errors
        .iter()
        .filter(|e| e.kind == pb::ErrorKind::ZombieProcess as i32)
        .filter_map(|e| pb::ProcessField::try_from(e.field).ok())
        .collect();
    assert!(
        zombie_errors.contains(&pb::ProcessField::Exe),
        "field errors: {:?}",
        p.proto().field_errors
    );
    let err = p.exe().unwrap_err();
    assert!(
        matches!(err, Error::ZombieProcess { pid, ppid: Some(ppid), .. }
            if pid == zombie.pid && ppid == std::process::id()),
        "{err:?}"
    );
    assert!(err.is_not_found());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_pid_is_not_found_with_its_reason() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let pid = missing_pid();

    let err = client.process(pid, &[]).await.unwrap_err();
    assert!(matches!(err, Error::NoSuchProcess { .. }), "{err:?}");
    assert!(err.is_not_found());
    assert!(!client.pid_exists(pid).await.unwrap());

    // On the wire: NOT_FOUND with google.rpc.ErrorInfo, for any gRPC client.
    let mut raw = pb::host_inspector_client::HostInspectorClient::new(client.channel());
    let status = raw
        .get_process(pb::GetProcessRequest {
            pid,
            fields: vec![],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "NO_SUCH_PROCESS");
    assert_eq!(info.domain, "hostscope");
    assert_eq!(info.metadata["pid"], pid.to_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_an_invalid_argument_that_says_what_is_wrong() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let mut raw = pb::host_inspector_client::HostInspectorClient::new(client.channel());

    let status = raw
        .get_process(pb::GetProcessRequest {
            pid: 0,
            fields: vec![],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("pid"), "{status:?}");

    let status = raw
        .get_process(pb::GetProcessRequest {
            pid: 1,
            fields: vec![777],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("777"), "{status:?}");

    let err = client
        .processes(
            &[],
            pb::ProcessFilter {
                name: "[unclosed".into(),
                ..Default::default()
            },
        )
        .await;
    let err = match err {
        Err(e) => e,
        Ok(stream) => stream
            .collect::<Result<Vec<_>, _>>()
            .await
            .expect_err("malformed glob accepted"),
    };
    assert!(
        matches!(&err, Error::InvalidArgument { message } if message.contains("[unclosed")),
        "{err:?}"
    );

    // The agent keeps serving.
    assert!(client.pid_exists(std::process::id()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn field_selection_and_filters_are_honoured() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let me = std::process::id();
    let procs = list(
        &client,
        &[pb::ProcessField::Name, pb::ProcessField::Status],
        pb::ProcessFilter {
            pids: vec![me, 1],
            ..Default::default()
        },
    )
    .await;
    let pids: HashSet<u32> = procs.iter().map(|p| p.pid()).collect();
    assert_eq!(pids, HashSet::from([me, 1]));
    for p in &procs {
        let msg = p.proto();
        assert!(msg.name.is_some() && msg.status.is_some());
        assert!(msg.exe.is_none() && msg.memory_info.is_none() && msg.cmdline.is_empty());
        assert!(matches!(p.exe(), Err(Error::FieldNotRequested { .. })));
    }

    let own_name = procs
        .iter()
        .find(|p| p.pid() == me)
        .and_then(|p| p.name().ok().map(str::to_owned))
        .unwrap();
    let by_name = list(
        &client,
        &[pb::ProcessField::Name],
        pb::ProcessFilter {
            name: format!("{own_name}*"),
            ..Default::default()
        },
    )
    .await;
    assert!(by_name.iter().any(|p| p.pid() == me));
    assert!(
        by_name
            .iter()
            .all(|p| p.name().unwrap().starts_with(&own_name))
    );

    let children = list(
        &client,
        &[pb::ProcessField::Ppid],
        pb::ProcessFilter {
            ppid: Some(1),
            ..Default::default()
        },
    )
    .await;
    assert!(children.iter().all(|p| p.ppid().unwrap() == 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn environ_is_served_only_when_enabled() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let me = std::process::id();
    let p = client
        .process(me, &[pb::ProcessField::Environ])
        .await
        .unwrap();
    assert!(
        matches!(p.environ(), Err(Error::Withheld { .. })),
        "{:?}",
        p.proto()
    );
    let all = client.process(me, &[]).await.unwrap();
    assert!(all.proto().environ.is_empty());

    let open = TestAgent::start_with(hostscope_agent::service::Options {
        environ: true,
        ..Default::default()
    })
    .await;
    let p = open
        .client()
        .await
        .process(me, &[pb::ProcessField::Environ])
        .await
        .unwrap();
    let env = p.environ().unwrap();
    assert_eq!(
        env.get("PATH").map(String::as_str),
        std::env::var("PATH").ok().as_deref()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_clients_get_clear_errors_and_the_agent_keeps_serving() {
    let agent = TestAgent::start().await;

    // No client certificate.
    let err = match Client::connect(&agent.endpoint(), Some(agent.pki.anonymous_tls())).await {
        Ok(client) => client.host().await.unwrap_err(),
        Err(e) => e,
    };
    assert!(matches!(err, Error::NoClientCertificate { .. }), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");

    // A certificate from another CA.
    let other = hostscope_integration::Pki::new();
    let mut stranger = other.client_tls();
    stranger.ca_pem = std::fs::read(agent.pki.path("ca.pem")).unwrap();
    let err = match Client::connect(&agent.endpoint(), Some(stranger)).await {
        Ok(client) => client.host().await.unwrap_err(),
        Err(e) => e,
    };
    assert!(matches!(err, Error::UnknownCa { .. }), "{err:?}");

    // A plaintext client.
    let err = match Client::connect(&agent.endpoint(), None).await {
        Ok(client) => client.host().await.unwrap_err(),
        Err(e) => e,
    };
    assert!(matches!(err, Error::NotTls { .. }), "{err:?}");

    // A client that does not trust the agent's CA.
    let err = match Client::connect(&agent.endpoint(), Some(other.client_tls())).await {
        Ok(client) => client.host().await.unwrap_err(),
        Err(e) => e,
    };
    assert!(matches!(err, Error::UnknownCa { .. }), "{err:?}");

    // Still serving the fleet's own clients.
    let host = agent.client().await.host().await.unwrap();
    assert!(!host.hostname.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn host_facts_and_loopback_interface() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let host = client.host().await.unwrap();
    assert_eq!(host.os, "linux");
    assert_eq!(host.backend, "linux-procfs");
    assert!(host.cpu_count >= 1 && host.memory_total > 0 && host.boot_time > 1e9);
    let fields: Vec<pb::ProcessField> = host
        .process_fields
        .iter()
        .filter_map(|f| pb::ProcessField::try_from(*f).ok())
        .collect();
    assert!(fields.contains(&pb::ProcessField::Cmdline));
    assert!(
        !fields.contains(&pb::ProcessField::Environ),
        "environ is off by default"
    );

    let nics = client.net_interfaces().await.unwrap();
    let lo = nics.iter().find(|n| n.name == "lo").expect("lo listed");
    let v4 = lo
        .addresses
        .iter()
        .find(|a| a.family == pb::AddressFamily::Inet as i32)
        .expect("lo has IPv4");
    assert_eq!(v4.address, "127.0.0.1");
    assert_eq!(v4.netmask.as_deref(), Some("255.0.0.0"));
    let stats = lo.stats.as_ref().expect("lo stats");
    assert!(stats.isup);
    assert!(stats.mtu > 0);
    assert!(
        stats.flags.split(',').any(|f| f == "loopback"),
        "{}",
        stats.flags
    );
    assert!(lo.io_counters.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    use tonic_reflection::pb::{v1, v1alpha};

    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let mut health = HealthClient::new(client.channel());
    for service in ["", "hostscope.v1.HostInspector"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "service {service:?}");
    }

    let mut reflection =
        v1::server_reflection_client::ServerReflectionClient::new(client.channel());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("unexpected reflection answer {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.iter().any(|n| n == "hostscope.v1.HostInspector"),
        "{names:?}"
    );

    let mut alpha =
        v1alpha::server_reflection_client::ServerReflectionClient::new(client.channel());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "hostscope.v1.HostInspector".into(),
            ),
        ),
    };
    let response = alpha
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner()
        .next()
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            response.message_response,
            Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
        ),
        "{response:?}"
    );
}

/// Short-lived processes, started 50 at a time and reaped, over and over on
/// a thread of its own until dropped; the pids it has started. Most are
/// `true`, which exits at once and races every listing; every fifth sleeps
/// 200 ms, so that a listing on a loaded machine still meets some of the
/// burst alive.
struct Burst {
    pids: Arc<Mutex<HashSet<u32>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Burst {
    fn start() -> Burst {
        let pids = Arc::new(Mutex::new(HashSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (started, stopped) = (Arc::clone(&pids), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let mut batch: Vec<ChildGroup> = (0..50)
                    .map(|i| {
                        let mut cmd = if i % 5 == 0 {
                            let mut sleep = Command::new("sleep");
                            sleep.arg("0.2");
                            sleep
                        } else {
                            Command::new("true")
                        };
                        ChildGroup::spawn(cmd.stdin(Stdio::null())).expect("spawn")
                    })
                    .collect();
                let ids = batch.iter().map(ChildGroup::id);
                started.lock().expect("pid set").extend(ids);
                for child in &mut batch {
                    assert!(child.wait(Duration::from_secs(30)).success());
                }
            }
        });
        Burst {
            pids,
            stop,
            thread: Some(thread),
        }
    }

    /// How many of `pids` this burst started.
    fn started_among(&self, pids: impl IntoIterator<Item = u32>) -> usize {
        let started = self.pids.lock().expect("pid set");
        pids.into_iter().filter(|p| started.contains(p)).count()
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let joined = thread.join();
            if !std::thread::panicking() {
                joined.expect("the burst thread");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn survives_a_burst_of_short_lived_processes_during_listings() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let burst = Burst::start();
    // List until three listings have each caught processes of the burst
    // (running, or exited and not yet reaped): listings that ran while
    // processes came and went under them.
    let listings = async {
        let mut caught = 0;
        while caught < 3 {
            let procs = list(&client, &[], pb::ProcessFilter::default()).await;
            assert!(procs.iter().any(|p| p.pid() == std::process::id()));
            if burst.started_among(procs.iter().map(|p| p.pid())) > 0 {
                caught += 1;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), listings)
        .await
        .expect("three listings caught the burst's processes");
    drop(burst);
    let host = client.host().await.unwrap();
    assert!(!host.hostname.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_lets_a_listing_in_flight_finish() {
    let mut agent = TestAgent::start().await;
    let client = agent.client().await;
    // The agent has accepted the call once its response headers arrive.
    let stream = client
        .processes(&[], pb::ProcessFilter::default())
        .await
        .unwrap();
    let server = agent.stop();
    let procs: Vec<_> = stream
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("listing in flight completes");
    assert!(procs.iter().any(|p| p.pid() == std::process::id()));
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("server stops")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_port_is_connection_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let pki = hostscope_integration::Pki::new();
    let err = Client::connect(&addr.to_string(), Some(pki.client_tls()))
        .await
        .expect_err("nothing listens there");
    assert!(
        matches!(&err, Error::ConnectionRefused { endpoint } if *endpoint == addr.to_string()),
        "{err:?}"
    );
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_agent_serves_a_plaintext_client() {
    let agent = TestAgent::start_plaintext().await;
    let client = Client::connect(&agent.endpoint(), None).await.unwrap();
    assert!(client.pid_exists(std::process::id()).await.unwrap());
}

#[test]
fn enum_names_are_lowercase_in_json() {
    let nic = pb::NetAddress {
        family: pb::AddressFamily::Inet6 as i32,
        address: "::1".into(),
        ..Default::default()
    };
    let json = serde_json::to_value(&nic).unwrap();
    assert_eq!(json["family"], "inet6");
    assert_eq!(pb::Duplex::Full.short_name(), "full");
}

/// Log lines written by this process, for tests that check what the agent
/// logs. Installed once, as the process-wide subscriber.
fn captured_logs() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    use std::sync::{Arc, Mutex, OnceLock};
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .with_writer(move || LogWriter(Arc::clone(&sink)))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        logs
    })
    .clone()
}

struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_handshakes_are_logged_with_the_peer_and_the_reason() {
    let logs = captured_logs();
    let agent = TestAgent::start().await;
    let stranger = match Client::connect(&agent.endpoint(), Some(agent.pki.anonymous_tls())).await {
        Ok(client) => client.host().await.unwrap_err(),
        Err(e) => e,
    };
    assert!(
        matches!(stranger, Error::NoClientCertificate { .. }),
        "{stranger:?}"
    );
    let wanted = |text: &str| {
        text.lines().any(|l| {
            l.contains("WARN")
                && l.contains("rejected TLS handshake")
                && l.contains("peer=127.0.0.1:")
                && l.to_ascii_lowercase().contains("certificate")
        })
    };
    hostscope_integration::wait_for(Duration::from_secs(10), || {
        wanted(&String::from_utf8_lossy(&logs.lock().expect("log buffer")))
    });
}
