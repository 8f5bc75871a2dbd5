//! GetSystem and ListDisks: the host's own figures.
//!
//! CPU percentages are measured when asked, over the request's interval:
//! the CPU times are read, the call waits (on a timer, holding no thread),
//! and they are read again. Nothing is sampled in the background.
//!
//! A file system's usage is a statvfs(2), which blocks for as long as the
//! file system takes to answer: for ever, for an NFS mount whose server is
//! gone. The [`UsageProbe`] makes those calls on a thread of its own under a
//! deadline per mount; a mount that does not answer in time is TIMEOUT, and
//! is not asked again until its stuck call has returned, so a dead mount
//! costs one thread, not one per request.

use std::{
    collections::{HashSet, VecDeque},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use hostscope_proto as pb;
use tokio::{sync::mpsc, time::Instant};

use super::{ServiceError, blocking, convert::error_kind_to_pb};
use crate::backend::{
    Backend, DiskIo, DiskUsage, ErrorKind, Partition, SystemField, SystemFields, SystemInfo,
    system::{self, CpuTimesSet, SystemCpuTimes, figure_error_kind},
};

/// The interval of CPU percentages when the request gives none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
/// The longest interval a request may ask for.
pub const MAX_INTERVAL: Duration = Duration::from_secs(10);
/// How long one mount's statvfs may take when the request gives no limit.
pub const DEFAULT_USAGE_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a request may allow one mount.
pub const MAX_USAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// A whole ListDisks call stops asking new mounts after this many
/// per-mount deadlines: many dead mounts cannot hold it for long.
const USAGE_DEADLINES_PER_CALL: u32 = 4;
/// The longest cgroup path a request may name.
const MAX_CGROUP_PATH: usize = 4096;

// === Requests ===

/// A measuring interval from the request's `field` in milliseconds: 0 is
/// the default, above [`MAX_INTERVAL`] is refused.
pub fn interval_from_pb(field: &'static str, ms: u32) -> Result<Duration, ServiceError> {
    bounded_ms(field, ms, DEFAULT_INTERVAL, MAX_INTERVAL)
}

fn bounded_ms(
    field: &'static str,
    ms: u32,
    default: Duration,
    max: Duration,
) -> Result<Duration, ServiceError> {
    let asked = Duration::from_millis(u64::from(ms));
    match ms {
        0 => Ok(default),
        _ if asked > max => Err(ServiceError::invalid(
            field,
            format!(
                "{field} is {ms} ms; it may be at most {} ms (0 means {} ms)",
                max.as_millis(),
                default.as_millis()
            ),
        )),
        _ => Ok(asked),
    }
}

/// The figures a request asks for; empty means every one.
fn fields_from_pb(fields: &[i32]) -> Result<SystemFields, ServiceError> {
    if fields.is_empty() {
        return Ok(SystemFields::all());
    }
    fields
        .iter()
        .map(|&value| {
            pb::SystemField::try_from(value)
                .ok()
                .and_then(field_from_pb)
                .ok_or_else(|| {
                    use hostscope_proto::EnumName;
                    ServiceError::invalid(
                        "fields",
                        format!(
                            "no system field has the value {value}; the fields are {}",
                            pb::SystemField::short_names().join(", ")
                        ),
                    )
                })
        })
        .collect()
}

/// The cgroup path a request names: `None` for the agent's own. A path is
/// absolute, and never climbs out of the hierarchy.
fn cgroup_from_pb(path: String) -> Result<Option<String>, ServiceError> {
    if path.is_empty() {
        return Ok(None);
    }
    let why = if path.len() > MAX_CGROUP_PATH {
        Some(format!(
            "is {} bytes long; at most {MAX_CGROUP_PATH}",
            path.len()
        ))
    } else if !path.starts_with('/') {
        Some(
            "must be absolute, as a process's cgroup field is (\"/system.slice/x.service\")".into(),
        )
    } else if path.split('/').any(|part| part == ".." || part == ".") {
        Some("may not contain \".\" or \"..\" components".into())
    } else if path.contains('\0') {
        Some("may not contain NUL".into())
    } else {
        None
    };
    match why {
        Some(why) => Err(ServiceError::invalid(
            "cgroup",
            format!(
                "the cgroup path {} {why}",
                crate::backend::glob::excerpt(&path)
            ),
        )),
        None => Ok(Some(path)),
    }
}

// === GetSystem ===

/// The GetSystem answer.
pub(super) async fn get_system(
    backend: &Arc<dyn Backend>,
    request: pb::GetSystemRequest,
) -> Result<pb::System, ServiceError> {
    let asked = fields_from_pb(&request.fields)?;
    let interval = interval_from_pb("interval_ms", request.interval_ms)?;
    let cgroup = cgroup_from_pb(request.cgroup)?;

    let measured = asked.any(&[SystemField::CpuPercent, SystemField::CpuTimesPercent]);
    let mut read: SystemFields = asked.iter().filter(|f| !f.is_measured()).collect();
    if measured {
        read.insert(SystemField::CpuTimes);
    }
    let mut info = blocking(backend, move |b| Ok(b.system(read, cgroup.as_deref()))).await?;

    let mut rates = Rates::default();
    if measured {
        let before = info.cpu_times.clone();
        let after = match before {
            Some(_) => {
                tokio::time::sleep(interval).await;
                let only: SystemFields = [SystemField::CpuTimes].into_iter().collect();
                let mut again = blocking(backend, move |b| Ok(b.system(only, None))).await?;
                // Why the second reading failed, if it did, stands for both.
                info.field_errors.append(&mut again.field_errors);
                again.cpu_times
            }
            None => None,
        };
        rates = Rates::between(before.as_ref(), after.as_ref());
        let source_error = info
            .field_errors
            .iter()
            .rev()
            .find(|e| e.0 == SystemField::CpuTimes)
            .cloned();
        for field in [SystemField::CpuPercent, SystemField::CpuTimesPercent] {
            if asked.contains(field) && rates.is_none() {
                let (kind, message) = source_error.clone().map_or(
                    (
                        ErrorKind::Unsupported,
                        "no CPU times to measure from".to_owned(),
                    ),
                    |(_, kind, message)| (kind, message),
                );
                info.field_errors.push((field, kind, message));
            }
        }
        if !asked.contains(SystemField::CpuTimes) {
            info.cpu_times = None;
            info.field_errors.retain(|e| e.0 != SystemField::CpuTimes);
        } else {
            // One error per field, however many readings failed.
            let mut seen = HashSet::new();
            info.field_errors.retain(|e| seen.insert(e.0));
        }
    }
    Ok(system_to_pb(info, rates))
}

/// What was measured between two CPU time readings.
#[derive(Default)]
struct Rates {
    percent: Option<system::CpuPercent>,
    times_percent: Option<CpuTimesSet>,
}

impl Rates {
    fn between(before: Option<&CpuTimesSet>, after: Option<&CpuTimesSet>) -> Rates {
        match (before, after) {
            (Some(a), Some(b)) => Rates {
                percent: Some(system::cpu_percent(a, b)),
                times_percent: Some(system::cpu_times_percent(a, b)),
            },
            _ => Rates::default(),
        }
    }

    fn is_none(&self) -> bool {
        self.percent.is_none()
    }
}

/// The wire form of a backend's figures and the measured percentages.
fn system_to_pb(info: SystemInfo, rates: Rates) -> pb::System {
    let times = |t: SystemCpuTimes| pb::SystemCpuTimes {
        user: t.user,
        nice: t.nice,
        system: t.system,
        idle: t.idle,
        iowait: t.iowait,
        irq: t.irq,
        softirq: t.softirq,
        steal: t.steal,
        guest: t.guest,
        guest_nice: t.guest_nice,
    };
    let set = |s: CpuTimesSet| pb::SystemCpuTimesSet {
        total: Some(times(s.total)),
        per_cpu: s.per_cpu.into_iter().map(times).collect(),
    };
    let freq = |f: system::CpuFreq| pb::CpuFreq {
        current: f.current,
        min: f.min,
        max: f.max,
    };
    pb::System {
        cpu_times: info.cpu_times.map(set),
        cpu_percent: rates.percent.map(|p| pb::CpuPercent {
            total: p.total,
            per_cpu: p.per_cpu,
        }),
        cpu_times_percent: rates.times_percent.map(set),
        cpu_stats: info.cpu_stats.map(|s| pb::CpuStats {
            ctx_switches: s.ctx_switches,
            interrupts: s.interrupts,
            soft_interrupts: s.soft_interrupts,
            syscalls: s.syscalls,
        }),
        cpu_freq: info.cpu_freq.map(|f| pb::CpuFreqSet {
            total: Some(freq(f.total)),
            per_cpu: f.per_cpu.into_iter().map(freq).collect(),
        }),
        cpu_count: info.cpu_count.map(|c| pb::CpuCount {
            logical: c.logical,
            physical: c.physical,
        }),
        loadavg: info.loadavg.map(|l| pb::LoadAvg {
            load1: l.load1,
            load5: l.load5,
            load15: l.load15,
        }),
        virtual_memory: info.virtual_memory.map(|m| pb::VirtualMemory {
            total: m.total,
            available: m.available,
            percent: m.percent,
            used: m.used,
            free: m.free,
            active: m.active,
            inactive: m.inactive,
            buffers: m.buffers,
            cached: m.cached,
            shared: m.shared,
            slab: m.slab,
            wired: m.wired,
        }),
        swap_memory: info.swap_memory.map(|s| pb::SwapMemory {
            total: s.total,
            used: s.used,
            free: s.free,
            percent: s.percent,
            sin: s.sin,
            sout: s.sout,
        }),
        users: info
            .users
            .unwrap_or_default()
            .into_iter()
            .map(|u| pb::User {
                name: u.name,
                terminal: u.terminal,
                host: u.host,
                started: u.started,
                pid: u.pid,
            })
            .collect(),
        boot_time: info.boot_time,
        temperatures: info
            .temperatures
            .unwrap_or_default()
            .into_iter()
            .map(|t| pb::Temperature {
                sensor: t.sensor,
                label: t.label,
                current: t.current,
                high: t.high,
                critical: t.critical,
            })
            .collect(),
        fans: info
            .fans
            .unwrap_or_default()
            .into_iter()
            .map(|f| pb::Fan {
                sensor: f.sensor,
                label: f.label,
                current: f.current,
            })
            .collect(),
        battery: info.battery.flatten().map(|b| pb::Battery {
            percent: b.percent,
            secsleft: b.secsleft,
            power_plugged: b.power_plugged,
        }),
        cgroup: info.cgroup.map(|c| pb::Cgroup {
            path: c.path,
            version: c.version,
            memory_max: c.memory_max,
            memory_current: c.memory_current,
            memory_swap_max: c.memory_swap_max,
            memory_swap_current: c.memory_swap_current,
            cpu_max_quota_us: c.cpu_max_quota_us,
            cpu_max_period_us: c.cpu_max_period_us,
            cpu_usage_us: c.cpu_usage_us,
            pids_max: c.pids_max,
            pids_current: c.pids_current,
        }),
        field_errors: info
            .field_errors
            .into_iter()
            .map(|(field, kind, message)| pb::SystemFieldError {
                field: field_to_pb(field) as i32,
                kind: error_kind_to_pb(kind) as i32,
                message,
            })
            .collect(),
    }
}

/// The wire name of a system figure.
pub fn field_to_pb(field: SystemField) -> pb::SystemField {
    match field {
        SystemField::CpuTimes => pb::SystemField::CpuTimes,
        SystemField::CpuPercent => pb::SystemField::CpuPercent,
        SystemField::CpuTimesPercent => pb::SystemField::CpuTimesPercent,
        SystemField::CpuStats => pb::SystemField::CpuStats,
        SystemField::CpuFreq => pb::SystemField::CpuFreq,
        SystemField::CpuCount => pb::SystemField::CpuCount,
        SystemField::Loadavg => pb::SystemField::Loadavg,
        SystemField::VirtualMemory => pb::SystemField::VirtualMemory,
        SystemField::SwapMemory => pb::SystemField::SwapMemory,
        SystemField::Users => pb::SystemField::Users,
        SystemField::BootTime => pb::SystemField::BootTime,
        SystemField::SensorsTemperatures => pb::SystemField::SensorsTemperatures,
        SystemField::SensorsFans => pb::SystemField::SensorsFans,
        SystemField::SensorsBattery => pb::SystemField::SensorsBattery,
        SystemField::Cgroup => pb::SystemField::Cgroup,
    }
}

/// The figure a wire value names; `None` for UNSPECIFIED.
fn field_from_pb(field: pb::SystemField) -> Option<SystemField> {
    SystemField::ALL
        .into_iter()
        .find(|f| field_to_pb(*f) == field)
}

// === ListDisks ===

/// The ListDisks answer.
pub(super) async fn list_disks(
    backend: &Arc<dyn Backend>,
    probe: &UsageProbe,
    request: pb::ListDisksRequest,
) -> Result<pb::ListDisksResponse, ServiceError> {
    let (usage, io) = disk_fields_from_pb(&request.fields)?;
    let each = bounded_ms(
        "usage_timeout_ms",
        request.usage_timeout_ms,
        DEFAULT_USAGE_TIMEOUT,
        MAX_USAGE_TIMEOUT,
    )?;
    let all = request.all;
    let partitions = blocking(backend, move |b| b.disk_partitions(all)).await?;
    let usages = if usage {
        let mounts = partitions.iter().map(|p| p.mountpoint.clone()).collect();
        probe.usage(backend, mounts, each).await
    } else {
        Vec::new()
    };
    let mut response = pb::ListDisksResponse::default();
    if io {
        match blocking(backend, |b| Ok(b.disk_io_counters())).await? {
            Ok(disks) => {
                response.io_total = Some(disk_io_to_pb(DiskIo::total(&disks)));
                response.io_counters = disks.into_iter().map(disk_io_to_pb).collect();
            }
            Err(e) => response.field_errors.push(pb::DiskFieldError {
                field: pb::DiskField::IoCounters as i32,
                kind: error_kind_to_pb(figure_error_kind(&e)) as i32,
                message: e.to_string(),
            }),
        }
    }
    let mut usages = usages.into_iter();
    response.partitions = partitions
        .into_iter()
        .map(|p| partition_to_pb(p, usages.next()))
        .collect();
    Ok(response)
}

/// Which of usage and I/O counters a request asks for; empty means both.
fn disk_fields_from_pb(fields: &[i32]) -> Result<(bool, bool), ServiceError> {
    if fields.is_empty() {
        return Ok((true, true));
    }
    let (mut usage, mut io) = (false, false);
    for &value in fields {
        match pb::DiskField::try_from(value) {
            Ok(pb::DiskField::Usage) => usage = true,
            Ok(pb::DiskField::IoCounters) => io = true,
            _ => {
                return Err(ServiceError::invalid(
                    "fields",
                    format!(
                        "no disk field has the value {value}; the fields are usage, io_counters"
                    ),
                ));
            }
        }
    }
    Ok((usage, io))
}

fn partition_to_pb(p: Partition, usage: Option<UsageResult>) -> pb::DiskPartition {
    let (usage, usage_error) = match usage {
        Some(Ok(u)) => (
            Some(pb::DiskUsage {
                total: u.total,
                used: u.used,
                free: u.free,
                percent: u.percent,
            }),
            None,
        ),
        Some(Err(kind)) => (None, Some(error_kind_to_pb(kind) as i32)),
        None => (None, None),
    };
    pb::DiskPartition {
        device: p.device,
        mountpoint: p.mountpoint,
        fstype: p.fstype,
        opts: p.opts,
        usage,
        usage_error,
    }
}

fn disk_io_to_pb(d: DiskIo) -> pb::DiskIoCounters {
    pb::DiskIoCounters {
        name: d.name,
        read_count: d.read_count,
        write_count: d.write_count,
        read_bytes: d.read_bytes,
        write_bytes: d.write_bytes,
        read_time: d.read_time,
        write_time: d.write_time,
        read_merged_count: d.read_merged_count,
        write_merged_count: d.write_merged_count,
        busy_time: d.busy_time,
    }
}

/// One mount's usage, or the kind of why not.
type UsageResult = Result<DiskUsage, ErrorKind>;

/// Runs statvfs calls under deadlines, and remembers the mounts whose call
/// has not returned.
#[derive(Default)]
pub struct UsageProbe {
    /// Mount points whose statvfs is still running past its deadline.
    stuck: Arc<Mutex<HashSet<String>>>,
}

impl UsageProbe {
    /// Mount points whose statvfs has not returned yet.
    pub fn stuck(&self) -> usize {
        lock(&self.stuck).len()
    }

    /// The usage of each of `mounts`, in order. Each mount gets `each` to
    /// answer; one that does not is TIMEOUT and stays marked until its
    /// call returns. Mounts are asked one after another on one thread; a
    /// thread stuck on a mount is left to it and a new one takes the rest.
    pub async fn usage(
        &self,
        backend: &Arc<dyn Backend>,
        mounts: Vec<String>,
        each: Duration,
    ) -> Vec<UsageResult> {
        let mut results: Vec<Option<UsageResult>> = vec![None; mounts.len()];
        let mut todo: VecDeque<usize> = VecDeque::new();
        {
            let stuck = lock(&self.stuck);
            for (i, mount) in mounts.iter().enumerate() {
                if stuck.contains(mount) {
                    results[i] = Some(Err(ErrorKind::Timeout));
                } else {
                    todo.push_back(i);
                }
            }
        }
        let call_ends = Instant::now() + each * USAGE_DEADLINES_PER_CALL;
        while !todo.is_empty() && Instant::now() < call_ends {
            let batch: Vec<(usize, String)> =
                todo.drain(..).map(|i| (i, mounts[i].clone())).collect();
            let abandoned = Arc::new(AtomicBool::new(false));
            let (tx, mut rx) = mpsc::unbounded_channel();
            if let Err(e) = self.spawn(backend, batch.clone(), Arc::clone(&abandoned), tx) {
                tracing::warn!(error = %e, "cannot start a thread for statvfs");
                break;
            }
            for (at, (i, mount)) in batch.iter().enumerate() {
                let deadline = (Instant::now() + each).min(call_ends);
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some((j, result))) => {
                        debug_assert_eq!(j, *i);
                        results[j] = Some(result.map_err(|e| figure_error_kind(&e)));
                    }
                    // The thread ended early: it cannot have.
                    Ok(None) => break,
                    Err(_) => {
                        {
                            let mut stuck = lock(&self.stuck);
                            stuck.insert(mount.clone());
                            abandoned.store(true, Ordering::SeqCst);
                        }
                        tracing::warn!(
                            mountpoint = %mount,
                            timeout = ?each,
                            "a file system did not answer statvfs in time"
                        );
                        results[*i] = Some(Err(ErrorKind::Timeout));
                        todo.extend(batch[at + 1..].iter().map(|(k, _)| *k));
                        break;
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(ErrorKind::Timeout)))
            .collect()
    }

    /// A thread that asks `batch`'s mounts in order and sends each answer,
    /// until it is `abandoned` while stuck.
    fn spawn(
        &self,
        backend: &Arc<dyn Backend>,
        batch: Vec<(usize, String)>,
        abandoned: Arc<AtomicBool>,
        tx: mpsc::UnboundedSender<(usize, Result<DiskUsage, crate::backend::Error>)>,
    ) -> std::io::Result<()> {
        let backend = Arc::clone(backend);
        let stuck = Arc::clone(&self.stuck);
        std::thread::Builder::new()
            .name("statvfs".to_owned())
            .spawn(move || {
                for (i, mount) in batch {
                    let result = backend.disk_usage(&mount);
                    {
                        let mut stuck = lock(&stuck);
                        if abandoned.load(Ordering::SeqCst) {
                            // The caller gave up on this mount: it may be
                            // asked again now that it answered.
                            stuck.remove(&mount);
                            return;
                        }
                    }
                    if tx.send((i, result)).is_err() {
                        return;
                    }
                }
            })
            .map(drop)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::{
        ops::ControlFlow,
        sync::atomic::AtomicUsize,
        sync::mpsc::{Receiver, channel},
    };

    use super::*;
    use crate::backend::{
        Error, EventSource, FieldSet, HostInfo, NetInterface, ProcessInfo, WatchMode,
    };

    /// Disks where "/dead" answers only once the test lets it.
    struct Disks {
        release: Mutex<Option<Receiver<()>>>,
        dead_calls: AtomicUsize,
    }

    impl Backend for Disks {
        fn host(&self) -> Result<HostInfo, Error> {
            Err(Error::Unsupported { what: "host" })
        }
        fn for_each_process(
            &self,
            _: FieldSet,
            _: &mut dyn FnMut(ProcessInfo) -> ControlFlow<()>,
        ) -> Result<(), Error> {
            Ok(())
        }
        fn process(&self, pid: u32, _: FieldSet) -> Result<ProcessInfo, Error> {
            Err(Error::NoSuchProcess { pid })
        }
        fn pid_exists(&self, _: u32) -> Result<bool, Error> {
            Ok(false)
        }
        fn net_interfaces(&self) -> Result<Vec<NetInterface>, Error> {
            Ok(Vec::new())
        }
        fn signal(&self, pid: u32, _: i32, _: Option<f64>) -> Result<(), Error> {
            Err(Error::NoSuchProcess { pid })
        }
        fn events(&self, _: WatchMode, _: Duration) -> Result<Box<dyn EventSource>, Error> {
            Err(Error::Unsupported { what: "events" })
        }
        fn disk_usage(&self, mountpoint: &str) -> Result<DiskUsage, Error> {
            if mountpoint == "/dead" {
                self.dead_calls.fetch_add(1, Ordering::SeqCst);
                let release = lock(&self.release).take();
                if let Some(release) = release {
                    let _ = release.recv();
                }
            }
            Ok(DiskUsage::from_statvfs(4096, 100, 50, 40))
        }
    }

    #[tokio::test]
    async fn a_mount_that_does_not_answer_is_a_timeout_and_is_not_asked_again_while_stuck() {
        let (release, rx) = channel();
        let disks = Arc::new(Disks {
            release: Mutex::new(Some(rx)),
            dead_calls: AtomicUsize::new(0),
        });
        let backend: Arc<dyn Backend> = disks.clone();
        let probe = UsageProbe::default();
        let mounts = || vec!["/".to_owned(), "/dead".to_owned(), "/home".to_owned()];
        let each = Duration::from_millis(200);

        let first = probe.usage(&backend, mounts(), each).await;
        assert!(first[0].is_ok(), "{first:?}");
        assert_eq!(first[1], Err(ErrorKind::Timeout));
        assert!(
            first[2].is_ok(),
            "the mounts after a dead one are still asked"
        );
        assert_eq!(probe.stuck(), 1);

        let second = probe.usage(&backend, mounts(), each).await;
        assert_eq!(second[1], Err(ErrorKind::Timeout));
        assert!(second[0].is_ok() && second[2].is_ok());
        assert_eq!(
            disks.dead_calls.load(Ordering::SeqCst),
            1,
            "a stuck mount costs one thread, not one per request"
        );

        // Once the stuck call returns, the mount is asked again.
        release.send(()).expect("the stuck call waits");
        while probe.stuck() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let third = probe.usage(&backend, mounts(), each).await;
        assert!(third.iter().all(Result::is_ok), "{third:?}");
        assert_eq!(disks.dead_calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn bad_requests_name_their_field() {
        for (path, says) in [
            ("relative/x", "must be absolute"),
            ("/a/../../etc", "\"..\""),
            ("/a/./b", "\".\""),
            ("/a\0", "NUL"),
        ] {
            let e = cgroup_from_pb(path.to_owned()).expect_err(path);
            assert!(e.to_string().contains(says), "{path}: {e}");
        }
        assert_eq!(cgroup_from_pb(String::new()).ok(), Some(None));
        assert_eq!(
            cgroup_from_pb("/system.slice/ssh.service".to_owned()).ok(),
            Some(Some("/system.slice/ssh.service".to_owned()))
        );
        let long = format!("/{}", "x".repeat(5000));
        assert!(
            cgroup_from_pb(long)
                .expect_err("too long")
                .to_string()
                .len()
                < 300
        );

        assert_eq!(
            interval_from_pb("interval_ms", 0).ok(),
            Some(DEFAULT_INTERVAL)
        );
        let e = interval_from_pb("interval_ms", 10_001).expect_err("too long");
        assert!(e.to_string().contains("at most 10000 ms"), "{e}");
        assert!(fields_from_pb(&[99]).is_err());
        assert_eq!(fields_from_pb(&[]).ok(), Some(SystemFields::all()));
        assert!(disk_fields_from_pb(&[0]).is_err());
        assert_eq!(disk_fields_from_pb(&[]).ok(), Some((true, true)));
    }

    #[test]
    fn every_system_field_has_a_wire_name_and_back() {
        for field in SystemField::ALL {
            assert_eq!(field_from_pb(field_to_pb(field)), Some(field));
        }
        assert_eq!(field_from_pb(pb::SystemField::Unspecified), None);
    }
}
