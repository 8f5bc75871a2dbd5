//! FreeBSD's records: `struct kinfo_proc` and `struct kinfo_file`
//! (`sys/user.h`), `struct if_data` (`net/if.h`), and the process states
//! of `sys/proc.h`. Offsets are those of amd64 and arm64 (LP64), checked
//! against the `libc` crate when the FreeBSD backend is built.

use super::{
    IfDataLayout, IfFlags, Kinfo, Record, SocketRecord, held_socket, records, sockaddr_endpoint,
    socket_family,
};
use crate::backend::{
    CpuTimes, CtxSwitches, FileKind, MemoryInfo, OpenFile, Status,
    parse::{ParseError, lossy},
    socket::HeldSocket,
};

/// Byte offsets in `struct kinfo_proc` (`KINFO_PROC_SIZE` 1088).
pub mod kinfo_proc {
    pub const SIZE: usize = 1088;
    pub const STRUCTSIZE: usize = 0;
    pub const PID: usize = 72;
    pub const PPID: usize = 76;
    pub const UID: usize = 168;
    pub const RUID: usize = 172;
    pub const SVUID: usize = 176;
    pub const RGID: usize = 180;
    pub const SVGID: usize = 184;
    /// `ki_groups[0]`, the effective group.
    pub const GROUPS: usize = 192;
    /// `ki_size`: virtual size in bytes.
    pub const SIZE_BYTES: usize = 256;
    /// `ki_rssize`, `ki_tsize`, `ki_dsize`, `ki_ssize`: pages (`segsz_t`,
    /// 8 bytes).
    pub const RSSIZE: usize = 264;
    pub const TSIZE: usize = 280;
    pub const DSIZE: usize = 288;
    pub const SSIZE: usize = 296;
    pub const START: usize = 336;
    /// `ki_flag`: `P_*` flags (a `long`).
    pub const FLAG: usize = 368;
    pub const STAT: usize = 388;
    pub const NICE: usize = 389;
    /// `ki_comm`: `COMMLEN` + 1 bytes.
    pub const COMM: usize = 447;
    pub const COMM_LEN: usize = 20;
    /// `ki_tdev`: the terminal's `dev_t` (8 bytes since FreeBSD 12).
    pub const TDEV: usize = 560;
    pub const NUMTHREADS: usize = 596;
    /// `ki_rusage` and `ki_rusage_ch` (`struct rusage`).
    pub const RUSAGE: usize = 608;
    pub const RUSAGE_CH: usize = 752;
}

/// Byte offsets in `struct rusage` (`sys/resource.h`).
pub mod rusage {
    pub const UTIME: usize = 0;
    pub const STIME: usize = 16;
    pub const NVCSW: usize = 128;
    pub const NIVCSW: usize = 136;
}

/// `P_SYSTEM` of `ki_flag`: a kernel process.
pub const P_SYSTEM: i64 = 0x200;
/// `NODEV`: no controlling terminal.
pub const NODEV: u64 = u64::MAX;

/// psutil's mapping of `ki_stat` (`sys/proc.h`: SIDL 1, SRUN 2, SSLEEP 3,
/// SSTOP 4, SZOMB 5, SWAIT 6, SLOCK 7).
pub fn status(stat: u8) -> Option<Status> {
    Some(match stat {
        1 => Status::Idle,
        2 => Status::Running,
        3 => Status::Sleeping,
        4 => Status::Stopped,
        5 => Status::Zombie,
        6 => Status::Waiting,
        7 => Status::Locked,
        _ => return None,
    })
}

/// Decodes one `kinfo_proc`; `page_size` converts its page counts.
pub fn kinfo_proc(r: Record<'_>, page_size: u64) -> Result<Kinfo, ParseError> {
    use kinfo_proc as k;
    let structsize = r.id(k::STRUCTSIZE)?;
    if structsize as usize != k::SIZE {
        return Err(ParseError::new(
            0,
            format!(
                "kinfo_proc: ki_structsize {structsize}, expected {}",
                k::SIZE
            ),
        ));
    }
    // Page counts beyond any real memory saturate rather than overflow.
    let pages = |offset| -> Result<u64, ParseError> {
        Ok(u64::try_from(r.i64(offset)?)
            .unwrap_or(0)
            .saturating_mul(page_size))
    };
    let ru = |base: usize, field: usize| base + field;
    let tdev = r.u64(k::TDEV)?;
    let status_code = r.u8(k::STAT)?;
    Ok(Kinfo {
        pid: r.id(k::PID)?,
        ppid: r.id(k::PPID)?,
        status: status(status_code),
        comm: r.cstr(k::COMM, k::COMM_LEN)?.to_vec(),
        uids: Some(r.ids([k::RUID, k::UID, k::SVUID])?),
        gids: Some(r.ids([k::RGID, k::GROUPS, k::SVGID])?),
        tdev: (tdev != NODEV).then_some(tdev),
        nice: Some(i32::from(r.i8(k::NICE)?)),
        create_time: Some(r.timeval(k::START, 8)?),
        num_threads: Some(r.id(k::NUMTHREADS)?),
        ctx_switches: Some(CtxSwitches {
            voluntary: r.u64(ru(k::RUSAGE, rusage::NVCSW))?,
            involuntary: r.u64(ru(k::RUSAGE, rusage::NIVCSW))?,
        }),
        cpu_times: Some(CpuTimes {
            user: r.timeval(ru(k::RUSAGE, rusage::UTIME), 8)?,
            system: r.timeval(ru(k::RUSAGE, rusage::STIME), 8)?,
            children_user: Some(r.timeval(ru(k::RUSAGE_CH, rusage::UTIME), 8)?),
            children_system: Some(r.timeval(ru(k::RUSAGE_CH, rusage::STIME), 8)?),
            iowait: None,
        }),
        memory_info: Some(MemoryInfo {
            rss: pages(k::RSSIZE)?,
            vms: r.u64(k::SIZE_BYTES)?,
            shared: None,
            text: Some(pages(k::TSIZE)?),
            // The API's `data` is data plus stack, as Linux counts it.
            data: Some(pages(k::DSIZE)?.saturating_add(pages(k::SSIZE)?)),
        }),
        system: r.i64(k::FLAG)? & P_SYSTEM != 0,
        partial: None,
    })
}

