//! The collector: one thread that reads the backend's event source for
//! every watcher, names each process from what /proc still says (or what
//! it said while the process lived), and publishes [`Event`]s.
//!
//! The kernel reports an exit before the process's state turns Z, so each
//! exit schedules a few checks, soon after, of whether the process was left
//! a zombie.

use std::{
    collections::HashMap,
    ops::ControlFlow,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::broadcast;

use super::{Channel, Event, EventKind, lock};
use crate::backend::{Backend, EventSource, Field, FieldSet, ProcessInfo, RawEvent, Status};

/// The longest the collector waits for events before it checks whether
/// anyone still listens.
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// Delays of the zombie checks after an exit, each after the last. Every
/// exited process is a zombie until its parent reaps it, which a parent
/// that waits for its children does within microseconds: the first check
/// comes late enough that such a child is gone by then, so that only a
/// child its parent leaves unreaped is reported.
const ZOMBIE_CHECKS: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(3),
];

/// What is read of a process that started or exec'd.
const DESCRIBED: [Field; 6] = [
    Field::Ppid,
    Field::Name,
    Field::Cmdline,
    Field::Username,
    Field::Uids,
    Field::CreateTime,
];

/// What names a process that exec'd: read first, on its own, so that a
/// process that exits right after its exec still gets its new name even
/// when the fuller read fails.
const NAMED: [Field; 1] = [Field::Name];

/// What is remembered of a live process, to name it when it exits (by then
/// /proc may have nothing left to read) and to filter its exit by user.
const REMEMBERED: [Field; 4] = [Field::Ppid, Field::Name, Field::Username, Field::Uids];

/// What a zombie check reads.
const CHECKED: [Field; 3] = [Field::Status, Field::Ppid, Field::Name];

/// Reads one event source and publishes to every watcher.
pub struct Collector {
    backend: Arc<dyn Backend>,
    source: Box<dyn EventSource>,
    tx: broadcast::Sender<Arc<Event>>,
    /// The hub's handle on `tx`, cleared when the collector stops.
    channel: Channel,
}

impl Collector {
    /// A collector publishing on `tx`, which `channel` holds while it runs.
    pub fn new(
        backend: Arc<dyn Backend>,
        source: Box<dyn EventSource>,
        tx: broadcast::Sender<Arc<Event>>,
        channel: Channel,
    ) -> Collector {
        Collector {
            backend,
            source,
            tx,
            channel,
        }
    }

    /// Collects until nobody listens.
    pub fn run(mut self) {
        tracing::debug!(mode = ?self.source.mode(), "event collector started");
        let checked: FieldSet = CHECKED.into_iter().collect();
        let mut table = Table::read(self.backend.as_ref());
        let mut checks = ZombieChecks::default();
        let mut raw = Vec::new();
        while self.listened() {
            let wait = checks.wait(Instant::now(), IDLE_WAIT);
            if let Err(e) = self.source.next(wait, &mut raw) {
                tracing::warn!(error = %e, "reading process events failed; retrying");
                std::thread::sleep(IDLE_WAIT);
            }
            if let Some(lost) = lost(self.source.take_lost(), super::now()) {
                let _ = self.tx.send(Arc::new(lost));
            }
            let backend = self.backend.as_ref();
            for raw in raw.drain(..) {
                let read = |pid, fields| backend.process(pid, fields).ok();
                let event = enrich(raw, read, &mut table, &mut checks, Instant::now());
                // Sending fails only when nobody listens, which the loop
                // checks next.
                let _ = self.tx.send(Arc::new(event));
            }
            let read = |pid| backend.process(pid, checked).ok();
            for event in checks.run(Instant::now(), super::now(), read) {
                let _ = self.tx.send(Arc::new(event));
            }
        }
        tracing::debug!("event collector stopped: nobody watches");
    }

    /// Whether anyone still listens; when nobody does, the hub forgets this
    /// collector. Checked under the lock that the hub's `subscribe` holds,
    /// so no new watcher can join a stopping collector.
    fn listened(&self) -> bool {
        let mut channel = lock(&self.channel);
        if self.tx.receiver_count() == 0 {
            *channel = None;
            return false;
        }
        true
    }
}

