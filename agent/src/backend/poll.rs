//! Process events by polling: the process table, diffed every interval.
//!
//! Every backend can list its processes, so every backend can offer this
//! source through [`Backend::for_each_process`] alone. It misses processes
//! that live less than an interval and knows no exit codes; Linux uses it
//! where the kernel's process connector is unavailable, and platforms
//! without a kernel event stream use nothing else.

use std::{
    collections::HashMap,
    ops::ControlFlow,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use super::{
    Backend, Error, EventSource, Field, FieldSet, ProcessInfo, RawEvent, Status, WatchMode,
};

/// The fields a scan reads: all of them come from one record per process
/// on every platform (Linux `stat`, BSD `kinfo_proc`), so a poll costs as
/// little as a listing can.
const FIELDS: [Field; 3] = [Field::Ppid, Field::Status, Field::CreateTime];

/// What a scan keeps of a process.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Seen {
    /// 0 when the parent could not be read.
    ppid: u32,
    zombie: bool,
    /// Seconds since the epoch; tells a reused pid from the process that
    /// had it before. `None` when it could not be read.
    start: Option<f64>,
}

impl Seen {
    fn of(p: &ProcessInfo) -> Seen {
        Seen {
            ppid: p.ppid.unwrap_or(0),
            zombie: p.status == Some(Status::Zombie),
            start: p.create_time,
        }
    }
}

/// A process table: what a scan saw, by pid.
type Table = HashMap<u32, Seen>;

// === impl Poller ===

/// Diffs the process table every interval.
pub struct Poller<B: Backend> {
    /// The backend scanned; the poller owns it, since it outlives the call
    /// that opened it.
    backend: B,
    interval: Duration,
    /// When the next scan is due.
    due: Instant,
    /// The last complete scan, which the next one is diffed with.
    table: Table,
    /// The table the next scan fills, kept between scans so polling
    /// allocates nothing once it has grown to the host's process count.
    spare: Table,
}

impl<B: Backend> Poller<B> {
    /// Scans once now (fields ppid, status, create_time only), as the baseline.
    pub fn open(backend: B, interval: Duration) -> Result<Poller<B>, Error> {
        let mut table = Table::new();
        scan(&backend, &mut table)?;
        Ok(Poller {
            backend,
            interval,
            due: Instant::now() + interval,
            spare: Table::with_capacity(table.len()),
            table,
        })
    }
}

impl<B: Backend> EventSource for Poller<B> {
    fn mode(&self) -> WatchMode {
        WatchMode::Poll
    }

    /// Waits until the next scan is due (at most `timeout`), then scans
    /// and reports the differences, each event stamped with the time the
    /// scan finished: the latest moment the change can have happened.
    fn next(&mut self, timeout: Duration, out: &mut Vec<RawEvent>) -> Result<(), Error> {
        let now = Instant::now();
        if now < self.due {
            std::thread::sleep((self.due - now).min(timeout));
            if Instant::now() < self.due {
                return Ok(());
            }
        }
        // On failure the last complete table stays the baseline, so the
        // next scan that succeeds reports everything since.
        scan(&self.backend, &mut self.spare)?;
        diff(&self.table, &self.spare, epoch_now(), out);
        std::mem::swap(&mut self.table, &mut self.spare);
        // Keep the beat; after a stall, start a new one rather than scan
        // back to back to catch up.
        self.due += self.interval;
        let now = Instant::now();
        if self.due < now {
            self.due = now + self.interval;
        }
        Ok(())
    }
}

/// Fills `table` (emptied first) with every process of `backend`.
fn scan<B: Backend>(backend: &B, table: &mut Table) -> Result<(), Error> {
    table.clear();
    let fields: FieldSet = FIELDS.into_iter().collect();
    backend.for_each_process(fields, &mut |p| {
        table.insert(p.pid, Seen::of(&p));
        ControlFlow::Continue(())
    })
}

