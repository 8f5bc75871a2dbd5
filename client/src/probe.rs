//! A second look at a connection that failed without saying why.
//!
//! When an agent refuses a client certificate under TLS 1.3, the client's
//! handshake has already finished; the agent's alert races with HTTP/2's
//! own reading and writing, and the client often sees only "connection
//! closed" or "broken pipe". A plaintext client talking to a TLS agent fares
//! no better. So when a transport failure's text names no cause, the
//! client repeats the conversation once, by hand, and reads the agent's
//! answer to the end: a TLS alert, a TLS record where HTTP/2 was expected,
//! or a refused connection. Only failures are probed; a working agent
//! never sees the extra connection.

use std::{
    io::{self, Read, Write},
    net::{TcpStream, ToSocketAddrs},
    sync::Arc,
    time::Duration,
};

use rustls::{ClientConfig, ClientConnection, pki_types::ServerName};

use crate::{
    Error,
    error::{CallContext, Peer, classify},
};

/// How long the probe waits to connect, and for each answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The HTTP/2 client preface followed by an empty SETTINGS frame: what an
/// HTTP/2 client says first, and what an HTTP/2 server answers with its own
/// SETTINGS.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// The HTTP/2 frame type of SETTINGS.
const H2_SETTINGS: u8 = 0x04;

/// How to reach the agent again, as the failed connection did.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    /// `host:port` (IPv6 in brackets), as `ToSocketAddrs` takes it.
    authority: String,
    /// The TLS settings of the failed connection; `None` for plaintext.
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

/// What the repeated conversation showed.
enum Outcome {
    /// The agent answered as it should: the failure lies elsewhere.
    Answered,
    /// The conversation failed, with these errors (most telling last).
    Failed(Vec<io::Error>),
    /// What answered speaks something other than this client.
    Speaks(Peer),
}

impl Probe {
    /// A probe for `authority`, speaking TLS with `tls` when given.
    pub(crate) fn new(
        authority: String,
        tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    ) -> Probe {
        Probe { authority, tls }
    }

    /// `err`, or a clearer error when `err` is a transport failure whose
    /// text names no cause, or a disagreement about TLS whose other side
    /// is not known yet, and the probe finds more.
    pub(crate) async fn explain(&self, err: Error, ctx: &CallContext) -> Error {
        let vague = matches!(
            err,
            Error::Transport { .. }
                | Error::NotTls {
                    peer: Peer::Other,
                    ..
                }
        );
        if !vague {
            return err;
        }
        let (probe, look_ctx) = (self.clone(), ctx.clone());
        match tokio::task::spawn_blocking(move || probe.look(&look_ctx)).await {
            Ok(Some(clearer)) => clearer,
            Ok(None) | Err(_) => err,
        }
    }

    /// Repeats the conversation and says what went wrong, when it finds
    /// out. Blocking: run it off the async threads.
    fn look(&self, ctx: &CallContext) -> Option<Error> {
        let not_tls = |peer| Error::NotTls {
            endpoint: ctx.endpoint.clone(),
            peer,
        };
        match self.attempt() {
            Outcome::Answered => None,
            Outcome::Speaks(peer) => Some(not_tls(peer)),
            Outcome::Failed(errors) => match errors.iter().rev().find_map(|e| classify(e, ctx)) {
                // A TLS handshake that met no TLS: look at what did answer.
                Some(Error::NotTls {
                    peer: Peer::Other, ..
                }) => Some(not_tls(match self.sniff() {
                    Outcome::Speaks(peer) => peer,
                    Outcome::Answered => Peer::PlaintextHttp2,
                    Outcome::Failed(_) => Peer::Other,
                })),
                clearer => clearer,
            },
        }
    }

    /// Connects, says what an HTTP/2 client says first, and reads the
    /// answer. Blocking: run it off the async threads.
    fn attempt(&self) -> Outcome {
        let mut tcp = match self.connect() {
            Ok(tcp) => tcp,
            Err(outcome) => return outcome,
        };
        match &self.tls {
            Some((config, name)) => tls_attempt(&mut tcp, config.clone(), name.clone()),
            None => plaintext_attempt(&mut tcp),
        }
    }

