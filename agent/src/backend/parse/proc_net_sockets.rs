//! The socket tables of procfs: `/proc/net/{tcp,tcp6,udp,udp6}` and
//! `/proc/net/unix`, read where netlink sock_diag is not available, the
//! way psutil reads them.
//!
//! An IP table line (after the header line):
//!
//! ```text
//!   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
//!    0: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 ...
//! ```
//!
//! Addresses are the kernel's 32-bit words printed with `%08X` in the
//! host's byte order (so 127.0.0.1 is `0100007F` on x86), ports are hex
//! in network order, `st` is the TCP state number. A unix line:
//!
//! ```text
//! Num       RefCount Protocol Flags    Type St Inode Path
//! 0000000000000000: 00000002 00000000 00010000 0001 01 12345 /run/x.sock
//! ```
//!
//! with the path absent for unnamed sockets and abstract names starting
//! with `@`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{ParseError, number, sock_diag::ByteOrder};
use crate::backend::socket::{Endpoint, Family, SockType, Socket, Transport};

/// Appends the sockets of an IP table (`tcp`, `tcp6`, `udp`, `udp6`) to
/// `out`. `order` is the byte order of the host that wrote it.
pub fn parse_inet_table(
    text: &[u8],
    transport: Transport,
    family: Family,
    order: ByteOrder,
    out: &mut Vec<Socket>,
) -> Result<(), ParseError> {
    for (i, line) in text.split(|&b| b == b'\n').enumerate().skip(1) {
        let n = i + 1;
        let mut tokens = line
            .split(u8::is_ascii_whitespace)
            .filter(|t| !t.is_empty());
        let Some(_slot) = tokens.next() else { continue };
        let mut next = |what: &str| {
            tokens
                .next()
                .ok_or_else(|| ParseError::new(n, format!("no {what}")))
        };
        let local = address(next("local_address")?, family, order, n)?;
        let remote = address(next("rem_address")?, family, order, n)?;
        let state: u8 = hex(next("st")?, "st", n)?;
        for what in ["tx_queue:rx_queue", "tr:tm->when", "retrnsmt"] {
            next(what)?;
        }
        let uid: u32 = number(next("uid")?, "uid", n)?;
        next("timeout")?;
        let inode: u64 = number(next("inode")?, "inode", n)?;
        let socket = Socket::ip(transport, family, local, remote, state, inode, uid)
            .ok_or_else(|| ParseError::new(n, format!("TCP state {state:02X}")))?;
        out.push(socket);
    }
    Ok(())
}

/// Appends the sockets of `/proc/net/unix` to `out`.
pub fn parse_unix_table(text: &[u8], out: &mut Vec<Socket>) -> Result<(), ParseError> {
    for (i, line) in text.split(|&b| b == b'\n').enumerate().skip(1) {
        let n = i + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // Six fields and the inode, then the path, which may hold spaces.
        let mut rest = line;
        let mut fields = [&[][..]; 7];
        for (k, field) in fields.iter_mut().enumerate() {
            let start = rest
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .ok_or_else(|| ParseError::new(n, format!("{k} fields, not 7")))?;
            rest = &rest[start..];
            let end = rest
                .iter()
                .position(u8::is_ascii_whitespace)
                .unwrap_or(rest.len());
            *field = &rest[..end];
            rest = &rest[end..];
        }
        let kind: u32 = hex(fields[4], "Type", n)?;
        let inode: u64 = number(fields[6], "Inode", n)?;
        let Some(kind) = SockType::from_linux(kind) else {
            continue;
        };
        let path = rest.strip_prefix(b" ").unwrap_or(rest);
        let path = String::from_utf8_lossy(path).into_owned();
        out.push(Socket::unix(kind, path, inode));
    }
    Ok(())
}

fn hex<T: TryFrom<u64>>(token: &[u8], what: &str, line: usize) -> Result<T, ParseError> {
    std::str::from_utf8(token)
        .ok()
        .and_then(|t| u64::from_str_radix(t, 16).ok())
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| {
            let shown = String::from_utf8_lossy(token);
            ParseError::new(line, format!("{what} {shown:?} is not a hex number"))
        })
}

