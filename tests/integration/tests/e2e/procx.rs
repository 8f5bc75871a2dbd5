//! psutil's Process extras (memory_full_info, memory_maps, threads,
//! rlimits, cpu_affinity, cpu_num, ionice, page faults, read/write chars)
//! as a real agent serves them for a real process the test starts with
//! known settings, compared with psutil 7.2.2 for the same pid.
//!
//! Memory and CPU times move while the two readers look: the comparisons
//! state their tolerance where they make them. Counters that only grow
//! (page faults, read/write chars, thread times) are checked to lie
//! between a reading taken before the agent's and one taken after.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use hostscope_client::{Error, proto as pb};
use hostscope_integration::{TestAgent, child::ChildGroup, proc_state, psutil, wait_for};
use serde_json::Value;

use super::{list, reap::hostscope};
use pb::ProcessField as F;

const MIB: u64 = 1 << 20;

/// The size of the file the workload reads, then maps and touches.
const MAPPED_BYTES: u64 = 4 * MIB;

/// What the workload writes to /dev/null.
const WRITTEN_BYTES: u64 = MIB;

/// Reads the file argv[1] through read(2), writes WRITTEN_BYTES to
/// /dev/null, maps the file and touches every page, maps argv[2] MiB of
/// private anonymous memory and touches every page, starts two threads
/// that wait, prints their ids as JSON, then waits until stdin closes.
const WORKLOAD: &str = r#"
import json, mmap, os, sys, threading
path, mib = sys.argv[1], int(sys.argv[2])
with open(path, "rb", buffering=0) as f:
    while f.read(1 << 16):
        pass
with open(os.devnull, "wb", buffering=0) as f:
    f.write(b"x" * (1 << 20))
