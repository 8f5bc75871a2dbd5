//! Sockets: the kernel's tables through netlink sock_diag, or procfs's
//! `net/{tcp,tcp6,udp,udp6,unix}` where sock_diag is not available (no
//! permission, no `inet_diag`/`udp_diag`/`unix_diag` module), and the
//! processes that hold them from `/proc/<pid>/fd`.
//!
//! Each table falls back on its own: a kernel without `udp_diag` still
//! dumps TCP through netlink. The states are filtered in the kernel for
//! TCP (`idiag_states`), ports after parsing.

use std::{
    collections::HashMap,
    ffi::CString,
    io,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    path::PathBuf,
    time::Duration,
};

use super::{
    Linux,
    process::{Errno, classify, io_error, parse_pid},
    sys,
};
use crate::backend::{
    Error, ErrorKind,
    parse::{
        proc_net_sockets::{parse_inet_table, parse_unix_table},
        sock_diag::{ByteOrder, Dump, Progress, parse_datagram, request},
    },
    socket::{Family, Socket, SocketListing, SocketQuery, Transport},
};

/// Where the socket tables are read from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SocketSource {
    /// Netlink sock_diag, each table falling back on procfs when the
    /// kernel refuses it.
    #[default]
    Netlink,
    /// procfs's `net/` tables only.
    Procfs,
}

/// How long the kernel may take to answer one datagram of a dump: it
/// answers at once, so this only bounds a kernel that never does.
const DUMP_WAIT: Duration = Duration::from_secs(5);

/// Room for one datagram of a dump: the kernel makes them at most 32 KiB.
const DATAGRAM_BYTES: usize = 64 << 10;

/// The sockets `query` asks for. When it wants their holders, the
/// descriptor tables are read on a thread of their own while the kernel
/// dumps its tables: the two take about as long, and neither needs the
/// other until the end.
pub(super) fn connections(linux: &Linux, query: &SocketQuery) -> Result<SocketListing, Error> {
    if !query.wants_pids() {
        return Ok(SocketListing {
            sockets: tables(linux, query)?,
            process_errors: Vec::new(),
        });
    }
    let (sockets, holders) = std::thread::scope(|scope| {
        let scan = scope.spawn(|| Holders::scan(linux, &query.pids));
        let sockets = tables(linux, query);
        let holders = scan
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (sockets, holders)
    });
    Ok(holders?.assign(sockets?, !query.pids.is_empty()))
}

/// The sockets of the kernel's tables that `query` matches, without
/// their holders.
fn tables(linux: &Linux, query: &SocketQuery) -> Result<Vec<Socket>, Error> {
    let mut sockets = Vec::new();
    let mut netlink = match linux.socket_source {
        SocketSource::Netlink => Netlink::open(),
        SocketSource::Procfs => None,
    };
    let tcp_states = query.tcp_state_mask();
    let mut tables = query.kind.inet_tables();
    // TCP of both families in one walk of the kernel's tables, where it
    // takes the older request that dumps both; else one dump a family.
    let both = |t| tables.contains(&(t, Family::Inet)) && tables.contains(&(t, Family::Inet6));
    if both(Transport::Tcp)
        && tcp_states != 0
        && dumped(&mut netlink, Dump::Tcp { states: tcp_states }, &mut sockets)?
    {
        tables.retain(|(transport, _)| *transport != Transport::Tcp);
    }
    for (transport, family) in tables {
        let states = match transport {
            Transport::Tcp if tcp_states == 0 => continue,
            Transport::Tcp => tcp_states,
            Transport::Udp if !query.stateless_wanted() => continue,
            Transport::Udp => u32::MAX,
        };
        let dump = Dump::Inet {
            transport,
            family,
            states,
        };
        if !dumped(&mut netlink, dump, &mut sockets)? {
            let name = match (transport, family) {
                (Transport::Tcp, Family::Inet) => "tcp",
                (Transport::Tcp, _) => "tcp6",
                (Transport::Udp, Family::Inet) => "udp",
                (Transport::Udp, _) => "udp6",
            };
            let path = linux.procfs.join("net").join(name);
            let text = super::read(&path)?;
            parse_inet_table(&text, transport, family, ByteOrder::NATIVE, &mut sockets)
                .map_err(|e| e.at(path))?;
        }
    }
    if query.kind.unix()
        && query.stateless_wanted()
        && !dumped(&mut netlink, Dump::Unix, &mut sockets)?
    {
        let path = linux.procfs.join("net/unix");
        let text = super::read(&path)?;
        parse_unix_table(&text, &mut sockets).map_err(|e| e.at(path))?;
    }
    sockets.retain(|s| query.matches(s));
    Ok(sockets)
}

