//! NetBSD's records: `struct kinfo_proc2` and `struct kinfo_file`
//! (`sys/sysctl.h`), `struct if_data` (`net/if.h`), and the process and
//! LWP states of `sys/proc.h` and `sys/lwp.h`. Offsets are those of amd64
//! and arm64, checked against the `libc` crate where it has the
//! structure when the NetBSD backend is built.

use super::{
    IfDataLayout, IfFlags, Kinfo, Record,
    netbsdlike::{Extra, KinfoLayout},
};
use crate::backend::{Status, parse::ParseError};

/// `struct kinfo_proc2` (680 bytes in NetBSD 10).
pub const KINFO_PROC2: KinfoLayout = KinfoLayout {
    what: "kinfo_proc2",
    size: 680,
    flag: 112,
    pid: 116,
    ppid: 120,
    uid: 136,
    ruid: 140,
    svuid: 640,
    groups: 152,
    rgid: 148,
    svgid: 644,
    tdev: 220,
    stat: 360,
    nice: 363,
    comm: 368,
    comm_len: 24,
    vm: [432, 436, 440, 444],
    uvalid: 448,
    ustart: (456, 4, 460),
    uutime: 464,
    ustime: 472,
    uctime: 592,
    nvcsw: 576,
    nivcsw: 584,
};

/// `p_nlwps`: the process's threads (LWPs).
pub const NLWPS: usize = 616;
/// `p_realstat`: the process state, where `p_stat` holds the state of a
/// representative LWP.
pub const REALSTAT: usize = 632;
/// `p_vm_vsize`: the virtual size in pages.
pub const VM_VSIZE: usize = 664;

/// The state of an entry. `p_realstat` is the process's (`sys/proc.h`:
/// SIDL 1, SACTIVE 2, SDYING 3, SSTOP 4, SZOMB 5, SDEAD 6); for an active
/// process `p_stat` is one LWP's (`sys/lwp.h`: LSIDL 1, LSRUN 2, LSSLEEP
/// 3, LSSTOP 4, LSZOMB 5, LSONPROC 7, LSSUSPENDED 8). A dying process
/// has exited and waits to be reaped, as a zombie does.
pub fn status(realstat: u64, stat: u8) -> Option<Status> {
    Some(match realstat {
        1 => Status::Idle,
        3 | 5 => Status::Zombie,
        4 => Status::Stopped,
        6 => Status::Dead,
        2 => match stat {
            1 => Status::Idle,
            2 | 7 => Status::Running,
            3 => Status::Sleeping,
            4 => Status::Stopped,
            5 => Status::Zombie,
            8 => Status::Suspended,
            _ => return None,
        },
        _ => return None,
    })
}

/// What NetBSD's `kinfo_proc2` adds: the state and the LWP count.
pub fn extra(r: Record<'_>) -> Result<Extra, ParseError> {
    Ok(Extra {
        status: status(r.u64(REALSTAT)?, r.u8(KINFO_PROC2.stat)?),
        num_threads: Some(u32::try_from(r.u64(NLWPS)?).unwrap_or(u32::MAX)),
    })
}

/// Decodes a `KERN_PROC2` table. The virtual size is `p_vm_vsize`, the
/// whole address space, as Linux counts it.
pub fn proc_table(buf: &[u8], page_size: u64) -> Result<Vec<Kinfo>, ParseError> {
    let mut all = super::netbsdlike::table(&KINFO_PROC2, buf, page_size, extra)?;
    for (k, r) in all
        .iter_mut()
        .zip(super::records(KINFO_PROC2.what, buf, KINFO_PROC2.size)?)
    {
        if let Some(memory) = k.memory_info.as_mut() {
            memory.vms = u64::try_from(r.i64(VM_VSIZE)?)
                .unwrap_or(0)
                .saturating_mul(page_size);
        }
    }
    Ok(all)
}

/// `struct kinfo_file` of `KERN_FILE2`: its size, and the offset of
/// `ki_fd`.
pub const KINFO_FILE_SIZE: usize = 120;
/// See [`KINFO_FILE_SIZE`].
pub const KINFO_FILE_FD: usize = 108;

/// `struct if_data` (`net/if.h`, 136 bytes): an `int` link state and
/// 64-bit fields throughout; no output drop counter.
pub const IF_DATA: IfDataLayout = IfDataLayout {
    what: "if_data",
    size: 136,
    link_state: Some(4),
    mtu: (8, 8),
    counter_width: 8,
    counters: [24, 32, 40, 48, 56, 72, 80, 104],
    oqdrops: None,
};

