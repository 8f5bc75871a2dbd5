//! Pure decoders of the binary records the BSD and macOS kernels return:
//! `kinfo_proc` tables, argument blobs, `kinfo_file` records, `if_data`
//! counters, media words, time values and wait statuses.
//!
//! Like [`super::parse`], nothing here makes a syscall or depends on the
//! build target, so every decoder is tested on every machine against byte
//! fixtures laid out as the OS headers say. Each OS module holds that
//! OS's offsets as plain numbers; the backend built for the OS checks at
//! compile time that they agree with the `libc` crate's structures
//! (`offset_of!`), so a layout change fails the build instead of
//! decoding garbage.
//!
//! Records are read in native byte order. Every target these layouts
//! describe (x86_64 and aarch64) is little-endian and LP64, which the
//! fixtures assume too.

use super::{
    AddressFamily, CpuTimes, CtxSwitches, ErrorKind, Field, FieldSet, Ids, MemoryInfo, NetAddress,
    NetIoCounters, ProcessInfo, Status,
    parse::{
        ParseError,
        cmdline::parse_environ,
        net::{FLAG_NAMES, format_inet, format_inet6, format_mac, names_of},
    },
    socket::{ConnStatus, Endpoint, Family as SocketFamily, HeldSocket, SockType, Socket},
};

pub mod freebsd;
pub mod kevent;
pub mod macos;
pub mod media;
pub mod netbsd;
pub mod netbsdlike;
pub mod openbsd;
pub mod system;

// === Reading fixed layouts ===

/// A kernel record being decoded: bounds-checked native-endian reads at
/// byte offsets, each failure naming the record and the offset.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    what: &'static str,
    bytes: &'a [u8],
}

/// A native-endian reader of each integer type, named for the type.
macro_rules! readers {
    ($($ty:ident),*) => {
        $(
            #[doc = concat!("The `", stringify!($ty), "` at `offset`.")]
            pub fn $ty(&self, offset: usize) -> Result<$ty, ParseError> {
                Ok($ty::from_ne_bytes(self.array(offset)?))
            }
        )*
    };
}

impl<'a> Record<'a> {
    /// `bytes` as a record of kind `what` (a C struct name, for errors).
    pub fn new(what: &'static str, bytes: &'a [u8]) -> Record<'a> {
        Record { what, bytes }
    }

    /// The record's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// `N` bytes at `offset`.
    pub fn array<const N: usize>(&self, offset: usize) -> Result<[u8; N], ParseError> {
        self.slice(offset, N)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| self.short(offset.saturating_add(N)))
    }

    /// `len` bytes at `offset`.
    pub fn field(&self, offset: usize, len: usize) -> Result<&'a [u8], ParseError> {
        self.slice(offset, len)
            .ok_or_else(|| self.short(offset.saturating_add(len)))
    }

    fn slice(&self, offset: usize, len: usize) -> Option<&'a [u8]> {
        self.bytes.get(offset..offset.checked_add(len)?)
    }

    fn short(&self, needed: usize) -> ParseError {
        ParseError::new(
            0,
            format!(
                "{}: {} bytes, a field ends at byte {needed}",
                self.what,
                self.bytes.len()
            ),
        )
    }

    readers! {
        u8, i8, i16, u16, i32, u32, i64, u64
    }

    /// A process id or count the kernel keeps signed: negative values are
    /// a decoding error rather than a huge number.
    pub fn id(&self, offset: usize) -> Result<u32, ParseError> {
        let value = self.i32(offset)?;
        u32::try_from(value).map_err(|_| {
            ParseError::new(
                0,
                format!("{}: negative value {value} at byte {offset}", self.what),
            )
        })
    }

    /// Real, effective and saved ids from three `u32` fields.
    pub fn ids(&self, [real, effective, saved]: [usize; 3]) -> Result<Ids, ParseError> {
        Ok(Ids {
            real: self.u32(real)?,
            effective: self.u32(effective)?,
            saved: self.u32(saved)?,
        })
    }

    /// A fixed-size character array holding a NUL-terminated string; the
    /// whole array when it has no NUL.
    pub fn cstr(&self, offset: usize, len: usize) -> Result<&'a [u8], ParseError> {
        Ok(until_nul(self.field(offset, len)?))
    }

    /// A `struct timeval` at `offset` in seconds: an 8-byte `tv_sec`, then
    /// `tv_usec` of `usec_width` bytes (8 on the BSDs, 4 on macOS, whose
    /// `suseconds_t` is 32-bit).
    pub fn timeval(&self, offset: usize, usec_width: usize) -> Result<f64, ParseError> {
        let sec = self.i64(offset)?;
        let usec = match usec_width {
            4 => i64::from(self.i32(offset + 8)?),
            _ => self.i64(offset + 8)?,
        };
        Ok(timeval_secs(sec, usec))
    }
}

/// The bytes before the first NUL, or all of them.
pub fn until_nul(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|b| *b == 0) {
        Some(end) => &bytes[..end],
        None => bytes,
    }
}

/// Seconds and microseconds as seconds.
pub fn timeval_secs(sec: i64, usec: i64) -> f64 {
    sec as f64 + usec as f64 / 1e6
}