/// Dumps `dump` through `netlink` into `out`; `false` when there is no
/// netlink socket or the kernel refused the dump, so procfs must answer.
fn dumped(netlink: &mut Option<Netlink>, dump: Dump, out: &mut Vec<Socket>) -> Result<bool, Error> {
    let Some(nl) = netlink else {
        return Ok(false);
    };
    let start = out.len();
    match nl.dump(dump, out) {
        Ok(true) => Ok(true),
        Ok(false) => {
            out.truncate(start);
            Ok(false)
        }
        Err(e) => {
            // A socket that failed mid-dump may hold stale answers: stop
            // using it, and let procfs answer this table and the rest.
            tracing::warn!(error = %e, "netlink sock_diag failed: reading procfs instead");
            *netlink = None;
            out.truncate(start);
            Ok(false)
        }
    }
}

// === impl Netlink ===

/// A `NETLINK_SOCK_DIAG` socket and its receive buffer.
struct Netlink {
    socket: OwnedFd,
    buf: Vec<u8>,
    seq: u32,
}

impl Netlink {
    /// `None` when the kernel or its policy refuses the socket.
    fn open() -> Option<Netlink> {
        match sys::netlink_socket(sys::NETLINK_SOCK_DIAG, 0) {
            Ok(socket) => Some(Netlink {
                socket,
                buf: vec![0; DATAGRAM_BYTES],
                seq: 0,
            }),
            Err(e) => {
                tracing::debug!(error = %e, "no netlink sock_diag socket: reading procfs");
                None
            }
        }
    }

    /// Dumps one table into `out`; `Ok(false)` when the kernel refused it.
    fn dump(&mut self, dump: Dump, out: &mut Vec<Socket>) -> Result<bool, Error> {
        self.seq = self.seq.wrapping_add(1);
        let what = || PathBuf::from(format!("netlink sock_diag dump of {dump:?}"));
        let fd = self.socket.as_fd();
        sys::netlink_send(fd, &request(dump, self.seq, ByteOrder::NATIVE))
            .map_err(|e| io_error(&what(), e))?;
        loop {
            let len = receive(fd, &mut self.buf).map_err(|e| io_error(&what(), e))?;
            let datagram = &self.buf[..len];
            match parse_datagram(datagram, dump, self.seq, ByteOrder::NATIVE, out)
                .map_err(|e| e.at(what()))?
            {
                Progress::More => {}
                Progress::Done => return Ok(true),
                Progress::Refused(errno) => {
                    tracing::debug!(?dump, errno, "the kernel refused a sock_diag dump");
                    return Ok(false);
                }
            }
        }
    }
}

