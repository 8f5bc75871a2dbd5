//! Skipped tests report as skipped: [`hostscope_integration::skip!`]
//! prints `SKIPPED: <test>: <reason>` where a plain `cargo test` shows it,
//! and fails the test instead under `HOSTSCOPE_NO_SKIP`.

use std::{
    ffi::OsStr,
    process::{Command, ExitStatus, Stdio},
    time::Duration,
};

use hostscope_integration::{NO_SKIP, child::ChildGroup, skip, skip_line};

/// Set only in the children of the tests below: the precondition that
/// [`skips_where_the_skip_tests_say`] lacks there.
const SKIP_HERE: &str = "HOSTSCOPE_TEST_SKIP_HERE";

/// The test the children run: skipped when [`SKIP_HERE`] is set, as a
/// test without root skips; otherwise there is nothing to check.
#[test]
fn skips_where_the_skip_tests_say() {
    if std::env::var_os(SKIP_HERE).is_some() {
        skip!("{SKIP_HERE} is set");
    }
}

/// Runs [`skips_where_the_skip_tests_say`] in a child of this test
/// binary, with `no_skip` as [`NO_SKIP`], and returns its exit status and
/// what it wrote to stdout and stderr, together.
fn run_the_skipping_test(no_skip: Option<&str>) -> (ExitStatus, String) {
    let out = tempfile::NamedTempFile::new().expect("output file");
    // One open file for both, so that neither overwrites the other.
    let file = out.reopen().expect("output file");
    let mut command = Command::new(std::env::current_exe().expect("this test binary"));
    command
        .args(["skip::skips_where_the_skip_tests_say", "--exact"])
        .env(SKIP_HERE, "1")
        .env_remove(NO_SKIP)
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("stdout file"))
        .stderr(file);
    if let Some(value) = no_skip {
        command.env(NO_SKIP, value);
    }
    let mut child = ChildGroup::spawn(&mut command).expect("run the test binary");
    let status = child.wait(Duration::from_secs(120));
    let output = std::fs::read_to_string(out.path()).expect("the child's output");
    (status, output)
}

#[test]
fn a_skip_prints_its_reason_past_the_capture() {
    // The harness captures what passing tests print: the line must show
    // all the same, without --nocapture.
    let (status, output) = run_the_skipping_test(None);
    assert!(status.success(), "{status}:\n{output}");
    assert!(
        output.contains(&format!(
            "SKIPPED: skip::skips_where_the_skip_tests_say: {SKIP_HERE} is set"
        )),
        "{output}"
    );
    assert!(output.contains("test result: ok. 1 passed"), "{output}");
}

#[test]
fn under_no_skip_a_skip_fails_with_its_reason() {
    let (status, output) = run_the_skipping_test(Some("1"));
    assert!(!status.success(), "{output}");
    assert!(
        output.contains(&format!("{NO_SKIP} is set: {SKIP_HERE} is set")),
        "{output}"
    );
    assert!(!output.contains("SKIPPED:"), "{output}");
}

#[test]
fn an_empty_no_skip_is_unset() {
    let line = |value: Option<&str>| skip_line("t", "why", value.map(OsStr::new));
    assert_eq!(line(None).as_deref(), Some("SKIPPED: t: why"));
    assert_eq!(line(Some("")).as_deref(), Some("SKIPPED: t: why"));
    assert_eq!(line(Some("1")), None);
}
