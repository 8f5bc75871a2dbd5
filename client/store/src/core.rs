//! Writing, pruning and comparing snapshots, once for both databases: the
//! statements are plain SQL that SQLite and PostgreSQL both accept, run
//! through [`Db`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::{
    Error, Val,
    rows::{self, Outcome, Scrape},
    schema::{self, Dialect},
};

/// A connection that runs statements with `$1`-style parameters.
pub(crate) trait Db {
    fn dialect(&self) -> Dialect;
    /// Runs statements without parameters, one after the other.
    async fn batch(&mut self, sql: &str) -> Result<(), Error>;
    /// Runs one statement; returns the rows it changed.
    async fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, Error>;
    /// Runs `steps` in order, stopping at the first error.
    async fn run(&mut self, steps: &[Step]) -> Result<(), Error>;
    /// Runs one query; returns its rows.
    async fn rows(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, Error>;
}

/// A statement and the parameters it runs with, once per row.
pub(crate) struct Step {
    pub(crate) sql: String,
    pub(crate) rows: Vec<Vec<Val>>,
}

impl Step {
    fn one(sql: impl Into<String>, row: Vec<Val>) -> Step {
        Step {
            sql: sql.into(),
            rows: vec![row],
        }
    }

    fn many(sql: impl Into<String>, rows: impl IntoIterator<Item = Vec<Val>>) -> Step {
        Step {
            sql: sql.into(),
            rows: rows.into_iter().collect(),
        }
    }
}

/// Runs `body` in a transaction: committed when it succeeds, rolled back
/// when it fails.
macro_rules! transaction {
    ($db:expr, $begin:expr, $body:expr) => {{
        $db.batch($begin).await?;
        match $body.await {
            Ok(value) => {
                $db.batch("COMMIT").await?;
                Ok(value)
            }
            Err(e) => {
                // The error that matters is the first.
                let _ = $db.batch("ROLLBACK").await;
                Err(e)
            }
        }
    }};
}

/// Brings the schema up to date: every migration newer than the
/// database's version, each in its own transaction.
pub(crate) async fn migrate<D: Db>(db: &mut D, begin: &str) -> Result<(), Error> {
    transaction!(db, begin, async {
        lock_for_migration(db).await?;
        db.batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations \
             (version BIGINT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)",
        )
        .await
    })?;
    for (version, text) in schema::migrations(db.dialect()) {
        transaction!(db, begin, async {
            lock_for_migration(db).await?;
            // Checked inside the transaction: another collector may have
            // applied it meanwhile.
            if version <= current_version(db).await? {
                return Ok(());
            }
            db.batch(&text).await?;
            db.exec(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                &[Val::Int(version), Val::Real(crate::now())],
            )
            .await?;
            Ok::<_, Error>(())
        })?;
    }
    check_version(db).await
}

/// Makes collectors that start together (one per shard) migrate one
/// after the other. SQLite's `BEGIN IMMEDIATE` already does.
async fn lock_for_migration<D: Db>(db: &mut D) -> Result<(), Error> {
    if db.dialect() == Dialect::Postgres {
        // Released with the transaction; the key is "hsdb" in ASCII.
        db.batch("SELECT pg_advisory_xact_lock(1752392802)").await?;
    }
    Ok(())
}

pub(crate) async fn current_version<D: Db>(db: &mut D) -> Result<i64, Error> {
    let rows = db
        .rows("SELECT max(version) FROM schema_migrations", &[])
        .await?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(Val::as_i64)
        .unwrap_or(0))
}

/// Refuses a database that a newer hostscope has migrated further, or
/// one that was never migrated.
pub(crate) async fn check_version<D: Db>(db: &mut D) -> Result<(), Error> {
    let found = current_version(db).await?;
    let known = schema::latest_version();
    if found == known {
        Ok(())
    } else {
        Err(Error::Version { found, known })
    }
}

const PROCESS_COLUMNS: &str = "scrape_id, pid, ppid, name, exe, cmdline, status, username, uid, \
    gid, terminal, cwd, nice, create_time, num_threads, num_fds, ctx_switches_voluntary, \
    ctx_switches_involuntary, cpu_user, cpu_system, rss, vms, shared, read_bytes, write_bytes, \
    cgroup";

const INTERFACE_COLUMNS: &str = "scrape_id, name, isup, duplex, speed, mtu, flags, bytes_sent, \
    bytes_recv, packets_sent, packets_recv, errin, errout, dropin, dropout";

