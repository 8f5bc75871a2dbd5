//! ListOpenFiles and `hostscope files` against a real process holding
//! real descriptors, with psutil's `Process.open_files` and the kernel's
//! own `/proc/PID/fd` as the oracles.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
};

use hostscope_client::{Client, Error, proto as pb};
use hostscope_integration::{TestAgent, child::ChildGroup, missing_pid, psutil};
use serde_json::Value;

use super::reap::hostscope;

/// Opens, in `DIR` (argv[1]): `read.txt` read-only with 5 bytes read,
/// `append.log` for appending (6 bytes written), `rw.dat` read-write at
/// offset 7, `gone.log` then deleted while open; a pipe, a socket pair and
/// /dev/null. Prints the descriptors as JSON by name, then holds them
/// until stdin closes.
const HOLDER: &str = r#"
import json, os, socket, sys
d = sys.argv[1]
with open(os.path.join(d, "read.txt"), "w") as f: f.write("hello world\n")
with open(os.path.join(d, "rw.dat"), "w") as f: f.write("0123456789")
read = open(os.path.join(d, "read.txt"), "rb", buffering=0); read.read(5)
append = open(os.path.join(d, "append.log"), "ab", buffering=0); append.write(b"line1\n")
rw = os.open(os.path.join(d, "rw.dat"), os.O_RDWR); os.lseek(rw, 7, 0)
gone = open(os.path.join(d, "gone.log"), "wb", buffering=0); gone.write(b"bye\n")
os.unlink(os.path.join(d, "gone.log"))
pipe_r, pipe_w = os.pipe()
sock_a, sock_b = socket.socketpair()
null = os.open("/dev/null", os.O_RDONLY)
fds = {"read": read.fileno(), "append": append.fileno(), "rw": rw, "gone": gone.fileno(),
       "pipe_r": pipe_r, "pipe_w": pipe_w, "sock_a": sock_a.fileno(),
       "sock_b": sock_b.fileno(), "null": null}
print(json.dumps(fds), flush=True)
sys.stdin.read()
"#;

/// A process holding the descriptors of [`HOLDER`] in a temporary
/// directory, until dropped.
struct Holder {
    pid: u32,
    /// Descriptor numbers by name.
    fds: BTreeMap<String, u32>,
    dir: tempfile::TempDir,
    /// Killed (group and all) on drop.
    _child: ChildGroup,
}

impl Holder {
    fn start() -> Holder {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("python3");
        cmd.args(["-I", "-c", HOLDER])
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Not the test's stderr, which may be a regular file and
            // would then be listed with the others.
            .stderr(Stdio::null());
        let mut child = ChildGroup::spawn(&mut cmd).expect("python3");
        let mut line = String::new();
        BufReader::new(child.take_stdout().unwrap())
            .read_line(&mut line)
            .unwrap();
        let fds: BTreeMap<String, u32> =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        Holder {
            pid: child.id(),
            fds,
            dir,
            _child: child,
        }
    }

    fn fd(&self, name: &str) -> u32 {
        self.fds[name]
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }
}

async fn open_files(client: &Client, request: pb::ListOpenFilesRequest) -> pb::OpenFileBatch {
    client.open_files(request).await.expect("ListOpenFiles")
}

fn of_pid(pid: u32) -> pb::ListOpenFilesRequest {
    pb::ListOpenFilesRequest {
        pids: vec![pid],
        ..Default::default()
    }
}

fn by_fd(files: &[pb::OpenFile]) -> BTreeMap<u32, &pb::OpenFile> {
    files.iter().map(|f| (f.fd, f)).collect()
}

