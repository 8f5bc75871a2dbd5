//! `hostscope sys` and `hostscope df`: the host's own figures, like the
//! top of `top`, `free -h` and `df -h`.

use std::{
    cmp::Ordering,
    io::{self, Write},
};

use serde::Serialize;

use super::{
    args::{DfArgs, DfKey, DfSort, Output, SysArgs},
    fanout::Io,
    format, output,
    ps::interval_ms,
    table::{Align, Table},
};
use hostscope_client::{
    Client,
    fleet::{Fleet, HostSpec, Summary},
    proto::{self, EnumName},
};

// === sys ===

/// What `sys` asks each host: its figures, and its disks' usage for the
/// fullest one.
struct Snapshot {
    system: proto::System,
    disks: Option<proto::ListDisksResponse>,
}

/// Shows each host's figures: one screen for one host, one line per host
/// for a fleet.
pub async fn sys(
    fleet: &Fleet,
    args: SysArgs,
    format: Output,
    io: &mut Io<'_>,
) -> anyhow::Result<Summary> {
    let request = proto::GetSystemRequest {
        fields: Vec::new(),
        interval_ms: interval_ms(args.interval),
        cgroup: args.cgroup.clone().unwrap_or_default(),
    };
    let call = move |client: Client| {
        let request = request.clone();
        async move {
            let system = client.system(request).await?;
            let disks = client
                .disks(proto::ListDisksRequest {
                    fields: vec![proto::DiskField::Usage as i32],
                    ..Default::default()
                })
                .await
                .ok();
            Ok(Snapshot { system, disks })
        }
    };
    let template = sys_record("", &system_template(), Some(&[partition_template()]))?;
    let one = fleet.len() == 1;
    let mut printer = io.printer(format, fleet.len(), &template);
    if one {
        printer = printer.one_record_per_host();
    }
    let mut lines = Table::new(SYS_COLUMNS.map(|(name, align)| (name.to_owned(), align)));
    let mut rows = Vec::new();
    let per_cpu = args.per_cpu;
    let summary = io
        .fan_out(fleet, call, |host, s: Snapshot, out| {
            if !printer.is_table() {
                let disks = s.disks.as_ref().map(|d| d.partitions.as_slice());
                return Ok(printer.records(out, [sys_record(&host.name, &s.system, disks)])?);
            }
            if one {
                return Ok(printer.table(out, host, |out| write_screen(out, &s, per_cpu))?);
            }
            rows.push(sys_line(host, &s));
            Ok(())
        })
        .await?;
    if printer.is_table() && !one && !rows.is_empty() {
        rows.sort();
        for row in rows {
            lines.push(row);
        }
        lines.write_with(io.out, io.width, !io.no_headers)?;
    }
    printer.finish(io.out)?;
    Ok(summary)
}

/// A host's figures as one record, its partitions under "partitions".
fn sys_record(
    host: &str,
    system: &proto::System,
    partitions: Option<&[proto::DiskPartition]>,
) -> io::Result<serde_json::Value> {
    let mut record = output::record(host, system)?;
    if let (Some(partitions), serde_json::Value::Object(map)) = (partitions, &mut record) {
        map.insert("partitions".to_owned(), serde_json::to_value(partitions)?);
    }
    Ok(record)
}

