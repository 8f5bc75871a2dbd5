//! `hostscope zombies`: which parents hold zombies, host by host; with
//! `--reap`, a guarded sweep that nudges those parents with SIGCHLD and,
//! when asked, ends the ones that still will not reap.
//!
//! A zombie cannot be signalled away: it has exited already, and only its
//! parent can collect it. So everything here is about parents. Every
//! signal carries the parent's create_time from the report the plan was
//! made from, so that a parent that exited and whose pid another process
//! took since is never hit.

use std::{
    future::Future,
    io::{self, Write},
    sync::Arc,
    time::Duration,
};

use serde::Serialize;
use tokio::task::JoinSet;

use super::{
    args::{Output, ZombiesArgs},
    fanout::{self, Io},
    format,
    output::Printer,
    render, signal,
    table::{Align, Table},
};
use crate::{
    Client, Error, Process,
    fleet::{Fleet, HostSpec, Summary},
    proto::{FindZombiesResponse, SignalProcessResponse, ZombieParent},
};

/// Finds the zombies on every host and prints them by parent; with
/// `--reap`, plans a sweep per host and, with `--yes`, carries it out.
/// `timeout` is the user's `--timeout`, which each query and each round
/// of signals of a sweep gets (see [`host_deadline`]).
pub async fn zombies(
    fleet: &Fleet,
    args: ZombiesArgs,
    timeout: Duration,
    format: Output,
    io: &mut Io<'_>,
) -> anyhow::Result<Summary> {
    let settings = Settings {
        reap: args.reap,
        yes: args.yes,
        kill_parents: args.kill_parents,
        grace: args.grace,
        step_timeout: timeout,
        only: args.ppid,
    };
    if settings.reap {
        reap(fleet, Arc::new(settings), format, io).await
    } else {
        report(fleet, settings.only, format, io).await
    }
}

/// How long one host may take for a whole sweep: `timeout` for connecting,
/// for the first query, for each round of signals and the query after it,
/// and once more to spare, plus the grace periods. A plan or a report is
/// one query, which `timeout` covers as for any command.
pub fn host_deadline(args: &ZombiesArgs, timeout: Duration) -> Duration {
    if !(args.reap && args.yes) {
        return timeout;
    }
    let steps = Settings::steps_for(args.kill_parents).len() as u32;
    timeout.saturating_mul(3 + 2 * steps) + args.grace.saturating_mul(steps)
}

/// What the user asked for, shared by every host's task.
#[derive(Debug, Clone)]
struct Settings {
    reap: bool,
    yes: bool,
    kill_parents: bool,
    /// The wait after each round of signals before looking again.
    grace: Duration,
    /// How long each query or round of signals may take.
    step_timeout: Duration,
    /// Only the zombies of these parents; all when empty.
    only: Vec<u32>,
}

impl Settings {
    fn steps(&self) -> &'static [Step] {
        Settings::steps_for(self.kill_parents)
    }

    fn steps_for(kill_parents: bool) -> &'static [Step] {
        if kill_parents {
            &[Step::Chld, Step::Term, Step::Kill]
        } else {
            &[Step::Chld]
        }
    }
}

// === The report ===

/// Prints each host's zombies by parent as it answers.
async fn report(
    fleet: &Fleet,
    only: Vec<u32>,
    format: Output,
    io: &mut Io<'_>,
) -> anyhow::Result<Summary> {
    let call = move |client: Client| {
        let only = only.clone();
        async move { Ok(keep(client.find_zombies().await?, &only)) }
    };
    let template = serde_json::to_value(ParentRecord::template())?;
    let mut printer = Printer::new(format, fleet.len(), &template);
    let width = io.width;
    let summary = io
        .fan_out(fleet, call, |host, found: FindZombiesResponse, out| {
            let now = format::now();
            if printer.is_table() {
                printer.table(out, host, |out| {
                    if found.parents.is_empty() {
                        return writeln!(out, "no zombies");
                    }
                    report_table(&found, now).write(out, width)
                })?;
            } else {
                let records = found.parents.iter().map(|group| {
                    serde_json::to_value(ParentRecord::of(&host.name, group, now))
                        .map_err(io::Error::from)
                });
                printer.records(out, records)?;
            }
            Ok(())
        })
        .await?;
    printer.finish(io.out)?;
    Ok(summary)
}

