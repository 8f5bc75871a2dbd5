//! What the FreeBSD, OpenBSD, NetBSD and macOS backends share: one
//! [`Backend`] built on a [`Kernel`], which each OS module implements with
//! its own sysctl names and record layouts.
//!
//! The kernels agree on the shape of the work: a process table from one
//! sysctl (or libproc call), per-process queries for the executable,
//! arguments, environment, working directory and descriptors,
//! `getifaddrs(3)` with `AF_LINK` entries carrying `if_data`,
//! `SIOCGIFMEDIA` for link speed and duplex, `kill(2)`, and kqueue's
//! `EVFILT_PROC` for process events. The decoding is in
//! [`super::decode`]; the calls are behind [`Kernel`] and [`Sys`], so this
//! module builds on any host and its tests drive it with a fake kernel.
//! The real calls (`native`, over `bsd_sys`) exist only on the BSDs and
//! macOS.

use std::{
    collections::HashMap,
    io,
    ops::ControlFlow,
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

#[cfg(any(
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "macos"
))]
mod native;
#[cfg(any(
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "macos"
))]
pub(super) use native::*;

#[cfg(test)]
mod tests;

use super::{
    Backend, Duplex, Error, ErrorKind, EventSource, Field, FieldSet, FilesQuery, HostInfo,
    NetField, NetIfStats, NetInterface, OpenFile, Partition, ProcessInfo, RawEvent, WatchMode,
    decode::{
        Family, IfData, IfDataLayout, IfFlags, Kinfo,
        kevent::{Merge, NOTE_EXEC, NOTE_EXIT, NOTE_FORK, NOTE_TRACK, ProcEvent},
        media::MediaLayout,
        net_address,
        system::{is_physical, mount_opts},
        terminal_path,
    },
    parse::{ParseError, lossy},
    passwd::UserNames,
    poll::Poller,
    socket::{HeldSocket, SocketListing, SocketQuery, Transport},
    system::{
        Battery, CpuCount, CpuFreqSet, CpuStats, CpuTimesSet, DiskIo, DiskUsage, LoadAvg,
        SwapMemory, SystemField, SystemFields, SystemInfo, Temperature, User, VirtualMemory,
    },
};

