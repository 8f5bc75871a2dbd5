//! The command line's environment: in process, `hostscope` reads only the
//! [`hostscope_cli::Env`] it is given, so the tests pass whatever this
//! process's HOSTSCOPE_* variables and profile file say; the binary reads
//! the real ones.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::Duration,
};

use hostscope_cli::Env;
use hostscope_integration::{CliRun, TestAgent, child::ChildGroup, hostscope_in};

/// How long a child test binary or command line may take.
const LIMIT: Duration = Duration::from_secs(300);

/// A profile file that no run can load.
const BROKEN_PROFILE: &str = "this is [not toml\n";

/// A home directory holding a broken profile file
/// (`.config/hostscope/config.toml`), for `HOME` and `XDG_CONFIG_HOME`.
fn broken_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path().join(".config/hostscope");
    std::fs::create_dir_all(&dir).expect("profile directory");
    std::fs::write(dir.join("config.toml"), BROKEN_PROFILE).expect("profile file");
    home
}

/// [`hostscope_in`] on Tokio's blocking pool.
async fn run_in(env: Env, args: Vec<String>) -> CliRun {
    tokio::task::spawn_blocking(move || hostscope_in(&env, args, ""))
        .await
        .expect("the command line's thread")
}

/// The in-process tests of the command line that this test runs again in
/// a child whose environment is hostile: each asks a real agent.
const IN_PROCESS_TESTS: [&str; 2] = [
    "cli_polish::process_output_says_only_what_is_there",
    "cli_polish::usage_mistakes_exit_1_against_a_real_agent",
];

#[test]
fn in_process_runs_ignore_this_process_s_variables_and_profile() {
    // This test binary again, in a child whose environment names a host
    // that does not exist, certificates that do not exist, a context no
    // profile has, and a profile that does not parse: any of them would
    // fail the tests if the in-process command line read it.
    let home = broken_home();
    let out = tempfile::NamedTempFile::new().expect("output file");
    let mut command = Command::new(std::env::current_exe().expect("this test binary"));
    command
        .args(IN_PROCESS_TESTS)
        .args(["--exact", "--test-threads=1"])
        .env("HOSTSCOPE_HOST", "192.0.2.1:9")
        .env("HOSTSCOPE_CA", "/nonexistent/ca.pem")
        .env("HOSTSCOPE_CERT", "/nonexistent/cert.pem")
        .env("HOSTSCOPE_KEY", "/nonexistent/key.pem")
        .env("HOSTSCOPE_CONTEXT", "no-such-context")
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .stdin(Stdio::null())
        .stdout(File::create(out.path()).expect("stdout file"))
        .stderr(Stdio::inherit());
    let mut child = ChildGroup::spawn(&mut command).expect("run the test binary");
    let status = child.wait(LIMIT);
    let stdout = std::fs::read_to_string(out.path()).expect("the child's stdout");
    assert!(status.success(), "{status}:\n{stdout}");
    assert!(
        stdout.contains(&format!(
            "test result: ok. {} passed",
            IN_PROCESS_TESTS.len()
        )),
        "the child did not run every test:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_explicit_environment_is_what_the_command_line_reads() {
    let agent = TestAgent::start().await;
    let pki = agent.pki.dir().to_owned();
    // A profile with a context that names the agent and its certificates
    // under `~`, the home directory of the environment.
    let config = tempfile::tempdir().expect("tempdir");
    let profile = config.path().join("config.toml");
    std::fs::write(
        &profile,
        format!(
            "[contexts.test]\nca = \"~/ca.pem\"\ncert = \"~/client.pem\"\n\
             key = \"~/client-key.pem\"\nhost = \"{}\"\n",
            agent.endpoint()
        ),
    )
    .expect("profile file");
    let env = || Env::default().profile(&profile).home(&pki);
    let host = || vec!["host".to_owned(), "-o".to_owned(), "json".to_owned()];

    let run = run_in(env().var("HOSTSCOPE_CONTEXT", "test"), host()).await;
    assert_eq!(run.code, 0, "{}", run.err);
    let record: serde_json::Value = serde_json::from_str(&run.out).expect("JSON");
    assert!(record["hostname"].is_string(), "{}", run.out);

    // Without the variable there is no context, so no target and no
    // certificates: the run says so rather than asking anyone.
    let run = run_in(env(), host()).await;
    assert_eq!(run.code, 1, "{}", run.err);
    assert!(run.err.contains("no TLS certificates given"), "{}", run.err);

    // A context the profile lacks is named, with the profile's path.
    let run = run_in(env().var("HOSTSCOPE_CONTEXT", "prod"), host()).await;
    assert_eq!(run.code, 1, "{}", run.err);
    assert!(
        run.err.contains("no context \"prod\"") && run.err.contains(&profile.display().to_string()),
        "{}",
        run.err
    );

    // A profile that does not parse is an error, not silently skipped.
    std::fs::write(&profile, BROKEN_PROFILE).expect("profile file");
    let run = run_in(env(), host()).await;
    assert_eq!(run.code, 1, "{}", run.err);
    assert!(run.err.contains("config.toml:1"), "{}", run.err);

    // The help shows the environment's values, as clap would the process's.
    let run = run_in(
        Env::default().var("HOSTSCOPE_CA", "/etc/fleet/ca.pem"),
        vec!["--help".to_owned()],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.err);
    let help = run.out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("[env: HOSTSCOPE_CA=/etc/fleet/ca.pem]"),
        "{help}"
    );
    assert!(help.contains("[env: HOSTSCOPE_HOST=]"), "{help}");
}

