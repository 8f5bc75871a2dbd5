//! `cargo xtask`: the project's own automation.
//!
//! Kept free of heavy dependencies so that it compiles in seconds. This
//! file runs the task the command line asks for ([`args`]) and holds what
//! the tasks share: cargo, running commands, children stopped on drop, and
//! the kernel's table of listening sockets.

use std::{
    env, fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, Stdio},
};

use anyhow::{Context, Result, bail};

mod args;
mod bench;
mod ci;
mod demo;
mod dist;
mod fleet_sim;
mod fuzz;
mod help;
mod xcheck;

use args::{Bench, Task, parse};

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = parse(&args).and_then(|task| match task {
        Task::Help(text) => {
            print!("{text}");
            Ok(())
        }
        Task::Demo { release, keep } => demo::demo(release, keep),
        Task::Ci => ci::ci(),
        Task::Bench(Bench::Procs) => bench::bench_procs(),
        Task::Bench(Bench::Watch) => bench::bench_watch(),
        Task::Bench(Bench::Fleet) => bench::bench_fleet(),
        Task::Bench(Bench::Sys) => bench::bench_sys(),
        Task::Bench(Bench::Sockets) => bench::bench_sockets(),
        Task::Bench(Bench::Fanout { hosts }) => bench::bench_fanout(hosts),
        Task::Bench(Bench::Collect { hosts }) => bench::bench_collect(hosts),
        Task::FleetSim(args) => fleet_sim::fleet_sim(&args),
        Task::InstallHooks => ci::install_hooks(),
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

/// A child process that is stopped when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn a_listening_socket_is_seen_without_connecting_to_it() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local address");
        assert!(listening(addr).expect("reading /proc/net/tcp"));
        drop(listener);
        assert!(!listening(addr).expect("reading /proc/net/tcp"));
    }
}
