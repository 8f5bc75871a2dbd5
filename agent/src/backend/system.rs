//! The host's own figures: CPU, memory, swap, load, users, sensors, a
//! cgroup's limits, and disks, with psutil's names and units.
//!
//! A backend reads the raw figures ([`Backend::system`],
//! [`Backend::disk_partitions`], [`Backend::disk_usage`],
//! [`Backend::disk_io_counters`]); what is measured over an interval (CPU
//! percentages) is worked out here from two readings, the same way on every
//! OS.
//!
//! [`Backend::system`]: super::Backend::system
//! [`Backend::disk_partitions`]: super::Backend::disk_partitions
//! [`Backend::disk_usage`]: super::Backend::disk_usage
//! [`Backend::disk_io_counters`]: super::Backend::disk_io_counters

use super::{Error, ErrorKind, Set, SetMember};

/// A figure of [`SystemInfo`] that a caller may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum SystemField {
    /// [`SystemInfo::cpu_times`].
    CpuTimes,
    /// CPU busy percentages over an interval, from two `CpuTimes`
    /// readings ([`cpu_percent`]).
    CpuPercent,
    /// Each CPU mode's share of an interval, from two `CpuTimes` readings
    /// ([`cpu_times_percent`]).
    CpuTimesPercent,
    /// [`SystemInfo::cpu_stats`].
    CpuStats,
    /// [`SystemInfo::cpu_freq`].
    CpuFreq,
    /// [`SystemInfo::cpu_count`].
    CpuCount,
    /// [`SystemInfo::loadavg`].
    Loadavg,
    /// [`SystemInfo::virtual_memory`].
    VirtualMemory,
    /// [`SystemInfo::swap_memory`].
    SwapMemory,
    /// [`SystemInfo::users`].
    Users,
    /// [`SystemInfo::boot_time`].
    BootTime,
    /// [`SystemInfo::temperatures`].
    SensorsTemperatures,
    /// [`SystemInfo::fans`].
    SensorsFans,
    /// [`SystemInfo::battery`].
    SensorsBattery,
    /// [`SystemInfo::cgroup`].
    Cgroup,
}

impl SystemField {
    /// Every figure, in declaration order.
    pub const ALL: [SystemField; 15] = [
        SystemField::CpuTimes,
        SystemField::CpuPercent,
        SystemField::CpuTimesPercent,
        SystemField::CpuStats,
        SystemField::CpuFreq,
        SystemField::CpuCount,
        SystemField::Loadavg,
        SystemField::VirtualMemory,
        SystemField::SwapMemory,
        SystemField::Users,
        SystemField::BootTime,
        SystemField::SensorsTemperatures,
        SystemField::SensorsFans,
        SystemField::SensorsBattery,
        SystemField::Cgroup,
    ];

    /// Whether the figure is worked out from two readings of another
    /// rather than read: a backend never sees these.
    pub fn is_measured(self) -> bool {
        matches!(self, SystemField::CpuPercent | SystemField::CpuTimesPercent)
    }
}

impl SetMember for SystemField {
    const MEMBERS: &'static [Self] = &SystemField::ALL;
    fn index(self) -> u8 {
        self as u8
    }
}

/// A set of [`SystemField`]s.
pub type SystemFields = Set<SystemField>;

/// CPU time by mode, in seconds since boot (or, from
/// [`cpu_times_percent`], percent of an interval). A mode the OS does not
/// count is `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SystemCpuTimes {
    /// Running user code, niced processes excluded (Linux: guest time
    /// included, as the kernel counts it).
    pub user: f64,
    /// Running niced user code.
    pub nice: f64,
    /// Running the kernel.
    pub system: f64,
    /// Doing nothing.
    pub idle: f64,
    /// Idle while block I/O was outstanding (Linux).
    pub iowait: Option<f64>,
    /// Serving hardware interrupts.
    pub irq: Option<f64>,
    /// Serving software interrupts (Linux).
    pub softirq: Option<f64>,
    /// Taken by the hypervisor for other guests (Linux).
    pub steal: Option<f64>,
    /// Running guests (Linux; also counted in `user`).
    pub guest: Option<f64>,
    /// Running niced guests (Linux; also counted in `nice`).
    pub guest_nice: Option<f64>,
}

