//! Zombie sweeps: which parents to nudge and how, and the guarded rounds
//! of signals that carry the plan out.
//!
//! A zombie cannot be signalled away: it has exited already, and only its
//! parent can collect it. So a sweep is about parents. It sends SIGCHLD to
//! every parent that holds zombies (one with a SIGCHLD handler then reaps
//! them); when asked to, it then sends TERM to the parents that still hold
//! zombies after a grace period, and KILL to those that still do after
//! another (their zombies pass to init, which reaps them). Every signal
//! carries the parent's create_time from the report the plan was made
//! from, so that a parent that exited and whose pid another process took
//! since is never hit.
//!
//! A parent holding a zombie for a moment is healthy: a shell or a
//! supervisor reaps a child some time after it exits. So a sweep only acts
//! on zombies it saw in two looks at least [`Options::min_age`] apart
//! (the same pid with the same start time), and before each escalation it
//! looks again and signals only the parents that still hold one of those
//! very zombies.
//!
//! The sweep talks to its host through the small [`Agent`] trait, which
//! [`Client`] implements, so that it can be driven without a network.
//!
//! ```no_run
//! # async fn demo(client: hostscope_client::Client) -> Result<(), hostscope_client::Error> {
//! use std::time::Duration;
//! use hostscope_client::sweep::{Options, Plan, Sweep};
//!
//! let options = Options {
//!     kill_parents: false,
//!     grace: Duration::from_secs(5),
//!     step_timeout: Duration::from_secs(10),
//!     only: Vec::new(),
//!     min_age: Duration::from_secs(30),
//! };
//! let plan = Plan::look(&client, &options).await?;
//! let report = Sweep::new(client, plan, &options).run().await;
//! if let (Some(reaped), Some(remaining)) = (report.reaped(), report.remaining()) {
//!     println!("reaped {reaped}; {remaining} remain");
//! }
//! # Ok(()) }
//! ```

use std::{fmt, future::Future, time::Duration};

use tokio::task::JoinSet;

use crate::{
    Client, Error,
    fleet::humanize,
    proto::{FindZombiesResponse, Signal, SignalProcessResponse, ZombieParent},
};

// === The agent ===

/// What a sweep needs of the agent on its host: the zombies, and a signal
/// guarded against pid reuse. [`Client`] is the real one; tests use fakes.
///
/// Clones must talk to the same host: the signals of a round are sent
/// concurrently, each from a clone.
pub trait Agent: Clone + Send + Sync + 'static {
    /// Every zombie on the host, grouped by parent (`FindZombies`).
    fn find_zombies(&self) -> impl Future<Output = Result<FindZombiesResponse, Error>> + Send;

    /// Sends `signal` to `pid` only if that process started at
    /// `create_time` (seconds since the epoch); the agent refuses a reused
    /// pid with [`Error::PidReused`].
    fn signal(
        &self,
        pid: u32,
        signal: Signal,
        create_time: f64,
    ) -> impl Future<Output = Result<SignalProcessResponse, Error>> + Send;
}

impl Agent for Client {
    fn find_zombies(&self) -> impl Future<Output = Result<FindZombiesResponse, Error>> + Send {
        Client::find_zombies(self)
    }

    fn signal(
        &self,
        pid: u32,
        signal: Signal,
        create_time: f64,
    ) -> impl Future<Output = Result<SignalProcessResponse, Error>> + Send {
        Client::signal(self, pid, signal.name(), Some(create_time))
    }
}

// === Options and steps ===

/// How a sweep goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// After CHLD, TERM the parents that still hold zombies, then KILL
    /// those that still do.
    pub kill_parents: bool,
    /// The wait after each round of signals before looking again.
    pub grace: Duration,
    /// How long each query or round of signals may take.
    pub step_timeout: Duration,
    /// Only the zombies of these parents; all when empty.
    pub only: Vec<u32>,
    /// How long a zombie must have been seen before the sweep acts on it:
    /// the plan looks twice, this far apart, and keeps only the zombies
    /// of both looks. Zero plans from one look.
    pub min_age: Duration,
}

