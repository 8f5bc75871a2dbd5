//! Thin wrappers over the syscalls and libc calls of the FreeBSD,
//! OpenBSD, NetBSD and macOS backends.
//!
//! All of those backends' `unsafe` lives here, for the kernel interfaces
//! that neither rustix nor nix wraps (sysctl by number, getifaddrs with raw
//! socket addresses, SIOCGIFMEDIA, libproc, mach_timebase_info); the
//! crate denies `unsafe_code` everywhere else. Each wrapper hands back
//! owned bytes or plain values and an `io::Result`; what the bytes mean is
//! decided by the pure decoders of [`super::decode`].

use std::{
    ffi::{CStr, c_char, c_int, c_void},
    io,
    os::fd::{AsFd, OwnedFd},
    ptr::NonNull,
    sync::Mutex,
    time::Duration,
};

use rustix::{
    event::kqueue::{self, Event, EventFilter, EventFlags, ProcessEvents},
    process::Pid,
};

use super::{
    bsd::{IfAddr, Mount},
    decode::{Family, kevent::ProcEvent},
};

// === sysctl ===

/// The most times a read is retried when the value grows between asking
/// its size and reading it (a process table on a busy host).
const SYSCTL_TRIES: usize = 8;

/// Reads the value of the sysctl `mib` into `buf` (replacing what it
/// held), growing the buffer until the value fits.
pub(super) fn sysctl(mib: &[c_int], buf: &mut Vec<u8>) -> io::Result<()> {
    sysctl_sized(mib, buf, |_, _| {})
}

/// Reads a table of `elem`-byte records from `mib`, which OpenBSD and
/// NetBSD complete with the record size and the number of records the
/// buffer holds (`KERN_PROC`, `KERN_PROC2`, `KERN_FILE2`).
#[cfg(any(target_os = "openbsd", target_os = "netbsd"))]
pub(super) fn sysctl_table(mib: &[c_int], elem: usize, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut full = mib.to_vec();
    let elem_c = c_int::try_from(elem).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    full.extend([elem_c, 0]);
    sysctl_sized(&full, buf, |mib, room| {
        if let Some(count) = mib.last_mut() {
            *count = c_int::try_from(room / elem).unwrap_or(c_int::MAX);
        }
    })
}

