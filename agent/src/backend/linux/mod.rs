//! Linux: procfs, sysfs and getifaddrs.
//!
//! Processes and host facts come from a procfs root and link settings from
//! a sysfs root, both given by the caller (`/proc` and `/sys` in
//! production, fixture trees in tests). Interface addresses and flags come
//! from `getifaddrs(3)`, which always describes the live system. The
//! host's figures (`system`) come from both roots, the utmp file, and
//! statvfs(3) of the live mount points.
//!
//! The system calls go through `rustix` and `nix` (see `sys`), so the
//! backend needs no `unsafe` of its own but one call, and the compiler
//! holds it to that.

// One system call has no safe wrapper in rustix or nix (ioprio_get(2));
// `sys` allows `unsafe` for that call alone.
#![deny(unsafe_code)]

use std::{
    ffi::CString,
    ops::ControlFlow,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use super::{
    Backend, DiskIo, DiskUsage, Error, FieldSet, FilesQuery, HostInfo, NetField, NetInterface,
    OpenFile, Partition, ProcessInfo, SystemFields, SystemInfo,
    parse::{
        HostConsts,
        status::parse_status,
        system::{parse_boot_time, parse_mem_total, parse_pretty_name},
    },
    passwd::UserNames,
};

mod events;
mod files;
mod net;
mod process;
mod socket;
mod sys;
mod system;
#[cfg(test)]
mod tests;

use process::{Errno, Scan, classify, io_error};
pub use socket::SocketSource;

/// The Linux backend, reading procfs and sysfs under the roots it was
/// given.
pub struct Linux {
    procfs: PathBuf,
    /// `procfs` for the `*at` syscalls.
    procfs_c: CString,
    sysfs: PathBuf,
    consts: HostConsts,
    /// Login names by uid: the user database is slow to ask (NSS may go
    /// over the network) and a fleet host runs few distinct users.
    users: UserNames,
    /// The utmp file of login sessions, `/var/run/utmp` (a fixture in
    /// tests).
    utmp: PathBuf,
    /// Whether `procfs` is the kernel's own `/proc`, so that system calls
    /// about a pid (ioprio_get) describe the processes it lists.
    live: bool,
    /// Where socket tables come from.
    socket_source: SocketSource,
}

impl Linux {
    /// A backend reading processes from `procfs` (normally `/proc`) and
    /// link settings from `sysfs` (normally `/sys`). Reads the boot time
    /// now, so a wrong root fails here rather than on every call.
    pub fn with_roots(procfs: PathBuf, sysfs: PathBuf) -> Result<Linux, Error> {
        let (clk_tck, page_size) = (sys::clock_ticks_per_second(), sys::page_size());
        // Both come from the kernel's auxiliary vector; a zero would turn
        // every time and size into nonsense, so refuse it here.
        if clk_tck == 0 || page_size == 0 {
            return Err(Error::Unsupported {
                what: "a clock tick rate and page size (AT_CLKTCK, AT_PAGESZ)",
            });
        }
        Linux::with_consts(procfs, sysfs, clk_tck, page_size)
    }

    /// [`Linux::with_roots`] with the clock tick rate and page size given,
    /// so fixture trees give the same numbers on every machine.
    fn with_consts(
        procfs: PathBuf,
        sysfs: PathBuf,
        clk_tck: u64,
        page_size: u64,
    ) -> Result<Linux, Error> {
        let procfs_c = CString::new(procfs.as_os_str().as_bytes()).map_err(|_| Error::Io {
            path: procfs.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"),
        })?;
        let stat_path = procfs.join("stat");
        let boot_time = parse_boot_time(&read(&stat_path)?).map_err(|e| e.at(stat_path))?;
        Ok(Linux {
            procfs_c,
            sysfs,
            consts: HostConsts {
                clk_tck,
                page_size,
                boot_time,
            },
            users: UserNames::default(),
            utmp: PathBuf::from(system::UTMP),
            live: procfs_is_live(&procfs),
            procfs,
            socket_source: SocketSource::default(),
        })
    }

    /// The login name of `uid`, or the uid in decimal when the user
    /// database has no such user or cannot be asked (as psutil does).
    fn username(&self, uid: u32) -> String {
        self.users.name(uid)
    }

    /// A backend with the same roots and host constants for a polling
    /// event source to own, so the source can outlive `self`. Its user
    /// cache starts empty: polling never reads user names.
    fn clone_for_poll(&self) -> Linux {
        Linux {
            procfs: self.procfs.clone(),
            procfs_c: self.procfs_c.clone(),
            sysfs: self.sysfs.clone(),
            consts: self.consts,
            users: UserNames::default(),
            utmp: self.utmp.clone(),
            live: self.live,
            socket_source: self.socket_source,
        }
    }

    /// Reads socket tables from `source`: [`SocketSource::Procfs`] makes
    /// the backend read procfs's `net/` tables as it does where netlink
    /// sock_diag is not available.
    pub fn with_socket_source(mut self, source: SocketSource) -> Linux {
        self.socket_source = source;
        self
    }

    fn open_root(&self) -> Result<std::os::fd::OwnedFd, Error> {
        sys::open_dir_at(None, &self.procfs_c).map_err(|e| io_error(&self.procfs, e))
    }
}

/// Whether `procfs` is the live system's procfs: `/proc` itself, or a path
/// to the same directory.
fn procfs_is_live(procfs: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(root), Ok(live)) = (std::fs::metadata(procfs), std::fs::metadata("/proc")) else {
        return false;
    };
    (root.dev(), root.ino()) == (live.dev(), live.ino())
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| io_error(path, source))
}

