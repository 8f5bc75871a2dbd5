//! `cargo xtask bench collect`: `hostscope collect` into SQLite and into
//! PostgreSQL over a virtual fleet, against the same fan-out writing
//! nothing; the collector's peak RSS over a large fleet; and the README's
//! example queries over 30 snapshots.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use anyhow::{Context, Result, bail};

use super::fleet::{Sample, Sink, fleet_flags, measure, release_binaries, start_virtual};

/// Hosts and processes per host of the timed collections.
const HOSTS: usize = 1000;
const PROCESSES: usize = 200;
/// Hosts of the collection whose peak RSS is measured, unless told.
pub const LARGE_HOSTS: usize = 10_000;
/// Interleaved rounds of the three timed commands; medians are reported.
const ROUNDS: usize = 5;
/// Snapshots in the SQLite file the queries run over.
const SNAPSHOTS: usize = 30;
/// Fresh-process runs of each query; the median is reported.
const QUERY_RUNS: usize = 3;
/// The goals: collect's time against the fan-out writing nothing, its
/// peak RSS over the large fleet, and each query's time.
const GOAL_RATIO: f64 = 1.5;
const GOAL_RSS_MIB: f64 = 100.0;
const GOAL_QUERY_SECONDS: f64 = 1.0;

/// The process fields `collect` asks each host for, in `ps --fields`
/// names: the fan-out that writes nothing asks for the same.
const COLLECT_FIELDS: &str = "pid,ppid,name,exe,cmdline,status,username,uids,gids,terminal,cwd,\
     nice,create_time,num_threads,num_fds,num_ctx_switches,cpu_times,memory_info,io_counters,\
     cgroup";

/// The example queries of the README's "Central inventory" section, as
/// written there.
const QUERIES: [(&str, &str); 7] = [
    (
        "largest processes",
        "SELECT host, pid, name, rss / 1048576 AS rss_mib FROM latest_processes ORDER BY rss DESC LIMIT 10",
    ),
    (
        "zombies by parent",
        "SELECT host, ppid, parent_name, count(*) AS zombies FROM latest_zombies GROUP BY host, ppid, parent_name ORDER BY zombies DESC",
    ),
    (
        "odd agent versions",
        "SELECT host, agent_version, as_of FROM latest_hosts WHERE agent_version <> (SELECT agent_version FROM latest_hosts GROUP BY agent_version ORDER BY count(*) DESC LIMIT 1)",
    ),
    (
        "interfaces down",
        "SELECT host, name, as_of FROM latest_interfaces WHERE NOT isup",
    ),
    (
        "started last hour",
        "SELECT host, pid, name, datetime(create_time, 'unixepoch') AS started FROM latest_processes WHERE create_time > unixepoch() - 3600 ORDER BY create_time DESC",
    ),
    (
        "listening on 23",
        "SELECT host, proto, local_ip, pid, process FROM latest_sockets WHERE local_port = 23",
    ),
    (
        "sshd first/last",
        "SELECT host, pid, datetime(first_seen, 'unixepoch') AS first, datetime(last_seen, 'unixepoch') AS last FROM process_spans WHERE name = 'sshd'",
    ),
];

/// The median wall time of `samples`, in seconds, and their highest peak
/// RSS, in MiB.
fn median(samples: &[Sample]) -> (f64, f64) {
    let mut walls: Vec<f64> = samples.iter().map(|s| s.wall.as_secs_f64()).collect();
    walls.sort_by(f64::total_cmp);
    let wall = walls.get(walls.len() / 2).copied().unwrap_or(f64::NAN);
    let rss = samples.iter().map(|s| s.max_rss_kib).max().unwrap_or(0);
    (wall, rss as f64 / 1024.0)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT MET" }
}

