//! `cargo xtask bench sockets`: every socket of the host with its holder,
//! against psutil, with 10,000 extra sockets on loopback.
//!
//! A child opens a TCP listener on 127.0.0.1 and 5,000 connections to it
//! (both ends held: 10,001 sockets), then waits; it is killed at the end.
//!
//! - `psutil`: `psutil.net_connections('all')` in process, timed inside
//!   Python with `time.perf_counter` (written where criterion writes its
//!   estimates, under the id `psutil`);
//! - `backend`: the agent's backend listing kind=all with pids in process;
//! - `grpc`: ListConnections kind=all with_pids over mutual TLS on
//!   loopback, every batch received and decoded by the client.
//!
//! xtask prints the medians and the ratios against psutil, measured in the
//! same run.

use std::{
    hint::black_box,
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use criterion::{Criterion, criterion_group, criterion_main};
use hostscope_agent::backend::{
    self,
    socket::{SocketKind, SocketQuery},
};
use hostscope_client::proto as pb;
use hostscope_integration::{TestAgent, child::ChildGroup, psutil};

/// Connected pairs the child opens: twice as many sockets.
const PAIRS: u32 = 5_000;

/// Calls of psutil timed in Python.
const PSUTIL_ROUNDS: u32 = 10;

/// Opens the listener and `PAIRS` connections, raising its descriptor
/// limit up to the hard limit first; prints "ready N", then waits for its
/// stdin to close.
const CHILD: &str = r#"
import resource, socket, sys
pairs = int(sys.argv[1])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = 2 * pairs + 64
if hard != resource.RLIM_INFINITY and hard < want:
    sys.exit("RLIMIT_NOFILE's hard limit %d is below %d" % (hard, want))
if soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else hard, hard))
lst = socket.socket(); lst.bind(("127.0.0.1", 0)); lst.listen(128)
held = []
for _ in range(pairs):
    c = socket.create_connection(lst.getsockname())
    s, _ = lst.accept()
    held += [c, s]
print("ready", len(held) + 1, flush=True)
sys.stdin.read()
"#;

fn psutil_snippet(rounds: u32) -> String {
    format!(
        r#"
import json, time, psutil
psutil.net_connections("all")
start = time.perf_counter()
n = 0
for _ in range({rounds}):
    n = len(psutil.net_connections("all"))
ns = (time.perf_counter() - start) / {rounds} * 1e9
print(json.dumps({{"ns_per_round": ns, "connections": n}}))
"#
    )
}

/// Writes `ns` as the median of `sockets/<id>`, in criterion's layout.
fn write_estimate(id: &str, ns: f64) {
    psutil::write_estimate("sockets", id, ns);
}

fn sockets(c: &mut Criterion) {
    let mut child = ChildGroup::spawn(
        Command::new("python3")
            .args(["-c", CHILD, &PAIRS.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    )
    .expect("python3");
    let mut line = String::new();
    BufReader::new(child.take_stdout().expect("stdout"))
        .read_line(&mut line)
        .expect("the child's ready line");
    assert!(line.starts_with("ready"), "the child failed: {line:?}");
    println!("child {} holds {} sockets", child.id(), &line[6..].trim());

    let psutil = psutil::run_json(&psutil_snippet(PSUTIL_ROUNDS));
    let psutil_ns = psutil["ns_per_round"].as_f64().expect("ns_per_round");
    println!("psutil lists {} connections", psutil["connections"]);
    write_estimate("psutil", psutil_ns);

    let linux = backend::native("/proc".into(), "/sys".into()).expect("backend");
    let query = SocketQuery {
        kind: SocketKind::All,
        with_pids: true,
        ..SocketQuery::default()
    };
    let listed = linux.connections(&query).expect("connections");
    println!("the backend lists {} sockets", listed.sockets.len());

    let mut group = c.benchmark_group("sockets");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("backend", |b| {
        b.iter(|| black_box(linux.connections(&query).expect("connections")))
    });

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (agent, client) = rt.block_on(async {
        let agent = TestAgent::start().await;
        let client = agent.client().await;
        (agent, client)
    });
    let request = pb::ListConnectionsRequest {
        kind: pb::ConnectionKind::All as i32,
        with_pids: true,
        ..Default::default()
    };
    group.bench_function("grpc", |b| {
        b.to_async(&rt).iter(|| async {
            let all = client
                .connections(request.clone())
                .await
                .expect("ListConnections")
                .collect_all()
                .await
                .expect("batches");
            black_box(all.connections.len())
        })
    });
    group.finish();
    drop(agent);
    child.kill();
}

criterion_group!(benches, sockets);
criterion_main!(benches);