impl Options {
    /// The rounds of signals, in order.
    pub fn steps(&self) -> &'static [Step] {
        if self.kill_parents {
            &[Step::Chld, Step::Term, Step::Kill]
        } else {
            &[Step::Chld]
        }
    }

    /// How long a whole sweep of one host may take: `step_timeout` for
    /// connecting, for the first look, for each round of signals and the
    /// look after it, and once more to spare, plus the grace periods.
    pub fn deadline(&self) -> Duration {
        let steps = self.steps().len() as u32;
        self.step_timeout.saturating_mul(4 + 2 * steps)
            + self.grace.saturating_mul(steps)
            + self.min_age
    }
}

/// One round of signals, in the order a sweep sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// A parent with a SIGCHLD handler collects its exited children.
    Chld,
    /// Asks a parent that still will not reap to end.
    Term,
    /// Ends one that ignored TERM.
    Kill,
}

impl Step {
    /// The signal the round sends.
    pub fn signal(self) -> Signal {
        match self {
            Step::Chld => Signal::Chld,
            Step::Term => Signal::Term,
            Step::Kill => Signal::Kill,
        }
    }

    /// Its place in a sweep, from 1.
    pub fn number(self) -> u8 {
        match self {
            Step::Chld => 1,
            Step::Term => 2,
            Step::Kill => 3,
        }
    }
}

// === The plan ===

/// One zombie, told apart from a later process with its pid by its start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZombieId {
    /// The zombie's pid.
    pub pid: u32,
    /// When it started, in seconds since the epoch, where the agent could
    /// tell.
    pub create_time: Option<f64>,
}

impl ZombieId {
    fn of(zombie: &crate::proto::Zombie) -> ZombieId {
        ZombieId {
            pid: zombie.pid,
            create_time: zombie.create_time,
        }
    }

    /// The same zombie: the same pid, started at the same time. Without
    /// start times the pid decides: a zombie keeps its pid until it is
    /// reaped.
    fn is(&self, other: &ZombieId) -> bool {
        self.pid == other.pid
            && match (self.create_time, other.create_time) {
                (Some(a), Some(b)) => same_start(a, b),
                (a, b) => a.is_none() && b.is_none(),
            }
    }
}

/// A parent the sweep may signal, with what tells it apart from a later
/// process with its pid.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The parent's pid.
    pub pid: u32,
    /// Its start, in seconds since the epoch, as the report gave it: every
    /// signal carries it.
    pub create_time: f64,
    /// Its name, or "?" where the agent could not read it.
    pub name: String,
    /// Its command line, as the plan shows it before anything is sent;
    /// empty where the agent could not read it.
    pub cmdline: Vec<String>,
    /// The zombies it held in every look the plan was made from: only
    /// these count, and a later round signals the parent only while it
    /// still holds one of them.
    pub zombies: Vec<ZombieId>,
}

/// A parent the sweep leaves alone, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct LeftAlone {
    /// The parent's pid.
    pub pid: u32,
    /// Its name, or "?".
    pub name: String,
    /// How many zombies it holds.
    pub zombies: usize,
    /// Why it is not signalled.
    pub reason: Leave,
}

/// Why a sweep leaves a parent alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leave {
    /// The parent is pid 1.
    Init,
    /// The report marks the parent as init (`parent_is_init`).
    ParentIsInit,
    /// ppid 0: the zombies have no parent process.
    NoParent,
    /// The parent exited between the agent's scan and its look-up.
    ParentExited,
    /// The parent's start time could not be read, so its signals could not
    /// be guarded against pid reuse.
    StartTimeUnknown,
    /// None of its zombies was there in both looks: it may be about to
    /// reap them, as a healthy parent does.
    TooYoung,
}

/// The reason in plain words, as every output shows it.
impl fmt::Display for Leave {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Leave::Init => {
                "pid 1 is init: it is never signalled; its zombies stay until it reaps them"
            }
            Leave::ParentIsInit => "its parent is init: it is never signalled",
            Leave::NoParent => "no parent process (ppid 0): nothing to signal",
            Leave::ParentExited => "the parent has exited: its zombies pass to init or a subreaper",
            Leave::StartTimeUnknown => {
                "the parent's start time is unknown, so a reused pid could not be ruled out"
            }
            Leave::TooYoung => {
                "its zombies are younger than --min-age (not there in both looks): it may be \
                 about to reap them"
            }
        })
    }
}

