//! OpenBSD: `KERN_PROC` sysctls, `getifaddrs(3)` and kqueue.
//!
//! The process table is `KERN_PROC_ALL` (one `kinfo_proc` per process);
//! per process, `KERN_PROC_ARGS` for arguments and environment,
//! `KERN_PROC_CWD`, `KERN_FILE_BYPID` for descriptors, and a
//! `KERN_PROC_SHOW_THREADS` table to count threads. Not supplied: the
//! executable (OpenBSD keeps no path of it that a sysctl returns) and
//! I/O counters (block operations only). Sockets come from
//! `KERN_FILE_BYPID` too, TCP states included.
//!
//! System figures: CPU times (`kern.cp_time2.N` at `kern.clockrate`'s
//! stathz), `vm.uvmexp` for memory, swap and CPU counters, the buffer
//! cache (`vfs.generic.bcachestat`), `hw.cpuspeed`, disk I/O
//! (`hw.diskstats`) and sessions from `/var/run/utmp`.

use std::io;

use libc::c_int;

use super::{
    Duplex, Error, Field, FieldSet,
    bsd::{self, Bsd, HeldSockets, Kernel, parse_error},
    bsd_sys,
    decode::system::mount_bit,
    decode::{
        IfDataLayout, IfFlags, Kinfo, environ_of,
        media::{MediaLayout, OPENBSD},
        openbsd::{self as layout, KINFO_PROC},
        system::{self as sys, Pages, Uvm},
        until_nul,
    },
    parse::lossy,
    system::{
        CpuFreq, CpuFreqSet, CpuStats, CpuTimesSet, DiskIo, SwapMemory, SystemField, SystemFields,
        User, VirtualMemory,
    },
};

mod checks;

/// The OpenBSD backend.
pub type OpenBsd = Bsd<Sysctl>;

/// An OpenBSD backend reading the running kernel.
pub fn backend() -> Result<OpenBsd, Error> {
    Ok(Bsd::new(Sysctl {
        page_size: rustix::param::page_size() as u64,
    }))
}

/// `HW_PHYSMEM64` (`sys/sysctl.h`), which the `libc` crate lacks.
const HW_PHYSMEM64: c_int = 19;

/// `VM_UVMEXP` and `VFS_GENERIC`.`VFS_BCACHESTAT` (`uvm/uvmexp.h`,
/// `sys/mount.h`), which the `libc` crate lacks.
const VM_UVMEXP: c_int = 4;
const VFS_GENERIC: c_int = 0;
const VFS_BCACHESTAT: c_int = 3;
/// `HW_DISKSTATS` and `HW_CPUSPEED` (`sys/sysctl.h`).
const HW_DISKSTATS: c_int = 9;
const HW_CPUSPEED: c_int = 12;

/// OpenBSD's sysctl interface.
#[derive(Clone, Debug)]
pub struct Sysctl {
    /// Bytes per page, the unit of `kinfo_proc`'s sizes.
    page_size: u64,
}

impl Sysctl {
    /// `KERN_PROC_ARGS` of `pid` for `which` (argv or environment), as
    /// strings.
    fn args(&self, pid: u32, which: c_int) -> io::Result<Vec<String>> {
        let mib = [
            libc::CTL_KERN,
            libc::KERN_PROC_ARGS,
            bsd::pid_arg(pid)?,
            which,
        ];
        let buf = bsd::sysctl_vec(&mib)?;
        // The kernel wrote the strings' addresses as they are in `buf`.
        layout::pointer_strings(&buf, buf.as_ptr() as u64).map_err(io::Error::other)
    }

    /// `vm.uvmexp`.
    fn uvmexp(&self) -> Result<Uvm, Error> {
        let what = "sysctl vm.uvmexp";
        let buf =
            bsd::sysctl_vec(&[libc::CTL_VM, VM_UVMEXP]).map_err(|e| bsd::io_error(what, e))?;
        sys::UVMEXP_OPENBSD.decode(&buf).map_err(parse_error(what))
    }

    fn threads(&self, pid: u32) -> io::Result<u32> {
        let op = libc::KERN_PROC_PID | libc::KERN_PROC_SHOW_THREADS;
        let buf = table(op, bsd::pid_arg(pid)?)?;
        layout::count_threads(&buf).map_err(io::Error::other)
    }

    /// Counts the threads of every live process in `all`, if asked for. A
    /// process gone meanwhile keeps no count; the scan goes on.
    fn add_threads(&self, all: &mut [Kinfo], fields: FieldSet) {
        if fields.contains(Field::NumThreads) {
            for k in all.iter_mut().filter(|k| !k.is_zombie()) {
                k.num_threads = self.threads(k.pid).ok();
            }
        }
    }
}

/// A `KERN_PROC` table for `op` and `arg`.
fn table(op: c_int, arg: c_int) -> io::Result<Vec<u8>> {
    bsd::proc_records(libc::KERN_PROC, op, arg, KINFO_PROC.size)
}

