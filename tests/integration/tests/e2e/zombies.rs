//! Zombie sweeps: FindZombies, and SignalProcess guarded by role, protected
//! pids and create_time, every request audited.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use hostscope_client::{Error, proto as pb};
use hostscope_integration::{TestAgent, Zombie, child::ChildGroup, missing_pid};

#[tokio::test(flavor = "multi_thread")]
async fn find_zombies_groups_a_real_zombie_under_its_parent() {
    let agent = TestAgent::start().await;
    let client = agent.client().await;
    let zombie = Zombie::spawn();
    let me = std::process::id();

    let found = client.find_zombies().await.unwrap();
    let group = found
        .parents
        .iter()
        .find(|g| g.ppid == me)
        .expect("this process holds a zombie");
    assert!(!group.parent_is_init);
    let z = group
        .zombies
        .iter()
        .find(|z| z.pid == zombie.pid)
        .expect("the zombie is listed");
    assert_eq!(z.ppid, me);
    assert!(z.create_time.is_some_and(|t| t > 0.0) && z.zombie_since.is_none());
    let parent = group.parent.as_ref().expect("the parent is described");
    assert_eq!(parent.pid, me);
    let args: Vec<String> = std::env::args().collect();
    assert_eq!(parent.cmdline, args);
    assert!(parent.create_time.is_some() && parent.username.is_some());
    assert!(found.total as usize >= group.zombies.len());
}

fn audit_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn signals_need_the_operator_role_a_live_process_and_its_create_time() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let agent = TestAgent::start_with_operator(&audit).await;
    let reader = agent.client().await;
    let operator = agent.operator().await;
    let me = std::process::id();

    let mut sleeper =
        ChildGroup::spawn(Command::new("sleep").arg("60").stdin(Stdio::null())).unwrap();
    let pid = sleeper.id();
    let created = operator
        .process(pid, &[pb::ProcessField::CreateTime])
        .await
        .unwrap()
        .create_time()
        .unwrap();

    // A reader may look, not signal.
    let err = reader.signal(pid, "TERM", Some(created)).await.unwrap_err();
    assert!(matches!(err, Error::OperatorRequired { .. }), "{err:?}");
    assert!(err.to_string().contains("client"), "{err}");

    // Never pid 0, pid 1 or the agent itself (here, this test process).
    for protected in [0, 1, me] {
        let err = operator.signal(protected, "KILL", None).await.unwrap_err();
        assert!(
            matches!(err, Error::ProtectedProcess { pid, .. } if pid == protected),
            "{err:?}"
        );
    }

    // A zombie cannot be signalled: its parent can act.
    let zombie = Zombie::spawn();
    let err = operator.signal(zombie.pid, "TERM", None).await.unwrap_err();
    assert!(
        matches!(err, Error::ZombieProcess { pid, ppid: Some(ppid), .. } if pid == zombie.pid && ppid == me),
        "{err:?}"
    );
    assert!(err.is_not_found());

    // A stale create_time: the pid is taken to belong to another process.
    let err = operator
        .signal(pid, "TERM", Some(created - 100.0))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::PidReused { pid: p, .. } if p == pid),
        "{err:?}"
    );
    assert!(sleeper.try_wait().unwrap().is_none(), "nothing was sent");

    let err = operator.signal(pid, "SEGV", None).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");

    let err = operator
        .signal(missing_pid(), "TERM", None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoSuchProcess { .. }), "{err:?}");

    // The right create_time: the signal is sent.
    let sent = operator
        .signal(pid, "sigterm", Some(created))
        .await
        .unwrap();
    assert_eq!(
        (sent.pid, sent.signal.as_str(), sent.signal_number),
        (pid, "TERM", libc::SIGTERM)
    );
    let status = sleeper.wait(Duration::from_secs(30));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM));

    // Every request, allowed or refused, left one audit line.
    let lines = audit_lines(&audit);
    let outcomes: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["outcome"].as_str().unwrap(),
                l["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("refused", "OPERATOR_REQUIRED"),
            ("refused", "PROTECTED_PROCESS"),
            ("refused", "PROTECTED_PROCESS"),
            ("refused", "PROTECTED_PROCESS"),
            ("refused", "ZOMBIE_PROCESS"),
            ("refused", "PID_REUSED"),
            ("refused", "INVALID_ARGUMENT"),
            ("refused", "NO_SUCH_PROCESS"),
            ("sent", ""),
        ]
    );
    assert_eq!(lines[0]["client"], "client");
    assert_eq!(lines[8]["client"], "operator");
    assert_eq!(lines[8]["pid"], pid);
    assert_eq!(lines[8]["signal"], "sigterm");
    assert!(lines.iter().all(|l| {
        l["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:"))
    }));
}
