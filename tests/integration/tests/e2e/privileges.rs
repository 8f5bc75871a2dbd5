//! The agent as its systemd unit and DaemonSet run it: an unprivileged user
//! holding exactly four capabilities, and nothing else. Every RPC must
//! still be served against processes of another user (root), watch in
//! netlink mode included. Which capability serves what:
//!
//! - CAP_SYS_PTRACE: the `exe` and `cwd` links of other users' processes,
//!   and (with the next) their `io` and `environ` files;
//! - CAP_DAC_READ_SEARCH: listing other users' `fd` directories
//!   (`num_fds`), and the mode-0400 `io` and `environ` files;
//! - CAP_NET_ADMIN: subscribing to the kernel's process connector, the
//!   only source of exit codes and of processes shorter than a poll;
//! - CAP_KILL: SignalProcess to other users' processes, and so only where
//!   an operator is configured.
//!
//! It needs root to start the agent as another user with chosen
//! capabilities (setpriv, from util-linux), and says so when it skips.

use std::{
    os::unix::{fs::PermissionsExt, process::ExitStatusExt},
    path::Path,
    process::{Child, Command},
    time::{Duration, Instant},
};

use hostscope_client::{Client, proto as pb};
use hostscope_integration::{Pki, Zombie, missing_pid, skip, wait_for};
use tokio_stream::StreamExt;

use super::reload::{AgentProcess, agent_binary};

/// The account the agent runs as: `nobody`, which owns no process here.
const UID: u32 = 65534;
const GID: u32 = 65534;

/// The capabilities the shipped unit grants, as setpriv names them, and
/// their bits (linux/capability.h).
const CAPS: &str = "+dac_read_search,+kill,+net_admin,+sys_ptrace";
const CAP_BITS: u64 = (1 << 2) | (1 << 5) | (1 << 12) | (1 << 19);

const LIMIT: Duration = Duration::from_secs(30);

/// Why this host cannot run the test, if it cannot.
fn cannot_run() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some(
            "needs root, to start the agent as another user with chosen capabilities".into(),
        );
    }
    match Command::new("setpriv").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("setpriv (util-linux) is not installed".into()),
    }
}

/// A root-owned `sleep` with a marker in its environment, in a directory
/// of its own; killed and reaped on drop.
struct RootSleeper {
    child: Child,
}

impl Drop for RootSleeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies the agent's TLS files into `dir`, owned by [`UID`] as a package
/// would install them for its user (the key readable by it alone).
fn install_agent_files(pki: &Pki, dir: &Path) {
    for (name, mode) in [
        ("agent.pem", 0o644),
        ("agent-key.pem", 0o600),
        ("ca.pem", 0o644),
    ] {
        let to = dir.join(name);
        std::fs::copy(pki.path(name), &to).expect("copy TLS file");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).expect("chmod");
        std::os::unix::fs::chown(&to, Some(UID), Some(GID)).expect("chown");
    }
    std::os::unix::fs::chown(dir, Some(UID), Some(GID)).expect("chown dir");
}

