//! FreeBSD: `kern.proc` sysctls, `getifaddrs(3)` and kqueue.
//!
//! The process table is `kern.proc.proc` (one `kinfo_proc` per process,
//! threads folded in); per process, `kern.proc.pathname`, `.args`, `.env`,
//! `.cwd` and `.filedesc`. Every field of the API is supplied but the I/O
//! counters: FreeBSD keeps block operations (`ru_inblock`), not the read
//! and write calls and bytes the API means. Open files come from
//! `.filedesc` too, paths, offsets and flags included, and so do sockets:
//! family, type, fd and both addresses, but no TCP state (`kinfo_file`
//! has none; TCP sockets are NONE, and a state filter is UNSUPPORTED).
//!
//! System figures: CPU times (`kern.cp_time`, `kern.cp_times` at
//! `kern.clockrate`'s stathz), `vm.stats` counters, swap devices
//! (`vm.swap_info`), CPU frequency (`dev.cpu.0.freq`), temperatures and
//! the battery (ACPI), physical cores (`kern.sched.topology_spec`) and
//! disk I/O (`kern.devstat.all`).

use std::io;

use libc::c_int;

use super::{
    Error, FieldSet, FilesQuery, OpenFile,
    bsd::{self, Bsd, HeldSockets, Kernel, parse_error},
    bsd_sys,
    decode::system::mount_bit,
    decode::{
        IfDataLayout, IfFlags, Kinfo,
        freebsd::{self as layout, Files},
        media::{FREEBSD, MediaLayout},
        nul_separated,
        system::{self as sys, Pages},
        until_nul,
    },
    parse::{cmdline::parse_environ, lossy},
    system::{
        Battery, CpuFreq, CpuFreqSet, CpuStats, CpuTimesSet, DiskIo, SwapMemory, SystemField,
        SystemFields, Temperature, User, VirtualMemory,
    },
};

mod checks;

/// The FreeBSD backend.
pub type FreeBsd = Bsd<Sysctl>;

/// A FreeBSD backend reading the running kernel.
pub fn backend() -> Result<FreeBsd, Error> {
    Ok(Bsd::new(Sysctl {
        page_size: rustix::param::page_size() as u64,
    }))
}

/// FreeBSD's sysctl interface.
#[derive(Clone, Debug)]
pub struct Sysctl {
    /// Bytes per page, the unit of `kinfo_proc`'s sizes.
    page_size: u64,
}

impl Sysctl {
    /// `kern.proc.<op>.<pid>`.
    fn per_process(&self, op: c_int, pid: u32) -> io::Result<Vec<u8>> {
        bsd::sysctl_vec(&[libc::CTL_KERN, libc::KERN_PROC, op, bsd::pid_arg(pid)?])
    }

    /// The value of the sysctl `name`, as bytes.
    fn raw(&self, name: &'static str) -> Result<Vec<u8>, Error> {
        bsd_sys::name_to_mib(name)
            .and_then(|mib| bsd::sysctl_vec(&mib))
            .map_err(|e| bsd::io_error(format!("sysctl {name}"), e))
    }

    /// The statistics clock's rate, the unit of `kern.cp_time`.
    fn stathz(&self) -> Result<u64, Error> {
        sys::stathz(&self.raw("kern.clockrate")?).map_err(parse_error("sysctl kern.clockrate"))
    }

    /// `vm.stats.vm.<name>`, a page count, in bytes.
    fn pages(&self, name: &'static str) -> Result<u64, Error> {
        Ok(bsd::named_u64(name)?.saturating_mul(self.page_size))
    }

