//! The plan and the sweep against a fake agent: a host of parents that
//! behave as real ones do (reap on CHLD, end on TERM, ignore TERM), held in
//! memory, with paused Tokio time for the grace periods.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::time::Instant;

use super::*;
use crate::proto::{self, Zombie};

// === A fake agent ===

/// How a fake parent answers signals.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Behaviour {
    /// Reaps all its zombies on CHLD.
    ReapsOnChld,
    /// Reaps the first of its zombies on CHLD, and leaks a new one.
    ReapsOneLeaksOne(u32),
    /// Ignores CHLD; ends on TERM.
    IgnoresChld,
    /// Ignores CHLD and TERM; only KILL ends it.
    DeafToTerm,
}

#[derive(Debug, Clone)]
struct Parent {
    pid: u32,
    create_time: f64,
    zombies: Vec<u32>,
    behaviour: Behaviour,
}

/// What the fake host is and what it was asked.
#[derive(Debug, Default)]
struct Host {
    parents: Vec<Parent>,
    /// Groups reported as they are on every look: init's zombies, say.
    fixed: Vec<ZombieParent>,
    /// Pids whose signals the agent refuses, and how.
    refuse: HashMap<u32, fn(u32) -> Error>,
    /// Pids whose signals are never answered.
    hang: HashSet<u32>,
    /// How many looks answer before every later one fails.
    looks_left: Option<usize>,
    /// Every signal that reached the agent: pid, signal, create_time.
    signals: Vec<(u32, Signal, f64)>,
    /// Zombies' start times by pid, where not 0.
    zombie_starts: HashMap<u32, f64>,
    /// What happens on the host between the first look and the next: a
    /// parent reaping a child, another child exiting.
    after_first_look: Option<fn(&mut Host)>,
    /// Looks answered so far.
    looks: usize,
}

#[derive(Debug, Clone, Default)]
struct Fake(Arc<Mutex<Host>>);

impl Fake {
    fn host(&self) -> MutexGuard<'_, Host> {
        self.0.lock().expect("the fake's lock")
    }

    fn with_parents(parents: &[(u32, f64, &[u32], Behaviour)]) -> Fake {
        let fake = Fake::default();
        fake.host().parents = parents
            .iter()
            .map(|&(pid, create_time, zombies, behaviour)| Parent {
                pid,
                create_time,
                zombies: zombies.to_vec(),
                behaviour,
            })
            .collect();
        fake
    }

    /// The signals that reached the agent, as (pid, signal).
    fn sent(&self) -> Vec<(u32, Signal)> {
        self.host()
            .signals
            .iter()
            .map(|&(p, s, _)| (p, s))
            .collect()
    }

    fn report(&self) -> FindZombiesResponse {
        let host = self.host();
        let mut parents: Vec<ZombieParent> = host
            .parents
            .iter()
            .filter(|p| !p.zombies.is_empty())
            .map(|p| group(p.pid, Some(p.create_time), &p.zombies))
            .collect();
        for zombie in parents.iter_mut().flat_map(|g| g.zombies.iter_mut()) {
            if let Some(start) = host.zombie_starts.get(&zombie.pid) {
                zombie.create_time = Some(*start);
            }
        }
        parents.extend(host.fixed.iter().cloned());
        report_of(parents)
    }
}

impl Agent for Fake {
    async fn find_zombies(&self) -> Result<FindZombiesResponse, Error> {
        if let Some(left) = self.host().looks_left.as_mut() {
            if *left == 0 {
                return Err(Error::Transport {
                    endpoint: "web1:7443".to_owned(),
                    message: "connection reset".to_owned(),
                });
            }
            *left -= 1;
        }
        let report = self.report();
        let mut host = self.host();
        host.looks += 1;
        if host.looks == 1
            && let Some(change) = host.after_first_look
        {
            change(&mut host);
        }
        Ok(report)
    }

    async fn signal(
        &self,
        pid: u32,
        signal: Signal,
        create_time: f64,
    ) -> Result<SignalProcessResponse, Error> {
        let answer = {
            let mut host = self.host();
            host.signals.push((pid, signal, create_time));
            if host.hang.contains(&pid) {
                None
            } else {
                Some(deliver(&mut host, pid, signal, create_time))
            }
        };
        match answer {
            Some(answer) => answer,
            None => std::future::pending().await,
        }
    }
}