const SYSTEM_COLUMNS: &str = "scrape_id, load1, load5, load15, cpu_percent, memory_total, \
    memory_available, memory_used, memory_percent, swap_total, swap_used, swap_percent, users";

/// `INSERT INTO table (columns) VALUES ($1, ..., $n)`.
fn insert(table: &str, columns: &str) -> String {
    let n = columns.split(',').count();
    let params: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO {table} ({columns}) VALUES ({})",
        params.join(", ")
    )
}

/// Writes one host's scrape in one transaction; returns the scrape's id.
pub(crate) async fn write_scrape<D: Db>(
    db: &mut D,
    begin: &str,
    scrape: &Scrape,
) -> Result<i64, Error> {
    transaction!(db, begin, write_scrape_rows(db, scrape))
}

async fn write_scrape_rows<D: Db>(db: &mut D, scrape: &Scrape) -> Result<i64, Error> {
    let host = &scrape.host;
    let labels = serde_json::to_string(&host.labels).map_err(|e| Error::Encode(e.to_string()))?;
    let name = Val::Text(host.name.clone());
    db.exec(
        "INSERT INTO hosts (name, address, labels) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET address = excluded.address, labels = excluded.labels",
        &[
            name.clone(),
            Val::Text(host.address.clone()),
            Val::Text(labels),
        ],
    )
    .await?;
    let (ok, label, message) = match &scrape.outcome {
        Outcome::Answered(_) => (true, Val::Null, Val::Null),
        Outcome::Failed { label, message } => {
            (false, Val::Text(label.clone()), Val::Text(message.clone()))
        }
    };
    let id = db
        .rows(
            "INSERT INTO scrapes (host, started_at, duration, ok, error, message) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                name.clone(),
                Val::Real(scrape.started_at),
                Val::Real(scrape.duration),
                Val::Bool(ok),
                label,
                message,
            ],
        )
        .await?
        .first()
        .and_then(|r| r.first())
        .and_then(Val::as_i64)
        .ok_or_else(|| Error::Encode("the new scrape has no id".into()))?;
    let Outcome::Answered(snap) = &scrape.outcome else {
        db.exec(
            "UPDATE hosts SET last_scrape_id = $2 WHERE name = $1",
            &[name, Val::Int(id)],
        )
        .await?;
        return Ok(id);
    };
    // The processes first: PostgreSQL takes them by COPY, and the
    // statements after them go together.
    let mut steps = vec![
        Step::many(
            insert("processes", PROCESS_COLUMNS),
            snap.processes.iter().map(|p| rows::process(id, p)),
        ),
        Step::one(
            insert(
                "host_facts",
                "scrape_id, hostname, os, os_release, kernel, arch, boot_time, cpu_count, \
                 memory_total, agent_version, backend",
            ),
            rows::host_facts(id, &snap.host),
        ),
        Step::many(
            insert(
                "zombies",
                "scrape_id, pid, ppid, name, create_time, parent_name, parent_cmdline",
            ),
            rows::zombies(id, &snap.processes),
        ),
    ];
    steps.extend(spans(&name, id, scrape.started_at));
    // A host's previous processes give way to these. Only its last good
    // scrape has any, so this is one probe of the primary key, however
    // long the history.
    steps.push(Step::one(
        "DELETE FROM processes WHERE scrape_id = \
         (SELECT last_ok_scrape_id FROM hosts WHERE name = $1)",
        vec![name.clone()],
    ));
    steps.push(Step::many(
        insert("interfaces", INTERFACE_COLUMNS),
        snap.interfaces.iter().map(|n| rows::interface(id, n)),
    ));
    steps.push(Step::many(
        insert(
            "addresses",
            "scrape_id, interface, family, address, netmask, broadcast, ptp",
        ),
        snap.interfaces.iter().flat_map(|n| rows::addresses(id, n)),
    ));
    if let Some(system) = &snap.system {
        steps.push(Step::one(
            insert("system_figures", SYSTEM_COLUMNS),
            rows::system(id, system),
        ));
    }
    if let Some(disks) = &snap.disks {
        steps.push(Step::many(
            insert(
                "disks",
                "scrape_id, device, mountpoint, fstype, opts, total, used, free, percent",
            ),
            rows::disks(id, disks),
        ));
    }
    if let Some(listening) = &snap.listening {
        steps.push(Step::many(
            insert(
                "sockets",
                "scrape_id, proto, local_ip, local_port, status, pid, process, uid",
            ),
            listening.iter().map(|l| rows::socket(id, l)),
        ));
    }
    steps.push(Step::one(
        "UPDATE hosts SET last_scrape_id = $2, last_ok_scrape_id = $2 WHERE name = $1",
        vec![name, Val::Int(id)],
    ));
    db.run(&steps).await?;
    Ok(id)
}

