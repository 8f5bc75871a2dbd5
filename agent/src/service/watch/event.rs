//! What the collector publishes and the sampler measures, before
//! conversion to `hostscope.v1`: a leaf that `service::convert` reads
//! without depending on the rest of the watch.

use crate::backend::ProcessInfo;

/// A process lifecycle event as the collector publishes it to every
/// watcher, before conversion to `hostscope.v1`.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// When it happened, in seconds since the Unix epoch.
    pub time: f64,
    /// What is known of the process: the pid always; ppid, name, cmdline,
    /// username, uids and create_time where they could be read. Watchers'
    /// filters match on it.
    pub process: ProcessInfo,
}

/// What happened to a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// It was created (fork).
    Started,
    /// It replaced its program (exec).
    Exec,
    /// It exited, with the code it passed to exit(2) or the signal that
    /// ended it, where the event source tells.
    Exited {
        /// The exit status.
        code: Option<i32>,
        /// The ending signal.
        signal: Option<i32>,
    },
    /// It exited and its parent has not collected it.
    Zombie,
    /// Not an event of one process: the source lost events it cannot name
    /// (the kernel's buffer overflowed), at least this many. Every watcher
    /// gets it, as LAGGED.
    Lost {
        /// The fewest events lost.
        at_least: u64,
    },
}

/// A process's rates over one interval; a rate whose counters could not
/// be read at both ends is absent.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    /// CPU use, psutil's meaning: 100 is one full core.
    pub cpu_percent: Option<f64>,
    /// Storage reads, in bytes per second.
    pub read_bytes_per_sec: Option<f64>,
    /// Storage writes, in bytes per second.
    pub write_bytes_per_sec: Option<f64>,
}
