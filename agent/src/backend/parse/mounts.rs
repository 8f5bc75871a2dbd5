//! Mount tables: `/proc/self/mounts` (psutil's `disk_partitions`),
//! `/proc/filesystems` (its `all=False` filter) and `/proc/self/mountinfo`
//! (where the cgroup hierarchies are mounted).

use std::collections::BTreeSet;

use super::{ParseError, lossy, numbered_lines};
use crate::backend::system::Partition;

/// Undoes the octal escapes (`\040` for a space, `\011`, `\012`, `\134`)
/// that the kernel writes in mount table fields, as getmntent(3) does.
pub fn unescape(field: &[u8]) -> String {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let value =
                    (d[0] - b'0') as u32 * 64 + (d[1] - b'0') as u32 * 8 + (d[2] - b'0') as u32;
                out.push(value as u8);
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    lossy(&out)
}

fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| *b == b' ' || *b == b'\t')
        .filter(|f| !f.is_empty())
}

/// Every line of `/proc/self/mounts` (fstab(5) format), in order, as
/// getmntent(3) gives them.
pub fn parse_mounts(bytes: &[u8]) -> Result<Vec<Partition>, ParseError> {
    let mut out = Vec::new();
    for (n, line) in numbered_lines(bytes) {
        let mut it = fields(line);
        let Some(device) = it.next() else { continue };
        let (Some(mountpoint), Some(fstype), Some(opts)) = (it.next(), it.next(), it.next()) else {
            return Err(ParseError::new(
                n,
                format!("fewer than 4 fields: {:?}", lossy(line)),
            ));
        };
        out.push(Partition {
            device: unescape(device),
            mountpoint: unescape(mountpoint),
            fstype: unescape(fstype),
            opts: unescape(opts),
        });
    }
    Ok(out)
}

/// The file system types of `/proc/filesystems` that need a block device
/// (lines without `nodev`), plus zfs, as psutil's `disk_partitions(all=False)`
/// keeps them.
pub fn parse_filesystems(bytes: &[u8]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, line) in numbered_lines(bytes) {
        let mut it = fields(line);
        match (it.next(), it.next()) {
            (Some(b"nodev"), Some(b"zfs")) => {
                out.insert("zfs".to_owned());
            }
            (Some(b"nodev"), _) | (None, _) => {}
            (Some(fstype), _) => {
                out.insert(lossy(fstype));
            }
        }
    }
    out
}

/// psutil's `disk_partitions(all)` from the mount table: a device of
/// "none" becomes "", and without `all` only mounts with a device and a
/// file system type of `physical` ([`parse_filesystems`]) remain.
pub fn select_partitions(
    mounts: Vec<Partition>,
    all: bool,
    physical: &BTreeSet<String>,
) -> Vec<Partition> {
    mounts
        .into_iter()
        .map(|mut p| {
            if p.device == "none" {
                p.device.clear();
            }
            p
        })
        .filter(|p| all || (!p.device.is_empty() && physical.contains(&p.fstype)))
        .collect()
}

/// The name of block device `major:minor` in `/proc/partitions` (after
/// its two header lines), for psutil's search of the device behind
/// "/dev/root".
pub fn partition_name(bytes: &[u8], major: u32, minor: u32) -> Option<String> {
    numbered_lines(bytes).skip(2).find_map(|(_, line)| {
        let f: Vec<&[u8]> = fields(line).collect();
        let number = |b: &[u8]| std::str::from_utf8(b).ok()?.parse::<u32>().ok();
        (f.len() >= 4 && number(f[0]) == Some(major) && number(f[1]) == Some(minor))
            .then(|| lossy(f[3]))
            .filter(|name| !name.is_empty())
    })
}

/// `DEVNAME` of a sysfs `uevent` file (`/sys/dev/block/M:m/uevent`).
pub fn uevent_devname(bytes: &[u8]) -> Option<String> {
    numbered_lines(bytes).find_map(|(_, line)| {
        let name = line.trim_ascii().strip_prefix(b"DEVNAME=")?;
        (!name.is_empty()).then(|| lossy(name))
    })
}

