//! The host's figures (GetSystem, ListDisks) and the per-process
//! percentages, compared with oracles: psutil itself (a pinned release in a
//! virtual environment of the target directory), the kernel's own files
//! and the commands people check by hand (free, df, who).
//!
//! The machine is busy while the tests run, so a figure that moves is read
//! from the oracle right before and right after the agent's answer, and the
//! agent's value must lie between the two, give or take a stated tolerance.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use hostscope_client::{Client, proto as pb};
use hostscope_integration::{TestAgent, child::ChildGroup, psutil};
use serde_json::Value;
use tokio_stream::StreamExt;
use tonic::Code;

// === oracle helpers ===

/// `agent` lies between the oracle's readings `before` and `after`, widened
/// by `tolerance` on each side.
#[track_caller]
fn between(what: &str, before: f64, agent: f64, after: f64, tolerance: f64) {
    let (lo, hi) = (before.min(after) - tolerance, before.max(after) + tolerance);
    assert!(
        (lo..=hi).contains(&agent),
        "{what}: agent {agent}, oracle {before} before and {after} after (tolerance {tolerance})"
    );
}

/// A number of psutil's JSON; panics if absent.
#[track_caller]
fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("psutil gave no number {key:?} in {v}"))
}

async fn system(client: &Client, fields: &[pb::SystemField]) -> pb::System {
    client
        .system(pb::GetSystemRequest {
            fields: fields.iter().map(|f| *f as i32).collect(),
            ..Default::default()
        })
        .await
        .expect("GetSystem")
}

/// The figures psutil reads on every Linux host, which the agent must
/// answer too.
const READ: [pb::SystemField; 11] = [
    pb::SystemField::CpuTimes,
    pb::SystemField::CpuStats,
    pb::SystemField::CpuFreq,
    pb::SystemField::CpuCount,
    pb::SystemField::Loadavg,
    pb::SystemField::VirtualMemory,
    pb::SystemField::SwapMemory,
    pb::SystemField::Users,
    pb::SystemField::BootTime,
    pb::SystemField::SensorsTemperatures,
    pb::SystemField::SensorsFans,
];

