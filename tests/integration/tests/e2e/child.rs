//! The kill-on-drop guard every test's child process goes through: the
//! child and everything it started die with the test, pass or fail.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use hostscope_integration::{child::ChildGroup, proc_state, wait_for};

const LIMIT: Duration = Duration::from_secs(30);

/// Starts `sh -c SCRIPT`, where SCRIPT starts `sleep 60` in the background
/// and prints its pid first; returns the shell and the sleep's pid.
fn shell_with_a_background_sleep(rest: &str) -> (ChildGroup, u32) {
    let script = format!("sleep 60 & echo $!; {rest}");
    let mut shell = ChildGroup::spawn(
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    )
    .expect("spawn sh");
    let mut line = String::new();
    BufReader::new(shell.take_stdout().expect("piped stdout"))
        .read_line(&mut line)
        .expect("the background pid");
    let sleep = line.trim().parse().expect("a pid");
    (shell, sleep)
}

/// Gone, or a zombie waiting for init: either way it runs no more.
fn dead(pid: u32) -> bool {
    matches!(proc_state(pid), None | Some('Z'))
}

#[test]
fn a_failing_test_takes_its_child_and_grandchild_down() {
    let mut pids = None;
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (shell, sleep) = shell_with_a_background_sleep("wait");
        pids = Some((shell.id(), sleep));
        assert_eq!(proc_state(sleep).map(|s| s != 'Z'), Some(true));
        panic!("a test fails while its processes run");
    }));
    assert!(failed.is_err());
    let (shell, sleep) = pids.expect("the processes were started");
    // The shell is reaped by the guard; the sleep was killed with it and
    // passed to init, which reaps it in its own time.
    assert_eq!(proc_state(shell), None, "the shell was reaped");
    wait_for(LIMIT, || dead(sleep));
}

#[test]
fn a_child_that_exits_leaves_nothing_of_its_group_running() {
    let (mut shell, sleep) = shell_with_a_background_sleep("exit 4");
    let status = shell.wait(LIMIT);
    assert_eq!(status.code(), Some(4));
    wait_for(LIMIT, || dead(sleep));
    // Waiting again answers the same, and sends nothing.
    assert_eq!(shell.kill().code(), Some(4));
}