/// Waits for the next datagram and takes it into `buf`; its length.
fn receive(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        if !sys::wait_readable(fd, DUMP_WAIT)? {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the kernel did not answer",
            ));
        }
        match sys::netlink_recv(fd, buf) {
            Ok(got) if got.len > buf.len() => {
                return Err(io::Error::other(format!(
                    "a datagram of {} bytes, more than {}",
                    got.len,
                    buf.len()
                )));
            }
            Ok(got) if got.sender == Some(0) || got.sender.is_none() => return Ok(got.len),
            // Not from the kernel.
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

// === impl Holders ===

/// Which processes hold which sockets, by inode.
#[derive(Default)]
struct Holders {
    /// (pid, fd) of every holder of a socket, by the socket's inode. Every
    /// socket a scanned process holds, since the scan runs before the
    /// listing is known.
    by_inode: HashMap<u64, Vec<(u32, u32)>>,
    errors: Vec<(u32, ErrorKind)>,
}

impl Holders {
    /// Reads the descriptor tables of `pids`, or of every process when
    /// there are none.
    fn scan(linux: &Linux, pids: &[u32]) -> Result<Holders, Error> {
        let mut holders = Holders::default();
        let root = linux.open_root()?;
        let mut entries = sys::DirBuf::default();
        if !pids.is_empty() {
            for &pid in pids {
                holders.read_fds(linux, root.as_fd(), pid, &mut entries);
            }
            return Ok(holders);
        }
        let mut listing_buf = sys::DirBuf::default();
        let mut listing = listing_buf.list(root.as_fd());
        while let Some(entry) = listing.next_with(parse_pid) {
            let entry = entry.map_err(|e| io_error(&linux.procfs, e))?;
            if let Some(pid) = entry {
                holders.read_fds(linux, root.as_fd(), pid, &mut entries);
            }
        }
        Ok(holders)
    }

    /// Notes the sockets in `pid`'s descriptor table. A process that is
    /// gone is skipped; one that cannot be read is an error of the batch.
    fn read_fds(
        &mut self,
        linux: &Linux,
        root: BorrowedFd<'_>,
        pid: u32,
        entries: &mut sys::DirBuf,
    ) {
        let Ok(name) = CString::new(format!("{pid}/fd")) else {
            return;
        };
        let dir = match sys::open_dir_at(Some(root), &name) {
            Ok(dir) => dir,
            Err(err) => {
                match classify(&err) {
                    Errno::Missing => {}
                    Errno::Denied => self.errors.push((pid, ErrorKind::AccessDenied)),
                    Errno::Other => {
                        let path = linux.procfs.join(name.to_string_lossy().as_ref());
                        tracing::warn!(pid, path = %path.display(), error = %err, "unreadable descriptor table");
                        self.errors.push((pid, ErrorKind::AccessDenied));
                    }
                }
                return;
            }
        };
        let mut fds = Vec::new();
        let mut listing = entries.list(dir.as_fd());
        while let Some(Ok(fd)) = listing.next_with(parse_pid) {
            fds.extend(fd);
        }
        for fd in fds {
            let Ok(name) = CString::new(fd.to_string()) else {
                continue;
            };
            // A descriptor closed meanwhile is no longer held.
            let Ok(Some(inode)) = sys::socket_inode_at(dir.as_fd(), &name) else {
                continue;
            };
            self.by_inode.entry(inode).or_default().push((pid, fd));
        }
    }

    /// Each socket once per holder, in the listing's order; with `only_held`,
    /// the sockets no scanned process holds are left out.
    fn assign(self, sockets: Vec<Socket>, only_held: bool) -> SocketListing {
        let mut by_inode = self.by_inode;
        let mut out = Vec::with_capacity(sockets.len());
        for socket in sockets {
            let mut holders = by_inode.remove(&socket.inode).unwrap_or_default();
            holders.sort_unstable();
            if holders.is_empty() {
                if !only_held {
                    out.push(socket);
                }
                continue;
            }
            for (pid, fd) in holders {
                out.push(Socket {
                    pid: Some(pid),
                    fd: Some(fd),
                    ..socket.clone()
                });
            }
        }
        SocketListing {
            sockets: out,
            process_errors: self.errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::backend::socket::{ConnStatus, SockType, SocketKind};

    /// The fixture tree's `net/` tables (see its README), read as a host
    /// without sock_diag reads them.
    fn fixture() -> Linux {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/linux");
        Linux::with_consts(dir.join("proc"), dir.join("sys"), 100, 4096)
            .unwrap()
            .with_socket_source(SocketSource::Procfs)
    }

    fn list(query: SocketQuery) -> SocketListing {
        connections(&fixture(), &query).unwrap()
    }

    fn kind(kind: SocketKind) -> SocketQuery {
        SocketQuery {
            kind,
            ..SocketQuery::default()
        }
    }

    #[test]
    fn every_table_is_read_for_all() {
        let got = list(kind(SocketKind::All));
        let inodes: Vec<u64> = got.sockets.iter().map(|s| s.inode).collect();
        // psutil's order: tcp, tcp6, udp, udp6, unix.
        assert_eq!(
            inodes,
            [
                1097948, 1097949, 1097950, 1097952, 1097951, 1097953, 1097954, 1097955
            ]
        );
        let udp6 = &got.sockets[5];
        assert_eq!((udp6.family, udp6.kind), (Family::Inet6, SockType::Dgram));
        assert_eq!(udp6.laddr.ip.unwrap().to_string(), "::1");
        assert_eq!(udp6.laddr.port, 52110);
        assert!(
            got.sockets
                .iter()
                .all(|s| s.pid.is_none() && s.fd.is_none())
        );
    }

    #[test]
    fn kinds_states_and_ports_filter() {
        assert_eq!(list(kind(SocketKind::Inet)).sockets.len(), 6);
        assert_eq!(list(kind(SocketKind::Tcp4)).sockets.len(), 3);
        assert_eq!(list(kind(SocketKind::Udp)).sockets.len(), 2);
        assert_eq!(list(kind(SocketKind::Unix)).sockets.len(), 2);
        let listen = list(SocketQuery {
            statuses: vec![ConnStatus::Listen],
            ..kind(SocketKind::All)
        });
        let inodes: Vec<u64> = listen.sockets.iter().map(|s| s.inode).collect();
        assert_eq!(inodes, [1097948, 1097952]);
        let port = list(SocketQuery {
            local_ports: vec![0x8A65],
            ..kind(SocketKind::Inet)
        });
        let inodes: Vec<u64> = port.sockets.iter().map(|s| s.inode).collect();
        assert_eq!(inodes, [1097948, 1097950]);
        let rport = list(SocketQuery {
            remote_ports: vec![0x8A65],
            ..kind(SocketKind::Inet)
        });
        assert_eq!(rport.sockets.len(), 1);
        assert_eq!(rport.sockets[0].inode, 1097949);
    }

    #[test]
    fn pids_that_hold_no_socket_leave_none() {
        // The fixture processes hold only /dev/null.
        let got = list(SocketQuery {
            pids: vec![15792, 15794, 4_000_000],
            ..kind(SocketKind::All)
        });
        assert!(got.sockets.is_empty());
        assert!(got.process_errors.is_empty());
        let all = list(SocketQuery {
            with_pids: true,
            ..kind(SocketKind::All)
        });
        assert_eq!(all.sockets.len(), 8);
    }
}