/// Every process of a `kern.proc.proc` table.
pub fn proc_table(buf: &[u8], page_size: u64) -> Result<Vec<Kinfo>, ParseError> {
    records("kinfo_proc", buf, kinfo_proc::SIZE)?
        .map(|r| kinfo_proc(r, page_size))
        .collect()
}

// === Descriptors ===

/// Byte offsets in `struct kinfo_file` (`sys/user.h`, `KINFO_FILE_SIZE`
/// 1392; FreeBSD 12 and later).
pub mod kinfo_file {
    pub const STRUCTSIZE: usize = 0;
    /// `kf_type`: `KF_TYPE_*`.
    pub const TYPE: usize = 4;
    pub const FD: usize = 8;
    /// `kf_flags`: `KF_FLAG_*`.
    pub const FLAGS: usize = 16;
    /// `kf_offset`: the file offset, an `int64_t`.
    pub const OFFSET: usize = 24;
    /// `kf_vnode_type` (`KF_VTYPE_*`): the first word of the union
    /// `kf_un`, where FreeBSD 12 kept it for compatibility (it is also
    /// `kf_un.kf_file.kf_file_type`).
    pub const VNODE_TYPE: usize = 32;
    pub const PATH: usize = 368;
    pub const PATH_LEN: usize = 1024;
}

/// Byte offsets of `kf_un.kf_sock` in `struct kinfo_file` (`sys/user.h`,
/// FreeBSD 12 and later), for records of `KF_TYPE_SOCKET`: the union
/// starts at 32 with `kf_sock_sendq` (where `kf_vnode_type` is for
/// vnodes), then domain, type and protocol, the two
/// `sockaddr_storage`s (128 bytes each) and the kernel addresses.
pub mod kf_sock {
    /// `kf_sock_domain0`: `AF_*`.
    pub const DOMAIN: usize = 36;
    /// `kf_sock_type0`: `SOCK_*`.
    pub const TYPE: usize = 40;
    /// `kf_sock_protocol0`: `IPPROTO_*`.
    pub const PROTOCOL: usize = 44;
    /// `kf_sa_local`: the socket's own address.
    pub const SA_LOCAL: usize = 48;
    /// `kf_sa_peer`: the address of the peer it is connected to.
    pub const SA_PEER: usize = 176;
    /// `sizeof(struct sockaddr_storage)`.
    pub const SA_LEN: usize = 128;
    /// `kf_sock_pcb`: the address of the socket's protocol control block,
    /// the same in every descriptor of the socket.
    pub const PCB: usize = 304;
}

/// FreeBSD's `AF_INET6` (`sys/socket.h`).
pub const AF_INET6: i32 = 28;

/// `KF_FD_TYPE_CWD`: the record of the working directory.
pub const KF_FD_TYPE_CWD: i32 = -1;

/// `KF_TYPE_*` (`sys/user.h`): what a descriptor is.
pub mod kf_type {
    pub const VNODE: i32 = 1;
    pub const SOCKET: i32 = 2;
    pub const PIPE: i32 = 3;
    pub const FIFO: i32 = 4;
    pub const KQUEUE: i32 = 5;
    pub const PTS: i32 = 10;
    pub const PROCDESC: i32 = 11;
    pub const DEV: i32 = 12;
    /// `KF_TYPE_EVENTFD` and `KF_TYPE_TIMERFD`, which the `libc` crate
    /// does not name.
    pub const EVENTFD: i32 = 13;
    pub const TIMERFD: i32 = 14;
}

/// `KF_VTYPE_*` (`sys/user.h`): what a vnode is.
pub mod kf_vtype {
    pub const VREG: i32 = 1;
    pub const VDIR: i32 = 2;
    pub const VBLK: i32 = 3;
    pub const VCHR: i32 = 4;
    pub const VSOCK: i32 = 6;
    pub const VFIFO: i32 = 7;
}

/// `KF_FLAG_READ`, `KF_FLAG_WRITE` and `KF_FLAG_APPEND` of `kf_flags`.
pub const KF_FLAG_READ: u32 = 0x1;
pub const KF_FLAG_WRITE: u32 = 0x2;
pub const KF_FLAG_APPEND: u32 = 0x4;

/// FreeBSD's `O_WRONLY` and `O_RDWR` (`fcntl.h`).
pub const O_WRONLY: u32 = 0x1;
pub const O_RDWR: u32 = 0x2;

