//! `hostscope-stall-attack AGENT-BINARY [STREAMS] [HUGE-PROCESSES]`:
//! measures a real agent's memory under listings nobody reads.
//!
//! Starts the agent binary on 127.0.0.1 with a fresh PKI, starts
//! HUGE-PROCESSES sleeping processes (default 40) whose command lines are
//! 100 KB each, and opens STREAMS ListProcesses streams (default 256, 64
//! per connection) from an HTTP/2 client whose windows stay at 0, so that
//! the agent's answers can go nowhere. Prints the agent's resident size
//! (VmRSS) when idle, at its peak (VmHWM) and after the clients have gone,
//! and how many streams were refused. Every process it starts is killed
//! when it ends; the attack lasts well under a minute.

use std::{
    net::SocketAddr,
    os::unix::process::CommandExt,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use hostscope_client::Client;
use hostscope_integration::{Pki, child::ChildGroup};
use hostscope_proto as pb;
use prost::Message;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::codegen::{Bytes, http};

const MIB: f64 = 1024.0 * 1024.0;
const STREAMS_PER_CONNECTION: usize = 64;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let Some(agent_bin) = args.get(1) else {
        bail!("usage: hostscope-stall-attack AGENT-BINARY [STREAMS] [HUGE-PROCESSES]");
    };
    let streams: usize = args.get(2).map_or(Ok(256), |s| s.parse())?;
    let huge: usize = args.get(3).map_or(Ok(40), |s| s.parse())?;

    let pki = Pki::new();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let agent = ChildGroup::spawn(
        Command::new(agent_bin)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--cert")
            .arg(pki.path("agent.pem"))
            .arg("--key")
            .arg(pki.path("agent-key.pem"))
            .arg("--client-ca")
            .arg(pki.path("ca.pem"))
            .env("RUST_LOG", "error")
            .stdout(Stdio::null()),
    )
    .context("starting the agent")?;
    let pid = agent.id();

    let sleepers: Vec<ChildGroup> = (0..huge)
        .map(|i| {
            let name = format!("{i:03}{}", "h".repeat(100_000 - 3));
            ChildGroup::spawn(Command::new("sleep").arg0(name).arg("120"))
        })
        .collect::<Result<_, _>>()
        .context("starting the sleepers")?;

    // The agent answers, and has listed the table once: its idle size.
    let started = Instant::now();
    let client = loop {
        match Client::connect(&addr.to_string(), Some(pki.client_tls())).await {
            Ok(client) if client.host().await.is_ok() => break client,
            _ if started.elapsed() > Duration::from_secs(30) => bail!("the agent never answered"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let listed = list(&client).await?;
    drop(client);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss(pid)?;
    println!(
        "table: {listed} processes, {huge} of them with 100 KB command lines; agent pid {pid}"
    );
    println!("idle:  VmRSS {:.1} MiB", idle.0 / MIB);

    // The attack: STREAMS listings over connections whose windows stay 0.
    let connector = connector(&pki)?;
    let mut clients = Vec::new();
    let mut held = Vec::new();
    let mut senders = Vec::new();
    let (mut open, mut refused, mut failed) = (0, 0, 0);
    for chunk in 0..streams.div_ceil(STREAMS_PER_CONNECTION) {
        let tcp = TcpStream::connect(addr).await?;
        let tls = connector
            .connect(ServerName::try_from("localhost")?, tcp)
            .await?;
        let (mut send, connection) = h2::client::Builder::new()
            .initial_window_size(0)
            .max_concurrent_streams(STREAMS_PER_CONNECTION as u32)
            .handshake::<_, Bytes>(tls)
            .await?;
        clients.push(tokio::spawn(async move {
            let _ = connection.await;
        }));
        let n = STREAMS_PER_CONNECTION.min(streams - chunk * STREAMS_PER_CONNECTION);
        let mut pending = Vec::new();
        for _ in 0..n {
            send = send.ready().await?;
            let (response, mut body) = send.send_request(request(addr), false)?;
            body.send_data(frame(&pb::ListProcessesRequest::default()), true)?;
            pending.push(response);
        }
        for response in pending {
            match tokio::time::timeout(Duration::from_secs(30), response).await {
                Ok(Ok(response)) => {
                    match response.headers().get("grpc-status") {
                        Some(status) if status == "8" => refused += 1,
                        Some(_) => failed += 1,
                        None => open += 1,
                    }
                    held.push(response);
                }
                _ => failed += 1,
            }
        }
        senders.push(send);
    }
    let mut peak_rss = 0.0f64;
    for _ in 0..30 {
        peak_rss = peak_rss.max(rss(pid)?.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (during, hwm) = rss(pid)?;
    println!(
        "attack: {open} streams held open unread, {refused} refused (RESOURCE_EXHAUSTED), \
         {failed} other"
    );
    println!(
        "during: VmRSS {:.1} MiB (highest sampled {:.1} MiB); peak VmHWM {:.1} MiB",
        during / MIB,
        peak_rss / MIB,
        hwm / MIB
    );

    // The clients go away.
    held.clear();
    senders.clear();
    for client in &clients {
        client.abort();
    }
    // Longer than tokio keeps idle blocking threads (10 s), whose stacks
    // count in the resident size while they live.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let (gone, _) = rss(pid)?;
    println!(
        "gone:  VmRSS {:.1} MiB ({:+.1} MiB from idle), 12 s after the clients left",
        gone / MIB,
        (gone - idle.0) / MIB
    );
    let client = Client::connect(&addr.to_string(), Some(pki.client_tls())).await?;
    let relisted = list(&client).await?;
    drop(client);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (after, hwm) = rss(pid)?;
    println!(
        "after: VmRSS {:.1} MiB ({:+.1} MiB from idle; a full listing of {relisted} processes \
         in between); peak VmHWM {:.1} MiB",
        after / MIB,
        (after - idle.0) / MIB,
        hwm / MIB
    );
    drop(sleepers);
    drop(agent);
    Ok(())
}

/// Lists every process with every field; how many there were.
async fn list(client: &Client) -> anyhow::Result<usize> {
    use tokio_stream::StreamExt;
    let stream = client
        .processes(&[], pb::ProcessFilter::default())
        .await
        .context("listing")?;
    let all: Vec<_> = stream.collect::<Result<_, _>>().await.context("listing")?;
    Ok(all.len())
}

/// The agent's VmRSS and VmHWM in bytes.
fn rss(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        let kib: f64 = line
            .split_whitespace()
            .nth(1)
            .context("a number")?
            .parse()?;
        Ok(kib * 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// A ListProcesses request to `addr`.
fn request(addr: SocketAddr) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!(
            "https://{addr}/hostscope.v1.HostInspector/ListProcesses"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("a request")
}

/// `message` in gRPC's length-prefixed framing.
fn frame(message: &impl Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut frame = Vec::with_capacity(5 + body.len());
    frame.push(0);
    frame.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    frame.extend_from_slice(&body);
    Bytes::from(frame)
}

/// A rustls client with the fleet's client certificate, speaking HTTP/2.
fn connector(pki: &Pki) -> anyhow::Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(pki.path("ca.pem"))? {
        roots.add(ca?)?;
    }
    let certs =
        CertificateDer::pem_file_iter(pki.path("client.pem"))?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(pki.path("client-key.pem"))?;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_client_auth_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}