/// What the collector remembers of each live process, by pid. Exits are
/// forgotten, so the table holds only live processes.
#[derive(Debug, Default)]
struct Table(HashMap<u32, ProcessInfo>);

impl Table {
    /// Every process now. A failed scan leaves the table to fill with the
    /// processes that start from now on.
    fn read(b: &dyn Backend) -> Table {
        let fields: FieldSet = REMEMBERED.into_iter().collect();
        let mut table = Table::default();
        if let Err(e) = b.for_each_process(fields, &mut |p| {
            table.remember(&p);
            ControlFlow::Continue(())
        }) {
            tracing::warn!(error = %e, "reading the process table failed: early exits go unnamed");
        }
        table
    }

    /// Remembers what identifies `p`, a new process: whatever an earlier
    /// holder of its pid left is replaced.
    fn remember(&mut self, p: &ProcessInfo) {
        let known = ProcessInfo {
            ppid: p.ppid,
            name: p.name.clone(),
            username: p.username.clone(),
            uids: p.uids,
            ..ProcessInfo::new(p.pid)
        };
        self.0.insert(p.pid, known);
    }

    /// Updates what is known of `p` with what was read of it, keeping what
    /// was not read: a failed read never erases a known parent, name or
    /// user. Returns what is known now.
    fn update(&mut self, p: &ProcessInfo) -> ProcessInfo {
        let known = self
            .0
            .entry(p.pid)
            .or_insert_with(|| ProcessInfo::new(p.pid));
        if p.ppid.is_some() {
            known.ppid = p.ppid;
        }
        if p.name.is_some() {
            known.name.clone_from(&p.name);
        }
        if p.username.is_some() {
            known.username.clone_from(&p.username);
        }
        if p.uids.is_some() {
            known.uids = p.uids;
        }
        known.clone()
    }

    /// Forgets `pid`, which exited, returning what was known of it.
    fn forget(&mut self, pid: u32) -> Option<ProcessInfo> {
        self.0.remove(&pid)
    }
}

/// A raw event with what `read` (or else the table) says of the process;
/// an exit also schedules its zombie checks. `read` reads the given fields
/// of a pid, or None when it cannot.
fn enrich(
    raw: RawEvent,
    mut read: impl FnMut(u32, FieldSet) -> Option<ProcessInfo>,
    table: &mut Table,
    checks: &mut ZombieChecks,
    now: Instant,
) -> Event {
    match raw {
        RawEvent::Fork { pid, ppid, time } => {
            let described = DESCRIBED.into_iter().collect();
            let mut process = read(pid, described).unwrap_or_else(|| ProcessInfo::new(pid));
            // The kernel's word: /proc may already show a reparented child.
            process.ppid = Some(ppid);
            table.remember(&process);
            Event {
                kind: EventKind::Started,
                time,
                process,
            }
        }
        RawEvent::Exec { pid, time } => {
            let name = read(pid, NAMED.into_iter().collect()).and_then(|p| p.name);
            let described = DESCRIBED.into_iter().collect();
            let mut process = read(pid, described).unwrap_or_else(|| ProcessInfo::new(pid));
            if process.name.is_none() {
                process.name = name;
            }
            // An exec changes the program, not the parent or the user: what
            // the read missed of those, the fork recorded.
            let known = table.update(&process);
            process.ppid = process.ppid.or(known.ppid);
            process.username = process.username.or(known.username);
            process.uids = process.uids.or(known.uids);
            Event {
                kind: EventKind::Exec,
                time,
                process,
            }
        }
        RawEvent::Exit {
            pid,
            exit_code,
            signal,
            time,
        } => {
            let known = table.forget(pid);
            let process = known.clone().unwrap_or_else(|| ProcessInfo::new(pid));
            checks.schedule(pid, known, now);
            Event {
                kind: EventKind::Exited {
                    code: exit_code,
                    signal,
                },
                time,
                process,
            }
        }
    }
}