/// One OS's way of reading processes and host facts. Methods that read
/// one process answer `Err` with the `io::Error` of the failed call, which
/// the backend classifies; `what` names the call for messages.
pub trait Kernel: Clone + Send + Sync + 'static {
    /// The backend's name in GetHost ("freebsd-sysctl").
    const BACKEND: &'static str;
    /// The OS's name in GetHost ("freebsd").
    const OS: &'static str;
    /// The interface flags' names.
    const FLAGS: IfFlags;
    /// Where the media word keeps speed and duplex.
    const MEDIA: MediaLayout;
    /// The `if_data` an `AF_LINK` entry points to, where the counters come
    /// from there (macOS reads them elsewhere, see [`Kernel::counters`]).
    const IF_DATA: Option<IfDataLayout>;
    /// The `MNT_*` flags psutil names in a mount's options, after "ro" or
    /// "rw", in its order.
    const MOUNT_FLAGS: &'static [(u64, &'static str)];
    /// What an interface's `if_data` link state says of its duplex, where
    /// the media word does not say: unknown, unless the kernel's link
    /// states carry it (OpenBSD's do).
    fn link_state_duplex(link_state: u8) -> Duplex {
        let _ = link_state;
        Duplex::Unknown
    }
    /// Whether `EVFILT_PROC` takes `NOTE_TRACK` (not on macOS).
    const TRACK: bool;
    /// Whether `NOTE_EXIT` carries the exit status for any process (not on
    /// macOS, which gives it only to the parent).
    const EXIT_STATUS: bool;

    /// The process fields this kernel can supply: by default all but the
    /// I/O counters, since the BSDs keep block operations
    /// (`ru_inblock`), not the read and write calls and bytes the API
    /// means.
    fn process_fields(&self) -> FieldSet {
        let mut fields = Field::portable();
        fields.remove(Field::IoCounters);
        fields
    }
    /// The OS's name and version, such as "FreeBSD 14.1-RELEASE".
    fn os_release(&self) -> Result<String, Error>;
    /// Boot time in seconds since the epoch.
    fn boot_time(&self) -> Result<f64, Error>;
    /// Physical memory in bytes.
    fn memory_total(&self) -> Result<u64, Error>;

    /// Every process; `fields` says which parts are wanted, for kernels
    /// where some cost another call per process.
    fn processes(&self, fields: FieldSet) -> Result<Vec<Kinfo>, Error>;
    /// One process, `None` if there is no such pid.
    fn process(&self, pid: u32, fields: FieldSet) -> Result<Option<Kinfo>, Error>;

    fn exe(&self, pid: u32) -> io::Result<String>;
    fn cmdline(&self, pid: u32) -> io::Result<Vec<String>>;
    fn environ(&self, pid: u32) -> io::Result<Vec<(String, String)>>;
    fn cwd(&self, pid: u32) -> io::Result<String>;
    fn num_fds(&self, pid: u32) -> io::Result<u32>;

    /// The open descriptors of `pid`, in any order. `query` and `after`
    /// say which the caller keeps, for kernels that read each descriptor
    /// apart: others may return more, which [`Bsd`] filters. Errors as
    /// [`process_error`] makes them; [`Error::NoSuchProcess`] is refined
    /// by the caller.
    fn open_files(
        &self,
        pid: u32,
        query: &FilesQuery,
        after: Option<u32>,
    ) -> Result<Vec<OpenFile>, Error> {
        let _ = (pid, query, after);
        Err(Error::Unsupported {
            what: "listing open files",
        })
    }

    /// Whether the kernel's socket records carry the TCP state: FreeBSD's
    /// `kinfo_file` does not, so its TCP sockets are NONE and a listing
    /// cannot filter them by state.
    const TCP_STATES: bool = true;

    /// The sockets the processes `pids` hold (every process's when
    /// empty), one per descriptor with its holder, and the processes
    /// whose descriptors could not be read. Which sockets to keep is
    /// [`Bsd`]'s business; kernels may return any.
    fn sockets(&self, pids: &[u32]) -> Result<HeldSockets, Error> {
        let _ = pids;
        Err(Error::Unsupported {
            what: "listing sockets",
        })
    }

    /// The interfaces' counters by name where they do not come with the
    /// `AF_LINK` entries.
    fn counters(&self) -> Result<HashMap<String, IfData>, Error> {
        Ok(HashMap::new())
    }

    /// The system figures this kernel reads itself (beyond the load
    /// averages, boot time and CPU count every kernel gives).
    fn system_fields(&self) -> SystemFields {
        SystemFields::EMPTY
    }
    /// CPU times, in total and per CPU.
    fn cpu_times(&self) -> Result<CpuTimesSet, Error> {
        Err(Error::Unsupported { what: "cpu_times" })
    }
    /// Context switches, interrupts and system calls since boot.
    fn cpu_stats(&self) -> Result<CpuStats, Error> {
        Err(Error::Unsupported { what: "cpu_stats" })
    }
    /// Physical memory.
    fn virtual_memory(&self) -> Result<VirtualMemory, Error> {
        Err(Error::Unsupported {
            what: "virtual_memory",
        })
    }
    /// Swap.
    fn swap_memory(&self) -> Result<SwapMemory, Error> {
        Err(Error::Unsupported {
            what: "swap_memory",
        })
    }
    /// CPU frequencies.
    fn cpu_freq(&self) -> Result<CpuFreqSet, Error> {
        Err(Error::Unsupported { what: "cpu_freq" })
    }
    /// I/O counters of every disk.
    fn disk_io_counters(&self) -> Result<Vec<DiskIo>, Error> {
        Err(Error::Unsupported {
            what: "disk I/O counters",
        })
    }
    /// Temperature readings; empty on a host without sensors.
    fn temperatures(&self) -> Result<Vec<Temperature>, Error> {
        Err(Error::Unsupported {
            what: "sensors_temperatures",
        })
    }
    /// The battery, `None` on a host without one.
    fn battery(&self) -> Result<Option<Battery>, Error> {
        Err(Error::Unsupported {
            what: "sensors_battery",
        })
    }
    /// Login sessions.
    fn users(&self) -> Result<Vec<User>, Error> {
        Err(Error::Unsupported { what: "users" })
    }
    /// Physical cores, where the kernel says.
    fn cpu_cores(&self) -> Option<u32> {
        None
    }
}

/// The figures every kernel here gives through the shared calls.
const SHARED_FIELDS: [SystemField; 3] = [
    SystemField::Loadavg,
    SystemField::BootTime,
    SystemField::CpuCount,
];

/// `IFF_UP`, alike everywhere.
const IFF_UP: u32 = 0x1;

