//! macOS's records: libproc's `struct proc_bsdinfo` and `struct
//! proc_taskinfo` (`sys/proc_info.h`), the `KERN_PROCARGS2` blob
//! (`kern_sysctl.c`), and the `RTM_IFINFO2` routing messages with `struct
//! if_data64` (`net/if.h`, `net/if_var.h`). Offsets are those of x86_64
//! and arm64, checked against the `libc` crate when the macOS backend is
//! built.

use super::{
    IfData, IfDataLayout, Kinfo, Record, SocketRecord, held_socket, ip_endpoint, sockaddr_endpoint,
    socket_family, timeval_secs, until_nul,
};
use crate::backend::{
    CpuTimes, FileKind, MemoryInfo, OpenFile, Status,
    parse::{ParseError, lossy},
    socket::{Family as SocketFamily, HeldSocket},
};

/// Byte offsets in `struct proc_bsdinfo` (136 bytes).
pub mod bsdinfo {
    pub const SIZE: usize = 136;
    pub const FLAGS: usize = 0;
    pub const STATUS: usize = 4;
    pub const PID: usize = 12;
    pub const PPID: usize = 16;
    pub const UID: usize = 20;
    pub const GID: usize = 24;
    pub const RUID: usize = 28;
    pub const RGID: usize = 32;
    pub const SVUID: usize = 36;
    pub const SVGID: usize = 40;
    /// `pbi_comm`: `MAXCOMLEN` (16) bytes.
    pub const COMM: usize = 48;
    /// `pbi_name`: 2 * `MAXCOMLEN` bytes, the longer name.
    pub const NAME: usize = 64;
    pub const TDEV: usize = 108;
    pub const NICE: usize = 116;
    pub const START_SEC: usize = 120;
    pub const START_USEC: usize = 128;
}

/// Byte offsets in `struct proc_taskinfo` (96 bytes), which follows the
/// `proc_bsdinfo` in `struct proc_taskallinfo`.
pub mod taskinfo {
    pub const SIZE: usize = 96;
    pub const VIRTUAL_SIZE: usize = 0;
    pub const RESIDENT_SIZE: usize = 8;
    /// `pti_total_user` and `pti_total_system`: Mach absolute time units.
    pub const TOTAL_USER: usize = 16;
    pub const TOTAL_SYSTEM: usize = 24;
    pub const THREADNUM: usize = 84;
}

/// `struct proc_taskallinfo` (`PROC_PIDTASKALLINFO`): a `proc_bsdinfo`
/// then a `proc_taskinfo`.
pub const TASKALLINFO_SIZE: usize = bsdinfo::SIZE + taskinfo::SIZE;

/// `struct proc_vnodepathinfo` (`PROC_PIDVNODEPATHINFO`): the working
/// directory's `vnode_info_path` first, its path after a 152-byte
/// `vnode_info`, `MAXPATHLEN` bytes long.
pub mod vnodepathinfo {
    pub const SIZE: usize = 2352;
    pub const CDIR_PATH: usize = 152;
    pub const PATH_LEN: usize = 1024;
}

/// `struct proc_fdinfo`, the records of `PROC_PIDLISTFDS`: `proc_fd`
/// then `proc_fdtype` (`PROX_FDTYPE_*`).
pub const FDINFO_SIZE: usize = 8;

/// `PROX_FDTYPE_*` (`sys/proc_info.h`): what a descriptor is.
pub mod prox_fdtype {
    pub const VNODE: u32 = 1;
    pub const SOCKET: u32 = 2;
    pub const KQUEUE: u32 = 5;
    pub const PIPE: u32 = 6;
    pub const FSEVENTS: u32 = 7;
    pub const NETPOLICY: u32 = 9;
    pub const CHANNEL: u32 = 10;
    pub const NEXUS: u32 = 11;
}

/// The descriptors of a `PROC_PIDLISTFDS` list: number and
/// `PROX_FDTYPE_*`, in the kernel's order (ascending).
pub fn fd_list(bytes: &[u8]) -> Result<Vec<(u32, u32)>, ParseError> {
    super::records("proc_fdinfo", bytes, FDINFO_SIZE)?
        .map(|r| Ok((r.id(0)?, r.u32(4)?)))
        .collect()
}

/// What a descriptor of `PROX_FDTYPE_*` `fdtype` other than a vnode
/// refers to (a vnode's kind comes from its mode, see [`vnode_fd`]).
pub fn fd_kind(fdtype: u32) -> FileKind {
    use prox_fdtype as t;
    match fdtype {
        t::VNODE => FileKind::File,
        t::SOCKET => FileKind::Socket,
        t::PIPE => FileKind::Pipe,
        // The kin of Linux's anonymous inodes: kqueues, fsevents clones,
        // network policy and Skywalk channels.
        t::KQUEUE | t::FSEVENTS | t::NETPOLICY | t::CHANNEL | t::NEXUS => FileKind::AnonInode,
        // POSIX shared memory and semaphores, AppleTalk.
        _ => FileKind::Other,
    }
}

