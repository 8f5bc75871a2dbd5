//! The host's figures as the BSD and macOS kernels return them, and
//! psutil's formulas over them: CPU tick counters and `struct clockinfo`
//! (every kernel), OpenBSD's `struct uvmexp` and `struct bcachestats`,
//! NetBSD's `struct uvmexp_sysctl`, FreeBSD's `struct xswdev` and `struct
//! vmtotal`, macOS's `struct xsw_usage` and `vm_statistics64`, OpenBSD's
//! `struct diskstats` and `struct utmp`, FreeBSD's CPU topology and
//! frequency levels, and the mount flags' names.
//!
//! Offsets are those of amd64 and arm64; each OS's `checks.rs` asserts
//! them against the `libc` crate where it has the structure.

use super::{Record, records, until_nul};
use crate::backend::{
    parse::{ParseError, lossy},
    system::{CpuStats, DiskIo, SwapMemory, SystemCpuTimes, User, VirtualMemory, percent},
};

// === CPU times ===

/// Where one kernel keeps each CPU state in its tick array
/// (`sys/resource.h` or `sys/sched.h`: `CP_USER`, ...; macOS
/// `mach/machine.h`: `CPU_STATE_USER`, ...).
#[derive(Clone, Copy, Debug)]
pub struct CpuStates {
    /// `CPUSTATES`: counters per CPU.
    pub count: usize,
    pub user: usize,
    pub nice: usize,
    pub system: usize,
    /// OpenBSD's `CP_SPIN`: spinning on a kernel lock, counted as system
    /// time (psutil leaves it out, so its modes do not add up to the
    /// elapsed time).
    pub spin: Option<usize>,
    /// `CP_INTR`; macOS does not count interrupts apart.
    pub intr: Option<usize>,
    pub idle: usize,
}

/// FreeBSD and NetBSD: user, nice, sys, intr, idle.
pub const STATES_FREEBSD_NETBSD: CpuStates = CpuStates {
    count: 5,
    user: 0,
    nice: 1,
    system: 2,
    spin: None,
    intr: Some(3),
    idle: 4,
};

/// OpenBSD 6.4 and later: user, nice, sys, spin, intr, idle.
pub const STATES_OPENBSD: CpuStates = CpuStates {
    count: 6,
    user: 0,
    nice: 1,
    system: 2,
    spin: Some(3),
    intr: Some(4),
    idle: 5,
};

/// macOS: user, system, idle, nice.
pub const STATES_MACOS: CpuStates = CpuStates {
    count: 4,
    user: 0,
    system: 1,
    idle: 2,
    nice: 3,
    spin: None,
    intr: None,
};

impl CpuStates {
    /// The times of each CPU from `ticks` (`count` counters per CPU, back
    /// to back), at `hz` ticks a second. A length that is not a whole
    /// number of CPUs is an error: the layout is not the one expected.
    pub fn per_cpu(&self, ticks: &[u64], hz: u64) -> Result<Vec<SystemCpuTimes>, ParseError> {
        if self.count == 0 || !ticks.len().is_multiple_of(self.count) || hz == 0 {
            return Err(ParseError::new(
                0,
                format!(
                    "cp_time: {} counters is not a whole number of {}-state CPUs (at {hz} Hz)",
                    ticks.len(),
                    self.count
                ),
            ));
        }
        Ok(ticks
            .chunks_exact(self.count)
            .map(|cpu| self.times(cpu, hz))
            .collect())
    }

    fn times(&self, cpu: &[u64], hz: u64) -> SystemCpuTimes {
        let secs = |i: usize| cpu.get(i).map_or(0.0, |t| *t as f64 / hz as f64);
        SystemCpuTimes {
            user: secs(self.user),
            nice: secs(self.nice),
            system: secs(self.system) + self.spin.map_or(0.0, secs),
            idle: secs(self.idle),
            irq: self.intr.map(secs),
            ..SystemCpuTimes::default()
        }
    }
}

/// The sum of `cpus`, mode by mode.
pub fn sum_cpus(cpus: &[SystemCpuTimes]) -> SystemCpuTimes {
    let add = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
    cpus.iter()
        .fold(SystemCpuTimes::default(), |t, c| SystemCpuTimes {
            user: t.user + c.user,
            nice: t.nice + c.nice,
            system: t.system + c.system,
            idle: t.idle + c.idle,
            iowait: add(t.iowait, c.iowait),
            irq: add(t.irq, c.irq),
            softirq: add(t.softirq, c.softirq),
            steal: add(t.steal, c.steal),
            guest: add(t.guest, c.guest),
            guest_nice: add(t.guest_nice, c.guest_nice),
        })
}

/// Unsigned counters of `width` bytes (4 or 8) back to back, as the
/// `cp_time` sysctls return them (`long` on FreeBSD and OpenBSD's
/// `kern.cp_time`, `u_int64_t` on NetBSD and OpenBSD's `kern.cp_time2`).
pub fn counters(what: &'static str, bytes: &[u8], width: usize) -> Result<Vec<u64>, ParseError> {
    let r = Record::new(what, bytes);
    if !matches!(width, 4 | 8) || !bytes.len().is_multiple_of(width) {
        return Err(ParseError::new(
            0,
            format!(
                "{what}: {} bytes is not a whole number of {width}-byte counters",
                bytes.len()
            ),
        ));
    }
    (0..bytes.len() / width)
        .map(|i| match width {
            4 => r.u32(i * 4).map(u64::from),
            _ => r.u64(i * 8),
        })
        .collect()
}