/// A System with every figure and member present, for the CSV header.
fn system_template() -> proto::System {
    let times = proto::SystemCpuTimes {
        iowait: Some(0.0),
        irq: Some(0.0),
        softirq: Some(0.0),
        steal: Some(0.0),
        guest: Some(0.0),
        guest_nice: Some(0.0),
        ..Default::default()
    };
    let set = proto::SystemCpuTimesSet {
        total: Some(times),
        per_cpu: vec![times],
    };
    let freq = proto::CpuFreq {
        min: Some(0.0),
        max: Some(0.0),
        ..Default::default()
    };
    proto::System {
        cpu_times: Some(set.clone()),
        cpu_percent: Some(proto::CpuPercent {
            total: 0.0,
            per_cpu: vec![0.0],
        }),
        cpu_times_percent: Some(set),
        cpu_stats: Some(proto::CpuStats {
            soft_interrupts: Some(0),
            syscalls: Some(0),
            ..Default::default()
        }),
        cpu_freq: Some(proto::CpuFreqSet {
            total: Some(freq),
            per_cpu: vec![freq],
        }),
        cpu_count: Some(proto::CpuCount {
            logical: 0,
            physical: Some(0),
        }),
        loadavg: Some(proto::LoadAvg::default()),
        virtual_memory: Some(proto::VirtualMemory {
            active: Some(0),
            inactive: Some(0),
            buffers: Some(0),
            cached: Some(0),
            shared: Some(0),
            slab: Some(0),
            wired: Some(0),
            ..Default::default()
        }),
        swap_memory: Some(proto::SwapMemory {
            sin: Some(0),
            sout: Some(0),
            ..Default::default()
        }),
        users: vec![proto::User {
            pid: Some(0),
            ..Default::default()
        }],
        boot_time: Some(0.0),
        temperatures: vec![proto::Temperature {
            high: Some(0.0),
            critical: Some(0.0),
            ..Default::default()
        }],
        fans: vec![proto::Fan::default()],
        battery: Some(proto::Battery {
            secsleft: Some(0.0),
            power_plugged: Some(false),
            ..Default::default()
        }),
        cgroup: Some(proto::Cgroup {
            memory_max: Some(0),
            memory_swap_max: Some(0),
            memory_swap_current: Some(0),
            cpu_max_quota_us: Some(0),
            cpu_usage_us: Some(0),
            pids_max: Some(0),
            pids_current: Some(0),
            ..Default::default()
        }),
        field_errors: vec![proto::SystemFieldError::default()],
    }
}

/// A partition with usage, for the CSV header.
fn partition_template() -> proto::DiskPartition {
    proto::DiskPartition {
        usage: Some(proto::DiskUsage::default()),
        usage_error: Some(0),
        ..Default::default()
    }
}

/// The fleet table's columns.
const SYS_COLUMNS: [(&str, Align); 9] = [
    ("HOST", Align::Left),
    ("UPTIME", Align::Right),
    ("LOAD1", Align::Right),
    ("LOAD5", Align::Right),
    ("CPU%", Align::Right),
    ("MEM%", Align::Right),
    ("SWAP%", Align::Right),
    ("USERS", Align::Right),
    ("FULLEST DISK", Align::Left),
];

/// One host's line of the fleet table; what the host could not say is "-".
fn sys_line(host: &HostSpec, s: &Snapshot) -> Vec<String> {
    let sys = &s.system;
    let dash = || "-".to_owned();
    let percent = |p: f64| format!("{p:.1}");
    vec![
        host.name.clone(),
        sys.boot_time
            .map_or_else(dash, |t| format::age(format::now() - t)),
        sys.loadavg
            .as_ref()
            .map_or_else(dash, |l| format!("{:.2}", l.load1)),
        sys.loadavg
            .as_ref()
            .map_or_else(dash, |l| format!("{:.2}", l.load5)),
        sys.cpu_percent
            .as_ref()
            .map_or_else(dash, |c| percent(c.total)),
        sys.virtual_memory
            .as_ref()
            .map_or_else(dash, |m| percent(m.percent)),
        sys.swap_memory
            .as_ref()
            .map_or_else(dash, |m| percent(m.percent)),
        if has_error(sys, proto::SystemField::Users) {
            dash()
        } else {
            sys.users.len().to_string()
        },
        s.disks
            .as_ref()
            .and_then(|d| fullest(&d.partitions))
            .map_or_else(dash, |(p, u)| format!("{} {:.1}%", p.mountpoint, u.percent)),
    ]
}

/// The partition whose file system is fullest, among those with a size.
pub(crate) fn fullest(
    partitions: &[proto::DiskPartition],
) -> Option<(&proto::DiskPartition, &proto::DiskUsage)> {
    partitions
        .iter()
        .filter_map(|p| Some((p, p.usage.as_ref().filter(|u| u.total > 0)?)))
        .max_by(|a, b| a.1.percent.total_cmp(&b.1.percent))
}

fn has_error(sys: &proto::System, field: proto::SystemField) -> bool {
    sys.field_errors.iter().any(|e| e.field == field as i32)
}

