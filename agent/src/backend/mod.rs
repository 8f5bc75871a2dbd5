//! What the kernel knows, as plain Rust values.
//!
//! A backend reads one OS family's records (Linux procfs and netlink/ioctl,
//! BSD sysctl) and answers in the types of this module. Backends never see
//! tonic or generated protobuf types: the service layer converts.
//!
//! The contract is the [`Backend`] trait, so a platform that drifts from it
//! fails to compile. Pure text parsers live in [`parse`], apart from the
//! syscalls, and are tested on every machine.

use std::{ops::ControlFlow, path::PathBuf, time::Duration};

pub mod decode;
pub mod files;
pub mod filter;
pub mod glob;
pub mod parse;
#[cfg(unix)]
mod passwd;
pub mod poll;
pub mod socket;
pub mod system;

// The generic BSD backend builds on any host for its tests; its calls
// to a real kernel only on the BSDs and macOS.
#[cfg(any(
    test,
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "macos"
))]
mod bsd;
#[cfg(any(
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "macos"
))]
// The one module with `unsafe`: kernel interfaces of the BSDs and macOS
// that neither rustix nor nix wraps (see its header).
#[allow(unsafe_code)]
mod bsd_sys;
#[cfg(target_os = "freebsd")]
pub mod freebsd;
#[cfg(target_os = "linux")]
pub mod linux;
#[cfg(target_os = "macos")]
pub mod macos;
#[cfg(target_os = "netbsd")]
pub mod netbsd;
#[cfg(target_os = "openbsd")]
pub mod openbsd;
#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "macos"
)))]
pub mod unsupported;

pub use files::{FileKind, FilesQuery, OpenFile};
pub use filter::Filter;
pub use system::{DiskIo, DiskUsage, Partition, SystemField, SystemFields, SystemInfo};

/// The backend for the OS this agent was built for, reading procfs at
/// `procfs` and sysfs at `sysfs` where the platform has them.
#[cfg(target_os = "linux")]
pub fn native(procfs: PathBuf, sysfs: PathBuf) -> Result<Box<dyn Backend>, Error> {
    Ok(Box::new(linux::Linux::with_roots(procfs, sysfs)?))
}

/// The backend for the OS this agent was built for.
#[cfg(not(target_os = "linux"))]
pub fn native(_procfs: PathBuf, _sysfs: PathBuf) -> Result<Box<dyn Backend>, Error> {
    #[cfg(target_os = "freebsd")]
    let backend = freebsd::backend()?;
    #[cfg(target_os = "openbsd")]
    let backend = openbsd::backend()?;
    #[cfg(target_os = "netbsd")]
    let backend = netbsd::backend()?;
    #[cfg(target_os = "macos")]
    let backend = macos::backend()?;
    #[cfg(not(any(
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "macos"
    )))]
    let backend = unsupported::Unsupported;
    Ok(Box::new(backend))
}