    /// What the endpoint speaks, told by its answer to a plaintext HTTP/2
    /// preface; [`Outcome::Answered`] when that is HTTP/2.
    fn sniff(&self) -> Outcome {
        match self.connect() {
            Ok(mut tcp) => plaintext_attempt(&mut tcp),
            Err(outcome) => outcome,
        }
    }

    /// A TCP connection with timeouts, or the outcome that stops the probe.
    fn connect(&self) -> Result<TcpStream, Outcome> {
        let addr = match self.authority.to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(addr)) => addr,
            // The failed connection's own error says as much: nothing
            // clearer is found here.
            Ok(None) | Err(_) => return Err(Outcome::Answered),
        };
        let tcp = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)
            .map_err(|e| Outcome::Failed(vec![e]))?;
        if tcp.set_read_timeout(Some(PROBE_TIMEOUT)).is_err()
            || tcp.set_write_timeout(Some(PROBE_TIMEOUT)).is_err()
        {
            return Err(Outcome::Answered);
        }
        Ok(tcp)
    }
}

/// A TLS handshake, the preface, and a read: an agent that refuses this
/// client's certificate answers the read with its alert.
fn tls_attempt(
    tcp: &mut TcpStream,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
) -> Outcome {
    let Ok(mut conn) = ClientConnection::new(config, name) else {
        return Outcome::Answered;
    };
    let mut stream = rustls::Stream::new(&mut conn, tcp);
    // A failed write may still leave the agent's alert to be read, and the
    // alert says more than the write's broken pipe: read either way.
    let written = stream.write_all(H2_PREFACE).and_then(|()| stream.flush());
    let mut answer = [0u8; 64];
    let read = stream.read(&mut answer);
    let mut errors = Vec::new();
    for result in [written.map(drop), read.map(drop)] {
        if let Err(e) = result
            && !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            )
        {
            errors.push(e);
        }
    }
    match errors.is_empty() {
        true => Outcome::Answered,
        false => Outcome::Failed(errors),
    }
}

/// The preface in plaintext: an HTTP/2 server answers with a SETTINGS
/// frame; a TLS server with an alert record, or by hanging up; an HTTP/1
/// server with a status line.
fn plaintext_attempt(tcp: &mut TcpStream) -> Outcome {
    if tcp.write_all(H2_PREFACE).is_err() {
        return Outcome::Speaks(Peer::Other);
    }
    // Enough for a frame header (3 bytes of length, then the type), a TLS
    // record header, or "HTTP/1.1".
    let mut answer = [0u8; 9];
    let mut read = 0;
    while read < answer.len() {
        match tcp.read(&mut answer[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e)
                if read == 0
                    && matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
            {
                // Silence is what an HTTP/2 server waiting for more gives.
                return Outcome::Answered;
            }
            Err(_) => break,
        }
    }
    match peer_of(&answer[..read]) {
        None => Outcome::Answered,
        Some(peer) => Outcome::Speaks(peer),
    }
}

/// What the first bytes a server sent say it speaks; `None` for HTTP/2.
fn peer_of(answer: &[u8]) -> Option<Peer> {
    match answer {
        [_, _, _, H2_SETTINGS, ..] if answer.len() == 9 => None,
        // A TLS record: handshake (22) or alert (21), version 3.x.
        [21 | 22, 3, ..] => Some(Peer::Tls),
        _ if answer.starts_with(b"HTTP/") => Some(Peer::Http1),
        _ => Some(Peer::Other),
    }
}

#[cfg(test)]
mod tests {
    use std::{net::TcpListener, thread};

    use rustls::{
        RootCertStore, ServerConfig, ServerConnection,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        server::WebPkiClientVerifier,
    };

