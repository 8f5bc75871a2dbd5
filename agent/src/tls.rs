//! The agent's TLS material: its certificate and key, and the fleet CA that
//! signs client certificates, read from PEM files and replaced without a
//! restart.
//!
//! The server keeps one `rustls::ServerConfig` for its whole life. Its
//! certificate resolver and its client verifier both read the material
//! loaded last, so a reload changes what every new handshake presents and
//! trusts, while connections already established keep the session they
//! negotiated. New files are checked whole (PEM parses, the key matches the
//! certificate, the CA makes a verifier) before they replace anything: a bad
//! or half-written file is refused, the refusal is logged with the reason,
//! and the material in use stays.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use rustls::{
    DigitallySignedStruct, DistinguishedName, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject},
    server::{
        ClientHello, ResolvesServerCert, WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
    sign::CertifiedKey,
};
use x509_parser::prelude::FromDer;

/// How often the agent looks at its certificate, key and CA files for a
/// change. Reading three small files this often costs nothing measurable,
/// and it picks up a rotated Kubernetes secret within seconds of the
/// kubelet writing it.
pub const RELOAD_POLL: Duration = Duration::from_secs(10);

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file was read but holds no usable PEM of the kind expected.
    #[error("{}: {message}", path.display())]
    Pem { path: PathBuf, message: String },
    /// The pieces do not make a TLS configuration together.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// The certificate and key the agent presents, and the fleet CA its clients'
/// certificates must chain to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The agent's certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The agent's private key (PEM: PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// The CA certificates that client certificates must chain to (PEM).
    pub client_ca: PathBuf,
}

impl TlsFiles {
    /// A rustls server configuration that requires a client certificate
    /// signed by the client CA, speaking HTTP/2 only. It serves the files as
    /// they are now; [`TlsFiles::load`] gives one that can be reloaded.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, Error> {
        Ok(self.load()?.server_config())
    }

    /// Reads and checks the files, for a server configuration that follows
    /// [`ReloadableTls::reload`].
    pub fn load(&self) -> Result<ReloadableTls, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let contents = self.read()?;
        let material = Material::build(self, &contents, &provider)?;
        let current = Arc::new(Current {
            material: RwLock::new(Arc::new(material)),
        });
        let verifier = Arc::new(CurrentClientCa(Arc::clone(&current)));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(CurrentCert(Arc::clone(&current))));
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(ReloadableTls {
            files: self.clone(),
            provider,
            config: Arc::new(config),
            current,
            last_seen: RwLock::new(contents),
        })
    }

    fn read(&self) -> Result<Contents, Error> {
        Ok(Contents {
            cert: read(&self.cert)?,
            key: read(&self.key)?,
            client_ca: read(&self.client_ca)?,
        })
    }
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reloaded {
    /// The files hold what is already served.
    Unchanged,
    /// New handshakes now use the new files.
    Replaced {
        /// The new certificate's subject, for the log.
        subject: String,
        /// When the new certificate expires (RFC 2822), for the log.
        not_after: String,
    },
}

/// A server configuration whose certificate and client CA can be replaced
/// while the server runs.
#[derive(Debug)]
pub struct ReloadableTls {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    config: Arc<rustls::ServerConfig>,
    current: Arc<Current>,
    /// The file contents last looked at, loaded or refused, so that a poll
    /// logs a refused file once and not on every tick.
    last_seen: RwLock<Contents>,
}

impl ReloadableTls {
    /// The configuration to serve with: the same value for the agent's whole
    /// life, presenting and trusting whatever was loaded last.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.config)
    }

    /// The files this configuration is read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again and, if they changed and make a usable
    /// configuration, serves them to every new handshake. On error the
    /// material in use stays.
    pub fn reload(&self) -> Result<Reloaded, Error> {
        let contents = self.files.read()?;
        *self
            .last_seen
            .write()
            .unwrap_or_else(PoisonError::into_inner) = contents.clone();
        if self.current.get().contents == contents {
            return Ok(Reloaded::Unchanged);
        }
        let material = Material::build(&self.files, &contents, &self.provider)?;
        let described = describe(&material.key);
        *self
            .current
            .material
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(material);
        Ok(described)
    }

    /// [`ReloadableTls::reload`], logged: a new certificate at INFO, a
    /// refused file at ERROR with the reason (the old material stays).
    /// `cause` says what asked for the reload ("SIGHUP", "files changed").
    pub fn reload_and_log(&self, cause: &str) {
        match self.reload() {
            Ok(Reloaded::Unchanged) => {
                tracing::info!(cause, "TLS files unchanged; nothing to reload")
            }
            Ok(Reloaded::Replaced { subject, not_after }) => tracing::info!(
                cause,
                cert = %self.files.cert.display(),
                client_ca = %self.files.client_ca.display(),
                subject,
                not_after,
                "reloaded TLS certificate, key and client CA: new handshakes use them"
            ),
            Err(e) => tracing::error!(
                cause,
                error = %e,
                "refused new TLS files; still serving the certificate and client CA loaded before"
            ),
        }
    }

    /// Whether the files differ from what was last loaded or refused:
    /// unreadable files count as unchanged, since a file being replaced can
    /// briefly be missing, and a reload then would only log that.
    fn changed(&self) -> bool {
        match self.files.read() {
            Ok(contents) => {
                *self
                    .last_seen
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    != contents
            }
            Err(_) => false,
        }
    }

    /// Polls the files every `interval` and reloads when they change; never
    /// returns. Polling rather than inotify follows a Kubernetes secret
    /// volume, which replaces a symlinked directory, as well as a file
    /// edited in place or renamed over.
    pub async fn watch_files(&self, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            if self.changed() {
                self.reload_and_log("files changed");
            }
        }
    }
}