/// The event saying that the source lost `at_least` events, if it did.
pub(super) fn lost(at_least: u64, time: f64) -> Option<Event> {
    (at_least > 0).then(|| Event {
        kind: EventKind::Lost { at_least },
        time,
        process: ProcessInfo::new(0),
    })
}

/// A check, soon after an exit, of whether the process is left a zombie.
#[derive(Debug)]
struct ZombieCheck {
    pid: u32,
    due: Instant,
    /// Checks done so far.
    tries: usize,
    /// What was known of the process when it exited.
    known: Option<ProcessInfo>,
}

/// The zombie checks to come.
#[derive(Debug, Default)]
struct ZombieChecks(Vec<ZombieCheck>);

impl ZombieChecks {
    /// Checks `pid`, which exited at `now`, soon.
    fn schedule(&mut self, pid: u32, known: Option<ProcessInfo>, now: Instant) {
        self.0.push(ZombieCheck {
            pid,
            due: now + ZOMBIE_CHECKS[0],
            tries: 0,
            known,
        });
    }

    /// How long from `now` until the next check is due, at most `idle`.
    fn wait(&self, now: Instant, idle: Duration) -> Duration {
        self.0
            .iter()
            .map(|c| c.due.saturating_duration_since(now))
            .fold(idle, Duration::min)
    }

    /// Runs the checks due at `now`: a process that `read` finds in state Z
    /// yields a ZOMBIE event at `time`; one that is gone was reaped; one
    /// still running is checked again later, a few times.
    fn run(
        &mut self,
        now: Instant,
        time: f64,
        mut read: impl FnMut(u32) -> Option<ProcessInfo>,
    ) -> Vec<Event> {
        let mut found = Vec::new();
        self.0.retain_mut(|check| {
            if check.due > now {
                return true;
            }
            match read(check.pid) {
                Some(p) if p.status == Some(Status::Zombie) => {
                    found.push(zombie(p, check.known.take(), time));
                    false
                }
                Some(_) => {
                    check.tries += 1;
                    match ZOMBIE_CHECKS.get(check.tries) {
                        Some(delay) => {
                            check.due = now + *delay;
                            true
                        }
                        None => false,
                    }
                }
                None => false,
            }
        });
        found
    }
}

