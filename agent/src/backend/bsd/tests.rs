//! The generic BSD backend driven by a fake kernel: canned process table
//! entries, per-process calls that fail as the real ones do (gone,
//! refused, mid-exec), interfaces with media words and `if_data` records.
//! What is asserted is what [`Bsd`] makes of them, on any host.

use std::{
    collections::HashMap,
    io,
    ops::ControlFlow,
    sync::{Arc, Mutex},
    time::Duration,
};

use super::{Bsd, HeldSockets, IfAddr, Kernel, Mount, ProcQueue, Sys, process_error};
use crate::backend::{
    Backend, Duplex, Error, ErrorKind, Field, FieldSet, FileKind, FilesQuery, Ids, MemoryInfo,
    NetIoCounters, OpenFile, ProcessInfo, Status, WatchMode,
    decode::{
        Family, IfDataLayout, IfFlags, Kinfo,
        fixture::Bytes,
        kevent::{NOTE_EXEC, NOTE_EXIT, NOTE_FORK, NOTE_TRACK, ProcEvent},
        media::{IFM_AVALID, MediaLayout, OPENBSD},
        openbsd,
    },
    socket::{ConnStatus, SocketKind, SocketQuery},
    system::{SystemField, SystemFields},
};

// === The fake kernel ===

/// Pids of the canned processes, by what they are.
const KERNEL_PROC: u32 = 0;
const INIT: u32 = 1;
const ZOMBIE: u32 = 10;
/// Listed in the table, gone by the time its fields are read (ESRCH).
const VANISHED: u32 = 20;
/// Another user's: its per-process calls are refused (EPERM).
const FOREIGN: u32 = 30;
/// Replacing its image: its arguments cannot be read (EBUSY).
const EXECING: u32 = 40;
/// A kernel without these calls (ENOSYS).
const OLD_KERNEL: u32 = 50;
/// Whose calls fail in a way the backend cannot explain (EIO).
const BROKEN: u32 = 60;
/// Whose second record the agent may not read (macOS's task info).
const PARTIAL: u32 = 70;

/// A process table entry with the fields every kernel fills.
fn entry(pid: u32, comm: &str, status: Status, uid: u32) -> Kinfo {
    let ids = |id| {
        Some(Ids {
            real: id,
            effective: id,
            saved: id,
        })
    };
    Kinfo {
        pid,
        ppid: if pid == INIT { 0 } else { INIT },
        status: Some(status),
        comm: comm.as_bytes().to_vec(),
        uids: ids(uid),
        gids: ids(uid),
        nice: Some(0),
        create_time: Some(1_700_000_000.0 + f64::from(pid)),
        num_threads: Some(1),
        memory_info: Some(MemoryInfo::default()),
        ..Kinfo::default()
    }
}

/// The canned process table.
fn table() -> Vec<Kinfo> {
    let mut kernel = entry(KERNEL_PROC, "kernel", Status::Sleeping, 0);
    kernel.system = true;
    let mut init = entry(INIT, "init", Status::Sleeping, 0);
    init.tdev = Some(0x100);
    // A zombie's record keeps its name and ids; its memory is gone.
    let mut zombie = entry(ZOMBIE, "defunct", Status::Zombie, 1001);
    zombie.memory_info = None;
    let mut partial = entry(PARTIAL, "sandboxed", Status::Running, 1001);
    partial.memory_info = None;
    partial.num_threads = None;
    partial.partial = Some(ErrorKind::AccessDenied);
    vec![
        kernel,
        init,
        zombie,
        entry(VANISHED, "brief", Status::Running, 0),
        entry(FOREIGN, "other", Status::Sleeping, 1001),
        entry(EXECING, "exec", Status::Running, 0),
        entry(OLD_KERNEL, "old", Status::Idle, 0),
        entry(BROKEN, "broken", Status::Stopped, 0),
        partial,
    ]
}

/// How the per-process calls of `pid` fail, if they do.
fn errno_of(pid: u32) -> Option<i32> {
    match pid {
        VANISHED => Some(libc::ESRCH),
        FOREIGN => Some(libc::EPERM),
        EXECING => Some(libc::EBUSY),
        OLD_KERNEL => Some(libc::ENOSYS),
        BROKEN => Some(libc::EIO),
        _ => None,
    }
}

