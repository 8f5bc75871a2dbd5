//! `hostscope zombies`: which parents hold zombies, host by host; with
//! `--reap`, a guarded sweep that nudges those parents with SIGCHLD and,
//! when asked, ends the ones that still will not reap.
//!
//! The plan and the sweep are [`hostscope_client::sweep`]'s; this module
//! runs them on every host and prints the report, the plans and what came
//! of each signal.

use std::{
    io::{self, Write},
    sync::Arc,
    time::Duration,
};

use serde::Serialize;

use super::{
    args::{Output, ZombiesArgs},
    duration,
    fanout::{self, Io},
    format, render, signal,
    table::{Align, Table},
};
use hostscope_client::{
    Client, Error, Process,
    fleet::{Fleet, HostSpec, Summary},
    proto::{FindZombiesResponse, ZombieParent},
    sweep::{self, Action, Failure, LeftAlone, Options, Outcome, Plan, Report, Skip, Step, Sweep},
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
    let options = options(&args, timeout);
    if args.reap {
        reap(fleet, options, args.yes, format, io).await
    } else {
        report(fleet, options.only, format, io).await
    }
}

/// How long one host may take: a whole sweep when one is carried out (see
/// [`Options::deadline`]); a plan is two looks `--min-age` apart, each
/// with `timeout` (and one more for connecting); a report is one query,
/// which `timeout` covers as for any command.
pub fn host_deadline(args: &ZombiesArgs, timeout: Duration) -> Duration {
    match (args.reap, args.yes) {
        (true, true) => options(args, timeout).deadline(),
        (true, false) => timeout.saturating_mul(3) + args.min_age,
        _ => timeout,
    }
}

