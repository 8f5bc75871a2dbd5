//! Sockets, as psutil's `net_connections` lists them: which ones a caller
//! asks for ([`SocketQuery`]) and what is known of each ([`Socket`]).
//!
//! A backend lists the sockets of the kinds asked for, with the states
//! filtered where that is cheap (Linux: in the kernel), and says which
//! processes hold them only when asked: that means reading every selected
//! process's descriptor table.

use std::net::IpAddr;

use super::ErrorKind;

/// Which sockets, as psutil's `kind` argument names them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SocketKind {
    /// TCP and UDP over IPv4 and IPv6 (psutil's default).
    #[default]
    Inet,
    /// TCP and UDP over IPv4.
    Inet4,
    /// TCP and UDP over IPv6.
    Inet6,
    /// TCP over IPv4 and IPv6.
    Tcp,
    /// TCP over IPv4.
    Tcp4,
    /// TCP over IPv6.
    Tcp6,
    /// UDP over IPv4 and IPv6.
    Udp,
    /// UDP over IPv4.
    Udp4,
    /// UDP over IPv6.
    Udp6,
    /// Unix domain sockets.
    Unix,
    /// Every kind above.
    All,
}

/// An IP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl SocketKind {
    /// Every (transport, family) pair of IP sockets the kind covers, in
    /// the order psutil lists them (tcp, tcp6, udp, udp6).
    pub fn inet_tables(self) -> Vec<(Transport, Family)> {
        use SocketKind as K;
        let (tcp, udp, v4, v6) = match self {
            K::Inet | K::All => (true, true, true, true),
            K::Inet4 => (true, true, true, false),
            K::Inet6 => (true, true, false, true),
            K::Tcp => (true, false, true, true),
            K::Tcp4 => (true, false, true, false),
            K::Tcp6 => (true, false, false, true),
            K::Udp => (false, true, true, true),
            K::Udp4 => (false, true, true, false),
            K::Udp6 => (false, true, false, true),
            K::Unix => (false, false, false, false),
        };
        let mut tables = Vec::new();
        for (transport, wanted) in [(Transport::Tcp, tcp), (Transport::Udp, udp)] {
            for (family, on) in [(Family::Inet, v4), (Family::Inet6, v6)] {
                if wanted && on {
                    tables.push((transport, family));
                }
            }
        }
        tables
    }

    /// Whether the kind covers unix sockets.
    pub fn unix(self) -> bool {
        matches!(self, SocketKind::Unix | SocketKind::All)
    }

    /// Whether the kind covers a socket of `family` and `kind`: unix
    /// sockets of every type, IP sockets by their table (a stream is TCP,
    /// a datagram UDP, as the backends list only those).
    pub fn admits(self, family: Family, kind: SockType) -> bool {
        let transport = match kind {
            SockType::Stream => Transport::Tcp,
            SockType::Dgram => Transport::Udp,
            _ => return family == Family::Unix && self.unix(),
        };
        match family {
            Family::Unix => self.unix(),
            Family::Inet | Family::Inet6 => self.inet_tables().contains(&(transport, family)),
        }
    }
}

/// A socket's address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// AF_INET.
    Inet,
    /// AF_INET6.
    Inet6,
    /// AF_UNIX.
    Unix,
}

/// A socket's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SockType {
    /// SOCK_STREAM.
    Stream,
    /// SOCK_DGRAM.
    Dgram,
    /// SOCK_SEQPACKET.
    Seqpacket,
    /// SOCK_RAW.
    Raw,
}

impl SockType {
    /// The type of the Linux `SOCK_*` number, `None` for one psutil does
    /// not name.
    pub fn from_linux(number: u32) -> Option<SockType> {
        match number {
            1 => Some(SockType::Stream),
            2 => Some(SockType::Dgram),
            3 => Some(SockType::Raw),
            5 => Some(SockType::Seqpacket),
            _ => None,
        }
    }
}

/// A socket's state, as psutil's `CONN_*` constants name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnStatus {
    /// ESTABLISHED.
    Established,
    /// SYN_SENT.
    SynSent,
    /// SYN_RECV.
    SynRecv,
    /// FIN_WAIT1.
    FinWait1,
    /// FIN_WAIT2.
    FinWait2,
    /// TIME_WAIT.
    TimeWait,
    /// CLOSE.
    Close,
    /// CLOSE_WAIT.
    CloseWait,
    /// LAST_ACK.
    LastAck,
    /// LISTEN.
    Listen,
    /// CLOSING.
    Closing,
    /// No state: UDP and unix sockets (psutil's CONN_NONE).
    None,
}