    fn files(&self, op: c_int, pid: u32) -> io::Result<Files> {
        let buf = self.per_process(op, pid)?;
        layout::files(&buf).map_err(io::Error::other)
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
    (mount_bit(libc::MNT_SOFTDEP), "softdep"),
    (mount_bit(libc::MNT_UNION), "union"),
    (mount_bit(libc::MNT_SUIDDIR), "suiddir"),
    (mount_bit(libc::MNT_NOSYMFOLLOW), "nosymfollow"),
    (mount_bit(libc::MNT_GJOURNAL), "gjournal"),
    (mount_bit(libc::MNT_MULTILABEL), "multilabel"),
    (mount_bit(libc::MNT_ACLS), "acls"),
    (mount_bit(libc::MNT_NOCLUSTERR), "noclusterr"),
    (mount_bit(libc::MNT_NOCLUSTERW), "noclusterw"),
    (mount_bit(libc::MNT_NFS4ACLS), "nfs4acls"),
];

impl Kernel for Sysctl {
    const BACKEND: &'static str = "freebsd-sysctl";
    const OS: &'static str = "freebsd";
    const FLAGS: IfFlags = layout::FLAGS;
    const MEDIA: MediaLayout = FREEBSD;
    const IF_DATA: Option<IfDataLayout> = Some(layout::IF_DATA);
    const MOUNT_FLAGS: &'static [(u64, &'static str)] = MOUNT_FLAGS;
    const TRACK: bool = true;
    const EXIT_STATUS: bool = true;
    const TCP_STATES: bool = false;

    fn os_release(&self) -> Result<String, Error> {
        Ok(format!("FreeBSD {}", bsd::named_string("kern.osrelease")?))
    }

    fn boot_time(&self) -> Result<f64, Error> {
        bsd::timeval("sysctl kern.boottime", &bsd::named_bytes("kern.boottime")?)
    }

    fn memory_total(&self) -> Result<u64, Error> {
        bsd::named_u64("hw.physmem")
    }

    fn processes(&self, _fields: FieldSet) -> Result<Vec<Kinfo>, Error> {
        bsd::table(
            "sysctl kern.proc.proc",
            bsd::sysctl_vec(&[libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_PROC]),
            |buf| layout::proc_table(buf, self.page_size),
        )
    }

    fn process(&self, pid: u32, _fields: FieldSet) -> Result<Option<Kinfo>, Error> {
        bsd::single(
            pid,
            &format!("sysctl kern.proc.pid.{pid}"),
            self.per_process(libc::KERN_PROC_PID, pid),
            |buf| layout::proc_table(buf, self.page_size),
        )
    }

    /// `kern.proc.pathname`; "" where the kernel knows no path (kernel
    /// processes, ENOENT), as psutil reports it.
    fn exe(&self, pid: u32) -> io::Result<String> {
        match self.per_process(libc::KERN_PROC_PATHNAME, pid) {
            Ok(buf) => Ok(lossy(until_nul(&buf))),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(String::new()),
            Err(e) => Err(e),
        }
    }

    fn cmdline(&self, pid: u32) -> io::Result<Vec<String>> {
        Ok(nul_separated(&self.per_process(libc::KERN_PROC_ARGS, pid)?))
    }

    fn environ(&self, pid: u32) -> io::Result<Vec<(String, String)>> {
        Ok(parse_environ(&self.per_process(libc::KERN_PROC_ENV, pid)?))
    }

    /// `kern.proc.cwd`; "" when the kernel has no path for it (psutil).
    fn cwd(&self, pid: u32) -> io::Result<String> {
        Ok(self
            .files(libc::KERN_PROC_CWD, pid)?
            .cwd
            .unwrap_or_default())
    }

    fn num_fds(&self, pid: u32) -> io::Result<u32> {
        Ok(self.files(libc::KERN_PROC_FILEDESC, pid)?.num_fds)
    }

    /// `kern.proc.filedesc`: every descriptor with its path, offset and
    /// flags in one call (what `procstat -f` and psutil read).
    fn open_files(
        &self,
        pid: u32,
        _query: &FilesQuery,
        _after: Option<u32>,
    ) -> Result<Vec<OpenFile>, Error> {
        let what = || format!("sysctl kern.proc.filedesc.{pid}");
        let buf = self
            .per_process(libc::KERN_PROC_FILEDESC, pid)
            .map_err(|e| bsd::process_error(pid, what(), e))?;
        layout::open_files(pid, &buf).map_err(parse_error(what()))
    }

    /// Each process's `kern.proc.filedesc`, whose socket records carry
    /// family, type, protocol and both addresses (what `procstat -S`
    /// shows) but not the TCP state.
    fn sockets(&self, pids: &[u32]) -> Result<HeldSockets, Error> {
        let pids = match pids {
            [] => self
                .processes(FieldSet::EMPTY)?
                .into_iter()
                .map(|k| k.pid)
                .collect(),
            pids => pids.to_vec(),
        };
        HeldSockets::per_process(pids, |pid| {
            let what = || format!("sysctl kern.proc.filedesc.{pid}");
            let buf = self
                .per_process(libc::KERN_PROC_FILEDESC, pid)
                .map_err(|e| bsd::process_error(pid, what(), e))?;
            layout::sockets(pid, &buf).map_err(parse_error(what()))
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
            SystemField::SensorsTemperatures,
            SystemField::SensorsBattery,
        ]
        .into_iter()
        .collect()
    }

    /// `kern.cp_time` (the sum) and `kern.cp_times` (per CPU, for every
    /// possible CPU: the first `hw.ncpu` are the ones present), in
    /// statistics clock ticks. psutil divides by `CLOCKS_PER_SEC` (128),
    /// which is not the rate the kernel counts at; `kern.clockrate`'s
    /// stathz is.
    fn cpu_times(&self) -> Result<CpuTimesSet, Error> {
        let hz = self.stathz()?;
        let decode = |name: &'static str| -> Result<Vec<_>, Error> {
            let ticks = sys::counters(name, &self.raw(name)?, 8)
                .map_err(parse_error(format!("sysctl {name}")))?;
            sys::STATES_FREEBSD_NETBSD
                .per_cpu(&ticks, hz)
                .map_err(parse_error(format!("sysctl {name}")))
        };
        let total = decode("kern.cp_time")?
            .into_iter()
            .next()
            .unwrap_or_default();
        let mut per_cpu = decode("kern.cp_times")?;
        let ncpu = bsd::named_u64("hw.ncpu")?;
        per_cpu.truncate(usize::try_from(ncpu).unwrap_or(usize::MAX));
        Ok(CpuTimesSet { total, per_cpu })
    }

    fn cpu_stats(&self) -> Result<CpuStats, Error> {
        Ok(CpuStats {
            ctx_switches: bsd::named_u64("vm.stats.sys.v_swtch")?,
            interrupts: bsd::named_u64("vm.stats.sys.v_intr")?,
            soft_interrupts: Some(bsd::named_u64("vm.stats.sys.v_soft")?),
            syscalls: Some(bsd::named_u64("vm.stats.sys.v_syscall")?),
        })
    }

    /// psutil's sources: `hw.physmem`, the `vm.stats.vm` page counts
    /// (`v_cache_count` is gone since FreeBSD 12: 0), `vfs.bufspace` and
    /// `vm.vmtotal`'s shared pages.
    fn virtual_memory(&self) -> Result<VirtualMemory, Error> {
        let shared = sys::vmtotal_shared(&self.raw("vm.vmtotal")?)
            .map_err(parse_error("sysctl vm.vmtotal"))?;
        Ok(sys::memory_freebsd_openbsd(Pages {
            total: bsd::named_u64("hw.physmem")?,
            free: self.pages("vm.stats.vm.v_free_count")?,
            active: self.pages("vm.stats.vm.v_active_count")?,
            inactive: self.pages("vm.stats.vm.v_inactive_count")?,
            wired: self.pages("vm.stats.vm.v_wire_count")?,
            cached: self.pages("vm.stats.vm.v_cache_count").unwrap_or(0),
            buffers: Some(bsd::named_u64("vfs.bufspace")?),
            shared: Some(shared.saturating_mul(self.page_size)),
        }))
    }

    /// Every swap device of `vm.swap_info.N` (what `swapinfo` and
    /// `kvm_getswapinfo` add up), and the pages swapped in and out
    /// (`v_swappgsin`, `v_swappgsout`).
    fn swap_memory(&self) -> Result<SwapMemory, Error> {
        let what = "sysctl vm.swap_info";
        let base = bsd_sys::name_to_mib("vm.swap_info").map_err(|e| bsd::io_error(what, e))?;
        let (mut total, mut used) = (0u64, 0u64);
        for n in 0.. {
            let mut mib = base.clone();
            mib.push(n);
            let buf = match bsd::sysctl_vec(&mib) {
                Ok(buf) => buf,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
                Err(e) => return Err(bsd::io_error(what, e)),
            };
            let (blocks, in_use) = sys::xswdev(&buf).map_err(parse_error(what))?;
            total = total.saturating_add(blocks);
            used = used.saturating_add(in_use);
        }
        let page = self.page_size;
        Ok(sys::swap(
            total.saturating_mul(page),
            used.saturating_mul(page),
            Some(self.pages("vm.stats.vm.v_swappgsin")?),
            Some(self.pages("vm.stats.vm.v_swappgsout")?),
        ))
    }

    /// psutil's count from `kern.sched.topology_spec`.
    fn cpu_cores(&self) -> Option<u32> {
        bsd::named_string("kern.sched.topology_spec")
            .ok()
            .and_then(|xml| sys::topology_cores(&xml))
    }

    fn users(&self) -> Result<Vec<User>, Error> {
        Ok(bsd_sys::sessions())
    }

    /// `dev.cpu.0.freq` and the range of `dev.cpu.0.freq_levels`, in MHz:
    /// FreeBSD runs every CPU at CPU 0's frequency.
    fn cpu_freq(&self) -> Result<CpuFreqSet, Error> {
        let current = bsd::named_u64("dev.cpu.0.freq")? as f64;
        let (min, max) = bsd::named_string("dev.cpu.0.freq_levels")
            .map(|levels| sys::freq_levels(&levels))
            .unwrap_or((None, None));
        Ok(CpuFreqSet {
            total: CpuFreq { current, min, max },
            per_cpu: Vec::new(),
        })
    }

    /// `dev.cpu.N.temperature` of each CPU (coretemp(4) or amdtemp(4)),
    /// with `dev.cpu.N.coretemp.tjmax` as the high mark, as psutil reads
    /// them; empty without such a driver.
    fn temperatures(&self) -> Result<Vec<Temperature>, Error> {
        let celsius = |name: String| match bsd::named_dynamic(&name) {
            Ok(sysctl::CtlValue::Temperature(t)) => Some(f64::from(t.celsius())),
            _ => None,
        };
        let ncpu = bsd::named_u64("hw.ncpu")?;
        let mut readings = Vec::new();
        for n in 0..ncpu {
            let Some(current) = celsius(format!("dev.cpu.{n}.temperature")) else {
                break;
            };
            readings.push(Temperature {
                sensor: "coretemp".to_owned(),
                label: format!("Core {n}"),
                current,
                high: celsius(format!("dev.cpu.{n}.coretemp.tjmax")),
                critical: None,
            });
        }
        Ok(readings)
    }

    /// acpi_battery(4)'s `hw.acpi.battery.life` (percent) and `.time`
    /// (minutes, -1 when unknown), and `hw.acpi.acline`; no battery when
    /// the kernel has none to report.
    fn battery(&self) -> Result<Option<Battery>, Error> {
        let int = |name: &str| match bsd::named_dynamic(name) {
            Ok(sysctl::CtlValue::Int(v)) => Some(v),
            _ => None,
        };
        let Some(percent) = int("hw.acpi.battery.life") else {
            return Ok(None);
        };
        let power_plugged = int("hw.acpi.acline").map(|v| v == 1);
        let secsleft = match (power_plugged, int("hw.acpi.battery.time")) {
            (Some(true), _) | (_, None) => None,
            (_, Some(minutes)) if minutes < 0 => None,
            (_, Some(minutes)) => Some(f64::from(minutes) * 60.0),
        };
        Ok(Some(Battery {
            percent: f64::from(percent),
            secsleft,
            power_plugged,
        }))
    }

    /// `kern.devstat.all`, what libdevstat reads for psutil.
    fn disk_io_counters(&self) -> Result<Vec<DiskIo>, Error> {
        sys::devstat_all(&self.raw("kern.devstat.all")?)
            .map_err(parse_error("sysctl kern.devstat.all"))
    }
}
