//! The watch's loop: [`follow`] prints what a stream of [`WatchItem`]s
//! yields and decides when to stop, from any stream and any stop signal,
//! so that its rules are tested without agents.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    io::Write,
};

use tokio_stream::{Stream, StreamExt};

use super::{
    plan::Plan,
    print::{event_record, plural, print_event},
};
use crate::{
    args::Output,
    duration,
    fanout::{Io, Status},
    output::Printer,
};
use hostscope_client::{Error, fleet::WatchItem, proto::ProcessEventKind as Kind};

/// The hosts watched, as the output needs them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hosts {
    /// How many.
    pub(super) total: usize,
    /// The widest host name, when there is more than one host and lines
    /// carry a host column.
    pub(super) width: Option<usize>,
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
pub(super) async fn follow(
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
    // `-o json`: every event's record, as an element of one array, written
    // as it comes and closed at the end.
    let mut array = Printer::new(Output::Json, hosts.total, &serde_json::Value::Null);
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
                    let record = event_record(&host.name, &event)?;
                    array.records(io.out, [Ok(record)])?;
                    io.out.flush()?;
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
        array.finish(io.out)?;
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

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, sync::Arc, time::Duration};

    use super::*;
    use crate::watch::testing::{TIME, event, plan};
    use hostscope_client::{fleet::HostSpec, proto};

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
            buffer_budget: Some(usize::MAX),
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
