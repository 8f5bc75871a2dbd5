//! The Linux backend on this host's real /proc and /sys, in process: this
//! process, its children (a zombie among them), the loopback interface,
//! the system figures and open files as the kernel has them now. The
//! backend's unit tests (agent/src/backend/linux) read only the fixture
//! trees, so they pass on any machine; these need a real Linux host.

use std::{
    collections::BTreeMap,
    io::Read,
    ops::ControlFlow,
    os::{fd::AsRawFd, unix::process::CommandExt},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use hostscope_agent::backend::{
    AddressFamily, Backend, Error, ErrorKind, Field, FieldSet, FileKind, FilesQuery, OpenFile,
    ProcessInfo, Status, SystemField, SystemFields, linux::Linux,
};
use hostscope_integration::{child::ChildGroup, proc_state, skip, wait_for};

/// How long a child may take to reach the state a test waits for.
const LIMIT: Duration = Duration::from_secs(30);

/// The backend over this host's /proc and /sys.
fn real() -> Linux {
    Linux::with_roots("/proc".into(), "/sys".into()).unwrap()
}

/// The agent's fixture tree of a Linux host (see its README).
fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../agent/tests/fixtures/linux")
}

/// Every process `backend` lists, with `fields`, by pid.
fn list(backend: &Linux, fields: FieldSet) -> BTreeMap<u32, ProcessInfo> {
    let mut all = BTreeMap::new();
    backend
        .for_each_process(fields, &mut |p| {
            all.insert(p.pid, p);
            ControlFlow::Continue(())
        })
        .unwrap();
    all
}

/// Waits until `pid` is a zombie, reading its stat directly.
fn wait_for_zombie(pid: u32) {
    wait_for(LIMIT, || proc_state(pid) == Some('Z'));
}

/// The system figures that are read rather than measured over an interval.
fn read_figures() -> SystemFields {
    SystemFields::all()
        .iter()
        .filter(|f| !f.is_measured())
        .collect()
}

/// The open files of `pid` that `query` selects, after the descriptor
/// `after`.
fn files(
    backend: &Linux,
    pid: u32,
    query: &FilesQuery,
    after: Option<u32>,
) -> Result<Vec<OpenFile>, Error> {
    let mut all = Vec::new();
    backend.open_files(pid, query, after, &mut |f| {
        all.push(f);
        ControlFlow::Continue(())
    })?;
    Ok(all)
}

// === processes ===

#[test]
fn real_listing_has_this_process() {
    let me = std::process::id();
    let all = list(&real(), Field::portable());
    let p = all.get(&me).unwrap();
    assert_eq!(p.ppid, Some(std::os::unix::process::parent_id()));
    let args: Vec<String> = std::env::args().collect();
    assert_eq!(p.cmdline.as_ref(), Some(&args));
    // The test binary's name is longer than 15 bytes: psutil's widening
    // gives the whole basename of argv[0].
    let base = Path::new(&args[0]).file_name().unwrap().to_string_lossy();
    assert_eq!(p.name.as_deref(), Some(base.as_ref()));
    let exe = std::env::current_exe().unwrap();
    assert_eq!(p.exe.as_deref(), exe.to_str());
    // The main thread waits for the test threads: sleeping, not running.
    assert!(p.status.is_some());
    assert!(p.num_threads.unwrap() >= 1);
    assert!(p.memory_info.unwrap().rss > 0);
    assert!(p.num_fds.unwrap() >= 3);
    assert_eq!(p.field_errors, vec![]);
    assert!(all.len() > 1);
}

