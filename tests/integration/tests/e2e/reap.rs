//! Zombie sweeps through the `hostscope` CLI, in process: `zombies`,
//! `zombies --reap` with and without `--yes` and `--kill-parents`, and
//! `signal`, against a real agent over real mutual TLS, with real parents
//! holding real zombies.
//!
//! Every sweep here is narrowed with `--ppid` to the parent the test made:
//! the agent sees the whole host, and a sweep must not touch processes
//! that other tests (or other people) own.

use std::{
    collections::HashSet,
    ffi::OsString,
    io::{BufRead, BufReader},
    os::unix::process::ExitStatusExt,
    path::Path,
    process::{ChildStdin, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use hostscope_client::proto as pb;
use hostscope_integration::{CliRun, TestAgent, child::ChildGroup, hostscope_async};

/// How long anything here may take to happen before the test fails.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `hostscope --host AGENT --ca .. --cert CERT.pem --key CERT-key.pem
/// ARGS` in process, off the async runtime: (exit code, stdout, stderr).
pub(crate) async fn hostscope(
    agent: &TestAgent,
    cert: &str,
    args: &[&str],
) -> (u8, String, String) {
    let mut argv: Vec<OsString> = vec!["--host".into(), agent.endpoint().into()];
    for (flag, file) in [
        ("--ca", "ca.pem".to_owned()),
        ("--cert", format!("{cert}.pem")),
        ("--key", format!("{cert}-key.pem")),
    ] {
        argv.push(flag.into());
        argv.push(agent.pki.path(&file).into());
    }
    argv.extend(args.iter().map(OsString::from));
    let CliRun { code, out, err } = hostscope_async(argv, String::new()).await;
    (code, out, err)
}

/// A parent holding real zombies, under a keeper that reaps them once the
/// parent is gone (`hostscope-test-parent`, which says how). Dropping it
/// closes the keeper's stdin, so that it ends the parent and reaps
/// everything; the keeper's process group is killed in any case.
struct TestParent {
    /// The parent's pid.
    pid: u32,
    zombies: Vec<u32>,
    /// The keeper's lines after `ready`.
    lines: mpsc::Receiver<String>,
    stdin: Option<ChildStdin>,
    keeper: ChildGroup,
}

/// How the parent ended and which orphaned zombies the keeper reaped, as
/// the keeper reported them.
struct Ended {
    /// `signal N` or `code N`.
    how: String,
    reaped: HashSet<u32>,
}

impl TestParent {
    /// Starts `hostscope-test-parent MODE N` and waits for its `ready`
    /// line, which the parent prints once every child is a zombie.
    fn spawn(mode: &str, n: usize) -> TestParent {
        let mut keeper = ChildGroup::spawn(
            Command::new(env!("CARGO_BIN_EXE_hostscope-test-parent"))
                .args([mode, &n.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped()),
        )
        .expect("spawn hostscope-test-parent");
        let stdin = keeper.take_stdin();
        let stdout = keeper.take_stdout().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = lines.recv_timeout(LIMIT).expect("the ready line");
        let pids: Vec<u32> = line
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("not a ready line: {line:?}"))
            .split_whitespace()
            .map(|pid| pid.parse().expect("a pid"))
            .collect();
        let (&pid, zombies) = pids.split_first().expect("the parent's pid");
        assert_eq!(zombies.len(), n, "{line}");
        TestParent {
            pid,
            zombies: zombies.to_vec(),
            lines,
            stdin,
            keeper,
        }
    }

    /// The parent's zombie children, as /proc shows them now.
    fn zombies_now(&self) -> Vec<u32> {
        zombie_children(self.pid)
    }

    /// Waits (within [`LIMIT`]) until the keeper has reported the parent's
    /// end and reaped every one of its zombies.
    fn ended(&self) -> Ended {
        let mut how = None;
        let mut reaped = HashSet::new();
        while how.is_none() || !self.zombies.iter().all(|z| reaped.contains(z)) {
            let line = self.lines.recv_timeout(LIMIT).unwrap_or_else(|e| {
                panic!("the keeper said no more ({e}); parent ended {how:?}, reaped {reaped:?}")
            });
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[..] {
                ["exited", pid, kind, n] if pid == self.pid.to_string() => {
                    how = Some(format!("{kind} {n}"));
                }
                ["reaped", pid] => {
                    reaped.insert(pid.parse().expect("a pid"));
                }
                _ => panic!("unexpected line from the keeper: {line:?}"),
            }
        }
        Ended {
            how: how.unwrap_or_default(),
            reaped,
        }
    }
}

impl Drop for TestParent {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // The keeper ends by itself once everything is reaped; should it
        // not, the guard kills its group.
        let _ = self.keeper.wait_timeout(LIMIT);
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
    // The wait for the second look is said, not sat through in silence.
    assert!(
        err.contains("looking for zombies twice, 200ms apart (--min-age)"),
        "{err}"
    );
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
    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::start_with_operator(&dir.path().join("audit.log")).await;
    let parent = TestParent::spawn("leaking", 3);
    let ppid = parent.pid.to_string();

    let out = sweep_killing_parents(&agent, &ppid).await;
    assert!(out.contains(&format!("CHLD to pid {ppid}")), "{out}");
    assert!(
        out.contains(&format!("after 300ms: TERM to pid {ppid} hostscope-test")),
        "{out}"
    );
    assert!(out.contains("reaped 3 of 3 zombies; 0 remain"), "{out}");

    // The parent died of the TERM, and its zombies, orphaned, passed to
    // the keeper and were reaped.
    let ended = parent.ended();
    assert_eq!(ended.how, format!("signal {}", libc::SIGTERM));
    assert_eq!(ended.reaped, parent.zombies.iter().copied().collect());
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_parents_kills_a_parent_deaf_to_term() {
    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::start_with_operator(&dir.path().join("audit.log")).await;
    let parent = TestParent::spawn("stubborn", 2);
    let ppid = parent.pid.to_string();

    let out = sweep_killing_parents(&agent, &ppid).await;
    assert!(out.contains(&format!("TERM to pid {ppid}")), "{out}");
    assert!(out.contains(&format!("KILL to pid {ppid}")), "{out}");
    assert!(out.contains("reaped 2 of 2 zombies; 0 remain"), "{out}");
    let ended = parent.ended();
    assert_eq!(ended.how, format!("signal {}", libc::SIGKILL));
    assert_eq!(ended.reaped, parent.zombies.iter().copied().collect());
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

    let mut sleeper =
        ChildGroup::spawn(Command::new("sleep").arg("60").stdin(Stdio::null())).unwrap();
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
    let status = sleeper.wait(LIMIT);
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
}
