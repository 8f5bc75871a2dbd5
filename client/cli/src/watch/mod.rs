//! `hostscope watch`: process events from one host or a whole fleet, one
//! line (or one JSON object) each, the moment they arrive, until Ctrl-C,
//! `--count` or `--for` ends the watch.
//!
//! The flags are checked and resolved into a [`Plan`] (ripgrep's second
//! stage) before any host is asked. [`Fleet::watch`] merges the hosts'
//! streams and reconnects by itself; this module prints what it yields and
//! decides when to stop: [`follow`] takes any stream of [`WatchItem`]s and
//! any stop signal, so that its rules are tested without agents.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    io::Write,
    time::Duration,
};

use anyhow::{Context, bail};
use tokio_stream::{Stream, StreamExt};

use super::{
    args::{Output, WatchArgs},
    duration,
    fanout::{Io, Status},
    format, output,
};
use hostscope_client::{
    Error,
    fleet::{Fleet, HostSpec, WatchItem},
    proto::{self, EnumName, ProcessEventKind as Kind, Signal},
};

/// The kinds watched when `--events` is not given: everything but
/// samples, which need an interval.
const DEFAULT_KINDS: [Kind; 4] = [Kind::Started, Kind::Exec, Kind::Exited, Kind::Zombie];

// === Plan ===

/// What the flags ask for, checked: the request every host gets, how to
/// print, and when to stop.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    request: proto::WatchProcessesRequest,
    /// One JSON object per event rather than a line for people.
    ndjson: bool,
    /// Those objects collected and printed as one array at the end (`-o
    /// json`, which needs an end: `--count` or `--for`).
    json: bool,
    /// Stop after this many events.
    count: Option<u64>,
    /// Stop after this long.
    duration: Option<Duration>,
}

impl Plan {
    /// Resolves the flags, refusing the combinations that cannot work.
    fn resolve(args: &WatchArgs, output: Option<Output>) -> anyhow::Result<Plan> {
        let ends = args.count.is_some() || args.duration.is_some();
        let (ndjson, json) = match output.unwrap_or(Output::Table) {
            Output::Table => (false, false),
            Output::Ndjson => (true, false),
            Output::Json if ends => (true, true),
            Output::Json => bail!(
                "watch prints --output json only with --count N or --for DURATION: without \
                 them a watch never ends, so there is no last record to close the array with; \
                 add one, or use --output ndjson (one JSON object per event)"
            ),
            Output::Csv => bail!(
                "watch cannot print --output csv: use --output ndjson (one JSON object per \
                 event), json with --count or --for, or table"
            ),
        };
        let mut kinds: Vec<Kind> = if args.events.is_empty() {
            DEFAULT_KINDS.to_vec()
        } else {
            args.events.clone()
        };
        if args.sample.is_some() && !kinds.contains(&Kind::Sample) {
            kinds.push(Kind::Sample);
        }
        if kinds.contains(&Kind::Sample) && args.sample.is_none() {
            bail!("--events sample needs --sample DURATION: how often to sample, such as 1s");
        }
        let mut seen = HashSet::new();
        kinds.retain(|k| seen.insert(*k));
        let filter = proto::ProcessFilter {
            pids: args.pid.clone(),
            name: args.name.clone().unwrap_or_default(),
            username: args.user.clone().unwrap_or_default(),
            ..Default::default()
        };
        let request = proto::WatchProcessesRequest {
            filter: (filter != proto::ProcessFilter::default()).then_some(filter),
            descendants_of: args.children_of,
            kinds: kinds.iter().map(|k| *k as i32).collect(),
            sample_interval: args.sample.map(|d| d.as_secs_f64()),
        };
        Ok(Plan {
            request,
            ndjson,
            json,
            count: args.count,
            duration: args.duration,
        })
    }
}

// === The watch ===