/// The statistics clock's rate from `struct clockinfo` (`kern.clockrate`),
/// the unit of the CPU tick counters; `hz` where a kernel has no separate
/// statistics clock (stathz 0). The structure is `hz, tick, tickadj (or
/// spare), stathz, profhz` (20 bytes: FreeBSD, NetBSD, macOS) or `hz, tick,
/// stathz, profhz` (16 bytes: OpenBSD since 6.x dropped `tickadj`).
pub fn stathz(bytes: &[u8]) -> Result<u64, ParseError> {
    let r = Record::new("clockinfo", bytes);
    let stathz_at = match bytes.len() {
        16 => 8,
        20 => 12,
        n => {
            return Err(ParseError::new(
                0,
                format!("clockinfo: {n} bytes, expected 16 or 20"),
            ));
        }
    };
    let hz = r.i32(0)?;
    let stathz = r.i32(stathz_at)?;
    let rate = if stathz > 0 { stathz } else { hz };
    u64::try_from(rate)
        .ok()
        .filter(|r| *r > 0)
        .ok_or_else(|| ParseError::new(0, format!("clockinfo: no clock rate (hz {hz})")))
}

// === Memory ===

/// Page counts in bytes, as psutil's BSD `virtual_mem()` returns them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pages {
    pub total: u64,
    pub free: u64,
    pub active: u64,
    pub inactive: u64,
    pub wired: u64,
    pub cached: u64,
    pub buffers: Option<u64>,
    pub shared: Option<u64>,
}

/// psutil's FreeBSD and OpenBSD `virtual_memory()`: available is inactive,
/// cached and free memory; used is active, wired and cached memory (as
/// the freebsd-memory script and zabbix count them).
pub fn memory_freebsd_openbsd(p: Pages) -> VirtualMemory {
    let available = p.inactive.saturating_add(p.cached).saturating_add(p.free);
    let used = p.active.saturating_add(p.wired).saturating_add(p.cached);
    memory(p, available, used)
}

/// psutil's NetBSD `virtual_memory()`: used is active and wired memory,
/// available the rest (as htop counts them; inactive + cached + free could
/// exceed the total there).
pub fn memory_netbsd(p: Pages) -> VirtualMemory {
    let used = p.active.saturating_add(p.wired);
    memory(p, p.total.saturating_sub(used), used)
}

fn memory(p: Pages, available: u64, used: u64) -> VirtualMemory {
    VirtualMemory {
        total: p.total,
        available,
        percent: percent(p.total.saturating_sub(available), p.total),
        used,
        free: p.free,
        active: Some(p.active),
        inactive: Some(p.inactive),
        buffers: p.buffers,
        cached: Some(p.cached),
        shared: p.shared,
        slab: None,
        wired: Some(p.wired),
    }
}

/// `vm_statistics64` (`mach/vm_statistics.h`, `HOST_VM_INFO64`): page
/// counts, and pages paged in and out since boot.
pub mod vm_statistics64 {
    pub const FREE_COUNT: usize = 0;
    pub const ACTIVE_COUNT: usize = 4;
    pub const INACTIVE_COUNT: usize = 8;
    pub const WIRE_COUNT: usize = 12;
    pub const PAGEINS: usize = 32;
    pub const PAGEOUTS: usize = 40;
    pub const SPECULATIVE_COUNT: usize = 92;
    /// The bytes up to `speculative_count`, which every macOS fills.
    pub const MIN_SIZE: usize = 96;
}

/// macOS's page counts and paging, in pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MachVm {
    pub free: u64,
    pub active: u64,
    pub inactive: u64,
    pub wired: u64,
    pub speculative: u64,
    pub pageins: u64,
    pub pageouts: u64,
}

/// Decodes `vm_statistics64`.
pub fn mach_vm(bytes: &[u8]) -> Result<MachVm, ParseError> {
    use vm_statistics64 as v;
    let r = Record::new("vm_statistics64", bytes);
    let count = |o| r.u32(o).map(u64::from);
    Ok(MachVm {
        free: count(v::FREE_COUNT)?,
        active: count(v::ACTIVE_COUNT)?,
        inactive: count(v::INACTIVE_COUNT)?,
        wired: count(v::WIRE_COUNT)?,
        speculative: count(v::SPECULATIVE_COUNT)?,
        pageins: r.u64(v::PAGEINS)?,
        pageouts: r.u64(v::PAGEOUTS)?,
    })
}

/// psutil's macOS `virtual_memory()`: available is inactive and free
/// memory, used is active and wired memory, and free leaves out the
/// speculative pages (as `vm_stat` and zabbix count them). `total` is
/// `hw.memsize`.
pub fn memory_macos(total: u64, vm: MachVm, page_size: u64) -> VirtualMemory {
    let bytes = |pages: u64| pages.saturating_mul(page_size);
    let available = bytes(vm.inactive).saturating_add(bytes(vm.free));
    VirtualMemory {
        total,
        available,
        percent: percent(total.saturating_sub(available), total),
        used: bytes(vm.active).saturating_add(bytes(vm.wired)),
        free: bytes(vm.free.saturating_sub(vm.speculative)),
        active: Some(bytes(vm.active)),
        inactive: Some(bytes(vm.inactive)),
        wired: Some(bytes(vm.wired)),
        ..VirtualMemory::default()
    }
}

/// Swap from its total and use, in bytes, and pages swapped in and out.
pub fn swap(total: u64, used: u64, sin: Option<u64>, sout: Option<u64>) -> SwapMemory {
    let used = used.min(total);
    SwapMemory {
        total,
        used,
        free: total - used,
        percent: percent(used, total),
        sin,
        sout,
    }
}

/// `struct xsw_usage` (macOS `sys/sysctl.h`, `vm.swapusage`): total,
/// available and used bytes.
pub mod xsw_usage {
    pub const SIZE: usize = 32;
    pub const TOTAL: usize = 0;
    pub const AVAIL: usize = 8;
    pub const USED: usize = 16;
}

