//! Network interface records: `/proc/net/dev`, sysfs link settings, and
//! the formatting psutil applies to flags and addresses.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{ParseError, lossy, number, numbered_lines, tokens};
use crate::backend::{Duplex, NetIoCounters};

/// Parses `/proc/net/dev`: two header lines, then `name: ` and 16 counters
/// (8 received, 8 transmitted). The name ends at the last colon, as psutil
/// reads it.
pub fn parse_net_dev(bytes: &[u8]) -> Result<Vec<(String, NetIoCounters)>, ParseError> {
    let mut out = Vec::new();
    for (n, line) in numbered_lines(bytes).skip(2) {
        if line.trim_ascii().is_empty() {
            continue;
        }
        let colon = line
            .iter()
            .rposition(|b| *b == b':')
            .ok_or_else(|| ParseError::new(n, format!("no colon: {:?}", lossy(line))))?;
        let mut f = [0u64; 16];
        let mut it = tokens(&line[colon + 1..]);
        for (i, slot) in f.iter_mut().enumerate() {
            let token = it
                .next()
                .ok_or_else(|| ParseError::new(n, format!("only {i} counters, expected 16")))?;
            *slot = number(token, "counter", n)?;
        }
        let counters = NetIoCounters {
            bytes_recv: f[0],
            packets_recv: f[1],
            errin: f[2],
            dropin: f[3],
            bytes_sent: f[8],
            packets_sent: f[9],
            errout: f[10],
            dropout: f[11],
        };
        out.push((lossy(line[..colon].trim_ascii()), counters));
    }
    Ok(out)
}

/// The `IFF_*` bits of `<linux/if.h>` that `SIOCGIFFLAGS` reports, with
/// psutil's names, in psutil's order. These are Linux's values (the BSDs
/// number them differently), kept here rather than taken from `libc` so
/// that the table is the same on every build machine.
pub(crate) const FLAG_NAMES: [(u32, &str); 16] = [
    (0x1, "up"),
    (0x2, "broadcast"),
    (0x4, "debug"),
    (0x8, "loopback"),
    (0x10, "pointopoint"),
    (0x20, "notrailers"),
    (0x40, "running"),
    (0x80, "noarp"),
    (0x100, "promisc"),
    (0x200, "allmulti"),
    (0x400, "master"),
    (0x800, "slave"),
    (0x1000, "multicast"),
    (0x2000, "portsel"),
    (0x4000, "automedia"),
    (0x8000, "dynamic"),
];

/// Linux `IFF_UP`.
pub const IFF_UP: u32 = 0x1;
/// Linux `IFF_BROADCAST`.
pub const IFF_BROADCAST: u32 = 0x2;
/// Linux `IFF_POINTOPOINT`.
pub const IFF_POINTOPOINT: u32 = 0x10;

/// psutil's `flags` string: the names of the set `IFF_*` bits, lower case,
/// comma-separated. Bits above the 16 that `SIOCGIFFLAGS` carries
/// (`lower_up`, `dormant`, `echo`) are left out, as psutil never sees them.
pub fn flag_names(flags: u32) -> String {
    names_of(flags, &[&FLAG_NAMES])
}

/// The names of the bits of `flags` set in `tables` (pieces of one
/// table, in order), comma-separated: the BSDs share Linux's first ten
/// `IFF_*` values and names and differ above.
pub(crate) fn names_of(flags: u32, tables: &[&[(u32, &str)]]) -> String {
    let names: Vec<&str> = tables
        .iter()
        .flat_map(|table| table.iter())
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    names.join(",")
}

/// Link speed in Mbit/s from sysfs `speed`; 0 when unknown (`-1`, which
/// drivers print for "no link" or "cannot tell") or unreadable.
pub fn parse_speed(bytes: &[u8]) -> u32 {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|mbps| u32::try_from(mbps).ok())
        .unwrap_or(0)
}

/// Duplex from sysfs `duplex` ("full", "half", "unknown").
pub fn parse_duplex(bytes: &[u8]) -> Duplex {
    match bytes.trim_ascii() {
        b"full" => Duplex::Full,
        b"half" => Duplex::Half,
        _ => Duplex::Unknown,
    }
}

/// MTU in bytes from sysfs `mtu`.
pub fn parse_mtu(bytes: &[u8]) -> Result<u32, ParseError> {
    number(bytes.trim_ascii(), "mtu", 0)
}

