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

#[test]
fn kill_suggests_signal() {
    let (code, out, err) = hostscope(&["kill", "4321"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("unrecognized subcommand 'kill'"), "{err}");
    assert!(err.contains("'signal'"), "{err}");
    assert!(!err.contains("'pki'"), "{err}");
}

#[test]
fn global_options_are_listed_once_in_the_top_level_help() {
    let (code, top, err) = hostscope(&["--help"]);
    assert_eq!(code, 0, "{err}");
    for flag in ["--ca <FILE>", "--concurrency <N>", "--output <FORMAT>"] {
        assert!(top.contains(flag), "{flag} missing from:\n{top}");
    }
    for args in [
        &["pki", "init", "--help"][..],
        &["ps", "--help"],
        &["signal", "-h"],
    ] {
        let (code, help, err) = hostscope(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        for flag in [
            "--ca <FILE>",
            "--concurrency <N>",
            "--output <FORMAT>",
            "--quiet",
        ] {
            assert!(!help.contains(flag), "{args:?} repeats {flag}:\n{help}");
        }
        assert!(
            help.contains("Global options (") && help.contains("see hostscope --help"),
            "{args:?}:\n{help}"
        );
    }
    // Still taken after the subcommand.
    let (code, _, err) = hostscope(&["ps", "--fields", "pid,rss", "-o", "json", "-q"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown field \"rss\""), "{err}");
}

#[test]
fn pki_days_sets_lifetimes_and_show_tells_what_a_certificate_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("pki");
    let d = d.to_str().expect("utf-8 path");
    let (code, _, err) = hostscope(&["pki", "init", "--dir", d, "--days", "400"]);
    assert_eq!(code, 0, "{err}");
    let args = [
        "pki",
        "issue",
        "--dir",
        d,
        "--name",
        "web1",
        "--server",
        "--san",
        "192.0.2.5",
        "--days",
        "30",
    ];
    let (code, _, err) = hostscope(&args);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = hostscope(&["pki", "show", &format!("{d}/web1.pem")]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "subject:      CN=web1",
        "role:         agent (server certificate)",
        "names (SAN):  web1, 192.0.2.5",
        "key usage:    serverAuth",
        "issuer:       O=hostscope, CN=hostscope fleet CA ",
        "/web1.pem",
        "ca.pem (verified)",
    ] {
        assert!(out.contains(needle), "{needle:?} missing from:\n{out}");
    }
    // 30 days less the seconds since it was issued, which may round to 30.
    let left = |out: &str| -> u32 {
        let (_, rest) = out.split_once("(valid now, ").expect("valid now");
        let (days, _) = rest.split_once(" days left)").expect("days left");
        days.parse().expect("a number of days")
    };
    assert!((29..=30).contains(&left(&out)), "{out}");
    let sha = out
        .lines()
        .find_map(|l| l.strip_prefix("sha256:       "))
        .expect("a fingerprint");
    assert_eq!(sha.len(), 32 * 3 - 1, "{sha}");
    let (code, out, err) = hostscope(&["pki", "show", &format!("{d}/ca.pem")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("role:         CA"), "{out}");
    assert!((399..=400).contains(&left(&out)), "{out}");

    // Another fleet's CA did not sign it.
    let other = dir.path().join("other");
    let other = other.to_str().expect("utf-8 path");
    let (code, _, err) = hostscope(&["pki", "init", "--dir", other]);
    assert_eq!(code, 0, "{err}");
    let ca = format!("{other}/ca.pem");
    let (code, out, err) = hostscope(&["pki", "show", "--ca", &ca, &format!("{d}/web1.pem")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("signed by:    not "), "{out}");

    let (code, _, err) = hostscope(&[
        "pki", "issue", "--dir", d, "--name", "x", "--client", "--days", "0",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("0 days is no lifetime"), "{err}");
}
