//! `cargo xtask`: the project's own automation.
//!
//! Kept free of heavy dependencies so that it compiles in seconds.

use std::{
    env, fs,
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

mod dist;
mod fuzz;
mod xcheck;

const HELP: &str = "\
cargo xtask <command> [options]

Commands:
  demo [--release] [--keep]
                       make a throwaway PKI, start an agent on 127.0.0.1 with
                       mutual TLS, and query it with `hostscope host`, `ps`,
                       `nics` (and a zombie it makes for the occasion)
  ci                   what .ci/run runs: fmt check, clippy, the tests
  bench procs|watch|fleet|sys|sockets
                       benchmarks against their floors; see `cargo xtask bench
                       --help`
  fleet-sim [ARGS]     real agents on 127.0.0.1 and an inventory file for them;
                       see `cargo xtask fleet-sim --help`
  install-hooks        a git pre-commit hook that runs fmt and clippy
  dist                 release binaries, and their shell completions and man
                       pages in target/dist
  deb                  dist, then the Debian package (cargo-deb) in target/dist
  xcheck [--target T]  clippy -D warnings for FreeBSD, OpenBSD, NetBSD and macOS
                       (x86_64 and aarch64) on this machine
  fuzz [--time SECS] [TARGET]...
                       libFuzzer on the request handlers, parsers, decoders
                       and TOML files (nightly, cargo-fuzz); see `cargo xtask
                       fuzz --help`
  help [COMMAND]       this text, or a command's

`cargo xtask COMMAND --help` prints a command's help without building
anything. Build output goes to cargo's target directory: CARGO_TARGET_DIR
(or build.target-dir) is honoured.
";

const DEMO_HELP: &str = "\
cargo xtask demo [--release] [--keep]

Builds hostscope-agent and hostscope, makes a throwaway PKI in
TARGET/demo/pki, starts an agent on a free port of 127.0.0.1 with mutual TLS,
queries it with `hostscope host`, `ps`, `ps --status zombie` (with a zombie
made for the occasion) and `nics`, and stops it with SIGTERM. With --keep the
agent keeps serving, and the demo prints the commands that query it, until
Ctrl-C.

TARGET is cargo's target directory (CARGO_TARGET_DIR, if set).

Options:
  --release   build and run the release binaries
  --keep      keep the agent running until Ctrl-C, for queries of your own
  -h, --help  this text
";

const CI_HELP: &str = "\
cargo xtask ci

What .ci/run runs: cargo fmt --check, cargo clippy --workspace
--all-targets -- -D warnings, cargo test --workspace.
";

const BENCH_HELP: &str = "\
cargo xtask bench procs|watch|fleet|sys|sockets

  procs   the agent's process collection against the floor (the kernel's
          cost of the same /proc reads) with 2,000 extra sleeping
          processes; prints medians and ratios
  watch   delay from a process's exit to its EXITED event at a watching
          client over mTLS, against the agent's own event source; p50/p99
          and agent CPU per 1,000 processes
  fleet   `hostscope host` and `hostscope ps` against a simulated fleet of
          1,000 agents, fresh processes (so fresh mTLS connections) each
          run, against the floor of a TCP connect and mutual-TLS handshake
          to every host; prints medians, hosts per second, the client's
          peak RSS and ratios
  sys     GetSystem (every figure but the measured ones) and ListDisks
          over mTLS, and the agent's backend in process, against psutil's
          in-process calls for the same figures; prints medians, ratios
          and the agent's CPU time per snapshot
  sockets ListConnections (kind all, with pids) over mTLS, and the agent's
          backend in process, with 10,000 extra sockets on loopback (a
          child's 5,000 connected TCP pairs), against psutil's in-process
          net_connections('all'); prints medians and ratios

Release builds, in cargo's target directory (CARGO_TARGET_DIR, if set).
";

const FLEET_SIM_HELP: &str = "\
cargo xtask fleet-sim --agents N [options]

Builds and runs hostscope-fleet-sim (release): N real agents on 127.0.0.1,
each with its own certificate and port, plus broken hosts, and an
inventory file naming them all.

Options (passed on to hostscope-fleet-sim):
  --agents N        real agent servers, the --wrong-ca ones included
  --closed N        extra inventory entries whose port is closed
  --silent N        extra inventory entries that accept TCP and never answer
  --wrong-ca N      how many agents present a certificate from another CA
  --dir DIR         where the PKI (DIR/pki) and the inventory
                    (DIR/inventory.toml) go [default: TARGET/fleet-sim]
  --duration TIME   stop after this long (90s, 10m) [default: 60s]
  -h, --help        this text

TARGET is cargo's target directory (CARGO_TARGET_DIR, if set).
";

const XCHECK_HELP: &str = "\
cargo xtask xcheck [--target TARGET]

Runs `clippy --workspace --all-targets -- -D warnings` for another OS on
this Linux machine (../shared/tools/xcheck, or $XCHECK: the nightly toolchain
builds std from source), for every target or those named:
x86_64-unknown-freebsd, x86_64-unknown-openbsd, x86_64-unknown-netbsd,
x86_64-apple-darwin, aarch64-apple-darwin. The integration test crate,
which drives real agents with Linux-only calls, is left out: it is linted
on Linux only. The Apple targets build ring's C with clang (installed
with apt-get if missing) and a stub SDK. Output goes to TARGET/xcheck.
Nothing links or runs.
";

