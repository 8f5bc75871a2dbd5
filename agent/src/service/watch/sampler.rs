//! SAMPLE events: CPU, memory, threads, descriptors and I/O rates of the
//! watched live processes, every interval.
//!
//! Rates need two readings of the same process, so a process is first
//! sampled one interval after it was first read; the maths is in pure
//! functions ([`rates`]) apart from the reads.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use hostscope_proto as pb;
use tokio::sync::Semaphore;

use super::{event::Rates, filter::WatchFilter, tree::Tree};
use crate::{
    backend::{Backend, Field, FieldSet, ProcessInfo, Status},
    service::{self, ServiceError, convert},
};

/// The shortest and longest sample interval, in seconds.
const INTERVALS: std::ops::RangeInclusive<f64> = 0.1..=86_400.0;

/// The sample interval a request asks for, if any, or why it cannot be.
pub fn interval(seconds: Option<f64>) -> Result<Option<Duration>, ServiceError> {
    match seconds {
        None => Ok(None),
        Some(s) if INTERVALS.contains(&s) => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(ServiceError::invalid(
            "sample_interval",
            format!(
                "sample_interval must be between {} and {} seconds, not {s}",
                INTERVALS.start(),
                INTERVALS.end()
            ),
        )),
    }
}

/// What one reading of a process says, for rates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    /// When it was read, on the monotonic clock.
    pub at: Instant,
    /// When the process started: another value is another process.
    pub create_time: Option<f64>,
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: Option<f64>,
    /// Storage bytes read and written.
    pub io_bytes: Option<(u64, u64)>,
}

impl Reading {
    /// The reading of `p`, read at `at`.
    pub fn of(p: &ProcessInfo, at: Instant) -> Reading {
        Reading {
            at,
            create_time: p.create_time,
            cpu_seconds: p.cpu_times.map(|t| t.user + t.system),
            io_bytes: p.io_counters.map(|io| (io.read_bytes, io.write_bytes)),
        }
    }
}

/// The rates from `before` to `after`; `None` when the two readings are of
/// different processes that held the same pid. Counters that went back
/// (they never should) count as no change.
pub fn rates(before: &Reading, after: &Reading) -> Option<Rates> {
    if before.create_time != after.create_time {
        return None;
    }
    let secs = after.at.saturating_duration_since(before.at).as_secs_f64();
    if secs <= 0.0 {
        return Some(Rates::default());
    }
    let per_sec = |then: u64, now: u64| now.saturating_sub(then) as f64 / secs;
    let io = before.io_bytes.zip(after.io_bytes);
    Some(Rates {
        cpu_percent: before
            .cpu_seconds
            .zip(after.cpu_seconds)
            .map(|(then, now)| (now - then).max(0.0) / secs * 100.0),
        read_bytes_per_sec: io.map(|((then, _), (now, _))| per_sec(then, now)),
        write_bytes_per_sec: io.map(|((_, then), (_, now))| per_sec(then, now)),
    })
}

/// One watcher's sampler.
pub struct Sampler {
    backend: Arc<dyn Backend>,
    /// The agent's scan permits: a sample scan counts like a listing, so
    /// that many watchers sampling often cannot take the machine.
    scans: Arc<Semaphore>,
    every: Duration,
    /// What to read of each process: the measurements, and what the
    /// watcher's filter matches on.
    fields: FieldSet,
    previous: Readings,
}

impl Sampler {
    /// A sampler every `every` for the processes `filter` selects, scanning
    /// under a permit of `scans`.
    pub fn new(
        backend: Arc<dyn Backend>,
        every: Duration,
        filter: &WatchFilter,
        scans: Arc<Semaphore>,
    ) -> Sampler {
        let fields: FieldSet = [
            Field::Name,
            Field::Username,
            Field::Status,
            Field::CreateTime,
            Field::CpuTimes,
            Field::MemoryInfo,
            Field::NumThreads,
            Field::NumFds,
            Field::IoCounters,
        ]
        .into_iter()
        .collect();
        Sampler {
            backend,
            scans,
            every,
            fields: fields.union(filter.needs()),
            previous: Readings::default(),
        }
    }

    /// The ticks to sample at: the first one interval from now, after the
    /// baseline reading, so that every rate spans a whole interval.
    pub fn ticks(&self) -> tokio::time::Interval {
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + self.every, self.every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    }

