//! What the user typed: clap's derive structs, validated but not yet
//! resolved (the first of ripgrep's two stages; `cli::run` and
//! `cli::targets` resolve them).

use std::{path::PathBuf, time::Duration};

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use hostscope_client::proto::{ConnectionKind, ConnectionStatus, EnumName, ProcessStatus, Signal};

use super::{duration, fields::FieldList};

mod files;
// Open to the crate for `system`'s tests, which parse a `df --sort`.
pub(crate) mod sort;
mod store;
mod watch;

pub use self::{
    files::FilesArgs,
    sort::{DfKey, DfSort, Sort},
    store::{CollectArgs, DbArgs, DiffArgs, SqlArgs},
    watch::WatchArgs,
};

const ABOUT: &str = "Ask hostscope agents, on one host or a whole fleet, what psutil would tell \
                     you there: processes, their state and use, network interfaces and their \
                     addresses.";

const EXAMPLES: &str = "\
Examples:
  # A fleet CA, a certificate for the agent on web1 and one for you:
  hostscope pki init --dir pki
  hostscope pki issue --dir pki --name web1 --server --san 192.0.2.5
  hostscope pki issue --dir pki --name alice --client

  # Then, with the agent running on web1:
  export HOSTSCOPE_CA=pki/ca.pem HOSTSCOPE_CERT=pki/alice.pem HOSTSCOPE_KEY=pki/alice-key.pem
  hostscope --host web1 host
  hostscope --host web1 ps --status zombie
  hostscope --host web1 nics --output json

  # Many hosts at once: a list, an inventory file, or host lines on stdin:
  hostscope --hosts web1,web2:7443,192.0.2.7 host
  hostscope --inventory fleet.toml --select role=web ps --status zombie
  hostscope --inventory fleet.toml --group canary --timeout 3s ps -o ndjson | jq .
  grep -v '^#' hosts.txt | hostscope --hosts - ps --name 'nginx*' -o csv > nginx.csv
  hostscope --inventory fleet.toml inventory --out-dir inventory/

  # Zombies fleet-wide, who leaks them, and a guarded sweep (needs the operator role):
  hostscope --inventory fleet.toml zombies
  hostscope --inventory fleet.toml zombies --reap            # the plan; nothing is sent
  hostscope --inventory fleet.toml zombies --reap --yes
  hostscope --host web1 signal 4321 TERM --expect-create-time 1767612345.67

  # Be told the moment nginx processes exit or turn into zombies, fleet-wide (Ctrl-C ends it):
  hostscope --inventory fleet.toml watch --name 'nginx*' --events exited,zombie

Targets:
  --host names one agent (127.0.0.1:7443 when no target is given). --hosts and --inventory
  name many; given together they are joined, and a host named twice (by address) is asked
  once. --select KEY=VALUE (every one must match) and --group NAME (any one will do) choose
  among the inventory's hosts. The inventory is TOML; deploy/inventory.example.toml shows
  every key:
    [[hosts]]
    name = \"web1\"
    address = \"192.0.2.11:7443\"
    labels = { role = \"web\", dc = \"fra1\" }
    groups = [\"canary\"]

Fleets:
  Up to --concurrency hosts are asked at once, each within --timeout (connect, TLS handshake,
  retries and the call together), an unreachable host retried --retries times. Results print
  as each host answers; a dead host fails alone. ndjson and csv rows print as they arrive,
  one host's between another's, each carrying its host; a process listing is read batch by
  batch and never held whole. Tables and json print each host's part whole, so they hold
  the parts of the hosts in flight: up to --buffer-budget (64MiB; 8MiB for collect, which
  holds hosts until they are written) of them, beyond which no further host is asked until
  parts have been printed. With more than one host, the tables get a
  \"== NAME (ADDRESS)\" line per host, a summary goes to stderr at the end (\"42 ok, 8 failed
  (2 timed out) in 3.2s\" and a line per failed host), and a progress bar shows on a terminal.

Connecting:
  Without --plaintext every call uses mutual TLS and needs --ca, --cert and --key (or
  HOSTSCOPE_CA, HOSTSCOPE_CERT, HOSTSCOPE_KEY). --plaintext talks to an agent started with
  --insecure-plaintext, which agents allow on loopback only.

Output:
  table (default) is for people. json prints one array of records at the end, ndjson one
  record per line as each host's results arrive, csv a header row and one row per record
  (nested values flattened as memory_info.rss, lists joined with spaces). Records use the
  API's field names, enums as lower-case strings, and start with the host's name as
  \"host\". host and proc asked of a single host print one JSON object, not an array.

Exit status:
  0  every host answered
  1  a usage or local error: bad flags, unreadable certificates or inventory
  2  one or more hosts failed (each named on stderr); the others' results are printed
  130  Ctrl-C: the results that had arrived and the summary (hosts not finished
       counted as cancelled) are printed; a second Ctrl-C exits at once";

const HOST_EXAMPLES: &str = "\
Examples:
  hostscope host
  hostscope --host web1:7443 host --output json
  hostscope --inventory fleet.toml host --output csv";

const PS_EXAMPLES: &str = "\
Fields (psutil's names): pid, ppid, name, exe, cmdline, status, username, uids, gids,
terminal, cwd, nice, create_time, num_threads, num_fds, num_ctx_switches, cpu_times,
memory_info, io_counters, environ, cpu_percent (%CPU: busy over --interval, 100 is one
CPU), memory_percent (%MEM: rss of physical memory), cgroup, threads, rlimits, cpu_affinity,
cpu_num, ionice, page_faults (Linux); or all. memory_full_info (uss, pss, swap) and
memory_maps walk the whole address space, so \"all\" leaves them out: name them. Only the
fields asked for are read on the host, so narrow lists are cheap.

Statuses: running, sleeping, disk_sleep, stopped, tracing_stop, zombie, dead, wake_kill,
waking, parked, idle, locked, waiting, suspended.

Sorting: --sort takes field names and CSV column names (pid, name, memory_info.rss,
cpu_times.user, create_time, cpu_num) and the short names the table shows (rss, vms, cpu
or %cpu for %CPU, mem or %mem for %MEM, user, threads, start, time for user plus system
time) or memory_full_info's uss, pss and swap, in any case, comma-separated,
\"-\" before one for descending; the default table is sorted by pid, and records come in
the agent's order. A field sorted by is read even when not shown.

Examples:
  hostscope ps
  hostscope ps --sort -cpu --interval 1s | head
  hostscope ps --sort -memory_info.rss --fields pid,name,memory_info | head
  hostscope ps --sort -uss --fields pid,name,memory_full_info | head
  hostscope ps --pid 4242 --fields name,memory_maps --ungrouped-maps -o json
  hostscope ps --status zombie --fields pid,ppid,name,create_time
  hostscope ps --name 'nginx*' --user www-data
  hostscope ps --ppid 1 --fields pid,name,memory_info --output ndjson | head
  hostscope --inventory fleet.toml --select role=db ps --status zombie,disk_sleep
  hostscope --hosts web1,web2 ps --fields pid,name,memory_info -o csv";

const PROC_EXAMPLES: &str = "\
Every field is shown unless --fields narrows them; a field the agent could not read says
why, such as \"exe: <zombie process>\" or \"cwd: <access denied>\". Without --fields the
table also shows memory_full_info (uss, pss, swap), every descriptor the process holds (as
`files --all-kinds`) and its sockets (as `sockets -p`), or why they are missing, such as
\"open_files: <withheld>\". memory_maps is read only when named (or with --ungrouped-maps,
one line per mapping).

Examples:
  hostscope proc 1
  hostscope proc 4242 --fields name,memory_full_info,memory_maps
  hostscope proc 4242 --ungrouped-maps
  hostscope proc 4242 --fields name,exe,cmdline,status --output json
  hostscope --hosts web1,web2 proc 1 --fields name,exe";

const NICS_EXAMPLES: &str = "\
Examples:
  hostscope nics
  hostscope nics --output ndjson
  hostscope --inventory fleet.toml nics -o csv";

const SYS_EXAMPLES: &str = "\
One host: a screen like the top of `top` and `free -h`: uptime, users, load, CPU busy over
--interval (measured then, not a lifetime average), CPU counts and frequency, memory and
swap, the cgroup's limits (the agent's own, or --cgroup), the fullest disk, sensors. A fleet:
one line per host: UPTIME, LOAD1, LOAD5, CPU%, MEM% and SWAP% (in use), USERS logged in, and
the FULLEST DISK with its use. -o json/ndjson/csv: psutil's figures by their names
(cpu_times, virtual_memory, swap_memory, ...) and each host's partitions.

