//! Zombie sweeps through the `hostscope` CLI, in process: `zombies`,
//! `zombies --reap` with and without `--yes` and `--kill-parents`, and
//! `signal`, against a real agent over real mutual TLS, with real parents
//! holding real zombies.
//!
//! Every sweep here is narrowed with `--ppid` to the parent the test made:
//! the agent sees the whole host, and a sweep must not touch processes
//! that other tests (or other people) own.

use std::{
    ffi::OsString,
    io::{BufRead, BufReader},
    os::unix::process::ExitStatusExt,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use hostscope_client::proto as pb;
use hostscope_integration::TestAgent;

/// How long anything here may take to happen before the test fails.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `hostscope --host AGENT --ca .. --cert CERT.pem --key CERT-key.pem
/// ARGS` in process, off the async runtime: (exit code, stdout, stderr).
pub(crate) async fn hostscope(
    agent: &TestAgent,
    cert: &str,
    args: &[&str],
) -> (u8, String, String) {
    let mut argv: Vec<OsString> = vec!["hostscope".into(), "--host".into()];
    argv.push(agent.endpoint().into());
    for (flag, file) in [
        ("--ca", "ca.pem".to_owned()),
        ("--cert", format!("{cert}.pem")),
        ("--key", format!("{cert}-key.pem")),
    ] {
        argv.push(flag.into());
        argv.push(agent.pki.path(&file).into());
    }
    argv.extend(args.iter().map(OsString::from));
    tokio::task::spawn_blocking(move || {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = hostscope_cli::run_with(argv, &mut std::io::empty(), &mut out, &mut err);
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        (code, text(out), text(err))
    })
    .await
    .expect("the CLI thread")
}

/// A `hostscope-test-parent` and the zombies it holds; killed and waited
/// for on drop if still running.
struct TestParent {
    child: Child,
    pid: u32,
    zombies: Vec<u32>,
}

impl TestParent {
    /// Starts `hostscope-test-parent MODE N` and waits for its `ready`
    /// line, which it prints once every child is a zombie (or exits within
    /// its own bound of 10 s, which closes stdout).
    fn spawn(mode: &str, n: usize) -> TestParent {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hostscope-test-parent"))
            .args([mode, &n.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn hostscope-test-parent");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the ready line");
        let zombies: Vec<u32> = line
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("not a ready line: {line:?}"))
            .split_whitespace()
            .map(|pid| pid.parse().expect("a pid"))
            .collect();
        assert_eq!(zombies.len(), n, "{line}");
        let pid = child.id();
        TestParent {
            child,
            pid,
            zombies,
        }
    }

    /// The parent's zombie children, as /proc shows them now.
    fn zombies_now(&self) -> Vec<u32> {
        zombie_children(self.pid)
    }
}

impl Drop for TestParent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Its zombies passed to this process if it is a subreaper (see
        // below), by the time the parent could be waited for; reap them
        // by pid so that they do not linger for the rest of the run.
        for &pid in &self.zombies {
            let mut status = 0;
            // SAFETY: a non-blocking wait for one known pid; `status` is a
            // valid out pointer. ECHILD (not ours) is fine.
            unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
        }
    }
}

/// Zombies whose parent is `ppid`, by /proc, sorted.
fn zombie_children(ppid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let parent = fields.next().and_then(|p| p.parse::<u32>().ok());
        if state == Some("Z") && parent == Some(ppid) {
            found.push(pid);
        }
    }
    found.sort_unstable();
    found
}

fn sorted(mut pids: Vec<u32>) -> Vec<u32> {
    pids.sort_unstable();
    pids
}

