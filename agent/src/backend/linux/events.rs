//! Process events on Linux: the kernel's process connector, or polling.
//!
//! The connector (netlink `NETLINK_CONNECTOR`, group `CN_IDX_PROC`) reports
//! every fork, exec and exit on the host as it happens, with exit codes,
//! however short-lived the process. It needs the initial pid and user
//! namespaces (its pids are the initial namespace's), and on older kernels
//! CAP_NET_ADMIN (6.18 lets any user subscribe). Without them, polling
//! diffs the procfs table every interval: it misses processes that live
//! less than an interval, and knows no exit codes.
//!
//! The connector reports the exit of a process when its main thread
//! exits: a process whose main thread ends before its other threads is
//! reported as exited early, and when a thread other than the main one
//! calls exec, the old main thread's exit comes just before the `Exec`.

use std::{
    io,
    os::fd::{AsFd, OwnedFd},
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use super::{Linux, sys};
use crate::backend::{
    Error, EventSource, RawEvent, WatchMode,
    parse::proc_event::{Ack, CN_IDX_PROC, McastOp, mcast_message, parse_datagram},
    poll::Poller,
};

/// Opens an event source in `mode`. [`WatchMode::Auto`] falls back to
/// polling when the connector cannot be opened; the source's
/// [`EventSource::mode`] says which it is.
pub(super) fn open(
    linux: &Linux,
    mode: WatchMode,
    poll_interval: Duration,
) -> Result<Box<dyn EventSource>, Error> {
    open_with(linux, mode, poll_interval, || {
        Ok(Box::new(Connector::open()?))
    })
}

/// [`open`], with the kernel's source opened by `connect`, so that tests
/// can make it fail on a host where it works.
fn open_with(
    linux: &Linux,
    mode: WatchMode,
    poll_interval: Duration,
    connect: impl FnOnce() -> Result<Box<dyn EventSource>, Error>,
) -> Result<Box<dyn EventSource>, Error> {
    match mode {
        WatchMode::Kernel => connect(),
        WatchMode::Poll => Ok(Box::new(Poller::open(
            linux.clone_for_poll(),
            poll_interval,
        )?)),
        WatchMode::Auto => match connect() {
            Ok(connector) => Ok(connector),
            Err(error) => {
                // The caller logs which mode is in use; this says why.
                tracing::info!(%error, "the kernel's process events are unavailable");
                Ok(Box::new(Poller::open(
                    linux.clone_for_poll(),
                    poll_interval,
                )?))
            }
        },
    }
}

/// Seconds to add to `CLOCK_MONOTONIC` to get seconds since the Unix
/// epoch, measured now.
///
/// Not `btime` of `/proc/stat`: it is whole seconds, so `btime` plus the
/// connector's timestamps is off by up to a second (0.155 s on the
/// machine this was written on), and it would not follow a step of the
/// wall clock or a suspend.
///
/// The two clocks cannot be read at one instant: the monotonic reading is
/// bracketed by two wall-clock readings, and the tightest bracket of a
/// few tries is kept, so that a preemption between the reads (likely on a
/// loaded host) does not shift a whole batch of events. Each try costs
/// three vDSO calls, no syscall.
fn monotonic_to_epoch() -> f64 {
    let mut best = (f64::INFINITY, 0.0);
    for _ in 0..3 {
        let before = epoch_now();
        let monotonic = sys::monotonic_now().as_secs_f64();
        let after = epoch_now();
        let width = after - before;
        if width < best.0 {
            best = (width, (before + after) / 2.0 - monotonic);
        }
    }
    best.1
}

/// Seconds since the Unix epoch.
fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn io_error(what: &str, source: io::Error) -> Error {
    super::process::io_error(Path::new(what), source)
}

// === impl Connector ===

/// What the connector's errors name in place of a path.
const CONNECTOR: &str = "netlink process connector";

/// The receive buffer asked for. A burst of processes queues three events
/// each, every one taking about 800 bytes of socket memory; a full buffer
/// drops events (ENOBUFS). The kernel doubles the request, and 16 MiB
/// holds about 20,000 events (6,700 processes) unread.
const RECEIVE_BUFFER_BYTES: usize = 8 << 20;

/// Room for one datagram: the kernel sends one event (under 100 bytes) per
/// datagram, so a page is plenty.
const DATAGRAM_BYTES: usize = 4096;

/// The most datagrams one `next` reads, so a flood of events cannot keep
/// it from returning (the rest wait in the socket for the next call).
const MAX_DATAGRAMS_PER_NEXT: usize = 65_536;

/// How long `open` waits for the kernel to acknowledge the subscription.
/// The kernel answers while handling the request, before `send` returns,
/// so this only matters when the answer never comes.
const ACK_TIMEOUT: Duration = Duration::from_secs(1);

/// A subscription to the kernel's process connector.
struct Connector {
    socket: OwnedFd,
    buf: Vec<u8>,
    /// Events read while waiting for the subscription's acknowledgement,
    /// returned by the first `next`.
    early: Vec<RawEvent>,
    /// How many times the socket reported dropped events (ENOBUFS). The
    /// kernel does not say how many were lost each time.
    overruns: u64,
}

impl Connector {
    /// Opens a socket, subscribes it, and waits for the kernel to accept.
    ///
    /// Without CAP_NET_ADMIN older kernels refuse the bind or the
    /// subscription with EPERM. Outside the initial pid or user namespace
    /// the kernel ignores the request without an answer, which fails here
    /// with `TimedOut`.
    fn open() -> Result<Connector, Error> {
        let fail = |source| io_error(CONNECTOR, source);
        let socket = sys::netlink_socket(sys::NETLINK_CONNECTOR, CN_IDX_PROC).map_err(fail)?;
        match sys::set_receive_buffer(socket.as_fd(), RECEIVE_BUFFER_BYTES) {
            Ok(granted) => tracing::debug!(granted, "process connector receive buffer"),
            Err(error) => tracing::warn!(%error, "cannot size the process connector's buffer"),
        }
        let mut connector = Connector {
            socket,
            buf: vec![0; DATAGRAM_BYTES],
            early: Vec::new(),
            overruns: 0,
        };
        // The kernel multicasts its answer to every subscriber, with the
        // request's `ack` plus one: make it a number unlikely to be
        // another subscriber's.
        let nonce = std::process::id() ^ sys::monotonic_now().subsec_nanos();
        let request = mcast_message(McastOp::Listen, 0, nonce);
        sys::netlink_send(connector.socket.as_fd(), &request).map_err(fail)?;
        let answer = connector.await_ack(nonce.wrapping_add(1))?;
        match answer {
            Some(0) => Ok(connector),
            Some(errno) => Err(fail(io::Error::from_raw_os_error(errno as i32))),
            None => Err(fail(io::Error::new(
                io::ErrorKind::TimedOut,
                "the kernel did not acknowledge the subscription \
                 (is the agent outside the initial pid or user namespace?)",
            ))),
        }
    }

    /// Reads until the acknowledgement numbered `ack` comes or
    /// [`ACK_TIMEOUT`] passes, keeping the events that come meanwhile.
    /// Returns its errno, or `None` if it did not come.
    fn await_ack(&mut self, ack: u32) -> Result<Option<u32>, Error> {
        let deadline = Instant::now() + ACK_TIMEOUT;
        let mut early = std::mem::take(&mut self.early);
        let mut acks = Vec::new();
        let answer = loop {
            if let Some(mine) = acks.iter().find(|a: &&Ack| a.ack == ack) {
                break Some(mine.err);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break None;
            }
            if self.wait(left)? {
                acks = self.read_available(&mut early)?;
            }
        };
        self.early = early;
        Ok(answer)
    }

    /// Waits up to `timeout` for a datagram.
    fn wait(&self, timeout: Duration) -> Result<bool, Error> {
        sys::wait_readable(self.socket.as_fd(), timeout).map_err(|e| io_error(CONNECTOR, e))
    }

    /// Reads every datagram waiting (up to [`MAX_DATAGRAMS_PER_NEXT`])
    /// without blocking, appending their events to `out`; returns the
    /// acknowledgements among them.
    fn read_available(&mut self, out: &mut Vec<RawEvent>) -> Result<Vec<Ack>, Error> {
        // Measured per batch rather than once, so a step of the wall
        // clock shows in the next events' times.
        let offset = monotonic_to_epoch();
        let mut acks = Vec::new();
        let mut overruns = 0;
        for _ in 0..MAX_DATAGRAMS_PER_NEXT {
            let received = match sys::netlink_recv(self.socket.as_fd(), &mut self.buf) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if sys::is_overrun(&e) => {
                    overruns += 1;
                    continue;
                }
                Err(e) => return Err(io_error(CONNECTOR, e)),
            };
            // Any local process may send to the agent's port: only the
            // kernel's word counts.
            if received.sender != Some(0) {
                tracing::debug!(sender = ?received.sender, "ignoring a forged process event");
                continue;
            }
            let Some(datagram) = self.buf.get(..received.len) else {
                tracing::warn!(len = received.len, "skipping an oversized process event");
                continue;
            };
            match parse_datagram(datagram, offset, out) {
                Ok(found) => acks.extend(found),
                Err(e) => {
                    let error = e.at(PathBuf::from(CONNECTOR));
                    tracing::warn!(%error, "skipping a malformed process event");
                }
            }
        }
        if overruns > 0 {
            self.overruns += overruns;
            tracing::warn!(
                overruns = self.overruns,
                "process events were lost: the connector's receive buffer overflowed"
            );
        }
        Ok(acks)
    }
}