Examples:
  hostscope sys
  hostscope sys --per-cpu --interval 1s
  hostscope sys --cgroup /system.slice/nginx.service
  hostscope --inventory fleet.toml sys
  hostscope --inventory fleet.toml sys -o ndjson | jq 'select(.virtual_memory.percent > 90) | .host'";

const DF_EXAMPLES: &str = "\
Like `df -h`: file system, type, size, used, available to users, use% (used of what users
can have, as df and psutil compute it) and mount point; a fleet adds the HOST column. Pseudo
file systems (proc, tmpfs, cgroup, ...) are left out unless --all, as psutil does. A mount
that does not answer within --usage-timeout (a dead NFS server) shows <timeout> instead of
hanging the query.

Examples:
  hostscope df
  hostscope --inventory fleet.toml df --sort -percent --min-percent 90
  hostscope --inventory fleet.toml df --type ext4,xfs -o csv";

const SOCKETS_EXAMPLES: &str = "\
Like `ss -tuan` (`ss -tulpn` with --listening --processes): protocol, state, local and peer
address, and with -p the pid and name of the process that holds the socket (a socket held by
several processes is listed once for each); a fleet adds the HOST column. --listening keeps
TCP sockets in LISTEN, UDP sockets with no peer and unix sockets bound to a name, as `ss -l`
does. Finding the processes reads every process's descriptor table: an agent that does not
run as root cannot see other users' processes, and says how many it could not read.

Examples:
  hostscope sockets --listening -p
  hostscope sockets --kind tcp --state established --rport 5432
  hostscope sockets --kind unix --pid 1234
  hostscope --inventory fleet.toml sockets --listening --port 22 -o csv";

const INVENTORY_EXAMPLES: &str = "\
Each record: the host's name, address, labels and groups; \"system\" (what `hostscope host`
shows); \"interfaces\" (every interface with addresses, link state, speed, duplex, MTU and
counters); \"processes\": the total, counts by status, and the top processes by resident
memory (pid, name, username, rss in bytes, cmdline); \"figures\" (what `hostscope sys`
shows: CPU, memory, swap, load, users, sensors, cgroup) and \"disks\" (partitions with their
usage, disk I/O counters). JSON is the default output; the table is one line per host:
UPTIME is the time since boot (3h04m, 2d03h), LOAD1 the load over a minute, MEM% memory in
use, DISK% the fullest file system's use, UP/NICS the interfaces whose link is up of all
interfaces, PROCS and ZOMBIES counts, LARGEST the process with the most resident memory.

Examples:
  hostscope --inventory fleet.toml inventory > fleet.json
  hostscope --inventory fleet.toml inventory --out-dir inventory/
  hostscope --hosts web1,web2 inventory --top 3 -o ndjson
  hostscope --inventory fleet.toml inventory -o table";

const ZOMBIES_EXAMPLES: &str = "\
A zombie is a process that has exited and whose parent has not collected its exit status.
It holds a pid and nothing else; only its parent can make it go, so the report names the
parents: PPID, PARENT (name), USER, ZOMBIES (how many it holds), OLDEST (the oldest one's
age: from its start, or from when it became a zombie where the platform tells), INIT (yes
when the parent is pid 1, an init that does not reap) and COMMAND (the parent's command
line).