impl SystemCpuTimes {
    /// Every mode's time, psutil's total: guest time is already in user
    /// and nice on Linux, so it is not counted twice.
    pub fn total(&self) -> f64 {
        let counted = self.user
            + self.nice
            + self.system
            + self.idle
            + [self.iowait, self.irq, self.softirq, self.steal]
                .iter()
                .flatten()
                .sum::<f64>();
        counted - self.guest.unwrap_or(0.0) - self.guest_nice.unwrap_or(0.0)
    }

    /// Time not idle (psutil's `_cpu_busy_time`): iowait is idle time.
    pub fn busy(&self) -> f64 {
        self.total() - self.idle - self.iowait.unwrap_or(0.0)
    }
}

/// CPU times of all CPUs together and of each.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuTimesSet {
    /// The sum over CPUs.
    pub total: SystemCpuTimes,
    /// Each CPU, in CPU number order.
    pub per_cpu: Vec<SystemCpuTimes>,
}

/// Busy percentages over an interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuPercent {
    /// All CPUs together, 0 to 100.
    pub total: f64,
    /// Each CPU, 0 to 100.
    pub per_cpu: Vec<f64>,
}

/// Counts since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// Context switches.
    pub ctx_switches: u64,
    /// Interrupts.
    pub interrupts: u64,
    /// Software interrupts, where counted.
    pub soft_interrupts: Option<u64>,
    /// System calls, where counted (not on Linux).
    pub syscalls: Option<u64>,
}

/// A CPU frequency, in MHz.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuFreq {
    /// Now.
    pub current: f64,
    /// The least the CPU runs at, where known.
    pub min: Option<f64>,
    /// The most, where known.
    pub max: Option<f64>,
}

/// Frequencies: the mean over CPUs, and each CPU's where known.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuFreqSet {
    /// The mean over CPUs.
    pub total: CpuFreq,
    /// Each CPU, in CPU number order; empty when the OS tells only one.
    pub per_cpu: Vec<CpuFreq>,
}

impl CpuFreqSet {
    /// The set whose total is the mean of `per_cpu` (psutil's
    /// `cpu_freq()` on Linux); `None` when there is no CPU.
    pub fn from_per_cpu(per_cpu: Vec<CpuFreq>) -> Option<CpuFreqSet> {
        if per_cpu.is_empty() {
            return None;
        }
        let n = per_cpu.len() as f64;
        let mean = |f: fn(&CpuFreq) -> Option<f64>| -> Option<f64> {
            let values: Vec<f64> = per_cpu.iter().map(f).collect::<Option<_>>()?;
            Some(values.iter().sum::<f64>() / n)
        };
        let total = CpuFreq {
            current: per_cpu.iter().map(|c| c.current).sum::<f64>() / n,
            min: mean(|c| c.min),
            max: mean(|c| c.max),
        };
        Some(CpuFreqSet { total, per_cpu })
    }
}

/// CPU counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuCount {
    /// Online logical CPUs.
    pub logical: u32,
    /// Physical cores, where the OS says.
    pub physical: Option<u32>,
}

/// Load averages over 1, 5 and 15 minutes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LoadAvg {
    /// Over the last minute.
    pub load1: f64,
    /// Over the last 5 minutes.
    pub load5: f64,
    /// Over the last 15 minutes.
    pub load15: f64,
}