/// Which parents a sweep signals and which it leaves alone, and the report
/// it was made from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The host's zombies as the plan saw them.
    pub found: FindZombiesResponse,
    /// The parents to signal, in the report's order.
    pub targets: Vec<Target>,
    /// The parents never signalled, in the report's order.
    pub left_alone: Vec<LeftAlone>,
    /// How far apart the two looks the plan was made from were; zero for
    /// a plan from one look.
    pub min_age: Duration,
}

impl Plan {
    /// The plan for a host's report: every parent but pid 1, pid 0, one
    /// that has exited already, and one whose start time is unknown.
    pub fn of(found: FindZombiesResponse) -> Plan {
        let mut targets = Vec::new();
        let mut left_alone = Vec::new();
        for group in &found.parents {
            let name = parent_name(group);
            let created = group.parent.as_ref().and_then(|p| p.create_time);
            let reason = match (group.ppid, &group.parent, created) {
                (1, _, _) => Leave::Init,
                _ if group.parent_is_init => Leave::ParentIsInit,
                (0, _, _) => Leave::NoParent,
                (_, None, _) => Leave::ParentExited,
                (_, Some(_), None) => Leave::StartTimeUnknown,
                (pid, Some(_), Some(create_time)) => {
                    targets.push(Target {
                        pid,
                        create_time,
                        name,
                        cmdline: group
                            .parent
                            .as_ref()
                            .map(|p| p.cmdline.clone())
                            .unwrap_or_default(),
                        zombies: group.zombies.iter().map(ZombieId::of).collect(),
                    });
                    continue;
                }
            };
            left_alone.push(LeftAlone {
                pid: group.ppid,
                name,
                zombies: group.zombies.len(),
                reason,
            });
        }
        Plan {
            found,
            targets,
            left_alone,
            min_age: Duration::ZERO,
        }
    }

    /// The plan for the zombies of `later` that `earlier`, a look
    /// `min_age` before, saw too: the same zombie (pid and start time)
    /// under the same parent (pid and start time). A parent with none of
    /// those is left alone as [`Leave::TooYoung`].
    pub fn settled(
        earlier: &FindZombiesResponse,
        later: FindZombiesResponse,
        min_age: Duration,
    ) -> Plan {
        let mut young = Vec::new();
        let mut settled = Vec::new();
        for group in &later.parents {
            let before = earlier.parents.iter().find(|g| same_parent(g, group));
            let mut kept = group.clone();
            kept.zombies.retain(|z| {
                before.is_some_and(|b| {
                    b.zombies
                        .iter()
                        .any(|o| ZombieId::of(o).is(&ZombieId::of(z)))
                })
            });
            if kept.zombies.is_empty() {
                young.push(group.clone());
            } else {
                settled.push(kept);
            }
        }
        let mut plan = Plan::of(report_of(settled));
        // Pid 1 and the like are left alone for their own reasons, young or
        // not; every other young parent for its zombies' youth.
        for group in young {
            let own = Plan::of(report_of(vec![group.clone()]));
            plan.left_alone.extend(own.left_alone);
            if !own.targets.is_empty() {
                plan.left_alone.push(LeftAlone {
                    pid: group.ppid,
                    name: parent_name(&group),
                    zombies: group.zombies.len(),
                    reason: Leave::TooYoung,
                });
            }
        }
        plan.found = later;
        plan.min_age = min_age;
        plan
    }

    /// Looks at the host's zombies (within `options.step_timeout`, only
    /// those of `options.only`) and, when there are any and
    /// `options.min_age` is not zero, looks again that much later, and
    /// plans the sweep for the zombies of both looks.
    pub async fn look<A: Agent>(agent: &A, options: &Options) -> Result<Plan, Error> {
        let find = || async {
            let found = within(
                options.step_timeout,
                "finding zombies",
                agent.find_zombies(),
            )
            .await?;
            Ok::<_, Error>(only_parents(found, &options.only))
        };
        let first = find().await?;
        if options.min_age.is_zero() || first.parents.is_empty() {
            return Ok(Plan::of(first));
        }
        tokio::time::sleep(options.min_age).await;
        let second = find().await?;
        Ok(Plan::settled(&first, second, options.min_age))
    }

    /// Zombies of the parents the sweep may signal.
    pub fn zombies(&self) -> usize {
        self.targets.iter().map(|t| t.zombies.len()).sum()
    }