const DIST_HELP: &str = "\
cargo xtask dist

Builds hostscope-agent and hostscope in release and writes their shell
completions (bash, zsh, fish) and man pages to target/dist.
";

const DEB_HELP: &str = "\
cargo xtask deb

`cargo xtask dist`, then the Debian package of both binaries, the systemd
unit, an example configuration, completions and man pages (cargo-deb) in
target/dist.
";

const FUZZ_HELP: &str = "\
cargo xtask fuzz [--time SECS] [--update-corpus] [TARGET]...

Builds the cargo-fuzz targets of fuzz/ with nightly (installing cargo-fuzz
if missing) and runs each named target, or every one, for SECS seconds
[default: 60], starting from the committed corpus fuzz/corpus/TARGET:
  service        every HostInspector request, decoded from the bytes and
                 handled by the service over a fake backend
  glob           the process name glob matcher, against the glob crate's
                 Pattern on short inputs, for time on long ones
  proc_parsers   the /proc parsers (stat, status, statm, io, cmdline, net,
                 proc_event, system)
  bsd_decoders   the BSD and macOS record decoders (FreeBSD, OpenBSD,
                 NetBSD, macOS, kqueue events, media words, sockaddrs)
  inventory      the inventory TOML, --hosts lists and address files
  profile        the client profile TOML
The run's corpus lives in TARGET/fuzz/corpus; with --update-corpus it is
minimised (cargo fuzz cmin) into fuzz/corpus/TARGET. Crashing inputs go to
fuzz/artifacts/TARGET and fail the command. `cargo test` replays every
committed corpus file without nightly.
";

const INSTALL_HOOKS_HELP: &str = "\
cargo xtask install-hooks

Installs a git pre-commit hook that runs cargo fmt --check and cargo clippy.
";

