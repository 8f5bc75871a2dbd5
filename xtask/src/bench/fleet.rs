//! `cargo xtask bench fleet`: `hostscope host` and `ps` against a
//! simulated fleet of 1,000 agents, fresh client processes each run,
//! against the floor of a TCP connect and mutual-TLS handshake per host.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
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
pub(super) struct Sample {
    pub(super) wall: Duration,
    pub(super) max_rss_kib: i64,
    pub(super) code: Option<i32>,
    /// Lines it printed, when its stdout was a pipe.
    pub(super) lines: Option<u64>,
}

/// A simulated fleet, running, and the release binaries that ask it.
struct Simulated {
    _sim: Guard,
    dir: std::path::PathBuf,
    inventory: std::path::PathBuf,
    pki: std::path::PathBuf,
    hostscope: std::path::PathBuf,
    sim_bin: std::path::PathBuf,
    hosts: usize,
    processes: usize,
}

/// Builds the CLI and the simulator (release); returns the target
/// directory and the two binaries.
pub(super) fn release_binaries() -> Result<(PathBuf, PathBuf, PathBuf)> {
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
    Ok((target, hostscope, sim_bin))
}

/// Removes a previous run's inventory, which would pass for the new
/// fleet's until the simulator removes it.
fn remove_stale(inventory: &Path) -> Result<()> {
    match fs::remove_file(inventory) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", inventory.display()))
        }
        _ => Ok(()),
    }
}

/// Builds the CLI and the simulator (release) and starts `agents` agents,
/// their files under `target/NAME`.
fn simulate(agents: usize, name: &str) -> Result<Simulated> {
    let (target, hostscope, sim_bin) = release_binaries()?;
    let help = Command::new(&hostscope).arg("--help").output()?;
    if !String::from_utf8_lossy(&help.stdout).contains("--inventory") {
        bail!(
            "{} has no --inventory flag: this build of the CLI cannot query a fleet",
            hostscope.display()
        );
    }

    let dir = target.join(name);
    let (inventory, pki) = (dir.join("inventory.toml"), dir.join("pki"));
    remove_stale(&inventory)?;
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
        _sim: sim,
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
pub(super) fn fleet_flags(inventory: &Path, pki: &Path) -> Vec<String> {
    let path = |p: &Path| p.to_string_lossy().into_owned();
    vec![
        "--inventory".to_owned(),
        path(inventory),
        "--ca".to_owned(),
        path(&pki.join("ca.pem")),
        "--cert".to_owned(),
        path(&pki.join("client.pem")),
        "--key".to_owned(),
        path(&pki.join("client-key.pem")),
    ]
}

pub fn bench_fleet() -> Result<()> {
    let fleet = simulate(FLEET_AGENTS, "bench-fleet")?;
    let (hosts, processes, dir) = (fleet.hosts, fleet.processes, fleet.dir.clone());
    let (inventory, pki) = (&fleet.inventory, &fleet.pki);
    let (hostscope, sim_bin) = (fleet.hostscope.clone(), fleet.sim_bin.clone());
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let (inv, pki_dir) = (path(inventory), path(pki));
    let fleet_args = fleet_flags(&fleet.inventory, &fleet.pki);
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
pub(super) enum Sink {
    /// /dev/null: writes cost nothing and never block.
    Null,
    /// A pipe that this process drains as fast as it can, as `| wc -l`
    /// would.
    Pipe,
}

/// Longest one measured command may run; it is killed beyond.
const RUN_LIMIT: Duration = Duration::from_secs(300);

impl Sink {
    fn label(self) -> &'static str {
        match self {
            Sink::Null => "> /dev/null",
            Sink::Pipe => "| (drained)",
        }
    }
}

/// Runs `cmd` with stdout to `sink` and stderr to `log`, and reaps it
/// with wait4, which reports that child's own peak RSS. The wait polls
/// every millisecond, so that a run past [`RUN_LIMIT`] is killed.
pub(super) fn measure(cmd: &mut Command, log: &Path, sink: Sink) -> Result<Sample> {
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
    // Drained on a thread of its own, counting lines; it ends with the
    // child's stdout.
    let drain = child.stdout.take().map(|mut stdout| {
        thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut lines = 0u64;
            loop {
                match std::io::Read::read(&mut stdout, &mut buf) {
                    Ok(0) | Err(_) => return lines,
                    Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64,
                }
            }
        })
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain old data, for which all zeroes is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let give_up = |child: &mut Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    loop {
        // SAFETY: polls our own child; both out pointers are valid.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            let wall = start.elapsed();
            let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
            let lines = drain.and_then(|d| d.join().ok());
            return Ok(Sample {
                wall,
                max_rss_kib: usage.ru_maxrss,
                code,
                lines,
            });
        }
        if reaped < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                give_up(&mut child);
                return Err(e).with_context(|| format!("waiting for {}", display(cmd)));
            }
        }
        if start.elapsed() > RUN_LIMIT {
            give_up(&mut child);
            bail!("{} ran longer than {RUN_LIMIT:?}", display(cmd));
        }
        thread::sleep(Duration::from_millis(1));
    }
}

