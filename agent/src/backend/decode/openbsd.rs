//! OpenBSD's records: `struct kinfo_proc` and `struct kinfo_file`
//! (`sys/sysctl.h`), the argument vectors of `KERN_PROC_ARGS`, `struct
//! if_data` (`net/if.h`), and the states of `sys/proc.h`. Offsets are
//! those of amd64 and arm64, checked against the `libc` crate when the
//! OpenBSD backend is built.

use super::{
    IfDataLayout, IfFlags, Kinfo, Record, SocketRecord, held_socket, ip_endpoint,
    netbsdlike::{Extra, KinfoLayout},
    records, socket_family, until_nul,
};
use crate::backend::{
    Duplex, Status,
    parse::{ParseError, lossy},
    socket::{Endpoint, Family as SocketFamily, HeldSocket},
};

/// `struct kinfo_proc` (648 bytes in OpenBSD 7).
pub const KINFO_PROC: KinfoLayout = KinfoLayout {
    what: "kinfo_proc",
    size: 648,
    flag: 104,
    pid: 108,
    ppid: 112,
    uid: 128,
    ruid: 132,
    svuid: 568,
    groups: 144,
    rgid: 140,
    svgid: 572,
    tdev: 212,
    stat: 304,
    nice: 307,
    comm: 312,
    comm_len: 24,
    vm: [384, 388, 392, 396],
    uvalid: 400,
    ustart: (408, 8, 416),
    uutime: 420,
    ustime: 428,
    uctime: 552,
    nvcsw: 536,
    nivcsw: 544,
};

/// `p_psflags`: the process's `PS_*` flags.
pub const PSFLAGS: usize = 560;
/// `p_tid`: -1 in a process's own entry, the thread id in the entries
/// `KERN_PROC_SHOW_THREADS` adds.
pub const TID: usize = 608;
/// `PS_ZOMBIE` of `p_psflags`.
pub const PS_ZOMBIE: u32 = 0x40000;

/// The state of an entry: `PS_ZOMBIE` says zombie whatever `p_stat`
/// says; otherwise `p_stat` (`sys/proc.h`: SIDL 1, SRUN 2, SSLEEP 3,
/// SSTOP 4, SZOMB 5, SDEAD 6, SONPROC 7). A runnable process (SRUN) is
/// reported as running, as Linux's `R` covers runnable and on a CPU;
/// SDEAD is a zombie, as psutil found by test.
pub fn status(stat: u8, psflags: u32) -> Option<Status> {
    if psflags & PS_ZOMBIE != 0 {
        return Some(Status::Zombie);
    }
    Some(match stat {
        1 => Status::Idle,
        2 | 7 => Status::Running,
        3 => Status::Sleeping,
        4 => Status::Stopped,
        5 | 6 => Status::Zombie,
        _ => return None,
    })
}

/// What OpenBSD's `kinfo_proc` adds: the state. The thread count needs
/// another query ([`count_threads`]).
pub fn extra(r: Record<'_>) -> Result<Extra, ParseError> {
    Ok(Extra {
        status: status(r.u8(KINFO_PROC.stat)?, r.u32(PSFLAGS)?),
        num_threads: None,
    })
}

/// Decodes a `KERN_PROC_ALL` (or `KERN_PROC_PID`) table.
pub fn proc_table(buf: &[u8], page_size: u64) -> Result<Vec<Kinfo>, ParseError> {
    super::netbsdlike::table(&KINFO_PROC, buf, page_size, extra)
}

/// The threads of a `KERN_PROC_PID | KERN_PROC_SHOW_THREADS` table: the
/// entries with a thread id.
pub fn count_threads(buf: &[u8]) -> Result<u32, ParseError> {
    let mut count = 0;
    for r in records(KINFO_PROC.what, buf, KINFO_PROC.size)? {
        count += u32::from(r.i32(TID)? >= 0);
    }
    Ok(count)
}

/// `struct kinfo_file` (`KERN_FILE_BYPID`): its size, and the offset of
/// `fd_fd`.
pub const KINFO_FILE_SIZE: usize = 632;
/// See [`KINFO_FILE_SIZE`].
pub const KINFO_FILE_FD: usize = 380;

