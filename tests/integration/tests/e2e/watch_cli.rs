//! `hostscope watch` through the CLI, in process, against a real agent
//! over real mutual TLS, with real processes exiting.
//!
//! The watch follows the descendants of a shell this test starts, not of
//! the test binary itself: other tests in this binary start children of
//! their own (`sh -c 'exit 3'` bursts among them) at the same time, and
//! `--count` would count theirs.

use std::{
    ffi::OsString,
    io::Write,
    process::{ChildStdin, Command, Stdio},
    time::Duration,
};

use hostscope_integration::{CliRun, TestAgent, child::ChildGroup, hostscope};

/// How long the CLI may take to see its events before the test fails.
const LIMIT: Duration = Duration::from_secs(20);

/// A shell that starts a `sh -c 'exit 7'` child for every line it reads;
/// it ends when its stdin closes, and is killed with its children on drop
/// in any case.
struct ExitSevens {
    child: ChildGroup,
    stdin: ChildStdin,
}

impl ExitSevens {
    fn start() -> ExitSevens {
        let mut child = ChildGroup::spawn(
            Command::new("sh")
                .args(["-c", "while read -r _; do sh -c 'exit 7'; done"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null()),
        )
        .expect("spawn sh");
        let stdin = child.take_stdin().expect("piped stdin");
        ExitSevens { child, stdin }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Has the shell start one more child that exits with 7.
    fn one_more(&mut self) {
        writeln!(self.stdin, "go").expect("write to sh");
    }
}

/// Runs `hostscope --host AGENT --ca .. --cert .. --key .. watch
/// --children-of SHELL ARGS` in process on a thread of its own, and has
/// `shell` start a child that exits with 7 every 200ms until the CLI is
/// done: the test cannot see when the watch is open, and the exits before
/// that are simply not counted. Returns (exit code, stdout, stderr).
async fn watch_exits(
    agent: &TestAgent,
    shell: &mut ExitSevens,
    args: &[&str],
) -> (u8, String, String) {
    let mut argv: Vec<OsString> = vec!["--host".into(), agent.endpoint().into()];
    for (flag, file) in [
        ("--ca", "ca.pem"),
        ("--cert", "client.pem"),
        ("--key", "client-key.pem"),
    ] {
        argv.push(flag.into());
        argv.push(agent.pki.path(file).into());
    }
    let children_of = shell.pid().to_string();
    argv.extend(["watch", "--children-of", &children_of].map(OsString::from));
    argv.extend(args.iter().map(OsString::from));
    // --for bounds the CLI itself, should the events never come.
    argv.extend(["--for", "20s"].map(OsString::from));

    // A plain thread, not spawn_blocking: the command line builds its own
    // runtime, and a thread that outlives a failed test cannot hold up
    // this runtime's shutdown.
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let CliRun { code, out, err } = hostscope(argv, "");
        let _ = tx.send((code, out, err));
    });
    let deadline = tokio::time::Instant::now() + LIMIT + Duration::from_secs(5);
    loop {
        shell.one_more();
        let tick = tokio::time::sleep(Duration::from_millis(200));
        tokio::select! {
            done = &mut rx => return done.expect("the CLI thread answers"),
            () = tick => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "hostscope watch still running after {LIMIT:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_prints_each_exit_as_ndjson_and_as_a_line() {
    let agent = TestAgent::start().await;
    let mode = agent.client().await.host().await.expect("host").watch_mode;
    if mode != "netlink" {
        // Polling misses processes that live a millisecond, and cannot
        // tell exit codes: the kernel's events need CAP_NET_ADMIN.
        hostscope_integration::skip!(
            "the agent watches in {mode} mode here, without CAP_NET_ADMIN"
        );
    }
    let mut shell = ExitSevens::start();

    let (code, out, err) = watch_exits(
        &agent,
        &mut shell,
        &["--events", "exited", "--count", "3", "-o", "ndjson"],
    )
    .await;
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(err, "3 events from 1 host\n");
    let records: Vec<serde_json::Value> = out
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(records.len(), 3, "{out}");
    for record in &records {
        assert_eq!(record["host"], agent.endpoint().as_str(), "{record}");
        assert_eq!(record["kind"], "exited", "{record}");
        assert_eq!(record["exit_code"], 7, "{record}");
        assert!(record["time"].as_f64().is_some_and(|t| t > 1e9), "{record}");
    }
    let first_key = out.split(':').next().expect("a key");
    assert_eq!(first_key, "{\"host\"", "host comes first: {out}");

    let (code, out, err) =
        watch_exits(&agent, &mut shell, &["--events", "exited", "--count", "1"]).await;
    assert_eq!((code, err.as_str()), (0, "1 event from 1 host\n"));
    // 18:04:05.123  exited     4321  sh               exit 7 (the name is
    // "?" when the process was gone before the agent could read it).
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words.len(), 6, "{out}");
    assert_eq!(
        words[1..],
        ["exited", words[2], words[3], "exit", "7"],
        "{out}"
    );
    assert!(words[2].parse::<u32>().is_ok(), "a pid: {out}");
    let time = words[0].as_bytes();
    assert!(
        time.len() == 12 && time[2] == b':' && time[5] == b':' && time[8] == b'.',
        "a time with milliseconds first: {out}"
    );
}