/// What a real agent and parent would do with the signal.
fn deliver(
    host: &mut Host,
    pid: u32,
    signal: Signal,
    create_time: f64,
) -> Result<SignalProcessResponse, Error> {
    if let Some(refusal) = host.refuse.get(&pid) {
        return Err(refusal(pid));
    }
    let at = host
        .parents
        .iter()
        .position(|p| p.pid == pid)
        .ok_or(Error::NoSuchProcess { pid: Some(pid) })?;
    let parent = &mut host.parents[at];
    if parent.create_time != create_time {
        return Err(Error::PidReused {
            pid,
            message: "another process".to_owned(),
        });
    }
    let ends = match (signal, parent.behaviour) {
        (Signal::Chld, Behaviour::ReapsOnChld) => {
            parent.zombies.clear();
            false
        }
        (Signal::Chld, Behaviour::ReapsOneLeaksOne(new)) => {
            parent.zombies.remove(0);
            parent.zombies.push(new);
            false
        }
        (Signal::Term, Behaviour::DeafToTerm) => false,
        (Signal::Term | Signal::Kill, _) => true,
        _ => false,
    };
    if ends {
        // Its zombies pass to init, which reaps them.
        host.parents.remove(at);
    }
    Ok(SignalProcessResponse {
        pid,
        signal: signal.name().to_owned(),
        signal_number: 0,
    })
}

// === Reports ===

/// A parent's group as the agent reports it; the zombies' own times do not
/// matter to a sweep.
fn group(ppid: u32, created: Option<f64>, zombies: &[u32]) -> ZombieParent {
    // Each zombie started at its pid's number of seconds.
    let zombie = |pid| Zombie {
        pid,
        ppid,
        create_time: Some(f64::from(pid)),
        ..Zombie::default()
    };
    ZombieParent {
        parent: created.map(|t| proto::Process {
            pid: ppid,
            name: Some(format!("p{ppid}")),
            cmdline: vec![format!("/usr/bin/p{ppid}"), "--serve".to_owned()],
            create_time: Some(t),
            ..proto::Process::default()
        }),
        ppid,
        zombies: zombies.iter().copied().map(zombie).collect(),
        parent_is_init: ppid == 1,
    }
}

fn options(kill_parents: bool) -> Options {
    Options {
        kill_parents,
        grace: Duration::from_secs(5),
        step_timeout: Duration::from_secs(10),
        only: Vec::new(),
        // One look, so that these tests are about the rounds; the tests of
        // --min-age set it.
        min_age: Duration::ZERO,
    }
}

/// A zombie as a sweep tells it apart: pid and start time.
fn id(pid: u32, create_time: f64) -> ZombieId {
    ZombieId {
        pid,
        create_time: Some(create_time),
    }
}

/// The steps, pids and outcomes of a report's actions, outcomes by name.
fn actions(report: &Report) -> Vec<(Step, u32, String)> {
    report
        .actions
        .iter()
        .map(|a| {
            let outcome = match &a.outcome {
                Outcome::Sent => "sent".to_owned(),
                Outcome::Skipped(skip) => format!("{skip:?}"),
                Outcome::Failed(e) => format!("failed: {}", e.label()),
            };
            (a.step, a.pid, outcome)
        })
        .collect()
}

fn sent(step: Step, pid: u32) -> (Step, u32, String) {
    (step, pid, "sent".to_owned())
}

/// Plans from the fake's own report, carries the plan out, and says how
/// much paused time the sweep waited.
async fn sweep(fake: &Fake, options: &Options) -> (Report, Duration) {
    let plan = Plan::look(fake, options).await.expect("the first look");
    let start = Instant::now();
    let report = Sweep::new(fake.clone(), plan, options).run().await;
    (report, start.elapsed())
}

// === The plan ===