/// The modes of a CPU times record, optional ones as `None` where absent.
fn cpu_modes(t: &pb::SystemCpuTimes) -> [(&'static str, Option<f64>); 10] {
    [
        ("user", Some(t.user)),
        ("nice", Some(t.nice)),
        ("system", Some(t.system)),
        ("idle", Some(t.idle)),
        ("iowait", t.iowait),
        ("irq", t.irq),
        ("softirq", t.softirq),
        ("steal", t.steal),
        ("guest", t.guest),
        ("guest_nice", t.guest_nice),
    ]
}

/// Each mode psutil gives is given by the agent, between psutil's readings.
/// Idle and iowait may step back a little on a tickless kernel, hence the
/// wider tolerance there (psutil's own tests allow for it too).
#[track_caller]
fn check_cpu_times(what: &str, before: &Value, agent: &pb::SystemCpuTimes, after: &Value) {
    for (mode, value) in cpu_modes(agent) {
        match (before.get(mode), value) {
            (Some(_), Some(v)) => {
                let tolerance = if matches!(mode, "idle" | "iowait") {
                    2.0
                } else {
                    0.05
                };
                between(
                    &format!("{what}.{mode}"),
                    num(before, mode),
                    v,
                    num(after, mode),
                    tolerance,
                );
            }
            (None, None) => {}
            (b, v) => panic!("{what}.{mode}: psutil {b:?}, agent {v:?}"),
        }
    }
}

fn field_errors(sys: &pb::System) -> Vec<(pb::SystemField, pb::ErrorKind, &str)> {
    sys.field_errors
        .iter()
        .map(|e| {
            (
                pb::SystemField::try_from(e.field).unwrap_or(pb::SystemField::Unspecified),
                pb::ErrorKind::try_from(e.kind).unwrap_or(pb::ErrorKind::Unspecified),
                e.message.as_str(),
            )
        })
        .collect()
}

// === psutil ===

#[tokio::test(flavor = "multi_thread")]
async fn system_figures_match_psutil() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let before = tokio::task::spawn_blocking(psutil::system).await.unwrap();
    let sys = system(&client, &READ).await;
    let after = tokio::task::spawn_blocking(psutil::system).await.unwrap();

    // Every figure psutil reads here is read by the agent too.
    assert!(
        sys.field_errors.is_empty(),
        "figures not read: {:?}",
        field_errors(&sys)
    );

    // cpu_times, total and per CPU.
    let times = sys.cpu_times.as_ref().expect("cpu_times");
    check_cpu_times(
        "cpu_times",
        &before["cpu_times"],
        times.total.as_ref().expect("cpu_times.total"),
        &after["cpu_times"],
    );
    let per_cpu_before = before["cpu_times_percpu"].as_array().unwrap();
    let per_cpu_after = after["cpu_times_percpu"].as_array().unwrap();
    assert_eq!(times.per_cpu.len(), per_cpu_before.len(), "CPUs");
    for (i, t) in times.per_cpu.iter().enumerate() {
        check_cpu_times(
            &format!("cpu_times[{i}]"),
            &per_cpu_before[i],
            t,
            &per_cpu_after[i],
        );
    }

    // cpu_stats: counters since boot; psutil says 0 syscalls on Linux,
    // which does not count them: the agent leaves them out.
    let stats = sys.cpu_stats.as_ref().expect("cpu_stats");
    let (b, a) = (&before["cpu_stats"], &after["cpu_stats"]);
    between(
        "ctx_switches",
        num(b, "ctx_switches"),
        stats.ctx_switches as f64,
        num(a, "ctx_switches"),
        0.0,
    );
    between(
        "interrupts",
        num(b, "interrupts"),
        stats.interrupts as f64,
        num(a, "interrupts"),
        0.0,
    );
    between(
        "soft_interrupts",
        num(b, "soft_interrupts"),
        stats.soft_interrupts.expect("soft_interrupts") as f64,
        num(a, "soft_interrupts"),
        0.0,
    );
    assert_eq!(num(b, "syscalls"), 0.0);
    assert_eq!(stats.syscalls, None, "Linux counts no syscalls");

    // cpu_count.
    let count = sys.cpu_count.as_ref().expect("cpu_count");
    assert_eq!(Some(count.logical as u64), before["cpu_count"].as_u64());
    assert_eq!(
        count.physical.map(u64::from),
        before["cpu_count_physical"].as_u64(),
        "physical cores"
    );

    // cpu_freq: psutil reads /proc/cpuinfo where cpufreq is missing and
    // then says 0.0 for min and max; the agent says absent for "unknown".
    let freq = sys.cpu_freq.as_ref().expect("cpu_freq");
    let total = freq.total.as_ref().expect("cpu_freq.total");
    let pf = &before["cpu_freq"];
    assert!(
        !pf.is_null(),
        "psutil has no cpu_freq, the agent has {freq:?}"
    );
    // The current frequency moves with load; the same order of magnitude
    // is all that holds between two readings.
    let current = num(pf, "current");
    assert!(
        total.current > current / 3.0 && total.current < current * 3.0,
        "cpu_freq.current: agent {}, psutil {current}",
        total.current
    );
    for (name, agent_value) in [("min", total.min), ("max", total.max)] {
        let p = num(pf, name);
        match agent_value {
            Some(v) => assert!(
                (v - p).abs() <= 1.0,
                "cpu_freq.{name}: agent {v}, psutil {p}"
            ),
            None => assert_eq!(p, 0.0, "cpu_freq.{name}: agent absent, psutil {p}"),
        }
    }
    let pf_per_cpu = before["cpu_freq_percpu"].as_array().unwrap();
    if !freq.per_cpu.is_empty() {
        assert_eq!(freq.per_cpu.len(), pf_per_cpu.len(), "per-CPU frequencies");
    }

    // getloadavg: moves slowly (the kernel updates it every 5 s).
    let load = sys.loadavg.as_ref().expect("loadavg");
    for (i, (name, v)) in [
        ("load1", load.load1),
        ("load5", load.load5),
        ("load15", load.load15),
    ]
    .into_iter()
    .enumerate()
    {
        let b = before["loadavg"][i].as_f64().unwrap();
        let a = after["loadavg"][i].as_f64().unwrap();
        between(name, b, v, a, 0.5);
    }

    // virtual_memory: total is fixed; the rest moves with the builds
    // around us, within 2% of the total.
    let vm = sys.virtual_memory.as_ref().expect("virtual_memory");
    let (b, a) = (&before["virtual_memory"], &after["virtual_memory"]);
    assert_eq!(vm.total as f64, num(b, "total"), "virtual_memory.total");
    let slack = vm.total as f64 * 0.02;
    for (name, v) in [
        ("available", Some(vm.available)),
        ("used", Some(vm.used)),
        ("free", Some(vm.free)),
        ("active", vm.active),
        ("inactive", vm.inactive),
        ("buffers", vm.buffers),
        ("cached", vm.cached),
        ("shared", vm.shared),
        ("slab", vm.slab),
        ("wired", vm.wired),
    ] {
        match (b.get(name), v) {
            (Some(_), Some(v)) => between(
                &format!("virtual_memory.{name}"),
                num(b, name),
                v as f64,
                num(a, name),
                slack,
            ),
            (None, None) => {}
            (p, v) => panic!("virtual_memory.{name}: psutil {p:?}, agent {v:?}"),
        }
    }
    between(
        "virtual_memory.percent",
        num(b, "percent"),
        vm.percent,
        num(a, "percent"),
        2.0,
    );

    // swap_memory.
    let swap = sys.swap_memory.as_ref().expect("swap_memory");
    let (b, a) = (&before["swap_memory"], &after["swap_memory"]);
    assert_eq!(swap.total as f64, num(b, "total"), "swap_memory.total");
    let slack = (swap.total as f64 * 0.02).max(1.0);
    for (name, v) in [("used", swap.used), ("free", swap.free)] {
        between(
            &format!("swap_memory.{name}"),
            num(b, name),
            v as f64,
            num(a, name),
            slack,
        );
    }
    between(
        "swap_memory.percent",
        num(b, "percent"),
        swap.percent,
        num(a, "percent"),
        2.0,
    );
    // psutil counts pages swapped in and out (from /proc/vmstat) even
    // without swap; the agent gives them or leaves them out, never a
    // figure of its own.
    for (name, v) in [("sin", swap.sin), ("sout", swap.sout)] {
        if let Some(v) = v {
            between(
                &format!("swap_memory.{name}"),
                num(b, name),
                v as f64,
                num(a, name),
                0.0,
            );
        }
    }

    // users: the same sessions.
    let key = |name: &str, terminal: &str, host: &str| {
        (name.to_owned(), terminal.to_owned(), host.to_owned())
    };
    let mut agent_users: Vec<_> = sys
        .users
        .iter()
        .map(|u| key(&u.name, &u.terminal, &u.host))
        .collect();
    let mut psutil_users: Vec<_> = before["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            key(
                u["name"].as_str().unwrap_or(""),
                u["terminal"].as_str().unwrap_or(""),
                u["host"].as_str().unwrap_or(""),
            )
        })
        .collect();
    agent_users.sort();
    psutil_users.sort();
    assert_eq!(agent_users, psutil_users, "users");
    for u in &sys.users {
        let started = before["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == u.name.as_str() && p["terminal"] == u.terminal.as_str())
            .map(|p| num(p, "started"))
            .unwrap();
        assert!((u.started - started).abs() <= 1.0, "{u:?} vs {started}");
    }

    // boot_time: psutil's is whole seconds from /proc/stat's btime.
    let boot = sys.boot_time.expect("boot_time");
    assert!(
        (boot - num(&before, "boot_time")).abs() <= 1.0,
        "boot_time: agent {boot}, psutil {}",
        before["boot_time"]
    );

    // Sensors: the same readings; a host without them has none, which is
    // not an error.
    let mut psutil_temps: Vec<(String, String)> = Vec::new();
    for (sensor, readings) in before["temperatures"].as_object().unwrap() {
        for r in readings.as_array().unwrap() {
            psutil_temps.push((sensor.clone(), r["label"].as_str().unwrap_or("").to_owned()));
        }
    }
    let mut agent_temps: Vec<(String, String)> = sys
        .temperatures
        .iter()
        .map(|t| (t.sensor.clone(), t.label.clone()))
        .collect();
    psutil_temps.sort();
    agent_temps.sort();
    assert_eq!(agent_temps, psutil_temps, "temperatures");
    for t in &sys.temperatures {
        let p = before["temperatures"][&t.sensor]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["label"] == t.label.as_str())
            .unwrap();
        assert!((t.current - num(p, "current")).abs() <= 5.0, "{t:?} vs {p}");
    }
    let psutil_fans: usize = before["fans"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(sys.fans.len(), psutil_fans, "fans: {:?}", sys.fans);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_battery_is_absent_or_as_psutil_says() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let sys = system(&client, &[pb::SystemField::SensorsBattery]).await;
    let oracle = tokio::task::spawn_blocking(psutil::system).await.unwrap();
    let psutil_battery = &oracle["battery"];
    match (&sys.battery, psutil_battery.is_null()) {
        (None, true) => {
            // No battery is an answer, not an error.
            assert!(sys.field_errors.is_empty(), "{:?}", field_errors(&sys));
        }
        (Some(b), false) => {
            assert!(
                (b.percent - num(psutil_battery, "percent")).abs() <= 1.0,
                "{b:?} vs {psutil_battery}"
            );
            assert_eq!(
                b.power_plugged,
                psutil_battery["power_plugged"].as_bool(),
                "power_plugged"
            );
        }
        (agent_side, _) => panic!("battery: agent {agent_side:?}, psutil {psutil_battery}"),
    }
}

