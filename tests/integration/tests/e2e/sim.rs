//! The simulated fleet of `cargo xtask fleet-sim`: what it starts is what
//! its inventory says.

use std::{collections::HashMap, time::Duration};

use hostscope_client::{Client, Error, TlsConfig};
use hostscope_integration::sim::{FleetSim, Kind, SimHost, SimSpec};
use tokio::{io::AsyncReadExt, net::TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_fleet_has_every_kind_of_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = FleetSim::start(SimSpec {
        agents: 6,
        closed: 1,
        silent: 1,
        wrong_ca: 1,
        dir: dir.path().join("fleet"),
    })
    .await
    .expect("start the fleet");

    // The inventory parses as TOML and names every host with its kind.
    let text = std::fs::read_to_string(sim.inventory()).expect("inventory");
    let inventory: toml::Table = toml::from_str(&text).expect("TOML");
    let hosts = inventory["hosts"].as_array().expect("[[hosts]]");
    assert_eq!(hosts.len(), 8);
    let mut kinds: HashMap<&str, usize> = HashMap::new();
    for (host, sim_host) in hosts.iter().zip(sim.hosts()) {
        assert_eq!(host["name"].as_str(), Some(sim_host.name.as_str()));
        assert_eq!(host["server_name"].as_str(), Some(sim_host.name.as_str()));
        let address = sim_host.addr.to_string();
        assert_eq!(host["address"].as_str(), Some(address.as_str()));
        let kind = host["labels"]["kind"].as_str().expect("kind label");
        assert_eq!(kind, sim_host.kind.as_str());
        *kinds.entry(kind).or_default() += 1;
    }
    let expected = [("good", 5), ("closed", 1), ("silent", 1), ("wrong-ca", 1)];
    assert_eq!(kinds, HashMap::from(expected));

    let pki = sim.pki_dir();
    let tls = |name: &str| TlsConfig {
        server_name: Some(name.to_owned()),
        ..TlsConfig::from_files(
            &pki.join("ca.pem"),
            Some(&pki.join("client.pem")),
            Some(&pki.join("client-key.pem")),
        )
        .expect("client TLS")
    };
    let host_of = |kind: Kind| {
        let host = sim.hosts().iter().find(|h| h.kind == kind);
        host.expect("a host of that kind").clone()
    };
    let query = |host: SimHost| {
        let tls = tls(&host.name);
        async move {
            let client = Client::connect(&host.addr.to_string(), Some(tls)).await?;
            client.host().await
        }
    };

    // Each good agent answers, for its own name.
    for host in sim.hosts().iter().filter(|h| h.kind == Kind::Good) {
        let answer = query(host.clone()).await;
        assert!(answer.is_ok(), "{}: {answer:?}", host.name);
    }
    let err = query(host_of(Kind::Closed)).await.expect_err("closed");
    assert!(matches!(err, Error::ConnectionRefused { .. }), "{err:?}");
    let err = query(host_of(Kind::WrongCa)).await.expect_err("wrong CA");
    assert!(matches!(err, Error::UnknownCa { .. }), "{err:?}");

    // The silent host accepts TCP and sends nothing.
    let mut tcp = TcpStream::connect(host_of(Kind::Silent).addr)
        .await
        .expect("the silent host accepts");
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(100), tcp.read(&mut buf)).await;
    assert!(read.is_err(), "the silent host answered: {read:?}");

    sim.stop().await;
}

#[tokio::test]
async fn a_directory_with_other_files_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.pem"), "precious").expect("write");
    let spec = SimSpec {
        agents: 1,
        closed: 0,
        silent: 0,
        wrong_ca: 0,
        dir: dir.path().to_owned(),
    };
    let err = FleetSim::start(spec).await.err().expect("refused");
    assert!(err.to_string().contains("not empty"), "{err:#}");
    let kept = std::fs::read_to_string(dir.path().join("ca.pem")).expect("read");
    assert_eq!(kept, "precious");
}