/// One OS family's view of processes and network interfaces.
///
/// Every method is blocking: the service calls them from
/// `spawn_blocking`.
pub trait Backend: Send + Sync + 'static {
    /// Facts about the host, and which fields this backend can supply.
    fn host(&self) -> Result<HostInfo, Error>;

    /// Calls `visit` for every process, zombies included, with `fields`
    /// read. Processes that exit during the scan are skipped; fields that
    /// cannot be read are named in [`ProcessInfo::field_errors`]. Stops
    /// early when `visit` breaks.
    fn for_each_process(
        &self,
        fields: FieldSet,
        visit: &mut dyn FnMut(ProcessInfo) -> ControlFlow<()>,
    ) -> Result<(), Error>;

    /// One process with `fields` read; [`Error::NoSuchProcess`] if there is
    /// no such pid. A zombie is returned with status [`Status::Zombie`].
    fn process(&self, pid: u32, fields: FieldSet) -> Result<ProcessInfo, Error>;

    /// Calls `visit` with each of `pids` read as [`Backend::process`] reads
    /// one (its error included), in order; stops early when `visit` breaks.
    /// A backend may share its setup between the pids.
    fn processes(
        &self,
        pids: &[u32],
        fields: FieldSet,
        visit: &mut dyn FnMut(u32, Result<ProcessInfo, Error>) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        for &pid in pids {
            if visit(pid, self.process(pid, fields)).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Whether `pid` exists, zombies included.
    fn pid_exists(&self, pid: u32) -> Result<bool, Error>;

    /// Every network interface with addresses, link state and counters.
    fn net_interfaces(&self) -> Result<Vec<NetInterface>, Error>;

    /// Sends signal number `signal` to `pid`. Refuses with
    /// [`Error::ZombieProcess`] when the process is a zombie (only its
    /// parent can act), and with [`Error::PidReused`] when
    /// `expected_create_time` is given and the pid's process started at
    /// another time. The check and the signal concern the same process even
    /// if the pid is reused in between.
    fn signal(&self, pid: u32, signal: i32, expected_create_time: Option<f64>)
    -> Result<(), Error>;

    /// A source of process lifecycle events in `mode`. With
    /// [`WatchMode::Auto`], the kernel's own event stream where the agent
    /// may open it, else polling. `poll_interval` paces polling.
    fn events(
        &self,
        mode: WatchMode,
        poll_interval: Duration,
    ) -> Result<Box<dyn EventSource>, Error>;

    /// The host's figures in `fields` (never the measured ones, see
    /// [`SystemField::is_measured`]); `cgroup` names the cgroup v2 path for
    /// [`SystemField::Cgroup`], `None` for the agent's own. Nothing fails
    /// the whole call: a figure that cannot be read is named in
    /// [`SystemInfo::field_errors`].
    fn system(&self, fields: SystemFields, cgroup: Option<&str>) -> SystemInfo {
        let _ = cgroup;
        let mut info = SystemInfo::default();
        info.unsupported(fields, SystemFields::EMPTY);
        info
    }

    /// The mounted file systems; with `all`, pseudo and duplicate ones too
    /// (psutil's `disk_partitions(all)`).
    fn disk_partitions(&self, all: bool) -> Result<Vec<Partition>, Error> {
        let _ = all;
        Err(Error::Unsupported {
            what: "listing mounted file systems",
        })
    }

    /// The size of the file system mounted at `mountpoint` (statvfs). May
    /// block for as long as the file system takes to answer (a dead NFS
    /// server: forever): callers bound it.
    fn disk_usage(&self, mountpoint: &str) -> Result<DiskUsage, Error> {
        let _ = mountpoint;
        Err(Error::Unsupported {
            what: "file system usage",
        })
    }

    /// I/O counters of every disk and partition.
    fn disk_io_counters(&self) -> Result<Vec<DiskIo>, Error> {
        Err(Error::Unsupported {
            what: "disk I/O counters",
        })
    }

    /// The open descriptors of `pid` that `query` keeps (its `pids`
    /// aside), by ascending number, skipping those numbered `after` or
    /// below, each handed to `visit`, which may stop early. A descriptor
    /// closed during the read is skipped. [`Error::NoSuchProcess`] when
    /// the process is gone; [`Error::AccessDenied`] (or, for a zombie,
    /// [`Error::ZombieProcess`]) when its descriptors cannot be read.
    fn open_files(
        &self,
        pid: u32,
        query: &FilesQuery,
        after: Option<u32>,
        visit: &mut dyn FnMut(OpenFile) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        let _ = (pid, query, after, visit);
        Err(Error::Unsupported {
            what: "listing open files",
        })
    }

    /// The sockets `query` asks for (psutil's `net_connections`), with
    /// their holders when it asks for pids. Processes whose descriptors
    /// cannot be read are named in [`socket::SocketListing::process_errors`].
    fn connections(&self, query: &socket::SocketQuery) -> Result<socket::SocketListing, Error> {
        let _ = query;
        Err(Error::Unsupported {
            what: "listing sockets",
        })
    }
}

// === Process events ===

/// Where process events come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WatchMode {
    /// The kernel's event stream if available, else polling.
    Auto,
    /// The kernel's own events (Linux: the netlink process connector):
    /// every fork, exec and exit, however short-lived the process.
    Kernel,
    /// Diffing the process table every interval: misses processes that
    /// live less than an interval, and knows no exit codes.
    Poll,
}