#[test]
fn the_plan_leaves_init_exited_and_unguardable_parents_alone() {
    let mut unknown_start = group(77, Some(5.0), &[20]);
    if let Some(p) = unknown_start.parent.as_mut() {
        p.create_time = None;
    }
    let mut marked_init = group(88, Some(5.0), &[21]);
    marked_init.parent_is_init = true;
    let report = report_of(vec![
        group(4321, Some(900.0), &[10, 11]),
        group(1, Some(1.0), &[12]),
        group(55, None, &[13]),
        unknown_start,
        group(0, None, &[14]),
        marked_init,
        group(99, Some(800.0), &[15]),
    ]);
    let plan = Plan::of(report.clone());
    assert_eq!(plan.found, report);
    assert_eq!(
        plan.targets,
        [
            Target {
                pid: 4321,
                create_time: 900.0,
                name: "p4321".to_owned(),
                cmdline: vec!["/usr/bin/p4321".to_owned(), "--serve".to_owned()],
                zombies: vec![id(10, 10.0), id(11, 11.0)],
            },
            Target {
                pid: 99,
                create_time: 800.0,
                name: "p99".to_owned(),
                cmdline: vec!["/usr/bin/p99".to_owned(), "--serve".to_owned()],
                zombies: vec![id(15, 15.0)],
            },
        ]
    );
    let alone: Vec<(u32, &str, usize, Leave)> = plan
        .left_alone
        .iter()
        .map(|a| (a.pid, a.name.as_str(), a.zombies, a.reason))
        .collect();
    assert_eq!(
        alone,
        [
            (1, "p1", 1, Leave::Init),
            (55, "?", 1, Leave::ParentExited),
            (77, "p77", 1, Leave::StartTimeUnknown),
            (0, "?", 1, Leave::NoParent),
            (88, "p88", 1, Leave::ParentIsInit),
        ]
    );
    assert_eq!(plan.zombies(), 3);
    assert_eq!(
        Leave::Init.to_string(),
        "pid 1 is init: it is never signalled; its zombies stay until it reaps them"
    );
}

#[test]
fn the_plan_lists_every_signal_round_by_round() {
    let plan = Plan::of(report_of(vec![
        group(40, Some(900.0), &[10]),
        group(50, Some(800.0), &[11]),
    ]));
    let signals = |kill_parents| -> Vec<(Step, u32)> {
        plan.signals(&options(kill_parents))
            .map(|(step, t)| (step, t.pid))
            .collect()
    };
    assert_eq!(signals(false), [(Step::Chld, 40), (Step::Chld, 50)]);
    assert_eq!(
        signals(true),
        [
            (Step::Chld, 40),
            (Step::Chld, 50),
            (Step::Term, 40),
            (Step::Term, 50),
            (Step::Kill, 40),
            (Step::Kill, 50),
        ]
    );
    let steps: Vec<(Signal, u8)> = options(true)
        .steps()
        .iter()
        .map(|s| (s.signal(), s.number()))
        .collect();
    assert_eq!(
        steps,
        [(Signal::Chld, 1), (Signal::Term, 2), (Signal::Kill, 3)]
    );
}

#[test]
fn only_parents_keeps_the_asked_for_parents_and_recounts() {
    let report = report_of(vec![
        group(40, Some(900.0), &[10, 11]),
        group(50, Some(800.0), &[12]),
    ]);
    assert_eq!(only_parents(report.clone(), &[]), report);
    let kept = only_parents(report, &[50, 60]);
    assert_eq!(kept.total, 1);
    let ppids: Vec<u32> = kept.parents.iter().map(|g| g.ppid).collect();
    assert_eq!(ppids, [50]);
}

#[test]
fn the_deadline_covers_every_step_of_a_sweep() {
    assert_eq!(options(false).deadline(), Duration::from_secs(65));
    assert_eq!(options(true).deadline(), Duration::from_secs(115));
    let settled = Options {
        min_age: Duration::from_secs(30),
        ..options(false)
    };
    assert_eq!(settled.deadline(), Duration::from_secs(95));
}

#[test]
fn zombies_without_start_times_are_told_apart_by_pid() {
    let unknown = |pid| ZombieId {
        pid,
        create_time: None,
    };
    assert!(unknown(10).is(&unknown(10)));
    assert!(!unknown(10).is(&unknown(11)));
    assert!(
        !unknown(10).is(&id(10, 10.0)),
        "a known start is another zombie"
    );
    assert!(id(10, 10.0).is(&id(10, 10.0)));
    assert!(!id(10, 10.0).is(&id(10, 12.0)));
}

#[test]
fn a_reused_parent_pid_holds_none_of_the_zombies() {
    let target = Plan::of(report_of(vec![group(50, Some(900.0), &[10])])).targets[0].clone();
    assert_eq!(
        held(&report_of(vec![group(50, Some(900.0), &[10])]), &target),
        [id(10, 10.0)]
    );
    assert!(held(&report_of(vec![group(50, Some(950.0), &[10])]), &target).is_empty());
    assert!(held(&report_of(vec![]), &target).is_empty());
    // A parent the agent could not describe any more keeps its zombies
    // counted: they are not reaped until they are gone.
    assert_eq!(
        held(&report_of(vec![group(50, None, &[10])]), &target),
        [id(10, 10.0)]
    );
}

