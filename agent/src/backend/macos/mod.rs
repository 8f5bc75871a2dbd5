//! macOS: libproc, `KERN_PROCARGS2`, `getifaddrs(3)`, the routing
//! socket's `NET_RT_IFLIST2` and kqueue.
//!
//! Processes are `proc_listallpids` and, per pid, `proc_pidinfo`:
//! `PROC_PIDTASKALLINFO` where times, memory or threads are asked for,
//! else (and for zombies and other users' processes, which it refuses)
//! `PROC_PIDTBSDINFO`. Arguments and environment come from
//! `KERN_PROCARGS2`, the executable from `proc_pidpath`, the working
//! directory and descriptors from `proc_pidinfo` again (open files with
//! `proc_pidfdinfo` per vnode, sockets with `proc_pidfdinfo` per
//! socket, TCP states included). Not supplied: I/O
//! counters (the kernel keeps none per process that match the API) and
//! context switches (one total, which the API cannot split into
//! voluntary and involuntary).
//!
//! System figures: CPU times (`host_processor_info`), memory
//! (`host_statistics64`, `hw.memsize`), swap (`vm.swapusage`), the Intel
//! CPU frequency (`hw.cpufrequency`) and physical cores (`hw.physicalcpu`).

use std::{collections::HashMap, io};

use super::{
    Error, ErrorKind, Field, FieldSet, FilesQuery, OpenFile,
    bsd::{self, Bsd, HeldSockets, Kernel, parse_error},
    bsd_sys,
    decode::system::mount_bit,
    decode::{
        IfData, IfDataLayout, IfFlags, Kinfo, environ_of,
        macos::{self as layout, Timebase},
        media::{MACOS, MediaLayout},
        system as sys,
    },
    parse::{ParseError, lossy},
    socket::HeldSocket,
    system::{
        CpuFreq, CpuFreqSet, CpuTimesSet, SwapMemory, SystemField, SystemFields, User,
        VirtualMemory,
    },
};

mod checks;

/// The macOS backend.
pub type MacOs = Bsd<Libproc>;

/// A macOS backend reading the running kernel.
pub fn backend() -> Result<MacOs, Error> {
    let (numer, denom) = bsd_sys::timebase().map_err(|e| bsd::io_error("mach_timebase_info", e))?;
    Ok(Bsd::new(Libproc {
        timebase: Timebase { numer, denom },
    }))
}

/// macOS's libproc and sysctl interfaces.
#[derive(Clone, Debug)]
pub struct Libproc {
    /// The unit of the task's CPU times.
    timebase: Timebase,
}

/// The fields `PROC_PIDTASKALLINFO` is needed for.
const TASK_FIELDS: [Field; 3] = [Field::CpuTimes, Field::MemoryInfo, Field::NumThreads];

