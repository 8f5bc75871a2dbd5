//! The schema, as versioned migrations written once for both databases:
//! the few places where SQLite and PostgreSQL differ (the id column and
//! the clock) are filled in per [`Dialect`].

/// Which database a statement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (the bundled library).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// An id column that numbers rows in insertion order.
    fn id(self) -> &'static str {
        match self {
            Dialect::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Dialect::Postgres => "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        }
    }

    /// The current time, in seconds since the epoch.
    fn now(self) -> &'static str {
        match self {
            Dialect::Sqlite => "unixepoch('subsec')",
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM now()) AS DOUBLE PRECISION)",
        }
    }
}

/// The migrations in order: version `i + 1` is `MIGRATIONS[i]`. A
/// released migration is never edited; a change is a new one.
const MIGRATIONS: [&str; 3] = [V1, V2, V3];

/// The migrations for `dialect`, with their versions.
pub fn migrations(dialect: Dialect) -> Vec<(i64, String)> {
    MIGRATIONS
        .iter()
        .zip(1..)
        .map(|(text, version)| (version, render(text, dialect)))
        .collect()
}

/// The latest schema version.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// The whole schema for `dialect`, as `hostscope sql --schema` prints it.
pub fn text(dialect: Dialect) -> String {
    migrations(dialect)
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join("\n")
}

fn render(text: &str, dialect: Dialect) -> String {
    let age = format!("({} - s.started_at)", dialect.now());
    let as_of = AS_OF.replace("{AGE}", &age);
    let tables = LATEST_TABLES
        .iter()
        .map(|&(view, table)| latest_view(view, table))
        .collect::<Vec<_>>()
        .join("\n");
    text.replace("{LATEST_TABLES}", &tables)
        .replace("{LATEST_PROCESSES}", &latest_view("processes", "processes"))
        .replace("{PROCESS_FIELDS}", PROCESS_FIELDS)
        .replace("{ID}", dialect.id())
        .replace("{AGE}", &age)
        .replace("{AS_OF}", &as_of)
}

/// The view `latest_{view}`: the rows of `table` from each host's last
/// successful scrape, with its age.
fn latest_view(view: &str, table: &str) -> String {
    format!(
        "CREATE VIEW latest_{view} AS\n\
         SELECT ls.host, ls.age_seconds, ls.as_of, t.*\n\
         FROM latest_scrapes ls JOIN {table} t ON t.scrape_id = ls.scrape_id;\n"
    )
}

/// The per-scrape tables with a view `latest_<name>` of each host's last
/// successful scrape: (view name, table).
const LATEST_TABLES: [(&str, &str); 7] = [
    ("processes", "processes"),
    ("zombies", "zombies"),
    ("interfaces", "interfaces"),
    ("addresses", "addresses"),
    ("system", "system_figures"),
    ("disks", "disks"),
    ("sockets", "sockets"),
];

/// How long ago a snapshot was taken, in words: "42 s ago", "3 h ago".
const AS_OF: &str = "CASE WHEN {AGE} < 120 THEN CAST({AGE} AS INTEGER) || ' s ago' \
     WHEN {AGE} < 7200 THEN CAST({AGE} / 60 AS INTEGER) || ' min ago' \
     WHEN {AGE} < 172800 THEN CAST({AGE} / 3600 AS INTEGER) || ' h ago' \
     ELSE CAST({AGE} / 86400 AS INTEGER) || ' d ago' END";

/// The columns of `processes` after its `scrape_id`, and its key: as
/// version 1 made the table and version 3 makes it again.
const PROCESS_FIELDS: &str = r#"    pid BIGINT NOT NULL,
    ppid BIGINT,
    name TEXT,
    exe TEXT,
    cmdline TEXT,
    status TEXT,
    username TEXT,
    uid BIGINT,
    gid BIGINT,
    terminal TEXT,
    cwd TEXT,
    nice BIGINT,
    create_time DOUBLE PRECISION,
    num_threads BIGINT,
    num_fds BIGINT,
    ctx_switches_voluntary BIGINT,
    ctx_switches_involuntary BIGINT,
    cpu_user DOUBLE PRECISION,
    cpu_system DOUBLE PRECISION,
    rss BIGINT,
    vms BIGINT,
    shared BIGINT,
    read_bytes BIGINT,
    write_bytes BIGINT,
    cgroup TEXT,
    PRIMARY KEY (scrape_id, pid)"#;

/// Version 1. Times are seconds since the epoch (as psutil gives them),
/// sizes are bytes, lists (cmdline, labels) are JSON text.
const V1: &str = r#"-- Every host ever collected, with its latest attempt and latest success.
CREATE TABLE hosts (
    name TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    labels TEXT NOT NULL,
    last_scrape_id BIGINT,
    last_ok_scrape_id BIGINT
);

