//! Processes for the end-to-end tests: a parent holding real zombies, and
//! a busy loop.
//!
//! `hostscope-test-parent MODE N`, with MODE one of:
//! - `reaping`: the parent forks N children that exit at once, lets them
//!   sit as zombies, then installs a SIGCHLD handler that reaps every
//!   exited child. The children's own SIGCHLDs arrived before the handler
//!   (and were discarded, SIGCHLD's default), so the zombies stay until
//!   someone sends SIGCHLD again: the behaviour `hostscope zombies --reap`
//!   counts on.
//! - `leaking`: the same children, never reaped.
//! - `stubborn`: leaking, and deaf to SIGTERM too, so that only SIGKILL
//!   ends it.
//!
//! The process started is a keeper, not the parent itself: it makes itself
//! a child subreaper and forks the parent. When the parent is killed, its
//! zombies pass to the keeper (not to init, and not to the test binary),
//! which reaps them. So the test binary never has to become a subreaper,
//! which would hand it every orphan of every other test.
//!
//! On stdout, one line each:
//! - `ready PARENT ZOMBIE...` from the parent, once every child is a zombie;
//! - `exited PARENT code N` or `exited PARENT signal N` from the keeper,
//!   when the parent ends;
//! - `reaped PID` from the keeper, for each orphaned zombie it reaps.
//!
//! Closing the keeper's stdin ends the parent (SIGKILL) and the keeper,
//! once it has reaped everything. Left alone, the parent exits after
//! 120 s and the keeper with it.
//!
//! `hostscope-test-parent busy`: spins on one core for at most 120 s.

use std::{
    io::{Read, Write},
    time::{Duration, Instant},
};

/// How long anything here lives if nobody ends it.
const LIFETIME: Duration = Duration::from_secs(120);

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
    match args.as_slice() {
        [_, mode] if mode == "busy" => busy(),
        [_, mode, n] if ["reaping", "leaking", "stubborn"].contains(&mode.as_str()) => {
            match n.parse::<usize>() {
                Ok(n) if (1..=64).contains(&n) => keeper(mode, n),
                _ => usage(),
            }
        }
        _ => usage(),
    }
}

/// Burns CPU until [`LIFETIME`] is over.
fn busy() {
    let start = Instant::now();
    let mut spins: u64 = 0;
    while start.elapsed() < LIFETIME {
        for _ in 0..100_000 {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
}

/// Becomes a subreaper, forks the parent, and reaps until no child is left.
fn keeper(mode: &str, count: usize) {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes a plain integer flag and
    // touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        fail("prctl(PR_SET_CHILD_SUBREAPER) failed");
    }
    // SAFETY: this program is single-threaded; the child goes on in
    // ordinary Rust code, which is sound after fork in a single-threaded
    // process.
    let parent = match unsafe { libc::fork() } {
        -1 => fail("fork failed"),
        0 => {
            run_parent(mode, count);
            // SAFETY: see above.
            unsafe { libc::_exit(0) }
        }
        pid => pid,
    };

    let mut stdin_open = true;
    let mut parent_alive = true;
    let mut out = std::io::stdout();
    loop {
        loop {
            let mut status = 0;
            // SAFETY: `status` is a valid out pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid == 0 {
                break;
            }
            if pid < 0 {
                // ECHILD: the parent and every orphan are reaped.
                let _ = out.flush();
                return;
            }
            let line = if pid != parent {
                format!("reaped {pid}")
            } else if libc::WIFSIGNALED(status) {
                parent_alive = false;
                format!("exited {pid} signal {}", libc::WTERMSIG(status))
            } else {
                parent_alive = false;
                format!("exited {pid} code {}", libc::WEXITSTATUS(status))
            };
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        if stdin_open && stdin_closed(Duration::from_millis(10)) {
            stdin_open = false;
            if parent_alive {
                // SAFETY: the parent is our unreaped child, so its pid is
                // still its own.
                unsafe { libc::kill(parent, libc::SIGKILL) };
            }
        } else if !stdin_open {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Waits up to `timeout` for stdin; true once it is at end of file.
fn stdin_closed(timeout: Duration) -> bool {
    let mut fd = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut fd, 1, ms) };
    if ready <= 0 {
        return false;
    }
    if fd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
        && fd.revents & libc::POLLIN == 0
    {
        return true;
    }
    let mut buf = [0u8; 256];
    matches!(std::io::stdin().read(&mut buf), Ok(0) | Err(_))
}

/// The parent: forks `count` children that exit at once, waits until they
/// are zombies, says so, and sleeps.
fn run_parent(mode: &str, count: usize) {
    let mut children = Vec::with_capacity(count);
    for _ in 0..count {
        // SAFETY: this process is single-threaded; the child only calls
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
    let _ = writeln!(out, "ready {} {}", std::process::id(), pids.join(" "));
    let _ = out.flush();
    std::thread::sleep(LIFETIME);
}

fn usage() -> ! {
    fail("usage: hostscope-test-parent (reaping|leaking|stubborn) N | busy")
}

fn fail(message: &str) -> ! {
    eprintln!("hostscope-test-parent: {message}");
    std::process::exit(2)
}