/// [`sysctl`] where `fit` rewrites the mib for a buffer of `room` bytes
/// before each read.
fn sysctl_sized(
    mib: &[c_int],
    buf: &mut Vec<u8>,
    fit: impl Fn(&mut [c_int], usize),
) -> io::Result<()> {
    let mut mib = mib.to_vec();
    let namelen = libc::c_uint::try_from(mib.len())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    buf.clear();
    for _ in 0..SYSCTL_TRIES {
        // Ask for the size with a large count where the mib carries one,
        // then read with room to spare for what appears meanwhile.
        fit(&mut mib, usize::MAX / 2);
        let mut len: libc::size_t = 0;
        // SAFETY: a null old pointer asks only for the size, written to
        // `len`; the mib is a live array of `namelen` ints.
        let rc = unsafe {
            libc::sysctl(
                mib.as_ptr().cast_mut(),
                namelen,
                std::ptr::null_mut(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let room = len + len / 8 + 512;
        buf.reserve(room.saturating_sub(buf.len()));
        let room = buf.capacity();
        fit(&mut mib, room);
        let mut len = room;
        // SAFETY: the pointer and `len` describe `buf`'s allocation, which
        // sysctl only writes to, and only up to `len` bytes.
        let rc = unsafe {
            libc::sysctl(
                mib.as_ptr().cast_mut(),
                namelen,
                buf.as_mut_ptr().cast::<c_void>(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc == 0 {
            // SAFETY: sysctl initialised the first `len` bytes, which the
            // kernel never reports beyond the room it was given.
            unsafe { buf.set_len(len.min(room)) };
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ENOMEM) {
            return Err(err);
        }
    }
    Err(io::Error::from_raw_os_error(libc::ENOMEM))
}

/// The mib of the sysctl `name` (`sysctlnametomib(3)`), to which a caller
/// may append an index (`vm.swap_info.N`).
#[cfg(target_os = "freebsd")]
pub(super) fn name_to_mib(name: &str) -> io::Result<Vec<c_int>> {
    let cname =
        std::ffi::CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut mib = [0 as c_int; 24];
    let mut len: libc::size_t = mib.len();
    // SAFETY: the name is NUL-terminated; the mib array and its length
    // describe a live buffer the call only writes to.
    let rc = unsafe { libc::sysctlnametomib(cname.as_ptr(), mib.as_mut_ptr(), &mut len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(mib[..len.min(mib.len())].to_vec())
}

/// The value of the sysctl `name` (`sysctlbyname(3)`), for NetBSD nodes
/// without a fixed number (`machdep.cpu.frequency.current`).
#[cfg(target_os = "netbsd")]
pub(super) fn sysctl_by_name(name: &str) -> io::Result<Vec<u8>> {
    let cname =
        std::ffi::CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut len: libc::size_t = 0;
    // SAFETY: a null old pointer asks only for the size, written to `len`.
    let rc = unsafe {
        libc::sysctlbyname(
            cname.as_ptr(),
            std::ptr::null_mut(),
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; len];
    // SAFETY: the pointer and `len` describe `buf`, which the call only
    // writes to, and only up to `len` bytes.
    let rc = unsafe {
        libc::sysctlbyname(
            cname.as_ptr(),
            buf.as_mut_ptr().cast::<c_void>(),
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(len);
    Ok(buf)
}

/// The load averages over 1, 5 and 15 minutes (`getloadavg(3)`).
pub(super) fn loadavg() -> io::Result<[f64; 3]> {
    let mut avg = [0f64; 3];
    // SAFETY: the pointer and count describe `avg`, which the call only
    // writes to.
    let n = unsafe { libc::getloadavg(avg.as_mut_ptr(), 3) };
    if n != 3 {
        return Err(io::Error::other(format!("getloadavg returned {n}")));
    }
    Ok(avg)
}

// === Terminals, signals, the host ===

/// `devname(3)` keeps its answer in a static buffer: one caller at a time.
static DEVNAME: Mutex<()> = Mutex::new(());

/// The name under `/dev` of the character device `dev`, as `devname(3)`
/// gives it (which may be a placeholder for a device it cannot name).
pub(super) fn devname(dev: u64) -> Option<Vec<u8>> {
    let dev = libc::dev_t::try_from(dev).ok()?;
    let _one = DEVNAME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // SAFETY: devname takes plain values and returns null or a pointer to
    // its static NUL-terminated buffer, copied before the lock is released.
    let name = unsafe { libc::devname(dev, libc::S_IFCHR) };
    NonNull::new(name).map(|name| {
        // SAFETY: see above; the buffer is valid until the next call.
        unsafe { CStr::from_ptr(name.as_ptr()) }.to_bytes().to_vec()
    })
}

/// Sends `signal` to `pid` (kill(2)); signal 0 only checks that the
/// process exists and may be signalled. A number this OS does not name is
/// `EINVAL`, as kill(2) would answer.
pub(super) fn kill(pid: u32, signal: c_int) -> io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    if signal == 0 {
        return Ok(rustix::process::test_kill_process(pid)?);
    }
    let signal = rustix::process::Signal::from_named_raw(signal)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok(rustix::process::kill_process(pid, signal)?)
}

/// A `sysconf(3)` value; `None` when the system has no answer. Neither
/// rustix nor nix names `_SC_NPROCESSORS_ONLN` on the BSDs and macOS.
pub(super) fn sysconf(name: c_int) -> Option<u64> {
    // SAFETY: sysconf only reads its integer argument.
    u64::try_from(unsafe { libc::sysconf(name) }).ok()
}

// === Interfaces ===

/// The list `getifaddrs(3)` allocates, freed on drop.
struct IfAddrList(NonNull<libc::ifaddrs>);

impl IfAddrList {
    fn get() -> io::Result<Option<IfAddrList>> {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        // SAFETY: `head` is a live out-pointer.
        if unsafe { libc::getifaddrs(&mut head) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(NonNull::new(head).map(IfAddrList))
    }

    /// The entries, borrowed from the list.
    fn entries(&self) -> impl Iterator<Item = &libc::ifaddrs> {
        // SAFETY: every node stays valid until the list is freed, which
        // the borrow of `self` precludes.
        std::iter::successors(Some(unsafe { self.0.as_ref() }), |ifa| {
            NonNull::new(ifa.ifa_next).map(|next| unsafe { next.as_ref() })
        })
    }
}

impl Drop for IfAddrList {
    fn drop(&mut self) {
        // SAFETY: the pointer came from getifaddrs and is freed only here.
        unsafe { libc::freeifaddrs(self.0.as_ptr()) };
    }
}

/// Every entry of `getifaddrs(3)`, copying `data_len` bytes of each
/// `AF_LINK` entry's `ifa_data`.
pub(super) fn interface_addresses(data_len: usize) -> io::Result<Vec<IfAddr>> {
    let Some(list) = IfAddrList::get()? else {
        return Ok(Vec::new());
    };
    Ok(list
        .entries()
        .map(|ifa| copy_entry(ifa, data_len))
        .collect())
}

/// An entry's name, flags, addresses and link data, copied out.
fn copy_entry(ifa: &libc::ifaddrs, data_len: usize) -> IfAddr {
    let addr = sockaddr_bytes(ifa.ifa_addr);
    let family = addr.as_deref().and_then(family_of);
    let link = family == Some(Family::Link);
    let data = match NonNull::new(ifa.ifa_data) {
        // SAFETY: for AF_LINK entries ifa_data points to the interface's
        // struct if_data, `data_len` bytes long.
        Some(data) if link && data_len > 0 => Some(
            unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<u8>(), data_len) }.to_vec(),
        ),
        _ => None,
    };
    IfAddr {
        // SAFETY: ifa_name is a NUL-terminated string in the list.
        name: unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned(),
        flags: ifa.ifa_flags,
        family,
        addr,
        netmask: sockaddr_bytes(ifa.ifa_netmask),
        dstaddr: sockaddr_bytes(ifa.ifa_dstaddr),
        data,
    }
}

/// The family of a socket address from its `sa_family` byte.
fn family_of(sa: &[u8]) -> Option<Family> {
    match c_int::from(*sa.get(1)?) {
        libc::AF_INET => Some(Family::Inet),
        libc::AF_INET6 => Some(Family::Inet6),
        libc::AF_LINK => Some(Family::Link),
        _ => None,
    }
}

/// The bytes of the sockaddr at `sa`, as many as its `sa_len` says.
fn sockaddr_bytes(sa: *const libc::sockaddr) -> Option<Vec<u8>> {
    let sa = NonNull::new(sa.cast_mut())?;
    // SAFETY: a non-null sockaddr from getifaddrs starts with sa_len, and
    // holds that many bytes.
    let len = usize::from(unsafe { sa.as_ref() }.sa_len).max(2);
    Some(unsafe { std::slice::from_raw_parts(sa.as_ptr().cast::<u8>(), len) }.to_vec())
}

/// `struct ifmediareq` (`net/if.h`) with 32-bit media words, in the
/// representation `$repr` (macOS packs it to 4 bytes).
#[cfg(not(target_os = "openbsd"))]
macro_rules! ifmediareq {
    ($($repr:tt)*) => {
        #[repr($($repr)*)]
        struct IfMediaReq {
            name: [c_char; 16],
            current: c_int,
            mask: c_int,
            status: c_int,
            active: c_int,
            count: c_int,
            ulist: *mut c_int,
        }
    };
}

#[cfg(any(target_os = "freebsd", target_os = "netbsd"))]
ifmediareq!(C);
#[cfg(target_os = "macos")]
ifmediareq!(C, packed(4));

/// OpenBSD's `struct ifmediareq`, with 64-bit media words.
#[cfg(target_os = "openbsd")]
#[repr(C)]
struct IfMediaReq {
    name: [c_char; 16],
    current: u64,
    mask: u64,
    status: u64,
    active: u64,
    count: c_int,
    ulist: *mut u64,
}

#[cfg(any(target_os = "freebsd", target_os = "netbsd"))]
const IFMEDIAREQ_LEN: usize = super::decode::media::IFMEDIAREQ_LEN;
#[cfg(target_os = "macos")]
const IFMEDIAREQ_LEN: usize = super::decode::media::IFMEDIAREQ_LEN_MACOS;
#[cfg(target_os = "openbsd")]
const IFMEDIAREQ_LEN: usize = super::decode::media::IFMEDIAREQ_LEN_OPENBSD;
const _: () = assert!(std::mem::size_of::<IfMediaReq>() == IFMEDIAREQ_LEN);

/// `SIOCGIFMEDIA`, `_IOWR('i', 56, struct ifmediareq)`.
const SIOCGIFMEDIA: u64 = super::decode::media::iowr(b'i', 56, IFMEDIAREQ_LEN);

/// The media status and active media word of interface `name`
/// (`SIOCGIFMEDIA`); an error for interfaces without media (loopback,
/// tunnels answer EINVAL or ENOTTY).
pub(super) fn media(name: &str) -> io::Result<(u64, u64)> {
    let socket = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )?;
    // SAFETY: the request is integers, a character array and a null
    // pointer, valid when zeroed.
    let mut req: IfMediaReq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= req.name.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (slot, byte) in req.name.iter_mut().zip(bytes) {
        *slot = *byte as c_char;
    }
    ioctl_media(&socket, &mut req)?;
    Ok((word(req.status), word(req.active)))
}

/// A media word as the API's decoders take it: the 32-bit words are
/// unsigned bit sets, not numbers to sign-extend.
#[cfg(not(target_os = "openbsd"))]
fn word(value: c_int) -> u64 {
    u64::from(value as u32)
}

#[cfg(target_os = "openbsd")]
fn word(value: u64) -> u64 {
    value
}

fn ioctl_media(socket: &OwnedFd, req: &mut IfMediaReq) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: SIOCGIFMEDIA reads the name from and writes the words to
    // this live request of the size the request number encodes; with
    // ifm_count 0 the kernel writes no media list.
    let rc = unsafe {
        libc::ioctl(
            socket.as_fd().as_raw_fd(),
            SIOCGIFMEDIA as libc::c_ulong,
            std::ptr::from_mut(req),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

// === kqueue ===

/// A kqueue watching processes (`EVFILT_PROC`).
pub(super) struct Kqueue {
    fd: OwnedFd,
    events: Vec<Event>,
}

// SAFETY: the only thing that keeps `Kqueue` from being Send is the
// `udata` pointer of the events it buffers, which this module always sets
// to null and never reads.
unsafe impl Send for Kqueue {}

impl Kqueue {
    pub(super) fn new() -> io::Result<Kqueue> {
        Ok(Kqueue {
            fd: kqueue::kqueue()?,
            events: Vec::with_capacity(256),
        })
    }

    /// Starts watching `pid` for the `NOTE_*` events in `fflags`.
    pub(super) fn watch(&self, pid: u32, fflags: u32) -> io::Result<()> {
        let pid = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
        let change = Event::new(
            EventFilter::Proc {
                pid,
                flags: ProcessEvents::from_bits_retain(fflags),
            },
            EventFlags::ADD,
            std::ptr::null_mut(),
        );
        let mut none: Vec<Event> = Vec::new();
        // SAFETY: EVFILT_PROC events name processes, not descriptors, so
        // no descriptor must outlive the queue.
        unsafe { kqueue::kevent(&self.fd, &[change], &mut none, Some(Duration::ZERO)) }?;
        Ok(())
    }

    /// Waits up to `timeout` for events and appends them to `out`.
    pub(super) fn wait(&mut self, timeout: Duration, out: &mut Vec<ProcEvent>) -> io::Result<()> {
        self.events.clear();
        // SAFETY: as in `watch`, no descriptor is involved.
        match unsafe { kqueue::kevent(&self.fd, &[], &mut self.events, Some(timeout)) } {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        for event in &self.events {
            if let EventFilter::Proc { pid, flags } = event.filter() {
                out.push(ProcEvent {
                    pid: pid.as_raw_nonzero().get().unsigned_abs(),
                    fflags: flags.bits(),
                    data: event.data(),
                });
            }
        }
        Ok(())
    }
}

// === macOS libproc ===

/// Every pid (`proc_listallpids`), zombies included.
#[cfg(target_os = "macos")]
pub(super) fn all_pids() -> io::Result<Vec<u32>> {
    // SAFETY: a null buffer asks for the number of pids.
    let n = unsafe { libc::proc_listallpids(std::ptr::null_mut(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut pids: Vec<c_int> = vec![0; usize::try_from(n).unwrap_or(0) + 64];
    let bytes = c_int::try_from(pids.len() * std::mem::size_of::<c_int>()).unwrap_or(c_int::MAX);
    // SAFETY: the pointer and `bytes` describe `pids`, which the call only
    // writes to.
    let n = unsafe { libc::proc_listallpids(pids.as_mut_ptr().cast::<c_void>(), bytes) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    pids.truncate(usize::try_from(n).unwrap_or(0));
    Ok(pids
        .into_iter()
        .filter_map(|p| u32::try_from(p).ok())
        .collect())
}

/// `proc_pidinfo(pid, flavor, 0, ...)` into `buf` (cleared first), which
/// must be the flavor's structure size; an error when the kernel wrote
/// nothing (no such process, or not allowed).
#[cfg(target_os = "macos")]
pub(super) fn pidinfo(pid: u32, flavor: c_int, size: usize, buf: &mut Vec<u8>) -> io::Result<()> {
    let pid = c_int::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: proc_pidinfo writes at most `len` bytes to `ptr` and
    // returns how many it wrote.
    unsafe {
        libproc_fill(size, buf, |ptr, len| {
            libc::proc_pidinfo(pid, flavor, 0, ptr, len)
        })
    }
}

/// `proc_pidfdinfo(pid, fd, flavor, ...)` into `buf` (cleared first),
/// which must be the flavor's structure size: what one descriptor is
/// (`PROC_PIDFDVNODEPATHINFO`). EBADF when the descriptor is closed, or
/// is no longer of the flavor's kind.
#[cfg(target_os = "macos")]
pub(super) fn pidfdinfo(
    pid: u32,
    fd: u32,
    flavor: c_int,
    size: usize,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    let pid = c_int::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    let fd = c_int::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: proc_pidfdinfo writes at most `len` bytes to `ptr` and
    // returns how many it wrote.
    unsafe {
        libproc_fill(size, buf, |ptr, len| {
            libc::proc_pidfdinfo(pid, fd, flavor, ptr, len)
        })
    }
}

/// Runs a libproc `call` into `buf` (cleared first) with room for `size`
/// bytes; an error when it wrote nothing.
///
/// # Safety
///
/// `call(ptr, len)` must write at most `len` bytes from `ptr` and return
/// how many it wrote (or 0 or less on failure).
#[cfg(target_os = "macos")]
unsafe fn libproc_fill(
    size: usize,
    buf: &mut Vec<u8>,
    call: impl FnOnce(*mut c_void, c_int) -> c_int,
) -> io::Result<()> {
    buf.clear();
    buf.reserve(size);
    let len = c_int::try_from(size).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let n = call(buf.as_mut_ptr().cast::<c_void>(), len);
    if n <= 0 {
        let err = io::Error::last_os_error();
        // libproc leaves errno unset for a process that vanished.
        return Err(match err.raw_os_error() {
            Some(0) | None => io::Error::from_raw_os_error(libc::ESRCH),
            _ => err,
        });
    }
    // SAFETY: by the caller's promise the call initialised the first `n`
    // bytes (at most `len`, the room `buf` has).
    unsafe { buf.set_len(usize::try_from(n).unwrap_or(0).min(size)) };
    Ok(())
}

/// The list `proc_pidinfo(pid, flavor)` fills for a list flavor
/// (`PROC_PIDLISTFDS`): its size asked first with no buffer, then read
/// into room with some to spare, since the list may grow meanwhile.
#[cfg(target_os = "macos")]
pub(super) fn pidinfo_list(pid: u32, flavor: c_int) -> io::Result<Vec<u8>> {
    let pid_c = c_int::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: a null buffer asks for the size the list needs.
    let needed = unsafe { libc::proc_pidinfo(pid_c, flavor, 0, std::ptr::null_mut(), 0) };
    if needed < 0 {
        return Err(io::Error::last_os_error());
    }
    if needed == 0 {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    let size = usize::try_from(needed).unwrap_or(0) + 64 * 8;
    let mut buf = Vec::new();
    pidinfo(pid, flavor, size, &mut buf)?;
    Ok(buf)
}

/// The executable of `pid` (`proc_pidpath`).
#[cfg(target_os = "macos")]
pub(super) fn pidpath(pid: u32) -> io::Result<Vec<u8>> {
    let pid = c_int::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    let mut buf = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
    let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    // SAFETY: the pointer and `len` describe `buf`, which the call only
    // writes to.
    let n = unsafe { libc::proc_pidpath(pid, buf.as_mut_ptr().cast::<c_void>(), len) };
    if n <= 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(usize::try_from(n).unwrap_or(0));
    Ok(buf)
}

/// `mach_timebase_info`: the numerator and denominator that turn Mach
/// absolute time into nanoseconds. An error when the kernel does not
/// answer, or answers a denominator of 0 that would divide by zero.
#[cfg(target_os = "macos")]
pub(super) fn timebase() -> io::Result<(u32, u32)> {
    /// `mach_timebase_info_data_t` (`mach/mach_time.h`), declared here as
    /// the `libc` crate deprecated its Mach bindings.
    #[repr(C)]
    struct TimebaseInfo {
        numer: u32,
        denom: u32,
    }
    unsafe extern "C" {
        fn mach_timebase_info(info: *mut TimebaseInfo) -> c_int;
    }
    /// `KERN_SUCCESS` (`mach/kern_return.h`).
    const KERN_SUCCESS: c_int = 0;
    let mut info = TimebaseInfo { numer: 0, denom: 0 };
    // SAFETY: `info` is a live, writable structure of the layout the
    // function fills.
    let rc = unsafe { mach_timebase_info(&mut info) };
    if rc != KERN_SUCCESS {
        return Err(io::Error::other(format!(
            "mach_timebase_info returned kern_return_t {rc}"
        )));
    }
    if info.numer == 0 || info.denom == 0 {
        return Err(io::Error::other(format!(
            "mach_timebase_info answered {}/{}",
            info.numer, info.denom
        )));
    }
    Ok((info.numer, info.denom))
}

// === macOS Mach host statistics ===

#[cfg(target_os = "macos")]
unsafe extern "C" {
    /// Declared here, as the `libc` crate deprecated its Mach port calls.
    fn mach_host_self() -> libc::mach_port_t;
    fn mach_port_deallocate(task: libc::mach_port_t, name: libc::mach_port_t) -> c_int;
    static mach_task_self_: libc::mach_port_t;
}

/// A send right to the host port, released on drop.
#[cfg(target_os = "macos")]
struct HostPort(libc::mach_port_t);

#[cfg(target_os = "macos")]
impl HostPort {
    fn get() -> HostPort {
        // SAFETY: mach_host_self takes nothing and returns a port name.
        HostPort(unsafe { mach_host_self() })
    }
}

#[cfg(target_os = "macos")]
impl Drop for HostPort {
    fn drop(&mut self) {
        // SAFETY: the name is this task's send right from mach_host_self,
        // released once; mach_task_self_ is set by the runtime at start.
        unsafe { mach_port_deallocate(mach_task_self_, self.0) };
    }
}

/// A `kern_return_t` other than `KERN_SUCCESS` as an error naming `call`.
#[cfg(target_os = "macos")]
fn kern_result(call: &str, rc: c_int) -> io::Result<()> {
    if rc == 0 {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{call} returned kern_return_t {rc}"
    )))
}

/// Every CPU's `processor_cpu_load_info` (`host_processor_info` with
/// `PROCESSOR_CPU_LOAD_INFO`), as the bytes of its tick counters.
#[cfg(target_os = "macos")]
pub(super) fn processor_load_ticks() -> io::Result<Vec<u8>> {
    let host = HostPort::get();
    let mut ncpu: libc::natural_t = 0;
    let mut info: libc::processor_info_array_t = std::ptr::null_mut();
    let mut count: libc::mach_msg_type_number_t = 0;
    // SAFETY: the out-pointers are live locals; on success the kernel
    // maps `count` integers at `info`, copied and then deallocated below.
    let rc = unsafe {
        libc::host_processor_info(
            host.0,
            libc::PROCESSOR_CPU_LOAD_INFO,
            &mut ncpu,
            &mut info,
            &mut count,
        )
    };
    kern_result("host_processor_info", rc)?;
    let Some(info) = NonNull::new(info) else {
        return Ok(Vec::new());
    };
    let len = count as usize * std::mem::size_of::<libc::integer_t>();
    // SAFETY: see above: `len` bytes at `info` are the kernel's answer.
    let bytes = unsafe { std::slice::from_raw_parts(info.as_ptr().cast::<u8>(), len) }.to_vec();
    // SAFETY: the region was allocated in this task by the call above and
    // is not used after this.
    unsafe { libc::vm_deallocate(mach_task_self_, info.as_ptr() as libc::vm_address_t, len) };
    Ok(bytes)
}

/// `host_statistics64(HOST_VM_INFO64)`: the bytes of `vm_statistics64`
/// the kernel filled.
#[cfg(target_os = "macos")]
pub(super) fn vm_statistics64() -> io::Result<Vec<u8>> {
    let host = HostPort::get();
    let mut count = libc::HOST_VM_INFO64_COUNT;
    let mut buf: Vec<libc::integer_t> = vec![0; count as usize];
    // SAFETY: the buffer holds `count` integers, the room the call is told
    // of; it writes back how many it filled.
    let rc = unsafe {
        libc::host_statistics64(host.0, libc::HOST_VM_INFO64, buf.as_mut_ptr(), &mut count)
    };
    kern_result("host_statistics64", rc)?;
    buf.truncate(count as usize);
    Ok(buf.iter().flat_map(|v| v.to_ne_bytes()).collect())
}

// === Mounted file systems ===

#[cfg(not(target_os = "netbsd"))]
type FsStat = libc::statfs;
#[cfg(target_os = "netbsd")]
type FsStat = libc::statvfs;

/// `getfsstat` with `MNT_NOWAIT` (never waits on a file system), into
/// `bytes` of room at `buf`, or counting with a null `buf`.
///
/// # Safety
/// `buf` is null or points to `bytes` writable bytes.
unsafe fn fsstat(buf: *mut FsStat, bytes: usize) -> c_int {
    #[cfg(target_os = "freebsd")]
    let n = unsafe {
        libc::getfsstat(
            buf,
            libc::c_long::try_from(bytes).unwrap_or(libc::c_long::MAX),
            libc::MNT_NOWAIT,
        )
    };
    #[cfg(target_os = "openbsd")]
    let n = unsafe { libc::getfsstat(buf, bytes, libc::MNT_NOWAIT) };
    #[cfg(target_os = "netbsd")]
    let n = unsafe { libc::getvfsstat(buf, bytes, libc::MNT_NOWAIT) };
    #[cfg(target_os = "macos")]
    let n = unsafe {
        libc::getfsstat(
            buf,
            c_int::try_from(bytes).unwrap_or(c_int::MAX),
            libc::MNT_NOWAIT,
        )
    };
    n
}

fn chars(field: &[c_char]) -> String {
    let bytes: Vec<u8> = field.iter().map(|c| *c as u8).collect();
    super::parse::lossy(super::decode::until_nul(&bytes))
}

fn widen<T: Into<u64>>(flags: T) -> u64 {
    flags.into()
}

/// Every mounted file system.
pub(super) fn mounts() -> io::Result<Vec<Mount>> {
    // SAFETY: a null buffer only counts.
    let n = unsafe { fsstat(std::ptr::null_mut(), 0) };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    // Room for mounts made meanwhile.
    let mut buf: Vec<FsStat> = Vec::with_capacity(n + 8);
    let bytes = buf.capacity() * std::mem::size_of::<FsStat>();
    // SAFETY: the pointer and `bytes` describe `buf`'s allocation, which
    // the call only writes whole structures to.
    let n = unsafe { fsstat(buf.as_mut_ptr(), bytes) };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    // SAFETY: the call initialised the first `n` structures (at most the
    // capacity it was given room for).
    unsafe { buf.set_len(n.min(buf.capacity())) };
    Ok(buf
        .iter()
        .map(|f| Mount {
            device: chars(&f.f_mntfromname),
            mountpoint: chars(&f.f_mntonname),
            fstype: chars(&f.f_fstypename),
            #[cfg(not(target_os = "netbsd"))]
            flags: widen(f.f_flags),
            #[cfg(target_os = "netbsd")]
            flags: widen(f.f_flag),
        })
        .collect())
}

// === Login sessions ===

/// `getutxent(3)` walks a shared cursor: one reader at a time.
#[cfg(not(target_os = "openbsd"))]
static UTMPX: Mutex<()> = Mutex::new(());

/// Microseconds of whatever width the target's `suseconds_t` has.
#[cfg(not(target_os = "openbsd"))]
fn usec<T: Into<i64>>(v: T) -> i64 {
    v.into()
}

/// The user processes of the utmpx database (`getutxent(3)`), as psutil's
/// `users()` lists them.
#[cfg(not(target_os = "openbsd"))]
pub(super) fn sessions() -> Vec<super::system::User> {
    let _one = UTMPX
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut users = Vec::new();
    // SAFETY: setutxent, getutxent and endutxent take no arguments; the
    // lock keeps other threads of this process off the cursor, and each
    // entry is copied before the next call overwrites it.
    unsafe { libc::setutxent() };
    // SAFETY: see above.
    while let Some(entry) = NonNull::new(unsafe { libc::getutxent() }) {
        // SAFETY: a non-null entry is valid until the next call.
        let u = unsafe { entry.as_ref() };
        if u.ut_type != libc::USER_PROCESS {
            continue;
        }
        #[cfg(target_os = "netbsd")]
        let name = chars(&u.ut_name);
        #[cfg(not(target_os = "netbsd"))]
        let name = chars(&u.ut_user);
        users.push(super::system::User {
            name,
            terminal: chars(&u.ut_line),
            host: chars(&u.ut_host),
            started: super::decode::timeval_secs(u.ut_tv.tv_sec, usec(u.ut_tv.tv_usec)),
            pid: u32::try_from(u.ut_pid).ok(),
        });
    }
    // SAFETY: see above.
    unsafe { libc::endutxent() };
    users
}