/// Watches every host of `fleet` as `args` asks and prints each event as
/// it arrives, until Ctrl-C or SIGTERM (whose handlers stay installed in
/// the process afterwards, as Tokio's do), `--count` or `--for`. Returns
/// `SomeFailed` when a host refused the watch.
pub async fn watch(
    fleet: &Fleet,
    args: WatchArgs,
    output: Option<Output>,
    io: &mut Io<'_>,
) -> anyhow::Result<Status> {
    let plan = Plan::resolve(&args, output)?;
    let stop = stop_signal()?;
    let hosts = Hosts {
        total: fleet.len(),
        width: (fleet.len() > 1).then(|| fleet.hosts().map(|h| h.name.len()).max().unwrap_or(0)),
    };
    let items = fleet.watch(plan.request.clone());
    follow(items, stop, &plan, &hosts, io).await
}

/// Resolves when the user asks the watch to end: Ctrl-C (SIGINT) or
/// SIGTERM. The handlers are installed before any host is asked, so that
/// a signal that comes early is not lost.
fn stop_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// The hosts watched, as the output needs them.
#[derive(Debug, Clone, Copy)]
struct Hosts {
    /// How many.
    total: usize,
    /// The widest host name, when there is more than one host and lines
    /// carry a host column.
    width: Option<usize>,
}

/// What the watch has seen of each host, by address.
#[derive(Debug, Default)]
struct Tally {
    /// Events printed, lagged notices not counted.
    events: u64,
    /// Hosts whose stream has been open at least once.
    connected: HashSet<String>,
    /// Hosts whose stream is open now.
    open: HashSet<String>,
    /// Per host, the last error said since its stream was last open: a
    /// host that stays down for an hour says so once, not at every retry.
    said: HashMap<String, String>,
    /// Hosts that refused the watch for good.
    failed: HashSet<String>,
    /// The names of hosts that reported trouble, by address, so that those
    /// never watched can be named at the end.
    names: HashMap<String, String>,
}

/// Prints `items` until `stop` resolves, `plan`'s count or duration is
/// reached, every host has failed, or the stream ends. A single host that
/// cannot be watched from the start fails at once, as other commands do;
/// once it has been watched, it is reconnected like a fleet's hosts.
async fn follow(
    items: impl Stream<Item = WatchItem>,
    stop: impl Future<Output = ()>,
    plan: &Plan,
    hosts: &Hosts,
    io: &mut Io<'_>,
) -> anyhow::Result<Status> {
    let mut items = std::pin::pin!(items);
    let mut stop = std::pin::pin!(stop);
    let mut deadline = std::pin::pin!(async {
        match plan.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    });
    let mut tally = Tally::default();
    // `-o json`: every event's record, written as one array at the end.
    let mut collected = Vec::new();
    loop {
        let item = tokio::select! {
            () = &mut stop => break,
            () = &mut deadline => break,
            item = items.next() => item,
        };
        let Some(item) = item else { break };
        match item {
            WatchItem::Event { host, event } => {
                if plan.json {
                    collected.push(event_record(&host.name, &event)?);
                } else {
                    print_event(io.out, &host, &event, plan.ndjson, hosts.width)?;
                }
                if event.kind != Kind::Lagged as i32 {
                    tally.events += 1;
                }
                if plan.count.is_some_and(|n| tally.events >= n) {
                    break;
                }
            }
            WatchItem::Connected { host, reconnected } => {
                tally.connected.insert(host.address.clone());
                tally.open.insert(host.address.clone());
                tally.said.remove(&host.address);
                if reconnected {
                    writeln!(io.err, "{}: reconnected", host.name)?;
                }
            }
            WatchItem::Interrupted {
                host,
                error,
                retry_in,
            } => {
                if hosts.total == 1 && !tally.connected.contains(&host.address) {
                    return give_up(io.err, error.as_ref());
                }
                tally.names.insert(host.address.clone(), host.name.clone());
                let was_open = tally.open.remove(&host.address);
                let why = error.map_or_else(|| "agent shut down".to_owned(), |e| e.to_string());
                if !was_open && tally.said.get(&host.address) == Some(&why) {
                    continue;
                }
                let retry_in = duration::format(retry_in);
                if was_open {
                    writeln!(
                        io.err,
                        "{}: stream interrupted ({why}), reconnecting in {retry_in}",
                        host.name
                    )?;
                } else {
                    writeln!(io.err, "{}: {why}; retrying in {retry_in}", host.name)?;
                }
                tally.said.insert(host.address.clone(), why);
            }
            WatchItem::Failed { host, error } => {
                if hosts.total == 1 && !tally.connected.contains(&host.address) {
                    return give_up(io.err, Some(&error));
                }
                writeln!(io.err, "{}: {error}", host.name)?;
                tally.failed.insert(host.address.clone());
                tally.names.insert(host.address.clone(), host.name.clone());
                if tally.failed.len() >= hosts.total {
                    break;
                }
            }
        }
    }
    if plan.json {
        output::write_pretty(io.out, &collected)?;
        io.out.flush()?;
    }
    let watched = tally.connected.len();
    let never = hosts.total.saturating_sub(watched);
    if never == 0 && io.quiet {
        // --quiet: no closing count when every host was watched.
    } else if never == 0 {
        writeln!(
            io.err,
            "{} from {}",
            plural(tally.events, "event"),
            plural(hosts.total as u64, "host")
        )?;
    } else {
        // A host that was never watched is no host watched: it counts as
        // failed, by name where it said what went wrong.
        let mut names: Vec<&str> = tally
            .names
            .iter()
            .filter(|(address, _)| !tally.connected.contains(*address))
            .map(|(_, name)| name.as_str())
            .collect();
        names.sort_unstable();
        let named = match names.is_empty() {
            true => String::new(),
            false => format!(" ({})", names.join(", ")),
        };
        writeln!(
            io.err,
            "{} from {watched} of {}; {never} never watched{named}",
            plural(tally.events, "event"),
            plural(hosts.total as u64, "host"),
        )?;
    }
    if tally.failed.is_empty() && never == 0 {
        Ok(Status::Answered)
    } else {
        Ok(Status::SomeFailed)
    }
}