/// What the command line asked for.
#[derive(Debug, PartialEq)]
enum Task {
    /// Print this text.
    Help(&'static str),
    Demo {
        release: bool,
        keep: bool,
    },
    Ci,
    Bench(Bench),
    FleetSim(Vec<String>),
    InstallHooks,
    Dist,
    Deb,
    Xcheck(Vec<String>),
    Fuzz(fuzz::Args),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Bench {
    Procs,
    Watch,
    Fleet,
    Sys,
    Sockets,
}

/// The help text of `command`, if it is one.
fn help_of(command: &str) -> Option<&'static str> {
    Some(match command {
        "demo" => DEMO_HELP,
        "ci" => CI_HELP,
        "bench" => BENCH_HELP,
        "fleet-sim" => FLEET_SIM_HELP,
        "install-hooks" => INSTALL_HOOKS_HELP,
        "dist" => DIST_HELP,
        "deb" => DEB_HELP,
        "xcheck" => XCHECK_HELP,
        "fuzz" => FUZZ_HELP,
        _ => return None,
    })
}

/// Reads the command line (without the program name). Asking for help
/// anywhere wins, so that `--help` never starts a build.
fn parse(args: &[String]) -> Result<Task> {
    let is_help = |a: &String| a == "-h" || a == "--help";
    let Some((command, rest)) = args.split_first() else {
        return Ok(Task::Help(HELP));
    };
    let help = match command.as_str() {
        "-h" | "--help" => return Ok(Task::Help(HELP)),
        "help" => {
            return match rest {
                [] => Ok(Task::Help(HELP)),
                [command] => help_of(command)
                    .map(Task::Help)
                    .with_context(|| format!("no command {command:?}\n\n{HELP}")),
                _ => bail!("usage: cargo xtask help [COMMAND]"),
            };
        }
        other => help_of(other).with_context(|| format!("no command {other:?}\n\n{HELP}"))?,
    };
    if rest.iter().any(is_help) {
        return Ok(Task::Help(help));
    }
    let unexpected = |arg: &String| anyhow::anyhow!("unexpected argument {arg:?}\n\n{help}");
    Ok(match command.as_str() {
        "demo" => {
            if let Some(arg) = rest.iter().find(|a| *a != "--release" && *a != "--keep") {
                return Err(unexpected(arg));
            }
            Task::Demo {
                release: rest.iter().any(|a| a == "--release"),
                keep: rest.iter().any(|a| a == "--keep"),
            }
        }
        "bench" => match rest {
            [which] => Task::Bench(match which.as_str() {
                "procs" => Bench::Procs,
                "watch" => Bench::Watch,
                "fleet" => Bench::Fleet,
                "sys" => Bench::Sys,
                "sockets" => Bench::Sockets,
                _ => return Err(unexpected(which)),
            }),
            _ => bail!("which benchmark?\n\n{help}"),
        },
        "fleet-sim" => Task::FleetSim(rest.to_vec()),
        "xcheck" => Task::Xcheck(rest.to_vec()),
        "fuzz" => Task::Fuzz(fuzz::parse(rest)?),
        "ci" | "install-hooks" | "dist" | "deb" => {
            if let Some(arg) = rest.first() {
                return Err(unexpected(arg));
            }
            match command.as_str() {
                "ci" => Task::Ci,
                "dist" => Task::Dist,
                "deb" => Task::Deb,
                _ => Task::InstallHooks,
            }
        }
        _ => unreachable!("help_of knows every command"),
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = parse(&args).and_then(|task| match task {
        Task::Help(text) => {
            print!("{text}");
            Ok(())
        }
        Task::Demo { release, keep } => demo(release, keep),
        Task::Ci => ci(),
        Task::Bench(Bench::Procs) => bench_procs(),
        Task::Bench(Bench::Watch) => bench_watch(),
        Task::Bench(Bench::Fleet) => bench_fleet(),
        Task::Bench(Bench::Sys) => bench_sys(),
        Task::Bench(Bench::Sockets) => bench_sockets(),
        Task::FleetSim(args) => fleet_sim(&args),
        Task::InstallHooks => install_hooks(),
        Task::Dist => dist::dist().map(drop),
        Task::Deb => dist::deb(),
        Task::Xcheck(args) => xcheck::xcheck(&args),
        Task::Fuzz(args) => fuzz::fuzz(&args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Cargo's target directory for this workspace, as cargo itself resolves
/// it: CARGO_TARGET_DIR, build.target-dir in a config file, or `target/`.
/// Everything xtask builds, and everything it writes, goes there.
fn target_dir() -> Result<PathBuf> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", out.status);
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading cargo metadata's output")?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata gave no target_directory")
}

/// Runs `cmd`, echoing it, and fails unless it succeeds.
fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", display(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("starting {}", display(cmd)))?;
    if !status.success() {
        bail!("{} failed: {status}", display(cmd));
    }
    Ok(())
}

fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

// === ci ===

fn ci() -> Result<()> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "-j2",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args(["test", "--workspace", "-j2"]))
}

// === install-hooks ===

fn install_hooks() -> Result<()> {
    let out = Command::new("git")
        .args(["rev-parse", "--git-path", "hooks"])
        .current_dir(root())
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "not a git checkout: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let hooks = root().join(String::from_utf8_lossy(&out.stdout).trim());
    std::fs::create_dir_all(&hooks)?;
    let hook = hooks.join("pre-commit");
    std::fs::write(
        &hook,
        "#!/bin/sh\n# Installed by `cargo xtask install-hooks`.\nset -e\n\
         cargo fmt --all --check\n\
         cargo clippy --workspace --all-targets -j2 --quiet -- -D warnings\n",
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))?;
    }
    println!("installed {}", hook.display());
    Ok(())
}

// === demo ===

/// A child process that is stopped when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn demo(release: bool, keep: bool) -> Result<()> {
    let profile = if release { "release" } else { "debug" };
    let mut build = cargo();
    build.args([
        "build",
        "-j2",
        "-p",
        "hostscope-agent",
        "-p",
        "hostscope-cli",
        "--bins",
    ]);
    if release {
        build.arg("--release");
    }
    let target = target_dir()?;
    run(&mut build)?;
    let bin = target.join(profile);
    let hostscope = bin.join("hostscope");
    let agent_bin = bin.join("hostscope-agent");