    use super::*;
    use crate::{TlsConfig, pki};

    /// A TLS server that demands client certificates from the CA in `dir`
    /// and answers every connection by handshaking until it fails.
    fn mtls_server(dir: &std::path::Path) -> String {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(dir.join("ca.pem")).expect("ca"))
            .expect("root");
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .expect("verifier");
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from_pem_file(dir.join("agent.pem")).expect("cert")],
                PrivateKeyDer::from_pem_file(dir.join("agent-key.pem")).expect("key"),
            )
            .expect("server config");
        let config = Arc::new(config);
        serve(move |mut tcp| {
            let Ok(mut conn) = ServerConnection::new(config.clone()) else {
                return;
            };
            // complete_io sends the alert when the handshake fails.
            while conn.is_handshaking() {
                if conn.complete_io(&mut tcp).is_err() {
                    return;
                }
            }
        })
    }

    /// A server that answers any preface with an HTTP/2 SETTINGS frame.
    fn h2c_server() -> String {
        serve(|mut tcp| {
            let mut preface = [0u8; 24];
            if tcp.read_exact(&mut preface).is_ok() {
                let _ = tcp.write_all(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00");
            }
        })
    }

    fn serve(handle: impl Fn(TcpStream) + Send + 'static) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                handle(tcp);
            }
        });
        addr
    }

    fn ctx(endpoint: &str, tls: bool) -> CallContext {
        CallContext {
            endpoint: endpoint.to_owned(),
            server_name: tls.then(|| "127.0.0.1".to_owned()),
        }
    }

    fn vague(endpoint: &str) -> Error {
        Error::Transport {
            endpoint: endpoint.to_owned(),
            message: "operation was canceled: connection closed".to_owned(),
        }
    }

    fn fleet() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        pki::init(dir.path(), false).expect("init");
        pki::issue(
            dir.path(),
            "agent",
            pki::CertRole::Server,
            &["127.0.0.1".to_owned()],
        )
        .expect("agent");
        dir
    }

    fn tls_probe(endpoint: &str, dir: &std::path::Path) -> Probe {
        let tls = TlsConfig::from_files(&dir.join("ca.pem"), None, None).expect("tls");
        let name = ServerName::try_from("127.0.0.1").expect("name");
        Probe::new(
            endpoint.to_owned(),
            Some((tls.rustls_config().expect("config"), name)),
        )
    }

    #[tokio::test]
    async fn a_refused_client_certificate_is_named() {
        let dir = fleet();
        let endpoint = mtls_server(dir.path());
        let err = tls_probe(&endpoint, dir.path())
            .explain(vague(&endpoint), &ctx(&endpoint, true))
            .await;
        assert!(matches!(err, Error::NoClientCertificate { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn an_expired_client_certificate_is_named_by_the_agents_alert() {
        use rcgen::{CertificateParams, Issuer, KeyPair, date_time_ymd};
        let dir = fleet();
        let endpoint = mtls_server(dir.path());
        let ca_key = KeyPair::from_pem(
            &std::fs::read_to_string(dir.path().join("ca-key.pem")).expect("key"),
        )
        .expect("CA key");
        let issuer = Issuer::new(pki::ca_params(&ca_key), ca_key);
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["alice".to_owned()]).expect("params");
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2021, 1, 1);
        let cert = params.signed_by(&key, &issuer).expect("sign");
        // Built by hand: the client's own checks refuse the certificate
        // before dialling, and this is the agent's verdict on it.
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(dir.path().join("ca.pem")).expect("ca"))
            .expect("root");
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_client_auth_cert(
                    vec![cert.der().clone()],
                    PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).expect("key"),
                )
                .expect("client config");
        let name = ServerName::try_from("127.0.0.1").expect("name");
        let err = Probe::new(endpoint.clone(), Some((Arc::new(config), name)))
            .explain(vague(&endpoint), &ctx(&endpoint, true))
            .await;
        assert!(
            matches!(
                &err,
                Error::TlsRefused {
                    alert: crate::TlsAlert::CertificateExpired,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.label(), "certificate-expired");
        assert!(!err.is_retryable());
    }

    /// What a plaintext probe makes of a vague failure at `endpoint`.
    async fn plaintext_verdict(endpoint: &str) -> Error {
        Probe::new(endpoint.to_owned(), None)
            .explain(vague(endpoint), &ctx(endpoint, false))
            .await
    }

    #[tokio::test]
    async fn plaintext_to_a_tls_server_is_not_tls() {
        let dir = fleet();
        let err = plaintext_verdict(&mtls_server(dir.path())).await;
        assert_eq!(peer(&err), Some(Peer::Tls), "{err:?}");
        assert!(err.to_string().contains("drop --plaintext"), "{err}");
    }

    /// A server that answers anything with an HTTP/1.1 error, as a web
    /// server or proxy on the agent's port would.
    fn http1_server() -> String {
        serve(|mut tcp| {
            let mut request = [0u8; 24];
            if tcp.read_exact(&mut request).is_ok() {
                let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            }
        })
    }

    /// Whom a disagreement about TLS found at the other end.
    fn peer(err: &Error) -> Option<Peer> {
        match err {
            Error::NotTls { peer, .. } => Some(*peer),
            _ => None,
        }
    }

    /// What a TLS probe makes of a TLS handshake at `endpoint` that met
    /// no TLS.
    async fn tls_verdict(endpoint: &str) -> Error {
        let dir = fleet();
        let corrupt = Error::NotTls {
            endpoint: endpoint.to_owned(),
            peer: Peer::Other,
        };
        tls_probe(endpoint, dir.path())
            .explain(corrupt, &ctx(endpoint, true))
            .await
    }

    #[tokio::test]
    async fn an_http1_server_is_no_agent_for_either_kind_of_client() {
        let endpoint = http1_server();
        let err = plaintext_verdict(&endpoint).await;
        assert_eq!(peer(&err), Some(Peer::Http1), "{err:?}");
        assert!(err.to_string().contains("no hostscope agent"), "{err}");
        let err = tls_verdict(&endpoint).await;
        assert_eq!(peer(&err), Some(Peer::Http1), "{err:?}");
    }

    #[tokio::test]
    async fn a_tls_client_at_a_plaintext_agent_is_told_to_use_plaintext() {
        let endpoint = h2c_server();
        let err = tls_verdict(&endpoint).await;
        assert_eq!(peer(&err), Some(Peer::PlaintextHttp2), "{err:?}");
        assert!(err.to_string().contains("pass --plaintext"), "{err}");
    }

    #[test]
    fn first_bytes_tell_what_a_server_speaks() {
        assert_eq!(peer_of(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"), None);
        assert_eq!(peer_of(b"\x15\x03\x03\x00\x02\x02\x32"), Some(Peer::Tls));
        assert_eq!(peer_of(b"HTTP/1.0 "), Some(Peer::Http1));
        assert_eq!(peer_of(b""), Some(Peer::Other));
        assert_eq!(peer_of(b"SSH-2.0-x"), Some(Peer::Other));
    }

    #[tokio::test]
    async fn a_working_agent_leaves_the_error_alone() {
        let endpoint = h2c_server();
        let err = plaintext_verdict(&endpoint).await;
        assert!(matches!(err, Error::Transport { .. }), "{err:?}");
        // Only vague transport failures are probed.
        let not_found = Error::NoSuchProcess { pid: Some(1) };
        let err = Probe::new(endpoint.clone(), None)
            .explain(not_found, &ctx(&endpoint, false))
            .await;
        assert!(matches!(err, Error::NoSuchProcess { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_closed_port_is_connection_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = listener.local_addr().expect("addr").to_string();
        drop(listener);
        let err = plaintext_verdict(&endpoint).await;
        assert!(matches!(err, Error::ConnectionRefused { .. }), "{err:?}");
    }
}