// === fanout ===

/// Fleet sizes `bench fanout` measures unless told one.
const FANOUT_SIZES: [usize; 2] = [500, 10_000];
/// Processes each virtual host lists, as on a busy real host.
const FANOUT_PROCESSES: usize = 600;
/// The goals: the CLI's peak RSS for `ps -o ndjson` over 500 hosts, and
/// for `host` and `ps` over 10,000, in MiB.
const GOAL_PS_500_MIB: f64 = 48.0;
const GOAL_HOST_10K_MIB: f64 = 64.0;
const GOAL_PS_10K_MIB: f64 = 100.0;

/// Counted fresh-process runs of each command and sink: fewer over large
/// fleets, where one run of `ps` prints millions of lines.
fn fanout_runs(hosts: usize) -> usize {
    if hosts <= 2000 { 3 } else { 1 }
}

/// One measured command and sink over one fleet size.
struct FanoutRow {
    hosts: usize,
    id: &'static str,
    sink: Sink,
    samples: Vec<Sample>,
}

impl FanoutRow {
    fn median_wall(&self) -> f64 {
        let mut walls: Vec<f64> = self.samples.iter().map(|s| s.wall.as_secs_f64()).collect();
        walls.sort_by(f64::total_cmp);
        walls.get(walls.len() / 2).copied().unwrap_or(f64::NAN)
    }

    fn peak_mib(&self) -> f64 {
        self.samples
            .iter()
            .map(|s| s.max_rss_kib)
            .max()
            .unwrap_or(0) as f64
            / 1024.0
    }
}

