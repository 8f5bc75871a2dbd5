//! The generic backend's calls on a real BSD or macOS host: [`Native`]
//! answers [`Sys`] through [`super::super::bsd_sys`], and the sysctl
//! helpers here serve the OS modules' [`Kernel`] implementations.
//!
//! This part exists only where those kernels do; the rest of
//! [`super`] also builds on other hosts, where tests drive it with a fake
//! kernel.

use std::{io, sync::Arc, time::Duration};

use super::{Bsd, IfAddr, Kernel, MNT_RDONLY, Mount, ProcQueue, Sys, io_error, parse_error};
use crate::backend::{
    Error, bsd_sys,
    decode::{Record, kevent::ProcEvent, system::mount_bit},
    parse::ParseError,
};

// === impl Native ===

/// The shared calls, made to this host's kernel.
pub(in crate::backend) struct Native;

impl Sys for Native {
    fn loadavg(&self) -> io::Result<[f64; 3]> {
        bsd_sys::loadavg()
    }

    fn online_cpus(&self) -> Option<u64> {
        bsd_sys::sysconf(libc::_SC_NPROCESSORS_ONLN)
    }

    fn devname(&self, dev: u64) -> Option<Vec<u8>> {
        bsd_sys::devname(dev)
    }

    fn media(&self, name: &str) -> io::Result<(u64, u64)> {
        bsd_sys::media(name)
    }

    fn interface_addresses(&self, data_len: usize) -> io::Result<Vec<IfAddr>> {
        bsd_sys::interface_addresses(data_len)
    }

    fn kill(&self, pid: u32, signal: i32) -> io::Result<()> {
        bsd_sys::kill(pid, signal)
    }

    fn mounts(&self) -> io::Result<Vec<Mount>> {
        bsd_sys::mounts()
    }

    fn process_queue(&self) -> io::Result<Box<dyn ProcQueue>> {
        Ok(Box::new(bsd_sys::Kqueue::new()?))
    }
}

impl ProcQueue for bsd_sys::Kqueue {
    fn watch(&self, pid: u32, fflags: u32) -> io::Result<()> {
        bsd_sys::Kqueue::watch(self, pid, fflags)
    }

    fn wait(&mut self, timeout: Duration, out: &mut Vec<ProcEvent>) -> io::Result<()> {
        bsd_sys::Kqueue::wait(self, timeout, out)
    }
}

impl<K: Kernel> Bsd<K> {
    /// The backend of this host's kernel, read through `kernel`.
    pub(in crate::backend) fn new(kernel: K) -> Bsd<K> {
        Bsd::with_sys(kernel, Arc::new(Native))
    }
}

// `MNT_RDONLY` is the same bit on every BSD and macOS.
const _: () = assert!(mount_bit(libc::MNT_RDONLY) == MNT_RDONLY);

// === Reading sysctls ===

/// `pid` as a sysctl name component; a pid beyond `int` is no process.
pub(in crate::backend) fn pid_arg(pid: u32) -> io::Result<libc::c_int> {
    libc::c_int::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))
}

/// The value of the sysctl `mib`, in a buffer of its own.
pub(in crate::backend) fn sysctl_vec(mib: &[libc::c_int]) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    bsd_sys::sysctl(mib, &mut buf)?;
    Ok(buf)
}

/// The process table `fetched` (from `what`), decoded: the BSDs return
/// one as a sysctl (macOS's libproc answers pid by pid).
#[cfg(not(target_os = "macos"))]
pub(in crate::backend) fn table(
    what: &str,
    fetched: io::Result<Vec<u8>>,
    decode: impl FnOnce(&[u8]) -> Result<Vec<crate::backend::decode::Kinfo>, ParseError>,
) -> Result<Vec<crate::backend::decode::Kinfo>, Error> {
    let buf = fetched.map_err(|e| io_error(what, e))?;
    decode(&buf).map_err(parse_error(what))
}

/// Process `pid` from a table of it `fetched` (from `what`), decoded;
/// `None` when the kernel says there is no such process.
#[cfg(not(target_os = "macos"))]
pub(in crate::backend) fn single(
    pid: u32,
    what: &str,
    fetched: io::Result<Vec<u8>>,
    decode: impl FnOnce(&[u8]) -> Result<Vec<crate::backend::decode::Kinfo>, ParseError>,
) -> Result<Option<crate::backend::decode::Kinfo>, Error> {
    match fetched {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(None),
        fetched => Ok(table(what, fetched, decode)?.pop().filter(|k| k.pid == pid)),
    }
}