    /// Every signal the sweep may send, round by round: the first round
    /// goes to every target, the later ones only to those that still hold
    /// zombies by then.
    pub fn signals<'a>(&'a self, options: &Options) -> impl Iterator<Item = (Step, &'a Target)> {
        options
            .steps()
            .iter()
            .flat_map(move |&step| self.targets.iter().map(move |t| (step, t)))
    }
}

/// The report keeping only the parents in `only` (all when it is empty),
/// with its total recounted.
pub fn only_parents(found: FindZombiesResponse, only: &[u32]) -> FindZombiesResponse {
    if only.is_empty() {
        return found;
    }
    let mut parents = found.parents;
    parents.retain(|group| only.contains(&group.ppid));
    report_of(parents)
}

/// A report of these parents, with the total of their zombies counted, as
/// the agent would send it.
pub fn report_of(parents: Vec<ZombieParent>) -> FindZombiesResponse {
    let total = parents.iter().map(|g| g.zombies.len() as u32).sum();
    FindZombiesResponse { parents, total }
}

fn parent_name(group: &ZombieParent) -> String {
    group
        .parent
        .as_ref()
        .and_then(|p| p.name.clone())
        .unwrap_or_else(|| "?".to_owned())
}

/// Whether two groups name the same parent: the same pid and, where both
/// are known, the same start time.
fn same_parent(a: &ZombieParent, b: &ZombieParent) -> bool {
    let start = |g: &ZombieParent| g.parent.as_ref().and_then(|p| p.create_time);
    a.ppid == b.ppid
        && match (start(a), start(b)) {
            (Some(x), Some(y)) => same_start(x, y),
            _ => true,
        }
}

/// The planned zombies of `target` that it still holds in `found`: the
/// same zombies (pid and start time), not new ones with the same pids.
fn still_held(found: &FindZombiesResponse, target: &Target) -> Vec<ZombieId> {
    held(found, target)
        .into_iter()
        .filter(|z| target.zombies.iter().any(|planned| planned.is(z)))
        .collect()
}

/// The zombies `target` holds in `found`. A parent with the pid but
/// another start time is another process and holds none of them; one
/// whose start time the agent could no longer read is taken to be the
/// same, so that its zombies are not counted as reaped.
fn held(found: &FindZombiesResponse, target: &Target) -> Vec<ZombieId> {
    found
        .parents
        .iter()
        .filter(|g| g.ppid == target.pid)
        .filter(|g| {
            g.parent
                .as_ref()
                .and_then(|p| p.create_time)
                .is_none_or(|t| same_start(t, target.create_time))
        })
        .flat_map(|g| g.zombies.iter().map(ZombieId::of))
        .collect()
}

/// Start times as the API reports them are the same: both come from one
/// clock-tick count, so a millisecond is far below a tick and far above
/// float noise (the agent compares the same way).
fn same_start(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-3
}

// === Outcomes ===

/// What came of one signal.
#[derive(Debug)]
pub enum Outcome {
    /// The agent sent it.
    Sent,
    /// The agent did not send it, and rightly so: no failure.
    Skipped(Skip),
    /// The agent refused or could not be asked; the host's sweep counts as
    /// failed (see [`Report::failure`]).
    Failed(Error),
}

/// Why a signal was not sent, where that is no failure: the parent changed
/// or went away by itself, or the agent protects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The parent's pid now belongs to another process.
    PidReused,
    /// The parent has exited (or is a zombie itself) since the last look.
    ParentGone,
    /// The agent never signals this process (pid 0, pid 1, itself).
    Protected {
        /// What the agent said.
        message: String,
    },
}

impl Outcome {
    /// Sorts an answer to a signal.
    fn of(result: Result<SignalProcessResponse, Error>) -> Outcome {
        match result {
            Ok(_) => Outcome::Sent,
            Err(Error::PidReused { .. }) => Outcome::Skipped(Skip::PidReused),
            Err(Error::NoSuchProcess { .. } | Error::ZombieProcess { .. }) => {
                Outcome::Skipped(Skip::ParentGone)
            }
            Err(Error::ProtectedProcess { message, .. }) => {
                Outcome::Skipped(Skip::Protected { message })
            }
            Err(e) => Outcome::Failed(e),
        }
    }
}

