//! `cargo xtask demo`: a throwaway PKI, an agent on 127.0.0.1 with mutual
//! TLS, and the CLI's answers from it, a zombie made for the occasion
//! included.

use std::{
    fs,
    net::{SocketAddr, TcpListener},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{Guard, cargo, listening, run, target_dir};

pub fn demo(release: bool, keep: bool) -> Result<()> {
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

fn stop_gracefully(mut agent: Guard) -> Result<()> {
    run(Command::new("kill").args(["-TERM", &agent.0.id().to_string()]))?;
    let status = agent.0.wait().context("waiting for the agent")?;
    if !status.success() {
        bail!("the agent exited with {status}");
    }
    Ok(())
}