impl EventSource for Connector {
    fn mode(&self) -> WatchMode {
        WatchMode::Kernel
    }

    fn next(&mut self, timeout: Duration, out: &mut Vec<RawEvent>) -> Result<(), Error> {
        if !self.early.is_empty() {
            out.append(&mut self.early);
        } else if !self.wait(timeout)? {
            return Ok(());
        }
        // Acknowledgements of other subscribers' requests say nothing here.
        self.read_available(out).map(drop)
    }
}

impl Drop for Connector {
    /// Unsubscribes: older kernels count subscribers, and keep building an
    /// event for every fork and exit on the host until the count drops.
    fn drop(&mut self) {
        let request = mcast_message(McastOp::Ignore, 0, 0);
        if let Err(error) = sys::netlink_send(self.socket.as_fd(), &request) {
            tracing::debug!(%error, "cannot unsubscribe from the process connector");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::backend::linux::tests::KillOnDrop;

    const CAP_NET_ADMIN: u32 = 12;
    /// The inode numbers of the initial pid and user namespaces
    /// (`PROC_PID_INIT_INO`, `PROC_USER_INIT_INO`).
    const INIT_PID_NS: &str = "pid:[4026531836]";
    const INIT_USER_NS: &str = "user:[4026531837]";

    /// Why this test process cannot have the connector, or `None` if it
    /// must.
    fn no_connector_because() -> Option<String> {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let cap_eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .unwrap();
        if cap_eff & (1 << CAP_NET_ADMIN) == 0 {
            return Some("the test process lacks CAP_NET_ADMIN (not root)".to_owned());
        }
        for (link, init) in [("pid", INIT_PID_NS), ("user", INIT_USER_NS)] {
            let ns = std::fs::read_link(format!("/proc/self/ns/{link}")).unwrap();
            if ns != Path::new(init) {
                return Some(format!("the test runs in {}, not {init}", ns.display()));
            }
        }
        None
    }

    fn live() -> Linux {
        Linux::with_roots("/proc".into(), "/sys".into()).unwrap()
    }

    /// The connector, or `None` after saying on stderr why the test skips.
    /// Fails when the test process has what the connector needs.
    fn connector_or_skip(test: &str) -> Option<Box<dyn EventSource>> {
        match open(&live(), WatchMode::Kernel, Duration::from_secs(1)) {
            Ok(source) => Some(source),
            Err(error) => match no_connector_because() {
                Some(reason) => {
                    eprintln!("{test}: SKIPPED: {reason}; the connector said: {error}");
                    None
                }
                None => panic!("the connector failed with CAP_NET_ADMIN: {error}"),
            },
        }
    }

    /// Reads events until `done` says it has seen enough, for at most a
    /// minute (a bound for a stuck source, not a measurement).
    fn collect(source: &mut dyn EventSource, done: impl Fn(&[RawEvent]) -> bool) -> Vec<RawEvent> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut events = Vec::new();
        while !done(&events) && Instant::now() < deadline {
            source
                .next(Duration::from_millis(100), &mut events)
                .unwrap();
        }
        events
    }

    /// The pid and time of `event`.
    fn pid_time(event: &RawEvent) -> (u32, f64) {
        match event {
            RawEvent::Fork { pid, time, .. }
            | RawEvent::Exec { pid, time }
            | RawEvent::Exit { pid, time, .. } => (*pid, *time),
        }
    }

    /// The events of `pid`, in order.
    fn of(events: &[RawEvent], pid: u32) -> Vec<RawEvent> {
        events
            .iter()
            .filter(|e| pid_time(e).0 == pid)
            .cloned()
            .collect()
    }

    fn has_fork(events: &[RawEvent], pid: u32) -> bool {
        of(events, pid)
            .iter()
            .any(|e| matches!(e, RawEvent::Fork { .. }))
    }

    fn has_exit(events: &[RawEvent], pid: u32) -> bool {
        of(events, pid)
            .iter()
            .any(|e| matches!(e, RawEvent::Exit { .. }))
    }

    #[test]
    fn the_connector_reports_fork_exec_and_exit_codes() {
        let Some(mut source) = connector_or_skip("the_connector_reports_fork_exec_and_exit_codes")
        else {
            return;
        };
        assert_eq!(source.mode(), WatchMode::Kernel);
        let mut exit3 = KillOnDrop::spawn(Command::new("sh").args(["-c", "exit 3"]));
        let mut killed = KillOnDrop::spawn(Command::new("sleep").arg("600"));
        killed.kill().unwrap();
        assert_eq!(exit3.wait().unwrap().code(), Some(3));
        killed.wait().unwrap();
        let (a, b) = (exit3.id(), killed.id());

        let events = collect(&mut *source, |seen| has_exit(seen, a) && has_exit(seen, b));
        let me = std::process::id();
        let mut forked_at = Vec::new();
        for (pid, exit_code, signal) in [(a, Some(3), None), (b, None, Some(9))] {
            let mine = of(&events, pid);
            let kinds: Vec<_> = mine
                .iter()
                .map(|e| match e {
                    RawEvent::Fork { ppid, .. } => {
                        assert_eq!(*ppid, me, "{mine:?}");
                        "fork"
                    }
                    RawEvent::Exec { .. } => "exec",
                    RawEvent::Exit {
                        exit_code: code,
                        signal: sig,
                        ..
                    } => {
                        assert_eq!((*code, *sig), (exit_code, signal), "{mine:?}");
                        "exit"
                    }
                })
                .collect();
            assert_eq!(kinds, ["fork", "exec", "exit"], "pid {pid}: {mine:?}");
            // The kernel stamps each event as it happens: a process's
            // fork, exec and exit come in that order on its clock.
            let times: Vec<f64> = mine.iter().map(|e| pid_time(e).1).collect();
            assert!(times.is_sorted(), "pid {pid}: {mine:?}");
            forked_at.push(times[0]);
        }
        // The second child was forked after the first one's spawn
        // returned, and it exited after it was forked.
        assert!(forked_at[0] < forked_at[1], "{events:?}");
        let killed_exit = of(&events, b).last().map(|e| pid_time(e).1);
        assert!(killed_exit > Some(forked_at[1]), "{events:?}");
    }

    /// On a host with the connector, auto mode uses it; on one without,
    /// auto mode polls and says so.
    #[test]
    fn auto_picks_the_connector_where_it_can() {
        let auto = open(&live(), WatchMode::Auto, Duration::from_secs(1)).unwrap();
        match open(&live(), WatchMode::Kernel, Duration::from_secs(1)) {
            Ok(kernel) => {
                assert_eq!(kernel.mode(), WatchMode::Kernel);
                assert_eq!(auto.mode(), WatchMode::Kernel);
            }
            Err(error) => {
                let Some(reason) = no_connector_because() else {
                    panic!("the connector failed with CAP_NET_ADMIN: {error}");
                };
                eprintln!(
                    "auto_picks_the_connector_where_it_can: no connector here ({reason}; \
                     it said: {error}), so only the fallback is checked"
                );
                assert_eq!(auto.mode(), WatchMode::Poll);
            }
        }
    }

    /// The fallback, exercised on any host: a connector that cannot be
    /// opened makes auto mode poll, fails kernel mode with the connector's
    /// error, and is never asked for in poll mode.
    #[test]
    fn auto_falls_back_to_polling_when_the_connector_fails() {
        let refused = || {
            Err(io_error(
                CONNECTOR,
                io::Error::from(rustix::io::Errno::PERM),
            ))
        };
        let interval = Duration::from_secs(1);
        let auto = open_with(&live(), WatchMode::Auto, interval, refused).unwrap();
        assert_eq!(auto.mode(), WatchMode::Poll);
        let error = open_with(&live(), WatchMode::Kernel, interval, refused)
            .err()
            .expect("kernel mode without a connector must fail");
        assert!(error.to_string().contains(CONNECTOR), "{error}");
        let poll = open_with(&live(), WatchMode::Poll, interval, || {
            panic!("poll mode opened the connector")
        })
        .unwrap();
        assert_eq!(poll.mode(), WatchMode::Poll);
    }

    #[test]
    fn polling_sees_a_process_start_and_exit() {
        let mut source = open(&live(), WatchMode::Poll, Duration::from_millis(50)).unwrap();
        assert_eq!(source.mode(), WatchMode::Poll);
        let mut child = KillOnDrop::spawn(Command::new("sleep").arg("600"));
        let pid = child.id();
        let events = collect(&mut *source, |seen| has_fork(seen, pid));
        let me = std::process::id();
        assert!(
            matches!(of(&events, pid).as_slice(), [RawEvent::Fork { ppid, .. }] if *ppid == me),
            "a live child: started, not exited: {events:?}"
        );
        // Not reaped until the guard drops: the exit shows as the turn to
        // zombie.
        child.kill().unwrap();
        let events = collect(&mut *source, |seen| has_exit(seen, pid));
        assert!(
            matches!(
                of(&events, pid).as_slice(),
                [RawEvent::Exit {
                    exit_code: None,
                    signal: None,
                    ..
                }]
            ),
            "{events:?}"
        );
    }

    // === A fake procfs ===

    /// A procfs tree with `/proc/stat` and one `stat` per process.
    struct FakeProc {
        dir: tempfile::TempDir,
    }

    impl FakeProc {
        fn new() -> FakeProc {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("proc")).unwrap();
            std::fs::write(dir.path().join("proc/stat"), "btime 1795625947\n").unwrap();
            FakeProc { dir }
        }

        /// Writes the `stat` of `pid` (layout of proc(5); the other fields
        /// are those of a sleeping shell).
        fn set(&self, pid: u32, state: char, ppid: u32, start_ticks: u64) {
            let dir = self.dir.path().join(format!("proc/{pid}"));
            std::fs::create_dir_all(&dir).unwrap();
            let stat = format!(
                "{pid} (sh) {state} {ppid} {pid} {pid} 0 -1 4194560 100 0 0 0 1 1 0 0 20 0 1 0 \
                 {start_ticks} 2990080 407 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0\n"
            );
            std::fs::write(dir.join("stat"), stat).unwrap();
        }

        fn remove(&self, pid: u32) {
            std::fs::remove_dir_all(self.dir.path().join(format!("proc/{pid}"))).unwrap();
        }

        fn backend(&self) -> Linux {
            let root = self.dir.path();
            Linux::with_consts(root.join("proc"), root.join("sys"), 100, 4096).unwrap()
        }
    }