/// The `kf_flags` bits past read and write, each with the `O_*` open
/// flag of FreeBSD's `fcntl.h` it stands for: the inverse of the kernel's
/// table in `kern_descrip.c`. `KF_FLAG_HASLOCK` (a lock taken with
/// flock(2), not an open flag) has no entry.
pub const KF_OPEN_FLAGS: [(u32, u32); 12] = [
    (KF_FLAG_APPEND, 0x8), // O_APPEND
    (0x8, 0x40),           // KF_FLAG_ASYNC: O_ASYNC
    (0x10, 0x80),          // KF_FLAG_FSYNC: O_FSYNC
    (0x20, 0x4),           // KF_FLAG_NONBLOCK: O_NONBLOCK
    (0x40, 0x1_0000),      // KF_FLAG_DIRECT: O_DIRECT
    (0x100, 0x10),         // KF_FLAG_SHLOCK: O_SHLOCK
    (0x200, 0x20),         // KF_FLAG_EXLOCK: O_EXLOCK
    (0x400, 0x100),        // KF_FLAG_NOFOLLOW: O_NOFOLLOW
    (0x800, 0x200),        // KF_FLAG_CREAT: O_CREAT
    (0x1000, 0x400),       // KF_FLAG_TRUNC: O_TRUNC
    (0x2000, 0x800),       // KF_FLAG_EXCL: O_EXCL
    (0x4000, 0x4_0000),    // KF_FLAG_EXEC: O_EXEC
];

/// The open flags, numbered as FreeBSD's `fcntl.h` numbers them, that
/// `kf_flags` records: the access mode (`O_RDONLY`, `O_WRONLY`,
/// `O_RDWR`) and the flags of [`KF_OPEN_FLAGS`]. Close-on-exec belongs to
/// the descriptor, not the open file, and `kinfo_file` does not carry it.
pub fn open_flags(kf_flags: u32) -> u32 {
    let access = match (kf_flags & KF_FLAG_READ != 0, kf_flags & KF_FLAG_WRITE != 0) {
        (true, true) => O_RDWR,
        (false, true) => O_WRONLY,
        _ => 0,
    };
    KF_OPEN_FLAGS
        .iter()
        .filter(|(kf, _)| kf_flags & kf != 0)
        .fold(access, |flags, (_, o)| flags | o)
}

/// psutil's mode of a descriptor with `kf_flags`.
pub fn mode(kf_flags: u32) -> &'static str {
    super::access_mode(
        kf_flags & KF_FLAG_READ != 0,
        kf_flags & KF_FLAG_WRITE != 0,
        kf_flags & KF_FLAG_APPEND != 0,
    )
}

/// What a descriptor of `kf_type` `ty` refers to; for a vnode, by its
/// `kf_vnode_type`.
pub fn kind(ty: i32, vnode_type: i32) -> FileKind {
    use {kf_type as t, kf_vtype as v};
    match ty {
        t::VNODE => match vnode_type {
            v::VREG => FileKind::File,
            v::VDIR => FileKind::Directory,
            v::VBLK | v::VCHR => FileKind::Device,
            v::VSOCK => FileKind::Socket,
            v::VFIFO => FileKind::Pipe,
            _ => FileKind::Other,
        },
        t::SOCKET => FileKind::Socket,
        t::PIPE | t::FIFO => FileKind::Pipe,
        t::PTS | t::DEV => FileKind::Device,
        // The BSD kin of Linux's anonymous inodes: kqueues, process
        // descriptors, eventfds and timerfds.
        t::KQUEUE | t::PROCDESC | t::EVENTFD | t::TIMERFD => FileKind::AnonInode,
        _ => FileKind::Other,
    }
}

/// What a `KERN_PROC_FILEDESC` (or `KERN_PROC_CWD`) buffer says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Files {
    /// The working directory's path, if a record names it.
    pub cwd: Option<String>,
    /// Open descriptors: records with `kf_fd` >= 0 (the others are the
    /// working directory, root, jail root, text file, terminal and trace
    /// file, which are not descriptors).
    pub num_fds: u32,
}