impl ConnStatus {
    /// The TCP states, in the kernel's order (`TCP_ESTABLISHED` is 1).
    const TCP: [ConnStatus; 11] = [
        ConnStatus::Established,
        ConnStatus::SynSent,
        ConnStatus::SynRecv,
        ConnStatus::FinWait1,
        ConnStatus::FinWait2,
        ConnStatus::TimeWait,
        ConnStatus::Close,
        ConnStatus::CloseWait,
        ConnStatus::LastAck,
        ConnStatus::Listen,
        ConnStatus::Closing,
    ];

    /// The status of the Linux TCP state number (`include/net/tcp_states.h`),
    /// as psutil maps `/proc/net/tcp`'s `st` column. `TCP_NEW_SYN_RECV`
    /// (12, a connection request) is SYN_RECV, as `/proc/net/tcp` shows it.
    pub fn from_linux_tcp(state: u8) -> Option<ConnStatus> {
        match state {
            12 => Some(ConnStatus::SynRecv),
            n => ConnStatus::TCP.get(usize::from(n).checked_sub(1)?).copied(),
        }
    }

    /// The status of a BSD or macOS TCP state number (`TCPS_*` of
    /// `netinet/tcp_fsm.h`, macOS's `TSI_S_*`), as psutil's `_psbsd.py`
    /// and `_psosx.py` map them: `TCPS_CLOSED` is CLOSE. `None` for a
    /// number with no name.
    pub fn from_bsd_tcp(state: i32) -> Option<ConnStatus> {
        use ConnStatus as S;
        Some(match state {
            0 => S::Close,
            1 => S::Listen,
            2 => S::SynSent,
            3 => S::SynRecv,
            4 => S::Established,
            5 => S::CloseWait,
            6 => S::FinWait1,
            7 => S::Closing,
            8 => S::LastAck,
            9 => S::FinWait2,
            10 => S::TimeWait,
            _ => return None,
        })
    }

    /// The Linux TCP state number, `None` for [`ConnStatus::None`].
    pub fn linux_tcp(self) -> Option<u8> {
        let at = ConnStatus::TCP.iter().position(|s| *s == self)?;
        u8::try_from(at + 1).ok()
    }
}

/// One end of a socket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The IP address; `None` for unix sockets.
    pub ip: Option<IpAddr>,
    /// The port; 0 for unix sockets.
    pub port: u16,
    /// A unix socket's path, an abstract name starting with "@"; empty
    /// for unnamed unix sockets and IP sockets.
    pub path: String,
}

impl Endpoint {
    /// An IP endpoint.
    pub fn ip(ip: IpAddr, port: u16) -> Endpoint {
        Endpoint {
            ip: Some(ip),
            port,
            path: String::new(),
        }
    }

    /// A unix socket's name.
    pub fn path(path: String) -> Endpoint {
        Endpoint {
            ip: None,
            port: 0,
            path,
        }
    }
}

/// One socket, and the process holding it when that was asked for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Socket {
    /// Address family.
    pub family: Family,
    /// Socket type.
    pub kind: SockType,
    /// The local end.
    pub laddr: Endpoint,
    /// The remote end; `None` when the socket is not connected (an IP
    /// socket whose remote port is 0). A unix socket's is its peer's
    /// path where the kernel reports it (FreeBSD, macOS, as psutil on
    /// macOS); `None` on Linux and OpenBSD, as psutil.
    pub raddr: Option<Endpoint>,
    /// The state.
    pub status: ConnStatus,
    /// The socket's inode number; 0 for sockets no descriptor refers to
    /// (TIME_WAIT, connection requests), and on the BSDs and macOS.
    pub inode: u64,
    /// The owner's uid, where the kernel reports it.
    pub uid: Option<u32>,
    /// The holding process, when pids were asked for and one was found.
    pub pid: Option<u32>,
    /// The descriptor in `pid`.
    pub fd: Option<u32>,
}

impl Socket {
    /// A unix socket named `path` ("" when unnamed), with no state, as
    /// psutil shows them.
    pub fn unix(kind: SockType, path: String, inode: u64) -> Socket {
        Socket {
            family: Family::Unix,
            kind,
            laddr: Endpoint::path(path),
            raddr: None,
            status: ConnStatus::None,
            inode,
            uid: None,
            pid: None,
            fd: None,
        }
    }

