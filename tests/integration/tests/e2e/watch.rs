//! WatchProcesses: real processes, the kernel's own events, over real mTLS.

use std::{
    collections::{HashMap, HashSet},
    os::unix::process::ExitStatusExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use hostscope_agent::{backend::WatchMode, service::Options, service::watch::WatchOptions};
use hostscope_client::{Client, Error, EventStream, proto as pb};
use hostscope_integration::{
    TestAgent, Zombie, child::ChildGroup, missing_pid, proc_state, wait_for,
};
use tokio_stream::StreamExt;

const LIMIT: Duration = Duration::from_secs(30);

fn kind(event: &pb::ProcessEvent) -> pb::ProcessEventKind {
    pb::ProcessEventKind::try_from(event.kind).unwrap_or(pb::ProcessEventKind::Unspecified)
}

fn descendants_of_me(kinds: &[pb::ProcessEventKind]) -> pb::WatchProcessesRequest {
    pb::WatchProcessesRequest {
        descendants_of: Some(std::process::id()),
        kinds: kinds.iter().map(|k| *k as i32).collect(),
        ..Default::default()
    }
}

/// Reads events until `done` says so, failing after [`LIMIT`].
async fn collect_until(
    stream: &mut EventStream,
    mut done: impl FnMut(&pb::ProcessEvent) -> bool,
) -> Vec<pb::ProcessEvent> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("not done after {LIMIT:?}; saw {} events", seen.len()));
        let event = next.expect("stream open").expect("event");
        let finished = done(&event);
        seen.push(event);
        if finished {
            return seen;
        }
    }
}

fn spawn(program: &str, args: &[&str]) -> ChildGroup {
    ChildGroup::spawn(Command::new(program).args(args).stdin(Stdio::null()))
        .unwrap_or_else(|e| panic!("spawning {program}: {e}"))
}

/// Starts 200 short-lived processes: even ones exit with 3, odd ones are
/// killed with SIGKILL. Returns the pids with the exit each must report.
fn burst() -> HashMap<u32, (Option<i32>, Option<i32>)> {
    let mut expected = HashMap::new();
    let mut children = Vec::new();
    for i in 0..200 {
        if i % 2 == 0 {
            let child = spawn("sh", &["-c", "exit 3"]);
            expected.insert(child.id(), (Some(3), None));
            children.push(child);
        } else {
            let mut child = spawn("sleep", &["30"]);
            expected.insert(child.id(), (None, Some(libc::SIGKILL)));
            assert_eq!(child.kill().signal(), Some(libc::SIGKILL));
            children.push(child);
        }
    }
    for mut child in children {
        let status = child.wait(LIMIT);
        assert!(status.code() == Some(3) || status.signal() == Some(libc::SIGKILL));
    }
    expected
}