/// `MNT_RDONLY`, alike everywhere.
const MNT_RDONLY: u64 = 0x1;

// === Shared calls ===

/// The calls every BSD kernel and macOS answer alike, apart from what
/// [`Kernel`] reads: `native::Native` makes them on a real host, a test
/// answers with canned values.
pub trait Sys: Send + Sync + 'static {
    /// The load averages over 1, 5 and 15 minutes (`getloadavg(3)`).
    fn loadavg(&self) -> io::Result<[f64; 3]>;
    /// The CPUs online (`sysconf(_SC_NPROCESSORS_ONLN)`), `None` when the
    /// system does not say.
    fn online_cpus(&self) -> Option<u64>;
    /// The name under `/dev` of the character device `dev` (`devname(3)`).
    fn devname(&self, dev: u64) -> Option<Vec<u8>>;
    /// The media status and active media words of the interface `name`
    /// (`SIOCGIFMEDIA`).
    fn media(&self, name: &str) -> io::Result<(u64, u64)>;
    /// Every `getifaddrs(3)` entry, with `data_len` bytes of each
    /// `AF_LINK` entry's `if_data`.
    fn interface_addresses(&self, data_len: usize) -> io::Result<Vec<IfAddr>>;
    /// Sends `signal` to `pid` (`kill(2)`).
    fn kill(&self, pid: u32, signal: i32) -> io::Result<()>;
    /// The mounted file systems (`getfsstat(2)`).
    fn mounts(&self) -> io::Result<Vec<Mount>>;
    /// A new queue of process events (a kqueue).
    fn process_queue(&self) -> io::Result<Box<dyn ProcQueue>>;
}

/// A queue of process events (`EVFILT_PROC`).
pub trait ProcQueue: Send {
    /// Starts watching `pid` for the `NOTE_*` events in `fflags`.
    fn watch(&self, pid: u32, fflags: u32) -> io::Result<()>;
    /// Waits up to `timeout` for events and appends them to `out`.
    fn wait(&mut self, timeout: Duration, out: &mut Vec<ProcEvent>) -> io::Result<()>;
}

/// One `getifaddrs(3)` entry, its socket addresses copied as bytes (as
/// long as their `sa_len` says) for [`super::decode::sockaddr`].
#[derive(Clone, Debug, Default)]
pub struct IfAddr {
    pub name: String,
    /// The interface's `IFF_*` flags.
    pub flags: u32,
    /// The family of `addr`, if one the API reports.
    pub family: Option<Family>,
    pub addr: Option<Vec<u8>>,
    pub netmask: Option<Vec<u8>>,
    /// The broadcast address or the point-to-point peer.
    pub dstaddr: Option<Vec<u8>>,
    /// For `AF_LINK` entries, the first `data_len` bytes `ifa_data`
    /// points to: the interface's `struct if_data`.
    pub data: Option<Vec<u8>>,
}

/// One mounted file system, as `getfsstat(2)` (`getvfsstat(2)` on NetBSD)
/// describes it.
#[derive(Clone, Debug, Default)]
pub struct Mount {
    pub device: String,
    pub mountpoint: String,
    pub fstype: String,
    /// `f_flags` (`f_flag` on NetBSD): the `MNT_*` flags.
    pub flags: u64,
}

// === impl Bsd ===

/// The backend of a BSD kernel or macOS.
#[derive(Clone)]
pub struct Bsd<K: Kernel> {
    kernel: K,
    sys: Arc<dyn Sys>,
    /// Shared by the clones a polling event source owns.
    users: Arc<UserNames>,
}

impl<K: Kernel> Bsd<K> {
    /// The backend of `kernel`, making the shared calls through `sys`.
    fn with_sys(kernel: K, sys: Arc<dyn Sys>) -> Bsd<K> {
        Bsd {
            kernel,
            sys,
            users: Arc::default(),
        }
    }

    /// The system figures this backend reads: the kernel's, the shared
    /// ones, and the measured ones where CPU times are readable.
    fn system_fields(&self) -> SystemFields {
        let mut fields = self.kernel.system_fields();
        for field in SHARED_FIELDS {
            fields.insert(field);
        }
        if fields.contains(SystemField::CpuTimes) {
            fields.insert(SystemField::CpuPercent);
            fields.insert(SystemField::CpuTimesPercent);
        }
        fields
    }