    /// An IP socket of `transport` in the kernel's TCP state `state`
    /// (UDP's state is not shown, as psutil); `raddr` is dropped when its
    /// port is 0 (not connected). `None` for a TCP state with no name.
    pub fn ip(
        transport: Transport,
        family: Family,
        laddr: Endpoint,
        raddr: Endpoint,
        state: u8,
        inode: u64,
        uid: u32,
    ) -> Option<Socket> {
        let (kind, status) = match transport {
            Transport::Tcp => (SockType::Stream, ConnStatus::from_linux_tcp(state)?),
            Transport::Udp => (SockType::Dgram, ConnStatus::None),
        };
        Some(Socket {
            family,
            kind,
            laddr,
            raddr: Some(raddr).filter(|r| r.port != 0),
            status,
            inode,
            uid: Some(uid),
            pid: None,
            fd: None,
        })
    }
}

/// Which sockets to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocketQuery {
    /// Which kinds.
    pub kind: SocketKind,
    /// Only sockets in one of these states; empty for every state.
    pub statuses: Vec<ConnStatus>,
    /// Only sockets whose local port is one of these; empty for any.
    pub local_ports: Vec<u16>,
    /// Only sockets whose remote port is one of these; empty for any.
    pub remote_ports: Vec<u16>,
    /// Only sockets that one of these processes holds; empty for any.
    pub pids: Vec<u32>,
    /// Say which process holds each socket (implied by `pids`).
    pub with_pids: bool,
}

impl SocketQuery {
    /// Whether the holders of the sockets are wanted.
    pub fn wants_pids(&self) -> bool {
        self.with_pids || !self.pids.is_empty()
    }

    /// Whether `status` passes the state filter.
    pub fn status_matches(&self, status: ConnStatus) -> bool {
        self.statuses.is_empty() || self.statuses.contains(&status)
    }

    /// Whether sockets that have no state (UDP, unix) can match at all.
    pub fn stateless_wanted(&self) -> bool {
        self.status_matches(ConnStatus::None)
    }

    /// The kernel's bit mask of TCP states (`1 << state`) the state filter
    /// lets through. Connection requests (`TCP_NEW_SYN_RECV`) go with
    /// SYN_RECV.
    pub fn tcp_state_mask(&self) -> u32 {
        let mut mask = 0;
        for status in ConnStatus::TCP {
            if let Some(n) = status.linux_tcp().filter(|_| self.status_matches(status)) {
                mask |= 1 << n;
                if status == ConnStatus::SynRecv {
                    mask |= 1 << 12;
                }
            }
        }
        mask
    }

    /// Whether `socket` passes the state and port filters (not the pid
    /// filter, which the holder mapping applies).
    pub fn matches(&self, socket: &Socket) -> bool {
        let port_in = |ports: &[u16], end: Option<&Endpoint>| {
            ports.is_empty() || end.is_some_and(|e| e.ip.is_some() && ports.contains(&e.port))
        };
        self.status_matches(socket.status)
            && port_in(&self.local_ports, Some(&socket.laddr))
            && port_in(&self.remote_ports, socket.raddr.as_ref())
    }
}

/// A socket one descriptor refers to, as the BSD and macOS kernels list
/// them: per process, each with its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldSocket {
    /// The socket, `pid` and `fd` set.
    pub socket: Socket,
    /// The kernel's handle of the socket (an address, or macOS's
    /// permuted one), the same in every descriptor that refers to it; 0
    /// where the kernel hides it.
    pub key: u64,
}

impl SocketQuery {
    /// Whether `socket` passes the kind, state and port filters.
    pub fn keeps(&self, socket: &Socket) -> bool {
        self.kind.admits(socket.family, socket.kind) && self.matches(socket)
    }

    /// The listing of sockets read per descriptor, `held` (by the
    /// processes of `pids`, or by all), with the processes that could not
    /// be read: those the query keeps, in psutil's order (tcp, tcp6, udp,
    /// udp6, unix), then by holder. Without pids asked for, the holders
    /// are dropped and a socket several descriptors share (by its
    /// [`HeldSocket::key`]) is listed once.
    pub fn select_held(
        &self,
        held: Vec<HeldSocket>,
        process_errors: Vec<(u32, ErrorKind)>,
    ) -> SocketListing {
        let mut kept: Vec<HeldSocket> = held
            .into_iter()
            .filter(|h| {
                self.keeps(&h.socket)
                    && (self.pids.is_empty()
                        || h.socket.pid.is_some_and(|pid| self.pids.contains(&pid)))
            })
            .collect();
        kept.sort_by_key(|h| (table_rank(&h.socket), h.socket.pid, h.socket.fd));
        let mut seen = std::collections::HashSet::new();
        let sockets = kept
            .into_iter()
            .filter(|h| self.wants_pids() || h.key == 0 || seen.insert(h.key))
            .map(|h| {
                if self.wants_pids() {
                    h.socket
                } else {
                    Socket {
                        pid: None,
                        fd: None,
                        ..h.socket
                    }
                }
            })
            .collect();
        SocketListing {
            sockets,
            process_errors,
        }
    }
}