/// Brings the spans of `host` up to its new scrape `id` (whose processes
/// are written before, and which is not yet the host's last good one):
/// the spans of processes gone since that one end there, new processes
/// get a span, and a process back after a scrape that missed it runs
/// again. Processes seen before and still there cost a read, not a write.
/// Each side is read once and looked up in a hash of the other (`NOT IN`,
/// safe here as no key column is NULL), not probed row by row.
fn spans(host: &Val, id: i64, seen: f64) -> [Step; 2] {
    [
        Step::one(
            "UPDATE spans SET last_seen = \
               (SELECT s.started_at FROM hosts h JOIN scrapes s ON s.id = h.last_ok_scrape_id \
                WHERE h.name = $1) \
             WHERE host = $1 AND last_seen IS NULL AND (pid, create_time) NOT IN \
               (SELECT pid, create_time FROM processes \
                WHERE scrape_id = $2 AND create_time IS NOT NULL)",
            vec![host.clone(), Val::Int(id)],
        ),
        Step::one(
            "INSERT INTO spans (host, pid, create_time, name, exe, cmdline, first_seen) \
             SELECT CAST($1 AS TEXT), pid, create_time, name, exe, cmdline, \
             CAST($3 AS DOUBLE PRECISION) FROM processes \
             WHERE scrape_id = $2 AND create_time IS NOT NULL AND (pid, create_time) NOT IN \
               (SELECT pid, create_time FROM spans WHERE host = $1 AND last_seen IS NULL) \
             ON CONFLICT (host, pid, create_time) DO UPDATE SET last_seen = NULL \
             WHERE spans.last_seen IS NOT NULL",
            vec![host.clone(), Val::Int(id), Val::Real(seen)],
        ),
    ]
}

/// Appends WatchProcesses events of `host` (known to the store) to
/// process_events, in one transaction.
pub(crate) async fn write_events<D: Db>(
    db: &mut D,
    begin: &str,
    host: &rows::HostId,
    events: &[hostscope_proto::ProcessEvent],
) -> Result<(), Error> {
    let rows = events.iter().map(|e| rows::event(&host.name, e)).collect();
    transaction!(db, begin, async {
        db.exec(
            "INSERT INTO hosts (name, address, labels) VALUES ($1, $2, '{}') \
             ON CONFLICT (name) DO NOTHING",
            &[
                Val::Text(host.name.clone()),
                Val::Text(host.address.clone()),
            ],
        )
        .await?;
        db.run(&[Step {
            sql: insert(
                "process_events",
                "host, at, kind, pid, ppid, name, cmdline, username, create_time, exit_code, \
                 exit_signal",
            ),
            rows,
        }])
        .await
    })
}

/// What [`prune`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Scrapes, with all their rows.
    pub scrapes: u64,
    /// Process spans last seen before the cutoff.
    pub spans: u64,
    /// Process events from before the cutoff.
    pub events: u64,
}

/// Removes what is older than `cutoff` (seconds since the epoch), except
/// each host's latest scrape and latest successful scrape (and the spans
/// of its processes): a host long down still shows its last state.
pub(crate) async fn prune<D: Db>(db: &mut D, begin: &str, cutoff: f64) -> Result<Pruned, Error> {
    let at = [Val::Real(cutoff)];
    transaction!(db, begin, async {
        let scrapes = db
            .exec(
                "DELETE FROM scrapes WHERE started_at < $1 \
                 AND id NOT IN (SELECT last_ok_scrape_id FROM hosts \
                                WHERE last_ok_scrape_id IS NOT NULL) \
                 AND id NOT IN (SELECT last_scrape_id FROM hosts \
                                WHERE last_scrape_id IS NOT NULL)",
                &at,
            )
            .await?;
        let spans = db
            .exec(
                // A running process's span has no last_seen yet.
                "DELETE FROM spans WHERE last_seen < $1",
                &at,
            )
            .await?;
        let events = db
            .exec("DELETE FROM process_events WHERE at < $1", &at)
            .await?;
        Ok::<_, Error>(Pruned {
            scrapes,
            spans,
            events,
        })
    })
}

// === diff ===