/// A process lifecycle event, as the kernel (or a table diff) reports it.
/// Only whole processes: thread creation and exit are not reported.
#[derive(Clone, Debug, PartialEq)]
pub enum RawEvent {
    /// `pid` was created by `ppid`.
    Fork {
        /// The new process.
        pid: u32,
        /// The process that created it.
        ppid: u32,
        /// Seconds since the Unix epoch.
        time: f64,
    },
    /// `pid` replaced its program image.
    Exec {
        /// The process that called exec.
        pid: u32,
        /// Seconds since the Unix epoch.
        time: f64,
    },
    /// `pid` exited (it may now be a zombie until its parent reaps it).
    Exit {
        /// The process that exited.
        pid: u32,
        /// The code passed to exit(2), where the source tells (polling
        /// does not).
        exit_code: Option<i32>,
        /// The signal that ended it, where the source tells.
        signal: Option<i32>,
        /// Seconds since the Unix epoch.
        time: f64,
    },
}

/// A blocking stream of [`RawEvent`]s. `time` fields are seconds since
/// the Unix epoch, when the event happened.
pub trait EventSource: Send {
    /// Which kind of source this is ([`WatchMode::Kernel`] or
    /// [`WatchMode::Poll`]).
    fn mode(&self) -> WatchMode;

    /// Waits up to `timeout` for events and appends them to `out`; returns
    /// with nothing appended when none came, so the caller can check
    /// whether anyone still listens.
    fn next(&mut self, timeout: Duration, out: &mut Vec<RawEvent>) -> Result<(), Error>;

    /// How many times since the last call the source lost events it cannot
    /// name (Linux: the connector's receive buffer overflowed), each time
    /// at least one; 0 for a source that cannot lose events.
    fn take_lost(&mut self) -> u64 {
        0
    }
}

// === Errors ===

/// Why a backend call failed. Each variant says what it was reading.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No process has this pid (any more).
    #[error("no such process (pid {pid})")]
    NoSuchProcess {
        /// The pid asked for.
        pid: u32,
    },
    /// The process has exited and waits for its parent to reap it, so
    /// only the parent can act on it.
    #[error("process {pid} is a zombie")]
    ZombieProcess {
        /// The zombie.
        pid: u32,
        /// Its parent, the process to act on instead, where known.
        ppid: Option<u32>,
        /// Its name, where known.
        name: Option<String>,
    },
    /// The agent may not read or do this.
    #[error("access denied reading {}", path.display())]
    AccessDenied {
        /// The process concerned, if one is.
        pid: Option<u32>,
        /// What was refused: a file, or a description of the act.
        path: PathBuf,
    },
    /// The pid now names another process than the caller meant.
    #[error(
        "pid {pid} now belongs to another process: it started at {actual}, \
         not at the expected {expected} (seconds since the epoch)"
    )]
    PidReused {
        /// The pid asked for.
        pid: u32,
        /// The start time the caller knew, in seconds since the epoch.
        expected: f64,
        /// The start time of the process with the pid now.
        actual: f64,
    },
    /// This platform or backend cannot answer.
    #[error("{what} is not supported on this platform")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
    },
    /// A system call or a read failed.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file read, or the call made (such as `pidfd_open(2) of pid
        /// 42`).
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A kernel record did not have the expected form.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file the record came from.
        path: PathBuf,
        /// 1-based line of the file, 0 when the file is one record.
        line: usize,
        /// What was wrong, quoting the offending text.
        message: String,
    },
}

impl Error {
    /// The API's error kind, where the error is one of them.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Error::NoSuchProcess { .. } => Some(ErrorKind::NoSuchProcess),
            Error::ZombieProcess { .. } => Some(ErrorKind::ZombieProcess),
            Error::AccessDenied { .. } => Some(ErrorKind::AccessDenied),
            Error::Unsupported { .. } => Some(ErrorKind::Unsupported),
            Error::PidReused { .. } => Some(ErrorKind::PidReused),
            Error::Io { .. } | Error::Parse { .. } => None,
        }
    }
}

/// The API's error kinds (DESIGN.md: zombie is a refinement of not-found).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No process has the pid.
    NoSuchProcess,
    /// The process is a zombie: a refinement of [`ErrorKind::NoSuchProcess`].
    ZombieProcess,
    /// The agent may not read or do this.
    AccessDenied,
    /// The platform cannot supply this.
    Unsupported,
    /// The call ran out of time.
    Timeout,
    /// The caller's view of a process is stale: its pid was reused.
    PidReused,
}

// === Processes ===

