//! Thin wrappers over the syscalls and libc calls of the Linux backend.
//!
//! All of the backend's `unsafe` lives here; each wrapper turns raw
//! pointers and return codes into owned values and `io::Result`s, and
//! knows nothing of procfs layouts or the API's types.

use std::{
    ffi::{CStr, c_char, c_int},
    fs::File,
    io,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd},
    ptr::NonNull,
};

/// Opens the directory `name`, relative to `dir` (or to the working
/// directory when `dir` is `None`), for lookups with the `*at` calls.
pub(super) fn open_dir_at(dir: Option<BorrowedFd<'_>>, name: &CStr) -> io::Result<OwnedFd> {
    open_at(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
    )
}

/// Opens the file `name` relative to `dir` for reading.
pub(super) fn open_file_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<File> {
    open_at(
        Some(dir),
        name,
        libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY,
    )
    .map(File::from)
}

fn open_at(dir: Option<BorrowedFd<'_>>, name: &CStr, flags: c_int) -> io::Result<OwnedFd> {
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: `name` is a NUL-terminated string that outlives the call, and
    // `dirfd` is AT_FDCWD or a descriptor the borrow keeps open.
    let fd = unsafe { libc::openat(dirfd, name.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `openat` just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads the target of the symbolic link `name` relative to `dir` into
/// `buf` (cleared first), growing it until the target fits.
pub(super) fn read_link_at(dir: BorrowedFd<'_>, name: &CStr, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    if buf.capacity() < 256 {
        buf.reserve(256);
    }
    loop {
        let cap = buf.capacity();
        // SAFETY: the pointer and `cap` describe `buf`'s allocation, which
        // readlinkat only writes to; `name` is NUL-terminated.
        let n = unsafe {
            libc::readlinkat(
                dir.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast::<c_char>(),
                cap,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n < cap {
            // SAFETY: readlinkat initialised the first `n` bytes.
            unsafe { buf.set_len(n) };
            return Ok(());
        }
        // The target may have been truncated: try again with more room.
        buf.reserve(cap * 2);
    }
}

// === impl Dir ===

/// An open directory being listed, with `readdir(3)`.
pub(super) struct Dir(NonNull<libc::DIR>);

impl Dir {
    /// Lists the directory open as `fd`, taking ownership of it.
    pub(super) fn from_fd(fd: OwnedFd) -> io::Result<Dir> {
        let raw: RawFd = fd.as_raw_fd();
        // SAFETY: `raw` is an open directory descriptor; on success the
        // DIR owns it (so ownership leaves `fd` below), on failure it does
        // not and `fd` still closes it.
        let dir = unsafe { libc::fdopendir(raw) };
        match NonNull::new(dir) {
            Some(dir) => {
                std::mem::forget(fd);
                Ok(Dir(dir))
            }
            None => Err(io::Error::last_os_error()),
        }
    }

    /// The directory's descriptor, for `*at` lookups inside it. Lookups do
    /// not move the listing's position.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: `self.0` is a live DIR; its descriptor stays open until
        // `closedir` in `drop`, which the borrow of `self` precludes.
        unsafe { BorrowedFd::borrow_raw(libc::dirfd(self.0.as_ptr())) }
    }

    /// The next entry's name, `.` and `..` included; `None` at the end.
    pub(super) fn next_name(&mut self) -> Option<io::Result<&[u8]>> {
        // SAFETY: readdir reports errors only through errno, so it is
        // cleared first; `__errno_location` is the calling thread's errno.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `self.0` is a live DIR, used by this thread only (`Dir`
        // is neither Send nor Sync).
        let entry = unsafe { libc::readdir(self.0.as_ptr()) };
        if entry.is_null() {
            let err = io::Error::last_os_error();
            return (err.raw_os_error() != Some(0)).then_some(Err(err));
        }
        // SAFETY: a non-null entry is valid, with a NUL-terminated name,
        // until the next readdir or closedir, both of which need `&mut self`
        // and so end this borrow first.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        Some(Ok(name.to_bytes()))
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from fdopendir and is closed only here.
        unsafe { libc::closedir(self.0.as_ptr()) };
    }
}

// === The host ===

/// What `uname(2)` says about the running kernel.
pub(super) struct Uname {
    pub(super) nodename: String,
    pub(super) release: String,
    pub(super) machine: String,
}

/// The node name, kernel release and machine of the running kernel.
pub(super) fn uname() -> io::Result<Uname> {
    // SAFETY: utsname is plain arrays of c_char, valid when zeroed.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a live, writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let text = |field: &[c_char]| {
        let bytes: Vec<u8> = field
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok(Uname {
        nodename: text(&uts.nodename),
        release: text(&uts.release),
        machine: text(&uts.machine),
    })
}

/// A `sysconf(3)` value; `None` when the system has no limit or no answer.
pub(super) fn sysconf(name: c_int) -> Option<u64> {
    // SAFETY: sysconf only reads its integer argument.
    let value = unsafe { libc::sysconf(name) };
    u64::try_from(value).ok()
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

/// One `getifaddrs(3)` entry, copied out of libc's list.
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

/// Every entry of `getifaddrs(3)`: the live system's interfaces, in the
/// agent's network namespace.
pub(super) fn interface_addresses() -> io::Result<Vec<IfAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a live out-pointer.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cursor = head;
    while let Some(ifa) = NonNull::new(cursor) {
        // SAFETY: every node of the list stays valid until freeifaddrs.
        let ifa = unsafe { ifa.as_ref() };
        let family = sockaddr_family(ifa.ifa_addr);
        out.push(IfAddr {
            // SAFETY: ifa_name is a NUL-terminated string in the list.
            name: unsafe { CStr::from_ptr(ifa.ifa_name) }
                .to_string_lossy()
                .into_owned(),
            flags: ifa.ifa_flags,
            addr: family.and_then(|f| sockaddr(ifa.ifa_addr, f)),
            netmask: family.and_then(|f| sockaddr(ifa.ifa_netmask, f)),
            ifu: family.and_then(|f| sockaddr(ifa.ifa_ifu, f)),
        });
        cursor = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs, and nothing borrowed from the
    // list outlives this point.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

fn sockaddr_family(sa: *const libc::sockaddr) -> Option<c_int> {
    // SAFETY: a non-null sockaddr from getifaddrs starts with sa_family.
    NonNull::new(sa.cast_mut()).map(|sa| c_int::from(unsafe { sa.as_ref() }.sa_family))
}

/// Copies the sockaddr at `sa`, read as `family` (psutil reads netmasks
/// and broadcast addresses by the family of the entry's address).
fn sockaddr(sa: *const libc::sockaddr, family: c_int) -> Option<SockAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY (all three arms): glibc allocates each address of an entry of
    // family `family` as that family's full sockaddr structure;
    // read_unaligned copes with any alignment.
    match family {
        libc::AF_INET => {
            let sin = unsafe { sa.cast::<libc::sockaddr_in>().read_unaligned() };
            Some(SockAddr::Inet(sin.sin_addr.s_addr.to_ne_bytes()))
        }
        libc::AF_INET6 => {
            let sin6 = unsafe { sa.cast::<libc::sockaddr_in6>().read_unaligned() };
            Some(SockAddr::Inet6 {
                octets: sin6.sin6_addr.s6_addr,
                scope_id: sin6.sin6_scope_id,
            })
        }
        libc::AF_PACKET => {
            let sll = unsafe { sa.cast::<libc::sockaddr_ll>().read_unaligned() };
            let len = usize::from(sll.sll_halen).min(sll.sll_addr.len());
            Some(SockAddr::Packet(sll.sll_addr[..len].to_vec()))
        }
        _ => None,
    }
}

/// A descriptor for the process `pid` (pidfd_open(2), Linux 5.3). It keeps
/// naming that process after it exits, so a signal sent through it can
/// never reach a process that reused the pid.
pub(super) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; it touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends `signal` to the process `pidfd` names (pidfd_send_signal(2)).
pub(super) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: c_int) -> io::Result<()> {
    // SAFETY: a null siginfo asks the kernel to fill it in as kill(2) does;
    // the descriptor is kept open by the borrow.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `signal` to `pid` (kill(2)), for kernels without pidfds.
pub(super) fn kill(pid: u32, signal: c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: kill takes plain integers.
    if unsafe { libc::kill(pid, signal) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

// === Netlink ===

/// A datagram socket of netlink `protocol`, close-on-exec, bound to the
/// multicast `groups` (a bit mask) with a port the kernel picks.
pub(super) fn netlink_socket(protocol: c_int, groups: u32) -> io::Result<OwnedFd> {
    // SAFETY: socket takes plain integers and returns a new descriptor or -1.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `socket` just returned this descriptor, and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let addr = netlink_address(groups);
    // SAFETY: `addr` is a live sockaddr_nl and the length is its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast::<libc::sockaddr>(),
            socklen::<libc::sockaddr_nl>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// A netlink address: port 0 (the kernel's, or "pick one" in bind) and
/// the multicast `groups`.
fn netlink_address(groups: u32) -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is integers and padding, valid when zeroed (and
    // its padding field is private, so zeroing is the way to build one).
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = groups;
    addr
}

fn socklen<T>() -> libc::socklen_t {
    std::mem::size_of::<T>() as libc::socklen_t
}

/// Asks for a receive buffer of `bytes`: past `net.core.rmem_max` with
/// `SO_RCVBUFFORCE` where the agent has CAP_NET_ADMIN, else up to that
/// limit with `SO_RCVBUF`. Returns the size the kernel granted (it doubles
/// the request to allow for its bookkeeping).
pub(super) fn set_receive_buffer(socket: BorrowedFd<'_>, bytes: usize) -> io::Result<usize> {
    let value = c_int::try_from(bytes).unwrap_or(c_int::MAX);
    if set_int_option(socket, libc::SO_RCVBUFFORCE, value).is_err() {
        set_int_option(socket, libc::SO_RCVBUF, value)?;
    }
    let mut granted: c_int = 0;
    let mut len = socklen::<c_int>();
    // SAFETY: `granted` and `len` are live locals, `len` holding the size
    // of `granted`; the borrow keeps the descriptor open.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&raw mut granted).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(granted).unwrap_or(0))
}

fn set_int_option(socket: BorrowedFd<'_>, name: c_int, value: c_int) -> io::Result<()> {
    // SAFETY: `value` is a live c_int and the length is its size; the
    // borrow keeps the descriptor open.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&raw const value).cast(),
            socklen::<c_int>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends the datagram `message` to the kernel (netlink port 0).
pub(super) fn netlink_send(socket: BorrowedFd<'_>, message: &[u8]) -> io::Result<()> {
    let addr = netlink_address(0);
    loop {
        // SAFETY: `message` and `addr` are live for the call, with their
        // lengths; the borrow keeps the descriptor open.
        let rc = unsafe {
            libc::sendto(
                socket.as_raw_fd(),
                message.as_ptr().cast(),
                message.len(),
                0,
                (&raw const addr).cast::<libc::sockaddr>(),
                socklen::<libc::sockaddr_nl>(),
            )
        };
        if rc >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// One datagram taken off a netlink socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Received {
    /// The datagram's whole length, which exceeds the buffer when it was
    /// cut short.
    pub(super) len: usize,
    /// The sender's netlink port: 0 for the kernel.
    pub(super) sender: u32,
}

/// Takes the next datagram into `buf` without waiting: `WouldBlock` when
/// there is none, and `ENOBUFS` once after the socket dropped datagrams
/// because its receive buffer was full.
pub(super) fn netlink_recv(socket: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Received> {
    let mut from = netlink_address(0);
    let mut from_len = socklen::<libc::sockaddr_nl>();
    // SAFETY: `buf` is writable for its length, `from` and `from_len` are
    // live locals with `from_len` holding the size of `from`; the borrow
    // keeps the descriptor open. MSG_TRUNC makes the result the datagram's
    // whole length; only `buf.len()` bytes are written.
    let n = unsafe {
        libc::recvfrom(
            socket.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            (&raw mut from).cast::<libc::sockaddr>(),
            &mut from_len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Received {
        len: n as usize,
        sender: from.nl_pid,
    })
}

/// Waits up to `timeout` (rounded up to a millisecond) for `fd` to be
/// readable; `false` when the time ran out or a signal interrupted.
pub(super) fn wait_readable(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> io::Result<bool> {
    let ms = timeout
        .as_nanos()
        .div_ceil(1_000_000)
        .min(c_int::MAX as u128) as c_int;
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one live pollfd, and the count says one.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return match err.kind() {
            io::ErrorKind::Interrupted => Ok(false),
            _ => Err(err),
        };
    }
    Ok(rc > 0)
}

/// `CLOCK_MONOTONIC` now: time since boot, not counting suspend, the clock
/// of the process connector's timestamps.
pub(super) fn monotonic_now() -> io::Result<std::time::Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0);
    Ok(std::time::Duration::new(secs, nanos))
}