/// Byte offsets of the socket fields of `struct kinfo_file`
/// (`sys/sysctl.h`), which the kernel's `fill_file` sets for descriptors
/// of `DTYPE_SOCKET`; `fstat(1)` and psutil read the same.
pub mod kf_socket {
    /// `f_type`: `DTYPE_*`.
    pub const F_TYPE: usize = 16;
    /// `f_data`: the socket's address, 0 unless the caller is root.
    pub const F_DATA: usize = 64;
    /// `so_type`: `SOCK_*`.
    pub const SO_TYPE: usize = 272;
    /// `so_protocol`: `IPPROTO_*`.
    pub const SO_PROTOCOL: usize = 288;
    /// `so_family`: `AF_*`.
    pub const SO_FAMILY: usize = 292;
    /// `inp_lport` and `inp_fport`: `uint32_t`s holding the `in_port_t`
    /// in network byte order.
    pub const INP_LPORT: usize = 304;
    pub const INP_FPORT: usize = 324;
    /// `inp_laddru` and `inp_faddru`: 16 bytes, an IPv4 address in the
    /// first 4.
    pub const INP_LADDRU: usize = 308;
    pub const INP_FADDRU: usize = 328;
    /// `p_pid`, the holding process.
    pub const P_PID: usize = 376;
    /// `unp_path`: `KI_UNPPATHLEN` (104) bytes, the bound path.
    pub const UNP_PATH: usize = 488;
    pub const UNP_PATH_LEN: usize = 104;
    /// `t_state`: `TCPS_*`, for TCP sockets.
    pub const T_STATE: usize = 596;
}

/// `DTYPE_SOCKET` of `f_type`.
pub const DTYPE_SOCKET: u32 = 2;

/// OpenBSD's `AF_INET6` (`sys/socket.h`).
pub const AF_INET6: u32 = 24;

/// The sockets psutil lists among the `kinfo_file` records of `buf` (a
/// `KERN_FILE_BYPID` table, of one process or of all): TCP with its
/// state, UDP and unix sockets, each with its holder. A unix socket's
/// peer is not in the record: its remote end is absent.
pub fn sockets(buf: &[u8]) -> Result<Vec<HeldSocket>, ParseError> {
    use kf_socket as k;
    let mut out = Vec::new();
    for r in records("kinfo_file", buf, KINFO_FILE_SIZE)? {
        if r.u32(k::F_TYPE)? != DTYPE_SOCKET {
            continue;
        }
        let Ok(fd) = u32::try_from(r.i32(KINFO_FILE_FD)?) else {
            continue;
        };
        let Some(family) = socket_family(r.u32(k::SO_FAMILY)?.into(), AF_INET6.into()) else {
            continue;
        };
        let (laddr, raddr) = match family {
            SocketFamily::Unix => (
                Endpoint::path(lossy(r.cstr(k::UNP_PATH, k::UNP_PATH_LEN)?)),
                Endpoint::path(String::new()),
            ),
            _ => (
                ip_endpoint(&r, family, k::INP_LADDRU, k::INP_LPORT)?,
                ip_endpoint(&r, family, k::INP_FADDRU, k::INP_FPORT)?,
            ),
        };
        let record = SocketRecord {
            pid: r.u32(k::P_PID)?,
            fd,
            family,
            sock_type: r.i32(k::SO_TYPE)?,
            protocol: r.i32(k::SO_PROTOCOL)?,
            laddr,
            raddr,
            tcp_state: Some(r.i32(k::T_STATE)?),
            key: r.u64(k::F_DATA)?,
        };
        out.extend(held_socket(record));
    }
    Ok(out)
}

/// Decodes what `KERN_PROC_ARGS` with `KERN_PROC_ARGV` or `KERN_PROC_ENV`
/// returns: a NULL-terminated array of pointers, then the strings they
/// point to. The kernel writes the pointers as addresses inside the
/// caller's buffer, so `base` (the buffer's address when the kernel
/// filled it) turns them into offsets.
pub fn pointer_strings(buf: &[u8], base: u64) -> Result<Vec<String>, ParseError> {
    let r = Record::new("KERN_PROC_ARGS", buf);
    let mut out = Vec::new();
    for slot in 0.. {
        let pointer = r.u64(slot * 8)?;
        if pointer == 0 {
            break;
        }
        let offset = pointer
            .checked_sub(base)
            .and_then(|o| usize::try_from(o).ok())
            .filter(|o| *o < buf.len())
            .ok_or_else(|| {
                ParseError::new(
                    0,
                    format!("KERN_PROC_ARGS: pointer {pointer:#x} outside the buffer at {base:#x}"),
                )
            })?;
        out.push(lossy(until_nul(&buf[offset..])));
    }
    Ok(out)
}