/// The records of a table the kernel returned as one buffer of
/// fixed-size structures, such as `kern.proc.all`. A buffer that is not a
/// whole number of records is a decoding error: the layout is not the
/// one this agent was built for.
pub fn records<'a>(
    what: &'static str,
    buf: &'a [u8],
    size: usize,
) -> Result<impl Iterator<Item = Record<'a>>, ParseError> {
    if size == 0 || !buf.len().is_multiple_of(size) {
        return Err(ParseError::new(
            0,
            format!(
                "{what}: {} bytes is not a whole number of {size}-byte records",
                buf.len()
            ),
        ));
    }
    Ok(buf.chunks_exact(size).map(move |r| Record::new(what, r)))
}

// === Values shared by the kernels ===

/// How a process ended, from the `wait(2)` status the kernel reports with
/// `NOTE_EXIT`: the exit code, or the signal that killed it. The BSDs and
/// macOS encode it alike: the low 7 bits are the terminating signal (0
/// for a normal exit, 0x7f for a stop), bits 8-15 the exit code.
pub fn wait_status(status: i64) -> (Option<i32>, Option<i32>) {
    let low = (status & 0x7f) as i32;
    match low {
        0 => (Some(((status >> 8) & 0xff) as i32), None),
        0x7f => (None, None),
        signal => (None, Some(signal)),
    }
}

/// The arguments of `KERN_PROC_ARGS` (FreeBSD, NetBSD) or `KERN_PROCARGS2`
/// (after its header): NUL-terminated strings back to back. A trailing
/// string without NUL (a process that overwrote its arguments) is kept.
pub fn nul_separated(bytes: &[u8]) -> Vec<String> {
    let body = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if body.is_empty() {
        return Vec::new();
    }
    body.split(|b| *b == 0).map(super::parse::lossy).collect()
}

/// `KEY=value` strings (macOS's `KERN_PROCARGS2` environment, OpenBSD's
/// `KERN_PROC_ENV` vector) as the API's pairs, read as Linux reads
/// `/proc/<pid>/environ`.
pub fn environ_of<S: AsRef<[u8]>>(vars: &[S]) -> Vec<(String, String)> {
    let mut block = Vec::new();
    for var in vars {
        let var = var.as_ref();
        // A NUL inside one string would end the block early.
        block.extend_from_slice(until_nul(var));
        block.push(0);
    }
    parse_environ(&block)
}

/// psutil's mode of a descriptor open for reading (`read`), writing
/// (`write`) and appending (`append`), as its `file_flags_to_mode` names
/// Linux's open flags: "r", "w" or "r+", with "w" turned into "a" by
/// append ("a", "a+"). A descriptor open for neither (FreeBSD's `O_PATH`
/// or `O_EXEC`), which psutil cannot name, is "".
pub fn access_mode(read: bool, write: bool, append: bool) -> &'static str {
    match (read, write, append) {
        (true, false, _) => "r",
        (false, true, false) => "w",
        (false, true, true) => "a",
        (true, true, false) => "r+",
        (true, true, true) => "a+",
        (false, false, _) => "",
    }
}

/// A terminal's path from the name `devname(3)` gives its device: `None`
/// when the name is not of a device under `/dev` (FreeBSD answers `#C:`
/// and a number, macOS `??`, for devices it cannot name).
pub fn terminal_path(name: &[u8]) -> Option<String> {
    let usable = !name.is_empty() && !name.starts_with(b"#") && !name.starts_with(b"??");
    usable.then(|| format!("/dev/{}", super::parse::lossy(name)))
}

/// A `sysctl` value that is a whole C type: the integer types differ
/// between OSes (`hw.physmem` is a `u_long` on FreeBSD, an `int64_t` on
/// macOS), so this reads whatever width the kernel returned.
pub fn unsigned(what: &'static str, bytes: &[u8]) -> Result<u64, ParseError> {
    let record = Record::new(what, bytes);
    match bytes.len() {
        4 => record.u32(0).map(u64::from),
        8 => record.u64(0),
        n => Err(ParseError::new(
            0,
            format!("{what}: {n} bytes is not a 4- or 8-byte integer"),
        )),
    }
}

/// An interface's counters from the kernel's `if_data` fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfData {
    /// `ifi_link_state`, 0 (unknown) everywhere; OpenBSD adds half (5)
    /// and full (6) duplex to up.
    pub link_state: u8,
    pub mtu: u32,
    /// `ifi_baudrate` in bits per second; 0 when the driver does not say.
    pub baudrate: u64,
    pub counters: NetIoCounters,
}

impl IfData {
    /// The speed in Mbit/s the baud rate gives, 0 when unknown: the
    /// fallback where `SIOCGIFMEDIA` names no speed.
    pub fn speed_mbps(&self) -> u32 {
        u32::try_from(self.baudrate / 1_000_000).unwrap_or(u32::MAX)
    }
}

/// Where one OS keeps the fields of `struct if_data` that the API reports.
#[derive(Debug)]
pub struct IfDataLayout {
    /// The structure's name, for errors.
    pub what: &'static str,
    /// Bytes the structure takes: a shorter buffer is an error.
    pub size: usize,
    /// `ifi_link_state` (one byte; NetBSD's `int` is read by its low
    /// byte); macOS has none.
    pub link_state: Option<usize>,
    /// `ifi_mtu`: offset and width in bytes.
    pub mtu: (usize, usize),
    /// 4 for macOS's 32-bit `if_data`, 8 elsewhere.
    pub counter_width: usize,
    /// `ifi_baudrate`, `ifi_ipackets`, `ifi_ierrors`, `ifi_opackets`,
    /// `ifi_oerrors`, `ifi_ibytes`, `ifi_obytes`, `ifi_iqdrops`.
    pub counters: [usize; 8],
    /// `ifi_oqdrops`, which NetBSD and macOS do not keep.
    pub oqdrops: Option<usize>,
}

