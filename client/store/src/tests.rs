//! The store on real SQLite files in a temporary directory.

use std::{collections::BTreeMap, os::unix::fs::PermissionsExt};

use hostscope_proto as proto;

use super::*;

fn host(name: &str) -> HostId {
    HostId {
        name: name.to_owned(),
        address: format!("{name}.example.net:7443"),
        labels: BTreeMap::from([("role".to_owned(), "web".to_owned())]),
    }
}

fn process(
    pid: u32,
    ppid: u32,
    name: &str,
    status: proto::ProcessStatus,
    rss: u64,
) -> proto::Process {
    proto::Process {
        pid,
        ppid: Some(ppid),
        name: Some(name.to_owned()),
        cmdline: vec![format!("/usr/bin/{name}"), "--flag".to_owned()],
        status: Some(status as i32),
        create_time: Some(1_000.0 + f64::from(pid)),
        memory_info: Some(proto::MemoryInfo {
            rss,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn nic(name: &str, up: bool, addresses: &[&str]) -> proto::NetInterface {
    proto::NetInterface {
        name: name.to_owned(),
        addresses: addresses
            .iter()
            .map(|a| proto::NetAddress {
                family: proto::AddressFamily::Inet as i32,
                address: (*a).to_owned(),
                ..Default::default()
            })
            .collect(),
        stats: Some(proto::NetIfStats {
            isup: up,
            mtu: 1500,
            ..Default::default()
        }),
        io_counters: None,
    }
}

fn answered(
    name: &str,
    at: f64,
    processes: Vec<proto::Process>,
    nics: Vec<proto::NetInterface>,
) -> Scrape {
    Scrape {
        host: host(name),
        started_at: at,
        duration: 0.5,
        outcome: Outcome::Answered(Box::new(Snapshot {
            host: proto::Host {
                hostname: name.to_owned(),
                agent_version: "0.1.0".to_owned(),
                ..Default::default()
            },
            interfaces: nics,
            processes,
            ..Default::default()
        })),
    }
}

fn failed(name: &str, at: f64) -> Scrape {
    Scrape {
        host: host(name),
        started_at: at,
        duration: 10.0,
        outcome: Outcome::Failed {
            label: "timeout".to_owned(),
            message: "no answer within 10s".to_owned(),
        },
    }
}

async fn column(store: &mut Store, sql: &str) -> Vec<Val> {
    let result = store.query(sql).await.unwrap();
    result.rows.into_iter().map(|mut r| r.remove(0)).collect()
}

/// pid, first_seen, last_seen and running of every span, by pid.
async fn spans(store: &mut Store) -> Vec<Vec<Val>> {
    store
        .query("SELECT pid, first_seen, last_seen, running FROM process_spans ORDER BY pid")
        .await
        .unwrap()
        .rows
}

async fn count(store: &mut Store, table: &str) -> i64 {
    let rows = column(store, &format!("SELECT count(*) FROM {table}")).await;
    rows.first().and_then(Val::as_i64).unwrap()
}

async fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("fleet.db"))
        .await
        .unwrap();
    (dir, store)
}

fn text(v: &str) -> Val {
    Val::Text(v.to_owned())
}

use proto::ProcessStatus::{Running, Sleeping, Zombie};

#[tokio::test]
async fn a_snapshot_is_a_file_of_mode_0600_in_wal_mode_read_back_through_the_latest_views() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.db");
    let mut store = Store::open_sqlite(&path).await.unwrap();
    let procs = vec![
        process(1, 0, "init", Sleeping, 10),
        process(200, 1, "postgres", Running, 9000),
        process(300, 200, "worker", Zombie, 0),
    ];
    store
        .write_scrape(&answered(
            "web1",
            now() - 60.0,
            procs,
            vec![nic("eth0", true, &["192.0.2.10"])],
        ))
        .await
        .unwrap();
    drop(store);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    drop(conn);
    let mut store = Store::open_sqlite_read_only(&path).await.unwrap();
    let expected = [
        (
            "SELECT name FROM latest_processes ORDER BY rss DESC LIMIT 1",
            "postgres",
        ),
        (
            "SELECT json_extract(cmdline, '$[0]') FROM latest_processes WHERE pid = 200",
            "/usr/bin/postgres",
        ),
        ("SELECT parent_name FROM latest_zombies", "postgres"),
        (
            "SELECT address FROM latest_addresses WHERE interface = 'eth0'",
            "192.0.2.10",
        ),
        ("SELECT as_of FROM latest_hosts", "60 s ago"),
    ];
    for (sql, want) in expected {
        assert_eq!(column(&mut store, sql).await, [text(want)], "{sql}");
    }
}

#[tokio::test]
async fn a_host_that_went_down_still_answers_with_its_last_state_and_its_age() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.db");
    let mut store = Store::open_sqlite(&path).await.unwrap();
    let t = now();
    let procs = || vec![process(1, 0, "init", Sleeping, 10)];
    store
        .write_scrape(&answered("web1", t - 3.0 * 3600.0, procs(), vec![]))
        .await
        .unwrap();
    store
        .write_scrape(&answered("web2", t - 3.0 * 3600.0, procs(), vec![]))
        .await
        .unwrap();
    store.write_scrape(&failed("web1", t - 60.0)).await.unwrap();
    store.write_scrape(&failed("web3", t - 60.0)).await.unwrap();
    store
        .write_scrape(&answered("web2", t - 60.0, procs(), vec![]))
        .await
        .unwrap();
    let result = store
        .query("SELECT host, up, last_error, as_of FROM latest_hosts ORDER BY host")
        .await
        .unwrap();
    assert_eq!(
        result.rows,
        [
            vec![text("web1"), Val::Int(0), text("timeout"), text("3 h ago")],
            vec![text("web2"), Val::Int(1), Val::Null, text("60 s ago")],
            // Never answered: no state, and no age.
            vec![text("web3"), Val::Int(0), text("timeout"), Val::Null],
        ]
    );
    assert_eq!(
        column(
            &mut store,
            "SELECT count(*) FROM latest_processes WHERE host = 'web1'"
        )
        .await,
        [Val::Int(1)]
    );
}