    /// The full record of the process `k` describes, with `fields` read;
    /// `None` when it vanished while being read.
    fn fill(&self, k: &Kinfo, fields: FieldSet) -> Result<Option<ProcessInfo>, Error> {
        let supported = self.kernel.process_fields();
        let mut p = ProcessInfo::new(k.pid);
        let mut wanted = FieldSet::EMPTY;
        for field in fields.iter() {
            if supported.contains(field) {
                wanted.insert(field);
            } else {
                p.field_errors.push((field, ErrorKind::Unsupported));
            }
        }
        let zombie = k.is_zombie();
        let missing = if zombie {
            ErrorKind::ZombieProcess
        } else {
            k.partial.unwrap_or(ErrorKind::Unsupported)
        };
        k.apply(wanted, missing, &mut p);
        if wanted.contains(Field::Username) {
            match k.uids {
                Some(uids) => p.username = Some(self.users.name(uids.real)),
                None => p.field_errors.push((Field::Username, missing)),
            }
        }
        if wanted.contains(Field::Terminal) {
            p.terminal = Some(
                k.tdev
                    .and_then(|dev| self.sys.devname(dev))
                    .and_then(|name| terminal_path(&name)),
            );
        }
        for field in [
            Field::Exe,
            Field::Cmdline,
            Field::Environ,
            Field::Cwd,
            Field::NumFds,
        ] {
            if !wanted.contains(field) {
                continue;
            }
            if zombie || k.system {
                // Zombies and kernel processes have no image, arguments or
                // environment: empty values, as on Linux and in psutil.
                match field {
                    Field::Cmdline => p.cmdline = Some(Vec::new()),
                    Field::Exe if k.system => p.exe = Some(String::new()),
                    Field::Environ if k.system => p.environ = Some(Vec::new()),
                    _ if zombie => p.field_errors.push((field, ErrorKind::ZombieProcess)),
                    _ => {
                        if let Flow::Vanished = self.read_one(k.pid, field, &mut p)? {
                            return Ok(None);
                        }
                    }
                }
                continue;
            }
            if let Flow::Vanished = self.read_one(k.pid, field, &mut p)? {
                return Ok(None);
            }
        }
        Ok(Some(p))
    }

    /// Reads `field` of `pid` with its own call.
    fn read_one(&self, pid: u32, field: Field, p: &mut ProcessInfo) -> Result<Flow, Error> {
        let k = &self.kernel;
        let result = match field {
            Field::Exe => k.exe(pid).map(|v| p.exe = Some(v)),
            Field::Cmdline => k.cmdline(pid).map(|v| p.cmdline = Some(v)),
            Field::Environ => k.environ(pid).map(|v| p.environ = Some(v)),
            Field::Cwd => k.cwd(pid).map(|v| p.cwd = Some(v)),
            Field::NumFds => k.num_fds(pid).map(|v| p.num_fds = Some(v)),
            _ => Ok(()),
        };
        let Err(err) = result else {
            return Ok(Flow::Continue);
        };
        let kind = match classify(&err) {
            Errno::Gone => return Ok(Flow::Vanished),
            Errno::Denied => ErrorKind::AccessDenied,
            Errno::Replaced => ErrorKind::NoSuchProcess,
            Errno::Unsupported => ErrorKind::Unsupported,
            Errno::Other => {
                return Err(io_error(
                    format!("reading {field:?} of pid {pid} ({})", K::BACKEND),
                    err,
                ));
            }
        };
        p.field_errors.push((field, kind));
        Ok(Flow::Continue)
    }

    /// The interfaces' link state: speed and duplex from `SIOCGIFMEDIA`,
    /// the speed from the baud rate where the media word names none.
    fn stats(&self, name: &str, flags: u32, data: Option<&IfData>) -> NetIfStats {
        let media = self.sys.media(name).ok();
        let speed = media
            .and_then(|(_, active)| K::MEDIA.speed(active))
            .or_else(|| data.map(IfData::speed_mbps))
            .unwrap_or(0);
        let mut duplex = media.map_or(Duplex::Unknown, |(status, active)| {
            K::MEDIA.duplex(status, active)
        });
        if duplex == Duplex::Unknown {
            duplex = data.map_or(Duplex::Unknown, |d| K::link_state_duplex(d.link_state));
        }
        NetIfStats {
            isup: flags & IFF_UP != 0,
            duplex,
            speed,
            mtu: data.map_or(0, |d| d.mtu),
            flags: K::FLAGS.names(flags),
        }
    }
}