impl IfDataLayout {
    /// Decodes the `if_data` an `AF_LINK` entry of `getifaddrs(3)` points
    /// to. Output drops are 0 where the OS does not count them.
    pub fn decode(&self, bytes: &[u8]) -> Result<IfData, ParseError> {
        if bytes.len() < self.size {
            return Err(ParseError::new(
                0,
                format!(
                    "{}: {} bytes, expected {}",
                    self.what,
                    bytes.len(),
                    self.size
                ),
            ));
        }
        let r = Record::new(self.what, bytes);
        let wide = |offset: usize, width: usize| -> Result<u64, ParseError> {
            match width {
                4 => r.u32(offset).map(u64::from),
                _ => r.u64(offset),
            }
        };
        let counter = |offset| wide(offset, self.counter_width);
        let [
            baud,
            ipackets,
            ierrors,
            opackets,
            oerrors,
            ibytes,
            obytes,
            iqdrops,
        ] = self.counters;
        Ok(IfData {
            link_state: self.link_state.map(|o| r.u8(o)).transpose()?.unwrap_or(0),
            mtu: u32::try_from(wide(self.mtu.0, self.mtu.1)?).unwrap_or(u32::MAX),
            baudrate: counter(baud)?,
            counters: NetIoCounters {
                bytes_sent: counter(obytes)?,
                bytes_recv: counter(ibytes)?,
                packets_sent: counter(opackets)?,
                packets_recv: counter(ipackets)?,
                errin: counter(ierrors)?,
                errout: counter(oerrors)?,
                dropin: counter(iqdrops)?,
                dropout: self.oqdrops.map(counter).transpose()?.unwrap_or(0),
            },
        })
    }
}

/// The `IFF_*` flags of 4.4BSD that Linux kept too, with psutil's names:
/// `up` (0x1) to `allmulti` (0x200) but for 0x20, which each OS uses
/// differently (`notrailers` on NetBSD and macOS, `staticarp` on OpenBSD,
/// nothing user-visible on FreeBSD).
fn iff_low() -> [&'static [(u32, &'static str)]; 2] {
    [&FLAG_NAMES[..5], &FLAG_NAMES[6..10]]
}

/// The bits 4.4BSD gave 0x400 to 0x8000 and every BSD and macOS kept:
/// `oactive`, `simplex`, `link0` to `link2` and `multicast` (where Linux
/// has `master`, `slave` and others).
pub const IFF_HIGH: [(u32, &str); 6] = [
    (0x400, "oactive"),
    (0x800, "simplex"),
    (0x1000, "link0"),
    (0x2000, "link1"),
    (0x4000, "link2"),
    (0x8000, "multicast"),
];

/// One OS's `IFF_*` flags with psutil's names: what it puts at 0x20 (no
/// entry or one), and what it has above 0x8000.
#[derive(Debug)]
pub struct IfFlags {
    pub bit_0x20: &'static [(u32, &'static str)],
    pub extra: &'static [(u32, &'static str)],
}

impl IfFlags {
    /// psutil's `flags` string: the names of the set bits in bit order,
    /// comma-separated.
    pub fn names(&self, flags: u32) -> String {
        let [below, above] = iff_low();
        names_of(flags, &[below, self.bit_0x20, above, &IFF_HIGH, self.extra])
    }
}

// === Socket addresses ===

/// The address families the API reports, as the caller recognised them
/// from `sa_family` (whose values differ between the BSDs: `AF_INET6` is
/// 28 on FreeBSD, 24 on OpenBSD and NetBSD, 30 on macOS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Inet,
    Inet6,
    /// `AF_LINK`: a `struct sockaddr_dl`.
    Link,
}

/// A decoded socket address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockAddr {
    Inet([u8; 4]),
    Inet6 {
        octets: [u8; 16],
        scope_id: u32,
    },
    /// A link-level address: the interface's index and name and its
    /// hardware address (empty for interfaces without one).
    Link {
        index: u16,
        name: Vec<u8>,
        mac: Vec<u8>,
    },
}

/// Decodes a BSD socket address (`sa_len`, `sa_family`, then the
/// family's fields) as `family`. Netmasks come truncated to their
/// significant bytes and sometimes without a family, so missing bytes
/// read as zero and the caller passes the family of the entry's address,
/// as psutil does.
///
/// Layouts (`netinet/in.h`, `netinet6/in6.h`, `net/if_dl.h`):
/// `sockaddr_in` has the address at 4; `sockaddr_in6` the address at 8
/// and the scope id at 24; `sockaddr_dl` the index at 2, name and address
/// lengths at 5 and 6, and the name then the address from 8.
pub fn sockaddr(bytes: &[u8], family: Family) -> Option<SockAddr> {
    let mut full = [0u8; 28];
    let n = bytes.len().min(full.len());
    full[..n].copy_from_slice(&bytes[..n]);
    match family {
        Family::Inet => Some(SockAddr::Inet(full[4..8].try_into().ok()?)),
        Family::Inet6 => {
            let mut octets: [u8; 16] = full[8..24].try_into().ok()?;
            let mut scope_id = u32::from_ne_bytes(full[24..28].try_into().ok()?);
            // KAME kernels (NetBSD, OpenBSD, older FreeBSD and macOS)
            // embed a link-local address's interface in bytes 2-3; the
            // scope id is where it belongs.
            let link_local = octets[0] == 0xfe && octets[1] & 0xc0 == 0x80;
            let embedded = u16::from_be_bytes([octets[2], octets[3]]);
            if link_local && embedded != 0 {
                if scope_id == 0 {
                    scope_id = u32::from(embedded);
                }
                octets[2] = 0;
                octets[3] = 0;
            }
            Some(SockAddr::Inet6 { octets, scope_id })
        }
        Family::Link => {
            let nlen = usize::from(*bytes.get(5)?);
            let alen = usize::from(*bytes.get(6)?);
            let data = bytes.get(8..)?;
            Some(SockAddr::Link {
                index: u16::from_ne_bytes([*bytes.get(2)?, *bytes.get(3)?]),
                name: data.get(..nlen)?.to_vec(),
                mac: data.get(nlen..nlen + alen)?.to_vec(),
            })
        }
    }
}

