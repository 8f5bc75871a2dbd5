//! `hostscope sys`, `df`, `ps` with %CPU and %MEM, and `inventory`'s
//! figures, against a real agent over real mTLS.

use std::process::Command;

use hostscope_integration::{TestAgent, child::ChildGroup};

use super::reap::hostscope;

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// MemTotal of /proc/meminfo, in bytes.
fn mem_total() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal");
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_shows_one_screen_for_a_host_and_its_figures_as_json() {
    let agent = TestAgent::start().await;
    let (code, out, err) = hostscope(&agent, "client", &["sys"]).await;
    assert_eq!(code, 0, "{err}");
    for part in [
        "load average:",
        "cpu: ",
        "% busy",
        "cpus: ",
        "Mem:",
        "Swap:",
        "fullest disk: /",
    ] {
        assert!(out.contains(part), "{part:?} missing:\n{out}");
    }

    let (code, out, err) = hostscope(&agent, "client", &["sys", "--per-cpu", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let record = json(&out);
    assert_eq!(
        record["virtual_memory"]["total"].as_u64(),
        Some(mem_total())
    );
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let per_cpu = record["cpu_percent"]["per_cpu"]
        .as_array()
        .expect("per_cpu");
    assert!(per_cpu.len() >= cpus, "{per_cpu:?}");
    let busy = record["cpu_percent"]["total"].as_f64().expect("total");
    assert!((0.0..=100.0).contains(&busy), "{busy}");
    let partitions = record["partitions"].as_array().expect("partitions");
    assert!(
        partitions
            .iter()
            .any(|p| p["mountpoint"] == "/" && p["usage"]["total"].as_u64() > Some(0)),
        "{partitions:?}"
    );

    let (code, _, err) = hostscope(&agent, "client", &["sys", "--interval", "11s"]).await;
    assert_eq!(code, 1, "an interval over 10s is refused before dialling");
    assert!(err.contains("between 1ms and 10s"), "{err}");
    let args = ["sys", "--cgroup", "../etc", "-o", "json"];
    let (code, _, err) = hostscope(&agent, "client", &args).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cgroup") && err.contains("absolute"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_over_a_fleet_is_one_line_per_host() {
    let a = TestAgent::start().await;
    let b = a.sibling().await;
    let hosts = format!("{},{}", a.endpoint(), b.endpoint());
    let (code, out, err) = hostscope(&a, "client", &["--hosts", &hosts, "sys"]).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "a header and a line per host:\n{out}");
    assert!(
        lines[0].starts_with("HOST") && lines[0].contains("FULLEST DISK"),
        "{out}"
    );
    for agent in [&a, &b] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&agent.endpoint()))
            .unwrap_or_else(|| panic!("no line for {}:\n{out}", agent.endpoint()));
        assert!(line.contains(" / "), "the fullest disk is named: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn df_lists_file_systems_like_df_and_finds_the_nearly_full() {
    let agent = TestAgent::start().await;
    let (code, out, err) = hostscope(&agent, "client", &["df"]).await;
    assert_eq!(code, 0, "{err}");
    let header = out.lines().next().unwrap_or_default();
    for column in [
        "Filesystem",
        "Type",
        "Size",
        "Used",
        "Avail",
        "Use%",
        "Mounted on",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert!(out.lines().skip(1).any(|l| l.ends_with(" /")), "{out}");

    // --all adds pseudo file systems; /proc is one.
    let args = ["df", "--all", "--sort", "-percent", "-o", "ndjson"];
    let (code, out, err) = hostscope(&agent, "client", &args).await;
    assert_eq!(code, 0, "{err}");
    let rows: Vec<serde_json::Value> = out.lines().map(json).collect();
    assert!(rows.iter().any(|r| r["mountpoint"] == "/proc"), "{out}");
    let percents: Vec<f64> = rows.iter().filter_map(|r| r["percent"].as_f64()).collect();
    assert!(percents.windows(2).all(|w| w[0] >= w[1]), "{percents:?}");
    assert!(rows.iter().all(|r| r["host"] == agent.endpoint().as_str()));

    // What statvfs says of / is what df says of it.
    let root = rows.iter().find(|r| r["mountpoint"] == "/").expect("/");
    let df = Command::new("df")
        .args(["-B1", "--output=size", "/"])
        .output()
        .expect("df");
    let size: u64 = String::from_utf8_lossy(&df.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df's size");
    assert_eq!(root["total"].as_u64(), Some(size));

    // Nothing is fuller than full.
    let args = [
        "df",
        "--min-percent",
        "100.0",
        "--type",
        "ext4,xfs,btrfs",
        "-o",
        "csv",
    ];
    let (code, out, err) = hostscope(&agent, "client", &args).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().skip(1).all(|l| l.contains(",100")),
        "only full file systems: {out}"
    );
    let (code, _, err) = hostscope(&agent, "client", &["df", "--min-percent", "120"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("from 0 to 100"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ps_shows_cpu_and_memory_percentages_measured_over_the_interval() {
    let agent = TestAgent::start().await;
    // One process spinning, one sleeping; both killed when the test ends.
    let busy = ChildGroup::spawn(Command::new("sh").args(["-c", "while :; do :; done"]))
        .expect("a busy child");
    let idle = ChildGroup::spawn(Command::new("sleep").arg("600")).expect("an idle child");
    let pids = format!("{},{}", busy.id(), idle.id());
    let args = [
        "ps",
        "--pid",
        &pids,
        "--fields",
        "pid,cpu_percent,memory_percent,cgroup",
        "--interval",
        "500ms",
        "-o",
        "json",
    ];
    let (code, out, err) = hostscope(&agent, "client", &args).await;
    assert_eq!(code, 0, "{err}");
    let records = json(&out);
    let of = |pid: u32| {
        records
            .as_array()
            .and_then(|all| {
                all.iter()
                    .find(|r| r["pid"].as_u64() == Some(u64::from(pid)))
            })
            .cloned()
            .unwrap_or_else(|| panic!("no pid {pid}: {out}"))
    };
    let (busy_rec, idle_rec) = (of(busy.id()), of(idle.id()));
    let cpu = |r: &serde_json::Value| r["cpu_percent"].as_f64().expect("cpu_percent");
    // On a loaded two-core machine a spinning shell still gets a good
    // share of one CPU; a sleeping one gets none.
    assert!(cpu(&busy_rec) > 10.0, "{busy_rec}");
    assert!(cpu(&idle_rec) < cpu(&busy_rec), "{idle_rec} vs {busy_rec}");
    let mem = idle_rec["memory_percent"].as_f64().expect("memory_percent");
    assert!(mem > 0.0 && mem < 100.0, "{idle_rec}");
    let own = std::fs::read_to_string(format!("/proc/{}/cgroup", idle.id())).expect("cgroup");
    let path = idle_rec["cgroup"].as_str().expect("cgroup");
    assert!(
        own.lines().any(|l| l.ends_with(&format!(":{path}"))),
        "{path} in {own}"
    );

    // The default table shows both, and sorts by them.
    let args = ["ps", "--pid", &pids, "--sort", "-cpu"];
    let (code, out, err) = hostscope(&agent, "client", &args).await;
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.contains("%CPU") && header.contains("%MEM"),
        "{header}"
    );
    let first = lines.next().unwrap_or_default();
    assert!(
        first.contains(&busy.id().to_string()),
        "busiest first:\n{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_carries_the_figures_and_disks() {
    let agent = TestAgent::start().await;
    let (code, out, err) = hostscope(&agent, "client", &["inventory", "-o", "ndjson"]).await;
    assert_eq!(code, 0, "{err}");
    let record = json(out.lines().next().unwrap_or_default());
    assert_eq!(
        record["figures"]["virtual_memory"]["total"].as_u64(),
        Some(mem_total())
    );
    assert!(
        record["figures"]["loadavg"]["load1"].is_number(),
        "{record}"
    );
    let partitions = record["disks"]["partitions"]
        .as_array()
        .expect("partitions");
    assert!(
        partitions.iter().any(|p| p["mountpoint"] == "/"),
        "{partitions:?}"
    );
    let (code, out, err) = hostscope(&agent, "client", &["inventory", "-o", "table"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("MEM%") && out.contains("DISK%"), "{out}");
}
