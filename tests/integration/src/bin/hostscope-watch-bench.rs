//! `cargo xtask bench watch`: how long from a process's exit to a watching
//! client holding its EXITED event, over mutual TLS on loopback.
//!
//! Usage: `hostscope-watch-bench AGENT_BINARY [PROCESSES]`
//!
//! Two measurements in one run, over the same number of processes:
//! - baseline: the agent's own event source read in this process, no
//!   gRPC: the kernel's delay plus reading the netlink socket;
//! - end to end: a real `hostscope-agent` (the binary given) serving a
//!   watch over mTLS to this process, which records when each EXITED event
//!   arrives. Event times are the kernel's, so each delay is the arrival
//!   time minus the exit time.
//!
//! Prints p50 and p99 of both, their ratio, and the agent's CPU time per
//! 1,000 processes (each is three events: fork, exec, exit).

use std::{
    collections::HashSet,
    net::TcpListener,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context, Result, bail};
use hostscope_agent::backend::{self, RawEvent, WatchMode};
use hostscope_client::{Client, TlsConfig, proto as pb};
use tokio_stream::StreamExt;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Runs `true` `n` times, one after another, returning the pids.
fn run_processes(n: usize) -> Result<HashSet<u32>> {
    let mut pids = HashSet::with_capacity(n);
    for _ in 0..n {
        let mut child = Command::new("true").stdin(Stdio::null()).spawn()?;
        pids.insert(child.id());
        child.wait()?;
    }
    Ok(pids)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Exit-to-read delays of the agent's event source, in this process.
fn baseline(n: usize) -> Result<Vec<f64>> {
    let backend = backend::native("/proc".into(), "/sys".into())?;
    let mut source = backend.events(WatchMode::Kernel, Duration::from_secs(1))?;
    let runner = std::thread::spawn(move || run_processes(n));
    let mut events = Vec::new();
    let mut seen_exits: Vec<(u32, f64)> = Vec::new();
    let mut read = |source: &mut Box<dyn backend::EventSource>| -> Result<()> {
        events.clear();
        source.next(Duration::from_millis(50), &mut events)?;
        let at = now();
        for e in &events {
            if let RawEvent::Exit { pid, time, .. } = e {
                seen_exits.push((*pid, at - time));
            }
        }
        Ok(())
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !runner.is_finished() {
        if Instant::now() > deadline {
            bail!("the processes did not finish within 120 s");
        }
        read(&mut source)?;
    }
    // The last exits may still be in the socket.
    for _ in 0..5 {
        read(&mut source)?;
    }
    let pids = runner
        .join()
        .map_err(|_| anyhow::anyhow!("the process runner panicked"))??;
    let mut delays = Vec::with_capacity(n);
    for (pid, delay) in seen_exits {
        if pids.contains(&pid) {
            delays.push(delay);
        }
    }
    Ok(delays)
}

/// The agent's CPU time so far, in seconds (utime + stime).
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `after` starts at field 3.
    let ticks: f64 = fields[14 - 3].parse::<f64>()? + fields[15 - 3].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}

struct Agent(std::process::Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn end_to_end(agent_bin: PathBuf, n: usize) -> Result<(Vec<f64>, f64)> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    hostscope_integration::write_pki(d, &["bench"])?;
    let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let agent = Agent(
        Command::new(&agent_bin)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--cert")
            .arg(d.join("agent.pem"))
            .arg("--key")
            .arg(d.join("agent-key.pem"))
            .arg("--client-ca")
            .arg(d.join("ca.pem"))
            .arg("--watch-mode")
            .arg("netlink")
            .env("RUST_LOG", "warn")
            .spawn()
            .with_context(|| format!("starting {}", agent_bin.display()))?,
    );
    let tls = TlsConfig::from_files(
        &d.join("ca.pem"),
        Some(&d.join("bench.pem")),
        Some(&d.join("bench-key.pem")),
    )?;
    let start = Instant::now();
    let client = loop {
        match Client::connect(&addr.to_string(), Some(tls.clone())).await {
            Ok(c) => break c,
            Err(_) if start.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e).context("connecting to the agent"),
        }
    };
    let mut events = client
        .watch(pb::WatchProcessesRequest {
            descendants_of: Some(std::process::id()),
            kinds: vec![pb::ProcessEventKind::Exited as i32],
            ..Default::default()
        })
        .await?;
    let cpu_before = cpu_seconds(agent.0.id())?;
    let runner = tokio::task::spawn_blocking(move || run_processes(n));
    let mut delays = Vec::with_capacity(n);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while delays.len() < n {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(Ok(e))) if e.kind == pb::ProcessEventKind::Exited as i32 => {
                delays.push(now() - e.time);
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(e).context("watch stream"),
            Ok(None) => bail!("the watch ended"),
            Err(_) => bail!("only {} of {n} exits arrived within 120 s", delays.len()),
        }
    }
    runner.await??;
    let cpu = cpu_seconds(agent.0.id())? - cpu_before;
    drop(agent);
    Ok((delays, cpu))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(agent_bin) = args.get(1).map(PathBuf::from) else {
        bail!("usage: hostscope-watch-bench AGENT_BINARY [PROCESSES]");
    };
    let n: usize = match args.get(2) {
        Some(n) => n.parse().context("PROCESSES must be a number")?,
        None => 1000,
    };
    let _ = rustls::crypto::ring::default_provider().install_default();

    let mut base = tokio::task::spawn_blocking(move || baseline(n)).await??;
    let (mut e2e, cpu) = end_to_end(agent_bin, n).await?;
    base.sort_by(f64::total_cmp);
    e2e.sort_by(f64::total_cmp);
    let ms = |v: f64| v * 1e3;
    println!("exit -> EXITED event delay, {n} processes run one after another (this run):");
    println!(
        "  baseline  p50 {:>7.3} ms  p99 {:>7.3} ms   the agent's event source read in-process, no gRPC ({} exits)",
        ms(percentile(&base, 0.5)),
        ms(percentile(&base, 0.99)),
        base.len()
    );
    println!(
        "  watch     p50 {:>7.3} ms  p99 {:>7.3} ms   hostscope-agent -> WatchProcesses over mTLS on loopback -> client",
        ms(percentile(&e2e, 0.5)),
        ms(percentile(&e2e, 0.99))
    );
    println!(
        "  ratio     p50 {:>6.1}x     p99 {:>6.1}x",
        percentile(&e2e, 0.5) / percentile(&base, 0.5),
        percentile(&e2e, 0.99) / percentile(&base, 0.99)
    );
    println!(
        "  agent CPU {:.1} ms per 1,000 processes (3,000 events: fork, exec, exit); target p99 < 20 ms",
        cpu * 1e3 * 1000.0 / n as f64
    );
    Ok(())
}