fd = os.open(path, os.O_RDONLY)
mapped = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
touched = sum(mapped[i] for i in range(0, len(mapped), 4096))
anon = mmap.mmap(-1, mib << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(0, len(anon), 4096):
    anon[i] = 1
stop = threading.Event()
threads = [threading.Thread(target=stop.wait) for _ in range(2)]
for t in threads:
    t.start()
print(json.dumps({"threads": [t.native_id for t in threads], "touched": touched}), flush=True)
sys.stdin.read()
stop.set()
"#;

/// How the workload is started.
struct Settings {
    /// `prlimit --nofile=SOFT:HARD`.
    nofile: (u64, u64),
    /// `taskset -c CPU`.
    cpu: u32,
    /// `ionice -c CLASS -n LEVEL` (2: best effort).
    ionice: (u32, u32),
    /// Anonymous memory touched, in MiB.
    anon_mib: u64,
}

/// The [`WORKLOAD`] process, killed (group and all) on drop.
struct Workload {
    pid: u32,
    /// The ids of the two waiting threads.
    threads: Vec<u32>,
    /// The file it mapped.
    mapped: String,
    _dir: tempfile::TempDir,
    child: ChildGroup,
}

impl Workload {
    /// Starts the workload through `prlimit`, `taskset` and `ionice`, each
    /// of which execs the next: the pid stays the one spawned.
    fn start(settings: &Settings) -> Workload {
        let dir = tempfile::tempdir().unwrap();
        let mapped = dir.path().join("mapped.bin");
        // Not zeros, so that no filesystem can keep it sparse.
        let bytes: Vec<u8> = (0..MAPPED_BYTES).map(|i| (i % 251) as u8 + 1).collect();
        std::fs::write(&mapped, bytes).unwrap();
        let mapped = mapped.to_str().unwrap().to_owned();
        let (soft, hard) = settings.nofile;
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={soft}:{hard}"))
            .arg("--")
            .args(["taskset", "-c", &settings.cpu.to_string()])
            .args(["ionice", "-c", &settings.ionice.0.to_string()])
            .args(["-n", &settings.ionice.1.to_string()])
            .arg(psutil::python())
            .args([
                "-I",
                "-c",
                WORKLOAD,
                &mapped,
                &settings.anon_mib.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = ChildGroup::spawn(&mut cmd).expect("prlimit");
        let mut line = String::new();
        BufReader::new(child.take_stdout().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the workload did not start ({e}): {line:?}"));
        let threads = ready["threads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as u32)
            .collect();
        Workload {
            pid: child.id(),
            threads,
            mapped,
            _dir: dir,
            child,
        }
    }

    /// A workload with ordinary settings and `anon_mib` of touched memory.
    fn with_memory(anon_mib: u64) -> Workload {
        Workload::start(&Settings {
            nofile: (123, 456),
            cpu: allowed_cpus()[0],
            ionice: (2, 5),
            anon_mib,
        })
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        // Closing stdin lets it end by itself; the group is killed anyway.
        drop(self.child.take_stdin());
        self.child.kill();
    }
}

/// The CPUs this test may run on (and so its children), from
/// `Cpus_allowed_list`: CPU 0 may be outside a cpuset.
fn allowed_cpus() -> Vec<u32> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim();
    let mut cpus = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<u32>().unwrap()..=b.parse().unwrap()),
            None => cpus.push(part.parse().unwrap()),
        }
    }
    cpus
}

/// What psutil says of `pid`, as JSON: rlimits by name (`null` for
/// unlimited), cpu_affinity, ionice, cpu_num, cpu_count, threads,
/// memory_full_info, memory_maps grouped and ungrouped, io_counters.
fn psutil_extras(pid: u32) -> Value {
    psutil::run_json(&format!(
        r#"
import json, psutil
p = psutil.Process({pid})
def lim(v):
    return None if v == psutil.RLIM_INFINITY else v
out = {{}}
out["rlimits"] = {{
    name[len("RLIMIT_"):].lower(): [lim(v) for v in p.rlimit(getattr(psutil, name))]
    for name in dir(psutil) if name.startswith("RLIMIT_")
}}
out["cpu_affinity"] = p.cpu_affinity()
io = p.ionice()
out["ionice"] = [int(io.ioclass), io.value]
out["cpu_num"] = p.cpu_num()
out["cpu_count"] = psutil.cpu_count()
out["threads"] = [t._asdict() for t in p.threads()]
m = p.memory_full_info()
out["memory_full_info"] = {{"uss": m.uss, "pss": m.pss, "swap": m.swap}}
out["maps_grouped"] = [m._asdict() for m in p.memory_maps(grouped=True)]
out["maps_ungrouped"] = [m._asdict() for m in p.memory_maps(grouped=False)]
out["io_counters"] = p.io_counters()._asdict()
print(json.dumps(out))
"#
    ))
}

/// Runs [`psutil_extras`] off the async runtime.
async fn psutil_of(pid: u32) -> Value {
    tokio::task::spawn_blocking(move || psutil_extras(pid))
        .await
        .unwrap()
}

/// Minor and major page faults from /proc/PID/stat (fields 10 and 12):
/// psutil 7.2.2 has no `Process.page_faults`.
fn stat_page_faults(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // Fields after comm start at field 3 (state).
    let field = |n: usize| fields[n - 3].parse::<u64>().unwrap();
    (field(10), field(12))
}

/// Whether `a` and `b` differ by at most `fraction` of the larger or
/// `floor` bytes, whichever is more.
fn close(a: u64, b: u64, fraction: f64, floor: u64) -> bool {
    let allowed = ((a.max(b) as f64 * fraction) as u64).max(floor);
    a.abs_diff(b) <= allowed
}

const EXTRAS: [F; 9] = [
    F::Rlimits,
    F::CpuAffinity,
    F::CpuNum,
    F::Ionice,
    F::Threads,
    F::PageFaults,
    F::IoCounters,
    F::MemoryFullInfo,
    F::MemoryMaps,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rlimits_affinity_ionice_and_cpu_num_match_psutil() {
    let cpus = allowed_cpus();
    // The last CPU allowed, so that a pin is not mistaken for a default.
    let cpu = *cpus.last().unwrap();
    let work = Workload::start(&Settings {
        nofile: (123, 456),
        cpu,
        ionice: (2, 5),
        anon_mib: 1,
    });
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let oracle = psutil_of(work.pid).await;
    let p = client.process(work.pid, &EXTRAS).await.unwrap();

    // Every resource psutil knows, exactly; and the one the test set.
    let ours: BTreeMap<String, (Option<u64>, Option<u64>)> = p
        .rlimits()
        .unwrap()
        .iter()
        .map(|r| (r.resource.clone(), (r.soft, r.hard)))
        .collect();
    let theirs: BTreeMap<String, (Option<u64>, Option<u64>)> = oracle["rlimits"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, v)| (name.clone(), (v[0].as_u64(), v[1].as_u64())))
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(p.rlimit("nofile").unwrap(), Some((Some(123), Some(456))));

    assert_eq!(p.cpu_affinity().unwrap(), [cpu]);
    let theirs: Vec<u32> = serde_json::from_value(oracle["cpu_affinity"].clone()).unwrap();
    assert_eq!(p.cpu_affinity().unwrap(), theirs);

    // psutil counts classes from IOPRIO_CLASS_NONE = 0; the API from 1.
    let ionice = p.ionice().unwrap();
    assert_eq!(ionice.ioclass(), pb::IoNiceClass::Be);
    assert_eq!(ionice.value, 5);
    assert_eq!(
        [ionice.ioclass as u64 - 1, u64::from(ionice.value)],
        [
            oracle["ionice"][0].as_u64().unwrap(),
            oracle["ionice"][1].as_u64().unwrap()
        ]
    );

    // Pinned to one CPU, it can have last run on no other.
    let cpu_num = p.cpu_num().unwrap();
    assert!(u64::from(cpu_num) < oracle["cpu_count"].as_u64().unwrap());
    assert_eq!(cpu_num, cpu);
    assert_eq!(u64::from(cpu_num), oracle["cpu_num"].as_u64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_match_psutil_and_their_times_only_grow() {
    let work = Workload::with_memory(1);
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let before = psutil_of(work.pid).await;
    let p = client
        .process(work.pid, &[F::Threads, F::CpuTimes])
        .await
        .unwrap();
    let after = psutil_of(work.pid).await;

    let times = |v: &Value| -> BTreeMap<u32, (f64, f64)> {
        v["threads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let id = t["id"].as_u64().unwrap() as u32;
                (
                    id,
                    (
                        t["user_time"].as_f64().unwrap(),
                        t["system_time"].as_f64().unwrap(),
                    ),
                )
            })
            .collect()
    };
    let (before, after) = (times(&before), times(&after));
    let ours: BTreeMap<u32, (f64, f64)> = p
        .threads()
        .unwrap()
        .iter()
        .map(|t| (t.id, (t.user_time, t.system_time)))
        .collect();
    // The main thread and the two waiting ones, as psutil saw them.
    let ids: BTreeSet<u32> = ours.keys().copied().collect();
    assert_eq!(ids, before.keys().copied().collect());
    assert_eq!(ids, after.keys().copied().collect());
    assert!(ids.contains(&work.pid), "{ids:?}");
    for t in &work.threads {
        assert!(ids.contains(t), "thread {t} missing from {ids:?}");
    }
    // Both read task/TID/stat in clock ticks; 1 ms absorbs the float
    // conversions. The agent read between psutil's two readings.
    const TOLERANCE_S: f64 = 0.001;
    for (id, (user, system)) in &ours {
        let (b, a) = (before[id], after[id]);
        assert!(
            b.0 - TOLERANCE_S <= *user && *user <= a.0 + TOLERANCE_S,
            "thread {id} user {user} outside [{}, {}]",
            b.0,
            a.0
        );
        assert!(
            b.1 - TOLERANCE_S <= *system && *system <= a.1 + TOLERANCE_S,
            "thread {id} system {system} outside [{}, {}]",
            b.1,
            a.1
        );
    }
    // The threads' times add up to no more than the process's, read in
    // the same pass (which also counts threads that have ended).
    let cpu = p.cpu_times().unwrap();
    let user: f64 = ours.values().map(|t| t.0).sum();
    let system: f64 = ours.values().map(|t| t.1).sum();
    assert!(user <= cpu.user + 0.05, "{user} > {}", cpu.user);
    assert!(system <= cpu.system + 0.05, "{system} > {}", cpu.system);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_full_info_and_maps_match_psutil() {
    const ANON_MIB: u64 = 32;
    let work = Workload::with_memory(ANON_MIB);
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let oracle = psutil_of(work.pid).await;
    let p = client
        .process(work.pid, &[F::MemoryFullInfo, F::MemoryMaps])
        .await
        .unwrap();
    let ungrouped = client
        .get_process(pb::GetProcessRequest {
            pid: work.pid,
            fields: vec![F::MemoryMaps as i32],
            memory_maps_ungrouped: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let ungrouped = ungrouped.memory_maps().unwrap();

    // The process is idle on its stdin, but the kernel may still move
    // pages (reclaim, THP collapse): 10% or 512 KiB, whichever is more.
    const FRACTION: f64 = 0.10;
    const FLOOR: u64 = 512 * 1024;
    let full = p.memory_full_info().unwrap();
    let theirs = &oracle["memory_full_info"];
    for (name, ours) in [("uss", full.uss), ("pss", full.pss), ("swap", full.swap)] {
        let theirs = theirs[name].as_u64().unwrap();
        assert!(
            close(ours, theirs, FRACTION, FLOOR),
            "{name}: agent {ours}, psutil {theirs}"
        );
    }
    // The touched anonymous memory is the process's own, unless swapped.
    assert!(
        full.uss + full.swap >= ANON_MIB * MIB,
        "uss {} + swap {} < {ANON_MIB} MiB",
        full.uss,
        full.swap
    );
    assert!(full.pss >= full.uss, "pss {} < uss {}", full.pss, full.uss);

    // Grouped: the same paths, each with the same resident size within
    // the tolerance above.
    let grouped = p.memory_maps().unwrap();
    let ours: BTreeMap<&str, u64> = grouped.iter().map(|m| (m.path.as_str(), m.rss)).collect();
    let theirs: BTreeMap<&str, u64> = oracle["maps_grouped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["path"].as_str().unwrap(), m["rss"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (path, rss) in &ours {
        assert!(
            close(*rss, theirs[path], FRACTION, FLOOR),
            "{path}: rss agent {rss}, psutil {}",
            theirs[path]
        );
    }
    assert_eq!(grouped.len(), ours.len(), "one entry per path");
    assert!(
        grouped
            .iter()
            .all(|m| m.addr.is_empty() && m.perms.is_empty())
    );
    // The mapped file, read through to the last page, is resident unless
    // reclaimed meanwhile: half of it at least.
    let file = grouped.iter().find(|m| m.path == work.mapped).unwrap();
    assert_eq!(file.size, MAPPED_BYTES);
    assert!(file.rss >= MAPPED_BYTES / 2, "rss {}", file.rss);

    // Ungrouped: every mapping, with its address range and permissions.
    let ours: Vec<(&str, &str, &str)> = ungrouped
        .iter()
        .map(|m| (m.addr.as_str(), m.perms.as_str(), m.path.as_str()))
        .collect();
    let theirs: Vec<(&str, &str, &str)> = oracle["maps_ungrouped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["addr"].as_str().unwrap(),
                m["perms"].as_str().unwrap(),
                m["path"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(ours, theirs);
    assert!(ungrouped.len() > grouped.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_faults_and_read_write_chars_lie_between_two_readings() {
    let work = Workload::with_memory(8);
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let faults_before = stat_page_faults(work.pid);
    let io_before = psutil_of(work.pid).await["io_counters"].clone();
    let p = client
        .process(work.pid, &[F::PageFaults, F::IoCounters])
        .await
        .unwrap();
    let io_after = psutil_of(work.pid).await["io_counters"].clone();
    let faults_after = stat_page_faults(work.pid);

    let faults = p.page_faults().unwrap();
    assert!(
        faults_before.0 <= faults.minor && faults.minor <= faults_after.0,
        "minor {} outside {faults_before:?}..{faults_after:?}",
        faults.minor
    );
    assert!(
        faults_before.1 <= faults.major && faults.major <= faults_after.1,
        "major {} outside {faults_before:?}..{faults_after:?}",
        faults.major
    );
    // Python's start alone faults in more than a hundred pages.
    assert!(faults.minor > 100, "{faults:?}");

    let io = p.io_counters().unwrap();
    let (read, written) = (io.read_chars.unwrap(), io.write_chars.unwrap());
    let between = |name: &str, ours: u64| {
        let (b, a) = (
            io_before[name].as_u64().unwrap(),
            io_after[name].as_u64().unwrap(),
        );
        assert!(b <= ours && ours <= a, "{name} {ours} outside [{b}, {a}]");
    };
    between("read_chars", read);
    between("write_chars", written);
    // What the workload read and wrote through read(2) and write(2).
    assert!(read >= MAPPED_BYTES, "read_chars {read}");
    assert!(written >= WRITTEN_BYTES, "write_chars {written}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_leaves_out_the_costly_ones_and_naming_them_returns_them() {
    let work = Workload::with_memory(1);
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let only = pb::ProcessFilter {
        pids: vec![work.pid],
        ..Default::default()
    };

    let all = list(&client, &[], only.clone()).await;
    assert_eq!(all.len(), 1);
    let one = client.process(work.pid, &[]).await.unwrap();
    for p in [&all[0], &one] {
        let wire = p.proto();
        assert_eq!(wire.memory_full_info, None);
        assert!(wire.memory_maps.is_empty());
        assert!(wire.field_errors.is_empty(), "{:?}", wire.field_errors);
        assert!(matches!(
            p.memory_full_info(),
            Err(Error::FieldNotRequested { .. })
        ));
        assert!(matches!(
            p.memory_maps(),
            Err(Error::FieldNotRequested { .. })
        ));
        // Every other extra is there.
        assert!(p.rlimit("nofile").unwrap().is_some());
        assert!(!p.threads().unwrap().is_empty());
        assert!(!p.cpu_affinity().unwrap().is_empty());
        p.ionice().unwrap();
        p.cpu_num().unwrap();
        p.page_faults().unwrap();
    }

    let named = list(&client, &[F::MemoryFullInfo, F::MemoryMaps], only).await;
    assert_eq!(named.len(), 1);
    let p = &named[0];
    assert!(p.memory_full_info().unwrap().uss > 0);
    assert!(
        p.memory_maps()
            .unwrap()
            .iter()
            .any(|m| m.path == work.mapped)
    );
    // Only what was named.
    assert_eq!(p.proto().rlimits, []);
    assert_eq!(p.proto().name, None);
}

/// A zombie that did real I/O under set limits and I/O priority: `head`
/// copies 100,000 bytes under `prlimit --nofile=77:88 ionice -c 3` (both
/// exec what they run, so the pid stays `head`'s) as a child of this test,
/// which does not wait for it until the guard drops. A shell as its parent
/// could reap it between its exit and an `exec` of something that never
/// waits. Returns the guard (which reaps it) and the zombie's pid.
fn zombie_that_did_io() -> (ChildGroup, u32) {
    let zombie = ChildGroup::spawn(
        Command::new("prlimit")
            .args(["--nofile=77:88", "--", "ionice", "-c", "3"])
            .args(["head", "-c", "100000", "/dev/zero"])
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    )
    .expect("prlimit");
    let pid = zombie.id();
    wait_for(Duration::from_secs(30), || proc_state(pid) == Some('Z'));
    (zombie, pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_has_no_memory_and_no_bogus_zeros() {
    let (_parent, zombie) = zombie_that_did_io();
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let p = client.process(zombie, &EXTRAS).await.unwrap();
    let oracle = psutil::run_json(&format!(
        "import json, psutil\n\
         p = psutil.Process({zombie})\n\
         print(json.dumps({{'status': p.status(), 'io': p.io_counters()._asdict()}}))\n"
    ));
    assert_eq!(oracle["status"], "zombie");

    // No address space, and no I/O context (ioprio_get(2) answers the
    // kernel's default, class none, where this one had idle): zombie
    // errors, never an empty or default answer.
    let errors: BTreeSet<(F, pb::ErrorKind)> = p
        .proto()
        .field_errors
        .iter()
        .map(|e| (e.field(), e.kind()))
        .collect();
    let zombie_errors: BTreeSet<(F, pb::ErrorKind)> = [F::MemoryFullInfo, F::MemoryMaps, F::Ionice]
        .into_iter()
        .map(|f| (f, pb::ErrorKind::ZombieProcess))
        .collect();
    assert_eq!(errors, zombie_errors);
    assert!(matches!(
        p.memory_full_info(),
        Err(Error::ZombieProcess { .. })
    ));
    assert!(matches!(p.memory_maps(), Err(Error::ZombieProcess { .. })));
    assert!(matches!(p.ionice(), Err(Error::ZombieProcess { .. })));

    // What the kernel keeps of a zombie is its own, not a default.
    assert_eq!(p.rlimit("nofile").unwrap(), Some((Some(77), Some(88))));
    assert_eq!(
        p.threads()
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect::<Vec<_>>(),
        [zombie]
    );
    assert!(!p.cpu_affinity().unwrap().is_empty());
    let (minor, major) = stat_page_faults(zombie);
    let faults = p.page_faults().unwrap();
    assert_eq!((faults.minor, faults.major), (minor, major));
    assert!(faults.minor > 0);
    // It no longer changes: the agent's counters are psutil's exactly.
    let io = p.io_counters().unwrap();
    assert_eq!(io.read_chars, oracle["io"]["read_chars"].as_u64());
    assert_eq!(io.write_chars, oracle["io"]["write_chars"].as_u64());
    assert!(io.read_chars.unwrap() >= 100_000, "{io:?}");
    assert!(io.write_chars.unwrap() >= 100_000, "{io:?}");
    p.cpu_num().unwrap();
}

/// The order in which the `pids` come in `out`: by the first line on which
/// each stands as a whole word (a table row, or a CSV row split on commas).
fn order_of(out: &str, pids: &[u32]) -> Vec<u32> {
    let line_of = |pid: &u32| {
        let pid = pid.to_string();
        out.lines()
            .position(|l| l.split([' ', ',']).any(|w| w == pid))
            .unwrap_or_else(|| panic!("pid {pid} missing from:\n{out}"))
    };
    let mut ordered = pids.to_vec();
    ordered.sort_by_key(line_of);
    ordered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ps_sorts_by_uss_and_asks_for_it() {
    // 8 MiB against 64 MiB of touched memory: far apart whatever the
    // interpreter itself holds.
    let small = Workload::with_memory(8);
    let big = Workload::with_memory(64);
    let agent = TestAgent::start().await;
    let pids = format!("{},{}", small.pid, big.pid);
    let both = [small.pid, big.pid];

    let (code, out, err) = hostscope(
        &agent,
        "client",
        &[
            "ps",
            "--sort",
            "-uss",
            "--fields",
            "pid,name,memory_full_info",
            "--pid",
            &pids,
            "--output",
            "csv",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let header = out.lines().next().unwrap();
    assert_eq!(
        header,
        "host,pid,name,memory_full_info.uss,memory_full_info.pss,memory_full_info.swap,\
         field_errors"
    );
    assert_eq!(order_of(&out, &both), [big.pid, small.pid], "{out}");
    let uss: Vec<u64> = out
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap().parse().unwrap())
        .collect();
    assert!(uss[0] >= uss[1] + 32 * MIB, "{out}");

    // Ascending, in the default table, which does not show uss: the field
    // is asked for all the same, or the order would be the pids'.
    let ascending = ["ps", "--sort", "uss", "--pid", &pids];
    let (code, out, err) = hostscope(&agent, "client", &ascending).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(order_of(&out, &both), [small.pid, big.pid], "{out}");
    let descending = ["ps", "--sort", "-USS", "--pid", &pids];
    let (code, out, err) = hostscope(&agent, "client", &descending).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(order_of(&out, &both), [big.pid, small.pid], "{out}");

    // "all" leaves memory_full_info out, but sorting by it reads it.
    let all = ["ps", "--sort", "-pss", "--fields", "all", "--pid", &pids];
    let (code, out, err) = hostscope(&agent, "client", &all).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(order_of(&out, &both), [big.pid, small.pid], "{out}");
}
