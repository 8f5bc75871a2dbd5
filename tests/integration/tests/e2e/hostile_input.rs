//! Hostile input against a real agent over real mutual TLS: name globs
//! built to make a backtracking matcher recurse or run for seconds, run
//! against a real process with a 25,000-character name.

use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use hostscope_agent::server::Limits;
use hostscope_client::{Client, Error, EventStream};
use hostscope_integration::child::ChildGroup;
use hostscope_proto as pb;
use tokio_stream::StreamExt;

use super::hostile::{Agent, EVENTUALLY};

/// The length of the hostile process name, in characters.
const LONG_NAME: usize = 25_000;

/// The glob of the report: 60,001 bytes, one stack frame per star in a
/// backtracking matcher.
fn attack_glob() -> String {
    "*a".repeat(30_000) + "b"
}

/// Where `program` is on PATH.
fn which(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").expect("PATH");
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} not on PATH"))
}

/// A real `sleep` whose process name is [`LONG_NAME`] a's, as any local
/// user can start one: run through a link whose name fills the kernel's
/// 15-byte comm with a's, with `argv[0]` the whole name, which the agent
/// (like psutil) takes as the name since it starts with the comm.
fn long_named_sleeper(dir: &Path) -> (ChildGroup, String) {
    let link = dir.join("a".repeat(16));
    std::os::unix::fs::symlink(which("sleep"), &link).expect("link to sleep");
    let name = "a".repeat(LONG_NAME);
    let child = ChildGroup::spawn(
        Command::new(&link)
            .arg0(&name)
            .arg("600")
            .stdin(Stdio::null()),
    )
    .expect("spawn the long-named sleep");
    (child, name)
}

fn by_name(name: String) -> pb::ProcessFilter {
    pb::ProcessFilter {
        name,
        ..Default::default()
    }
}

/// The names of the processes whose name matches `glob`, by pid.
async fn listed(client: &Client, glob: String) -> Vec<(u32, String)> {
    let stream = client
        .processes(&[pb::ProcessField::Name], by_name(glob))
        .await
        .expect("listing");
    let listing = tokio::time::timeout(EVENTUALLY, stream.collect::<Result<Vec<_>, _>>())
        .await
        .expect("the listing ends")
        .expect("process stream");
    listing
        .into_iter()
        .map(|p| (p.pid(), p.name().unwrap_or_default().to_owned()))
        .collect()
}

/// Asserts that `err` refuses the attack glob as too long, quoting it short.
fn assert_refused_short(err: &Error) {
    let Error::InvalidArgument { message } = err else {
        panic!("{err:?}");
    };
    assert!(message.contains("60001 bytes"), "{message}");
    assert!(message.contains("4096"), "{message}");
    assert!(message.len() < 300, "a message of {} bytes", message.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_globs_against_a_huge_process_name_neither_crash_nor_stall_listings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sleeper, name) = long_named_sleeper(dir.path());
    let agent = Agent::start(Limits::default()).await;
    let client = agent.client().await;
    let own = client
        .process(sleeper.id(), &[pb::ProcessField::Name])
        .await
        .expect("the long-named process");
    assert_eq!(
        own.name().expect("name"),
        name,
        "the agent names the process with all {LONG_NAME} characters"
    );

    // The glob of the report is refused, and only a trace of it is quoted.
    let err = match client
        .processes(&[pb::ProcessField::Name], by_name(attack_glob()))
        .await
    {
        Err(e) => e,
        Ok(stream) => stream
            .collect::<Result<Vec<_>, _>>()
            .await
            .expect_err("the 60,001-byte glob was accepted"),
    };
    assert_refused_short(&err);

    // Globs under the limit that a backtracking matcher recurses on (one
    // frame per star) or runs for long (a long literal after a star), run
    // against every process, the long-named one among them.
    let stars = "*a".repeat(2_000);
    let found = listed(&client, stars.clone()).await;
    assert!(
        found.contains(&(sleeper.id(), name.clone())),
        "{} processes matched, not the long-named one",
        found.len()
    );
    for glob in [stars + "b", format!("*{}b", "a".repeat(4_000))] {
        let found = listed(&client, glob).await;
        assert!(found.iter().all(|(pid, _)| *pid != sleeper.id()));
    }
    agent.answers().await;
    drop(sleeper);
}

/// Reads `events` until one for `pid` of `kind` arrives.
async fn event_for(
    events: &mut EventStream,
    pid: u32,
    kind: pb::ProcessEventKind,
) -> pb::ProcessEvent {
    tokio::time::timeout(EVENTUALLY, async {
        loop {
            let event = events
                .next()
                .await
                .expect("the watch stays open")
                .expect("an event");
            if event.pid == pid && event.kind == kind as i32 {
                return event;
            }
        }
    })
    .await
    .expect("the event arrives")
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_globs_against_a_huge_process_name_neither_crash_nor_stall_watches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(Limits::default()).await;
    let client = agent.client().await;
    let watch = |glob: String| pb::WatchProcessesRequest {
        filter: Some(by_name(glob)),
        kinds: vec![pb::ProcessEventKind::Exec as i32],
        ..Default::default()
    };

    let err = match client.watch(watch(attack_glob())).await {
        Err(e) => e,
        Ok(mut events) => events
            .next()
            .await
            .expect("a status")
            .expect_err("the 60,001-byte glob was accepted"),
    };
    assert_refused_short(&err);

    // Watches with globs under the limit that a backtracking matcher
    // recurses on, one that matches the long name and one that does not,
    // then a process with that name execs.
    let stars = "*a".repeat(2_000);
    let mut hit = client.watch(watch(stars.clone())).await.expect("watch");
    let miss = client.watch(watch(stars + "b")).await.expect("watch");
    let (sleeper, name) = long_named_sleeper(dir.path());
    let exec = event_for(&mut hit, sleeper.id(), pb::ProcessEventKind::Exec).await;
    assert_eq!(exec.name.as_deref(), Some(name.as_str()));
    agent.answers().await;
    drop((miss, sleeper));
}