-- One row per host per collection, answered or not.
CREATE TABLE scrapes (
    id {ID},
    host TEXT NOT NULL REFERENCES hosts (name) ON DELETE CASCADE,
    started_at DOUBLE PRECISION NOT NULL,
    duration DOUBLE PRECISION NOT NULL,
    ok BOOLEAN NOT NULL,
    error TEXT,
    message TEXT
);
CREATE INDEX scrapes_host_started ON scrapes (host, started_at);
CREATE INDEX scrapes_started ON scrapes (started_at);

-- What GetHost answered.
CREATE TABLE host_facts (
    scrape_id BIGINT PRIMARY KEY REFERENCES scrapes (id) ON DELETE CASCADE,
    hostname TEXT NOT NULL,
    os TEXT NOT NULL,
    os_release TEXT NOT NULL,
    kernel TEXT NOT NULL,
    arch TEXT NOT NULL,
    boot_time DOUBLE PRECISION NOT NULL,
    cpu_count BIGINT NOT NULL,
    memory_total BIGINT NOT NULL,
    agent_version TEXT NOT NULL,
    backend TEXT NOT NULL
);

-- Every process of a host's latest successful scrape (older scrapes keep
-- their zombies, and every process lives on in process_spans).
CREATE TABLE processes (
    scrape_id BIGINT NOT NULL REFERENCES scrapes (id) ON DELETE CASCADE,
{PROCESS_FIELDS}
);

-- The zombies of every scrape, with the parent that should reap them.
CREATE TABLE zombies (
    scrape_id BIGINT NOT NULL REFERENCES scrapes (id) ON DELETE CASCADE,
    pid BIGINT NOT NULL,
    ppid BIGINT,
    name TEXT,
    create_time DOUBLE PRECISION,
    parent_name TEXT,
    parent_cmdline TEXT,
    PRIMARY KEY (scrape_id, pid)
);