/// Physical memory, in bytes, with psutil's meanings.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VirtualMemory {
    /// Physical memory.
    pub total: u64,
    /// What processes can be given without swapping.
    pub available: u64,
    /// `(total - available) / total`, in percent.
    pub percent: f64,
    /// In use, as psutil computes it on this OS.
    pub used: u64,
    /// Not used at all.
    pub free: u64,
    /// Recently used.
    pub active: Option<u64>,
    /// Not recently used.
    pub inactive: Option<u64>,
    /// File system metadata cache.
    pub buffers: Option<u64>,
    /// Page cache.
    pub cached: Option<u64>,
    /// Shared memory (tmpfs included).
    pub shared: Option<u64>,
    /// Kernel data structures.
    pub slab: Option<u64>,
    /// Never swapped out (BSD, macOS).
    pub wired: Option<u64>,
}

/// Swap, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SwapMemory {
    /// Swap space.
    pub total: u64,
    /// In use.
    pub used: u64,
    /// Not in use.
    pub free: u64,
    /// `used / total`, in percent; 0 without swap.
    pub percent: f64,
    /// Swapped in since boot, where counted.
    pub sin: Option<u64>,
    /// Swapped out since boot, where counted.
    pub sout: Option<u64>,
}

impl SwapMemory {
    /// `used / total` in percent, rounded to one decimal as psutil does; 0
    /// when there is no swap.
    pub fn percent_of(used: u64, total: u64) -> f64 {
        percent(used, total)
    }
}

/// `part / whole` in percent, rounded to one decimal as psutil rounds its
/// memory and disk percentages; 0 for an empty whole.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 / whole as f64 * 1000.0).round() / 10.0
}

/// A login session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct User {
    /// The login name.
    pub name: String,
    /// The terminal, such as "pts/0"; empty when none.
    pub terminal: String,
    /// The remote host; empty for a local session.
    pub host: String,
    /// Seconds since the Unix epoch.
    pub started: f64,
    /// The session leader's pid, where recorded.
    pub pid: Option<u32>,
}

/// One temperature reading.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Temperature {
    /// The sensor ("coretemp").
    pub sensor: String,
    /// The reading's label ("Core 0"); may be empty.
    pub label: String,
    /// Degrees Celsius.
    pub current: f64,
    /// The high threshold, where set.
    pub high: Option<f64>,
    /// The critical threshold, where set.
    pub critical: Option<f64>,
}

/// One fan.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fan {
    /// The sensor.
    pub sensor: String,
    /// The fan's label; may be empty.
    pub label: String,
    /// Revolutions per minute.
    pub current: f64,
}

/// The battery.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Battery {
    /// Charge, 0 to 100.
    pub percent: f64,
    /// Seconds left; `None` when unknown or plugged in.
    pub secsleft: Option<f64>,
    /// Whether on mains power, where known.
    pub power_plugged: Option<bool>,
}

/// A cgroup's limits and usage; a limit of "max" (v1: unlimited) is
/// `None`. v1 figures go under the v2 names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupInfo {
    /// The path below the hierarchy's root, "/" for the root.
    pub path: String,
    /// 2 for the unified hierarchy, 1 for v1 controllers.
    pub version: u32,
    /// memory.max, bytes.
    pub memory_max: Option<u64>,
    /// memory.current, bytes.
    pub memory_current: u64,
    /// memory.swap.max, bytes.
    pub memory_swap_max: Option<u64>,
    /// memory.swap.current, bytes.
    pub memory_swap_current: Option<u64>,
    /// cpu.max's quota, microseconds per period.
    pub cpu_max_quota_us: Option<u64>,
    /// cpu.max's period, microseconds.
    pub cpu_max_period_us: u64,
    /// cpu.stat usage_usec.
    pub cpu_usage_us: Option<u64>,
    /// pids.max.
    pub pids_max: Option<u64>,
    /// pids.current.
    pub pids_current: Option<u64>,
}