// === The sweep ===

#[tokio::test(start_paused = true)]
async fn chld_alone_reaps_and_leaves_stubborn_parents_be() {
    let fake = Fake::with_parents(&[
        (40, 900.0, &[10, 11], Behaviour::ReapsOnChld),
        (50, 800.0, &[12], Behaviour::IgnoresChld),
    ]);
    fake.host().fixed = vec![group(1, Some(1.0), &[13])];
    let (report, waited) = sweep(&fake, &options(false)).await;
    assert_eq!(
        actions(&report),
        [sent(Step::Chld, 40), sent(Step::Chld, 50)]
    );
    assert_eq!(
        fake.host().signals,
        [(40, Signal::Chld, 900.0), (50, Signal::Chld, 800.0)],
        "every signal carries the parent's create_time; init gets none"
    );
    assert_eq!(waited, Duration::from_secs(5), "one grace, then a look");
    assert_eq!((report.reaped(), report.remaining()), (Some(2), Some(1)));
    assert!(report.failure().is_none());
}

#[tokio::test(start_paused = true)]
async fn kill_parents_escalates_only_to_parents_that_still_hold_zombies() {
    let fake = Fake::with_parents(&[
        (40, 900.0, &[10], Behaviour::ReapsOnChld),
        (50, 800.0, &[11, 12], Behaviour::IgnoresChld),
        (60, 700.0, &[13], Behaviour::DeafToTerm),
    ]);
    let (report, waited) = sweep(&fake, &options(true)).await;
    assert_eq!(
        fake.sent(),
        [
            (40, Signal::Chld),
            (50, Signal::Chld),
            (60, Signal::Chld),
            (50, Signal::Term),
            (60, Signal::Term),
            (60, Signal::Kill),
        ]
    );
    assert_eq!(waited, Duration::from_secs(15), "a grace after each round");
    let zombies: Vec<(Step, u32, usize)> = report
        .actions
        .iter()
        .map(|a| (a.step, a.pid, a.zombies))
        .collect();
    assert_eq!(
        zombies,
        [
            (Step::Chld, 40, 1),
            (Step::Chld, 50, 2),
            (Step::Chld, 60, 1),
            (Step::Term, 50, 2),
            (Step::Term, 60, 1),
            (Step::Kill, 60, 1),
        ],
        "each action says what the parent held when its round began"
    );
    assert_eq!((report.reaped(), report.remaining()), (Some(4), Some(0)));
}

#[tokio::test(start_paused = true)]
async fn the_sweep_stops_early_once_every_parent_reaped() {
    let fake = Fake::with_parents(&[(40, 900.0, &[10], Behaviour::ReapsOnChld)]);
    let (report, waited) = sweep(&fake, &options(true)).await;
    assert_eq!(actions(&report), [sent(Step::Chld, 40)]);
    assert_eq!(waited, Duration::from_secs(5));
    assert_eq!((report.reaped(), report.remaining()), (Some(1), Some(0)));
}

#[tokio::test(start_paused = true)]
async fn changed_gone_and_protected_parents_are_skipped_and_a_refusal_fails() {
    let fake = Fake::with_parents(&[
        // The pid now belongs to a process that started later.
        (40, 950.0, &[], Behaviour::ReapsOnChld),
        (60, 700.0, &[13], Behaviour::DeafToTerm),
        (70, 600.0, &[14], Behaviour::IgnoresChld),
    ]);
    {
        let mut host = fake.host();
        host.refuse.insert(60, |pid| Error::ProtectedProcess {
            pid,
            message: format!("refusing to signal pid {pid}: that is the agent itself"),
        });
        host.refuse.insert(70, |pid| Error::AccessDenied {
            pid: Some(pid),
            message: "operation not permitted".to_owned(),
        });
    }
    // The plan's report: 40 as it was, and 50, which has exited since.
    let plan = Plan::of(report_of(vec![
        group(40, Some(900.0), &[10]),
        group(50, Some(800.0), &[11, 12]),
        group(60, Some(700.0), &[13]),
        group(70, Some(600.0), &[14]),
    ]));
    let report = Sweep::new(fake.clone(), plan, &options(true)).run().await;
    assert_eq!(
        actions(&report),
        [
            (Step::Chld, 40, "PidReused".to_owned()),
            (Step::Chld, 50, "ParentGone".to_owned()),
            (
                Step::Chld,
                60,
                "Protected { message: \"refusing to signal pid 60: that is the agent itself\" }"
                    .to_owned()
            ),
            (Step::Chld, 70, "failed: access-denied".to_owned()),
        ],
        "nothing was sent, so no parent is escalated"
    );
    match report.failure() {
        Some(Failure::Signal { action, error }) => {
            assert_eq!((action.pid, action.step), (70, Step::Chld));
            assert!(matches!(error, Error::AccessDenied { .. }), "{error:?}");
        }
        other => panic!("expected the refused signal, got {other:?}"),
    }
    // Nothing was sent: the plan's report stands, and the exited parent's
    // zombies are not counted as reaped by the sweep.
    assert_eq!((report.reaped(), report.remaining()), (Some(0), Some(5)));
}