/// A partition as (device, mountpoint, fstype, opts).
type Mount = (String, String, String, String);

fn psutil_mounts(list: &Value) -> Vec<Mount> {
    let mut mounts: Vec<Mount> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or("").to_owned();
            (s("device"), s("mountpoint"), s("fstype"), s("opts"))
        })
        .collect();
    mounts.sort();
    mounts
}

fn agent_mounts(disks: &pb::ListDisksResponse) -> Vec<Mount> {
    let mut mounts: Vec<Mount> = disks
        .partitions
        .iter()
        .map(|p| {
            (
                p.device.clone(),
                p.mountpoint.clone(),
                p.fstype.clone(),
                p.opts.clone(),
            )
        })
        .collect();
    mounts.sort();
    mounts
}

async fn disks(client: &Client, all: bool) -> pb::ListDisksResponse {
    client
        .disks(pb::ListDisksRequest {
            all,
            ..Default::default()
        })
        .await
        .expect("ListDisks")
}

#[tokio::test(flavor = "multi_thread")]
async fn disks_match_psutil() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let before = tokio::task::spawn_blocking(psutil::system).await.unwrap();
    let some = disks(&client, false).await;
    let all = disks(&client, true).await;
    let after = tokio::task::spawn_blocking(psutil::system).await.unwrap();
    assert!(
        some.field_errors.is_empty() && all.field_errors.is_empty(),
        "{:?} {:?}",
        some.field_errors,
        all.field_errors
    );

    // disk_partitions(all=False) and all=True: the same mounts, with the
    // same options, duplicates included.
    assert_eq!(
        agent_mounts(&some),
        psutil_mounts(&before["partitions"]),
        "disk_partitions()"
    );
    assert_eq!(
        agent_mounts(&all),
        psutil_mounts(&before["partitions_all"]),
        "disk_partitions(all=True)"
    );

    // disk_usage per mount: the size is fixed, the rest moves with the
    // writes of the builds around us.
    for p in &some.partitions {
        let (b, a) = (
            &before["disk_usage"][&p.mountpoint],
            &after["disk_usage"][&p.mountpoint],
        );
        let Some(usage) = &p.usage else {
            assert!(
                b.is_null(),
                "{}: agent has no usage ({:?}), psutil has {b}",
                p.mountpoint,
                p.usage_error
            );
            continue;
        };
        assert_eq!(
            usage.total as f64,
            num(b, "total"),
            "{} total",
            p.mountpoint
        );
        let slack = (usage.total as f64 * 0.005).max(64.0 * 1024.0 * 1024.0);
        for (name, v) in [("used", usage.used), ("free", usage.free)] {
            between(
                &format!("{} {name}", p.mountpoint),
                num(b, name),
                v as f64,
                num(a, name),
                slack,
            );
        }
        between(
            &format!("{} percent", p.mountpoint),
            num(b, "percent"),
            usage.percent,
            num(a, "percent"),
            0.5,
        );
    }

    // disk_io_counters(perdisk=True): the same disks, counters between
    // psutil's readings.
    let (pb_before, pb_after) = (&before["disk_io_perdisk"], &after["disk_io_perdisk"]);
    let mut agent_names: Vec<&str> = some.io_counters.iter().map(|d| d.name.as_str()).collect();
    let mut psutil_names: Vec<&str> = pb_before
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    agent_names.sort_unstable();
    psutil_names.sort_unstable();
    assert_eq!(agent_names, psutil_names, "disk_io_counters(perdisk=True)");
    for d in &some.io_counters {
        check_disk_io(&d.name, &pb_before[&d.name], d, &pb_after[&d.name]);
    }
    // The total counts whole disks only; psutil's sums its perdisk
    // entries, which on this kind of host are whole disks too (a
    // partition has /sys/block/<disk>/<partition>, not /sys/block/<name>).
    let total = some.io_total.as_ref().expect("io_total");
    let whole = |v: &Value| -> Value {
        let mut sum = BTreeMap::<String, f64>::new();
        for (name, c) in v.as_object().unwrap() {
            if !Path::new("/sys/block").join(name).exists() {
                continue;
            }
            for (k, n) in c.as_object().unwrap() {
                *sum.entry(k.clone()).or_default() += n.as_f64().unwrap_or(0.0);
            }
        }
        serde_json::to_value(sum).unwrap()
    };
    check_disk_io("total", &whole(pb_before), total, &whole(pb_after));
}