--reap plans a sweep, per host, for the zombies seen in two looks --min-age (30s) apart, so
that a parent about to reap a child that has just exited is left alone; the plan names
each parent it would signal with its command line. Then: SIGCHLD to each parent (a parent
with a SIGCHLD handler then collects its children); after --grace, a second look; with
--kill-parents, TERM to the parents that still hold those same zombies (pid and start
time), and after another --grace, KILL to those that still do
(their zombies then pass to init, which reaps them). pid 1 is never signalled, nor the
agent itself. Every signal carries the parent's create_time from the report, so a pid that
has been reused by another process since is never hit (\"parent changed, skipped\").
Without --yes the plan is printed and nothing is sent. With it, the sweep looks a last time
and reports per host how many zombies of the planned parents were reaped and how many
remain. Signalling needs the operator role on the agent (hostscope-agent --operator NAME,
NAME being your client certificate's name); every request lands in the agent's audit log.
During a sweep each host gets --timeout for every query and round of signals, plus the
grace periods.

JSON, NDJSON and CSV give a record per parent (host, ppid, parent_name, parent_username,
parent_is_init, zombies, oldest_age_seconds, zombie_pids, parent_create_time,
parent_cmdline); with --reap, a record per host (dry_run, zombies, actions with their
outcome: planned, sent, skipped or failed, left_alone, reaped, remaining).

Examples:
  hostscope zombies
  hostscope --inventory fleet.toml zombies -o csv > zombies.csv
  hostscope --inventory fleet.toml --select role=web zombies --reap
  hostscope --inventory fleet.toml zombies --reap --yes --grace 2s
  hostscope --host web1 zombies --ppid 4321 --reap --kill-parents --yes";

const SIGNAL_EXAMPLES: &str = "\
Signals: TERM, KILL, INT, HUP, CHLD, STOP, CONT, USR1, USR2, by name (with or without SIG,
in any case) or by number. The agent refuses pid 0, pid 1 and itself, and a zombie (only
its parent can reap it: signal the parent, e.g. with CHLD). --expect-create-time guards
against pid reuse: the agent refuses when the pid now belongs to a process that started at
another time. Take the value from `hostscope proc PID --fields create_time -o json`.

Signalling needs the operator role on the agent (hostscope-agent --operator NAME, or
[authz] operators = [\"NAME\"], NAME being your client certificate's name); every
request, allowed or refused, is written to the agent's audit log. The targets must name
exactly one host.

Exit status: 0 the signal was sent; 2 the agent refused it or could not be reached; 1 a
usage error.

Examples:
  hostscope --host web1 signal 4321 TERM
  hostscope --host web1 signal 4321 KILL --expect-create-time 1767612345.67
  hostscope --host web1 signal 1234 CHLD     # make a parent collect its zombie children";

const COMPLETIONS_EXAMPLES: &str = "\
Examples (the Debian package installs them already):
  hostscope completions bash > ~/.local/share/bash-completion/completions/hostscope
  hostscope completions zsh > ~/.zfunc/_hostscope
  hostscope completions fish > ~/.config/fish/completions/hostscope.fish";

const PKI_EXAMPLES: &str = "\
Examples:
  hostscope pki init --dir pki
  hostscope pki issue --dir pki --name web1 --server --san web1.example.net --san 192.0.2.5
  hostscope pki issue --dir pki --name alice --client";

const CONFIG_EXAMPLES: &str = "\
The profile file is $XDG_CONFIG_HOME/hostscope/config.toml (else ~/.config/hostscope/config.toml).

Examples:
  hostscope config contexts
  hostscope config use-context prod";

const PKI_SHOW_EXAMPLES: &str = "\
Examples:
  hostscope pki show pki/web1.pem
  hostscope pki show pki/alice.pem --ca other-fleet/ca.pem";

const PKI_ISSUE_EXAMPLES: &str = "\
Writes DIR/NAME.pem and DIR/NAME-key.pem (mode 0600), valid for two years (--days), signed by
DIR/ca.pem and DIR/ca-key.pem. An existing certificate of that name is kept unless --force
is given (to renew it).

Examples:
  hostscope pki issue --dir pki --name web1 --server --san web1.example.net --san 192.0.2.5
  hostscope pki issue --dir pki --name 127.0.0.1 --server
  hostscope pki issue --dir pki --name alice --client";

/// `hostscope`: the command line.
#[derive(Debug, Parser)]
#[command(name = "hostscope", version, about = ABOUT, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(flatten)]
    pub targets: Targets,
    #[command(flatten)]
    pub fleet: FleetFlags,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes, before or after its name.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// One agent: HOST, HOST:PORT, [IPV6]:PORT or https://HOST:PORT (port 7443 by default;
    /// 127.0.0.1:7443 when no target is given).
    #[arg(
        long,
        global = true,
        env = "HOSTSCOPE_HOST",
        value_name = "ADDR",
        help_heading = "Targets"
    )]
    pub host: Option<String>,

    /// The fleet CA certificate (PEM) that issued the agents' certificates.
    #[arg(long, global = true, env = "HOSTSCOPE_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// This client's certificate (PEM), issued by the fleet CA.
    #[arg(long, global = true, env = "HOSTSCOPE_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,

    /// This client's private key (PEM).
    #[arg(long, global = true, env = "HOSTSCOPE_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// Check the agents' certificates for NAME instead of the host in each address.
    #[arg(long, global = true, value_name = "NAME")]
    pub tls_server_name: Option<String>,

    /// Use this context of the profile file ($XDG_CONFIG_HOME/hostscope/config.toml):
    /// its certificates, and its inventory or host when no target is given.
    #[arg(long, global = true, env = "HOSTSCOPE_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,

    /// Talk plaintext HTTP/2 to agents started with --insecure-plaintext.
    #[arg(long, global = true)]
    pub plaintext: bool,

    /// How to print results [default: table; json for `inventory`]; any case.
    #[arg(
        long,
        short = 'o',
        global = true,
        value_enum,
        ignore_case = true,
        value_name = "FORMAT"
    )]
    pub output: Option<Output>,

    /// Print no header line above tables and CSV, for scripts.
    #[arg(long, global = true)]
    pub no_headers: bool,

    /// No progress bar and no closing summary ("42 ok, 8 failed ..."); hosts that failed
    /// are still named on stderr.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

/// Which agents to ask, besides --host. Taken before the subcommand's name
/// and after it, and joined: clap's global flags would keep only one
/// side's values of a repeated flag.
#[derive(Debug, Default, Clone, Args)]
#[command(next_help_heading = "Targets")]
pub struct Targets {
    /// Many agents: comma-separated addresses (web1,web2:7443,[::1]:9000), or - to read one
    /// per line from stdin (blank lines and # comments skipped). Repeatable.
    #[arg(long, value_name = "ADDR,...")]
    pub hosts: Vec<String>,