/// A per-process call of `pid` answering `value`, or failing as
/// [`errno_of`] says.
fn call<T>(pid: u32, value: T) -> io::Result<T> {
    match errno_of(pid) {
        Some(errno) => Err(io::Error::from_raw_os_error(errno)),
        None => Ok(value),
    }
}

#[derive(Clone)]
struct Fake {
    table: Vec<Kinfo>,
}

impl Fake {
    fn new() -> Fake {
        Fake { table: table() }
    }
}

impl Kernel for Fake {
    const BACKEND: &'static str = "fake-sysctl";
    const OS: &'static str = "fakebsd";
    const FLAGS: IfFlags = openbsd::FLAGS;
    const MEDIA: MediaLayout = OPENBSD;
    const IF_DATA: Option<IfDataLayout> = Some(openbsd::IF_DATA);
    const MOUNT_FLAGS: &'static [(u64, &'static str)] = &[(0x8, "nosuid")];
    const TRACK: bool = true;
    const EXIT_STATUS: bool = true;
    const TCP_STATES: bool = false;

    fn link_state_duplex(link_state: u8) -> Duplex {
        openbsd::link_state_duplex(link_state)
    }

    fn os_release(&self) -> Result<String, Error> {
        Ok("FakeBSD 1.0".to_owned())
    }

    fn boot_time(&self) -> Result<f64, Error> {
        Ok(1_700_000_000.0)
    }

    fn memory_total(&self) -> Result<u64, Error> {
        Ok(1 << 30)
    }

    fn processes(&self, _fields: FieldSet) -> Result<Vec<Kinfo>, Error> {
        Ok(self.table.clone())
    }

    fn process(&self, pid: u32, _fields: FieldSet) -> Result<Option<Kinfo>, Error> {
        Ok(self.table.iter().find(|k| k.pid == pid).cloned())
    }

    fn exe(&self, pid: u32) -> io::Result<String> {
        call(pid, format!("/bin/p{pid}"))
    }

    fn cmdline(&self, pid: u32) -> io::Result<Vec<String>> {
        call(pid, vec![format!("p{pid}"), "-v".to_owned()])
    }

    fn environ(&self, pid: u32) -> io::Result<Vec<(String, String)>> {
        call(pid, vec![("HOME".to_owned(), "/".to_owned())])
    }

    fn cwd(&self, pid: u32) -> io::Result<String> {
        call(pid, "/".to_owned())
    }

    fn num_fds(&self, pid: u32) -> io::Result<u32> {
        call(pid, 3)
    }

    /// Descriptors out of order, as a kernel may list them; a zombie's
    /// and a gone process's call answers ESRCH, as does init's (a process
    /// without descriptors on macOS).
    fn open_files(
        &self,
        pid: u32,
        _query: &FilesQuery,
        _after: Option<u32>,
    ) -> Result<Vec<OpenFile>, Error> {
        let errno = match pid {
            ZOMBIE | INIT | 999 => Some(libc::ESRCH),
            pid => errno_of(pid),
        };
        if let Some(errno) = errno {
            let err = io::Error::from_raw_os_error(errno);
            return Err(process_error(pid, format!("files of {pid}"), err));
        }
        let file = |fd, kind, path: &str| OpenFile::sample(pid, fd, kind, path);
        Ok(vec![
            file(5, FileKind::File, "/var/log/messages"),
            file(1, FileKind::File, "/dev/null"),
            file(4, FileKind::Socket, ""),
            file(3, FileKind::File, "/etc/passwd"),
        ])
    }

    fn sockets(&self, pids: &[u32]) -> Result<HeldSockets, Error> {
        HeldSockets::per_process(pids.iter().copied(), |pid| {
            let errno = match pid {
                ZOMBIE => Some(libc::ESRCH),
                pid => errno_of(pid),
            };
            match errno {
                Some(errno) => Err(process_error(
                    pid,
                    format!("sockets of {pid}"),
                    io::Error::from_raw_os_error(errno),
                )),
                None => Ok(Vec::new()),
            }
        })
    }
}

// === The fake shared calls ===

/// `IFF_UP | IFF_BROADCAST | IFF_RUNNING`.
const UP: u32 = 0x1 | 0x2 | 0x40;