    let pki = target.join("demo/pki");
    let pki_s = pki.to_string_lossy().into_owned();
    run(Command::new(&hostscope).args(["pki", "init", "--dir", &pki_s, "--force"]))?;
    run(Command::new(&hostscope).args([
        "pki",
        "issue",
        "--dir",
        &pki_s,
        "--name",
        "agent",
        "--server",
        "--san",
        "127.0.0.1",
        "--san",
        "localhost",
    ]))?;
    run(Command::new(&hostscope).args([
        "pki", "issue", "--dir", &pki_s, "--name", "admin", "--client",
    ]))?;

    let addr = free_loopback_port()?;
    eprintln!("\n== starting hostscope-agent on {addr} (mutual TLS)");
    let agent = Guard(
        Command::new(&agent_bin)
            .args(["--listen", &addr.to_string()])
            .arg("--cert")
            .arg(pki.join("agent.pem"))
            .arg("--key")
            .arg(pki.join("agent-key.pem"))
            .arg("--client-ca")
            .arg(pki.join("ca.pem"))
            .spawn()
            .context("starting hostscope-agent")?,
    );
    wait_listening(addr, Duration::from_secs(20))?;

    // A parent that never reaps: its child becomes a zombie for the demo.
    let leaker = Guard(
        Command::new("sh")
            .args(["-c", "sleep 0.1 & exec sleep 60"])
            .stdin(Stdio::null())
            .spawn()
            .context("starting the zombie demo")?,
    );
    wait_for_zombie_child(leaker.0.id(), Duration::from_secs(20))?;

    let query = |args: &[&str]| -> Result<()> {
        eprintln!("\n== hostscope {}", args.join(" "));
        run(Command::new(&hostscope)
            .args(["--host", &addr.to_string()])
            .env("HOSTSCOPE_CA", pki.join("ca.pem"))
            .env("HOSTSCOPE_CERT", pki.join("admin.pem"))
            .env("HOSTSCOPE_KEY", pki.join("admin-key.pem"))
            .args(args))
    };
    query(&["host"])?;
    query(&["ps"])?;
    query(&[
        "ps",
        "--status",
        "zombie",
        "--fields",
        "pid,ppid,name,status",
    ])?;
    query(&["nics"])?;

    let env = format!(
        "HOSTSCOPE_CA={} HOSTSCOPE_CERT={} HOSTSCOPE_KEY={}",
        pki.join("ca.pem").display(),
        pki.join("admin.pem").display(),
        pki.join("admin-key.pem").display()
    );
    if keep {
        eprintln!(
            "\n== the agent keeps serving on {addr}; Ctrl-C stops it. In another terminal:\n  \
             export {env}\n  {} --host {addr} ps --status zombie\n  {} --help",
            hostscope.display(),
            hostscope.display()
        );
        // Ctrl-C reaches the agent too (the terminal signals the whole
        // foreground group), and it stops gracefully on SIGINT.
        let mut agent = agent;
        let status = agent.0.wait().context("waiting for the agent")?;
        eprintln!("\n== the agent stopped ({status})");
        return Ok(());
    }
    eprintln!("\n== stopping the agent with SIGTERM");
    stop_gracefully(agent)?;
    eprintln!(
        "\nThe demo PKI is in {}. The CLI is {}; to keep an agent serving for queries of \
         your own, run `cargo xtask demo --keep`, then in another terminal:\n  \
         {env} {} --host ADDR ps",
        pki.display(),
        hostscope.display(),
        hostscope.display()
    );
    Ok(())
}