#[tokio::test]
async fn spans_keep_the_history_while_processes_hold_only_the_latest_scrape() {
    let (_dir, mut store) = temp_store().await;
    let init = || process(1, 0, "init", Sleeping, 10);
    let cron = || process(50, 1, "cron", Sleeping, 10);
    let job = || process(60, 50, "job", Running, 10);
    let snapshots = [
        (100.0, vec![init(), cron()]),
        (200.0, vec![init(), cron(), job()]),
        // A scrape that missed the job, which is back in the next.
        (300.0, vec![init(), cron()]),
        (400.0, vec![init(), job()]),
    ];
    for (at, processes) in snapshots {
        store
            .write_scrape(&answered("web1", at, processes, vec![]))
            .await
            .unwrap();
    }
    // A host that is down leaves its running processes running.
    store.write_scrape(&failed("web1", 500.0)).await.unwrap();
    assert_eq!(
        spans(&mut store).await,
        [
            vec![Val::Int(1), Val::Real(100.0), Val::Real(400.0), Val::Int(1)],
            vec![
                Val::Int(50),
                Val::Real(100.0),
                Val::Real(300.0),
                Val::Int(0)
            ],
            vec![
                Val::Int(60),
                Val::Real(200.0),
                Val::Real(400.0),
                Val::Int(1)
            ],
        ]
    );
    // Only what changed was written: init's span was never touched.
    assert_eq!(
        column(
            &mut store,
            "SELECT count(*) FROM spans WHERE last_seen IS NULL"
        )
        .await,
        [Val::Int(2)]
    );
    assert_eq!(count(&mut store, "processes").await, 2);
    assert_eq!(count(&mut store, "scrapes").await, 5);
}