impl Libproc {
    /// One process's record, with its task info where `fields` ask for
    /// it; `None` when the pid is gone.
    fn read(&self, pid: u32, fields: FieldSet) -> io::Result<Option<Kinfo>> {
        let mut buf = Vec::new();
        let task_error = if fields.any(&TASK_FIELDS) {
            match bsd_sys::pidinfo(
                pid,
                libc::PROC_PIDTASKALLINFO,
                layout::TASKALLINFO_SIZE,
                &mut buf,
            ) {
                Ok(()) => {
                    let mut k = layout::bsdinfo(&buf).map_err(io::Error::other)?;
                    layout::add_taskinfo(&mut k, &buf[layout::bsdinfo::SIZE..], self.timebase)
                        .map_err(io::Error::other)?;
                    return Ok(Some(k));
                }
                Err(e) => Some(e),
            }
        } else {
            None
        };
        // The BSD part alone answers for zombies and for processes whose
        // task the agent may not inspect.
        match bsd_sys::pidinfo(pid, libc::PROC_PIDTBSDINFO, layout::bsdinfo::SIZE, &mut buf) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut k = layout::bsdinfo(&buf).map_err(io::Error::other)?;
        k.partial = task_error.map(|e| match e.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => ErrorKind::AccessDenied,
            _ if k.is_zombie() => ErrorKind::ZombieProcess,
            _ => ErrorKind::NoSuchProcess,
        });
        Ok(Some(k))
    }

    /// The sockets `pid` holds (see [`Kernel::sockets`]).
    fn process_sockets(&self, pid: u32) -> Result<Vec<HeldSocket>, Error> {
        let what = format!("proc_pidinfo PROC_PIDLISTFDS of pid {pid}");
        let list = bsd_sys::pidinfo_list(pid, libc::PROC_PIDLISTFDS)
            .map_err(|e| bsd::process_error(pid, &what, e))?;
        let fds = layout::fd_list(&list).map_err(parse_error(what))?;
        let mut sockets = Vec::new();
        let mut buf = Vec::new();
        for (fd, _) in fds
            .into_iter()
            .filter(|(_, fdtype)| *fdtype == layout::prox_fdtype::SOCKET)
        {
            let read = read_fd(pid, fd, FdFlavor::SOCKET, &mut buf, |b| {
                layout::socket_fd(pid, fd, b)
            })?;
            match read {
                FdRead::Read(socket) => sockets.extend(socket),
                FdRead::Closed => {}
                FdRead::Gone => break,
            }
        }
        Ok(sockets)
    }

    /// `KERN_PROCARGS2` of `pid`, decoded. The kernel answers EINVAL for
    /// processes the caller may not read (and for zombies), which is
    /// reported as EPERM.
    fn procargs(&self, pid: u32) -> io::Result<layout::ProcArgs> {
        match bsd::sysctl_vec(&[libc::CTL_KERN, libc::KERN_PROCARGS2, bsd::pid_arg(pid)?]) {
            Ok(buf) => layout::procargs2(&buf).map_err(io::Error::other),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                Err(io::Error::from_raw_os_error(libc::EPERM))
            }
            Err(e) => Err(e),
        }
    }
}