#[track_caller]
fn check_disk_io(what: &str, before: &Value, agent: &pb::DiskIoCounters, after: &Value) {
    for (name, v) in [
        ("read_count", Some(agent.read_count)),
        ("write_count", Some(agent.write_count)),
        ("read_bytes", Some(agent.read_bytes)),
        ("write_bytes", Some(agent.write_bytes)),
        ("read_time", agent.read_time),
        ("write_time", agent.write_time),
        ("read_merged_count", agent.read_merged_count),
        ("write_merged_count", agent.write_merged_count),
        ("busy_time", agent.busy_time),
    ] {
        match (before.get(name), v) {
            (Some(_), Some(v)) => between(
                &format!("{what}.{name}"),
                num(before, name),
                v as f64,
                num(after, name),
                0.0,
            ),
            (None, None) => {}
            (p, v) => panic!("{what}.{name}: psutil {p:?}, agent {v:?}"),
        }
    }
}

// === the kernel's files and the commands ===

fn command_output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `free -b`: the numbers of the line starting with `label`.
fn free_line(text: &str, label: &str) -> Vec<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("free printed no {label:?} line:\n{text}"))
        .split_whitespace()
        .map(|n| n.parse().expect("a number in free's output"))
        .collect()
}

/// /proc/stat's aggregate cpu line, in seconds, in psutil's order.
fn proc_stat_cpu() -> Vec<f64> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    std::fs::read_to_string("/proc/stat")
        .expect("/proc/stat")
        .lines()
        .find_map(|l| l.strip_prefix("cpu "))
        .expect("cpu line")
        .split_whitespace()
        .map(|n| n.parse::<f64>().expect("tick count") / ticks)
        .collect()
}