    /// The poller's next scan, due at once, without the events' times
    /// (which are the poller's, not the kernel's).
    fn poll(source: &mut dyn EventSource) -> Vec<RawEvent> {
        let mut events = Vec::new();
        source.next(Duration::from_secs(5), &mut events).unwrap();
        for event in &mut events {
            match event {
                RawEvent::Fork { time, .. }
                | RawEvent::Exec { time, .. }
                | RawEvent::Exit { time, .. } => *time = 0.0,
            }
        }
        events
    }

    fn fork(pid: u32, ppid: u32) -> RawEvent {
        RawEvent::Fork {
            pid,
            ppid,
            time: 0.0,
        }
    }

    fn exit(pid: u32) -> RawEvent {
        RawEvent::Exit {
            pid,
            exit_code: None,
            signal: None,
            time: 0.0,
        }
    }

    /// The table semantics are tested in `backend::poll`; this checks that
    /// the Linux poller reads parents, states and start times from the
    /// procfs root it was given.
    #[test]
    fn polling_reads_the_procfs_root_it_was_given() {
        let proc = FakeProc::new();
        proc.set(1, 'S', 0, 1);
        proc.set(10, 'S', 1, 100);
        proc.set(12, 'S', 1, 300);
        let mut source = open(&proc.backend(), WatchMode::Poll, Duration::ZERO).unwrap();
        assert_eq!(source.mode(), WatchMode::Poll);
        assert_eq!(poll(&mut *source), vec![]);

        // 10 exits and is reaped; 11 starts under 12 and turns zombie.
        proc.remove(10);
        proc.set(11, 'Z', 12, 400);
        assert_eq!(poll(&mut *source), vec![exit(10), fork(11, 12), exit(11)]);

        // Pid 12 is reused: only its start time tells.
        proc.set(12, 'S', 1, 700);
        assert_eq!(poll(&mut *source), vec![exit(12), fork(12, 1)]);
    }
}