/// `cargo xtask bench fanout`: the CLI's peak RSS and wall time for `host`
/// and `ps -o ndjson` over virtual fleets of 500 and 10,000 hosts (or
/// `hosts`), with stdout to a drained pipe and to /dev/null, against the
/// goals.
pub fn bench_fanout(hosts: Option<usize>) -> Result<()> {
    let sizes = hosts.map_or_else(|| FANOUT_SIZES.to_vec(), |n| vec![n]);
    let (target, hostscope, sim_bin) = release_binaries()?;
    let commands: [(&str, &[&str]); 2] = [
        ("host", &["host", "--output", "ndjson"]),
        (
            "ps",
            &["ps", "--fields", "pid,name,status", "--output", "ndjson"],
        ),
    ];
    let mut rows = Vec::new();
    for &hosts in &sizes {
        let dir = target.join(format!("bench-fanout-{hosts}"));
        let fleet = start_virtual(&sim_bin, hosts, FANOUT_PROCESSES, &dir)?;
        let flags = fleet_flags(&fleet.inventory, &dir.join("pki"));
        let log = dir.join("stderr.log");
        // One uncounted run first: the simulator reads its canned listing
        // on the first call for a field selection.
        measure(
            Command::new(&hostscope).args(&flags).args(commands[1].1),
            &log,
            Sink::Null,
        )?;
        for (id, args) in commands {
            for sink in [Sink::Pipe, Sink::Null] {
                let mut samples = Vec::new();
                for _ in 0..fanout_runs(hosts) {
                    let sample =
                        measure(Command::new(&hostscope).args(&flags).args(args), &log, sink)?;
                    eprintln!(
                        "  {hosts:>6} hosts {id:<5} {:<12} {:>9.1} ms  peak RSS {:>7.1} MiB  exit {}",
                        sink.label(),
                        sample.wall.as_secs_f64() * 1e3,
                        sample.max_rss_kib as f64 / 1024.0,
                        sample.code.map_or("by signal".into(), |c| c.to_string()),
                    );
                    samples.push(sample);
                }
                rows.push(FanoutRow {
                    hosts,
                    id,
                    sink,
                    samples,
                });
            }
        }
        drop(fleet);
    }

    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\nfan-out over virtual hosts: one simulator process with a listener on each of \
         127.1.0.1 onwards, real TCP and mutual TLS per host, each host listing \
         {FANOUT_PROCESSES} processes from a canned copy of this machine's (not a scan of /proc \
         per call); {cores} cores shared by the simulator and the CLI; median wall of fresh-process \
         runs, highest peak RSS of the CLI (wait4):"
    );
    println!(
        "  {:>6}  {:<5} {:<12} {:>10} {:>9} {:>9} {:>11}  command",
        "hosts", "", "stdout", "wall ms", "us/host", "MiB", "lines"
    );
    for row in &rows {
        let wall = row.median_wall();
        let lines = row
            .samples
            .iter()
            .find_map(|s| s.lines)
            .map_or_else(|| "-".to_owned(), |n| n.to_string());
        let failed = row.samples.iter().filter(|s| s.code != Some(0)).count();
        let (_, args) = commands
            .iter()
            .find(|(id, _)| *id == row.id)
            .copied()
            .unwrap_or(("", &[]));
        println!(
            "  {:>6}  {:<5} {:<12} {:>10.0} {:>9.1} {:>9.1} {lines:>11}  hostscope {}{}",
            row.hosts,
            row.id,
            row.sink.label(),
            wall * 1e3,
            wall * 1e6 / row.hosts as f64,
            row.peak_mib(),
            args.join(" "),
            match failed {
                0 => String::new(),
                n => format!("  ({n} of {} runs did not exit 0)", row.samples.len()),
            }
        );
    }

    println!("goals:");
    let peak = |hosts: usize, id: &str| -> Option<f64> {
        rows.iter()
            .filter(|r| r.hosts == hosts && r.id == id)
            .map(FanoutRow::peak_mib)
            .reduce(f64::max)
    };
    let verdict = |met: bool| if met { "met" } else { "NOT MET" };
    for (hosts, id, goal) in [
        (500, "ps", GOAL_PS_500_MIB),
        (10_000, "host", GOAL_HOST_10K_MIB),
        (10_000, "ps", GOAL_PS_10K_MIB),
    ] {
        match peak(hosts, id) {
            Some(mib) => println!(
                "  {id:<4} over {hosts:>6} hosts: peak RSS {mib:>6.1} MiB, goal <= {goal:.0} MiB: {}",
                verdict(mib <= goal)
            ),
            None => println!("  {id:<4} over {hosts:>6} hosts: not measured in this run"),
        }
    }
    let per_host = |hosts: usize, id: &str, sink: Sink| -> Option<f64> {
        rows.iter()
            .find(|r| r.hosts == hosts && r.id == id && r.sink == sink)
            .map(|r| r.median_wall() * 1e6 / hosts as f64)
    };
    let (small, large) = (FANOUT_SIZES[0], FANOUT_SIZES[1]);
    for (id, _) in commands {
        for sink in [Sink::Pipe, Sink::Null] {
            match (per_host(small, id, sink), per_host(large, id, sink)) {
                (Some(a), Some(b)) => println!(
                    "  {id:<4} {:<12} time per host at {large}: {b:>6.1} us, at {small}: {a:>6.1} us, \
                     goal no worse: {}",
                    sink.label(),
                    verdict(b <= a)
                ),
                _ => println!(
                    "  {id:<4} {:<12} time per host: needs both {small} and {large} hosts in one run",
                    sink.label()
                ),
            }
        }
    }
    Ok(())
}

/// A running virtual fleet: its simulator (killed on drop) and inventory.
pub(super) struct Virtual {
    _sim: Guard,
    pub(super) inventory: std::path::PathBuf,
}

/// Starts `hostscope-fleet-sim virtual` with `hosts` hosts, each listing
/// `processes` processes, under `dir` and waits until it has written its
/// inventory, which it does once every listener is bound.
pub(super) fn start_virtual(
    sim_bin: &Path,
    hosts: usize,
    processes: usize,
    dir: &Path,
) -> Result<Virtual> {
    let inventory = dir.join("inventory.toml");
    remove_stale(&inventory)?;
    eprintln!("\n== starting {hosts} virtual hosts");
    let mut sim = Guard(
        Command::new(sim_bin)
            .args(["virtual", "--hosts", &hosts.to_string()])
            .args(["--processes", &processes.to_string()])
            .arg("--dir")
            .arg(dir)
            // Long enough for every run; the guard kills it when done.
            .args(["--duration", "30m"])
            .stdin(Stdio::null())
            .spawn()
            .context("starting hostscope-fleet-sim virtual")?,
    );
    let start = Instant::now();
    let limit = Duration::from_secs(120);
    let text = loop {
        if let Ok(text) = fs::read_to_string(&inventory) {
            break text;
        }
        if let Some(status) = sim.0.try_wait()? {
            bail!("hostscope-fleet-sim exited ({status}) before writing its inventory");
        }
        if start.elapsed() > limit {
            bail!("no inventory from hostscope-fleet-sim within {limit:?}");
        }
        thread::sleep(Duration::from_millis(100));
    };
    let listed = text.lines().filter(|l| l.starts_with("address = ")).count();
    if listed != hosts {
        bail!("{} lists {listed} hosts, not {hosts}", inventory.display());
    }
    Ok(Virtual {
        _sim: sim,
        inventory,
    })
}