impl Backend for Linux {
    fn host(&self) -> Result<HostInfo, Error> {
        let uts = sys::uname();
        let meminfo = self.procfs.join("meminfo");
        let memory_total = parse_mem_total(&read(&meminfo)?).map_err(|e| e.at(meminfo))?;
        const ONLINE_CPUS: &str = "sysconf(_SC_NPROCESSORS_ONLN)";
        let cpu_count = sys::online_cpus()
            .map_err(|e| io_error(Path::new(ONLINE_CPUS), e))?
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(Error::Unsupported { what: ONLINE_CPUS })?;
        Ok(HostInfo {
            hostname: uts.nodename,
            os: "linux".to_owned(),
            os_release: os_release(),
            kernel: uts.release,
            arch: uts.machine,
            boot_time: self.consts.boot_time,
            cpu_count,
            memory_total,
            backend: "linux-procfs",
            process_fields: FieldSet::all(),
            net_interface_fields: NetField::ALL.to_vec(),
            // Every figure, the measured ones from CpuTimes.
            system_fields: SystemFields::all(),
        })
    }

    fn for_each_process(
        &self,
        fields: FieldSet,
        visit: &mut dyn FnMut(ProcessInfo) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        Scan::new(self, fields).each(visit)
    }

    fn process(&self, pid: u32, fields: FieldSet) -> Result<ProcessInfo, Error> {
        use std::os::fd::AsFd;
        let root = self.open_root()?;
        Scan::new(self, fields)
            .read(root.as_fd(), pid, true)?
            .ok_or(Error::NoSuchProcess { pid })
    }

