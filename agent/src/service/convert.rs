//! Backend values to and from `hostscope.v1` messages: every message the
//! service sends is built here, and every request value it reads is checked
//! here.
//!
//! A value the agent does not know is absent on the wire, never a zero that
//! looks like data.

use hostscope_proto as pb;
use hostscope_proto::EnumName;

use super::{
    ServiceError,
    watch::event::{Event, EventKind, Rates},
};
use crate::backend::{
    AddressFamily, Duplex, ErrorKind, Field, FieldSet, Filter, HostInfo, IoNiceClass, NetField,
    NetInterface, ProcessInfo, Status,
    glob::{self, Glob},
};

/// Backend fields beside their wire names: one table for both directions.
/// `MemoryMapsUngrouped` comes last: the wire has one name for both map
/// fields, and a wire field reads as the first entry with its name.
const FIELDS: [(Field, pb::ProcessField); 31] = [
    (Field::Ppid, pb::ProcessField::Ppid),
    (Field::Name, pb::ProcessField::Name),
    (Field::Exe, pb::ProcessField::Exe),
    (Field::Cmdline, pb::ProcessField::Cmdline),
    (Field::Status, pb::ProcessField::Status),
    (Field::Username, pb::ProcessField::Username),
    (Field::Uids, pb::ProcessField::Uids),
    (Field::Gids, pb::ProcessField::Gids),
    (Field::Terminal, pb::ProcessField::Terminal),
    (Field::Cwd, pb::ProcessField::Cwd),
    (Field::Nice, pb::ProcessField::Nice),
    (Field::CreateTime, pb::ProcessField::CreateTime),
    (Field::NumThreads, pb::ProcessField::NumThreads),
    (Field::NumFds, pb::ProcessField::NumFds),
    (Field::NumCtxSwitches, pb::ProcessField::NumCtxSwitches),
    (Field::CpuTimes, pb::ProcessField::CpuTimes),
    (Field::MemoryInfo, pb::ProcessField::MemoryInfo),
    (Field::IoCounters, pb::ProcessField::IoCounters),
    (Field::Environ, pb::ProcessField::Environ),
    (Field::CpuPercent, pb::ProcessField::CpuPercent),
    (Field::MemoryPercent, pb::ProcessField::MemoryPercent),
    (Field::Cgroup, pb::ProcessField::Cgroup),
    (Field::MemoryFullInfo, pb::ProcessField::MemoryFullInfo),
    (Field::MemoryMaps, pb::ProcessField::MemoryMaps),
    (Field::Threads, pb::ProcessField::Threads),
    (Field::Rlimits, pb::ProcessField::Rlimits),
    (Field::CpuAffinity, pb::ProcessField::CpuAffinity),
    (Field::CpuNum, pb::ProcessField::CpuNum),
    (Field::Ionice, pb::ProcessField::Ionice),
    (Field::PageFaults, pb::ProcessField::PageFaults),
    (Field::MemoryMapsUngrouped, pb::ProcessField::MemoryMaps),
];

const STATUSES: [(Status, pb::ProcessStatus); 14] = [
    (Status::Running, pb::ProcessStatus::Running),
    (Status::Sleeping, pb::ProcessStatus::Sleeping),
    (Status::DiskSleep, pb::ProcessStatus::DiskSleep),
    (Status::Stopped, pb::ProcessStatus::Stopped),
    (Status::TracingStop, pb::ProcessStatus::TracingStop),
    (Status::Zombie, pb::ProcessStatus::Zombie),
    (Status::Dead, pb::ProcessStatus::Dead),
    (Status::WakeKill, pb::ProcessStatus::WakeKill),
    (Status::Waking, pb::ProcessStatus::Waking),
    (Status::Parked, pb::ProcessStatus::Parked),
    (Status::Idle, pb::ProcessStatus::Idle),
    (Status::Locked, pb::ProcessStatus::Locked),
    (Status::Waiting, pb::ProcessStatus::Waiting),
    (Status::Suspended, pb::ProcessStatus::Suspended),
];