/// Seconds since the Unix epoch.
fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The events that turn table `before` into table `after`, at `time`:
/// first the exits (processes gone, replaced by another with the same
/// pid, or turned zombie), by pid; then the new processes, oldest first,
/// each followed by its exit if it is already a zombie.
fn diff(before: &Table, after: &Table, time: f64, out: &mut Vec<RawEvent>) {
    let exit = |pid| RawEvent::Exit {
        pid,
        exit_code: None,
        signal: None,
        time,
    };
    let mut exited = Vec::new();
    let mut born = Vec::new();
    for (&pid, old) in before {
        match after.get(&pid) {
            Some(new) if new.start != old.start => {
                // A zombie's exit was reported when it turned zombie.
                if !old.zombie {
                    exited.push(pid);
                }
                born.push((pid, new));
            }
            Some(new) if new.zombie && !old.zombie => exited.push(pid),
            Some(_) => {}
            None if !old.zombie => exited.push(pid),
            None => {}
        }
    }
    born.extend(
        after
            .iter()
            .filter(|(pid, _)| !before.contains_key(pid))
            .map(|(&pid, new)| (pid, new)),
    );
    exited.sort_unstable();
    born.sort_unstable_by(|(a, x), (b, y)| {
        let (x, y) = (x.start.unwrap_or(0.0), y.start.unwrap_or(0.0));
        x.total_cmp(&y).then(a.cmp(b))
    });
    out.extend(exited.into_iter().map(exit));
    for (pid, new) in born {
        out.push(RawEvent::Fork {
            pid,
            ppid: new.ppid,
            time,
        });
        if new.zombie {
            out.push(exit(pid));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;
    use crate::backend::{HostInfo, NetInterface};

    /// When every test event happens, in seconds since the epoch.
    const T: f64 = 1_795_626_000.5;

    fn live(ppid: u32, start: f64) -> Seen {
        Seen {
            ppid,
            zombie: false,
            start: Some(start),
        }
    }

    fn zombie(ppid: u32, start: f64) -> Seen {
        Seen {
            zombie: true,
            ..live(ppid, start)
        }
    }

    fn table(rows: &[(u32, Seen)]) -> Table {
        rows.iter().copied().collect()
    }

    fn diffed(before: &Table, after: &Table) -> Vec<RawEvent> {
        let mut out = Vec::new();
        diff(before, after, T, &mut out);
        out
    }

    fn fork(pid: u32, ppid: u32) -> RawEvent {
        RawEvent::Fork { pid, ppid, time: T }
    }

    fn exit(pid: u32) -> RawEvent {
        RawEvent::Exit {
            pid,
            exit_code: None,
            signal: None,
            time: T,
        }
    }

    #[test]
    fn an_unchanged_table_has_no_events() {
        let t = table(&[(1, live(0, 1.0)), (10, live(1, 2.0)), (11, zombie(10, 3.0))]);
        assert_eq!(diffed(&t, &t.clone()), vec![]);
        assert_eq!(diffed(&Table::new(), &Table::new()), vec![]);
    }

    #[test]
    fn exits_come_first_by_pid_then_births_oldest_first() {
        let before = table(&[
            (1, live(0, 1.0)),
            (10, live(1, 100.0)),
            (11, live(10, 200.0)),
            (12, live(10, 300.0)),
        ]);
        // 10 exits and is reaped, 11 turns zombie, 13 and 14 start (14
        // before 13), and 15 starts and dies between the two scans.
        let after = table(&[
            (1, live(0, 1.0)),
            (11, zombie(1, 200.0)),
            (12, live(10, 300.0)),
            (13, live(1, 500.0)),
            (14, live(12, 400.0)),
            (15, zombie(12, 600.0)),
        ]);
        assert_eq!(
            diffed(&before, &after),
            vec![
                exit(10),
                exit(11),
                fork(14, 12),
                fork(13, 1),
                fork(15, 12),
                exit(15)
            ]
        );
    }

    #[test]
    fn a_reaped_zombie_has_already_exited() {
        let before = table(&[(1, live(0, 1.0)), (11, zombie(1, 200.0))]);
        let after = table(&[(1, live(0, 1.0))]);
        assert_eq!(diffed(&before, &after), vec![]);
    }

    #[test]
    fn a_reused_pid_is_an_exit_and_a_fork() {
        let before = table(&[(1, live(0, 1.0)), (12, live(10, 300.0))]);
        let after = table(&[(1, live(0, 1.0)), (12, live(1, 700.0))]);
        assert_eq!(diffed(&before, &after), vec![exit(12), fork(12, 1)]);
        // A zombie's pid reused: the old process's exit was reported when
        // it turned zombie.
        let before = table(&[(1, live(0, 1.0)), (12, zombie(10, 300.0))]);
        assert_eq!(diffed(&before, &after), vec![fork(12, 1)]);
    }

    #[test]
    fn births_with_the_same_or_an_unknown_start_go_by_pid() {
        let unknown = Seen {
            start: None,
            ..live(1, 0.0)
        };
        let after = table(&[
            (30, live(1, 5.0)),
            (20, live(1, 5.0)),
            (40, unknown),
            (5, live(1, 9.0)),
        ]);
        assert_eq!(
            diffed(&Table::new(), &after),
            vec![fork(40, 1), fork(20, 1), fork(30, 1), fork(5, 1)]
        );
    }

    // === A backend with a process table the test sets ===

    /// A backend whose processes are whatever the test put in `table`,
    /// counting its scans and remembering the fields asked for.
    #[derive(Clone, Default)]
    struct FakeBackend {
        table: Arc<Mutex<Vec<ProcessInfo>>>,
        scans: Arc<AtomicUsize>,
        fields: Arc<Mutex<Vec<FieldSet>>>,
        /// When set, scans fail with this message.
        failing: Arc<Mutex<Option<&'static str>>>,
    }

    impl FakeBackend {
        fn set(&self, rows: &[(u32, u32, Status, f64)]) {
            *self.table.lock().unwrap() = rows
                .iter()
                .map(|&(pid, ppid, status, start)| ProcessInfo {
                    ppid: Some(ppid),
                    status: Some(status),
                    create_time: Some(start),
                    ..ProcessInfo::new(pid)
                })
                .collect();
        }

        fn scans(&self) -> usize {
            self.scans.load(Ordering::SeqCst)
        }
    }

    fn unsupported<T>() -> Result<T, Error> {
        Err(Error::Unsupported {
            what: "anything but listing processes in a fake backend",
        })
    }

    impl Backend for FakeBackend {
        fn host(&self) -> Result<HostInfo, Error> {
            unsupported()
        }

        fn for_each_process(
            &self,
            fields: FieldSet,
            visit: &mut dyn FnMut(ProcessInfo) -> ControlFlow<()>,
        ) -> Result<(), Error> {
            self.scans.fetch_add(1, Ordering::SeqCst);
            self.fields.lock().unwrap().push(fields);
            if let Some(message) = *self.failing.lock().unwrap() {
                return Err(Error::Io {
                    path: "fake process table".into(),
                    source: std::io::Error::other(message),
                });
            }
            for p in self.table.lock().unwrap().iter() {
                if visit(p.clone()).is_break() {
                    break;
                }
            }
            Ok(())
        }

        fn process(&self, _pid: u32, _fields: FieldSet) -> Result<ProcessInfo, Error> {
            unsupported()
        }

        fn pid_exists(&self, _pid: u32) -> Result<bool, Error> {
            unsupported()
        }

        fn net_interfaces(&self) -> Result<Vec<NetInterface>, Error> {
            unsupported()
        }

        fn signal(&self, _pid: u32, _signal: i32, _expected: Option<f64>) -> Result<(), Error> {
            unsupported()
        }

        fn events(
            &self,
            _mode: WatchMode,
            _poll_interval: Duration,
        ) -> Result<Box<dyn EventSource>, Error> {
            unsupported()
        }
    }

    fn next(source: &mut dyn EventSource) -> Vec<RawEvent> {
        let mut events = Vec::new();
        source.next(Duration::from_secs(5), &mut events).unwrap();
        events
    }

    fn kinds(events: &[RawEvent]) -> Vec<(&'static str, u32)> {
        events
            .iter()
            .map(|e| match e {
                RawEvent::Fork { pid, .. } => ("fork", *pid),
                RawEvent::Exec { pid, .. } => ("exec", *pid),
                RawEvent::Exit { pid, .. } => ("exit", *pid),
            })
            .collect()
    }

    #[test]
    fn open_scans_the_baseline_with_three_fields() {
        let backend = FakeBackend::default();
        backend.set(&[(1, 0, Status::Sleeping, 1.0)]);
        let poller = Poller::open(backend.clone(), Duration::ZERO).unwrap();
        assert_eq!(poller.mode(), WatchMode::Poll);
        assert_eq!(backend.scans(), 1);
        let expected: FieldSet = FIELDS.into_iter().collect();
        assert_eq!(*backend.fields.lock().unwrap(), vec![expected]);
    }

    #[test]
    fn each_scan_reports_what_changed_since_the_last() {
        let backend = FakeBackend::default();
        backend.set(&[(1, 0, Status::Sleeping, 1.0), (10, 1, Status::Running, 2.0)]);
        let mut poller = Poller::open(backend.clone(), Duration::ZERO).unwrap();
        // The baseline was taken at open: nothing has changed since.
        assert_eq!(next(&mut poller), vec![]);

        backend.set(&[
            (1, 0, Status::Sleeping, 1.0),
            (10, 1, Status::Zombie, 2.0),
            (11, 1, Status::Running, 3.0),
        ]);
        let events = next(&mut poller);
        assert_eq!(kinds(&events), [("exit", 10), ("fork", 11)]);
        // Polling knows neither exit codes nor signals.
        assert!(
            matches!(
                events[0],
                RawEvent::Exit {
                    exit_code: None,
                    signal: None,
                    ..
                }
            ),
            "{events:?}"
        );
        assert!(
            matches!(events[1], RawEvent::Fork { ppid: 1, .. }),
            "{events:?}"
        );
        // One scan's events carry one time.
        let times: Vec<f64> = events
            .iter()
            .map(|e| match e {
                RawEvent::Fork { time, .. }
                | RawEvent::Exec { time, .. }
                | RawEvent::Exit { time, .. } => *time,
            })
            .collect();
        assert_eq!(times[0], times[1]);

        // The table diffed is the last scan's, not the baseline.
        backend.set(&[(1, 0, Status::Sleeping, 1.0), (11, 1, Status::Running, 3.0)]);
        assert_eq!(next(&mut poller), vec![]);
        assert_eq!(backend.scans(), 4);
    }

    #[test]
    fn no_scan_before_the_interval_is_due() {
        let backend = FakeBackend::default();
        backend.set(&[(1, 0, Status::Sleeping, 1.0)]);
        let mut poller = Poller::open(backend.clone(), Duration::from_secs(3600)).unwrap();
        backend.set(&[(1, 0, Status::Sleeping, 1.0), (2, 1, Status::Running, 2.0)]);
        let mut events = Vec::new();
        // The timeout ends the wait long before the next scan is due.
        poller.next(Duration::from_millis(1), &mut events).unwrap();
        assert_eq!(events, vec![]);
        assert_eq!(backend.scans(), 1, "only the baseline scan ran");
    }

    #[test]
    fn a_failed_scan_keeps_the_last_table_as_the_baseline() {
        let backend = FakeBackend::default();
        backend.set(&[(1, 0, Status::Sleeping, 1.0), (10, 1, Status::Running, 2.0)]);
        let mut poller = Poller::open(backend.clone(), Duration::ZERO).unwrap();

        backend.set(&[(1, 0, Status::Sleeping, 1.0), (11, 1, Status::Running, 3.0)]);
        *backend.failing.lock().unwrap() = Some("the table is unreadable");
        let mut events = Vec::new();
        let error = poller
            .next(Duration::from_secs(5), &mut events)
            .unwrap_err();
        assert!(
            error.to_string().contains("the table is unreadable"),
            "{error}"
        );
        assert_eq!(events, vec![]);

        *backend.failing.lock().unwrap() = None;
        assert_eq!(kinds(&next(&mut poller)), [("exit", 10), ("fork", 11)]);
    }
}