    /// An inventory file (TOML: hosts with names, addresses, labels and groups), or - to
    /// read it from stdin.
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,

    /// Only the inventory's hosts with this label (repeatable: every one must match).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_label)]
    pub select: Vec<(String, String)>,

    /// Only the inventory's hosts in this group (repeatable: any one will do).
    #[arg(long = "group", value_name = "NAME")]
    pub groups: Vec<String>,
}

/// How a fleet is asked.
#[derive(Debug, Args)]
#[command(next_help_heading = "Fleet options")]
pub struct FleetFlags {
    /// How many hosts to ask at once.
    #[arg(long, global = true, value_name = "N", default_value = "256", value_parser = parse_concurrency)]
    pub concurrency: usize,

    /// How long each host may take, connect, TLS handshake, retries and call together
    /// (500ms, 3s, 1m).
    #[arg(long, global = true, value_name = "DURATION", default_value = "10s", value_parser = parse_timeout, allow_hyphen_values = true)]
    pub timeout: Duration,

    /// How many more times to try a host that was unreachable.
    #[arg(long, global = true, value_name = "N", default_value_t = 1)]
    pub retries: u32,

    /// How much of the hosts in flight tables and JSON may hold while each
    /// host's part waits to be printed whole, and collect while each host
    /// waits to be written (64MiB, 512KiB, 1GiB or bytes; by default 64MiB,
    /// and 8MiB for collect and sql --live, where the store sets the
    /// pace); once reached, no further host is asked until parts are out.
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size)]
    pub buffer_budget: Option<usize>,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns and blocks, for people.
    Table,
    /// One JSON document, printed at the end.
    Json,
    /// One JSON record per line, printed as each host's results arrive.
    Ndjson,
    /// A header row, then one row per record; nested values flattened (memory_info.rss).
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the host and its agent: OS, kernel, boot time, CPUs, memory, and which fields its
    /// platform supplies.
    #[command(after_help = HOST_EXAMPLES)]
    Host(QueryArgs),

    /// List processes, zombies included, like ps.
    #[command(after_help = PS_EXAMPLES)]
    Ps(PsArgs),

    /// Show one process, every field (or those of --fields) on its own line.
    #[command(after_help = PROC_EXAMPLES)]
    Proc(ProcArgs),

    /// Show network interfaces: link state, speed, duplex, MTU, flags, addresses and
    /// traffic counters.
    #[command(after_help = NICS_EXAMPLES)]
    Nics(QueryArgs),

    /// Show the host's own figures: load, CPU busy, memory, swap, users, sensors, cgroup
    /// limits and the fullest disk, like the top of top and free -h.
    #[command(after_help = SYS_EXAMPLES)]
    Sys(SysArgs),

    /// Show mounted file systems with their size and use, like df -h.
    #[command(after_help = DF_EXAMPLES)]
    Df(DfArgs),

    /// List the files processes hold open, like lsof: regular files by default, every
    /// descriptor (sockets, pipes, devices, ...) with --all-kinds.
    #[command(after_help = files::EXAMPLES)]
    Files(FilesArgs),

    /// List sockets with their state, addresses and processes, like ss -tulpn (psutil's
    /// net_connections).
    #[command(after_help = SOCKETS_EXAMPLES)]
    Sockets(SocketsArgs),

    /// The central inventory of a fleet: per host its system, every interface, process
    /// counts by status, and the top processes by memory.
    #[command(after_help = INVENTORY_EXAMPLES)]
    Inventory(InventoryArgs),

    /// Find zombie processes and the parents that leak them; with --reap, plan (and with
    /// --yes, carry out) a guarded sweep.
    #[command(after_help = ZOMBIES_EXAMPLES)]
    Zombies(ZombiesArgs),

    /// Send a signal to one process on one host, like kill (needs the operator role).
    #[command(after_help = SIGNAL_EXAMPLES)]
    Signal(SignalArgs),

    /// Follow processes as they start, exec, exit and turn into zombies, with optional
    /// samples of their use; one line per event, from one host or a fleet, until Ctrl-C.
    #[command(after_help = watch::EXAMPLES)]
    Watch(WatchArgs),

    /// Take snapshots of the fleet into the inventory store (a SQLite file or PostgreSQL):
    /// processes, interfaces, figures, disks and listening sockets, host by host.
    #[command(after_help = store::COLLECT_EXAMPLES)]
    Collect(CollectArgs),

    /// Query the inventory store with SQL, read-only; with --live, ask the fleet now.
    #[command(after_help = store::SQL_EXAMPLES)]
    Sql(SqlArgs),

    /// What changed per host between two snapshots of the store: processes started and
    /// gone, interfaces, addresses, new zombies.
    #[command(after_help = store::DIFF_EXAMPLES)]
    Diff(DiffArgs),

    /// Make a fleet CA and issue agent and client certificates (no openssl needed).
    #[command(subcommand, after_help = PKI_EXAMPLES)]
    Pki(PkiCommand),

    /// The profile file's contexts: list them, or choose the one used without --context.
    #[command(subcommand, after_help = CONFIG_EXAMPLES)]
    Config(ConfigCommand),

    /// Print the completion script for SHELL (bash, zsh, fish, elvish, powershell).
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Write the man pages (hostscope.1 and one per subcommand) into DIR; packaging uses it.
    #[command(hide = true)]
    Manpages {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

impl Command {
    /// The targets typed after the subcommand's name.
    pub fn targets(&self) -> Option<&Targets> {
        match self {
            Command::Host(args) | Command::Nics(args) => Some(&args.targets),
            Command::Ps(args) => Some(&args.targets),
            Command::Sys(args) => Some(&args.targets),
            Command::Df(args) => Some(&args.targets),
            Command::Files(args) => Some(&args.targets),
            Command::Sockets(args) => Some(&args.targets),
            Command::Proc(args) => Some(&args.targets),
            Command::Inventory(args) => Some(&args.targets),
            Command::Zombies(args) => Some(&args.targets),
            Command::Signal(args) => Some(&args.targets),
            Command::Watch(args) => Some(&args.targets),
            Command::Collect(args) => Some(&args.targets),
            Command::Sql(args) => Some(&args.targets),
            Command::Diff(_)
            | Command::Pki(_)
            | Command::Config(_)
            | Command::Completions { .. }
            | Command::Manpages { .. } => None,
        }
    }
}

/// A query with nothing to it but its targets.
#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub targets: Targets,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Fields to fetch and show, comma-separated psutil names ("pid,name,status"), or "all".
    #[arg(long, value_name = "LIST", value_parser = FieldList::parse)]
    pub fields: Option<FieldList>,

    /// Only processes whose name matches this shell glob ("nginx*").
    #[arg(long, value_name = "GLOB", value_parser = parse_glob)]
    pub name: Option<String>,

    /// Only processes of this user (name or uid).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Only processes in these states, comma-separated ("zombie", "running,disk_sleep").
    #[arg(long, value_name = "STATUS", value_delimiter = ',', value_parser = parse_status)]
    pub status: Vec<ProcessStatus>,

    /// Only these pids, comma-separated.
    #[arg(long, value_name = "PID", value_delimiter = ',', value_parser = parse_pid, allow_negative_numbers = true)]
    pub pid: Vec<u32>,

    /// Order the listing by these fields, comma-separated, a `-` before one for
    /// descending ("-rss,pid"); nested fields as in CSV columns (memory_info.rss), the
    /// table's short names (rss, vms, cpu (%CPU), mem (%MEM), user, threads, start, time), or
    /// uss, pss and swap (memory_full_info).
    #[arg(long, value_name = "FIELD,...", value_parser = sort::parse_sort, allow_hyphen_values = true)]
    pub sort: Option<Sort>,

    /// How long %CPU (cpu_percent) is measured over: the agent reads each process's CPU
    /// time, waits this long and reads it again (at most 10s).
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_interval)]
    pub interval: std::time::Duration,

    /// Only children of this pid (0: the processes without a parent, such as init and
    /// kthreadd).
    #[arg(long, value_name = "PID", value_parser = parse_ppid, allow_negative_numbers = true)]
    pub ppid: Option<u32>,

    /// Read memory_maps one entry per mapping, with its address and permissions (psutil's
    /// memory_maps(grouped=False)), instead of one per path; adds memory_maps to the
    /// fields when they do not name it.
    #[arg(long, requires = "fields")]
    pub ungrouped_maps: bool,

    #[command(flatten)]
    pub targets: Targets,
}