/// Waits until `parent` has a zombie child.
fn wait_for_zombie_child(parent: u32, limit: Duration) -> Result<()> {
    let start = Instant::now();
    let zombie_child = || -> Result<bool> {
        for entry in fs::read_dir("/proc")?.flatten() {
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let mut fields = stat
                .rsplit_once(')')
                .map_or("", |(_, f)| f)
                .split_whitespace();
            if fields.next() == Some("Z") && fields.next() == Some(&parent.to_string()) {
                return Ok(true);
            }
        }
        Ok(false)
    };
    while !zombie_child()? {
        if start.elapsed() > limit {
            bail!("no zombie child of pid {parent} within {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn free_loopback_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

/// Waits until something listens on `addr`, an IPv4 loopback address, as
/// the kernel's socket table says: a probe that connected and hung up
/// before the TLS handshake would look like an attack to the agent, and be
/// logged as one.
fn wait_listening(addr: SocketAddr, limit: Duration) -> Result<()> {
    let start = Instant::now();
    while !listening(addr)? {
        if start.elapsed() > limit {
            bail!("the agent did not listen on {addr} within {limit:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Whether `/proc/net/tcp` has a socket in state LISTEN on `addr`.
fn listening(addr: SocketAddr) -> Result<bool> {
    let SocketAddr::V4(v4) = addr else {
        bail!("{addr}: only IPv4 addresses are probed");
    };
    // The kernel writes the address as the hexadecimal u32 in host byte
    // order, and the port in hexadecimal: 0100007F:1F90 for 127.0.0.1:8080.
    let local = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(v4.ip().octets()),
        v4.port()
    );
    let table = fs::read_to_string("/proc/net/tcp").context("reading /proc/net/tcp")?;
    Ok(table.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace();
        fields.nth(1) == Some(local.as_str()) && fields.nth(1) == Some("0A")
    }))
}

fn stop_gracefully(mut agent: Guard) -> Result<()> {
    run(Command::new("kill").args(["-TERM", &agent.0.id().to_string()]))?;
    let status = agent.0.wait().context("waiting for the agent")?;
    if !status.success() {
        bail!("the agent exited with {status}");
    }
    Ok(())
}

// === bench ===

/// Exit-to-event delay of WatchProcesses against the agent's own event
/// source, over 1,000 processes; see tests/integration/src/bin/hostscope-watch-bench.rs.
fn bench_watch() -> Result<()> {
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

fn bench_procs() -> Result<()> {
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

fn bench_sys() -> Result<()> {
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
fn bench_sockets() -> Result<()> {
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

// === fleet-sim ===

fn fleet_sim(args: &[String]) -> Result<()> {
    let target = target_dir()?;
    // The CLI beside the simulator, so that the command it suggests runs.
    run(cargo().args([
        "build",
        "--release",
        "-j2",
        "-p",
        "hostscope-cli",
        "--bin",
        "hostscope",
    ]))?;
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "-j2",
        "-p",
        "hostscope-integration",
        "--bin",
        "hostscope-fleet-sim",
        "--",
    ]);
    cmd.args(args);
    let given = |flag: &str| {
        args.iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    if !given("--dir") && !args.iter().any(|a| a == "handshake-floor") {
        cmd.arg("--dir").arg(target.join("fleet-sim"));
    }
    run(&mut cmd)
}

// === bench fleet ===

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

fn bench_fleet() -> Result<()> {
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

    let dir = target.join("bench-fleet");
    let (inventory, pki) = (dir.join("inventory.toml"), dir.join("pki"));
    // A previous run's inventory would pass for this fleet's until the
    // simulator removes it.
    match fs::remove_file(&inventory) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", inventory.display()));
        }
        _ => {}
    }
    eprintln!("\n== starting a simulated fleet of {FLEET_AGENTS} agents");
    let mut sim = Guard(
        Command::new(&sim_bin)
            .arg("--agents")
            .arg(FLEET_AGENTS.to_string())
            .arg("--dir")
            .arg(&dir)
            // Long enough for every run; the guard kills it when done.
            .args(["--duration", "30m"])
            .stdin(Stdio::null())
            .spawn()
            .context("starting hostscope-fleet-sim")?,
    );
    let hosts = wait_for_fleet(&mut sim.0, &inventory, Duration::from_secs(120))?;
    let processes = count_processes()?;

    let path = |p: &Path| p.to_string_lossy().into_owned();
    let (inv, pki_dir) = (path(&inventory), path(&pki));
    let (ca, cert, key) = (
        path(&pki.join("ca.pem")),
        path(&pki.join("client.pem")),
        path(&pki.join("client-key.pem")),
    );
    let fleet_args = [
        "--inventory",
        &inv,
        "--ca",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
    ];
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
            let sample = measure(Command::new(program).args(args), &log)?;
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
    drop(sim);

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
fn wait_for_fleet(sim: &mut Child, inventory: &Path, limit: Duration) -> Result<usize> {
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
    if addrs.len() != FLEET_AGENTS {
        bail!(
            "{} lists {} hosts, not {FLEET_AGENTS}",
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

/// Runs `cmd` with stdout to /dev/null and stderr to `log`, and reaps it
/// with wait4, which reports that child's own peak RSS.
fn measure(cmd: &mut Command, log: &Path) -> Result<Sample> {
    let stderr = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting {}", display(cmd)))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Task> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse(&args)
    }

    #[test]
    fn help_anywhere_prints_help_and_runs_nothing() {
        for (line, text) in [
            ("", HELP),
            ("--help", HELP),
            ("-h", HELP),
            ("help", HELP),
            ("help demo", DEMO_HELP),
            ("demo --help", DEMO_HELP),
            ("demo --release -h", DEMO_HELP),
            ("ci --help", CI_HELP),
            ("bench --help", BENCH_HELP),
            ("bench procs --help", BENCH_HELP),
            ("bench sys --help", BENCH_HELP),
            ("fleet-sim --agents 10 --help", FLEET_SIM_HELP),
            ("install-hooks -h", INSTALL_HOOKS_HELP),
        ] {
            assert_eq!(parse_line(line).ok(), Some(Task::Help(text)), "{line:?}");
        }
    }

    #[test]
    fn a_listening_socket_is_seen_without_connecting_to_it() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local address");
        assert!(listening(addr).expect("reading /proc/net/tcp"));
        drop(listener);
        assert!(!listening(addr).expect("reading /proc/net/tcp"));
    }

    #[test]
    fn commands_take_their_own_arguments_only() {
        let demo = |release, keep| Some(Task::Demo { release, keep });
        assert_eq!(parse_line("demo").ok(), demo(false, false));
        assert_eq!(parse_line("demo --release").ok(), demo(true, false));
        assert_eq!(parse_line("demo --keep --release").ok(), demo(true, true));
        assert!(parse_line("demo --kep").is_err());
        assert_eq!(
            parse_line("bench watch").ok(),
            Some(Task::Bench(Bench::Watch))
        );
        assert_eq!(parse_line("bench sys").ok(), Some(Task::Bench(Bench::Sys)));
        assert_eq!(
            parse_line("fleet-sim --agents 3 --dir d").ok(),
            Some(Task::FleetSim(
                ["--agents", "3", "--dir", "d"].map(String::from).to_vec()
            ))
        );
        for line in [
            "demo --relase",
            "ci now",
            "bench",
            "bench all",
            "install-hooks x",
            "deploy",
            "help deploy",
        ] {
            assert!(parse_line(line).is_err(), "{line:?} was accepted");
        }
    }
}
