//! What the agent's configuration withholds from readers: refused whole
//! listings, WITHHELD field errors, and GetHost saying so; operators see
//! everything.

use hostscope_agent::{
    authz::{DataClass, Policy},
    service::Options,
};
use hostscope_client::{Error, proto as pb};
use hostscope_integration::TestAgent;
use tonic::Code;
use tonic_types::StatusExt;

/// An agent that serves environments but withholds every class from
/// readers; the certificate `operator` holds the operator role.
async fn guarded_agent() -> TestAgent {
    TestAgent::start_with(Options {
        environ: true,
        policy: Policy {
            operators: vec!["operator".to_owned()],
            withheld: vec![
                DataClass::Connections,
                DataClass::OpenFiles,
                DataClass::Environ,
                DataClass::MemoryMaps,
            ],
            ..Policy::default()
        },
        ..Options::default()
    })
    .await
}

/// The status and ErrorInfo reason of a refused listing.
fn refusal(status: &tonic::Status) -> (Code, String) {
    let reason = status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default();
    (status.code(), reason)
}

#[tokio::test(flavor = "multi_thread")]
async fn readers_are_refused_withheld_classes_and_told_so() {
    let agent = guarded_agent().await;
    let reader = agent.client().await;

    let host = reader.host().await.unwrap();
    assert_eq!(
        host.withheld,
        ["connections", "open_files", "environ", "memory_maps"]
    );
    assert!(
        !host
            .process_fields
            .contains(&(pb::ProcessField::Environ as i32))
    );

    let mut raw = pb::host_inspector_client::HostInspectorClient::new(reader.channel());
    let status = raw
        .list_connections(pb::ListConnectionsRequest::default())
        .await
        .expect_err("connections are withheld");
    assert_eq!(
        refusal(&status),
        (Code::PermissionDenied, "WITHHELD".to_owned()),
        "{status:?}"
    );
    assert!(status.message().contains("connections"), "{status:?}");
    let status = raw
        .list_open_files(pb::ListOpenFilesRequest::default())
        .await
        .expect_err("open files are withheld");
    assert_eq!(
        refusal(&status),
        (Code::PermissionDenied, "WITHHELD".to_owned()),
        "{status:?}"
    );

    // Asked for by name, a withheld field is a field error; in a listing
    // of every field it is left out without one.
    let me = std::process::id();
    let p = reader
        .process(me, &[pb::ProcessField::Environ, pb::ProcessField::Name])
        .await
        .unwrap();
    assert!(p.name().is_ok());
    assert!(
        matches!(p.environ(), Err(Error::Withheld { .. })),
        "{:?}",
        p.proto()
    );
    let maps = reader
        .process(me, &[pb::ProcessField::MemoryMaps])
        .await
        .unwrap();
    assert!(
        maps.proto()
            .field_errors
            .iter()
            .any(|e| e.field == pb::ProcessField::MemoryMaps as i32
                && e.kind == pb::ErrorKind::Withheld as i32),
        "{:?}",
        maps.proto()
    );
    let all = reader.process(me, &[]).await.unwrap();
    assert!(all.proto().environ.is_empty());
    assert!(
        all.proto()
            .field_errors
            .iter()
            .all(|e| e.kind != pb::ErrorKind::Withheld as i32)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_see_what_readers_may_not() {
    let agent = guarded_agent().await;
    let operator = agent.operator().await;

    let host = operator.host().await.unwrap();
    assert!(host.withheld.is_empty(), "{:?}", host.withheld);
    assert!(
        host.process_fields
            .contains(&(pb::ProcessField::Environ as i32))
    );
    let p = operator
        .process(std::process::id(), &[pb::ProcessField::Environ])
        .await
        .unwrap();
    assert!(p.environ().unwrap().contains_key("PATH"), "{:?}", p.proto());

    let mut raw = pb::host_inspector_client::HostInspectorClient::new(operator.channel());
    if let Err(status) = raw
        .list_connections(pb::ListConnectionsRequest::default())
        .await
    {
        assert_ne!(refusal(&status).1, "WITHHELD", "{status:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn by_default_only_environments_are_withheld() {
    let agent = TestAgent::start().await;
    let host = agent.client().await.host().await.unwrap();
    assert_eq!(host.withheld, ["environ"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_says_what_is_withheld_and_fails_the_host_that_withholds() {
    let agent = guarded_agent().await;
    let (code, out, err) = crate::reap::hostscope(&agent, "client", &["host"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l == "withheld: connections, open_files, environ, memory_maps"),
        "{out}"
    );
    for command in ["sockets", "files"] {
        let (code, out, err) = crate::reap::hostscope(&agent, "client", &[command]).await;
        assert_eq!(code, 2, "{command}: {out}{err}");
        assert!(err.contains("withheld"), "{command}: {err}");
    }
}