/// The report keeping only the parents in `only` (all when it is empty).
fn keep(mut found: FindZombiesResponse, only: &[u32]) -> FindZombiesResponse {
    if !only.is_empty() {
        found.parents.retain(|group| only.contains(&group.ppid));
        found.total = found.parents.iter().map(|g| g.zombies.len() as u32).sum();
    }
    found
}

/// One parent that holds zombies, as JSON, NDJSON and CSV show it.
#[derive(Debug, Serialize)]
struct ParentRecord<'a> {
    host: &'a str,
    ppid: u32,
    /// Absent when the parent exited between the agent's scan and its
    /// look-up, or a field could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_username: Option<&'a str>,
    /// The parent is pid 1: an init that does not reap.
    parent_is_init: bool,
    /// How many zombies it holds.
    zombies: usize,
    /// The oldest zombie's age in seconds: from when it became a zombie
    /// where the platform tells, else from its start (an upper bound).
    oldest_age_seconds: f64,
    zombie_pids: Vec<u32>,
    /// Seconds since the epoch: what `signal --expect-create-time` takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_create_time: Option<f64>,
    parent_cmdline: &'a [String],
}

impl<'a> ParentRecord<'a> {
    fn of(host: &'a str, group: &'a ZombieParent, now: f64) -> ParentRecord<'a> {
        let parent = group.parent.as_ref();
        ParentRecord {
            host,
            ppid: group.ppid,
            parent_name: parent.and_then(|p| p.name.as_deref()),
            parent_username: parent.and_then(|p| p.username.as_deref()),
            parent_is_init: group.parent_is_init,
            zombies: group.zombies.len(),
            oldest_age_seconds: (oldest_age(group, now) * 10.0).round() / 10.0,
            zombie_pids: group.zombies.iter().map(|z| z.pid).collect(),
            parent_create_time: parent.and_then(|p| p.create_time),
            parent_cmdline: parent.map_or(&[], |p| p.cmdline.as_slice()),
        }
    }

    /// A record with every column present, for the CSV header.
    fn template() -> ParentRecord<'static> {
        ParentRecord {
            host: "",
            ppid: 0,
            parent_name: Some(""),
            parent_username: Some(""),
            parent_is_init: false,
            zombies: 0,
            oldest_age_seconds: 0.0,
            zombie_pids: Vec::new(),
            parent_create_time: Some(0.0),
            parent_cmdline: &[],
        }
    }
}

/// Seconds since the oldest of the group's zombies became one, or, where
/// the platform does not tell (Linux), since it started.
fn oldest_age(group: &ZombieParent, now: f64) -> f64 {
    let oldest = group
        .zombies
        .iter()
        .filter_map(|z| z.zombie_since.or(z.create_time))
        .fold(f64::INFINITY, f64::min);
    if oldest.is_finite() {
        (now - oldest).max(0.0)
    } else {
        0.0
    }
}

/// PPID PARENT USER ZOMBIES OLDEST INIT COMMAND, a row per parent.
fn report_table(found: &FindZombiesResponse, now: f64) -> Table {
    let header = |name: &str, align| (name.to_owned(), align);
    let mut table = Table::new([
        header("PPID", Align::Right),
        header("PARENT", Align::Left),
        header("USER", Align::Left),
        header("ZOMBIES", Align::Right),
        header("OLDEST", Align::Right),
        header("INIT", Align::Left),
        header("COMMAND", Align::Left),
    ]);
    for group in &found.parents {
        let parent = group.parent.as_ref();
        let text = |value: Option<&String>| value.map_or("?", String::as_str).to_owned();
        table.push(vec![
            group.ppid.to_string(),
            parent.map_or_else(|| "<exited>".to_owned(), |p| text(p.name.as_ref())),
            text(parent.and_then(|p| p.username.as_ref())),
            group.zombies.len().to_string(),
            format::age(oldest_age(group, now)),
            if group.parent_is_init { "yes" } else { "no" }.to_owned(),
            parent.map_or_else(String::new, |p| render::command(&Process::from(p.clone()))),
        ]);
    }
    table
}

/// "1 zombie", "3 zombies".
fn zombies_text(n: usize) -> String {
    match n {
        1 => "1 zombie".to_owned(),
        n => format!("{n} zombies"),
    }
}

// === The plan ===

