//! Client certificates that cannot work, against a real agent over real
//! mutual TLS: refused by the client before it dials, with the file and the
//! date, and never retried.

use std::ffi::OsString;

use hostscope_client::{Error, TlsConfig};
use hostscope_integration::{CliRun, TestAgent, hostscope_async};
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, date_time_ymd};

/// Makes a client certificate named `name`, valid from `from` to `until`
/// (years), and writes it beside `agent`'s fleet files as NAME.pem and
/// NAME-key.pem. It is self-signed: the client refuses it for its dates
/// before it would learn whether the agent trusts its issuer.
fn client_certificate(agent: &TestAgent, name: &str, from: i32, until: i32) {
    let dir = agent.pki.dir();
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = date_time_ymd(from, 1, 1);
    params.not_after = date_time_ymd(until, 1, 1);
    let cert = params.self_signed(&key).expect("sign");
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write cert");
    std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).expect("write key");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_or_future_client_certificate_is_refused_before_dialling() {
    let agent = TestAgent::start().await;
    let dir = agent.pki.dir();
    client_certificate(&agent, "expired", 2020, 2021);
    client_certificate(&agent, "future", 2090, 2091);
    for (name, says) in [("expired", "expired on"), ("future", "is not valid yet")] {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}-key.pem"));
        let e = TlsConfig::from_files(&dir.join("ca.pem"), Some(&cert), Some(&key))
            .expect_err("refused when read");
        assert!(matches!(e, Error::Tls { .. }), "{name}: {e:?}");
        assert!(!e.is_retryable(), "{name}");

        // The command line: a local error (exit 1), naming the file.
        let mut args: Vec<OsString> = vec!["--host".into(), agent.endpoint().into()];
        for (flag, path) in [
            ("--ca", dir.join("ca.pem")),
            ("--cert", cert),
            ("--key", key),
        ] {
            args.push(flag.into());
            args.push(path.into());
        }
        args.push("host".into());
        let CliRun { code, out, err } = hostscope_async(args, String::new()).await;
        assert_eq!((code, out.as_str()), (1, ""), "{name}: {err}");
        assert!(
            err.contains(&format!("{name}.pem")) && err.contains(says),
            "{name}: {err}"
        );
    }
}
