//! `cargo xtask bench`: each benchmark against its floor, from release
//! builds; the fleet benchmarks are in [`fleet`], the store's in
//! [`collect`].

use std::{
    fs,
    process::{Child, Command, Stdio},
};

use anyhow::{Context, Result};

use crate::{cargo, run, target_dir};

mod collect;
mod fleet;

pub use collect::bench_collect;
pub use fleet::{bench_fanout, bench_fleet};

/// Exit-to-event delay of WatchProcesses against the agent's own event
/// source, over 1,000 processes; see tests/integration/src/bin/hostscope-watch-bench.rs.
pub fn bench_watch() -> Result<()> {
    let release = target_dir()?.join("release");
    run(cargo().args([
        "build",
        "--release",
        "-j2",
        "-p",
        "hostscope-agent",
        "-p",
        "hostscope-integration",
        "--bin",
        "hostscope-agent",
        "--bin",
        "hostscope-watch-bench",
    ]))?;
    run(Command::new(release.join("hostscope-watch-bench"))
        .arg(release.join("hostscope-agent"))
        .arg("1000"))
}

/// Extra processes present during a benchmark, killed on drop.
struct Sleepers(Vec<Child>);

impl Sleepers {
    fn spawn(n: usize) -> Result<Sleepers> {
        let mut sleepers = Sleepers(Vec::with_capacity(n));
        for _ in 0..n {
            let child = Command::new("sleep")
                .arg("600")
                .stdin(Stdio::null())
                .spawn()
                .context("starting sleep")?;
            sleepers.0.push(child);
        }
        Ok(sleepers)
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

pub fn bench_procs() -> Result<()> {
    // Criterion writes its estimates under CRITERION_HOME: set it, so that
    // they are read from where they were written whatever the environment.
    let criterion = target_dir()?.join("criterion");
    run(cargo().args([
        "bench",
        "-j2",
        "-p",
        "hostscope-integration",
        "--bench",
        "procs",
        "--no-run",
    ]))?;
    let sleepers = Sleepers::spawn(2000)?;
    let processes = count_processes()?;
    eprintln!(
        "{} extra sleeping processes started; {processes} processes in all",
        sleepers.0.len()
    );
    run(cargo()
        .args(["bench", "-p", "hostscope-integration", "--bench", "procs"])
        .env("CRITERION_HOME", &criterion))?;
    drop(sleepers);

    let median = |id: &str| -> Result<f64> {
        let path = criterion.join("procs").join(id).join("new/estimates.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)?;
        json["median"]["point_estimate"]
            .as_f64()
            .with_context(|| format!("no median in {}", path.display()))
    };
    let floor = median("floor")?;
    println!("\nprocess listing, {processes} processes (medians of this run):");
    for (id, what) in [
        (
            "floor",
            "(b) floor: read stat, statm, status, cmdline, exe; no parsing",
        ),
        ("collect", "(a) agent backend, psutil's common attributes"),
        (
            "grpc_common",
            "(c) ListProcesses over mTLS, common attributes",
        ),
        ("grpc_all", "(d) ListProcesses over mTLS, every field"),
    ] {
        let m = median(id)?;
        println!("  {:>8.2} ms  {:>5.2}x floor  {what}", m / 1e6, m / floor);
    }
    println!(
        "  a/b = {:.2} (target <= 1.3)   c/b = {:.2} (target <= 1.8)",
        median("collect")? / floor,
        median("grpc_common")? / floor
    );

    // One `hostscope ps` end to end, split by what each command adds.
    let [start, setup, host, table, ndjson, psutil] = [
        "cli_start",
        "cli_setup",
        "cli_host",
        "cli_ps_table",
        "cli_ps_ndjson",
        "psutil",
    ]
    .map(median);
    let (start, setup, host, table, ndjson, psutil) =
        (start?, setup?, host?, table?, ndjson?, psutil?);
    let ms = |ns: f64| ns / 1e6;
    println!("\none host, end to end: a fresh hostscope process per run (medians of this run):");
    for (phase, ns, what) in [
        (
            "start",
            start,
            "process start and exit (hostscope --version)",
        ),
        (
            "setup",
            setup - start,
            "configuration, certificates, runtime (a refused connect)",
        ),
        (
            "connect",
            host - setup,
            "TCP connect, mutual-TLS handshake, GetHost",
        ),
        (
            "list",
            table - host,
            "the agent's scan, the transfer and a table of the 11 fields",
        ),
    ] {
        println!("  {phase:<8} {:>8.2} ms  {what}", ms(ns));
    }
    println!(
        "  ps, table   {:>8.2} ms  {:>5.2}x floor (goal <= 1.2)  {:>5.2}x faster than psutil (goal >= 4)",
        ms(table),
        table / floor,
        psutil / table
    );
    println!(
        "  ps, ndjson  {:>8.2} ms  {:>5.2}x floor               {:>5.2}x faster than psutil",
        ms(ndjson),
        ndjson / floor,
        psutil / ndjson
    );
    println!(
        "  psutil      {:>8.2} ms  process_iter with the same attributes, in Python",
        ms(psutil)
    );
    Ok(())
}

/// Runs the criterion bench `name` of hostscope-integration; the median
/// of one of its ids (`name/<id>`), in nanoseconds.
fn run_criterion_bench(name: &'static str) -> Result<impl Fn(&str) -> Result<f64>> {
    // Criterion writes its estimates under CRITERION_HOME: set it, so that
    // they are read from where they were written whatever the environment.
    let criterion = target_dir()?.join("criterion");
    run(cargo()
        .args([
            "bench",
            "-j2",
            "-p",
            "hostscope-integration",
            "--bench",
            name,
        ])
        .env("CRITERION_HOME", &criterion))?;
    Ok(move |id: &str| -> Result<f64> {
        let path = criterion.join(name).join(id).join("new/estimates.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)?;
        json["median"]["point_estimate"]
            .as_f64()
            .with_context(|| format!("no median in {}", path.display()))
    })
}

pub fn bench_sys() -> Result<()> {
    let median = run_criterion_bench("sys")?;
    let psutil = median("psutil")?;
    println!("\nhost figures, one snapshot (medians of this run):");
    for (id, what) in [
        ("psutil", "(p) psutil in process, the same figures"),
        ("backend", "(b) agent backend in process"),
        ("grpc", "(e) GetSystem + ListDisks over mTLS, end to end"),
        ("grpc_system", "    of which GetSystem alone"),
        ("grpc_disks", "    of which ListDisks alone"),
    ] {
        let m = median(id)?;
        println!("  {:>8.3} ms  {:>5.2}x psutil  {what}", m / 1e6, m / psutil);
    }
    let cpu = median("backend_cpu")?;
    println!(
        "  e/p = {:.2} (target <= 1.5)   agent CPU per snapshot {:.3} ms (target < 5)",
        median("grpc")? / psutil,
        cpu / 1e6
    );
    Ok(())
}

/// ListConnections (kind all, with pids) with 10,000 extra sockets on
/// loopback, against psutil.net_connections('all'); see
/// tests/integration/benches/sockets.rs.
pub fn bench_sockets() -> Result<()> {
    let median = run_criterion_bench("sockets")?;
    let psutil = median("psutil")?;
    println!("\nevery socket with its process, 10,000 extra on loopback (medians of this run):");
    for (id, what) in [
        ("psutil", "(p) psutil.net_connections('all') in process"),
        ("backend", "(b) agent backend in process"),
        (
            "grpc",
            "(e) ListConnections kind=all with_pids over mTLS, end to end",
        ),
    ] {
        let m = median(id)?;
        println!("  {:>8.3} ms  {:>5.2}x psutil  {what}", m / 1e6, m / psutil);
    }
    println!(
        "  p/e = {:.2}x faster than psutil (target >= 3)",
        psutil / median("grpc")?
    );
    Ok(())
}

/// The processes on this machine now: the pids in /proc.
fn count_processes() -> Result<usize> {
    Ok(fs::read_dir("/proc")?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .count())
}