#[derive(Debug, Args)]
pub struct SysArgs {
    /// How long CPU busy is measured over: the agent reads the CPU times, waits this long
    /// and reads them again (at most 10s).
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_interval)]
    pub interval: Duration,

    /// Also show each CPU's busy share.
    #[arg(long)]
    pub per_cpu: bool,

    /// Show the limits and use of this cgroup (a process's cgroup field, such as
    /// /system.slice/nginx.service) instead of the agent's own.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,

    #[command(flatten)]
    pub targets: Targets,
}

#[derive(Debug, Args)]
pub struct DfArgs {
    /// Also pseudo, duplicate and inaccessible file systems (proc, tmpfs, cgroup, ...).
    #[arg(long, short = 'a')]
    pub all: bool,

    /// Order by percent, size, used, avail, mountpoint, device, fstype or host; a `-`
    /// before it for descending ("-percent": the fullest first). Default: by host, then
    /// in mount order.
    #[arg(long, value_name = "COLUMN", value_parser = sort::parse_df_sort, allow_hyphen_values = true)]
    pub sort: Option<DfSort>,

    /// Only file systems at least this full, in percent ("90": who is nearly full).
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub min_percent: Option<f64>,

    /// Only these file system types, comma-separated ("ext4,xfs").
    #[arg(
        long = "type",
        short = 't',
        value_name = "FSTYPE",
        value_delimiter = ','
    )]
    pub fstype: Vec<String>,

    /// How long one mount may take to say its size before it is shown as <timeout>.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_usage_timeout)]
    pub usage_timeout: Duration,

    #[command(flatten)]
    pub targets: Targets,
}

#[derive(Debug, Args)]
pub struct SocketsArgs {
    /// Which sockets: inet (TCP and UDP over IPv4 and IPv6), inet4, inet6, tcp, tcp4, tcp6,
    /// udp, udp4, udp6, unix or all, as psutil's `kind`.
    #[arg(long, value_name = "KIND", default_value = "inet", value_parser = parse_socket_kind)]
    pub kind: ConnectionKind,

    /// Only listening sockets: TCP in LISTEN, UDP with no peer, unix bound to a name.
    #[arg(long, short = 'l')]
    pub listening: bool,

    /// Only sockets in these states (established, listen, time_wait, ..., none for UDP and
    /// unix); repeat or separate with commas.
    #[arg(long, value_name = "STATE", value_delimiter = ',', value_parser = parse_socket_state)]
    pub state: Vec<ConnectionStatus>,

    /// Only sockets with this local port; repeat or separate with commas.
    #[arg(long, value_name = "PORT", value_delimiter = ',')]
    pub port: Vec<u16>,

    /// Only sockets with this remote port; repeat or separate with commas.
    #[arg(long, value_name = "PORT", value_delimiter = ',')]
    pub rport: Vec<u16>,

    /// Only sockets these processes hold (shows their pids); repeat or separate with commas.
    #[arg(long, value_name = "PID", value_delimiter = ',')]
    pub pid: Vec<u32>,

    /// Show the pid and name of the process that holds each socket.
    #[arg(long, short = 'p')]
    pub processes: bool,

    #[command(flatten)]
    pub targets: Targets,
}

fn parse_socket_kind(s: &str) -> Result<ConnectionKind, String> {
    parse_enum_name("kind", "kinds", s)
}

fn parse_socket_state(s: &str) -> Result<ConnectionStatus, String> {
    parse_enum_name("state", "states", s)
}

fn parse_percent(s: &str) -> Result<f64, String> {
    match s.trim().trim_end_matches('%').parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "{s:?} is no percentage; give a number from 0 to 100, such as 90"
        )),
    }
}

fn parse_usage_timeout(s: &str) -> Result<Duration, String> {
    let d = duration::parse_nonzero(s, "500ms, 2s or 10s", "the timeout must be longer than 0")?;
    if d > Duration::from_secs(30) {
        return Err(format!(
            "the usage timeout is {}; it may be at most 30s",
            duration::format(d)
        ));
    }
    Ok(d)
}

