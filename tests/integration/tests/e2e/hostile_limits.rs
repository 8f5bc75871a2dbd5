//! Hostile clients against the agent's resource limits: listings nobody
//! reads, scans by the hundred, connections of one certificate from many
//! addresses, unary responses nobody takes. A real agent on 127.0.0.0/8
//! over real mutual TLS (the helpers of [`super::hostile`]); every loop is
//! bounded, and a well-behaved client gets answers throughout.

use std::{os::unix::process::CommandExt, process::Command, time::Duration};

use hostscope_agent::{
    server::Limits,
    service::{Options, audit::Audit},
};
use hostscope_integration::{child::ChildGroup, wait_for};
use hostscope_proto as pb;
use tokio_stream::StreamExt;

use super::hostile::{Agent, EVENTUALLY, Window0, final_status};

/// Length of the huge command lines: as in the reported attack.
const HUGE_ARG: usize = 100_000;

/// `n` sleeping processes, each with a command line of [`HUGE_ARG`] bytes,
/// killed when dropped.
fn huge_sleepers(n: usize) -> Vec<ChildGroup> {
    (0..n)
        .map(|i| {
            let name = format!("{i:02}{}", "h".repeat(HUGE_ARG - 2));
            ChildGroup::spawn(Command::new("sleep").arg0(name).arg("600")).expect("spawn sleep")
        })
        .collect()
}