#[tokio::test]
async fn a_version_1_store_keeps_its_spans_and_latest_processes_through_later_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        let db = rusqlite::Connection::open(&path).unwrap();
        let (version, v1) = &schema::migrations(Dialect::Sqlite)[0];
        db.execute_batch(&format!(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at DOUBLE \
             PRECISION NOT NULL); {v1}; INSERT INTO schema_migrations VALUES ({version}, 0);\
             INSERT INTO hosts (name, address, labels) VALUES ('web1', 'a', '{{}}');\
             INSERT INTO scrapes (host, started_at, duration, ok) VALUES ('web1', 100, 1, 1), \
             ('web1', 200, 1, 1);\
             UPDATE hosts SET last_scrape_id = 2, last_ok_scrape_id = 2;\
             INSERT INTO process_spans VALUES ('web1', 1, 10, 'init', NULL, '[]', 100, 200), \
             ('web1', 7, 17, 'gone', NULL, '[]', 100, 100);\
             INSERT INTO processes (scrape_id, pid, name) VALUES (1, 7, 'gone'), (2, 1, 'init');"
        ))
        .unwrap();
    }
    let mut store = Store::open_sqlite(&path).await.unwrap();
    assert_eq!(
        spans(&mut store).await,
        [
            vec![Val::Int(1), Val::Real(100.0), Val::Real(200.0), Val::Int(1)],
            vec![Val::Int(7), Val::Real(100.0), Val::Real(100.0), Val::Int(0)],
        ]
    );
    // Version 3: the latest scrape's processes kept (an older scrape's
    // dropped), with no foreign key left to check.
    assert_eq!(
        column(&mut store, "SELECT name FROM latest_processes").await,
        [text("init")]
    );
    assert_eq!(count(&mut store, "processes").await, 1);
    assert_eq!(
        column(
            &mut store,
            "SELECT count(*) FROM pragma_foreign_key_list('processes')"
        )
        .await,
        [Val::Int(0)]
    );
}

#[tokio::test]
async fn retention_prunes_old_snapshots_but_keeps_each_hosts_latest() {
    let (_dir, mut store) = temp_store().await;
    let nics = || vec![nic("eth0", true, &["192.0.2.10"])];
    let p = || vec![process(1, 0, "init", Sleeping, 10)];
    store
        .write_scrape(&answered("web1", 100.0, p(), nics()))
        .await
        .unwrap();
    store
        .write_scrape(&answered(
            "web1",
            200.0,
            vec![process(7, 1, "old", Sleeping, 1)],
            nics(),
        ))
        .await
        .unwrap();
    store
        .write_scrape(&answered("web1", 300.0, p(), nics()))
        .await
        .unwrap();
    // web2 went down long ago: its last state stays.
    store
        .write_scrape(&answered("web2", 100.0, p(), nics()))
        .await
        .unwrap();
    store.write_scrape(&failed("web2", 150.0)).await.unwrap();
    store.write_scrape(&failed("web2", 300.0)).await.unwrap();
    let pruned = store.prune(250.0).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            scrapes: 3,
            spans: 1,
            events: 0
        }
    );
    let kept = store
        .query("SELECT host, started_at, ok FROM scrapes ORDER BY host, started_at")
        .await
        .unwrap();
    assert_eq!(
        kept.rows,
        [
            vec![text("web1"), Val::Real(300.0), Val::Int(1)],
            vec![text("web2"), Val::Real(100.0), Val::Int(1)],
            vec![text("web2"), Val::Real(300.0), Val::Int(0)],
        ]
    );
    // The rows of pruned scrapes went with them.
    assert_eq!(count(&mut store, "interfaces").await, 2);
    assert_eq!(count(&mut store, "latest_processes").await, 2);
}