#[derive(Debug, Args)]
pub struct ProcArgs {
    /// The process id.
    #[arg(value_parser = parse_pid, allow_negative_numbers = true)]
    pub pid: u32,

    /// Fields to fetch and show, comma-separated psutil names, or "all" (the default).
    #[arg(long, value_name = "LIST", value_parser = FieldList::parse)]
    pub fields: Option<FieldList>,

    /// Read memory_maps one entry per mapping, with its address and permissions (psutil's
    /// memory_maps(grouped=False)), instead of one per path; adds memory_maps to the
    /// fields when they do not name it.
    #[arg(long)]
    pub ungrouped_maps: bool,

    #[command(flatten)]
    pub targets: Targets,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// How many processes to list per host, largest resident memory first.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,

    /// Write one JSON file per host, DIR/NAME.json (the name made safe for a file name),
    /// instead of printing the records; prints each file's path.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    #[command(flatten)]
    pub targets: Targets,
}

#[derive(Debug, Args)]
pub struct ZombiesArgs {
    /// Plan a sweep: CHLD to each parent, then (with --kill-parents) TERM and KILL to those
    /// that still hold zombies. Prints the plan and sends nothing unless --yes is given.
    #[arg(long)]
    pub reap: bool,

    /// Carry out the plan of --reap.
    #[arg(long, requires = "reap")]
    pub yes: bool,

    /// With --reap: TERM the parents that still hold zombies after --grace, and KILL those
    /// that still do after another --grace.
    #[arg(long, requires = "reap")]
    pub kill_parents: bool,

    /// With --reap: how long to wait after each round of signals before looking again
    /// (500ms, 5s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_grace, allow_hyphen_values = true)]
    pub grace: Duration,

    /// With --reap: act only on zombies seen in two looks this far apart (500ms, 30s, 2m),
    /// so that a parent about to reap a child that has just exited is left alone.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_min_age, allow_hyphen_values = true)]
    pub min_age: Duration,

    /// Only the zombies of these parents, comma-separated pids (repeatable).
    #[arg(long, value_name = "PID", value_delimiter = ',', value_parser = parse_pid, allow_negative_numbers = true)]
    pub ppid: Vec<u32>,

    #[command(flatten)]
    pub targets: Targets,
}

#[derive(Debug, Args)]
pub struct SignalArgs {
    /// The process id.
    #[arg(value_parser = parse_pid, allow_negative_numbers = true)]
    pub pid: u32,

    /// The signal: TERM, KILL, INT, HUP, CHLD, STOP, CONT, USR1 or USR2 (SIGTERM, term and
    /// 15 work too).
    #[arg(value_parser = parse_signal, allow_negative_numbers = true)]
    pub signal: String,

    /// Send only if the process started at this time (seconds since the epoch, as
    /// create_time shows it): a pid reused by another process is then refused.
    #[arg(long, value_name = "SECONDS", value_parser = parse_create_time)]
    pub expect_create_time: Option<f64>,

    #[command(flatten)]
    pub targets: Targets,
}

#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create a fleet CA: DIR/ca.pem and DIR/ca-key.pem (mode 0600), valid for ten years.
    #[command(after_help = "Example:\n  hostscope pki init --dir pki")]
    Init {
        /// Directory for the CA files; created if missing.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// How many days the CA is valid (1 to 36500).
        #[arg(long, value_name = "N", default_value_t = hostscope_client::pki::CA_DAYS)]
        days: u32,
        /// Replace an existing CA. Every certificate it issued stops being trusted.
        #[arg(long)]
        force: bool,
    },

    /// Issue a certificate for an agent (--server) or a client (--client).
    #[command(after_help = PKI_ISSUE_EXAMPLES, group(ArgGroup::new("role").required(true).args(["server", "client"])))]
    Issue {
        /// Directory holding ca.pem and ca-key.pem; the new files go there too.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The certificate's name: the agent's host name or IP, or the client's identity.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// A certificate for an agent, valid for NAME and every --san.
        #[arg(long)]
        server: bool,
        /// A certificate for a client; NAME is the identity agents see.
        #[arg(long)]
        client: bool,
        /// Another host name or IP address the certificate is valid for (repeatable).
        #[arg(long = "san", value_name = "HOST_OR_IP")]
        sans: Vec<String>,
        /// How many days the certificate is valid (1 to 36500).
        #[arg(long, value_name = "N", default_value_t = hostscope_client::pki::LEAF_DAYS)]
        days: u32,
        /// Replace an existing certificate and key of this name (to renew it); the old
        /// certificate stays valid until it expires.
        #[arg(long)]
        force: bool,
    },

    /// Show a certificate: subject, names, role, key usage, validity, fingerprint, and
    /// whether the fleet CA beside it (or --ca) signed it.
    #[command(after_help = PKI_SHOW_EXAMPLES)]
    Show {
        /// The certificate (PEM). It is checked against the global --ca (or HOSTSCOPE_CA),
        /// else against ca.pem in FILE's directory.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// `hostscope config`: the profile file's contexts, as kubectl's are.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// List the contexts; the one used without --context is marked with *.
    Contexts,
    /// Make NAME the context used without --context (the file's `context` key).
    UseContext {
        /// A context of the profile file ([contexts.NAME]).
        #[arg(value_name = "NAME")]
        name: String,
    },
}

/// Parses a status by its psutil name, listing the valid ones when it is
/// none of them.
/// A measuring interval: what the agent accepts, from 1 ms to 10 s.
pub fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let d = duration::parse_nonzero(s, "100ms, 1s or 5s", "the interval must be longer than 0")?;
    if d > std::time::Duration::from_secs(10) || d < std::time::Duration::from_millis(1) {
        return Err(format!(
            "the interval is {}; it must be between 1ms and 10s",
            duration::format(d)
        ));
    }
    Ok(d)
}

fn parse_status(s: &str) -> Result<ProcessStatus, String> {
    parse_enum_name("status", "statuses", s)
}

