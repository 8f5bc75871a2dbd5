//! NetBSD: `KERN_PROC2` sysctls, `getifaddrs(3)` and kqueue.
//!
//! The process table is `KERN_PROC2` with `KERN_PROC_ALL` (one
//! `kinfo_proc2` per process, its LWP count included); per process,
//! `KERN_PROC_ARGS` for the executable, arguments, environment and
//! working directory, and `KERN_FILE2` for descriptors. Not supplied: I/O
//! counters (block operations only).
//!
//! System figures: CPU times (`kern.cp_time.N` at `kern.clockrate`'s
//! stathz), `vm.uvmexp2` for memory, swap and CPU counters,
//! `machdep.cpu.frequency`, and disk I/O (`hw.iostats`).

use std::io;

use libc::c_int;

use super::{
    Error, FieldSet,
    bsd::{self, Bsd, Kernel, parse_error},
    bsd_sys,
    decode::system::mount_bit,
    decode::{
        self, IfDataLayout, IfFlags, Kinfo,
        media::{MediaLayout, NETBSD},
        netbsd::{self as layout, KINFO_PROC2},
        nul_separated,
        system::{self as sys, Pages, Uvm},
        until_nul,
    },
    parse::{cmdline::parse_environ, lossy},
    system::{
        CpuFreq, CpuFreqSet, CpuStats, CpuTimesSet, DiskIo, SwapMemory, SystemField, SystemFields,
        User, VirtualMemory,
    },
};

mod checks;

/// The NetBSD backend.
pub type NetBsd = Bsd<Sysctl>;

/// A NetBSD backend reading the running kernel.
pub fn backend() -> Result<NetBsd, Error> {
    Ok(Bsd::new(Sysctl {
        page_size: rustix::param::page_size() as u64,
    }))
}

/// `HW_PHYSMEM64` and `KERN_PROC_CWD` (`sys/sysctl.h`), which the `libc`
/// crate lacks.
const HW_PHYSMEM64: c_int = 13;
const KERN_PROC_CWD: c_int = 6;
/// `VM_UVMEXP2` (`uvm/uvm_param.h`): `struct uvmexp_sysctl`.
const VM_UVMEXP2: c_int = 5;
/// `HW_IOSTATS` (`sys/sysctl.h`): `struct io_sysctl` records.
const HW_IOSTATS: c_int = 9;

/// NetBSD's sysctl interface.
#[derive(Clone, Debug)]
pub struct Sysctl {
    /// Bytes per page, the unit of `kinfo_proc2`'s sizes.
    page_size: u64,
}

impl Sysctl {
    /// `KERN_PROC_ARGS` of `pid` for `which` (argv, environment, path,
    /// working directory).
    fn args(&self, pid: u32, which: c_int) -> io::Result<Vec<u8>> {
        bsd::sysctl_vec(&[
            libc::CTL_KERN,
            libc::KERN_PROC_ARGS,
            bsd::pid_arg(pid)?,
            which,
        ])
    }
}

/// `vm.uvmexp2`.
fn uvmexp2() -> Result<Uvm, Error> {
    let what = "sysctl vm.uvmexp2";
    let buf = bsd::sysctl_vec(&[libc::CTL_VM, VM_UVMEXP2]).map_err(|e| bsd::io_error(what, e))?;
    sys::UVMEXP2_NETBSD.decode(&buf).map_err(parse_error(what))
}

/// A `KERN_PROC2` table for `op` and `arg`.
fn table(op: c_int, arg: c_int) -> io::Result<Vec<u8>> {
    bsd::proc_records(libc::KERN_PROC2, op, arg, KINFO_PROC2.size)
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
    (mount_bit(libc::MNT_NODEV), "nodev"),
    (mount_bit(libc::MNT_UNION), "union"),
    (mount_bit(libc::MNT_NOCOREDUMP), "nocoredump"),
    (mount_bit(libc::MNT_RELATIME), "relatime"),
    (mount_bit(libc::MNT_IGNORE), "ignore"),
    (mount_bit(libc::MNT_DISCARD), "discard"),
    (mount_bit(libc::MNT_EXTATTR), "extattr"),
    (mount_bit(libc::MNT_LOG), "log"),
    (mount_bit(libc::MNT_SYMPERM), "symperm"),
    (mount_bit(libc::MNT_NODEVMTIME), "nodevmtime"),
];