/// Starts `count` listings of every field on `client`, none of them read;
/// the (grpc-status, grpc-message) of those refused at once.
async fn stalled_listings(
    client: &mut Window0,
    count: usize,
) -> (
    Vec<tonic::codegen::http::Response<h2::RecvStream>>,
    Vec<(String, String)>,
) {
    let mut open = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..count {
        let response = client
            .call("ListProcesses", &pb::ListProcessesRequest::default())
            .await;
        let response = tokio::time::timeout(EVENTUALLY, response)
            .await
            .expect("a listing's headers")
            .expect("response");
        if response.headers().get("grpc-status").is_some() {
            refused.push(final_status(response).await);
        } else {
            // Kept open, unread: its data waits in the agent.
            open.push(response);
        }
    }
    (open, refused)
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_nobody_reads_are_bounded_by_the_buffer_limits_and_give_back_every_byte() {
    let sleepers = huge_sleepers(8);
    const MIB: usize = 1024 * 1024;
    let agent = Agent::start_with(
        Limits::default(),
        Options {
            max_buffered_bytes: 2 * MIB,
            max_buffered_bytes_per_connection: MIB,
            // Longer than this test needs, so that only the clients' going
            // away frees the agent's buffers.
            stream_stall_timeout: Duration::from_secs(600),
            ..Options::default()
        },
        Audit::log_only(),
    )
    .await;

    // One connection's listings, none of them read: once the connection
    // holds its share, further listings are refused at once.
    let mut first = Window0::connect(&agent).await;
    let (held_a, refused) = stalled_listings(&mut first, 12).await;
    assert!(
        !refused.is_empty(),
        "twelve unread listings of a 1 MiB connection share were all taken on"
    );
    for (code, message) in &refused {
        assert_eq!(code, "8", "RESOURCE_EXHAUSTED: {message}");
        assert!(
            message.contains("max_buffered_bytes_per_connection"),
            "{message}"
        );
    }
    assert!(agent.inspector.buffered_bytes() <= MIB);

    // A second connection takes its share; a third finds the agent's total
    // full.
    let mut second = Window0::connect(&agent).await;
    let (held_b, _) = stalled_listings(&mut second, 12).await;
    let mut third = Window0::connect(&agent).await;
    let (held_c, refused) = stalled_listings(&mut third, 8).await;
    assert!(
        refused
            .iter()
            .any(|(code, message)| code == "8" && message.contains("max_buffered_bytes)")),
        "the agent's total was never reached: {refused:?}"
    );
    assert!(agent.inspector.buffered_bytes() <= 2 * MIB);

    // Other clients still get answers.
    agent.answers().await;

    // Once the stalled clients are gone, every byte is given back, and a
    // listing carries the huge command lines whole.
    drop((held_a, held_b, held_c));
    for client in [first, second, third] {
        client.driver.abort();
    }
    let inspector = agent.inspector.clone();
    tokio::task::spawn_blocking(move || wait_for(EVENTUALLY, || inspector.buffered_bytes() == 0))
        .await
        .expect("waiting for the budget");
    let client = agent.client().await;
    let listing: Vec<_> = client
        .processes(&[pb::ProcessField::Cmdline], pb::ProcessFilter::default())
        .await
        .expect("a listing")
        .collect::<Result<_, _>>()
        .await
        .expect("every batch");
    for sleeper in &sleepers {
        let process = listing
            .iter()
            .find(|p| p.pid() == sleeper.id())
            .expect("the sleeper is listed");
        let cmdline = process.cmdline().expect("the sleeper's command line");
        assert_eq!(
            cmdline.first().map(String::len),
            Some(HUGE_ARG),
            "{:.40?}",
            cmdline
        );
    }
    assert_eq!(agent.inspector.buffered_bytes(), 0);
}

// === Unary responses nobody takes ===

#[tokio::test(flavor = "multi_thread")]
async fn a_unary_response_nobody_takes_closes_its_connection_after_the_stall_timeout() {
    let _ = super::captured_logs();
    let agent = Agent::start_with(
        Limits::default(),
        Options {
            stream_stall_timeout: Duration::from_secs(1),
            ..Options::default()
        },
        Audit::log_only(),
    )
    .await;
    let mut stalled = Window0::connect(&agent).await;
    let response = stalled
        .call("GetHost", &pb::GetHostRequest::default())
        .await;
    let response = tokio::time::timeout(EVENTUALLY, response)
        .await
        .expect("GetHost's headers")
        .expect("response");
    assert!(
        response.headers().get("grpc-status").is_none(),
        "{:?}",
        response.headers()
    );
    // The answer waits for a window that never opens: the agent closes the
    // connection (the idle timeout, 300 s, does not apply while a call is
    // open).
    tokio::time::timeout(EVENTUALLY, &mut stalled.driver)
        .await
        .expect("a connection whose unary response nobody takes stays open")
        .expect("driver task");
    assert!(
        super::hostile::warnings()
            .lines()
            .any(|l| l.contains("took none of a response's data")),
        "the closing is not logged"
    );
    agent.answers().await;
    drop(response);
}

// === Connections of one certificate, or one network ===

/// Opens TLS sessions with the fleet's client certificate from each of
/// `sources` in turn, `per_source` each, that then send the HTTP/2 preface;
/// the sessions the agent serves (it answers with SETTINGS) and how many
/// it closed instead.
async fn sessions_from(
    agent: &Agent,
    sources: &[std::net::IpAddr],
    per_source: usize,
) -> (
    Vec<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    usize,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";
    let mut served = Vec::new();
    let mut closed = 0;
    for source in sources {
        for _ in 0..per_source {
            let Ok(mut tls) = agent.tls_from(*source).await else {
                closed += 1;
                continue;
            };
            let mut header = [0u8; 9];
            let answered = tokio::time::timeout(EVENTUALLY, async {
                tls.write_all(PREFACE).await?;
                tls.read_exact(&mut header).await
            })
            .await
            .expect("the agent answers or closes");
            match answered {
                Ok(_) if header[3] == 0x4 => served.push(tls),
                _ => closed += 1,
            }
        }
    }
    (served, closed)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_certificate_from_many_networks_cannot_take_every_connection() {
    super::hostile::enough_files();
    let agent = Agent::start(Limits {
        // Nothing closes the sessions but the limits.
        handshake_timeout: Duration::from_secs(3600),
        max_connections: 64,
        max_connections_per_identity: 8,
        ..Limits::default()
    })
    .await;
    // 16 networks, two sessions each, all with the certificate "client".
    let sources: Vec<std::net::IpAddr> = (1..=16).map(|n| [127, 1, n, 1].into()).collect();
    let (served, closed) = sessions_from(&agent, &sources, 2).await;
    assert_eq!(
        served.len(),
        8,
        "one certificate holds more than max_connections_per_identity"
    );
    assert_eq!(closed, 24);
    // Another identity still gets in and gets answers.
    let operator =
        hostscope_client::Client::connect(&agent.addr.to_string(), Some(agent.pki.operator_tls()))
            .await
            .expect("another identity connects");
    operator.host().await.expect("an answer");
    drop(served);
}

#[tokio::test(flavor = "multi_thread")]
async fn many_addresses_of_one_network_count_as_one_peer() {
    super::hostile::enough_files();
    let agent = Agent::start(Limits {
        handshake_timeout: Duration::from_secs(3600),
        max_connections: 64,
        max_connections_per_peer: 4,
        ..Limits::default()
    })
    .await;
    // 16 addresses of 127.0.5.0/24, one session each.
    let sources: Vec<std::net::IpAddr> = (1..=16).map(|n| [127, 0, 5, n].into()).collect();
    let (served, closed) = sessions_from(&agent, &sources, 1).await;
    assert_eq!(
        served.len(),
        4,
        "a /24 holds more than max_connections_per_peer"
    );
    assert_eq!(closed, 12);
    // Another network has room of its own.
    let (other, _) = sessions_from(&agent, &[[127, 0, 6, 1].into()], 1).await;
    assert_eq!(other.len(), 1);
    agent.answers().await;
    drop((served, other));
}

// === Scans by the hundred ===

/// Threads of process `pid` now.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(Iterator::count)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn hundreds_of_concurrent_zombie_searches_keep_the_agent_threads_bounded() {
    use super::reload::{AgentProcess, agent_binary};
    let pki = hostscope_integration::Pki::new();
    let mut command = Command::new(agent_binary());
    command
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--cert")
        .arg(pki.path("agent.pem"))
        .arg("--key")
        .arg(pki.path("agent-key.pem"))
        .arg("--client-ca")
        .arg(pki.path("ca.pem"));
    let agent = AgentProcess::start(command);
    let pid = agent.pid();
    let endpoint = agent.addr.to_string();

    // 256 FindZombies at once, over 8 connections.
    let mut searches = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let client = hostscope_client::Client::connect(&endpoint, Some(pki.client_tls()))
            .await
            .expect("connect");
        for _ in 0..32 {
            let mut raw = pb::host_inspector_client::HostInspectorClient::new(client.channel());
            searches.spawn(async move {
                raw.find_zombies(pb::FindZombiesRequest::default())
                    .await
                    .map(drop)
            });
        }
    }
    // Meanwhile a well-behaved client gets answers, and the agent's
    // threads are counted.
    let client = hostscope_client::Client::connect(&endpoint, Some(pki.client_tls()))
        .await
        .expect("a well-behaved client connects");
    let mut most = threads(pid);
    let mut answered = 0;
    while !searches.is_empty() {
        most = most.max(threads(pid));
        if answered < 3 {
            let host = tokio::time::timeout(EVENTUALLY, client.host())
                .await
                .expect("an answer while the searches run");
            host.expect("host");
            answered += 1;
        }
        tokio::select! {
            done = searches.join_next() => {
                done.expect("a search").expect("search task").expect("FindZombies");
            }
            () = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
    }
    // The async workers, one blocking thread per scan permit and 16 more,
    // and a few of the agent's own (main, signals, the event collector).
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let bound = workers + Options::default().max_concurrent_scans + 16 + 8;
    assert!(
        most <= bound,
        "the agent ran {most} threads for 256 concurrent searches (bound {bound})"
    );
    drop(agent);
}
