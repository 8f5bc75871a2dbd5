//! `cargo xtask bench fleet`: `hostscope host` and `ps` against a
//! simulated fleet of 1,000 agents, fresh client processes each run,
//! against the floor of a TCP connect and mutual-TLS handshake per host.

use std::{
    fs,
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::count_processes;
use crate::{Guard, cargo, display, listening, run, target_dir};

/// Agents in the benchmark's fleet: the goal is 1,000 hosts in
/// under 3 seconds.
const FLEET_AGENTS: usize = 1000;
/// Fresh-process runs of each command; the median is reported.
const FLEET_RUNS: usize = 5;

/// One finished run of a command: its wall time, its own peak RSS (from
/// wait4, so the simulator's memory never counts) and its exit code.
struct Sample {
    wall: Duration,
    max_rss_kib: i64,
    code: Option<i32>,
}

/// A simulated fleet, running, and the release binaries that ask it.
struct Simulated {
    sim: Guard,
    dir: std::path::PathBuf,
    inventory: std::path::PathBuf,
    pki: std::path::PathBuf,
    hostscope: std::path::PathBuf,
    sim_bin: std::path::PathBuf,
    hosts: usize,
    processes: usize,
}

/// Builds the CLI and the simulator (release) and starts `agents` agents,
/// their files under `target/NAME`.
fn simulate(agents: usize, name: &str) -> Result<Simulated> {
    let target = target_dir()?;
    run(cargo().args([
        "build",
        "--release",
        "-j2",
        "-p",
        "hostscope-cli",
        "-p",
        "hostscope-integration",
        "--bin",
        "hostscope",
        "--bin",
        "hostscope-fleet-sim",
    ]))?;
    let bin = target.join("release");
    let (hostscope, sim_bin) = (bin.join("hostscope"), bin.join("hostscope-fleet-sim"));
    let help = Command::new(&hostscope).arg("--help").output()?;
    if !String::from_utf8_lossy(&help.stdout).contains("--inventory") {
        bail!(
            "{} has no --inventory flag: this build of the CLI cannot query a fleet",
            hostscope.display()
        );
    }

    let dir = target.join(name);
    let (inventory, pki) = (dir.join("inventory.toml"), dir.join("pki"));
    // A previous run's inventory would pass for this fleet's until the
    // simulator removes it.
    match fs::remove_file(&inventory) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", inventory.display()));
        }
        _ => {}
    }
    eprintln!("\n== starting a simulated fleet of {agents} agents");
    let mut sim = Guard(
        Command::new(&sim_bin)
            .arg("--agents")
            .arg(agents.to_string())
            .arg("--dir")
            .arg(&dir)
            // Long enough for every run; the guard kills it when done.
            .args(["--duration", "30m"])
            .stdin(Stdio::null())
            .spawn()
            .context("starting hostscope-fleet-sim")?,
    );
    let hosts = wait_for_fleet(&mut sim.0, &inventory, agents, Duration::from_secs(120))?;
    let processes = count_processes()?;
    Ok(Simulated {
        sim,
        dir,
        inventory,
        pki,
        hostscope,
        sim_bin,
        hosts,
        processes,
    })
}

/// The flags that reach a simulated fleet: its inventory and the client's
/// certificate.
fn fleet_flags(fleet: &Simulated) -> Vec<String> {
    let path = |p: &Path| p.to_string_lossy().into_owned();
    vec![
        "--inventory".to_owned(),
        path(&fleet.inventory),
        "--ca".to_owned(),
        path(&fleet.pki.join("ca.pem")),
        "--cert".to_owned(),
        path(&fleet.pki.join("client.pem")),
        "--key".to_owned(),
        path(&fleet.pki.join("client-key.pem")),
    ]
}

