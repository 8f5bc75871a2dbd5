//! Thin wrappers over the Linux backend's system calls.
//!
//! The calls go through `rustix` (raw syscalls with owned descriptors and
//! typed flags), and through `nix` for what only the C library answers:
//! the user database (NSS), `getifaddrs(3)` and `sysconf(3)`. Neither
//! needs `unsafe` here. The one exception is ioprio_get(2), which neither
//! wraps: [`ioprio_get`] calls it through `libc::syscall`. Each wrapper
//! turns results into owned values and `io::Result`s, and knows nothing of
//! procfs layouts or the API's types.

use std::{
    ffi::CStr,
    fs::File,
    io,
    os::fd::{BorrowedFd, OwnedFd},
    time::Duration,
};

use nix::{ifaddrs::InterfaceAddress, sys::socket::SockaddrStorage, unistd::SysconfVar};
use rustix::{
    buffer::spare_capacity,
    event::{PollFd, PollFlags, Timespec},
    fs::{CWD, Mode, OFlags, RawDir},
    io::{Errno, retry_on_intr},
    net::{
        AddressFamily, Protocol, RecvFlags, SendFlags, SocketFlags, SocketType,
        netlink::SocketAddrNetlink, sockopt,
    },
    process::{Pid, PidfdFlags, Signal},
    time::ClockId,
};

// === Files and directories ===

/// Opens the directory `name`, relative to `dir` (or to the working
/// directory when `dir` is `None`), for lookups with the `*at` calls.
pub(super) fn open_dir_at(dir: Option<BorrowedFd<'_>>, name: &CStr) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(
        dir.unwrap_or(CWD),
        name,
        flags,
        Mode::empty(),
    )?)
}

/// Opens the file `name` relative to `dir` for reading.
pub(super) fn open_file_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<File> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY;
    Ok(rustix::fs::openat(dir, name, flags, Mode::empty())?.into())
}

/// Reads the target of the symbolic link `name` relative to `dir` into
/// `buf` (cleared first), growing it until the target fits. Once `buf`
/// has grown to the longest target, this allocates nothing.
pub(super) fn read_link_at(dir: BorrowedFd<'_>, name: &CStr, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    if buf.capacity() < 256 {
        buf.reserve(256);
    }
    loop {
        let room = buf.capacity();
        // Fills the spare capacity and sets the length to what was read.
        let n = rustix::fs::readlinkat_raw(dir, name, spare_capacity(buf))?;
        if n < room {
            return Ok(());
        }
        // A target that fills the buffer may have been cut short: try
        // again with more room.
        buf.clear();
        buf.reserve(room * 2);
    }
}

/// The buffer `getdents64(2)` fills: 32 KiB, as glibc's `opendir` uses,
/// so listing `/proc` takes as few calls as `readdir(3)` would.
const DIR_BUFFER_BYTES: usize = 32 << 10;

/// Room for directory entries, kept across listings so that listing a
/// directory allocates nothing after the first time.
#[derive(Default)]
pub(super) struct DirBuf(Vec<u8>);

impl DirBuf {
    /// Lists the directory open as `dir` from its current position (the
    /// start, for a directory just opened). Lookups with the `*at` calls
    /// relative to `dir` do not move the listing.
    pub(super) fn list<'a>(&'a mut self, dir: BorrowedFd<'a>) -> Listing<'a> {
        if self.0.capacity() < DIR_BUFFER_BYTES {
            self.0.reserve(DIR_BUFFER_BYTES);
        }
        Listing(RawDir::new(dir, self.0.spare_capacity_mut()))
    }
}

/// A directory being listed, with `getdents64(2)` into a [`DirBuf`].
pub(super) struct Listing<'a>(RawDir<'a, BorrowedFd<'a>>);

