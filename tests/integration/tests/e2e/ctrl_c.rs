//! Ctrl-C during a fleet query, as a person presses it: the `hostscope`
//! command line runs as a real process (this package's `hostscope-cli`
//! binary, the CLI's own `main`), gets a real SIGINT, and must print what
//! arrived and the summary, and exit 130.

use std::{
    process::Command,
    time::{Duration, Instant},
};

/// A child process killed and reaped when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Real agents with mutual TLS on 127.0.0.1, and a host that accepts TCP
/// and never speaks, all served by a runtime of the test's own.
struct Fleet {
    runtime: tokio::runtime::Runtime,
    pki: tempfile::TempDir,
    agents: Vec<String>,
    silent: String,
    /// Connections the silent host has accepted.
    accepted: std::sync::mpsc::Receiver<tokio::net::TcpStream>,
}

impl Fleet {
    fn start(agents: usize) -> Fleet {
        use hostscope_agent::{
            backend,
            server::{Agent, Limits, TlsFiles},
            service::{Inspector, Options},
        };
        use hostscope_client::pki::{self, CertRole};
        let pki = tempfile::tempdir().expect("tempdir");
        pki::init(pki.path(), false).expect("ca");
        let sans = ["127.0.0.1".to_owned()];
        pki::issue(pki.path(), "agent", CertRole::Server, &sans).expect("agent cert");
        pki::issue(pki.path(), "alice", CertRole::Client, &[]).expect("client cert");
        let tls = TlsFiles {
            cert: pki.path().join("agent.pem"),
            key: pki.path().join("agent-key.pem"),
            client_ca: pki.path().join("ca.pem"),
        }
        .server_config()
        .expect("agent tls");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (tx, accepted) = std::sync::mpsc::channel();
        let (agents, silent) = runtime.block_on(async {
            let mut addresses = Vec::new();
            for _ in 0..agents {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addresses.push(listener.local_addr().expect("addr").to_string());
                let backend = backend::native("/proc".into(), "/sys".into()).expect("backend");
                let inspector = Inspector::new(std::sync::Arc::from(backend), Options::default());
                let agent = Agent::new(inspector, Some(tls.clone()), Limits::default());
                // Served until the runtime is dropped with the fleet.
                tokio::spawn(agent.serve(listener, std::future::pending()));
            }
            let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let silent_address = silent.local_addr().expect("addr").to_string();
            tokio::spawn(async move {
                while let Ok((socket, _)) = silent.accept().await {
                    // Held, unread, by the test.
                    if tx.send(socket).is_err() {
                        break;
                    }
                }
            });
            (addresses, silent_address)
        });
        Fleet {
            runtime,
            pki,
            agents,
            silent,
            accepted,
        }
    }

    /// Starts `hostscope` with this fleet's client certificate, asking
    /// every agent and then the silent host, with `args` after the
    /// targets; stdout and stderr are piped.
    fn hostscope(&self, args: &[&str]) -> Killed {
        let file = |name: &str| self.pki.path().join(name);
        let mut hosts = self.agents.clone();
        hosts.push(self.silent.clone());
        let child = Command::new(env!("CARGO_BIN_EXE_hostscope-cli"))
            .arg("--ca")
            .arg(file("ca.pem"))
            .arg("--cert")
            .arg(file("alice.pem"))
            .arg("--key")
            .arg(file("alice-key.pem"))
            .args(["--hosts", &hosts.join(","), "--timeout", "10m"])
            .args(args)
            .env_remove("HOSTSCOPE_HOST")
            .env_remove("HOSTSCOPE_CA")
            .env_remove("HOSTSCOPE_CERT")
            .env_remove("HOSTSCOPE_KEY")
            // No profile of the user's.
            .env("XDG_CONFIG_HOME", self.pki.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run hostscope");
        Killed(child)
    }
}

/// Reads `child`'s stdout as it comes, on a thread of its own.
fn stdout_lines(child: &mut Killed) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Sends SIGINT to `child`, as Ctrl-C in its terminal would, and waits for
/// its end; returns its exit code and its stderr.
fn interrupt(child: &mut Killed) -> (i32, String) {
    use std::io::Read;
    // kill(1) with a pid this test started and has not reaped.
    let sent = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .expect("running kill");
    assert!(sent.success(), "kill -INT: {sent}");
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "hostscope went on after Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    let mut stderr = child.0.stderr.take().expect("piped stderr");
    stderr.read_to_string(&mut err).expect("stderr");
    (status.code().unwrap_or(-1), err)
}

/// How long a step may take on a loaded machine before the test gives up.
const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn ctrl_c_prints_what_arrived_and_the_summary_and_exits_130() {
    let cancelled = |fleet: &Fleet| {
        format!(
            "  {}: cancelled: had not answered when the query was cancelled\n",
            fleet.silent
        )
    };
    let fleet = Fleet::start(2);

    // A table: Ctrl-C once both agents' parts are out.
    let mut child = fleet.hostscope(&["host"]);
    let lines = stdout_lines(&mut child);
    let mut out = Vec::new();
    while out
        .iter()
        .filter(|l: &&String| l.starts_with("net_interface_fields:"))
        .count()
        < 2
    {
        out.push(lines.recv_timeout(LIMIT).expect("both agents' parts"));
    }
    let (code, err) = interrupt(&mut child);
    assert_eq!(code, 130, "{err}");
    assert!(err.starts_with("2 ok, 0 failed, 1 cancelled in "), "{err}");
    assert!(err.ends_with(&cancelled(&fleet)), "{err}");
    for agent in &fleet.agents {
        assert!(out.contains(&format!("== {agent}")), "{agent} in {out:?}");
    }
    drop(child);
    fleet.runtime.shutdown_background();

    // JSON: one host at a time, so that both agents have answered once
    // the silent host is dialled. The document holds what arrived. A
    // fleet of its own: the silent host counts this run's dials only.
    let fleet = Fleet::start(2);
    let mut child = fleet.hostscope(&["--concurrency", "1", "-o", "json", "host"]);
    let _held = fleet
        .accepted
        .recv_timeout(LIMIT)
        .expect("the silent host dialled");
    let (code, err) = interrupt(&mut child);
    assert_eq!(code, 130, "{err}");
    assert!(err.starts_with("2 ok, 0 failed, 1 cancelled in "), "{err}");
    assert!(err.ends_with(&cancelled(&fleet)), "{err}");
    let mut out = String::new();
    let mut stdout = child.0.stdout.take().expect("piped stdout");
    std::io::Read::read_to_string(&mut stdout, &mut out).expect("stdout");
    let records: serde_json::Value = serde_json::from_str(&out).expect("a JSON document");
    let hosts: Vec<&str> = records
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|r| r["host"].as_str())
        .collect();
    assert_eq!(hosts, fleet.agents, "{out}");
    drop(child);
    fleet.runtime.shutdown_background();
}