/// The wire name of a backend field.
pub fn field_to_pb(field: Field) -> pb::ProcessField {
    FIELDS[field as usize].1
}

/// A wire field, or a message naming the valid ones.
pub fn field_from_pb(value: i32) -> Result<Field, String> {
    FIELDS
        .iter()
        .find(|(_, pb)| *pb as i32 == value)
        .map(|(f, _)| *f)
        .ok_or_else(|| {
            format!(
                "unknown process field {value}; valid fields: {}",
                pb::ProcessField::short_names().join(", ")
            )
        })
}

/// The wire value of a process state.
pub fn status_to_pb(status: Status) -> pb::ProcessStatus {
    STATUSES
        .iter()
        .find(|(s, _)| *s == status)
        .map_or(pb::ProcessStatus::Unspecified, |(_, pb)| *pb)
}

/// A wire status, or a message naming the valid ones.
pub fn status_from_pb(value: i32) -> Result<Status, String> {
    STATUSES
        .iter()
        .find(|(_, pb)| *pb as i32 == value)
        .map(|(s, _)| *s)
        .ok_or_else(|| {
            format!(
                "unknown process status {value}; valid statuses: {}",
                pb::ProcessStatus::short_names().join(", ")
            )
        })
}

/// The wire value of an error kind, for field errors and ErrorInfo reasons.
pub fn error_kind_to_pb(kind: ErrorKind) -> pb::ErrorKind {
    match kind {
        ErrorKind::NoSuchProcess => pb::ErrorKind::NoSuchProcess,
        ErrorKind::ZombieProcess => pb::ErrorKind::ZombieProcess,
        ErrorKind::AccessDenied => pb::ErrorKind::AccessDenied,
        ErrorKind::Unsupported => pb::ErrorKind::Unsupported,
        ErrorKind::Timeout => pb::ErrorKind::Timeout,
        ErrorKind::PidReused => pb::ErrorKind::PidReused,
    }
}