/// The sockets processes hold, one per descriptor, and the processes
/// whose descriptors could not be read.
#[derive(Debug, Default)]
pub struct HeldSockets {
    pub sockets: Vec<HeldSocket>,
    pub process_errors: Vec<(u32, ErrorKind)>,
}

impl HeldSockets {
    /// The sockets of `pids`, each process's read by `read` (its errors
    /// as [`process_error`] makes them): a process gone meanwhile is
    /// skipped, one the agent may not read (or that fails to read) is
    /// named in the process errors, as on Linux. A kernel that cannot
    /// list sockets, or a record that does not decode, fails the whole
    /// listing.
    #[cfg(any(test, not(target_os = "netbsd")))]
    pub(super) fn per_process(
        pids: impl IntoIterator<Item = u32>,
        mut read: impl FnMut(u32) -> Result<Vec<HeldSocket>, Error>,
    ) -> Result<HeldSockets, Error> {
        let mut out = HeldSockets::default();
        for pid in pids {
            match read(pid) {
                Ok(sockets) => out.sockets.extend(sockets),
                Err(Error::NoSuchProcess { .. } | Error::ZombieProcess { .. }) => {}
                Err(Error::AccessDenied { .. }) => {
                    out.process_errors.push((pid, ErrorKind::AccessDenied));
                }
                Err(error @ Error::Io { .. }) => {
                    tracing::warn!(pid, %error, "unreadable descriptor table");
                    out.process_errors.push((pid, ErrorKind::AccessDenied));
                }
                Err(error) => return Err(error),
            }
        }
        Ok(out)
    }
}

/// What a failed per-process call means.
enum Errno {
    /// ESRCH: the process is gone.
    Gone,
    /// EPERM, EACCES: the agent may not read it.
    Denied,
    /// EBUSY: the process is replacing its image (OpenBSD refuses to read
    /// arguments during exec); what was asked of the old image is gone.
    Replaced,
    /// The kernel does not offer this (EINVAL, ENOTSUP, EOPNOTSUPP,
    /// ENOSYS, ENOENT from a sysctl node the kernel lacks).
    Unsupported,
    Other,
}

fn classify(err: &io::Error) -> Errno {
    match err.raw_os_error() {
        Some(libc::ESRCH) => Errno::Gone,
        Some(libc::EPERM | libc::EACCES) => Errno::Denied,
        Some(libc::EBUSY) => Errno::Replaced,
        Some(libc::EINVAL | libc::ENOTSUP | libc::ENOSYS | libc::ENOENT) => Errno::Unsupported,
        _ => Errno::Other,
    }
}

/// Whether a process is still there after reading one of its fields.
enum Flow {
    Continue,
    Vanished,
}

/// The error of the call `what` that failed with `err` reading process
/// `pid`: gone, not ours to read, or another failure.
#[cfg(any(test, not(target_os = "netbsd")))]
pub(super) fn process_error(pid: u32, what: impl Into<String>, err: io::Error) -> Error {
    match classify(&err) {
        Errno::Gone => Error::NoSuchProcess { pid },
        Errno::Denied => Error::AccessDenied {
            pid: Some(pid),
            path: PathBuf::from(what.into()),
        },
        _ => io_error(what, err),
    }
}

/// A backend error for a failed call `what`.
pub(super) fn io_error(what: impl Into<String>, source: io::Error) -> Error {
    Error::Io {
        path: PathBuf::from(what.into()),
        source,
    }
}

/// A backend error for a record that did not decode.
pub(super) fn parse_error(what: impl Into<String>) -> impl FnOnce(ParseError) -> Error {
    let what = what.into();
    move |e| e.at(PathBuf::from(what))
}

impl<K: Kernel> Backend for Bsd<K> {
    fn host(&self) -> Result<HostInfo, Error> {
        let uts = rustix::system::uname();
        let text = |s: &std::ffi::CStr| s.to_string_lossy().into_owned();
        let cpu_count = self
            .sys
            .online_cpus()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(Error::Unsupported {
                what: "sysconf(_SC_NPROCESSORS_ONLN)",
            })?;
        Ok(HostInfo {
            hostname: text(uts.nodename()),
            os: K::OS.to_owned(),
            os_release: self.kernel.os_release()?,
            kernel: text(uts.release()),
            arch: text(uts.machine()),
            boot_time: self.kernel.boot_time()?,
            cpu_count,
            memory_total: self.kernel.memory_total()?,
            backend: K::BACKEND,
            process_fields: self.kernel.process_fields(),
            // Speed and duplex are unknown (0, unknown) where the driver
            // does not answer SIOCGIFMEDIA, as psutil reports them.
            net_interface_fields: NetField::ALL.to_vec(),
            system_fields: self.system_fields(),
        })
    }