/// One host's screen:
///
/// ```text
/// up 3d04h, 2 users, load average: 0.52, 0.41, 0.30
/// cpu: 12.3% busy over 100ms: user 8.1, nice 0.0, system 3.2, idle 87.7, iowait 0.5
/// cpus: 8 logical, 4 physical, 2400 MHz (min 800, max 4200)
///         total    used    free  shared  buff/cache  available
/// Mem:    15.5G    ...
/// ```
fn write_screen(out: &mut dyn Write, s: &Snapshot, per_cpu: bool) -> io::Result<()> {
    let sys = &s.system;
    let mut first = Vec::new();
    if let Some(boot) = sys.boot_time {
        first.push(format!("up {}", format::age(format::now() - boot)));
    }
    if !has_error(sys, proto::SystemField::Users) {
        let n = sys.users.len();
        first.push(format!("{n} user{}", if n == 1 { "" } else { "s" }));
    }
    if let Some(l) = &sys.loadavg {
        first.push(format!(
            "load average: {:.2}, {:.2}, {:.2}",
            l.load1, l.load5, l.load15
        ));
    }
    if !first.is_empty() {
        writeln!(out, "{}", first.join(", "))?;
    }
    if let Some(c) = &sys.cpu_percent {
        let mut line = format!("cpu: {:.1}% busy", c.total);
        if let Some(t) = sys.cpu_times_percent.as_ref().and_then(|t| t.total) {
            line.push_str(&format!(": {}", modes(&t)));
        }
        writeln!(out, "{line}")?;
        if per_cpu {
            for (i, p) in c.per_cpu.iter().enumerate() {
                writeln!(out, "  cpu{i}: {p:.1}%")?;
            }
        }
    }
    let mut cpus = Vec::new();
    if let Some(n) = &sys.cpu_count {
        cpus.push(format!("{} logical", n.logical));
        if let Some(p) = n.physical {
            cpus.push(format!("{p} physical"));
        }
    }
    if let Some(f) = sys.cpu_freq.as_ref().and_then(|f| f.total) {
        let mut freq = format!("{:.0} MHz", f.current);
        if let (Some(min), Some(max)) = (f.min, f.max) {
            freq.push_str(&format!(" (min {min:.0}, max {max:.0})"));
        }
        cpus.push(freq);
    }
    if !cpus.is_empty() {
        writeln!(out, "cpus: {}", cpus.join(", "))?;
    }
    write_memory(out, sys)?;
    if let Some(c) = &sys.cgroup {
        writeln!(out, "cgroup: {}", cgroup_line(c))?;
    }
    if let Some((p, u)) = s.disks.as_ref().and_then(|d| fullest(&d.partitions)) {
        writeln!(
            out,
            "fullest disk: {} {:.1}% ({} used of {}, {} free)",
            p.mountpoint,
            u.percent,
            format::bytes(u.used),
            format::bytes(u.total),
            format::bytes(u.free)
        )?;
    }
    for u in &sys.users {
        let from = if u.host.is_empty() {
            String::new()
        } else {
            format!(" from {}", u.host)
        };
        writeln!(
            out,
            "user: {} on {}{from} since {}",
            u.name,
            if u.terminal.is_empty() {
                "?"
            } else {
                &u.terminal
            },
            format::datetime(u.started)
        )?;
    }
    for t in &sys.temperatures {
        let mut line = format!("temperature: {} {} {:.1}°C", t.sensor, t.label, t.current);
        if let Some(high) = t.high {
            line.push_str(&format!(" (high {high:.0}"));
            line.push_str(
                &t.critical
                    .map_or(")".to_owned(), |c| format!(", critical {c:.0})")),
            );
        }
        writeln!(out, "{}", line.replace("  ", " "))?;
    }
    for f in &sys.fans {
        writeln!(out, "fan: {} {} {:.0} rpm", f.sensor, f.label, f.current)?;
    }
    if let Some(b) = &sys.battery {
        let power = match b.power_plugged {
            Some(true) => ", plugged in".to_owned(),
            Some(false) => ", on battery".to_owned(),
            None => String::new(),
        };
        let left = b
            .secsleft
            .map_or(String::new(), |s| format!(", {} left", format::duration(s)));
        writeln!(out, "battery: {:.0}%{power}{left}", b.percent)?;
    }
    for e in &sys.field_errors {
        let field =
            proto::SystemField::from_wire(e.field).map_or("?".to_owned(), |f| f.short_name());
        let kind = proto::ErrorKind::from_wire(e.kind).map_or("?".to_owned(), |k| k.short_name());
        // What a platform never has is said once in GetHost; here only
        // what failed on this host.
        if kind != "unsupported" {
            writeln!(out, "{field}: {kind}: {}", e.message)?;
        }
    }
    Ok(())
}