/// The message for `p`, with only the fields in `fields`: the backend may
/// have read more to evaluate a filter.
pub fn process_to_pb(p: ProcessInfo, fields: FieldSet) -> pb::Process {
    let want = |f: Field| fields.contains(f);
    let ids = |ids: crate::backend::Ids| pb::Ids {
        real: ids.real,
        effective: ids.effective,
        saved: ids.saved,
    };
    pb::Process {
        pid: p.pid,
        ppid: p.ppid.filter(|_| want(Field::Ppid)),
        name: p.name.filter(|_| want(Field::Name)),
        exe: p.exe.filter(|_| want(Field::Exe)),
        cmdline: p
            .cmdline
            .filter(|_| want(Field::Cmdline))
            .unwrap_or_default(),
        status: p
            .status
            .filter(|_| want(Field::Status))
            .map(|s| status_to_pb(s) as i32),
        username: p.username.filter(|_| want(Field::Username)),
        uids: p.uids.filter(|_| want(Field::Uids)).map(ids),
        gids: p.gids.filter(|_| want(Field::Gids)).map(ids),
        terminal: p.terminal.filter(|_| want(Field::Terminal)).flatten(),
        cwd: p.cwd.filter(|_| want(Field::Cwd)),
        nice: p.nice.filter(|_| want(Field::Nice)),
        create_time: p.create_time.filter(|_| want(Field::CreateTime)),
        num_threads: p.num_threads.filter(|_| want(Field::NumThreads)),
        num_fds: p.num_fds.filter(|_| want(Field::NumFds)),
        num_ctx_switches: p
            .num_ctx_switches
            .filter(|_| want(Field::NumCtxSwitches))
            .map(|c| pb::CtxSwitches {
                voluntary: c.voluntary,
                involuntary: c.involuntary,
            }),
        cpu_times: p
            .cpu_times
            .filter(|_| want(Field::CpuTimes))
            .map(|c| pb::CpuTimes {
                user: c.user,
                system: c.system,
                children_user: c.children_user,
                children_system: c.children_system,
                iowait: c.iowait,
            }),
        memory_info: p
            .memory_info
            .filter(|_| want(Field::MemoryInfo))
            .map(|m| pb::MemoryInfo {
                rss: m.rss,
                vms: m.vms,
                shared: m.shared,
                text: m.text,
                data: m.data,
            }),
        io_counters: p
            .io_counters
            .filter(|_| want(Field::IoCounters))
            .map(|io| pb::IoCounters {
                read_count: io.read_count,
                write_count: io.write_count,
                read_bytes: io.read_bytes,
                write_bytes: io.write_bytes,
                read_chars: io.read_chars,
                write_chars: io.write_chars,
            }),
        environ: p
            .environ
            .filter(|_| want(Field::Environ))
            .map(|env| env.into_iter().collect())
            .unwrap_or_default(),
        cpu_percent: p.cpu_percent.filter(|_| want(Field::CpuPercent)),
        memory_percent: p.memory_percent.filter(|_| want(Field::MemoryPercent)),
        cgroup: p.cgroup.filter(|_| want(Field::Cgroup)),
        memory_full_info: p
            .memory_full_info
            .filter(|_| want(Field::MemoryFullInfo))
            .map(|m| pb::MemoryFullInfo {
                uss: m.uss,
                pss: m.pss,
                swap: m.swap,
            }),
        memory_maps: p
            .memory_maps
            .filter(|_| want(Field::MemoryMaps) || want(Field::MemoryMapsUngrouped))
            .unwrap_or_default()
            .into_iter()
            .map(|m| pb::MemoryMap {
                path: m.path,
                addr: m.addr,
                perms: m.perms,
                rss: m.rss,
                size: m.size,
                pss: m.pss,
                shared_clean: m.shared_clean,
                shared_dirty: m.shared_dirty,
                private_clean: m.private_clean,
                private_dirty: m.private_dirty,
                referenced: m.referenced,
                anonymous: m.anonymous,
                swap: m.swap,
            })
            .collect(),
        threads: p
            .threads
            .filter(|_| want(Field::Threads))
            .unwrap_or_default()
            .into_iter()
            .map(|t| pb::Thread {
                id: t.id,
                user_time: t.user_time,
                system_time: t.system_time,
            })
            .collect(),
        rlimits: p
            .rlimits
            .filter(|_| want(Field::Rlimits))
            .unwrap_or_default()
            .into_iter()
            .map(|r| pb::Rlimit {
                resource: r.resource.to_owned(),
                soft: r.soft,
                hard: r.hard,
            })
            .collect(),
        cpu_affinity: p
            .cpu_affinity
            .filter(|_| want(Field::CpuAffinity))
            .unwrap_or_default(),
        cpu_num: p.cpu_num.filter(|_| want(Field::CpuNum)),
        ionice: p
            .ionice
            .filter(|_| want(Field::Ionice))
            .map(|n| pb::IoNice {
                ioclass: match n.class {
                    IoNiceClass::None => pb::IoNiceClass::None,
                    IoNiceClass::Rt => pb::IoNiceClass::Rt,
                    IoNiceClass::Be => pb::IoNiceClass::Be,
                    IoNiceClass::Idle => pb::IoNiceClass::Idle,
                } as i32,
                value: n.value,
            }),
        page_faults: p
            .page_faults
            .filter(|_| want(Field::PageFaults))
            .map(|f| pb::PageFaults {
                minor: f.minor,
                major: f.major,
            }),
        field_errors: p
            .field_errors
            .into_iter()
            .filter(|(f, _)| want(*f))
            .map(|(field, kind)| pb::FieldError {
                field: field_to_pb(field) as i32,
                kind: error_kind_to_pb(kind) as i32,
            })
            .collect(),
    }
}