/// An OpenBSD active media word: Ethernet, `subtype`, with `IFM_FDX` or
/// `IFM_HDX`.
fn media_word(subtype: u64, full: bool) -> u64 {
    OPENBSD.ether | subtype | if full { OPENBSD.fdx } else { OPENBSD.hdx }
}

/// An OpenBSD `struct if_data` with `link_state`, an MTU, a baud rate in
/// bits per second, and received and sent bytes.
fn if_data(link_state: u8, mtu: u32, baudrate: u64, bytes: (u64, u64)) -> Vec<u8> {
    let layout = openbsd::IF_DATA;
    let mut b = Bytes::zeroed(layout.size);
    b.put(3, &[link_state]).u32(layout.mtu.0, mtu);
    b.u64(layout.counters[0], baudrate);
    b.u64(layout.counters[5], bytes.0);
    b.u64(layout.counters[6], bytes.1);
    b.0
}

/// The hardware address of every fake interface.
const MAC: &[u8] = &[0x02, 0, 0, 0xaa, 0xbb, 0xcc];

/// The `AF_LINK` entry of `name` (a 3-letter name).
fn link(name: &str, flags: u32, data: Vec<u8>) -> IfAddr {
    IfAddr {
        name: name.to_owned(),
        flags,
        family: Some(Family::Link),
        // sockaddr_dl: length, AF_LINK, index (2 bytes), type (ether),
        // name, address and selector lengths, the name, the address.
        addr: Some(
            [&[20, 18, 1, 0, 6, 3, 6, 0], name.as_bytes(), MAC]
                .concat()
                .into_iter()
                .chain([0; 3])
                .collect(),
        ),
        data: Some(data),
        ..IfAddr::default()
    }
}

/// An IPv4 entry of `name`: `sockaddr_in`s with their `sa_len` first.
fn inet(name: &str, flags: u32, addr: [u8; 4]) -> IfAddr {
    let sin = |a: [u8; 4]| {
        let mut sa = vec![16, 2, 0, 0];
        sa.extend(a);
        sa.extend([0; 8]);
        sa
    };
    IfAddr {
        name: name.to_owned(),
        flags,
        family: Some(Family::Inet),
        addr: Some(sin(addr)),
        netmask: Some(sin([255, 255, 255, 0])),
        ..IfAddr::default()
    }
}

/// What a fake call records, shared with the test that reads it.
type Log<T> = Arc<Mutex<Vec<T>>>;

#[derive(Default)]
struct FakeSys {
    /// The media words of the interfaces that answer `SIOCGIFMEDIA`.
    media: HashMap<&'static str, (u64, u64)>,
    interfaces: Vec<IfAddr>,
    /// Signals sent, and pids whose kill(2) fails with an errno.
    kills: Log<(u32, i32)>,
    kill_errno: HashMap<u32, i32>,
    /// Registrations on the process queue; `None` when kqueue(2) fails.
    watches: Option<Log<(u32, u32)>>,
}

impl Sys for FakeSys {
    fn loadavg(&self) -> io::Result<[f64; 3]> {
        Ok([0.5, 0.25, 0.125])
    }

    fn online_cpus(&self) -> Option<u64> {
        Some(4)
    }

    fn devname(&self, dev: u64) -> Option<Vec<u8>> {
        (dev == 0x100).then(|| b"ttyp0".to_vec())
    }

    fn media(&self, name: &str) -> io::Result<(u64, u64)> {
        self.media
            .get(name)
            .copied()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOTTY))
    }

    fn interface_addresses(&self, data_len: usize) -> io::Result<Vec<IfAddr>> {
        assert_eq!(data_len, openbsd::IF_DATA.size);
        Ok(self.interfaces.clone())
    }

    fn kill(&self, pid: u32, signal: i32) -> io::Result<()> {
        if let Some(errno) = self.kill_errno.get(&pid) {
            return Err(io::Error::from_raw_os_error(*errno));
        }
        self.kills
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((pid, signal));
        Ok(())
    }

    fn mounts(&self) -> io::Result<Vec<Mount>> {
        let mount = |device: &str, mountpoint: &str, fstype: &str, flags| Mount {
            device: device.to_owned(),
            mountpoint: mountpoint.to_owned(),
            fstype: fstype.to_owned(),
            flags,
        };
        Ok(vec![
            mount("/dev/sd0a", "/", "ffs", 0x1),
            mount("/dev/sd0d", "/tmp", "ffs", 0x8),
            mount("mfs:123", "/dev", "mfs", 0),
        ])
    }

    fn process_queue(&self) -> io::Result<Box<dyn ProcQueue>> {
        match &self.watches {
            Some(watches) => Ok(Box::new(FakeQueue(Arc::clone(watches)))),
            None => Err(io::Error::from_raw_os_error(libc::ENOSYS)),
        }
    }
}

