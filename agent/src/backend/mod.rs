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

pub mod filter;
pub mod parse;
pub mod poll;

#[cfg(target_os = "linux")]
pub mod linux;
#[cfg(not(target_os = "linux"))]
pub mod unsupported;

pub use filter::Filter;

/// The backend for the OS this agent was built for, reading procfs at
/// `procfs` and sysfs at `sysfs` where the platform has them.
#[cfg(target_os = "linux")]
pub fn native(procfs: PathBuf, sysfs: PathBuf) -> Result<Box<dyn Backend>, Error> {
    Ok(Box::new(linux::Linux::with_roots(procfs, sysfs)?))
}

/// The backend for the OS this agent was built for.
#[cfg(not(target_os = "linux"))]
pub fn native(_procfs: PathBuf, _sysfs: PathBuf) -> Result<Box<dyn Backend>, Error> {
    Ok(Box::new(unsupported::Unsupported))
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
    Fork { pid: u32, ppid: u32, time: f64 },
    /// `pid` replaced its program image.
    Exec { pid: u32, time: f64 },
    /// `pid` exited (it may now be a zombie until its parent reaps it).
    /// `exit_code` is the code passed to exit(2), `signal` the signal that
    /// ended it, where the source tells (polling does not).
    Exit {
        pid: u32,
        exit_code: Option<i32>,
        signal: Option<i32>,
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
}

// === Errors ===

/// Why a backend call failed. Each variant says what it was reading.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such process (pid {pid})")]
    NoSuchProcess { pid: u32 },
    #[error("process {pid} is a zombie")]
    ZombieProcess {
        pid: u32,
        ppid: Option<u32>,
        name: Option<String>,
    },
    #[error("access denied reading {}", path.display())]
    AccessDenied { pid: Option<u32>, path: PathBuf },
    #[error(
        "pid {pid} now belongs to another process: it started at {actual}, \
         not at the expected {expected} (seconds since the epoch)"
    )]
    PidReused {
        pid: u32,
        expected: f64,
        actual: f64,
    },
    #[error("{what} is not supported on this platform")]
    Unsupported { what: &'static str },
    #[error("reading {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        /// 1-based line of the file, 0 when the file is one record.
        line: usize,
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
    NoSuchProcess,
    ZombieProcess,
    AccessDenied,
    Unsupported,
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
    Ppid,
    Name,
    Exe,
    Cmdline,
    Status,
    Username,
    Uids,
    Gids,
    Terminal,
    Cwd,
    Nice,
    CreateTime,
    NumThreads,
    NumFds,
    NumCtxSwitches,
    CpuTimes,
    MemoryInfo,
    IoCounters,
    Environ,
}

impl Field {
    /// Every field, in declaration order.
    pub const ALL: [Field; 19] = [
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
    ];
}

/// A set of [`Field`]s, as a bit set.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FieldSet(u32);

impl FieldSet {
    /// No field: only pids.
    pub const EMPTY: FieldSet = FieldSet(0);

    /// Every field.
    pub fn all() -> FieldSet {
        Field::ALL.into_iter().collect()
    }

    pub fn contains(self, field: Field) -> bool {
        self.0 & Self::bit(field) != 0
    }

    /// Whether any of `fields` is in the set.
    pub fn any(self, fields: &[Field]) -> bool {
        fields.iter().any(|f| self.contains(*f))
    }

    pub fn insert(&mut self, field: Field) {
        self.0 |= Self::bit(field);
    }

    pub fn remove(&mut self, field: Field) {
        self.0 &= !Self::bit(field);
    }

    pub fn union(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The fields in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Field> {
        Field::ALL.into_iter().filter(move |f| self.contains(*f))
    }

    fn bit(field: Field) -> u32 {
        1 << field as u8
    }
}

impl FromIterator<Field> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Field>>(iter: I) -> Self {
        let mut set = FieldSet::EMPTY;
        for f in iter {
            set.insert(f);
        }
        set
    }
}

impl std::fmt::Debug for FieldSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Process states, as psutil names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Running,
    Sleeping,
    DiskSleep,
    Stopped,
    TracingStop,
    Zombie,
    Dead,
    WakeKill,
    Waking,
    Parked,
    Idle,
    Locked,
    Waiting,
    Suspended,
}

/// Real, effective and saved ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ids {
    pub real: u32,
    pub effective: u32,
    pub saved: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtxSwitches {
    pub voluntary: u64,
    pub involuntary: u64,
}

/// CPU time in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTimes {
    pub user: f64,
    pub system: f64,
    pub children_user: f64,
    pub children_system: f64,
    pub iowait: f64,
}

/// Memory in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryInfo {
    pub rss: u64,
    pub vms: u64,
    pub shared: u64,
    pub text: u64,
    pub data: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoCounters {
    pub read_count: u64,
    pub write_count: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
}

/// One process. A field is `Some` when it was requested and read; a
/// requested field that could not be read is `None` and named in
/// `field_errors`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: Option<u32>,
    pub name: Option<String>,
    /// Empty for kernel threads.
    pub exe: Option<String>,
    /// Empty for kernel threads and zombies.
    pub cmdline: Option<Vec<String>>,
    pub status: Option<Status>,
    pub username: Option<String>,
    pub uids: Option<Ids>,
    pub gids: Option<Ids>,
    /// `Some(None)`: read, and the process has no controlling terminal.
    pub terminal: Option<Option<String>>,
    pub cwd: Option<String>,
    pub nice: Option<i32>,
    /// Seconds since the Unix epoch.
    pub create_time: Option<f64>,
    pub num_threads: Option<u32>,
    pub num_fds: Option<u32>,
    pub num_ctx_switches: Option<CtxSwitches>,
    pub cpu_times: Option<CpuTimes>,
    pub memory_info: Option<MemoryInfo>,
    pub io_counters: Option<IoCounters>,
    pub environ: Option<Vec<(String, String)>>,
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
}

// === Host ===

/// Facts about the host, and what this backend supplies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostInfo {
    pub hostname: String,
    /// "linux", "freebsd", "macos", ...
    pub os: String,
    /// Distribution and version where known.
    pub os_release: String,
    pub kernel: String,
    pub arch: String,
    /// Seconds since the Unix epoch.
    pub boot_time: f64,
    pub cpu_count: u32,
    /// Bytes.
    pub memory_total: u64,
    /// Backend name, such as "linux-procfs".
    pub backend: &'static str,
    /// The process fields this backend can supply.
    pub process_fields: FieldSet,
    /// The interface fields this backend can supply.
    pub net_interface_fields: Vec<NetField>,
}

// === Network interfaces ===

/// A field of [`NetInterface`] that a backend may or may not supply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetField {
    Addresses,
    Isup,
    Duplex,
    Speed,
    Mtu,
    Flags,
    IoCounters,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetInterface {
    pub name: String,
    pub addresses: Vec<NetAddress>,
    pub stats: Option<NetIfStats>,
    pub io_counters: Option<NetIoCounters>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    Inet,
    Inet6,
    /// AF_PACKET / AF_LINK: the address is a MAC.
    Link,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NetAddress {
    pub family: AddressFamily,
    pub address: String,
    pub netmask: Option<String>,
    pub broadcast: Option<String>,
    pub ptp: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Duplex {
    Full,
    Half,
    Unknown,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NetIfStats {
    pub isup: bool,
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
    pub bytes_sent: u64,
    pub bytes_recv: u64,
    pub packets_sent: u64,
    pub packets_recv: u64,
    pub errin: u64,
    pub errout: u64,
    pub dropin: u64,
    pub dropout: u64,
}
