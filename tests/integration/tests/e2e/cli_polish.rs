//! The command line's exit codes, errors and flags against a real agent
//! over real mutual TLS: what a person meets in the first hour.

use std::{fs, net::TcpListener};

use hostscope_client::{Client, Error, Peer, TlsConfig};
use hostscope_integration::TestAgent;

use super::reap::hostscope;

/// An address on loopback where nothing listens.
fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    drop(listener);
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_mistakes_exit_1_against_a_real_agent() {
    let agent = TestAgent::start().await;
    let cases: [(&[&str], &str); 5] = [
        (&["proc", "0"], "0 is no process id"),
        (&["ps", "--name", "["], "is no valid glob"),
        (&["signal", "4242", "0"], "signal 0 sends nothing"),
        (&["watch", "--pid", "0"], "0 is no process id"),
        (&["zombies", "--ppid", "-3"], "-3 is no process id"),
    ];
    for (args, needle) in cases {
        let (code, out, err) = hostscope(&agent, "client", args).await;
        assert_eq!((code, out.as_str()), (1, ""), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // An agent's certificate given as the client's is named before dialling.
    let (code, _, err) = hostscope(&agent, "agent", &["host"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("agent.pem is not a client certificate"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_certificate_the_agent_refuses_is_named() {
    let agent = TestAgent::start().await;
    // Past the CLI's own check, as a library user could be.
    let read = |f: &str| fs::read(agent.pki.path(f)).expect("pki file");
    let tls = TlsConfig {
        ca_pem: read("ca.pem"),
        identity: Some((read("agent.pem"), read("agent-key.pem"))),
        server_name: None,
    };
    let result = match Client::connect(&agent.endpoint(), Some(tls)).await {
        Ok(client) => client.host().await.map(drop),
        Err(e) => Err(e),
    };
    let err = result.expect_err("the agent refuses a server certificate from a client");
    assert!(
        matches!(err, Error::NotAClientCertificate { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("pki issue --client"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_and_tls_mismatches_say_which_side_speaks_what() {
    let tls_agent = TestAgent::start().await;
    let result = match Client::connect(&tls_agent.endpoint(), None).await {
        Ok(client) => client.host().await.map(drop),
        Err(e) => Err(e),
    };
    let err = result.expect_err("plaintext at a TLS agent");
    assert!(
        matches!(
            err,
            Error::NotTls {
                peer: Peer::Tls,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("drop --plaintext"), "{err}");

    let plaintext_agent = TestAgent::start_plaintext().await;
    let (code, _, err) = hostscope(&plaintext_agent, "client", &["host"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("speaks plaintext") && err.contains("pass --plaintext"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_output_says_only_what_is_there() {
    let agent = TestAgent::start().await;
    let (code, out, err) = hostscope(&agent, "client", &["proc", "999999", "-o", "json"]).await;
    assert_eq!((code, out.as_str()), (2, ""), "no [] before the error");
    assert_eq!(err, "error: no such process (pid 999999)\n");

    let me = std::process::id().to_string();
    let (code, out, err) = hostscope(&agent, "client", &["proc", &me, "-o", "JSON"]).await;
    assert_eq!(code, 0, "{err}");
    let record: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(record["pid"].as_u64(), Some(u64::from(std::process::id())));
    assert!(
        record.get("environ").is_none(),
        "an agent without --environ serves none: {out}"
    );

    // Sorted descending, no header: the pids read straight.
    let args = [
        "ps",
        "--fields",
        "pid,name",
        "--sort",
        "-pid",
        "-o",
        "csv",
        "--no-headers",
    ];
    let (code, out, err) = hostscope(&agent, "client", &args).await;
    assert_eq!(code, 0, "{err}");
    let pids: Vec<u64> = out
        .lines()
        .map(|l| {
            l.split(',')
                .nth(1)
                .and_then(|p| p.parse().ok())
                .expect("a pid cell")
        })
        .collect();
    assert!(pids.len() > 1, "{out}");
    assert!(pids.windows(2).all(|w| w[0] > w[1]), "{pids:?}");
    assert!(!out.starts_with("host,"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_watch_with_a_host_never_watched_fails_and_says_so() {
    let agent = TestAgent::start().await;
    let dead = closed_port();
    let args = ["--hosts", &dead, "--retries", "0", "watch", "--for", "1s"];
    let (code, _, err) = hostscope(&agent, "client", &args).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.ends_with(&format!("from 1 of 2 hosts; 1 never watched ({dead})\n")),
        "{err}"
    );
}
