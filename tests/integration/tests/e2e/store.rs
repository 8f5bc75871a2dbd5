//! The inventory store end to end: `hostscope collect`, `sql` and `diff`
//! against real agents over real mutual TLS on 127.0.0.1, into real
//! SQLite files and a real PostgreSQL cluster (one of the test's own, on a
//! Unix socket in a temporary directory). The same scenarios run on both.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use hostscope_integration::{
    CliRun, Zombie,
    child::ChildGroup,
    hostscope, hostscope_in,
    pg::{self, PgCluster},
    sim::{BlockingSim, FleetSim, Kind, SimSpec},
    skip, wait_for,
};
use serde_json::Value;

/// Three good agents, one closed port and one host that never answers.
struct Sim(BlockingSim);

impl Sim {
    fn start() -> Sim {
        let (agents, closed, silent) = (3, 1, 1);
        let spec = SimSpec {
            wrong_ca: 0,
            dir: PathBuf::new(),
            agents,
            closed,
            silent,
        };
        Sim(BlockingSim::start(spec).expect("fleet sim"))
    }

    fn sim(&self) -> &FleetSim {
        self.0.sim()
    }

    fn dir(&self) -> &Path {
        self.0.dir()
    }

    fn names(&self, kind: Kind) -> Vec<String> {
        let hosts = self.sim().hosts().iter();
        hosts
            .filter(|h| h.kind == kind)
            .map(|h| h.name.clone())
            .collect()
    }