/// psutil's `Process(pid).open_files()` as (fd, path, position, mode,
/// flags).
fn psutil_open_files(pid: u32) -> BTreeSet<(u32, String, u64, String, u32)> {
    let out = psutil::run_json(&format!(
        "import json, psutil\n\
         print(json.dumps([f._asdict() for f in psutil.Process({pid}).open_files()]))\n"
    ));
    out.as_array()
        .expect("a list")
        .iter()
        .map(|f| {
            (
                f["fd"].as_u64().unwrap() as u32,
                f["path"].as_str().unwrap().to_owned(),
                f["position"].as_u64().unwrap(),
                f["mode"].as_str().unwrap().to_owned(),
                f["flags"].as_u64().unwrap() as u32,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_descriptor_as_the_process_opened_it() {
    let holder = Holder::start();
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let every = open_files(
        &client,
        pb::ListOpenFilesRequest {
            all_kinds: true,
            ..of_pid(holder.pid)
        },
    )
    .await;
    assert!(every.process_errors.is_empty(), "{every:?}");
    assert!(every.files.iter().all(|f| f.pid == holder.pid));
    let files = by_fd(&every.files);
    let file = |name: &str| {
        let fd = holder.fd(name);
        *files
            .get(&fd)
            .unwrap_or_else(|| panic!("{name} (fd {fd}) missing: {every:#?}"))
    };
    // O_CLOEXEC, as Python opens everything; O_LARGEFILE on 64-bit.
    const CLOEXEC: u32 = 0o2000000;
    const APPEND: u32 = 0o2000;
    let cases = [
        ("read", "read.txt", 5, "r", false),
        ("append", "append.log", 6, "a", false),
        ("rw", "rw.dat", 7, "r+", false),
        ("gone", "gone.log", 4, "w", true),
    ];
    for (name, path, position, mode, deleted) in cases {
        let f = file(name);
        assert_eq!(f.path, holder.path(path), "{name}");
        assert_eq!(f.position, position, "{name}");
        assert_eq!(f.mode, mode, "{name}");
        assert_eq!(f.deleted, deleted, "{name}");
        assert_eq!(f.kind, pb::FileKind::File as i32, "{name}");
        assert_ne!(f.flags & CLOEXEC, 0, "{name}: {:o}", f.flags);
    }
    assert_ne!(file("append").flags & APPEND, 0);
    assert_eq!(file("read").flags & 3, 0, "O_RDONLY");
    assert_eq!(file("rw").flags & 3, 2, "O_RDWR");

    let pipe = file("pipe_r");
    assert_eq!(pipe.kind, pb::FileKind::Pipe as i32);
    assert_eq!(
        (pipe.mode.as_str(), file("pipe_w").mode.as_str()),
        ("r", "w")
    );
    assert_eq!(pipe.path, file("pipe_w").path, "both ends name one pipe");
    assert!(pipe.path.starts_with("pipe:["), "{}", pipe.path);
    for end in ["sock_a", "sock_b"] {
        let sock = file(end);
        assert_eq!(sock.kind, pb::FileKind::Socket as i32);
        assert!(sock.path.starts_with("socket:["), "{}", sock.path);
        assert_eq!(sock.mode, "r+");
    }
    let null = file("null");
    assert_eq!(
        (null.path.as_str(), null.kind),
        ("/dev/null", pb::FileKind::Device as i32)
    );

    // Every descriptor the kernel lists, with the kernel's own link text
    // (the deleted file's without its suffix).
    let proc_fd = Path::new("/proc").join(holder.pid.to_string()).join("fd");
    let mut kernel = BTreeMap::new();
    for entry in std::fs::read_dir(&proc_fd).unwrap() {
        let entry = entry.unwrap();
        let fd: u32 = entry.file_name().to_str().unwrap().parse().unwrap();
        let target = std::fs::read_link(entry.path()).unwrap();
        let target = target.to_str().unwrap().to_owned();
        kernel.insert(fd, target.trim_end_matches(" (deleted)").to_owned());
    }
    let listed: BTreeMap<u32, String> =
        every.files.iter().map(|f| (f.fd, f.path.clone())).collect();
    assert_eq!(listed, kernel, "ls -l {}", proc_fd.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_listing_is_psutils_open_files_and_deleted_files() {
    let holder = Holder::start();
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let ours = open_files(&client, of_pid(holder.pid)).await;
    let pid = holder.pid;
    let oracle = tokio::task::spawn_blocking(move || psutil_open_files(pid))
        .await
        .unwrap();
    assert!(
        ours.files
            .iter()
            .all(|f| f.kind == pb::FileKind::File as i32)
    );
    // psutil stats the path, which a deleted file no longer has, so it
    // leaves deleted files out (psutil#382); the agent lists them, marked.
    let (deleted, kept): (Vec<_>, Vec<_>) = ours.files.iter().partition(|f| f.deleted);
    let kept: BTreeSet<(u32, String, u64, String, u32)> = kept
        .iter()
        .map(|f| (f.fd, f.path.clone(), f.position, f.mode.clone(), f.flags))
        .collect();
    assert_eq!(kept, oracle);
    assert_eq!(oracle.len(), 3, "read, append and rw: {oracle:?}");
    let deleted: Vec<(u32, &str)> = deleted.iter().map(|f| (f.fd, f.path.as_str())).collect();
    assert_eq!(
        deleted,
        [(holder.fd("gone"), holder.path("gone.log").as_str())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_glob_finds_who_holds_a_file_among_every_process() {
    let holder = Holder::start();
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let logs = format!("{}/*.log", holder.dir.path().display());
    // No pids: every process on the host is read.
    let found = open_files(
        &client,
        pb::ListOpenFilesRequest {
            path: logs.clone(),
            ..Default::default()
        },
    )
    .await;
    let holders: BTreeSet<(u32, u32)> = found.files.iter().map(|f| (f.pid, f.fd)).collect();
    assert_eq!(
        holders,
        BTreeSet::from([
            (holder.pid, holder.fd("append")),
            (holder.pid, holder.fd("gone")),
        ])
    );

    // A glob over kernel names, with every kind.
    let sockets = open_files(
        &client,
        pb::ListOpenFilesRequest {
            path: "socket:*".into(),
            all_kinds: true,
            ..of_pid(holder.pid)
        },
    )
    .await;
    let fds: BTreeSet<u32> = sockets.files.iter().map(|f| f.fd).collect();
    assert_eq!(
        fds,
        BTreeSet::from([holder.fd("sock_a"), holder.fd("sock_b")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_pids_are_named_and_bad_requests_refused() {
    let holder = Holder::start();
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let gone = missing_pid();
    let answer = open_files(
        &client,
        pb::ListOpenFilesRequest {
            pids: vec![gone, holder.pid],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        answer.process_errors,
        [pb::ProcessError {
            pid: gone,
            kind: pb::ErrorKind::NoSuchProcess as i32,
        }]
    );
    assert_eq!(answer.files.len(), 4, "{answer:?}");

    for (request, field) in [
        (of_pid(0), "0"),
        (
            pb::ListOpenFilesRequest {
                path: "/var/[log".into(),
                ..Default::default()
            },
            "/var/[log",
        ),
        (
            pb::ListOpenFilesRequest {
                path: "/".repeat(4097),
                ..Default::default()
            },
            "4097 bytes",
        ),
    ] {
        let err = client.open_files(request).await.expect_err("refused");
        assert!(
            matches!(&err, Error::InvalidArgument { message } if message.contains(field)),
            "{err:?}"
        );
    }
    // The agent keeps serving.
    assert_eq!(open_files(&client, of_pid(holder.pid)).await.files.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostscope_files_lists_like_lsof() {
    let holder = Holder::start();
    let agent = TestAgent::start().await;
    let pid = holder.pid.to_string();
    let (code, out, err) = hostscope(&agent, "client", &["files", "--pid", &pid]).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["PID", "FD", "MODE", "POS", "KIND", "PATH"]);
    let read = holder.fd("read").to_string();
    let read_path = holder.path("read.txt");
    assert!(
        lines.contains(&vec![
            pid.as_str(),
            read.as_str(),
            "r",
            "5",
            "file",
            read_path.as_str()
        ]),
        "{out}"
    );
    let gone_path = holder.path("gone.log");
    assert!(
        lines
            .iter()
            .any(|l| l.len() == 7 && l[5] == gone_path && l[6] == "(deleted)"),
        "{out}"
    );
    assert_eq!(lines.len(), 5, "a header and four files: {out}");

    // Who holds the logs, with the holder's name, as JSON.
    let logs = format!("{}/*.log", holder.dir.path().display());
    let (code, out, err) = hostscope(
        &agent,
        "client",
        &["files", "--path", &logs, "-p", "-o", "json"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let records: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let records = records.as_array().expect("an array");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    let fds: BTreeSet<u64> = records.iter().map(|r| r["fd"].as_u64().unwrap()).collect();
    assert_eq!(
        fds,
        BTreeSet::from([holder.fd("append") as u64, holder.fd("gone") as u64])
    );
    for r in records {
        assert_eq!(r["pid"].as_u64(), Some(holder.pid as u64), "{r}");
        assert_eq!(r["name"].as_str(), Some(comm.trim()), "{r}");
        assert_eq!(r["kind"], "file", "{r}");
        assert!(r["host"].is_string(), "{r}");
    }

    // Only deleted files, every kind asked for, as NDJSON.
    let args = [
        "files",
        "--pid",
        &pid,
        "--deleted",
        "--all-kinds",
        "-o",
        "ndjson",
    ];
    let (code, out, err) = hostscope(&agent, "client", &args).await;
    assert_eq!(code, 0, "{err}");
    let deleted: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(deleted.len(), 1, "{out}");
    assert_eq!(deleted[0]["path"], gone_path.as_str());
    assert_eq!(deleted[0]["deleted"], true);

    // Every descriptor as CSV, the pipe among them.
    let args = ["files", "--pid", &pid, "--all-kinds", "-o", "csv"];
    let (code, out, err) = hostscope(&agent, "client", &args).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("host,pid,fd,path,position,mode,flags,kind,deleted\n"),
        "{out}"
    );
    assert!(out.lines().any(|l| l.contains(",pipe,")), "{out}");

    // A pid that does not exist is said on stderr; the others are listed.
    let missing = missing_pid().to_string();
    let both = format!("{missing},{pid}");
    let (code, out, err) = hostscope(&agent, "client", &["files", "--pid", &both]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, format!("no such process: pid {missing}\n"));
    assert_eq!(out.lines().count(), 5, "{out}");

    let (code, _, err) = hostscope(&agent, "client", &["files", "--path", "[x"]).await;
    assert_eq!(code, 1, "a bad glob is refused before dialling");
    assert!(err.contains("is no valid glob"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proc_shows_uss_open_files_and_sockets_of_its_process() {
    let holder = Holder::start();
    let agent = TestAgent::start().await;
    let pid = holder.pid.to_string();
    let (code, out, err) = hostscope(&agent, "client", &["proc", &pid]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("memory_full_info: uss=") && l.contains(" pss=")),
        "{out}"
    );
    // The sections in order, each a table indented under its name.
    let section = |name: &str| -> Vec<Vec<String>> {
        out.lines()
            .skip_while(|l| *l != format!("{name}:"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .collect()
    };
    let files = section("open_files");
    assert_eq!(files[0], ["FD", "MODE", "POS", "KIND", "PATH"], "{out}");
    let read = [
        holder.fd("read").to_string(),
        "r".to_owned(),
        "5".to_owned(),
        "file".to_owned(),
        holder.path("read.txt"),
    ];
    assert!(files.contains(&read.to_vec()), "{out}");
    let pipe = holder.fd("pipe_r").to_string();
    assert!(
        files.iter().any(|l| l[0] == pipe && l[3] == "pipe"),
        "every kind of descriptor: {out}"
    );
    // The socket pair: two unix sockets, unnamed, not connected by name.
    let sockets = section("connections");
    assert_eq!(sockets[0][0], "Proto", "{out}");
    assert_eq!(
        sockets.iter().filter(|l| l[0] == "unix").count(),
        2,
        "{out}"
    );
    // --fields shows just those fields.
    let (code, out, err) = hostscope(&agent, "client", &["proc", &pid, "--fields", "name"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("open_files"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proc_and_ps_show_memory_maps_per_mapping_when_asked() {
    let holder = Holder::start();
    let agent = TestAgent::start().await;
    let pid = holder.pid.to_string();
    // Each memory map's address ("" where it has none) in the record of
    // `args`, which must succeed.
    let addrs = |args: Vec<&'static str>| {
        let (agent, pid) = (&agent, pid.clone());
        async move {
            let args: Vec<&str> = args
                .into_iter()
                .map(|a| if a == "PID" { &pid } else { a })
                .collect();
            let (code, out, err) = hostscope(agent, "client", &args).await;
            assert_eq!(code, 0, "{args:?}: {err}");
            let record: serde_json::Value = out
                .lines()
                .find_map(|l| serde_json::from_str(l).ok())
                .unwrap_or_else(|| panic!("a JSON record: {out}"));
            let maps = record["memory_maps"]
                .as_array()
                .unwrap_or_else(|| panic!("memory_maps: {out}"));
            let addrs: Vec<String> = maps
                .iter()
                .map(|m| m["addr"].as_str().unwrap_or_default().to_owned())
                .collect();
            addrs
        }
    };
    let grouped = addrs(vec![
        "proc",
        "PID",
        "--fields",
        "memory_maps",
        "-o",
        "ndjson",
    ])
    .await;
    assert!(grouped.iter().all(String::is_empty), "{grouped:?}");

    // --ungrouped-maps adds memory_maps to proc's fields; ps takes it with
    // --fields. Each mapping has its address range.
    let flags = ["--fields", "name", "--ungrouped-maps", "-o", "ndjson"];
    for command in [vec!["proc", "PID"], vec!["ps", "--pid", "PID"]] {
        let args = command.into_iter().chain(flags).collect();
        let ungrouped = addrs(args).await;
        assert!(ungrouped.len() > grouped.len(), "{ungrouped:?}");
        assert!(ungrouped.iter().all(|a| a.contains('-')), "{ungrouped:?}");
    }

    // ps asks for the fields it is to show.
    let (code, _, err) = hostscope(&agent, "client", &["ps", "--ungrouped-maps"]).await;
    assert_eq!(code, 1, "a usage mistake: {err}");
    assert!(err.contains("--fields"), "{err}");
}