/// A table of `elem`-byte records from `KERN_PROC` (OpenBSD) or
/// `KERN_PROC2` (NetBSD), `node`, selected by `op` and `arg`.
#[cfg(any(target_os = "openbsd", target_os = "netbsd"))]
pub(in crate::backend) fn proc_records(
    node: libc::c_int,
    op: libc::c_int,
    arg: libc::c_int,
    elem: usize,
) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    bsd_sys::sysctl_table(&[libc::CTL_KERN, node, op, arg], elem, &mut buf)?;
    Ok(buf)
}

/// The descriptors `pid` holds, from the `KERN_FILE` (OpenBSD) or
/// `KERN_FILE2` (NetBSD) table `node` of its files: `size`-byte records
/// with the descriptor number at `fd`.
#[cfg(any(target_os = "openbsd", target_os = "netbsd"))]
pub(in crate::backend) fn count_fds(
    node: libc::c_int,
    pid: u32,
    size: usize,
    fd: usize,
) -> io::Result<u32> {
    let mib = [libc::CTL_KERN, node, libc::KERN_FILE_BYPID, pid_arg(pid)?];
    let mut buf = Vec::new();
    bsd_sys::sysctl_table(&mib, size, &mut buf)?;
    crate::backend::decode::netbsdlike::count_fds("kinfo_file", &buf, size, fd)
        .map_err(io::Error::other)
}

/// A number sysctl `mib` of whatever width (`what` names it).
#[cfg(any(target_os = "openbsd", target_os = "netbsd"))]
pub(in crate::backend) fn sysctl_u64(
    mib: &[libc::c_int],
    what: &'static str,
) -> Result<u64, Error> {
    let buf = sysctl_vec(mib).map_err(|e| io_error(what, e))?;
    crate::backend::decode::unsigned(what, &buf).map_err(parse_error(what))
}

/// The boot time from the sysctl `mib` (`KERN_BOOTTIME`).
#[cfg(any(target_os = "openbsd", target_os = "netbsd"))]
pub(in crate::backend) fn sysctl_boot_time(mib: &[libc::c_int]) -> Result<f64, Error> {
    let what = "sysctl kern.boottime";
    timeval(what, &sysctl_vec(mib).map_err(|e| io_error(what, e))?)
}

/// Seconds since the epoch from a `struct timeval` the kernel returned
/// for `what`; the width of `tv_usec` is the target's (4 bytes on macOS
/// and NetBSD, 8 on FreeBSD and OpenBSD).
pub(in crate::backend) fn timeval(what: &'static str, bytes: &[u8]) -> Result<f64, Error> {
    fn width<T>(_: &T) -> usize {
        std::mem::size_of::<T>()
    }
    let probe = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    Record::new(what, bytes)
        .timeval(0, width(&probe.tv_usec))
        .map_err(parse_error(what))
}

// === Named sysctls (FreeBSD, macOS) ===

/// The value of the sysctl `name`, through the `sysctl` crate, which
/// resolves names on FreeBSD and macOS (OpenBSD and NetBSD have numbers
/// only).
#[cfg(any(target_os = "freebsd", target_os = "macos"))]
pub(in crate::backend) fn named(name: &'static str) -> Result<sysctl::CtlValue, Error> {
    use sysctl::Sysctl;
    sysctl::Ctl::new(name)
        .and_then(|ctl| ctl.value())
        .map_err(|e| io_error(format!("sysctl {name}"), io::Error::other(e)))
}

/// The value of the sysctl `name`, a name made at run time.
#[cfg(target_os = "freebsd")]
pub(in crate::backend) fn named_dynamic(name: &str) -> Result<sysctl::CtlValue, Error> {
    use sysctl::Sysctl;
    sysctl::Ctl::new(name)
        .and_then(|ctl| ctl.value())
        .map_err(|e| io_error(format!("sysctl {name}"), io::Error::other(e)))
}

/// An integer sysctl, whatever its width.
#[cfg(any(target_os = "freebsd", target_os = "macos"))]
pub(in crate::backend) fn named_u64(name: &'static str) -> Result<u64, Error> {
    use sysctl::CtlValue as V;
    let value = named(name)?;
    let n: Option<u64> = match value {
        V::Int(v) | V::S32(v) => u64::try_from(v).ok(),
        V::Uint(v) | V::U32(v) => Some(u64::from(v)),
        V::Long(v) | V::S64(v) => u64::try_from(v).ok(),
        V::Ulong(v) | V::U64(v) => Some(v),
        _ => None,
    };
    n.ok_or_else(|| ParseError::new(0, format!("not an unsigned integer: {value:?}")))
        .map_err(parse_error(format!("sysctl {name}")))
}