/// The message for `p` as [`process_to_pb`] makes it, with the `refused`
/// fields (those the agent's configuration withholds from this client)
/// named as WITHHELD rather than silently left out.
pub fn process_to_pb_refusing(p: ProcessInfo, fields: FieldSet, refused: &[Field]) -> pb::Process {
    let mut msg = process_to_pb(p, fields);
    msg.field_errors
        .extend(refused.iter().map(|f| pb::FieldError {
            field: field_to_pb(*f) as i32,
            kind: pb::ErrorKind::Withheld as i32,
        }));
    msg
}

/// A pid from the request's `field`: any but 0, which names no process
/// (kill(2) and friends read it as "my process group").
pub fn pid_from_pb(field: &'static str, pid: u32) -> Result<u32, ServiceError> {
    if pid == 0 {
        return Err(ServiceError::invalid(
            field,
            "pid must be a positive process id; 0 is not a process",
        ));
    }
    Ok(pid)
}

/// The backend filter for a request's filter: the one place where name
/// globs, pids and statuses from the wire are checked.
pub fn filter_from_pb(filter: pb::ProcessFilter) -> Result<Filter, ServiceError> {
    let name = match filter.name.as_str() {
        "" => None,
        // A refused pattern is quoted short: it may be kilobytes long.
        pattern => Some(Glob::new(pattern).map_err(|e| {
            ServiceError::invalid(
                "filter.name",
                format!("bad name glob {}: {e}", glob::excerpt(pattern)),
            )
        })?),
    };
    for &pid in &filter.pids {
        pid_from_pb("filter.pids", pid)?;
    }
    // A pid asked for twice is read and answered once: 30,000 copies of one
    // pid must not make 30,000 answers.
    let mut seen = std::collections::HashSet::with_capacity(filter.pids.len());
    let mut pids = filter.pids;
    pids.retain(|pid| seen.insert(*pid));
    let statuses = filter
        .statuses
        .iter()
        .map(|s| status_from_pb(*s))
        .collect::<Result<_, _>>()
        .map_err(|e| ServiceError::invalid("filter.statuses", e))?;
    Ok(Filter {
        pids,
        ppid: filter.ppid,
        name,
        username: Some(filter.username).filter(|u| !u.is_empty()),
        statuses,
    })
}

/// One zombie child of `ppid`.
fn zombie_to_pb(p: ProcessInfo, ppid: u32) -> pb::Zombie {
    pb::Zombie {
        pid: p.pid,
        name: p.name,
        ppid,
        // Linux does not record when a process became a zombie.
        zombie_since: None,
        create_time: p.create_time,
    }
}

/// A parent (absent when it exited since the scan) and its zombie
/// children, oldest first.
pub fn zombie_parent_to_pb(
    ppid: u32,
    parent: Option<pb::Process>,
    mut zombies: Vec<ProcessInfo>,
) -> pb::ZombieParent {
    zombies.sort_by(|a, b| {
        let age = |p: &ProcessInfo| p.create_time.unwrap_or(f64::INFINITY);
        age(a).total_cmp(&age(b))
    });
    pb::ZombieParent {
        parent,
        ppid,
        zombies: zombies.into_iter().map(|z| zombie_to_pb(z, ppid)).collect(),
        parent_is_init: ppid == 1,
    }
}

/// The FindZombies answer: the parents holding most zombies first.
pub fn zombies_to_pb(mut parents: Vec<pb::ZombieParent>) -> pb::FindZombiesResponse {
    parents.sort_by(|a, b| {
        b.zombies
            .len()
            .cmp(&a.zombies.len())
            .then(a.ppid.cmp(&b.ppid))
    });
    let total = parents.iter().map(|p| p.zombies.len() as u32).sum();
    pb::FindZombiesResponse { parents, total }
}