#[test]
fn real_zombie() {
    // A child that has exited and is not yet waited for is a zombie.
    let mut child = ChildGroup::spawn(&mut Command::new("true")).expect("spawn true");
    let pid = child.id();
    wait_for_zombie(pid);
    let backend = real();

    let p = backend.process(pid, Field::portable()).unwrap();
    assert_eq!(p.status, Some(Status::Zombie));
    assert_eq!(p.ppid, Some(std::process::id()));
    assert_eq!(p.cmdline, Some(vec![]));
    for field in [Field::Exe, Field::Cwd, Field::Environ] {
        assert!(
            p.field_errors.contains(&(field, ErrorKind::ZombieProcess)),
            "{field:?}: {:?}",
            p.field_errors
        );
    }
    // Its I/O context is gone: ioprio_get(2) answers the kernel's
    // default, not the process's own priority.
    let p = backend
        .process(pid, [Field::Ionice].into_iter().collect())
        .unwrap();
    assert_eq!(p.ionice, None);
    assert_eq!(
        p.field_errors,
        vec![(Field::Ionice, ErrorKind::ZombieProcess)]
    );
    assert!(backend.pid_exists(pid).unwrap());
    let listed = list(&backend, [Field::Status].into_iter().collect());
    assert_eq!(
        listed.get(&pid).and_then(|p| p.status),
        Some(Status::Zombie)
    );

    child.wait(LIMIT);
    assert!(matches!(
        backend.process(pid, Field::portable()),
        Err(Error::NoSuchProcess { .. })
    ));
}

/// Signals go to the very process checked: refused for an unnamed
/// signal, a zombie, a stale start time and pid 0, delivered otherwise.
#[test]
fn real_signal() {
    const SIGTERM: i32 = 15;
    let backend = real();
    let mut child = ChildGroup::spawn(Command::new("sleep").arg("600")).expect("spawn sleep");
    let pid = child.id();
    let created = backend
        .process(pid, [Field::CreateTime].into_iter().collect())
        .unwrap()
        .create_time
        .unwrap();

    // SIGRTMIN+6 would end `sleep` if it were sent.
    let err = backend.signal(pid, 40, None).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    let err = backend
        .signal(pid, SIGTERM, Some(created - 100.0))
        .unwrap_err();
    assert!(matches!(err, Error::PidReused { .. }), "{err}");
    // Pid 0 is no process (kill(2) would read it as this process group).
    let err = backend.signal(0, SIGTERM, None).unwrap_err();
    assert!(matches!(err, Error::NoSuchProcess { pid: 0 }), "{err}");
    assert_eq!(child.try_wait().unwrap(), None, "refusals sent nothing");

    backend.signal(pid, SIGTERM, Some(created)).unwrap();
    wait_for_zombie(pid);
    let err = backend.signal(pid, SIGTERM, None).unwrap_err();
    assert!(
        matches!(err, Error::ZombieProcess { ppid: Some(ppid), .. } if ppid == std::process::id()),
        "{err}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(child.wait(LIMIT).signal(), Some(SIGTERM));
    let err = backend.signal(pid, SIGTERM, None).unwrap_err();
    assert!(matches!(err, Error::NoSuchProcess { .. }), "{err}");
}

#[test]
fn real_pid_exists_is_false_for_threads() {
    let backend = real();
    assert!(backend.pid_exists(std::process::id()).unwrap());
    // The test harness runs this test on a thread other than the main one.
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|link| link.file_name()?.to_str()?.parse::<u32>().ok())
        .unwrap();
    if tid != std::process::id() {
        assert!(!backend.pid_exists(tid).unwrap());
    }
}

#[test]
fn real_network_interfaces() {
    let ifs = real().net_interfaces().unwrap();
    let lo = ifs.iter().find(|i| i.name == "lo").unwrap();
    let of = |family| lo.addresses.iter().find(|a| a.family == family).unwrap();
    let v4 = of(AddressFamily::Inet);
    assert_eq!(v4.address, "127.0.0.1");
    assert_eq!(v4.netmask.as_deref(), Some("255.0.0.0"));
    assert_eq!(of(AddressFamily::Link).address, "00:00:00:00:00:00");
    let stats = lo.stats.as_ref().unwrap();
    assert!(stats.isup);
    assert!(
        stats.flags.starts_with("up,loopback,running"),
        "{}",
        stats.flags
    );
    let mtu = std::fs::read_to_string("/sys/class/net/lo/mtu").unwrap();
    assert_eq!(stats.mtu.to_string(), mtu.trim());
    assert!(lo.io_counters.is_some());
}