impl Kernel for Sysctl {
    const BACKEND: &'static str = "netbsd-sysctl";
    const OS: &'static str = "netbsd";
    const FLAGS: IfFlags = layout::FLAGS;
    const MEDIA: MediaLayout = NETBSD;
    const IF_DATA: Option<IfDataLayout> = Some(layout::IF_DATA);
    const MOUNT_FLAGS: &'static [(u64, &'static str)] = MOUNT_FLAGS;
    const TRACK: bool = true;
    const EXIT_STATUS: bool = true;

    fn os_release(&self) -> Result<String, Error> {
        let uts = rustix::system::uname();
        Ok(format!("NetBSD {}", uts.release().to_string_lossy()))
    }

    fn boot_time(&self) -> Result<f64, Error> {
        bsd::sysctl_boot_time(&[libc::CTL_KERN, libc::KERN_BOOTTIME])
    }

    fn memory_total(&self) -> Result<u64, Error> {
        bsd::sysctl_u64(&[libc::CTL_HW, HW_PHYSMEM64], "sysctl hw.physmem64")
    }

    fn processes(&self, _fields: FieldSet) -> Result<Vec<Kinfo>, Error> {
        bsd::table(
            "sysctl kern.proc2.all",
            table(libc::KERN_PROC_ALL, 0),
            |buf| layout::proc_table(buf, self.page_size),
        )
    }

    fn process(&self, pid: u32, _fields: FieldSet) -> Result<Option<Kinfo>, Error> {
        bsd::single(
            pid,
            &format!("sysctl kern.proc2.pid.{pid}"),
            bsd::pid_arg(pid).and_then(|arg| table(libc::KERN_PROC_PID, arg)),
            |buf| layout::proc_table(buf, self.page_size),
        )
    }

    fn exe(&self, pid: u32) -> io::Result<String> {
        match self.args(pid, libc::KERN_PROC_PATHNAME) {
            Ok(buf) => Ok(lossy(until_nul(&buf))),
            // No path recorded (kernel processes): "", as psutil says.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(String::new()),
            Err(e) => Err(e),
        }
    }

    fn cmdline(&self, pid: u32) -> io::Result<Vec<String>> {
        Ok(nul_separated(&self.args(pid, libc::KERN_PROC_ARGV)?))
    }

    fn environ(&self, pid: u32) -> io::Result<Vec<(String, String)>> {
        Ok(parse_environ(&self.args(pid, libc::KERN_PROC_ENV)?))
    }

    fn cwd(&self, pid: u32) -> io::Result<String> {
        Ok(lossy(until_nul(&self.args(pid, KERN_PROC_CWD)?)))
    }

    fn num_fds(&self, pid: u32) -> io::Result<u32> {
        bsd::count_fds(
            libc::KERN_FILE2,
            pid,
            layout::KINFO_FILE_SIZE,
            layout::KINFO_FILE_FD,
        )
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

    /// `kern.cp_time.N` of each of `hw.ncpu` CPUs, at `kern.clockrate`'s
    /// stathz (psutil divides by `CLOCKS_PER_SEC`); the total is their
    /// sum, as `kern.cp_time` is.
    fn cpu_times(&self) -> Result<CpuTimesSet, Error> {
        let what = "sysctl kern.clockrate";
        let clock = bsd::sysctl_vec(&[libc::CTL_KERN, libc::KERN_CLOCKRATE])
            .map_err(|e| bsd::io_error(what, e))?;
        let hz = sys::stathz(&clock).map_err(parse_error(what))?;
        let ncpu = bsd::sysctl_u64(&[libc::CTL_HW, libc::HW_NCPU], "sysctl hw.ncpu")?;
        let mut per_cpu = Vec::new();
        for n in 0..c_int::try_from(ncpu).unwrap_or(c_int::MAX) {
            let what = "sysctl kern.cp_time";
            let buf = bsd::sysctl_vec(&[libc::CTL_KERN, libc::KERN_CP_TIME, n])
                .map_err(|e| bsd::io_error(what, e))?;
            let ticks = sys::counters("kern.cp_time", &buf, 8).map_err(parse_error(what))?;
            per_cpu.extend(
                sys::STATES_FREEBSD_NETBSD
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
        Ok(uvmexp2()?.stats)
    }

    /// psutil's NetBSD figures from `vm.uvmexp2`: the managed pages as
    /// the total, anonymous, file and executable pages as cached. psutil
    /// reads buffers and shared memory from a Linux-emulating
    /// `/proc/meminfo`; they are not given here.
    fn virtual_memory(&self) -> Result<VirtualMemory, Error> {
        let u = uvmexp2()?;
        Ok(sys::memory_netbsd(Pages {
            total: u.total,
            free: u.free,
            active: u.active,
            inactive: u.inactive,
            wired: u.wired,
            cached: u.cached.unwrap_or(0),
            buffers: None,
            shared: None,
        }))
    }

    /// `vm.uvmexp2`'s swap pages (the enabled devices' sum) and pages
    /// swapped in and out.
    fn swap_memory(&self) -> Result<SwapMemory, Error> {
        let u = uvmexp2()?;
        Ok(sys::swap(
            u.swap_total,
            u.swap_used,
            Some(u.swapped_in),
            Some(u.swapped_out),
        ))
    }

    fn users(&self) -> Result<Vec<User>, Error> {
        Ok(bsd_sys::sessions())
    }

    /// `hw.iostats`: every disk's transfers, bytes and busy time.
    fn disk_io_counters(&self) -> Result<Vec<DiskIo>, Error> {
        let what = "sysctl hw.iostats";
        let size = c_int::try_from(sys::io_sysctl::SIZE).unwrap_or(c_int::MAX);
        let buf = bsd::sysctl_vec(&[libc::CTL_HW, HW_IOSTATS, size])
            .map_err(|e| bsd::io_error(what, e))?;
        sys::iostats(&buf).map_err(parse_error(what))
    }

    /// `machdep.cpu.frequency.current` (and `.available`, whose first and
    /// last levels are the range), in MHz, as psutil reads them; x86 with
    /// est(4) or powernow(4) only.
    fn cpu_freq(&self) -> Result<CpuFreqSet, Error> {
        let what = "sysctl machdep.cpu.frequency.current";
        let buf = bsd_sys::sysctl_by_name("machdep.cpu.frequency.current")
            .map_err(|e| bsd::io_error(what, e))?;
        let current = decode::unsigned(what, &buf).map_err(parse_error(what))? as f64;
        let (min, max) = bsd_sys::sysctl_by_name("machdep.cpu.frequency.available")
            .map(|levels| {
                let mhz: Vec<f64> = lossy(until_nul(&levels))
                    .split_whitespace()
                    .filter_map(|l| l.parse().ok())
                    .collect();
                let lo = mhz.iter().copied().reduce(f64::min);
                let hi = mhz.iter().copied().reduce(f64::max);
                (lo, hi)
            })
            .unwrap_or((None, None));
        Ok(CpuFreqSet {
            total: CpuFreq { current, min, max },
            per_cpu: Vec::new(),
        })
    }
}