/// NetBSD's `IFF_*` flags (`net/if.h`): `notrailers` at 0x20, nothing above
/// 0x8000.
pub const FLAGS: IfFlags = IfFlags {
    bit_0x20: &[(0x20, "notrailers")],
    extra: &[],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::decode::{fixture::Bytes, netbsdlike::count_fds};

    /// A `kinfo_proc2` of sshd as NetBSD 10 `sys/sysctl.h` lays it out on
    /// amd64: active (SACTIVE) with its LWP asleep (LSSLEEP), 3 LWPs.
    fn sshd() -> Bytes {
        let mut b = Bytes::zeroed(680);
        b.i32(116, 700) // p_pid
            .i32(120, 1) // p_ppid
            .u32(220, 0x0500) // p_tdev: a pty
            .put(360, &[3]) // p_stat: LSSLEEP
            .put(363, &[25]) // p_nice: NZERO + 5
            .put(368, b"sshd\0") // p_comm
            .i32(432, 10) // p_vm_rssize
            .i64(448, 1) // p_uvalid
            .u32(456, 1_700_000_000) // p_ustart_sec (32-bit on NetBSD)
            .u32(460, 500_000) // p_ustart_usec
            .u64(616, 3) // p_nlwps
            .u64(632, 2) // p_realstat: SACTIVE
            .i64(664, 5000); // p_vm_vsize (pages)
        b
    }

    #[test]
    fn kinfo_proc2_fields() {
        let k = &proc_table(&sshd().0, 4096).unwrap()[0];
        assert_eq!((k.pid, k.ppid), (700, 1));
        assert_eq!(k.status, Some(Status::Sleeping));
        assert_eq!(k.nice, Some(5));
        assert_eq!(k.tdev, Some(0x500));
        assert_eq!(k.create_time, Some(1_700_000_000.5));
        assert_eq!(k.num_threads, Some(3));
        let mem = k.memory_info.unwrap();
        assert_eq!((mem.rss, mem.vms), (10 * 4096, 5000 * 4096));
    }

    #[test]
    fn a_virtual_size_beyond_memory_saturates() {
        // Found by `cargo xtask fuzz bsd_decoders`: pages to bytes
        // overflowed.
        let mut b = sshd();
        b.i64(664, i64::MAX); // p_vm_vsize (pages)
        let k = &proc_table(&b.0, 4096).unwrap()[0];
        assert_eq!(k.memory_info.unwrap().vms, u64::MAX);
    }

    #[test]
    fn states() {
        assert_eq!(status(5, 0), Some(Status::Zombie));
        assert_eq!(status(3, 3), Some(Status::Zombie), "dying");
        assert_eq!(status(6, 0), Some(Status::Dead));
        assert_eq!(status(4, 3), Some(Status::Stopped));
        assert_eq!(status(2, 7), Some(Status::Running));
        assert_eq!(status(2, 2), Some(Status::Running));
        assert_eq!(status(2, 8), Some(Status::Suspended));
        assert_eq!(status(2, 9), None);
        assert_eq!(status(0, 3), None);
        let mut zombie = sshd();
        zombie.u64(632, 5).i64(448, 0);
        let k = &proc_table(&zombie.0, 4096).unwrap()[0];
        assert!(k.is_zombie());
        assert_eq!(k.create_time, None);
    }

    #[test]
    fn descriptors() {
        let record = |fd: i32| {
            let mut b = Bytes::zeroed(KINFO_FILE_SIZE);
            b.i32(KINFO_FILE_FD, fd);
            b.0
        };
        let buf: Vec<u8> = [0, 1, 2, 7].into_iter().flat_map(record).collect();
        assert_eq!(
            count_fds("kinfo_file", &buf, KINFO_FILE_SIZE, KINFO_FILE_FD),
            Ok(4)
        );
        assert!(count_fds("kinfo_file", &buf[..100], KINFO_FILE_SIZE, KINFO_FILE_FD).is_err());
    }

    #[test]
    fn interface_counters() {
        let mut b = Bytes::zeroed(136);
        b.i32(4, 2) // ifi_link_state: LINK_STATE_UP
            .u64(8, 1500) // ifi_mtu
            .u64(24, 100_000_000) // ifi_baudrate
            .u64(72, 1000) // ifi_ibytes
            .u64(80, 2000) // ifi_obytes
            .u64(104, 3); // ifi_iqdrops
        let d = IF_DATA.decode(&b.0).unwrap();
        assert_eq!((d.link_state, d.mtu, d.speed_mbps()), (2, 1500, 100));
        assert_eq!((d.counters.bytes_recv, d.counters.bytes_sent), (1000, 2000));
        assert_eq!((d.counters.dropin, d.counters.dropout), (3, 0));
    }
}
