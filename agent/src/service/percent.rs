//! Per-process `cpu_percent` and `memory_percent`, as psutil computes
//! them, worked out by the service from what a backend reads: CPU time at
//! both ends of the request's interval, and resident memory over the
//! host's physical memory.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use super::watch::sampler::{Reading, rates};
use crate::backend::{Backend, ErrorKind, Field, FieldSet, ProcessInfo};

/// The fields a backend reads for the `asked` ones: the derived fields
/// replaced by what they are worked out from.
pub fn sources(asked: FieldSet) -> FieldSet {
    let mut read = asked;
    if asked.contains(Field::CpuPercent) {
        read.remove(Field::CpuPercent);
        read.insert(Field::CpuTimes);
        read.insert(Field::CreateTime);
    }
    if asked.contains(Field::MemoryPercent) {
        read.remove(Field::MemoryPercent);
        read.insert(Field::MemoryInfo);
    }
    read
}

/// What the first reading of an interval needs.
pub fn first_reading() -> FieldSet {
    [Field::CpuTimes, Field::CreateTime].into_iter().collect()
}

/// The first readings of a listing's processes, by pid.
pub type Readings = HashMap<u32, Reading>;

/// The host's physical memory, read once: it does not change while the
/// agent runs (hot-plugged memory aside).
#[derive(Clone, Default)]
pub struct MemoryTotal(Arc<OnceLock<u64>>);

impl MemoryTotal {
    /// Physical memory in bytes; 0 when the backend cannot say. Blocking.
    pub fn get(&self, backend: &dyn Backend) -> u64 {
        *self.0.get_or_init(|| match backend.host() {
            Ok(host) => host.memory_total,
            Err(e) => {
                tracing::warn!(error = %e, "no physical memory size: memory_percent unsupported");
                0
            }
        })
    }
}

/// Fills the derived fields of `p` that `asked` names, from `p`'s own
/// readings: `cpu_percent` against `before` (its reading at the start of
/// the interval; a process that started since, or whose pid was reused,
/// counts from its start), `memory_percent` against `memory_total`. A
/// derived field whose source could not be read takes its source's error.
pub fn fill(
    p: &mut ProcessInfo,
    asked: FieldSet,
    before: Option<&Reading>,
    now: Instant,
    memory_total: u64,
) {
    let error_of = |p: &ProcessInfo, source: Field| {
        p.field_errors
            .iter()
            .find(|(f, _)| *f == source)
            .map_or(ErrorKind::Unsupported, |(_, kind)| *kind)
    };
    if asked.contains(Field::CpuPercent) {
        let after = Reading::of(p, now);
        let measured = before
            .and_then(|b| rates(b, &after))
            .and_then(|r| r.cpu_percent)
            .or_else(|| since_start(p));
        match measured {
            Some(percent) => p.cpu_percent = Some((percent * 10.0).round() / 10.0),
            None => {
                let kind = error_of(p, Field::CpuTimes);
                p.field_errors.push((Field::CpuPercent, kind));
            }
        }
    }
    if asked.contains(Field::MemoryPercent) {
        match p.memory_info {
            Some(m) if memory_total > 0 => {
                p.memory_percent = Some(m.rss as f64 / memory_total as f64 * 100.0)
            }
            Some(_) => p
                .field_errors
                .push((Field::MemoryPercent, ErrorKind::Unsupported)),
            None => {
                let kind = error_of(p, Field::MemoryInfo);
                p.field_errors.push((Field::MemoryPercent, kind));
            }
        }
    }
}

/// CPU use since the process started, for one that was not there at the
/// start of the interval.
fn since_start(p: &ProcessInfo) -> Option<f64> {
    let cpu = p.cpu_times.map(|t| t.user + t.system)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    let lived = now - p.create_time?;
    Some(if lived > 0.0 {
        cpu / lived * 100.0
    } else {
        0.0
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::backend::{CpuTimes, MemoryInfo};

    fn process(cpu: f64, create_time: f64) -> ProcessInfo {
        ProcessInfo {
            pid: 7,
            create_time: Some(create_time),
            cpu_times: Some(CpuTimes {
                user: cpu,
                ..CpuTimes::default()
            }),
            memory_info: Some(MemoryInfo {
                rss: 256,
                ..MemoryInfo::default()
            }),
            ..ProcessInfo::new(7)
        }
    }

    fn asked() -> FieldSet {
        [Field::CpuPercent, Field::MemoryPercent]
            .into_iter()
            .collect()
    }

    #[test]
    fn the_percentages_are_psutils() {
        let start = Instant::now();
        let before = Reading::of(&process(1.0, 100.0), start);
        let mut p = process(1.25, 100.0);
        fill(
            &mut p,
            asked(),
            Some(&before),
            start + Duration::from_millis(500),
            1024,
        );
        assert_eq!(p.cpu_percent, Some(50.0));
        assert_eq!(p.memory_percent, Some(25.0));
        assert_eq!(p.field_errors, []);
    }

    #[test]
    fn a_reused_pid_counts_from_its_new_process_start() {
        let start = Instant::now();
        let before = Reading::of(&process(50.0, 100.0), start);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64();
        let mut p = process(0.0, now - 10.0);
        fill(
            &mut p,
            asked(),
            Some(&before),
            start + Duration::from_millis(100),
            1024,
        );
        assert_eq!(
            p.cpu_percent,
            Some(0.0),
            "not 50 seconds of another process"
        );
    }

    #[test]
    fn a_derived_field_takes_its_sources_error() {
        let mut p = ProcessInfo::new(7);
        p.field_errors = vec![
            (Field::CpuTimes, ErrorKind::ZombieProcess),
            (Field::MemoryInfo, ErrorKind::AccessDenied),
        ];
        fill(&mut p, asked(), None, Instant::now(), 1024);
        assert_eq!(p.cpu_percent, None);
        assert!(
            p.field_errors
                .contains(&(Field::CpuPercent, ErrorKind::ZombieProcess))
        );
        assert!(
            p.field_errors
                .contains(&(Field::MemoryPercent, ErrorKind::AccessDenied))
        );

        let mut q = process(1.0, 100.0);
        fill(&mut q, asked(), None, Instant::now(), 0);
        assert!(
            q.field_errors
                .contains(&(Field::MemoryPercent, ErrorKind::Unsupported))
        );
    }

    #[test]
    fn sources_replace_the_derived_fields() {
        let read = sources(asked());
        assert!(!read.contains(Field::CpuPercent) && !read.contains(Field::MemoryPercent));
        assert!(read.contains(Field::CpuTimes) && read.contains(Field::MemoryInfo));
        assert!(read.contains(Field::CreateTime));
    }
}