#[tokio::test(flavor = "multi_thread")]
async fn every_start_and_exit_of_a_burst_arrives_with_its_exit_code() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    assert_eq!(client.host().await.unwrap().watch_mode, "netlink");
    let mut events = client
        .watch(descendants_of_me(&[
            pb::ProcessEventKind::Started,
            pb::ProcessEventKind::Exited,
        ]))
        .await
        .unwrap();

    let expected = tokio::task::spawn_blocking(burst).await.unwrap();
    let mut started = HashSet::new();
    let mut exited = HashMap::new();
    collect_until(&mut events, |e| {
        if expected.contains_key(&e.pid) {
            match kind(e) {
                pb::ProcessEventKind::Started => {
                    assert_eq!(e.ppid, Some(std::process::id()));
                    assert!(e.time > 1e9);
                    started.insert(e.pid);
                }
                pb::ProcessEventKind::Exited => {
                    exited.insert(e.pid, (e.exit_code, e.exit_signal));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        started.len() == expected.len() && exited.len() == expected.len()
    })
    .await;
    for (pid, want) in &expected {
        assert_eq!(exited.get(pid), Some(want), "exit of {pid}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_that_becomes_a_zombie_is_reported_with_its_parent() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let mut events = client
        .watch(descendants_of_me(&[pb::ProcessEventKind::Zombie]))
        .await
        .unwrap();
    let zombie = tokio::task::spawn_blocking(Zombie::spawn).await.unwrap();
    let seen = collect_until(&mut events, |e| e.pid == zombie.pid).await;
    let event = seen.last().unwrap();
    assert_eq!(kind(event), pb::ProcessEventKind::Zombie);
    assert_eq!(event.ppid, Some(std::process::id()));
}

/// user + system CPU seconds of `pid`, by GetProcess.
async fn cpu_seconds(client: &Client, pid: u32) -> f64 {
    let process = client
        .process(pid, &[pb::ProcessField::CpuTimes])
        .await
        .expect("the process");
    let times = process.cpu_times().expect("its cpu_times");
    times.user + times.system
}

#[tokio::test(flavor = "multi_thread")]
async fn samples_show_a_busy_process_using_cpu_and_a_sleeper_none() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let busy = spawn(env!("CARGO_BIN_EXE_hostscope-test-parent"), &["busy"]);
    let sleeper = spawn("sleep", &["30"]);
    // Once asleep, the sleeper's start-up is behind it: from then on it
    // uses no CPU at all, however busy the machine.
    let sleeper_pid = sleeper.id();
    tokio::task::spawn_blocking(move || {
        wait_for(LIMIT, || proc_state(sleeper_pid) == Some('S'));
    })
    .await
    .expect("the sleeper sleeps");

    let request = pb::WatchProcessesRequest {
        filter: Some(pb::ProcessFilter {
            pids: vec![busy.id(), sleeper.id()],
            ..Default::default()
        }),
        kinds: vec![pb::ProcessEventKind::Sample as i32],
        sample_interval: Some(0.5),
        ..Default::default()
    };
    let mut events = client.watch(request).await.unwrap();
    let mut samples: HashMap<u32, Vec<pb::ProcessSample>> = HashMap::new();
    // However little of a core the machine leaves it, a process that
    // never sleeps gets some CPU in half a second.
    collect_until(&mut events, |e| {
        assert_eq!(kind(e), pb::ProcessEventKind::Sample);
        samples
            .entry(e.pid)
            .or_default()
            .push(e.sample.expect("sample"));
        let busy_ran = samples
            .get(&busy.id())
            .is_some_and(|s| s.iter().any(|s| s.cpu_percent.is_some_and(|c| c > 0.0)));
        busy_ran && samples.get(&sleeper.id()).is_some_and(|s| s.len() >= 3)
    })
    .await;
    let slept = &samples[&sleeper.id()];
    assert!(
        slept[1..].iter().all(|s| s.cpu_percent == Some(0.0)),
        "sleeper: {slept:?}"
    );
    let s = &slept[0];
    assert!(
        s.rss.is_some_and(|rss| rss > 0)
            && s.num_threads == Some(1)
            && s.num_fds.is_some_and(|fds| fds >= 3),
        "{s:?}"
    );

    // The busy process's cpu_times grow from one look to the next.
    let before = cpu_seconds(&client, busy.id()).await;
    let grown = async {
        while cpu_seconds(&client, busy.id()).await <= before {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(LIMIT, grown)
        .await
        .expect("the busy process's cpu_times grow");
}

#[tokio::test(flavor = "multi_thread")]
async fn sampling_a_zombie_or_a_missing_pid_fails_the_call() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let zombie = tokio::task::spawn_blocking(Zombie::spawn).await.unwrap();
    let sample = |pid| pb::WatchProcessesRequest {
        filter: Some(pb::ProcessFilter {
            pids: vec![pid],
            ..Default::default()
        }),
        sample_interval: Some(1.0),
        ..Default::default()
    };
    let err = client.watch(sample(zombie.pid)).await.unwrap_err();
    assert!(
        matches!(err, Error::ZombieProcess { pid, ppid: Some(ppid), .. } if pid == zombie.pid && ppid == std::process::id()),
        "{err:?}"
    );
    let err = client.watch(sample(missing_pid())).await.unwrap_err();
    assert!(matches!(err, Error::NoSuchProcess { .. }), "{err:?}");
}

/// A client whose HTTP/2 windows are small, so that a watcher that does
/// not read stops the agent's sends for it soon.
async fn small_window_client(
    agent: &TestAgent,
) -> pb::host_inspector_client::HostInspectorClient<tonic::transport::Channel> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let pem = |f: &str| std::fs::read(agent.pki.path(f)).unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pem("ca.pem")))
        .identity(Identity::from_pem(pem("client.pem"), pem("client-key.pem")))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://{}", agent.endpoint()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    pb::host_inspector_client::HostInspectorClient::new(channel)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watcher_that_never_reads_lags_and_the_others_get_everything() {
    let agent = TestAgent::start_with(Options {
        watch: WatchOptions {
            broadcast_capacity: 256,
            watcher_buffer: 16,
            ..WatchOptions::default()
        },
        ..Options::default()
    })
    .await;
    let reader = agent.client().await;
    let mut stalled = small_window_client(&agent).await;
    let stalled_stream = stalled
        .watch_processes(descendants_of_me(&[]))
        .await
        .unwrap()
        .into_inner();
    let mut events = reader
        .watch(descendants_of_me(&[pb::ProcessEventKind::Exited]))
        .await
        .unwrap();

    // Big EXEC events (8 KiB command lines) fill the stalled watcher's
    // windows and buffers quickly.
    let arg = "x".repeat(8 * 1024);
    let pids: HashSet<u32> = tokio::task::spawn_blocking(move || {
        let mut children: Vec<ChildGroup> = (0..300)
            .map(|_| spawn("sh", &["-c", "exit 0", &arg]))
            .collect();
        children
            .iter_mut()
            .map(|c| {
                assert!(c.wait(LIMIT).success());
                c.id()
            })
            .collect()
    })
    .await
    .unwrap();
    let mut exited = HashSet::new();
    let seen = collect_until(&mut events, |e| {
        if pids.contains(&e.pid) {
            exited.insert(e.pid);
        }
        exited.len() == pids.len()
    })
    .await;
    assert!(
        seen.iter().all(|e| kind(e) != pb::ProcessEventKind::Lagged),
        "the reader did not lag"
    );

    // Now read the stalled stream: somewhere in it, a LAGGED event.
    let mut stalled_stream = stalled_stream;
    let mut lagged = 0;
    let deadline = Instant::now() + LIMIT;
    while lagged == 0 && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), stalled_stream.next()).await {
            Ok(Some(Ok(e))) if kind(&e) == pb::ProcessEventKind::Lagged => lagged = e.dropped,
            Ok(Some(Ok(_))) => {}
            other => panic!("stalled stream ended without LAGGED: {other:?}"),
        }
    }
    assert!(lagged > 0, "the stalled watcher was told it lagged");
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_reports_a_process_that_starts_and_exits() {
    let agent = TestAgent::start_with(Options {
        watch: WatchOptions {
            mode: WatchMode::Poll,
            poll_interval: Duration::from_millis(100),
            ..WatchOptions::default()
        },
        ..Options::default()
    })
    .await;
    let client = agent.client().await;
    assert_eq!(client.host().await.unwrap().watch_mode, "poll");
    let mut events = client.watch(descendants_of_me(&[])).await.unwrap();

    // Polling reports what changed between two scans, and a process that
    // was there at the first scan never "starts". Any event at all means
    // the first scan is done: start short-lived processes until one comes.
    let mut canaries = Vec::new();
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        canaries.push(spawn("sleep", &["0.3"]));
        let next = tokio::time::timeout(Duration::from_secs(1), events.next()).await;
        if let Ok(event) = next {
            event.expect("stream open").expect("event");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no event within {LIMIT:?}"
        );
    }

    // A process that lives until the poller has seen it start.
    let mut child = spawn("sleep", &["60"]);
    let pid = child.id();
    let mut kinds = Vec::new();
    collect_until(&mut events, |e| {
        if e.pid == pid {
            kinds.push(kind(e));
        }
        !kinds.is_empty()
    })
    .await;
    assert_eq!(kinds, [pb::ProcessEventKind::Started]);
    assert_eq!(child.kill().signal(), Some(libc::SIGKILL));
    collect_until(&mut events, |e| {
        if e.pid == pid {
            kinds.push(kind(e));
        }
        kinds.len() > 1
    })
    .await;
    assert_eq!(
        kinds,
        [pb::ProcessEventKind::Started, pb::ProcessEventKind::Exited]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn watches_are_limited_per_client_and_end_when_the_agent_stops() {
    let mut agent = TestAgent::start_with(Options {
        watch: WatchOptions {
            max_watchers_per_client: 1,
            ..WatchOptions::default()
        },
        ..Options::default()
    })
    .await;
    let client = agent.client().await;
    let mut first = client.watch(descendants_of_me(&[])).await.unwrap();
    let err = client.watch(descendants_of_me(&[])).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Status {
                code: hostscope_client::StatusCode::ResourceExhausted,
                ..
            }
        ),
        "{err:?}"
    );

    let server = agent.stop();
    let end = tokio::time::timeout(LIMIT, async {
        while let Some(event) = first.next().await {
            event.expect("clean end");
        }
    })
    .await;
    assert!(end.is_ok(), "the watch ended when the agent stopped");
    tokio::time::timeout(LIMIT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_watch_reconnects_when_an_agent_restarts() {
    use hostscope_client::fleet::{Fleet, FleetOptions, Inventory, WatchItem};

    let agent = TestAgent::start().await;
    let hosts = Inventory::from_list(&agent.endpoint()).unwrap().hosts;
    let fleet = Fleet::new(hosts, Some(agent.pki.client_tls()), FleetOptions::default());
    let mut items = Box::pin(fleet.watch(descendants_of_me(&[pb::ProcessEventKind::Exited])));
    async fn next(items: &mut (impl tokio_stream::Stream<Item = WatchItem> + Unpin)) -> WatchItem {
        tokio::time::timeout(LIMIT, items.next())
            .await
            .expect("an item in time")
            .expect("the watch goes on")
    }
    assert!(matches!(
        next(&mut items).await,
        WatchItem::Connected {
            reconnected: false,
            ..
        }
    ));

    let agent = agent.restart().await;
    // Other tests' children come and go meanwhile: skip their events while
    // waiting for the interruption and the reconnection.
    let mut interrupted = false;
    loop {
        match next(&mut items).await {
            WatchItem::Event { .. } => {}
            WatchItem::Interrupted { .. } => interrupted = true,
            WatchItem::Connected {
                reconnected: true, ..
            } if interrupted => break,
            other => panic!("expected an interruption then a reconnection, got {other:?}"),
        }
    }
    let mut child = spawn("sh", &["-c", "exit 5"]);
    let pid = child.id();
    assert_eq!(child.wait(LIMIT).code(), Some(5));
    loop {
        if let WatchItem::Event { host, event } = next(&mut items).await
            && event.pid == pid
        {
            assert_eq!(host.address, agent.endpoint());
            assert_eq!(event.exit_code, Some(5));
            break;
        }
    }
}