/// `PROC_PIDFDVNODEPATHINFO`, the `proc_pidfdinfo` flavor answering a
/// `struct vnode_fdinfowithpath` (`sys/proc_info.h`).
pub const PROC_PIDFDVNODEPATHINFO: i32 = 2;

/// Byte offsets in `struct vnode_fdinfowithpath` (1200 bytes): a
/// `proc_fileinfo` (24 bytes) then a `vnode_info_path`, whose
/// `vnode_info` starts with a `vinfo_stat` and is 152 bytes before the
/// `MAXPATHLEN`-byte path.
pub mod fdinfowithpath {
    pub const SIZE: usize = 1200;
    /// `pfi.fi_openflags`: the open file's `FREAD`, `FWRITE` and `O_*`
    /// flags.
    pub const OPENFLAGS: usize = 0;
    /// `pfi.fi_status`: `PROC_FP_*`.
    pub const STATUS: usize = 4;
    /// `pfi.fi_offset`: an `off_t`.
    pub const OFFSET: usize = 8;
    /// `pvip`, the `vnode_info_path`.
    pub const VNODE: usize = 24;
    /// `pvip.vip_vi.vi_stat.vst_mode` and `.vst_nlink`, both `uint16_t`.
    pub const MODE: usize = VNODE + 4;
    pub const NLINK: usize = VNODE + 6;
    /// `pvip.vip_path`.
    pub const PATH: usize = VNODE + 152;
    pub const PATH_LEN: usize = 1024;
}

/// `FREAD` and `FWRITE` of `fi_openflags` (`sys/fcntl.h`: the access mode
/// plus one), and `O_APPEND`.
pub const FREAD: u32 = 0x1;
pub const FWRITE: u32 = 0x2;
pub const O_APPEND: u32 = 0x8;
/// `O_CLOEXEC` (`sys/fcntl.h`), reported where `fi_status` has
/// `PROC_FP_CLEXEC` (0x2).
pub const O_CLOEXEC: u32 = 0x0100_0000;
pub const PROC_FP_CLEXEC: u32 = 0x2;

/// The open flags as `open(2)` takes them, from `fi_openflags` (which
/// holds `FREAD` and `FWRITE` where `open(2)` has the access mode) and
/// `fi_status` (close-on-exec, a property of the descriptor).
pub fn open_flags(openflags: u32, status: u32) -> u32 {
    let access = match openflags & (FREAD | FWRITE) {
        FWRITE => 0x1,                   // O_WRONLY
        x if x == FREAD | FWRITE => 0x2, // O_RDWR
        _ => 0,                          // O_RDONLY
    };
    let cloexec = if status & PROC_FP_CLEXEC != 0 {
        O_CLOEXEC
    } else {
        0
    };
    openflags & !(FREAD | FWRITE) | access | cloexec
}

/// The type bits of `st_mode` (`sys/stat.h`), alike on every Unix.
const S_IFMT: u16 = 0o170_000;

/// Decodes the `vnode_fdinfowithpath` of descriptor `fd` of process
/// `pid`: its path, offset, flags and psutil's mode, and its kind by the
/// file's mode (psutil keeps those of `S_IFREG`). A file without links
/// left was deleted while open.
pub fn vnode_fd(pid: u32, fd: u32, bytes: &[u8]) -> Result<OpenFile, ParseError> {
    use fdinfowithpath as v;
    let r = Record::new("vnode_fdinfowithpath", bytes);
    let openflags = r.u32(v::OPENFLAGS)?;
    let kind = match r.u16(v::MODE)? & S_IFMT {
        0o100_000 => FileKind::File,
        0o040_000 => FileKind::Directory,
        0o020_000 | 0o060_000 => FileKind::Device,
        0o010_000 => FileKind::Pipe,
        0o140_000 => FileKind::Socket,
        _ => FileKind::Other,
    };
    Ok(OpenFile {
        pid,
        fd,
        path: lossy(r.cstr(v::PATH, v::PATH_LEN)?),
        position: u64::try_from(r.i64(v::OFFSET)?).unwrap_or(0),
        mode: super::access_mode(
            openflags & FREAD != 0,
            openflags & FWRITE != 0,
            openflags & O_APPEND != 0,
        ),
        flags: open_flags(openflags, r.u32(v::STATUS)?),
        kind,
        deleted: r.u16(v::NLINK)? == 0,
    })
}

/// `PROC_PIDFDSOCKETINFO`, the `proc_pidfdinfo` flavor answering a
/// `struct socket_fdinfo` (`sys/proc_info.h`).
pub const PROC_PIDFDSOCKETINFO: i32 = 3;