pub fn bench_fleet() -> Result<()> {
    let fleet = simulate(FLEET_AGENTS, "bench-fleet")?;
    let (hosts, processes, dir) = (fleet.hosts, fleet.processes, fleet.dir.clone());
    let (inventory, pki) = (&fleet.inventory, &fleet.pki);
    let (hostscope, sim_bin) = (fleet.hostscope.clone(), fleet.sim_bin.clone());
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let (inv, pki_dir) = (path(inventory), path(pki));
    let fleet_args = fleet_flags(&fleet);
    let fleet_args: Vec<&str> = fleet_args.iter().map(String::as_str).collect();
    let floor_args = [
        "handshake-floor",
        "--inventory",
        &inv,
        "--pki",
        &pki_dir,
        "--concurrency",
        "256",
    ];
    let host_args = ["host", "--output", "ndjson"];
    let ps_args = ["ps", "--fields", "pid,name,status", "--output", "ndjson"];
    let commands: [(&str, &str, &Path, Vec<&str>); 3] = [
        (
            "floor",
            "TCP connect + mTLS handshake, no gRPC",
            &sim_bin,
            floor_args.to_vec(),
        ),
        (
            "host",
            "hostscope host --output ndjson",
            &hostscope,
            [&fleet_args[..], &host_args[..]].concat(),
        ),
        (
            "ps",
            "hostscope ps --fields pid,name,status --output ndjson",
            &hostscope,
            [&fleet_args[..], &ps_args[..]].concat(),
        ),
    ];

    // Rounds interleave the commands, so that drift in the machine's load
    // spreads over all of them rather than favouring one. Round 0 warms the
    // agents up (their first calls allocate what later ones reuse, as on a
    // fleet that has been running) and is not counted.
    let mut samples: Vec<Vec<Sample>> = commands.iter().map(|_| Vec::new()).collect();
    let log = dir.join("stderr.log");
    for round in 0..=FLEET_RUNS {
        for ((id, _, program, args), samples) in commands.iter().zip(&mut samples) {
            let sample = measure(Command::new(program).args(args), &log, Sink::Null)?;
            let last_line = fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .to_owned();
            eprintln!(
                "  {} {id:<5} {:>7.1} ms  peak RSS {:>6.1} MiB  exit {}  {last_line}",
                if round == 0 {
                    "warm-up".into()
                } else {
                    format!("run {round}")
                },
                sample.wall.as_secs_f64() * 1e3,
                sample.max_rss_kib as f64 / 1024.0,
                sample.code.map_or("by signal".into(), |c| c.to_string()),
            );
            if round > 0 {
                samples.push(sample);
            }
        }
    }
    drop(fleet);

    let median = |samples: &[Sample]| -> (f64, f64) {
        let mut walls: Vec<f64> = samples.iter().map(|s| s.wall.as_secs_f64()).collect();
        walls.sort_by(f64::total_cmp);
        let rss = samples.iter().map(|s| s.max_rss_kib).max().unwrap_or(0);
        (walls[walls.len() / 2], rss as f64 / 1024.0)
    };
    let floor = median(&samples[0]).0;
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\nfleet query, {hosts} simulated agents on 127.0.0.1 in one process, {cores} cores, \
         {processes} processes per host\n(fresh client process each run, so fresh mTLS \
         connections to every host; median of {FLEET_RUNS} runs, highest peak RSS):"
    );
    for ((id, what, ..), samples) in commands.iter().zip(&samples) {
        let (wall, rss) = median(samples);
        let failed = samples.iter().filter(|s| s.code != Some(0)).count();
        let failed = match failed {
            0 => String::new(),
            n => format!("  ({n} runs did not exit 0)"),
        };
        println!(
            "  {id:<5} {:>7.0} ms  {:>6.0} hosts/s  {rss:>6.1} MiB  {:>5.2}x floor  {what}{failed}",
            wall * 1e3,
            hosts as f64 / wall,
            wall / floor,
        );
    }
    println!("  target: {FLEET_AGENTS} hosts in under 3 s");
    Ok(())
}

/// Waits until the simulator has written its inventory and every address in
/// it accepts TCP; returns how many hosts it lists.
fn wait_for_fleet(
    sim: &mut Child,
    inventory: &Path,
    agents: usize,
    limit: Duration,
) -> Result<usize> {
    let start = Instant::now();
    let mut ready = |what: &str| -> Result<()> {
        if let Some(status) = sim.try_wait()? {
            bail!("hostscope-fleet-sim exited ({status}) before {what}");
        }
        if start.elapsed() > limit {
            bail!("no {what} within {limit:?}");
        }
        thread::sleep(Duration::from_millis(100));
        Ok(())
    };
    // The simulator renames the inventory into place once every server
    // listens, so a file that exists is complete.
    let text = loop {
        match fs::read_to_string(inventory) {
            Ok(text) => break text,
            Err(_) => ready("inventory")?,
        }
    };
    let addrs: Vec<SocketAddr> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("address = \""))
        .map(|a| a.trim_end_matches('"').parse())
        .collect::<Result<_, _>>()
        .with_context(|| format!("an address in {}", inventory.display()))?;
    if addrs.len() != agents {
        bail!(
            "{} lists {} hosts, not {agents}",
            inventory.display(),
            addrs.len()
        );
    }
    for addr in &addrs {
        while !listening(*addr)? {
            ready(&format!("listener on {addr}"))?;
        }
    }
    eprintln!(
        "fleet ready: {} agents listening after {:.1} s",
        addrs.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(addrs.len())
}

