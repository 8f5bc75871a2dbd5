//! `/proc/diskstats`: I/O counters of every block device, with psutil's
//! reading of its three layouts (Documentation/admin-guide/iostats.rst).

use super::{ParseError, lossy, number, numbered_lines, tokens};
use crate::backend::system::DiskIo;

/// Bytes per sector in the kernel's counters, whatever the device's own
/// sector size (psutil's `DISK_SECTOR_SIZE`).
pub const SECTOR_BYTES: u64 = 512;

/// Every line of `/proc/diskstats`, in order; `whole_disk` is left false
/// for the caller, who knows `/sys/block`. A partition line of a 2.6
/// kernel counts no times or merges: those are `None`.
pub fn parse_diskstats(bytes: &[u8]) -> Result<Vec<DiskIo>, ParseError> {
    let mut out = Vec::new();
    for (n, line) in numbered_lines(bytes) {
        let f: Vec<&[u8]> = tokens(line).collect();
        if f.is_empty() {
            continue;
        }
        let num = |i: usize, what: &str| number::<u64>(f[i], what, n);
        let sectors = |v: u64| v.wrapping_mul(SECTOR_BYTES);
        let disk = match f.len() {
            // 2.4: "major minor #blocks name reads merged sectors ms ...".
            15 => DiskIo {
                name: lossy(f[3]),
                read_count: num(2, "reads")?,
                read_merged_count: Some(num(4, "reads merged")?),
                read_bytes: sectors(num(5, "sectors read")?),
                read_time: Some(num(6, "ms reading")?),
                write_count: num(7, "writes")?,
                write_merged_count: Some(num(8, "writes merged")?),
                write_bytes: sectors(num(9, "sectors written")?),
                write_time: Some(num(10, "ms writing")?),
                busy_time: Some(num(12, "ms doing I/O")?),
                whole_disk: false,
            },
            // 2.6 and later: 14 fields, 18 since 4.18, 20 since 5.5.
            14 | 18.. => DiskIo {
                name: lossy(f[2]),
                read_count: num(3, "reads")?,
                read_merged_count: Some(num(4, "reads merged")?),
                read_bytes: sectors(num(5, "sectors read")?),
                read_time: Some(num(6, "ms reading")?),
                write_count: num(7, "writes")?,
                write_merged_count: Some(num(8, "writes merged")?),
                write_bytes: sectors(num(9, "sectors written")?),
                write_time: Some(num(10, "ms writing")?),
                busy_time: Some(num(12, "ms doing I/O")?),
                whole_disk: false,
            },
            // A 2.6 partition: reads, sectors read, writes, sectors written.
            7 => DiskIo {
                name: lossy(f[2]),
                read_count: num(3, "reads")?,
                read_bytes: sectors(num(4, "sectors read")?),
                write_count: num(5, "writes")?,
                write_bytes: sectors(num(6, "sectors written")?),
                ..DiskIo::default()
            },
            len => {
                return Err(ParseError::new(
                    n,
                    format!("{len} fields, not a diskstats layout: {:?}", lossy(line)),
                ));
            }
        };
        out.push(disk);
    }
    Ok(out)
}

/// A sysfs block device's `stat` file (`/sys/block/sda/stat`,
/// `/sys/block/sda/sda1/stat`), the fallback psutil reads where there is
/// no `/proc/diskstats`: the diskstats counters without the name.
pub fn parse_block_stat(name: &str, bytes: &[u8]) -> Result<DiskIo, ParseError> {
    let f: Vec<&[u8]> = tokens(bytes).collect();
    if f.len() < 10 {
        return Err(ParseError::new(
            0,
            format!("{} fields, expected at least 10", f.len()),
        ));
    }
    let num = |i: usize, what: &str| number::<u64>(f[i], what, 0);
    Ok(DiskIo {
        name: name.to_owned(),
        whole_disk: false,
        read_count: num(0, "reads")?,
        read_merged_count: Some(num(1, "reads merged")?),
        read_bytes: num(2, "sectors read")?.wrapping_mul(SECTOR_BYTES),
        read_time: Some(num(3, "ms reading")?),
        write_count: num(4, "writes")?,
        write_merged_count: Some(num(5, "writes merged")?),
        write_bytes: num(6, "sectors written")?.wrapping_mul(SECTOR_BYTES),
        write_time: Some(num(7, "ms writing")?),
        busy_time: Some(num(9, "ms doing I/O")?),
    })
}

/// The name of a block device's directory under `/sys/block`: a '/' in
/// the kernel's name ("cciss/c0d0") is a '!' there.
pub fn sys_block_name(name: &str) -> String {
    name.replace('/', "!")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_layouts() {
        // Sample from this machine (kernel 6.18.44, 20 fields), and the
        // older layouts of iostats.rst.
        let sample = b"   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 1994317 55734 85468810 2666270 303111 673939 368523864 2241978 0 260132 4998655 494758 57 318109968 87494 18664 2911
   3    1   hda1 8 16 24 32
   3     0   8 hda 1 2 3 4 5 6 7 8 9 10 11
";
        let disks = parse_diskstats(sample).unwrap();
        assert_eq!(disks.len(), 4);
        let vda = &disks[1];
        assert_eq!(vda.name, "vda");
        assert_eq!(vda.read_count, 1_994_317);
        assert_eq!(vda.read_merged_count, Some(55_734));
        assert_eq!(vda.read_bytes, 85_468_810 * 512);
        assert_eq!(vda.read_time, Some(2_666_270));
        assert_eq!(vda.write_count, 303_111);
        assert_eq!(vda.write_merged_count, Some(673_939));
        assert_eq!(vda.write_bytes, 368_523_864 * 512);
        assert_eq!(vda.write_time, Some(2_241_978));
        assert_eq!(vda.busy_time, Some(260_132));
        let hda1 = &disks[2];
        assert_eq!((hda1.read_count, hda1.read_bytes), (8, 16 * 512));
        assert_eq!((hda1.write_count, hda1.write_bytes), (24, 32 * 512));
        assert_eq!(hda1.read_time, None);
        let hda = &disks[3];
        assert_eq!((hda.name.as_str(), hda.read_count), ("hda", 8));
        assert_eq!(hda.busy_time, Some(9));
        assert_eq!(parse_diskstats(b"1 2 sda 1 2\n").unwrap_err().line, 1);
        assert!(parse_diskstats(b"1 2 sda x 2 3 4\n").is_err());
        assert_eq!(sys_block_name("cciss/c0d0"), "cciss!c0d0");
        // This machine's /sys/block/vda/stat.
        let stat = b" 2038979    59678 89483082  2737322   315386   691505 385116864  2319874        0   271640  5161396   498063       57 320542288    88580    18727     2921\n";
        let vda = parse_block_stat("vda", stat).unwrap();
        assert_eq!(vda.read_bytes, 89_483_082 * 512);
        assert_eq!(vda.busy_time, Some(271_640));
        assert_eq!(vda.write_merged_count, Some(691_505));
        assert!(parse_block_stat("vda", b"1 2 3\n").is_err());
    }
}
