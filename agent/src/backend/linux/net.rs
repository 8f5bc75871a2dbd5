//! Network interfaces: addresses and flags from `getifaddrs(3)` (the live
//! system, whatever the roots), counters from `<procfs>/net/dev`, link
//! settings from `<sysfs>/class/net/<if>/`.

use std::{collections::BTreeMap, io, path::Path};

use super::{
    process::io_error,
    sys::{self, IfAddr, SockAddr},
};
use crate::backend::{
    AddressFamily, Duplex, Error, NetAddress, NetIfStats, NetInterface, NetIoCounters,
    parse::net::{
        IFF_BROADCAST, IFF_POINTOPOINT, IFF_UP, flag_names, format_inet, format_inet6, format_mac,
        parse_duplex, parse_mtu, parse_net_dev, parse_speed,
    },
};

/// What is gathered about one interface before it is assembled.
#[derive(Default)]
struct Gathered {
    flags: Option<u32>,
    addresses: Vec<NetAddress>,
    io_counters: Option<NetIoCounters>,
}

/// Every interface once, sorted by name: those `getifaddrs` lists (each
/// has at least its AF_PACKET entry, so those without an address too) and
/// those `net/dev` counts.
pub(super) fn interfaces(procfs: &Path, sysfs: &Path) -> Result<Vec<NetInterface>, Error> {
    let entries =
        sys::interface_addresses().map_err(|e| io_error(Path::new("getifaddrs(3)"), e))?;
    let dev_path = procfs.join("net").join("dev");
    let dev = std::fs::read(&dev_path).map_err(|e| io_error(&dev_path, e))?;
    let counters = parse_net_dev(&dev).map_err(|e| e.at(dev_path))?;

    let mut by_name: BTreeMap<String, Gathered> = BTreeMap::new();
    for entry in &entries {
        let slot = by_name.entry(entry.name.clone()).or_default();
        slot.flags.get_or_insert(entry.flags);
        slot.addresses.extend(address(entry));
    }
    for (name, io) in counters {
        by_name.entry(name).or_default().io_counters = Some(io);
    }
    by_name
        .into_iter()
        .map(|(name, mut g)| {
            // psutil lists an interface's addresses by family number:
            // AF_INET, AF_INET6, AF_PACKET.
            g.addresses.sort_by_key(|a| a.family as u8);
            let stats = match g.flags {
                Some(flags) => link_stats(sysfs, &name, flags)?,
                None => None,
            };
            Ok(NetInterface {
                name,
                addresses: g.addresses,
                stats,
                io_counters: g.io_counters,
            })
        })
        .collect()
}

/// One `getifaddrs` entry as an address, psutil's way: netmask, broadcast
/// and peer are read in the family of the address; an entry without an
/// address (or with an empty link-layer one) is skipped.
fn address(entry: &IfAddr) -> Option<NetAddress> {
    let text = |sa: &SockAddr| match sa {
        SockAddr::Inet(octets) => Some(format_inet(*octets)),
        SockAddr::Inet6 { octets, scope_id } => Some(format_inet6(*octets, *scope_id, &entry.name)),
        SockAddr::Packet(bytes) => format_mac(bytes),
    };
    let addr = entry.addr.as_ref()?;
    let (family, address) = match addr {
        SockAddr::Inet(_) => (AddressFamily::Inet, text(addr)?),
        SockAddr::Inet6 { .. } => (AddressFamily::Inet6, text(addr)?),
        // psutil pads a short hardware address to six bytes.
        SockAddr::Packet(bytes) if !bytes.is_empty() => {
            let mut padded = bytes.clone();
            padded.resize(padded.len().max(6), 0);
            (AddressFamily::Link, format_mac(&padded)?)
        }
        SockAddr::Packet(_) => return None,
    };
    let ifu = entry.ifu.as_ref().and_then(text);
    let (broadcast, ptp) = if entry.flags & IFF_BROADCAST != 0 {
        (ifu, None)
    } else if entry.flags & IFF_POINTOPOINT != 0 {
        (None, ifu)
    } else {
        (None, None)
    };
    Some(NetAddress {
        family,
        address,
        netmask: entry.netmask.as_ref().and_then(text),
        broadcast,
        ptp,
    })
}

/// Link state of `name`: up and flags from `flags`, the rest from sysfs.
/// An unreadable or unknown speed or duplex is 0 and unknown, as psutil
/// reports them (virtual links answer EINVAL); `None` when sysfs has no
/// such interface, which vanished or lives in another tree.
pub(super) fn link_stats(
    sysfs: &Path,
    name: &str,
    flags: u32,
) -> Result<Option<NetIfStats>, Error> {
    let dir = sysfs.join("class").join("net").join(name);
    let mtu_path = dir.join("mtu");
    let mtu = match std::fs::read(&mtu_path) {
        Ok(bytes) => parse_mtu(&bytes).map_err(|e| e.at(mtu_path))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&mtu_path, e)),
    };
    let speed = std::fs::read(dir.join("speed")).map_or(0, |b| parse_speed(&b));
    let duplex = std::fs::read(dir.join("duplex")).map_or(Duplex::Unknown, |b| parse_duplex(&b));
    Ok(Some(NetIfStats {
        isup: flags & IFF_UP != 0,
        duplex,
        speed,
        mtu,
        flags: flag_names(flags),
    }))
}