/// `struct if_data` (`net/if.h`, 144 bytes).
pub const IF_DATA: IfDataLayout = IfDataLayout {
    what: "if_data",
    size: 144,
    link_state: Some(3),
    mtu: (4, 4),
    counter_width: 8,
    counters: [16, 24, 32, 40, 48, 64, 72, 96],
    oqdrops: Some(104),
};

/// The duplex an `if_data` link state says: OpenBSD adds
/// `LINK_STATE_HALF_DUPLEX` (5) and `LINK_STATE_FULL_DUPLEX` (6) to up
/// (`net/if.h`); the other states say nothing of it.
pub fn link_state_duplex(link_state: u8) -> Duplex {
    match link_state {
        5 => Duplex::Half,
        6 => Duplex::Full,
        _ => Duplex::Unknown,
    }
}

/// OpenBSD's `IFF_*` flags (`net/if.h`): `staticarp` at 0x20, nothing above
/// 0x8000.
pub const FLAGS: IfFlags = IfFlags {
    bit_0x20: &[(0x20, "staticarp")],
    extra: &[],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{CpuTimes, Ids, decode::fixture::Bytes};

    #[test]
    fn link_states_half_and_full_say_the_duplex() {
        // LINK_STATE_UNKNOWN 0, DOWN 2, UP 4, HALF_DUPLEX 5, FULL_DUPLEX 6.
        let duplex: Vec<Duplex> = [0, 2, 4, 5, 6].map(link_state_duplex).to_vec();
        assert_eq!(
            duplex,
            [
                Duplex::Unknown,
                Duplex::Unknown,
                Duplex::Unknown,
                Duplex::Half,
                Duplex::Full
            ]
        );
    }

    /// A `kinfo_file` record of a socket, laid out as OpenBSD 7.6
    /// `sys/sysctl.h` has it on amd64: `f_type` at 16, `f_data` at 64,
    /// `so_type` at 272, `so_protocol` at 288, `so_family` at 292,
    /// `inp_lport` at 304, `inp_laddru` at 308, `inp_fport` at 324,
    /// `inp_faddru` at 328, `p_pid` at 376, `fd_fd` at 380, `unp_path` at
    /// 488, `t_state` at 596.
    fn socket_file(
        (pid, fd): (u32, i32),
        (family, ty, protocol): (u32, i32, i32),
        local: (&[u8], u16),
        remote: (&[u8], u16),
        state: i32,
    ) -> Bytes {
        let mut b = Bytes::zeroed(KINFO_FILE_SIZE);
        b.u32(16, DTYPE_SOCKET) // f_type
            .u64(64, 0xffff_8000_0000_1000 + fd as u64) // f_data
            .i32(272, ty) // so_type
            .i32(288, protocol) // so_protocol
            .u32(292, family) // so_family
            .u32(304, u32::from(local.1.to_be())) // inp_lport
            .u32(324, u32::from(remote.1.to_be())) // inp_fport
            .u32(376, pid) // p_pid
            .i32(380, fd) // fd_fd
            .i32(596, state); // t_state
        if family == 1 {
            // AF_UNIX
            b.put(488, local.0); // unp_path
        } else {
            b.put(308, local.0).put(328, remote.0); // inp_laddru, inp_faddru
        }
        b
    }

    /// What `fstat -n` shows on a small host (`KERN_FILE_BYPID` for all
    /// processes): sshd listening on IPv4 and IPv6 with one session,
    /// syslogd's unix and UDP sockets, a closing connection, the
    /// working directory and a raw socket (neither listed).
    fn host_files() -> Vec<u8> {
        let any = ([0u8; 4], 0);
        let mut v6 = [0u8; 16];
        v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v6[15] = 1;
        let mut cwd = Bytes::zeroed(KINFO_FILE_SIZE);
        cwd.u32(16, 1).u32(376, 7110).i32(380, -2); // DTYPE_VNODE, KERN_FILE_CDIR
        let mut buf = cwd.0;
        for file in [
            socket_file((7110, 3), (2, 1, 6), (&[0; 4], 22), (&any.0, 0), 1),
            socket_file((7110, 4), (24, 1, 6), (&[0; 16], 22), (&[0; 16], 0), 1),
            socket_file(
                (7301, 5),
                (24, 1, 6),
                (&v6, 22),
                (
                    &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                    61000,
                ),
                4,
            ),
            socket_file((52, 3), (1, 2, 0), (b"/dev/log", 0), (&[], 0), 0),
            socket_file((52, 4), (2, 2, 17), (&[10, 0, 0, 5], 514), (&any.0, 0), 0),
            socket_file(
                (9100, 6),
                (2, 1, 6),
                (&[10, 0, 0, 5], 4100),
                (&[10, 0, 0, 9], 80),
                7,
            ),
            socket_file((9100, 7), (2, 3, 1), (&[0; 4], 0), (&[0; 4], 0), 0),
        ] {
            buf.extend(file.0);
        }
        buf
    }

    #[test]
    fn socket_files() {
        use crate::backend::socket::{ConnStatus as S, Family as F, SockType as T};
        let got = sockets(&host_files()).unwrap();
        let shown = |e: &Endpoint| match e.ip {
            Some(ip) => format!("{ip}:{}", e.port),
            None => e.path.clone(),
        };
        let rows: Vec<_> = got
            .iter()
            .map(|h| {
                let s = &h.socket;
                (
                    (s.pid.unwrap(), s.fd.unwrap()),
                    (s.family, s.kind, s.status),
                    shown(&s.laddr),
                    s.raddr.as_ref().map(shown),
                )
            })
            .collect();
        let laddr = |s: &str| s.to_owned();
        assert_eq!(
            rows,
            [
                (
                    (7110, 3),
                    (F::Inet, T::Stream, S::Listen),
                    laddr("0.0.0.0:22"),
                    None
                ),
                (
                    (7110, 4),
                    (F::Inet6, T::Stream, S::Listen),
                    laddr(":::22"),
                    None
                ),
                (
                    (7301, 5),
                    (F::Inet6, T::Stream, S::Established),
                    laddr("2001:db8::1:22"),
                    Some(laddr("2001:db8::2:61000"))
                ),
                (
                    (52, 3),
                    (F::Unix, T::Dgram, S::None),
                    laddr("/dev/log"),
                    None
                ),
                (
                    (52, 4),
                    (F::Inet, T::Dgram, S::None),
                    laddr("10.0.0.5:514"),
                    None
                ),
                (
                    (9100, 6),
                    (F::Inet, T::Stream, S::Closing),
                    laddr("10.0.0.5:4100"),
                    Some(laddr("10.0.0.9:80"))
                ),
            ]
        );
        assert_eq!(got[0].key, 0xffff_8000_0000_1003);
        assert!(
            got.iter()
                .all(|h| h.socket.inode == 0 && h.socket.uid.is_none())
        );
    }

    #[test]
    fn socket_tables_of_broken_records_are_errors() {
        let buf = host_files();
        assert!(sockets(&buf[..buf.len() - 1]).is_err());
        assert!(sockets(&buf[..100]).is_err());
        assert_eq!(sockets(&[]), Ok(Vec::new()));
    }

    /// A `kinfo_proc` of httpd, laid out as OpenBSD 7.6 `sys/sysctl.h`
    /// puts it on amd64.
    fn httpd() -> Bytes {
        let mut b = Bytes::zeroed(648);
        b.i32(104, 0x4000) // p_flag
            .i32(108, 4242) // p_pid
            .i32(112, 1) // p_ppid
            .u32(128, 67) // p_uid (www)
            .u32(132, 0) // p_ruid
            .u32(140, 0) // p_rgid
            .u32(144, 67) // p_groups[0]
            .u32(212, u32::MAX) // p_tdev: NODEV
            .put(304, &[3]) // p_stat: SSLEEP
            .put(307, &[20]) // p_nice: NZERO + 0
            .put(312, b"httpd\0") // p_comm
            .i32(384, 300) // p_vm_rssize (pages)
            .i32(388, 100) // p_vm_tsize
            .i32(392, 50) // p_vm_dsize
            .i32(396, 10) // p_vm_ssize
            .i64(400, 1) // p_uvalid
            .u64(408, 1_700_000_000) // p_ustart_sec
            .u32(416, 250_000) // p_ustart_usec
            .u32(420, 2) // p_uutime_sec
            .u32(424, 500_000) // p_uutime_usec
            .u32(428, 1) // p_ustime_sec
            .u64(536, 9) // p_uru_nvcsw
            .u64(544, 3) // p_uru_nivcsw
            .u32(552, 7) // p_uctime_sec
            .u32(568, 0) // p_svuid
            .u32(572, 0) // p_svgid
            .i32(608, -1); // p_tid
        b
    }

    #[test]
    fn kinfo_proc_fields() {
        let all = proc_table(&httpd().0, 4096).unwrap();
        let k = &all[0];
        assert_eq!((k.pid, k.ppid), (4242, 1));
        assert_eq!(k.status, Some(Status::Sleeping));
        assert_eq!(k.comm, b"httpd");
        assert_eq!(
            k.uids,
            Some(Ids {
                real: 0,
                effective: 67,
                saved: 0
            })
        );
        assert_eq!(k.nice, Some(0));
        assert_eq!(k.tdev, None);
        assert_eq!(k.create_time, Some(1_700_000_000.25));
        assert_eq!(
            k.cpu_times,
            Some(CpuTimes {
                user: 2.5,
                system: 1.0,
                children_user: Some(7.0),
                children_system: None,
                iowait: None
            })
        );
        let mem = k.memory_info.unwrap();
        assert_eq!((mem.rss, mem.vms), (300 * 4096, 160 * 4096));
        assert_eq!(k.num_threads, None);
        assert!(!k.system);
    }

    #[test]
    fn zombies() {
        // A zombie: PS_ZOMBIE set, p_stat SDEAD, no u-area.
        let mut b = httpd();
        b.put(304, &[6]).u32(560, PS_ZOMBIE).i64(400, 0);
        let k = &proc_table(&b.0, 4096).unwrap()[0];
        assert!(k.is_zombie());
        assert_eq!(k.create_time, None);
        assert_eq!(k.cpu_times, None);
        assert_eq!(status(7, 0), Some(Status::Running));
        assert_eq!(status(2, 0), Some(Status::Running));
        assert_eq!(status(3, PS_ZOMBIE), Some(Status::Zombie));
        assert_eq!(status(9, 0), None);
    }

    #[test]
    fn threads_are_entries_with_a_tid() {
        let process = httpd().0;
        let mut thread = httpd();
        thread.i32(608, 100_123);
        let mut buf = process.clone();
        buf.extend_from_slice(&thread.0);
        buf.extend_from_slice(&thread.0);
        assert_eq!(count_threads(&buf), Ok(2));
        assert!(count_threads(&buf[..700]).is_err());
    }

    #[test]
    fn argument_vectors() {
        // Three pointers (two strings and the NULL), then the strings, as
        // the kernel leaves them in a buffer it was given at 0x7f0000.
        let base = 0x7f_0000u64;
        let mut buf = Vec::new();
        buf.extend_from_slice(&(base + 24).to_ne_bytes());
        buf.extend_from_slice(&(base + 40).to_ne_bytes());
        buf.extend_from_slice(&0u64.to_ne_bytes());
        buf.extend_from_slice(b"/usr/sbin/httpd\0-d\0");
        assert_eq!(
            pointer_strings(&buf, base).unwrap(),
            ["/usr/sbin/httpd", "-d"]
        );
        // A pointer outside the buffer, or a missing NULL, is an error.
        assert!(pointer_strings(&buf, base + 0x1000).is_err());
        assert!(pointer_strings(&buf[..16], base).is_err());
        assert_eq!(pointer_strings(&[0; 8], base), Ok(Vec::new()));
    }

    #[test]
    fn interface_counters() {
        let mut b = Bytes::zeroed(144);
        b.put(3, &[6]) // ifi_link_state: LINK_STATE_FULL_DUPLEX
            .u32(4, 9000) // ifi_mtu
            .u64(64, 10) // ifi_ibytes
            .u64(72, 20) // ifi_obytes
            .u64(104, 5); // ifi_oqdrops
        let d = IF_DATA.decode(&b.0).unwrap();
        assert_eq!((d.link_state, d.mtu), (6, 9000));
        assert_eq!((d.counters.bytes_recv, d.counters.bytes_sent), (10, 20));
        assert_eq!(d.counters.dropout, 5);
    }
}
