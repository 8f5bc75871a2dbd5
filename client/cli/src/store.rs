//! `hostscope collect`, `sql` and `diff`: the fleet's snapshots in the
//! inventory store (crate hostscope-store), written host by host as the
//! fan-out yields them, and read back with SQL.

use std::{collections::BTreeMap, convert::Infallible, pin::Pin, time::Duration};

use anyhow::{Context, bail};
use futures_util::stream::FuturesUnordered;
use prost::Message;
use tokio_stream::{Stream, StreamExt};

use super::{
    args::{CollectArgs, DbArgs, DiffArgs, Output, SqlArgs},
    env::Env,
    fanout::{self, Io},
    sockets,
    table::{Align, Table},
};
use hostscope_client::{
    Client, Error,
    fleet::{Budget, Charge, Fleet, HostOutcome, HostSpec, Parts, Streamed, Summary, WatchItem},
    proto::{self, EnumName, ProcessField as F, ProcessFilter},
};
use hostscope_store::{
    Dialect, HostDiff, HostId, Listening, Outcome, Scrape, Snapshot, Store, Val,
};

/// The process fields a snapshot keeps: psutil's, without the costly
/// ones (memory maps, threads) and without the environment (secrets).
const FIELDS: [F; 19] = [
    F::Ppid,
    F::Name,
    F::Exe,
    F::Cmdline,
    F::Status,
    F::Username,
    F::Uids,
    F::Gids,
    F::Terminal,
    F::Cwd,
    F::Nice,
    F::CreateTime,
    F::NumThreads,
    F::NumFds,
    F::NumCtxSwitches,
    F::CpuTimes,
    F::MemoryInfo,
    F::IoCounters,
    F::Cgroup,
];

/// Whether `db` names a PostgreSQL database rather than a SQLite file.
fn is_postgres(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// The store `--db` names, opened for writing (schema brought up to date)
/// or read-only.
async fn open(args: &DbArgs, env: &Env, write: bool) -> anyhow::Result<Store> {
    let Some(db) = &args.db else {
        bail!("--db is needed: a SQLite file (fleet.db) or a postgres:// URL");
    };
    if is_postgres(db) {
        let password = password(args, env)?;
        let store = match write {
            true => Store::open_postgres(db, password).await,
            false => Store::open_postgres_read_only(db, password).await,
        };
        return Ok(store?);
    }
    if args.db_password_file.is_some() {
        bail!("--db-password-file is for a postgres:// URL; {db} is a SQLite file");
    }
    let path = std::path::Path::new(db);
    Ok(match write {
        true => Store::open_sqlite(path).await?,
        false => Store::open_sqlite_read_only(path).await?,
    })
}

/// The PostgreSQL password: from --db-password-file, else
/// HOSTSCOPE_DB_PASSWORD, else none (a trust or peer login).
fn password(args: &DbArgs, env: &Env) -> anyhow::Result<Option<String>> {
    if let Some(file) = &args.db_password_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the password file {}", file.display()))?;
        return Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()));
    }
    Ok(env
        .get("HOSTSCOPE_DB_PASSWORD")
        .map(|v| v.to_string_lossy().into_owned()))
}

// === collect ===

/// One host's snapshot, and what it holds of the budget until written.
struct Held {
    snapshot: Snapshot,
    /// The processes, encoded as they came off the wire (length-delimited
    /// messages): far smaller than decoded, and a fan-out holds hundreds
    /// of hosts' listings while they arrive. Decoded only when
    /// the host's turn to be written comes.
    processes: Vec<u8>,
    _charge: Charge,
}

