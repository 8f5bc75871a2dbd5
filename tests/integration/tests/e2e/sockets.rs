//! ListConnections and `hostscope sockets` against a child's real sockets
//! on 127.0.0.1, compared with /proc/PID/fd, ss and psutil 7.2.2.

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use hostscope_agent::backend::{
    Backend,
    linux::{Linux, SocketSource},
    socket::{SocketKind, SocketQuery},
};
use hostscope_client::proto as pb;
use hostscope_integration::{TestAgent, child::ChildGroup, psutil};
use tonic::Code;

use super::reap::hostscope;

/// Opens, on 127.0.0.1 only: a TCP listener, a connection to it (both
/// ends), a bound UDP socket, a unix listener in a temp directory and an
/// abstract unix datagram socket; prints them as JSON, then waits for its
/// stdin to close.
const SOCKETS_CHILD: &str = r#"
import json, os, socket, sys
d = sys.argv[1]
lst = socket.socket(); lst.bind(("127.0.0.1", 0)); lst.listen()
cli = socket.create_connection(lst.getsockname()); srv, _ = lst.accept()
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("127.0.0.1", 0))
ux = socket.socket(socket.AF_UNIX); ux.bind(os.path.join(d, "s.sock")); ux.listen()
name = "hostscope-test-%d" % os.getpid()
ab = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); ab.bind(b"\0" + name.encode())
out = {}
for key, s in [("listen", lst), ("client", cli), ("server", srv), ("udp", udp), ("unix", ux), ("abstract", ab)]:
    out[key] = {"fd": s.fileno(), "inode": os.fstat(s.fileno()).st_ino}
out["port"] = lst.getsockname()[1]
out["client_port"] = cli.getsockname()[1]
out["udp_port"] = udp.getsockname()[1]
out["path"] = os.path.join(d, "s.sock")
out["abstract_name"] = "@" + name
print(json.dumps(out), flush=True)
sys.stdin.read()
"#;

/// The child, its temp directory, and what it opened.
struct Sockets {
    child: ChildGroup,
    _dir: tempfile::TempDir,
    info: serde_json::Value,
}