/// One round of signals, in the order a sweep sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A parent with a SIGCHLD handler collects its exited children.
    Chld,
    /// Asks a parent that still will not reap to end.
    Term,
    /// Ends one that ignored TERM.
    Kill,
}

impl Step {
    fn signal(self) -> &'static str {
        match self {
            Step::Chld => "CHLD",
            Step::Term => "TERM",
            Step::Kill => "KILL",
        }
    }

    /// Its place in the sweep, from 1.
    fn number(self) -> u8 {
        match self {
            Step::Chld => 1,
            Step::Term => 2,
            Step::Kill => 3,
        }
    }
}

/// A parent the sweep may signal, with what tells it apart from a later
/// process with its pid.
#[derive(Debug, Clone)]
struct Target {
    pid: u32,
    /// Seconds since the epoch, as the report gave it.
    create_time: f64,
    name: String,
    /// The zombies it held when the plan was made.
    zombies: Vec<u32>,
}

/// A parent the sweep leaves alone, and why.
#[derive(Debug, Clone, Serialize)]
struct LeftAlone {
    pid: u32,
    name: String,
    zombies: usize,
    reason: &'static str,
}

/// Which parents a sweep signals and which it leaves alone.
#[derive(Debug, Default)]
struct Plan {
    targets: Vec<Target>,
    left_alone: Vec<LeftAlone>,
}

impl Plan {
    /// The plan for a host's report: every parent but pid 1, pid 0, one
    /// that has exited already, and one whose start time is unknown (its
    /// signals could not be guarded against pid reuse).
    fn of(found: &FindZombiesResponse) -> Plan {
        let mut plan = Plan::default();
        for group in &found.parents {
            let name = parent_name(group);
            let created = group.parent.as_ref().and_then(|p| p.create_time);
            let reason = match (group.ppid, &group.parent, created) {
                (1, _, _) => {
                    "pid 1 is init: it is never signalled; its zombies stay until it reaps them"
                }
                _ if group.parent_is_init => "its parent is init: it is never signalled",
                (0, _, _) => "no parent process (ppid 0): nothing to signal",
                (_, None, _) => "the parent has exited: its zombies pass to init or a subreaper",
                (_, Some(_), None) => {
                    "the parent's start time is unknown, so a reused pid could not be ruled out"
                }
                (pid, Some(_), Some(create_time)) => {
                    plan.targets.push(Target {
                        pid,
                        create_time,
                        name,
                        zombies: group.zombies.iter().map(|z| z.pid).collect(),
                    });
                    continue;
                }
            };
            plan.left_alone.push(LeftAlone {
                pid: group.ppid,
                name,
                zombies: group.zombies.len(),
                reason,
            });
        }
        plan
    }

    /// Zombies of the parents the sweep may signal.
    fn zombies(&self) -> usize {
        self.targets.iter().map(|t| t.zombies.len()).sum()
    }
}

fn parent_name(group: &ZombieParent) -> String {
    group
        .parent
        .as_ref()
        .and_then(|p| p.name.clone())
        .unwrap_or_else(|| "?".to_owned())
}

/// The zombies `target` holds in `found`. A parent with the pid but
/// another start time is another process and holds none of them; one
/// whose start time the agent could no longer read is taken to be the
/// same, so that its zombies are not counted as reaped.
fn held(found: &FindZombiesResponse, target: &Target) -> Vec<u32> {
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
        .flat_map(|g| g.zombies.iter().map(|z| z.pid))
        .collect()
}

/// Start times as the API reports them are the same: both come from one
/// clock-tick count, so a millisecond is far below a tick and far above
/// float noise (the agent compares the same way).
fn same_start(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-3
}

// === The sweep ===