/// The host's figures. A figure is `Some` when it was asked for and read;
/// one asked for and not read is `None` and named in `field_errors`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SystemInfo {
    /// CPU times since boot.
    pub cpu_times: Option<CpuTimesSet>,
    /// Counts since boot.
    pub cpu_stats: Option<CpuStats>,
    /// Frequencies.
    pub cpu_freq: Option<CpuFreqSet>,
    /// CPU counts.
    pub cpu_count: Option<CpuCount>,
    /// Load averages.
    pub loadavg: Option<LoadAvg>,
    /// Physical memory.
    pub virtual_memory: Option<VirtualMemory>,
    /// Swap.
    pub swap_memory: Option<SwapMemory>,
    /// Login sessions.
    pub users: Option<Vec<User>>,
    /// Seconds since the Unix epoch.
    pub boot_time: Option<f64>,
    /// Temperature readings; empty on a host without sensors.
    pub temperatures: Option<Vec<Temperature>>,
    /// Fans; empty on a host without fans.
    pub fans: Option<Vec<Fan>>,
    /// The battery: `Some(None)` when read and there is none.
    pub battery: Option<Option<Battery>>,
    /// The requested cgroup.
    pub cgroup: Option<CgroupInfo>,
    /// The requested figures that could not be read: the field, the kind,
    /// and what failed.
    pub field_errors: Vec<(SystemField, ErrorKind, String)>,
}

impl SystemInfo {
    /// Reads `field` with `read` when `fields` has it: the value, or
    /// `None` with the error recorded in `field_errors`.
    pub fn read<T>(
        &mut self,
        fields: SystemFields,
        field: SystemField,
        read: impl FnOnce() -> Result<T, Error>,
    ) -> Option<T> {
        if !fields.contains(field) {
            return None;
        }
        match read() {
            Ok(value) => Some(value),
            Err(e) => {
                self.fail(field, &e);
                None
            }
        }
    }

    /// Records that `field` could not be read because of `e`.
    pub fn fail(&mut self, field: SystemField, e: &Error) {
        self.field_errors
            .push((field, figure_error_kind(e), e.to_string()));
    }

    /// Records every field of `fields` outside `supported` as UNSUPPORTED.
    pub fn unsupported(&mut self, fields: SystemFields, supported: SystemFields) {
        for field in fields.iter().filter(|f| !supported.contains(*f)) {
            self.field_errors.push((
                field,
                ErrorKind::Unsupported,
                "this OS does not keep it".to_owned(),
            ));
        }
    }
}

/// The API's kind for a figure that could not be read because of `e`.
pub fn figure_error_kind(e: &Error) -> ErrorKind {
    match e {
        Error::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::PermissionDenied => ErrorKind::AccessDenied,
            std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
            // A file the kernel does not have, or a record in a form it
            // does not know: this kernel does not give the figure.
            _ => ErrorKind::Unsupported,
        },
        other => other.kind().unwrap_or(ErrorKind::Unsupported),
    }
}

/// Busy percentages between two readings, as psutil's
/// `cpu_percent(interval)` computes them: busy time over all time, per CPU
/// and in total. A CPU whose counters did not move (or went back, as after
/// a CPU was hot-plugged) reads 0.
pub fn cpu_percent(before: &CpuTimesSet, after: &CpuTimesSet) -> CpuPercent {
    let one = |a: &SystemCpuTimes, b: &SystemCpuTimes| -> f64 {
        let all = b.total() - a.total();
        let busy = b.busy() - a.busy();
        if all <= 0.0 || busy <= 0.0 {
            return 0.0;
        }
        ((busy / all * 100.0).clamp(0.0, 100.0) * 10.0).round() / 10.0
    };
    CpuPercent {
        total: one(&before.total, &after.total),
        per_cpu: before
            .per_cpu
            .iter()
            .zip(&after.per_cpu)
            .map(|(a, b)| one(a, b))
            .collect(),
    }
}

