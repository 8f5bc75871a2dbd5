//! The agent's TLS material: its certificate and key, and the fleet CA that
//! signs client certificates, read from PEM files and replaced without a
//! restart.
//!
//! The server keeps one `rustls::ServerConfig` for its whole life. Its
//! certificate resolver, its client verifier and its TLS session cache all
//! belong to the material loaded last, so a reload changes what every new
//! handshake presents and trusts, and sessions made before it cannot be
//! resumed after it. A connection made before a reload goes on, but every
//! call on it has its client's chain verified again against the client CA
//! in force ([`ClientCaLayer`]): a client whose CA was replaced is refused,
//! whichever way it kept or got its connection.
//!
//! New files are checked whole before they replace anything, by the same
//! checks at start-up and on reload: each is a regular file of at most
//! [`MAX_FILE_BYTES`], read off the async workers within [`READ_TIMEOUT`];
//! the PEM parses, the key matches the certificate, the certificate is
//! valid now and may serve (its extended key usage allows serverAuth), and
//! the client CA file holds only CA certificates. A bad or half-written
//! file is refused, the refusal is logged with the file and the reason, and
//! the material in use stays.

use std::{
    collections::HashMap,
    io::Read,
    path::{Path, PathBuf},
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use rustls::{
    DigitallySignedStruct, DistinguishedName, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject},
    server::{
        ClientHello, ResolvesServerCert, ServerSessionMemoryCache, StoresServerSessions,
        WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
    sign::CertifiedKey,
};
use tonic::{
    Status,
    body::Body,
    codegen::http,
    transport::server::{TcpConnectInfo, TlsConnectInfo},
};
use x509_parser::{certificate::X509Certificate, prelude::FromDer};

/// How often the agent looks at its certificate, key and CA files for a
/// change. Reading three small files this often costs nothing measurable,
/// and it picks up a rotated Kubernetes secret within seconds of the
/// kubelet writing it.
pub const RELOAD_POLL: Duration = Duration::from_secs(10);

/// The largest certificate, key or CA file read, in bytes. A fleet's PEM
/// files are a few kilobytes; a CA bundle of a hundred certificates stays
/// far below this.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// How long reading the three files may take. Reads run on a thread of
/// their own, so a file system that hangs (a dead NFS mount) delays only
/// the reload, which is then refused; the agent keeps serving and stops
/// when asked.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS sessions each generation of material keeps for resumption.
const SESSION_CACHE_SIZE: usize = 256;

/// Client chains each generation remembers as verified, so that the calls
/// of a connection do not each verify a signature again.
const VERIFIED_CHAINS: usize = 1024;

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
    /// A path names something other than a regular file (a FIFO, a device,
    /// a directory), which the agent refuses to read.
    #[error(
        "{} is {what}, not a regular file: certificate, key and CA paths must name regular \
         files (or symbolic links to them)",
        path.display()
    )]
    NotAFile { path: PathBuf, what: &'static str },
    /// A file is larger than [`MAX_FILE_BYTES`].
    #[error(
        "{} is larger than {limit} bytes: too large for a certificate, key or CA file",
        path.display()
    )]
    TooLarge { path: PathBuf, limit: u64 },
    /// Reading the files took longer than [`READ_TIMEOUT`], or a read that
    /// did is still stuck.
    #[error("reading the TLS files: {0}")]
    Stuck(String),
    /// A file was read but holds no usable PEM of the kind expected, or a
    /// certificate in it cannot serve its purpose.
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
    /// [`ReloadableTls::reload`]. Reads on the calling thread: async code
    /// calls [`TlsFiles::load_detached`].
    pub fn load(&self) -> Result<ReloadableTls, Error> {
        let contents = self.read()?;
        self.load_contents(contents)
    }

    /// [`TlsFiles::load`], reading the files on a thread of its own within
    /// [`READ_TIMEOUT`].
    pub async fn load_detached(&self) -> Result<ReloadableTls, Error> {
        let contents = read_detached(self, &Arc::new(AtomicBool::new(false))).await?;
        self.load_contents(contents)
    }

    fn load_contents(&self, contents: Contents) -> Result<ReloadableTls, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let material = Material::build(self, &contents, &provider, UnixTime::now())?;
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
        // Sessions live in the current generation's cache, so a reload
        // forgets them all. The ticketer stays rustls's default, which
        // makes no self-contained tickets: a TLS 1.3 ticket only names a
        // session in that cache.
        config.session_storage = Arc::new(CurrentSessions(Arc::clone(&current)));
        Ok(ReloadableTls {
            files: self.clone(),
            provider,
            config: Arc::new(config),
            current,
            last_seen: RwLock::new(contents),
            reading: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Reads the three files, each only if it is a regular file of at most
    /// [`MAX_FILE_BYTES`]. Never waits for a writer: a FIFO is refused, not
    /// opened for a blocking read.
    fn read(&self) -> Result<Contents, Error> {
        Ok(Contents {
            cert: read_file(&self.cert)?,
            key: read_file(&self.key)?,
            client_ca: read_file(&self.client_ca)?,
        })
    }
}

/// Reads `files` on a thread of its own, waiting at most [`READ_TIMEOUT`].
/// `reading` is set while such a thread runs: a read that hung is not
/// joined by another, so a hung file system costs one thread, not one per
/// poll.
async fn read_detached(files: &TlsFiles, reading: &Arc<AtomicBool>) -> Result<Contents, Error> {
    if reading.swap(true, Ordering::AcqRel) {
        return Err(Error::Stuck(
            "an earlier read has not finished (a hung file system?)".into(),
        ));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (files, done) = (files.clone(), Arc::clone(reading));
    // A plain thread, not tokio's blocking pool: the runtime waits for its
    // blocking tasks when it shuts down, and a hung read would then keep
    // the agent from exiting.
    let spawned = std::thread::Builder::new()
        .name("tls-files".into())
        .spawn(move || {
            let contents = files.read();
            done.store(false, Ordering::Release);
            let _ = tx.send(contents);
        });
    if let Err(e) = spawned {
        reading.store(false, Ordering::Release);
        return Err(Error::Stuck(format!(
            "cannot start a thread to read them: {e}"
        )));
    }
    match tokio::time::timeout(READ_TIMEOUT, rx).await {
        Ok(Ok(contents)) => contents,
        Ok(Err(_)) => Err(Error::Stuck(
            "the reading thread ended without an answer".into(),
        )),
        Err(_) => Err(Error::Stuck(format!(
            "no answer within {READ_TIMEOUT:?} (a hung file system?)"
        ))),
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
    /// Set while a thread reads the files (see [`read_detached`]).
    reading: Arc<AtomicBool>,
}

impl ReloadableTls {
    /// The configuration to serve with: the same value for the agent's whole
    /// life, presenting and trusting whatever was loaded last.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.config)
    }

    /// The client CA in force, for checking the calls of connections made
    /// before a reload (see [`ClientCaLayer`]).
    pub fn client_ca(&self) -> ClientCa {
        ClientCa(Arc::clone(&self.current))
    }

    /// The files this configuration is read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again and, if they changed and make a usable
    /// configuration, serves them to every new handshake. On error the
    /// material in use stays. Reads on the calling thread: async code calls
    /// [`ReloadableTls::reload_detached`].
    pub fn reload(&self) -> Result<Reloaded, Error> {
        let contents = self.files.read()?;
        self.apply(contents)
    }

    /// [`ReloadableTls::reload`], reading the files on a thread of its own
    /// within [`READ_TIMEOUT`].
    pub async fn reload_detached(&self) -> Result<Reloaded, Error> {
        let contents = read_detached(&self.files, &self.reading).await?;
        self.apply(contents)
    }

    fn apply(&self, contents: Contents) -> Result<Reloaded, Error> {
        *self
            .last_seen
            .write()
            .unwrap_or_else(PoisonError::into_inner) = contents.clone();
        if self.current.get().contents == contents {
            return Ok(Reloaded::Unchanged);
        }
        let material = Material::build(&self.files, &contents, &self.provider, UnixTime::now())?;
        let described = describe(&material.key);
        *self
            .current
            .material
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(material);
        Ok(described)
    }

    /// [`ReloadableTls::reload_detached`], logged: a new certificate at
    /// INFO, a refused file at ERROR with the reason (the old material
    /// stays). `cause` says what asked for the reload ("SIGHUP", "files
    /// changed").
    pub async fn reload_and_log(&self, cause: &str) {
        match self.reload_detached().await {
            Ok(Reloaded::Unchanged) => {
                tracing::info!(cause, "TLS files unchanged; nothing to reload")
            }
            Ok(Reloaded::Replaced { subject, not_after }) => tracing::info!(
                cause,
                cert = %self.files.cert.display(),
                client_ca = %self.files.client_ca.display(),
                subject,
                not_after,
                "reloaded TLS certificate, key and client CA: new handshakes use them, \
                 earlier sessions cannot be resumed"
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
    async fn changed(&self) -> bool {
        match read_detached(&self.files, &self.reading).await {
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
            if self.changed().await {
                self.reload_and_log("files changed").await;
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

/// One loaded generation of TLS material, with the TLS sessions made under
/// it and the client chains verified under it.
#[derive(Debug)]
struct Material {
    key: Arc<CertifiedKey>,
    verifier: Arc<dyn ClientCertVerifier>,
    sessions: Arc<ServerSessionMemoryCache>,
    /// Chains verified against `verifier`, each with the end of its leaf's
    /// validity (seconds since the epoch).
    verified: Mutex<HashMap<Vec<CertificateDer<'static>>, u64>>,
    contents: Contents,
}

impl Material {
    /// Checks `contents` as the files of `files` and builds the material:
    /// the same checks at start-up and on reload.
    fn build(
        files: &TlsFiles,
        contents: &Contents,
        provider: &Arc<CryptoProvider>,
        now: UnixTime,
    ) -> Result<Material, Error> {
        let certs = pem_certs(&files.cert, &contents.cert)?;
        check_server_certificate(&files.cert, &certs[0], now)?;
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
        for ca in check_client_ca(&files.client_ca, &contents.client_ca)? {
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
            sessions: ServerSessionMemoryCache::new(SESSION_CACHE_SIZE),
            verified: Mutex::new(HashMap::new()),
            contents: contents.clone(),
        })
    }
}

/// The material in use, shared by the resolver, the verifier, the session
/// cache and reloads.
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

// === impl CurrentSessions ===

/// Keeps TLS sessions in the cache of the material loaded last: a reload
/// starts an empty cache, so no session made under a replaced client CA
/// can be resumed, and such a client must make a full handshake, which
/// verifies its certificate against the new CA.
#[derive(Debug)]
struct CurrentSessions(Arc<Current>);

impl StoresServerSessions for CurrentSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.0.get().sessions.put(key, value)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get().sessions.get(key)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get().sessions.take(key)
    }

    fn can_cache(&self) -> bool {
        true
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

// === impl ClientCa ===

/// The client CA in force, as a handle that follows reloads.
#[derive(Clone, Debug)]
pub struct ClientCa(Arc<Current>);

impl ClientCa {
    /// Verifies a client's certificate chain (leaf first), as presented in
    /// its handshake, against the client CA in force now. A chain verified
    /// before under the same CA and still within its validity is not
    /// verified again.
    pub fn verify(&self, chain: &[CertificateDer<'static>]) -> Result<(), rustls::Error> {
        let material = self.0.get();
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(rustls::Error::NoCertificatesPresented);
        };
        let now = UnixTime::now();
        if lock(&material.verified)
            .get(chain)
            .is_some_and(|until| now.as_secs() < *until)
        {
            return Ok(());
        }
        material
            .verifier
            .verify_client_cert(leaf, intermediates, now)?;
        let until = X509Certificate::from_der(leaf)
            .ok()
            .and_then(|(_, cert)| u64::try_from(cert.validity().not_after.timestamp()).ok())
            .unwrap_or(0);
        let mut verified = lock(&material.verified);
        if verified.len() >= VERIFIED_CHAINS {
            verified.clear();
        }
        verified.insert(chain.to_vec(), until);
        Ok(())
    }
}

/// Locks `mutex`; what a panicking holder left is whole (one insert or
/// clear of a map).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// === impl ClientCaLayer ===

/// Verifies the client certificate of every call on a TLS connection
/// against the client CA in force, so that a connection made before a
/// reload replaced the CA (or resumed a session made before it) serves no
/// further call. A refused call is answered UNAUTHENTICATED. Without a
/// [`ClientCa`] (plaintext, or a configuration that is never reloaded) it
/// passes every call.
#[derive(Clone, Debug, Default)]
pub struct ClientCaLayer(Option<ClientCa>);

impl ClientCaLayer {
    /// A layer that checks calls against `ca`, or checks nothing.
    pub fn new(ca: Option<ClientCa>) -> ClientCaLayer {
        ClientCaLayer(ca)
    }
}

impl<S> tower_layer::Layer<S> for ClientCaLayer {
    type Service = CheckClientCa<S>;

    fn layer(&self, inner: S) -> CheckClientCa<S> {
        CheckClientCa {
            inner,
            ca: self.0.clone(),
        }
    }
}

/// The service of [`ClientCaLayer`].
#[derive(Clone, Debug)]
pub struct CheckClientCa<S> {
    inner: S,
    ca: Option<ClientCa>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> tonic::codegen::Service<http::Request<Body>> for CheckClientCa<S>
where
    S: tonic::codegen::Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let refused = self.ca.as_ref().and_then(|ca| {
            let tls = request
                .extensions()
                .get::<TlsConnectInfo<TcpConnectInfo>>()?;
            let chain = tls.peer_certs();
            let checked = match chain.as_deref() {
                Some(chain) => ca.verify(chain),
                None => Err(rustls::Error::NoCertificatesPresented),
            };
            let error = checked.err()?;
            tracing::debug!(
                peer = ?tls.get_ref().remote_addr(),
                error = %error,
                "refused a call: its client certificate is not trusted by the client CA in force"
            );
            Some(Status::unauthenticated(format!(
                "this client's certificate is not trusted by the agent's client CA any more \
                 ({error}): the CA was replaced, or the certificate expired, after this \
                 connection was made"
            )))
        });
        match refused {
            Some(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
            None => Box::pin(self.inner.call(request)),
        }
    }
}

// === reading and checking files ===

/// Reads `path` if it is a regular file (after symbolic links) of at most
/// [`MAX_FILE_BYTES`]. The file is opened without blocking and checked
/// through its descriptor, so a FIFO cannot make the read wait for a
/// writer, and a file swapped after a check is still the file checked.
pub fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    let failed = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(failed)?;
    let meta = file.metadata().map_err(failed)?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_owned(),
            what: file_type(&meta.file_type()),
        });
    }
    let too_large = || Error::TooLarge {
        path: path.to_owned(),
        limit: MAX_FILE_BYTES,
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// What a file that is not a regular file is, in words.
fn file_type(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Reads `path` and checks it as a client CA file (see
/// [`check_client_ca`]).
pub fn check_client_ca_file(path: &Path) -> Result<(), Error> {
    check_client_ca(path, &read_file(path)?).map(drop)
}

/// The certificates of a client CA file, which must all be CA
/// certificates. A client or agent certificate given there by mistake is
/// accepted by rustls as a trust anchor, and the agent would then refuse
/// every client.
pub fn check_client_ca(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = pem_certs(path, pem)?;
    for (n, der) in certs.iter().enumerate() {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| Error::Pem {
            path: path.to_owned(),
            message: format!("certificate {} does not parse: {e}", n + 1),
        })?;
        let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        if !is_ca {
            return Err(Error::Pem {
                path: path.to_owned(),
                message: format!(
                    "certificate {} ({}) is not a CA certificate (its basicConstraints do not \
                     say CA:TRUE): --client-ca needs the CA that signs client certificates \
                     (ca.pem of `hostscope pki`), not a client or agent certificate",
                    n + 1,
                    cert.subject()
                ),
            });
        }
    }
    Ok(certs)
}

/// Refuses an agent certificate that cannot serve at `now`: one outside
/// its validity period, or one whose extended key usage does not allow
/// server authentication (a client certificate given as `--cert`).
/// Clients would refuse either in every handshake.
fn check_server_certificate(
    path: &Path,
    der: &CertificateDer<'_>,
    now: UnixTime,
) -> Result<(), Error> {
    let refuse = |message: String| Error::Pem {
        path: path.to_owned(),
        message,
    };
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| refuse(format!("the certificate does not parse: {e}")))?;
    let validity = cert.validity();
    let date = |t: &x509_parser::time::ASN1Time| t.to_rfc2822().unwrap_or_else(|e| e);
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if validity.not_after.timestamp() < now {
        return Err(refuse(format!(
            "the certificate expired on {}: issue a new one (`hostscope pki issue --server`)",
            date(&validity.not_after)
        )));
    }
    if validity.not_before.timestamp() > now {
        return Err(refuse(format!(
            "the certificate is not valid yet: its validity starts on {} (is this host's \
             clock right?)",
            date(&validity.not_before)
        )));
    }
    if let Ok(Some(usage)) = cert.extended_key_usage()
        && !usage.value.server_auth
        && !usage.value.any
    {
        return Err(refuse(format!(
            "the certificate's extended key usage does not allow server authentication{}: \
             clients refuse it; the agent needs a server certificate (`hostscope pki issue \
             --server`)",
            if usage.value.client_auth {
                " (it is a client certificate)"
            } else {
                ""
            }
        )));
    }
    Ok(())
}

/// The subject and expiry of the leaf certificate, for the reload log line.
fn describe(key: &CertifiedKey) -> Reloaded {
    let parsed = key
        .cert
        .first()
        .and_then(|der| X509Certificate::from_der(der).ok());
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

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        date_time_ymd,
    };

    use super::*;

    /// A CA and what it issues, written into a directory as an agent's
    /// three files.
    struct Fleet {
        dir: tempfile::TempDir,
        ca: rcgen::Certificate,
        issuer: Issuer<'static, KeyPair>,
    }

    impl Fleet {
        fn new() -> Fleet {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec![]).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let ca = params.self_signed(&key).unwrap();
            let fleet = Fleet {
                dir: tempfile::tempdir().unwrap(),
                ca,
                issuer: Issuer::new(params, key),
            };
            std::fs::write(fleet.path("ca.pem"), fleet.ca.pem()).unwrap();
            fleet.install(fleet.params());
            fleet
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        /// An agent certificate's parameters, valid now.
        fn params(&self) -> CertificateParams {
            let mut params = CertificateParams::new(vec!["localhost".into()]).unwrap();
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params
        }

        /// Issues a certificate with `params` and writes it and its key as
        /// the agent's.
        fn install(&self, params: CertificateParams) -> rcgen::Certificate {
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &self.issuer).unwrap();
            std::fs::write(self.path("agent.pem"), cert.pem()).unwrap();
            std::fs::write(self.path("agent-key.pem"), key.serialize_pem()).unwrap();
            cert
        }

        fn files(&self) -> TlsFiles {
            TlsFiles {
                cert: self.path("agent.pem"),
                key: self.path("agent-key.pem"),
                client_ca: self.path("ca.pem"),
            }
        }
    }

    /// Whether loading the files now fails with an error that names `file`
    /// and says `cause`, at start-up and on reload alike.
    fn refused_at_start_and_on_reload(
        good: &ReloadableTls,
        fleet: &Fleet,
        file: &str,
        cause: &str,
    ) {
        let start = fleet.files().load().expect_err("refused at start-up");
        let reload = good.reload().expect_err("refused on reload");
        for err in [start.to_string(), reload.to_string()] {
            assert!(
                err.contains(&fleet.path(file).display().to_string()) && err.contains(cause),
                "{err}"
            );
        }
    }

    #[test]
    fn expired_future_and_client_only_certificates_are_refused_as_the_agents() {
        let fleet = Fleet::new();
        let good = fleet.files().load().expect("a good certificate");

        let mut expired = fleet.params();
        expired.not_before = date_time_ymd(2020, 1, 1);
        expired.not_after = date_time_ymd(2021, 1, 1);
        fleet.install(expired);
        refused_at_start_and_on_reload(&good, &fleet, "agent.pem", "expired on");

        let mut future = fleet.params();
        future.not_before = date_time_ymd(2090, 1, 1);
        future.not_after = date_time_ymd(2091, 1, 1);
        fleet.install(future);
        refused_at_start_and_on_reload(&good, &fleet, "agent.pem", "not valid yet");

        let mut client = fleet.params();
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        fleet.install(client);
        refused_at_start_and_on_reload(&good, &fleet, "agent.pem", "is a client certificate");

        // A certificate without the extension may serve any purpose.
        let mut any = fleet.params();
        any.extended_key_usages = vec![];
        fleet.install(any);
        assert!(matches!(good.reload(), Ok(Reloaded::Replaced { .. })));
    }

    #[test]
    fn a_leaf_certificate_as_client_ca_is_refused_on_reload_as_at_start_up() {
        let fleet = Fleet::new();
        let good = fleet.files().load().expect("a good CA");
        let leaf = fleet.install(fleet.params());
        std::fs::write(fleet.path("ca.pem"), leaf.pem()).unwrap();
        refused_at_start_and_on_reload(&good, &fleet, "ca.pem", "not a CA certificate");
        let err = check_client_ca_file(&fleet.path("ca.pem")).unwrap_err();
        assert!(err.to_string().contains("not a CA certificate"), "{err}");
    }

    #[test]
    fn files_over_the_size_cap_are_refused() {
        let fleet = Fleet::new();
        let good = fleet.files().load().expect("good files");
        let mut pem = fleet.ca.pem().into_bytes();
        pem.resize(MAX_FILE_BYTES as usize + 1, b'\n');
        std::fs::write(fleet.path("ca.pem"), &pem).unwrap();
        refused_at_start_and_on_reload(&good, &fleet, "ca.pem", "larger than 1048576 bytes");
        assert!(matches!(
            read_file(&fleet.path("ca.pem")),
            Err(Error::TooLarge { .. })
        ));
        // A directory is no file either.
        let err = read_file(fleet.dir.path()).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
    }

    /// A FIFO with no writer would block a plain read for ever.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_fifo_is_refused_without_waiting_for_a_writer() {
        use rustix::fs::{CWD, FileType, Mode, mknodat};
        let fleet = Fleet::new();
        let good = fleet.files().load().expect("good files");
        std::fs::remove_file(fleet.path("ca.pem")).unwrap();
        mknodat(
            CWD,
            fleet.path("ca.pem"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        refused_at_start_and_on_reload(&good, &fleet, "ca.pem", "is a FIFO, not a regular file");
        let err = good.reload_detached().await.unwrap_err();
        assert!(
            matches!(err, Error::NotAFile { what: "a FIFO", .. }),
            "{err}"
        );
        let err = check_client_ca_file(&fleet.path("ca.pem")).unwrap_err();
        assert!(err.to_string().contains("a FIFO"), "{err}");
        // The material in use stays.
        assert!(!good.changed().await);
    }
}
