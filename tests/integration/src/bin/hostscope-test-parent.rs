//! A parent process with zombie children, for the zombie-sweep tests.
//!
//! `hostscope-test-parent reaping N`: forks N children that exit at once,
//! lets them sit as zombies, then installs a SIGCHLD handler that reaps
//! every exited child. The children's own SIGCHLDs arrived before the
//! handler (and were discarded, SIGCHLD's default), so the zombies stay
//! until someone sends SIGCHLD again: the behaviour `hostscope zombies
//! --reap` counts on.
//!
//! `hostscope-test-parent leaking N`: the same children, never reaped.
//!
//! `hostscope-test-parent stubborn N`: leaking, and deaf to SIGTERM too, so
//! that only SIGKILL ends it.
//!
//! Either prints `ready PID...` (the zombies' pids) on stdout once every
//! child is a zombie, then sleeps; it exits by itself after 120 s.

use std::{
    io::Write,
    time::{Duration, Instant},
};

extern "C" fn reap(_signal: libc::c_int) {
    // SAFETY: waitpid is async-signal-safe; status may be null.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

fn is_zombie(pid: libc::pid_t) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.trim_start().chars().next()
        })
        == Some('Z')
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, count) = match args.as_slice() {
        [_, mode, n] if ["reaping", "leaking", "stubborn"].contains(&mode.as_str()) => {
            match n.parse::<usize>() {
                Ok(n) if (1..=64).contains(&n) => (mode.clone(), n),
                _ => usage(),
            }
        }
        _ => usage(),
    };

    let mut children = Vec::with_capacity(count);
    for _ in 0..count {
        // SAFETY: this program is single-threaded; the child only calls
        // the async-signal-safe `_exit`.
        match unsafe { libc::fork() } {
            -1 => fail("fork failed"),
            // SAFETY: see above.
            0 => unsafe { libc::_exit(0) },
            pid => children.push(pid),
        }
    }
    let start = Instant::now();
    while !children.iter().all(|pid| is_zombie(*pid)) {
        if start.elapsed() > Duration::from_secs(10) {
            fail("children did not become zombies");
        }
        std::thread::sleep(Duration::from_millis(5));
    }

    if mode == "reaping" {
        // SAFETY: a zeroed sigaction with a valid handler and an empty mask
        // is a well-formed argument; `reap` only calls waitpid.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = reap as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(libc::SIGCHLD, &action, std::ptr::null_mut()) != 0 {
                fail("sigaction failed");
            }
        }
    }

    if mode == "stubborn" {
        // SAFETY: SIG_IGN is a valid disposition for SIGTERM.
        if unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) } == libc::SIG_ERR {
            fail("ignoring SIGTERM failed");
        }
    }

    let pids: Vec<String> = children.iter().map(|p| p.to_string()).collect();
    let mut out = std::io::stdout();
    let _ = writeln!(out, "ready {}", pids.join(" "));
    let _ = out.flush();
    std::thread::sleep(Duration::from_secs(120));
}

fn usage() -> ! {
    fail("usage: hostscope-test-parent (reaping|leaking|stubborn) N")
}

fn fail(message: &str) -> ! {
    eprintln!("hostscope-test-parent: {message}");
    std::process::exit(2)
}