/// /proc/diskstats: per device, reads completed, writes completed.
fn diskstats() -> BTreeMap<String, (f64, f64)> {
    std::fs::read_to_string("/proc/diskstats")
        .expect("/proc/diskstats")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let n = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok());
            Some((f.get(2)?.to_string(), (n(3)?, n(7)?)))
        })
        .collect()
}

fn proc_loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").expect("/proc/loadavg");
    let mut it = text.split_whitespace().map(|n| n.parse().expect("load"));
    [
        it.next().unwrap_or(f64::NAN),
        it.next().unwrap_or(f64::NAN),
        it.next().unwrap_or(f64::NAN),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn system_figures_match_the_kernel_files_and_the_commands() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;

    let free_before = command_output("free", &["-b"]);
    let stat_before = proc_stat_cpu();
    let load_before = proc_loadavg();
    let disks_before = diskstats();
    let who_before = command_output("who", &[]);
    let sys = system(&client, &READ).await;
    let listed = disks(&client, false).await;
    let df = command_output(
        "df",
        &["-B1", "--output=source,target,fstype,size,used,avail"],
    );
    let free_after = command_output("free", &["-b"]);
    let stat_after = proc_stat_cpu();
    let load_after = proc_loadavg();
    let disks_after = diskstats();
    let who_after = command_output("who", &[]);

    // free -b: total, free, shared, buff/cache, available; swap total,
    // used, free.
    let vm = sys.virtual_memory.as_ref().expect("virtual_memory");
    let (mb, ma) = (
        free_line(&free_before, "Mem:"),
        free_line(&free_after, "Mem:"),
    );
    assert_eq!(vm.total as f64, mb[0], "free's total");
    let slack = vm.total as f64 * 0.02;
    between("free's free", mb[2], vm.free as f64, ma[2], slack);
    between(
        "free's shared",
        mb[3],
        vm.shared.expect("shared") as f64,
        ma[3],
        slack,
    );
    // buff/cache is buffers + cached (page cache and reclaimable slab, as
    // psutil's cached).
    between(
        "free's buff/cache",
        mb[4],
        (vm.buffers.expect("buffers") + vm.cached.expect("cached")) as f64,
        ma[4],
        slack,
    );
    between("free's available", mb[5], vm.available as f64, ma[5], slack);
    let swap = sys.swap_memory.as_ref().expect("swap_memory");
    let (sb, sa) = (
        free_line(&free_before, "Swap:"),
        free_line(&free_after, "Swap:"),
    );
    assert_eq!(swap.total as f64, sb[0], "free's swap total");
    let swap_slack = (swap.total as f64 * 0.02).max(1.0);
    between(
        "free's swap used",
        sb[1],
        swap.used as f64,
        sa[1],
        swap_slack,
    );
    between(
        "free's swap free",
        sb[2],
        swap.free as f64,
        sa[2],
        swap_slack,
    );

    // /proc/stat: user nice system idle iowait irq softirq steal guest
    // guest_nice.
    let total = sys
        .cpu_times
        .as_ref()
        .and_then(|t| t.total.as_ref())
        .expect("cpu_times.total");
    for (i, (mode, v)) in cpu_modes(total).into_iter().enumerate() {
        let tolerance = if matches!(mode, "idle" | "iowait") {
            2.0
        } else {
            0.05
        };
        between(
            &format!("/proc/stat {mode}"),
            stat_before[i],
            v.unwrap_or_else(|| panic!("{mode} missing")),
            stat_after[i],
            tolerance,
        );
    }

    // /proc/loadavg (what uptime prints).
    let load = sys.loadavg.as_ref().expect("loadavg");
    for (i, v) in [load.load1, load.load5, load.load15]
        .into_iter()
        .enumerate()
    {
        between("/proc/loadavg", load_before[i], v, load_after[i], 0.5);
    }
    let uptime = command_output("uptime", &[]);
    assert!(uptime.contains("load average"), "{uptime}");

    // /proc/diskstats: reads and writes completed, per device.
    for d in &listed.io_counters {
        let (b, a) = (disks_before[&d.name], disks_after[&d.name]);
        between(
            &format!("{} reads", d.name),
            b.0,
            d.read_count as f64,
            a.0,
            0.0,
        );
        between(
            &format!("{} writes", d.name),
            b.1,
            d.write_count as f64,
            a.1,
            0.0,
        );
    }

    // who: one line per session.
    let sessions = |text: &str| text.lines().filter(|l| !l.trim().is_empty()).count();
    let (wb, wa) = (sessions(&who_before), sessions(&who_after));
    assert!(
        (wb.min(wa)..=wb.max(wa)).contains(&sys.users.len()),
        "who: {wb} then {wa} sessions, agent {:?}",
        sys.users
    );

    // df -B1: for each mount both list, size is exact; used and avail move
    // with the writes around us. df's avail is what unprivileged users
    // may still use, psutil's and the agent's free.
    let mut matched = 0;
    for line in df.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [source, target, _fstype, size, used, avail] = f[..] else {
            continue;
        };
        let Some(p) = listed.partitions.iter().find(|p| p.mountpoint == target) else {
            assert!(
                !source.starts_with("/dev/"),
                "df lists {target} ({source}), the agent does not: {:?}",
                listed.partitions
            );
            continue;
        };
        assert_eq!(p.device, source, "{target}");
        let usage = p.usage.as_ref().expect("usage");
        let n = |s: &str| s.parse::<f64>().expect("df number");
        assert_eq!(usage.total as f64, n(size), "df size of {target}");
        let slack = (usage.total as f64 * 0.005).max(64.0 * 1024.0 * 1024.0);
        assert!(
            (usage.used as f64 - n(used)).abs() <= slack,
            "df used of {target}: {used} vs {}",
            usage.used
        );
        assert!(
            (usage.free as f64 - n(avail)).abs() <= slack,
            "df avail of {target}: {avail} vs {}",
            usage.free
        );
        matched += 1;
    }
    assert!(matched > 0, "no mount in both df and the agent:\n{df}");
}