// === Sockets ===

/// `SOCK_STREAM`, `SOCK_DGRAM`, `SOCK_RAW` and `SOCK_SEQPACKET` are
/// numbered alike on the BSDs, macOS and Linux (1, 2, 3, 5), and so are
/// `IPPROTO_TCP` (6) and `IPPROTO_UDP` (17); each backend asserts it
/// against the `libc` crate.
pub const IPPROTO_TCP: i32 = 6;
/// See [`IPPROTO_TCP`].
pub const IPPROTO_UDP: i32 = 17;

/// One socket descriptor as a BSD kernel or macOS describes it, its
/// family already recognised (the `AF_*` numbers differ), the rest in the
/// kernel's numbers; [`held_socket`] makes the API's socket of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketRecord {
    pub pid: u32,
    pub fd: u32,
    pub family: SocketFamily,
    /// `SOCK_*`.
    pub sock_type: i32,
    /// `IPPROTO_*` (0 for unix sockets).
    pub protocol: i32,
    /// The local end: address and port, or a unix socket's path.
    pub laddr: Endpoint,
    /// The remote end, as `laddr`; an IP socket's port 0 (or a unix
    /// socket's empty path) where it is not connected.
    pub raddr: Endpoint,
    /// The TCP state (`TCPS_*`), `None` where the kernel's record has
    /// none (FreeBSD's `kinfo_file`).
    pub tcp_state: Option<i32>,
    /// The kernel's handle of the socket, 0 where hidden.
    pub key: u64,
}

/// The socket psutil lists for `r`: unix sockets of every type, IP
/// sockets only of TCP (streams) and UDP (datagrams), as on Linux; `None`
/// for the others (raw IP, SCTP, an unknown type or TCP state). A TCP
/// socket whose kernel gives no state is NONE; UDP and unix sockets have
/// none, as psutil shows them.
pub fn held_socket(r: SocketRecord) -> Option<HeldSocket> {
    let kind = SockType::from_linux(u32::try_from(r.sock_type).ok()?)?;
    let (status, raddr) = match r.family {
        SocketFamily::Unix => {
            let connected = !r.raddr.path.is_empty();
            (ConnStatus::None, connected.then_some(r.raddr))
        }
        SocketFamily::Inet | SocketFamily::Inet6 => {
            let status = match (kind, r.protocol) {
                (SockType::Stream, IPPROTO_TCP) => match r.tcp_state {
                    Some(state) => ConnStatus::from_bsd_tcp(state)?,
                    None => ConnStatus::None,
                },
                (SockType::Dgram, IPPROTO_UDP) => ConnStatus::None,
                _ => return None,
            };
            (status, Some(r.raddr).filter(|e| e.port != 0))
        }
    };
    Some(HeldSocket {
        socket: Socket {
            family: r.family,
            kind,
            laddr: r.laddr,
            raddr,
            status,
            inode: 0,
            uid: None,
            pid: Some(r.pid),
            fd: Some(r.fd),
        },
        key: r.key,
    })
}

/// One end of a socket from a BSD `struct sockaddr_in`, `sockaddr_in6`
/// or `sockaddr_un` of `family` (`sys/un.h`: `sun_len`, `sun_family`,
/// then the path from byte 2; the port of the IP ones at 2, in network
/// byte order). A unix path ends at `sun_len` or its first NUL; an IPv6
/// address loses its scope, as the API's addresses have none.
pub fn sockaddr_endpoint(bytes: &[u8], family: SocketFamily) -> Endpoint {
    match family {
        SocketFamily::Unix => {
            let len = bytes
                .first()
                .map_or(0, |l| usize::from(*l))
                .min(bytes.len());
            let path = bytes.get(2..len).unwrap_or_default();
            Endpoint::path(super::parse::lossy(until_nul(path)))
        }
        SocketFamily::Inet | SocketFamily::Inet6 => {
            let port = match bytes.get(2..4) {
                Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
                _ => 0,
            };
            let ip: std::net::IpAddr = if family == SocketFamily::Inet6 {
                match sockaddr(bytes, Family::Inet6) {
                    Some(SockAddr::Inet6 { octets, .. }) => octets.into(),
                    _ => std::net::Ipv6Addr::UNSPECIFIED.into(),
                }
            } else {
                match sockaddr(bytes, Family::Inet) {
                    Some(SockAddr::Inet(octets)) => octets.into(),
                    _ => std::net::Ipv4Addr::UNSPECIFIED.into(),
                }
            };
            Endpoint::ip(ip, port)
        }
    }
}