/// A field of [`ProcessInfo`] that a caller may select. `pid` is always
/// present and has no entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Field {
    /// [`ProcessInfo::ppid`].
    Ppid,
    /// [`ProcessInfo::name`].
    Name,
    /// [`ProcessInfo::exe`].
    Exe,
    /// [`ProcessInfo::cmdline`].
    Cmdline,
    /// [`ProcessInfo::status`].
    Status,
    /// [`ProcessInfo::username`].
    Username,
    /// [`ProcessInfo::uids`].
    Uids,
    /// [`ProcessInfo::gids`].
    Gids,
    /// [`ProcessInfo::terminal`].
    Terminal,
    /// [`ProcessInfo::cwd`].
    Cwd,
    /// [`ProcessInfo::nice`].
    Nice,
    /// [`ProcessInfo::create_time`].
    CreateTime,
    /// [`ProcessInfo::num_threads`].
    NumThreads,
    /// [`ProcessInfo::num_fds`].
    NumFds,
    /// [`ProcessInfo::num_ctx_switches`].
    NumCtxSwitches,
    /// [`ProcessInfo::cpu_times`].
    CpuTimes,
    /// [`ProcessInfo::memory_info`].
    MemoryInfo,
    /// [`ProcessInfo::io_counters`].
    IoCounters,
    /// [`ProcessInfo::environ`].
    Environ,
    /// [`ProcessInfo::cpu_percent`]: worked out by the service from two
    /// readings of `CpuTimes`; a backend never sees it.
    CpuPercent,
    /// [`ProcessInfo::memory_percent`]: worked out by the service from
    /// `MemoryInfo`; a backend never sees it.
    MemoryPercent,
    /// [`ProcessInfo::cgroup`].
    Cgroup,
    /// [`ProcessInfo::memory_full_info`].
    MemoryFullInfo,
    /// [`ProcessInfo::memory_maps`], one entry per path.
    MemoryMaps,
    /// [`ProcessInfo::threads`].
    Threads,
    /// [`ProcessInfo::rlimits`].
    Rlimits,
    /// [`ProcessInfo::cpu_affinity`].
    CpuAffinity,
    /// [`ProcessInfo::cpu_num`].
    CpuNum,
    /// [`ProcessInfo::ionice`].
    Ionice,
    /// [`ProcessInfo::page_faults`].
    PageFaults,
    /// [`ProcessInfo::memory_maps`], one entry per mapping with its
    /// address and permissions. The wire names it as `MemoryMaps` and tells
    /// it apart by the request's `memory_maps_ungrouped`; a backend given
    /// both reads this one.
    MemoryMapsUngrouped,
}

impl Field {
    /// Every field, in declaration order.
    pub const ALL: [Field; 31] = [
        Field::Ppid,
        Field::Name,
        Field::Exe,
        Field::Cmdline,
        Field::Status,
        Field::Username,
        Field::Uids,
        Field::Gids,
        Field::Terminal,
        Field::Cwd,
        Field::Nice,
        Field::CreateTime,
        Field::NumThreads,
        Field::NumFds,
        Field::NumCtxSwitches,
        Field::CpuTimes,
        Field::MemoryInfo,
        Field::IoCounters,
        Field::Environ,
        Field::CpuPercent,
        Field::MemoryPercent,
        Field::Cgroup,
        Field::MemoryFullInfo,
        Field::MemoryMaps,
        Field::Threads,
        Field::Rlimits,
        Field::CpuAffinity,
        Field::CpuNum,
        Field::Ionice,
        Field::PageFaults,
        Field::MemoryMapsUngrouped,
    ];

    /// The fields only the Linux backend reads (psutil's Process methods
    /// beyond the portable ones).
    pub const LINUX_ONLY: [Field; 9] = [
        Field::MemoryFullInfo,
        Field::MemoryMaps,
        Field::Threads,
        Field::Rlimits,
        Field::CpuAffinity,
        Field::CpuNum,
        Field::Ionice,
        Field::PageFaults,
        Field::MemoryMapsUngrouped,
    ];

    /// Fields whose read costs a walk of the whole address space
    /// (`smaps`): "every field" leaves them out; they are read when asked
    /// for by name.
    pub const COSTLY: [Field; 3] = [
        Field::MemoryFullInfo,
        Field::MemoryMaps,
        Field::MemoryMapsUngrouped,
    ];

    /// Every field but [`Field::LINUX_ONLY`]: what the BSD and macOS
    /// backends start from.
    pub fn portable() -> FieldSet {
        let mut set = FieldSet::all();
        for f in Field::LINUX_ONLY {
            set.remove(f);
        }
        set
    }