/// One signal of a sweep, planned or sent, as every format shows it.
#[derive(Debug, Clone, Serialize)]
struct Action {
    /// 1 for CHLD, 2 for TERM, 3 for KILL.
    step: u8,
    signal: &'static str,
    pid: u32,
    name: String,
    /// The create_time the signal carries, so that a reused pid is refused.
    create_time: f64,
    /// The zombies the parent held when the step began.
    zombies: usize,
    /// planned, sent, skipped or failed.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// One host's sweep: the report it started from, the plan, what was done
/// and how it ended.
#[derive(Debug, Default)]
struct Sweep {
    before: FindZombiesResponse,
    plan: Plan,
    dry_run: bool,
    actions: Vec<Action>,
    /// The last look, after the signals; `None` for a plan, or when that
    /// look failed (see `failure`).
    after: Option<FindZombiesResponse>,
    /// Why the host counts as failed: the error's label and plain words.
    failure: Option<(&'static str, String)>,
}

impl Sweep {
    /// Zombies of the planned parents that they still hold after the
    /// sweep, when it looked.
    fn remaining(&self) -> Option<usize> {
        let after = self.after.as_ref()?;
        Some(
            self.plan
                .targets
                .iter()
                .map(|t| {
                    let now = held(after, t);
                    t.zombies.iter().filter(|z| now.contains(z)).count()
                })
                .sum(),
        )
    }

    fn reaped(&self) -> Option<usize> {
        Some(self.plan.zombies().saturating_sub(self.remaining()?))
    }

    /// Records the first failure; it is what the summary says of the host.
    fn fail(&mut self, label: &'static str, text: String) {
        if self.failure.is_none() {
            self.failure = Some((label, text));
        }
    }