/// A process queue that records what it is asked to watch, refuses the
/// processes that are gone, and has no events.
struct FakeQueue(Log<(u32, u32)>);

impl ProcQueue for FakeQueue {
    fn watch(&self, pid: u32, fflags: u32) -> io::Result<()> {
        if pid == VANISHED {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((pid, fflags));
        Ok(())
    }

    fn wait(&mut self, _timeout: Duration, _out: &mut Vec<ProcEvent>) -> io::Result<()> {
        Ok(())
    }
}

fn backend(sys: FakeSys) -> Bsd<Fake> {
    Bsd::with_sys(Fake::new(), Arc::new(sys))
}

fn fields(list: &[Field]) -> FieldSet {
    list.iter().copied().collect()
}

/// The field errors of `p`, sorted.
fn errors(p: &ProcessInfo) -> Vec<(Field, ErrorKind)> {
    let mut errors = p.field_errors.clone();
    errors.sort_by_key(|(field, _)| *field);
    errors
}

const CALLED: [Field; 5] = [
    Field::Exe,
    Field::Cmdline,
    Field::Environ,
    Field::Cwd,
    Field::NumFds,
];

// === Processes ===

#[test]
fn a_scan_skips_the_process_that_vanished_and_keeps_the_rest() {
    let bsd = backend(FakeSys::default());
    let mut seen = Vec::new();
    let scan = bsd.for_each_process(fields(&[Field::Name, Field::Cmdline]), &mut |p| {
        seen.push(p.pid);
        ControlFlow::Continue(())
    });
    // BROKEN's EIO is no property of one process: the scan fails with it.
    match scan {
        Err(Error::Io { path, .. }) => {
            assert_eq!(
                path.to_str(),
                Some("reading Cmdline of pid 60 (fake-sysctl)")
            );
        }
        other => panic!("expected the I/O error of pid 60, got {other:?}"),
    }
    assert_eq!(
        seen,
        [KERNEL_PROC, INIT, ZOMBIE, FOREIGN, EXECING, OLD_KERNEL]
    );
}

#[test]
fn a_scan_stops_when_the_visitor_breaks() {
    let bsd = backend(FakeSys::default());
    let mut seen = Vec::new();
    bsd.for_each_process(fields(&[Field::Name]), &mut |p| {
        seen.push(p.pid);
        ControlFlow::Break(())
    })
    .unwrap();
    assert_eq!(seen, [KERNEL_PROC]);
}

#[test]
fn a_process_has_the_fields_asked_for_and_no_others() {
    let bsd = backend(FakeSys::default());
    let p = bsd
        .process(
            INIT,
            fields(&[
                Field::Name,
                Field::Ppid,
                Field::Status,
                Field::Username,
                Field::Terminal,
                Field::Exe,
                Field::Cmdline,
            ]),
        )
        .unwrap();
    assert_eq!(p.pid, INIT);
    assert_eq!(p.name.as_deref(), Some("init"));
    assert_eq!(p.ppid, Some(0));
    assert_eq!(p.status, Some(Status::Sleeping));
    assert_eq!(p.username.as_deref(), Some("root"));
    assert_eq!(p.terminal, Some(Some("/dev/ttyp0".to_owned())));
    assert_eq!(p.exe.as_deref(), Some("/bin/p1"));
    assert_eq!(p.cmdline, Some(vec!["p1".to_owned(), "-v".to_owned()]));
    assert_eq!(errors(&p), []);
    // Not asked for: not read.
    assert_eq!((p.cwd, p.environ, p.num_fds), (None, None, None));
    assert_eq!((p.uids, p.memory_info, p.create_time), (None, None, None));
}

#[test]
fn a_field_the_kernel_cannot_supply_is_unsupported() {
    let bsd = backend(FakeSys::default());
    let p = bsd
        .process(INIT, fields(&[Field::IoCounters, Field::Nice]))
        .unwrap();
    assert_eq!(p.nice, Some(0));
    assert_eq!(p.io_counters, None);
    assert_eq!(errors(&p), [(Field::IoCounters, ErrorKind::Unsupported)]);
}

#[test]
fn a_process_without_a_terminal_has_none() {
    let bsd = backend(FakeSys::default());
    let p = bsd.process(FOREIGN, fields(&[Field::Terminal])).unwrap();
    assert_eq!(p.terminal, Some(None));
}

#[test]
fn a_zombie_keeps_its_record_and_has_no_image() {
    let bsd = backend(FakeSys::default());
    let mut wanted = fields(&CALLED);
    for field in [Field::Name, Field::Status, Field::Uids, Field::MemoryInfo] {
        wanted.insert(field);
    }
    let p = bsd.process(ZOMBIE, wanted).unwrap();
    assert_eq!(p.status, Some(Status::Zombie));
    assert_eq!(p.name.as_deref(), Some("defunct"));
    assert_eq!(p.uids.map(|ids| ids.real), Some(1001));
    // An empty command line, as psutil and Linux answer; the rest of
    // what a zombie no longer has is a ZOMBIE field error.
    assert_eq!(p.cmdline, Some(Vec::new()));
    assert_eq!(
        (&p.exe, &p.cwd, &p.environ, p.num_fds),
        (&None, &None, &None, None)
    );
    let mut expected = [
        Field::Exe,
        Field::Environ,
        Field::Cwd,
        Field::NumFds,
        Field::MemoryInfo,
    ]
    .map(|field| (field, ErrorKind::ZombieProcess));
    expected.sort_by_key(|(field, _)| *field);
    assert_eq!(errors(&p), expected);
}

#[test]
fn a_kernel_process_has_empty_image_fields_and_reads_the_rest() {
    let bsd = backend(FakeSys::default());
    let p = bsd.process(KERNEL_PROC, fields(&CALLED)).unwrap();
    assert_eq!(p.exe.as_deref(), Some(""));
    assert_eq!(p.cmdline, Some(Vec::new()));
    assert_eq!(p.environ, Some(Vec::new()));
    assert_eq!(p.cwd.as_deref(), Some("/"));
    assert_eq!(p.num_fds, Some(3));
    assert_eq!(errors(&p), []);
}

#[test]
fn a_process_gone_while_being_read_is_no_such_process() {
    let bsd = backend(FakeSys::default());
    // Its table entry alone is still readable.
    let p = bsd.process(VANISHED, fields(&[Field::Name])).unwrap();
    assert_eq!(p.name.as_deref(), Some("brief"));
    assert!(matches!(
        bsd.process(VANISHED, fields(&[Field::Name, Field::Cwd])),
        Err(Error::NoSuchProcess { pid: VANISHED })
    ));
    assert!(matches!(
        bsd.process(999, fields(&[Field::Name])),
        Err(Error::NoSuchProcess { pid: 999 })
    ));
}

#[test]
fn refused_calls_are_access_denied_fields_of_a_process_still_listed() {
    let bsd = backend(FakeSys::default());
    let p = bsd
        .process(FOREIGN, fields(&[Field::Name, Field::Cwd, Field::Exe]))
        .unwrap();
    assert_eq!(p.name.as_deref(), Some("other"));
    assert_eq!(
        errors(&p),
        [
            (Field::Exe, ErrorKind::AccessDenied),
            (Field::Cwd, ErrorKind::AccessDenied),
        ]
    );
}

#[test]
fn arguments_of_a_process_replacing_its_image_are_gone() {
    let bsd = backend(FakeSys::default());
    let p = bsd.process(EXECING, fields(&[Field::Cmdline])).unwrap();
    assert_eq!(p.cmdline, None);
    assert_eq!(errors(&p), [(Field::Cmdline, ErrorKind::NoSuchProcess)]);
}

#[test]
fn calls_the_kernel_lacks_are_unsupported_fields() {
    let bsd = backend(FakeSys::default());
    let p = bsd
        .process(OLD_KERNEL, fields(&[Field::Environ, Field::Status]))
        .unwrap();
    assert_eq!(p.status, Some(Status::Idle));
    assert_eq!(errors(&p), [(Field::Environ, ErrorKind::Unsupported)]);
}

#[test]
fn an_unexplained_failure_is_an_error_naming_the_call() {
    let bsd = backend(FakeSys::default());
    match bsd.process(BROKEN, fields(&[Field::NumFds])) {
        Err(Error::Io { path, source }) => {
            assert_eq!(
                path.to_str(),
                Some("reading NumFds of pid 60 (fake-sysctl)")
            );
            assert_eq!(source.raw_os_error(), Some(libc::EIO));
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn fields_of_an_unreadable_second_record_carry_its_error() {
    let bsd = backend(FakeSys::default());
    let p = bsd
        .process(
            PARTIAL,
            fields(&[Field::Name, Field::MemoryInfo, Field::NumThreads]),
        )
        .unwrap();
    assert_eq!(p.name.as_deref(), Some("sandboxed"));
    assert_eq!(
        errors(&p),
        [
            (Field::NumThreads, ErrorKind::AccessDenied),
            (Field::MemoryInfo, ErrorKind::AccessDenied),
        ]
    );
}

#[test]
fn pid_exists_counts_zombies() {
    let bsd = backend(FakeSys::default());
    assert!(bsd.pid_exists(ZOMBIE).unwrap());
    assert!(bsd.pid_exists(INIT).unwrap());
    assert!(!bsd.pid_exists(999).unwrap());
}

// === Signals ===

/// A backend whose fake kill(2) records the signals in the vector returned.
fn recording_kills() -> (Bsd<Fake>, Log<(u32, i32)>) {
    let kills = Arc::new(Mutex::new(Vec::new()));
    let sys = FakeSys {
        kills: Arc::clone(&kills),
        ..FakeSys::default()
    };
    (backend(sys), kills)
}

fn sent(kills: &Mutex<Vec<(u32, i32)>>) -> Vec<(u32, i32)> {
    kills.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

#[test]
fn a_signal_reaches_a_live_process_started_when_expected() {
    let (bsd, kills) = recording_kills();
    bsd.signal(FOREIGN, 15, Some(1_700_000_030.0)).unwrap();
    bsd.signal(INIT, 0, None).unwrap();
    assert_eq!(sent(&kills), [(FOREIGN, 15), (INIT, 0)]);
}

#[test]
fn a_signal_is_refused_to_a_zombie_and_to_a_reused_pid() {
    let (bsd, kills) = recording_kills();
    assert!(matches!(
        bsd.signal(ZOMBIE, 9, None),
        Err(Error::ZombieProcess { pid: ZOMBIE, .. })
    ));
    assert!(matches!(
        bsd.signal(FOREIGN, 9, Some(1_600_000_000.0)),
        Err(Error::PidReused { .. })
    ));
    assert!(matches!(
        bsd.signal(999, 9, None),
        Err(Error::NoSuchProcess { pid: 999 })
    ));
    assert_eq!(sent(&kills), []);
}

#[test]
fn a_failed_kill_says_why() {
    let sys = FakeSys {
        kill_errno: HashMap::from([(FOREIGN, libc::EPERM), (INIT, libc::ESRCH)]),
        ..FakeSys::default()
    };
    let bsd = backend(sys);
    match bsd.signal(FOREIGN, 15, None) {
        Err(Error::AccessDenied { pid, path }) => {
            assert_eq!(pid, Some(FOREIGN));
            assert_eq!(path.to_str(), Some("signal 15 to pid 30"));
        }
        other => panic!("expected ACCESS_DENIED, got {other:?}"),
    }
    assert!(matches!(
        bsd.signal(INIT, 15, None),
        Err(Error::NoSuchProcess { pid: INIT })
    ));
}

// === Descriptors and sockets ===

#[test]
fn open_files_are_filtered_and_ordered_by_descriptor() {
    let bsd = backend(FakeSys::default());
    let mut fds = Vec::new();
    bsd.open_files(KERNEL_PROC, &FilesQuery::default(), Some(1), &mut |f| {
        fds.push((f.fd, f.path));
        ControlFlow::Continue(())
    })
    .unwrap();
    // Regular files only, after descriptor 1, in order.
    assert_eq!(
        fds,
        [
            (3, "/etc/passwd".to_owned()),
            (5, "/var/log/messages".to_owned())
        ]
    );
}

#[test]
fn open_files_of_a_process_the_kernel_calls_gone_are_refined() {
    let bsd = backend(FakeSys::default());
    let mut none = |_: OpenFile| -> ControlFlow<()> { panic!("no file expected") };
    let query = FilesQuery::default();
    // Still listed and a zombie: ZOMBIE, with what the table says of it.
    match bsd.open_files(ZOMBIE, &query, None, &mut none) {
        Err(Error::ZombieProcess { pid, ppid, name }) => {
            assert_eq!(
                (pid, ppid, name.as_deref()),
                (ZOMBIE, Some(INIT), Some("defunct"))
            );
        }
        other => panic!("expected ZOMBIE, got {other:?}"),
    }
    // Still listed and alive: a process without descriptors.
    bsd.open_files(INIT, &query, None, &mut none).unwrap();
    // Not listed: gone.
    assert!(matches!(
        bsd.open_files(999, &query, None, &mut none),
        Err(Error::NoSuchProcess { pid: 999 })
    ));
    assert!(matches!(
        bsd.open_files(FOREIGN, &query, None, &mut none),
        Err(Error::AccessDenied {
            pid: Some(FOREIGN),
            ..
        })
    ));
}

#[test]
fn sockets_of_unreadable_processes_are_process_errors() {
    let bsd = backend(FakeSys::default());
    let query = SocketQuery {
        pids: vec![INIT, ZOMBIE, VANISHED, FOREIGN, BROKEN],
        ..SocketQuery::default()
    };
    let listing = bsd.connections(&query).unwrap();
    assert!(listing.sockets.is_empty());
    // Gone and zombie processes hold nothing; a refusal and an
    // unexplained failure are the process's errors.
    assert_eq!(
        listing.process_errors,
        [
            (FOREIGN, ErrorKind::AccessDenied),
            (BROKEN, ErrorKind::AccessDenied)
        ]
    );
}

#[test]
fn kernels_without_tcp_states_refuse_a_tcp_state_filter() {
    let bsd = backend(FakeSys::default());
    let tcp = SocketQuery {
        kind: SocketKind::Tcp,
        statuses: vec![ConnStatus::Established],
        ..SocketQuery::default()
    };
    assert!(matches!(
        bsd.connections(&tcp),
        Err(Error::Unsupported { .. })
    ));
    let udp = SocketQuery {
        kind: SocketKind::Udp,
        ..tcp
    };
    bsd.connections(&udp).unwrap();
}

// === Interfaces ===

fn interfaces() -> FakeSys {
    FakeSys {
        media: HashMap::from([
            // 1000baseT full duplex; the link state says half, and the
            // media word wins.
            ("em0", (IFM_AVALID | 0x2, media_word(16, true))),
            // 100baseTX half duplex.
            ("em1", (IFM_AVALID | 0x2, media_word(6, false))),
            // A word without IFM_AVALID says nothing.
            ("em3", (0, media_word(16, true))),
        ]),
        interfaces: vec![
            link("em0", UP, if_data(5, 1500, 0, (1000, 2000))),
            inet("em0", UP, [192, 0, 2, 1]),
            link("em1", UP, if_data(0, 1500, 0, (0, 0))),
            // No SIOCGIFMEDIA: the link state and baud rate answer.
            link("em2", UP, if_data(6, 9000, 100_000_000, (0, 0))),
            link("em3", 0, if_data(4, 1500, 0, (0, 0))),
            link("lo0", 0x1 | 0x8, if_data(0, 32768, 0, (5, 5))),
            inet("lo0", 0x1 | 0x8, [127, 0, 0, 1]),
        ],
        ..FakeSys::default()
    }
}

#[test]
fn interface_duplex_comes_from_the_media_word_then_the_link_state() {
    let bsd = backend(interfaces());
    let nics = bsd.net_interfaces().unwrap();
    let names: Vec<&str> = nics.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["em0", "em1", "em2", "em3", "lo0"]);
    let link: Vec<(bool, Duplex, u32, u32)> = nics
        .iter()
        .map(|n| {
            let s = n.stats.as_ref().expect("stats");
            (s.isup, s.duplex, s.speed, s.mtu)
        })
        .collect();
    assert_eq!(
        link,
        [
            (true, Duplex::Full, 1000, 1500),
            (true, Duplex::Half, 100, 1500),
            (true, Duplex::Full, 100, 9000),
            (false, Duplex::Unknown, 1000, 1500),
            (true, Duplex::Unknown, 0, 32768),
        ]
    );
}

#[test]
fn interfaces_carry_their_addresses_counters_and_flags() {
    let bsd = backend(interfaces());
    let nics = bsd.net_interfaces().unwrap();
    let em0 = &nics[0];
    let addresses: Vec<(&str, Option<&str>)> = em0
        .addresses
        .iter()
        .map(|a| (a.address.as_str(), a.netmask.as_deref()))
        .collect();
    assert_eq!(
        addresses,
        [
            ("02:00:00:aa:bb:cc", None),
            ("192.0.2.1", Some("255.255.255.0"))
        ]
    );
    assert_eq!(
        em0.io_counters,
        Some(NetIoCounters {
            bytes_recv: 1000,
            bytes_sent: 2000,
            ..NetIoCounters::default()
        })
    );
    assert_eq!(
        em0.stats.as_ref().map(|s| s.flags.as_str()),
        Some("up,broadcast,running")
    );
}

// === Host facts and mounts ===

#[test]
fn the_system_figures_are_the_kernels_and_the_shared_ones() {
    let bsd = backend(FakeSys::default());
    let asked: SystemFields = [
        SystemField::Loadavg,
        SystemField::CpuCount,
        SystemField::BootTime,
        SystemField::CpuTimes,
    ]
    .into_iter()
    .collect();
    let info = bsd.system(asked, None);
    let load = info.loadavg.expect("load averages");
    assert_eq!((load.load1, load.load5, load.load15), (0.5, 0.25, 0.125));
    let count = info.cpu_count.expect("CPU count");
    assert_eq!((count.logical, count.physical), (4, None));
    assert_eq!(info.boot_time, Some(1_700_000_000.0));
    let unsupported: Vec<(SystemField, ErrorKind)> = info
        .field_errors
        .iter()
        .map(|(field, kind, _)| (*field, *kind))
        .collect();
    assert_eq!(
        unsupported,
        [(SystemField::CpuTimes, ErrorKind::Unsupported)]
    );
}

#[test]
fn partitions_name_read_only_and_the_kernels_flags() {
    let bsd = backend(FakeSys::default());
    let physical: Vec<(String, String)> = bsd
        .disk_partitions(false)
        .unwrap()
        .into_iter()
        .map(|p| (p.mountpoint, p.opts))
        .collect();
    assert_eq!(
        physical,
        [
            ("/".to_owned(), "ro".to_owned()),
            ("/tmp".to_owned(), "rw,nosuid".to_owned())
        ]
    );
    assert_eq!(bsd.disk_partitions(true).unwrap().len(), 3);
}

// === Events ===

#[test]
fn kernel_events_watch_every_process_there_is() {
    let watches = Arc::new(Mutex::new(Vec::new()));
    let bsd = backend(FakeSys {
        watches: Some(Arc::clone(&watches)),
        ..FakeSys::default()
    });
    let source = bsd
        .events(WatchMode::Kernel, Duration::from_millis(10))
        .unwrap();
    assert_eq!(source.mode(), WatchMode::Kernel);
    let watched = watches.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let fflags = NOTE_EXIT | NOTE_FORK | NOTE_EXEC | NOTE_TRACK;
    let expected: Vec<(u32, u32)> = table()
        .iter()
        .map(|k| k.pid)
        .filter(|pid| *pid != VANISHED)
        .map(|pid| (pid, fflags))
        .collect();
    assert_eq!(watched, expected);
}

#[test]
fn without_kqueue_auto_polls_and_kernel_fails() {
    let bsd = backend(FakeSys::default());
    let auto = bsd
        .events(WatchMode::Auto, Duration::from_millis(10))
        .unwrap();
    assert_eq!(auto.mode(), WatchMode::Poll);
    assert!(matches!(
        bsd.events(WatchMode::Kernel, Duration::from_millis(10)),
        Err(Error::Io { .. })
    ));
}