    /// An inventory of the good agents, where the host `down` (if any)
    /// points at the closed port instead: a host that went down.
    fn inventory(&self, file: &str, down: Option<&str>) -> PathBuf {
        let closed = self.sim().addresses(Kind::Closed)[0];
        let mut text = String::new();
        for h in self.sim().hosts().iter().filter(|h| h.kind == Kind::Good) {
            let addr = match down == Some(h.name.as_str()) {
                true => closed,
                false => h.addr,
            };
            text.push_str(&format!(
                "[[hosts]]\nname = \"{0}\"\naddress = \"{addr}\"\nserver_name = \"{0}\"\n\
                 labels = {{ role = \"web\" }}\n\n",
                h.name
            ));
        }
        let path = self.dir().join(file);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn tls(&self) -> Vec<OsString> {
        self.sim().client_tls_args()
    }

    /// `hostscope --inventory INVENTORY ARGS`, in process.
    fn run(&self, inventory: &Path, args: &[&str]) -> CliRun {
        let mut argv: Vec<OsString> = vec!["--inventory".into(), inventory.into()];
        argv.extend(self.tls());
        argv.extend(args.iter().map(OsString::from));
        hostscope(argv, "")
    }

    fn collect(&self, inventory: &Path, db: &str, more: &[&str]) -> CliRun {
        let mut args = vec!["collect", "--db", db];
        args.extend(more);
        self.run(inventory, &args)
    }
}

/// `hostscope sql --db DB -o json QUERY`, as JSON records.
fn sql(db: &str, query: &str) -> Vec<Value> {
    let run = hostscope(["sql", "--db", db, "-o", "json", query], "");
    assert_eq!(run.code, 0, "{query}: {}", run.err);
    match serde_json::from_str(&run.out) {
        Ok(Value::Array(rows)) => rows,
        other => panic!("{query}: not a JSON list: {other:?}\n{}", run.out),
    }
}

/// The only value of a query's only row.
fn one(db: &str, query: &str) -> Value {
    let rows = sql(db, query);
    assert_eq!(rows.len(), 1, "{query}: {rows:?}");
    let Some(Value::Object(row)) = rows.into_iter().next() else {
        panic!("{query}: no row");
    };
    row.into_iter().next().expect("a column").1
}

fn count(db: &str, query: &str) -> i64 {
    one(db, query).as_i64().expect("a count")
}

/// A boolean as the store gives it: SQLite's 0/1 or PostgreSQL's boolean.
fn truth(v: &Value) -> bool {
    v.as_bool().unwrap_or_else(|| v.as_i64() == Some(1))
}

// === the scenarios, on either store ===

/// A snapshot of three hosts; then one goes down and still answers from
/// its last state, with its age and its error.
fn snapshot_and_a_host_that_went_down(sim: &Sim, db: &str) {
    let names = sim.names(Kind::Good);
    let all = sim.inventory("all.toml", None);
    // More processes than the store writes row by row (PostgreSQL takes
    // them by COPY): the children of one shell, each to arrive whole.
    const SLEEPERS: usize = 80;
    let sleepers = ChildGroup::spawn(
        Command::new("sh")
            .args([
                "-c",
                &format!("for i in $(seq {SLEEPERS}); do sleep 600 & done; wait"),
            ])
            .stdin(Stdio::null()),
    )
    .unwrap();
    let shell = sleepers.id();
    let children = format!("/proc/{shell}/task/{shell}/children");
    wait_for(Duration::from_secs(60), || {
        std::fs::read_to_string(&children).map_or(0, |c| c.split_whitespace().count()) == SLEEPERS
    });
    let run = sim.collect(&all, db, &[]);
    assert_eq!(run.code, 0, "{}", run.err);
    let me = std::process::id();
    for name in &names {
        let query =
            format!("SELECT count(*) FROM latest_processes WHERE host = '{name}' AND pid = {me}");
        assert_eq!(count(db, &query), 1, "{query}");
        let query = format!(
            "SELECT count(*) FROM latest_processes WHERE host = '{name}' AND ppid = {shell} \
             AND name = 'sleep' AND cmdline = '[\"sleep\",\"600\"]' AND rss > 0 \
             AND create_time > 0"
        );
        assert_eq!(count(db, &query), SLEEPERS as i64, "{query}");
    }
    drop(sleepers);
    // Every agent reads this host's /proc: the same kernel on each.
    let kernels = sql(db, "SELECT DISTINCT kernel FROM latest_hosts");
    assert_eq!(kernels.len(), 1);
    assert!(
        count(
            db,
            "SELECT count(*) FROM latest_interfaces WHERE name = 'lo'"
        ) >= 3
    );
    let labels = one(
        db,
        &format!("SELECT labels FROM hosts WHERE name = '{}'", names[0]),
    );
    assert_eq!(labels, Value::from(r#"{"role":"web"}"#));

    let down = &names[2];
    let partial = sim.inventory("down.toml", Some(down));
    let run = sim.collect(&partial, db, &[]);
    assert_eq!(run.code, 2, "{}", run.err);
    let rows = sql(
        db,
        "SELECT host, up, last_error, as_of FROM latest_hosts ORDER BY host",
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in &rows {
        let is_down = row["host"] == down.as_str();
        assert_eq!(truth(&row["up"]), !is_down, "{row}");
        if is_down {
            assert_eq!(row["last_error"], "connection-refused", "{row}");
            assert!(row["as_of"].as_str().unwrap().ends_with(" ago"), "{row}");
        }
    }
    let query =
        format!("SELECT count(*) FROM latest_processes WHERE host = '{down}' AND pid = {me}");
    assert_eq!(count(db, &query), 1);
    let scrapes = format!("SELECT count(*) FROM scrapes WHERE host = '{down}' AND NOT ok");
    assert_eq!(count(db, &scrapes), 1);
}

/// Three snapshots, then --retain keeps only each host's latest.
fn retention(sim: &Sim, db: &str) {
    let all = sim.inventory("all.toml", None);
    for _ in 0..2 {
        assert_eq!(sim.collect(&all, db, &[]).code, 0);
    }
    assert_eq!(count(db, "SELECT count(*) FROM scrapes"), 6);
    let run = sim.collect(&all, db, &["--retain", "1ms"]);
    assert_eq!(run.code, 0, "{}", run.err);
    assert_eq!(count(db, "SELECT count(*) FROM scrapes"), 3);
    assert_eq!(
        count(db, "SELECT count(DISTINCT scrape_id) FROM interfaces"),
        3
    );
    assert_eq!(count(db, "SELECT count(*) FROM latest_hosts"), 3);
}

/// A process started, a zombie made, the process gone: diff names each.
fn diff(sim: &Sim, db: &str) {
    let names = sim.names(Kind::Good);
    let all = sim.inventory("all.toml", None);
    assert_eq!(sim.collect(&all, db, &[]).code, 0);
    let mut sleeper = ChildGroup::spawn(
        Command::new("sleep")
            .arg("1000")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("sleep");
    let zombie = Zombie::spawn();
    assert_eq!(sim.collect(&all, db, &[]).code, 0);
    let run = hostscope(["diff", "--db", db, "--since", "24h", "-o", "json"], "");
    assert_eq!(run.code, 0, "{}", run.err);
    let diffs: Vec<Value> = serde_json::from_str(&run.out).expect("JSON");
    assert_eq!(diffs.len(), 3, "{}", run.out);
    let pids = |v: &Value| -> Vec<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["pid"].as_u64())
            .collect()
    };
    for d in &diffs {
        let started = pids(&d["started"]);
        assert!(started.contains(&u64::from(sleeper.id())), "{d}");
        assert!(started.contains(&u64::from(zombie.pid)), "{d}");
        assert!(
            pids(&d["new_zombies"]).contains(&u64::from(zombie.pid)),
            "{d}"
        );
    }
    sleeper.kill();
    assert_eq!(sim.collect(&all, db, &[]).code, 0);
    let run = hostscope(
        ["diff", "--db", db, "--since", "24h", "--host", &names[0]],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.err);
    let gone = format!("{} sleep", sleeper.id());
    let line = run
        .out
        .lines()
        .find(|l| l.contains(" gone ") && l.contains(&gone));
    assert!(line.is_some(), "{}", run.out);
    assert!(
        run.out.lines().skip(1).all(|l| l.starts_with(&names[0])),
        "{}",
        run.out
    );
}

/// Three collectors, one shard each, into one store: every host once.
fn shards(sim: &Sim, db: &str) {
    let all = sim.inventory("all.toml", None);
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let run = sim.collect(&all, db, &["--shard", &shard]);
        assert_eq!(run.code, 0, "{}", run.err);
    }
    let rows = sql(
        db,
        "SELECT host, count(*) AS n FROM scrapes GROUP BY host ORDER BY host",
    );
    let seen: BTreeMap<String, i64> = rows
        .iter()
        .map(|r| {
            (
                r["host"].as_str().unwrap().to_owned(),
                r["n"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected: BTreeMap<String, i64> =
        sim.names(Kind::Good).into_iter().map(|n| (n, 1)).collect();
    assert_eq!(seen, expected);
}

/// SIGTERM while one host has not answered: the collector finishes the
/// snapshot, and every host it wrote is whole.
fn sigterm_mid_snapshot(sim: &Sim, db: &str) {
    let mut inventory = std::fs::read_to_string(sim.inventory("all.toml", None)).unwrap();
    let silent = &sim
        .sim()
        .hosts()
        .iter()
        .find(|h| h.kind == Kind::Silent)
        .unwrap();
    inventory.push_str(&format!(
        "[[hosts]]\nname = \"{0}\"\naddress = \"{1}\"\nserver_name = \"{0}\"\n",
        silent.name, silent.addr
    ));
    let path = sim.dir().join("with-silent.toml");
    std::fs::write(&path, inventory).unwrap();
    let mut child = ChildGroup::spawn(
        Command::new(env!("CARGO_BIN_EXE_hostscope-cli"))
            .arg("--inventory")
            .arg(&path)
            .args(sim.tls())
            .args(["--timeout", "10s", "collect", "--db", db, "--every", "1h"])
            .env_remove("HOSTSCOPE_DB_PASSWORD")
            .env("XDG_CONFIG_HOME", sim.dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("run hostscope");
    // The three agents are written; the silent host holds the snapshot.
    let written = || {
        let run = hostscope(
            ["sql", "--db", db, "SELECT count(*) FROM scrapes WHERE ok"],
            "",
        );
        run.code == 0 && run.out.lines().nth(1).map(str::trim) == Some("3")
    };
    wait_for(Duration::from_secs(120), written);
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let status = child.wait(Duration::from_secs(120));
    assert_eq!(status.code(), Some(0), "{status:?}");
    let rows = sql(db, "SELECT host, ok, error FROM scrapes ORDER BY host");
    assert_eq!(rows.len(), 4, "{rows:?}");
    let timeout = rows.iter().find(|r| r["host"] == silent.name.as_str());
    assert_eq!(timeout.map(|r| r["error"].clone()), Some("timeout".into()));
    // No half-written host: each answered scrape has its facts, processes
    // and interfaces.
    let whole = "SELECT count(*) FROM scrapes s WHERE s.ok \
                 AND EXISTS (SELECT 1 FROM host_facts f WHERE f.scrape_id = s.id) \
                 AND EXISTS (SELECT 1 FROM processes p WHERE p.scrape_id = s.id) \
                 AND EXISTS (SELECT 1 FROM interfaces i WHERE i.scrape_id = s.id)";
    assert_eq!(count(db, whole), 3);
}

/// `collect --watch` appends the agents' process events while it runs.
fn watch(sim: &Sim, db: &str) {
    let all = sim.inventory("all.toml", None);
    let mut child = ChildGroup::spawn(
        Command::new(env!("CARGO_BIN_EXE_hostscope-cli"))
            .arg("--inventory")
            .arg(&all)
            .args(sim.tls())
            .args(["collect", "--db", db, "--every", "1h", "--watch"])
            .env("XDG_CONFIG_HOME", sim.dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("run hostscope");
    // Short processes, until the store holds the exit of one of them:
    // those started before the watches were open are not seen.
    let mut pids = Vec::new();
    wait_for(Duration::from_secs(120), || {
        let mut short = Command::new("true");
        if let Ok(status) = short.spawn().and_then(|mut c| {
            pids.push(c.id());
            c.wait()
        }) {
            assert!(status.success());
        }
        std::thread::sleep(Duration::from_millis(200));
        let list = pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let query = format!(
            "SELECT count(DISTINCT host) FROM process_events WHERE kind = 'exited' AND pid IN ({list})"
        );
        let run = hostscope(["sql", "--db", db, &query], "");
        run.code == 0 && run.out.lines().nth(1).map(str::trim) == Some("3")
    });
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    assert_eq!(child.wait(Duration::from_secs(120)).code(), Some(0));
    let hosts = sql(db, "SELECT DISTINCT host FROM process_events ORDER BY host");
    let hosts: Vec<&str> = hosts.iter().filter_map(|r| r["host"].as_str()).collect();
    assert_eq!(hosts, sim.names(Kind::Good));
}

/// Statements that write are refused, bad SQL gets the database's message.
fn refusals(sim: &Sim, db: &str) {
    let all = sim.inventory("all.toml", None);
    assert_eq!(sim.collect(&all, db, &[]).code, 0);
    let run = hostscope(["sql", "--db", db, "DELETE FROM hosts"], "");
    assert_eq!(run.code, 1);
    assert!(run.err.contains("read"), "{}", run.err);
    assert_eq!(count(db, "SELECT count(*) FROM hosts"), 3);
    let run = hostscope(["sql", "--db", db, "SELECT nope FROM hosts"], "");
    assert_eq!(run.code, 1);
    assert!(run.err.contains("nope"), "{}", run.err);
}

/// A scenario: its name (the database's) and what it does.
type Scenario = (&'static str, fn(&Sim, &str));

fn scenarios() -> [Scenario; 7] {
    [
        ("snapshot", snapshot_and_a_host_that_went_down),
        ("retention", retention),
        ("diff", diff),
        ("shards", shards),
        ("sigterm", sigterm_mid_snapshot),
        ("refusals", refusals),
        ("watch", watch),
    ]
}

// === the tests ===

#[test]
fn the_store_on_sqlite() {
    let sim = Sim::start();
    for (name, scenario) in scenarios() {
        let db = sim.dir().join(format!("{name}.db"));
        scenario(&sim, db.to_str().unwrap());
    }
}

#[test]
fn the_store_on_postgresql() {
    if let Some(reason) = pg::unavailable() {
        // CI installs PostgreSQL: there the suite must run.
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true and the PostgreSQL tests cannot run: {reason}");
        }
        skip!("{reason}");
    }
    let cluster = PgCluster::start().expect("a PostgreSQL test cluster");
    let sim = Sim::start();
    for (name, scenario) in scenarios() {
        cluster.create_db(name).expect("createdb");
        scenario(&sim, &cluster.url(name));
    }
    a_password_from_the_environment_or_a_file(&sim, &cluster);
}

/// A role that must give a password gets it from HOSTSCOPE_DB_PASSWORD
/// or --db-password-file (which wins), never from the command line.
fn a_password_from_the_environment_or_a_file(sim: &Sim, cluster: &PgCluster) {
    let password = "correct horse";
    let url = cluster
        .create_role_with_password("collector", password, "secured")
        .expect("a role with a password");
    let all = sim.inventory("all.toml", None);
    let collect = |env: hostscope_cli::Env, more: &[&str]| {
        let mut argv: Vec<OsString> = vec!["--inventory".into(), all.clone().into()];
        argv.extend(sim.tls());
        argv.extend(["collect", "--db", &url].map(OsString::from));
        argv.extend(more.iter().map(OsString::from));
        hostscope_in(&env, argv, "")
    };
    let run = collect(hostscope_cli::Env::default(), &[]);
    assert_eq!(run.code, 1, "{}", run.err);
    assert!(run.err.contains("password"), "{}", run.err);
    let wrong = hostscope_cli::Env::default().var("HOSTSCOPE_DB_PASSWORD", "wrong");
    let run = collect(wrong.clone(), &[]);
    assert_eq!(run.code, 1, "{}", run.err);
    assert!(
        run.err.contains("password authentication failed"),
        "{}",
        run.err
    );
    let right = hostscope_cli::Env::default().var("HOSTSCOPE_DB_PASSWORD", password);
    assert_eq!(collect(right, &[]).code, 0);
    let file = sim.dir().join("db-password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    let run = collect(wrong, &["--db-password-file", file.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.err);
    let scrapes = sql_as(&url, password, "SELECT count(*) AS n FROM scrapes WHERE ok");
    assert_eq!(scrapes[0]["n"], 6, "{scrapes:?}");
}

/// [`sql`] as a role that logs in with `password`.
fn sql_as(db: &str, password: &str, query: &str) -> Vec<Value> {
    let env = hostscope_cli::Env::default().var("HOSTSCOPE_DB_PASSWORD", password);
    let run = hostscope_in(&env, ["sql", "--db", db, "-o", "json", query], "");
    assert_eq!(run.code, 0, "{query}: {}", run.err);
    match serde_json::from_str(&run.out) {
        Ok(Value::Array(rows)) => rows,
        other => panic!("{query}: not a JSON array: {other:?}\n{}", run.out),
    }
}

#[test]
fn sql_live_schema_and_csv() {
    let sim = Sim::start();
    let all = sim.inventory("all.toml", None);
    let run = sim.run(
        &all,
        &[
            "sql",
            "--live",
            "-o",
            "csv",
            "SELECT count(*) AS hosts FROM latest_hosts",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.err);
    assert_eq!(run.out, "hosts\n3\n");
    let run = hostscope(["sql", "--schema"], "");
    assert_eq!(run.code, 0);
    for name in [
        "CREATE TABLE process_spans",
        "CREATE VIEW latest_hosts",
        "CREATE VIEW latest_sockets",
    ] {
        assert!(run.out.contains(name), "{name}");
    }
    let db = sim.dir().join("fleet.db");
    assert_eq!(sim.collect(&all, db.to_str().unwrap(), &[]).code, 0);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&db).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let missing = sim.dir().join("missing.db");
    let run = hostscope(["sql", "--db", missing.to_str().unwrap(), "SELECT 1"], "");
    assert_eq!(run.code, 1);
    assert!(run.err.contains("no store at"), "{}", run.err);
    let run = hostscope(
        [
            "sql",
            "--db",
            "postgres://u:secret@db.example.net/fleet",
            "SELECT 1",
        ],
        "",
    );
    assert_eq!(run.code, 1);
    assert!(run.err.contains("holds a password"), "{}", run.err);
}