/// Fails unless a measured run exited 0: a collection that failed some
/// hosts would be timed doing less.
fn check(sample: &Sample, what: &str, log: &Path) -> Result<()> {
    if sample.code != Some(0) {
        let stderr = fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        bail!(
            "{what} exited {:?}; last lines of its stderr:\n{}",
            sample.code,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}

fn report(label: &str, sample: &Sample) {
    eprintln!(
        "  {label:<22} {:>9.1} ms  peak RSS {:>6.1} MiB  exit {}",
        sample.wall.as_secs_f64() * 1e3,
        sample.max_rss_kib as f64 / 1024.0,
        sample.code.map_or("by signal".into(), |c| c.to_string()),
    );
}

/// `cargo xtask bench collect`: see the help text.
pub fn bench_collect(large: Option<usize>) -> Result<()> {
    let large = large.unwrap_or(LARGE_HOSTS);
    let (target, hostscope, sim_bin) = release_binaries()?;
    let dir = target.join("bench-collect");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = dir.join("stderr.log");
    let load_before = load_average();
    let pg = PgCluster::start(&sim_bin)?;
    let pg_url = pg.url.clone();

    // === 1,000 hosts: the fan-out, collect into SQLite and PostgreSQL ===
    let fleet_dir = dir.join(format!("fleet-{HOSTS}"));
    let fleet = start_virtual(&sim_bin, HOSTS, PROCESSES, &fleet_dir)?;
    let flags = fleet_flags(&fleet.inventory, &fleet_dir.join("pki"));
    let db = dir.join("fleet.db");
    remove_db(&db)?;
    let db_arg = db.to_string_lossy().into_owned();
    let ps = || {
        let mut cmd = Command::new(&hostscope);
        cmd.args(&flags)
            .args(["ps", "--fields", COLLECT_FIELDS, "-o", "ndjson"]);
        cmd
    };
    let collect = |to: &str| {
        let mut cmd = Command::new(&hostscope);
        cmd.args(&flags).args(["collect", "--db", to]);
        cmd
    };
    // One uncounted run first: the simulator reads its canned listing on
    // the first call for a field selection.
    let warm = measure(&mut ps(), &log, Sink::Null)?;
    report("warm-up ps", &warm);
    check(&warm, "the warm-up ps", &log)?;

    // Rounds interleave the three commands, so that drift in the machine's
    // load spreads over all of them.
    let (mut nothing, mut sqlite, mut postgres) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let s = measure(&mut ps(), &log, Sink::Null)?;
        report(&format!("round {round} ps > null"), &s);
        check(&s, "ps", &log)?;
        nothing.push(s);
        let s = measure(&mut collect(&db_arg), &log, Sink::Null)?;
        report(&format!("round {round} collect sqlite"), &s);
        check(&s, "collect into SQLite", &log)?;
        sqlite.push(s);
        let s = measure(&mut collect(&pg_url), &log, Sink::Null)?;
        report(&format!("round {round} collect pg"), &s);
        check(&s, "collect into PostgreSQL", &log)?;
        postgres.push(s);
    }
    drop(pg);

    // The rest of the snapshots the queries run over.
    let mut later = Vec::new();
    for n in ROUNDS + 1..=SNAPSHOTS {
        let s = measure(&mut collect(&db_arg), &log, Sink::Null)?;
        report(&format!("snapshot {n} sqlite"), &s);
        check(&s, "collect into SQLite", &log)?;
        later.push(s);
    }
    drop(fleet);
    let db_bytes = fs::metadata(&db).map_or(0, |m| m.len());

    // === the README's queries over the snapshots ===
    let mut query_rows = Vec::new();
    for (id, sql) in QUERIES {
        let mut samples = Vec::new();
        for _ in 0..QUERY_RUNS {
            let s = measure(
                Command::new(&hostscope).args(["sql", "--db", &db_arg, sql]),
                &log,
                Sink::Pipe,
            )?;
            check(&s, &format!("the query {id:?}"), &log)?;
            samples.push(s);
        }
        report(&format!("sql {id}"), &samples[samples.len() / 2]);
        query_rows.push((id, samples));
    }

    // === the collector's peak RSS over the large fleet ===
    let large_dir = dir.join(format!("fleet-{large}"));
    let fleet = start_virtual(&sim_bin, large, PROCESSES, &large_dir)?;
    let flags = fleet_flags(&fleet.inventory, &large_dir.join("pki"));
    let large_db = dir.join(format!("fleet-{large}.db"));
    remove_db(&large_db)?;
    let big = measure(
        Command::new(&hostscope)
            .args(&flags)
            .arg("collect")
            .arg("--db")
            .arg(&large_db),
        &log,
        Sink::Null,
    )?;
    report(&format!("collect sqlite {large}"), &big);
    check(&big, "collect into SQLite over the large fleet", &log)?;
    drop(fleet);

    // === the figures ===
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\ncollect over {HOSTS} virtual hosts x {PROCESSES} processes (one simulator process, \
         real TCP and mutual TLS per host), {cores} cores shared by the simulator, the CLI and \
         the database; load average before the run {load_before}; fresh CLI processes, median of \
         {ROUNDS} interleaved rounds, highest peak RSS (wait4):"
    );
    let (floor, _) = median(&nothing);
    let rows = [
        (
            "nothing",
            &nothing,
            "hostscope ps --fields <collect's 20> -o ndjson > /dev/null",
        ),
        ("sqlite", &sqlite, "hostscope collect --db fleet.db"),
        (
            "postgres",
            &postgres,
            "hostscope collect --db postgres:///fleet?host=<socket dir> (fsync=off)",
        ),
    ];
    for (id, samples, what) in &rows {
        let (wall, rss) = median(samples);
        println!(
            "  {id:<9} {:>8.0} ms  {rss:>6.1} MiB  {:>5.2}x nothing  {what}",
            wall * 1e3,
            wall / floor
        );
    }
    let all_sqlite: Vec<f64> = sqlite
        .iter()
        .chain(&later)
        .map(|s| s.wall.as_secs_f64() * 1e3)
        .collect();
    let (lo, hi) = all_sqlite
        .iter()
        .fold((f64::INFINITY, 0f64), |(lo, hi), &w| (lo.min(w), hi.max(w)));
    println!(
        "  {} snapshots into one SQLite file: {lo:.0} to {hi:.0} ms each (snapshot {} took \
         {:.0} ms); the file is {:.1} MiB",
        all_sqlite.len(),
        all_sqlite.len(),
        all_sqlite.last().copied().unwrap_or(f64::NAN),
        db_bytes as f64 / 1048576.0
    );
    println!(
        "  collect into SQLite over {large} hosts: {:.0} ms, peak RSS {:.1} MiB",
        big.wall.as_secs_f64() * 1e3,
        big.max_rss_kib as f64 / 1024.0
    );
    println!(
        "queries over {SNAPSHOTS} snapshots of {HOSTS} hosts (hostscope sql --db fleet.db, fresh \
         process, median of {QUERY_RUNS}, output to a drained pipe):"
    );
    for (id, samples) in &query_rows {
        let (wall, _) = median(samples);
        let lines = samples.iter().find_map(|s| s.lines).unwrap_or(0);
        println!(
            "  {:>7.1} ms  {lines:>6} lines  {id}: {}",
            wall * 1e3,
            if wall < GOAL_QUERY_SECONDS {
                "under 1 s"
            } else {
                "NOT under 1 s"
            }
        );
    }

    println!("goals:");
    for (id, samples, _) in &rows[1..] {
        let ratio = median(samples).0 / floor;
        println!(
            "  collect into {id:<8} {ratio:>5.2}x the fan-out writing nothing, goal <= \
             {GOAL_RATIO}x: {}",
            verdict(ratio <= GOAL_RATIO)
        );
    }
    let mib = big.max_rss_kib as f64 / 1024.0;
    println!(
        "  collect into SQLite over {large} hosts: peak RSS {mib:.1} MiB, goal <= \
         {GOAL_RSS_MIB:.0} MiB: {}",
        verdict(mib <= GOAL_RSS_MIB)
    );
    let slowest = query_rows
        .iter()
        .map(|(_, s)| median(s).0)
        .fold(0f64, f64::max);
    println!(
        "  slowest query {:.1} ms, goal each under 1 s: {}",
        slowest * 1e3,
        verdict(slowest < GOAL_QUERY_SECONDS)
    );
    Ok(())
}

