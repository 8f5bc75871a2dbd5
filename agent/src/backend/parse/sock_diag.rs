//! Netlink sock_diag (`NETLINK_SOCK_DIAG`): the requests that dump the
//! kernel's socket tables and the parser of its answers.
//!
//! Layouts, from the kernel's UAPI headers:
//!
//! - `struct nlmsghdr` (linux/netlink.h): `u32 len, u16 type, u16 flags,
//!   u32 seq, u32 pid`; messages are padded to 4 bytes.
//! - `struct inet_diag_req_v2` (linux/inet_diag.h): `u8 family,
//!   u8 protocol, u8 ext, u8 pad, u32 states, struct inet_diag_sockid id`
//!   (56 bytes).
//! - `struct inet_diag_req` (linux/inet_diag.h, the older request that
//!   `TCPDIAG_GETSOCK` takes): `u8 family, u8 src_len, u8 dst_len,
//!   u8 ext, struct inet_diag_sockid id, u32 states, u32 dbs` (60 bytes).
//!   The kernel dumps it for both families at once (it reads the family
//!   as AF_UNSPEC) and answers with messages of its type.
//! - `struct inet_diag_sockid`: `be16 sport, be16 dport, be32 src[4],
//!   be32 dst[4], u32 if, u32 cookie[2]` (48 bytes).
//! - `struct inet_diag_msg`: `u8 family, u8 state, u8 timer, u8 retrans,
//!   struct inet_diag_sockid id, u32 expires, u32 rqueue, u32 wqueue,
//!   u32 uid, u32 inode` (72 bytes), then `struct rtattr`s.
//! - `struct unix_diag_req` (linux/unix_diag.h): `u8 family, u8 protocol,
//!   u16 pad, u32 states, u32 ino, u32 show, u32 cookie[2]` (24 bytes).
//! - `struct unix_diag_msg`: `u8 family, u8 type, u8 state, u8 pad,
//!   u32 ino, u32 cookie[2]` (16 bytes), then `struct rtattr`s.
//! - `struct rtattr` (linux/rtnetlink.h): `u16 len, u16 type`, payload,
//!   padded to 4 bytes. `UNIX_DIAG_NAME` (0) holds `sun_path` as bound.
//!
//! Netlink numbers are in the host's byte order, ports and addresses in
//! network order. Nothing here makes a syscall.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ParseError;
use crate::backend::socket::{Endpoint, Family, SockType, Socket, Transport};

/// The byte order of the host that produced a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOrder {
    /// Little-endian (x86, most ARM).
    Little,
    /// Big-endian (s390x, some PowerPC).
    Big,
}

impl ByteOrder {
    /// This host's byte order.
    pub const NATIVE: ByteOrder = if cfg!(target_endian = "big") {
        ByteOrder::Big
    } else {
        ByteOrder::Little
    };

    fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            ByteOrder::Little => u16::from_le_bytes(b),
            ByteOrder::Big => u16::from_be_bytes(b),
        }
    }

    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            ByteOrder::Little => u32::from_le_bytes(b),
            ByteOrder::Big => u32::from_be_bytes(b),
        }
    }

    fn put_u16(self, out: &mut Vec<u8>, n: u16) {
        out.extend_from_slice(&match self {
            ByteOrder::Little => n.to_le_bytes(),
            ByteOrder::Big => n.to_be_bytes(),
        });
    }

    fn put_u32(self, out: &mut Vec<u8>, n: u32) {
        out.extend_from_slice(&match self {
            ByteOrder::Little => n.to_le_bytes(),
            ByteOrder::Big => n.to_be_bytes(),
        });
    }
}

/// `SOCK_DIAG_BY_FAMILY`, the message type of requests and answers.
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `TCPDIAG_GETSOCK`: the older request for TCP sockets, of both families.
const TCPDIAG_GETSOCK: u16 = 18;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
/// `NLM_F_ROOT | NLM_F_MATCH`.
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_HDRLEN: usize = 16;
const AF_UNIX: u8 = 1;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const INET_DIAG_MSG_LEN: usize = 72;
const UNIX_DIAG_MSG_LEN: usize = 16;
const UNIX_DIAG_NAME: u16 = 0;
/// `UDIAG_SHOW_NAME`.
const UDIAG_SHOW_NAME: u32 = 1;