#[tokio::test(start_paused = true)]
async fn without_the_operator_role_the_sweep_stops_after_the_first_round() {
    let fake = Fake::with_parents(&[
        (40, 900.0, &[10], Behaviour::IgnoresChld),
        (50, 800.0, &[11], Behaviour::IgnoresChld),
    ]);
    for pid in [40, 50] {
        fake.host().refuse.insert(pid, |_| Error::OperatorRequired {
            message: "client \"bob\" may not signal processes".to_owned(),
        });
    }
    let (report, waited) = sweep(&fake, &options(true)).await;
    let refused = |pid| (Step::Chld, pid, "failed: operator-required".to_owned());
    assert_eq!(actions(&report), [refused(40), refused(50)]);
    assert_eq!(waited, Duration::ZERO, "no grace after a refused round");
    assert!(matches!(
        report.failure(),
        Some(Failure::Signal {
            error: Error::OperatorRequired { .. },
            ..
        })
    ));
    assert_eq!((report.reaped(), report.remaining()), (Some(0), Some(2)));
}

#[tokio::test(start_paused = true)]
async fn reaped_counts_only_the_planned_parents_zombies() {
    let fake = Fake::with_parents(&[(40, 900.0, &[10, 11], Behaviour::ReapsOneLeaksOne(30))]);
    // Init's zombie is there before and after, and never counted.
    fake.host().fixed = vec![group(1, Some(1.0), &[12])];
    let (report, _) = sweep(&fake, &options(false)).await;
    assert_eq!(report.plan.zombies(), 2);
    let after = report.after.as_ref().expect("the last look");
    assert_eq!(after.total, 3, "11 and the new 30 under 40, 12 under init");
    assert_eq!((report.reaped(), report.remaining()), (Some(1), Some(1)));
}