    /// SAMPLE events for every watched live process that had a reading one
    /// interval ago. The reads run off the async runtime; a failed scan
    /// yields no samples this round.
    pub async fn sample(
        &mut self,
        filter: &WatchFilter,
        tree: Option<&Tree>,
    ) -> Vec<pb::ProcessEvent> {
        let pids = filter.pids().to_vec();
        let fields = self.fields;
        // Held for the scan only, never while the events are sent.
        let Ok(_permit) = self.scans.acquire().await else {
            return Vec::new();
        };
        let scanned = service::blocking(&self.backend, move |b| {
            let mut found = Vec::new();
            service::scan(b, &pids, fields, &mut |p| {
                found.push((Instant::now(), p));
                std::ops::ControlFlow::Continue(())
            })?;
            Ok(found)
        })
        .await;
        match scanned {
            Ok(scanned) => self.previous.take(scanned, filter, tree, super::now()),
            Err(e) => {
                tracing::warn!(error = %e, "sampling failed");
                Vec::new()
            }
        }
    }
}

/// The previous reading of each sampled process.
#[derive(Default)]
struct Readings(HashMap<u32, Reading>);

impl Readings {
    /// The events for the processes read at `time`, remembering their
    /// readings for the next round.
    fn take(
        &mut self,
        scanned: Vec<(Instant, ProcessInfo)>,
        filter: &WatchFilter,
        tree: Option<&Tree>,
        time: f64,
    ) -> Vec<pb::ProcessEvent> {
        let mut events = Vec::new();
        let mut current = HashMap::with_capacity(scanned.len());
        for (at, p) in scanned {
            let inside = tree.is_none_or(|t| t.contains(p.pid));
            // A zombie has nothing left to measure.
            let live = p.status.is_some_and(|s| s != Status::Zombie);
            if !inside || !live || !filter.matches(&p) {
                continue;
            }
            let reading = Reading::of(&p, at);
            if let Some(rates) = self
                .0
                .get(&p.pid)
                .and_then(|before| rates(before, &reading))
            {
                events.push(convert::sample_to_pb(&p, &rates, time));
            }
            current.insert(p.pid, reading);
        }
        self.0 = current;
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{CpuTimes, IoCounters, MemoryInfo};

    fn reading(at: Instant, cpu: f64, read: u64, write: u64) -> Reading {
        Reading {
            at,
            create_time: Some(1000.0),
            cpu_seconds: Some(cpu),
            io_bytes: Some((read, write)),
        }
    }

    #[test]
    fn rates_are_per_second_over_the_interval() {
        let t0 = Instant::now();
        let before = reading(t0, 10.0, 1_000, 0);
        let after = reading(t0 + Duration::from_secs(2), 11.5, 5_000, 2_048);
        let r = rates(&before, &after).expect("same process");
        assert_eq!(r.cpu_percent, Some(75.0));
        assert_eq!(r.read_bytes_per_sec, Some(2_000.0));
        assert_eq!(r.write_bytes_per_sec, Some(1_024.0));
    }

    #[test]
    fn a_reused_pid_has_no_rates() {
        let t0 = Instant::now();
        let before = reading(t0, 10.0, 0, 0);
        let mut after = reading(t0 + Duration::from_secs(1), 0.5, 0, 0);
        after.create_time = Some(2000.0);
        assert_eq!(rates(&before, &after), None);
    }

    #[test]
    fn unreadable_counters_give_absent_rates_never_zero() {
        let t0 = Instant::now();
        let before = reading(t0, 10.0, 0, 0);
        let mut after = reading(t0 + Duration::from_secs(1), 10.5, 0, 0);
        after.io_bytes = None;
        let r = rates(&before, &after).expect("same process");
        assert_eq!(r.cpu_percent, Some(50.0));
        assert_eq!((r.read_bytes_per_sec, r.write_bytes_per_sec), (None, None));
        after.cpu_seconds = None;
        assert_eq!(rates(&before, &after).and_then(|r| r.cpu_percent), None);
    }

    #[test]
    fn counters_that_go_back_and_empty_intervals_count_as_no_change() {
        let t0 = Instant::now();
        let before = reading(t0, 10.0, 500, 500);
        let after = reading(t0 + Duration::from_secs(1), 9.0, 100, 100);
        let r = rates(&before, &after).expect("same process");
        assert_eq!(r.cpu_percent, Some(0.0));
        assert_eq!(r.read_bytes_per_sec, Some(0.0));
        assert_eq!(rates(&before, &before), Some(Rates::default()));
    }

    #[test]
    fn intervals_outside_the_bounds_are_refused() {
        assert_eq!(interval(None).expect("none"), None);
        assert_eq!(
            interval(Some(0.5)).expect("half a second"),
            Some(Duration::from_millis(500))
        );
        for bad in [0.05, -1.0, 86_401.0, f64::NAN] {
            match interval(Some(bad)) {
                Err(ServiceError::InvalidArgument { field, message }) => {
                    assert_eq!(field, "sample_interval");
                    assert!(message.contains("between 0.1 and 86400"), "{message}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    fn process(pid: u32, cpu: f64, status: Status) -> ProcessInfo {
        ProcessInfo {
            name: Some("worker".into()),
            status: Some(status),
            create_time: Some(1000.0),
            cpu_times: Some(CpuTimes {
                user: cpu,
                ..CpuTimes::default()
            }),
            memory_info: Some(MemoryInfo {
                rss: 4096,
                ..MemoryInfo::default()
            }),
            io_counters: Some(IoCounters::default()),
            num_threads: Some(2),
            ..ProcessInfo::new(pid)
        }
    }

    #[test]
    fn a_process_is_sampled_from_its_second_reading_and_zombies_never() {
        let request = pb::WatchProcessesRequest {
            filter: Some(pb::ProcessFilter {
                name: "work*".into(),
                ..Default::default()
            }),
            sample_interval: Some(1.0),
            ..Default::default()
        };
        let filter = WatchFilter::new(&request).expect("filter");
        let mut readings = Readings::default();
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);

        let first = vec![
            (t0, process(10, 1.0, Status::Running)),
            (t0, process(11, 1.0, Status::Zombie)),
        ];
        assert!(readings.take(first, &filter, None, 100.0).is_empty());

        let mut other_name = process(12, 1.0, Status::Sleeping);
        other_name.name = Some("idle".into());
        let second = vec![
            (t1, process(10, 1.25, Status::Running)),
            (t1, process(11, 1.5, Status::Zombie)),
            (t1, other_name),
        ];
        let events = readings.take(second, &filter, None, 101.0);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].pid, 10);
        assert_eq!(events[0].time, 101.0);

        // Outside the watcher's tree, nothing is sampled.
        let tree = Tree::new(1, []);
        let third = vec![(
            t1 + Duration::from_secs(1),
            process(10, 1.5, Status::Running),
        )];
        assert!(readings.take(third, &filter, Some(&tree), 102.0).is_empty());
    }

    /// The real backend, noting how many scan permits were free at each
    /// process read.
    #[cfg(target_os = "linux")]
    struct Observed {
        inner: Box<dyn Backend>,
        scans: Arc<Semaphore>,
        free_at_reads: std::sync::Mutex<Vec<usize>>,
    }

    #[cfg(target_os = "linux")]
    impl Backend for Observed {
        fn host(&self) -> Result<crate::backend::HostInfo, crate::backend::Error> {
            self.inner.host()
        }

        fn for_each_process(
            &self,
            fields: FieldSet,
            visit: &mut dyn FnMut(ProcessInfo) -> std::ops::ControlFlow<()>,
        ) -> Result<(), crate::backend::Error> {
            self.free_at_reads
                .lock()
                .expect("lock")
                .push(self.scans.available_permits());
            self.inner.for_each_process(fields, visit)
        }

        fn process(
            &self,
            pid: u32,
            fields: FieldSet,
        ) -> Result<ProcessInfo, crate::backend::Error> {
            self.free_at_reads
                .lock()
                .expect("lock")
                .push(self.scans.available_permits());
            self.inner.process(pid, fields)
        }

        fn pid_exists(&self, pid: u32) -> Result<bool, crate::backend::Error> {
            self.inner.pid_exists(pid)
        }

        fn net_interfaces(
            &self,
        ) -> Result<Vec<crate::backend::NetInterface>, crate::backend::Error> {
            self.inner.net_interfaces()
        }

        fn signal(
            &self,
            pid: u32,
            signal: i32,
            expected_create_time: Option<f64>,
        ) -> Result<(), crate::backend::Error> {
            self.inner.signal(pid, signal, expected_create_time)
        }

        fn events(
            &self,
            mode: crate::backend::WatchMode,
            poll_interval: Duration,
        ) -> Result<Box<dyn crate::backend::EventSource>, crate::backend::Error> {
            self.inner.events(mode, poll_interval)
        }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_sample_scan_holds_a_scan_permit_and_gives_it_back() {
        let scans = Arc::new(Semaphore::new(1));
        let backend = Arc::new(Observed {
            inner: super::super::testing::real(),
            scans: Arc::clone(&scans),
            free_at_reads: std::sync::Mutex::default(),
        });
        for pids in [vec![std::process::id()], Vec::new()] {
            let request = pb::WatchProcessesRequest {
                filter: Some(pb::ProcessFilter {
                    pids,
                    ..Default::default()
                }),
                sample_interval: Some(1.0),
                ..Default::default()
            };
            let filter = WatchFilter::new(&request).expect("filter");
            let mut sampler = Sampler::new(
                Arc::clone(&backend) as Arc<dyn Backend>,
                Duration::from_secs(1),
                &filter,
                Arc::clone(&scans),
            );
            sampler.sample(&filter, None).await;
            assert_eq!(scans.available_permits(), 1, "the permit is given back");
        }
        let free = backend.free_at_reads.lock().expect("lock").clone();
        assert!(!free.is_empty(), "nothing was read");
        assert!(
            free.iter().all(|&n| n == 0),
            "reads without the permit: {free:?}"
        );
    }
}