/// Waits for `child` to end, within [`LIMIT`].
fn wait_exit(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pid {} did not end within {LIMIT:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The agent's create_time of `pid`, as `signal --expect-create-time`
/// takes it.
async fn create_time(agent: &TestAgent, pid: u32) -> f64 {
    agent
        .operator()
        .await
        .process(pid, &[pb::ProcessField::CreateTime])
        .await
        .expect("the process")
        .create_time()
        .expect("its create_time")
}

fn audit_reasons(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("audit lines are JSON");
            let text = |key: &str| v[key].as_str().unwrap_or("").to_owned();
            (text("outcome"), text("reason"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parent_with_a_sigchld_handler_is_listed_planned_and_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let agent = TestAgent::start_with_operator(&audit).await;
    let parent = TestParent::spawn("reaping", 3);
    let ppid = parent.pid.to_string();

    // The report: the parent, with its three zombies.
    let (code, out, err) = hostscope(&agent, "operator", &["zombies", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let records: Vec<serde_json::Value> = serde_json::from_str(&out).expect("a JSON array");
    let record = records
        .iter()
        .find(|r| r["ppid"] == parent.pid)
        .unwrap_or_else(|| panic!("parent {} not in {out}", parent.pid));
    assert_eq!(record["host"], agent.endpoint());
    assert_eq!(record["zombies"], 3);
    assert_eq!(record["parent_is_init"], false);
    let listed: Vec<u32> = record["zombie_pids"]
        .as_array()
        .expect("zombie_pids")
        .iter()
        .filter_map(|p| p.as_u64().and_then(|p| u32::try_from(p).ok()))
        .collect();
    assert_eq!(sorted(listed), sorted(parent.zombies.clone()));
    assert!(
        record["oldest_age_seconds"]
            .as_f64()
            .is_some_and(|a| a >= 0.0)
    );
    let (code, out, _) = hostscope(&agent, "operator", &["zombies", "--ppid", &ppid]).await;
    assert_eq!(code, 0);
    let row = out
        .lines()
        .find(|l| l.trim_start().starts_with(&ppid))
        .unwrap_or_else(|| panic!("no row for {ppid}: {out}"));
    assert!(
        row.contains("hostscope-test") && row.contains(" 3 "),
        "{row}"
    );

    // The plan: printed, nothing sent.
    let (code, out, err) = hostscope(
        &agent,
        "operator",
        &["zombies", "--ppid", &ppid, "--reap", "--min-age", "200ms"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1. CHLD to each parent"), "{out}");
    assert!(out.contains(&format!("pid {ppid} hostscope-test")), "{out}");
    assert!(out.contains("nothing was sent"), "{out}");
    assert_eq!(parent.zombies_now(), sorted(parent.zombies.clone()));
    assert!(audit_reasons(&audit).is_empty(), "a plan sends nothing");

    // The sweep: SIGCHLD, and the parent's handler reaps them all.
    let (code, out, err) = hostscope(
        &agent,
        "operator",
        &[
            "zombies",
            "--ppid",
            &ppid,
            "--reap",
            "--yes",
            "--grace",
            "200ms",
            "--min-age",
            "200ms",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("CHLD to pid {ppid} hostscope-test")) && out.contains(": sent"),
        "{out}"
    );
    assert!(out.contains("reaped 3 of 3 zombies; 0 remain"), "{out}");
    assert!(parent.zombies_now().is_empty());
    assert_eq!(audit_reasons(&audit), [("sent".to_owned(), String::new())]);
}

/// Makes this process the reaper of its orphaned descendants, as init is
/// for everyone else's, so that a killed parent's zombies come here.
fn become_subreaper() {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes a plain integer flag and
    // touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "prctl: {}", std::io::Error::last_os_error());
}

/// Reaps `pids` as they become this process's children, and nothing else
/// (never `waitpid(-1)`: other tests' children are theirs to wait for).
/// Ends when each is reaped or gone, or after [`LIMIT`]; returns those it
/// reaped.
fn reap_in_background(pids: Vec<u32>) -> JoinHandle<Vec<u32>> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut left = pids;
        let mut reaped = Vec::new();
        while !left.is_empty() && start.elapsed() < LIMIT {
            left.retain(|&pid| {
                let mut status = 0;
                // SAFETY: waits without blocking for one pid that this
                // test knows; `status` is a valid out pointer.
                let rc = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
                if rc == pid as libc::pid_t {
                    reaped.push(pid);
                    return false;
                }
                // Not (yet) our child: keep waiting while it exists.
                Path::new(&format!("/proc/{pid}")).exists()
            });
            std::thread::sleep(Duration::from_millis(5));
        }
        reaped
    })
}

/// `zombies --ppid PPID --reap --kill-parents --yes --grace 300ms` as the
/// operator; its stdout, once it has exited 0.
async fn sweep_killing_parents(agent: &TestAgent, ppid: &str) -> String {
    let args = [
        "zombies",
        "--ppid",
        ppid,
        "--reap",
        "--kill-parents",
        "--yes",
        "--grace",
        "300ms",
        "--min-age",
        "200ms",
    ];
    let (code, out, err) = hostscope(agent, "operator", &args).await;
    assert_eq!(code, 0, "{out}{err}");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_parents_ends_a_parent_that_never_reaps_and_its_zombies_go() {
    become_subreaper();
    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::start_with_operator(&dir.path().join("audit.log")).await;
    let mut parent = TestParent::spawn("leaking", 3);
    let ppid = parent.pid.to_string();
    let reaper = reap_in_background(parent.zombies.clone());

    let out = sweep_killing_parents(&agent, &ppid).await;
    assert!(out.contains(&format!("CHLD to pid {ppid}")), "{out}");
    assert!(
        out.contains(&format!("after 300ms: TERM to pid {ppid} hostscope-test")),
        "{out}"
    );
    assert!(out.contains("reaped 3 of 3 zombies; 0 remain"), "{out}");

    let status = wait_exit(&mut parent.child);
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    let reaped = reaper.join().expect("the reaper thread");
    for pid in parent.zombies.iter().chain([&parent.pid]) {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} is still there (reaped here: {reaped:?})"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_parents_kills_a_parent_deaf_to_term() {
    become_subreaper();
    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::start_with_operator(&dir.path().join("audit.log")).await;
    let mut parent = TestParent::spawn("stubborn", 2);
    let ppid = parent.pid.to_string();
    let reaper = reap_in_background(parent.zombies.clone());

    let out = sweep_killing_parents(&agent, &ppid).await;
    assert!(out.contains(&format!("TERM to pid {ppid}")), "{out}");
    assert!(out.contains(&format!("KILL to pid {ppid}")), "{out}");
    assert!(out.contains("reaped 2 of 2 zombies; 0 remain"), "{out}");
    let status = wait_exit(&mut parent.child);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    reaper.join().expect("the reaper thread");
    let audit = audit_reasons(&dir.path().join("audit.log"));
    let sent = ("sent".to_owned(), String::new());
    assert_eq!(audit, vec![sent; 3], "CHLD, TERM and KILL were audited");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_is_told_in_plain_words_that_sweeps_need_the_operator_role() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let agent = TestAgent::start_with_operator(&audit).await;
    let parent = TestParent::spawn("reaping", 3);
    let ppid = parent.pid.to_string();

    let (code, out, err) = hostscope(
        &agent,
        "client",
        &[
            "zombies",
            "--ppid",
            &ppid,
            "--reap",
            "--yes",
            "--grace",
            "100ms",
            "--min-age",
            "100ms",
        ],
    )
    .await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(
            "the agent refused: signalling needs the operator role — start the agent with \
             --operator"
        ),
        "{err}"
    );
    assert!(
        err.contains("\"client\""),
        "the agent names the client: {err}"
    );
    assert!(out.contains("refused"), "{out}");
    assert!(out.contains("reaped 0 of 3 zombies; 3 remain"), "{out}");
    assert_eq!(parent.zombies_now(), sorted(parent.zombies.clone()));
    assert_eq!(
        audit_reasons(&audit),
        [("refused".to_owned(), "OPERATOR_REQUIRED".to_owned())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn signal_explains_refusals_and_sends_a_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::start_with_operator(&dir.path().join("audit.log")).await;

    // A zombie: the advice names its parent, by pid and name.
    let parent = TestParent::spawn("leaking", 1);
    let zombie = parent.zombies[0].to_string();
    let (code, out, err) = hostscope(&agent, "operator", &["signal", &zombie, "TERM"]).await;
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(
        err.contains(&format!(
            "pid {zombie} is a zombie: only its parent can reap it — signal its parent {} \
             (hostscope-test",
            parent.pid
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("e.g. hostscope signal {} CHLD", parent.pid)),
        "{err}"
    );

    let mut sleeper = Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = sleeper.id().to_string();
    let created = create_time(&agent, sleeper.id()).await;

    // A stale create_time: refused, and the process lives.
    let stale = (created - 100.0).to_string();
    let (code, _, err) = hostscope(
        &agent,
        "operator",
        &["signal", &pid, "TERM", "--expect-create-time", &stale],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "pid {pid} was reused: it now belongs to another process (started at"
        )),
        "{err}"
    );
    assert!(sleeper.try_wait().unwrap().is_none(), "nothing was sent");

    // pid 1 is never signalled.
    let (code, _, err) = hostscope(&agent, "operator", &["signal", "1", "KILL"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("pid 1 is protected"), "{err}");

    // The right create_time: sent.
    let (code, out, err) = hostscope(
        &agent,
        "operator",
        &[
            "signal",
            &pid,
            "sigterm",
            "--expect-create-time",
            &created.to_string(),
        ],
    )
    .await;
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, format!("sent TERM ({}) to pid {pid}\n", libc::SIGTERM));
    let status = wait_exit(&mut sleeper);
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
}