/// What a dump asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dump {
    /// IP sockets of one transport and family, in the TCP states of the
    /// mask (`1 << state`; UDP sockets use TCP's numbers too).
    Inet {
        /// TCP or UDP.
        transport: Transport,
        /// [`Family::Inet`] or [`Family::Inet6`].
        family: Family,
        /// The states bit mask (`idiag_states`).
        states: u32,
    },
    /// TCP sockets of both families, in the states of the mask, in one
    /// walk of the kernel's tables rather than one per family: a walk
    /// visits every bucket of the established hash (262,144 on a host
    /// with 24 GiB), empty or not.
    Tcp {
        /// The states bit mask (`idiag_states`).
        states: u32,
    },
    /// Every unix socket, with its name.
    Unix,
}

/// The request datagram for `dump` with sequence number `seq`.
pub fn request(dump: Dump, seq: u32, order: ByteOrder) -> Vec<u8> {
    let mut body = Vec::with_capacity(60);
    let mut kind = SOCK_DIAG_BY_FAMILY;
    match dump {
        Dump::Inet {
            transport,
            family,
            states,
        } => {
            body.push(if family == Family::Inet6 {
                AF_INET6
            } else {
                AF_INET
            });
            body.push(match transport {
                Transport::Tcp => IPPROTO_TCP,
                Transport::Udp => IPPROTO_UDP,
            });
            body.extend_from_slice(&[0, 0]);
            order.put_u32(&mut body, states);
            // A zeroed inet_diag_sockid: no socket in particular.
            body.resize(56, 0);
        }
        Dump::Tcp { states } => {
            kind = TCPDIAG_GETSOCK;
            // AF_UNSPEC, no address lengths, no extensions, a zeroed
            // inet_diag_sockid, the states, no tables (`dbs`).
            body.resize(52, 0);
            order.put_u32(&mut body, states);
            order.put_u32(&mut body, 0);
        }
        Dump::Unix => {
            body.extend_from_slice(&[AF_UNIX, 0, 0, 0]);
            order.put_u32(&mut body, u32::MAX);
            order.put_u32(&mut body, 0);
            order.put_u32(&mut body, UDIAG_SHOW_NAME);
            body.resize(24, 0);
        }
    }
    let mut msg = Vec::with_capacity(NLMSG_HDRLEN + body.len());
    let len = u32::try_from(NLMSG_HDRLEN + body.len()).unwrap_or(u32::MAX);
    order.put_u32(&mut msg, len);
    order.put_u16(&mut msg, kind);
    order.put_u16(&mut msg, NLM_F_REQUEST | NLM_F_DUMP);
    order.put_u32(&mut msg, seq);
    order.put_u32(&mut msg, 0);
    msg.extend_from_slice(&body);
    msg
}

/// Where a dump stands after a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// More datagrams follow.
    More,
    /// The dump is complete (`NLMSG_DONE`).
    Done,
    /// The kernel refused the request with this errno (positive), such as
    /// ENOENT when the protocol's diag module is not loaded.
    Refused(i32),
}

