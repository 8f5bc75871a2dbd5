//! How a watch prints an event: a line for people, or a JSON record, each
//! flushed as it comes.

use std::io::Write;

use crate::{format, output};
use hostscope_client::{
    fleet::HostSpec,
    proto::{self, EnumName, ProcessEventKind as Kind, Signal},
};

/// "1 event", "3 events".
pub(super) fn plural(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// Writes one event, as a line or a JSON object, and flushes it: a watch
/// is read as it happens, often through a pipe.
pub(super) fn print_event(
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
pub(super) fn event_record(
    host: &str,
    event: &proto::ProcessEvent,
) -> anyhow::Result<serde_json::Value> {
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
    use super::*;
    use crate::watch::testing::{TIME, event};

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
}