/// A value of a proto enum by its short name, in either case.
fn parse_enum_name<T: EnumName>(what: &str, plural: &str, s: &str) -> Result<T, String> {
    T::from_short_name(s.trim()).ok_or_else(|| {
        format!(
            "unknown {what} {s:?}; valid {plural}: {}",
            T::short_names().join(", ")
        )
    })
}

/// Parses `--select KEY=VALUE`.
fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, such as role=web, not {s:?}")),
    }
}

/// Parses a size: bytes, or a number with KiB, MiB or GiB (K, M, G and
/// KB, MB, GB read the same, as powers of 1024).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let text = s.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let unit = unit.trim();
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "{s:?}: expected bytes or a size such as 512KiB, 64MiB or 1GiB"
            ));
        }
    };
    let number: usize = number
        .parse()
        .map_err(|_| format!("{s:?}: expected a number of bytes, such as 64MiB"))?;
    number
        .checked_mul(1usize << shift)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{s:?}: expected a size from 1 byte to {} bytes", usize::MAX))
}

/// Parses `--concurrency`: at least one host at a time.
fn parse_concurrency(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("at least 1 host must be asked at a time".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("expected a number of hosts, not {s:?}")),
    }
}

/// Parses `--timeout`: how long each host may take.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    duration::parse_nonzero(s, "500ms, 3s or 1m", "the timeout must be longer than 0")
}

/// Parses a signal by name ("TERM", "SIGTERM", "term") into its short
/// upper-case name, or takes a number as it is: numbers differ between
/// platforms, and the agent knows its own.
fn parse_signal(s: &str) -> Result<String, String> {
    let t = s.trim();
    if let Ok(number) = t.parse::<i64>() {
        return match number {
            1.. => Ok(number.to_string()),
            0 => Err(
                "signal 0 sends nothing (kill -0 only asks whether a process exists): \
                      name a signal such as TERM, or see a process with `hostscope proc PID`"
                    .to_owned(),
            ),
            _ => Err(format!(
                "{t} is no signal: signal numbers are positive, and the signal comes after the \
                 pid without a dash (`signal PID {}`)",
                t.trim_start_matches('-')
            )),
        };
    }
    match Signal::sendable_from_name(t) {
        Some(signal) => Ok(signal.name().to_owned()),
        None => Err(format!(
            "unknown or disallowed signal {s:?}; allowed: {}",
            Signal::sendable_names()
        )),
    }
}

/// The largest process id a pid flag takes.
const PID_MAX: u32 = u32::MAX;

/// Parses a process id: a whole number from 1 on. Negative numbers reach
/// here (rather than being taken for flags) so that they get this message.
pub fn parse_pid(s: &str) -> Result<u32, String> {
    let t = s.trim();
    match t.parse::<i128>() {
        Ok(0) => Err("0 is no process id: pids start at 1".to_owned()),
        Ok(n) if n < 0 => Err(format!(
            "{t} is no process id: pids are whole numbers from 1 to {PID_MAX}"
        )),
        Ok(n) => {
            u32::try_from(n).map_err(|_| format!("{t} is no process id: pids go up to {PID_MAX}"))
        }
        Err(_) => Err(format!(
            "expected a process id (a whole number from 1 to {PID_MAX}), not {s:?}"
        )),
    }
}

/// Parses `ps --ppid`: a process id, or 0 for the processes that have no
/// parent (init and the kernel's threads).
fn parse_ppid(s: &str) -> Result<u32, String> {
    match s.trim() {
        "0" => Ok(0),
        _ => parse_pid(s).map_err(|e| format!("{e}, or 0 for processes without a parent")),
    }
}

/// The longest `--name` glob the agent accepts, in bytes.
pub const MAX_GLOB_BYTES: usize = 4096;

/// Checks a `--name` glob as the agent will read it, so that a mistyped
/// one is a usage error here rather than a failure on every host.
pub fn parse_glob(s: &str) -> Result<String, String> {
    if s.len() > MAX_GLOB_BYTES {
        return Err(format!(
            "the glob {} is {} bytes; the agent accepts globs of at most {MAX_GLOB_BYTES} bytes",
            quote_short(s),
            s.len()
        ));
    }
    match glob::Pattern::new(s) {
        Ok(_) => Ok(s.to_owned()),
        Err(e) => Err(format!(
            "{} is no valid glob: {} at character {}; to match '[', ']', '*' or '?' \
             literally, put it in brackets: '[[]', '[*]'",
            quote_short(s),
            e.msg,
            e.pos + 1
        )),
    }
}

/// `s` quoted, or its first 64 characters and an ellipsis if it is longer.
fn quote_short(s: &str) -> String {
    match s.char_indices().nth(64) {
        None => format!("{s:?}"),
        Some((end, _)) => format!("{:?}…", &s[..end]),
    }
}

/// Parses `--expect-create-time`: seconds since the epoch, as the API
/// reports create_time.
fn parse_create_time(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(t) if t.is_finite() && t >= 0.0 => Ok(t),
        _ => Err(format!(
            "expected seconds since the epoch, such as 1767612345.67, not {s:?}"
        )),
    }
}

/// Parses `--min-age`; zero acts on whatever one look finds.
fn parse_min_age(s: &str) -> Result<Duration, String> {
    duration::parse(s, "500ms, 30s or 2m")
}