/// Runs the `hostscope` binary (`host -o json`) with the HOSTSCOPE_*
/// variables naming the agent at `endpoint` and the certificates in `pki`,
/// and `home` as HOME and `home/.config` as XDG_CONFIG_HOME; returns its
/// exit status, stdout and stderr.
fn binary_host(endpoint: &str, pki: &Path, home: &Path) -> (ExitStatus, String, String) {
    let out = tempfile::NamedTempFile::new().expect("output file");
    let err = tempfile::NamedTempFile::new().expect("error file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_hostscope-cli"));
    command
        .args(["host", "-o", "json"])
        .env("HOSTSCOPE_HOST", endpoint)
        .env("HOSTSCOPE_CA", pki.join("ca.pem"))
        .env("HOSTSCOPE_CERT", pki.join("client.pem"))
        .env("HOSTSCOPE_KEY", pki.join("client-key.pem"))
        .env_remove("HOSTSCOPE_CONTEXT")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .stdin(Stdio::null())
        .stdout(File::create(out.path()).expect("stdout file"))
        .stderr(File::create(err.path()).expect("stderr file"));
    let mut child = ChildGroup::spawn(&mut command).expect("run hostscope");
    let status = child.wait(LIMIT);
    let read = |f: &tempfile::NamedTempFile| std::fs::read_to_string(f.path()).expect("output");
    (status, read(&out), read(&err))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_reads_the_process_s_variables_and_profile() {
    let agent = TestAgent::start().await;
    let run = |home: PathBuf| {
        let (endpoint, pki) = (agent.endpoint(), agent.pki.dir().to_owned());
        tokio::task::spawn_blocking(move || binary_host(&endpoint, &pki, &home))
    };

    // The variables name the agent and the certificates.
    let empty = tempfile::tempdir().expect("tempdir");
    let (status, out, err) = run(empty.path().to_owned()).await.expect("thread");
    assert!(status.success(), "{status}: {err}");
    let record: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert!(record["hostname"].is_string(), "{out}");

    // And the profile under XDG_CONFIG_HOME is read: a broken one fails.
    let broken = broken_home();
    let (status, _, err) = run(broken.path().to_owned()).await.expect("thread");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("config.toml:1"), "{err}");
}