/// The swap total and use in bytes from `struct xsw_usage`.
pub fn xsw_usage(bytes: &[u8]) -> Result<(u64, u64), ParseError> {
    let r = Record::new("xsw_usage", bytes);
    Ok((r.u64(xsw_usage::TOTAL)?, r.u64(xsw_usage::USED)?))
}

/// `struct xswdev` (FreeBSD `vm/vm_param.h`, `vm.swap_info.N`), version
/// 2 (a 64-bit `dev_t`, FreeBSD 12 and later).
pub mod xswdev {
    pub const SIZE: usize = 32;
    pub const VERSION: usize = 0;
    pub const NBLKS: usize = 20;
    pub const USED: usize = 24;
    /// `XSWDEV_VERSION`.
    pub const XSWDEV_VERSION: u32 = 2;
}

/// One swap device's size and use in pages from `struct xswdev`.
pub fn xswdev(bytes: &[u8]) -> Result<(u64, u64), ParseError> {
    let r = Record::new("xswdev", bytes);
    let version = r.u32(xswdev::VERSION)?;
    if version != xswdev::XSWDEV_VERSION {
        return Err(ParseError::new(
            0,
            format!(
                "xswdev: version {version}, expected {}",
                xswdev::XSWDEV_VERSION
            ),
        ));
    }
    let pages = |o| -> Result<u64, ParseError> { Ok(u64::try_from(r.i32(o)?).unwrap_or(0)) };
    Ok((pages(xswdev::NBLKS)?, pages(xswdev::USED)?))
}

/// `struct vmtotal` (FreeBSD `sys/vmmeter.h`, `vm.vmtotal`): the shared
/// virtual and real memory, in pages.
pub mod vmtotal {
    pub const SIZE: usize = 88;
    pub const VMSHR: usize = 32;
    pub const RMSHR: usize = 48;
}

/// Shared memory in pages, psutil's FreeBSD `shared`: `t_vmshr + t_rmshr`.
pub fn vmtotal_shared(bytes: &[u8]) -> Result<u64, ParseError> {
    let r = Record::new("vmtotal", bytes);
    Ok(r.u64(vmtotal::VMSHR)?
        .saturating_add(r.u64(vmtotal::RMSHR)?))
}

/// Where a `uvmexp` structure keeps the counters the API reports, and
/// how wide they are.
#[derive(Debug)]
pub struct UvmLayout {
    pub what: &'static str,
    /// 4 (OpenBSD's `int`s) or 8 (NetBSD's `int64_t`s).
    pub width: usize,
    pub pagesize: usize,
    pub npages: usize,
    pub free: usize,
    pub active: usize,
    pub inactive: usize,
    pub wired: usize,
    pub swpages: usize,
    pub swpginuse: usize,
    pub intrs: usize,
    pub swtch: usize,
    pub softs: usize,
    pub syscalls: usize,
    pub pgswapin: usize,
    pub pgswapout: usize,
    /// NetBSD's `anonpages`, `filepages`, `execpages`: its cached memory.
    pub cached: Option<[usize; 3]>,
}

/// OpenBSD's `struct uvmexp` (`uvm/uvmexp.h`, `vm.uvmexp`), 7.x.
pub const UVMEXP_OPENBSD: UvmLayout = UvmLayout {
    what: "uvmexp",
    width: 4,
    pagesize: 0,
    npages: 12,
    free: 16,
    active: 20,
    inactive: 24,
    wired: 32,
    swpages: 104,
    swpginuse: 108,
    intrs: 140,
    swtch: 144,
    softs: 148,
    syscalls: 152,
    pgswapin: 168,
    pgswapout: 172,
    cached: None,
};

/// NetBSD's `struct uvmexp_sysctl` (`uvm/uvm_extern.h`, `vm.uvmexp2`),
/// every member an `int64_t`.
pub const UVMEXP2_NETBSD: UvmLayout = UvmLayout {
    what: "uvmexp_sysctl",
    width: 8,
    pagesize: 0,
    npages: 3 * 8,
    free: 4 * 8,
    active: 5 * 8,
    inactive: 6 * 8,
    wired: 8 * 8,
    swpages: 17 * 8,
    swpginuse: 18 * 8,
    intrs: 26 * 8,
    swtch: 27 * 8,
    softs: 28 * 8,
    syscalls: 29 * 8,
    pgswapin: 33 * 8,
    pgswapout: 34 * 8,
    cached: Some([71 * 8, 72 * 8, 73 * 8]),
};

/// The counters of a `uvmexp`, pages in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Uvm {
    pub page_size: u64,
    pub total: u64,
    pub free: u64,
    pub active: u64,
    pub inactive: u64,
    pub wired: u64,
    /// NetBSD: anonymous, file and executable pages.
    pub cached: Option<u64>,
    pub swap_total: u64,
    pub swap_used: u64,
    pub swapped_in: u64,
    pub swapped_out: u64,
    pub stats: CpuStats,
}