/// Appends the sockets in the datagram `buf`, an answer to `dump` sent
/// with sequence number `seq`, to `out`. Messages of another sequence
/// number (stale answers) are skipped.
pub fn parse_datagram(
    buf: &[u8],
    dump: Dump,
    seq: u32,
    order: ByteOrder,
    out: &mut Vec<Socket>,
) -> Result<Progress, ParseError> {
    let mut at = 0;
    while buf.len() - at >= NLMSG_HDRLEN {
        let hdr = &buf[at..];
        let len = order.u32(word(hdr, 0)) as usize;
        let kind = order.u16([hdr[4], hdr[5]]);
        let msg_seq = order.u32(word(hdr, 8));
        if len < NLMSG_HDRLEN || len > hdr.len() {
            return Err(ParseError::new(
                0,
                format!(
                    "a netlink message of {len} bytes at offset {at}, in {} bytes",
                    buf.len()
                ),
            ));
        }
        let body = &hdr[NLMSG_HDRLEN..len];
        at += align4(len).min(buf.len() - at);
        if msg_seq != seq {
            continue;
        }
        match kind {
            NLMSG_DONE => return Ok(Progress::Done),
            NLMSG_ERROR => {
                let errno = body.get(..4).map_or(0, |b| order.u32(word(b, 0)) as i32);
                return Ok(match errno {
                    0 => Progress::Done,
                    e => Progress::Refused(e.saturating_abs()),
                });
            }
            SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => {
                let socket = match dump {
                    Dump::Inet { transport, .. } => inet_socket(body, transport, order)?,
                    Dump::Tcp { .. } => inet_socket(body, Transport::Tcp, order)?,
                    Dump::Unix => unix_socket(body, order)?,
                };
                out.extend(socket);
            }
            _ => {}
        }
    }
    Ok(Progress::More)
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The 4 bytes at `at` of `b`, which the caller has checked are there.
fn word(b: &[u8], at: usize) -> [u8; 4] {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    w
}

fn short(what: &str, len: usize, need: usize) -> ParseError {
    ParseError::new(0, format!("a {what} of {len} bytes, shorter than {need}"))
}

/// One `inet_diag_msg`; `None` for a family other than AF_INET/AF_INET6.
fn inet_socket(
    body: &[u8],
    transport: Transport,
    order: ByteOrder,
) -> Result<Option<Socket>, ParseError> {
    if body.len() < INET_DIAG_MSG_LEN {
        return Err(short("inet_diag_msg", body.len(), INET_DIAG_MSG_LEN));
    }
    let family = match body[0] {
        AF_INET => Family::Inet,
        AF_INET6 => Family::Inet6,
        _ => return Ok(None),
    };
    let id = &body[4..52];
    let port = |at: usize| u16::from_be_bytes([id[at], id[at + 1]]);
    let ip = |at: usize| -> IpAddr {
        match family {
            Family::Inet6 => {
                let mut octets = [0; 16];
                octets.copy_from_slice(&id[at..at + 16]);
                Ipv6Addr::from(octets).into()
            }
            _ => Ipv4Addr::from(word(id, at)).into(),
        }
    };
    let state = body[1];
    let inode = u64::from(order.u32(word(body, 68)));
    let uid = order.u32(word(body, 64));
    let (laddr, raddr) = (Endpoint::ip(ip(4), port(0)), Endpoint::ip(ip(20), port(2)));
    Socket::ip(transport, family, laddr, raddr, state, inode, uid)
        .map(Some)
        .ok_or_else(|| ParseError::new(0, format!("TCP state {state}, which has no name")))
}

/// One `unix_diag_msg` with its attributes; `None` for a type psutil does
/// not name.
fn unix_socket(body: &[u8], order: ByteOrder) -> Result<Option<Socket>, ParseError> {
    if body.len() < UNIX_DIAG_MSG_LEN {
        return Err(short("unix_diag_msg", body.len(), UNIX_DIAG_MSG_LEN));
    }
    let Some(kind) = SockType::from_linux(u32::from(body[1])) else {
        return Ok(None);
    };
    let inode = u64::from(order.u32(word(body, 4)));
    let mut path = String::new();
    let mut attrs = &body[UNIX_DIAG_MSG_LEN..];
    while attrs.len() >= 4 {
        let len = usize::from(order.u16([attrs[0], attrs[1]]));
        let kind = order.u16([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            return Err(ParseError::new(
                0,
                format!("an attribute of {len} bytes in {} bytes", attrs.len()),
            ));
        }
        if kind == UNIX_DIAG_NAME {
            path = unix_name(&attrs[4..len]);
        }
        attrs = &attrs[align4(len).min(attrs.len())..];
    }
    Ok(Some(Socket::unix(kind, path, inode)))
}

/// A unix socket's `sun_path` as `/proc/net/unix` shows it: a path without
/// its terminating NUL; an abstract name (leading NUL) as "@" and the name,
/// its NULs shown as "@" too.
pub fn unix_name(raw: &[u8]) -> String {
    match raw.split_first() {
        None => String::new(),
        Some((0, name)) => {
            let shown: Vec<u8> = std::iter::once(b'@')
                .chain(name.iter().map(|&b| if b == 0 { b'@' } else { b }))
                .collect();
            String::from_utf8_lossy(&shown).into_owned()
        }
        Some(_) => {
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            String::from_utf8_lossy(&raw[..end]).into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::socket::ConnStatus;

    #[test]
    fn requests_have_the_kernels_layout() {
        let dump = Dump::Inet {
            transport: Transport::Tcp,
            family: Family::Inet6,
            states: 1 << 10,
        };
        let msg = request(dump, 7, ByteOrder::Little);
        assert_eq!(msg.len(), 16 + 56);
        assert_eq!(msg[..4], 72u32.to_le_bytes());
        assert_eq!(msg[4..6], 20u16.to_le_bytes());
        assert_eq!(msg[6..8], 0x301u16.to_le_bytes());
        assert_eq!(msg[8..12], 7u32.to_le_bytes());
        assert_eq!(msg[16..20], [10, 6, 0, 0]);
        assert_eq!(msg[20..24], 1024u32.to_le_bytes());
        // TCP of both families: the older request, 60 bytes, its states
        // after the zeroed family and sockid.
        let tcp = request(Dump::Tcp { states: 1 << 10 }, 3, ByteOrder::Little);
        assert_eq!(tcp.len(), 16 + 60);
        assert_eq!(tcp[4..6], 18u16.to_le_bytes());
        assert_eq!(tcp[16..68], [0; 52]);
        assert_eq!(tcp[68..72], 1024u32.to_le_bytes());
        assert_eq!(tcp[72..76], [0; 4]);
        let unix = request(Dump::Unix, 1, ByteOrder::Big);
        assert_eq!(unix.len(), 16 + 24);
        assert_eq!(unix[..4], 40u32.to_be_bytes());
        assert_eq!(unix[16..20], [1, 0, 0, 0]);
        assert_eq!(unix[28..32], 1u32.to_be_bytes());
    }

    #[test]
    fn unix_names_are_shown_as_proc_net_unix_shows_them() {
        assert_eq!(unix_name(b"/run/x.sock\0"), "/run/x.sock");
        assert_eq!(unix_name(b"/run/x.sock"), "/run/x.sock");
        assert_eq!(unix_name(b"\0hidden\0name"), "@hidden@name");
        assert_eq!(unix_name(b""), "");
    }

    #[test]
    fn an_error_message_ends_the_dump_with_its_errno() {
        let mut msg = Vec::new();
        msg.extend_from_slice(&36u32.to_le_bytes());
        msg.extend_from_slice(&NLMSG_ERROR.to_le_bytes());
        msg.extend_from_slice(&[0, 0]);
        msg.extend_from_slice(&5u32.to_le_bytes());
        msg.extend_from_slice(&0u32.to_le_bytes());
        msg.extend_from_slice(&(-2i32).to_le_bytes());
        msg.resize(36, 0);
        let mut out = Vec::new();
        let got = parse_datagram(&msg, Dump::Unix, 5, ByteOrder::Little, &mut out);
        assert_eq!(got, Ok(Progress::Refused(2)));
        // Another request's answer is not this one's.
        let got = parse_datagram(&msg, Dump::Unix, 6, ByteOrder::Little, &mut out);
        assert_eq!(got, Ok(Progress::More));
    }

    /// Real dumps: see `agent/tests/fixtures/linux/sock_diag/README.md`.
    mod fixtures {
        use super::*;

        fn parse(bytes: &[u8], dump: Dump) -> Vec<Socket> {
            let mut out = Vec::new();
            let got = parse_datagram(bytes, dump, 1, ByteOrder::Little, &mut out);
            assert_eq!(got, Ok(Progress::Done));
            out
        }

        fn inet(transport: Transport, family: Family) -> Dump {
            Dump::Inet {
                transport,
                family,
                states: u32::MAX,
            }
        }

        fn shown(e: &Endpoint) -> String {
            match e.ip {
                Some(ip) => format!("{ip}:{}", e.port),
                None => e.path.clone(),
            }
        }

        #[test]
        fn tcp_over_ipv4() {
            let got = parse(
                include_bytes!("../../../tests/fixtures/linux/sock_diag/tcp4.bin"),
                inet(Transport::Tcp, Family::Inet),
            );
            let mut got: Vec<_> = got
                .iter()
                .map(|s| {
                    assert_eq!((s.family, s.kind), (Family::Inet, SockType::Stream));
                    assert_eq!(s.uid, Some(0));
                    let raddr = s.raddr.as_ref().map(shown);
                    (s.inode, shown(&s.laddr), raddr, s.status)
                })
                .collect();
            got.sort();
            let ip = |port| format!("127.0.0.1:{port}");
            assert_eq!(
                got,
                [
                    (1091477, ip(37791), None, ConnStatus::Listen),
                    (1091478, ip(35304), Some(ip(37791)), ConnStatus::Established),
                    (1091479, ip(37791), Some(ip(35304)), ConnStatus::Established),
                ]
            );
        }

        #[test]
        fn tcp_over_ipv6_keeps_the_v4_mapping() {
            let got = parse(
                include_bytes!("../../../tests/fixtures/linux/sock_diag/tcp6.bin"),
                inet(Transport::Tcp, Family::Inet6),
            );
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].family, Family::Inet6);
            assert_eq!(shown(&got[0].laddr), "::ffff:127.0.0.1:38063");
            assert_eq!((got[0].inode, got[0].status), (1091481, ConnStatus::Listen));
            assert_eq!(got[0].raddr, None);
        }

        #[test]
        fn tcp_of_both_families_in_one_dump() {
            let got = parse(
                include_bytes!("../../../tests/fixtures/linux/sock_diag/tcp.bin"),
                Dump::Tcp { states: 0x1ffe },
            );
            let mut got: Vec<_> = got
                .iter()
                .map(|s| {
                    assert_eq!(s.kind, SockType::Stream);
                    let raddr = s.raddr.as_ref().map(shown);
                    (s.inode, s.family, shown(&s.laddr), raddr, s.status)
                })
                .collect();
            got.sort_by_key(|s| s.0);
            let ip = |port| format!("127.0.0.1:{port}");
            let (v4, v6) = (Family::Inet, Family::Inet6);
            assert_eq!(
                got,
                [
                    (164609, v4, ip(50577), None, ConnStatus::Listen),
                    (
                        164610,
                        v4,
                        ip(50902),
                        Some(ip(50577)),
                        ConnStatus::Established
                    ),
                    (
                        164611,
                        v4,
                        ip(50577),
                        Some(ip(50902)),
                        ConnStatus::Established
                    ),
                    (
                        164613,
                        v6,
                        "::ffff:127.0.0.1:53581".to_owned(),
                        None,
                        ConnStatus::Listen
                    ),
                ]
            );
        }

        #[test]
        fn udp_has_no_state() {
            let got = parse(
                include_bytes!("../../../tests/fixtures/linux/sock_diag/udp4.bin"),
                inet(Transport::Udp, Family::Inet),
            );
            assert_eq!(got.len(), 1);
            assert_eq!(shown(&got[0].laddr), "127.0.0.1:38688");
            assert_eq!(
                (got[0].kind, got[0].status, got[0].inode),
                (SockType::Dgram, ConnStatus::None, 1091480)
            );
        }

        #[test]
        fn unix_sockets_with_paths_and_abstract_names() {
            let mut got = parse(
                include_bytes!("../../../tests/fixtures/linux/sock_diag/unix.bin"),
                Dump::Unix,
            );
            got.sort_by_key(|s| s.inode);
            let got: Vec<_> = got
                .iter()
                .map(|s| {
                    (
                        s.inode,
                        s.kind,
                        s.laddr.path.as_str(),
                        s.status,
                        s.raddr.is_none(),
                    )
                })
                .collect();
            assert_eq!(
                got,
                [
                    (
                        1091482,
                        SockType::Stream,
                        "/tmp/tmp_7t6hnmm/fx.sock",
                        ConnStatus::None,
                        true
                    ),
                    (
                        1091483,
                        SockType::Dgram,
                        "@hostscope-fixture",
                        ConnStatus::None,
                        true
                    ),
                ]
            );
        }
    }

    #[test]
    fn a_message_longer_than_the_datagram_is_an_error() {
        let mut msg = request(Dump::Unix, 1, ByteOrder::Little);
        msg[0] = 200;
        let mut out = Vec::new();
        assert!(parse_datagram(&msg, Dump::Unix, 1, ByteOrder::Little, &mut out).is_err());
    }
}