/// The CPU modes of a `cpu_times_percent`, those the OS counts.
fn modes(t: &proto::SystemCpuTimes) -> String {
    let mut parts = vec![
        format!("user {:.1}", t.user),
        format!("nice {:.1}", t.nice),
        format!("system {:.1}", t.system),
        format!("idle {:.1}", t.idle),
    ];
    for (name, value) in [
        ("iowait", t.iowait),
        ("irq", t.irq),
        ("softirq", t.softirq),
        ("steal", t.steal),
    ] {
        if let Some(v) = value {
            parts.push(format!("{name} {v:.1}"));
        }
    }
    parts.join(", ")
}

/// Memory and swap as `free -h` shows them.
fn write_memory(out: &mut dyn Write, sys: &proto::System) -> io::Result<()> {
    if sys.virtual_memory.is_none() && sys.swap_memory.is_none() {
        return Ok(());
    }
    let b = format::bytes;
    let opt = |v: Option<u64>| v.map_or("-".to_owned(), b);
    let mut table = Table::new(
        [
            ("", Align::Left),
            ("total", Align::Right),
            ("used", Align::Right),
            ("free", Align::Right),
            ("shared", Align::Right),
            ("buff/cache", Align::Right),
            ("available", Align::Right),
        ]
        .map(|(n, a)| (n.to_owned(), a)),
    );
    if let Some(m) = &sys.virtual_memory {
        let cache = match (m.buffers, m.cached) {
            (None, None) => None,
            (b, c) => Some(b.unwrap_or(0) + c.unwrap_or(0)),
        };
        table.push(vec![
            "Mem:".to_owned(),
            b(m.total),
            b(m.used),
            b(m.free),
            opt(m.shared),
            opt(cache),
            b(m.available),
        ]);
    }
    if let Some(s) = &sys.swap_memory {
        table.push(vec![
            "Swap:".to_owned(),
            b(s.total),
            b(s.used),
            b(s.free),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    table.write_with(out, None, true)
}

/// A cgroup's limits and use: "memory 120M of 512M, cpu 0.50 CPUs, pids
/// 12 of 100".
fn cgroup_line(c: &proto::Cgroup) -> String {
    let b = format::bytes;
    let memory = match c.memory_max {
        Some(max) => format!(
            "memory {} of {} ({:.1}%)",
            b(c.memory_current),
            b(max),
            c.memory_current as f64 / max.max(1) as f64 * 100.0
        ),
        None => format!("memory {} (no limit)", b(c.memory_current)),
    };
    let cpu = match (c.cpu_max_quota_us, c.cpu_max_period_us) {
        (Some(quota), period) if period > 0 => {
            format!("cpu limit {:.2} CPUs", quota as f64 / period as f64)
        }
        _ => "cpu no limit".to_owned(),
    };
    let pids = match (c.pids_current, c.pids_max) {
        (Some(n), Some(max)) => format!("pids {n} of {max}"),
        (Some(n), None) => format!("pids {n} (no limit)"),
        _ => "pids -".to_owned(),
    };
    format!("{} (v{}): {memory}, {cpu}, {pids}", c.path, c.version)
}

// === df ===

/// One row of `df`: a partition with its usage, flat, for every format.
#[derive(Debug, Default, Clone, Serialize)]
struct DfRow {
    device: String,
    mountpoint: String,
    fstype: String,
    opts: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    used: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    free: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    percent: Option<f64>,
    /// Why there is no usage: "timeout", "access_denied", ...
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_error: Option<String>,
}

impl DfRow {
    fn of(p: proto::DiskPartition) -> DfRow {
        let u = p.usage.as_ref();
        DfRow {
            total: u.map(|u| u.total),
            used: u.map(|u| u.used),
            free: u.map(|u| u.free),
            percent: u.map(|u| u.percent),
            usage_error: p
                .usage_error
                .map(|k| proto::ErrorKind::from_wire(k).map_or(k.to_string(), |k| k.short_name())),
            device: p.device,
            mountpoint: p.mountpoint,
            fstype: p.fstype,
            opts: p.opts,
        }
    }
}

impl DfSort {
    fn compare(&self, a: &(String, DfRow), b: &(String, DfRow)) -> Ordering {
        let num = |x: Option<u64>, y: Option<u64>| x.cmp(&y);
        let order = match self.key {
            DfKey::Host => a.0.cmp(&b.0),
            DfKey::Device => a.1.device.cmp(&b.1.device),
            DfKey::Mountpoint => a.1.mountpoint.cmp(&b.1.mountpoint),
            DfKey::Fstype => a.1.fstype.cmp(&b.1.fstype),
            DfKey::Total => num(a.1.total, b.1.total),
            DfKey::Used => num(a.1.used, b.1.used),
            DfKey::Free => num(a.1.free, b.1.free),
            DfKey::Percent => match (a.1.percent, b.1.percent) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (x, y) => x.is_some().cmp(&y.is_some()),
            },
        };
        if self.descending {
            order.reverse()
        } else {
            order
        }
    }
}

/// Shows mounted file systems with their usage, like `df -h`; for a fleet
/// one table with the host first.
pub async fn df(
    fleet: &Fleet,
    args: DfArgs,
    format: Output,
    io: &mut Io<'_>,
) -> anyhow::Result<Summary> {
    let request = proto::ListDisksRequest {
        all: args.all,
        fields: vec![proto::DiskField::Usage as i32],
        usage_timeout_ms: u32::try_from(args.usage_timeout.as_millis())
            .unwrap_or(u32::MAX)
            .max(1),
    };
    let call = move |client: Client| {
        let request = request.clone();
        async move { client.disks(request).await }
    };
    let template = output::record(
        "",
        &DfRow {
            total: Some(0),
            used: Some(0),
            free: Some(0),
            percent: Some(0.0),
            usage_error: Some(String::new()),
            ..DfRow::default()
        },
    )?;
    let keep = |row: &DfRow| {
        let full = args
            .min_percent
            .is_none_or(|min| row.percent.is_some_and(|p| p >= min));
        let typed = args.fstype.is_empty() || args.fstype.contains(&row.fstype);
        full && typed
    };
    let streaming = args.sort.is_none();
    let mut printer = io.printer(format, fleet.len(), &template);
    let mut rows: Vec<(String, DfRow)> = Vec::new();
    let summary = io
        .fan_out(fleet, call, |host, disks: proto::ListDisksResponse, out| {
            let mine = disks.partitions.into_iter().map(DfRow::of).filter(keep);
            if !printer.is_table() && streaming {
                let records: Vec<_> = mine.map(|r| output::record(&host.name, &r)).collect();
                return Ok(printer.records(out, records)?);
            }
            rows.extend(mine.map(|r| (host.name.clone(), r)));
            Ok(())
        })
        .await?;
    if let Some(sort) = args.sort {
        rows.sort_by(|a, b| sort.compare(a, b));
    } else {
        rows.sort_by(|a, b| a.0.cmp(&b.0));
    }
    if printer.is_table() {
        if !rows.is_empty() {
            df_table(&rows, fleet.len() > 1).write_with(io.out, io.width, !io.no_headers)?;
        } else if args.min_percent.is_some() && io.width.is_some() {
            writeln!(io.out, "no file system is that full")?;
        }
    } else if !streaming {
        let records: Vec<_> = rows.iter().map(|(h, r)| output::record(h, r)).collect();
        printer.records(io.out, records)?;
    }
    printer.finish(io.out)?;
    Ok(summary)
}

/// `df -h`'s table, with the host first for a fleet.
fn df_table(rows: &[(String, DfRow)], with_host: bool) -> Table {
    let mut headers = vec![
        ("Filesystem", Align::Left),
        ("Type", Align::Left),
        ("Size", Align::Right),
        ("Used", Align::Right),
        ("Avail", Align::Right),
        ("Use%", Align::Right),
        ("Mounted on", Align::Left),
    ];
    if with_host {
        headers.insert(0, ("HOST", Align::Left));
    }
    let mut table = Table::new(headers.into_iter().map(|(n, a)| (n.to_owned(), a)));
    for (host, r) in rows {
        let size = |v: Option<u64>| v.map_or("-".to_owned(), format::bytes);
        let percent = match (&r.usage_error, r.percent) {
            (Some(e), _) => format!("<{e}>"),
            (None, Some(p)) => format!("{p:.0}%"),
            (None, None) => "-".to_owned(),
        };
        let mut row = vec![
            if r.device.is_empty() {
                r.fstype.clone()
            } else {
                r.device.clone()
            },
            r.fstype.clone(),
            size(r.total),
            size(r.used),
            size(r.free),
            percent,
            r.mountpoint.clone(),
        ];
        if with_host {
            row.insert(0, host.clone());
        }
        table.push(row);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::sort::parse_df_sort;

    fn row(mount: &str, percent: Option<f64>) -> (String, DfRow) {
        (
            "h".to_owned(),
            DfRow {
                mountpoint: mount.to_owned(),
                percent,
                ..DfRow::default()
            },
        )
    }

    #[test]
    fn the_csv_header_names_every_figure() {
        let template =
            sys_record("", &system_template(), Some(&[partition_template()])).expect("record");
        let header = super::super::csv::Sheet::new(&template).header();
        for column in [
            "host",
            "cpu_times.total.user",
            "cpu_times.total.guest_nice",
            "cpu_percent.total",
            "cpu_freq.total.max",
            "cpu_count.physical",
            "loadavg.load15",
            "virtual_memory.available",
            "virtual_memory.wired",
            "swap_memory.sout",
            "users.name",
            "boot_time",
            "temperatures.critical",
            "battery.secsleft",
            "cgroup.memory_max",
            "cgroup.pids_current",
            "partitions.mountpoint",
            "partitions.usage.percent",
            "field_errors.kind",
        ] {
            assert!(header.iter().any(|h| h == column), "{column}: {header:?}");
        }
    }

    #[test]
    fn df_sorts_the_fullest_first_and_unknown_usage_last() {
        let sort = parse_df_sort("-percent").expect("valid");
        let mut rows = [
            row("/a", Some(10.0)),
            row("/dead", None),
            row("/b", Some(95.0)),
        ];
        rows.sort_by(|a, b| sort.compare(a, b));
        let mounts: Vec<&str> = rows.iter().map(|r| r.1.mountpoint.as_str()).collect();
        assert_eq!(mounts, ["/b", "/a", "/dead"]);
        assert_eq!(parse_df_sort("Use%"), parse_df_sort("percent"));
        let e = parse_df_sort("sizee").expect_err("no such column");
        assert!(e.contains("percent, size"), "{e}");
    }

    #[test]
    fn a_cgroup_says_its_limits_or_that_there_are_none() {
        let c = proto::Cgroup {
            path: "/system.slice/x.service".to_owned(),
            version: 2,
            memory_max: Some(512 << 20),
            memory_current: 128 << 20,
            cpu_max_quota_us: Some(50_000),
            cpu_max_period_us: 100_000,
            pids_max: None,
            pids_current: Some(12),
            ..Default::default()
        };
        assert_eq!(
            cgroup_line(&c),
            "/system.slice/x.service (v2): memory 128M of 512M (25.0%), cpu limit 0.50 CPUs, \
             pids 12 (no limit)"
        );
    }

    #[test]
    fn the_fullest_disk_ignores_file_systems_without_size() {
        let part = |mount: &str, total: u64, percent: f64| proto::DiskPartition {
            mountpoint: mount.to_owned(),
            usage: Some(proto::DiskUsage {
                total,
                percent,
                ..Default::default()
            }),
            ..Default::default()
        };
        let parts = [
            part("/", 100, 50.0),
            part("/proc", 0, 100.0),
            part("/var", 10, 90.0),
        ];
        assert_eq!(
            fullest(&parts).map(|(p, _)| p.mountpoint.as_str()),
            Some("/var")
        );
    }
}
