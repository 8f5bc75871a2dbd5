//! `/proc/<pid>/cgroup`: which cgroup a process is in; and the limit and
//! usage files of a cgroup, v2 (cgroup-v2.rst) and v1.

use super::{ParseError, lossy, number, numbered_lines, tokens};

/// The cgroup path of a process from its `/proc/<pid>/cgroup`, in the
/// hierarchy that holds the memory controller: the v1 `memory` hierarchy
/// on hosts that still mount it (there the unified line says only "/"),
/// else the unified (v2) hierarchy's line `0::/path`. `None` when neither
/// is listed.
pub fn parse_proc_cgroup(bytes: &[u8]) -> Option<String> {
    let mut unified = None;
    for line in bytes.split(|&b| b == b'\n') {
        // hierarchy-id:controller-list:path
        let mut parts = line.splitn(3, |&b| b == b':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let text = || String::from_utf8_lossy(path).into_owned();
        if id == b"0" && controllers.is_empty() {
            unified = Some(text());
        } else if controllers.split(|&b| b == b',').any(|c| c == b"memory") {
            return Some(text());
        }
    }
    unified
}

/// The lines of `/proc/<pid>/cgroup`: the unified hierarchy's path (the
/// `0::` line) and each v1 hierarchy's controllers and path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcCgroups {
    /// The path in the unified (v2) hierarchy.
    pub unified: Option<String>,
    /// The v1 hierarchies: controllers (`name=systemd` included) and path.
    pub v1: Vec<(Vec<String>, String)>,
}

impl ProcCgroups {
    /// The path in the v1 hierarchy of `controller`.
    pub fn v1_path(&self, controller: &str) -> Option<&str> {
        self.v1
            .iter()
            .find(|(controllers, _)| controllers.iter().any(|c| c == controller))
            .map(|(_, path)| path.as_str())
    }
}

/// Every line of `/proc/<pid>/cgroup`; lines not of the form
/// `id:controllers:path` are skipped.
pub fn parse_proc_cgroups(bytes: &[u8]) -> ProcCgroups {
    let mut out = ProcCgroups::default();
    for line in bytes.split(|&b| b == b'\n') {
        let mut parts = line.splitn(3, |&b| b == b':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == b"0" && controllers.is_empty() {
            out.unified = Some(lossy(path));
        } else {
            let names = controllers
                .split(|&b| b == b',')
                .filter(|c| !c.is_empty())
                .map(lossy)
                .collect();
            out.v1.push((names, lossy(path)));
        }
    }
    out
}

/// Whether a v2 `cgroup.controllers` file lists `controller`.
pub fn lists_controller(bytes: &[u8], controller: &str) -> bool {
    tokens(bytes).any(|c| c == controller.as_bytes())
}

/// A v2 limit file (`memory.max`, `memory.swap.max`, `pids.max`; v1
/// `pids.max` too): a number, or "max" for no limit (`None`).
pub fn parse_max(bytes: &[u8], what: &str) -> Result<Option<u64>, ParseError> {
    match bytes.trim_ascii() {
        b"max" => Ok(None),
        value => number(value, what, 0).map(Some),
    }
}

/// A file of one number (`memory.current`, `pids.current`, ...).
pub fn parse_count(bytes: &[u8], what: &str) -> Result<u64, ParseError> {
    number(bytes.trim_ascii(), what, 0)
}

/// v2 `cpu.max`: the quota in microseconds ("max" for none) and the
/// period.
pub fn parse_cpu_max(bytes: &[u8]) -> Result<(Option<u64>, u64), ParseError> {
    let mut it = tokens(bytes);
    let quota = parse_max(it.next().unwrap_or_default(), "cpu.max quota")?;
    let period = number(it.next().unwrap_or_default(), "cpu.max period", 0)?;
    Ok((quota, period))
}

/// `usage_usec` of a v2 `cpu.stat`, in microseconds.
pub fn parse_cpu_stat_usage(bytes: &[u8]) -> Result<Option<u64>, ParseError> {
    for (n, line) in numbered_lines(bytes) {
        let mut it = tokens(line);
        if it.next() == Some(b"usage_usec") {
            return number(it.next().unwrap_or_default(), "usage_usec", n).map(Some);
        }
    }
    Ok(None)
}

/// The smallest v1 memory limit that means "unlimited": the kernel prints
/// `PAGE_COUNTER_MAX` pages in bytes, just under 2^63 whatever the page
/// size (9223372036854771712 with 4 KiB pages), and no machine has 2^62
/// bytes.
const V1_UNLIMITED: u64 = 1 << 62;