/// One signal of a sweep and what came of it.
#[derive(Debug)]
pub struct Action {
    /// The round it belongs to, and so the signal.
    pub step: Step,
    /// The parent's pid.
    pub pid: u32,
    /// The parent's name.
    pub name: String,
    /// The create_time the signal carried, so that a reused pid is refused.
    pub create_time: f64,
    /// The zombies the parent held when the round began.
    pub zombies: usize,
    /// What came of it.
    pub outcome: Outcome,
}

/// Why a host's sweep counts as failed: the first thing that went wrong.
#[derive(Debug, Clone, Copy)]
pub enum Failure<'a> {
    /// A signal failed (the agent refused it, or could not be asked).
    Signal {
        /// The signal.
        action: &'a Action,
        /// Why.
        error: &'a Error,
    },
    /// The look after a round of signals failed, so the sweep stopped and
    /// could not count what was reaped.
    LookAgain(&'a Error),
}

/// A host's sweep: the plan, every signal sent and what came of it, and
/// the last look.
#[derive(Debug, Default)]
pub struct Report {
    /// The plan the sweep carried out.
    pub plan: Plan,
    /// Every signal, in the order of the rounds.
    pub actions: Vec<Action>,
    /// The last look, after the signals: the plan's own report when nothing
    /// was sent, `None` when that look failed (see [`Report::look_again`]).
    pub after: Option<FindZombiesResponse>,
    /// Why the look after a round of signals failed, when it did.
    pub look_again: Option<Error>,
}

impl Report {
    /// Zombies of the planned parents that they still hold after the
    /// sweep, when it could look. Zombies that appeared during the sweep,
    /// and those of parents left alone, do not count.
    pub fn remaining(&self) -> Option<usize> {
        let after = self.after.as_ref()?;
        Some(
            self.plan
                .targets
                .iter()
                .map(|t| still_held(after, t).len())
                .sum(),
        )
    }

    /// Zombies of the planned parents that are gone after the sweep, when
    /// it could look.
    pub fn reaped(&self) -> Option<usize> {
        Some(self.plan.zombies().saturating_sub(self.remaining()?))
    }

    /// The first failure, if any: a failed signal comes before the look
    /// that would have followed it.
    pub fn failure(&self) -> Option<Failure<'_>> {
        let signal = self
            .actions
            .iter()
            .find_map(|action| match &action.outcome {
                Outcome::Failed(error) => Some(Failure::Signal { action, error }),
                _ => None,
            });
        signal.or_else(|| self.look_again.as_ref().map(Failure::LookAgain))
    }
}

// === The sweep ===

/// Where a sweep stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Send the round's signal to the parents that still hold zombies.
    Signal(Step),
    /// Give the parents the grace period after the round.
    Grace(Step),
    /// Look at the zombies again after the round's grace.
    Look(Step),
    /// Take the last look as the sweep's result.
    Finish,
    /// Nothing more to do.
    Done,
}

/// A plan being carried out on one host: a state machine that sends a
/// round of signals, waits out the grace, looks again, and goes on to the
/// next round with the parents that still hold zombies, until the rounds
/// are done or nothing is left to signal.
///
/// Only looking before the plan can fail a host as a whole; once signals
/// may have been sent, everything is recorded in the [`Report`], so that
/// what was done is always reported.
#[derive(Debug)]
pub struct Sweep<A> {
    agent: A,
    steps: &'static [Step],
    grace: Duration,
    step_timeout: Duration,
    only: Vec<u32>,
    report: Report,
    /// The targets the next round may signal: those the last round sent to.
    live: Vec<Target>,
    /// The last look after a round.
    latest: Option<FindZombiesResponse>,
    sent_any: bool,
    phase: Phase,
}

impl<A: Agent> Sweep<A> {
    /// A sweep of `plan` through `agent`, as `options` say.
    pub fn new(agent: A, plan: Plan, options: &Options) -> Sweep<A> {
        let steps = options.steps();
        Sweep {
            agent,
            steps,
            grace: options.grace,
            step_timeout: options.step_timeout,
            only: options.only.clone(),
            live: plan.targets.clone(),
            report: Report {
                plan,
                ..Report::default()
            },
            latest: None,
            sent_any: false,
            phase: steps.first().map_or(Phase::Finish, |&s| Phase::Signal(s)),
        }
    }

