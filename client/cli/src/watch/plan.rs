//! What `hostscope watch`'s flags ask for, checked and resolved (ripgrep's
//! second stage) before any host is asked: the request every host gets,
//! how to print, and when to stop.

use std::{collections::HashSet, time::Duration};

use anyhow::bail;

use crate::args::{Output, WatchArgs};
use hostscope_client::proto::{self, ProcessEventKind as Kind};

/// The kinds watched when `--events` is not given: everything but
/// samples, which need an interval.
const DEFAULT_KINDS: [Kind; 4] = [Kind::Started, Kind::Exec, Kind::Exited, Kind::Zombie];

/// What the flags ask for, checked: the request every host gets, how to
/// print, and when to stop.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan {
    pub(super) request: proto::WatchProcessesRequest,
    /// One JSON object per event rather than a line for people.
    pub(super) ndjson: bool,
    /// Those objects collected and printed as one array at the end (`-o
    /// json`, which needs an end: `--count` or `--for`).
    pub(super) json: bool,
    /// Stop after this many events.
    pub(super) count: Option<u64>,
    /// Stop after this long.
    pub(super) duration: Option<Duration>,
}

impl Plan {
    /// Resolves the flags, refusing the combinations that cannot work.
    pub(super) fn resolve(args: &WatchArgs, output: Option<Output>) -> anyhow::Result<Plan> {
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::Cli;
    use crate::watch::testing::plan;
    use hostscope_client::proto::EnumName;

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
}