/// What changed on one host between two of its successful scrapes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostDiff {
    /// The host.
    pub host: String,
    /// When the earlier scrape began, seconds since the epoch.
    pub from: f64,
    /// When the later (the host's latest successful) scrape began.
    pub to: f64,
    /// Processes first seen after `from`.
    pub started: Vec<ProcessRef>,
    /// Processes seen at or after `from` and gone by `to`.
    pub gone: Vec<ProcessRef>,
    /// Interfaces that appeared.
    pub interfaces_added: Vec<String>,
    /// Interfaces that disappeared.
    pub interfaces_removed: Vec<String>,
    /// Interfaces whose link went up or down.
    pub link_changes: Vec<LinkChange>,
    /// Addresses that appeared.
    pub addresses_added: Vec<AddressRef>,
    /// Addresses that disappeared.
    pub addresses_removed: Vec<AddressRef>,
    /// Zombies in `to` that were not zombies in `from`.
    pub new_zombies: Vec<ZombieRef>,
}

impl HostDiff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.started.is_empty()
            && self.gone.is_empty()
            && self.interfaces_added.is_empty()
            && self.interfaces_removed.is_empty()
            && self.link_changes.is_empty()
            && self.addresses_added.is_empty()
            && self.addresses_removed.is_empty()
            && self.new_zombies.is_empty()
    }
}

/// A process by its identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessRef {
    /// Its pid.
    pub pid: i64,
    /// When it started, seconds since the epoch.
    pub create_time: f64,
    /// Its name, when known.
    pub name: Option<String>,
    /// Its command line as JSON text.
    pub cmdline: Option<String>,
    /// The first scrape that saw it.
    pub first_seen: f64,
    /// The last scrape that saw it.
    pub last_seen: f64,
}

/// An interface whose link changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkChange {
    /// The interface.
    pub interface: String,
    /// Whether it was up.
    pub was_up: bool,
    /// Whether it is up.
    pub is_up: bool,
}

/// An address of an interface.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct AddressRef {
    /// The interface.
    pub interface: String,
    /// inet, inet6 or link.
    pub family: String,
    /// The address.
    pub address: String,
}

/// A zombie and its parent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZombieRef {
    /// Its pid.
    pub pid: i64,
    /// Its parent's pid.
    pub ppid: Option<i64>,
    /// Its name.
    pub name: Option<String>,
    /// Its parent's name.
    pub parent_name: Option<String>,
}

/// Per host (all, or `host`), what changed between its last successful
/// scrape at or before `since` (else its first after) and its latest.
/// Hosts with a single scrape in that range are left out.
pub(crate) async fn diff<D: Db>(
    db: &mut D,
    begin: &str,
    since: f64,
    host: Option<&str>,
) -> Result<Vec<HostDiff>, Error> {
    transaction!(db, begin, diff_rows(db, since, host))
}