/// Byte offsets in `struct socket_fdinfo` (792 bytes): a `proc_fileinfo`
/// (24 bytes), then a `socket_info` whose `vinfo_stat` (136 bytes) comes
/// first, then the socket's handles, type, protocol and family; after
/// the two `sockbuf_info`s, `soi_kind` says which member of the union
/// `soi_proto` (at 264, 8-aligned) holds: `in_sockinfo` (UDP), its
/// extension `tcp_sockinfo`, or `un_sockinfo`.
pub mod socket_fdinfo {
    pub const SIZE: usize = 792;
    /// `psi.soi_so`: the socket's handle (its address, permuted).
    pub const SO: usize = 160;
    pub const TYPE: usize = 176;
    pub const PROTOCOL: usize = 180;
    pub const FAMILY: usize = 184;
    /// `psi.soi_kind`: `SOCKINFO_*`.
    pub const KIND: usize = 256;
    /// `psi.soi_proto`.
    pub const PROTO: usize = 264;
    /// `pri_in.insi_fport` and `insi_lport`: `int`s holding the port in
    /// network byte order.
    pub const FPORT: usize = PROTO;
    pub const LPORT: usize = PROTO + 4;
    /// `pri_in.insi_faddr` and `insi_laddr`: an `in6_addr`, or an
    /// `in4in6_addr` with the IPv4 address in its last 4 bytes.
    pub const FADDR: usize = PROTO + 32;
    pub const LADDR: usize = PROTO + 48;
    /// `pri_tcp.tcpsi_state`, after the 80-byte `in_sockinfo`: `TSI_S_*`.
    pub const TCP_STATE: usize = PROTO + 80;
    /// `pri_un.unsi_addr` and `unsi_caddr`: a `sockaddr_un` in room of
    /// `SOCK_MAXADDRLEN` (255) bytes each, after two 8-byte handles.
    pub const UN_ADDR: usize = PROTO + 16;
    pub const UN_CADDR: usize = UN_ADDR + UN_ADDR_LEN;
    pub const UN_ADDR_LEN: usize = 255;
}

/// `SOCKINFO_TCP` of `soi_kind`: `soi_proto` is a `tcp_sockinfo`.
pub const SOCKINFO_TCP: i32 = 2;

/// macOS's `AF_INET6` (`sys/socket.h`).
pub const AF_INET6: i32 = 30;

/// Decodes the `socket_fdinfo` of descriptor `fd` of process `pid`, as
/// psutil's `proc_net_connections` reads it: family, type, both ends and
/// the TCP state. `None` for a socket psutil does not list (another
/// family, raw IP). A TCP socket without its protocol block (`soi_kind`
/// not `SOCKINFO_TCP`) is closed.
pub fn socket_fd(pid: u32, fd: u32, bytes: &[u8]) -> Result<Option<HeldSocket>, ParseError> {
    use socket_fdinfo as f;
    if bytes.len() < f::SIZE {
        return Err(ParseError::new(
            0,
            format!("socket_fdinfo: {} bytes, expected {}", bytes.len(), f::SIZE),
        ));
    }
    let r = Record::new("socket_fdinfo", bytes);
    let Some(family) = socket_family(r.i32(f::FAMILY)?.into(), AF_INET6.into()) else {
        return Ok(None);
    };
    let kind = r.i32(f::KIND)?;
    let (laddr, raddr) = match family {
        SocketFamily::Unix => (
            sockaddr_endpoint(r.field(f::UN_ADDR, f::UN_ADDR_LEN)?, family),
            sockaddr_endpoint(r.field(f::UN_CADDR, f::UN_ADDR_LEN)?, family),
        ),
        SocketFamily::Inet | SocketFamily::Inet6 => {
            // An IPv4 address is the last 4 bytes of an `in4in6_addr`.
            let v4 = if family == SocketFamily::Inet { 12 } else { 0 };
            (
                ip_endpoint(&r, family, f::LADDR + v4, f::LPORT)?,
                ip_endpoint(&r, family, f::FADDR + v4, f::FPORT)?,
            )
        }
    };
    let record = SocketRecord {
        pid,
        fd,
        family,
        sock_type: r.i32(f::TYPE)?,
        protocol: r.i32(f::PROTOCOL)?,
        laddr,
        raddr,
        // TSI_S_CLOSED where there is no TCP block.
        tcp_state: Some(if kind == SOCKINFO_TCP {
            r.i32(f::TCP_STATE)?
        } else {
            0
        }),
        key: r.u64(f::SO)?,
    };
    Ok(held_socket(record))
}

/// The working directory in a `proc_vnodepathinfo`.
pub fn cwd(bytes: &[u8]) -> Result<String, ParseError> {
    use vnodepathinfo as v;
    Ok(lossy(
        Record::new("proc_vnodepathinfo", bytes).cstr(v::CDIR_PATH, v::PATH_LEN)?,
    ))
}

/// `PROC_FLAG_SYSTEM` of `pbi_flags`: a kernel process.
pub const PROC_FLAG_SYSTEM: u32 = 0x1;
/// `NODEV` as `e_tdev` holds it.
pub const NODEV: u32 = u32::MAX;