/// The family of a socket whose domain is `af`, on a kernel numbering
/// `AF_INET6` `inet6` (`AF_UNIX` and `AF_INET`, 1 and 2, are alike
/// everywhere); `None` for the families psutil does not list.
pub fn socket_family(af: i64, inet6: i64) -> Option<SocketFamily> {
    match af {
        1 => Some(SocketFamily::Unix),
        2 => Some(SocketFamily::Inet),
        _ if af == inet6 => Some(SocketFamily::Inet6),
        _ => None,
    }
}

/// One end of an IP socket of `family` from a record that keeps its
/// address as bytes at `addr` (16 for IPv6, 4 for IPv4) and its port in
/// a wider word at `port` (see [`net_port`]).
pub fn ip_endpoint(
    r: &Record<'_>,
    family: SocketFamily,
    addr: usize,
    port: usize,
) -> Result<Endpoint, ParseError> {
    let ip: std::net::IpAddr = if family == SocketFamily::Inet6 {
        r.array::<16>(addr)?.into()
    } else {
        r.array::<4>(addr)?.into()
    };
    Ok(Endpoint::ip(ip, net_port(r.u32(port)?)))
}

/// A port as the kernels keep it in a wider word: the `in_port_t` in
/// network byte order, its low 16 bits in native order.
pub fn net_port(word: u32) -> u16 {
    u16::from_be(word as u16)
}

/// `IFF_BROADCAST` and `IFF_POINTOPOINT`, alike on Linux and the BSDs.
const IFF_BROADCAST: u32 = 0x2;
const IFF_POINTOPOINT: u32 = 0x10;

/// An address of interface `ifname` as psutil reports it, from one
/// `getifaddrs` entry: its address, netmask and broadcast or peer
/// address (by the interface's `flags`), read as the address's family.
/// `None` for link entries without a hardware address.
pub fn net_address(
    family: Family,
    addr: &[u8],
    netmask: Option<&[u8]>,
    dstaddr: Option<&[u8]>,
    flags: u32,
    ifname: &str,
) -> Option<NetAddress> {
    let text = |sa: SockAddr| match sa {
        SockAddr::Inet(octets) => Some(format_inet(octets)),
        SockAddr::Inet6 { octets, scope_id } => Some(format_inet6(octets, scope_id, ifname)),
        SockAddr::Link { mac, .. } => format_mac(&mac),
    };
    let decode = |bytes: &[u8]| sockaddr(bytes, family).and_then(text);
    let (kind, address) = match family {
        Family::Inet => (AddressFamily::Inet, decode(addr)?),
        Family::Inet6 => (AddressFamily::Inet6, decode(addr)?),
        // Link entries have no netmask or peer worth reporting.
        Family::Link => {
            return Some(NetAddress {
                family: AddressFamily::Link,
                address: decode(addr)?,
                netmask: None,
                broadcast: None,
                ptp: None,
            });
        }
    };
    let other = dstaddr.and_then(decode);
    let (broadcast, ptp) = if flags & IFF_BROADCAST != 0 {
        (other, None)
    } else if flags & IFF_POINTOPOINT != 0 {
        (None, other)
    } else {
        (None, None)
    };
    Some(NetAddress {
        family: kind,
        address,
        netmask: netmask.and_then(decode),
        broadcast,
        ptp,
    })
}

// === Processes ===

/// What a process table entry (`kinfo_proc`, `kinfo_proc2`,
/// `proc_taskallinfo`) says about a process, in the API's units. Fields
/// the record does not carry on an OS are `None` there.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Kinfo {
    pub pid: u32,
    pub ppid: u32,
    pub status: Option<Status>,
    /// The short command name the kernel keeps, without its NUL.
    pub comm: Vec<u8>,
    pub uids: Option<Ids>,
    pub gids: Option<Ids>,
    /// The controlling terminal's device, `None` without one.
    pub tdev: Option<u64>,
    pub nice: Option<i32>,
    /// Seconds since the Unix epoch.
    pub create_time: Option<f64>,
    pub num_threads: Option<u32>,
    pub ctx_switches: Option<CtxSwitches>,
    pub cpu_times: Option<CpuTimes>,
    pub memory_info: Option<MemoryInfo>,
    /// A kernel process (`P_SYSTEM`): it has no executable, arguments or
    /// environment.
    pub system: bool,
    /// Why fields this OS keeps in a second record are missing, when the
    /// agent could not read that record (macOS answers EPERM for other
    /// users' task info).
    pub partial: Option<ErrorKind>,
}

impl Kinfo {
    /// Whether the entry is a zombie.
    pub fn is_zombie(&self) -> bool {
        self.status == Some(Status::Zombie)
    }

    /// Copies the requested `fields` this record carries into `p`, and
    /// names those it does not carry in `p.field_errors` with `missing`
    /// (why the record lacks them: a zombie, a part the agent may not
    /// read). Fields from other sources (exe, cmdline, cwd, fds, environ,
    /// username, terminal) are left to the caller.
    pub fn apply(&self, fields: FieldSet, missing: ErrorKind, p: &mut ProcessInfo) {
        let missing = |p: &mut ProcessInfo, field| p.field_errors.push((field, missing));
        for field in fields.iter() {
            let present = match field {
                Field::Ppid => {
                    p.ppid = Some(self.ppid);
                    true
                }
                Field::Name => {
                    p.name = Some(super::parse::lossy(&self.comm));
                    true
                }
                Field::Status => set(&mut p.status, self.status),
                Field::Uids => set(&mut p.uids, self.uids),
                Field::Gids => set(&mut p.gids, self.gids),
                Field::Nice => set(&mut p.nice, self.nice),
                Field::CreateTime => set(&mut p.create_time, self.create_time),
                Field::NumThreads => set(&mut p.num_threads, self.num_threads),
                Field::NumCtxSwitches => set(&mut p.num_ctx_switches, self.ctx_switches),
                Field::CpuTimes => set(&mut p.cpu_times, self.cpu_times),
                Field::MemoryInfo => set(&mut p.memory_info, self.memory_info),
                _ => true,
            };
            if !present {
                missing(p, field);
            }
        }
    }
}