/// The wire kind of an event.
pub fn event_kind_to_pb(kind: EventKind) -> pb::ProcessEventKind {
    match kind {
        EventKind::Started => pb::ProcessEventKind::Started,
        EventKind::Exec => pb::ProcessEventKind::Exec,
        EventKind::Exited { .. } => pb::ProcessEventKind::Exited,
        EventKind::Zombie => pb::ProcessEventKind::Zombie,
        EventKind::Lost { .. } => pb::ProcessEventKind::Lagged,
    }
}

/// The message for a collector event, with what is known of its process.
pub fn event_to_pb(event: &Event) -> pb::ProcessEvent {
    let p = &event.process;
    let (exit_code, exit_signal) = match event.kind {
        EventKind::Exited { code, signal } => (code, signal),
        _ => (None, None),
    };
    pb::ProcessEvent {
        kind: event_kind_to_pb(event.kind) as i32,
        pid: p.pid,
        time: event.time,
        ppid: p.ppid,
        name: p.name.clone(),
        cmdline: p.cmdline.clone().unwrap_or_default(),
        username: p.username.clone(),
        create_time: p.create_time,
        exit_code,
        exit_signal,
        sample: None,
        dropped: 0,
    }
}

/// A SAMPLE event at `time` for `p` over its last interval.
pub fn sample_to_pb(p: &ProcessInfo, rates: &Rates, time: f64) -> pb::ProcessEvent {
    pb::ProcessEvent {
        kind: pb::ProcessEventKind::Sample as i32,
        pid: p.pid,
        time,
        name: p.name.clone(),
        username: p.username.clone(),
        create_time: p.create_time,
        sample: Some(pb::ProcessSample {
            cpu_percent: rates.cpu_percent,
            rss: p.memory_info.map(|m| m.rss),
            num_threads: p.num_threads,
            num_fds: p.num_fds,
            read_bytes_per_sec: rates.read_bytes_per_sec,
            write_bytes_per_sec: rates.write_bytes_per_sec,
        }),
        ..Default::default()
    }
}

/// A LAGGED event at `time`: the watcher lost `dropped` events.
pub fn lagged_to_pb(dropped: u64, time: f64) -> pb::ProcessEvent {
    pb::ProcessEvent {
        kind: pb::ProcessEventKind::Lagged as i32,
        time,
        dropped,
        ..Default::default()
    }
}

/// The GetHost answer; `watch_mode` is where WatchProcesses gets its
/// events, which the service knows rather than the backend.
pub fn host_to_pb(host: HostInfo, watch_mode: &str) -> pb::Host {
    pb::Host {
        hostname: host.hostname,
        os: host.os,
        os_release: host.os_release,
        kernel: host.kernel,
        arch: host.arch,
        boot_time: host.boot_time,
        cpu_count: host.cpu_count,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        backend: host.backend.to_owned(),
        process_fields: host
            .process_fields
            .iter()
            // The wire's MEMORY_MAPS already stands for both groupings.
            .filter(|f| *f != Field::MemoryMapsUngrouped)
            .map(|f| field_to_pb(f) as i32)
            .collect(),
        net_interface_fields: host
            .net_interface_fields
            .into_iter()
            .map(|f| net_field_to_pb(f) as i32)
            .collect(),
        memory_total: host.memory_total,
        watch_mode: watch_mode.to_owned(),
        withheld: Vec::new(),
        system_fields: host
            .system_fields
            .iter()
            .map(|f| super::system::field_to_pb(f) as i32)
            .collect(),
    }
}

/// The wire name of an interface field.
fn net_field_to_pb(field: NetField) -> pb::NetInterfaceField {
    match field {
        NetField::Addresses => pb::NetInterfaceField::Addresses,
        NetField::Isup => pb::NetInterfaceField::Isup,
        NetField::Duplex => pb::NetInterfaceField::Duplex,
        NetField::Speed => pb::NetInterfaceField::Speed,
        NetField::Mtu => pb::NetInterfaceField::Mtu,
        NetField::Flags => pb::NetInterfaceField::Flags,
        NetField::IoCounters => pb::NetInterfaceField::IoCounters,
    }
}

