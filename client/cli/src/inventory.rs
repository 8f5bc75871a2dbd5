//! `hostscope inventory`: the central inventory of a fleet, one record per
//! host with its system, every interface, process counts by status, the
//! top processes by resident memory, its figures, disks and the IP sockets
//! it listens on.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use clap::ValueEnum;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{
    args::{InventoryArgs, Output},
    fanout::Io,
    format, output,
    sockets::{self, SockRow},
    table::{Align, Table},
};
use hostscope_client::{
    Client, Error, Process,
    fleet::{Fleet, HostSpec, Summary},
    proto::{self, EnumName, ProcessField as F, ProcessFilter, ProcessStatus},
};

/// What the listing asks each agent for: enough to count by status and
/// describe the largest processes.
const FIELDS: [F; 5] = [F::Name, F::Username, F::Status, F::MemoryInfo, F::Cmdline];

/// What one host told.
struct Census {
    system: proto::Host,
    interfaces: Vec<proto::NetInterface>,
    processes: Processes,
    /// GetSystem; `None` from an agent too old to serve it.
    figures: Option<proto::System>,
    /// ListDisks; `None` from an agent too old to serve it.
    disks: Option<proto::ListDisksResponse>,
    /// The IP sockets it listens on; `None` from an agent that does not
    /// serve ListConnections (too old, another OS, or withheld).
    listening: Option<Vec<SockRow>>,
}

/// A host's processes, counted, and the largest by resident memory.
#[derive(Debug, Serialize)]
struct Processes {
    /// Every process, whatever its status.
    total: usize,
    /// Processes per status, every status present (zero included), in the
    /// API's order.
    by_status: Map<String, Value>,
    /// The largest processes by rss, largest first.
    top_rss: Vec<TopProcess>,
}

/// One of the largest processes.
#[derive(Debug, Serialize)]
struct TopProcess {
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    /// Resident memory, bytes.
    rss: u64,
    cmdline: Vec<String>,
}

/// One host's inventory record.
#[derive(Serialize)]
struct Record<'a> {
    host: &'a str,
    address: &'a str,
    labels: &'a BTreeMap<String, String>,
    groups: &'a [String],
    system: &'a proto::Host,
    interfaces: &'a [proto::NetInterface],
    processes: &'a Processes,
    /// The host's figures: CPU, memory, swap, load, users, sensors, cgroup.
    #[serde(skip_serializing_if = "Option::is_none")]
    figures: Option<&'a proto::System>,
    /// Mounted file systems with their usage, and disk I/O counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    disks: Option<&'a proto::ListDisksResponse>,
    /// The IP sockets it listens on, once per holding process, as
    /// `sockets --listening -p -o json` gives them.
    #[serde(skip_serializing_if = "Option::is_none")]
    listening: Option<&'a [SockRow]>,
}

/// A host's processes as they come, counted and ranked: what is kept of
/// a listing of any length is the counts and the `top` largest.
struct Digest {
    top: usize,
    total: usize,
    counts: Vec<usize>,
    /// The largest so far by rss, with their pids, unordered; at most
    /// twice `top` between trims.
    ranked: Vec<(u64, TopProcess)>,
}

impl Digest {
    fn new(top: usize) -> Digest {
        Digest {
            top,
            total: 0,
            counts: vec![0; ProcessStatus::values().len()],
            ranked: Vec::new(),
        }
    }

    /// Counts `p`, and ranks it when its memory could be read.
    fn add(&mut self, p: &Process) {
        self.total += 1;
        let statuses = ProcessStatus::values();
        if let Some(i) = p
            .status()
            .ok()
            .and_then(|s| statuses.iter().position(|v| *v == s))
        {
            self.counts[i] += 1;
        }
        if self.top == 0 {
            return;
        }
        if let Ok(m) = p.memory_info() {
            self.ranked.push((
                m.rss,
                TopProcess {
                    pid: p.pid(),
                    name: p.name().ok().map(str::to_owned),
                    username: p.username().ok().map(str::to_owned),
                    rss: m.rss,
                    cmdline: p.cmdline().map(<[String]>::to_vec).unwrap_or_default(),
                },
            ));
            if self.ranked.len() >= self.top.saturating_mul(2).max(64) {
                self.trim();
            }
        }
    }

    /// Keeps the `top` largest, largest first, ties by pid.
    fn trim(&mut self) {
        self.ranked
            .sort_by(|a, b| b.0.cmp(&a.0).then(a.1.pid.cmp(&b.1.pid)));
        self.ranked.truncate(self.top);
    }