/// Ends the watch of a single host that could not be watched at all, with
/// its error as other commands print it.
fn give_up(err: &mut dyn Write, error: Option<&Error>) -> anyhow::Result<Status> {
    match error {
        Some(e) => writeln!(err, "error: {e}")?,
        None => writeln!(err, "error: the agent ended the watch at once")?,
    }
    Ok(Status::SomeFailed)
}

/// "1 event", "3 events".
fn plural(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

// === Printing ===

/// Writes one event, as a line or a JSON object, and flushes it: a watch
/// is read as it happens, often through a pipe.
fn print_event(
    out: &mut dyn Write,
    host: &HostSpec,
    event: &proto::ProcessEvent,
    ndjson: bool,
    width: Option<usize>,
) -> anyhow::Result<()> {
    if ndjson {
        serde_json::to_writer(&mut *out, &event_record(&host.name, event)?)?;
        out.write_all(b"\n")?;
    } else {
        let host = width.map(|w| (host.name.as_str(), w));
        writeln!(out, "{}", line(event, host))?;
    }
    out.flush()?;
    Ok(())
}

/// An event as a JSON record. An event without a command line (a sample,
/// an exit, a kernel thread) leaves `cmdline` out, as every other field
/// the agent did not send is left out, rather than reading as `[]`.
fn event_record(host: &str, event: &proto::ProcessEvent) -> anyhow::Result<serde_json::Value> {
    let mut record = output::record(host, event)?;
    if event.cmdline.is_empty()
        && let serde_json::Value::Object(map) = &mut record
    {
        map.shift_remove("cmdline");
    }
    Ok(record)
}

/// An event as a line for people: time, host (with the column's width,
/// when several hosts are watched), event, pid, name and details.
fn line(event: &proto::ProcessEvent, host: Option<(&str, usize)>) -> String {
    let kind = Kind::from_wire(event.kind);
    let lagged = kind == Some(Kind::Lagged);
    let mut line = clock(event.time);
    if let Some((name, width)) = host {
        line.push_str(&format!("  {name:<width$}"));
    }
    let kind_name = kind.map_or_else(|| format!("event{}", event.kind), |k| k.short_name());
    let pid = if lagged {
        "-".to_owned()
    } else {
        event.pid.to_string()
    };
    let name = match (&event.name, lagged) {
        (Some(name), false) => name.as_str(),
        (None, false) => "?",
        (_, true) => "-",
    };
    // A kernel name is at most 15 bytes on Linux: the column fits them all.
    line.push_str(&format!("  {kind_name:<7} {pid:>7}  {name:<15}  "));
    line.push_str(&details(event, kind));
    line.trim_end().to_owned()
}

/// What an event of `kind` has to say beyond its pid and name.
fn details(event: &proto::ProcessEvent, kind: Option<Kind>) -> String {
    let ppid = event.ppid.map_or_else(|| "?".to_owned(), |p| p.to_string());
    match kind {
        Some(Kind::Started) => {
            let mut parts = vec![format!("ppid={ppid}")];
            if let Some(user) = &event.username {
                parts.push(format!("user={user}"));
            }
            if !event.cmdline.is_empty() {
                parts.push(format!("cmd={}", event.cmdline.join(" ")));
            }
            parts.join(" ")
        }
        Some(Kind::Exec) => event.cmdline.join(" "),
        Some(Kind::Exited) => exit(event.exit_code, event.exit_signal),
        Some(Kind::Zombie) => format!("ppid={ppid} — its parent has not reaped it"),
        Some(Kind::Sample) => match &event.sample {
            Some(s) => format!(
                "cpu {} rss {} threads {} fds {} read {} write {}",
                known(s.cpu_percent.map(|c| format!("{c:.1}%"))),
                known(s.rss.map(format::bytes)),
                known(s.num_threads),
                known(s.num_fds),
                known(s.read_bytes_per_sec.map(rate)),
                known(s.write_bytes_per_sec.map(rate))
            ),
            None => "no measurements".to_owned(),
        },
        Some(Kind::Lagged) => format!("events lost: at least {}", plural(event.dropped, "event")),
        Some(Kind::Unspecified) | None => String::new(),
    }
}

/// How a process ended: "exit 3", "killed by SIGKILL", or "exit ?" where
/// the agent could not tell (polling mode).
fn exit(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        // Only numbers that Linux, the BSDs and macOS agree on are named:
        // the event does not say which platform sent it.
        (_, Some(signal)) => match Signal::from_portable_number(signal) {
            Some(name) => format!("killed by SIG{name}"),
            None => format!("killed by signal {signal}"),
        },
        (Some(code), None) => format!("exit {code}"),
        (None, None) => "exit ?".to_owned(),
    }
}

