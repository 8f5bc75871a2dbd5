//! Process events from kqueue's `EVFILT_PROC` filter (`sys/event.h`),
//! merged with the polling diff.
//!
//! kqueue reports what happens to the processes it was told to watch:
//! `NOTE_EXIT` with the `wait(2)` status, `NOTE_EXEC`, `NOTE_FORK`, and,
//! where `NOTE_TRACK` exists (FreeBSD, OpenBSD, NetBSD; not macOS), a
//! `NOTE_CHILD` event for every new child, which is then watched too. It
//! cannot report processes nobody registered, so the polling diff finds
//! new processes; each source then reports some events the other
//! already did, and [`Merge`] drops those.

use std::collections::HashSet;

use super::wait_status;
use crate::backend::RawEvent;

// `NOTE_*` bits of `EVFILT_PROC`, alike on every BSD and macOS.

/// The process exited.
pub const NOTE_EXIT: u32 = 0x8000_0000;
/// The process forked.
pub const NOTE_FORK: u32 = 0x4000_0000;
/// The process exec'd.
pub const NOTE_EXEC: u32 = 0x2000_0000;
/// Follow the process's children (asked for, never reported).
pub const NOTE_TRACK: u32 = 0x0000_0001;
/// Following a child failed: the poll finds it instead.
pub const NOTE_TRACKERR: u32 = 0x0000_0002;
/// The event is about a tracked child; `data` is its parent.
pub const NOTE_CHILD: u32 = 0x0000_0004;

/// One `EVFILT_PROC` event as the kernel returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcEvent {
    /// `ident`: the process the event is about.
    pub pid: u32,
    /// `fflags`: which `NOTE_*` happened.
    pub fflags: u32,
    /// `data`: the wait status with `NOTE_EXIT` (where the OS reports
    /// it), the parent's pid with `NOTE_CHILD`.
    pub data: i64,
}

/// The merged view of kqueue's events and the polling diff's.
///
/// Each source may report a fork or an exit the other reported already:
/// the poll finds again what kqueue told since the last poll, and kqueue
/// may deliver, just after a poll, an exit that poll already saw. Both are
/// dropped, kqueue's word being kept where it came first. A pid reused
/// within one interval can lose an event to this: the window is one
/// polling interval after a pid wrapped around the whole pid space.
#[derive(Debug, Default)]
pub struct Merge {
    /// Whether `NOTE_EXIT` carries the exit status (not on macOS, which
    /// gives it only to the process's parent).
    pub exit_status: bool,
    /// Exits and forks kqueue reported since the last poll.
    kernel_exited: HashSet<u32>,
    kernel_forked: HashSet<u32>,
    /// Exits and forks the last poll reported.
    poll_exited: HashSet<u32>,
    poll_forked: HashSet<u32>,
}

impl Merge {
    /// A merge for an OS whose `NOTE_EXIT` carries the exit status or not.
    pub fn new(exit_status: bool) -> Merge {
        Merge {
            exit_status,
            ..Merge::default()
        }
    }

    /// Appends to `out` the events `event` stands for, at `time` (seconds
    /// since the epoch).
    pub fn kernel(&mut self, event: ProcEvent, time: f64, out: &mut Vec<RawEvent>) {
        let ProcEvent { pid, fflags, data } = event;
        if fflags & NOTE_CHILD != 0
            && !self.poll_forked.contains(&pid)
            && let Ok(ppid) = u32::try_from(data)
        {
            self.kernel_forked.insert(pid);
            out.push(RawEvent::Fork { pid, ppid, time });
        }
        if fflags & NOTE_EXEC != 0 {
            out.push(RawEvent::Exec { pid, time });
        }
        if fflags & NOTE_EXIT != 0 && !self.poll_exited.remove(&pid) {
            let (exit_code, signal) = if self.exit_status {
                wait_status(data)
            } else {
                (None, None)
            };
            self.kernel_exited.insert(pid);
            out.push(RawEvent::Exit {
                pid,
                exit_code,
                signal,
                time,
            });
        }
    }