/// The load average now, as /proc/loadavg says it.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Removes a previous run's SQLite file and its WAL, so that each run
/// starts from an empty store.
fn remove_db(db: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", path.display()));
            }
            _ => {}
        }
    }
    Ok(())
}

// === impl PgCluster ===

/// A throwaway PostgreSQL cluster from `hostscope-fleet-sim postgres`,
/// which starts it as the store's tests do (initdb as nobody, a Unix
/// socket only, no TCP) and stops it, killing its processes, when its
/// stdin ends: on drop here, or when this process dies.
struct PgCluster {
    sim: Option<Child>,
    url: String,
}

impl PgCluster {
    fn start(sim_bin: &Path) -> Result<PgCluster> {
        eprintln!("\n== starting a throwaway PostgreSQL cluster");
        let mut sim = Command::new(sim_bin)
            .args(["postgres", "--duration", "60m"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting hostscope-fleet-sim postgres")?;
        let stdout = sim.stdout.take().context("the simulator's stdout")?;
        let mut cluster = PgCluster {
            sim: Some(sim),
            url: String::new(),
        };
        // Read on a thread of its own, so that the wait is bounded.
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let limit = Duration::from_secs(120);
        let line = rx
            .recv_timeout(limit)
            .with_context(|| format!("no PostgreSQL cluster within {limit:?}"))?;
        cluster.url = line
            .trim_end()
            .strip_prefix("url: ")
            .with_context(|| format!("hostscope-fleet-sim postgres said {line:?}, not its URL"))?
            .to_owned();
        Ok(cluster)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let Some(mut sim) = self.sim.take() else {
            return;
        };
        // Closing stdin asks for a stop that kills the server's processes;
        // killing the simulator outright would leave them running.
        drop(sim.stdin.take());
        for _ in 0..200 {
            if let Ok(Some(_)) = sim.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let _ = sim.kill();
        let _ = sim.wait();
    }
}