/// Walks the packed `kinfo_file` records of `buf`, handing each to
/// `visit` with its path: each starts with its own size (`kf_structsize`,
/// the path trimmed and rounded up to 8 bytes), so the next one starts
/// there.
fn each_file(
    buf: &[u8],
    mut visit: impl FnMut(Record<'_>, &[u8]) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    use kinfo_file as f;
    let mut rest = buf;
    while !rest.is_empty() {
        let size = Record::new("kinfo_file", rest).id(f::STRUCTSIZE)? as usize;
        if size <= f::PATH || size > rest.len() {
            return Err(ParseError::new(
                0,
                format!(
                    "kinfo_file: kf_structsize {size} with {} bytes left",
                    rest.len()
                ),
            ));
        }
        let record = Record::new("kinfo_file", &rest[..size]);
        let path = record.cstr(f::PATH, size.min(f::PATH + f::PATH_LEN) - f::PATH)?;
        visit(record, path)?;
        rest = &rest[size..];
    }
    Ok(())
}

/// The working directory and the number of descriptors in `buf`.
pub fn files(buf: &[u8]) -> Result<Files, ParseError> {
    let mut out = Files::default();
    each_file(buf, |record, path| {
        let fd = record.i32(kinfo_file::FD)?;
        if fd >= 0 {
            out.num_fds += 1;
        } else if fd == KF_FD_TYPE_CWD {
            out.cwd = Some(lossy(path));
        }
        Ok(())
    })?;
    Ok(out)
}

/// Every descriptor of process `pid` in `buf`, in the kernel's order
/// (ascending), skipping the records of negative `kf_fd` (working
/// directory, root, jail root, trace file, text file, terminal), which
/// are not descriptors. The path is `kf_path`: empty where the kernel
/// has none (sockets, pipes, a vnode whose name it could not find).
/// Whether a file was deleted while open is not recorded: `deleted` is
/// false.
pub fn open_files(pid: u32, buf: &[u8]) -> Result<Vec<OpenFile>, ParseError> {
    use kinfo_file as f;
    let mut out = Vec::new();
    each_file(buf, |r, path| {
        let Ok(fd) = u32::try_from(r.i32(f::FD)?) else {
            return Ok(());
        };
        let flags = r.u32(f::FLAGS)?;
        out.push(OpenFile {
            pid,
            fd,
            path: lossy(path),
            // Descriptors without an offset may report -1.
            position: u64::try_from(r.i64(f::OFFSET)?).unwrap_or(0),
            mode: mode(flags),
            flags: open_flags(flags),
            kind: kind(r.i32(f::TYPE)?, r.i32(f::VNODE_TYPE)?),
            deleted: false,
        });
        Ok(())
    })?;
    Ok(out)
}

// === Interfaces ===

/// `struct if_data` (`net/if.h`, 152 bytes): the counters sit where
/// OpenBSD keeps them, the MTU and link state do not.
pub const IF_DATA: IfDataLayout = IfDataLayout {
    what: "if_data",
    size: 152,
    link_state: Some(4),
    mtu: (8, 4),
    counter_width: 8,
    counters: [16, 24, 32, 40, 48, 64, 72, 96],
    oqdrops: Some(104),
};

/// FreeBSD's `IFF_*` flags (`net/if.h`). The kernel's `IFF_DRV_RUNNING`
/// and `IFF_DRV_OACTIVE` show as `running` and `oactive` in `ifa_flags`;
/// 0x20 (`IFF_NEEDSEPOCH`) is the kernel's own.
pub const FLAGS: IfFlags = IfFlags {
    bit_0x20: &[],
    extra: &[
        (0x2_0000, "ppromisc"),
        (0x4_0000, "monitor"),
        (0x8_0000, "staticarp"),
        (0x20_0000, "dying"),
        (0x40_0000, "renaming"),
    ],
};

/// The sockets of the descriptors of process `pid` in `buf` (a
/// `kern.proc.filedesc` table) that psutil lists: TCP, UDP and unix
/// sockets with their addresses from `kf_sa_local` and `kf_sa_peer`, as
/// `procstat -S` shows them. `kinfo_file` carries no TCP state: TCP
/// sockets are NONE here, and the backend says so.
pub fn sockets(pid: u32, buf: &[u8]) -> Result<Vec<HeldSocket>, ParseError> {
    use kf_sock as k;
    let mut out = Vec::new();
    each_file(buf, |r, _| {
        let Ok(fd) = u32::try_from(r.i32(kinfo_file::FD)?) else {
            return Ok(());
        };
        if r.i32(kinfo_file::TYPE)? != kf_type::SOCKET {
            return Ok(());
        }
        let Some(family) = socket_family(r.i32(k::DOMAIN)?.into(), AF_INET6.into()) else {
            return Ok(());
        };
        let record = SocketRecord {
            pid,
            fd,
            family,
            sock_type: r.i32(k::TYPE)?,
            protocol: r.i32(k::PROTOCOL)?,
            laddr: sockaddr_endpoint(r.field(k::SA_LOCAL, k::SA_LEN)?, family),
            raddr: sockaddr_endpoint(r.field(k::SA_PEER, k::SA_LEN)?, family),
            tcp_state: None,
            key: r.u64(k::PCB)?,
        };
        out.extend(held_socket(record));
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::socket::Family as SocketFamily;
    use crate::backend::{Ids, NetIoCounters, decode::fixture::Bytes};

    /// A `kinfo_proc` of sshd as `ps` would show it: pid 812, parent 1,
    /// sleeping, root with saved uid 0, no terminal, started at
    /// 1700000000.5, 2 threads, 1.25 s user and 0.5 s system time.
    /// Offsets from FreeBSD 14 `sys/user.h` on amd64.
    fn sshd() -> Bytes {
        let mut b = Bytes::zeroed(1088);
        b.i32(0, 1088) // ki_structsize
            .i32(72, 812) // ki_pid
            .i32(76, 1) // ki_ppid
            .u32(168, 0) // ki_uid
            .u32(172, 0) // ki_ruid
            .u32(180, 5) // ki_rgid
            .u32(184, 5) // ki_svgid
            .u32(192, 5) // ki_groups[0]
            .u64(256, 22_000_000) // ki_size
            .i64(264, 2000) // ki_rssize (pages)
            .i64(280, 100) // ki_tsize
            .i64(288, 300) // ki_dsize
            .i64(296, 30) // ki_ssize
            .i64(336, 1_700_000_000) // ki_start.tv_sec
            .i64(344, 500_000) // ki_start.tv_usec
            .i64(368, 0x4000) // ki_flag: P_EXEC
            .put(388, &[3]) // ki_stat: SSLEEP
            .put(389, &[0xfb]) // ki_nice: -5
            .put(447, b"sshd\0") // ki_comm
            .u64(560, u64::MAX) // ki_tdev: NODEV
            .i32(596, 2) // ki_numthreads
            .i64(608, 1) // ki_rusage.ru_utime.tv_sec
            .i64(616, 250_000)
            .i64(624, 0) // ki_rusage.ru_stime
            .i64(632, 500_000)
            .i64(608 + 128, 40) // ki_rusage.ru_nvcsw
            .i64(608 + 136, 7) // ki_rusage.ru_nivcsw
            .i64(752, 3) // ki_rusage_ch.ru_utime.tv_sec
            .i64(768, 4); // ki_rusage_ch.ru_stime.tv_sec
        b
    }

    #[test]
    fn kinfo_proc_fields() {
        let k = kinfo_proc(Record::new("kinfo_proc", &sshd().0), 4096).unwrap();
        assert_eq!((k.pid, k.ppid), (812, 1));
        assert_eq!(k.status, Some(Status::Sleeping));
        assert_eq!(k.comm, b"sshd");
        assert_eq!(
            k.gids,
            Some(Ids {
                real: 5,
                effective: 5,
                saved: 5
            })
        );
        assert_eq!(k.tdev, None);
        assert_eq!(k.nice, Some(-5));
        assert_eq!(k.create_time, Some(1_700_000_000.5));
        assert_eq!(k.num_threads, Some(2));
        assert_eq!(
            k.ctx_switches,
            Some(CtxSwitches {
                voluntary: 40,
                involuntary: 7
            })
        );
        let cpu = k.cpu_times.unwrap();
        assert_eq!((cpu.user, cpu.system), (1.25, 0.5));
        assert_eq!(
            (cpu.children_user, cpu.children_system),
            (Some(3.0), Some(4.0))
        );
        assert_eq!(cpu.iowait, None);
        let mem = k.memory_info.unwrap();
        assert_eq!(mem.rss, 2000 * 4096);
        assert_eq!(mem.vms, 22_000_000);
        assert_eq!(mem.text, Some(100 * 4096));
        assert_eq!(mem.data, Some(330 * 4096));
        assert!(!k.system);
    }

    #[test]
    fn page_counts_beyond_memory_saturate() {
        // Found by `cargo xtask fuzz bsd_decoders`: pages to bytes
        // overflowed, and so did data plus stack.
        let mut b = sshd();
        b.i64(264, i64::MAX) // ki_rssize
            .i64(288, i64::MAX) // ki_dsize
            .i64(296, i64::MAX); // ki_ssize
        let k = kinfo_proc(Record::new("kinfo_proc", &b.0), 4096).unwrap();
        let mem = k.memory_info.unwrap();
        assert_eq!((mem.rss, mem.data), (u64::MAX, Some(u64::MAX)));
    }

    #[test]
    fn zombies_terminals_and_kernel_processes() {
        let mut b = sshd();
        b.put(388, &[5]) // SZOMB
            .u64(560, 0x5a) // a pts device
            .i64(368, 0x200); // P_SYSTEM
        let k = kinfo_proc(Record::new("kinfo_proc", &b.0), 4096).unwrap();
        assert!(k.is_zombie());
        assert_eq!(k.tdev, Some(0x5a));
        assert!(k.system);
    }

    #[test]
    fn tables_check_the_record_size() {
        let one = sshd().0;
        let mut two = one.clone();
        two.extend_from_slice(&one);
        assert_eq!(proc_table(&two, 4096).unwrap().len(), 2);
        assert!(proc_table(&two[..1000], 4096).is_err());
        // A kernel whose kinfo_proc has another size is refused, not misread.
        let mut other = sshd();
        other.i32(0, 1096);
        assert!(proc_table(&other.0, 4096).is_err());
    }

    #[test]
    fn states() {
        let named: Vec<_> = (0..9).map(status).collect();
        assert_eq!(
            named,
            [
                None,
                Some(Status::Idle),
                Some(Status::Running),
                Some(Status::Sleeping),
                Some(Status::Stopped),
                Some(Status::Zombie),
                Some(Status::Waiting),
                Some(Status::Locked),
                None
            ]
        );
    }

    /// A packed `kinfo_file` record, laid out as FreeBSD 14 `sys/user.h`
    /// has it on amd64: `kf_structsize` at 0, `kf_type` at 4, `kf_fd` at
    /// 8, `kf_flags` at 16, `kf_offset` at 24, `kf_vnode_type` at 32 (the
    /// head of `kf_un`), `kf_path` at 368; the size rounded up to 8 bytes
    /// past the path's NUL, as `sys/kern/kern_descrip.c` packs them.
    fn file_entry(
        fd: i32,
        (kf_type, vnode_type): (i32, i32),
        flags: u32,
        offset: i64,
        path: &[u8],
    ) -> Vec<u8> {
        let size = (368 + path.len() + 1).div_ceil(8) * 8;
        let mut b = Bytes::zeroed(size);
        b.i32(0, size as i32) // kf_structsize
            .i32(4, kf_type) // kf_type
            .i32(8, fd) // kf_fd
            .u32(16, flags) // kf_flags
            .i64(24, offset) // kf_offset
            .i32(32, vnode_type) // kf_vnode_type
            .put(368, path); // kf_path
        b.0
    }

    /// A record of a regular file read-only at offset 0.
    fn file_record(fd: i32, path: &[u8]) -> Vec<u8> {
        file_entry(fd, (1, 1), KF_FLAG_READ, 0, path)
    }

    #[test]
    fn descriptor_records() {
        let mut buf = Vec::new();
        buf.extend(file_record(-5, b"/usr/sbin/sshd")); // KF_FD_TYPE_TEXT
        buf.extend(file_record(-1, b"/var/empty")); // KF_FD_TYPE_CWD
        buf.extend(file_record(-2, b"/")); // KF_FD_TYPE_ROOT
        for fd in 0..3 {
            buf.extend(file_record(fd, b"/dev/null"));
        }
        buf.extend(file_record(3, b""));
        let files = files(&buf).unwrap();
        assert_eq!(files.cwd.as_deref(), Some("/var/empty"));
        assert_eq!(files.num_fds, 4);
        assert_eq!(super::files(&[]), Ok(Files::default()));
        // A size running past the buffer is an error, not a panic.
        let mut bad = file_record(0, b"/x");
        bad.truncate(300);
        assert!(super::files(&bad).is_err());
        assert!(super::files(&[0u8; 16]).is_err());
    }

    /// A `sockaddr_in` (`netinet/in.h`: `sin_len`, `sin_family`, the
    /// port in network order at 2, the address at 4).
    fn sin(addr: [u8; 4], port: u16) -> Vec<u8> {
        let mut sa = vec![16, 2];
        sa.extend(port.to_be_bytes());
        sa.extend(addr);
        sa
    }

    /// A `sockaddr_in6` (`netinet6/in6.h`: the port at 2, the address at
    /// 8, the scope id at 24).
    fn sin6(addr: [u8; 16], port: u16) -> Vec<u8> {
        let mut sa = vec![28, 28];
        sa.extend(port.to_be_bytes());
        sa.extend([0; 4]);
        sa.extend(addr);
        sa.extend([0; 4]);
        sa
    }

    /// A `sockaddr_un` (`sys/un.h`: `sun_len` counts the path without its
    /// NUL, which the kernel may or may not store).
    fn sun(path: &[u8]) -> Vec<u8> {
        let mut sa = vec![(2 + path.len()) as u8, 1];
        sa.extend(path);
        sa
    }

    /// A `KF_TYPE_SOCKET` record: `kf_un.kf_sock` from 32 as FreeBSD 14
    /// `sys/user.h` lays it out on amd64 (domain at 36, type at 40,
    /// protocol at 44, `kf_sa_local` at 48, `kf_sa_peer` at 176,
    /// `kf_sock_pcb` at 304), no path.
    fn socket_entry(
        fd: i32,
        (domain, ty, protocol): (i32, i32, i32),
        local: &[u8],
        peer: &[u8],
        pcb: u64,
    ) -> Vec<u8> {
        let mut b = Bytes(file_entry(fd, (2, 0), KF_FLAG_READ | KF_FLAG_WRITE, 0, b""));
        b.i32(36, domain)
            .i32(40, ty)
            .i32(44, protocol)
            .put(48, local)
            .put(176, peer)
            .u64(304, pcb);
        b.0
    }

    /// What `procstat -S` shows of a small server: a listening TCP
    /// socket, an accepted IPv6 connection, a bound UDP socket, a unix
    /// socket connected to syslogd's, a raw ICMP socket and an SCTP
    /// socket (which psutil does not list), and a vnode in between.
    fn server() -> Vec<u8> {
        let any = [0; 4];
        let mut v6 = [0u8; 16];
        v6[..2].copy_from_slice(&[0x20, 0x01]);
        v6[15] = 5;
        let mut peer6 = v6;
        peer6[15] = 9;
        let mut buf = Vec::new();
        buf.extend(file_record(-1, b"/var/db/app")); // KF_FD_TYPE_CWD
        buf.extend(file_record(0, b"/dev/null"));
        buf.extend(socket_entry(3, (2, 1, 6), &sin(any, 8080), &[], 0xa1));
        buf.extend(socket_entry(
            4,
            (28, 1, 6),
            &sin6(v6, 8080),
            &sin6(peer6, 50123),
            0xa2,
        ));
        buf.extend(socket_entry(
            5,
            (2, 2, 17),
            &sin([127, 0, 0, 1], 53),
            &[],
            0xa3,
        ));
        buf.extend(socket_entry(
            6,
            (1, 2, 0),
            &sun(b""),
            &sun(b"/var/run/log"),
            0xa4,
        ));
        buf.extend(socket_entry(7, (2, 3, 1), &sin(any, 0), &[], 0xa5)); // SOCK_RAW, ICMP
        buf.extend(socket_entry(8, (2, 1, 132), &sin(any, 9), &[], 0xa6)); // SCTP
        buf.extend(socket_entry(
            9,
            (1, 1, 0),
            &sun(b"/var/run/app.sock"),
            &[],
            0xa7,
        ));
        buf
    }

    #[test]
    fn socket_descriptors() {
        use crate::backend::socket::{ConnStatus, SockType};
        let got = sockets(812, &server()).unwrap();
        let shown = |e: &crate::backend::socket::Endpoint| match e.ip {
            Some(ip) => format!("{ip}:{}", e.port),
            None => e.path.clone(),
        };
        let rows: Vec<(u32, SocketFamily, SockType, String, Option<String>, u64)> = got
            .iter()
            .map(|h| {
                let s = &h.socket;
                assert_eq!((s.pid, s.status, s.inode), (Some(812), ConnStatus::None, 0));
                (
                    s.fd.unwrap(),
                    s.family,
                    s.kind,
                    shown(&s.laddr),
                    s.raddr.as_ref().map(shown),
                    h.key,
                )
            })
            .collect();
        let row = |fd, family, kind, laddr: &str, raddr: Option<&str>, key| {
            (
                fd,
                family,
                kind,
                laddr.to_owned(),
                raddr.map(str::to_owned),
                key,
            )
        };
        use {SockType as T, SocketFamily as F};
        assert_eq!(
            rows,
            [
                row(3, F::Inet, T::Stream, "0.0.0.0:8080", None, 0xa1),
                row(
                    4,
                    F::Inet6,
                    T::Stream,
                    "2001::5:8080",
                    Some("2001::9:50123"),
                    0xa2
                ),
                row(5, F::Inet, T::Dgram, "127.0.0.1:53", None, 0xa3),
                row(6, F::Unix, T::Dgram, "", Some("/var/run/log"), 0xa4),
                row(9, F::Unix, T::Stream, "/var/run/app.sock", None, 0xa7),
            ]
        );
    }

    #[test]
    fn socket_tables_cut_short_are_errors() {
        let buf = server();
        for cut in [1, 100, buf.len() - 1] {
            assert!(sockets(1, &buf[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(sockets(1, &[]), Ok(Vec::new()));
        // The shortest record the walk accepts still holds `kf_sock`; one
        // cut inside it is an error, not a panic.
        let mut short = socket_entry(3, (2, 1, 6), &sin([0; 4], 80), &[], 1);
        short.truncate(376);
        short[..4].copy_from_slice(&376i32.to_ne_bytes());
        assert_eq!(sockets(1, &short).map(|s| s.len()), Ok(1));
        let mut tiny = socket_entry(3, (2, 1, 6), &sin([0; 4], 80), &[], 1);
        tiny.truncate(40);
        assert!(sockets(1, &tiny).is_err());
    }

    /// What `procstat -f` shows of a small daemon: its working directory,
    /// root and text records, /dev/null on 0-2 (a character device), a log
    /// opened for appending at offset 4096, a database read and written at
    /// 512, a directory, a TCP socket, both ends of a pipe, a kqueue and a
    /// file whose name the kernel could not find.
    fn daemon() -> Vec<u8> {
        const READ: u32 = KF_FLAG_READ;
        const WRITE: u32 = KF_FLAG_WRITE;
        const APPEND: u32 = KF_FLAG_APPEND;
        const NONBLOCK: u32 = 0x20;
        const CREAT: u32 = 0x800;
        let vnode = |vtype| (1, vtype);
        let mut buf = Vec::new();
        buf.extend(file_entry(-1, vnode(2), READ, 0, b"/var/db/app")); // KF_FD_TYPE_CWD
        buf.extend(file_entry(-2, vnode(2), READ, 0, b"/")); // KF_FD_TYPE_ROOT
        buf.extend(file_entry(-5, vnode(1), READ, 0, b"/usr/local/sbin/appd")); // KF_FD_TYPE_TEXT
        for fd in 0..3 {
            buf.extend(file_entry(fd, vnode(4), READ | WRITE, 0, b"/dev/null")); // VCHR
        }
        buf.extend(file_entry(
            3,
            vnode(1),
            WRITE | APPEND | CREAT,
            4096,
            b"/var/log/app.log",
        ));
        buf.extend(file_entry(
            4,
            vnode(1),
            READ | WRITE,
            512,
            b"/var/db/app/data.db",
        ));
        buf.extend(file_entry(5, vnode(2), READ, 0, b"/var/db/app"));
        buf.extend(file_entry(6, (2, 0), READ | WRITE | NONBLOCK, 0, b"")); // KF_TYPE_SOCKET
        buf.extend(file_entry(7, (3, 0), READ | WRITE, 0, b"")); // KF_TYPE_PIPE
        buf.extend(file_entry(8, (3, 0), READ | WRITE, 0, b""));
        buf.extend(file_entry(9, (5, 0), READ | WRITE, -1, b"")); // KF_TYPE_KQUEUE
        buf.extend(file_entry(10, vnode(1), READ, 0, b"")); // name not found
        buf
    }

    #[test]
    fn open_descriptors() {
        let got = open_files(812, &daemon()).unwrap();
        let rows: Vec<(u32, &str, FileKind, u64, &str)> = got
            .iter()
            .map(|f| (f.fd, f.path.as_str(), f.kind, f.position, f.mode))
            .collect();
        assert_eq!(
            rows,
            [
                (0, "/dev/null", FileKind::Device, 0, "r+"),
                (1, "/dev/null", FileKind::Device, 0, "r+"),
                (2, "/dev/null", FileKind::Device, 0, "r+"),
                (3, "/var/log/app.log", FileKind::File, 4096, "a"),
                (4, "/var/db/app/data.db", FileKind::File, 512, "r+"),
                (5, "/var/db/app", FileKind::Directory, 0, "r"),
                (6, "", FileKind::Socket, 0, "r+"),
                (7, "", FileKind::Pipe, 0, "r+"),
                (8, "", FileKind::Pipe, 0, "r+"),
                (9, "", FileKind::AnonInode, 0, "r+"),
                (10, "", FileKind::File, 0, "r"),
            ]
        );
        assert!(got.iter().all(|f| f.pid == 812 && !f.deleted));
        // FreeBSD's O_WRONLY | O_APPEND | O_CREAT; O_RDWR | O_NONBLOCK.
        assert_eq!(got[3].flags, 0x1 | 0x8 | 0x200);
        assert_eq!(got[6].flags, 0x2 | 0x4);
        // The same buffer counts the same descriptors.
        let counted = files(&daemon()).unwrap();
        assert_eq!(counted.num_fds as usize, got.len());
        assert_eq!(counted.cwd.as_deref(), Some("/var/db/app"));
    }

    #[test]
    fn open_flags_and_modes() {
        assert_eq!((open_flags(0x1), mode(0x1)), (0, "r"));
        assert_eq!((open_flags(0x2), mode(0x2)), (0x1, "w"));
        assert_eq!((open_flags(0x3 | 0x4), mode(0x3 | 0x4)), (0x2 | 0x8, "a+"));
        // Opened for execution only: O_EXEC, neither read nor write.
        assert_eq!((open_flags(0x4000), mode(0x4000)), (0x4_0000, ""));
        // KF_FLAG_HASLOCK is no open flag.
        assert_eq!(open_flags(0x1 | 0x80), 0);
        let every = KF_OPEN_FLAGS.iter().fold(0x3, |all, (kf, _)| all | kf);
        assert_eq!(open_flags(every).count_ones(), 13);
    }

    #[test]
    fn kinds_of_descriptors() {
        assert_eq!(kind(4, 0), FileKind::Pipe); // KF_TYPE_FIFO
        assert_eq!(kind(1, 7), FileKind::Pipe); // a vnode of KF_VTYPE_VFIFO
        assert_eq!(kind(1, 6), FileKind::Socket); // KF_VTYPE_VSOCK
        assert_eq!(kind(1, 3), FileKind::Device); // KF_VTYPE_VBLK
        assert_eq!(kind(1, 5), FileKind::Other); // KF_VTYPE_VLNK
        assert_eq!(kind(10, 0), FileKind::Device); // KF_TYPE_PTS
        assert_eq!(kind(11, 0), FileKind::AnonInode); // KF_TYPE_PROCDESC
        assert_eq!(kind(8, 0), FileKind::Other); // KF_TYPE_SHM
        assert_eq!(kind(255, 0), FileKind::Other); // KF_TYPE_UNKNOWN
    }

    #[test]
    fn malformed_descriptor_tables_are_errors() {
        let buf = daemon();
        // Cut inside a record, or with a size too small to hold a path.
        for cut in [1, 7, 300, buf.len() - 1] {
            assert!(open_files(1, &buf[..cut]).is_err(), "cut at {cut}");
        }
        let mut small = file_record(3, b"/x");
        small[..4].copy_from_slice(&368i32.to_ne_bytes());
        assert!(open_files(1, &small).is_err());
        let mut negative = file_record(3, b"/x");
        negative[..4].copy_from_slice(&(-8i32).to_ne_bytes());
        assert!(open_files(1, &negative).is_err());
        // A path filling the whole record, with no NUL, is cut at the end.
        let mut full = file_record(3, b"");
        let size = full.len();
        full[368..size].fill(b'a');
        assert_eq!(open_files(1, &full).unwrap()[0].path.len(), size - 368);
        assert_eq!(open_files(1, &[]), Ok(Vec::new()));
    }

    #[test]
    fn interface_counters() {
        let mut b = Bytes::zeroed(152);
        b.put(4, &[2]) // ifi_link_state: LINK_STATE_UP
            .u32(8, 1500) // ifi_mtu
            .u64(16, 1_000_000_000) // ifi_baudrate
            .u64(24, 11) // ifi_ipackets
            .u64(32, 1) // ifi_ierrors
            .u64(40, 22) // ifi_opackets
            .u64(48, 2) // ifi_oerrors
            .u64(64, 1100) // ifi_ibytes
            .u64(72, 2200) // ifi_obytes
            .u64(96, 3) // ifi_iqdrops
            .u64(104, 4); // ifi_oqdrops
        let d = IF_DATA.decode(&b.0).unwrap();
        assert_eq!((d.link_state, d.mtu, d.speed_mbps()), (2, 1500, 1000));
        assert_eq!(
            d.counters,
            NetIoCounters {
                bytes_sent: 2200,
                bytes_recv: 1100,
                packets_sent: 22,
                packets_recv: 11,
                errin: 1,
                errout: 2,
                dropin: 3,
                dropout: 4,
            }
        );
        assert!(IF_DATA.decode(&b.0[..100]).is_err());
    }

    #[test]
    fn flag_names() {
        // ifconfig's "flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST>".
        assert_eq!(
            FLAGS.names(0x8843),
            "up,broadcast,running,simplex,multicast"
        );
        // lo0: "flags=8049<UP,LOOPBACK,RUNNING,MULTICAST>".
        assert_eq!(FLAGS.names(0x8049), "up,loopback,running,multicast");
    }
}