/// Whether the test runs as root, from this process's own status.
fn effective_uid(backend: &Linux) -> u32 {
    let uids: FieldSet = [Field::Uids].into_iter().collect();
    backend
        .process(std::process::id(), uids)
        .unwrap()
        .uids
        .unwrap()
        .effective
}

const DENIED_CHILD: &str = "HOSTSCOPE_TEST_DENIED_CHILD";

/// Root reads every process, so the test re-runs itself as nobody (uid
/// 65534) and, there, reads another user's process (pid 1) and its own
/// zombie child.
#[test]
fn real_access_denied_for_another_users_process() {
    let backend = real();
    let me = effective_uid(&backend);
    let init = backend
        .process(1, [Field::Uids].into_iter().collect())
        .unwrap();
    if me != 0 {
        if init.uids.map(|ids| ids.real) == Some(me) {
            skip!("pid 1 runs as this test's user, so nothing is denied");
        }
        let asked: FieldSet = [
            Field::Exe,
            Field::Cwd,
            Field::Environ,
            Field::NumFds,
            Field::IoCounters,
        ]
        .into_iter()
        .chain([Field::Name])
        .collect();
        let p = backend.process(1, asked).unwrap();
        for field in asked.iter().filter(|f| *f != Field::Name) {
            assert!(
                p.field_errors.contains(&(field, ErrorKind::AccessDenied)),
                "{field:?}: {:?}",
                p.field_errors
            );
        }
        assert!(p.name.is_some(), "stat is world-readable");
        return;
    }
    assert!(
        std::env::var_os(DENIED_CHILD).is_none(),
        "the child still runs as root"
    );
    let exe = std::env::current_exe().unwrap();
    // The zombie test too: without root, a zombie's io, fd and environ
    // fail with EACCES, and must still be reported as zombie errors.
    let tests = [
        "backend_live::real_access_denied_for_another_users_process",
        "backend_live::real_zombie",
    ];
    let output = Command::new(&exe)
        .args(tests)
        .args(["--exact", "--nocapture", "--test-threads=1"])
        .env(DENIED_CHILD, "1")
        .uid(65534)
        .gid(65534)
        .output();
    let output = match output {
        Ok(output) => output,
        Err(err) => skip!("cannot run {} as nobody: {err}", exe.display()),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("2 passed"),
        "the child did not run both tests:\n{stdout}"
    );
}

#[test]
fn live_process_ionice_and_threads() {
    let backend = real();
    let fields = [Field::Ionice, Field::Threads, Field::MemoryFullInfo]
        .into_iter()
        .collect();
    let p = backend.process(std::process::id(), fields).unwrap();
    assert_eq!(p.field_errors, vec![]);
    assert!(p.ionice.is_some());
    assert!(
        p.threads
            .unwrap()
            .iter()
            .any(|t| t.id == std::process::id())
    );
    assert!(p.memory_full_info.unwrap().uss > 0);
}

// === system figures ===

#[test]
fn without_diskstats_the_live_sys_block_stat_files_answer() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("proc")).unwrap();
    std::fs::copy(
        fixture_dir().join("proc/stat"),
        dir.path().join("proc/stat"),
    )
    .unwrap();
    let linux = Linux::with_roots(dir.path().join("proc"), "/sys".into()).unwrap();
    let disks = linux.disk_io_counters().unwrap();
    let whole: Vec<&str> = disks
        .iter()
        .filter(|d| d.whole_disk)
        .map(|d| d.name.as_str())
        .collect();
    let mut listed: Vec<String> = std::fs::read_dir("/sys/block")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    listed.sort();
    assert_eq!(whole, listed);
    assert!(disks.iter().all(|d| d.busy_time.is_some()));
}

