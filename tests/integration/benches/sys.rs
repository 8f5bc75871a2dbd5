//! `cargo xtask bench sys`: the host's figures against psutil.
//!
//! - `grpc`: a full GetSystem (every figure but the measured ones, so no
//!   interval wait) and a ListDisks (partitions, usage, I/O counters) over
//!   mutual TLS on loopback, received and decoded by the client;
//! - `grpc_system`, `grpc_disks`: each of the two calls alone;
//! - `backend`: the agent's backend reading the same figures in process;
//! - `psutil`: psutil's in-process calls for the same figures, timed inside
//!   Python with `time.perf_counter` (written where criterion writes its
//!   estimates, under the id `psutil`);
//! - `backend_cpu`: the CPU time (user + system, getrusage of the thread)
//!   of one backend snapshot, the agent's cost whoever waits for it.
//!
//! xtask prints the medians and the ratios against psutil, measured in the
//! same run.

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use hostscope_agent::backend::{self, Backend, SystemField, SystemFields};
use hostscope_client::{Client, proto as pb};
use hostscope_integration::{TestAgent, psutil};

/// Rounds timed outside criterion (psutil's, and the CPU time).
const ROUNDS: u32 = 200;

/// Every figure a backend reads (the measured ones are the service's).
fn read_fields() -> SystemFields {
    SystemField::ALL
        .into_iter()
        .filter(|f| !f.is_measured())
        .collect()
}

/// The same selection on the wire.
fn read_fields_pb() -> Vec<i32> {
    [
        pb::SystemField::CpuTimes,
        pb::SystemField::CpuStats,
        pb::SystemField::CpuFreq,
        pb::SystemField::CpuCount,
        pb::SystemField::Loadavg,
        pb::SystemField::VirtualMemory,
        pb::SystemField::SwapMemory,
        pb::SystemField::Users,
        pb::SystemField::BootTime,
        pb::SystemField::SensorsTemperatures,
        pb::SystemField::SensorsFans,
        pb::SystemField::SensorsBattery,
        pb::SystemField::Cgroup,
    ]
    .into_iter()
    .map(|f| f as i32)
    .collect()
}

/// One snapshot through the backend: the system figures, the partitions,
/// each one's usage and the disks' counters.
fn snapshot(b: &dyn Backend, fields: SystemFields) -> usize {
    let info = b.system(fields, None);
    let mut n = usize::from(info.virtual_memory.is_some());
    if let Ok(parts) = b.disk_partitions(false) {
        for p in &parts {
            n += usize::from(b.disk_usage(&p.mountpoint).is_ok());
        }
    }
    n += b.disk_io_counters().map_or(0, |d| d.len());
    black_box(info);
    n
}

async fn snapshot_grpc(client: &Client, fields: &[i32]) -> usize {
    let sys = client
        .system(pb::GetSystemRequest {
            fields: fields.to_vec(),
            ..Default::default()
        })
        .await
        .expect("GetSystem");
    let disks = client
        .disks(pb::ListDisksRequest::default())
        .await
        .expect("ListDisks");
    let n = disks.partitions.len() + disks.io_counters.len();
    black_box((sys, disks));
    n
}

/// This thread's CPU time (user + system), in nanoseconds.
fn thread_cpu_ns() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the valid pointer.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    // SAFETY: initialised by the successful call above (and zeroed before).
    let usage = unsafe { usage.assume_init() };
    let ns = |t: libc::timeval| t.tv_sec as f64 * 1e9 + t.tv_usec as f64 * 1e3;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}

/// Writes `ns` as the median of `sys/<id>`, in criterion's layout.
fn write_estimate(id: &str, ns: f64) {
    psutil::write_estimate("sys", id, ns);
}

fn sys(c: &mut Criterion) {
    let fields = read_fields();
    let linux = backend::native("/proc".into(), "/sys".into()).expect("backend");

    // psutil first, while criterion's loops do not compete with it.
    let psutil = psutil::run_json(&psutil::bench_snippet(ROUNDS));
    let psutil_ns = psutil["ns_per_round"].as_f64().expect("ns_per_round");
    write_estimate("psutil", psutil_ns);

    // The agent's CPU per snapshot, on this thread alone.
    for _ in 0..20 {
        snapshot(&*linux, fields);
    }
    let start = thread_cpu_ns();
    for _ in 0..ROUNDS {
        black_box(snapshot(&*linux, fields));
    }
    write_estimate("backend_cpu", (thread_cpu_ns() - start) / f64::from(ROUNDS));

    let mut group = c.benchmark_group("sys");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("backend", |b| b.iter(|| snapshot(&*linux, fields)));

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (agent, client) = rt.block_on(async {
        let agent = TestAgent::start().await;
        let client = agent.client().await;
        (agent, client)
    });
    let wanted = read_fields_pb();
    group.bench_function("grpc", |b| {
        b.to_async(&rt).iter(|| snapshot_grpc(&client, &wanted))
    });
    // Each call alone, to tell where the end-to-end time goes.
    group.bench_function("grpc_system", |b| {
        b.to_async(&rt).iter(|| async {
            let request = pb::GetSystemRequest {
                fields: wanted.clone(),
                ..Default::default()
            };
            black_box(client.system(request).await.expect("GetSystem"))
        })
    });
    group.bench_function("grpc_disks", |b| {
        b.to_async(&rt).iter(|| async {
            let request = pb::ListDisksRequest::default();
            black_box(client.disks(request).await.expect("ListDisks"))
        })
    });
    group.finish();
    drop(agent);
}

criterion_group!(benches, sys);
criterion_main!(benches);