-- Network interfaces with their link state and counters.
CREATE TABLE interfaces (
    scrape_id BIGINT NOT NULL REFERENCES scrapes (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    isup BOOLEAN NOT NULL,
    duplex TEXT,
    speed BIGINT,
    mtu BIGINT,
    flags TEXT,
    bytes_sent BIGINT,
    bytes_recv BIGINT,
    packets_sent BIGINT,
    packets_recv BIGINT,
    errin BIGINT,
    errout BIGINT,
    dropin BIGINT,
    dropout BIGINT,
    PRIMARY KEY (scrape_id, name)
);

-- Their addresses: family inet, inet6 or link.
CREATE TABLE addresses (
    scrape_id BIGINT NOT NULL REFERENCES scrapes (id) ON DELETE CASCADE,
    interface TEXT NOT NULL,
    family TEXT NOT NULL,
    address TEXT NOT NULL,
    netmask TEXT,
    broadcast TEXT,
    ptp TEXT
);
CREATE INDEX addresses_scrape ON addresses (scrape_id);

-- GetSystem: load, CPU busy, memory and swap.
CREATE TABLE system_figures (
    scrape_id BIGINT PRIMARY KEY REFERENCES scrapes (id) ON DELETE CASCADE,
    load1 DOUBLE PRECISION,
    load5 DOUBLE PRECISION,
    load15 DOUBLE PRECISION,
    cpu_percent DOUBLE PRECISION,
    memory_total BIGINT,
    memory_available BIGINT,
    memory_used BIGINT,
    memory_percent DOUBLE PRECISION,
    swap_total BIGINT,
    swap_used BIGINT,
    swap_percent DOUBLE PRECISION,
    users BIGINT
);

-- ListDisks: mounted file systems and their use.
CREATE TABLE disks (
    scrape_id BIGINT NOT NULL REFERENCES scrapes (id) ON DELETE CASCADE,
    device TEXT NOT NULL,
    mountpoint TEXT NOT NULL,
    fstype TEXT,
    opts TEXT,
    total BIGINT,
    used BIGINT,
    free BIGINT,
    percent DOUBLE PRECISION
);
CREATE INDEX disks_scrape ON disks (scrape_id);

-- The IP sockets a host listens on (tcp in LISTEN, udp unconnected).
CREATE TABLE sockets (
    scrape_id BIGINT NOT NULL REFERENCES scrapes (id) ON DELETE CASCADE,
    proto TEXT NOT NULL,
    local_ip TEXT NOT NULL,
    local_port BIGINT NOT NULL,
    status TEXT NOT NULL,
    pid BIGINT,
    process TEXT,
    uid BIGINT
);
CREATE INDEX sockets_scrape ON sockets (scrape_id);

-- Each process once, from the first scrape that saw it to the last.
CREATE TABLE process_spans (
    host TEXT NOT NULL REFERENCES hosts (name) ON DELETE CASCADE,
    pid BIGINT NOT NULL,
    create_time DOUBLE PRECISION NOT NULL,
    name TEXT,
    exe TEXT,
    cmdline TEXT,
    first_seen DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (host, pid, create_time)
);
CREATE INDEX process_spans_last_seen ON process_spans (last_seen);

-- Events of WatchProcesses, as `collect --watch` receives them.
CREATE TABLE process_events (
    host TEXT NOT NULL REFERENCES hosts (name) ON DELETE CASCADE,
    at DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    pid BIGINT NOT NULL,
    ppid BIGINT,
    name TEXT,
    cmdline TEXT,
    username TEXT,
    create_time DOUBLE PRECISION,
    exit_code BIGINT,
    exit_signal BIGINT
);
CREATE INDEX process_events_host_at ON process_events (host, at);

-- Each host's last successful scrape, how old it is, and whether the
-- latest attempt answered: a host that is down still shows its last state.
-- A host that never answered is here too, with no scrape_id or age.
CREATE VIEW latest_scrapes AS
SELECT h.name AS host, h.address, h.labels, s.id AS scrape_id,
       s.started_at AS scraped_at, {AGE} AS age_seconds, {AS_OF} AS as_of,
       l.ok AS up, l.error AS last_error, l.started_at AS last_attempt
FROM hosts h
JOIN scrapes l ON l.id = h.last_scrape_id
LEFT JOIN scrapes s ON s.id = h.last_ok_scrape_id;

CREATE VIEW latest_hosts AS
SELECT ls.host, ls.address, ls.labels, f.hostname, f.os, f.os_release, f.kernel,
       f.arch, f.boot_time, f.cpu_count, f.memory_total, f.agent_version, f.backend,
       ls.scraped_at, ls.age_seconds, ls.as_of, ls.up, ls.last_error
FROM latest_scrapes ls LEFT JOIN host_facts f ON f.scrape_id = ls.scrape_id;

{LATEST_TABLES}
"#;

/// Version 2: a span is written when its process is first seen and when
/// it is gone, not at every scrape (a snapshot of a quiet host writes no
/// span at all). The view `process_spans` reads as version 1's table did,
/// with `running` added.
const V2: &str = r#"-- Each process once: last_seen is NULL while the process is in its host's
-- last successful scrape, else the time of the last scrape that saw it.
CREATE TABLE spans (
    host TEXT NOT NULL REFERENCES hosts (name) ON DELETE CASCADE,
    pid BIGINT NOT NULL,
    create_time DOUBLE PRECISION NOT NULL,
    name TEXT,
    exe TEXT,
    cmdline TEXT,
    first_seen DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION,
    PRIMARY KEY (host, pid, create_time)
);
CREATE INDEX spans_last_seen ON spans (last_seen);
CREATE INDEX spans_running ON spans (host) WHERE last_seen IS NULL;
INSERT INTO spans (host, pid, create_time, name, exe, cmdline, first_seen, last_seen)
SELECT p.host, p.pid, p.create_time, p.name, p.exe, p.cmdline, p.first_seen,
       CASE WHEN p.last_seen >= s.started_at THEN NULL ELSE p.last_seen END
FROM process_spans p
LEFT JOIN hosts h ON h.name = p.host
LEFT JOIN scrapes s ON s.id = h.last_ok_scrape_id;
DROP TABLE process_spans;

-- Each process once, from the first scrape that saw it to the last; a
-- running process was last seen in its host's last successful scrape.
CREATE VIEW process_spans AS
SELECT sp.host, sp.pid, sp.create_time, sp.name, sp.exe, sp.cmdline, sp.first_seen,
       COALESCE(sp.last_seen, s.started_at) AS last_seen,
       sp.last_seen IS NULL AS running
FROM spans sp
JOIN hosts h ON h.name = sp.host
LEFT JOIN scrapes s ON s.id = h.last_ok_scrape_id;
"#;

/// Version 3: `processes` without a foreign key to `scrapes`. Its rows
/// are a host's last successful scrape only, replaced by the collector
/// at each new one, and such a scrape is never pruned: the key guarded
/// nothing, and checking it cost as much as writing the row. A table's
/// constraint cannot be dropped in SQLite, so the table is made again,
/// its rows kept.
const V3: &str = r#"-- Every process of each host's latest successful scrape (the collector
-- replaces them at each new one; every process lives on in spans).
CREATE TABLE processes_v2 AS
SELECT p.* FROM processes p JOIN hosts h ON h.last_ok_scrape_id = p.scrape_id;
DROP VIEW latest_processes;
DROP TABLE processes;
CREATE TABLE processes (
    scrape_id BIGINT NOT NULL,
{PROCESS_FIELDS}
);
INSERT INTO processes SELECT * FROM processes_v2;
DROP TABLE processes_v2;

{LATEST_PROCESSES}"#;
