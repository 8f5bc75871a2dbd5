//! Entry points for the fuzz targets in `fuzz/` (`cargo xtask fuzz`), and
//! for the test that replays their committed corpora on every `cargo
//! test`: the same functions run under libFuzzer and as regular tests.
//!
//! Each takes arbitrary bytes and returns nothing: what it checks is that
//! nothing panics, aborts or hangs, whatever the bytes, and where a
//! decoder promises more (a glob agreeing with the reference matcher), it
//! asserts that too. Not part of the agent's API.

use std::{
    ops::ControlFlow,
    sync::{Arc, OnceLock},
    time::Duration,
};

use hostscope_proto as pb;
use pb::host_inspector_server::HostInspector as _;
use prost::Message;
use tokio_stream::StreamExt;

use crate::{
    backend::{
        AddressFamily, Backend, CpuTimes, CtxSwitches, Duplex, Error, ErrorKind, EventSource,
        Field, FieldSet, HostInfo, Ids, IoCounters, MemoryInfo, NetAddress, NetField, NetIfStats,
        NetInterface, NetIoCounters, ProcessInfo, RawEvent, Status, WatchMode,
        decode::{self, Family, kevent, media},
        parse::{self, HostConsts},
    },
    service::{self, Inspector},
};

// === The service ===

/// The runtime every service input runs on: one, kept for the process,
/// since building a runtime per input would cost more than the input.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("building the fuzzing runtime")
    })
}

/// The RPCs of `hostscope.v1.HostInspector`, in the order the first byte
/// of a [`service`] input picks them.
pub const RPCS: [&str; 8] = [
    "GetHost",
    "ListProcesses",
    "GetProcess",
    "PidExists",
    "ListNetInterfaces",
    "WatchProcesses",
    "FindZombies",
    "SignalProcess",
];

/// One request to the service over [`FakeBackend`]: the first byte picks
/// the RPC ([`RPCS`], modulo their number; its high bit serves
/// environments), the rest is the request message in protobuf. Streams
/// are read to their end (a listing) or dropped once open (a watch).
pub fn service(data: &[u8]) {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    let options = service::Options {
        environ: selector & 0x80 != 0,
        watch: service::watch::WatchOptions {
            poll_interval: Duration::from_millis(1),
            ..Default::default()
        },
        ..Default::default()
    };
    runtime().block_on(async move {
        let inspector = Inspector::new(Arc::new(FakeBackend), options);
        call(
            &inspector,
            usize::from(selector & 0x7f) % RPCS.len(),
            message,
        )
        .await;
        inspector.end_watches();
    });
}

/// Decodes `message` as the request of RPC number `rpc` and calls it;
/// undecodable bytes are what tonic would refuse before the service.
async fn call(inspector: &Inspector, rpc: usize, message: &[u8]) {
    fn request<M: Message + Default>(bytes: &[u8]) -> Option<tonic::Request<M>> {
        M::decode(bytes).ok().map(tonic::Request::new)
    }
    match rpc {
        0 => {
            if let Some(r) = request(message) {
                let _ = inspector.get_host(r).await;
            }
        }
        1 => {
            if let Some(r) = request(message)
                && let Ok(response) = inspector.list_processes(r).await
            {
                let mut stream = response.into_inner();
                while stream.next().await.is_some() {}
            }
        }
        2 => {
            if let Some(r) = request(message) {
                let _ = inspector.get_process(r).await;
            }
        }
        3 => {
            if let Some(r) = request(message) {
                let _ = inspector.pid_exists(r).await;
            }
        }
        4 => {
            if let Some(r) = request(message) {
                let _ = inspector.list_net_interfaces(r).await;
            }
        }
        5 => {
            if let Some(r) = request(message) {
                // The stream's own work runs on once the call returns; a
                // dropped stream ends it.
                drop(inspector.watch_processes(r).await);
            }
        }
        6 => {
            if let Some(r) = request(message) {
                let _ = inspector.find_zombies(r).await;
            }
        }
        _ => {
            if let Some(r) = request::<pb::SignalProcessRequest>(message) {
                // Anonymous callers are refused before the signal is
                // read: read it as an operator's call would.
                let _ = service::signal::parse(&r.get_ref().signal);
                let _ = inspector.signal_process(r).await;
            }
        }
    }
}