/// The raw bytes of the three files, compared to tell a change.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Contents {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Vec<u8>,
}

/// One loaded generation of TLS material.
#[derive(Debug)]
struct Material {
    key: Arc<CertifiedKey>,
    verifier: Arc<dyn ClientCertVerifier>,
    contents: Contents,
}

impl Material {
    fn build(
        files: &TlsFiles,
        contents: &Contents,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Material, Error> {
        let certs = pem_certs(&files.cert, &contents.cert)?;
        let key = PrivateKeyDer::from_pem_slice(&contents.key).map_err(|e| Error::Pem {
            path: files.key.clone(),
            message: format!("no usable private key: {e}"),
        })?;
        let key = CertifiedKey::from_der(certs, key, provider).map_err(|e| {
            Error::Tls(format!(
                "{} and {} do not make a usable identity: {e}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in pem_certs(&files.client_ca, &contents.client_ca)? {
            roots.add(ca).map_err(|e| Error::Pem {
                path: files.client_ca.clone(),
                message: format!("not a usable CA certificate: {e}"),
            })?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
                .build()
                .map_err(|e| Error::Tls(format!("client CA {}: {e}", files.client_ca.display())))?;
        Ok(Material {
            key: Arc::new(key),
            verifier,
            contents: contents.clone(),
        })
    }
}

/// The material in use, shared by the resolver, the verifier and reloads.
#[derive(Debug)]
struct Current {
    material: RwLock<Arc<Material>>,
}

impl Current {
    fn get(&self) -> Arc<Material> {
        // A writer only swaps an Arc, which cannot panic halfway: the value
        // behind a poisoned lock is whole.
        Arc::clone(&self.material.read().unwrap_or_else(PoisonError::into_inner))
    }
}

// === impl CurrentCert ===

/// Presents the certificate loaded last.
#[derive(Debug)]
struct CurrentCert(Arc<Current>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.get().key))
    }
}

// === impl CurrentClientCa ===

/// Verifies client certificates against the CA loaded last. Client
/// authentication is mandatory, as with a plain `WebPkiClientVerifier`.
#[derive(Debug)]
struct CurrentClientCa(Arc<Current>);

impl ClientCertVerifier for CurrentClientCa {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    /// No CA names are hinted: the list would have to borrow from one
    /// generation of material while a reload may replace it. An empty list
    /// tells a client to send its certificate whatever its issuer (RFC 8446
    /// 4.2.4), which every fleet client does anyway, having only one.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .get()
            .verifier
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .get()
            .verifier
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .get()
            .verifier
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.get().verifier.supported_verify_schemes()
    }
}

/// The subject and expiry of the leaf certificate, for the reload log line.
fn describe(key: &CertifiedKey) -> Reloaded {
    let parsed = key
        .cert
        .first()
        .and_then(|der| x509_parser::certificate::X509Certificate::from_der(der).ok());
    match parsed {
        Some((_, cert)) => Reloaded::Replaced {
            subject: cert.subject().to_string(),
            not_after: cert
                .validity()
                .not_after
                .to_rfc2822()
                .unwrap_or_else(|e| e.to_string()),
        },
        None => Reloaded::Replaced {
            subject: "(unparsed)".into(),
            not_after: "(unparsed)".into(),
        },
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

fn pem_certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Pem {
            path: path.to_owned(),
            message: format!("bad PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(Error::Pem {
            path: path.to_owned(),
            message: "no certificate in the file".into(),
        });
    }
    Ok(certs)
}