/// Sets `slot` to `value`; whether there was a value.
fn set<T>(slot: &mut Option<T>, value: Option<T>) -> bool {
    *slot = value;
    slot.is_some()
}

#[cfg(test)]
pub(crate) mod fixture {
    //! Building byte fixtures: a zeroed buffer of a structure's size with
    //! values written at the offsets the OS header gives.

    /// A zeroed record of `size` bytes.
    pub struct Bytes(pub Vec<u8>);

    impl Bytes {
        pub fn zeroed(size: usize) -> Bytes {
            Bytes(vec![0; size])
        }

        /// Writes `value` at `offset`, native-endian.
        pub fn put(&mut self, offset: usize, value: &[u8]) -> &mut Bytes {
            self.0[offset..offset + value.len()].copy_from_slice(value);
            self
        }

        pub fn i32(&mut self, offset: usize, v: i32) -> &mut Bytes {
            self.put(offset, &v.to_ne_bytes())
        }

        pub fn u32(&mut self, offset: usize, v: u32) -> &mut Bytes {
            self.put(offset, &v.to_ne_bytes())
        }

        pub fn i64(&mut self, offset: usize, v: i64) -> &mut Bytes {
            self.put(offset, &v.to_ne_bytes())
        }

        pub fn u64(&mut self, offset: usize, v: u64) -> &mut Bytes {
            self.put(offset, &v.to_ne_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let bytes = [1u8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        let r = Record::new("test", &bytes);
        assert_eq!(r.u32(0), Ok(1));
        assert_eq!(r.i32(4), Ok(-1));
        let err = r.u32(6).unwrap_err();
        assert!(err.message.contains("test: 8 bytes"), "{err}");
        assert!(r.u64(usize::MAX - 2).is_err());
        assert!(r.id(4).unwrap_err().message.contains("negative"));
        assert_eq!(r.id(0), Ok(1));
    }

    #[test]
    fn strings_end_at_nul() {
        let r = Record::new("test", b"sshd\0\0\0xx");
        assert_eq!(r.cstr(0, 9), Ok(&b"sshd"[..]));
        assert_eq!(r.cstr(7, 2), Ok(&b"xx"[..]));
        assert_eq!(until_nul(b"\0abc"), b"");
    }

    #[test]
    fn timevals() {
        // 1700000000.25 s as a BSD timeval (two 8-byte fields) and as a
        // macOS one (8-byte seconds, 4-byte microseconds, 4 bytes of
        // padding).
        let mut bsd = Vec::new();
        bsd.extend_from_slice(&1_700_000_000i64.to_ne_bytes());
        bsd.extend_from_slice(&250_000i64.to_ne_bytes());
        assert_eq!(Record::new("tv", &bsd).timeval(0, 8), Ok(1_700_000_000.25));
        let mut mac = Vec::new();
        mac.extend_from_slice(&1_700_000_000i64.to_ne_bytes());
        mac.extend_from_slice(&250_000i32.to_ne_bytes());
        mac.extend_from_slice(&[0xaa; 4]);
        assert_eq!(Record::new("tv", &mac).timeval(0, 4), Ok(1_700_000_000.25));
    }

    #[test]
    fn tables_are_whole_records() {
        let buf = [0u8; 12];
        assert_eq!(records("t", &buf, 4).map(Iterator::count), Ok(3));
        assert!(records("t", &buf, 5).is_err());
        assert!(records("t", &buf, 0).is_err());
        assert_eq!(records("t", &[], 4).map(Iterator::count), Ok(0));
    }

    #[test]
    fn wait_statuses() {
        // exit(3): 0x0300; killed by SIGKILL (9): 0x0009; killed by SIGSEGV
        // with a core dump (0x80): 0x008b; stopped by SIGSTOP: 0x137f.
        assert_eq!(wait_status(0x0300), (Some(3), None));
        assert_eq!(wait_status(0), (Some(0), None));
        assert_eq!(wait_status(0x0009), (None, Some(9)));
        assert_eq!(wait_status(0x008b), (None, Some(11)));
        assert_eq!(wait_status(0x137f), (None, None));
    }

    #[test]
    fn argument_strings() {
        assert_eq!(nul_separated(b"ls\0-l\0/tmp\0"), ["ls", "-l", "/tmp"]);
        assert_eq!(nul_separated(b"nginx: worker"), ["nginx: worker"]);
        assert_eq!(nul_separated(b"a\0\0b\0"), ["a", "", "b"]);
        assert!(nul_separated(b"").is_empty());
        assert!(nul_separated(b"\0").is_empty());
    }

    #[test]
    fn environment_strings() {
        let vars = ["PATH=/bin", "EMPTY=", "=nokey", "NOEQUALS", "A=b=c"];
        assert_eq!(
            environ_of(&vars),
            [
                ("PATH".to_owned(), "/bin".to_owned()),
                ("EMPTY".to_owned(), String::new()),
                ("A".to_owned(), "b=c".to_owned())
            ]
        );
        assert!(environ_of::<&str>(&[]).is_empty());
    }

    #[test]
    fn access_modes_as_psutil_names_them() {
        assert_eq!(access_mode(true, false, false), "r");
        // Appending without writing changes nothing, as O_RDONLY|O_APPEND.
        assert_eq!(access_mode(true, false, true), "r");
        assert_eq!(access_mode(false, true, false), "w");
        assert_eq!(access_mode(false, true, true), "a");
        assert_eq!(access_mode(true, true, false), "r+");
        assert_eq!(access_mode(true, true, true), "a+");
        assert_eq!(access_mode(false, false, false), "");
    }

    #[test]
    fn socket_ends_from_bsd_sockaddrs() {
        use crate::backend::socket::Family as F;
        // sockaddr_in 10.1.2.3:8080 (netinet/in.h).
        let sin = [16, 2, 0x1f, 0x90, 10, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            sockaddr_endpoint(&sin, F::Inet),
            Endpoint::ip([10, 1, 2, 3].into(), 8080)
        );
        // sockaddr_in6 [fe80::1%2]:22 with KAME's embedded scope: the
        // scope goes, as the API's addresses have none.
        let mut sin6 = vec![28, 28, 0, 22, 0, 0, 0, 0, 0xfe, 0x80, 0, 2];
        sin6.extend([0; 11]);
        sin6.extend([1, 0, 0, 0, 0]);
        assert_eq!(
            sockaddr_endpoint(&sin6, F::Inet6),
            Endpoint::ip("fe80::1".parse().unwrap(), 22)
        );
        // sockaddr_un: the path ends at sun_len or at a NUL.
        let sun = [10, 1, b'/', b't', b'm', b'p', b'/', b's', b'o', b'c', b'k'];
        assert_eq!(sockaddr_endpoint(&sun, F::Unix).path, "/tmp/soc");
        assert_eq!(
            sockaddr_endpoint(&[12, 1, b'/', b'x', 0, b'y'], F::Unix).path,
            "/x"
        );
        // Empty or short: unnamed, or the unspecified address.
        assert_eq!(
            sockaddr_endpoint(&[], F::Unix),
            Endpoint::path(String::new())
        );
        assert_eq!(sockaddr_endpoint(&[1], F::Unix).path, "");
        assert_eq!(
            sockaddr_endpoint(&[], F::Inet6),
            Endpoint::ip("::".parse().unwrap(), 0)
        );
        assert_eq!(net_port(u32::from(443u16.to_be())), 443);
        assert_eq!(net_port(0xdead_0000 | u32::from(80u16.to_be())), 80);
    }

    #[test]
    fn records_become_the_sockets_psutil_lists() {
        use crate::backend::socket::Family as F;
        let record = |family, sock_type, protocol, tcp_state| SocketRecord {
            pid: 9,
            fd: 4,
            family,
            sock_type,
            protocol,
            laddr: Endpoint::ip([0; 4].into(), 80),
            raddr: Endpoint::ip([0; 4].into(), 0),
            tcp_state,
            key: 1,
        };
        let status = |r| held_socket(r).map(|h| h.socket.status);
        assert_eq!(
            status(record(F::Inet, 1, 6, Some(1))),
            Some(ConnStatus::Listen)
        );
        assert_eq!(status(record(F::Inet, 1, 6, None)), Some(ConnStatus::None));
        assert_eq!(
            status(record(F::Inet6, 2, 17, Some(4))),
            Some(ConnStatus::None)
        );
        // SCTP, raw IP, UDP-lite as a stream, an unnamed state, a type
        // psutil does not know.
        assert_eq!(status(record(F::Inet, 1, 132, Some(1))), None);
        assert_eq!(status(record(F::Inet, 3, 6, Some(1))), None);
        assert_eq!(status(record(F::Inet, 1, 17, Some(1))), None);
        assert_eq!(status(record(F::Inet, 1, 6, Some(12))), None);
        assert_eq!(status(record(F::Unix, 4, 0, None)), None);
        assert_eq!(status(record(F::Unix, -1, 0, None)), None);
        let unix = SocketRecord {
            laddr: Endpoint::path(String::new()),
            raddr: Endpoint::path("/var/run/log".into()),
            ..record(F::Unix, 5, 0, Some(4))
        };
        let s = held_socket(unix).unwrap().socket;
        assert_eq!((s.kind, s.status), (SockType::Seqpacket, ConnStatus::None));
        assert_eq!(s.raddr, Some(Endpoint::path("/var/run/log".into())));
        let connected = SocketRecord {
            raddr: Endpoint::ip([10, 0, 0, 1].into(), 5000),
            ..record(F::Inet, 1, 6, Some(4))
        };
        let s = held_socket(connected).unwrap().socket;
        assert_eq!(s.raddr.map(|r| r.port), Some(5000));
        assert_eq!((s.pid, s.fd), (Some(9), Some(4)));
    }

    #[test]
    fn terminals() {
        assert_eq!(terminal_path(b"pts/3").as_deref(), Some("/dev/pts/3"));
        assert_eq!(terminal_path(b"ttyv0").as_deref(), Some("/dev/ttyv0"));
        assert_eq!(terminal_path(b"#C:0x5a"), None);
        assert_eq!(terminal_path(b"??"), None);
        assert_eq!(terminal_path(b""), None);
    }

    #[test]
    fn sysctl_integers() {
        assert_eq!(
            unsigned("hw.physmem", &8_589_934_592u64.to_ne_bytes()),
            Ok(1 << 33)
        );
        assert_eq!(unsigned("hw.ncpu", &4u32.to_ne_bytes()), Ok(4));
        assert!(unsigned("hw.ncpu", &[1, 2]).is_err());
    }

    #[test]
    fn kinfo_apply_names_what_is_missing() {
        let k = Kinfo {
            pid: 7,
            ppid: 1,
            status: Some(Status::Sleeping),
            comm: b"cron".to_vec(),
            nice: Some(0),
            create_time: Some(1.5),
            ..Kinfo::default()
        };
        let fields: FieldSet = [Field::Ppid, Field::Name, Field::Nice, Field::CpuTimes]
            .into_iter()
            .collect();
        let mut p = ProcessInfo::new(7);
        k.apply(fields, ErrorKind::Unsupported, &mut p);
        assert_eq!(p.ppid, Some(1));
        assert_eq!(p.name.as_deref(), Some("cron"));
        assert_eq!(p.nice, Some(0));
        assert_eq!(p.create_time, None, "not requested");
        assert_eq!(p.field_errors, [(Field::CpuTimes, ErrorKind::Unsupported)]);

        let mut p = ProcessInfo::new(7);
        k.apply(fields, ErrorKind::ZombieProcess, &mut p);
        assert_eq!(
            p.field_errors,
            [(Field::CpuTimes, ErrorKind::ZombieProcess)]
        );
    }

    /// A `sockaddr_in` of 192.0.2.10 (`sin_len` 16, `AF_INET` 2), a
    /// netmask truncated to its significant bytes as routing messages
    /// carry it, and a `sockaddr_in6` of fe80::1 with the KAME-embedded
    /// scope 4.
    #[test]
    fn socket_addresses() {
        let sin = [16, 2, 0, 0, 192, 0, 2, 10, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            sockaddr(&sin, Family::Inet),
            Some(SockAddr::Inet([192, 0, 2, 10]))
        );
        let mask = [7, 0, 0, 0, 255, 255, 255];
        assert_eq!(
            sockaddr(&mask, Family::Inet),
            Some(SockAddr::Inet([255, 255, 255, 0]))
        );
        let mut sin6 = [0u8; 28];
        sin6[0] = 28;
        sin6[8..10].copy_from_slice(&[0xfe, 0x80]);
        sin6[10..12].copy_from_slice(&[0, 4]);
        sin6[23] = 1;
        let mut octets = [0u8; 16];
        octets[..2].copy_from_slice(&[0xfe, 0x80]);
        octets[15] = 1;
        assert_eq!(
            sockaddr(&sin6, Family::Inet6),
            Some(SockAddr::Inet6 {
                octets,
                scope_id: 4
            })
        );
        // A sockaddr_dl of em0 (index 1, IFT_ETHER) with a MAC.
        let mut dl = vec![20, 18, 1, 0, 6, 3, 6, 0];
        dl.extend_from_slice(b"em0");
        dl.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
        assert_eq!(
            sockaddr(&dl, Family::Link),
            Some(SockAddr::Link {
                index: 1,
                name: b"em0".to_vec(),
                mac: vec![2, 0, 0, 0, 0, 1]
            })
        );
        assert_eq!(sockaddr(&dl[..10], Family::Link), None);
    }

    #[test]
    fn addresses_like_psutil() {
        let sin = |o: [u8; 4]| vec![16, 2, 0, 0, o[0], o[1], o[2], o[3]];
        let a = net_address(
            Family::Inet,
            &sin([198, 51, 100, 7]),
            Some(&sin([255, 255, 255, 0])),
            Some(&sin([198, 51, 100, 255])),
            0x8843,
            "em0",
        )
        .unwrap();
        assert_eq!(a.address, "198.51.100.7");
        assert_eq!(a.netmask.as_deref(), Some("255.255.255.0"));
        assert_eq!(a.broadcast.as_deref(), Some("198.51.100.255"));
        assert_eq!(a.ptp, None);
        // A point-to-point link names its peer.
        let tun = net_address(
            Family::Inet,
            &sin([203, 0, 113, 1]),
            None,
            Some(&sin([203, 0, 113, 2])),
            0x8051,
            "tun0",
        )
        .unwrap();
        assert_eq!(
            (tun.broadcast, tun.ptp.as_deref()),
            (None, Some("203.0.113.2"))
        );
        // The loopback's link entry has no hardware address.
        let lo = [20, 18, 2, 0, 24, 3, 0, 0, b'l', b'o', b'0'];
        assert_eq!(
            net_address(Family::Link, &lo, None, None, 0x8049, "lo0"),
            None
        );
    }

    #[test]
    fn flags_in_bit_order() {
        let flags = IfFlags {
            bit_0x20: &[(0x20, "notrailers")],
            extra: &[(0x2_0000, "ppromisc")],
        };
        // ifconfig's "flags=8863<UP,BROADCAST,NOTRAILERS,RUNNING,SIMPLEX,MULTICAST>".
        assert_eq!(
            flags.names(0x8863),
            "up,broadcast,notrailers,running,simplex,multicast"
        );
        assert_eq!(flags.names(0x2_0000), "ppromisc");
        let without = IfFlags {
            bit_0x20: &[],
            extra: &[],
        };
        assert_eq!(without.names(0x21), "up");
        assert_eq!(without.names(0), "");
    }
}