/// A backend answering from a fixed, made-up process table: init, a
/// kernel thread, a parent with a zombie, a process with a long and
/// non-ASCII command line and environment, and one whose fields are all
/// unreadable. Every answer is the same on every machine.
#[derive(Clone, Copy, Debug, Default)]
pub struct FakeBackend;

impl FakeBackend {
    /// The table, every field read.
    fn table() -> Vec<ProcessInfo> {
        let full = |pid: u32, ppid: u32, name: &str, status: Status| ProcessInfo {
            ppid: Some(ppid),
            name: Some(name.to_owned()),
            exe: Some(format!("/usr/bin/{name}")),
            cmdline: Some(vec![format!("/usr/bin/{name}"), "--flag".to_owned()]),
            status: Some(status),
            username: Some("root".to_owned()),
            uids: Some(Ids::default()),
            gids: Some(Ids::default()),
            terminal: Some(None),
            cwd: Some("/".to_owned()),
            nice: Some(0),
            create_time: Some(1_700_000_000.0 + f64::from(pid)),
            num_threads: Some(1),
            num_fds: Some(4),
            num_ctx_switches: Some(CtxSwitches {
                voluntary: 10,
                involuntary: 2,
            }),
            cpu_times: Some(CpuTimes {
                user: 0.5,
                system: 0.25,
                ..CpuTimes::default()
            }),
            memory_info: Some(MemoryInfo {
                rss: 4096 * 100,
                vms: 4096 * 1000,
                ..MemoryInfo::default()
            }),
            io_counters: Some(IoCounters::default()),
            environ: Some(vec![("PATH".to_owned(), "/usr/bin".to_owned())]),
            field_errors: Vec::new(),
            ..ProcessInfo::new(pid)
        };
        let mut kthread = full(2, 0, "kthreadd", Status::Sleeping);
        kthread.exe = Some(String::new());
        kthread.cmdline = Some(Vec::new());
        let mut zombie = full(101, 100, "defunct", Status::Zombie);
        zombie.cmdline = Some(Vec::new());
        let mut odd = full(200, 1, "naïve\u{1F600} (x)", Status::Running);
        odd.cmdline = Some(vec!["é".repeat(3000), String::new(), "a b".to_owned()]);
        odd.environ = Some(vec![("SECRET".to_owned(), "ü=v".to_owned())]);
        odd.username = Some("1000".to_owned());
        odd.uids = Some(Ids {
            real: 1000,
            effective: 0,
            saved: 1000,
        });
        odd.nice = Some(-20);
        let mut hidden = ProcessInfo {
            ppid: Some(1),
            status: Some(Status::DiskSleep),
            ..ProcessInfo::new(300)
        };
        hidden.field_errors = Field::ALL
            .into_iter()
            .filter(|f| !matches!(f, Field::Ppid | Field::Status))
            .map(|f| (f, ErrorKind::AccessDenied))
            .collect();
        vec![
            full(1, 0, "init", Status::Sleeping),
            kthread,
            full(100, 1, "parent", Status::Sleeping),
            zombie,
            odd,
            hidden,
        ]
    }