// === CPU percentages ===

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_child_reads_busy_and_a_sleeping_one_idle() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let burner = ChildGroup::spawn(
        Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .stdin(Stdio::null()),
    )
    .expect("spawn a busy loop");
    let sleeper = ChildGroup::spawn(Command::new("sleep").arg("600").stdin(Stdio::null()))
        .expect("spawn sleep");
    let (busy, idle) = (burner.id(), sleeper.id());

    let stream = client
        .list_processes(pb::ListProcessesRequest {
            memory_maps_ungrouped: false,
            fields: vec![
                pb::ProcessField::CpuPercent as i32,
                pb::ProcessField::MemoryPercent as i32,
                pb::ProcessField::MemoryInfo as i32,
            ],
            filter: Some(pb::ProcessFilter {
                pids: vec![busy, idle],
                ..Default::default()
            }),
            interval_ms: 500,
        })
        .await
        .expect("ListProcesses");
    let procs: Vec<_> = stream
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("process stream");
    let find = |pid: u32| {
        procs
            .iter()
            .find(|p| p.pid() == pid)
            .unwrap_or_else(|| panic!("pid {pid} not listed"))
            .proto()
            .clone()
    };
    let (b, s) = (find(busy), find(idle));
    let busy_pct = b.cpu_percent.expect("busy cpu_percent");
    let idle_pct = s.cpu_percent.expect("idle cpu_percent");
    // However loaded the machine, the loop runs some of the interval
    // (never more than every CPU) and more of it than sleep, which runs
    // at most its start: no share is assumed.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    assert!(
        busy_pct > 0.0 && busy_pct <= 100.0 * cpus + 5.0,
        "busy loop at {busy_pct}%"
    );
    assert!(
        idle_pct < busy_pct,
        "sleep at {idle_pct}%, the loop at {busy_pct}%"
    );

    // psutil sees the same: the loop busy, the memory share the same
    // within the movement of a sleeping process's resident size.
    let oracle = tokio::task::spawn_blocking(move || psutil::process_percent(busy, 0.5))
        .await
        .unwrap();
    assert!(num(&oracle, "cpu_percent") > 0.0, "psutil: {oracle}");
    let sleeper_oracle = tokio::task::spawn_blocking(move || psutil::process_percent(idle, 0.1))
        .await
        .unwrap();
    let mem = s.memory_percent.expect("memory_percent");
    let p = num(&sleeper_oracle, "memory_percent");
    assert!(
        (mem - p).abs() <= p * 0.1 + 0.001,
        "memory_percent of sleep: agent {mem}, psutil {p}"
    );
    // memory_percent is rss / total * 100, as psutil's.
    let vm = system(&client, &[pb::SystemField::VirtualMemory]).await;
    let total = vm.virtual_memory.expect("virtual_memory").total as f64;
    let rss = s.memory_info.as_ref().expect("memory_info").rss as f64;
    assert!(
        (mem - rss / total * 100.0).abs() <= 1e-6 + mem * 0.01,
        "memory_percent {mem} vs rss {rss} of {total}"
    );
    drop((burner, sleeper));
}