/// One line of `/proc/self/mountinfo`, the fields the agent uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountInfo {
    /// The directory of the file system mounted here ("/" for all of it).
    pub root: String,
    /// Where it is mounted.
    pub mountpoint: String,
    /// The file system type ("cgroup2").
    pub fstype: String,
    /// The super block's options ("rw,memory" for a v1 cgroup hierarchy).
    pub super_opts: String,
}

/// Every line of `/proc/self/mountinfo` (proc(5)): `id parent major:minor
/// root mountpoint options [optional fields...] - fstype source
/// super-options`.
pub fn parse_mountinfo(bytes: &[u8]) -> Result<Vec<MountInfo>, ParseError> {
    let mut out = Vec::new();
    for (n, line) in numbered_lines(bytes) {
        let all: Vec<&[u8]> = fields(line).collect();
        if all.is_empty() {
            continue;
        }
        let bad = || ParseError::new(n, format!("not a mountinfo line: {:?}", lossy(line)));
        let dash = all.iter().position(|f| *f == b"-").ok_or_else(bad)?;
        if dash < 6 || all.len() < dash + 3 {
            return Err(bad());
        }
        out.push(MountInfo {
            root: unescape(all[3]),
            mountpoint: unescape(all[4]),
            fstype: unescape(all[dash + 1]),
            super_opts: all.get(dash + 3).map(|o| unescape(o)).unwrap_or_default(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Sample from this machine's /proc/self/mounts, cut, with a made-up
    // mount point holding a space.
    const MOUNTS: &[u8] = b"proc /proc proc rw,relatime 0 0
devpts /dev/pts devpts rw,relatime,mode=600,ptmxmode=000 0 0
/dev/vda / ext4 rw,relatime,discard,resv_strict,resuid=65534,resgid=65534 0 0
none /mnt/my\\040disk ext4 rw 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
";

    #[test]
    fn partitions_as_psutil_lists_them() {
        let mounts = parse_mounts(MOUNTS).unwrap();
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[3].mountpoint, "/mnt/my disk");
        assert_eq!(
            mounts[2].opts,
            "rw,relatime,discard,resv_strict,resuid=65534,resgid=65534"
        );
        // Sample from this machine's /proc/filesystems, cut.
        let physical =
            parse_filesystems(b"nodev\tsysfs\nnodev\tproc\n\text4\n\tbtrfs\nnodev\tzfs\n");
        assert_eq!(
            physical.iter().map(String::as_str).collect::<Vec<_>>(),
            ["btrfs", "ext4", "zfs"]
        );
        let some = select_partitions(mounts.clone(), false, &physical);
        assert_eq!(
            some.iter()
                .map(|p| p.mountpoint.as_str())
                .collect::<Vec<_>>(),
            ["/"]
        );
        let all = select_partitions(mounts, true, &physical);
        assert_eq!(all.len(), 5);
        assert_eq!(all[3].device, "");
        assert!(parse_mounts(b"proc /proc\n").is_err());
    }

    #[test]
    fn mountinfo_finds_cgroup_hierarchies() {
        // Sample from this machine's /proc/self/mountinfo, cut.
        let sample = b"27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
";
        let mounts = parse_mountinfo(sample).unwrap();
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[1].super_opts, "rw,memory");
        assert_eq!(mounts[2].fstype, "cgroup2");
        assert_eq!(mounts[2].mountpoint, "/sys/fs/cgroup/unified");
        assert_eq!(mounts[2].root, "/");
        assert_eq!(parse_mountinfo(b"1 2 3\n").unwrap_err().line, 1);
    }

    #[test]
    fn the_device_behind_dev_root() {
        // Sample from this machine's /proc/partitions.
        let partitions = b"major minor  #blocks  name\n\n 254        0  268435456 vda\n 253        0    1048576 zram0\n";
        assert_eq!(partition_name(partitions, 254, 0).as_deref(), Some("vda"));
        assert_eq!(partition_name(partitions, 254, 1), None);
        let uevent = b"MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n";
        assert_eq!(uevent_devname(uevent).as_deref(), Some("vda"));
        assert_eq!(uevent_devname(b"MAJOR=1\n"), None);
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(b"a\\040b\\134c\\"), "a b\\c\\");
        assert_eq!(unescape(b"\\09"), "\\09");
    }
}