    /// `p` with only `fields` kept, as a backend that reads no more.
    fn select(p: ProcessInfo, fields: FieldSet) -> ProcessInfo {
        let keep = |f: Field| fields.contains(f);
        ProcessInfo {
            pid: p.pid,
            ppid: p.ppid.filter(|_| keep(Field::Ppid)),
            name: p.name.filter(|_| keep(Field::Name)),
            exe: p.exe.filter(|_| keep(Field::Exe)),
            cmdline: p.cmdline.filter(|_| keep(Field::Cmdline)),
            status: p.status.filter(|_| keep(Field::Status)),
            username: p.username.filter(|_| keep(Field::Username)),
            uids: p.uids.filter(|_| keep(Field::Uids)),
            gids: p.gids.filter(|_| keep(Field::Gids)),
            terminal: p.terminal.filter(|_| keep(Field::Terminal)),
            cwd: p.cwd.filter(|_| keep(Field::Cwd)),
            nice: p.nice.filter(|_| keep(Field::Nice)),
            create_time: p.create_time.filter(|_| keep(Field::CreateTime)),
            num_threads: p.num_threads.filter(|_| keep(Field::NumThreads)),
            num_fds: p.num_fds.filter(|_| keep(Field::NumFds)),
            num_ctx_switches: p.num_ctx_switches.filter(|_| keep(Field::NumCtxSwitches)),
            cpu_times: p.cpu_times.filter(|_| keep(Field::CpuTimes)),
            memory_info: p.memory_info.filter(|_| keep(Field::MemoryInfo)),
            io_counters: p.io_counters.filter(|_| keep(Field::IoCounters)),
            environ: p.environ.filter(|_| keep(Field::Environ)),
            cpu_percent: p.cpu_percent.filter(|_| keep(Field::CpuPercent)),
            memory_percent: p.memory_percent.filter(|_| keep(Field::MemoryPercent)),
            cgroup: p.cgroup.filter(|_| keep(Field::Cgroup)),
            memory_full_info: p.memory_full_info.filter(|_| keep(Field::MemoryFullInfo)),
            memory_maps: p
                .memory_maps
                .filter(|_| keep(Field::MemoryMaps) || keep(Field::MemoryMapsUngrouped)),
            threads: p.threads.filter(|_| keep(Field::Threads)),
            rlimits: p.rlimits.filter(|_| keep(Field::Rlimits)),
            cpu_affinity: p.cpu_affinity.filter(|_| keep(Field::CpuAffinity)),
            cpu_num: p.cpu_num.filter(|_| keep(Field::CpuNum)),
            ionice: p.ionice.filter(|_| keep(Field::Ionice)),
            page_faults: p.page_faults.filter(|_| keep(Field::PageFaults)),
            field_errors: p
                .field_errors
                .into_iter()
                .filter(|(f, _)| keep(*f))
                .collect(),
        }
    }
}

impl Backend for FakeBackend {
    fn host(&self) -> Result<HostInfo, Error> {
        Ok(HostInfo {
            hostname: "fuzz".to_owned(),
            os: "linux".to_owned(),
            os_release: "Fuzz 1".to_owned(),
            kernel: "6.0.0-fuzz".to_owned(),
            arch: "x86_64".to_owned(),
            boot_time: 1_700_000_000.0,
            cpu_count: 2,
            memory_total: 1 << 30,
            backend: "fake",
            process_fields: FieldSet::all(),
            net_interface_fields: NetField::ALL.to_vec(),
            system_fields: Default::default(),
        })
    }