#[tokio::test(flavor = "multi_thread")]
async fn system_cpu_percent_is_a_share_per_cpu() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let sys = client
        .system(pb::GetSystemRequest {
            fields: vec![
                pb::SystemField::CpuPercent as i32,
                pb::SystemField::CpuTimesPercent as i32,
                pb::SystemField::CpuCount as i32,
            ],
            interval_ms: 200,
            ..Default::default()
        })
        .await
        .expect("GetSystem");
    assert!(sys.field_errors.is_empty(), "{:?}", field_errors(&sys));
    let count = sys.cpu_count.expect("cpu_count").logical as usize;
    let pct = sys.cpu_percent.expect("cpu_percent");
    assert!((0.0..=100.0).contains(&pct.total), "{pct:?}");
    assert_eq!(pct.per_cpu.len(), count, "{pct:?}");
    assert!(
        pct.per_cpu.iter().all(|p| (0.0..=100.0).contains(p)),
        "{pct:?}"
    );
    let shares = sys.cpu_times_percent.expect("cpu_times_percent");
    assert_eq!(shares.per_cpu.len(), count);
    let total = shares.total.expect("total");
    for (mode, v) in cpu_modes(&total) {
        if let Some(v) = v {
            assert!((0.0..=100.0).contains(&v), "{mode} {v}");
        }
    }
}

// === cgroup (v1 controllers) ===

/// v1 cgroups made for a test, one per controller hierarchy; their tasks
/// are moved back to the root and the directories removed on drop.
struct V1Cgroups {
    dirs: Vec<PathBuf>,
}

impl V1Cgroups {
    fn create(name: &str, controllers: &[&str]) -> std::io::Result<V1Cgroups> {
        let mut made = V1Cgroups { dirs: Vec::new() };
        for c in controllers {
            let dir = Path::new("/sys/fs/cgroup").join(c).join(name);
            std::fs::create_dir(&dir)?;
            made.dirs.push(dir);
        }
        Ok(made)
    }

    fn dir(&self, controller: &str) -> &Path {
        self.dirs
            .iter()
            .find(|d| d.parent().is_some_and(|p| p.ends_with(controller)))
            .expect("a cgroup of that controller")
    }