/// psutil's mapping of `pbi_status` (`sys/proc.h`: SIDL 1, SRUN 2,
/// SSLEEP 3, SSTOP 4, SZOMB 5).
pub fn status(code: u32) -> Option<Status> {
    Some(match code {
        1 => Status::Idle,
        2 => Status::Running,
        3 => Status::Sleeping,
        4 => Status::Stopped,
        5 => Status::Zombie,
        _ => return None,
    })
}

/// Decodes a `proc_bsdinfo` (`PROC_PIDTBSDINFO`, which answers for
/// zombies too, or the first part of `PROC_PIDTASKALLINFO`). The name is
/// `pbi_name` (up to 32 bytes) where the kernel filled it, else
/// `pbi_comm` (up to 16).
pub fn bsdinfo(bytes: &[u8]) -> Result<Kinfo, ParseError> {
    use bsdinfo as b;
    let r = Record::new("proc_bsdinfo", bytes);
    let name = r.cstr(b::NAME, 32)?;
    let comm = if name.is_empty() {
        r.cstr(b::COMM, 16)?
    } else {
        name
    };
    let tdev = r.u32(b::TDEV)?;
    Ok(Kinfo {
        pid: r.u32(b::PID)?,
        ppid: r.u32(b::PPID)?,
        status: status(r.u32(b::STATUS)?),
        comm: comm.to_vec(),
        uids: Some(r.ids([b::RUID, b::UID, b::SVUID])?),
        gids: Some(r.ids([b::RGID, b::GID, b::SVGID])?),
        tdev: (tdev != NODEV).then_some(u64::from(tdev)),
        nice: Some(r.i32(b::NICE)?),
        create_time: Some(timeval_secs(r.i64(b::START_SEC)?, r.i64(b::START_USEC)?)),
        system: r.u32(b::FLAGS)? & PROC_FLAG_SYSTEM != 0,
        ..Kinfo::default()
    })
}

/// Mach absolute time units per nanosecond, from `mach_timebase_info`:
/// 1/1 on Intel, 125/3 on Apple silicon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timebase {
    pub numer: u32,
    pub denom: u32,
}

impl Timebase {
    /// `ticks` of Mach absolute time in seconds.
    pub fn secs(self, ticks: u64) -> f64 {
        if self.denom == 0 {
            return 0.0;
        }
        ticks as f64 * f64::from(self.numer) / f64::from(self.denom) / 1e9
    }
}

/// Adds what a `proc_taskinfo` says to `k`: memory, CPU times and
/// threads. Shared, text and data sizes and the children's times are not
/// in the record and stay absent; the context switch count is a single total, which the API cannot
/// split, so it is not reported.
pub fn add_taskinfo(k: &mut Kinfo, bytes: &[u8], timebase: Timebase) -> Result<(), ParseError> {
    use taskinfo as t;
    let r = Record::new("proc_taskinfo", bytes);
    k.memory_info = Some(MemoryInfo {
        rss: r.u64(t::RESIDENT_SIZE)?,
        vms: r.u64(t::VIRTUAL_SIZE)?,
        ..MemoryInfo::default()
    });
    k.cpu_times = Some(CpuTimes {
        user: timebase.secs(r.u64(t::TOTAL_USER)?),
        system: timebase.secs(r.u64(t::TOTAL_SYSTEM)?),
        ..CpuTimes::default()
    });
    k.num_threads = Some(r.id(t::THREADNUM)?);
    Ok(())
}

/// What `KERN_PROCARGS2` holds: the executable path the kernel recorded
/// at exec, the arguments, and the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcArgs {
    pub exec_path: String,
    pub args: Vec<String>,
    /// `KEY=value` strings as the process started with them.
    pub env: Vec<Vec<u8>>,
}