/// The sweep the flags ask for.
fn options(args: &ZombiesArgs, timeout: Duration) -> Options {
    Options {
        kill_parents: args.kill_parents,
        grace: args.grace,
        step_timeout: timeout,
        only: args.ppid.clone(),
        min_age: args.min_age,
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
        async move { Ok(sweep::only_parents(client.find_zombies().await?, &only)) }
    };
    let template = serde_json::to_value(ParentRecord::template())?;
    let mut printer = io.printer(format, fleet.len(), &template);
    let (width, headers) = (io.width, !io.no_headers);
    let summary = io
        .fan_out(fleet, call, |host, found: FindZombiesResponse, out| {
            let now = format::now();
            if printer.is_table() {
                printer.table(out, host, |out| {
                    if found.parents.is_empty() {
                        return writeln!(out, "no zombies");
                    }
                    report_table(&found, now).write_with(out, width, headers)
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

// === The sweep ===

/// One host's sweep: the plan alone without `--yes`, else what came of
/// carrying it out.
#[derive(Debug)]
enum HostSweep {
    /// Nothing was sent.
    Planned(Plan),
    /// The plan was carried out.
    Done(Report),
}

impl HostSweep {
    fn plan(&self) -> &Plan {
        match self {
            HostSweep::Planned(plan) => plan,
            HostSweep::Done(report) => &report.plan,
        }
    }

    fn report(&self) -> Option<&Report> {
        match self {
            HostSweep::Planned(_) => None,
            HostSweep::Done(report) => Some(report),
        }
    }

    /// Why the host counts as failed: the error's label and plain words.
    fn failure(&self) -> Option<(&'static str, String)> {
        Some(match self.report()?.failure()? {
            Failure::Signal {
                error: Error::OperatorRequired { message },
                ..
            } => ("operator-required", signal::operator_required(message)),
            Failure::Signal { action, error } => (
                error.label(),
                format!(
                    "{} to pid {} failed: {}",
                    action.step.signal(),
                    action.pid,
                    signal::plain(error)
                ),
            ),
            Failure::LookAgain(e) => (e.label(), format!("looking again after the signals: {e}")),
        })
    }
}

/// Plans the sweep on every host and prints each host's plan, or with
/// `--yes` carries it out and prints what came of it.
async fn reap(
    fleet: &Fleet,
    options: Options,
    yes: bool,
    format: Output,
    io: &mut Io<'_>,
) -> anyhow::Result<Summary> {
    let options = Arc::new(options);
    let shared = Arc::clone(&options);
    let call = move |client: Client| {
        let options = Arc::clone(&shared);
        async move {
            let plan = Plan::look(&client, &options).await?;
            Ok(match yes {
                true => HostSweep::Done(Sweep::new(client, plan, &options).run().await),
                false => HostSweep::Planned(plan),
            })
        }
    };
    let template = SweepRecord::template()?;
    let mut printer = io.printer(format, fleet.len(), &template);
    let mut failed: Vec<(HostSpec, &'static str, String)> = Vec::new();
    let several = fleet.len() > 1;
    let countdown = announce_min_age(io, options.min_age, several)?;
    let mut summary = io
        .fan_out(fleet, call, |host, sweep: HostSweep, out| {
            if let Some(countdown) = &countdown {
                countdown.finish_and_clear();
            }
            if printer.is_table() {
                printer.table(out, host, |out| write_sweep(out, &sweep, &options))?;
            } else {
                let record = serde_json::to_value(SweepRecord::of(&host.name, &sweep, &options))
                    .map_err(io::Error::from);
                printer.records(out, [record])?;
            }
            if let Some((label, text)) = sweep.failure() {
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
    if let Some(countdown) = countdown {
        countdown.finish_and_clear();
    }
    printer.finish(io.out)?;
    if !yes && format == Output::Table {
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

/// Says on stderr what a sweep waits for before its second look, unless
/// --quiet: the wait is `--min-age` long (30 seconds by default), and a
/// command that sits silent that long looks hung. On a terminal, asking a
/// single host, the line counts down; the returned bar is to be cleared
/// before anything is printed.
fn announce_min_age(
    io: &mut Io<'_>,
    min_age: Duration,
    several: bool,
) -> io::Result<Option<indicatif::ProgressBar>> {
    if min_age.is_zero() || io.quiet {
        return Ok(None);
    }
    let what = format!(
        "looking for zombies twice, {} apart (--min-age): only those still there at the second \
         look are swept",
        duration::format(min_age)
    );
    if several || !io.progress {
        writeln!(io.err, "{what}")?;
        return Ok(None);
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(min_age.as_secs()),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg}") {
        bar.set_style(style);
    }
    let counting = bar.clone();
    tokio::spawn(async move {
        let end = tokio::time::Instant::now() + min_age;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            if counting.is_finished() {
                break;
            }
            let message = match left.as_secs() {
                0 => "looking again...".to_owned(),
                secs => format!("{what}; second look in {secs}s"),
            };
            counting.set_message(message);
            if left.is_zero() {
                break;
            }
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        }
    });
    Ok(Some(bar))
}

// === Printing a sweep ===

/// One signal of a sweep, planned or sent, as every format shows it.
#[derive(Debug, Serialize)]
struct ActionRecord<'a> {
    /// 1 for CHLD, 2 for TERM, 3 for KILL.
    step: u8,
    signal: &'static str,
    pid: u32,
    name: &'a str,
    /// The create_time the signal carries, so that a reused pid is refused.
    create_time: f64,
    /// The zombies the parent held when the step began.
    zombies: usize,
    /// planned, sent, skipped or failed.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    /// A plan's parent's command line, so that a person sees what would be
    /// signalled before saying --yes.
    #[serde(skip_serializing_if = "Option::is_none")]
    cmdline: Option<String>,
}

impl<'a> ActionRecord<'a> {
    /// A signal of a plan: every round but the first only goes to parents
    /// that still hold zombies by then.
    fn planned(step: Step, target: &'a sweep::Target) -> ActionRecord<'a> {
        ActionRecord {
            step: step.number(),
            signal: step.signal().name(),
            pid: target.pid,
            name: &target.name,
            create_time: target.create_time,
            zombies: target.zombies.len(),
            outcome: "planned",
            detail: (step != Step::Chld).then(|| "only if it still holds zombies".to_owned()),
            cmdline: Some(target.cmdline.join(" ")),
        }
    }

    /// A signal of a sweep, and what came of it in plain words.
    fn of(action: &'a Action) -> ActionRecord<'a> {
        let (outcome, detail) = match &action.outcome {
            Outcome::Sent => ("sent", None),
            Outcome::Skipped(Skip::PidReused) => (
                "skipped",
                Some("parent changed, skipped: its pid now belongs to another process".to_owned()),
            ),
            Outcome::Skipped(Skip::Protected { message }) => {
                ("skipped", Some(format!("skipped: {message}")))
            }
            Outcome::Skipped(Skip::ParentGone) => (
                "skipped",
                Some("the parent has exited by itself, skipped".to_owned()),
            ),
            Outcome::Failed(Error::OperatorRequired { .. }) => (
                "failed",
                Some("refused: signalling needs the operator role".to_owned()),
            ),
            Outcome::Failed(e) => ("failed", Some(signal::plain(e))),
        };
        ActionRecord {
            step: action.step.number(),
            signal: action.step.signal().name(),
            pid: action.pid,
            name: &action.name,
            create_time: action.create_time,
            zombies: action.zombies,
            outcome,
            detail,
            cmdline: None,
        }
    }
}

/// A parent the sweep leaves alone, and why, as every format shows it.
#[derive(Debug, Serialize)]
struct LeftAloneRecord<'a> {
    pid: u32,
    name: &'a str,
    zombies: usize,
    reason: String,
}

impl<'a> LeftAloneRecord<'a> {
    fn of(alone: &'a LeftAlone) -> LeftAloneRecord<'a> {
        LeftAloneRecord {
            pid: alone.pid,
            name: &alone.name,
            zombies: alone.zombies,
            reason: alone.reason.to_string(),
        }
    }
}

/// One host's sweep as JSON, NDJSON and CSV show it.
#[derive(Debug, Serialize)]
struct SweepRecord<'a> {
    host: &'a str,
    /// A plan only: nothing was sent.
    dry_run: bool,
    grace_seconds: f64,
    /// How far apart the two looks the plan was made from were: only
    /// zombies of both are acted on.
    min_age_seconds: f64,
    /// Zombies of the parents the sweep may signal, before it.
    zombies: usize,
    actions: Vec<ActionRecord<'a>>,
    left_alone: Vec<LeftAloneRecord<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reaped: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl<'a> SweepRecord<'a> {
    fn of(host: &'a str, sweep: &'a HostSweep, options: &Options) -> SweepRecord<'a> {
        let plan = sweep.plan();
        let actions = match sweep {
            HostSweep::Planned(plan) => plan
                .signals(options)
                .map(|(step, target)| ActionRecord::planned(step, target))
                .collect(),
            HostSweep::Done(report) => report.actions.iter().map(ActionRecord::of).collect(),
        };
        let report = sweep.report();
        SweepRecord {
            host,
            dry_run: report.is_none(),
            grace_seconds: options.grace.as_secs_f64(),
            min_age_seconds: plan.min_age.as_secs_f64(),
            zombies: plan.zombies(),
            actions,
            left_alone: plan.left_alone.iter().map(LeftAloneRecord::of).collect(),
            reaped: report.and_then(Report::reaped),
            remaining: report.and_then(Report::remaining),
            error: sweep.failure().map(|(_, text)| text),
        }
    }

    /// A record with every column present, for the CSV header.
    fn template() -> serde_json::Result<serde_json::Value> {
        let actions = vec![ActionRecord {
            step: 0,
            signal: "",
            pid: 0,
            name: "",
            create_time: 0.0,
            zombies: 0,
            outcome: "",
            detail: Some(String::new()),
            cmdline: Some(String::new()),
        }];
        let left_alone = vec![LeftAloneRecord {
            pid: 0,
            name: "",
            zombies: 0,
            reason: String::new(),
        }];
        serde_json::to_value(SweepRecord {
            host: "",
            dry_run: false,
            grace_seconds: 0.0,
            min_age_seconds: 0.0,
            zombies: 0,
            actions,
            left_alone,
            reaped: Some(0),
            remaining: Some(0),
            error: Some(String::new()),
        })
    }
}

/// The plan for people: the signals in order, the parents of the first
/// step listed, the later steps only for those that still hold zombies.
fn write_plan(out: &mut dyn Write, plan: &Plan, options: &Options) -> io::Result<()> {
    if !plan.min_age.is_zero() {
        writeln!(
            out,
            "  (only zombies seen in two looks {} apart, --min-age; each later step first looks \
             again that the same zombies are still there)",
            duration::format(plan.min_age)
        )?;
    }
    if plan.targets.is_empty() {
        return writeln!(out, "  nothing to signal");
    }
    writeln!(
        out,
        "  1. CHLD to each parent, so that one with a SIGCHLD handler collects its zombies:"
    )?;
    for t in &plan.targets {
        let command = match t.cmdline.is_empty() {
            true => "<command line unknown>".to_owned(),
            false => t.cmdline.join(" "),
        };
        writeln!(
            out,
            "       pid {} {} ({}): {command}",
            t.pid,
            t.name,
            zombies_text(t.zombies.len())
        )?;
    }
    let grace = duration::format(options.grace);
    if options.kill_parents {
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
fn write_sweep(out: &mut dyn Write, sweep: &HostSweep, options: &Options) -> io::Result<()> {
    let plan = sweep.plan();
    let before = &plan.found;
    if before.parents.is_empty() {
        return writeln!(out, "no zombies");
    }
    let parents = match before.parents.len() {
        1 => "1 parent".to_owned(),
        n => format!("{n} parents"),
    };
    let total = zombies_text(before.total as usize);
    let report = match sweep {
        HostSweep::Planned(plan) => {
            writeln!(out, "{total} under {parents}; the plan:")?;
            write_plan(out, plan, options)?;
            None
        }
        HostSweep::Done(report) => {
            writeln!(out, "{total} under {parents}")?;
            let grace = duration::format(options.grace);
            for action in &report.actions {
                let a = ActionRecord::of(action);
                let wait = if a.step > 1 {
                    format!("after {grace}: ")
                } else {
                    String::new()
                };
                let outcome = a.detail.as_deref().unwrap_or(a.outcome);
                writeln!(
                    out,
                    "  {wait}{} to pid {} {} ({}): {outcome}",
                    a.signal,
                    a.pid,
                    a.name,
                    zombies_text(a.zombies)
                )?;
            }
            Some(report)
        }
    };
    for alone in &plan.left_alone {
        writeln!(
            out,
            "  left alone: pid {} {} ({}): {}",
            alone.pid,
            alone.name,
            zombies_text(alone.zombies),
            alone.reason
        )?;
    }
    let Some(report) = report else {
        return Ok(());
    };
    match (report.reaped(), report.remaining(), sweep.failure()) {
        (Some(reaped), Some(remaining), _) => writeln!(
            out,
            "reaped {reaped} of {}; {remaining} remain",
            zombies_text(plan.zombies())
        ),
        (_, _, Some((_, why))) => writeln!(out, "could not count what was reaped: {why}"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostscope_client::{
        proto::{self, Zombie},
        sweep::report_of as found,
    };

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

    fn options(kill_parents: bool) -> Options {
        Options {
            kill_parents,
            grace: Duration::from_millis(1500),
            step_timeout: Duration::from_secs(10),
            only: Vec::new(),
            min_age: Duration::from_secs(30),
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
            .write_with(&mut out, None, true)
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

    /// Parents of every kind: four to signal, init, and one that exited.
    fn before() -> FindZombiesResponse {
        found(vec![
            group(4321, Some(900.0), &[(10, 1.0), (11, 2.0)]),
            group(99, Some(800.0), &[(20, 1.0)]),
            group(77, Some(700.0), &[(21, 1.0)]),
            group(66, Some(600.0), &[(22, 1.0)]),
            group(1, Some(1.0), &[(12, 1.0)]),
            group(55, None, &[(13, 1.0)]),
        ])
    }

    fn action(plan: &Plan, step: Step, at: usize, zombies: usize, outcome: Outcome) -> Action {
        let t = &plan.targets[at];
        Action {
            step,
            pid: t.pid,
            name: t.name.clone(),
            create_time: t.create_time,
            zombies,
            outcome,
        }
    }

    /// The sweep as people, JSON and the host's failure show it.
    fn shown(
        sweep: &HostSweep,
        options: &Options,
    ) -> (String, String, Option<(&'static str, String)>) {
        let mut out = Vec::new();
        write_sweep(&mut out, sweep, options).expect("write");
        let json = serde_json::to_string(&SweepRecord::of("web1", sweep, options)).expect("json");
        (
            String::from_utf8(out).expect("utf-8"),
            json,
            sweep.failure(),
        )
    }

    #[test]
    fn a_plan_says_what_would_be_sent_and_in_which_order() {
        let mut plan = Plan::of(before());
        plan.min_age = Duration::from_secs(30);
        let sweep = HostSweep::Planned(plan);
        let (text, json, failure) = shown(&sweep, &options(true));
        assert_eq!(
            text,
            r#"7 zombies under 6 parents; the plan:
  (only zombies seen in two looks 30s apart, --min-age; each later step first looks again that the same zombies are still there)
  1. CHLD to each parent, so that one with a SIGCHLD handler collects its zombies:
       pid 4321 p4321 (2 zombies): /bin/p4321 --serve
       pid 99 p99 (1 zombie): /bin/p99 --serve
       pid 77 p77 (1 zombie): /bin/p77 --serve
       pid 66 p66 (1 zombie): /bin/p66 --serve
  2. after 1s 500ms: TERM to each of them that still holds zombies
  3. after another 1s 500ms: KILL to each of them that still does
  4. after another 1s 500ms: look again and count the zombies reaped
  left alone: pid 1 p1 (1 zombie): pid 1 is init: it is never signalled; its zombies stay until it reaps them
  left alone: pid 55 ? (1 zombie): the parent has exited: its zombies pass to init or a subreaper
"#
        );
        assert_eq!(
            json,
            r#"{"host":"web1","dry_run":true,"grace_seconds":1.5,"min_age_seconds":30.0,"zombies":5,"actions":[{"step":1,"signal":"CHLD","pid":4321,"name":"p4321","create_time":900.0,"zombies":2,"outcome":"planned","cmdline":"/bin/p4321 --serve"},{"step":1,"signal":"CHLD","pid":99,"name":"p99","create_time":800.0,"zombies":1,"outcome":"planned","cmdline":"/bin/p99 --serve"},{"step":1,"signal":"CHLD","pid":77,"name":"p77","create_time":700.0,"zombies":1,"outcome":"planned","cmdline":"/bin/p77 --serve"},{"step":1,"signal":"CHLD","pid":66,"name":"p66","create_time":600.0,"zombies":1,"outcome":"planned","cmdline":"/bin/p66 --serve"},{"step":2,"signal":"TERM","pid":4321,"name":"p4321","create_time":900.0,"zombies":2,"outcome":"planned","detail":"only if it still holds zombies","cmdline":"/bin/p4321 --serve"},{"step":2,"signal":"TERM","pid":99,"name":"p99","create_time":800.0,"zombies":1,"outcome":"planned","detail":"only if it still holds zombies","cmdline":"/bin/p99 --serve"},{"step":2,"signal":"TERM","pid":77,"name":"p77","create_time":700.0,"zombies":1,"outcome":"planned","detail":"only if it still holds zombies","cmdline":"/bin/p77 --serve"},{"step":2,"signal":"TERM","pid":66,"name":"p66","create_time":600.0,"zombies":1,"outcome":"planned","detail":"only if it still holds zombies","cmdline":"/bin/p66 --serve"},{"step":3,"signal":"KILL","pid":4321,"name":"p4321","create_time":900.0,"zombies":2,"outcome":"planned","detail":"only if it still holds zombies","cmdline":"/bin/p4321 --serve"},{"step":3,"signal":"KILL","pid":99,"name":"p99","create_time":800.0,"zombies":1,"outcome":"planned","detail":"only if it still holds zombies","cmdline":"/bin/p99 --serve"},{"step":3,"signal":"KILL","pid":77,"name":"p77","create_time":700.0,"zombies":1,"outcome":"planned","detail":"only if it still holds zombies","cmdline":"/bin/p77 --serve"},{"step":3,"signal":"KILL","pid":66,"name":"p66","create_time":600.0,"zombies":1,"outcome":"planned","detail":"only if it still holds zombies","cmdline":"/bin/p66 --serve"}],"left_alone":[{"pid":1,"name":"p1","zombies":1,"reason":"pid 1 is init: it is never signalled; its zombies stay until it reaps them"},{"pid":55,"name":"?","zombies":1,"reason":"the parent has exited: its zombies pass to init or a subreaper"}]}"#
        );
        assert!(failure.is_none());

        let init_only = found(vec![group(1, Some(1.0), &[(12, 1.0)])]);
        let (text, json, _) = shown(&HostSweep::Planned(Plan::of(init_only)), &options(false));
        assert_eq!(
            text,
            r#"1 zombie under 1 parent; the plan:
  nothing to signal
  left alone: pid 1 p1 (1 zombie): pid 1 is init: it is never signalled; its zombies stay until it reaps them
"#
        );
        assert_eq!(
            json,
            r#"{"host":"web1","dry_run":true,"grace_seconds":1.5,"min_age_seconds":0.0,"zombies":0,"actions":[],"left_alone":[{"pid":1,"name":"p1","zombies":1,"reason":"pid 1 is init: it is never signalled; its zombies stay until it reaps them"}]}"#
        );
    }

    #[test]
    fn a_sweep_shows_each_outcome_and_counts_only_the_planned_parents_zombies() {
        let plan = Plan::of(before());
        let actions = vec![
            action(&plan, Step::Chld, 0, 2, Outcome::Sent),
            action(&plan, Step::Chld, 1, 1, Outcome::Skipped(Skip::PidReused)),
            action(
                &plan,
                Step::Chld,
                2,
                1,
                Outcome::Skipped(Skip::Protected {
                    message: "refusing to signal pid 77: that is the agent itself".to_owned(),
                }),
            ),
            action(&plan, Step::Chld, 3, 1, Outcome::Skipped(Skip::ParentGone)),
            action(
                &plan,
                Step::Term,
                0,
                1,
                Outcome::Failed(Error::AccessDenied {
                    pid: Some(4321),
                    message: "operation not permitted".to_owned(),
                }),
            ),
            action(&plan, Step::Kill, 0, 1, Outcome::Sent),
        ];
        // 4321 reaped one and made a new zombie; init's is not counted.
        let after = found(vec![
            group(4321, Some(900.0), &[(11, 2.0), (30, 3.0)]),
            group(1, Some(1.0), &[(12, 1.0)]),
        ]);
        let sweep = HostSweep::Done(Report {
            plan,
            actions,
            after: Some(after),
            look_again: None,
        });
        let (text, json, failure) = shown(&sweep, &options(true));
        assert_eq!(
            text,
            r#"7 zombies under 6 parents
  CHLD to pid 4321 p4321 (2 zombies): sent
  CHLD to pid 99 p99 (1 zombie): parent changed, skipped: its pid now belongs to another process
  CHLD to pid 77 p77 (1 zombie): skipped: refusing to signal pid 77: that is the agent itself
  CHLD to pid 66 p66 (1 zombie): the parent has exited by itself, skipped
  after 1s 500ms: TERM to pid 4321 p4321 (1 zombie): the agent may not signal that process (it must run as the process's user, or as root): operation not permitted
  after 1s 500ms: KILL to pid 4321 p4321 (1 zombie): sent
  left alone: pid 1 p1 (1 zombie): pid 1 is init: it is never signalled; its zombies stay until it reaps them
  left alone: pid 55 ? (1 zombie): the parent has exited: its zombies pass to init or a subreaper
reaped 4 of 5 zombies; 1 remain
"#
        );
        assert_eq!(
            json,
            r#"{"host":"web1","dry_run":false,"grace_seconds":1.5,"min_age_seconds":0.0,"zombies":5,"actions":[{"step":1,"signal":"CHLD","pid":4321,"name":"p4321","create_time":900.0,"zombies":2,"outcome":"sent"},{"step":1,"signal":"CHLD","pid":99,"name":"p99","create_time":800.0,"zombies":1,"outcome":"skipped","detail":"parent changed, skipped: its pid now belongs to another process"},{"step":1,"signal":"CHLD","pid":77,"name":"p77","create_time":700.0,"zombies":1,"outcome":"skipped","detail":"skipped: refusing to signal pid 77: that is the agent itself"},{"step":1,"signal":"CHLD","pid":66,"name":"p66","create_time":600.0,"zombies":1,"outcome":"skipped","detail":"the parent has exited by itself, skipped"},{"step":2,"signal":"TERM","pid":4321,"name":"p4321","create_time":900.0,"zombies":1,"outcome":"failed","detail":"the agent may not signal that process (it must run as the process's user, or as root): operation not permitted"},{"step":3,"signal":"KILL","pid":4321,"name":"p4321","create_time":900.0,"zombies":1,"outcome":"sent"}],"left_alone":[{"pid":1,"name":"p1","zombies":1,"reason":"pid 1 is init: it is never signalled; its zombies stay until it reaps them"},{"pid":55,"name":"?","zombies":1,"reason":"the parent has exited: its zombies pass to init or a subreaper"}],"reaped":4,"remaining":1,"error":"TERM to pid 4321 failed: the agent may not signal that process (it must run as the process's user, or as root): operation not permitted"}"#
        );
        assert_eq!(
            failure,
            Some((
                "access-denied",
                "TERM to pid 4321 failed: the agent may not signal that process (it must run as \
                 the process's user, or as root): operation not permitted"
                    .to_owned()
            ))
        );
    }

    #[test]
    fn a_refusal_for_want_of_the_operator_role_says_what_to_do() {
        let plan = Plan::of(before());
        let refused = Outcome::Failed(Error::OperatorRequired {
            message: "client \"bob\" may not".to_owned(),
        });
        let actions = vec![action(&plan, Step::Chld, 0, 2, refused)];
        let after = Some(plan.found.clone());
        let sweep = HostSweep::Done(Report {
            plan,
            actions,
            after,
            look_again: None,
        });
        let (text, json, failure) = shown(&sweep, &options(false));
        assert_eq!(
            text,
            r#"7 zombies under 6 parents
  CHLD to pid 4321 p4321 (2 zombies): refused: signalling needs the operator role
  left alone: pid 1 p1 (1 zombie): pid 1 is init: it is never signalled; its zombies stay until it reaps them
  left alone: pid 55 ? (1 zombie): the parent has exited: its zombies pass to init or a subreaper
reaped 0 of 5 zombies; 5 remain
"#
        );
        assert_eq!(
            json,
            r#"{"host":"web1","dry_run":false,"grace_seconds":1.5,"min_age_seconds":0.0,"zombies":5,"actions":[{"step":1,"signal":"CHLD","pid":4321,"name":"p4321","create_time":900.0,"zombies":2,"outcome":"failed","detail":"refused: signalling needs the operator role"}],"left_alone":[{"pid":1,"name":"p1","zombies":1,"reason":"pid 1 is init: it is never signalled; its zombies stay until it reaps them"},{"pid":55,"name":"?","zombies":1,"reason":"the parent has exited: its zombies pass to init or a subreaper"}],"reaped":0,"remaining":5,"error":"the agent refused: signalling needs the operator role — start the agent with --operator <your certificate's name> (or list it in [authz] operators); the agent said: client \"bob\" may not"}"#
        );
        let (label, text) = failure.expect("a failure");
        assert_eq!(label, "operator-required");
        assert!(
            text.contains("--operator") && text.contains("\"bob\""),
            "{text}"
        );
    }

    #[test]
    fn a_failed_look_again_says_the_count_is_unknown() {
        let plan = Plan::of(before());
        let actions = vec![action(&plan, Step::Chld, 0, 2, Outcome::Sent)];
        let sweep = HostSweep::Done(Report {
            plan,
            actions,
            after: None,
            look_again: Some(Error::Timeout {
                message: "looking again: no answer within 10s".to_owned(),
            }),
        });
        let (text, json, failure) = shown(&sweep, &options(false));
        assert_eq!(
            text,
            r#"7 zombies under 6 parents
  CHLD to pid 4321 p4321 (2 zombies): sent
  left alone: pid 1 p1 (1 zombie): pid 1 is init: it is never signalled; its zombies stay until it reaps them
  left alone: pid 55 ? (1 zombie): the parent has exited: its zombies pass to init or a subreaper
could not count what was reaped: looking again after the signals: looking again: no answer within 10s
"#
        );
        assert_eq!(
            json,
            r#"{"host":"web1","dry_run":false,"grace_seconds":1.5,"min_age_seconds":0.0,"zombies":5,"actions":[{"step":1,"signal":"CHLD","pid":4321,"name":"p4321","create_time":900.0,"zombies":2,"outcome":"sent"}],"left_alone":[{"pid":1,"name":"p1","zombies":1,"reason":"pid 1 is init: it is never signalled; its zombies stay until it reaps them"},{"pid":55,"name":"?","zombies":1,"reason":"the parent has exited: its zombies pass to init or a subreaper"}],"error":"looking again after the signals: looking again: no answer within 10s"}"#
        );
        assert_eq!(failure.map(|(label, _)| label), Some("timeout"));
    }

    #[test]
    fn the_deadline_covers_every_step_of_a_sweep() {
        let args = |yes: bool, kill_parents: bool| ZombiesArgs {
            reap: true,
            yes,
            kill_parents,
            grace: Duration::from_secs(5),
            min_age: Duration::from_secs(30),
            ppid: Vec::new(),
            targets: Default::default(),
        };
        let t = Duration::from_secs(10);
        // The plan: connect, a look, --min-age, a look.
        assert_eq!(
            host_deadline(&args(false, true), t),
            Duration::from_secs(60)
        );
        // CHLD: connect, two looks, the round and its look, one to spare,
        // a grace and --min-age.
        assert_eq!(
            host_deadline(&args(true, false), t),
            Duration::from_secs(95)
        );
        assert_eq!(
            host_deadline(&args(true, true), t),
            Duration::from_secs(145)
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