/// A `proc_pidfdinfo` flavor: its number, the size of its structure and
/// its name for messages.
#[derive(Clone, Copy)]
struct FdFlavor(libc::c_int, usize, &'static str);

impl FdFlavor {
    const VNODE_PATH: FdFlavor = FdFlavor(
        layout::PROC_PIDFDVNODEPATHINFO,
        layout::fdinfowithpath::SIZE,
        "PROC_PIDFDVNODEPATHINFO",
    );
    const SOCKET: FdFlavor = FdFlavor(
        layout::PROC_PIDFDSOCKETINFO,
        layout::socket_fdinfo::SIZE,
        "PROC_PIDFDSOCKETINFO",
    );

    fn what(self, pid: u32, fd: u32) -> String {
        format!("proc_pidfdinfo {} of fd {fd} of pid {pid}", self.2)
    }
}

/// What reading one descriptor found.
enum FdRead<T> {
    /// The flavor's structure, decoded.
    Read(T),
    /// Closed since the list was read, or reused for another kind of
    /// descriptor: skipped, as psutil skips it.
    Closed,
    /// The process exited part way: what was read stands.
    Gone,
}

/// `proc_pidfdinfo` of `flavor` for descriptor `fd` of `pid`, read into
/// `buf` and handed to `decode`.
fn read_fd<T>(
    pid: u32,
    fd: u32,
    flavor: FdFlavor,
    buf: &mut Vec<u8>,
    decode: impl FnOnce(&[u8]) -> Result<T, ParseError>,
) -> Result<FdRead<T>, Error> {
    match bsd_sys::pidfdinfo(pid, fd, flavor.0, flavor.1, buf) {
        Ok(()) => decode(buf)
            .map(FdRead::Read)
            .map_err(parse_error(flavor.what(pid, fd))),
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => Ok(FdRead::Closed),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(FdRead::Gone),
        Err(e) => Err(bsd::process_error(pid, flavor.what(pid, fd), e)),
    }
}

/// The mount flags psutil names in a partition's options, in its order
/// (`sys/mount.h`).
const MOUNT_FLAGS: &[(u64, &str)] = &[
    (mount_bit(libc::MNT_SYNCHRONOUS), "sync"),
    (mount_bit(libc::MNT_NOEXEC), "noexec"),
    (mount_bit(libc::MNT_NOSUID), "nosuid"),
    (mount_bit(libc::MNT_ASYNC), "async"),
    (mount_bit(libc::MNT_NOATIME), "noatime"),
    (mount_bit(libc::MNT_UNION), "union"),
    (mount_bit(libc::MNT_NODEV), "nodev"),
    (mount_bit(libc::MNT_EXPORTED), "exported"),
    (mount_bit(libc::MNT_LOCAL), "local"),
    (mount_bit(libc::MNT_QUOTA), "quota"),
    (mount_bit(libc::MNT_ROOTFS), "rootfs"),
    (mount_bit(libc::MNT_DOVOLFS), "dovolfs"),
    (mount_bit(libc::MNT_DONTBROWSE), "dontbrowse"),
    (mount_bit(libc::MNT_IGNORE_OWNERSHIP), "ignore-ownership"),
    (mount_bit(libc::MNT_AUTOMOUNTED), "automounted"),
    (mount_bit(libc::MNT_JOURNALED), "journaled"),
    (mount_bit(libc::MNT_NOUSERXATTR), "nouserxattr"),
    (mount_bit(libc::MNT_DEFWRITE), "defwrite"),
    (mount_bit(libc::MNT_MULTILABEL), "multilabel"),
];

impl Kernel for Libproc {
    const BACKEND: &'static str = "macos-libproc";
    const OS: &'static str = "macos";
    const FLAGS: IfFlags = layout::FLAGS;
    const MEDIA: MediaLayout = MACOS;
    const IF_DATA: Option<IfDataLayout> = None;
    const MOUNT_FLAGS: &'static [(u64, &'static str)] = MOUNT_FLAGS;
    const TRACK: bool = false;
    const EXIT_STATUS: bool = false;

    fn process_fields(&self) -> FieldSet {
        let mut fields = Field::portable();
        fields.remove(Field::IoCounters);
        fields.remove(Field::NumCtxSwitches);
        fields
    }

    fn os_release(&self) -> Result<String, Error> {
        Ok(format!(
            "macOS {}",
            bsd::named_string("kern.osproductversion")?
        ))
    }

    fn boot_time(&self) -> Result<f64, Error> {
        bsd::timeval("sysctl kern.boottime", &bsd::named_bytes("kern.boottime")?)
    }

    fn memory_total(&self) -> Result<u64, Error> {
        bsd::named_u64("hw.memsize")
    }

    fn processes(&self, fields: FieldSet) -> Result<Vec<Kinfo>, Error> {
        let pids = bsd_sys::all_pids().map_err(|e| bsd::io_error("proc_listallpids", e))?;
        let mut all = Vec::with_capacity(pids.len());
        for pid in pids {
            match self.read(pid, fields) {
                Ok(Some(k)) => all.push(k),
                Ok(None) => {}
                // A process the agent may not see at all is left out, as
                // ps(1) leaves it out.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => {}
                Err(e) => return Err(bsd::io_error(format!("proc_pidinfo of pid {pid}"), e)),
            }
        }
        Ok(all)
    }

    fn process(&self, pid: u32, fields: FieldSet) -> Result<Option<Kinfo>, Error> {
        self.read(pid, fields).map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => Error::AccessDenied {
                pid: Some(pid),
                path: format!("proc_pidinfo of pid {pid}").into(),
            },
            _ => bsd::io_error(format!("proc_pidinfo of pid {pid}"), e),
        })
    }

    fn exe(&self, pid: u32) -> io::Result<String> {
        Ok(lossy(&bsd_sys::pidpath(pid)?))
    }

    fn cmdline(&self, pid: u32) -> io::Result<Vec<String>> {
        Ok(self.procargs(pid)?.args)
    }

    fn environ(&self, pid: u32) -> io::Result<Vec<(String, String)>> {
        Ok(environ_of(&self.procargs(pid)?.env))
    }

    fn cwd(&self, pid: u32) -> io::Result<String> {
        let mut buf = Vec::new();
        bsd_sys::pidinfo(
            pid,
            libc::PROC_PIDVNODEPATHINFO,
            layout::vnodepathinfo::SIZE,
            &mut buf,
        )?;
        layout::cwd(&buf).map_err(io::Error::other)
    }

    fn num_fds(&self, pid: u32) -> io::Result<u32> {
        let bytes = bsd_sys::pidinfo_list(pid, libc::PROC_PIDLISTFDS)?.len();
        Ok(u32::try_from(bytes / layout::FDINFO_SIZE).unwrap_or(u32::MAX))
    }

    /// `PROC_PIDLISTFDS`, then for each vnode `proc_pidfdinfo`'s
    /// `PROC_PIDFDVNODEPATHINFO` (path, offset, flags), as psutil reads
    /// them. Other descriptors are listed by kind alone: no path, offset,
    /// mode or flags. Descriptors `query` or `after` leave out are not
    /// read.
    fn open_files(
        &self,
        pid: u32,
        query: &FilesQuery,
        after: Option<u32>,
    ) -> Result<Vec<OpenFile>, Error> {
        let what = format!("proc_pidinfo PROC_PIDLISTFDS of pid {pid}");
        let list = bsd_sys::pidinfo_list(pid, libc::PROC_PIDLISTFDS)
            .map_err(|e| bsd::process_error(pid, &what, e))?;
        let fds = layout::fd_list(&list).map_err(parse_error(what))?;
        let mut files = Vec::new();
        let mut buf = Vec::new();
        for (fd, fdtype) in fds {
            if after.is_some_and(|after| fd <= after) {
                continue;
            }
            if fdtype != layout::prox_fdtype::VNODE {
                let kind = layout::fd_kind(fdtype);
                if query.admits(kind) {
                    files.push(OpenFile {
                        pid,
                        fd,
                        path: String::new(),
                        position: 0,
                        mode: "",
                        flags: 0,
                        kind,
                        deleted: false,
                    });
                }
                continue;
            }
            let read = read_fd(pid, fd, FdFlavor::VNODE_PATH, &mut buf, |b| {
                layout::vnode_fd(pid, fd, b)
            })?;
            match read {
                FdRead::Read(file) => files.push(file),
                FdRead::Closed => {}
                FdRead::Gone => break,
            }
        }
        Ok(files)
    }

    /// For each process, `PROC_PIDLISTFDS`, then `proc_pidfdinfo`'s
    /// `PROC_PIDFDSOCKETINFO` for each socket, as psutil reads them:
    /// family, type, both ends and the TCP state.
    fn sockets(&self, pids: &[u32]) -> Result<HeldSockets, Error> {
        let pids = match pids {
            [] => bsd_sys::all_pids().map_err(|e| bsd::io_error("proc_listallpids", e))?,
            pids => pids.to_vec(),
        };
        HeldSockets::per_process(pids, |pid| self.process_sockets(pid))
    }

    fn system_fields(&self) -> SystemFields {
        [
            SystemField::CpuTimes,
            SystemField::VirtualMemory,
            SystemField::SwapMemory,
            SystemField::Users,
            SystemField::CpuFreq,
        ]
        .into_iter()
        .collect()
    }

    /// `host_processor_info(PROCESSOR_CPU_LOAD_INFO)` per CPU, their sum
    /// as the total (what `HOST_CPU_LOAD_INFO` gives), at
    /// `kern.clockrate`'s stathz (psutil divides by `CLK_TCK`, 100, the
    /// same rate on macOS). macOS counts no interrupt time apart.
    fn cpu_times(&self) -> Result<CpuTimesSet, Error> {
        let hz = sys::stathz(&bsd::named_bytes("kern.clockrate")?)
            .map_err(parse_error("sysctl kern.clockrate"))?;
        let what = "host_processor_info";
        let bytes = bsd_sys::processor_load_ticks().map_err(|e| bsd::io_error(what, e))?;
        let ticks =
            sys::counters("processor_cpu_load_info", &bytes, 4).map_err(parse_error(what))?;
        let per_cpu = sys::STATES_MACOS
            .per_cpu(&ticks, hz)
            .map_err(parse_error(what))?;
        Ok(CpuTimesSet {
            total: sys::sum_cpus(&per_cpu),
            per_cpu,
        })
    }

    /// psutil's macOS figures: `hw.memsize` and `host_statistics64`'s
    /// page counts.
    fn virtual_memory(&self) -> Result<VirtualMemory, Error> {
        let what = "host_statistics64";
        let vm = bsd_sys::vm_statistics64()
            .map_err(|e| bsd::io_error(what, e))
            .and_then(|b| sys::mach_vm(&b).map_err(parse_error(what)))?;
        Ok(sys::memory_macos(
            self.memory_total()?,
            vm,
            bsd::named_u64("hw.pagesize")?,
        ))
    }

    /// `vm.swapusage`, and the pages paged in and out
    /// (`host_statistics64`), as psutil reports them.
    fn swap_memory(&self) -> Result<SwapMemory, Error> {
        let (total, used) = sys::xsw_usage(&bsd::named_bytes("vm.swapusage")?)
            .map_err(parse_error("sysctl vm.swapusage"))?;
        let what = "host_statistics64";
        let vm = bsd_sys::vm_statistics64()
            .map_err(|e| bsd::io_error(what, e))
            .and_then(|b| sys::mach_vm(&b).map_err(parse_error(what)))?;
        let page = bsd::named_u64("hw.pagesize")?;
        Ok(sys::swap(
            total,
            used,
            Some(vm.pageins.saturating_mul(page)),
            Some(vm.pageouts.saturating_mul(page)),
        ))
    }

    fn cpu_cores(&self) -> Option<u32> {
        bsd::named_u64("hw.physicalcpu")
            .ok()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n > 0)
    }

    /// The 64-bit counters of `NET_RT_IFLIST2` (`getifaddrs` carries only
    /// 32-bit ones on macOS, which wrap after 4 GiB).
    fn counters(&self) -> Result<HashMap<String, IfData>, Error> {
        let mib = [libc::CTL_NET, libc::PF_ROUTE, 0, 0, libc::NET_RT_IFLIST2, 0];
        let buf = bsd::sysctl_vec(&mib).map_err(|e| bsd::io_error("sysctl NET_RT_IFLIST2", e))?;
        Ok(layout::iflist2(&buf)
            .map_err(parse_error("sysctl NET_RT_IFLIST2"))?
            .into_iter()
            .collect())
    }

    fn users(&self) -> Result<Vec<User>, Error> {
        Ok(bsd_sys::sessions())
    }

    /// `hw.cpufrequency` and its range, in MHz; Apple silicon has none of
    /// them, and the figure reads unsupported there.
    fn cpu_freq(&self) -> Result<CpuFreqSet, Error> {
        let mhz = |hz: u64| hz as f64 / 1e6;
        Ok(CpuFreqSet {
            total: CpuFreq {
                current: mhz(bsd::named_u64("hw.cpufrequency")?),
                min: bsd::named_u64("hw.cpufrequency_min").ok().map(mhz),
                max: bsd::named_u64("hw.cpufrequency_max").ok().map(mhz),
            },
            per_cpu: Vec::new(),
        })
    }
}