impl UvmLayout {
    /// Decodes the structure.
    pub fn decode(&self, bytes: &[u8]) -> Result<Uvm, ParseError> {
        let r = Record::new(self.what, bytes);
        let n = |o: usize| -> Result<u64, ParseError> {
            let v = match self.width {
                4 => i64::from(r.i32(o)?),
                _ => r.i64(o)?,
            };
            Ok(u64::try_from(v).unwrap_or(0))
        };
        let page_size = n(self.pagesize)?;
        if page_size == 0 {
            return Err(ParseError::new(0, format!("{}: page size 0", self.what)));
        }
        let bytes = |o: usize| -> Result<u64, ParseError> { Ok(n(o)?.saturating_mul(page_size)) };
        let cached = match self.cached {
            Some(parts) => Some(
                parts
                    .iter()
                    .map(|o| bytes(*o))
                    .sum::<Result<u64, ParseError>>()?,
            ),
            None => None,
        };
        Ok(Uvm {
            page_size,
            total: bytes(self.npages)?,
            free: bytes(self.free)?,
            active: bytes(self.active)?,
            inactive: bytes(self.inactive)?,
            wired: bytes(self.wired)?,
            cached,
            swap_total: bytes(self.swpages)?,
            swap_used: bytes(self.swpginuse)?,
            swapped_in: bytes(self.pgswapin)?,
            swapped_out: bytes(self.pgswapout)?,
            stats: CpuStats {
                ctx_switches: n(self.swtch)?,
                interrupts: n(self.intrs)?,
                soft_interrupts: Some(n(self.softs)?),
                syscalls: Some(n(self.syscalls)?),
            },
        })
    }
}

/// `struct bcachestats` (OpenBSD `sys/mount.h`, `vfs.generic.bcachestat`):
/// `numbufpages`, the buffer cache's pages, is psutil's (and top's)
/// OpenBSD `cached`.
pub const BCACHESTATS_NUMBUFPAGES: usize = 8;

/// The buffer cache's pages from `struct bcachestats`.
pub fn bcache_pages(bytes: &[u8]) -> Result<u64, ParseError> {
    let v = Record::new("bcachestats", bytes).i64(BCACHESTATS_NUMBUFPAGES)?;
    Ok(u64::try_from(v).unwrap_or(0))
}

// === CPUs ===

/// Physical cores from FreeBSD's `kern.sched.topology_spec`, as psutil
/// counts them: the `<cpu>` elements of the second level of groups
/// (`groups/group/children/group/cpu`). `None` when there are none.
pub fn topology_cores(xml: &str) -> Option<u32> {
    let mut depth = 0usize;
    let mut cores = 0u32;
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let closing = tag.starts_with('/');
        let empty = tag.ends_with('/');
        match name {
            "group" if closing => depth = depth.saturating_sub(1),
            "group" if !empty => depth += 1,
            "cpu" if !closing && depth == 2 => cores += 1,
            _ => {}
        }
        rest = &rest[end.min(rest.len())..];
    }
    (cores > 0).then_some(cores)
}

/// The lowest and highest frequencies, in MHz, of FreeBSD's
/// `dev.cpu.N.freq_levels` ("2400/35000 2100/29000 ..."): psutil's min
/// and max are the last and first levels.
pub fn freq_levels(levels: &str) -> (Option<f64>, Option<f64>) {
    let mhz: Vec<f64> = levels
        .split_whitespace()
        .filter_map(|level| level.split('/').next()?.parse::<f64>().ok())
        .collect();
    (mhz.last().copied(), mhz.first().copied())
}

// === Disks ===

/// psutil's mount options from a file system's `f_flags`: "ro" or "rw",
/// then the name of each flag of `names` that is set, comma-separated.
pub fn mount_opts(flags: u64, read_only: u64, names: &[(u64, &str)]) -> String {
    let mut opts = String::from(if flags & read_only != 0 { "ro" } else { "rw" });
    for (bit, name) in names {
        if flags & bit != 0 {
            opts.push(',');
            opts.push_str(name);
        }
    }
    opts
}

/// Whether a mount is of a storage device, for `disk_partitions(all=False)`:
/// its source is a device path (`/dev/...`, or a path as psutil's macOS
/// check accepts) or a ZFS dataset. Pseudo file systems (devfs, procfs,
/// tmpfs, fdescfs, map mounts) name no such source.
pub fn is_physical(device: &str, fstype: &str) -> bool {
    device.starts_with('/') || fstype == "zfs"
}

/// A mount flag's bit as the `f_flags` word holds it: the `libc` crate
/// declares them as `int`s, and NetBSD's `MNT_SOFTDEP` is the sign bit.
pub const fn mount_bit(flag: i32) -> u64 {
    flag as u32 as u64
}

/// `struct diskstats` (OpenBSD `sys/disk.h`, `hw.diskstats`).
pub mod diskstats {
    pub const SIZE: usize = 112;
    pub const NAME: usize = 0;
    pub const NAME_LEN: usize = 16;
    pub const RXFER: usize = 24;
    pub const WXFER: usize = 32;
    pub const RBYTES: usize = 48;
    pub const WBYTES: usize = 56;
    /// `ds_time`, a `struct timeval`: the time the disk was busy.
    pub const TIME: usize = 96;
}

/// OpenBSD's `hw.diskstats` table: every disk's transfers, bytes and busy
/// time (in milliseconds). OpenBSD counts whole disks only.
pub fn diskstats(buf: &[u8]) -> Result<Vec<DiskIo>, ParseError> {
    use diskstats as d;
    records("diskstats", buf, d::SIZE)?
        .map(|r| {
            let busy = r.timeval(d::TIME, 8)?;
            Ok(DiskIo {
                name: lossy(r.cstr(d::NAME, d::NAME_LEN)?),
                whole_disk: true,
                read_count: r.u64(d::RXFER)?,
                write_count: r.u64(d::WXFER)?,
                read_bytes: r.u64(d::RBYTES)?,
                write_bytes: r.u64(d::WBYTES)?,
                busy_time: Some((busy * 1000.0) as u64),
                ..DiskIo::default()
            })
        })
        .collect()
}