/// Each mode's share of the time between two readings, in percent, as
/// psutil's `cpu_times_percent(interval)`.
pub fn cpu_times_percent(before: &CpuTimesSet, after: &CpuTimesSet) -> CpuTimesSet {
    let one = |a: &SystemCpuTimes, b: &SystemCpuTimes| -> SystemCpuTimes {
        let all = b.total() - a.total();
        let share = |x: f64, y: f64| -> f64 {
            if all <= 0.0 {
                return 0.0;
            }
            (((y - x) / all * 100.0).clamp(0.0, 100.0) * 10.0).round() / 10.0
        };
        let opt = |x: Option<f64>, y: Option<f64>| Some(share(x?, y?));
        SystemCpuTimes {
            user: share(a.user, b.user),
            nice: share(a.nice, b.nice),
            system: share(a.system, b.system),
            idle: share(a.idle, b.idle),
            iowait: opt(a.iowait, b.iowait),
            irq: opt(a.irq, b.irq),
            softirq: opt(a.softirq, b.softirq),
            steal: opt(a.steal, b.steal),
            guest: opt(a.guest, b.guest),
            guest_nice: opt(a.guest_nice, b.guest_nice),
        }
    };
    CpuTimesSet {
        total: one(&before.total, &after.total),
        per_cpu: before
            .per_cpu
            .iter()
            .zip(&after.per_cpu)
            .map(|(a, b)| one(a, b))
            .collect(),
    }
}

// === Disks ===

/// A mounted file system, as psutil's `disk_partitions` lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Partition {
    /// The device ("/dev/sda1"); the source for pseudo file systems, ""
    /// where the kernel says "none" (as psutil).
    pub device: String,
    /// Where it is mounted.
    pub mountpoint: String,
    /// The file system type ("ext4").
    pub fstype: String,
    /// Mount options, comma-separated.
    pub opts: String,
}

/// A file system's size, in bytes, as psutil's `disk_usage`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DiskUsage {
    /// Size.
    pub total: u64,
    /// In use.
    pub used: u64,
    /// Free for unprivileged users.
    pub free: u64,
    /// `used / (used + free)` in percent, rounded to one decimal.
    pub percent: f64,
}

impl DiskUsage {
    /// psutil's figures from statvfs(3)'s block counts and fragment size:
    /// the root reserve counts neither as used nor as free.
    pub fn from_statvfs(frsize: u64, blocks: u64, bfree: u64, bavail: u64) -> DiskUsage {
        let total = blocks.saturating_mul(frsize);
        let used = blocks.saturating_sub(bfree).saturating_mul(frsize);
        let free = bavail.saturating_mul(frsize);
        DiskUsage {
            total,
            used,
            free,
            percent: percent(used, used.saturating_add(free)),
        }
    }
}

/// One disk's I/O since boot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskIo {
    /// The disk or partition ("sda", "sda1").
    pub name: String,
    /// Whether this is a whole disk, counted in the total (a partition's
    /// I/O is also its disk's).
    pub whole_disk: bool,
    /// Reads completed.
    pub read_count: u64,
    /// Writes completed.
    pub write_count: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Milliseconds reading, where counted.
    pub read_time: Option<u64>,
    /// Milliseconds writing, where counted.
    pub write_time: Option<u64>,
    /// Reads merged, where counted.
    pub read_merged_count: Option<u64>,
    /// Writes merged, where counted.
    pub write_merged_count: Option<u64>,
    /// Milliseconds the disk was busy, where counted.
    pub busy_time: Option<u64>,
}