    fn for_each_process(
        &self,
        fields: FieldSet,
        visit: &mut dyn FnMut(ProcessInfo) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        for p in FakeBackend::table() {
            if visit(FakeBackend::select(p, fields)).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn process(&self, pid: u32, fields: FieldSet) -> Result<ProcessInfo, Error> {
        FakeBackend::table()
            .into_iter()
            .find(|p| p.pid == pid)
            .map(|p| FakeBackend::select(p, fields))
            .ok_or(Error::NoSuchProcess { pid })
    }

    fn pid_exists(&self, pid: u32) -> Result<bool, Error> {
        Ok(FakeBackend::table().iter().any(|p| p.pid == pid))
    }

    fn net_interfaces(&self) -> Result<Vec<NetInterface>, Error> {
        let address = |family, address: &str, netmask: Option<&str>| NetAddress {
            family,
            address: address.to_owned(),
            netmask: netmask.map(str::to_owned),
            broadcast: None,
            ptp: None,
        };
        Ok(vec![
            NetInterface {
                name: "lo".to_owned(),
                addresses: vec![
                    address(AddressFamily::Inet, "127.0.0.1", Some("255.0.0.0")),
                    address(AddressFamily::Inet6, "::1", Some("ffff:ffff:ffff:ffff::")),
                ],
                stats: Some(NetIfStats {
                    isup: true,
                    duplex: Duplex::Unknown,
                    speed: 0,
                    mtu: 65536,
                    flags: "up,loopback,running".to_owned(),
                }),
                io_counters: Some(NetIoCounters::default()),
            },
            NetInterface {
                name: "eth0".to_owned(),
                addresses: vec![address(AddressFamily::Link, "02:00:00:00:00:01", None)],
                stats: None,
                io_counters: None,
            },
        ])
    }

    fn signal(&self, pid: u32, _signal: i32, expected: Option<f64>) -> Result<(), Error> {
        self.process(pid, ProcessInfo::SIGNAL_FIELDS.into_iter().collect())?
            .check_signal_target(expected)
    }

    fn events(&self, mode: WatchMode, _interval: Duration) -> Result<Box<dyn EventSource>, Error> {
        Ok(Box::new(FakeEvents {
            mode: match mode {
                WatchMode::Auto => WatchMode::Kernel,
                other => other,
            },
            script: vec![
                RawEvent::Fork {
                    pid: 200,
                    ppid: 1,
                    time: 1.0,
                },
                RawEvent::Exec {
                    pid: 200,
                    time: 2.0,
                },
                RawEvent::Exit {
                    pid: 101,
                    exit_code: Some(3),
                    signal: None,
                    time: 3.0,
                },
            ],
        }))
    }
}

/// Events of [`FakeBackend`]: a fork, an exec and an exit, then nothing.
struct FakeEvents {
    mode: WatchMode,
    script: Vec<RawEvent>,
}

impl EventSource for FakeEvents {
    fn mode(&self) -> WatchMode {
        self.mode
    }

    fn next(&mut self, timeout: Duration, out: &mut Vec<RawEvent>) -> Result<(), Error> {
        if self.script.is_empty() {
            std::thread::sleep(timeout.min(Duration::from_millis(2)));
        }
        out.append(&mut self.script);
        Ok(())
    }
}

// === Process name globs ===

/// The name glob matcher against a reference one (`reference(pattern,
/// name)`: `None` for a pattern it refuses, else whether the name
/// matches; the fuzz target and the corpus test pass the `glob` crate's
/// `Pattern`, which the agent's matcher replaced and must agree with).
///
/// The input is a pattern, a NUL, then a name (no NUL: the name is empty).
/// Short ones must agree with the reference, in validity and in every
/// match. Then the name is repeated to 64 KiB and matched against the
/// pattern repeated up to [`MAX_PATTERN_BYTES`]: no answer to check, but
/// it must come in linear time (libFuzzer's `-timeout` catches a hang).
pub fn glob(data: &[u8], reference: fn(&str, &str) -> Option<bool>) {
    use crate::backend::glob::{Glob, MAX_PATTERN_BYTES};
    let (pattern, name) = match data.iter().position(|b| *b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &[][..]),
    };
    let (Ok(pattern), Ok(name)) = (std::str::from_utf8(pattern), std::str::from_utf8(name)) else {
        return;
    };
    let ours = Glob::new(pattern);
    if pattern.len() <= 256 && name.len() <= 256 {
        let theirs = reference(pattern, name);
        let ours = ours.as_ref().ok().map(|g| g.matches(name));
        assert_eq!(ours, theirs, "pattern {pattern:?}, name {name:?}");
    }
    if let Ok(glob) = &ours {
        let _ = glob.as_str();
        if !name.is_empty() {
            let _ = glob.matches(&name.repeat((64 * 1024) / name.len() + 1));
        }
    }
    if !pattern.is_empty() {
        let mut long = pattern.repeat(MAX_PATTERN_BYTES / pattern.len());
        while long.len() > MAX_PATTERN_BYTES {
            long.pop();
        }
        if let Ok(glob) = Glob::new(&long) {
            let _ = glob.matches(&name.repeat(16 * 1024 / name.len().max(1)));
        }
    }
    let _ = crate::backend::glob::excerpt(pattern);
}

// === Linux /proc parsers ===

/// Host facts as a typical x86_64 Linux host has them.
const HOST: HostConsts = HostConsts {
    clk_tck: 100,
    page_size: 4096,
    boot_time: 1_700_000_000.0,
};

/// The parsers of `backend::parse`: the first byte picks one (modulo 8),
/// the rest is the file's bytes.
pub fn proc_parsers(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 8 {
        0 => {
            if let Ok(stat) = parse::stat::parse_stat(bytes) {
                let _ = stat.is_kernel_thread();
                let _ = stat.cpu_times(&HOST);
                let _ = stat.create_time(&HOST);
                let _ = parse::stat::decode_tty(stat.tty_nr);
            }
        }
        1 => {
            let _ = parse::status::parse_status(bytes);
        }
        2 => {
            if let Ok(statm) = parse::statm::parse_statm(bytes) {
                let _ = statm.memory_info(&HOST);
            }
        }
        3 => {
            let _ = parse::io::parse_io(bytes);
        }
        4 => {
            use parse::cmdline::*;
            let args = parse_cmdline(bytes);
            let first = first_arg(bytes);
            if let (Some(first), Some(arg)) = (first, args.first()) {
                // The first argument is the one parse_cmdline returns.
                assert_eq!(parse::lossy(first), *arg);
            }
            let comm = bytes.get(..15.min(bytes.len())).unwrap_or_default();
            let _ = widen_name(comm, first);
            let _ = parse_environ(bytes);
            let _ = link_target(bytes, |_| false);
            let _ = link_target(bytes, |_| true);
        }
        5 => {
            use parse::net::*;
            let _ = parse_net_dev(bytes);
            let _ = parse_speed(bytes);
            let _ = parse_duplex(bytes);
            let _ = parse_mtu(bytes);
            let _ = format_mac(bytes);
            if let Some(word) = bytes.first_chunk::<4>() {
                let _ = flag_names(u32::from_ne_bytes(*word));
            }
            if let Some((octets, rest)) = bytes.split_first_chunk::<16>() {
                let scope = rest
                    .first_chunk::<4>()
                    .map_or(0, |s| u32::from_ne_bytes(*s));
                let name = parse::lossy(rest.get(4..).unwrap_or_default());
                let _ = format_inet6(*octets, scope, &name);
            }
        }
        6 => {
            use parse::proc_event::*;
            let mut events = Vec::new();
            let _ = parse_datagram(bytes, HOST.boot_time, &mut events);
            if let Some(word) = bytes.first_chunk::<4>() {
                let _ = decode_wait_status(u32::from_ne_bytes(*word));
            }
        }
        _ => {
            use parse::system::*;
            let _ = parse_boot_time(bytes);
            let _ = parse_mem_total(bytes);
            let _ = parse_pretty_name(&String::from_utf8_lossy(bytes));
            host_figures(bytes);
        }
    }
}

/// The parsers of the host's own figures (`/proc/stat`, meminfo, mounts,
/// diskstats, utmp, cgroup files), each given the same bytes.
fn host_figures(bytes: &[u8]) {
    use parse::{cgroup::*, cpu::*, diskstats::*, meminfo::*, mounts::*, utmp::*};
    let _ = parse_cpu_times(bytes, HOST.clk_tck);
    let _ = parse_cpu_stats(bytes);
    let _ = parse_cpuinfo_mhz(bytes);
    let _ = parse_cpuinfo_cores(bytes);
    let _ = parse_loadavg(bytes);
    let _ = parse_cpu_list_count(bytes);
    if let Ok(mem) = parse_meminfo(bytes) {
        let _ = virtual_memory(&mem, parse_zoneinfo_low(bytes).ok());
        let _ = swap_memory(&mem, Some(bytes));
    }
    let _ = parse_mounts(bytes);
    let _ = parse_mountinfo(bytes);
    let _ = parse_filesystems(bytes);
    let _ = parse_diskstats(bytes);
    let _ = parse_block_stat("sda", bytes);
    let _ = parse_utmp(bytes);
    let _ = parse_proc_cgroup(bytes);
    let _ = parse_proc_cgroups(bytes);
    let _ = parse_cpu_max(bytes);
    let _ = parse_cpu_stat_usage(bytes);
    let _ = parse_v1_limit(bytes, "memory.limit_in_bytes");
    let _ = parse_cfs_quota(bytes);
}

// === BSD and macOS decoders ===

/// The decoders of `backend::decode`: the first byte picks one (modulo
/// 8), the rest is the kernel's buffer. A table is decoded as given and
/// cut to whole records, so that both the size check and the records
/// behind it are reached.
pub fn bsd_decoders(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    const PAGE: u64 = 4096;
    let whole = |size: usize| &bytes[..bytes.len() - bytes.len() % size];
    let apply = |kinfos: Vec<decode::Kinfo>| {
        for k in kinfos {
            let mut p = ProcessInfo::new(k.pid);
            k.apply(FieldSet::all(), ErrorKind::ZombieProcess, &mut p);
            let _ = k.is_zombie();
        }
    };
    match selector % 8 {
        0 => {
            use decode::freebsd::*;
            let size = kinfo_proc::SIZE;
            let _ = proc_table(bytes, PAGE);
            if let Ok(table) = proc_table(whole(size), PAGE) {
                apply(table);
            }
            let _ = files(bytes);
            let _ = open_files(1, bytes);
            let _ = sockets(1, bytes);
            let _ = IF_DATA.decode(bytes);
            if let Some(word) = bytes.first_chunk::<4>() {
                let _ = FLAGS.names(u32::from_ne_bytes(*word));
            }
        }
        1 => {
            use decode::openbsd::*;
            let size = KINFO_PROC.size;
            let _ = proc_table(bytes, PAGE);
            if let Ok(table) = proc_table(whole(size), PAGE) {
                apply(table);
            }
            let _ = count_threads(whole(size));
            let _ = sockets(bytes);
            let _ = sockets(whole(KINFO_FILE_SIZE));
            let _ = decode::netbsdlike::count_fds(
                "kinfo_file",
                whole(KINFO_FILE_SIZE),
                KINFO_FILE_SIZE,
                KINFO_FILE_FD,
            );
            let base = bytes
                .first_chunk::<8>()
                .map_or(0, |b| u64::from_ne_bytes(*b));
            let _ = pointer_strings(bytes.get(8..).unwrap_or_default(), base);
            let _ = IF_DATA.decode(bytes);
        }
        2 => {
            use decode::netbsd::*;
            let size = KINFO_PROC2.size;
            let _ = proc_table(bytes, PAGE);
            if let Ok(table) = proc_table(whole(size), PAGE) {
                apply(table);
            }
            let _ = decode::netbsdlike::count_fds(
                "kinfo_file",
                whole(KINFO_FILE_SIZE),
                KINFO_FILE_SIZE,
                KINFO_FILE_FD,
            );
            let _ = IF_DATA.decode(bytes);
        }
        3 => {
            use decode::macos::*;
            if let Ok(mut k) = bsdinfo(bytes) {
                let rest = bytes.get(bsdinfo::SIZE..).unwrap_or_default();
                for timebase in [
                    Timebase { numer: 1, denom: 1 },
                    Timebase {
                        numer: 125,
                        denom: 3,
                    },
                ] {
                    let _ = add_taskinfo(&mut k, rest, timebase);
                }
                apply(vec![k]);
            }
            let _ = cwd(bytes);
            let _ = vnode_fd(1, 3, bytes);
            let _ = socket_fd(1, 3, bytes);
            if let Ok(fds) = fd_list(whole(FDINFO_SIZE)) {
                for (_, fdtype) in fds {
                    let _ = fd_kind(fdtype);
                }
            }
            if let Ok(args) = procargs2(bytes) {
                let _ = decode::environ_of(&args.env);
            }
            let _ = iflist2(bytes);
        }
        4 => {
            // kqueue events (pid, fflags, data) and poll results, merged.
            let mut merge = kevent::Merge::new(selector & 0x80 != 0);
            let mut out = Vec::new();
            let mut watch = Vec::new();
            for (i, chunk) in bytes.chunks_exact(16).enumerate() {
                let word = |at: usize| {
                    u32::from_ne_bytes(chunk[at..at + 4].try_into().unwrap_or_default())
                };
                let event = kevent::ProcEvent {
                    pid: word(0),
                    fflags: word(4),
                    data: i64::from_ne_bytes(chunk[8..16].try_into().unwrap_or_default()),
                };
                if event.fflags & 0x8 != 0 {
                    // Bit 3 is no NOTE_* the decoder reads: it stands for
                    // a poll that found this pid forked and another exited.
                    let polled = vec![
                        RawEvent::Fork {
                            pid: event.pid,
                            ppid: 1,
                            time: i as f64,
                        },
                        RawEvent::Exit {
                            pid: event.data as u32,
                            exit_code: None,
                            signal: None,
                            time: i as f64,
                        },
                    ];
                    merge.polled(polled, &mut out, &mut watch);
                } else {
                    merge.kernel(event, i as f64, &mut out);
                }
            }
        }
        5 => {
            // Media words against every OS's layout.
            for chunk in bytes.chunks_exact(16) {
                let status = u64::from_ne_bytes(chunk[..8].try_into().unwrap_or_default());
                let word = u64::from_ne_bytes(chunk[8..].try_into().unwrap_or_default());
                for layout in [media::FREEBSD, media::MACOS, media::NETBSD, media::OPENBSD] {
                    let _ = layout.ether_subtype(word);
                    let _ = layout.speed(word);
                    let _ = layout.duplex(status, word);
                }
            }
        }
        6 => {
            // getifaddrs entries: address, netmask and peer, split at the
            // first two bytes' lengths, read as each family.
            let (a, rest) =
                bytes.split_at(usize::from(bytes.first().copied().unwrap_or(0)).min(bytes.len()));
            let (m, d) =
                rest.split_at(usize::from(rest.first().copied().unwrap_or(0)).min(rest.len()));
            for family in [Family::Inet, Family::Inet6, Family::Link] {
                let _ = decode::sockaddr(bytes, family);
                for flags in [0, 0x2, 0x10] {
                    let _ = decode::net_address(family, a, Some(m), Some(d), flags, "em0");
                }
            }
            let _ = decode::macos::IF_DATA64.decode(bytes);
        }
        _ => {
            let _ = decode::unsigned("sysctl", bytes);
            let _ = decode::nul_separated(bytes);
            let strings: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
            let _ = decode::environ_of(&strings);
            let _ = decode::terminal_path(bytes);
            if let Some(word) = bytes.first_chunk::<8>() {
                let _ = decode::wait_status(i64::from_ne_bytes(*word));
            }
            if let Ok(records) = decode::records("record", bytes, 24) {
                for r in records {
                    let _ = r.timeval(0, 8);
                    let _ = r.timeval(8, 4);
                    let _ = r.id(4);
                }
            }
        }
    }
}