/// Where a measured command's stdout goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    /// /dev/null: writes cost nothing and never block.
    Null,
    /// A pipe that this process drains as fast as it can, as `| wc -l`
    /// would.
    Pipe,
}

/// Runs `cmd` with stdout to `sink` and stderr to `log`, and reaps it
/// with wait4, which reports that child's own peak RSS.
fn measure(cmd: &mut Command, log: &Path, sink: Sink) -> Result<Sample> {
    let stderr = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(match sink {
            Sink::Null => Stdio::null(),
            Sink::Pipe => Stdio::piped(),
        })
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting {}", display(cmd)))?;
    // Drained on a thread of its own; it ends with the child's stdout.
    if let Some(mut stdout) = child.stdout.take() {
        thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    }
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain old data, for which all zeroes is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // Signals may interrupt the wait; a few retries are plenty.
    for _ in 0..100 {
        // SAFETY: waits for our own child; both out pointers are valid.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            let wall = start.elapsed();
            let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
            return Ok(Sample {
                wall,
                max_rss_kib: usage.ru_maxrss,
                code,
            });
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).with_context(|| format!("waiting for {}", display(cmd)));
        }
    }
    bail!("waiting for {} was interrupted too often", display(cmd))
}

// === fanout ===

/// Fresh-process runs of each command and sink in `bench fanout`.
const FANOUT_RUNS: usize = 3;

/// `cargo xtask bench fanout`: the CLI's peak RSS and wall time for `host`
/// and `ps -o ndjson` over `agents` simulated hosts, with stdout to
/// /dev/null and to a pipe.
pub fn bench_fanout(agents: usize) -> Result<()> {
    let fleet = simulate(agents, "bench-fanout")?;
    let flags = fleet_flags(&fleet);
    let commands: [(&str, &[&str]); 2] = [
        ("host", &["host", "--output", "ndjson"]),
        (
            "ps",
            &["ps", "--fields", "pid,name,status", "--output", "ndjson"],
        ),
    ];
    let log = fleet.dir.join("stderr.log");
    let mut rows = Vec::new();
    for (id, args) in commands {
        for sink in [Sink::Null, Sink::Pipe] {
            let mut samples = Vec::new();
            // Run 0 warms the agents up and is not counted.
            for round in 0..=FANOUT_RUNS {
                let mut cmd = Command::new(&fleet.hostscope);
                cmd.args(&flags).args(args);
                let sample = measure(&mut cmd, &log, sink)?;
                if round > 0 {
                    samples.push(sample);
                }
            }
            rows.push((id, sink, args.join(" "), samples));
        }
    }
    drop(fleet.sim);
    println!(
        "\nfan-out, {} simulated agents on 127.0.0.1, {} processes per host (median wall of \
         {FANOUT_RUNS} fresh-process runs, highest peak RSS of the CLI):",
        fleet.hosts, fleet.processes
    );
    for (id, sink, args, samples) in rows {
        let mut walls: Vec<f64> = samples.iter().map(|s| s.wall.as_secs_f64()).collect();
        walls.sort_by(f64::total_cmp);
        let rss = samples.iter().map(|s| s.max_rss_kib).max().unwrap_or(0) as f64 / 1024.0;
        let failed = samples.iter().filter(|s| s.code != Some(0)).count();
        let sink = match sink {
            Sink::Null => "> /dev/null",
            Sink::Pipe => "| (drained)",
        };
        println!(
            "  {id:<5} {:>8.0} ms  {rss:>7.1} MiB  hostscope {args} {sink}{}",
            walls[walls.len() / 2] * 1e3,
            match failed {
                0 => String::new(),
                n => format!("  ({n} runs did not exit 0)"),
            }
        );
    }
    Ok(())
}