    /// Whether the service works the field out from others rather than a
    /// backend reading it.
    pub fn is_derived(self) -> bool {
        matches!(self, Field::CpuPercent | Field::MemoryPercent)
    }
}

impl SetMember for Field {
    const MEMBERS: &'static [Self] = &Field::ALL;
    fn index(self) -> u8 {
        self as u8
    }
}

/// A set of [`Field`]s.
pub type FieldSet = Set<Field>;

/// An enum of at most 32 variants that a [`Set`] can hold.
pub trait SetMember: Copy + std::fmt::Debug + 'static {
    /// Every variant, in declaration order.
    const MEMBERS: &'static [Self];
    /// The variant's place in `MEMBERS`, below 32.
    fn index(self) -> u8;
}

/// A set of fields, as a bit set.
pub struct Set<F>(u32, std::marker::PhantomData<F>);

impl<F> Clone for Set<F> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<F> Copy for Set<F> {}
impl<F> PartialEq for Set<F> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<F> Eq for Set<F> {}
impl<F> std::hash::Hash for Set<F> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}
impl<F> Default for Set<F> {
    fn default() -> Self {
        Set::EMPTY
    }
}

impl<F> Set<F> {
    /// No field (for processes: only pids).
    pub const EMPTY: Set<F> = Set(0, std::marker::PhantomData);

    /// Whether the set has no field.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The fields in either set.
    pub fn union(self, other: Set<F>) -> Set<F> {
        Set(self.0 | other.0, std::marker::PhantomData)
    }
}

impl<F: SetMember> Set<F> {
    /// Every field.
    pub fn all() -> Set<F> {
        F::MEMBERS.iter().copied().collect()
    }

    /// Whether `field` is in the set.
    pub fn contains(self, field: F) -> bool {
        self.0 & Self::bit(field) != 0
    }

    /// Whether any of `fields` is in the set.
    pub fn any(self, fields: &[F]) -> bool {
        fields.iter().any(|f| self.contains(*f))
    }

    /// Adds `field`.
    pub fn insert(&mut self, field: F) {
        self.0 |= Self::bit(field);
    }

    /// Takes `field` out.
    pub fn remove(&mut self, field: F) {
        self.0 &= !Self::bit(field);
    }

    /// The fields in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = F> {
        F::MEMBERS
            .iter()
            .copied()
            .filter(move |f| self.contains(*f))
    }

    fn bit(field: F) -> u32 {
        1 << field.index()
    }
}

impl<F: SetMember> FromIterator<F> for Set<F> {
    fn from_iter<I: IntoIterator<Item = F>>(iter: I) -> Self {
        let mut set = Set::EMPTY;
        for f in iter {
            set.insert(f);
        }
        set
    }
}

impl<F: SetMember> std::fmt::Debug for Set<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Process states, as psutil names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// On a CPU or ready to run (Linux `R`).
    Running,
    /// Waiting, interruptibly (Linux `S`).
    Sleeping,
    /// Waiting uninterruptibly, usually for I/O (Linux `D`).
    DiskSleep,
    /// Stopped by a signal (Linux `T`).
    Stopped,
    /// Stopped by a debugger (Linux `t`).
    TracingStop,
    /// Exited, not yet reaped by its parent (Linux `Z`).
    Zombie,
    /// Being torn down (Linux `X`, and `x` on kernels 2.6.33 to 3.13).
    Dead,
    /// Woken by a fatal signal only (Linux `K`, kernels 2.6.33 to 3.13).
    WakeKill,
    /// Waking up (Linux `W`, kernels 2.6.33 to 3.13).
    Waking,
    /// A parked kernel thread (Linux `P`).
    Parked,
    /// An idle kernel thread (Linux `I`).
    Idle,
    /// Blocked on a lock (FreeBSD).
    Locked,
    /// Waiting for an interrupt (FreeBSD).
    Waiting,
    /// Suspended (NetBSD).
    Suspended,
}

/// Real, effective and saved ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ids {
    /// Who started the process.
    pub real: u32,
    /// What permission checks use.
    pub effective: u32,
    /// What the process may switch back to.
    pub saved: u32,
}

/// Context switches since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtxSwitches {
    /// Times the process gave up the CPU (to wait).
    pub voluntary: u64,
    /// Times the scheduler took the CPU away.
    pub involuntary: u64,
}