/// A string sysctl.
#[cfg(any(target_os = "freebsd", target_os = "macos"))]
pub(in crate::backend) fn named_string(name: &'static str) -> Result<String, Error> {
    match named(name)? {
        sysctl::CtlValue::String(s) => Ok(s),
        other => Err(parse_error(format!("sysctl {name}"))(ParseError::new(
            0,
            format!("not a string: {other:?}"),
        ))),
    }
}

/// A structure sysctl, as bytes.
#[cfg(any(target_os = "freebsd", target_os = "macos"))]
pub(in crate::backend) fn named_bytes(name: &'static str) -> Result<Vec<u8>, Error> {
    match named(name)? {
        sysctl::CtlValue::Struct(b) | sysctl::CtlValue::Node(b) => Ok(b),
        other => Err(parse_error(format!("sysctl {name}"))(ParseError::new(
            0,
            format!("not a structure: {other:?}"),
        ))),
    }
}

// === Layout checks ===

/// Compile-time checks that `$layout`'s counter offsets are those of the
/// `libc` crate's `$ty` (a `struct if_data` or `if_data64`; the crate has
/// none for NetBSD).
#[cfg(not(target_os = "netbsd"))]
macro_rules! assert_if_counters {
    ($ty:ty, $layout:expr) => {
        assert!(std::mem::size_of::<$ty>() == $layout.size);
        assert!(std::mem::offset_of!($ty, ifi_mtu) == $layout.mtu.0);
        assert!(std::mem::offset_of!($ty, ifi_baudrate) == $layout.counters[0]);
        assert!(std::mem::offset_of!($ty, ifi_ipackets) == $layout.counters[1]);
        assert!(std::mem::offset_of!($ty, ifi_ierrors) == $layout.counters[2]);
        assert!(std::mem::offset_of!($ty, ifi_opackets) == $layout.counters[3]);
        assert!(std::mem::offset_of!($ty, ifi_oerrors) == $layout.counters[4]);
        assert!(std::mem::offset_of!($ty, ifi_ibytes) == $layout.counters[5]);
        assert!(std::mem::offset_of!($ty, ifi_obytes) == $layout.counters[6]);
        assert!(std::mem::offset_of!($ty, ifi_iqdrops) == $layout.counters[7]);
    };
}
#[cfg(not(target_os = "netbsd"))]
pub(in crate::backend) use assert_if_counters;

/// Compile-time checks of what the socket decoders take to be alike on
/// every BSD and macOS: the `SOCK_*` numbers (those of Linux, which
/// [`crate::backend::socket::SockType::from_linux`] reads), `IPPROTO_TCP` and
/// `IPPROTO_UDP`, and where `sockaddr_in`, `sockaddr_in6` and
/// `sockaddr_un` keep their ports, addresses and paths.
#[cfg(not(target_os = "netbsd"))]
macro_rules! assert_socket_numbers {
    () => {
        assert!(libc::SOCK_STREAM == 1 && libc::SOCK_DGRAM == 2);
        assert!(libc::SOCK_RAW == 3 && libc::SOCK_SEQPACKET == 5);
        assert!($crate::backend::decode::IPPROTO_TCP == libc::IPPROTO_TCP);
        assert!($crate::backend::decode::IPPROTO_UDP == libc::IPPROTO_UDP);
        assert!(std::mem::offset_of!(libc::sockaddr_in, sin_port) == 2);
        assert!(std::mem::offset_of!(libc::sockaddr_in, sin_addr) == 4);
        assert!(std::mem::offset_of!(libc::sockaddr_in6, sin6_port) == 2);
        assert!(std::mem::offset_of!(libc::sockaddr_in6, sin6_addr) == 8);
        assert!(std::mem::offset_of!(libc::sockaddr_in6, sin6_scope_id) == 24);
        assert!(std::mem::offset_of!(libc::sockaddr_un, sun_path) == 2);
        assert!(libc::AF_UNIX == 1 && libc::AF_INET == 2);
    };
}
#[cfg(not(target_os = "netbsd"))]
pub(in crate::backend) use assert_socket_numbers;

/// Compile-time checks that the `EVFILT_PROC` notes the event source uses
/// are the `libc` crate's.
macro_rules! assert_notes {
    () => {
        assert!($crate::backend::decode::kevent::NOTE_EXIT == libc::NOTE_EXIT);
        assert!($crate::backend::decode::kevent::NOTE_FORK == libc::NOTE_FORK);
        assert!($crate::backend::decode::kevent::NOTE_EXEC == libc::NOTE_EXEC);
        assert!($crate::backend::decode::kevent::NOTE_CHILD == libc::NOTE_CHILD);
    };
}
pub(in crate::backend) use assert_notes;
