//! `/proc/<pid>/cgroup`: which cgroup a process is in.

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
}