/// CPU time in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTimes {
    /// In user mode.
    pub user: f64,
    /// In the kernel on the process's behalf.
    pub system: f64,
    /// User time of reaped children (on OpenBSD and NetBSD their user and
    /// system time in one sum); `None` where the kernel keeps none.
    pub children_user: Option<f64>,
    /// System time of reaped children; `None` where the kernel does not
    /// keep it apart.
    pub children_system: Option<f64>,
    /// Waiting for block I/O (Linux delay accounting; `None` elsewhere).
    pub iowait: Option<f64>,
}

/// Memory in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryInfo {
    /// Resident set size: memory in RAM.
    pub rss: u64,
    /// Virtual memory size: everything mapped.
    pub vms: u64,
    /// Resident memory that may be shared with other processes (Linux).
    pub shared: Option<u64>,
    /// Program code; `None` where the kernel does not say.
    pub text: Option<u64>,
    /// Data and stack; `None` where the kernel does not say.
    pub data: Option<u64>,
}

/// The process's I/O since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoCounters {
    /// Read calls.
    pub read_count: u64,
    /// Write calls.
    pub write_count: u64,
    /// Bytes fetched from storage.
    pub read_bytes: u64,
    /// Bytes sent to storage.
    pub write_bytes: u64,
    /// Bytes passed to read(2)-like calls, cached or not (Linux `rchar`).
    pub read_chars: Option<u64>,
    /// Bytes passed to write(2)-like calls (Linux `wchar`).
    pub write_chars: Option<u64>,
}

/// Memory in bytes beyond [`MemoryInfo`] (psutil's `memory_full_info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryFullInfo {
    /// Unique set size: private pages, freed if the process exited.
    pub uss: u64,
    /// Proportional set size: resident pages, shared ones divided among
    /// their sharers.
    pub pss: u64,
    /// Swapped out.
    pub swap: u64,
}

/// One mapping, or every mapping of one path (psutil's `memory_maps`), in
/// bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryMap {
    /// The mapped file, or "[heap]", "[stack]", "[anon]"...
    pub path: String,
    /// "7f0000000000-7f0000021000"; empty when grouped.
    pub addr: String,
    /// "r-xp"; empty when grouped.
    pub perms: String,
    /// Resident.
    pub rss: u64,
    /// Mapped.
    pub size: u64,
    /// Proportional set size.
    pub pss: u64,
    /// Shared, unmodified.
    pub shared_clean: u64,
    /// Shared, modified.
    pub shared_dirty: u64,
    /// Private, unmodified.
    pub private_clean: u64,
    /// Private, modified.
    pub private_dirty: u64,
    /// Marked accessed.
    pub referenced: u64,
    /// Not backed by a file.
    pub anonymous: u64,
    /// Swapped out.
    pub swap: u64,
}

impl MemoryMap {
    /// Adds `other`'s sizes to this one's (psutil's grouping by path).
    pub fn add(&mut self, other: &MemoryMap) {
        self.rss += other.rss;
        self.size += other.size;
        self.pss += other.pss;
        self.shared_clean += other.shared_clean;
        self.shared_dirty += other.shared_dirty;
        self.private_clean += other.private_clean;
        self.private_dirty += other.private_dirty;
        self.referenced += other.referenced;
        self.anonymous += other.anonymous;
        self.swap += other.swap;
    }
}

/// A thread and its CPU time in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Thread {
    /// The thread id.
    pub id: u32,
    /// In user mode.
    pub user_time: f64,
    /// In the kernel.
    pub system_time: f64,
}

/// A resource limit; `None` is unlimited (RLIM_INFINITY).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimit {
    /// psutil's `RLIMIT_*` name without the prefix, lower case: "nofile".
    pub resource: &'static str,
    /// The limit enforced.
    pub soft: Option<u64>,
    /// The ceiling the soft limit may be raised to.
    pub hard: Option<u64>,
}

/// I/O scheduling classes (psutil's `IOPRIO_CLASS_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IoNiceClass {
    /// No class set: the kernel derives one from the nice value.
    None,
    /// Real time.
    Rt,
    /// Best effort.
    Be,
    /// Only when no one else wants the disk.
    Idle,
}

/// An I/O scheduling class and the priority within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoNice {
    /// The class.
    pub class: IoNiceClass,
    /// The priority within the class, 0 (highest) to 7.
    pub value: u32,
}

