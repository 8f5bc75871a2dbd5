//! A process as an agent returned it, with psutil-like accessors that turn
//! the process's `field_errors` back into errors.

use std::collections::BTreeMap;

use hostscope_proto::{self as proto, EnumName, ProcessField as F};

use crate::Error;

/// A set of process fields, as a bit per wire value: small enough to copy
/// into every process of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FieldSet(u64);

impl FieldSet {
    /// The fields a request asked for; an empty selection means all but
    /// the costly memory_full_info and memory_maps, which the agent reads
    /// only when they are named.
    fn requested(fields: &[F]) -> FieldSet {
        if fields.is_empty() {
            return FieldSet(!(bit(F::MemoryFullInfo) | bit(F::MemoryMaps)));
        }
        FieldSet(fields.iter().fold(0, |bits, f| bits | bit(*f)))
    }

    fn contains(self, field: F) -> bool {
        self.0 & bit(field) != 0
    }
}

fn bit(field: F) -> u64 {
    // Wire values are small (below 64); anything else shares the top bit
    // rather than overflowing.
    1u64 << (field as i32).clamp(0, 63)
}

/// A process as returned by the agent.
///
/// A newtype rather than `proto::Process` itself because prost generates
/// inherent getters (`p.exe() -> &str`, empty when absent) that would
/// shadow these accessors, which tell "absent" from "empty".
///
/// Each accessor answers as psutil's method would: `Ok` with the value, or
/// the error the agent recorded for that field (`ZombieProcess`,
/// `AccessDenied`, `Unsupported`), or [`Error::FieldNotRequested`] when the
/// request did not ask for the field.
#[derive(Debug, Clone, PartialEq)]
pub struct Process {
    inner: proto::Process,
    requested: FieldSet,
}

impl From<proto::Process> for Process {
    /// A process from a request that asked for every field.
    fn from(inner: proto::Process) -> Process {
        Process::new(inner, &[])
    }
}

impl Process {
    /// Wraps a process returned for a request that asked for `requested`
    /// (empty: every field).
    pub fn new(inner: proto::Process, requested: &[F]) -> Process {
        Process {
            inner,
            requested: FieldSet::requested(requested),
        }
    }

    /// The process id; always present.
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// The message as it came off the wire.
    pub fn proto(&self) -> &proto::Process {
        &self.inner
    }

    /// The message as it came off the wire, by value.
    pub fn into_proto(self) -> proto::Process {
        self.inner
    }

    /// About the memory this process takes while held, in bytes: the
    /// struct and its encoded size standing for what it holds on the heap.
    pub fn size_bytes(&self) -> usize {
        use prost::Message;
        std::mem::size_of::<Process>() + self.inner.encoded_len()
    }

    /// Whether the request asked for `field`.
    pub fn was_requested(&self, field: F) -> bool {
        self.requested.contains(field)
    }

    /// Why the agent could not read `field`, if it could not.
    pub fn field_error(&self, field: F) -> Option<proto::ErrorKind> {
        self.inner
            .field_errors
            .iter()
            .find(|e| e.field == field as i32)
            .map(|e| proto::ErrorKind::from_wire(e.kind).unwrap_or(proto::ErrorKind::Unspecified))
    }

    /// The error for a field that has no value.
    fn missing(&self, field: F) -> Error {
        match self.field_error(field) {
            Some(kind) => Error::from_field_error(kind, field, &self.inner),
            None => Error::FieldNotRequested { field },
        }
    }

    /// An optional proto field: its value, or why it has none.
    fn get<T>(&self, field: F, value: Option<T>) -> Result<T, Error> {
        value.ok_or_else(|| self.missing(field))
    }

    /// A field that is never absent on the wire (a list, a map, or a field
    /// whose absence means "none"): present unless it has a field error or
    /// was not requested.
    fn check(&self, field: F) -> Result<(), Error> {
        if self.field_error(field).is_some() || !self.was_requested(field) {
            return Err(self.missing(field));
        }
        Ok(())
    }

    /// Parent process id (0 for the kernel's roots).
    pub fn ppid(&self) -> Result<u32, Error> {
        self.get(F::Ppid, self.inner.ppid)
    }