/// `struct devstat` (FreeBSD `sys/devicestat.h`), the records of
/// `kern.devstat.all` after its generation number (a `long`).
pub mod devstat {
    pub const SIZE: usize = 288;
    pub const GENERATION_LEN: usize = 8;
    pub const DEVICE_NAME: usize = 44;
    pub const DEVICE_NAME_LEN: usize = 16;
    pub const UNIT_NUMBER: usize = 60;
    /// `bytes[DEVSTAT_N_TRANS_FLAGS]`, by `DEVSTAT_READ` (1) and
    /// `DEVSTAT_WRITE` (2).
    pub const BYTES: usize = 64;
    pub const OPERATIONS: usize = 96;
    /// `duration[]`, `struct bintime`s of 16 bytes.
    pub const DURATION: usize = 128;
    pub const BUSY_TIME: usize = 192;
    pub const DEVICE_TYPE: usize = 260;
    pub const DEVSTAT_READ: usize = 1;
    pub const DEVSTAT_WRITE: usize = 2;
    /// `DEVSTAT_TYPE_PASS`: a pass(4) device, another view of a disk.
    pub const TYPE_PASS: u32 = 0x80;
}

/// A `struct bintime` at `offset` in milliseconds (`BT2MSEC`).
fn bintime_ms(r: &Record<'_>, offset: usize) -> Result<u64, ParseError> {
    let sec = u64::try_from(r.i64(offset)?).unwrap_or(0);
    let frac = r.u64(offset + 8)?;
    Ok(sec.saturating_mul(1000) + (((frac >> 32) * 1000) >> 32))
}

/// FreeBSD's `kern.devstat.all`: every disk's operations, bytes and times
/// (in milliseconds), as psutil reads them through libdevstat; pass(4)
/// devices, other views of the same disks, are left out.
pub fn devstat_all(buf: &[u8]) -> Result<Vec<DiskIo>, ParseError> {
    use devstat as d;
    let body = buf.get(d::GENERATION_LEN..).unwrap_or_default();
    let mut disks = Vec::new();
    for r in records("devstat", body, d::SIZE)? {
        if r.u32(d::DEVICE_TYPE)? & d::TYPE_PASS != 0 {
            continue;
        }
        let name = lossy(r.cstr(d::DEVICE_NAME, d::DEVICE_NAME_LEN)?);
        let at = |base: usize, i: usize| base + i * 8;
        let time = |i: usize| bintime_ms(&r, d::DURATION + i * 16);
        disks.push(DiskIo {
            name: format!("{name}{}", r.i32(d::UNIT_NUMBER)?),
            whole_disk: true,
            read_count: r.u64(at(d::OPERATIONS, d::DEVSTAT_READ))?,
            write_count: r.u64(at(d::OPERATIONS, d::DEVSTAT_WRITE))?,
            read_bytes: r.u64(at(d::BYTES, d::DEVSTAT_READ))?,
            write_bytes: r.u64(at(d::BYTES, d::DEVSTAT_WRITE))?,
            read_time: Some(time(d::DEVSTAT_READ)?),
            write_time: Some(time(d::DEVSTAT_WRITE)?),
            busy_time: Some(bintime_ms(&r, d::BUSY_TIME)?),
            ..DiskIo::default()
        });
    }
    Ok(disks)
}

/// `struct io_sysctl` (NetBSD `sys/iostat.h`, `hw.iostats`).
pub mod io_sysctl {
    pub const SIZE: usize = 128;
    pub const NAME: usize = 0;
    pub const NAME_LEN: usize = 16;
    pub const TYPE: usize = 20;
    /// `time_sec`, then `time_usec`, both `u_int32_t`: the time busy.
    pub const TIME_SEC: usize = 64;
    pub const TIME_USEC: usize = 68;
    pub const RXFER: usize = 72;
    pub const RBYTES: usize = 80;
    pub const WXFER: usize = 88;
    pub const WBYTES: usize = 96;
    /// `IOSTAT_DISK`: tapes and NFS mounts are left out.
    pub const IOSTAT_DISK: i32 = 0;
}

/// NetBSD's `hw.iostats` table: the disks' transfers, bytes and busy time
/// (in milliseconds). Wedges (`dkN`) are partitions of a disk also
/// listed, so they are not counted in the total.
pub fn iostats(buf: &[u8]) -> Result<Vec<DiskIo>, ParseError> {
    use io_sysctl as d;
    let mut disks = Vec::new();
    for r in records("io_sysctl", buf, d::SIZE)? {
        if r.i32(d::TYPE)? != d::IOSTAT_DISK {
            continue;
        }
        let name = lossy(r.cstr(d::NAME, d::NAME_LEN)?);
        let busy_ms =
            u64::from(r.u32(d::TIME_SEC)?) * 1000 + u64::from(r.u32(d::TIME_USEC)?) / 1000;
        disks.push(DiskIo {
            whole_disk: !name.starts_with("dk"),
            name,
            read_count: r.u64(d::RXFER)?,
            write_count: r.u64(d::WXFER)?,
            read_bytes: r.u64(d::RBYTES)?,
            write_bytes: r.u64(d::WBYTES)?,
            busy_time: Some(busy_ms),
            ..DiskIo::default()
        });
    }
    Ok(disks)
}

// === Users ===

/// `struct utmp` (OpenBSD `utmp.h`, the records of `/var/run/utmp`).
pub mod utmp {
    pub const SIZE: usize = 304;
    pub const LINE: usize = 0;
    pub const LINE_LEN: usize = 8;
    pub const NAME: usize = 8;
    pub const NAME_LEN: usize = 32;
    pub const HOST: usize = 40;
    pub const HOST_LEN: usize = 256;
    pub const TIME: usize = 296;
}