impl Listing<'_> {
    /// `what` of the next entry's name (`.` and `..` included); `None` at
    /// the end. The name lives in the listing's buffer only until the next
    /// call, hence the function rather than a borrowed name.
    pub(super) fn next_with<T>(&mut self, what: impl FnOnce(&[u8]) -> T) -> Option<io::Result<T>> {
        Some(match self.0.next()? {
            Ok(entry) => Ok(what(entry.file_name().to_bytes())),
            Err(errno) => Err(errno.into()),
        })
    }
}

/// The (major, minor) numbers of the device number `dev`.
pub(super) fn major_minor(dev: u64) -> (u32, u32) {
    (rustix::fs::major(dev), rustix::fs::minor(dev))
}

/// A file system's fragment size and its block counts in fragments
/// (`f_frsize`, `f_blocks`, `f_bfree`, `f_bavail` of `statvfs(3)`).
pub(super) fn statvfs(path: &std::path::Path) -> io::Result<[u64; 4]> {
    let st = retry_on_intr(|| rustix::fs::statvfs(path))?;
    Ok([st.f_frsize, st.f_blocks, st.f_bfree, st.f_bavail])
}

/// The (major, minor) numbers of the device holding `path`.
pub(super) fn device_of(path: &std::path::Path) -> io::Result<(u32, u32)> {
    let st = rustix::fs::stat(path)?;
    Ok(major_minor(st.st_dev))
}

// === The host ===

/// What `uname(2)` says about the running kernel.
pub(super) struct Uname {
    pub(super) nodename: String,
    pub(super) release: String,
    pub(super) machine: String,
}

/// The node name, kernel release and machine of the running kernel.
pub(super) fn uname() -> Uname {
    let uts = rustix::system::uname();
    let text = |field: &CStr| field.to_string_lossy().into_owned();
    Uname {
        nodename: text(uts.nodename()),
        release: text(uts.release()),
        machine: text(uts.machine()),
    }
}

/// Clock ticks per second, the unit of procfs CPU times (`_SC_CLK_TCK`).
pub(super) fn clock_ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// The page size in bytes (`_SC_PAGESIZE`).
pub(super) fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// How many CPUs are online (`sysconf(_SC_NPROCESSORS_ONLN)`), as psutil's
/// `cpu_count()` counts them: not limited by this process's affinity or
/// cgroup. `None` when the C library has no answer.
pub(super) fn online_cpus() -> io::Result<Option<u64>> {
    let count = nix::unistd::sysconf(SysconfVar::_NPROCESSORS_ONLN)?;
    Ok(count.and_then(|n| u64::try_from(n).ok()))
}

// === getifaddrs ===

/// A socket address of a family the backend reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum SockAddr {
    Inet([u8; 4]),
    Inet6 {
        octets: [u8; 16],
        scope_id: u32,
    },
    /// AF_PACKET: the link-layer address, `sll_halen` bytes long.
    Packet(Vec<u8>),
}

impl SockAddr {
    /// The address in `sa`, `None` for a family the backend does not
    /// report.
    fn of(sa: &SockaddrStorage) -> Option<SockAddr> {
        if let Some(sin) = sa.as_sockaddr_in() {
            return Some(SockAddr::Inet(sin.ip().octets()));
        }
        if let Some(sin6) = sa.as_sockaddr_in6() {
            return Some(SockAddr::Inet6 {
                octets: sin6.ip().octets(),
                scope_id: sin6.scope_id(),
            });
        }
        let sll: &libc::sockaddr_ll = sa.as_link_addr()?.as_ref();
        let len = usize::from(sll.sll_halen).min(sll.sll_addr.len());
        Some(SockAddr::Packet(sll.sll_addr[..len].to_vec()))
    }
}

/// One `getifaddrs(3)` entry.
#[derive(Clone, Debug)]
pub(super) struct IfAddr {
    pub(super) name: String,
    /// The interface's `IFF_*` flags.
    pub(super) flags: u32,
    pub(super) addr: Option<SockAddr>,
    pub(super) netmask: Option<SockAddr>,
    /// The broadcast address when `IFF_BROADCAST` is set, the peer address
    /// when `IFF_POINTOPOINT` is: the C union `ifa_ifu`.
    pub(super) ifu: Option<SockAddr>,
}