impl DiskIo {
    /// The sum over the whole disks of `disks`, as psutil's
    /// `disk_io_counters()`; its name is empty.
    pub fn total(disks: &[DiskIo]) -> DiskIo {
        let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.wrapping_add(b)),
            (a, b) => a.or(b),
        };
        disks
            .iter()
            .filter(|d| d.whole_disk)
            .fold(DiskIo::default(), |t, d| DiskIo {
                name: String::new(),
                whole_disk: true,
                read_count: t.read_count.wrapping_add(d.read_count),
                write_count: t.write_count.wrapping_add(d.write_count),
                read_bytes: t.read_bytes.wrapping_add(d.read_bytes),
                write_bytes: t.write_bytes.wrapping_add(d.write_bytes),
                read_time: add(t.read_time, d.read_time),
                write_time: add(t.write_time, d.write_time),
                read_merged_count: add(t.read_merged_count, d.read_merged_count),
                write_merged_count: add(t.write_merged_count, d.write_merged_count),
                busy_time: add(t.busy_time, d.busy_time),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(user: f64, system: f64, idle: f64, iowait: f64) -> SystemCpuTimes {
        SystemCpuTimes {
            user,
            system,
            idle,
            iowait: Some(iowait),
            guest: Some(0.0),
            guest_nice: Some(0.0),
            ..SystemCpuTimes::default()
        }
    }

    #[test]
    fn cpu_percent_counts_iowait_as_idle_and_guest_once() {
        let set = |t: SystemCpuTimes| CpuTimesSet {
            total: t,
            per_cpu: vec![t],
        };
        let before = set(times(10.0, 5.0, 80.0, 5.0));
        let after = set(times(13.0, 6.0, 84.0, 7.0));
        // busy 4 of 10 seconds; iowait (2) is idle time.
        let p = cpu_percent(&before, &after);
        assert_eq!(p.total, 40.0);
        assert_eq!(p.per_cpu, vec![40.0]);
        let share = cpu_times_percent(&before, &after);
        assert_eq!(share.total.user, 30.0);
        assert_eq!(share.total.idle, 40.0);
        assert_eq!(share.total.iowait, Some(20.0));
        assert_eq!(share.total.irq, None);

        let mut guest = after.clone();
        guest.total.user += 10.0;
        guest.total.guest = Some(10.0);
        assert_eq!(
            cpu_percent(&before, &guest).total,
            40.0,
            "guest time is already in user"
        );
    }

    #[test]
    fn counters_that_stand_still_or_go_back_read_zero() {
        let set = CpuTimesSet {
            total: times(10.0, 5.0, 80.0, 5.0),
            per_cpu: vec![],
        };
        assert_eq!(cpu_percent(&set, &set).total, 0.0);
        let back = CpuTimesSet {
            total: times(1.0, 1.0, 1.0, 1.0),
            per_cpu: vec![],
        };
        assert_eq!(cpu_percent(&set, &back).total, 0.0);
    }

    #[test]
    fn disk_usage_leaves_the_root_reserve_out_of_the_percentage() {
        // 1000 blocks of 4 KiB, 300 free of which 250 for users.
        let u = DiskUsage::from_statvfs(4096, 1000, 300, 250);
        assert_eq!(u.total, 4_096_000);
        assert_eq!(u.used, 700 * 4096);
        assert_eq!(u.free, 250 * 4096);
        assert_eq!(u.percent, 73.7);
        assert_eq!(DiskUsage::from_statvfs(4096, 0, 0, 0).percent, 0.0);
    }

    #[test]
    fn the_disk_total_counts_whole_disks_only() {
        let disk = |name: &str, whole: bool, n: u64| DiskIo {
            name: name.to_owned(),
            whole_disk: whole,
            read_count: n,
            read_time: Some(n),
            ..DiskIo::default()
        };
        let total = DiskIo::total(&[
            disk("sda", true, 10),
            disk("sda1", false, 7),
            disk("sdb", true, 1),
        ]);
        assert_eq!(total.read_count, 11);
        assert_eq!(total.read_time, Some(11));
        assert_eq!(total.busy_time, None);
    }

    #[test]
    fn the_frequency_total_is_the_mean_and_knows_only_what_every_cpu_knows() {
        let set = CpuFreqSet::from_per_cpu(vec![
            CpuFreq {
                current: 1000.0,
                min: Some(400.0),
                max: Some(3000.0),
            },
            CpuFreq {
                current: 2000.0,
                min: None,
                max: Some(3000.0),
            },
        ])
        .expect("two CPUs");
        assert_eq!(set.total.current, 1500.0);
        assert_eq!(set.total.min, None);
        assert_eq!(set.total.max, Some(3000.0));
        assert_eq!(CpuFreqSet::from_per_cpu(vec![]), None);
    }
}