/// The mount flags psutil names in a partition's options, in its order
/// (`sys/mount.h`).
const MOUNT_FLAGS: &[(u64, &str)] = &[
    (mount_bit(libc::MNT_SYNCHRONOUS), "sync"),
    (mount_bit(libc::MNT_NOEXEC), "noexec"),
    (mount_bit(libc::MNT_NOSUID), "nosuid"),
    (mount_bit(libc::MNT_ASYNC), "async"),
    (mount_bit(libc::MNT_NOATIME), "noatime"),
    (mount_bit(libc::MNT_SOFTDEP), "softdep"),
];

impl Kernel for Sysctl {
    const BACKEND: &'static str = "openbsd-sysctl";
    const OS: &'static str = "openbsd";
    const FLAGS: IfFlags = layout::FLAGS;
    const MEDIA: MediaLayout = OPENBSD;
    const IF_DATA: Option<IfDataLayout> = Some(layout::IF_DATA);
    const MOUNT_FLAGS: &'static [(u64, &'static str)] = MOUNT_FLAGS;
    const TRACK: bool = true;
    const EXIT_STATUS: bool = true;

    fn link_state_duplex(link_state: u8) -> Duplex {
        layout::link_state_duplex(link_state)
    }

    fn process_fields(&self) -> FieldSet {
        let mut fields = Field::portable();
        fields.remove(Field::Exe);
        fields.remove(Field::IoCounters);
        fields
    }

    fn os_release(&self) -> Result<String, Error> {
        let uts = rustix::system::uname();
        Ok(format!("OpenBSD {}", uts.release().to_string_lossy()))
    }

    fn boot_time(&self) -> Result<f64, Error> {
        bsd::sysctl_boot_time(&[libc::CTL_KERN, libc::KERN_BOOTTIME])
    }

    fn memory_total(&self) -> Result<u64, Error> {
        bsd::sysctl_u64(&[libc::CTL_HW, HW_PHYSMEM64], "sysctl hw.physmem64")
    }

    fn processes(&self, fields: FieldSet) -> Result<Vec<Kinfo>, Error> {
        let mut all = bsd::table(
            "sysctl kern.proc.all",
            table(libc::KERN_PROC_ALL, 0),
            |buf| layout::proc_table(buf, self.page_size),
        )?;
        self.add_threads(&mut all, fields);
        Ok(all)
    }

    fn process(&self, pid: u32, fields: FieldSet) -> Result<Option<Kinfo>, Error> {
        let fetched = bsd::pid_arg(pid).and_then(|arg| table(libc::KERN_PROC_PID, arg));
        let found = bsd::single(
            pid,
            &format!("sysctl kern.proc.pid.{pid}"),
            fetched,
            |buf| layout::proc_table(buf, self.page_size),
        )?;
        let mut one: Vec<Kinfo> = found.into_iter().collect();
        self.add_threads(&mut one, fields);
        Ok(one.pop())
    }

    fn exe(&self, _pid: u32) -> io::Result<String> {
        Err(io::Error::from_raw_os_error(libc::ENOTSUP))
    }

    fn cmdline(&self, pid: u32) -> io::Result<Vec<String>> {
        self.args(pid, libc::KERN_PROC_ARGV)
    }

    fn environ(&self, pid: u32) -> io::Result<Vec<(String, String)>> {
        Ok(environ_of(&self.args(pid, libc::KERN_PROC_ENV)?))
    }

    fn cwd(&self, pid: u32) -> io::Result<String> {
        let buf = bsd::sysctl_vec(&[libc::CTL_KERN, libc::KERN_PROC_CWD, bsd::pid_arg(pid)?])?;
        Ok(lossy(until_nul(&buf)))
    }

    fn num_fds(&self, pid: u32) -> io::Result<u32> {
        bsd::count_fds(
            libc::KERN_FILE,
            pid,
            layout::KINFO_FILE_SIZE,
            layout::KINFO_FILE_FD,
        )
    }

    /// `KERN_FILE_BYPID`: one table of every process's descriptors (pid
    /// -1, as psutil and `fstat(1)` read it) or one per process asked
    /// for; the socket records carry family, type, both addresses and
    /// the TCP state. Only a unix socket's own path is recorded, not its
    /// peer's.
    fn sockets(&self, pids: &[u32]) -> Result<HeldSockets, Error> {
        let table = |arg: c_int| -> io::Result<Vec<u8>> {
            let mib = [libc::CTL_KERN, libc::KERN_FILE, libc::KERN_FILE_BYPID, arg];
            let mut buf = Vec::new();
            bsd_sys::sysctl_table(&mib, layout::KINFO_FILE_SIZE, &mut buf)?;
            Ok(buf)
        };
        let decode = |what: &str, buf: &[u8]| layout::sockets(buf).map_err(parse_error(what));
        if pids.is_empty() {
            let what = "sysctl kern.file (KERN_FILE_BYPID, all processes)";
            let buf = table(-1).map_err(|e| match e.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => Error::AccessDenied {
                    pid: None,
                    path: what.into(),
                },
                _ => bsd::io_error(what, e),
            })?;
            return Ok(HeldSockets {
                sockets: decode(what, &buf)?,
                process_errors: Vec::new(),
            });
        }
        HeldSockets::per_process(pids.iter().copied(), |pid| {
            let what = format!("sysctl kern.file (KERN_FILE_BYPID, pid {pid})");
            let buf = bsd::pid_arg(pid)
                .and_then(table)
                .map_err(|e| bsd::process_error(pid, &what, e))?;
            decode(&what, &buf)
        })
    }

    fn system_fields(&self) -> SystemFields {
        [
            SystemField::CpuTimes,
            SystemField::CpuStats,
            SystemField::VirtualMemory,
            SystemField::SwapMemory,
            SystemField::Users,
            SystemField::CpuFreq,
        ]
        .into_iter()
        .collect()
    }

    /// `kern.cp_time2.N` of each of `hw.ncpu` CPUs, at `kern.clockrate`'s
    /// stathz; the total is their sum (`kern.cp_time` is their mean).
    fn cpu_times(&self) -> Result<CpuTimesSet, Error> {
        let what = "sysctl kern.clockrate";
        let clock = bsd::sysctl_vec(&[libc::CTL_KERN, libc::KERN_CLOCKRATE])
            .map_err(|e| bsd::io_error(what, e))?;
        let hz = sys::stathz(&clock).map_err(parse_error(what))?;
        let ncpu = bsd::sysctl_u64(&[libc::CTL_HW, libc::HW_NCPU], "sysctl hw.ncpu")?;
        let mut per_cpu = Vec::new();
        for n in 0..c_int::try_from(ncpu).unwrap_or(c_int::MAX) {
            let what = "sysctl kern.cp_time2";
            let buf = match bsd::sysctl_vec(&[libc::CTL_KERN, libc::KERN_CPTIME2, n]) {
                Ok(buf) => buf,
                // A CPU that is not running (hw.smt=0) has no counters.
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => continue,
                Err(e) => return Err(bsd::io_error(what, e)),
            };
            let ticks = sys::counters("kern.cp_time2", &buf, 8).map_err(parse_error(what))?;
            per_cpu.extend(
                sys::STATES_OPENBSD
                    .per_cpu(&ticks, hz)
                    .map_err(parse_error(what))?,
            );
        }
        Ok(CpuTimesSet {
            total: sys::sum_cpus(&per_cpu),
            per_cpu,
        })
    }

    fn cpu_stats(&self) -> Result<CpuStats, Error> {
        Ok(self.uvmexp()?.stats)
    }

    /// psutil's sources: `hw.physmem64`, `vm.uvmexp`'s page counts, and the
    /// buffer cache's pages as cached memory (as top counts it).
    fn virtual_memory(&self) -> Result<VirtualMemory, Error> {
        let u = self.uvmexp()?;
        let what = "sysctl vfs.generic.bcachestat";
        let bcache = bsd::sysctl_vec(&[libc::CTL_VFS, VFS_GENERIC, VFS_BCACHESTAT])
            .map_err(|e| bsd::io_error(what, e))?;
        let cached = sys::bcache_pages(&bcache).map_err(parse_error(what))?;
        Ok(sys::memory_freebsd_openbsd(Pages {
            total: self.memory_total()?,
            free: u.free,
            active: u.active,
            inactive: u.inactive,
            wired: u.wired,
            cached: cached.saturating_mul(u.page_size),
            buffers: None,
            shared: None,
        }))
    }

    /// `vm.uvmexp`'s swap pages (the enabled devices' sum, what
    /// `swapctl(SWAP_STATS)` gives psutil) and pages swapped in and out.
    fn swap_memory(&self) -> Result<SwapMemory, Error> {
        let u = self.uvmexp()?;
        Ok(sys::swap(
            u.swap_total,
            u.swap_used,
            Some(u.swapped_in),
            Some(u.swapped_out),
        ))
    }

    /// The records of `/var/run/utmp` (OpenBSD has no utmpx).
    fn users(&self) -> Result<Vec<User>, Error> {
        let path = "/var/run/utmp";
        let file = std::fs::read(path).map_err(|e| bsd::io_error(path, e))?;
        sys::utmp_users(&file).map_err(parse_error(path))
    }

    /// `hw.cpuspeed`, in MHz; OpenBSD gives no range.
    fn cpu_freq(&self) -> Result<CpuFreqSet, Error> {
        let current = bsd::sysctl_u64(&[libc::CTL_HW, HW_CPUSPEED], "sysctl hw.cpuspeed")? as f64;
        Ok(CpuFreqSet {
            total: CpuFreq {
                current,
                min: None,
                max: None,
            },
            per_cpu: Vec::new(),
        })
    }

    /// `hw.diskstats`: every disk's transfers, bytes and busy time.
    fn disk_io_counters(&self) -> Result<Vec<DiskIo>, Error> {
        let what = "sysctl hw.diskstats";
        let buf =
            bsd::sysctl_vec(&[libc::CTL_HW, HW_DISKSTATS]).map_err(|e| bsd::io_error(what, e))?;
        sys::diskstats(&buf).map_err(parse_error(what))
    }
}