    fn finish(mut self) -> Processes {
        self.trim();
        let by_status = ProcessStatus::values()
            .iter()
            .zip(self.counts)
            .map(|(s, n)| (s.short_name(), Value::from(n)))
            .collect();
        Processes {
            total: self.total,
            by_status,
            top_rss: self.ranked.into_iter().map(|(_, p)| p).collect(),
        }
    }
}

impl Processes {
    /// Counts `all` by status and keeps the `top` largest by rss
    /// (processes whose memory could not be read are counted, not ranked).
    #[cfg(test)]
    fn digest(all: &[Process], top: usize) -> Processes {
        let mut digest = Digest::new(top);
        for p in all {
            digest.add(p);
        }
        digest.finish()
    }

    /// A process by status count of one status.
    fn count(&self, status: ProcessStatus) -> u64 {
        self.by_status
            .get(&status.short_name())
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }
}

/// Takes the inventory of every host: printed as records (JSON by
/// default), a one-line-per-host table, or written to one file per host.
pub async fn inventory(
    fleet: &Fleet,
    args: InventoryArgs,
    format: Option<Output>,
    io: &mut Io<'_>,
) -> anyhow::Result<Summary> {
    if let (Some(_), Some(format)) = (&args.out_dir, format)
        && format != Output::Json
    {
        let name = format
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned());
        bail!("--out-dir writes JSON files; drop --output {name}");
    }
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the directory {}", dir.display()))?;
    }
    let format = format.unwrap_or(Output::Json);
    let top = args.top;
    let call = move |client: Client| async move {
        // Counted batch by batch: a host's listing is never held whole.
        let listing = async {
            let mut processes = client.processes(&FIELDS, ProcessFilter::default()).await?;
            let mut digest = Digest::new(top);
            while let Some(batch) = processes.next_batch().await {
                for p in &batch? {
                    digest.add(p);
                }
            }
            Ok::<_, Error>(digest.finish())
        };
        // An agent from before GetSystem and ListDisks still answers
        // the rest.
        let figures = async { client.system(proto::GetSystemRequest::default()).await.ok() };
        let disks = async { client.disks(proto::ListDisksRequest::default()).await.ok() };
        let listening = async { sockets::listening(&client).await.ok() };
        let (asked, (figures, disks, listening)) = tokio::join!(
            async { tokio::try_join!(client.host(), client.net_interfaces(), listing) },
            async { tokio::join!(figures, disks, listening) }
        );
        let (system, interfaces, processes) = asked?;
        Ok(Census {
            system,
            interfaces,
            processes,
            figures,
            disks,
            listening,
        })
    };

    let template = serde_json::to_value(template_record())?;
    let mut printer = io
        .printer(format, fleet.len(), &template)
        .one_record_per_host();
    let mut files = FileNames::default();
    let mut rows = Vec::new();
    let summary = io
        .fan_out(fleet, call, |host, census: Census, out| {
            let record = Record::new(host, &census);
            if let Some(dir) = &args.out_dir {
                let path = dir.join(files.name(&host.name));
                write_file(&path, &record)?;
                writeln!(out, "{}", path.display())?;
            } else if printer.is_table() {
                rows.push((host.address.clone(), row(host, &census)));
            } else {
                let value = serde_json::to_value(&record).map_err(io::Error::from);
                printer.records(out, [value])?;
            }
            Ok(())
        })
        .await?;
    if args.out_dir.is_some() {
        // Every record went to its file.
    } else if printer.is_table() {
        let order: HashMap<&str, usize> = fleet
            .hosts()
            .enumerate()
            .map(|(i, h)| (h.address.as_str(), i))
            .collect();
        rows.sort_by_key(|(address, _)| order.get(address.as_str()).copied());
        let mut table = table_headers();
        for (_, row) in rows {
            table.push(row);
        }
        table.write_with(io.out, io.width, !io.no_headers)?;
    } else {
        printer.finish(io.out)?;
    }
    Ok(summary)
}

impl<'a> Record<'a> {
    fn new(host: &'a HostSpec, census: &'a Census) -> Record<'a> {
        Record {
            host: &host.name,
            address: &host.address,
            labels: &host.labels,
            groups: &host.groups,
            system: &census.system,
            interfaces: &census.interfaces,
            processes: &census.processes,
            figures: census.figures.as_ref(),
            disks: census.disks.as_ref(),
            listening: census.listening.as_deref(),
        }
    }
}