/// A v1 `memory.limit_in_bytes`: `None` when unlimited.
pub fn parse_v1_limit(bytes: &[u8], what: &str) -> Result<Option<u64>, ParseError> {
    let value: u64 = number(bytes.trim_ascii(), what, 0)?;
    Ok((value < V1_UNLIMITED).then_some(value))
}

/// A v1 `cpu.cfs_quota_us`: `None` for -1, no quota.
pub fn parse_cfs_quota(bytes: &[u8]) -> Result<Option<u64>, ParseError> {
    let value: i64 = number(bytes.trim_ascii(), "cpu.cfs_quota_us", 0)?;
    Ok(u64::try_from(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hierarchy_with_the_memory_controller_names_the_path() {
        assert_eq!(
            parse_proc_cgroup(b"0::/system.slice/ssh.service\n").as_deref(),
            Some("/system.slice/ssh.service")
        );
        // A hybrid host: v1 controllers, and an unused unified hierarchy.
        let hybrid = b"9:name=systemd:/user.slice\n4:memory:/docker/abc\n1:cpu:/\n0::/\n";
        assert_eq!(parse_proc_cgroup(hybrid).as_deref(), Some("/docker/abc"));
        let joined = b"3:cpu,memory:/lxc/c1\n";
        assert_eq!(parse_proc_cgroup(joined).as_deref(), Some("/lxc/c1"));
        assert_eq!(parse_proc_cgroup(b"2:pids:/x\n"), None);
        assert_eq!(parse_proc_cgroup(b""), None);
        assert_eq!(parse_proc_cgroup(b"garbage"), None);
    }

    #[test]
    fn proc_cgroups_of_a_hybrid_host() {
        // Sample from this machine: v1 controllers and an empty unified
        // hierarchy.
        let sample = b"9:name=systemd:/\n4:memory:/process_api/8a73\n2:cpuacct:/\n1:cpu:/\n0::/\n";
        let cgroups = parse_proc_cgroups(sample);
        assert_eq!(cgroups.unified.as_deref(), Some("/"));
        assert_eq!(cgroups.v1_path("memory"), Some("/process_api/8a73"));
        assert_eq!(cgroups.v1_path("name=systemd"), Some("/"));
        assert_eq!(cgroups.v1_path("pids"), None);
        assert_eq!(parse_proc_cgroups(b"garbage\n"), ProcCgroups::default());
    }

    #[test]
    fn v2_files() {
        assert!(lists_controller(b"cpuset cpu io memory pids\n", "memory"));
        assert!(!lists_controller(b"hugetlb\n", "memory"));
        assert_eq!(parse_max(b"max\n", "memory.max"), Ok(None));
        assert_eq!(
            parse_max(b"536870912\n", "memory.max"),
            Ok(Some(536_870_912))
        );
        assert!(parse_max(b"lots\n", "memory.max").is_err());
        assert_eq!(parse_cpu_max(b"max 100000\n"), Ok((None, 100_000)));
        assert_eq!(
            parse_cpu_max(b"50000 100000\n"),
            Ok((Some(50_000), 100_000))
        );
        assert!(parse_cpu_max(b"50000\n").is_err());
        let stat = b"usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n";
        assert_eq!(parse_cpu_stat_usage(stat), Ok(Some(123_456)));
        assert_eq!(parse_cpu_stat_usage(b""), Ok(None));
        assert_eq!(parse_count(b"42\n", "pids.current"), Ok(42));
    }

    #[test]
    fn v1_files() {
        // This machine's unlimited memory cgroup.
        assert_eq!(
            parse_v1_limit(b"9223372036854771712\n", "memory.limit_in_bytes"),
            Ok(None)
        );
        // With 64 KiB pages.
        assert_eq!(
            parse_v1_limit(b"9223372036854710272\n", "memory.limit_in_bytes"),
            Ok(None)
        );
        assert_eq!(
            parse_v1_limit(b"1073741824\n", "memory.limit_in_bytes"),
            Ok(Some(1 << 30))
        );
        assert_eq!(parse_cfs_quota(b"-1\n"), Ok(None));
        assert_eq!(parse_cfs_quota(b"25000\n"), Ok(Some(25_000)));
        assert!(parse_cfs_quota(b"x\n").is_err());
    }
}