/// Everything a snapshot asks one host.
async fn take(client: Client, budget: Budget) -> Result<Held, Error> {
    let mut charge = budget.charge();
    let listing = async {
        let mut stream = client.processes(&FIELDS, ProcessFilter::default()).await?;
        let mut encoded = Vec::new();
        while let Some(batch) = stream.next_batch().await {
            let before = encoded.len();
            for process in batch? {
                encoded.extend(process.proto().encode_length_delimited_to_vec());
            }
            // Charged as it arrives, so that hosts still listing count
            // against the budget too.
            charge.add(encoded.len() - before);
        }
        Ok::<_, Error>(encoded)
    };
    // An agent from before GetSystem, ListDisks or ListConnections (or one
    // that withholds sockets) still answers the rest.
    let system = async { client.system(proto::GetSystemRequest::default()).await.ok() };
    let disks = async { client.disks(proto::ListDisksRequest::default()).await.ok() };
    let listening = async { sockets::listening_connections(&client).await.ok() };
    let (asked, (system, disks, listening)) = tokio::join!(
        async { tokio::try_join!(client.host(), client.net_interfaces(), listing) },
        async { tokio::join!(system, disks, listening) }
    );
    let (host, interfaces, processes) = asked?;
    let listening = listening.map(|(connections, names)| {
        connections
            .into_iter()
            .filter(is_listening)
            .map(|c| Listening {
                process: c.pid.and_then(|pid| names.get(&pid).cloned()),
                connection: c,
            })
            .collect()
    });
    Ok(Held {
        snapshot: Snapshot {
            host,
            interfaces,
            processes: Vec::new(),
            system,
            disks,
            listening,
        },
        processes,
        _charge: charge,
    })
}

/// The processes `take` encoded, decoded.
fn decode(mut encoded: &[u8]) -> Result<Vec<proto::Process>, prost::DecodeError> {
    let mut processes = Vec::new();
    while !encoded.is_empty() {
        processes.push(proto::Process::decode_length_delimited(&mut encoded)?);
    }
    Ok(processes)
}

/// TCP in LISTEN, or UDP bound with no peer: what `ss -l` shows.
fn is_listening(c: &proto::Connection) -> bool {
    let status = proto::ConnectionStatus::from_wire(c.status);
    status == Some(proto::ConnectionStatus::Listen)
        || (status.is_none() || status == Some(proto::ConnectionStatus::None))
            && c.raddr.as_ref().is_none_or(|a| a.port == 0)
}

/// The scrape of one host's outcome.
fn scrape(outcome: HostOutcome<Held>) -> Scrape {
    let host = &outcome.host;
    let started_at = hostscope_store::now() - outcome.elapsed.as_secs_f64();
    Scrape {
        host: host_id(host),
        started_at,
        duration: outcome.elapsed.as_secs_f64(),
        outcome: match outcome.result {
            Ok(held) => match decode(&held.processes) {
                Ok(processes) => Outcome::Answered(Box::new(Snapshot {
                    processes,
                    ..held.snapshot
                })),
                Err(e) => Outcome::Failed {
                    label: "internal".to_owned(),
                    message: format!("decoding the processes held for writing: {e}"),
                },
            },
            Err(e) => Outcome::Failed {
                label: e.label().to_owned(),
                message: e.to_string(),
            },
        },
    }
}

fn host_id(host: &HostSpec) -> HostId {
    HostId {
        name: host.name.clone(),
        address: host.address.clone(),
        labels: host.labels.clone(),
    }
}

/// Process events of `collect --watch`, in batches.
type Events = Pin<Box<dyn Stream<Item = Vec<WatchItem>> + Send>>;

/// Events come to the store at most this many at a time ...
const EVENT_BATCH: usize = 512;
/// ... and at most this long after they arrived.
const EVENT_DELAY: Duration = Duration::from_secs(1);