    /// The process name (comm, widened as psutil does).
    pub fn name(&self) -> Result<&str, Error> {
        self.get(F::Name, self.inner.name.as_deref())
    }

    /// Absolute path of the executable; empty for kernel threads.
    pub fn exe(&self) -> Result<&str, Error> {
        self.get(F::Exe, self.inner.exe.as_deref())
    }

    /// Command line, argv\[0\] first; empty for kernel threads and zombies.
    pub fn cmdline(&self) -> Result<&[String], Error> {
        self.check(F::Cmdline)?;
        Ok(&self.inner.cmdline)
    }

    /// Scheduler state. A state this client does not know reads as
    /// `Unspecified`.
    pub fn status(&self) -> Result<proto::ProcessStatus, Error> {
        let wire = self.get(F::Status, self.inner.status)?;
        Ok(proto::ProcessStatus::try_from(wire).unwrap_or(proto::ProcessStatus::Unspecified))
    }

    /// Name of the real user (or the decimal uid when it has no name).
    pub fn username(&self) -> Result<&str, Error> {
        self.get(F::Username, self.inner.username.as_deref())
    }

    /// Real, effective and saved user ids.
    pub fn uids(&self) -> Result<proto::Ids, Error> {
        self.get(F::Uids, self.inner.uids)
    }

    /// Real, effective and saved group ids.
    pub fn gids(&self) -> Result<proto::Ids, Error> {
        self.get(F::Gids, self.inner.gids)
    }

    /// Controlling terminal ("/dev/pts/3"); `Ok(None)` when it has none.
    pub fn terminal(&self) -> Result<Option<&str>, Error> {
        self.check(F::Terminal)?;
        Ok(self.inner.terminal.as_deref())
    }

    /// Current working directory.
    pub fn cwd(&self) -> Result<&str, Error> {
        self.get(F::Cwd, self.inner.cwd.as_deref())
    }

    /// Nice value, -20 to 19.
    pub fn nice(&self) -> Result<i32, Error> {
        self.get(F::Nice, self.inner.nice)
    }

    /// Start time in seconds since the Unix epoch.
    pub fn create_time(&self) -> Result<f64, Error> {
        self.get(F::CreateTime, self.inner.create_time)
    }

    /// Number of threads.
    pub fn num_threads(&self) -> Result<u32, Error> {
        self.get(F::NumThreads, self.inner.num_threads)
    }

    /// Number of open file descriptors.
    pub fn num_fds(&self) -> Result<u32, Error> {
        self.get(F::NumFds, self.inner.num_fds)
    }

    /// Voluntary and involuntary context switches.
    pub fn num_ctx_switches(&self) -> Result<proto::CtxSwitches, Error> {
        self.get(F::NumCtxSwitches, self.inner.num_ctx_switches)
    }

    /// CPU times in seconds.
    pub fn cpu_times(&self) -> Result<proto::CpuTimes, Error> {
        self.get(F::CpuTimes, self.inner.cpu_times)
    }

    /// Memory use in bytes.
    pub fn memory_info(&self) -> Result<proto::MemoryInfo, Error> {
        self.get(F::MemoryInfo, self.inner.memory_info)
    }

    /// I/O counters.
    pub fn io_counters(&self) -> Result<proto::IoCounters, Error> {
        self.get(F::IoCounters, self.inner.io_counters)
    }

    /// Environment variables (only where the agent is configured to serve
    /// them).
    pub fn environ(&self) -> Result<&BTreeMap<String, String>, Error> {
        self.check(F::Environ)?;
        Ok(&self.inner.environ)
    }

    /// CPU use over the request's interval, in percent of one CPU (psutil's
    /// `cpu_percent`: a process busy on two CPUs reads 200).
    pub fn cpu_percent(&self) -> Result<f64, Error> {
        self.get(F::CpuPercent, self.inner.cpu_percent)
    }

    /// Resident memory in percent of the host's physical memory.
    pub fn memory_percent(&self) -> Result<f64, Error> {
        self.get(F::MemoryPercent, self.inner.memory_percent)
    }