    /// Records what came of one signal, in plain words; true when it was
    /// sent. Skips are no failure: the parent changed or went away by
    /// itself, or is one the agent protects.
    fn record(
        &mut self,
        step: Step,
        target: &Target,
        zombies: usize,
        result: Result<SignalProcessResponse, Error>,
    ) -> bool {
        let (outcome, detail) = match result {
            Ok(_) => ("sent", None),
            Err(Error::PidReused { .. }) => (
                "skipped",
                Some("parent changed, skipped: its pid now belongs to another process".to_owned()),
            ),
            Err(Error::ProtectedProcess { message, .. }) => {
                ("skipped", Some(format!("skipped: {message}")))
            }
            Err(Error::NoSuchProcess { .. } | Error::ZombieProcess { .. }) => (
                "skipped",
                Some("the parent has exited by itself, skipped".to_owned()),
            ),
            Err(Error::OperatorRequired { message }) => {
                self.fail("operator-required", signal::operator_required(&message));
                (
                    "failed",
                    Some("refused: signalling needs the operator role".to_owned()),
                )
            }
            Err(e) => {
                let text = signal::plain(&e);
                let failure = format!("{} to pid {} failed: {text}", step.signal(), target.pid);
                self.fail(e.label(), failure);
                ("failed", Some(text))
            }
        };
        self.actions.push(Action {
            step: step.number(),
            signal: step.signal(),
            pid: target.pid,
            name: target.name.clone(),
            create_time: target.create_time,
            zombies,
            outcome,
            detail,
        });
        outcome == "sent"
    }
}

/// Plans the sweep on every host and prints each host's plan, or with
/// `--yes` carries it out and prints what came of it.
async fn reap(
    fleet: &Fleet,
    settings: Arc<Settings>,
    format: Output,
    io: &mut Io<'_>,
) -> anyhow::Result<Summary> {
    let shared = Arc::clone(&settings);
    let call = move |client: Client| {
        let settings = Arc::clone(&shared);
        async move { sweep(client, &settings).await }
    };
    let template = SweepRecord::template()?;
    let mut printer = Printer::new(format, fleet.len(), &template);
    let mut failed: Vec<(HostSpec, &'static str, String)> = Vec::new();
    let several = fleet.len() > 1;
    let mut summary = io
        .fan_out(fleet, call, |host, sweep: Sweep, out| {
            if printer.is_table() {
                printer.table(out, host, |out| write_sweep(out, &sweep, &settings))?;
            } else {
                let record = serde_json::to_value(SweepRecord::of(&host.name, &sweep, &settings))
                    .map_err(io::Error::from);
                printer.records(out, [record])?;
            }
            if let Some((label, text)) = sweep.failure {
                // A fleet's summary names the host already.
                let text = match several {
                    true => text,
                    false => format!("{}: {text}", host.name),
                };
                failed.push((host.clone(), label, text));
            }
            Ok(())
        })
        .await?;
    printer.finish(io.out)?;
    if !settings.yes && format == Output::Table {
        writeln!(
            io.out,
            "\nnothing was sent: this is the plan; add --yes to carry it out"
        )?;
    }
    for (host, label, text) in failed {
        fanout::refused(&mut summary, &host, label, text);
    }
    Ok(summary)
}

/// One host's sweep. Only the first look can fail the host as a whole:
/// once signals may have been sent, everything is recorded in the sweep,
/// so that what was done is always reported.
async fn sweep(client: Client, settings: &Settings) -> Result<Sweep, Error> {
    let limit = settings.step_timeout;
    let before = keep(
        within(limit, "finding zombies", client.find_zombies()).await?,
        &settings.only,
    );
    let mut sweep = Sweep {
        plan: Plan::of(&before),
        before,
        dry_run: !settings.yes,
        ..Sweep::default()
    };
    if sweep.dry_run {
        for &step in settings.steps() {
            for target in &sweep.plan.targets {
                sweep.actions.push(Action {
                    step: step.number(),
                    signal: step.signal(),
                    pid: target.pid,
                    name: target.name.clone(),
                    create_time: target.create_time,
                    zombies: target.zombies.len(),
                    outcome: "planned",
                    detail: (step != Step::Chld)
                        .then(|| "only if it still holds zombies".to_owned()),
                });
            }
        }
        return Ok(sweep);
    }

    let mut live = sweep.plan.targets.clone();
    let mut latest: Option<FindZombiesResponse> = None;
    let mut sent_any = false;
    for &step in settings.steps() {
        if let Some(found) = &latest {
            live.retain(|t| !held(found, t).is_empty());
        }
        if live.is_empty() {
            break;
        }
        let results = signal_all(&client, &live, step, limit).await;
        let mut sent = Vec::new();
        for (target, result) in live.iter().zip(results) {
            let zombies = latest
                .as_ref()
                .map_or(target.zombies.len(), |found| held(found, target).len());
            if sweep.record(step, target, zombies, result) {
                sent.push(target.clone());
            }
        }
        live = sent;
        // Without the operator role every further signal is refused too.
        let refused = matches!(sweep.failure, Some(("operator-required", _)));
        if live.is_empty() || refused {
            break;
        }
        sent_any = true;
        tokio::time::sleep(settings.grace).await;
        match within(limit, "looking again", client.find_zombies()).await {
            Ok(found) => latest = Some(keep(found, &settings.only)),
            Err(e) => {
                sweep.fail(e.label(), format!("looking again after the signals: {e}"));
                return Ok(sweep);
            }
        }
    }
    sweep.after = match latest {
        Some(found) => Some(found),
        // Nothing was sent, so nothing changed by our hand.
        None if !sent_any => Some(sweep.before.clone()),
        None => None,
    };
    Ok(sweep)
}

/// Sends `step`'s signal to every target at once, each with its
/// create_time and within `limit`; the results in the targets' order.
async fn signal_all(
    client: &Client,
    targets: &[Target],
    step: Step,
    limit: Duration,
) -> Vec<Result<SignalProcessResponse, Error>> {
    let mut tasks = JoinSet::new();
    for (i, target) in targets.iter().enumerate() {
        let (client, pid, created) = (client.clone(), target.pid, target.create_time);
        tasks.spawn(async move {
            let what = format!("sending {} to pid {pid}", step.signal());
            let call = client.signal(pid, step.signal(), Some(created));
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
                Err(Error::Status(tonic::Status::internal(
                    "the task sending the signal failed; it may or may not have been sent",
                )))
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
            message: format!(
                "{what}: no answer within {}",
                humantime::format_duration(limit)
            ),
        }),
    }
}

// === Printing a sweep ===

/// One host's sweep as JSON, NDJSON and CSV show it.
#[derive(Debug, Serialize)]
struct SweepRecord<'a> {
    host: &'a str,
    /// A plan only: nothing was sent.
    dry_run: bool,
    grace_seconds: f64,
    /// Zombies of the parents the sweep may signal, before it.
    zombies: usize,
    actions: &'a [Action],
    left_alone: &'a [LeftAlone],
    #[serde(skip_serializing_if = "Option::is_none")]
    reaped: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

impl<'a> SweepRecord<'a> {
    fn of(host: &'a str, sweep: &'a Sweep, settings: &Settings) -> SweepRecord<'a> {
        SweepRecord {
            host,
            dry_run: sweep.dry_run,
            grace_seconds: settings.grace.as_secs_f64(),
            zombies: sweep.plan.zombies(),
            actions: &sweep.actions,
            left_alone: &sweep.plan.left_alone,
            reaped: sweep.reaped(),
            remaining: sweep.remaining(),
            error: sweep.failure.as_ref().map(|(_, text)| text.as_str()),
        }
    }

    /// A record with every column present, for the CSV header.
    fn template() -> serde_json::Result<serde_json::Value> {
        let actions = [Action {
            step: 0,
            signal: "",
            pid: 0,
            name: String::new(),
            create_time: 0.0,
            zombies: 0,
            outcome: "",
            detail: Some(String::new()),
        }];
        let left_alone = [LeftAlone {
            pid: 0,
            name: String::new(),
            zombies: 0,
            reason: "",
        }];
        serde_json::to_value(SweepRecord {
            host: "",
            dry_run: false,
            grace_seconds: 0.0,
            zombies: 0,
            actions: &actions,
            left_alone: &left_alone,
            reaped: Some(0),
            remaining: Some(0),
            error: Some(""),
        })
    }
}

/// The plan for people: the signals in order, the parents of the first
/// step listed, the later steps only for those that still hold zombies.
fn write_plan(out: &mut dyn Write, plan: &Plan, settings: &Settings) -> io::Result<()> {
    if plan.targets.is_empty() {
        return writeln!(out, "  nothing to signal");
    }
    writeln!(
        out,
        "  1. CHLD to each parent, so that one with a SIGCHLD handler collects its zombies:"
    )?;
    for t in &plan.targets {
        writeln!(
            out,
            "       pid {} {} ({})",
            t.pid,
            t.name,
            zombies_text(t.zombies.len())
        )?;
    }
    let grace = humantime::format_duration(settings.grace);
    if settings.kill_parents {
        writeln!(
            out,
            "  2. after {grace}: TERM to each of them that still holds zombies"
        )?;
        writeln!(
            out,
            "  3. after another {grace}: KILL to each of them that still does"
        )?;
        writeln!(
            out,
            "  4. after another {grace}: look again and count the zombies reaped"
        )
    } else {
        writeln!(
            out,
            "  2. after {grace}: look again and count the zombies reaped (parents that still \
             hold zombies are left alone: --kill-parents would TERM, then KILL them)"
        )
    }
}

/// A sweep for people: the plan, or each signal and what came of it, then
/// the count.
fn write_sweep(out: &mut dyn Write, sweep: &Sweep, settings: &Settings) -> io::Result<()> {
    let before = &sweep.before;
    if before.parents.is_empty() {
        return writeln!(out, "no zombies");
    }
    let parents = match before.parents.len() {
        1 => "1 parent".to_owned(),
        n => format!("{n} parents"),
    };
    let total = zombies_text(before.total as usize);
    let grace = humantime::format_duration(settings.grace);
    if sweep.dry_run {
        writeln!(out, "{total} under {parents}; the plan:")?;
        write_plan(out, &sweep.plan, settings)?;
    } else {
        writeln!(out, "{total} under {parents}")?;
        for a in &sweep.actions {
            let wait = if a.step > 1 {
                format!("after {grace}: ")
            } else {
                String::new()
            };
            let outcome = match (a.outcome, &a.detail) {
                (_, Some(detail)) => detail.clone(),
                (outcome, None) => outcome.to_owned(),
            };
            writeln!(
                out,
                "  {wait}{} to pid {} {} ({}): {outcome}",
                a.signal,
                a.pid,
                a.name,
                zombies_text(a.zombies)
            )?;
        }
    }
    for alone in &sweep.plan.left_alone {
        writeln!(
            out,
            "  left alone: pid {} {} ({}): {}",
            alone.pid,
            alone.name,
            zombies_text(alone.zombies),
            alone.reason
        )?;
    }
    if sweep.dry_run {
        return Ok(());
    }
    match (sweep.reaped(), sweep.remaining(), &sweep.failure) {
        (Some(reaped), Some(remaining), _) => writeln!(
            out,
            "reaped {reaped} of {}; {remaining} remain",
            zombies_text(sweep.plan.zombies())
        ),
        (_, _, Some((_, why))) => writeln!(out, "could not count what was reaped: {why}"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{self, Zombie};

    fn group(ppid: u32, created: Option<f64>, zombies: &[(u32, f64)]) -> ZombieParent {
        ZombieParent {
            parent: created.map(|t| proto::Process {
                pid: ppid,
                name: Some(format!("p{ppid}")),
                username: Some("www".to_owned()),
                create_time: Some(t),
                cmdline: vec![format!("/bin/p{ppid}"), "--serve".to_owned()],
                ..Default::default()
            }),
            ppid,
            zombies: zombies
                .iter()
                .map(|(pid, t)| Zombie {
                    pid: *pid,
                    name: Some("child".to_owned()),
                    ppid,
                    zombie_since: None,
                    create_time: Some(*t),
                })
                .collect(),
            parent_is_init: ppid == 1,
        }
    }

    fn found(parents: Vec<ZombieParent>) -> FindZombiesResponse {
        let total = parents.iter().map(|g| g.zombies.len() as u32).sum();
        FindZombiesResponse { parents, total }
    }

    fn settings(yes: bool, kill_parents: bool) -> Settings {
        Settings {
            reap: true,
            yes,
            kill_parents,
            grace: Duration::from_secs(5),
            step_timeout: Duration::from_secs(10),
            only: Vec::new(),
        }
    }

    #[test]
    fn the_report_reads_by_parent() {
        let now = 1_000_000.0;
        let report = found(vec![
            group(4321, Some(900.0), &[(10, now - 125.0), (11, now - 5.0)]),
            group(1, Some(1.0), &[(12, now - 7200.0)]),
        ]);
        let mut out = Vec::new();
        report_table(&report, now)
            .write(&mut out, None)
            .expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "PPID PARENT USER ZOMBIES OLDEST INIT COMMAND\n\
             4321 p4321  www        2  2m05s no   /bin/p4321 --serve\n   \
             1 p1     www        1  2h00m yes  /bin/p1 --serve\n"
        );
        let record = ParentRecord::of("web1", &report.parents[0], now);
        let json = serde_json::to_value(&record).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "host": "web1", "ppid": 4321, "parent_name": "p4321", "parent_username": "www",
                "parent_is_init": false, "zombies": 2, "oldest_age_seconds": 125.0,
                "zombie_pids": [10, 11], "parent_create_time": 900.0,
                "parent_cmdline": ["/bin/p4321", "--serve"],
            })
        );
        let template = serde_json::to_value(ParentRecord::template()).expect("json");
        let header = super::super::csv::Sheet::new(&template).header();
        let keys: Vec<&String> = json.as_object().expect("object").keys().collect();
        assert_eq!(header.iter().collect::<Vec<_>>(), keys);
    }