/// Decodes a `KERN_PROCARGS2` buffer: an `int` argc, the executable path
/// and its NUL, NUL padding up to a word boundary, `argc` NUL-terminated
/// arguments, then the environment strings up to an empty string or the
/// end. A buffer cut short (a process rewriting its own memory) gives
/// what it holds.
pub fn procargs2(buf: &[u8]) -> Result<ProcArgs, ParseError> {
    let argc = Record::new("KERN_PROCARGS2", buf).i32(0)?;
    let argc = usize::try_from(argc)
        .map_err(|_| ParseError::new(0, format!("KERN_PROCARGS2: argc {argc}")))?;
    let rest = &buf[4..];
    let exec_path = until_nul(rest);
    let mut rest = &rest[exec_path.len()..];
    // Skip the path's NUL and the padding after it.
    while let [0, tail @ ..] = rest {
        rest = tail;
    }
    let mut strings = rest.split(|b| *b == 0);
    let args = strings.by_ref().take(argc).map(lossy).collect();
    let env = strings
        .take_while(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    Ok(ProcArgs {
        exec_path: lossy(exec_path),
        args,
        env,
    })
}

/// `struct if_data64` (128 bytes): no link state and no output drops.
pub const IF_DATA64: IfDataLayout = IfDataLayout {
    what: "if_data64",
    size: 128,
    link_state: None,
    mtu: (8, 4),
    counter_width: 8,
    counters: [16, 24, 32, 40, 48, 64, 72, 96],
    oqdrops: None,
};

/// Byte offsets in `struct if_msghdr2` (160 bytes) and the `struct
/// sockaddr_dl` after it.
pub mod if_msghdr2 {
    pub const MSGLEN: usize = 0;
    pub const TYPE: usize = 3;
    pub const DATA: usize = 32;
    pub const SIZE: usize = 160;
    /// `sdl_nlen` and `sdl_data` (where the name starts) in `sockaddr_dl`.
    pub const SDL_NLEN: usize = 5;
    pub const SDL_DATA: usize = 8;
}

/// `RTM_IFINFO2`: an interface's 64-bit statistics.
pub const RTM_IFINFO2: u8 = 0x12;

/// The interfaces' counters from a `NET_RT_IFLIST2` buffer: messages of
/// `ifm_msglen` bytes back to back; each `RTM_IFINFO2` one carries an
/// `if_data64` and, after its header, the interface's link address whose
/// `sdl_data` starts with the name.
pub fn iflist2(buf: &[u8]) -> Result<Vec<(String, IfData)>, ParseError> {
    use if_msghdr2 as m;
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let r = Record::new("if_msghdr2", rest);
        let len = usize::from(r.u16(m::MSGLEN)?);
        if len < 4 || len > rest.len() {
            return Err(ParseError::new(
                0,
                format!(
                    "NET_RT_IFLIST2: ifm_msglen {len} with {} bytes left",
                    rest.len()
                ),
            ));
        }
        let msg = Record::new("if_msghdr2", &rest[..len]);
        if msg.u8(m::TYPE)? == RTM_IFINFO2 {
            let data = IF_DATA64.decode(msg.field(m::DATA, IF_DATA64.size)?)?;
            let nlen = usize::from(msg.u8(m::SIZE + m::SDL_NLEN)?);
            let name = msg.field(m::SIZE + m::SDL_DATA, nlen)?;
            out.push((lossy(name), data));
        }
        rest = &rest[len..];
    }
    Ok(out)
}

