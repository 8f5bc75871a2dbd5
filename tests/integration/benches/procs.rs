//! `cargo xtask bench procs`: the cost of a process listing against the
//! floor, the kernel's own cost of handing over the same /proc files.
//!
//! - `collect`: the agent's backend reading psutil's common attributes;
//! - `floor`: a loop that reads the same files per pid and parses nothing;
//! - `grpc_common`: `ListProcesses` with those fields over mutual TLS on
//!   loopback, received and decoded by the client;
//! - `grpc_all`: the same with every field;
//! - `cli_*`: a fresh `hostscope` process per run against the same agent,
//!   each command adding one phase to the one before: process start
//!   (`--version`), configuration, certificates and runtime (a refused
//!   connect), the TCP connect and mutual-TLS handshake (`host`), and the
//!   listing with its printing (`ps` as a table and as NDJSON);
//! - `psutil`: psutil's `process_iter` over the same attributes, timed
//!   inside Python.
//!
//! xtask prints the medians, the phases and the ratios to the floor and
//! to psutil, measured in the same run.

use std::{
    ffi::OsStr,
    hint::black_box,
    io::Read,
    ops::ControlFlow,
    os::unix::ffi::OsStrExt,
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use criterion::{Criterion, criterion_group, criterion_main};
use hostscope_agent::backend::{self, Field, FieldSet};
use hostscope_client::proto as pb;
use hostscope_integration::{TestAgent, psutil};
use tokio_stream::StreamExt;

/// psutil's common attributes (pid is always there).
const COMMON: [Field; 10] = [
    Field::Ppid,
    Field::Name,
    Field::Exe,
    Field::Cmdline,
    Field::Status,
    Field::Username,
    Field::CreateTime,
    Field::CpuTimes,
    Field::MemoryInfo,
    Field::NumThreads,
];

const COMMON_PB: [pb::ProcessField; 10] = [
    pb::ProcessField::Ppid,
    pb::ProcessField::Name,
    pb::ProcessField::Exe,
    pb::ProcessField::Cmdline,
    pb::ProcessField::Status,
    pb::ProcessField::Username,
    pb::ProcessField::CreateTime,
    pb::ProcessField::CpuTimes,
    pb::ProcessField::MemoryInfo,
    pb::ProcessField::NumThreads,
];

/// The same attributes as `hostscope ps --fields`.
const COMMON_CLI: &str =
    "pid,ppid,name,exe,cmdline,status,username,create_time,cpu_times,memory_info,num_threads";

/// psutil's `process_iter` over the same attributes, `n` times after a
/// warm-up; prints `{"ns_per_round": ..}`.
fn psutil_snippet(n: u32) -> String {
    format!(
        r#"
import json, time, psutil
attrs = ["pid", "ppid", "name", "exe", "cmdline", "status", "username", "create_time",
         "cpu_times", "memory_info", "num_threads"]
def once():
    return sum(1 for p in psutil.process_iter(attrs))
for _ in range(3):
    once()
start = time.perf_counter()
for _ in range({n}):
    once()
print(json.dumps({{"ns_per_round": (time.perf_counter() - start) / {n} * 1e9}}))
"#
    )
}

/// Reads stat, statm, status, cmdline and the exe link of every pid, the
/// files `collect` needs, into one reused buffer; parses nothing.
fn floor(buf: &mut Vec<u8>, path: &mut PathBuf) -> usize {
    let mut bytes = 0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        if !name.as_bytes().iter().all(u8::is_ascii_digit) {
            continue;
        }
        path.clear();
        path.push("/proc");
        path.push(&name);
        for file in ["stat", "statm", "status", "cmdline"] {
            path.push(file);
            buf.clear();
            if let Ok(mut f) = std::fs::File::open(&*path) {
                bytes += f.read_to_end(buf).unwrap_or(0);
            }
            path.pop();
        }
        path.push(OsStr::new("exe"));
        bytes += std::fs::read_link(&*path).map_or(0, |p| p.as_os_str().len());
        path.pop();
    }
    bytes
}

fn procs(c: &mut Criterion) {
    let mut group = c.benchmark_group("procs");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));

    let linux = backend::native("/proc".into(), "/sys".into()).expect("backend");
    let fields: FieldSet = COMMON.into_iter().collect();
    group.bench_function("collect", |b| {
        b.iter(|| {
            let mut n = 0usize;
            linux
                .for_each_process(fields, &mut |p| {
                    black_box(p);
                    n += 1;
                    ControlFlow::Continue(())
                })
                .expect("scan");
            n
        })
    });

    let mut buf = Vec::with_capacity(64 * 1024);
    let mut path = PathBuf::with_capacity(64);
    group.bench_function("floor", |b| b.iter(|| floor(&mut buf, &mut path)));

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (agent, client) = rt.block_on(async {
        let agent = TestAgent::start().await;
        let client = agent.client().await;
        (agent, client)
    });
    for (id, wanted) in [("grpc_common", &COMMON_PB[..]), ("grpc_all", &[][..])] {
        group.bench_function(id, |b| {
            b.to_async(&rt).iter(|| async {
                let stream = client
                    .processes(wanted, pb::ProcessFilter::default())
                    .await
                    .expect("list");
                stream
                    .fold(0usize, |n, p| {
                        black_box(p.expect("process"));
                        n + 1
                    })
                    .await
            })
        });
    }

    // End to end, as a user runs it: a fresh process per run, its output
    // thrown away, in an empty configuration.
    let home = tempfile::tempdir().expect("tempdir");
    let endpoint = agent.endpoint();
    let cli = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostscope-cli"));
        for (flag, file) in [
            ("--ca", "ca.pem"),
            ("--cert", "client.pem"),
            ("--key", "client-key.pem"),
        ] {
            cmd.arg(flag).arg(agent.pki.path(file));
        }
        cmd.args(args)
            .env("XDG_CONFIG_HOME", home.path())
            .env_remove("HOSTSCOPE_HOST")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    let phases: [(&str, Vec<&str>, bool); 5] = [
        ("cli_start", vec!["--version"], true),
        // Port 1 on loopback refuses: everything before the connect.
        (
            "cli_setup",
            vec!["--retries", "0", "--host", "127.0.0.1:1", "host"],
            false,
        ),
        ("cli_host", vec!["--host", &endpoint, "host"], true),
        (
            "cli_ps_table",
            vec!["--host", &endpoint, "ps", "--fields", COMMON_CLI],
            true,
        ),
        (
            "cli_ps_ndjson",
            vec![
                "--host", &endpoint, "ps", "--fields", COMMON_CLI, "-o", "ndjson",
            ],
            true,
        ),
    ];
    for (id, args, succeeds) in &phases {
        group.bench_function(*id, |b| {
            b.iter(|| {
                let status = cli(args).status().expect("run hostscope");
                assert_eq!(status.success(), *succeeds, "hostscope {args:?}: {status}");
            })
        });
    }
    group.finish();
    drop(agent);

    let timed = psutil::run_json(&psutil_snippet(20));
    let ns = timed["ns_per_round"].as_f64().expect("ns_per_round");
    psutil::write_estimate("procs", "psutil", ns);
}

criterion_group!(benches, procs);
criterion_main!(benches);