/// The sessions of an OpenBSD `utmp` file: the records with a name (an
/// empty one is a terminal no one is logged in on). A trailing partial
/// record, written while the file was read, is left out.
pub fn utmp_users(file: &[u8]) -> Result<Vec<User>, ParseError> {
    use utmp as u;
    let whole = file.len() - file.len() % u::SIZE;
    let mut users = Vec::new();
    for r in records("utmp", &file[..whole], u::SIZE)? {
        let name = r.cstr(u::NAME, u::NAME_LEN)?;
        if name.is_empty() {
            continue;
        }
        users.push(User {
            name: lossy(name),
            terminal: lossy(r.cstr(u::LINE, u::LINE_LEN)?),
            host: lossy(until_nul(r.field(u::HOST, u::HOST_LEN)?)),
            started: r.i64(u::TIME)? as f64,
            pid: None,
        });
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::decode::fixture::Bytes;

    fn longs(values: &[u64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_ne_bytes()).collect()
    }

    #[test]
    fn freebsd_cp_times_per_cpu_at_stathz() {
        // kern.cp_times of two CPUs, FreeBSD 14 amd64 (long[CPUSTATES]
        // each: user, nice, sys, intr, idle), at stathz 127.
        let bytes = longs(&[254, 0, 127, 127, 1270, 127, 127, 0, 0, 1016]);
        let ticks = counters("kern.cp_times", &bytes, 8).unwrap();
        let cpus = STATES_FREEBSD_NETBSD.per_cpu(&ticks, 127).unwrap();
        assert_eq!(cpus.len(), 2);
        assert_eq!(cpus[0].user, 2.0);
        assert_eq!(cpus[0].irq, Some(1.0));
        assert_eq!(cpus[0].idle, 10.0);
        assert_eq!(cpus[0].iowait, None);
        assert_eq!(cpus[1].nice, 1.0);
        let total = sum_cpus(&cpus);
        assert_eq!(total.user, 3.0);
        assert_eq!(total.idle, 18.0);
        assert_eq!(total.irq, Some(1.0));
        assert!(STATES_FREEBSD_NETBSD.per_cpu(&ticks[..7], 127).is_err());
        assert!(STATES_FREEBSD_NETBSD.per_cpu(&ticks, 0).is_err());
        assert!(counters("kern.cp_times", &bytes[..9], 8).is_err());
    }

    #[test]
    fn openbsd_spin_counts_as_system_and_macos_has_no_irq() {
        // kern.cp_time2.0, OpenBSD 7.6 (u_int64_t[6]: user, nice, sys,
        // spin, intr, idle), at stathz 100.
        let t = STATES_OPENBSD
            .per_cpu(&[100, 0, 200, 50, 10, 1000], 100)
            .unwrap();
        assert_eq!(t[0].system, 2.5);
        assert_eq!(t[0].irq, Some(0.1));
        assert_eq!(t[0].idle, 10.0);
        // host_processor_info's PROCESSOR_CPU_LOAD_INFO, macOS 14
        // (natural_t[4]: user, system, idle, nice), at 100 Hz.
        let bytes: Vec<u8> = [300u32, 100, 5000, 7]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        let ticks = counters("cpu_load_info", &bytes, 4).unwrap();
        let m = STATES_MACOS.per_cpu(&ticks, 100).unwrap();
        assert_eq!((m[0].user, m[0].system, m[0].idle), (3.0, 1.0, 50.0));
        assert_eq!(m[0].nice, 0.07);
        assert_eq!(m[0].irq, None);
    }

    #[test]
    fn clockinfo_stathz_by_layout() {
        // FreeBSD 14 struct clockinfo {hz, tick, spare, stathz, profhz}.
        let mut b = Bytes::zeroed(20);
        b.i32(0, 1000).i32(4, 1000).i32(12, 127).i32(16, 8128);
        assert_eq!(stathz(&b.0), Ok(127));
        // OpenBSD 7 {hz, tick, stathz, profhz}.
        let mut o = Bytes::zeroed(16);
        o.i32(0, 100).i32(8, 100).i32(12, 1000);
        assert_eq!(stathz(&o.0), Ok(100));
        // No statistics clock: hz.
        b.i32(12, 0);
        assert_eq!(stathz(&b.0), Ok(1000));
        assert!(stathz(&[0; 20]).is_err());
        assert!(stathz(&[0; 12]).is_err());
    }

    #[test]
    fn psutil_memory_formulas() {
        let gib = 1 << 30;
        let p = Pages {
            total: 8 * gib,
            free: gib,
            active: 2 * gib,
            inactive: 2 * gib,
            wired: gib,
            cached: gib,
            buffers: Some(100),
            shared: None,
        };
        let m = memory_freebsd_openbsd(p);
        assert_eq!(m.available, 4 * gib);
        assert_eq!(m.used, 4 * gib);
        assert_eq!(m.percent, 50.0);
        assert_eq!(m.wired, Some(gib));
        assert_eq!(m.buffers, Some(100));
        assert_eq!(m.slab, None);
        let n = memory_netbsd(p);
        assert_eq!(n.used, 3 * gib);
        assert_eq!(n.available, 5 * gib);
        assert_eq!(n.percent, 37.5);
    }

    #[test]
    fn macos_vm_statistics64() {
        // vm_statistics64 of macOS 14 (mach/vm_statistics.h), pages of
        // 16 KiB.
        let mut b = Bytes::zeroed(vm_statistics64::MIN_SIZE);
        b.u32(0, 1000) // free_count
            .u32(4, 4000) // active_count
            .u32(8, 3000) // inactive_count
            .u32(12, 2000) // wire_count
            .u64(32, 77) // pageins
            .u64(40, 11) // pageouts
            .u32(92, 400); // speculative_count
        let vm = mach_vm(&b.0).unwrap();
        assert_eq!((vm.pageins, vm.pageouts, vm.speculative), (77, 11, 400));
        let m = memory_macos(16384 * 10_000, vm, 16384);
        assert_eq!(m.available, 4000 * 16384);
        assert_eq!(m.used, 6000 * 16384);
        assert_eq!(m.free, 600 * 16384);
        assert_eq!(m.percent, 60.0);
        assert_eq!(m.cached, None);
        assert!(mach_vm(&b.0[..90]).is_err());
    }

    #[test]
    fn swap_structures() {
        // macOS 14 vm.swapusage: 2 GiB, 512 MiB used.
        let mut x = Bytes::zeroed(xsw_usage::SIZE);
        x.u64(0, 2 << 30).u64(8, 1536 << 20).u64(16, 512 << 20);
        assert_eq!(xsw_usage(&x.0), Ok((2 << 30, 512 << 20)));
        // FreeBSD 14 vm.swap_info.0: xswdev version 2, 1000 pages, 10 used.
        let mut s = Bytes::zeroed(xswdev::SIZE);
        s.u32(0, 2)
            .u64(8, 0x5a)
            .i32(16, 1)
            .i32(20, 1000)
            .i32(24, 10);
        assert_eq!(xswdev(&s.0), Ok((1000, 10)));
        s.u32(0, 1);
        assert!(xswdev(&s.0).is_err());
        let sw = swap(4096 * 1000, 4096 * 10, Some(1), None);
        assert_eq!(sw.free, 4096 * 990);
        assert_eq!(sw.percent, 1.0);
        assert_eq!(swap(0, 0, None, None).percent, 0.0);
        // FreeBSD 14 vm.vmtotal: t_vmshr 30 and t_rmshr 12 pages.
        let mut t = Bytes::zeroed(vmtotal::SIZE);
        t.u64(32, 30).u64(48, 12);
        assert_eq!(vmtotal_shared(&t.0), Ok(42));
    }

    #[test]
    fn openbsd_uvmexp() {
        // struct uvmexp of OpenBSD 7.6 amd64 (uvm/uvmexp.h): 4 KiB pages.
        let mut b = Bytes::zeroed(344);
        b.i32(0, 4096)
            .i32(12, 2000) // npages
            .i32(16, 500) // free
            .i32(20, 600) // active
            .i32(24, 300) // inactive
            .i32(32, 200) // wired
            .i32(104, 1000) // swpages
            .i32(108, 100) // swpginuse
            .i32(140, 7) // intrs
            .i32(144, 8) // swtch
            .i32(148, 9) // softs
            .i32(152, 10) // syscalls
            .i32(168, 3) // pgswapin
            .i32(172, 4); // pgswapout
        let u = UVMEXP_OPENBSD.decode(&b.0).unwrap();
        assert_eq!(u.free, 500 * 4096);
        assert_eq!(u.wired, 200 * 4096);
        assert_eq!((u.swap_total, u.swap_used), (1000 * 4096, 100 * 4096));
        assert_eq!((u.swapped_in, u.swapped_out), (3 * 4096, 4 * 4096));
        assert_eq!(
            u.stats,
            CpuStats {
                ctx_switches: 8,
                interrupts: 7,
                soft_interrupts: Some(9),
                syscalls: Some(10)
            }
        );
        assert_eq!(u.cached, None);
        assert!(UVMEXP_OPENBSD.decode(&b.0[..100]).is_err());
        assert!(UVMEXP_OPENBSD.decode(&[0; 344]).is_err());
        // struct bcachestats: numbufs, then numbufpages.
        let mut c = Bytes::zeroed(120);
        c.i64(8, 250);
        assert_eq!(bcache_pages(&c.0), Ok(250));
    }

    #[test]
    fn netbsd_uvmexp_sysctl() {
        // struct uvmexp_sysctl of NetBSD 10 amd64 (uvm/uvm_extern.h).
        let mut b = Bytes::zeroed(800);
        b.i64(0, 4096)
            .i64(24, 4000) // npages
            .i64(32, 1000) // free
            .i64(40, 900) // active
            .i64(64, 100) // wired
            .i64(136, 512) // swpages
            .i64(144, 12) // swpginuse
            .i64(216, 55) // swtch
            .i64(568, 10) // anonpages
            .i64(576, 20) // filepages
            .i64(584, 30); // execpages
        let u = UVMEXP2_NETBSD.decode(&b.0).unwrap();
        assert_eq!(u.total, 4000 * 4096);
        assert_eq!(u.cached, Some(60 * 4096));
        assert_eq!(u.stats.ctx_switches, 55);
        assert_eq!((u.swap_total, u.swap_used), (512 * 4096, 12 * 4096));
    }

    #[test]
    fn freebsd_topology_counts_second_level_cpus() {
        // kern.sched.topology_spec of a 4-thread, 2-core FreeBSD 14 host.
        let xml = r#"<groups>
 <group level="1" cache-level="0">
  <cpu count="4" mask="f,0,0,0">0, 1, 2, 3</cpu>
  <children>
   <group level="2" cache-level="2">
    <cpu count="2" mask="3,0,0,0">0, 1</cpu>
    <flags><flag name="THREAD">THREAD group</flag><flag name="SMT">SMT group</flag></flags>
   </group>
   <group level="2" cache-level="2">
    <cpu count="2" mask="c,0,0,0">2, 3</cpu>
    <flags><flag name="THREAD">THREAD group</flag><flag name="SMT">SMT group</flag></flags>
   </group>
  </children>
 </group>
</groups>
"#;
        assert_eq!(topology_cores(xml), Some(2));
        // A single-level topology (one CPU group) names no cores.
        let flat = r#"<groups><group level="1"><cpu count="1">0</cpu></group></groups>"#;
        assert_eq!(topology_cores(flat), None);
        assert_eq!(topology_cores(""), None);
    }

    #[test]
    fn freebsd_freq_levels() {
        assert_eq!(
            freq_levels("2400/35000 2100/29000 800/8000"),
            (Some(800.0), Some(2400.0))
        );
        assert_eq!(freq_levels(""), (None, None));
    }

    #[test]
    fn mount_options_as_psutil_builds_them() {
        let names = [(0x2, "sync"), (0x4, "noexec"), (0x8, "nosuid")];
        assert_eq!(mount_opts(0x1 | 0x8, 0x1, &names), "ro,nosuid");
        assert_eq!(mount_opts(0x6, 0x1, &names), "rw,sync,noexec");
        assert_eq!(mount_bit(i32::MIN), 0x8000_0000);
        assert!(is_physical("/dev/ada0p2", "ufs"));
        assert!(is_physical("zroot/ROOT/default", "zfs"));
        assert!(!is_physical("devfs", "devfs"));
        assert!(!is_physical("tmpfs", "tmpfs"));
    }

    #[test]
    fn openbsd_diskstats() {
        // struct diskstats of OpenBSD 7.6 amd64 (sys/disk.h).
        let mut b = Bytes::zeroed(diskstats::SIZE);
        b.put(0, b"sd0\0")
            .u64(24, 10) // ds_rxfer
            .u64(32, 20) // ds_wxfer
            .u64(48, 4096) // ds_rbytes
            .u64(56, 8192) // ds_wbytes
            .i64(96, 2) // ds_time.tv_sec
            .i64(104, 500_000); // ds_time.tv_usec
        let mut buf = b.0.clone();
        buf.extend_from_slice(&b.0);
        let disks = diskstats(&buf).unwrap();
        assert_eq!(disks.len(), 2);
        assert_eq!(disks[0].name, "sd0");
        assert_eq!((disks[0].read_count, disks[0].write_bytes), (10, 8192));
        assert_eq!(disks[0].busy_time, Some(2500));
        assert!(disks[0].whole_disk);
        assert!(diskstats(&buf[..200]).is_err());
    }

    #[test]
    fn freebsd_devstat() {
        // kern.devstat.all of FreeBSD 14 amd64: the generation, then two
        // struct devstat (sys/devicestat.h): ada0 and its pass0 view.
        let record = |name: &[u8], unit: i32, kind: u32| {
            let mut b = Bytes::zeroed(devstat::SIZE);
            b.put(44, name)
                .i32(60, unit)
                .u64(64 + 8, 4096) // bytes[DEVSTAT_READ]
                .u64(64 + 16, 8192) // bytes[DEVSTAT_WRITE]
                .u64(96 + 8, 3) // operations[DEVSTAT_READ]
                .u64(96 + 16, 4) // operations[DEVSTAT_WRITE]
                .i64(128 + 16, 2) // duration[DEVSTAT_READ].sec
                .u64(128 + 24, 1 << 63) // .frac: half a second
                .i64(192, 7) // busy_time.sec
                .u32(260, kind);
            b.0
        };
        let mut buf = 42u64.to_ne_bytes().to_vec();
        buf.extend(record(b"ada\0", 0, 0x00));
        buf.extend(record(b"pass\0", 0, 0x80));
        let disks = devstat_all(&buf).unwrap();
        assert_eq!(disks.len(), 1);
        assert_eq!(disks[0].name, "ada0");
        assert_eq!((disks[0].read_count, disks[0].write_count), (3, 4));
        assert_eq!((disks[0].read_bytes, disks[0].write_bytes), (4096, 8192));
        assert_eq!(disks[0].read_time, Some(2500));
        assert_eq!(disks[0].write_time, Some(0));
        assert_eq!(disks[0].busy_time, Some(7000));
        assert!(devstat_all(&buf[..100]).is_err());
    }

    #[test]
    fn netbsd_iostats() {
        // struct io_sysctl of NetBSD 10 amd64 (sys/iostat.h): a disk, a
        // wedge on it, and an NFS mount.
        let record = |name: &[u8], kind: i32| {
            let mut b = Bytes::zeroed(io_sysctl::SIZE);
            b.put(0, name)
                .i32(20, kind)
                .u32(64, 3) // time_sec
                .u32(68, 250_000) // time_usec
                .u64(72, 5) // rxfer
                .u64(80, 512) // rbytes
                .u64(88, 6) // wxfer
                .u64(96, 1024); // wbytes
            b.0
        };
        let mut buf = record(b"wd0\0", 0);
        buf.extend(record(b"dk0\0", 0));
        buf.extend(record(b"nfs\0", 2));
        let disks = iostats(&buf).unwrap();
        assert_eq!(disks.len(), 2);
        assert_eq!(disks[0].name, "wd0");
        assert!(disks[0].whole_disk && !disks[1].whole_disk);
        assert_eq!((disks[0].read_count, disks[0].read_bytes), (5, 512));
        assert_eq!((disks[0].write_count, disks[0].write_bytes), (6, 1024));
        assert_eq!(disks[0].busy_time, Some(3250));
        assert!(iostats(&buf[..100]).is_err());
    }

    #[test]
    fn openbsd_utmp_sessions() {
        // Two struct utmp records of OpenBSD 7.6 (utmp.h), one empty.
        let mut b = Bytes::zeroed(utmp::SIZE);
        b.put(0, b"ttyp0\0")
            .put(8, b"alice\0")
            .put(40, b"10.0.0.1\0")
            .i64(296, 1_700_000_000);
        let mut file = b.0.clone();
        file.extend_from_slice(&[0; utmp::SIZE]);
        file.extend_from_slice(&[1; 10]);
        let users = utmp_users(&file).unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].name, "alice");
        assert_eq!(users[0].terminal, "ttyp0");
        assert_eq!(users[0].host, "10.0.0.1");
        assert_eq!(users[0].started, 1_700_000_000.0);
        assert_eq!(utmp_users(&[]), Ok(Vec::new()));
    }
}