    fn system(&self, fields: SystemFields, _cgroup: Option<&str>) -> SystemInfo {
        let supported = self.system_fields();
        let mut info = SystemInfo::default();
        let mut asked = SystemFields::EMPTY;
        for field in fields.iter().filter(|f| !f.is_measured()) {
            asked.insert(field);
        }
        info.unsupported(asked, supported);
        let wanted: SystemFields = asked.iter().filter(|f| supported.contains(*f)).collect();
        let k = &self.kernel;
        info.cpu_times = info.read(wanted, SystemField::CpuTimes, || k.cpu_times());
        info.cpu_stats = info.read(wanted, SystemField::CpuStats, || k.cpu_stats());
        info.virtual_memory = info.read(wanted, SystemField::VirtualMemory, || k.virtual_memory());
        info.swap_memory = info.read(wanted, SystemField::SwapMemory, || k.swap_memory());
        info.cpu_freq = info.read(wanted, SystemField::CpuFreq, || k.cpu_freq());
        info.temperatures = info.read(wanted, SystemField::SensorsTemperatures, || {
            k.temperatures()
        });
        info.battery = info.read(wanted, SystemField::SensorsBattery, || k.battery());
        info.users = info.read(wanted, SystemField::Users, || k.users());
        info.boot_time = info.read(wanted, SystemField::BootTime, || k.boot_time());
        info.loadavg = info.read(wanted, SystemField::Loadavg, || {
            let [load1, load5, load15] = self
                .sys
                .loadavg()
                .map_err(|e| io_error("getloadavg(3)", e))?;
            Ok(LoadAvg {
                load1,
                load5,
                load15,
            })
        });
        info.cpu_count = info.read(wanted, SystemField::CpuCount, || {
            let logical = self
                .sys
                .online_cpus()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(Error::Unsupported {
                    what: "sysconf(_SC_NPROCESSORS_ONLN)",
                })?;
            // One logical CPU is one core, as psutil reasons.
            let physical = k.cpu_cores().or((logical == 1).then_some(1));
            Ok(CpuCount { logical, physical })
        });
        info
    }

    fn disk_partitions(&self, all: bool) -> Result<Vec<Partition>, Error> {
        let mounts = self.sys.mounts().map_err(|e| io_error("getfsstat(2)", e))?;
        Ok(mounts
            .into_iter()
            .filter(|m| all || is_physical(&m.device, &m.fstype))
            .map(|m| Partition {
                opts: mount_opts(m.flags, MNT_RDONLY, K::MOUNT_FLAGS),
                device: m.device,
                mountpoint: m.mountpoint,
                fstype: m.fstype,
            })
            .collect())
    }

    fn disk_io_counters(&self) -> Result<Vec<DiskIo>, Error> {
        self.kernel.disk_io_counters()
    }

    /// statvfs(2) through rustix; psutil's figures from its block counts.
    fn disk_usage(&self, mountpoint: &str) -> Result<DiskUsage, Error> {
        let st = rustix::fs::statvfs(mountpoint)
            .map_err(|e| io_error(format!("statvfs({mountpoint})"), e.into()))?;
        Ok(DiskUsage::from_statvfs(
            st.f_frsize,
            st.f_blocks,
            st.f_bfree,
            st.f_bavail,
        ))
    }

    fn for_each_process(
        &self,
        fields: FieldSet,
        visit: &mut dyn FnMut(ProcessInfo) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        for k in self.kernel.processes(fields)? {
            if let Some(p) = self.fill(&k, fields)?
                && visit(p).is_break()
            {
                break;
            }
        }
        Ok(())
    }

    fn process(&self, pid: u32, fields: FieldSet) -> Result<ProcessInfo, Error> {
        let k = self
            .kernel
            .process(pid, fields)?
            .ok_or(Error::NoSuchProcess { pid })?;
        self.fill(&k, fields)?.ok_or(Error::NoSuchProcess { pid })
    }

