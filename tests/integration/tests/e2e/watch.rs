//! WatchProcesses: real processes, the kernel's own events, over real mTLS.

use std::{
    collections::{HashMap, HashSet},
    os::unix::process::ExitStatusExt,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use hostscope_agent::{backend::WatchMode, service::Options, service::watch::WatchOptions};
use hostscope_client::{Error, EventStream, proto as pb};
use hostscope_integration::{TestAgent, Zombie, missing_pid};
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

fn spawn(program: &str, args: &[&str]) -> Child {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
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
            child.kill().unwrap();
            children.push(child);
        }
    }
    for mut child in children {
        let status = child.wait().unwrap();
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

#[tokio::test(flavor = "multi_thread")]
async fn samples_show_a_busy_process_near_one_core_and_a_sleeper_near_zero() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let mut busy = spawn("sh", &["-c", "while :; do :; done"]);
    let mut sleeper = spawn("sleep", &["30"]);
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
    collect_until(&mut events, |e| {
        assert_eq!(kind(e), pb::ProcessEventKind::Sample);
        samples
            .entry(e.pid)
            .or_default()
            .push(e.sample.expect("sample"));
        samples.values().all(|s| s.len() >= 3) && samples.len() == 2
    })
    .await;
    let best = |pid: u32| {
        samples[&pid]
            .iter()
            .filter_map(|s| s.cpu_percent)
            .fold(0.0, f64::max)
    };
    // "Near": the machine's other work shares the two cores.
    assert!(best(busy.id()) > 50.0, "busy: {:?}", samples[&busy.id()]);
    assert!(
        best(sleeper.id()) < 5.0,
        "sleeper: {:?}",
        samples[&sleeper.id()]
    );
    let s = &samples[&sleeper.id()][0];
    assert!(
        s.rss.is_some_and(|rss| rss > 0)
            && s.num_threads == Some(1)
            && s.num_fds.is_some_and(|fds| fds >= 3),
        "{s:?}"
    );
    busy.kill().unwrap();
    sleeper.kill().unwrap();
    busy.wait().unwrap();
    sleeper.wait().unwrap();
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
        let mut children: Vec<Child> = (0..300)
            .map(|_| spawn("sh", &["-c", "exit 0", &arg]))
            .collect();
        children
            .iter_mut()
            .map(|c| {
                c.wait().unwrap();
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
async fn polling_sees_a_process_that_lives_three_intervals() {
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
    // Let the collector take its first table before the process starts.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let mut child = spawn("sleep", &["0.3"]);
    let pid = child.id();
    let mut kinds = Vec::new();
    collect_until(&mut events, |e| {
        if e.pid == pid {
            kinds.push(kind(e));
        }
        kinds.contains(&pb::ProcessEventKind::Exited)
    })
    .await;
    assert_eq!(
        kinds.first(),
        Some(&pb::ProcessEventKind::Started),
        "{kinds:?}"
    );
    child.wait().unwrap();
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
        matches!(&err, Error::Status(s) if s.code() == tonic::Code::ResourceExhausted),
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
    child.wait().unwrap();
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