/// `ADDR:PORT` of an IP table.
fn address(
    token: &[u8],
    family: Family,
    order: ByteOrder,
    line: usize,
) -> Result<Endpoint, ParseError> {
    let bad = || {
        let shown = String::from_utf8_lossy(token);
        ParseError::new(line, format!("address {shown:?}"))
    };
    let colon = token.iter().position(|&b| b == b':').ok_or_else(bad)?;
    let (addr, port) = (&token[..colon], &token[colon + 1..]);
    let port: u16 = hex(port, "port", line)?;
    let words = addr
        .chunks(8)
        .map(|w| hex::<u32>(w, "address", line))
        .collect::<Result<Vec<_>, _>>()?;
    // Each word was printed from memory holding network-order bytes.
    let bytes: Vec<u8> = words
        .iter()
        .flat_map(|w| match order {
            ByteOrder::Little => w.to_le_bytes(),
            ByteOrder::Big => w.to_be_bytes(),
        })
        .collect();
    let ip: IpAddr = match (family, bytes.len()) {
        (Family::Inet, 4) => Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).into(),
        (Family::Inet6, 16) => {
            let mut octets = [0; 16];
            octets.copy_from_slice(&bytes);
            Ipv6Addr::from(octets).into()
        }
        _ => return Err(bad()),
    };
    Ok(Endpoint::ip(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::socket::ConnStatus;

    // Sample from Linux 6.x, x86_64: a listener on 127.0.0.1:631 and a
    // connection from 127.0.0.1:41234 to it.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A112 0100007F:0277 01 00000000:00000000 00:00000000 00000000  1000        0 2002 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn tcp_lines_give_addresses_states_uids_and_inodes() {
        let mut out = Vec::new();
        parse_inet_table(
            TCP.as_bytes(),
            Transport::Tcp,
            Family::Inet,
            ByteOrder::Little,
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].laddr, Endpoint::ip([127, 0, 0, 1].into(), 631));
        assert_eq!(out[0].raddr, None);
        assert_eq!(out[0].status, ConnStatus::Listen);
        assert_eq!(out[0].inode, 2001);
        assert_eq!(out[1].raddr, Some(Endpoint::ip([127, 0, 0, 1].into(), 631)));
        assert_eq!(out[1].laddr.port, 0xA112);
        assert_eq!(out[1].status, ConnStatus::Established);
        assert_eq!(out[1].uid, Some(1000));
    }

    #[test]
    fn tcp6_addresses_keep_their_v4_mapping() {
        // ::ffff:127.0.0.1 port 8080, as x86 prints it.
        let text = "header
   0: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3001 1
";
        let mut out = Vec::new();
        parse_inet_table(
            text.as_bytes(),
            Transport::Tcp,
            Family::Inet6,
            ByteOrder::Little,
            &mut out,
        )
        .unwrap();
        assert_eq!(out[0].laddr.ip.unwrap().to_string(), "::ffff:127.0.0.1");
        assert_eq!(out[0].laddr.port, 8080);
    }

    #[test]
    fn udp_has_no_state() {
        let text = "header
  9: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4001 2 0000000000000000 0
";
        let mut out = Vec::new();
        parse_inet_table(
            text.as_bytes(),
            Transport::Udp,
            Family::Inet,
            ByteOrder::Little,
            &mut out,
        )
        .unwrap();
        assert_eq!(out[0].status, ConnStatus::None);
        assert_eq!(out[0].kind, SockType::Dgram);
    }

    #[test]
    fn a_cut_line_is_an_error_with_its_line_number() {
        let text = "header\n   0: 0100007F:0277 00000000:0000\n";
        let err = parse_inet_table(
            text.as_bytes(),
            Transport::Tcp,
            Family::Inet,
            ByteOrder::Little,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn unix_lines_give_types_and_paths_with_spaces() {
        let text = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 5001 /run/a b.sock
0000000000000000: 00000002 00000000 00000000 0002 01 5002 @abstract
0000000000000000: 00000003 00000000 00000000 0005 03 5003
";
        let mut out = Vec::new();
        parse_unix_table(text.as_bytes(), &mut out).unwrap();
        let got: Vec<_> = out
            .iter()
            .map(|s| (s.kind, s.inode, s.laddr.path.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (SockType::Stream, 5001, "/run/a b.sock"),
                (SockType::Dgram, 5002, "@abstract"),
                (SockType::Seqpacket, 5003, ""),
            ]
        );
        assert!(out.iter().all(|s| s.status == ConnStatus::None));
    }
}