/// The ZOMBIE event of `p`, read as a zombie, completed with what was known
/// of it while it lived.
fn zombie(p: ProcessInfo, known: Option<ProcessInfo>, time: f64) -> Event {
    let known = known.unwrap_or_else(|| ProcessInfo::new(p.pid));
    Event {
        kind: EventKind::Zombie,
        time,
        process: ProcessInfo {
            ppid: p.ppid.or(known.ppid),
            name: p.name.or(known.name),
            username: known.username,
            uids: known.uids,
            ..ProcessInfo::new(p.pid)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Ids;

    fn worker(pid: u32) -> ProcessInfo {
        ProcessInfo {
            ppid: Some(1),
            name: Some("worker".into()),
            cmdline: Some(vec!["worker".into(), "--serve".into()]),
            username: Some("www".into()),
            uids: Some(Ids {
                real: 33,
                effective: 33,
                saved: 33,
            }),
            create_time: Some(1000.0),
            ..ProcessInfo::new(pid)
        }
    }

    fn exit(pid: u32) -> RawEvent {
        RawEvent::Exit {
            pid,
            exit_code: Some(3),
            signal: None,
            time: 2.0,
        }
    }

    /// The exit of `pid`, when nothing of it can be read any more.
    fn exit_unread(pid: u32, table: &mut Table, checks: &mut ZombieChecks) -> Event {
        enrich(exit(pid), |_, _| None, table, checks, Instant::now())
    }

    #[test]
    fn a_fork_is_described_with_the_kernels_parent_and_remembered() {
        let (mut table, mut checks) = (Table::default(), ZombieChecks::default());
        let fork = RawEvent::Fork {
            pid: 42,
            ppid: 7,
            time: 1.0,
        };
        let event = enrich(
            fork,
            |_, _| Some(worker(42)),
            &mut table,
            &mut checks,
            Instant::now(),
        );
        assert_eq!(event.kind, EventKind::Started);
        assert_eq!(event.time, 1.0);
        assert_eq!(event.process.ppid, Some(7));
        assert_eq!(event.process.cmdline.as_deref().map(<[_]>::len), Some(2));
        let known = &table.0[&42];
        assert_eq!(
            (known.name.as_deref(), known.ppid),
            (Some("worker"), Some(7))
        );
        assert_eq!(known.cmdline, None, "only what names the process is kept");
    }

    #[test]
    fn an_exit_is_named_from_the_table_forgotten_and_checked() {
        let (mut table, mut checks) = (Table::default(), ZombieChecks::default());
        table.remember(&worker(42));
        let t0 = Instant::now();
        let event = enrich(exit(42), |_, _| None, &mut table, &mut checks, t0);
        assert_eq!(
            event.kind,
            EventKind::Exited {
                code: Some(3),
                signal: None
            }
        );
        assert_eq!(event.process.name.as_deref(), Some("worker"));
        assert_eq!(event.process.uids.map(|u| u.real), Some(33));
        assert!(table.0.is_empty());
        assert_eq!(checks.wait(t0, Duration::MAX), ZOMBIE_CHECKS[0]);

        // An exit of a process never seen is still reported, by pid.
        let event = enrich(exit(43), |_, _| None, &mut table, &mut checks, t0);
        assert_eq!(event.process, ProcessInfo::new(43));
    }

    #[test]
    fn an_exec_that_cannot_be_read_keeps_what_was_known() {
        let (mut table, mut checks) = (Table::default(), ZombieChecks::default());
        table.remember(&worker(42));
        let exec = RawEvent::Exec { pid: 42, time: 1.0 };
        let event = enrich(exec, |_, _| None, &mut table, &mut checks, Instant::now());
        // The parent and user the fork recorded; the new name is unknown.
        assert_eq!(event.process.ppid, Some(1));
        assert_eq!(event.process.username.as_deref(), Some("www"));
        assert_eq!(event.process.name, None);
        assert_eq!(table.0[&42].name.as_deref(), Some("worker"));

        // Its exit still names it, with its parent and user.
        let event = exit_unread(42, &mut table, &mut checks);
        assert_eq!(event.process.ppid, Some(1));
        assert_eq!(event.process.name.as_deref(), Some("worker"));
        assert_eq!(event.process.username.as_deref(), Some("www"));
    }

    #[test]
    fn an_exec_read_in_part_keeps_what_it_could_not_read_and_takes_the_new_name() {
        let (mut table, mut checks) = (Table::default(), ZombieChecks::default());
        table.remember(&worker(42));
        let exec = RawEvent::Exec { pid: 42, time: 1.0 };
        // The name alone could be read; the fuller read found the process
        // gone.
        let named: FieldSet = NAMED.into_iter().collect();
        let read = |pid, fields| {
            (fields == named).then(|| ProcessInfo {
                name: Some("true".into()),
                ..ProcessInfo::new(pid)
            })
        };
        let event = enrich(exec, read, &mut table, &mut checks, Instant::now());
        assert_eq!(event.process.name.as_deref(), Some("true"));
        assert_eq!(event.process.ppid, Some(1));
        let event = exit_unread(42, &mut table, &mut checks);
        assert_eq!(event.process.name.as_deref(), Some("true"));
        assert_eq!(event.process.username.as_deref(), Some("www"));
        assert_eq!(event.process.uids.map(|u| u.real), Some(33));

        // A read that returns a process with empty fields erases nothing.
        table.remember(&worker(43));
        let exec = RawEvent::Exec { pid: 43, time: 1.0 };
        let empty = |pid, _| Some(ProcessInfo::new(pid));
        enrich(exec, empty, &mut table, &mut checks, Instant::now());
        let known = &table.0[&43];
        assert_eq!(
            (known.ppid, known.name.as_deref(), known.username.as_deref()),
            (Some(1), Some("worker"), Some("www"))
        );
    }

    #[test]
    fn checks_wait_for_the_next_due_one_within_the_idle_bound() {
        let t0 = Instant::now();
        let mut checks = ZombieChecks::default();
        assert_eq!(checks.wait(t0, IDLE_WAIT), IDLE_WAIT);
        checks.schedule(42, None, t0);
        assert_eq!(checks.wait(t0, Duration::MAX), ZOMBIE_CHECKS[0]);
        let short = ZOMBIE_CHECKS[0] / 2;
        assert_eq!(checks.wait(t0, short), short, "the idle bound holds");
        assert_eq!(
            checks.wait(t0 + ZOMBIE_CHECKS[0], IDLE_WAIT),
            Duration::ZERO
        );
    }

    #[test]
    fn a_process_still_running_is_checked_a_few_times_then_dropped() {
        let mut t = Instant::now();
        let mut checks = ZombieChecks::default();
        checks.schedule(42, None, t);
        let mut reads = 0;
        for delay in ZOMBIE_CHECKS {
            t += delay;
            let found = checks.run(t, 0.0, |pid| {
                reads += 1;
                Some(ProcessInfo {
                    status: Some(Status::Running),
                    ..ProcessInfo::new(pid)
                })
            });
            assert!(found.is_empty());
        }
        assert_eq!(reads, ZOMBIE_CHECKS.len());
        assert!(checks.0.is_empty());
    }

    #[test]
    fn a_child_its_parent_reaps_soon_is_not_reported() {
        // The parent reaps 100 ms after the exit: until then the child is
        // a zombie, as every exited process is for a moment.
        let t0 = Instant::now();
        let reaped = t0 + Duration::from_millis(100);
        let mut checks = ZombieChecks::default();
        checks.schedule(42, None, t0);
        let mut t = t0;
        while !checks.0.is_empty() && t < t0 + Duration::from_secs(10) {
            t += Duration::from_millis(1);
            let found = checks.run(t, 0.0, |pid| {
                (t < reaped).then(|| ProcessInfo {
                    status: Some(Status::Zombie),
                    ..ProcessInfo::new(pid)
                })
            });
            assert!(found.is_empty(), "{found:?} at {:?}", t - t0);
        }
        assert!(checks.0.is_empty());
    }

    #[test]
    fn a_lost_count_becomes_one_event_for_everyone() {
        assert!(lost(0, 1.0).is_none());
        let event = lost(3, 1.0).unwrap();
        assert_eq!(event.kind, EventKind::Lost { at_least: 3 });
        assert_eq!(event.time, 1.0);
    }

    #[test]
    fn checks_not_yet_due_do_not_read() {
        let t0 = Instant::now();
        let mut checks = ZombieChecks::default();
        checks.schedule(42, None, t0);
        let found = checks.run(t0, 0.0, |pid| panic!("read {pid} too early"));
        assert!(found.is_empty());
        assert_eq!(checks.0.len(), 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_real_zombie_is_reported_with_its_parent_and_what_was_known() {
        let backend = super::super::testing::real();
        let zombie = super::super::testing::Zombie::spawn(backend.as_ref());
        let t0 = Instant::now();
        let mut checks = ZombieChecks::default();
        let known = ProcessInfo {
            username: Some("tester".into()),
            ..ProcessInfo::new(zombie.pid())
        };
        checks.schedule(zombie.pid(), Some(known), t0);
        let checked: FieldSet = CHECKED.into_iter().collect();
        let found = checks.run(t0 + ZOMBIE_CHECKS[0], 5.0, |pid| {
            backend.process(pid, checked).ok()
        });
        assert_eq!(found.len(), 1, "{found:?}");
        let event = &found[0];
        assert_eq!(event.kind, EventKind::Zombie);
        assert_eq!(event.time, 5.0);
        assert_eq!(event.process.pid, zombie.pid());
        assert_eq!(event.process.ppid, Some(std::process::id()));
        assert_eq!(event.process.name.as_deref(), Some("true"));
        assert_eq!(event.process.username.as_deref(), Some("tester"));
        assert!(checks.0.is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_table_holds_the_live_processes_of_the_machine() {
        let table = Table::read(super::super::testing::real().as_ref());
        let me = &table.0[&std::process::id()];
        assert!(me.name.is_some() && me.uids.is_some() && me.ppid.is_some());
    }
}