async fn diff_rows<D: Db>(
    db: &mut D,
    since: f64,
    host: Option<&str>,
) -> Result<Vec<HostDiff>, Error> {
    let hosts = match host {
        Some(h) => {
            db.rows(
                "SELECT h.name, s.id, s.started_at FROM hosts h \
                 JOIN scrapes s ON s.id = h.last_ok_scrape_id WHERE h.name = $1",
                &[Val::Text(h.to_owned())],
            )
            .await?
        }
        None => {
            db.rows(
                "SELECT h.name, s.id, s.started_at FROM hosts h \
                 JOIN scrapes s ON s.id = h.last_ok_scrape_id ORDER BY h.name",
                &[],
            )
            .await?
        }
    };
    let mut diffs = Vec::new();
    for row in hosts {
        let (Some(name), Some(to_id), Some(to)) = (
            row.first().and_then(Val::as_str).map(str::to_owned),
            row.get(1).and_then(Val::as_i64),
            row.get(2).and_then(Val::as_f64),
        ) else {
            continue;
        };
        let h = Val::Text(name.clone());
        let before = db
            .rows(
                "SELECT id, started_at FROM scrapes WHERE host = $1 AND ok AND started_at <= $2 \
                 ORDER BY started_at DESC LIMIT 1",
                &[h.clone(), Val::Real(since)],
            )
            .await?;
        let from_row = match before.into_iter().next() {
            Some(r) => Some(r),
            None => db
                .rows(
                    "SELECT id, started_at FROM scrapes WHERE host = $1 AND ok \
                     AND started_at > $2 ORDER BY started_at LIMIT 1",
                    &[h.clone(), Val::Real(since)],
                )
                .await?
                .into_iter()
                .next(),
        };
        let Some((from_id, from)) = from_row.and_then(|r| {
            Some((
                r.first().and_then(Val::as_i64)?,
                r.get(1).and_then(Val::as_f64)?,
            ))
        }) else {
            continue;
        };
        if from_id == to_id {
            continue;
        }
        let spans = "SELECT pid, create_time, name, cmdline, first_seen, last_seen \
                     FROM process_spans WHERE host = $1 AND ";
        let started = db
            .rows(
                &format!("{spans} first_seen > $2 AND first_seen <= $3 ORDER BY first_seen, pid"),
                &[h.clone(), Val::Real(from), Val::Real(to)],
            )
            .await?;
        let gone = db
            .rows(
                &format!("{spans} last_seen >= $2 AND last_seen < $3 ORDER BY last_seen, pid"),
                &[h.clone(), Val::Real(from), Val::Real(to)],
            )
            .await?;
        let nics = |id| {
            (
                "SELECT name, isup FROM interfaces WHERE scrape_id = $1",
                [Val::Int(id)],
            )
        };
        let (sql, p) = nics(from_id);
        let old_nics = links(db.rows(sql, &p).await?);
        let (sql, p) = nics(to_id);
        let new_nics = links(db.rows(sql, &p).await?);
        let addrs = "SELECT interface, family, address FROM addresses WHERE scrape_id = $1";
        let old_addrs = addresses(db.rows(addrs, &[Val::Int(from_id)]).await?);
        let new_addrs = addresses(db.rows(addrs, &[Val::Int(to_id)]).await?);
        let new_zombies = db
            .rows(
                "SELECT z.pid, z.ppid, z.name, z.parent_name FROM zombies z \
                 WHERE z.scrape_id = $1 AND NOT EXISTS (SELECT 1 FROM zombies o \
                 WHERE o.scrape_id = $2 AND o.pid = z.pid \
                 AND (o.create_time = z.create_time \
                      OR (o.create_time IS NULL AND z.create_time IS NULL))) \
                 ORDER BY z.pid",
                &[Val::Int(to_id), Val::Int(from_id)],
            )
            .await?;
        diffs.push(HostDiff {
            host: name,
            from,
            to,
            started: started.into_iter().filter_map(process_ref).collect(),
            gone: gone.into_iter().filter_map(process_ref).collect(),
            interfaces_added: new_nics
                .keys()
                .filter(|n| !old_nics.contains_key(*n))
                .cloned()
                .collect(),
            interfaces_removed: old_nics
                .keys()
                .filter(|n| !new_nics.contains_key(*n))
                .cloned()
                .collect(),
            link_changes: new_nics
                .iter()
                .filter_map(|(n, up)| {
                    let was = *old_nics.get(n)?;
                    (was != *up).then(|| LinkChange {
                        interface: n.clone(),
                        was_up: was,
                        is_up: *up,
                    })
                })
                .collect(),
            addresses_added: new_addrs.difference(&old_addrs).cloned().collect(),
            addresses_removed: old_addrs.difference(&new_addrs).cloned().collect(),
            new_zombies: new_zombies
                .into_iter()
                .map(|r| ZombieRef {
                    pid: r.first().and_then(Val::as_i64).unwrap_or_default(),
                    ppid: r.get(1).and_then(Val::as_i64),
                    name: r.get(2).and_then(Val::as_str).map(str::to_owned),
                    parent_name: r.get(3).and_then(Val::as_str).map(str::to_owned),
                })
                .collect(),
        });
    }
    Ok(diffs)
}

fn process_ref(r: Vec<Val>) -> Option<ProcessRef> {
    Some(ProcessRef {
        pid: r.first()?.as_i64()?,
        create_time: r.get(1)?.as_f64()?,
        name: r.get(2).and_then(Val::as_str).map(str::to_owned),
        cmdline: r.get(3).and_then(Val::as_str).map(str::to_owned),
        first_seen: r.get(4)?.as_f64()?,
        last_seen: r.get(5)?.as_f64()?,
    })
}

fn links(rows: Vec<Vec<Val>>) -> BTreeMap<String, bool> {
    rows.into_iter()
        .filter_map(|r| Some((r.first()?.as_str()?.to_owned(), r.get(1)?.as_bool()?)))
        .collect()
}

fn addresses(rows: Vec<Vec<Val>>) -> BTreeSet<AddressRef> {
    rows.into_iter()
        .filter_map(|r| {
            Some(AddressRef {
                interface: r.first()?.as_str()?.to_owned(),
                family: r.get(1)?.as_str()?.to_owned(),
                address: r.get(2)?.as_str()?.to_owned(),
            })
        })
        .collect()
}