    /// Filters one poll's events into `out`, dropping the forks and exits
    /// kqueue reported already; the pids of the other new processes are
    /// appended to `watch`, to be registered with kqueue.
    pub fn polled(&mut self, events: Vec<RawEvent>, out: &mut Vec<RawEvent>, watch: &mut Vec<u32>) {
        self.poll_exited.clear();
        self.poll_forked.clear();
        for event in events {
            match event {
                RawEvent::Fork { pid, .. } if self.kernel_forked.remove(&pid) => {}
                RawEvent::Fork { pid, .. } => {
                    self.poll_forked.insert(pid);
                    watch.push(pid);
                    out.push(event);
                }
                RawEvent::Exit { pid, .. } if self.kernel_exited.remove(&pid) => {}
                RawEvent::Exit { pid, .. } => {
                    self.poll_exited.insert(pid);
                    out.push(event);
                }
                other => out.push(other),
            }
        }
        // What the poll did not confirm (a process born and gone within
        // one interval, in no table) would otherwise stay here.
        self.kernel_exited.clear();
        self.kernel_forked.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn without_time(events: &[RawEvent]) -> Vec<RawEvent> {
        events
            .iter()
            .map(|e| match *e {
                RawEvent::Fork { pid, ppid, .. } => RawEvent::Fork {
                    pid,
                    ppid,
                    time: 0.0,
                },
                RawEvent::Exec { pid, .. } => RawEvent::Exec { pid, time: 0.0 },
                RawEvent::Exit {
                    pid,
                    exit_code,
                    signal,
                    ..
                } => exit(pid, exit_code, signal),
            })
            .collect()
    }

    fn exit(pid: u32, exit_code: Option<i32>, signal: Option<i32>) -> RawEvent {
        RawEvent::Exit {
            pid,
            exit_code,
            signal,
            time: 0.0,
        }
    }

    /// Feeds `merge` one kqueue event.
    fn note(
        merge: &mut Merge,
        pid: u32,
        fflags: u32,
        data: i64,
        time: f64,
        out: &mut Vec<RawEvent>,
    ) {
        merge.kernel(ProcEvent { pid, fflags, data }, time, out);
    }

    #[test]
    fn kernel_events_carry_codes() {
        let mut merge = Merge::new(true);
        let mut out = Vec::new();
        // A tracked child 501 of 500, which execs and exits with 3.
        note(&mut merge, 501, NOTE_CHILD, 500, 1.0, &mut out);
        note(&mut merge, 501, NOTE_EXEC, 0, 1.0, &mut out);
        note(&mut merge, 501, NOTE_EXIT, 0x0300, 1.0, &mut out);
        // 502 killed by SIGKILL.
        note(&mut merge, 502, NOTE_EXIT, 9, 1.0, &mut out);
        assert_eq!(
            without_time(&out),
            [
                RawEvent::Fork {
                    pid: 501,
                    ppid: 500,
                    time: 0.0
                },
                RawEvent::Exec {
                    pid: 501,
                    time: 0.0
                },
                exit(501, Some(3), None),
                exit(502, None, Some(9)),
            ]
        );
    }

    #[test]
    fn without_exit_status_codes_are_unknown() {
        let mut merge = Merge::new(false);
        let mut out = Vec::new();
        note(&mut merge, 7, NOTE_EXIT, 0, 1.0, &mut out);
        assert_eq!(without_time(&out), [exit(7, None, None)]);
    }

    #[test]
    fn polls_drop_what_kqueue_told() {
        let mut merge = Merge::new(true);
        let mut out = Vec::new();
        note(&mut merge, 10, NOTE_EXIT, 0, 1.0, &mut out);
        note(&mut merge, 11, NOTE_CHILD, 1, 1.0, &mut out);
        out.clear();
        let polled = vec![
            exit(10, None, None),
            exit(12, None, None),
            RawEvent::Fork {
                pid: 11,
                ppid: 1,
                time: 2.0,
            },
            RawEvent::Fork {
                pid: 13,
                ppid: 1,
                time: 2.0,
            },
        ];
        let mut watch = Vec::new();
        merge.polled(polled, &mut out, &mut watch);
        // 10's exit and 11's fork were told; 12 and 13 are news, and 13
        // is to be watched from now on.
        assert_eq!(
            without_time(&out),
            [
                exit(12, None, None),
                RawEvent::Fork {
                    pid: 13,
                    ppid: 1,
                    time: 0.0
                }
            ]
        );
        assert_eq!(watch, [13]);
        // The next poll starts clean: a reused pid 10 exiting is news.
        out.clear();
        merge.polled(vec![exit(10, None, None)], &mut out, &mut watch);
        assert_eq!(without_time(&out), [exit(10, None, None)]);
        // kqueue's word on that exit, read after the poll, is not news.
        out.clear();
        note(&mut merge, 10, NOTE_EXIT, 0, 3.0, &mut out);
        assert!(out.is_empty(), "{out:?}");
        // Nor is a tracked child the poll found first.
        merge.polled(
            vec![RawEvent::Fork {
                pid: 14,
                ppid: 1,
                time: 4.0,
            }],
            &mut out,
            &mut watch,
        );
        out.clear();
        note(&mut merge, 14, NOTE_CHILD, 1, 4.0, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }
}
