//! A fleet of 50 simulated hosts, 8 of them broken in the ways real fleets
//! break, asked through the `hostscope` CLI (in process).

use std::{
    collections::{BTreeMap, HashSet},
    ffi::OsString,
    path::PathBuf,
};

use hostscope_integration::{
    CliRun, hostscope,
    sim::{BlockingSim, FleetSim, Kind, SimSpec},
};

/// 42 good agents, 5 closed ports, 2 hosts that accept TCP and never
/// answer, and 1 agent whose certificate comes from another CA.
struct Fleet(BlockingSim);

impl Fleet {
    fn start() -> Fleet {
        let spec = SimSpec {
            agents: 43,
            closed: 5,
            silent: 2,
            wrong_ca: 1,
            dir: PathBuf::new(),
        };
        let sim = BlockingSim::start(spec).expect("fleet sim");
        assert_eq!(sim.sim().hosts().len(), 50);
        Fleet(sim)
    }

    fn sim(&self) -> &FleetSim {
        self.0.sim()
    }

    /// Runs `hostscope --inventory ... ARGS` in process: (exit code, stdout,
    /// stderr).
    fn hostscope(&self, args: &[&str]) -> (u8, String, String) {
        let mut argv: Vec<OsString> = vec!["--inventory".into()];
        argv.push(self.sim().inventory().into());
        argv.extend(self.sim().client_tls_args());
        argv.extend(args.iter().map(OsString::from));
        let CliRun { code, out, err } = hostscope(argv, "");
        (code, out, err)
    }

    /// The inventory names of the hosts of `kind`.
    fn names(&self, kind: Kind) -> HashSet<String> {
        self.sim()
            .hosts()
            .iter()
            .filter(|h| h.kind == kind)
            .map(|h| h.name.clone())
            .collect()
    }
}

#[test]
fn a_fleet_with_dead_hosts_answers_for_the_live_ones_and_names_the_rest() {
    let fleet = Fleet::start();
    let (code, out, err) = fleet.hostscope(&[
        "ps",
        "--fields",
        "pid,name,status",
        "--output",
        "ndjson",
        // Generous for the good hosts on a busy machine; the silent ones
        // use all of it.
        "--timeout",
        "10s",
    ]);
    assert_eq!(code, 2, "some hosts failed: exit 2\n{err}");

    // ndjson: every line one record, each with its host.
    let mut pids_by_host: BTreeMap<String, usize> = BTreeMap::new();
    for line in out.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("ndjson line");
        let host = record["host"].as_str().expect("host on every record");
        assert!(
            record["pid"].as_u64().is_some() && record["status"].is_string(),
            "{record}"
        );
        *pids_by_host.entry(host.to_owned()).or_default() += 1;
    }
    let answered: HashSet<String> = pids_by_host.keys().cloned().collect();
    assert_eq!(
        answered,
        fleet.names(Kind::Good),
        "the 42 good hosts answered"
    );
    assert!(pids_by_host.values().all(|n| *n > 1));

    // The summary: counts, then each failed host named with its error.
    assert!(err.contains("42 ok, 8 failed (2 timed out)"), "{err}");
    let failures: BTreeMap<String, String> = err
        .lines()
        .filter_map(|l| {
            let (host, rest) = l.trim_start().split_once(" (")?;
            let kind = rest.split_once("): ")?.1.split(':').next()?;
            Some((host.to_owned(), kind.to_owned()))
        })
        .collect();
    let expect = |kind: Kind, label: &str| {
        for name in fleet.names(kind) {
            assert_eq!(
                failures.get(&name).map(String::as_str),
                Some(label),
                "{name}: {err}"
            );
        }
    };
    expect(Kind::Closed, "connection-refused");
    expect(Kind::Silent, "timeout");
    expect(Kind::WrongCa, "unknown-ca");
    assert_eq!(failures.len(), 8, "{err}");
}

#[test]
fn fleet_output_parses_as_csv_and_json_and_every_host_is_asked_once() {
    let fleet = Fleet::start();

    let (code, out, err) = fleet.hostscope(&["--select", "kind=good", "host", "--output", "csv"]);
    assert_eq!(code, 0, "only good hosts selected: exit 0\n{err}");
    let mut rows = out.lines();
    let header: Vec<&str> = rows.next().expect("a header row").split(',').collect();
    assert_eq!(header[0], "host");
    let hostname = header
        .iter()
        .position(|c| *c == "hostname")
        .expect("hostname column");
    let rows: Vec<Vec<&str>> = rows.map(|r| r.split(',').collect()).collect();
    assert_eq!(rows.len(), 42);
    let hosts: HashSet<String> = rows.iter().map(|r| r[0].to_owned()).collect();
    assert_eq!(hosts, fleet.names(Kind::Good));
    assert!(rows.iter().all(|r| !r[hostname].is_empty()));

    // The same host twice (by --hosts and the inventory) is asked once.
    let good = fleet.sim().addresses(Kind::Good)[0].to_string();
    let (code, out, err) = fleet.hostscope(&[
        "--select",
        "kind=good",
        "--hosts",
        &good,
        "host",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let records: Vec<serde_json::Value> = serde_json::from_str(&out).expect("one JSON array");
    assert_eq!(records.len(), 42);
}