    /// The cgroup v2 path ("/system.slice/ssh.service").
    pub fn cgroup(&self) -> Result<&str, Error> {
        self.get(F::Cgroup, self.inner.cgroup.as_deref())
    }

    /// Unique, proportional and swapped memory in bytes (psutil's
    /// `memory_full_info` beyond `memory_info`). Only when asked for by
    /// name.
    pub fn memory_full_info(&self) -> Result<proto::MemoryFullInfo, Error> {
        self.get(F::MemoryFullInfo, self.inner.memory_full_info)
    }

    /// The memory mappings: one per path, or one per mapping with its
    /// address and permissions when the request set
    /// `memory_maps_ungrouped`. Empty for kernel threads. Only when asked
    /// for by name.
    pub fn memory_maps(&self) -> Result<&[proto::MemoryMap], Error> {
        self.check(F::MemoryMaps)?;
        Ok(&self.inner.memory_maps)
    }

    /// Every thread with its CPU times.
    pub fn threads(&self) -> Result<&[proto::Thread], Error> {
        self.check(F::Threads)?;
        Ok(&self.inner.threads)
    }

    /// Every resource limit; `soft`/`hard` absent means unlimited.
    pub fn rlimits(&self) -> Result<&[proto::Rlimit], Error> {
        self.check(F::Rlimits)?;
        Ok(&self.inner.rlimits)
    }

    /// One resource limit by psutil's name ("nofile", "as"...), as
    /// (soft, hard) with `None` for unlimited; `Ok(None)` when the agent's
    /// kernel has no such resource.
    #[allow(clippy::type_complexity)]
    pub fn rlimit(&self, resource: &str) -> Result<Option<(Option<u64>, Option<u64>)>, Error> {
        Ok(self
            .rlimits()?
            .iter()
            .find(|r| r.resource == resource)
            .map(|r| (r.soft, r.hard)))
    }

    /// The CPUs the process may run on.
    pub fn cpu_affinity(&self) -> Result<&[u32], Error> {
        self.check(F::CpuAffinity)?;
        Ok(&self.inner.cpu_affinity)
    }

    /// The CPU the process last ran on.
    pub fn cpu_num(&self) -> Result<u32, Error> {
        self.get(F::CpuNum, self.inner.cpu_num)
    }

    /// The I/O scheduling class and priority.
    pub fn ionice(&self) -> Result<proto::IoNice, Error> {
        self.get(F::Ionice, self.inner.ionice)
    }

    /// Minor and major page faults.
    pub fn page_faults(&self) -> Result<proto::PageFaults, Error> {
        self.get(F::PageFaults, self.inner.page_faults)
    }
}

#[cfg(test)]
mod tests {
    use proto::{ErrorKind as K, FieldError};

    use super::*;

    fn field_error(field: F, kind: K) -> FieldError {
        FieldError {
            field: field as i32,
            kind: kind as i32,
        }
    }

    /// A zombie as the agent lists it: what the stat file says is there,
    /// everything that needs a live process is a ZOMBIE_PROCESS error.
    fn zombie() -> Process {
        Process::from(proto::Process {
            pid: 4242,
            ppid: Some(17),
            name: Some("defunct".to_owned()),
            status: Some(proto::ProcessStatus::Zombie as i32),
            field_errors: vec![
                field_error(F::Exe, K::ZombieProcess),
                field_error(F::Cmdline, K::ZombieProcess),
                field_error(F::Cwd, K::ZombieProcess),
            ],
            ..Default::default()
        })
    }

    #[test]
    fn zombie_fields_raise_zombie_process() {
        let p = zombie();
        assert_eq!(p.pid(), 4242);
        assert_eq!(p.ppid().ok(), Some(17));
        assert_eq!(p.name().ok(), Some("defunct"));
        assert_eq!(p.status().ok(), Some(proto::ProcessStatus::Zombie));
        for e in [p.exe().err(), p.cmdline().err(), p.cwd().err()] {
            match e {
                Some(
                    e @ Error::ZombieProcess {
                        pid: 4242,
                        ppid: Some(17),
                        ..
                    },
                ) => {
                    assert!(e.is_not_found());
                    assert!(
                        matches!(&e, Error::ZombieProcess { name: Some(n), .. } if n == "defunct")
                    );
                }
                other => panic!("expected ZombieProcess, got {other:?}"),
            }
        }
        // Asked for everything, but the agent sent no value and no error.
        assert!(matches!(
            p.uids(),
            Err(Error::FieldNotRequested { field: F::Uids })
        ));
    }