impl Sockets {
    fn open() -> Sockets {
        let dir = tempfile::tempdir().unwrap();
        let mut child = ChildGroup::spawn(
            Command::new("python3")
                .arg("-c")
                .arg(SOCKETS_CHILD)
                .arg(dir.path())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped()),
        )
        .expect("python3");
        let mut line = String::new();
        BufReader::new(child.take_stdout().unwrap())
            .read_line(&mut line)
            .unwrap();
        let info = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        Sockets {
            child,
            _dir: dir,
            info,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn num(&self, key: &str) -> u64 {
        self.info[key].as_u64().unwrap_or_else(|| panic!("{key}"))
    }

    fn port(&self) -> u32 {
        self.num("port") as u32
    }

    fn text(&self, key: &str) -> String {
        self.info[key].as_str().unwrap().to_owned()
    }
}

fn request(kind: pb::ConnectionKind) -> pb::ListConnectionsRequest {
    pb::ListConnectionsRequest {
        kind: kind as i32,
        ..Default::default()
    }
}

async fn list(agent: &TestAgent, request: pb::ListConnectionsRequest) -> Vec<pb::Connection> {
    let client = agent.client().await;
    let all = client
        .connections(request)
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    all.connections
}

/// A socket as (family, type, laddr, raddr, status), addresses as text.
fn shown(c: &pb::Connection) -> (String, String, String, String, String) {
    use hostscope_proto::EnumName;
    let addr = |a: Option<&pb::SocketAddress>| match a {
        None => String::new(),
        Some(a) if !a.path.is_empty() || a.ip.is_empty() => a.path.clone(),
        Some(a) => format!("{}:{}", a.ip, a.port),
    };
    let name = |n: Option<String>| n.unwrap_or_default();
    (
        name(pb::SocketFamily::from_wire(c.family).map(|f| f.short_name())),
        name(pb::SocketType::from_wire(c.r#type).map(|t| t.short_name())),
        addr(c.laddr.as_ref()),
        addr(c.raddr.as_ref()),
        name(pb::ConnectionStatus::from_wire(c.status).map(|s| s.short_name())),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_childs_sockets_are_listed_with_their_pid_fd_state_and_addresses() {
    let child = Sockets::open();
    let agent = TestAgent::start().await;
    let pid = child.pid();
    let got = list(
        &agent,
        pb::ListConnectionsRequest {
            pids: vec![pid],
            ..request(pb::ConnectionKind::All)
        },
    )
    .await;
    let (port, cport, uport) = (
        child.port(),
        child.num("client_port"),
        child.num("udp_port"),
    );
    let local = |p: u64| format!("127.0.0.1:{p}");
    let port = u64::from(port);
    let expected = [
        (
            "listen",
            ("inet", "stream", local(port), String::new(), "listen"),
        ),
        (
            "client",
            ("inet", "stream", local(cport), local(port), "established"),
        ),
        (
            "server",
            ("inet", "stream", local(port), local(cport), "established"),
        ),
        (
            "udp",
            ("inet", "dgram", local(uport), String::new(), "none"),
        ),
        (
            "unix",
            ("unix", "stream", child.text("path"), String::new(), "none"),
        ),
        (
            "abstract",
            (
                "unix",
                "dgram",
                child.text("abstract_name"),
                String::new(),
                "none",
            ),
        ),
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (key, (family, kind, laddr, raddr, status)) in expected {
        let fd = child.info[key]["fd"].as_u64().unwrap() as u32;
        let inode = child.info[key]["inode"].as_u64().unwrap();
        let c = got
            .iter()
            .find(|c| c.fd == Some(fd))
            .unwrap_or_else(|| panic!("{key} (fd {fd}) missing: {got:#?}"));
        assert_eq!(c.pid, Some(pid), "{key}");
        assert_eq!(c.inode, inode, "{key}");
        // The agent's fd is the descriptor the kernel names this socket by.
        let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert_eq!(link.to_str(), Some(format!("socket:[{inode}]").as_str()));
        let want = (
            family.to_owned(),
            kind.to_owned(),
            laddr,
            raddr,
            status.to_owned(),
        );
        assert_eq!(shown(c), want, "{key}");
        if family == "inet" {
            assert!(c.uid.is_some(), "{key}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_states_and_pids_filter() {
    let child = Sockets::open();
    let agent = TestAgent::start().await;
    let pid = child.pid();
    let port = child.port();
    let fds = |got: &[pb::Connection]| -> BTreeSet<u32> {
        got.iter().map(|c| c.fd.expect("fd")).collect()
    };
    let fd = |key: &str| child.info[key]["fd"].as_u64().unwrap() as u32;

    let by_port = list(
        &agent,
        pb::ListConnectionsRequest {
            local_ports: vec![port],
            pids: vec![pid],
            ..request(pb::ConnectionKind::Tcp)
        },
    )
    .await;
    assert_eq!(fds(&by_port), [fd("listen"), fd("server")].into());

    let listening = list(
        &agent,
        pb::ListConnectionsRequest {
            statuses: vec![pb::ConnectionStatus::Listen as i32],
            pids: vec![pid],
            ..request(pb::ConnectionKind::All)
        },
    )
    .await;
    assert_eq!(fds(&listening), [fd("listen")].into());

    let by_rport = list(
        &agent,
        pb::ListConnectionsRequest {
            remote_ports: vec![port],
            pids: vec![pid],
            ..request(pb::ConnectionKind::Inet)
        },
    )
    .await;
    assert_eq!(fds(&by_rport), [fd("client")].into());

    // Stateless sockets only: UDP and unix.
    let none = list(
        &agent,
        pb::ListConnectionsRequest {
            statuses: vec![pb::ConnectionStatus::None as i32],
            pids: vec![pid],
            ..request(pb::ConnectionKind::All)
        },
    )
    .await;
    assert_eq!(fds(&none), [fd("udp"), fd("unix"), fd("abstract")].into());

    // Without pids asked for, no pid or fd; the whole host's sockets.
    let anonymous = list(
        &agent,
        pb::ListConnectionsRequest {
            local_ports: vec![port],
            ..request(pb::ConnectionKind::Tcp4)
        },
    )
    .await;
    assert_eq!(anonymous.len(), 2, "{anonymous:#?}");
    assert!(anonymous.iter().all(|c| c.pid.is_none() && c.fd.is_none()));
    // With them, the same sockets with their holder.
    let held = list(
        &agent,
        pb::ListConnectionsRequest {
            local_ports: vec![port],
            with_pids: true,
            ..request(pb::ConnectionKind::Tcp4)
        },
    )
    .await;
    assert_eq!(held.len(), 2, "{held:#?}");
    assert!(held.iter().all(|c| c.pid == Some(pid)));
    // IPv6 only: the child has none.
    let six = list(
        &agent,
        pb::ListConnectionsRequest {
            pids: vec![pid],
            ..request(pb::ConnectionKind::Inet6)
        },
    )
    .await;
    assert!(six.is_empty(), "{six:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_socket_requests_are_invalid_arguments_naming_the_field() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let cases = [
        (
            pb::ListConnectionsRequest {
                kind: 77,
                ..Default::default()
            },
            "kind",
        ),
        (
            pb::ListConnectionsRequest {
                statuses: vec![99],
                ..Default::default()
            },
            "statuses",
        ),
        (
            pb::ListConnectionsRequest {
                local_ports: vec![65536],
                ..Default::default()
            },
            "local_ports",
        ),
        (
            pb::ListConnectionsRequest {
                remote_ports: vec![1 << 20],
                ..Default::default()
            },
            "remote_ports",
        ),
    ];
    for (request, field) in cases {
        let mut raw = pb::host_inspector_client::HostInspectorClient::new(client.channel());
        let status = raw.list_connections(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(field), "{field}: {status:?}");
    }
}

/// `ss`'s state names, as psutil's.
fn ss_state(state: &str) -> String {
    match state {
        "ESTAB" => "established".to_owned(),
        "UNCONN" => "none".to_owned(),
        s => s.to_ascii_lowercase().replace('-', "_"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_childs_tcp_sockets_are_what_ss_sees() {
    let child = Sockets::open();
    let agent = TestAgent::start().await;
    let port = child.port();
    let ss = Command::new("ss")
        .args(["-Htan", &format!("( sport = :{port} or dport = :{port} )")])
        .output();
    let Some(ss) = ss.ok().filter(|o| o.status.success()) else {
        panic!("ss (iproute2) is needed to compare the TCP sockets with");
    };
    let ss: BTreeSet<(String, String, String)> = String::from_utf8_lossy(&ss.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let peer = match f.get(4)? {
                p if p.ends_with(":*") => String::new(),
                p => (*p).to_owned(),
            };
            Some((ss_state(f[0]), f.get(3)?.to_string(), peer))
        })
        .collect();
    let mut ours = BTreeSet::new();
    for (local_ports, remote_ports) in [(vec![port], vec![]), (vec![], vec![port])] {
        let got = list(
            &agent,
            pb::ListConnectionsRequest {
                local_ports,
                remote_ports,
                ..request(pb::ConnectionKind::Tcp)
            },
        )
        .await;
        ours.extend(got.iter().map(|c| {
            let (_, _, l, r, s) = shown(c);
            (s, l, r)
        }));
    }
    assert_eq!(ours.len(), 3, "{ours:?}");
    assert_eq!(ours, ss);

    // The listeners alone, as `ss -Hltn` shows them.
    let ss = Command::new("ss")
        .args(["-Hltn", &format!("( sport = :{port} )")])
        .output()
        .unwrap();
    let ss: Vec<String> = String::from_utf8_lossy(&ss.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
        .collect();
    let listeners = list(
        &agent,
        pb::ListConnectionsRequest {
            local_ports: vec![port],
            statuses: vec![pb::ConnectionStatus::Listen as i32],
            ..request(pb::ConnectionKind::Tcp)
        },
    )
    .await;
    let listeners: Vec<String> = listeners.iter().map(|c| shown(c).2).collect();
    assert_eq!(listeners, ss);
}

/// psutil's `net_connections('all')` for one pid, as (fd, family, type,
/// laddr, raddr, status) in the API's words.
const PSUTIL_CONNECTIONS: &str = r#"
import json, sys, psutil
pid = int(sys.argv[1])
def addr(a):
    if isinstance(a, str): return a
    if not a: return ""
    return "%s:%d" % (a[0], a[1])
out = []
for c in psutil.net_connections("all"):
    if c.pid != pid: continue
    out.append([c.fd, c.family.name[3:].lower(), c.type.name[5:].lower(), addr(c.laddr), addr(c.raddr), c.status.lower()])
print(json.dumps(sorted(out)))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_childs_sockets_are_what_psutil_sees() {
    let child = Sockets::open();
    let agent = TestAgent::start().await;
    let pid = child.pid();
    let python = psutil::python();
    let out = Command::new(&python)
        .args(["-c", PSUTIL_CONNECTIONS, &pid.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let got = list(
        &agent,
        pb::ListConnectionsRequest {
            pids: vec![pid],
            ..request(pb::ConnectionKind::All)
        },
    )
    .await;
    let mut ours: Vec<serde_json::Value> = got
        .iter()
        .map(|c| {
            let (family, kind, laddr, raddr, status) = shown(c);
            serde_json::json!([c.fd, family, kind, laddr, raddr, status])
        })
        .collect();
    ours.sort_by_key(|v| v[0].as_u64());
    assert_eq!(ours.len(), 6);
    assert_eq!(serde_json::Value::Array(ours), theirs);
}

#[test]
fn procfs_gives_what_netlink_gives() {
    let child = Sockets::open();
    let netlink = Linux::with_roots("/proc".into(), "/sys".into()).unwrap();
    let procfs = Linux::with_roots("/proc".into(), "/sys".into())
        .unwrap()
        .with_socket_source(SocketSource::Procfs);
    let query = SocketQuery {
        kind: SocketKind::All,
        pids: vec![child.pid()],
        ..SocketQuery::default()
    };
    let a = netlink.connections(&query).unwrap();
    let b = procfs.connections(&query).unwrap();
    assert_eq!(a.sockets.len(), 6, "{a:#?}");
    assert_eq!(a, b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_shows_the_childs_listener() {
    let child = Sockets::open();
    let agent = TestAgent::start().await;
    let port = child.port().to_string();
    let (code, out, err) = hostscope(
        &agent,
        "client",
        &["sockets", "--listening", "--port", &port, "-p"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "a header and the listener:\n{out}");
    let listener = format!("127.0.0.1:{port}");
    let owner = format!("{}/python3", child.pid());
    for part in ["tcp", "LISTEN", listener.as_str(), owner.as_str()] {
        assert!(lines[1].contains(part), "{part:?} missing:\n{out}");
    }

    let (code, out, err) = hostscope(
        &agent,
        "client",
        &[
            "sockets",
            "--kind",
            "all",
            "--pid",
            &child.pid().to_string(),
            "-o",
            "ndjson",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let records: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 6, "{out}");
    let path = child.text("path");
    let unix = records
        .iter()
        .find(|r| r["path"] == path.as_str())
        .unwrap_or_else(|| panic!("{path} missing: {out}"));
    assert_eq!(unix["proto"], "unix");
    assert_eq!(unix["pid"], child.pid());
    assert_eq!(unix["status"], "none");

    let (code, _, err) = hostscope(&agent, "client", &["sockets", "--kind", "sctp"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("unknown kind"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_lists_what_a_host_listens_on_with_its_holders() {
    let child = Sockets::open();
    let agent = TestAgent::start().await;
    let (code, out, err) = hostscope(&agent, "client", &["inventory", "-o", "ndjson"]).await;
    assert_eq!(code, 0, "{err}");
    let record: serde_json::Value =
        serde_json::from_str(out.lines().next().unwrap_or_default()).unwrap();
    let listening = record["listening"].as_array().expect("listening");
    let mine: Vec<(String, u64, String)> = listening
        .iter()
        .filter(|r| r["pid"] == child.pid())
        .map(|r| {
            (
                r["proto"].as_str().unwrap_or_default().to_owned(),
                r["local_port"].as_u64().unwrap_or_default(),
                r["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    // The TCP listener and the bound UDP socket; not the connected pair,
    // nor unix sockets.
    let python = || "python3".to_owned();
    assert_eq!(
        BTreeSet::from_iter(mine),
        BTreeSet::from([
            ("tcp".to_owned(), child.num("port"), python()),
            ("udp".to_owned(), child.num("udp_port"), python()),
        ]),
        "{listening:?}"
    );
    let (code, out, err) = hostscope(&agent, "client", &["inventory", "-o", "table"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().next().unwrap_or_default().contains("LISTEN"),
        "{out}"
    );
}