#[tokio::test]
async fn diff_names_processes_started_and_gone_interface_and_address_changes_and_new_zombies() {
    let (_dir, mut store) = temp_store().await;
    let before = vec![
        process(1, 0, "init", Sleeping, 10),
        process(50, 1, "cron", Sleeping, 10),
        process(60, 1, "app", Sleeping, 10),
    ];
    let after = vec![
        process(1, 0, "init", Sleeping, 10),
        process(60, 1, "app", Sleeping, 10),
        process(70, 60, "child", Zombie, 0),
        process(80, 1, "sshd", Sleeping, 10),
    ];
    let nics_before = vec![nic("eth0", true, &["192.0.2.10"]), nic("eth1", true, &[])];
    let nics_after = vec![nic("eth0", false, &["192.0.2.11"]), nic("wg0", true, &[])];
    for (at, procs, nics) in [(100.0, before, nics_before), (200.0, after, nics_after)] {
        let scrape = answered("web1", at, procs, nics);
        store.write_scrape(&scrape).await.unwrap();
    }
    let diffs = store.diff(150.0, None).await.unwrap();
    assert_eq!(diffs.len(), 1);
    let d = &diffs[0];
    assert_eq!((d.from, d.to), (100.0, 200.0));
    let pids = |v: &[ProcessRef]| v.iter().map(|p| p.pid).collect::<Vec<_>>();
    assert_eq!(pids(&d.started), [70, 80]);
    assert_eq!(pids(&d.gone), [50]);
    assert_eq!(d.interfaces_added, ["wg0"]);
    assert_eq!(d.interfaces_removed, ["eth1"]);
    assert_eq!(
        d.link_changes,
        [LinkChange {
            interface: "eth0".into(),
            was_up: true,
            is_up: false
        }]
    );
    let addr = |a: &str| AddressRef {
        interface: "eth0".into(),
        family: "inet".into(),
        address: a.into(),
    };
    assert_eq!(d.addresses_added, [addr("192.0.2.11")]);
    assert_eq!(d.addresses_removed, [addr("192.0.2.10")]);
    assert_eq!(d.new_zombies.len(), 1);
    assert_eq!(d.new_zombies[0].parent_name.as_deref(), Some("app"));
    // Only one scrape since: nothing to compare.
    assert!(store.diff(150.0, Some("web9")).await.unwrap().is_empty());
}

#[tokio::test]
async fn queries_only_read_and_errors_carry_sqlites_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.db");
    Store::open_sqlite(&path).await.unwrap();
    let mut store = Store::open_sqlite_read_only(&path).await.unwrap();
    let err = store.query("DELETE FROM hosts").await.unwrap_err();
    assert!(matches!(err, Error::NotReadOnly), "{err}");
    let err = store.query("SELECT nope FROM hosts").await.unwrap_err();
    assert!(err.to_string().contains("no such column: nope"), "{err}");
    let err = store.query("SELECT 1; SELECT 2").await.unwrap_err();
    assert!(err.to_string().contains("Multiple statements"), "{err}");

    let mut memory = Store::in_memory().await.unwrap();
    let err = memory.query("DROP TABLE hosts").await.unwrap_err();
    assert!(matches!(err, Error::NotReadOnly), "{err}");

    let missing = dir.path().join("missing.db");
    let err = Store::open_sqlite_read_only(&missing).await.unwrap_err();
    assert!(err.to_string().contains("no store at"), "{err}");
    assert!(!missing.exists());
}

#[tokio::test]
async fn migrations_apply_once_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.db");
    Store::open_sqlite(&path).await.unwrap();
    let mut store = Store::open_sqlite(&path).await.unwrap();
    assert_eq!(
        column(&mut store, "SELECT count(*) FROM schema_migrations").await,
        [Val::Int(schema::latest_version())]
    );
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO schema_migrations VALUES (99, 0)", [])
        .unwrap();
    drop(conn);
    let err = Store::open_sqlite_read_only(&path).await.unwrap_err();
    assert!(err.to_string().contains("version 99"), "{err}");
}

#[tokio::test]
async fn a_failed_write_leaves_no_half_written_host() {
    let (_dir, mut store) = temp_store().await;
    // Two processes with one pid break the primary key midway.
    let procs = vec![
        process(1, 0, "init", Sleeping, 10),
        process(1, 0, "init", Sleeping, 10),
    ];
    assert!(
        store
            .write_scrape(&answered("web1", 100.0, procs, vec![]))
            .await
            .is_err()
    );
    for table in [
        "hosts",
        "scrapes",
        "host_facts",
        "processes",
        "process_spans",
    ] {
        assert_eq!(
            column(&mut store, &format!("SELECT count(*) FROM {table}")).await,
            [Val::Int(0)],
            "{table}"
        );
    }
}