    #[test]
    fn the_plan_leaves_init_exited_and_unguardable_parents_alone() {
        let mut unknown_start = group(77, Some(5.0), &[(20, 1.0)]);
        if let Some(p) = unknown_start.parent.as_mut() {
            p.create_time = None;
        }
        let report = found(vec![
            group(4321, Some(900.0), &[(10, 1.0), (11, 2.0)]),
            group(1, Some(1.0), &[(12, 1.0)]),
            group(55, None, &[(13, 1.0)]),
            unknown_start,
        ]);
        let plan = Plan::of(&report);
        let targets: Vec<(u32, f64, usize)> = plan
            .targets
            .iter()
            .map(|t| (t.pid, t.create_time, t.zombies.len()))
            .collect();
        assert_eq!(targets, [(4321, 900.0, 2)]);
        let alone: Vec<u32> = plan.left_alone.iter().map(|a| a.pid).collect();
        assert_eq!(alone, [1, 55, 77]);
        assert!(plan.left_alone[0].reason.contains("never signalled"));
        assert_eq!(plan.zombies(), 2);
    }

    #[test]
    fn a_reused_parent_pid_holds_none_of_the_zombies() {
        let target =
            Plan::of(&found(vec![group(50, Some(900.0), &[(10, 1.0)])])).targets[0].clone();
        assert_eq!(
            held(&found(vec![group(50, Some(900.0), &[(10, 1.0)])]), &target),
            [10]
        );
        assert!(held(&found(vec![group(50, Some(950.0), &[(10, 1.0)])]), &target).is_empty());
        assert!(held(&found(vec![]), &target).is_empty());
        // A parent the agent could not describe any more keeps its zombies
        // counted: they are not reaped until they are gone.
        assert_eq!(
            held(&found(vec![group(50, None, &[(10, 1.0)])]), &target),
            [10]
        );
    }