/// A measurement, or "?" where the agent could not read it.
fn known(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "?".to_owned(), |v| v.to_string())
}

/// Bytes per second as "1.2K/s".
fn rate(bytes_per_sec: f64) -> String {
    let bytes = if bytes_per_sec.is_finite() && bytes_per_sec > 0.0 {
        bytes_per_sec.round() as u64
    } else {
        0
    };
    format!("{}/s", format::bytes(bytes))
}

/// The local time of day with milliseconds, "18:04:05.123"; events come
/// in bursts, and their order within a second matters.
fn clock(epoch: f64) -> String {
    // Rounded to the millisecond first, so that .9996 carries into the
    // next second rather than printing as .1000; then `format::datetime`,
    // which knows the local zone, gives the time of day after the date.
    let millis = (epoch * 1000.0).round();
    let (seconds, fraction) = (millis.div_euclid(1000.0), millis.rem_euclid(1000.0));
    let datetime = format::datetime(seconds);
    match datetime.split_once(' ') {
        Some((_, time)) => format!("{time}.{:03}", fraction as u32),
        None => format::datetime(epoch),
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, sync::Arc};

    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};

    /// An event at 18:04:05.123 local time, give or take the zone.
    const TIME: f64 = 1_767_632_645.123;

    fn event(kind: Kind, pid: u32, name: &str) -> proto::ProcessEvent {
        proto::ProcessEvent {
            kind: kind as i32,
            pid,
            time: TIME,
            name: Some(name.to_owned()),
            ..Default::default()
        }
    }

    /// The line without its time, which depends on the local zone.
    fn shown(event: &proto::ProcessEvent, host: Option<(&str, usize)>) -> String {
        let line = line(event, host);
        line.strip_prefix(&clock(event.time))
            .unwrap_or_else(|| panic!("no time first: {line}"))
            .to_owned()
    }

    #[test]
    fn the_time_has_milliseconds() {
        let time = clock(TIME);
        assert_eq!(time.len(), "18:04:05.123".len(), "{time}");
        assert!(time.ends_with(":05.123"), "{time}");
        assert!(clock(TIME.floor() + 0.9996).ends_with(":06.000"));
        assert_eq!(clock(-5.0), "-5");
    }

    #[test]
    fn each_kind_reads_as_a_line() {
        let mut started = event(Kind::Started, 4321, "sh");
        started.ppid = Some(1);
        started.username = Some("root".to_owned());
        started.cmdline = vec!["sh".to_owned(), "-c".to_owned(), "exit 7".to_owned()];
        assert_eq!(
            shown(&started, None),
            "  started    4321  sh               ppid=1 user=root cmd=sh -c exit 7"
        );

        let mut exec = event(Kind::Exec, 4321, "sleep");
        exec.cmdline = vec!["sleep".to_owned(), "30".to_owned()];
        assert_eq!(
            shown(&exec, None),
            "  exec       4321  sleep            sleep 30"
        );

        let mut exited = event(Kind::Exited, 4321, "sh");
        exited.exit_code = Some(3);
        assert_eq!(
            shown(&exited, None),
            "  exited     4321  sh               exit 3"
        );
        exited.exit_signal = Some(9);
        assert!(shown(&exited, None).ends_with("  killed by SIGKILL"));
        exited.exit_signal = Some(10);
        assert!(shown(&exited, None).ends_with("  killed by signal 10"));
        let unknown = event(Kind::Exited, 4321, "sh");
        assert!(shown(&unknown, None).ends_with("  exit ?"));

        let mut zombie = event(Kind::Zombie, 4400, "worker");
        zombie.ppid = Some(4321);
        assert_eq!(
            shown(&zombie, Some(("web1", 6))),
            "  web1    zombie     4400  worker           ppid=4321 — its parent has not reaped it"
        );

        let mut sample = event(Kind::Sample, 4321, "busy");
        sample.sample = Some(proto::ProcessSample {
            cpu_percent: Some(98.66),
            rss: Some(12 * 1024 * 1024),
            num_threads: Some(1),
            num_fds: None,
            read_bytes_per_sec: Some(0.0),
            write_bytes_per_sec: Some(1228.8),
        });
        assert_eq!(
            shown(&sample, None),
            "  sample     4321  busy             cpu 98.7% rss 12M threads 1 fds ? read 0B/s \
             write 1.2K/s"
        );

        let lagged = proto::ProcessEvent {
            kind: Kind::Lagged as i32,
            time: TIME,
            dropped: 12,
            ..Default::default()
        };
        assert_eq!(
            shown(&lagged, None),
            "  lagged        -  -                events lost: at least 12 events"
        );
    }

    fn args(extra: &[&str]) -> (WatchArgs, Option<Output>) {
        let mut all = vec!["hostscope", "watch"];
        all.extend(extra);
        let cli = Cli::try_parse_from(all).expect("valid flags");
        match cli.command {
            Command::Watch(args) => (args, cli.global.output),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn plan(extra: &[&str]) -> anyhow::Result<Plan> {
        let (args, output) = args(extra);
        Plan::resolve(&args, output)
    }

    fn kinds(plan: &Plan) -> Vec<String> {
        let kind = |k: &i32| Kind::from_wire(*k).map(|k| k.short_name());
        plan.request.kinds.iter().filter_map(kind).collect()
    }

    #[test]
    fn flags_become_the_request() {
        let p = plan(&[]).expect("defaults");
        assert_eq!(kinds(&p), ["started", "exec", "exited", "zombie"]);
        assert_eq!(p.request.filter, None);
        assert!(!p.ndjson && p.count.is_none() && p.duration.is_none());

        let p = plan(&[
            "--children-of",
            "1234",
            "--events",
            "exited,zombie,exited",
            "--name",
            "nginx*",
            "--user",
            "www-data",
            "--pid",
            "7,8",
            "--count",
            "3",
            "--for",
            "1m",
            "-o",
            "ndjson",
        ])
        .expect("every flag");
        assert_eq!(kinds(&p), ["exited", "zombie"]);
        assert_eq!(p.request.descendants_of, Some(1234));
        let filter = p.request.filter.clone().expect("a filter");
        assert_eq!(
            (filter.pids, filter.name.as_str(), filter.username.as_str()),
            (vec![7, 8], "nginx*", "www-data")
        );
        assert!(p.ndjson);
        assert_eq!(
            (p.count, p.duration),
            (Some(3), Some(Duration::from_secs(60)))
        );

        // --sample adds samples to whatever else is watched.
        let p = plan(&["--pid", "4321", "--sample", "500ms"]).expect("sample");
        assert_eq!(kinds(&p), ["started", "exec", "exited", "zombie", "sample"]);
        assert_eq!(p.request.sample_interval, Some(0.5));
        let p = plan(&["--events", "sample", "--sample", "1s"]).expect("only samples");
        assert_eq!(kinds(&p), ["sample"]);
    }

    #[test]
    fn flags_that_cannot_work_are_refused_with_what_to_do() {
        let e = plan(&["-o", "json"]).expect_err("json").to_string();
        assert!(e.contains("--count N or --for DURATION"), "{e}");
        assert!(e.contains("use --output ndjson"), "{e}");
        assert!(plan(&["-o", "csv"]).is_err());
        assert!(plan(&["-o", "csv", "--count", "3"]).is_err());
        let e = plan(&["--events", "sample"]).expect_err("no interval");
        assert!(e.to_string().contains("needs --sample DURATION"), "{e}");

        let clap_error = |extra: &[&str]| {
            let mut all = vec!["hostscope", "watch"];
            all.extend(extra);
            Cli::try_parse_from(all).expect_err("invalid").to_string()
        };
        let e = clap_error(&["--events", "exited,undead"]);
        assert!(
            e.contains("events: started, exec, exited, zombie, sample"),
            "{e}"
        );
        assert!(clap_error(&["--events", "lagged"]).contains("always printed"));
        assert!(clap_error(&["--sample", "10ms"]).contains("between 100ms and 1 day"));
        assert!(clap_error(&["--sample", "often"]).contains("such as 500ms"));
        assert!(clap_error(&["--count", "0"]).contains("at least 1 event"));
        assert!(clap_error(&["--for", "0s"]).contains("longer than 0"));
    }

    // === follow ===

    fn host(name: &str) -> Arc<HostSpec> {
        Arc::new(HostSpec {
            name: name.to_owned(),
            address: format!("{name}:7443"),
            server_name: None,
            labels: BTreeMap::new(),
            groups: Vec::new(),
        })
    }

    fn exited(host: &Arc<HostSpec>, pid: u32) -> WatchItem {
        let mut event = event(Kind::Exited, pid, "sh");
        event.exit_code = Some(7);
        WatchItem::Event {
            host: Arc::clone(host),
            event,
        }
    }

    fn refused(host: &Arc<HostSpec>) -> Error {
        Error::ConnectionRefused {
            endpoint: host.address.clone(),
        }
    }

    /// `items`, then nothing ever again, as a fleet's stream goes.
    fn endless(items: Vec<WatchItem>) -> impl Stream<Item = WatchItem> {
        tokio_stream::iter(items).chain(tokio_stream::pending())
    }

    /// Runs [`follow`] over `items` with `stop` as the signal and the flags
    /// `extra`: (status, stdout, stderr).
    fn run(
        items: impl Stream<Item = WatchItem>,
        stop: impl Future<Output = ()>,
        extra: &[&str],
        hosts: usize,
    ) -> (Status, String, String) {
        let plan = plan(extra).expect("valid flags");
        let hosts = Hosts {
            total: hosts,
            width: (hosts > 1).then_some(4),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut io = Io {
            out: &mut out,
            err: &mut err,
            stdin: &mut std::io::empty(),
            width: None,
            progress: false,
            no_headers: false,
            quiet: false,
            interrupt: Default::default(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let status = runtime
            .block_on(follow(items, stop, &plan, &hosts, &mut io))
            .expect("no local error");
        let text = |b: Vec<u8>| String::from_utf8(b).expect("utf-8");
        (status, text(out), text(err))
    }

    #[test]
    fn json_with_a_count_is_one_array_and_samples_carry_no_empty_cmdline() {
        let web1 = host("web1");
        let sample = WatchItem::Event {
            host: Arc::clone(&web1),
            event: proto::ProcessEvent {
                kind: Kind::Sample as i32,
                pid: 42,
                time: TIME,
                sample: Some(proto::ProcessSample {
                    rss: Some(4096),
                    ..Default::default()
                }),
                ..Default::default()
            },
        };
        let items = vec![
            WatchItem::Connected {
                host: Arc::clone(&web1),
                reconnected: false,
            },
            sample,
            exited(&web1, 10),
            exited(&web1, 11),
        ];
        let flags = ["--count", "2", "-o", "json"];
        let (status, out, err) = run(endless(items), std::future::pending(), &flags, 1);
        assert_eq!(status, Status::Answered);
        let array: Vec<serde_json::Value> = serde_json::from_str(&out).expect("one JSON array");
        assert_eq!(array.len(), 2, "{out}");
        assert_eq!(array[0]["kind"], "sample");
        assert_eq!(array[0]["sample"]["rss"], 4096);
        assert!(array[0].get("cmdline").is_none(), "{out}");
        assert_eq!(array[1]["pid"], 10);
        assert_eq!(err, "2 events from 1 host\n");
    }

    #[test]
    fn count_ends_the_watch_and_lagged_notices_are_not_counted() {
        let web1 = host("web1");
        let lagged = WatchItem::Event {
            host: Arc::clone(&web1),
            event: proto::ProcessEvent {
                kind: Kind::Lagged as i32,
                dropped: 3,
                ..Default::default()
            },
        };
        let items = vec![
            WatchItem::Connected {
                host: Arc::clone(&web1),
                reconnected: false,
            },
            exited(&web1, 10),
            lagged,
            exited(&web1, 11),
            exited(&web1, 12),
        ];
        let flags = ["--count", "2", "-o", "ndjson"];
        let (status, out, err) = run(endless(items), std::future::pending(), &flags, 1);
        assert_eq!(status, Status::Answered);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert_eq!(
            serde_json::to_string(&lines[0]).expect("json"),
            format!(
                r#"{{"host":"web1","kind":"exited","pid":10,"time":{TIME},"name":"sh","exit_code":7,"dropped":0}}"#
            )
        );
        assert_eq!(lines[1]["kind"], "lagged");
        assert_eq!(err, "2 events from 1 host\n");
    }

    #[test]
    fn a_fleet_says_what_its_hosts_do() {
        let (web1, web2) = (host("web1"), host("web2"));
        let interrupted = |error: Option<Error>| WatchItem::Interrupted {
            host: Arc::clone(&web1),
            error,
            retry_in: Duration::from_secs(2),
        };
        let items = vec![
            WatchItem::Connected {
                host: Arc::clone(&web1),
                reconnected: false,
            },
            exited(&web1, 10),
            interrupted(None),
            interrupted(Some(refused(&web1))),
            // The same error again, at the next retry: said once.
            interrupted(Some(refused(&web1))),
            WatchItem::Connected {
                host: Arc::clone(&web1),
                reconnected: true,
            },
            WatchItem::Failed {
                host: Arc::clone(&web2),
                error: Error::InvalidArgument {
                    message: "bad glob".to_owned(),
                },
            },
        ];
        // A stream that ends (a fleet's never does) ends the watch too.
        let items = tokio_stream::iter(items);
        let (status, out, err) = run(items, std::future::pending(), &[], 2);
        assert_eq!(status, Status::SomeFailed);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("  web1  exited "), "{out}");
        assert_eq!(
            err,
            "web1: stream interrupted (agent shut down), reconnecting in 2s\n\
             web1: web1:7443 refused the connection: is hostscope-agent running and listening \
             there?; retrying in 2s\n\
             web1: reconnected\n\
             web2: invalid argument: bad glob\n\
             1 event from 1 of 2 hosts; 1 never watched (web2)\n"
        );
    }

    #[test]
    fn a_single_host_that_cannot_be_watched_fails_at_once() {
        let a = host("a");
        let items = vec![WatchItem::Interrupted {
            host: Arc::clone(&a),
            error: Some(refused(&a)),
            retry_in: Duration::from_millis(500),
        }];
        let (status, out, err) = run(endless(items), std::future::pending(), &[], 1);
        assert_eq!((status, out.as_str()), (Status::SomeFailed, ""));
        assert_eq!(
            err,
            "error: a:7443 refused the connection: is hostscope-agent running and listening \
             there?\n"
        );
        // A fleet keeps trying, and ends when every host has failed.
        let (b, c) = (host("b"), host("c"));
        let items = vec![
            WatchItem::Interrupted {
                host: Arc::clone(&b),
                error: Some(refused(&b)),
                retry_in: Duration::from_millis(500),
            },
            WatchItem::Failed {
                host: Arc::clone(&b),
                error: refused(&b),
            },
            WatchItem::Failed {
                host: Arc::clone(&c),
                error: refused(&c),
            },
        ];
        let (status, _, err) = run(endless(items), std::future::pending(), &[], 2);
        assert_eq!(status, Status::SomeFailed);
        assert!(
            err.starts_with("b: b:7443 refused the connection: is hostscope-agent running and listening there?; retrying in 500ms\n"),
            "{err}"
        );
        assert!(
            err.ends_with("0 events from 0 of 2 hosts; 2 never watched (b, c)\n"),
            "{err}"
        );
    }

    #[test]
    fn the_signal_and_for_end_the_watch() {
        // Stopped before any host was watched: nothing was watched.
        let (status, out, err) = run(endless(Vec::new()), async {}, &[], 1);
        assert_eq!(
            (status, out.as_str(), err.as_str()),
            (
                Status::SomeFailed,
                "",
                "0 events from 0 of 1 host; 1 never watched\n"
            )
        );
        let web1 = host("web1");
        let watched = endless(vec![WatchItem::Connected {
            host: web1,
            reconnected: false,
        }]);
        let for_a_while = ["--for", "20ms"];
        assert_eq!(
            run(watched, std::future::pending(), &for_a_while, 1),
            (
                Status::Answered,
                String::new(),
                "0 events from 1 host\n".to_owned()
            )
        );
    }

    #[test]
    fn a_host_never_watched_is_not_counted_and_fails_the_watch() {
        let (web1, web2, web3) = (host("web1"), host("web2"), host("web3"));
        let connected = |h: &Arc<HostSpec>| WatchItem::Connected {
            host: Arc::clone(h),
            reconnected: false,
        };
        let items = vec![
            connected(&web1),
            connected(&web2),
            WatchItem::Interrupted {
                host: Arc::clone(&web3),
                error: Some(refused(&web3)),
                retry_in: Duration::from_millis(500),
            },
            exited(&web1, 10),
        ];
        let (status, _, err) = run(endless(items), std::future::pending(), &["--count", "1"], 3);
        assert_eq!(status, Status::SomeFailed, "{err}");
        assert!(
            err.ends_with("1 event from 2 of 3 hosts; 1 never watched (web3)\n"),
            "{err}"
        );
    }
}
