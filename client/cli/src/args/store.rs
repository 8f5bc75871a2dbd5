//! `hostscope collect`, `sql` and `diff`: the flags of the inventory
//! store's commands as typed, and their `--help` texts.

use std::time::Duration;

use clap::Args;

use crate::{args::Targets, duration};

/// `collect --help`'s closing part.
pub const COLLECT_EXAMPLES: &str = "\
Each run takes one snapshot of every host: GetHost, every process (zombies included), every
interface with its addresses, the system figures, the disks and the listening sockets. A
host's rows are written in one transaction as soon as it has answered, so an interrupted run
keeps every host it finished and none by halves; a host that did not answer gets a scrape
with ok = false and its error (timeout, connection-refused, ...), and keeps its last state in
the latest_* views.

--db is a file (SQLite, created with mode 0600, nothing to install) or a postgres:// URL.
The password of a PostgreSQL URL comes from HOSTSCOPE_DB_PASSWORD or --db-password-file,
never from the command line. --every repeats until SIGINT or SIGTERM, and finishes the
snapshot in progress before it exits (a second signal stops at once). --retain drops
snapshots older than that after each one, keeping each host's latest. --shard K/N takes the
hosts whose name hashes to K of N, so that N collectors share one inventory and one
PostgreSQL database; every host falls to exactly one of them. --watch also appends each
host's process events (started, exec, exited, zombie) to process_events while it runs.

Examples:
  hostscope --inventory fleet.toml collect --db fleet.db
  hostscope --inventory fleet.toml collect --db fleet.db --every 10m --retain 30d
  hostscope --inventory fleet.toml collect --db postgres://collector@db.example.net/fleet --shard 1/3
  hostscope --inventory fleet.toml collect --db fleet.db --every 5m --watch";

/// `sql --help`'s closing part.
pub const SQL_EXAMPLES: &str = "\
The store is opened read-only (SQLite) or queried in a read-only transaction (PostgreSQL):
statements that would write are refused. `hostscope sql --schema` prints the tables and
views. The latest_* views (latest_hosts, latest_processes, latest_zombies,
latest_interfaces, latest_addresses, latest_system, latest_disks, latest_sockets) hold each
host's last successful snapshot with its age (age_seconds, as_of: \"3 h ago\"), so a host
that is down still answers. Times are seconds since the epoch; cmdline is a JSON list.
--live asks the targets now, into a store in memory, and queries that.

Examples:
  hostscope sql --db fleet.db \"SELECT host, pid, name, rss FROM latest_processes ORDER BY rss DESC LIMIT 10\"
  hostscope sql --db fleet.db \"SELECT host, as_of, last_error FROM latest_hosts WHERE NOT up\"
  hostscope sql --db fleet.db -o csv \"SELECT host, name FROM latest_interfaces WHERE NOT isup\"
  hostscope --inventory fleet.toml sql --live \"SELECT host, pid, process FROM latest_sockets WHERE local_port = 23\"
  hostscope sql --schema";

/// `diff --help`'s closing part.
pub const DIFF_EXAMPLES: &str = "\
Per host, compares its last successful snapshot at or before --since ago (else its first
after) with its latest: processes started and gone (a process is its pid and create_time),
interfaces added and removed, links that went up or down, addresses added and removed, and
zombies that were not there before. Hosts with one snapshot in that time are left out.
--host names one host as the inventory names it.

Examples:
  hostscope diff --db fleet.db --since 24h
  hostscope diff --db fleet.db --since 1h --host web1 -o json";

/// Where the store is.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// The store: a SQLite file (fleet.db) or a PostgreSQL URL (postgres://user@host/db,
    /// without the password).
    #[arg(long, value_name = "PATH_OR_URL")]
    pub db: Option<String>,

    /// A file holding the PostgreSQL password (else HOSTSCOPE_DB_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub db_password_file: Option<std::path::PathBuf>,
}

/// What `hostscope collect` takes, as typed.
#[derive(Debug, Args)]
pub struct CollectArgs {
    #[command(flatten)]
    pub db: DbArgs,

    /// Take a snapshot every INTERVAL until SIGINT or SIGTERM (10m, 1h).
    #[arg(long, value_name = "INTERVAL", value_parser = parse_every)]
    pub every: Option<Duration>,

    /// After each snapshot, drop snapshots older than AGE (30d, 12h); each host's latest stays.
    #[arg(long, value_name = "AGE", value_parser = parse_retain)]
    pub retain: Option<Duration>,

    /// Take only the hosts of shard K of N (1/3, 2/3, 3/3), chosen by host name.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,

    /// Also append each host's process events to process_events while collecting.
    #[arg(long)]
    pub watch: bool,

    #[command(flatten)]
    pub targets: Targets,
}

/// What `hostscope sql` takes, as typed.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// One statement that reads (SELECT, WITH ...).
    #[arg(value_name = "SQL", required_unless_present = "schema")]
    pub query: Option<String>,

    #[command(flatten)]
    pub db: DbArgs,

    /// Print the schema: the tables and views, as SQL.
    #[arg(long, conflicts_with_all = ["query", "live"])]
    pub schema: bool,

    /// Ask the targets now, into a store in memory, and query that (no --db).
    #[arg(long, conflicts_with = "db")]
    pub live: bool,

    #[command(flatten)]
    pub targets: Targets,
}

/// What `hostscope diff` takes, as typed. `--host` (the global flag)
/// names the one host to compare.
#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub db: DbArgs,

    /// Compare with the snapshot of this long ago (1h, 24h, 7d).
    #[arg(long, value_name = "AGE", default_value = "24h", value_parser = parse_retain)]
    pub since: Duration,
}

/// One of N shards of an inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which, from 1.
    pub k: u64,
    /// Of how many.
    pub n: u64,
}

impl Shard {
    /// Whether the host named `name` falls to this shard. FNV-1a: the
    /// same on every machine and in every release, unlike std's hasher.
    pub fn takes(&self, name: &str) -> bool {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in name.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash % self.n == self.k - 1
    }
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    let bad = || format!("expected K/N with 1 <= K <= N, such as 1/3, not {s:?}");
    let (k, n) = s.trim().split_once('/').ok_or_else(bad)?;
    let k: u64 = k.trim().parse().map_err(|_| bad())?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok(Shard { k, n })
}

fn parse_every(s: &str) -> Result<Duration, String> {
    duration::parse_nonzero(s, "5m, 10m or 1h", "the interval must be longer than 0")
}

fn parse_retain(s: &str) -> Result<Duration, String> {
    duration::parse_nonzero(s, "12h, 7d or 30d", "the age must be longer than 0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_every_name_to_exactly_one() {
        let shards: Vec<Shard> = (1..=3).map(|k| Shard { k, n: 3 }).collect();
        for i in 0..500 {
            let name = format!("web{i}.example.net");
            assert_eq!(
                shards.iter().filter(|s| s.takes(&name)).count(),
                1,
                "{name}"
            );
        }
        assert_eq!(parse_shard("2/3"), Ok(Shard { k: 2, n: 3 }));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }
}