#[test]
fn the_live_host_reads_every_figure_or_says_why() {
    let linux = real();
    let info = linux.system(read_figures(), None);
    // Every figure is either read or named with a reason.
    for field in read_figures().iter() {
        let named = info.field_errors.iter().any(|(f, _, _)| *f == field);
        let read = match field {
            SystemField::CpuTimes => info.cpu_times.is_some(),
            SystemField::CpuStats => info.cpu_stats.is_some(),
            SystemField::CpuFreq => info.cpu_freq.is_some(),
            SystemField::CpuCount => info.cpu_count.is_some(),
            SystemField::Loadavg => info.loadavg.is_some(),
            SystemField::VirtualMemory => info.virtual_memory.is_some(),
            SystemField::SwapMemory => info.swap_memory.is_some(),
            SystemField::Users => info.users.is_some(),
            SystemField::BootTime => info.boot_time.is_some(),
            SystemField::SensorsTemperatures => info.temperatures.is_some(),
            SystemField::SensorsFans => info.fans.is_some(),
            SystemField::SensorsBattery => info.battery.is_some(),
            SystemField::Cgroup => info.cgroup.is_some(),
            _ => false,
        };
        assert!(
            read != named,
            "{field:?}: read {read}, errors {:?}",
            info.field_errors
        );
    }
    assert!(info.cpu_times.is_some() && info.virtual_memory.is_some());
    assert_eq!(linux.host().unwrap().system_fields, SystemFields::all());
}

// === open files ===

/// This very process, through the live /proc: a file read from, one
/// appended to, one deleted while open, a pipe and a socket pair.
#[test]
fn live_descriptors_of_this_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("read.txt"), "hello world").unwrap();
    let mut read = std::fs::File::open(path("read.txt")).unwrap();
    let mut five = [0u8; 5];
    read.read_exact(&mut five).unwrap();
    let append = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path("append.log"))
        .unwrap();
    let gone = std::fs::File::create(path("gone.log")).unwrap();
    std::fs::remove_file(path("gone.log")).unwrap();
    let (pipe_r, _pipe_w) = rustix::pipe::pipe().unwrap();
    let (sock, _peer) = std::os::unix::net::UnixStream::pair().unwrap();

    let live = real();
    let me = std::process::id();
    let every = FilesQuery {
        all_kinds: true,
        ..FilesQuery::default()
    };
    let got = files(&live, me, &every, None).unwrap();
    let by_fd = |fd: i32| {
        got.iter()
            .find(|f| f.fd == fd as u32)
            .unwrap_or_else(|| panic!("fd {fd} missing from {got:#?}"))
    };
    let name = |n: &str| path(n).to_str().unwrap().to_owned();
    let r = by_fd(read.as_raw_fd());
    assert_eq!(
        (r.path.clone(), r.position, r.mode, r.kind, r.deleted),
        (name("read.txt"), 5, "r", FileKind::File, false)
    );
    let a = by_fd(append.as_raw_fd());
    assert_eq!((a.path.clone(), a.mode), (name("append.log"), "a"));
    let g = by_fd(gone.as_raw_fd());
    assert_eq!(
        (g.path.clone(), g.kind, g.deleted, g.mode),
        (name("gone.log"), FileKind::File, true, "w")
    );
    assert_eq!(by_fd(pipe_r.as_raw_fd()).kind, FileKind::Pipe);
    let s = by_fd(sock.as_raw_fd());
    assert_eq!(s.kind, FileKind::Socket);
    assert!(s.path.starts_with("socket:["), "{}", s.path);
    // Rust opens everything close-on-exec.
    for fd in [read.as_raw_fd(), append.as_raw_fd(), sock.as_raw_fd()] {
        assert_ne!(by_fd(fd).flags & 0o2000000, 0, "fd {fd}");
    }

    let default = files(&live, me, &FilesQuery::default(), None).unwrap();
    assert!(default.iter().all(|f| f.kind == FileKind::File));
    assert!(
        default
            .iter()
            .any(|f| f.deleted && f.fd == gone.as_raw_fd() as u32)
    );
    assert!(!default.iter().any(|f| f.fd == sock.as_raw_fd() as u32));
}