impl IfAddr {
    fn of(entry: &InterfaceAddress) -> IfAddr {
        let addr = |sa: &Option<SockaddrStorage>| sa.as_ref().and_then(SockAddr::of);
        // nix files `ifa_ifu` under the peer when IFF_POINTOPOINT is set,
        // else under the broadcast address when IFF_BROADCAST is: one of
        // the two, never both.
        let ifu = entry.broadcast.as_ref().or(entry.destination.as_ref());
        IfAddr {
            name: entry.interface_name.clone(),
            // The flags fit SIOCGIFFLAGS's 16 bits, all of which nix
            // knows on Linux (a test checks), so none is dropped.
            flags: u32::try_from(entry.flags.bits()).unwrap_or(0),
            addr: addr(&entry.address),
            netmask: addr(&entry.netmask),
            ifu: ifu.and_then(SockAddr::of),
        }
    }
}

/// Every entry of `getifaddrs(3)`: the live system's interfaces, in the
/// agent's network namespace. glibc gives each netmask and broadcast
/// address the family of the entry's address, so each is read as its own.
pub(super) fn interface_addresses() -> io::Result<Vec<IfAddr>> {
    Ok(nix::ifaddrs::getifaddrs()?
        .map(|entry| IfAddr::of(&entry))
        .collect())
}

// === Processes ===

/// `pid` for rustix: `None` for 0 (which kill(2) reads as "my process
/// group") and for numbers beyond `pid_t`, neither of which is a process.
fn pid_of(pid: u32) -> io::Result<Pid> {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| Errno::SRCH.into())
}

/// The inode number of the socket the link `name` relative to `dir` leads
/// to (a `/proc/<pid>/fd` entry), `None` when it leads to anything but a
/// socket. Following the link is cheaper than reading it: procfs formats
/// a link's text ("socket:[12345]") on every read.
pub(super) fn socket_inode_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<u64>> {
    let st = rustix::fs::statat(dir, name, rustix::fs::AtFlags::empty())?;
    let is_socket = rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket;
    Ok(is_socket.then_some(st.st_ino))
}

/// A descriptor for the process `pid` (pidfd_open(2), Linux 5.3). It keeps
/// naming that process after it exits, so a signal sent through it can
/// never reach a process that reused the pid. `None` when the kernel has
/// no pidfds (ENOSYS).
pub(super) fn pidfd_open(pid: u32) -> io::Result<Option<OwnedFd>> {
    match rustix::process::pidfd_open(pid_of(pid)?, PidfdFlags::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOSYS) => Ok(None),
        Err(errno) => Err(errno.into()),
    }
}

/// Sends `signal` to the process `pidfd` names (pidfd_send_signal(2)).
pub(super) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: Signal) -> io::Result<()> {
    Ok(rustix::process::pidfd_send_signal(pidfd, signal)?)
}

/// Sends `signal` to `pid` (kill(2)), for kernels without pidfds.
pub(super) fn kill(pid: u32, signal: Signal) -> io::Result<()> {
    Ok(rustix::process::kill_process(pid_of(pid)?, signal)?)
}

/// The I/O priority word of `pid` (ioprio_get(2) with
/// `IOPRIO_WHO_PROCESS`): the class in bits 13 and up, the data below.
#[allow(unsafe_code)]
pub(super) fn ioprio_get(pid: u32) -> io::Result<i32> {
    /// `IOPRIO_WHO_PROCESS` of linux/ioprio.h: `who` is a pid.
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    let pid = pid_of(pid)?;
    // SAFETY: ioprio_get takes two integers by value and touches no
    // memory of the caller; it returns the priority or -1 with errno set.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_ioprio_get,
            IOPRIO_WHO_PROCESS,
            pid.as_raw_nonzero().get(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    i32::try_from(ret).map_err(|_| io::Error::other(format!("ioprio_get returned {ret}")))
}

// === Netlink ===

/// The netlink protocol of the kernel's connector (`NETLINK_CONNECTOR`).
pub(super) const NETLINK_CONNECTOR: Protocol = rustix::net::netlink::CONNECTOR;

/// The netlink protocol of the kernel's socket tables (`NETLINK_SOCK_DIAG`).
pub(super) const NETLINK_SOCK_DIAG: Protocol = rustix::net::netlink::SOCK_DIAG;

/// A datagram socket of netlink `protocol`, close-on-exec, bound to the
/// multicast `groups` (a bit mask) with a port the kernel picks.
pub(super) fn netlink_socket(protocol: Protocol, groups: u32) -> io::Result<OwnedFd> {
    let socket = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(protocol),
    )?;
    // Port 0 in bind asks the kernel to pick one.
    rustix::net::bind(&socket, &SocketAddrNetlink::new(0, groups))?;
    Ok(socket)
}