/// One network interface with its addresses, link state and counters.
pub fn nic_to_pb(nic: NetInterface) -> pb::NetInterface {
    pb::NetInterface {
        name: nic.name,
        addresses: nic
            .addresses
            .into_iter()
            .map(|a| pb::NetAddress {
                family: match a.family {
                    AddressFamily::Inet => pb::AddressFamily::Inet,
                    AddressFamily::Inet6 => pb::AddressFamily::Inet6,
                    AddressFamily::Link => pb::AddressFamily::Link,
                } as i32,
                address: a.address,
                netmask: a.netmask,
                broadcast: a.broadcast,
                ptp: a.ptp,
            })
            .collect(),
        stats: nic.stats.map(|s| pb::NetIfStats {
            isup: s.isup,
            duplex: match s.duplex {
                Duplex::Full => pb::Duplex::Full,
                Duplex::Half => pb::Duplex::Half,
                Duplex::Unknown => pb::Duplex::Unknown,
            } as i32,
            // The backends' 0 means that the driver does not say.
            speed: Some(s.speed).filter(|&mbps| mbps != 0),
            mtu: s.mtu,
            flags: s.flags,
        }),
        io_counters: nic.io_counters.map(|c| pb::NetIoCounters {
            bytes_sent: c.bytes_sent,
            bytes_recv: c.bytes_recv,
            packets_sent: c.packets_sent,
            packets_recv: c.packets_recv,
            errin: c.errin,
            errout: c.errout,
            dropin: c.dropin,
            dropout: c.dropout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_table_is_in_declaration_order_and_complete() {
        for (i, (field, pb)) in FIELDS.iter().enumerate() {
            assert_eq!(*field as usize, i);
            assert_eq!(Field::ALL[i], *field);
            if *field != Field::MemoryMapsUngrouped {
                assert_eq!(field_from_pb(*pb as i32), Ok(*field));
            }
        }
        // Both groupings of the memory maps share one wire name.
        assert_eq!(pb::ProcessField::values().len(), FIELDS.len() - 1);
        assert_eq!(
            field_from_pb(pb::ProcessField::MemoryMaps as i32),
            Ok(Field::MemoryMaps)
        );
        assert_eq!(
            field_to_pb(Field::MemoryMapsUngrouped),
            pb::ProcessField::MemoryMaps
        );
        assert_eq!(pb::ProcessStatus::values().len(), STATUSES.len());
    }

    #[test]
    fn unknown_wire_values_name_the_valid_ones() {
        let err = field_from_pb(99).unwrap_err();
        assert!(err.contains("99") && err.contains("cmdline"), "{err}");
        assert!(field_from_pb(0).is_err());
        assert!(status_from_pb(0).unwrap_err().contains("zombie"));
    }

    #[test]
    fn refused_fields_are_named_withheld() {
        let p = ProcessInfo {
            name: Some("sh".into()),
            ..ProcessInfo::new(5)
        };
        let fields = [Field::Name].into_iter().collect();
        let msg = process_to_pb_refusing(p, fields, &[Field::Environ]);
        assert_eq!(msg.name.as_deref(), Some("sh"));
        assert_eq!(
            msg.field_errors,
            [pb::FieldError {
                field: pb::ProcessField::Environ as i32,
                kind: pb::ErrorKind::Withheld as i32,
            }]
        );
    }

    #[test]
    fn only_requested_fields_are_sent() {
        let p = ProcessInfo {
            ppid: Some(1),
            name: Some("sh".into()),
            field_errors: vec![(Field::Exe, ErrorKind::AccessDenied)],
            ..ProcessInfo::new(5)
        };
        let msg = process_to_pb(p, [Field::Name].into_iter().collect());
        assert_eq!(msg.pid, 5);
        assert_eq!(msg.name.as_deref(), Some("sh"));
        assert_eq!(msg.ppid, None);
        assert!(msg.field_errors.is_empty());
    }

    #[test]
    fn bad_filters_are_invalid_arguments_naming_the_field() {
        let cases = [
            (
                pb::ProcessFilter {
                    name: "[abc".into(),
                    ..Default::default()
                },
                "filter.name",
                "[abc",
            ),
            (
                pb::ProcessFilter {
                    statuses: vec![99],
                    ..Default::default()
                },
                "filter.statuses",
                "99",
            ),
            (
                pb::ProcessFilter {
                    pids: vec![7, 0],
                    ..Default::default()
                },
                "filter.pids",
                "0 is not a process",
            ),
        ];
        for (filter, want_field, said) in cases {
            match filter_from_pb(filter) {
                Err(ServiceError::InvalidArgument { field, message }) => {
                    assert_eq!(field, want_field);
                    assert!(message.contains(said), "{message}");
                }
                other => panic!("{want_field}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_pattern_over_the_limit_is_refused_and_quoted_short() {
        let huge = "*a".repeat(30_000) + "b";
        match filter_from_pb(pb::ProcessFilter {
            name: huge,
            ..Default::default()
        }) {
            Err(ServiceError::InvalidArgument { field, message }) => {
                assert_eq!(field, "filter.name");
                assert!(message.contains("60001 bytes"), "{message}");
                assert!(message.contains("4096"), "{message}");
                assert!(message.len() < 300, "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_filter_from_the_wire_keeps_every_condition() {
        let filter = filter_from_pb(pb::ProcessFilter {
            pids: vec![42],
            ppid: Some(1),
            name: "nginx*".into(),
            username: "1000".into(),
            statuses: vec![pb::ProcessStatus::Zombie as i32],
        })
        .expect("a good filter");
        assert_eq!(filter.pids, [42]);
        assert_eq!(filter.ppid, Some(1));
        assert!(filter.name.is_some_and(|g| g.matches("nginx: worker")));
        assert_eq!(filter.username.as_deref(), Some("1000"));
        assert_eq!(filter.statuses, [Status::Zombie]);
        let empty = filter_from_pb(pb::ProcessFilter::default()).expect("empty filter");
        assert!(empty.name.is_none() && empty.username.is_none());
    }

    fn zombie(pid: u32, create_time: Option<f64>) -> ProcessInfo {
        ProcessInfo {
            ppid: Some(7),
            name: Some("defunct".into()),
            status: Some(Status::Zombie),
            create_time,
            ..ProcessInfo::new(pid)
        }
    }

    #[test]
    fn zombies_are_oldest_first_and_unknown_values_absent() {
        let mut unnamed = zombie(12, None);
        unnamed.name = None;
        let group = zombie_parent_to_pb(
            7,
            None,
            vec![zombie(10, Some(300.0)), unnamed, zombie(11, Some(100.0))],
        );
        let pids: Vec<u32> = group.zombies.iter().map(|z| z.pid).collect();
        assert_eq!(pids, [11, 10, 12], "unknown ages last");
        let last = &group.zombies[2];
        assert_eq!((last.create_time, last.name.as_deref()), (None, None));
        assert_eq!(group.zombies[0].create_time, Some(100.0));
        assert_eq!(group.zombies[0].name.as_deref(), Some("defunct"));
        assert!(
            group
                .zombies
                .iter()
                .all(|z| z.ppid == 7 && z.zombie_since.is_none())
        );
        assert!(!group.parent_is_init);
        assert!(zombie_parent_to_pb(1, None, vec![]).parent_is_init);
    }

    #[test]
    fn parents_with_most_zombies_come_first_and_all_are_counted() {
        let one = zombie_parent_to_pb(3, None, vec![zombie(30, None)]);
        let two = zombie_parent_to_pb(9, None, vec![zombie(90, None), zombie(91, None)]);
        let also_one = zombie_parent_to_pb(2, None, vec![zombie(20, None)]);
        let report = zombies_to_pb(vec![one, two, also_one]);
        let order: Vec<u32> = report.parents.iter().map(|p| p.ppid).collect();
        assert_eq!(order, [9, 2, 3]);
        assert_eq!(report.total, 4);
    }

    #[test]
    fn events_carry_what_is_known_and_exits_their_status() {
        let exited = Event {
            kind: EventKind::Exited {
                code: None,
                signal: Some(9),
            },
            time: 1.5,
            process: ProcessInfo {
                ppid: Some(1),
                name: Some("worker".into()),
                ..ProcessInfo::new(42)
            },
        };
        let msg = event_to_pb(&exited);
        assert_eq!(msg.kind, pb::ProcessEventKind::Exited as i32);
        assert_eq!((msg.pid, msg.time, msg.ppid), (42, 1.5, Some(1)));
        assert_eq!((msg.exit_code, msg.exit_signal), (None, Some(9)));
        assert_eq!((msg.username, msg.create_time), (None, None));
        assert!(msg.cmdline.is_empty() && msg.sample.is_none());

        let started = Event {
            kind: EventKind::Started,
            time: 1.0,
            process: ProcessInfo {
                cmdline: Some(vec!["worker".into(), "-v".into()]),
                create_time: Some(1.0),
                ..ProcessInfo::new(42)
            },
        };
        let msg = event_to_pb(&started);
        assert_eq!(msg.kind, pb::ProcessEventKind::Started as i32);
        assert_eq!(msg.cmdline, ["worker", "-v"]);
        assert_eq!(msg.create_time, Some(1.0));
        assert_eq!((msg.exit_code, msg.exit_signal), (None, None));
    }

    #[test]
    fn samples_leave_out_what_could_not_be_read() {
        let p = ProcessInfo {
            name: Some("worker".into()),
            num_threads: Some(4),
            ..ProcessInfo::new(42)
        };
        let rates = Rates {
            cpu_percent: Some(12.5),
            ..Rates::default()
        };
        let msg = sample_to_pb(&p, &rates, 9.0);
        assert_eq!(msg.kind, pb::ProcessEventKind::Sample as i32);
        assert_eq!((msg.pid, msg.time), (42, 9.0));
        let sample = msg.sample.expect("measurements");
        assert_eq!(sample.cpu_percent, Some(12.5));
        assert_eq!(sample.num_threads, Some(4));
        assert_eq!((sample.rss, sample.num_fds), (None, None));
        assert_eq!(sample.read_bytes_per_sec, None);
        assert_eq!(sample.write_bytes_per_sec, None);
    }

    #[test]
    fn lagged_says_how_many_were_lost() {
        let msg = lagged_to_pb(17, 3.0);
        assert_eq!(msg.kind, pb::ProcessEventKind::Lagged as i32);
        assert_eq!((msg.dropped, msg.time, msg.pid), (17, 3.0, 0));
    }

    #[test]
    fn an_unknown_link_speed_is_absent() {
        let nic = |speed| NetInterface {
            name: "eth0".into(),
            stats: Some(crate::backend::NetIfStats {
                isup: true,
                duplex: Duplex::Full,
                speed,
                mtu: 1500,
                flags: "up".into(),
            }),
            ..NetInterface::default()
        };
        let speed = |n| nic_to_pb(n).stats.expect("stats").speed;
        assert_eq!(speed(nic(0)), None);
        assert_eq!(speed(nic(1000)), Some(1000));
    }

    #[test]
    fn repeated_pids_are_asked_once_in_their_first_order() {
        let mut pids = vec![1; 30_000];
        pids.extend([7, 1, 3, 7]);
        let filter = filter_from_pb(pb::ProcessFilter {
            pids,
            ..Default::default()
        })
        .expect("a good filter");
        assert_eq!(filter.pids, [1, 7, 3]);
    }
}
