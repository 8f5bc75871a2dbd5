//! `hostscope watch`'s flags as typed, with their validators and its
//! `--help` text: the first stage for the watch, which `crate::watch`
//! resolves into its plan.

use std::time::Duration;

use clap::Args;
use hostscope_client::proto::{EnumName, ProcessEventKind as Kind};

use crate::{
    args::{self, Targets},
    duration,
};

/// `hostscope watch --help`, after the flags.
pub const EXAMPLES: &str = "\
Events: started (a process was created: its parent, user and command line), exec (it
replaced its program: the new command line), exited (its exit code, or the signal that
ended it), zombie (it exited and its parent has not reaped it), sample (every --sample
interval, for each matching live process: CPU, memory, threads, fds and I/O rates). A
lagged line says that events were lost, and at least how many: this watcher fell behind,
or the kernel's event buffer overflowed on the agent. The watch goes on.

Each line: when it happened (local time, with milliseconds), the host (when more than one
is watched), the event, the pid, the name and the details. -o ndjson prints one JSON object
per event instead: host, then kind, pid, time (seconds since the epoch), ppid, name,
cmdline, username, create_time, exit_code, exit_signal, sample, dropped (what the agent
did not send is left out). -o json prints those objects as one array when the watch ends,
so it needs --count or --for; csv is refused.

The watch runs until Ctrl-C (or SIGTERM), --count events or --for a while, then prints \"N
events from M hosts\" on stderr and exits 0. An agent that restarts is reconnected with
backoff, and stderr says so; a host that refuses the watch (its certificate, a bad filter,
a sampled pid that does not exist, the agent's limit of watchers) is named on stderr, and
the exit status is 2. Agents without the kernel's process events (no CAP_NET_ADMIN) poll
instead: they miss processes shorter than their poll interval and report no exit codes;
`hostscope host -o json` shows an agent's watch_mode.

Examples:
  hostscope watch --children-of 1234 --events exited
  hostscope --inventory fleet.toml watch --name 'nginx*' --events exited,zombie -o ndjson
  hostscope watch --pid 4321 --sample 1s
  hostscope watch --user www-data --events started,exec --for 10m > starts.log";

/// The shortest and longest sample interval the API accepts.
const SAMPLE_RANGE: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(86_400));

/// What `hostscope watch` takes, as typed.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only these pids, comma-separated.
    #[arg(long, value_name = "PID", value_delimiter = ',', value_parser = args::parse_pid, allow_negative_numbers = true)]
    pub pid: Vec<u32>,

    /// Only processes whose name matches this shell glob ("nginx*").
    #[arg(long, value_name = "GLOB", value_parser = args::parse_glob)]
    pub name: Option<String>,

    /// Only processes of this user (name or uid).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Only descendants of this pid (children, grandchildren, ...), followed through forks
    /// as they happen.
    #[arg(long, value_name = "PID", value_parser = args::parse_pid, allow_negative_numbers = true)]
    pub children_of: Option<u32>,

    /// The events to print, comma-separated: started, exec, exited, zombie, sample
    /// [default: started,exec,exited,zombie; sample needs --sample].
    #[arg(long, value_name = "KIND,...", value_delimiter = ',', value_parser = parse_kind)]
    pub events: Vec<Kind>,

    /// Also sample every matching live process this often (500ms, 1s, 1m): CPU, memory,
    /// threads, fds and I/O rates.
    #[arg(long, value_name = "DURATION", value_parser = parse_sample, allow_hyphen_values = true)]
    pub sample: Option<Duration>,

    /// Stop after N events (lagged notices are not counted).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub count: Option<u64>,

    /// Stop after this long (30s, 10m, 1h).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_for, allow_hyphen_values = true)]
    pub duration: Option<Duration>,

    #[command(flatten)]
    pub targets: Targets,
}

/// Parses one `--events` kind; `lagged` is refused because it is always
/// sent, so that nobody believes they turned it off.
fn parse_kind(s: &str) -> Result<Kind, String> {
    let wanted = |k: &&Kind| !matches!(k, Kind::Lagged);
    match Kind::from_short_name(s.trim()) {
        Some(Kind::Lagged) => Err("lagged notices are always printed; leave it out".to_owned()),
        Some(kind) => Ok(kind),
        None => Err(format!(
            "unknown event {s:?}; events: {}",
            Kind::values()
                .iter()
                .filter(wanted)
                .map(|k| k.short_name())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Parses `--sample`, within what the API accepts.
fn parse_sample(s: &str) -> Result<Duration, String> {
    let d = duration::parse(s, "500ms, 1s or 1m")?;
    let (shortest, longest) = SAMPLE_RANGE;
    if d < shortest || d > longest {
        return Err(format!(
            "the sample interval must be between 100ms and 1 day, not {s}"
        ));
    }
    Ok(d)
}

/// Parses `--count`: at least one event.
fn parse_count(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err("at least 1 event: --count 0 would print nothing".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("expected a number of events, not {s:?}")),
    }
}

/// Parses `--for`; zero would end before it began.
fn parse_for(s: &str) -> Result<Duration, String> {
    duration::parse_nonzero(s, "30s, 10m or 1h", "the watch must last longer than 0")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_help_teaches_with_examples() {
        let args = ["hostscope", "watch", "--help"].map(std::ffi::OsString::from);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let env = crate::Env::default();
        let code = crate::run_with(
            args.to_vec(),
            &env,
            &mut std::io::empty(),
            &mut out,
            &mut err,
        );
        let help = String::from_utf8(out).expect("utf-8");
        assert_eq!(code, 0, "{help}");
        for example in [
            "hostscope watch --children-of 1234 --events exited",
            "hostscope --inventory fleet.toml watch --name 'nginx*' --events exited,zombie -o ndjson",
            "hostscope watch --pid 4321 --sample 1s",
        ] {
            assert!(help.contains(example), "{example} missing from: {help}");
        }
    }
}