/// Asks for a receive buffer of `bytes`: past `net.core.rmem_max` with
/// `SO_RCVBUFFORCE` where the agent has CAP_NET_ADMIN, else up to that
/// limit with `SO_RCVBUF`. Returns the size the kernel granted (it doubles
/// the request to allow for its bookkeeping).
pub(super) fn set_receive_buffer(socket: BorrowedFd<'_>, bytes: usize) -> io::Result<usize> {
    let bytes = bytes.min(i32::MAX as usize);
    if sockopt::set_socket_recv_buffer_size_force(socket, bytes).is_err() {
        sockopt::set_socket_recv_buffer_size(socket, bytes)?;
    }
    Ok(sockopt::socket_recv_buffer_size(socket)?)
}

/// Sends the datagram `message` to the kernel (netlink port 0).
pub(super) fn netlink_send(socket: BorrowedFd<'_>, message: &[u8]) -> io::Result<()> {
    let kernel = SocketAddrNetlink::new(0, 0);
    retry_on_intr(|| rustix::net::sendto(socket, message, SendFlags::empty(), &kernel))?;
    Ok(())
}

/// One datagram taken off a netlink socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Received {
    /// The datagram's whole length, which exceeds the buffer when it was
    /// cut short.
    pub(super) len: usize,
    /// The sender's netlink port (0 for the kernel); `None` when the
    /// socket did not report a netlink address.
    pub(super) sender: Option<u32>,
}

/// Takes the next datagram into `buf` without waiting: `WouldBlock` when
/// there is none, and `ENOBUFS` once after the socket dropped datagrams
/// because its receive buffer was full.
pub(super) fn netlink_recv(socket: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Received> {
    // MSG_TRUNC makes the second length the datagram's whole length; only
    // `buf.len()` bytes are written.
    let (_, len, from) =
        rustix::net::recvfrom(socket, buf, RecvFlags::DONTWAIT | RecvFlags::TRUNC)?;
    let sender = from
        .and_then(|addr| SocketAddrNetlink::try_from(addr).ok())
        .map(|addr| addr.pid());
    Ok(Received { len, sender })
}

/// The socket errno that says datagrams were dropped (`ENOBUFS`).
pub(super) fn is_overrun(err: &io::Error) -> bool {
    Errno::from_io_error(err) == Some(Errno::NOBUFS)
}

/// Waits up to `timeout` for `fd` to be readable; `false` when the time
/// ran out or a signal interrupted.
pub(super) fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    // A timeout past what a timespec holds is as good as forever.
    let timeout = Timespec::try_from(timeout).unwrap_or(Timespec {
        tv_sec: i64::MAX,
        tv_nsec: 0,
    });
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    match rustix::event::poll(&mut fds, Some(&timeout)) {
        Ok(ready) => Ok(ready > 0),
        Err(Errno::INTR) => Ok(false),
        Err(errno) => Err(errno.into()),
    }
}