/// The next batch of events, or never without a watch.
async fn next_events(events: &mut Option<Events>) -> Vec<WatchItem> {
    match events {
        Some(events) => match events.next().await {
            Some(batch) => batch,
            // Every host's watch has ended for good.
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Appends a batch of events to process_events, one transaction per
/// host; a watch that failed or broke off is said on `err`.
async fn write_events(
    store: &mut Store,
    batch: Vec<WatchItem>,
    err: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let mut by_host: BTreeMap<String, (HostId, Vec<proto::ProcessEvent>)> = BTreeMap::new();
    for item in batch {
        match item {
            WatchItem::Event { host, event } => {
                by_host
                    .entry(host.name.clone())
                    .or_insert_with(|| (host_id(&host), Vec::new()))
                    .1
                    .push(event);
            }
            WatchItem::Failed { host, error } => {
                writeln!(err, "{}: watch failed: {error}", host.name)?;
            }
            WatchItem::Interrupted { host, error, .. } => {
                let why = error.map_or_else(|| "the agent ended it".to_owned(), |e| e.to_string());
                writeln!(
                    err,
                    "{}: watch interrupted ({why}), reconnecting",
                    host.name
                )?;
            }
            WatchItem::Connected { .. } => {}
        }
    }
    for (name, (host, events)) in by_host {
        store
            .write_events(&host, &events)
            .await
            .with_context(|| format!("writing the process events of {name}"))?;
    }
    Ok(())
}

/// The connections a snapshot writes through: one for SQLite, which
/// takes one writer at a time, and several for PostgreSQL, so that one
/// host's transaction waiting on the server does not hold up the next.
/// Writes run on the task that drives the snapshot, not on the runtime's
/// workers, which the fan-out's TLS keeps busy.
struct Writers {
    idle: Vec<Store>,
    busy: FuturesUnordered<Write>,
}

/// A write in progress, which gives its connection back when done.
type Write = Pin<Box<dyn Future<Output = (Store, anyhow::Result<()>)>>>;

/// Connections to PostgreSQL per collector.
const POSTGRES_WRITERS: usize = 4;

impl Writers {
    /// The store `--db` names, opened for writing once per writer.
    async fn open(args: &DbArgs, env: &Env) -> anyhow::Result<Writers> {
        let count = match args.db.as_deref().is_some_and(is_postgres) {
            true => POSTGRES_WRITERS,
            false => 1,
        };
        let mut idle = Vec::with_capacity(count);
        for _ in 0..count {
            idle.push(open(args, env, true).await?);
        }
        Ok(Writers::of(idle))
    }

    fn of(idle: Vec<Store>) -> Writers {
        Writers {
            idle,
            busy: FuturesUnordered::new(),
        }
    }

    /// A writer with nothing to do, once there is one.
    async fn idle(&mut self) -> anyhow::Result<&mut Store> {
        while self.idle.is_empty() && !self.busy.is_empty() {
            self.reap().await?;
        }
        self.idle
            .last_mut()
            .context("no connection to the store is left")
    }

    /// Writes `scrape` in the background, on the next idle writer.
    async fn write(&mut self, scrape: Scrape) -> anyhow::Result<()> {
        self.idle().await?;
        let mut store = self
            .idle
            .pop()
            .context("no connection to the store is left")?;
        self.busy.push(Box::pin(async move {
            let result = store
                .write_scrape(&scrape)
                .await
                .map(drop)
                .with_context(|| format!("writing the snapshot of {}", scrape.host.name));
            (store, result)
        }));
        Ok(())
    }

    /// Waits for one write to end; its error, if it failed.
    async fn reap(&mut self) -> anyhow::Result<()> {
        match self.busy.next().await {
            Some((store, result)) => {
                self.idle.push(store);
                result
            }
            None => Ok(()),
        }
    }

    /// Waits for every write to end.
    async fn finish(&mut self) -> anyhow::Result<()> {
        while !self.busy.is_empty() {
            self.reap().await?;
        }
        Ok(())
    }
}

/// One snapshot of `fleet` into `writers`, each host written (in its own
/// transaction) as it answers or fails, and events written as they come.
/// What the hosts in flight hold is bounded by the budget, so the fleet
/// is never in memory whole.
async fn snapshot(
    fleet: &Fleet,
    writers: &mut Writers,
    budget: Budget,
    events: &mut Option<Events>,
    err: &mut dyn std::io::Write,
) -> anyhow::Result<Summary> {
    let start = std::time::Instant::now();
    let mut summary = Summary::start(fleet.len());
    let for_calls = budget.clone();
    let call = move |client: Client, _: Parts<Infallible, Held>| take(client, for_calls.clone());
    let mut items = Box::pin(fleet.stream(budget, call));
    loop {
        let item = tokio::select! {
            // A host is taken once a writer is free for it.
            item = items.next(), if !writers.idle.is_empty() => item,
            done = writers.reap(), if !writers.busy.is_empty() => {
                done?;
                continue;
            }
            batch = next_events(events) => {
                write_events(writers.idle().await?, batch, err).await?;
                continue;
            }
        };
        let Some(item) = item else {
            writers.finish().await?;
            summary.elapsed = start.elapsed();
            return Ok(summary);
        };
        let outcome = match item {
            Streamed::Done(outcome) => outcome,
            Streamed::Part { part, .. } => match part {},
        };
        summary.record(&outcome);
        writers.write(scrape(outcome)).await?;
    }
}

/// `hostscope collect`: a snapshot, whose summary it returns, or with
/// --every one snapshot after another, each summary reported as it ends,
/// until a signal (then `None`).
pub async fn collect(
    fleet: &Fleet,
    args: CollectArgs,
    env: &Env,
    io: &mut Io<'_>,
) -> anyhow::Result<Option<Summary>> {
    let mut writers = Writers::open(&args.db, env).await?;
    io.interrupt.listen_terminate()?;
    let mut events: Option<Events> = args.watch.then(|| {
        let watch = fleet.watch(proto::WatchProcessesRequest::default());
        Box::pin(watch.chunks_timeout(EVENT_BATCH, EVENT_DELAY)) as Events
    });
    loop {
        let summary = snapshot(
            fleet,
            &mut writers,
            io.budget_or(fanout::STORE_BUDGET),
            &mut events,
            io.err,
        )
        .await?;
        if let Some(retain) = args.retain {
            let cutoff = hostscope_store::now() - retain.as_secs_f64();
            let store = writers.idle().await?;
            store.prune(cutoff).await.context("pruning old snapshots")?;
        }
        let Some(every) = args.every else {
            return Ok(Some(summary));
        };
        io.out.flush()?;
        fanout::report(&summary, io.quiet, io.err)?;
        let next = tokio::time::sleep(every);
        tokio::pin!(next);
        loop {
            tokio::select! {
                () = io.interrupt.triggered() => return Ok(None),
                () = &mut next => break,
                batch = next_events(&mut events) => {
                    write_events(writers.idle().await?, batch, io.err).await?;
                }
            }
        }
    }
}

/// Keeps only the hosts of `args`'s shard.
pub fn shard(hosts: &mut Vec<HostSpec>, args: &CollectArgs) {
    if let Some(shard) = args.shard {
        hosts.retain(|h| shard.takes(&h.name));
    }
}

// === sql ===

/// `hostscope sql --schema`, or a query of a store.
pub async fn sql(args: SqlArgs, format: Output, env: &Env, io: &mut Io<'_>) -> anyhow::Result<()> {
    if args.schema {
        let dialect = match args.db.db.as_deref().is_some_and(is_postgres) {
            true => Dialect::Postgres,
            false => Dialect::Sqlite,
        };
        io.out
            .write_all(hostscope_store::schema_text(dialect).as_bytes())?;
        return Ok(());
    }
    let mut store = open(&args.db, env, false).await?;
    query(
        &mut store,
        args.query.as_deref().unwrap_or_default(),
        format,
        io,
    )
    .await
}

/// `hostscope sql --live`: one snapshot into a store in memory, queried.
pub async fn sql_live(
    fleet: &Fleet,
    args: SqlArgs,
    format: Output,
    io: &mut Io<'_>,
) -> anyhow::Result<Summary> {
    let mut writers = Writers::of(vec![Store::in_memory().await?]);
    let summary = snapshot(
        fleet,
        &mut writers,
        io.budget_or(fanout::STORE_BUDGET),
        &mut None,
        io.err,
    )
    .await?;
    query(
        writers.idle().await?,
        args.query.as_deref().unwrap_or_default(),
        format,
        io,
    )
    .await?;
    Ok(summary)
}

async fn query(
    store: &mut Store,
    sql: &str,
    format: Output,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    let result = store.query(sql).await?;
    let record = |row: &[Val]| {
        let map: serde_json::Map<String, serde_json::Value> = result
            .columns
            .iter()
            .zip(row)
            .map(|(c, v)| (c.clone(), v.to_json()))
            .collect();
        serde_json::Value::Object(map)
    };
    match format {
        Output::Table => {
            let mut table = Table::new(
                result
                    .columns
                    .iter()
                    .map(|c| (c.to_uppercase(), Align::Left)),
            );
            for row in &result.rows {
                table.push(row.iter().map(cell).collect());
            }
            table.write_with(io.out, io.width, !io.no_headers)?;
        }
        Output::Json => {
            let all: Vec<serde_json::Value> = result.rows.iter().map(|r| record(r)).collect();
            serde_json::to_writer_pretty(&mut *io.out, &all)?;
            writeln!(io.out)?;
        }
        Output::Ndjson => {
            for row in &result.rows {
                serde_json::to_writer(&mut *io.out, &record(row))?;
                writeln!(io.out)?;
            }
        }
        Output::Csv => {
            let mut csv = ::csv::Writer::from_writer(&mut *io.out);
            if !io.no_headers {
                csv.write_record(&result.columns)?;
            }
            for row in &result.rows {
                csv.write_record(row.iter().map(cell))?;
            }
            csv.flush()?;
        }
    }
    Ok(())
}

/// A value as a table or CSV cell: NULL as nothing.
fn cell(v: &Val) -> String {
    match v {
        Val::Null => String::new(),
        Val::Int(i) => i.to_string(),
        Val::Real(f) => f.to_string(),
        Val::Bool(b) => b.to_string(),
        Val::Text(s) => s.clone(),
    }
}

// === diff ===

/// `hostscope diff`: per host, what changed since --since ago.
pub async fn diff(
    args: DiffArgs,
    host: Option<&str>,
    format: Output,
    env: &Env,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    let mut store = open(&args.db, env, false).await?;
    let since = hostscope_store::now() - args.since.as_secs_f64();
    let diffs = store.diff(since, host).await?;
    match format {
        Output::Json => {
            serde_json::to_writer_pretty(&mut *io.out, &diffs)?;
            writeln!(io.out)?;
        }
        Output::Ndjson => {
            for d in &diffs {
                serde_json::to_writer(&mut *io.out, d)?;
                writeln!(io.out)?;
            }
        }
        Output::Table | Output::Csv => {
            let headers = ["HOST", "CHANGE", "WHAT", "DETAIL"];
            let rows: Vec<[String; 4]> = diffs.iter().flat_map(changes).collect();
            if format == Output::Csv {
                let mut csv = ::csv::Writer::from_writer(&mut *io.out);
                if !io.no_headers {
                    csv.write_record(headers.map(str::to_lowercase))?;
                }
                for row in &rows {
                    csv.write_record(row)?;
                }
                csv.flush()?;
            } else {
                let mut table = Table::new(headers.map(|h| (h.to_owned(), Align::Left)));
                for row in rows {
                    table.push(row.into());
                }
                table.write_with(io.out, io.width, !io.no_headers)?;
            }
        }
    }
    Ok(())
}

/// A host's changes, one line each: host, kind of change, what, detail.
fn changes(d: &HostDiff) -> Vec<[String; 4]> {
    let host = &d.host;
    let line = |change: &str, what: String, detail: String| {
        [host.clone(), change.to_owned(), what, detail]
    };
    let process = |p: &hostscope_store::ProcessRef| {
        let name = p.name.clone().unwrap_or_default();
        format!("{} {name}", p.pid)
    };
    let mut lines = Vec::new();
    for p in &d.started {
        let detail = p.cmdline.as_deref().map(command).unwrap_or_default();
        lines.push(line("started", process(p), detail));
    }
    for p in &d.gone {
        let detail = p.cmdline.as_deref().map(command).unwrap_or_default();
        lines.push(line("gone", process(p), detail));
    }
    for n in &d.interfaces_added {
        lines.push(line("interface-added", n.clone(), String::new()));
    }
    for n in &d.interfaces_removed {
        lines.push(line("interface-removed", n.clone(), String::new()));
    }
    for c in &d.link_changes {
        let change = if c.is_up { "link-up" } else { "link-down" };
        lines.push(line(change, c.interface.clone(), String::new()));
    }
    for (change, list) in [
        ("address-added", &d.addresses_added),
        ("address-removed", &d.addresses_removed),
    ] {
        for a in list {
            lines.push(line(
                change,
                a.interface.clone(),
                format!("{} {}", a.family, a.address),
            ));
        }
    }
    for z in &d.new_zombies {
        let name = z.name.clone().unwrap_or_default();
        let parent = match (z.ppid, &z.parent_name) {
            (Some(ppid), Some(p)) => format!("parent {ppid} {p}"),
            (Some(ppid), None) => format!("parent {ppid}"),
            _ => String::new(),
        };
        lines.push(line("zombie", format!("{} {name}", z.pid), parent));
    }
    lines
}

/// A command line kept as a JSON list, as one line of words.
fn command(json: &str) -> String {
    serde_json::from_str::<Vec<String>>(json).map_or_else(|_| json.to_owned(), |v| v.join(" "))
}
