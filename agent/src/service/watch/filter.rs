//! One watcher's filter: which processes and which kinds of events.
//!
//! Processes are chosen by the same [`Filter`] as listings, so a name glob
//! or a user (a name or a decimal uid) means the same in both.

use hostscope_proto as pb;

use super::Event;
use crate::{
    backend::{FieldSet, Filter, ProcessInfo},
    service::{ServiceError, convert},
};

/// What one watcher asked to see.
#[derive(Debug)]
pub struct WatchFilter {
    /// Which processes: pids, name and user (ppid and statuses are refused:
    /// they describe a moment, not a lifetime).
    select: Filter,
    /// The event kinds to send; LAGGED is always sent.
    kinds: Vec<pb::ProcessEventKind>,
}

impl WatchFilter {
    /// The filter of `request`, or what is wrong with it.
    pub fn new(request: &pb::WatchProcessesRequest) -> Result<WatchFilter, ServiceError> {
        let filter = request.filter.clone().unwrap_or_default();
        if filter.ppid.is_some() || !filter.statuses.is_empty() {
            return Err(ServiceError::invalid(
                "filter",
                "a watch filters by pids, name, username and descendants_of; \
                 ppid and statuses do not apply to events",
            ));
        }
        let select = convert::filter_from_pb(filter)?;
        let sampled = request.sample_interval.is_some();
        let mut kinds = Vec::new();
        for &k in &request.kinds {
            match pb::ProcessEventKind::try_from(k) {
                Ok(pb::ProcessEventKind::Unspecified) | Err(_) => {
                    return Err(ServiceError::invalid(
                        "kinds",
                        format!(
                            "unknown event kind {k}; valid kinds: started, exec, exited, zombie, \
                             sample, lagged"
                        ),
                    ));
                }
                Ok(pb::ProcessEventKind::Sample) if !sampled => {
                    return Err(ServiceError::invalid(
                        "kinds",
                        "SAMPLE events need a sample_interval",
                    ));
                }
                Ok(kind) => kinds.push(kind),
            }
        }
        if kinds.is_empty() {
            kinds = vec![
                pb::ProcessEventKind::Started,
                pb::ProcessEventKind::Exec,
                pb::ProcessEventKind::Exited,
                pb::ProcessEventKind::Zombie,
            ];
            if sampled {
                kinds.push(pb::ProcessEventKind::Sample);
            }
        }
        Ok(WatchFilter { select, kinds })
    }

    /// The pids asked for; empty for any.
    pub fn pids(&self) -> &[u32] {
        &self.select.pids
    }

    /// The fields a process must be read with for [`WatchFilter::matches`].
    pub fn needs(&self) -> FieldSet {
        self.select.needs()
    }

    /// Whether this watcher wants events of `kind`.
    pub fn wants(&self, kind: pb::ProcessEventKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// Whether `p` is one of the processes asked for.
    pub fn matches(&self, p: &ProcessInfo) -> bool {
        self.select.matches(p)
    }

    /// Whether a collector event is for this watcher.
    pub fn admits(&self, event: &Event) -> bool {
        self.wants(convert::event_kind_to_pb(event.kind)) && self.matches(&event.process)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        backend::Ids,
        service::watch::{Event, EventKind},
    };

    fn request(
        filter: pb::ProcessFilter,
        kinds: &[pb::ProcessEventKind],
    ) -> pb::WatchProcessesRequest {
        pb::WatchProcessesRequest {
            filter: Some(filter),
            kinds: kinds.iter().map(|k| *k as i32).collect(),
            ..Default::default()
        }
    }

    fn started(pid: u32, name: &str, username: &str, uid: u32) -> Event {
        Event {
            kind: EventKind::Started,
            time: 0.0,
            process: ProcessInfo {
                name: Some(name.into()),
                username: Some(username.into()),
                uids: Some(Ids {
                    real: uid,
                    effective: uid,
                    saved: uid,
                }),
                ..ProcessInfo::new(pid)
            },
        }
    }

    fn invalid_field(request: &pb::WatchProcessesRequest) -> &'static str {
        match WatchFilter::new(request) {
            Err(ServiceError::InvalidArgument { field, .. }) => field,
            other => panic!("{request:?}: {other:?}"),
        }
    }

