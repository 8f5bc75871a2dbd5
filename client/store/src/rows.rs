//! What a host answered, turned into rows of the schema's tables.

use std::collections::{BTreeMap, HashMap};

use hostscope_proto::{self as proto, EnumName};

use crate::Val;

/// A host as the inventory names it.
#[derive(Debug, Clone)]
pub struct HostId {
    /// The inventory's name for the host.
    pub name: String,
    /// Where its agent listens (host:port).
    pub address: String,
    /// The inventory's labels.
    pub labels: BTreeMap<String, String>,
}

/// Everything one host answered in one scrape.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// GetHost.
    pub host: proto::Host,
    /// ListNetInterfaces.
    pub interfaces: Vec<proto::NetInterface>,
    /// ListProcesses, zombies included.
    pub processes: Vec<proto::Process>,
    /// GetSystem; `None` from an agent that does not serve it.
    pub system: Option<proto::System>,
    /// ListDisks; `None` from an agent that does not serve it.
    pub disks: Option<proto::ListDisksResponse>,
    /// The IP sockets it listens on; `None` from an agent that does not
    /// serve ListConnections.
    pub listening: Option<Vec<Listening>>,
}

/// A listening socket and the name of the process holding it.
#[derive(Debug, Clone)]
pub struct Listening {
    /// The socket as ListConnections gave it.
    pub connection: proto::Connection,
    /// Its holder's name, when known.
    pub process: Option<String>,
}

/// One host's scrape: when, how long, and what came of it.
#[derive(Debug)]
pub struct Scrape {
    /// The host asked.
    pub host: HostId,
    /// When the scrape began, seconds since the epoch.
    pub started_at: f64,
    /// How long it took, seconds.
    pub duration: f64,
    /// The answer, or why there was none.
    pub outcome: Outcome,
}

/// What came of a scrape.
#[derive(Debug)]
pub enum Outcome {
    /// The host answered.
    Answered(Box<Snapshot>),
    /// It did not: a short stable label (`timeout`, `connection-refused`)
    /// and the whole message.
    Failed {
        /// The error's label.
        label: String,
        /// The error's message.
        message: String,
    },
}