    /// Carries the plan out and reports what came of it.
    pub async fn run(mut self) -> Report {
        while self.phase != Phase::Done {
            self.phase = self.advance().await;
        }
        self.report
    }

    /// Does what the current phase asks; returns the next one.
    async fn advance(&mut self) -> Phase {
        match self.phase {
            Phase::Signal(step) => self.signal(step).await,
            Phase::Grace(step) => {
                tokio::time::sleep(self.grace).await;
                Phase::Look(step)
            }
            Phase::Look(step) => {
                let look = within(
                    self.step_timeout,
                    "looking again",
                    self.agent.find_zombies(),
                );
                match look.await {
                    Ok(found) => {
                        self.latest = Some(only_parents(found, &self.only));
                        self.next_round(step).map_or(Phase::Finish, Phase::Signal)
                    }
                    Err(e) => {
                        self.report.look_again = Some(e);
                        Phase::Done
                    }
                }
            }
            Phase::Finish => {
                self.report.after = match self.latest.take() {
                    Some(found) => Some(found),
                    // Nothing was sent, so nothing changed by our hand.
                    None if !self.sent_any => Some(self.report.plan.found.clone()),
                    None => None,
                };
                Phase::Done
            }
            Phase::Done => Phase::Done,
        }
    }

    fn next_round(&self, step: Step) -> Option<Step> {
        let at = self.steps.iter().position(|&s| s == step)?;
        self.steps.get(at + 1).copied()
    }

    /// One round: `step`'s signal to every live target that still holds
    /// one of its planned zombies (the same pid and start time, as the
    /// look just before this round saw it), all at once. A parent that
    /// reaped them and holds only new zombies is healthy enough.
    async fn signal(&mut self, step: Step) -> Phase {
        if let Some(found) = &self.latest {
            self.live.retain(|t| !still_held(found, t).is_empty());
        }
        if self.live.is_empty() {
            return Phase::Finish;
        }
        let results = signal_all(&self.agent, &self.live, step, self.step_timeout).await;
        let mut sent = Vec::new();
        let mut refused = false;
        for (target, result) in self.live.iter().zip(results) {
            let zombies = self.latest.as_ref().map_or(target.zombies.len(), |found| {
                still_held(found, target).len()
            });
            let outcome = Outcome::of(result);
            match &outcome {
                Outcome::Sent => sent.push(target.clone()),
                Outcome::Failed(Error::OperatorRequired { .. }) => refused = true,
                Outcome::Skipped(_) | Outcome::Failed(_) => {}
            }
            self.report.actions.push(Action {
                step,
                pid: target.pid,
                name: target.name.clone(),
                create_time: target.create_time,
                zombies,
                outcome,
            });
        }
        self.live = sent;
        // Without the operator role every further signal is refused too.
        if self.live.is_empty() || refused {
            return Phase::Finish;
        }
        self.sent_any = true;
        Phase::Grace(step)
    }
}

/// Sends `step`'s signal to every target at once, each with its
/// create_time and within `limit`; the results in the targets' order.
async fn signal_all<A: Agent>(
    agent: &A,
    targets: &[Target],
    step: Step,
    limit: Duration,
) -> Vec<Result<SignalProcessResponse, Error>> {
    let mut tasks = JoinSet::new();
    for (i, target) in targets.iter().enumerate() {
        let (agent, pid, created) = (agent.clone(), target.pid, target.create_time);
        tasks.spawn(async move {
            let what = format!("sending {} to pid {pid}", step.signal());
            let call = agent.signal(pid, step.signal(), created);
            (i, within(limit, &what, call).await)
        });
    }
    let mut results: Vec<Option<Result<SignalProcessResponse, Error>>> =
        targets.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, result)) = joined
            && let Some(slot) = results.get_mut(i)
        {
            *slot = Some(result);
        }
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(Error::Status {
                    code: crate::StatusCode::Internal,
                    message: "the task sending the signal failed; it may or may not have been sent"
                        .to_owned(),
                })
            })
        })
        .collect()
}

/// `call`, or a timeout error naming `what` after `limit`.
async fn within<T>(
    limit: Duration,
    what: &str,
    call: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout {
            message: format!("{what}: no answer within {}", humanize(limit)),
        }),
    }
}

#[cfg(test)]
mod tests;