/// Page faults since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageFaults {
    /// Served without reading from disk.
    pub minor: u64,
    /// Needed a read from disk.
    pub major: u64,
}

/// One process. A field is `Some` when it was requested and read; a
/// requested field that could not be read is `None` and named in
/// `field_errors`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessInfo {
    /// The process id; always present.
    pub pid: u32,
    /// The parent's pid; 0 for the kernel's own first processes.
    pub ppid: Option<u32>,
    /// The short name, as psutil gives it (widened from the command line
    /// where the kernel truncated it).
    pub name: Option<String>,
    /// The executable's path. Empty for kernel threads.
    pub exe: Option<String>,
    /// The arguments. Empty for kernel threads and zombies.
    pub cmdline: Option<Vec<String>>,
    /// The scheduler state.
    pub status: Option<Status>,
    /// The login name of the real user, or the uid in decimal.
    pub username: Option<String>,
    /// User ids.
    pub uids: Option<Ids>,
    /// Group ids.
    pub gids: Option<Ids>,
    /// The controlling terminal's path. `Some(None)`: read, and the
    /// process has none.
    pub terminal: Option<Option<String>>,
    /// The working directory.
    pub cwd: Option<String>,
    /// The nice value, -20 (first served) to 19.
    pub nice: Option<i32>,
    /// Seconds since the Unix epoch.
    pub create_time: Option<f64>,
    /// Threads in the process.
    pub num_threads: Option<u32>,
    /// Open file descriptors.
    pub num_fds: Option<u32>,
    /// Context switches.
    pub num_ctx_switches: Option<CtxSwitches>,
    /// CPU time in seconds.
    pub cpu_times: Option<CpuTimes>,
    /// Memory in bytes.
    pub memory_info: Option<MemoryInfo>,
    /// I/O counters.
    pub io_counters: Option<IoCounters>,
    /// The environment, as (name, value) pairs; read only where the
    /// agent's configuration allows, since it holds secrets.
    pub environ: Option<Vec<(String, String)>>,
    /// CPU use over an interval, in percent of one CPU.
    pub cpu_percent: Option<f64>,
    /// Resident memory in percent of physical memory.
    pub memory_percent: Option<f64>,
    /// The cgroup v2 path.
    pub cgroup: Option<String>,
    /// Unique, proportional and swapped memory.
    pub memory_full_info: Option<MemoryFullInfo>,
    /// Mappings, grouped by path or one per mapping as the field set says.
    pub memory_maps: Option<Vec<MemoryMap>>,
    /// Every thread with its CPU times.
    pub threads: Option<Vec<Thread>>,
    /// Every resource limit.
    pub rlimits: Option<Vec<Rlimit>>,
    /// The CPUs the process may run on.
    pub cpu_affinity: Option<Vec<u32>>,
    /// The CPU the process last ran on.
    pub cpu_num: Option<u32>,
    /// The I/O scheduling class and priority.
    pub ionice: Option<IoNice>,
    /// Page faults.
    pub page_faults: Option<PageFaults>,
    /// The requested fields that could not be read, and why.
    pub field_errors: Vec<(Field, ErrorKind)>,
}

impl ProcessInfo {
    /// An empty record for `pid`.
    pub fn new(pid: u32) -> ProcessInfo {
        ProcessInfo {
            pid,
            ..ProcessInfo::default()
        }
    }

    /// The fields [`ProcessInfo::check_signal_target`] needs.
    pub(crate) const SIGNAL_FIELDS: [Field; 4] =
        [Field::Ppid, Field::Name, Field::Status, Field::CreateTime];

    /// Whether this process, read with [`ProcessInfo::SIGNAL_FIELDS`], may
    /// be signalled as the one a caller saw: not a zombie (only its parent
    /// can act), and started at `expected_create_time` when given.
    pub(crate) fn check_signal_target(
        self,
        expected_create_time: Option<f64>,
    ) -> Result<(), Error> {
        let pid = self.pid;
        if self.status == Some(Status::Zombie) {
            return Err(Error::ZombieProcess {
                pid,
                ppid: self.ppid,
                name: self.name,
            });
        }
        if let (Some(expected), Some(actual)) = (expected_create_time, self.create_time) {
            // Both come from one kernel value (clock ticks on Linux, a
            // microsecond timeval elsewhere): a millisecond is far below a
            // tick and far above float noise.
            if (expected - actual).abs() > 1e-3 {
                return Err(Error::PidReused {
                    pid,
                    expected,
                    actual,
                });
            }
        }
        Ok(())
    }
}