/// Parses `--grace`; zero means "look again at once".
fn parse_grace(s: &str) -> Result<Duration, String> {
    duration::parse(s, "500ms, 5s or 1m")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_before_or_after_the_subcommand() {
        let before = Cli::try_parse_from(["hostscope", "--output", "json", "--plaintext", "host"])
            .expect("before");
        let after = Cli::try_parse_from(["hostscope", "host", "--output", "json", "--plaintext"])
            .expect("after");
        for cli in [before, after] {
            assert_eq!(cli.global.output, Some(Output::Json));
            assert!(cli.global.plaintext);
        }
    }

    #[test]
    fn fleet_flags_parse_and_default() {
        let cli = Cli::try_parse_from(["hostscope", "ps"]).expect("defaults");
        assert_eq!(cli.fleet.concurrency, 256);
        assert_eq!(cli.fleet.timeout, Duration::from_secs(10));
        assert_eq!(cli.fleet.retries, 1);
        assert_eq!(cli.fleet.buffer_budget, None);
        assert!(cli.targets.hosts.is_empty() && cli.targets.inventory.is_none());
        assert!(cli.command.targets().is_some_and(|t| t.hosts.is_empty()));

        let cli = Cli::try_parse_from([
            "hostscope",
            "--hosts",
            "a,b",
            "ps",
            "--hosts",
            "-",
            "--select",
            "role=web",
            "--select",
            "dc = fra1",
            "--group",
            "canary",
            "--timeout",
            "1m30s",
            "--concurrency",
            "8",
            "--retries",
            "0",
        ])
        .expect("fleet flags");
        // Each side keeps its own values; `cli::targets` joins them.
        assert_eq!(cli.targets.hosts, ["a,b"]);
        let after = cli.command.targets().expect("ps takes targets");
        assert_eq!(after.hosts, ["-"]);
        assert_eq!(
            after.select,
            [
                ("role".to_owned(), "web".to_owned()),
                ("dc".to_owned(), "fra1".to_owned())
            ]
        );
        assert_eq!(after.groups, ["canary"]);
        assert_eq!(cli.fleet.timeout, Duration::from_secs(90));
        assert_eq!((cli.fleet.concurrency, cli.fleet.retries), (8, 0));
    }

    #[test]
    fn bad_fleet_flags_say_what_is_expected() {
        let error = |args: &[&str]| {
            let mut all = vec!["hostscope", "host"];
            all.extend(args);
            Cli::try_parse_from(all).expect_err("invalid").to_string()
        };
        assert!(error(&["--select", "role"]).contains("expected KEY=VALUE"));
        assert!(error(&["--select", "=web"]).contains("expected KEY=VALUE"));
        assert!(error(&["--timeout", "0s"]).contains("longer than 0"));
        assert!(error(&["--timeout", "3 parsecs"]).contains("such as 500ms"));
        assert!(error(&["--concurrency", "0"]).contains("at least 1"));
        assert!(error(&["--buffer-budget", "0"]).contains("from 1 byte"));
        assert!(error(&["--buffer-budget", "64 parsecs"]).contains("such as 512KiB"));
    }

    #[test]
    fn sizes_take_bytes_and_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64 mb"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("1.5MiB").is_err());
    }

    #[test]
    fn the_help_lists_every_field_and_status() {
        use hostscope_client::proto::ProcessField;
        for name in ProcessField::short_names()
            .iter()
            .chain(&ProcessStatus::short_names())
        {
            assert!(
                PS_EXAMPLES.contains(name.as_str()),
                "ps --help does not mention {name}"
            );
        }
    }

    #[test]
    fn statuses_are_checked() {
        let cli = Cli::try_parse_from(["hostscope", "ps", "--status", "zombie,disk_sleep"])
            .expect("statuses");
        match cli.command {
            Command::Ps(ps) => {
                assert_eq!(ps.status, [ProcessStatus::Zombie, ProcessStatus::DiskSleep])
            }
            other => panic!("parsed as {other:?}"),
        }
        let e =
            Cli::try_parse_from(["hostscope", "ps", "--status", "undead"]).expect_err("bad status");
        assert!(
            e.to_string().contains("valid statuses: running, sleeping"),
            "{e}"
        );
    }

    #[test]
    fn zombie_sweeps_need_reap_for_yes_and_kill_parents() {
        let parse = |args: &[&str]| {
            let mut all = vec!["hostscope", "zombies"];
            all.extend(args);
            Cli::try_parse_from(all)
        };
        let cli = parse(&["--reap", "--yes", "--grace", "200ms", "--ppid", "7,8"]).expect("reap");
        match cli.command {
            Command::Zombies(z) => {
                assert!(z.reap && z.yes && !z.kill_parents);
                assert_eq!(z.grace, Duration::from_millis(200));
                assert_eq!(z.ppid, [7, 8]);
            }
            other => panic!("parsed as {other:?}"),
        }
        match parse(&[]).expect("defaults").command {
            Command::Zombies(z) => assert_eq!(z.grace, Duration::from_secs(5)),
            other => panic!("parsed as {other:?}"),
        }
        assert!(parse(&["--yes"]).is_err());
        assert!(parse(&["--kill-parents"]).is_err());
        assert!(parse(&["--reap", "--grace", "soon"]).is_err());
    }

    #[test]
    fn signals_are_checked_by_name_and_numbers_pass() {
        let signal = |s: &str| match Cli::try_parse_from(["hostscope", "signal", "42", s])
            .map_err(|e| e.to_string())?
            .command
        {
            Command::Signal(args) => Ok(args.signal),
            other => Err(format!("parsed as {other:?}")),
        };
        assert_eq!(signal("sigterm").as_deref(), Ok("TERM"));
        assert_eq!(signal("Chld").as_deref(), Ok("CHLD"));
        assert_eq!(signal("9").as_deref(), Ok("9"));
        let e = signal("SEGV").expect_err("not allowed");
        assert!(e.contains("allowed: TERM, KILL"), "{e}");
        let e = Cli::try_parse_from([
            "hostscope",
            "signal",
            "42",
            "TERM",
            "--expect-create-time",
            "yesterday",
        ])
        .expect_err("not a number");
        assert!(e.to_string().contains("seconds since the epoch"), "{e}");
    }

    #[test]
    fn pki_issue_needs_a_role() {
        let issue = |role: &[&str]| {
            let base = ["hostscope", "pki", "issue", "--dir", "d", "--name", "n"];
            Cli::try_parse_from(base.iter().chain(role))
        };
        assert!(issue(&[]).is_err());
        assert!(issue(&["--server", "--client"]).is_err());
        assert!(issue(&["--client"]).is_ok());
    }

    #[test]
    fn globs_over_four_kib_are_refused_here_and_quoted_short() {
        assert!(parse_glob(&"*a".repeat(2_048)).is_ok());
        let huge = "*a".repeat(30_000) + "b";
        let e = parse_glob(&huge).expect_err("too long");
        assert!(e.contains("60001 bytes"), "{e}");
        assert!(e.contains("at most 4096 bytes"), "{e}");
        assert!(e.len() < 300, "{e}");
        let e = parse_glob(&("[".to_owned() + &"a".repeat(1_000))).expect_err("unclosed");
        assert!(e.contains("no valid glob"), "{e}");
        assert!(e.len() < 300, "{e}");
    }
}