    /// One open procfs root and one set of read buffers for every pid.
    fn processes(
        &self,
        pids: &[u32],
        fields: FieldSet,
        visit: &mut dyn FnMut(u32, Result<ProcessInfo, Error>) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        use std::os::fd::AsFd;
        let root = self.open_root()?;
        let mut scan = Scan::new(self, fields);
        for &pid in pids {
            let read = scan
                .read(root.as_fd(), pid, true)
                .and_then(|p| p.ok_or(Error::NoSuchProcess { pid }));
            if visit(pid, read).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// As psutil does: a pid whose `status` names it as its own thread
    /// group; a thread id (which procfs also answers for) is not a pid.
    fn pid_exists(&self, pid: u32) -> Result<bool, Error> {
        let dir = self.procfs.join(pid.to_string());
        let path = dir.join("status");
        match std::fs::read(&path) {
            Ok(data) => Ok(match parse_status(&data) {
                Ok(status) => status.tgid == pid,
                // Unreadable text: the directory is there, so the pid is.
                Err(_) => true,
            }),
            Err(err) => match classify(&err) {
                Errno::Missing => Ok(false),
                Errno::Denied => Ok(dir.exists()),
                Errno::Other => Err(io_error(&path, err)),
            },
        }
    }

    fn net_interfaces(&self) -> Result<Vec<NetInterface>, Error> {
        net::interfaces(&self.procfs, &self.sysfs)
    }

    /// Opens a pidfd first, so that the checks below and the signal are
    /// about one process even if the pid is reused meanwhile: a pidfd of a
    /// process that has exited delivers nothing (ESRCH). Kernels older
    /// than 5.3 fall back to kill(2) right after the checks.
    fn signal(
        &self,
        pid: u32,
        signal: i32,
        expected_create_time: Option<f64>,
    ) -> Result<(), Error> {
        use std::os::fd::AsFd;

        // Every signal the service accepts has a name; the others
        // (real-time signals) are refused before anything is looked up.
        let sig = rustix::process::Signal::from_named_raw(signal).ok_or(Error::Unsupported {
            what: "sending a signal without a name (a real-time signal)",
        })?;
        // `call` names the syscall that failed, for errors of no API kind.
        let refused = |call: &str, err: std::io::Error| match classify(&err) {
            Errno::Missing => Error::NoSuchProcess { pid },
            Errno::Denied => Error::AccessDenied {
                pid: Some(pid),
                path: PathBuf::from(format!("signal {signal} to pid {pid}")),
            },
            Errno::Other => io_error(Path::new(&format!("{call} of pid {pid}")), err),
        };
        let pidfd = sys::pidfd_open(pid).map_err(|e| refused("pidfd_open(2)", e))?;
        self.process(pid, ProcessInfo::SIGNAL_FIELDS.into_iter().collect())?
            .check_signal_target(expected_create_time)?;
        match &pidfd {
            Some(fd) => sys::pidfd_send_signal(fd.as_fd(), sig)
                .map_err(|e| refused("pidfd_send_signal(2)", e)),
            None => sys::kill(pid, sig).map_err(|e| refused("kill(2)", e)),
        }
    }

    fn events(
        &self,
        mode: super::WatchMode,
        poll_interval: std::time::Duration,
    ) -> Result<Box<dyn super::EventSource>, Error> {
        events::open(self, mode, poll_interval)
    }

    fn system(&self, fields: SystemFields, cgroup: Option<&str>) -> SystemInfo {
        system::system(self, fields, cgroup)
    }

    /// From `<procfs>/self/mounts`, as psutil reads `/proc/self/mounts`.
    fn disk_partitions(&self, all: bool) -> Result<Vec<Partition>, Error> {
        system::disk_partitions(self, all)
    }

    /// statvfs(3) of the live system: `mountpoint` is not taken under the
    /// procfs or sysfs root.
    fn disk_usage(&self, mountpoint: &str) -> Result<DiskUsage, Error> {
        system::disk_usage(mountpoint)
    }

    fn disk_io_counters(&self) -> Result<Vec<DiskIo>, Error> {
        system::disk_io_counters(self)
    }

    /// From `<procfs>/<pid>/fd` and `fdinfo`, as psutil reads them.
    fn open_files(
        &self,
        pid: u32,
        query: &FilesQuery,
        after: Option<u32>,
        visit: &mut dyn FnMut(OpenFile) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        files::open_files(self, pid, query, after, visit)
    }

    fn connections(
        &self,
        query: &crate::backend::socket::SocketQuery,
    ) -> Result<crate::backend::socket::SocketListing, Error> {
        socket::connections(self, query)
    }
}

/// `PRETTY_NAME` of os-release(5), which lives in `/etc` or, failing that,
/// `/usr/lib`; "" when neither says.
fn os_release() -> String {
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| parse_pretty_name(&text))
        .unwrap_or_default()
}