    #[test]
    fn a_plan_says_what_would_be_sent_and_in_which_order() {
        let before = found(vec![
            group(4321, Some(900.0), &[(10, 1.0), (11, 2.0)]),
            group(1, Some(1.0), &[(12, 1.0)]),
        ]);
        let sweep = Sweep {
            plan: Plan::of(&before),
            before,
            dry_run: true,
            ..Sweep::default()
        };
        let mut out = Vec::new();
        write_sweep(&mut out, &sweep, &settings(false, true)).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            "3 zombies under 2 parents; the plan:\n  \
             1. CHLD to each parent, so that one with a SIGCHLD handler collects its zombies:\n       \
             pid 4321 p4321 (2 zombies)\n  \
             2. after 5s: TERM to each of them that still holds zombies\n  \
             3. after another 5s: KILL to each of them that still does\n  \
             4. after another 5s: look again and count the zombies reaped\n  \
             left alone: pid 1 p1 (1 zombie): pid 1 is init: it is never signalled; its \
             zombies stay until it reaps them\n"
        );
    }

    #[test]
    fn a_sweep_counts_only_the_planned_parents_zombies() {
        let before = found(vec![
            group(4321, Some(900.0), &[(10, 1.0), (11, 2.0)]),
            group(99, Some(800.0), &[(20, 1.0)]),
            group(1, Some(1.0), &[(12, 1.0)]),
        ]);
        let mut sweep = Sweep {
            plan: Plan::of(&before),
            before,
            ..Sweep::default()
        };
        let (first, second) = (sweep.plan.targets[0].clone(), sweep.plan.targets[1].clone());
        assert!(sweep.record(Step::Chld, &first, 2, Ok(SignalProcessResponse::default())));
        let reused = Err(Error::PidReused {
            pid: 99,
            message: "another process".to_owned(),
        });
        assert!(!sweep.record(Step::Chld, &second, 1, reused));
        assert!(sweep.failure.is_none(), "a skip is no failure");
        // 4321 reaped one and made a new zombie; init's is not counted.
        sweep.after = Some(found(vec![
            group(4321, Some(900.0), &[(11, 2.0), (30, 3.0)]),
            group(99, Some(800.0), &[(20, 1.0)]),
            group(1, Some(1.0), &[(12, 1.0)]),
        ]));
        assert_eq!((sweep.reaped(), sweep.remaining()), (Some(1), Some(2)));
        let mut out = Vec::new();
        write_sweep(&mut out, &sweep, &settings(true, false)).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.contains("CHLD to pid 99 p99 (1 zombie): parent changed, skipped"),
            "{text}"
        );
        assert!(
            text.ends_with("reaped 1 of 3 zombies; 2 remain\n"),
            "{text}"
        );

        let refused = Err(Error::OperatorRequired {
            message: "client \"bob\" may not signal".to_owned(),
        });
        assert!(!sweep.record(Step::Chld, &first, 2, refused));
        let (label, text) = sweep.failure.clone().expect("a failure");
        assert_eq!(label, "operator-required");
        assert!(
            text.contains("--operator") && text.contains("\"bob\""),
            "{text}"
        );
    }

    #[test]
    fn the_deadline_covers_every_step_of_a_sweep() {
        let args = |yes: bool, kill_parents: bool| ZombiesArgs {
            reap: true,
            yes,
            kill_parents,
            grace: Duration::from_secs(5),
            ppid: Vec::new(),
            targets: Default::default(),
        };
        let t = Duration::from_secs(10);
        assert_eq!(host_deadline(&args(false, true), t), t);
        assert_eq!(
            host_deadline(&args(true, false), t),
            Duration::from_secs(55)
        );
        assert_eq!(
            host_deadline(&args(true, true), t),
            Duration::from_secs(105)
        );
    }

    #[test]
    fn the_sweep_csv_header_covers_actions_and_parents_left_alone() {
        let template = SweepRecord::template().expect("json");
        let header = super::super::csv::Sheet::new(&template).header();
        for column in [
            "host",
            "dry_run",
            "actions.signal",
            "actions.pid",
            "actions.outcome",
            "left_alone.reason",
            "reaped",
            "remaining",
        ] {
            assert!(header.iter().any(|h| h == column), "{column}: {header:?}");
        }
    }
}