    /// The kernel's descriptors of `pid`, filtered and ordered here. A
    /// process the kernel calls gone but still lists is a zombie
    /// ([`Error::ZombieProcess`]), or one that holds no descriptors any
    /// more: FreeBSD refuses the descriptors of a process that is exiting,
    /// and macOS answers a process without descriptors as one without a
    /// process.
    fn open_files(
        &self,
        pid: u32,
        query: &FilesQuery,
        after: Option<u32>,
        visit: &mut dyn FnMut(OpenFile) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        let files = match self.kernel.open_files(pid, query, after) {
            Err(Error::NoSuchProcess { .. }) => {
                return match self.kernel.process(pid, FieldSet::EMPTY) {
                    Ok(Some(k)) if k.is_zombie() => Err(Error::ZombieProcess {
                        pid,
                        ppid: Some(k.ppid),
                        name: Some(lossy(&k.comm)),
                    }),
                    Ok(Some(_)) => Ok(()),
                    _ => Err(Error::NoSuchProcess { pid }),
                };
            }
            read => read?,
        };
        for file in query.select(files, after) {
            if visit(file).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn pid_exists(&self, pid: u32) -> Result<bool, Error> {
        Ok(self.kernel.process(pid, FieldSet::EMPTY)?.is_some())
    }

    /// The kernel's sockets, one per descriptor, filtered and ordered by
    /// [`SocketQuery::select_held`]. A kernel without TCP states cannot
    /// answer a state filter on TCP sockets: that is UNSUPPORTED rather
    /// than a listing that looks empty.
    fn connections(&self, query: &SocketQuery) -> Result<SocketListing, Error> {
        let tcp = query
            .kind
            .inet_tables()
            .iter()
            .any(|(transport, _)| *transport == Transport::Tcp);
        if !K::TCP_STATES && tcp && !query.statuses.is_empty() {
            return Err(Error::Unsupported {
                what: "filtering TCP sockets by state (the kernel's records carry none)",
            });
        }
        let held = self.kernel.sockets(&query.pids)?;
        Ok(query.select_held(held.sockets, held.process_errors))
    }

    fn net_interfaces(&self) -> Result<Vec<NetInterface>, Error> {
        let data_len = K::IF_DATA.as_ref().map_or(0, |l| l.size);
        let entries = self
            .sys
            .interface_addresses(data_len)
            .map_err(|e| io_error("getifaddrs(3)", e))?;
        let mut counters = self.kernel.counters()?;
        let mut order: Vec<String> = Vec::new();
        let mut by_name: HashMap<String, (NetInterface, u32, Option<IfData>)> = HashMap::new();
        for entry in entries {
            let slot = by_name.entry(entry.name.clone()).or_insert_with(|| {
                order.push(entry.name.clone());
                let nic = NetInterface {
                    name: entry.name.clone(),
                    ..NetInterface::default()
                };
                (nic, entry.flags, counters.remove(&entry.name))
            });
            if entry.family == Some(Family::Link)
                && let (Some(layout), Some(data)) = (K::IF_DATA.as_ref(), entry.data.as_deref())
            {
                let decoded = layout
                    .decode(data)
                    .map_err(parse_error(format!("if_data of {}", entry.name)))?;
                slot.2 = Some(decoded);
            }
            if let Some(address) = address_of(&entry) {
                slot.0.addresses.push(address);
            }
        }
        Ok(order
            .into_iter()
            .filter_map(|name| by_name.remove(&name))
            .map(|(mut nic, flags, data)| {
                nic.stats = Some(self.stats(&nic.name, flags, data.as_ref()));
                nic.io_counters = data.map(|d| d.counters);
                nic
            })
            .collect())
    }

    /// Checks, right before `kill(2)`, that `pid` is not a zombie and
    /// started at `expected_create_time`. These kernels offer no handle
    /// that pins a process (FreeBSD's process descriptors exist only for
    /// children made with `pdfork`), so a window remains between the check
    /// and the signal: the process would have to exit, and its pid be
    /// reused after wrapping the whole pid space, within microseconds.
    fn signal(
        &self,
        pid: u32,
        signal: i32,
        expected_create_time: Option<f64>,
    ) -> Result<(), Error> {
        self.process(pid, ProcessInfo::SIGNAL_FIELDS.into_iter().collect())?
            .check_signal_target(expected_create_time)?;
        self.sys
            .kill(pid, signal)
            .map_err(|err| match classify(&err) {
                Errno::Gone => Error::NoSuchProcess { pid },
                Errno::Denied => Error::AccessDenied {
                    pid: Some(pid),
                    path: PathBuf::from(format!("signal {signal} to pid {pid}")),
                },
                _ => io_error("kill(2)", err),
            })
    }

    fn events(
        &self,
        mode: WatchMode,
        poll_interval: Duration,
    ) -> Result<Box<dyn EventSource>, Error> {
        let poll = || -> Result<Box<dyn EventSource>, Error> {
            Ok(Box::new(Poller::open(self.clone(), poll_interval)?))
        };
        match mode {
            WatchMode::Poll => poll(),
            WatchMode::Kernel => Ok(Box::new(Kqueue::open(self, poll_interval)?)),
            WatchMode::Auto => match Kqueue::open(self, poll_interval) {
                Ok(source) => Ok(Box::new(source)),
                Err(error) => {
                    tracing::info!(%error, "kqueue process events are unavailable");
                    poll()
                }
            },
        }
    }
}

/// The address an entry holds, if of a family the API reports.
fn address_of(entry: &IfAddr) -> Option<super::NetAddress> {
    net_address(
        entry.family?,
        entry.addr.as_deref()?,
        entry.netmask.as_deref(),
        entry.dstaddr.as_deref(),
        entry.flags,
        &entry.name,
    )
}

// === impl Kqueue ===

/// Process events from kqueue for every process known, with the polling
/// diff finding the new ones (and those kqueue may not watch).
struct Kqueue<K: Kernel> {
    queue: Box<dyn ProcQueue>,
    poller: Poller<Bsd<K>>,
    merge: Merge,
    /// How long one wait on the queue lasts at most, so the poll keeps
    /// its beat.
    slice: Duration,
    fflags: u32,
    received: Vec<ProcEvent>,
}

impl<K: Kernel> Kqueue<K> {
    /// Opens a queue and registers every process there is now. Processes
    /// the agent may not watch are left to the poll; a queue that can
    /// watch none is an error, so [`WatchMode::Auto`] polls instead.
    fn open(bsd: &Bsd<K>, interval: Duration) -> Result<Kqueue<K>, Error> {
        let queue = bsd
            .sys
            .process_queue()
            .map_err(|e| io_error("kqueue(2)", e))?;
        let mut fflags = NOTE_EXIT | NOTE_FORK | NOTE_EXEC;
        if K::TRACK {
            fflags |= NOTE_TRACK;
        }
        let poller = Poller::open(bsd.clone(), interval)?;
        let source = Kqueue {
            queue,
            poller,
            merge: Merge::new(K::EXIT_STATUS),
            slice: interval.max(Duration::from_millis(10)),
            fflags,
            received: Vec::new(),
        };
        let mut pids = Vec::new();
        bsd.for_each_process(FieldSet::EMPTY, &mut |p| {
            pids.push(p.pid);
            ControlFlow::Continue(())
        })?;
        let (watched, last_error) = source.watch(&pids);
        if watched == 0 {
            let err = last_error
                .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no process to watch"));
            return Err(io_error("kevent(2) EVFILT_PROC", err));
        }
        tracing::debug!(watched, of = pids.len(), "kqueue watches processes");
        Ok(source)
    }

    /// Registers `pids`; returns how many it watches and the last error
    /// other than a process gone meanwhile.
    fn watch(&self, pids: &[u32]) -> (usize, Option<io::Error>) {
        let mut watched = 0;
        let mut last_error = None;
        for &pid in pids {
            match self.queue.watch(pid, self.fflags) {
                Ok(()) => watched += 1,
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => last_error = Some(e),
            }
        }
        (watched, last_error)
    }

    fn drain(&mut self, timeout: Duration, out: &mut Vec<RawEvent>) -> Result<(), Error> {
        self.received.clear();
        self.queue
            .wait(timeout, &mut self.received)
            .map_err(|e| io_error("kevent(2)", e))?;
        let time = epoch_now();
        for event in self.received.drain(..) {
            self.merge.kernel(event, time, out);
        }
        Ok(())
    }
}

impl<K: Kernel> EventSource for Kqueue<K> {
    fn mode(&self) -> WatchMode {
        WatchMode::Kernel
    }

    fn next(&mut self, timeout: Duration, out: &mut Vec<RawEvent>) -> Result<(), Error> {
        self.drain(timeout.min(self.slice), out)?;
        // What came while waiting is taken in before the poll scans, so
        // the poll's view is the later one.
        self.drain(Duration::ZERO, out)?;
        let mut polled = Vec::new();
        self.poller.next(Duration::ZERO, &mut polled)?;
        if !polled.is_empty() {
            let mut new = Vec::new();
            self.merge.polled(polled, out, &mut new);
            self.watch(&new);
        }
        Ok(())
    }
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
