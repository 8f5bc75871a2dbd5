//! The `hostscope` binary as a person runs it: a real process, its exit
//! status, and what it writes to stdout and stderr. What it asks of agents
//! is tested in-process (`run_with`) against real agents in
//! tests/integration.

#![deny(unsafe_code)]

use std::{net::TcpListener, process::Command};

/// Runs `hostscope` with `args` and none of the caller's HOSTSCOPE_*
/// variables; returns its exit code, stdout and stderr.
fn hostscope(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hostscope"))
        .args(args)
        .env_remove("HOSTSCOPE_HOST")
        .env_remove("HOSTSCOPE_CA")
        .env_remove("HOSTSCOPE_CERT")
        .env_remove("HOSTSCOPE_KEY")
        .output()
        .expect("run hostscope");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn pki_writes_a_ca_and_certificates_and_refuses_to_overwrite_the_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("pki");
    let d = d.to_str().expect("utf-8 path");
    let (code, out, err) = hostscope(&["pki", "init", "--dir", d]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ca-key.pem"), "{out}");

    let (code, out, err) = hostscope(&["pki", "init", "--dir", d]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.starts_with("error: ") && err.contains("exists already"),
        "{err}"
    );
    assert!(
        err.contains("pass --force") && !err.contains("(force)"),
        "{err}"
    );

    let (code, out, err) = hostscope(&[
        "pki",
        "issue",
        "--dir",
        d,
        "--name",
        "agent",
        "--server",
        "--san",
        "127.0.0.1",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("wrote an agent certificate for agent, 127.0.0.1: "),
        "{out}"
    );
    let (code, out, err) = hostscope(&["pki", "issue", "--dir", d, "--name", "alice", "--client"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("wrote a client certificate for alice: "),
        "{out}"
    );

    // A second issue of the same name keeps the first unless --force.
    let cert = dir.path().join("pki").join("alice.pem");
    let first = std::fs::read(&cert).expect("alice.pem");
    let (code, out, err) = hostscope(&["pki", "issue", "--dir", d, "--name", "alice", "--client"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(
        err.contains("alice.pem exists already: pass --force to replace it"),
        "{err}"
    );
    assert_eq!(std::fs::read(&cert).expect("alice.pem"), first, "kept");
    let args = [
        "pki", "issue", "--dir", d, "--name", "alice", "--client", "--force",
    ];
    let (code, _, err) = hostscope(&args);
    assert_eq!(code, 0, "{err}");
    assert_ne!(std::fs::read(&cert).expect("alice.pem"), first, "renewed");
    for file in [
        "ca.pem",
        "ca-key.pem",
        "agent.pem",
        "agent-key.pem",
        "alice.pem",
        "alice-key.pem",
    ] {
        assert!(
            dir.path().join("pki").join(file).is_file(),
            "{file} missing"
        );
    }
}

#[test]
fn usage_errors_exit_1_and_help_goes_to_stdout() {
    let (code, out, err) = hostscope(&["ps", "--fields", "pid,rss"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains("unknown field \"rss\"; valid fields: pid, ppid"),
        "{err}"
    );

    let (code, _, err) = hostscope(&["host"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("--ca FILE --cert FILE --key FILE") && err.contains("--plaintext"),
        "{err}"
    );

    let (code, out, err) = hostscope(&["zombies", "--help"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.contains("--kill-parents"), "{out}");
}

#[test]
fn an_unreachable_host_fails_with_exit_2_in_plain_words() {
    // A port that was free a moment ago: nothing listens on it.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let (code, out, err) = hostscope(&["--plaintext", "--host", &endpoint, "host"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        format!(
            "error: {endpoint} refused the connection: is hostscope-agent running and listening \
             there?\n"
        )
    );
}