/// macOS's `IFF_*` flags (`net/if.h`): NetBSD's.
pub const FLAGS: super::IfFlags = super::netbsd::FLAGS;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::decode::fixture::Bytes;
    use crate::backend::socket::Endpoint;

    /// A `vnode_fdinfowithpath` as `sys/proc_info.h` lays it out: the
    /// `proc_fileinfo` (`fi_openflags` at 0, `fi_status` at 4, `fi_offset`
    /// at 8), then the `vnode_info_path` at 24 (`vst_mode` at 28,
    /// `vst_nlink` at 30, `vip_path` at 176).
    fn vnode(
        openflags: u32,
        status: u32,
        offset: i64,
        mode: u16,
        nlink: u16,
        path: &[u8],
    ) -> Bytes {
        let mut b = Bytes::zeroed(1200);
        b.u32(0, openflags) // pfi.fi_openflags
            .u32(4, status) // pfi.fi_status
            .i64(8, offset) // pfi.fi_offset
            .put(28, &mode.to_ne_bytes()) // pvip.vip_vi.vi_stat.vst_mode
            .put(30, &nlink.to_ne_bytes()) // pvip.vip_vi.vi_stat.vst_nlink
            .put(176, path); // pvip.vip_path
        b
    }

    /// A `socket_fdinfo` of an IP socket as `sys/proc_info.h` lays it out
    /// on arm64 and x86_64: `soi_so` at 160, `soi_type` at 176,
    /// `soi_protocol` at 180, `soi_family` at 184, `soi_kind` at 256, then
    /// `soi_proto` at 264: `insi_fport` and `insi_lport` (network byte
    /// order in an `int`) at 264 and 268, `insi_faddr` at 296 and
    /// `insi_laddr` at 312 (IPv4 in their last 4 bytes), `tcpsi_state`
    /// at 344.
    fn ip_socket(
        (family, ty, protocol, kind): (i32, i32, i32, i32),
        local: (&[u8], u16),
        remote: (&[u8], u16),
        state: i32,
    ) -> Bytes {
        let at = |addr: &[u8], base: usize| base + 16 - addr.len();
        let mut b = Bytes::zeroed(792);
        b.u64(160, 0xfeed_0001) // psi.soi_so
            .i32(176, ty) // psi.soi_type
            .i32(180, protocol) // psi.soi_protocol
            .i32(184, family) // psi.soi_family
            .i32(256, kind) // psi.soi_kind
            .u32(264, u32::from(remote.1.to_be())) // insi_fport
            .u32(268, u32::from(local.1.to_be())) // insi_lport
            .put(at(remote.0, 296), remote.0) // insi_faddr
            .put(at(local.0, 312), local.0) // insi_laddr
            .i32(344, state); // pri_tcp.tcpsi_state
        b
    }

    /// A unix `socket_fdinfo`: `unsi_addr` at 280 and `unsi_caddr` at
    /// 535, each a `sockaddr_un` (`sun_len`, `sun_family`, the path).
    fn unix_socket(ty: i32, path: &[u8], peer: &[u8]) -> Bytes {
        let sun = |p: &[u8]| [&[(2 + p.len()) as u8, 1][..], p].concat();
        let mut b = Bytes::zeroed(792);
        b.i32(176, ty)
            .i32(184, 1) // AF_UNIX
            .i32(256, 3) // SOCKINFO_UN
            .put(280, &sun(path))
            .put(535, &sun(peer));
        b
    }

    #[test]
    fn socket_descriptors() {
        use crate::backend::socket::{ConnStatus, SockType};
        let decode = |b: &Bytes| socket_fd(501, 7, &b.0).unwrap().map(|h| h.socket);
        // An established TCP connection over IPv4 (SOCKINFO_TCP,
        // TSI_S_ESTABLISHED).
        let tcp = ip_socket(
            (2, 1, 6, 2),
            (&[192, 168, 1, 20], 52144),
            (&[17, 253, 144, 10], 443),
            4,
        );
        let s = decode(&tcp).unwrap();
        assert_eq!(
            (s.family, s.kind, s.status),
            (
                SocketFamily::Inet,
                SockType::Stream,
                ConnStatus::Established
            )
        );
        assert_eq!(s.laddr, Endpoint::ip([192, 168, 1, 20].into(), 52144));
        assert_eq!(s.raddr, Some(Endpoint::ip([17, 253, 144, 10].into(), 443)));
        assert_eq!((s.pid, s.fd, s.inode), (Some(501), Some(7), 0));
        assert_eq!(socket_fd(501, 7, &tcp.0).unwrap().unwrap().key, 0xfeed_0001);
        // A listening IPv6 socket: no remote end.
        let listen = ip_socket((30, 1, 6, 2), (&[0; 16], 8080), (&[0; 16], 0), 1);
        let s = decode(&listen).unwrap();
        assert_eq!(
            (s.family, s.status, s.raddr),
            (SocketFamily::Inet6, ConnStatus::Listen, None)
        );
        assert_eq!(
            s.laddr.to_owned(),
            Endpoint::ip("::".parse().unwrap(), 8080)
        );
        // UDP (SOCKINFO_IN): no state, whatever the word at 344 holds.
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        let udp = ip_socket((30, 2, 17, 1), (&v6, 5353), (&[0; 16], 0), 7);
        let s = decode(&udp).unwrap();
        assert_eq!((s.kind, s.status), (SockType::Dgram, ConnStatus::None));
        assert_eq!(s.laddr, Endpoint::ip("::1".parse().unwrap(), 5353));
        // A TCP socket whose protocol block is gone (SOCKINFO_GENERIC) is
        // closed.
        let closed = ip_socket((2, 1, 6, 0), (&[0; 4], 0), (&[0; 4], 0), 4);
        assert_eq!(decode(&closed).unwrap().status, ConnStatus::Close);
        // Unix sockets: bound, and connected to a bound peer.
        let s = decode(&unix_socket(1, b"/var/run/mDNSResponder", b"")).unwrap();
        assert_eq!(
            (s.family, s.kind, s.status),
            (SocketFamily::Unix, SockType::Stream, ConnStatus::None)
        );
        assert_eq!(
            (s.laddr.path.as_str(), s.raddr),
            ("/var/run/mDNSResponder", None)
        );
        let s = decode(&unix_socket(2, b"", b"/var/run/syslog")).unwrap();
        assert_eq!(s.laddr.path, "");
        assert_eq!(s.raddr.map(|r| r.path), Some("/var/run/syslog".to_owned()));
        // Not listed: a raw ICMP socket, a kernel control socket
        // (PF_SYSTEM), an unknown TCP state.
        assert_eq!(
            decode(&ip_socket((2, 3, 1, 1), (&[0; 4], 0), (&[0; 4], 0), 0)),
            None
        );
        let mut system = unix_socket(2, b"", b"");
        system.i32(184, 32);
        assert_eq!(decode(&system), None);
        assert_eq!(
            decode(&ip_socket((2, 1, 6, 2), (&[0; 4], 1), (&[0; 4], 0), 11)),
            None
        );
        // Cut short: an error, not a panic.
        for cut in [0, 100, 186, 300, 700, 791] {
            assert!(socket_fd(1, 1, &tcp.0[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn vnode_descriptors() {
        // A log opened O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC: the
        // kernel keeps FWRITE | O_APPEND | O_CREAT and close-on-exec apart.
        let log = vnode(
            0x2 | 0x8 | 0x200,
            0x2,
            4096,
            0o100_644,
            1,
            b"/var/log/app.log",
        );
        let f = vnode_fd(88, 3, &log.0).unwrap();
        assert_eq!(
            f,
            OpenFile {
                pid: 88,
                fd: 3,
                path: "/var/log/app.log".to_owned(),
                position: 4096,
                mode: "a",
                flags: 0x1 | 0x8 | 0x200 | 0x0100_0000,
                kind: FileKind::File,
                deleted: false,
            }
        );
        // Read and written, deleted while open.
        let gone = vnode(0x3, 0, 7, 0o100_600, 0, b"/private/tmp/scratch");
        let f = vnode_fd(88, 4, &gone.0).unwrap();
        assert_eq!((f.mode, f.flags, f.deleted), ("r+", 0x2, true));
        // A directory read-only, a terminal read and written.
        let dir = vnode(0x1, 0, 0, 0o040_755, 3, b"/Users");
        let f = vnode_fd(88, 5, &dir.0).unwrap();
        assert_eq!((f.kind, f.mode, f.flags), (FileKind::Directory, "r", 0));
        let tty = vnode(0x3, 0, 0, 0o020_620, 1, b"/dev/ttys001");
        assert_eq!(vnode_fd(88, 6, &tty.0).unwrap().kind, FileKind::Device);
        let fifo = vnode(0x1, 0, 0, 0o010_644, 1, b"/tmp/fifo");
        assert_eq!(vnode_fd(88, 7, &fifo.0).unwrap().kind, FileKind::Pipe);
        // Short input is an error, not a panic.
        for cut in [0, 3, 12, 29, 175, 1199] {
            assert!(vnode_fd(88, 3, &log.0[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn descriptor_lists() {
        let mut b = Bytes::zeroed(32);
        b.i32(0, 0)
            .u32(4, 1) // PROX_FDTYPE_VNODE
            .i32(8, 3)
            .u32(12, 2) // PROX_FDTYPE_SOCKET
            .i32(16, 4)
            .u32(20, 6) // PROX_FDTYPE_PIPE
            .i32(24, 5)
            .u32(28, 5); // PROX_FDTYPE_KQUEUE
        let fds = fd_list(&b.0).unwrap();
        assert_eq!(fds, [(0, 1), (3, 2), (4, 6), (5, 5)]);
        let kinds: Vec<FileKind> = fds.iter().map(|(_, t)| fd_kind(*t)).collect();
        assert_eq!(
            kinds,
            [
                FileKind::File,
                FileKind::Socket,
                FileKind::Pipe,
                FileKind::AnonInode
            ]
        );
        assert_eq!(fd_kind(3), FileKind::Other); // PROX_FDTYPE_PSHM
        assert!(fd_list(&b.0[..12]).is_err());
        let mut negative = Bytes::zeroed(8);
        negative.i32(0, -1);
        assert!(fd_list(&negative.0).is_err());
        assert_eq!(fd_list(&[]), Ok(Vec::new()));
    }

    /// A `proc_bsdinfo` of launchd's child `syslogd` as
    /// `sys/proc_info.h` lays it out.
    fn syslogd() -> Bytes {
        let mut b = Bytes::zeroed(136);
        b.u32(4, 3) // pbi_status: SSLEEP
            .u32(12, 321) // pbi_pid
            .u32(16, 1) // pbi_ppid
            .u32(20, 0) // pbi_uid
            .u32(24, 0) // pbi_gid
            .u32(28, 0) // pbi_ruid
            .u32(32, 0) // pbi_rgid
            .u32(36, 0) // pbi_svuid
            .u32(40, 0) // pbi_svgid
            .put(48, b"syslogd\0") // pbi_comm
            .put(64, b"syslogd\0") // pbi_name
            .u32(108, u32::MAX) // e_tdev: NODEV
            .i32(116, 0) // pbi_nice
            .u64(120, 1_700_000_000) // pbi_start_tvsec
            .u64(128, 750_000); // pbi_start_tvusec
        b
    }

    #[test]
    fn bsdinfo_fields() {
        let k = bsdinfo(&syslogd().0).unwrap();
        assert_eq!((k.pid, k.ppid), (321, 1));
        assert_eq!(k.status, Some(Status::Sleeping));
        assert_eq!(k.comm, b"syslogd");
        assert_eq!(k.tdev, None);
        assert_eq!(k.create_time, Some(1_700_000_000.75));
        assert_eq!(k.cpu_times, None);
        // A long name is in pbi_name; pbi_comm holds its first 16 bytes.
        let mut long = syslogd();
        long.put(48, b"com.apple.Webkit")
            .put(64, b"com.apple.WebKit.Networking\0");
        assert_eq!(
            bsdinfo(&long.0).unwrap().comm,
            b"com.apple.WebKit.Networking"
        );
        // A zombie's name may be only in pbi_comm.
        let mut zombie = syslogd();
        zombie.u32(4, 5).put(64, &[0; 32]);
        let k = bsdinfo(&zombie.0).unwrap();
        assert!(k.is_zombie());
        assert_eq!(k.comm, b"syslogd");
        assert!(bsdinfo(&syslogd().0[..100]).is_err());
    }

    #[test]
    fn working_directory() {
        let mut b = Bytes::zeroed(2352);
        b.put(152, b"/Users/example\0");
        assert_eq!(cwd(&b.0).unwrap(), "/Users/example");
        assert!(cwd(&b.0[..200]).is_err());
    }

    #[test]
    fn taskinfo_times() {
        let mut t = Bytes::zeroed(96);
        t.u64(0, 400 << 20) // pti_virtual_size
            .u64(8, 12 << 20) // pti_resident_size
            .u64(16, 3_000_000_000) // pti_total_user (ticks)
            .u64(24, 24_000_000) // pti_total_system
            .i32(84, 4); // pti_threadnum
        let mut k = bsdinfo(&syslogd().0).unwrap();
        // Apple silicon: 125/3 ns per tick, so 3e9 ticks are 125 s.
        add_taskinfo(
            &mut k,
            &t.0,
            Timebase {
                numer: 125,
                denom: 3,
            },
        )
        .unwrap();
        let cpu = k.cpu_times.unwrap();
        assert!((cpu.user - 125.0).abs() < 1e-9, "{cpu:?}");
        assert!((cpu.system - 1.0).abs() < 1e-9, "{cpu:?}");
        assert_eq!(k.num_threads, Some(4));
        let mem = k.memory_info.unwrap();
        assert_eq!((mem.rss, mem.vms), (12 << 20, 400 << 20));
        // Intel: one tick per nanosecond.
        assert_eq!(Timebase { numer: 1, denom: 1 }.secs(1_500_000_000), 1.5);
        assert_eq!(Timebase { numer: 1, denom: 0 }.secs(5), 0.0);
    }

    /// `KERN_PROCARGS2` of `/bin/sleep 30` started with two environment
    /// variables, as the kernel copies it: argc, the exec path, NUL
    /// padding, the arguments, the environment, then the apple strings
    /// after an empty string.
    const SLEEP: &[u8] = b"\x02\x00\x00\x00/bin/sleep\0\0\0\0\0\0sleep\x0030\0\
        PATH=/usr/bin:/bin\0LANG=C\0\0ptr_munge=\0";

    #[test]
    fn procargs2_blob() {
        let args = procargs2(SLEEP).unwrap();
        assert_eq!(args.exec_path, "/bin/sleep");
        assert_eq!(args.args, ["sleep", "30"]);
        assert_eq!(
            args.env,
            [b"PATH=/usr/bin:/bin".to_vec(), b"LANG=C".to_vec()]
        );
        // Cut inside the arguments: what is there is kept.
        let cut = procargs2(&SLEEP[..27]).unwrap();
        assert_eq!(cut.args, ["sleep", "3"]);
        assert!(cut.env.is_empty());
        assert!(procargs2(b"\x01\x00").is_err());
        assert!(procargs2(b"\xff\xff\xff\xff/x\0").is_err());
    }

    /// One `RTM_IFINFO2` message for en0 (`if_msghdr2` then a
    /// `sockaddr_dl` with the name) and one message of another type.
    fn iflist() -> Vec<u8> {
        let mut en0 = Bytes::zeroed(160 + 20);
        en0.put(0, &180u16.to_ne_bytes()) // ifm_msglen
            .put(3, &[RTM_IFINFO2]) // ifm_type
            .u32(32 + 8, 1500) // ifm_data.ifi_mtu
            .u64(32 + 64, 5 << 32) // ifm_data.ifi_ibytes: past 32 bits
            .u64(32 + 72, 7) // ifm_data.ifi_obytes
            .put(160, &[20, 18, 4, 0, 6, 3, 6, 0]) // sdl_len .. sdl_slen
            .put(168, b"en0");
        let mut other = Bytes::zeroed(24);
        other.put(0, &24u16.to_ne_bytes()).put(3, &[0x0c]); // RTM_NEWADDR
        [en0.0, other.0].concat()
    }

    #[test]
    fn iflist2_messages() {
        let all = iflist2(&iflist()).unwrap();
        assert_eq!(all.len(), 1);
        let (name, data) = &all[0];
        assert_eq!(name, "en0");
        assert_eq!(data.mtu, 1500);
        assert_eq!(data.counters.bytes_recv, 5 << 32);
        assert_eq!(data.counters.bytes_sent, 7);
        let mut bad = iflist();
        bad[0] = 0xff;
        assert!(iflist2(&bad).is_err());
        assert_eq!(iflist2(&[]), Ok(Vec::new()));
    }
}