// === Host ===

/// Facts about the host, and what this backend supplies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostInfo {
    /// The node name (uname).
    pub hostname: String,
    /// "linux", "freebsd", "macos", ...
    pub os: String,
    /// Distribution and version where known.
    pub os_release: String,
    /// The kernel's release, such as "6.8.12-1-amd64".
    pub kernel: String,
    /// The machine, such as "x86_64" or "aarch64".
    pub arch: String,
    /// Seconds since the Unix epoch.
    pub boot_time: f64,
    /// CPUs online, not limited by the agent's affinity or cgroup.
    pub cpu_count: u32,
    /// Physical memory, in bytes.
    pub memory_total: u64,
    /// Backend name, such as "linux-procfs".
    pub backend: &'static str,
    /// The process fields this backend can supply.
    pub process_fields: FieldSet,
    /// The interface fields this backend can supply.
    pub net_interface_fields: Vec<NetField>,
    /// The system figures this backend can read (measured ones included
    /// when their source is).
    pub system_fields: SystemFields,
}

// === Network interfaces ===

/// A field of [`NetInterface`] that a backend may or may not supply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetField {
    /// [`NetInterface::addresses`].
    Addresses,
    /// [`NetIfStats::isup`].
    Isup,
    /// [`NetIfStats::duplex`].
    Duplex,
    /// [`NetIfStats::speed`].
    Speed,
    /// [`NetIfStats::mtu`].
    Mtu,
    /// [`NetIfStats::flags`].
    Flags,
    /// [`NetInterface::io_counters`].
    IoCounters,
}

impl NetField {
    /// Every field, in declaration order.
    pub const ALL: [NetField; 7] = [
        NetField::Addresses,
        NetField::Isup,
        NetField::Duplex,
        NetField::Speed,
        NetField::Mtu,
        NetField::Flags,
        NetField::IoCounters,
    ];
}

/// One network interface.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetInterface {
    /// The interface's name, such as "eth0".
    pub name: String,
    /// Its addresses, by family: inet, inet6, link.
    pub addresses: Vec<NetAddress>,
    /// Link state; `None` when the interface vanished while it was read.
    pub stats: Option<NetIfStats>,
    /// Traffic counters, where the platform keeps them.
    pub io_counters: Option<NetIoCounters>,
}

/// The family of a [`NetAddress`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4 (AF_INET).
    Inet,
    /// IPv6 (AF_INET6).
    Inet6,
    /// AF_PACKET / AF_LINK: the address is a MAC.
    Link,
}

/// One address of an interface, as text.
#[derive(Clone, Debug, PartialEq)]
pub struct NetAddress {
    /// The address family.
    pub family: AddressFamily,
    /// The address; an IPv6 link-local one carries its `%interface`.
    pub address: String,
    /// The netmask, in the address's own notation.
    pub netmask: Option<String>,
    /// The broadcast address, on broadcast links.
    pub broadcast: Option<String>,
    /// The peer's address, on point-to-point links.
    pub ptp: Option<String>,
}

/// A link's duplex mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Duplex {
    /// Sends and receives at once.
    Full,
    /// Sends or receives.
    Half,
    /// Not reported (virtual links, links down).
    Unknown,
}

/// A link's state and settings.
#[derive(Clone, Debug, PartialEq)]
pub struct NetIfStats {
    /// Whether the interface is up (IFF_UP).
    pub isup: bool,
    /// The duplex mode.
    pub duplex: Duplex,
    /// Megabits per second; 0 when unknown.
    pub speed: u32,
    /// Bytes.
    pub mtu: u32,
    /// psutil-style comma-separated lower-case flag names.
    pub flags: String,
}

/// Traffic counters since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetIoCounters {
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_recv: u64,
    /// Packets sent.
    pub packets_sent: u64,
    /// Packets received.
    pub packets_recv: u64,
    /// Errors while receiving.
    pub errin: u64,
    /// Errors while sending.
    pub errout: u64,
    /// Incoming packets dropped.
    pub dropin: u64,
    /// Outgoing packets dropped.
    pub dropout: u64,
}