/// A link-layer address as psutil prints it: lower-case hex bytes joined
/// by colons; `None` for an interface without one (tun, ip6tnl).
pub fn format_mac(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return None;
    }
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(hex.join(":"))
}

/// An IPv4 address or netmask in dotted quad.
pub fn format_inet(octets: [u8; 4]) -> String {
    Ipv4Addr::from(octets).to_string()
}

/// An IPv6 address or netmask as glibc's `getnameinfo(NI_NUMERICHOST)`
/// prints it, which psutil uses: a scoped address carries `%interface`
/// when it is link-local (unicast `fe80::/10` or multicast `ff02::/16`),
/// `%scope_id` otherwise. `interface` is the name of the interface whose
/// index is the scope id.
pub fn format_inet6(octets: [u8; 16], scope_id: u32, interface: &str) -> String {
    let addr = Ipv6Addr::from(octets);
    let link_local = (octets[0] == 0xfe && octets[1] & 0xc0 == 0x80)
        || (octets[0] == 0xff && octets[1] & 0x0f == 0x02);
    match scope_id {
        0 => addr.to_string(),
        _ if link_local => format!("{addr}%{interface}"),
        id => format!("{addr}%{id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Sample from this machine (Debian 12, kernel 6.18.44).
    const NET_DEV: &[u8] = br#"Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0
  ifb0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 53018102    2971    1    2    0     0          0         0   303643    2172    3    4    0     0       0          0
"#;

    #[test]
    fn net_dev_counters() {
        let all = parse_net_dev(NET_DEV).unwrap();
        let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["lo", "ifb0", "eth0"]);
        assert_eq!(
            all[2].1,
            NetIoCounters {
                bytes_sent: 303_643,
                bytes_recv: 53_018_102,
                packets_sent: 2172,
                packets_recv: 2971,
                errin: 1,
                errout: 3,
                dropin: 2,
                dropout: 4,
            }
        );
    }

    #[test]
    fn net_dev_errors() {
        let head = "h1\nh2\n";
        assert!(parse_net_dev(format!("{head}  lo 1 2 3\n").as_bytes()).is_err());
        let err = parse_net_dev(format!("{head}  lo: 1 2 3\n").as_bytes()).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(parse_net_dev(head.as_bytes()).unwrap().is_empty());
    }

    #[test]
    fn flags_like_psutil() {
        // Values from this machine's /sys/class/net/*/flags plus the
        // running bit getifaddrs adds for a link that is up.
        assert_eq!(flag_names(0x1003 | 0x40), "up,broadcast,running,multicast");
        assert_eq!(flag_names(0x9 | 0x40), "up,loopback,running");
        assert_eq!(flag_names(0x82), "broadcast,noarp");
        // IFF_LOWER_UP (1 << 16) is beyond what psutil reports.
        assert_eq!(flag_names(0x1_0001), "up");
        assert_eq!(flag_names(0), "");
    }

    #[test]
    fn sysfs_values() {
        assert_eq!(parse_speed(b"1000\n"), 1000);
        assert_eq!(parse_speed(b"-1\n"), 0);
        assert_eq!(parse_speed(b""), 0);
        assert_eq!(parse_duplex(b"full\n"), Duplex::Full);
        assert_eq!(parse_duplex(b"half\n"), Duplex::Half);
        assert_eq!(parse_duplex(b"unknown\n"), Duplex::Unknown);
        assert_eq!(parse_mtu(b"1400\n"), Ok(1400));
        assert!(parse_mtu(b"big\n").is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            format_mac(&[0x02, 0xfc, 0, 0, 0, 1]).as_deref(),
            Some("02:fc:00:00:00:01")
        );
        assert_eq!(format_mac(&[]), None);
        assert_eq!(format_inet([255, 255, 255, 0]), "255.255.255.0");
        let mut fe80 = [0u8; 16];
        fe80[..2].copy_from_slice(&[0xfe, 0x80]);
        fe80[15] = 1;
        assert_eq!(format_inet6(fe80, 2, "eth0"), "fe80::1%eth0");
        assert_eq!(format_inet6(fe80, 0, "eth0"), "fe80::1");
        let mut site = [0u8; 16];
        site[..2].copy_from_slice(&[0xfd, 0]);
        site[15] = 2;
        assert_eq!(format_inet6(site, 3, "eth0"), "fd00::2%3");
        let mut mask = [0u8; 16];
        mask[..8].fill(0xff);
        assert_eq!(format_inet6(mask, 0, "eth0"), "ffff:ffff:ffff:ffff::");
    }
}