    #[test]
    fn a_user_is_a_name_or_a_uid_as_in_listings() {
        let event = started(42, "worker", "alice", 1000);
        for user in ["alice", "1000"] {
            let by_user = pb::ProcessFilter {
                username: user.into(),
                ..Default::default()
            };
            let filter = WatchFilter::new(&request(by_user, &[])).expect("filter");
            assert!(filter.admits(&event), "{user}");
            assert!(
                !filter.admits(&started(43, "worker", "bob", 1001)),
                "{user}"
            );
        }
    }

    #[test]
    fn name_globs_and_pids_select_processes() {
        let filter = WatchFilter::new(&request(
            pb::ProcessFilter {
                pids: vec![42, 43],
                name: "work*".into(),
                ..Default::default()
            },
            &[],
        ))
        .expect("filter");
        assert_eq!(filter.pids(), [42, 43]);
        assert!(filter.admits(&started(42, "worker", "alice", 1000)));
        assert!(!filter.admits(&started(42, "shirker", "alice", 1000)));
        assert!(!filter.admits(&started(7, "worker", "alice", 1000)));
        // An exit whose name was never known does not match a glob.
        let mut nameless = started(43, "worker", "alice", 1000);
        nameless.process.name = None;
        assert!(!filter.admits(&nameless));
    }

    #[test]
    fn kinds_default_to_the_lifecycle_and_samples_when_sampling() {
        let filter = WatchFilter::new(&request(Default::default(), &[])).expect("filter");
        assert!(filter.wants(pb::ProcessEventKind::Zombie));
        assert!(!filter.wants(pb::ProcessEventKind::Sample));
        let sampling = pb::WatchProcessesRequest {
            sample_interval: Some(1.0),
            ..Default::default()
        };
        let filter = WatchFilter::new(&sampling).expect("filter");
        assert!(filter.wants(pb::ProcessEventKind::Sample));

        let only_exits = WatchFilter::new(&request(
            Default::default(),
            &[pb::ProcessEventKind::Exited],
        ))
        .expect("filter");
        assert!(!only_exits.admits(&started(42, "worker", "alice", 1000)));
        let mut exited = started(42, "worker", "alice", 1000);
        exited.kind = EventKind::Exited {
            code: None,
            signal: Some(9),
        };
        assert!(only_exits.admits(&exited));
    }

    #[test]
    fn bad_requests_name_the_field_at_fault() {
        let ppid = pb::ProcessFilter {
            ppid: Some(1),
            ..Default::default()
        };
        assert_eq!(invalid_field(&request(ppid, &[])), "filter");
        let statuses = pb::ProcessFilter {
            statuses: vec![pb::ProcessStatus::Zombie as i32],
            ..Default::default()
        };
        assert_eq!(invalid_field(&request(statuses, &[])), "filter");
        let glob = pb::ProcessFilter {
            name: "[abc".into(),
            ..Default::default()
        };
        assert_eq!(invalid_field(&request(glob, &[])), "filter.name");
        let pid_zero = pb::ProcessFilter {
            pids: vec![0],
            ..Default::default()
        };
        assert_eq!(invalid_field(&request(pid_zero, &[])), "filter.pids");
        let unknown = pb::WatchProcessesRequest {
            kinds: vec![99],
            ..Default::default()
        };
        assert_eq!(invalid_field(&unknown), "kinds");
        let sample_without_interval = request(Default::default(), &[pb::ProcessEventKind::Sample]);
        assert_eq!(invalid_field(&sample_without_interval), "kinds");
    }
}