pub(crate) fn int(v: u64) -> Val {
    Val::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

fn opt_int(v: Option<u64>) -> Val {
    v.map_or(Val::Null, int)
}

fn opt_text(v: Option<&str>) -> Val {
    v.map_or(Val::Null, |s| Val::Text(s.to_owned()))
}

fn opt_real(v: Option<f64>) -> Val {
    v.map_or(Val::Null, Val::Real)
}

fn text(s: &str) -> Val {
    Val::Text(s.to_owned())
}

/// A list as JSON text.
pub(crate) fn json_list(items: &[String]) -> Val {
    Val::Text(serde_json::Value::from(items.to_vec()).to_string())
}

fn short<E: EnumName>(wire: i32) -> Val {
    E::from_wire(wire).map_or(Val::Null, |v| Val::Text(v.short_name()))
}

pub(crate) fn host_facts(id: i64, h: &proto::Host) -> Vec<Val> {
    vec![
        Val::Int(id),
        text(&h.hostname),
        text(&h.os),
        text(&h.os_release),
        text(&h.kernel),
        text(&h.arch),
        Val::Real(h.boot_time),
        Val::Int(h.cpu_count.into()),
        int(h.memory_total),
        text(&h.agent_version),
        text(&h.backend),
    ]
}

pub(crate) fn process(id: i64, p: &proto::Process) -> Vec<Val> {
    let status = p.status.map_or(Val::Null, short::<proto::ProcessStatus>);
    let ctx = p.num_ctx_switches.as_ref();
    let cpu = p.cpu_times.as_ref();
    let mem = p.memory_info.as_ref();
    let io = p.io_counters.as_ref();
    vec![
        Val::Int(id),
        Val::Int(p.pid.into()),
        opt_int(p.ppid.map(u64::from)),
        opt_text(p.name.as_deref()),
        opt_text(p.exe.as_deref()),
        json_list(&p.cmdline),
        status,
        opt_text(p.username.as_deref()),
        opt_int(p.uids.as_ref().map(|i| i.effective.into())),
        opt_int(p.gids.as_ref().map(|i| i.effective.into())),
        opt_text(p.terminal.as_deref()),
        opt_text(p.cwd.as_deref()),
        p.nice.map_or(Val::Null, |n| Val::Int(n.into())),
        opt_real(p.create_time),
        opt_int(p.num_threads.map(u64::from)),
        opt_int(p.num_fds.map(u64::from)),
        opt_int(ctx.map(|c| c.voluntary)),
        opt_int(ctx.map(|c| c.involuntary)),
        opt_real(cpu.map(|c| c.user)),
        opt_real(cpu.map(|c| c.system)),
        opt_int(mem.map(|m| m.rss)),
        opt_int(mem.map(|m| m.vms)),
        opt_int(mem.and_then(|m| m.shared)),
        opt_int(io.map(|i| i.read_bytes)),
        opt_int(io.map(|i| i.write_bytes)),
        opt_text(p.cgroup.as_deref()),
    ]
}

pub(crate) fn is_zombie(p: &proto::Process) -> bool {
    p.status == Some(proto::ProcessStatus::Zombie as i32)
}

/// The zombies of `all`, each with its parent's name and command line.
pub(crate) fn zombies(id: i64, all: &[proto::Process]) -> Vec<Vec<Val>> {
    let by_pid: HashMap<u32, &proto::Process> = all.iter().map(|p| (p.pid, p)).collect();
    all.iter()
        .filter(|p| is_zombie(p))
        .map(|z| {
            let parent = z.ppid.and_then(|pp| by_pid.get(&pp));
            vec![
                Val::Int(id),
                Val::Int(z.pid.into()),
                opt_int(z.ppid.map(u64::from)),
                opt_text(z.name.as_deref()),
                opt_real(z.create_time),
                opt_text(parent.and_then(|p| p.name.as_deref())),
                parent.map_or(Val::Null, |p| json_list(&p.cmdline)),
            ]
        })
        .collect()
}

pub(crate) fn interface(id: i64, nic: &proto::NetInterface) -> Vec<Val> {
    let stats = nic.stats.as_ref();
    let io = nic.io_counters.as_ref();
    vec![
        Val::Int(id),
        text(&nic.name),
        Val::Bool(stats.is_some_and(|s| s.isup)),
        stats.map_or(Val::Null, |s| short::<proto::Duplex>(s.duplex)),
        opt_int(stats.and_then(|s| s.speed).map(u64::from)),
        opt_int(stats.map(|s| s.mtu.into())),
        opt_text(stats.map(|s| s.flags.as_str())),
        opt_int(io.map(|c| c.bytes_sent)),
        opt_int(io.map(|c| c.bytes_recv)),
        opt_int(io.map(|c| c.packets_sent)),
        opt_int(io.map(|c| c.packets_recv)),
        opt_int(io.map(|c| c.errin)),
        opt_int(io.map(|c| c.errout)),
        opt_int(io.map(|c| c.dropin)),
        opt_int(io.map(|c| c.dropout)),
    ]
}

pub(crate) fn addresses(id: i64, nic: &proto::NetInterface) -> impl Iterator<Item = Vec<Val>> {
    nic.addresses.iter().map(move |a| {
        vec![
            Val::Int(id),
            text(&nic.name),
            short::<proto::AddressFamily>(a.family),
            text(&a.address),
            opt_text(a.netmask.as_deref()),
            opt_text(a.broadcast.as_deref()),
            opt_text(a.ptp.as_deref()),
        ]
    })
}

pub(crate) fn system(id: i64, s: &proto::System) -> Vec<Val> {
    let load = s.loadavg.as_ref();
    let vm = s.virtual_memory.as_ref();
    let swap = s.swap_memory.as_ref();
    vec![
        Val::Int(id),
        opt_real(load.map(|l| l.load1)),
        opt_real(load.map(|l| l.load5)),
        opt_real(load.map(|l| l.load15)),
        opt_real(s.cpu_percent.as_ref().map(|c| c.total)),
        opt_int(vm.map(|m| m.total)),
        opt_int(vm.map(|m| m.available)),
        opt_int(vm.map(|m| m.used)),
        opt_real(vm.map(|m| m.percent)),
        opt_int(swap.map(|m| m.total)),
        opt_int(swap.map(|m| m.used)),
        opt_real(swap.map(|m| m.percent)),
        int(s.users.len() as u64),
    ]
}

pub(crate) fn disks(id: i64, d: &proto::ListDisksResponse) -> impl Iterator<Item = Vec<Val>> {
    d.partitions.iter().map(move |p| {
        let usage = p.usage.as_ref();
        vec![
            Val::Int(id),
            text(&p.device),
            text(&p.mountpoint),
            text(&p.fstype),
            text(&p.opts),
            opt_int(usage.map(|u| u.total)),
            opt_int(usage.map(|u| u.used)),
            opt_int(usage.map(|u| u.free)),
            opt_real(usage.map(|u| u.percent)),
        ]
    })
}

pub(crate) fn socket(id: i64, l: &Listening) -> Vec<Val> {
    let c = &l.connection;
    let six = proto::SocketFamily::from_wire(c.family) == Some(proto::SocketFamily::Inet6);
    let stream = proto::SocketType::from_wire(c.r#type) == Some(proto::SocketType::Stream);
    let proto_name = match (stream, six) {
        (true, false) => "tcp",
        (true, true) => "tcp6",
        (false, false) => "udp",
        (false, true) => "udp6",
    };
    let local = c.laddr.as_ref();
    vec![
        Val::Int(id),
        text(proto_name),
        text(local.map_or("", |a| a.ip.as_str())),
        int(local.map_or(0, |a| a.port.into())),
        short::<proto::ConnectionStatus>(c.status),
        opt_int(c.pid.map(u64::from)),
        opt_text(l.process.as_deref()),
        opt_int(c.uid.map(u64::from)),
    ]
}

/// A WatchProcesses event as a row of process_events.
pub(crate) fn event(host: &str, e: &proto::ProcessEvent) -> Vec<Val> {
    vec![
        text(host),
        Val::Real(e.time),
        short::<proto::ProcessEventKind>(e.kind),
        Val::Int(e.pid.into()),
        opt_int(e.ppid.map(u64::from)),
        opt_text(e.name.as_deref()),
        json_list(&e.cmdline),
        opt_text(e.username.as_deref()),
        opt_real(e.create_time),
        e.exit_code.map_or(Val::Null, |c| Val::Int(c.into())),
        e.exit_signal.map_or(Val::Null, |c| Val::Int(c.into())),
    ]
}
