//! `cargo xtask`: the project's own automation.
//!
//! Kept free of heavy dependencies so that it compiles in seconds.

use std::{
    env,
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

const HELP: &str = "\
cargo xtask <command>

Commands:
  demo [--release]   make a throwaway PKI, start an agent on 127.0.0.1 with
                     mutual TLS, and query it with `hostscope host`, `ps`,
                     `nics` (and a zombie it makes for the occasion)
  ci                 what .ci/run runs: fmt check, clippy, the tests
  bench procs        the agent's process collection against the floor (the
                     kernel's cost of the same /proc reads) with 2,000 extra
                     sleeping processes; prints medians and ratios
  install-hooks      a git pre-commit hook that runs fmt and clippy
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(args[1..].iter().any(|a| a == "--release")),
        Some("ci") => ci(),
        Some("bench") => bench(args.get(1).map(String::as_str)),
        Some("install-hooks") => install_hooks(),
        Some("-h" | "--help" | "help") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown command {other:?}\n\n{HELP}")),
    };
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

fn demo(release: bool) -> Result<()> {
    let profile = if release { "release" } else { "debug" };
    let mut build = cargo();
    build.args([
        "build",
        "-j2",
        "-p",
        "hostscope-agent",
        "-p",
        "hostscope-client",
        "--bins",
    ]);
    if release {
        build.arg("--release");
    }
    run(&mut build)?;
    let bin = root().join("target").join(profile);
    let hostscope = bin.join("hostscope");
    let agent_bin = bin.join("hostscope-agent");

    let pki = root().join("target/demo/pki");
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
    let _leaker = Guard(
        Command::new("sh")
            .args(["-c", "sleep 0.1 & exec sleep 60"])
            .stdin(Stdio::null())
            .spawn()
            .context("starting the zombie demo")?,
    );
    thread::sleep(Duration::from_millis(400));

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

    eprintln!("\n== stopping the agent with SIGTERM");
    stop_gracefully(agent)?;
    eprintln!(
        "\nThe demo PKI is in {}; try:\n  hostscope --help",
        pki.display()
    );
    Ok(())
}

fn free_loopback_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

fn wait_listening(addr: SocketAddr, limit: Duration) -> Result<()> {
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if start.elapsed() > limit {
            bail!("the agent did not listen on {addr} within {limit:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(())
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

fn bench(which: Option<&str>) -> Result<()> {
    match which {
        Some("procs") => bench_procs(),
        _ => bail!("usage: cargo xtask bench procs"),
    }
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
    let processes = std::fs::read_dir("/proc")?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .count();
    eprintln!(
        "{} extra sleeping processes started; {processes} processes in all",
        sleepers.0.len()
    );
    run(cargo().args(["bench", "-p", "hostscope-integration", "--bench", "procs"]))?;
    drop(sleepers);

    let median = |id: &str| -> Result<f64> {
        let path = root()
            .join("target/criterion/procs")
            .join(id)
            .join("new/estimates.json");
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