#[tokio::test(start_paused = true)]
async fn a_failed_look_after_the_signals_is_reported_not_counted() {
    let fake = Fake::with_parents(&[(40, 900.0, &[10], Behaviour::IgnoresChld)]);
    fake.host().looks_left = Some(1);
    let (report, _) = sweep(&fake, &options(true)).await;
    assert_eq!(actions(&report), [sent(Step::Chld, 40)]);
    assert!(report.after.is_none());
    assert_eq!((report.reaped(), report.remaining()), (None, None));
    match report.failure() {
        Some(Failure::LookAgain(Error::Transport { message, .. })) => {
            assert_eq!(message, "connection reset");
        }
        other => panic!("expected the failed look, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_signal_without_an_answer_fails_after_the_step_timeout() {
    let fake = Fake::with_parents(&[
        (40, 900.0, &[10], Behaviour::ReapsOnChld),
        (50, 800.0, &[11], Behaviour::ReapsOnChld),
    ]);
    fake.host().hang.insert(50);
    let (report, waited) = sweep(&fake, &options(false)).await;
    assert_eq!(
        actions(&report),
        [
            sent(Step::Chld, 40),
            (Step::Chld, 50, "failed: timeout".to_owned())
        ]
    );
    match report.failure() {
        Some(Failure::Signal {
            error: Error::Timeout { message },
            ..
        }) => assert_eq!(message, "sending CHLD to pid 50: no answer within 10s"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(
        waited,
        Duration::from_secs(15),
        "the step timeout, then a grace"
    );
    assert_eq!((report.reaped(), report.remaining()), (Some(1), Some(1)));
}

#[tokio::test(start_paused = true)]
async fn a_host_without_zombies_gets_no_signal() {
    let fake = Fake::default();
    let (report, waited) = sweep(&fake, &options(true)).await;
    assert!(report.actions.is_empty() && fake.sent().is_empty());
    assert_eq!(waited, Duration::ZERO);
    assert_eq!((report.reaped(), report.remaining()), (Some(0), Some(0)));
}

#[tokio::test(start_paused = true)]
async fn a_failed_first_look_fails_the_plan() {
    let fake = Fake::default();
    fake.host().looks_left = Some(0);
    let e = Plan::look(&fake, &options(false))
        .await
        .expect_err("no answer");
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
}

// === --min-age ===

/// A sweep that waits `min_age` between its two looks.
fn settled(kill_parents: bool) -> Options {
    Options {
        min_age: Duration::from_secs(30),
        ..options(kill_parents)
    }
}

#[tokio::test(start_paused = true)]
async fn a_parent_that_reaps_between_the_looks_is_left_alone() {
    // A shell whose child just exited: by the second look it has reaped
    // it, and another child has just exited.
    let fake = Fake::with_parents(&[
        (40, 900.0, &[10], Behaviour::ReapsOnChld),
        (50, 800.0, &[12], Behaviour::IgnoresChld),
    ]);
    fake.host().after_first_look = Some(|host| host.parents[0].zombies = vec![11]);
    let start = Instant::now();
    let plan = Plan::look(&fake, &settled(true)).await.expect("the looks");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(30),
        "--min-age between the looks"
    );
    assert_eq!(plan.min_age, Duration::from_secs(30));
    let targets: Vec<u32> = plan.targets.iter().map(|t| t.pid).collect();
    assert_eq!(targets, [50], "only the zombie seen twice is acted on");
    assert_eq!(plan.targets[0].cmdline, ["/usr/bin/p50", "--serve"]);
    let alone: Vec<(u32, Leave)> = plan.left_alone.iter().map(|a| (a.pid, a.reason)).collect();
    assert_eq!(alone, [(40, Leave::TooYoung)]);
    let report = Sweep::new(fake.clone(), plan, &settled(true)).run().await;
    assert!(
        fake.sent().iter().all(|(pid, _)| *pid == 50),
        "the healthy parent is never signalled: {:?}",
        fake.sent()
    );
    assert_eq!((report.reaped(), report.remaining()), (Some(1), Some(0)));
}

#[tokio::test(start_paused = true)]
async fn a_zombie_pid_reused_between_the_looks_is_a_new_zombie() {
    let fake = Fake::with_parents(&[(40, 900.0, &[10], Behaviour::IgnoresChld)]);
    fake.host().zombie_starts.insert(10, 1000.0);
    // Zombie 10 was reaped, and a new child with pid 10 has exited since.
    fake.host().after_first_look = Some(|host| {
        host.zombie_starts.insert(10, 1020.0);
    });
    let plan = Plan::look(&fake, &settled(true)).await.expect("the looks");
    assert!(plan.targets.is_empty(), "{plan:?}");
    assert_eq!(plan.left_alone[0].reason, Leave::TooYoung);
    let report = Sweep::new(fake.clone(), plan, &settled(true)).run().await;
    assert!(fake.sent().is_empty(), "{:?}", fake.sent());
    assert_eq!(report.reaped(), Some(0));
}

#[tokio::test(start_paused = true)]
async fn no_escalation_once_the_planned_zombies_are_gone() {
    // Both hold zombie pids through the CHLD round; 40 reaped its planned
    // zombie and holds a new one under the same pid, 50 still holds its.
    let fake = Fake::with_parents(&[
        (40, 900.0, &[10], Behaviour::IgnoresChld),
        (50, 800.0, &[12], Behaviour::IgnoresChld),
    ]);
    fake.host().zombie_starts.insert(10, 1000.0);
    let plan = Plan::look(&fake, &settled(true)).await.expect("the looks");
    assert_eq!(plan.targets.len(), 2);
    fake.host().zombie_starts.insert(10, 1040.0);
    let report = Sweep::new(fake.clone(), plan, &settled(true)).run().await;
    assert_eq!(
        fake.sent(),
        [(40, Signal::Chld), (50, Signal::Chld), (50, Signal::Term),],
        "TERM only where the same zombie (pid and start) is still there"
    );
    assert_eq!((report.reaped(), report.remaining()), (Some(2), Some(0)));
}

#[tokio::test(start_paused = true)]
async fn a_host_without_zombies_is_looked_at_once() {
    let fake = Fake::with_parents(&[]);
    let start = Instant::now();
    let plan = Plan::look(&fake, &settled(false)).await.expect("a look");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(plan.targets.is_empty() && plan.found.parents.is_empty());
    assert_eq!(fake.host().looks, 1);
}