/// A `/proc/PID/status` line's value, e.g. "CapEff".
fn status_field(pid: u32, key: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unprivileged_agent_with_four_capabilities_serves_every_rpc() {
    if let Some(reason) = cannot_run() {
        skip!("{reason}");
    }
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    install_agent_files(&pki, dir.path());
    let audit = dir.path().join("audit.log");
    let bounded = format!("-all,{CAPS}");
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid", &UID.to_string(), "--regid", &GID.to_string()])
        .args(["--clear-groups", "--no-new-privs"])
        .arg(format!("--inh-caps={bounded}"))
        .arg(format!("--ambient-caps={bounded}"))
        .arg(format!("--bounding-set={bounded}"))
        .arg("--")
        .arg(agent_binary())
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args([
            "--watch-mode",
            "netlink",
            "--environ",
            "--operator",
            "operator",
        ])
        .arg("--cert")
        .arg(dir.path().join("agent.pem"))
        .arg("--key")
        .arg(dir.path().join("agent-key.pem"))
        .arg("--client-ca")
        .arg(dir.path().join("ca.pem"))
        .arg("--audit-file")
        .arg(&audit);
    let agent = AgentProcess::start(command);

    // The agent holds exactly those capabilities, as that user.
    let pid = agent.pid();
    assert_eq!(
        status_field(pid, "Uid"),
        format!("{UID}\t{UID}\t{UID}\t{UID}")
    );
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        let bits = u64::from_str_radix(&status_field(pid, set), 16).expect("hex");
        assert_eq!(bits, CAP_BITS, "{set} of the agent");
    }

    let endpoint = agent.addr.to_string();
    let client = Client::connect(&endpoint, Some(pki.client_tls()))
        .await
        .expect("connect");
    let home = tempfile::tempdir().expect("tempdir");
    let mut sleeper = RootSleeper {
        child: Command::new("sleep")
            .arg("600")
            .current_dir(home.path())
            .env("HOSTSCOPE_PRIVILEGES_MARKER", "present")
            .spawn()
            .expect("spawn sleep"),
    };
    let target = sleeper.child.id();

    // GetHost.
    let host = client.host().await.expect("GetHost");
    assert_eq!(host.backend, "linux-procfs");

    // GetProcess of a root process: the fields behind ptrace and DAC checks.
    // `exe` can lag the exec of a just-started child: wait for it.
    let start = Instant::now();
    let process = loop {
        let p = client.process(target, &[]).await.expect("GetProcess");
        if p.exe().is_ok_and(|exe| exe.ends_with("/sleep")) {
            break p;
        }
        assert!(start.elapsed() < LIMIT, "exe of {target}: {:?}", p.exe());
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let denied: Vec<_> = process
        .proto()
        .field_errors
        .iter()
        .filter(|e| e.kind == pb::ErrorKind::AccessDenied as i32)
        .collect();
    assert!(denied.is_empty(), "access denied: {denied:?}");
    assert_eq!(process.username().expect("username"), "root");
    assert_eq!(
        Path::new(process.cwd().expect("cwd")),
        home.path().canonicalize().expect("canonical home")
    );
    assert!(process.num_fds().expect("num_fds") >= 3);
    process.io_counters().expect("io_counters");
    assert_eq!(
        process
            .environ()
            .expect("environ")
            .get("HOSTSCOPE_PRIVILEGES_MARKER")
            .map(String::as_str),
        Some("present")
    );

    // ListProcesses, PidExists.
    let listed: Vec<_> = client
        .processes(
            &[pb::ProcessField::Exe, pb::ProcessField::NumFds],
            pb::ProcessFilter {
                pids: vec![target, std::process::id()],
                ..Default::default()
            },
        )
        .await
        .expect("ListProcesses")
        .collect::<Result<_, _>>()
        .await
        .expect("process stream");
    assert_eq!(listed.len(), 2);
    for p in &listed {
        p.exe().expect("exe of a root process");
        p.num_fds().expect("num_fds of a root process");
    }
    assert!(client.pid_exists(target).await.expect("PidExists"));
    assert!(!client.pid_exists(missing_pid()).await.expect("PidExists"));

    // ListNetInterfaces.
    let nics = client.net_interfaces().await.expect("ListNetInterfaces");
    assert!(nics.iter().any(|n| n.name == "lo"), "{nics:?}");

    // FindZombies, with the root parent's details.
    let zombie = Zombie::spawn();
    let zombies = client.find_zombies().await.expect("FindZombies");
    let group = zombies
        .parents
        .iter()
        .find(|g| g.zombies.iter().any(|z| z.pid == zombie.pid))
        .expect("the zombie is found");
    assert_eq!(group.ppid, std::process::id());
    let parent = group.parent.as_ref().expect("parent details");
    assert!(parent.exe.is_some(), "parent: {parent:?}");
    drop(zombie);

    // WatchProcesses from the process connector: exit codes arrive. Other
    // tests start children of this process too: only ours count.
    let mut events = client
        .watch(pb::WatchProcessesRequest {
            descendants_of: Some(std::process::id()),
            kinds: vec![pb::ProcessEventKind::Exited as i32],
            ..Default::default()
        })
        .await
        .expect("WatchProcesses");
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut ours = Vec::new();
    let exited = loop {
        // The watch may open after the first child exits: one more child
        // every 200ms until the exit of one arrives.
        let mut child = Command::new("sh")
            .args(["-c", "exit 7"])
            .spawn()
            .expect("spawn sh");
        ours.push(child.id());
        child.wait().expect("wait for sh");
        let until = tokio::time::Instant::now() + Duration::from_millis(200);
        let found = loop {
            match tokio::time::timeout_at(until, events.next()).await {
                Ok(Some(event)) => {
                    let event = event.expect("event");
                    if ours.contains(&event.pid) {
                        break Some(event);
                    }
                }
                Ok(None) => panic!("the watch ended:\n{}", agent.log()),
                Err(_) => break None,
            }
        };
        if let Some(event) = found {
            break event;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no exit event after {LIMIT:?}"
        );
    };
    assert_eq!(exited.exit_code, Some(7), "{exited:?}");

    // SignalProcess to a root process, audited to the file.
    let operator = Client::connect(&endpoint, Some(pki.operator_tls()))
        .await
        .expect("connect as operator");
    let created = process.create_time().expect("create_time");
    operator
        .signal(target, "TERM", Some(created))
        .await
        .expect("SignalProcess");
    let status = sleeper.child.wait().expect("wait for sleep");
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    wait_for(LIMIT, || {
        std::fs::read_to_string(&audit).is_ok_and(|text| text.contains(&target.to_string()))
    });
}