    #[test]
    fn access_denied_and_unsupported_fields() {
        let p = Process::from(proto::Process {
            pid: 1,
            field_errors: vec![
                field_error(F::Environ, K::AccessDenied),
                field_error(F::IoCounters, K::Unsupported),
                field_error(F::NumFds, K::Unspecified),
            ],
            ..Default::default()
        });
        assert!(matches!(
            p.environ(),
            Err(Error::AccessDenied { pid: Some(1), .. })
        ));
        let e = p.io_counters().expect_err("unsupported");
        assert_eq!(e.kind(), Some(K::Unsupported));
        assert!(e.to_string().contains("io_counters"), "{e}");
        // A kind this client does not know is still an error, not a value.
        assert!(matches!(p.num_fds(), Err(Error::Protocol { .. })));
    }

    #[test]
    fn unrequested_fields_are_not_empty_values() {
        let p = Process::new(
            proto::Process {
                pid: 9,
                name: Some("sh".to_owned()),
                ..Default::default()
            },
            &[F::Name, F::Terminal],
        );
        assert_eq!(p.name().ok(), Some("sh"));
        assert!(p.was_requested(F::Name));
        assert!(!p.was_requested(F::Cmdline));
        assert!(matches!(
            p.cmdline(),
            Err(Error::FieldNotRequested { field: F::Cmdline })
        ));
        assert!(matches!(
            p.environ(),
            Err(Error::FieldNotRequested { field: F::Environ })
        ));
        // Requested and absent: no terminal.
        assert_eq!(p.terminal().ok(), Some(None));
        assert!(matches!(
            p.memory_info(),
            Err(Error::FieldNotRequested { .. })
        ));
    }

    #[test]
    fn costly_fields_are_not_part_of_every_field() {
        let p = Process::from(proto::Process {
            pid: 7,
            threads: vec![proto::Thread {
                id: 7,
                user_time: 0.5,
                system_time: 0.25,
            }],
            rlimits: vec![proto::Rlimit {
                resource: "nofile".to_owned(),
                soft: Some(123),
                hard: None,
            }],
            cpu_num: Some(1),
            ..Default::default()
        });
        assert!(matches!(
            p.memory_maps(),
            Err(Error::FieldNotRequested {
                field: F::MemoryMaps
            })
        ));
        assert!(matches!(
            p.memory_full_info(),
            Err(Error::FieldNotRequested { .. })
        ));
        assert_eq!(p.threads().map(<[_]>::len).ok(), Some(1));
        assert_eq!(p.rlimit("nofile").ok(), Some(Some((Some(123), None))));
        assert_eq!(p.rlimit("widgets").ok(), Some(None));
        assert_eq!(p.cpu_num().ok(), Some(1));
        assert_eq!(p.cpu_affinity().ok(), Some(&[][..]));
        let named = Process::new(p.clone().into_proto(), &[F::MemoryMaps]);
        assert_eq!(named.memory_maps().ok(), Some(&[][..]));
        let zombie = Process::new(
            proto::Process {
                pid: 8,
                field_errors: vec![field_error(F::MemoryFullInfo, K::ZombieProcess)],
                ..Default::default()
            },
            &[F::MemoryFullInfo],
        );
        assert!(matches!(
            zombie.memory_full_info(),
            Err(Error::ZombieProcess { pid: 8, .. })
        ));
    }

    #[test]
    fn kernel_threads_have_an_empty_cmdline() {
        let p = Process::from(proto::Process {
            pid: 2,
            name: Some("kthreadd".to_owned()),
            exe: Some(String::new()),
            ..Default::default()
        });
        assert_eq!(p.cmdline().ok(), Some(&[][..]));
        assert_eq!(p.exe().ok(), Some(""));
        assert_eq!(p.proto().pid, 2);
        assert_eq!(p.into_proto().name.as_deref(), Some("kthreadd"));
    }
}