/// `CLOCK_MONOTONIC` now: time since boot, not counting suspend, the clock
/// of the process connector's timestamps.
pub(super) fn monotonic_now() -> Duration {
    let now = rustix::time::clock_gettime(ClockId::Monotonic);
    // Time since boot is never negative, so the conversion cannot fail.
    Duration::try_from(now).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    /// `flag_names` reads the 16 `IFF_*` bits of SIOCGIFFLAGS: nix must
    /// keep them all.
    #[test]
    fn nix_keeps_every_siocgifflags_bit() {
        let all = nix::net::if_::InterfaceFlags::from_bits_truncate(0xffff);
        assert_eq!(all.bits(), 0xffff);
    }

    /// rustix reads the auxiliary vector; the C library's sysconf must
    /// agree, or every CPU time and memory size would be off.
    #[test]
    fn clock_ticks_and_page_size_agree_with_sysconf() {
        let sysconf = |var| {
            let value = nix::unistd::sysconf(var).unwrap().unwrap();
            u64::try_from(value).unwrap()
        };
        assert_eq!(clock_ticks_per_second(), sysconf(SysconfVar::CLK_TCK));
        assert_eq!(page_size(), sysconf(SysconfVar::PAGE_SIZE));
        assert!(online_cpus().unwrap().unwrap() >= 1);
    }

    #[test]
    fn pid_zero_and_pids_beyond_pid_t_are_no_process() {
        for pid in [0, u32::MAX, 1 << 31] {
            let err = pid_of(pid).unwrap_err();
            assert_eq!(Errno::from_io_error(&err), Some(Errno::SRCH), "{pid}");
        }
        assert_eq!(pid_of(1).unwrap(), Pid::INIT);
    }

    #[test]
    fn a_link_target_longer_than_the_buffer_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let target = "x".repeat(700);
        std::os::unix::fs::symlink(&target, dir.path().join("link")).unwrap();
        let fd = File::open(dir.path()).unwrap();
        let mut buf = Vec::new();
        read_link_at(fd.as_fd(), c"link", &mut buf).unwrap();
        assert_eq!(buf, target.as_bytes());
        // Reused, the buffer reads a shorter target without stale bytes.
        std::os::unix::fs::symlink("short", dir.path().join("short")).unwrap();
        read_link_at(fd.as_fd(), c"short", &mut buf).unwrap();
        assert_eq!(buf, b"short");
    }

    #[test]
    fn a_listing_names_every_entry_and_its_buffer_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        // More names than one getdents64 call returns.
        let count = 3000;
        for i in 0..count {
            std::fs::write(dir.path().join(format!("entry-{i:04}")), "").unwrap();
        }
        let path = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
        let mut buf = DirBuf::default();
        let mut first_buffer = None;
        for _ in 0..2 {
            let fd = open_dir_at(None, &path).unwrap();
            let mut names = Vec::new();
            let mut listing = buf.list(fd.as_fd());
            while let Some(name) = listing.next_with(|name| name.to_vec()) {
                names.push(String::from_utf8(name.unwrap()).unwrap());
            }
            names.sort();
            assert_eq!(names.len(), count + 2, "with . and ..");
            assert_eq!(names[..2], [".", ".."]);
            assert_eq!(names[2], "entry-0000");
            assert_eq!(names[count + 1], format!("entry-{:04}", count - 1));
            // The second listing fills the very buffer the first did.
            assert_eq!(*first_buffer.get_or_insert(buf.0.as_ptr()), buf.0.as_ptr());
        }
    }

    #[test]
    fn ioprio_of_this_process_and_of_no_process() {
        let raw = ioprio_get(std::process::id()).expect("ioprio_get of self");
        assert!((0..4 << 13).contains(&raw), "{raw:#x}");
        let err = ioprio_get(0).expect_err("pid 0");
        assert_eq!(Errno::from_io_error(&err), Some(Errno::SRCH));
    }

    #[test]
    fn errors_keep_their_errno() {
        let root = open_dir_at(None, c"/").unwrap();
        let err = open_file_at(root.as_fd(), c"no such file, surely").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let err = open_dir_at(Some(root.as_fd()), c"proc/self/stat").unwrap_err();
        assert_eq!(Errno::from_io_error(&err), Some(Errno::NOTDIR));
    }
}
