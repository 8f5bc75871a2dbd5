//! Hostile input against a real agent over real mutual TLS: name globs
//! built to make a backtracking matcher recurse or run for seconds, run
//! against a real process with a 25,000-character name; requests framed
//! or typed wrongly, sent over a raw HTTP/2 connection.

use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use hostscope_agent::server::Limits;
use hostscope_client::{Client, Error, EventStream};
use hostscope_integration::{child::ChildGroup, missing_pid};
use hostscope_proto as pb;
use tokio_stream::StreamExt;
use tonic::codegen::{Bytes, http};

use super::hostile::{
    Agent, EVENTUALLY, audit_lines, final_status, grpc_frame, http2_client, operator_agent,
};

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

/// Reads `events` until one for `pid` arrives that names it `name`: its
/// exec (from the kernel's process connector), or its start (when polling
/// finds it already exec'd).
async fn named_event(events: &mut EventStream, pid: u32, name: &str) {
    tokio::time::timeout(EVENTUALLY, async {
        loop {
            let event = events
                .next()
                .await
                .expect("the watch stays open")
                .expect("an event");
            if event.pid == pid && event.name.as_deref() == Some(name) {
                return;
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
        kinds: vec![
            pb::ProcessEventKind::Started as i32,
            pb::ProcessEventKind::Exec as i32,
        ],
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
    named_event(&mut hit, sleeper.id(), &name).await;
    agent.answers().await;
    drop((miss, sleeper));
}

// === Framing and content types ===

/// A request for `method` of HostInspector with these `content-type` and
/// `grpc-encoding` headers (none where `None`).
fn request(method: &str, content_type: Option<&str>, encoding: Option<&str>) -> http::Request<()> {
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!(
            "https://localhost/hostscope.v1.HostInspector/{method}"
        ))
        .header("te", "trailers");
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(encoding) = encoding {
        request = request.header("grpc-encoding", encoding);
    }
    request.body(()).expect("request")
}

/// What the agent answered: the HTTP status, then the grpc-status and
/// grpc-message (empty for a response that is not gRPC).
async fn send(
    send: &mut h2::client::SendRequest<Bytes>,
    request: http::Request<()>,
    body: Vec<u8>,
) -> (u16, String, String) {
    let (response, mut stream) = send.send_request(request, false).expect("send request");
    // The agent may have answered from the headers alone and reset the
    // stream already: then the body has nowhere to go, and the answer
    // below says why.
    let _ = stream.send_data(Bytes::from(body), true);
    let response = tokio::time::timeout(EVENTUALLY, response)
        .await
        .expect("an answer")
        .expect("response");
    let http = response.status().as_u16();
    if http != 200 {
        return (http, String::new(), String::new());
    }
    let (code, message) = tokio::time::timeout(EVENTUALLY, final_status(response))
        .await
        .expect("the call ends");
    (http, code, message)
}

/// A PidExists request for this process, framed with compression `flag`.
fn pid_exists_flagged(flag: u8) -> Vec<u8> {
    let mut frame = grpc_frame(&pb::PidExistsRequest {
        pid: std::process::id(),
    })
    .to_vec();
    frame[0] = flag;
    frame
}

const GRPC: Option<&str> = Some("application/grpc");
const OK: &str = "0";
const INVALID_ARGUMENT: &str = "3";
const UNIMPLEMENTED: &str = "12";

#[tokio::test(flavor = "multi_thread")]
async fn framing_errors_are_the_clients_and_unknown_encodings_unimplemented() {
    let agent = Agent::start(Limits::default()).await;
    let (mut h2, _driver) = http2_client(&agent).await;

    // Flagged compressed, with no grpc-encoding or with identity.
    for encoding in [None, Some("identity")] {
        let (http, code, message) = send(
            &mut h2,
            request("PidExists", GRPC, encoding),
            pid_exists_flagged(1),
        )
        .await;
        assert_eq!((http, code.as_str()), (200, INVALID_ARGUMENT), "{message}");
        assert!(message.contains("compressed"), "{message}");
    }
    // A flag that means nothing.
    let (http, code, message) = send(
        &mut h2,
        request("PidExists", GRPC, None),
        pid_exists_flagged(7),
    )
    .await;
    assert_eq!((http, code.as_str()), (200, INVALID_ARGUMENT), "{message}");
    assert!(message.contains("compression flag 7"), "{message}");
    // Encodings the agent does not speak, whatever the flag.
    for (encoding, flag) in [("gzip", 1), ("snappy", 1), ("gzip", 0)] {
        let (http, code, message) = send(
            &mut h2,
            request("PidExists", GRPC, Some(encoding)),
            pid_exists_flagged(flag),
        )
        .await;
        assert_eq!((http, code.as_str()), (200, UNIMPLEMENTED), "{message}");
        assert!(message.contains(encoding), "{message}");
    }
    // The same connection serves a well-framed call.
    let (http, code, message) = send(
        &mut h2,
        request("PidExists", GRPC, None),
        pid_exists_flagged(0),
    )
    .await;
    assert_eq!((http, code.as_str()), (200, OK), "{message}");
    agent.answers().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_that_are_not_grpc_are_refused_with_http_415() {
    let agent = Agent::start(Limits::default()).await;
    let (mut h2, _driver) = http2_client(&agent).await;
    let well_framed = pid_exists_flagged(0);
    for content_type in [
        Some("text/plain"),
        Some("application/json"),
        Some("application/grpcx"),
        Some("application/grpc-web"),
        None,
    ] {
        let (http, code, _) = send(
            &mut h2,
            request("PidExists", content_type, None),
            well_framed.clone(),
        )
        .await;
        assert_eq!((http, code.as_str()), (415, ""), "{content_type:?}");
    }
    // Health and reflection are gRPC too.
    let health = http::Request::builder()
        .method("POST")
        .uri("https://localhost/grpc.health.v1.Health/Check")
        .header("content-type", "application/json")
        .header("te", "trailers")
        .body(())
        .expect("request");
    let (http, _, _) = send(&mut h2, health, vec![0, 0, 0, 0, 0]).await;
    assert_eq!(http, 415);
    // gRPC's own content types, with a subtype or parameters, are served.
    for content_type in [
        "application/grpc",
        "application/grpc+proto",
        "application/grpc;charset=utf-8",
    ] {
        let (http, code, message) = send(
            &mut h2,
            request("PidExists", Some(content_type), None),
            well_framed.clone(),
        )
        .await;
        assert_eq!(
            (http, code.as_str()),
            (200, OK),
            "{content_type}: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn signal_requests_refused_for_framing_or_content_type_are_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.log");
    let agent = operator_agent(&path).await;
    let (mut h2, _driver) = http2_client(&agent).await;
    let mut signal = grpc_frame(&pb::SignalProcessRequest {
        pid: missing_pid(),
        signal: "TERM".into(),
        expected_create_time: None,
    })
    .to_vec();

    signal[0] = 1;
    let (_, code, message) = send(
        &mut h2,
        request("SignalProcess", GRPC, None),
        signal.clone(),
    )
    .await;
    assert_eq!(code, INVALID_ARGUMENT, "{message}");
    signal[0] = 7;
    let (_, code, message) = send(
        &mut h2,
        request("SignalProcess", GRPC, None),
        signal.clone(),
    )
    .await;
    assert_eq!(code, INVALID_ARGUMENT, "{message}");
    signal[0] = 0;
    let (_, code, message) = send(
        &mut h2,
        request("SignalProcess", GRPC, Some("gzip")),
        signal.clone(),
    )
    .await;
    assert_eq!(code, UNIMPLEMENTED, "{message}");
    let (http, _, _) = send(
        &mut h2,
        request("SignalProcess", Some("text/plain"), None),
        signal,
    )
    .await;
    assert_eq!(http, 415);

    let lines = audit_lines(&path);
    let refused: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            assert_eq!(l["outcome"], "refused", "{l}");
            assert_eq!(l["client"], "client", "{l}");
            (
                l["reason"].as_str().expect("reason"),
                l["message"].as_str().expect("message"),
            )
        })
        .collect();
    assert_eq!(refused.len(), 4, "{lines:?}");
    assert_eq!(refused[0].0, "INVALID_ARGUMENT");
    assert!(refused[0].1.contains("compressed"), "{}", refused[0].1);
    assert_eq!(refused[1].0, "INVALID_ARGUMENT");
    assert!(refused[1].1.contains("flag 7"), "{}", refused[1].1);
    assert_eq!(refused[2].0, "UNIMPLEMENTED");
    assert!(refused[2].1.contains("gzip"), "{}", refused[2].1);
    assert_eq!(refused[3].0, "UNSUPPORTED_MEDIA_TYPE");
    assert!(refused[3].1.contains("text/plain"), "{}", refused[3].1);
}