    fn write(&self, controller: &str, file: &str, value: &str) {
        let path = self.dir(controller).join(file);
        std::fs::write(&path, value).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    fn read(&self, controller: &str, file: &str) -> u64 {
        let path = self.dir(controller).join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

impl Drop for V1Cgroups {
    fn drop(&mut self) {
        for dir in &self.dirs {
            // Move what is still inside out to the hierarchy's root, then
            // remove the directory; an exiting task can hold it briefly.
            if let (Ok(procs), Some(root)) = (
                std::fs::read_to_string(dir.join("cgroup.procs")),
                dir.parent(),
            ) {
                for pid in procs.lines() {
                    let _ = std::fs::write(root.join("cgroup.procs"), pid);
                }
            }
            for _ in 0..200 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if dir.exists() {
                eprintln!("could not remove {}", dir.display());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v1_cgroup_reads_its_limits_and_its_processes_name_it() {
    let name = format!("hostscope-test-{}", std::process::id());
    let controllers = ["memory", "pids", "cpu", "cpuacct"];
    let cgroups = match V1Cgroups::create(&name, &controllers) {
        Ok(c) => c,
        Err(e) => {
            hostscope_integration::skip!(
                "no writable cgroup v1 hierarchies under /sys/fs/cgroup ({e})"
            );
        }
    };
    let limit: u64 = 256 * 1024 * 1024;
    cgroups.write("memory", "memory.limit_in_bytes", &limit.to_string());
    cgroups.write("pids", "pids.max", "50");
    cgroups.write("cpu", "cpu.cfs_period_us", "100000");
    cgroups.write("cpu", "cpu.cfs_quota_us", "50000");

    // Declared after the cgroups, so dropped (killed and reaped) first.
    let child = ChildGroup::spawn(Command::new("sleep").arg("600").stdin(Stdio::null()))
        .expect("spawn sleep");
    for c in controllers {
        cgroups.write(c, "cgroup.procs", &child.id().to_string());
    }

    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let path = format!("/{name}");
    let memory_before = cgroups.read("memory", "memory.usage_in_bytes");
    let cpu_before = cgroups.read("cpuacct", "cpuacct.usage") / 1000;
    let sys = client
        .system(pb::GetSystemRequest {
            fields: vec![pb::SystemField::Cgroup as i32],
            cgroup: path.clone(),
            ..Default::default()
        })
        .await
        .expect("GetSystem cgroup");
    let memory_after = cgroups.read("memory", "memory.usage_in_bytes");
    let cpu_after = cgroups.read("cpuacct", "cpuacct.usage") / 1000;
    assert!(sys.field_errors.is_empty(), "{:?}", field_errors(&sys));
    let cg = sys.cgroup.expect("cgroup");
    assert_eq!(cg.path, path);
    assert_eq!(cg.version, 1, "{cg:?}");
    assert_eq!(cg.memory_max, Some(limit), "{cg:?}");
    between(
        "memory_current",
        memory_before as f64,
        cg.memory_current as f64,
        memory_after as f64,
        0.0,
    );
    assert_eq!(cg.pids_max, Some(50), "{cg:?}");
    assert_eq!(cg.pids_current, Some(1), "{cg:?}");
    assert_eq!(cg.cpu_max_quota_us, Some(50_000), "{cg:?}");
    assert_eq!(cg.cpu_max_period_us, 100_000, "{cg:?}");
    between(
        "cpu_usage_us",
        cpu_before as f64,
        cg.cpu_usage_us.expect("cpu_usage_us") as f64,
        cpu_after as f64,
        0.0,
    );
    // v1 counts memory and swap together; there is no swap figure.
    assert_eq!(cg.memory_swap_max, None);

    // The child names its cgroup in the memory hierarchy.
    let p = client
        .process(child.id(), &[pb::ProcessField::Cgroup])
        .await
        .expect("GetProcess");
    assert_eq!(
        p.proto().cgroup.as_deref(),
        Some(path.as_str()),
        "{:?}",
        p.proto()
    );

    // Without limits, "unlimited" is absent rather than a huge number.
    cgroups.write("memory", "memory.limit_in_bytes", "-1");
    cgroups.write("pids", "pids.max", "max");
    cgroups.write("cpu", "cpu.cfs_quota_us", "-1");
    let sys = client
        .system(pb::GetSystemRequest {
            fields: vec![pb::SystemField::Cgroup as i32],
            cgroup: path.clone(),
            ..Default::default()
        })
        .await
        .expect("GetSystem cgroup");
    let cg = sys.cgroup.expect("cgroup");
    assert_eq!(
        (cg.memory_max, cg.pids_max, cg.cpu_max_quota_us),
        (None, None, None),
        "{cg:?}"
    );

    // A cgroup that does not exist is a field error, not a call error.
    let sys = client
        .system(pb::GetSystemRequest {
            fields: vec![pb::SystemField::Cgroup as i32],
            cgroup: format!("/{name}-missing"),
            ..Default::default()
        })
        .await
        .expect("GetSystem cgroup");
    assert!(sys.cgroup.is_none(), "{:?}", sys.cgroup);
    assert_eq!(sys.field_errors.len(), 1, "{:?}", field_errors(&sys));
    drop(child);
    drop(cgroups);
}

// === bad requests ===

#[tokio::test(flavor = "multi_thread")]
async fn bad_system_requests_are_invalid_arguments_naming_the_field() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let mut raw = pb::host_inspector_client::HostInspectorClient::new(client.channel());

    let status = raw
        .get_system(pb::GetSystemRequest {
            interval_ms: 20_000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("interval_ms"), "{status:?}");

    let status = raw
        .get_system(pb::GetSystemRequest {
            fields: vec![pb::SystemField::Cgroup as i32],
            cgroup: "../x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("cgroup"), "{status:?}");

    let status = raw
        .get_system(pb::GetSystemRequest {
            cgroup: "/a/../../x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("cgroup"), "{status:?}");

    let status = match raw
        .list_processes(pb::ListProcessesRequest {
            memory_maps_ungrouped: false,
            fields: vec![pb::ProcessField::CpuPercent as i32],
            interval_ms: 20_000,
            ..Default::default()
        })
        .await
    {
        Err(status) => status,
        Ok(response) => {
            let mut stream = response.into_inner();
            loop {
                match stream.message().await {
                    Err(status) => break status,
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("interval_ms 20000 accepted"),
                }
            }
        }
    };
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("interval_ms"), "{status:?}");

    let status = raw
        .list_disks(pb::ListDisksRequest {
            usage_timeout_ms: 60_000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("usage_timeout_ms"), "{status:?}");

    // The agent keeps serving.
    assert!(client.pid_exists(std::process::id()).await.unwrap());
}