/// A record with every column present, for the CSV header.
fn template_record() -> Value {
    let processes = Processes {
        total: 0,
        by_status: Digest::new(0).finish().by_status,
        top_rss: vec![TopProcess {
            pid: 0,
            name: Some(String::new()),
            username: Some(String::new()),
            rss: 0,
            cmdline: Vec::new(),
        }],
    };
    let figures = proto::System {
        loadavg: Some(proto::LoadAvg::default()),
        virtual_memory: Some(proto::VirtualMemory::default()),
        swap_memory: Some(proto::SwapMemory::default()),
        cpu_percent: Some(proto::CpuPercent::default()),
        ..Default::default()
    };
    let disks = proto::ListDisksResponse {
        partitions: vec![proto::DiskPartition {
            usage: Some(proto::DiskUsage::default()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let record = Record {
        host: "",
        address: "",
        labels: &BTreeMap::new(),
        groups: &[],
        system: &proto::Host::default(),
        interfaces: &[output::interface_template()],
        processes: &processes,
        figures: Some(&figures),
        disks: Some(&disks),
        listening: Some(&[SockRow::template()]),
    };
    serde_json::to_value(record).unwrap_or(Value::Null)
}

fn write_file(path: &Path, record: &Record<'_>) -> anyhow::Result<()> {
    let mut text = serde_json::to_vec_pretty(record)?;
    text.push(b'\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// File names for hosts, each used once.
#[derive(Debug, Default)]
struct FileNames {
    taken: HashSet<String>,
}

impl FileNames {
    /// `NAME.json` with every character but letters, digits, `.`, `-` and
    /// `_` replaced by `_`, never hidden or empty, and with `-2`, `-3`...
    /// added when two names come out the same.
    fn name(&mut self, host: &str) -> PathBuf {
        let mut base: String = host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if base.is_empty() || base.starts_with('.') {
            base.insert(0, '_');
        }
        let mut candidate = base.clone();
        let mut n = 2;
        while !self.taken.insert(candidate.to_ascii_lowercase()) {
            candidate = format!("{base}-{n}");
            n += 1;
        }
        PathBuf::from(format!("{candidate}.json"))
    }
}

fn table_headers() -> Table {
    let header = |name: &str, align| (name.to_owned(), align);
    Table::new([
        header("HOST", Align::Left),
        header("HOSTNAME", Align::Left),
        header("OS", Align::Left),
        header("KERNEL", Align::Left),
        header("CPUS", Align::Right),
        header("MEMORY", Align::Right),
        header("UPTIME", Align::Right),
        header("LOAD1", Align::Right),
        header("MEM%", Align::Right),
        header("DISK%", Align::Right),
        header("UP/NICS", Align::Right),
        header("LISTEN", Align::Right),
        header("PROCS", Align::Right),
        header("ZOMBIES", Align::Right),
        header("LARGEST", Align::Left),
    ])
}

/// One host as a table row: UPTIME since boot as an age ("3h04m",
/// "2d03h"), LOAD1 the load average over a minute, MEM% memory in use,
/// DISK% the fullest file system's use, UP/NICS the interfaces whose link
/// is up, of all, LISTEN the local addresses it listens on (tcp and udp).
fn row(host: &HostSpec, census: &Census) -> Vec<String> {
    let system = &census.system;
    let figures = census.figures.as_ref();
    let dash = || "-".to_owned();
    let up = census
        .interfaces
        .iter()
        .filter(|nic| nic.stats.as_ref().is_some_and(|s| s.isup))
        .count();
    let largest = census.processes.top_rss.first().map_or_else(
        || "-".to_owned(),
        |p| {
            format!(
                "{} {}",
                p.name.as_deref().unwrap_or("?"),
                format::bytes(p.rss)
            )
        },
    );
    vec![
        host.name.clone(),
        system.hostname.clone(),
        format!("{} {}", system.os, system.os_release)
            .trim()
            .to_owned(),
        system.kernel.clone(),
        system.cpu_count.to_string(),
        format::bytes(system.memory_total),
        format::age(format::now() - system.boot_time),
        figures
            .and_then(|f| f.loadavg.as_ref())
            .map_or_else(dash, |l| format!("{:.2}", l.load1)),
        figures
            .and_then(|f| f.virtual_memory.as_ref())
            .map_or_else(dash, |m| format!("{:.1}", m.percent)),
        census
            .disks
            .as_ref()
            .and_then(|d| super::system::fullest(&d.partitions))
            .map_or_else(dash, |(_, u)| format!("{:.1}", u.percent)),
        format!("{up}/{}", census.interfaces.len()),
        census.listening.as_ref().map_or_else(dash, |rows| {
            let local: HashSet<(&str, String)> =
                rows.iter().map(|r| (r.proto.as_str(), r.local())).collect();
            local.len().to_string()
        }),
        census.processes.total.to_string(),
        census.processes.count(ProcessStatus::Zombie).to_string(),
        largest,
    ]
}

#[cfg(test)]
mod tests {
    use super::super::csv::Sheet;
    use super::*;

    fn process(pid: u32, status: ProcessStatus, rss: Option<u64>) -> Process {
        Process::new(
            proto::Process {
                pid,
                name: Some(format!("p{pid}")),
                status: Some(status as i32),
                memory_info: rss.map(|rss| proto::MemoryInfo {
                    rss,
                    ..Default::default()
                }),
                cmdline: vec![format!("/bin/p{pid}")],
                field_errors: match rss {
                    Some(_) => vec![],
                    None => vec![proto::FieldError {
                        field: F::MemoryInfo as i32,
                        kind: proto::ErrorKind::AccessDenied as i32,
                    }],
                },
                ..Default::default()
            },
            &FIELDS,
        )
    }

    #[test]
    fn processes_are_counted_by_status_and_ranked_by_rss() {
        let all = [
            process(1, ProcessStatus::Sleeping, Some(10)),
            process(2, ProcessStatus::Zombie, Some(0)),
            process(3, ProcessStatus::Running, Some(30)),
            process(4, ProcessStatus::Sleeping, None),
            process(5, ProcessStatus::Sleeping, Some(30)),
        ];
        let digest = Processes::digest(&all, 2);
        assert_eq!(digest.total, 5);
        assert_eq!(digest.count(ProcessStatus::Sleeping), 3);
        assert_eq!(digest.count(ProcessStatus::Zombie), 1);
        assert_eq!(digest.count(ProcessStatus::Idle), 0);
        assert_eq!(digest.by_status.len(), ProcessStatus::values().len());
        let top: Vec<(u32, u64)> = digest.top_rss.iter().map(|p| (p.pid, p.rss)).collect();
        assert_eq!(top, [(3, 30), (5, 30)], "largest first, ties by pid");
        let json = serde_json::to_value(&digest.top_rss[0]).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"pid": 3, "name": "p3", "rss": 30, "cmdline": ["/bin/p3"]})
        );
    }

    #[test]
    fn file_names_are_safe_and_unique() {
        let mut names = FileNames::default();
        let mut name = |host: &str| names.name(host).display().to_string();
        assert_eq!(name("web1"), "web1.json");
        assert_eq!(name("web1:7443"), "web1_7443.json");
        assert_eq!(name("[::1]:9000"), "___1__9000.json");
        assert_eq!(name("../etc/passwd"), "_.._etc_passwd.json");
        assert_eq!(name(""), "_.json");
        assert_eq!(name("web1"), "web1-2.json");
        assert_eq!(
            name("WEB1"),
            "WEB1-3.json",
            "unique on case-blind file systems"
        );
        assert_eq!(name("a/b"), "a_b.json");
        assert_eq!(name("a_b"), "a_b-2.json");
    }

    #[test]
    fn the_csv_header_covers_every_part() {
        let header = Sheet::new(&template_record()).header();
        for column in [
            "host",
            "address",
            "labels",
            "groups",
            "system.hostname",
            "system.memory_total",
            "interfaces.name",
            "interfaces.addresses.address",
            "interfaces.stats.isup",
            "interfaces.stats.duplex",
            "interfaces.stats.speed",
            "processes.total",
            "processes.by_status.zombie",
            "processes.top_rss.pid",
            "processes.top_rss.rss",
            "processes.top_rss.cmdline",
            "figures.virtual_memory.percent",
            "figures.loadavg.load1",
            "disks.partitions.mountpoint",
            "disks.partitions.usage.percent",
            "listening.proto",
            "listening.local_port",
            "listening.pid",
            "listening.name",
        ] {
            assert!(header.iter().any(|h| h == column), "{column}: {header:?}");
        }
        assert_eq!(header[0], "host");
    }
}