/// Where psutil's order puts a socket: tcp, tcp6, udp, udp6, then unix.
fn table_rank(socket: &Socket) -> u8 {
    match (socket.family, socket.kind) {
        (Family::Inet, SockType::Stream) => 0,
        (Family::Inet6, SockType::Stream) => 1,
        (Family::Inet, _) => 2,
        (Family::Inet6, _) => 3,
        (Family::Unix, _) => 4,
    }
}

/// What a socket listing found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SocketListing {
    /// The sockets, once per holding process when pids were asked for.
    pub sockets: Vec<Socket>,
    /// Processes whose descriptors could not be read, and why: their
    /// sockets are listed without a pid.
    pub process_errors: Vec<(u32, ErrorKind)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_states_map_as_psutil_maps_them() {
        assert_eq!(ConnStatus::from_linux_tcp(1), Some(ConnStatus::Established));
        assert_eq!(ConnStatus::from_linux_tcp(10), Some(ConnStatus::Listen));
        assert_eq!(ConnStatus::from_linux_tcp(11), Some(ConnStatus::Closing));
        assert_eq!(ConnStatus::from_linux_tcp(12), Some(ConnStatus::SynRecv));
        assert_eq!(ConnStatus::from_linux_tcp(0), None);
        assert_eq!(ConnStatus::from_linux_tcp(13), None);
        for n in 1..=11 {
            let status = ConnStatus::from_linux_tcp(n).unwrap();
            assert_eq!(status.linux_tcp(), Some(n));
        }
        assert_eq!(ConnStatus::None.linux_tcp(), None);
    }

    #[test]
    fn bsd_tcp_states_map_as_psutil_maps_them() {
        // netinet/tcp_fsm.h: CLOSED 0, LISTEN 1, ..., TIME_WAIT 10.
        let named: Vec<_> = (0..=10).map(ConnStatus::from_bsd_tcp).collect();
        assert_eq!(
            named,
            [
                ConnStatus::Close,
                ConnStatus::Listen,
                ConnStatus::SynSent,
                ConnStatus::SynRecv,
                ConnStatus::Established,
                ConnStatus::CloseWait,
                ConnStatus::FinWait1,
                ConnStatus::Closing,
                ConnStatus::LastAck,
                ConnStatus::FinWait2,
                ConnStatus::TimeWait,
            ]
            .map(Some)
        );
        // Every TCP status has a BSD number: none is left unnamed.
        for status in ConnStatus::TCP {
            assert!(named.contains(&Some(status)), "{status:?}");
        }
        assert_eq!(ConnStatus::from_bsd_tcp(11), None); // TSI_S_RESERVED
        assert_eq!(ConnStatus::from_bsd_tcp(-1), None);
    }

    #[test]
    fn kinds_admit_their_sockets() {
        use {Family as F, SockType as T, SocketKind as K};
        assert!(K::Inet.admits(F::Inet, T::Stream) && K::Inet.admits(F::Inet6, T::Dgram));
        assert!(!K::Inet.admits(F::Unix, T::Stream));
        assert!(K::Tcp6.admits(F::Inet6, T::Stream) && !K::Tcp6.admits(F::Inet, T::Stream));
        assert!(!K::Tcp.admits(F::Inet, T::Dgram) && K::Udp4.admits(F::Inet, T::Dgram));
        assert!(K::Unix.admits(F::Unix, T::Seqpacket) && K::All.admits(F::Unix, T::Dgram));
        assert!(!K::All.admits(F::Inet, T::Raw) && !K::Unix.admits(F::Inet, T::Stream));
    }

    /// A socket held by `pid` at `fd`, the kernel's handle `key`.
    fn held(pid: u32, fd: u32, family: Family, kind: SockType, port: u16, key: u64) -> HeldSocket {
        let laddr = match family {
            Family::Unix => Endpoint::path(format!("/run/{port}")),
            _ => Endpoint::ip([127, 0, 0, 1].into(), port),
        };
        let status = match (family, kind) {
            (Family::Unix, _) | (_, SockType::Dgram) => ConnStatus::None,
            _ => ConnStatus::Listen,
        };
        HeldSocket {
            socket: Socket {
                family,
                kind,
                laddr,
                raddr: None,
                status,
                inode: 0,
                uid: None,
                pid: Some(pid),
                fd: Some(fd),
            },
            key,
        }
    }

    #[test]
    fn held_sockets_are_filtered_ordered_and_shared_ones_listed_once() {
        use {Family as F, SockType as T};
        let read = || {
            vec![
                held(40, 3, F::Unix, T::Stream, 1, 0xa),
                held(40, 5, F::Inet, T::Dgram, 53, 0xb),
                // Two processes share one listening socket (a fork), and
                // two unnamed keys stay apart.
                held(41, 4, F::Inet, T::Stream, 80, 0xc),
                held(40, 4, F::Inet, T::Stream, 80, 0xc),
                held(40, 6, F::Inet6, T::Stream, 443, 0),
                held(42, 6, F::Inet6, T::Stream, 443, 0),
            ]
        };
        let rows = |listing: SocketListing| {
            listing
                .sockets
                .iter()
                .map(|s| (s.pid, s.fd, s.laddr.port))
                .collect::<Vec<_>>()
        };
        let errors = vec![(7, ErrorKind::AccessDenied)];
        // With pids: every holder, in psutil's order, then by holder.
        let with_pids = SocketQuery {
            kind: SocketKind::All,
            with_pids: true,
            ..SocketQuery::default()
        };
        let listing = with_pids.select_held(read(), errors.clone());
        assert_eq!(listing.process_errors, errors);
        assert_eq!(
            rows(listing),
            [
                (Some(40), Some(4), 80),
                (Some(41), Some(4), 80),
                (Some(40), Some(6), 443),
                (Some(42), Some(6), 443),
                (Some(40), Some(5), 53),
                (Some(40), Some(3), 0),
            ]
        );
        // Without: the holders dropped, the shared socket once.
        let plain = SocketQuery::default();
        assert_eq!(
            rows(plain.select_held(read(), Vec::new())),
            [
                (None, None, 80),
                (None, None, 443),
                (None, None, 443),
                (None, None, 53)
            ]
        );
        // The pid, kind, state and port filters.
        let one = SocketQuery {
            pids: vec![41, 42],
            kind: SocketKind::Tcp,
            ..SocketQuery::default()
        };
        assert_eq!(
            rows(one.select_held(read(), Vec::new())),
            [(Some(41), Some(4), 80), (Some(42), Some(6), 443)]
        );
        let listen_443 = SocketQuery {
            statuses: vec![ConnStatus::Listen],
            local_ports: vec![443],
            with_pids: true,
            ..SocketQuery::default()
        };
        assert_eq!(rows(listen_443.select_held(read(), Vec::new())).len(), 2);
    }

    #[test]
    fn the_state_mask_has_the_states_asked_for() {
        let all = SocketQuery::default();
        assert_eq!(all.tcp_state_mask(), 0x1ffe);
        assert!(all.stateless_wanted());
        let listen = SocketQuery {
            statuses: vec![ConnStatus::Listen],
            ..SocketQuery::default()
        };
        assert_eq!(listen.tcp_state_mask(), 1 << 10);
        assert!(!listen.stateless_wanted());
        let none = SocketQuery {
            statuses: vec![ConnStatus::None],
            ..SocketQuery::default()
        };
        assert_eq!(none.tcp_state_mask(), 0);
    }

    #[test]
    fn kinds_cover_their_tables() {
        assert_eq!(SocketKind::Inet.inet_tables().len(), 4);
        assert_eq!(
            SocketKind::Udp6.inet_tables(),
            [(Transport::Udp, Family::Inet6)]
        );
        assert!(SocketKind::Unix.inet_tables().is_empty());
        assert!(SocketKind::All.unix() && !SocketKind::Inet.unix());
    }

    #[test]
    fn ports_filter_ip_sockets_only() {
        let socket = Socket {
            family: Family::Inet,
            kind: SockType::Stream,
            laddr: Endpoint::ip([127, 0, 0, 1].into(), 80),
            raddr: None,
            status: ConnStatus::Listen,
            inode: 1,
            uid: None,
            pid: None,
            fd: None,
        };
        let q = |local: &[u16], remote: &[u16]| SocketQuery {
            local_ports: local.to_vec(),
            remote_ports: remote.to_vec(),
            ..SocketQuery::default()
        };
        assert!(q(&[80], &[]).matches(&socket));
        assert!(!q(&[81], &[]).matches(&socket));
        assert!(!q(&[], &[80]).matches(&socket), "not connected");
        let unix = Socket {
            family: Family::Unix,
            laddr: Endpoint::path("/run/x".into()),
            ..socket
        };
        assert!(!q(&[0], &[]).matches(&unix));
    }
}
