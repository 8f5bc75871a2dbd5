//! A fleet CA and the certificates it issues, without openssl.
//!
//! `init` writes `ca.pem` and `ca-key.pem`; `issue` writes `NAME.pem` and
//! `NAME-key.pem`, signed by that CA. Keys are ECDSA P-256 (rcgen's
//! default) and key files are written with mode 0600, atomically, so a
//! crash never leaves half a key or a key readable by others.
//!
//! The CA's subject name is derived from its key ("hostscope fleet CA
//! 1a2b3c4d5e6f7a8b"). That keeps two fleets' CAs apart (a certificate from
//! the other fleet is an unknown issuer, not a bad signature), and lets
//! `issue` rebuild the issuer's name from the key alone, without an X.509
//! parser. Every issued certificate is verified against `ca.pem` before it
//! is written, which also catches a `ca.pem` that does not belong to
//! `ca-key.pem`.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls::{
    RootCertStore,
    client::{WebPkiServerVerifier, danger::ServerCertVerifier},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
    server::WebPkiClientVerifier,
};
use time::{Duration, OffsetDateTime};

use crate::Error;

/// How long the fleet CA is valid by default, in days (ten years).
pub const CA_DAYS: u32 = 3650;
/// How long an issued agent or client certificate is valid by default, in
/// days (two years).
pub const LEAF_DAYS: u32 = 730;
/// The longest lifetime `--days` takes: a hundred years.
pub const MAX_DAYS: u32 = 36_500;
/// Slack for clocks that run a little behind the one that issued.
const BACKDATE: Duration = Duration::hours(1);

/// What an issued certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertRole {
    /// An agent's certificate: extended key usage serverAuth, valid for
    /// the names and addresses clients connect to.
    Server,
    /// A client's certificate: extended key usage clientAuth; its name is
    /// the identity the agent sees.
    Client,
}

/// The file a CA or certificate named `name` lives in under `dir`.
pub fn cert_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.pem"))
}

/// The file the private key for `name` lives in under `dir`.
pub fn key_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}-key.pem"))
}

/// Creates a fleet CA: `dir/ca.pem` and `dir/ca-key.pem` (mode 0600),
/// creating `dir` if needed. Refuses to replace an existing CA unless
/// `force`, because every certificate the old CA issued would stop being
/// trusted.
pub fn init(dir: &Path, force: bool) -> Result<(), Error> {
    init_for_days(dir, force, CA_DAYS)
}

/// [`init`] with a CA valid for `days` days (1 to [`MAX_DAYS`]).
pub fn init_for_days(dir: &Path, force: bool, days: u32) -> Result<(), Error> {
    let validity = lifetime(days)?;
    let (cert_file, key_file) = (cert_path(dir, "ca"), key_path(dir, "ca"));
    if !force {
        for existing in [&cert_file, &key_file] {
            if existing.exists() {
                return Err(pki_error(format!(
                    "{} exists already: a fleet CA is there, and replacing it (init with force \
                     set) makes every certificate it issued untrusted",
                    existing.display()
                )));
            }
        }
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| rcgen_error("generating the CA key", e))?;
    let mut params = ca_params(&key);
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + validity;
    let cert = params
        .self_signed(&key)
        .map_err(|e| rcgen_error("signing the CA certificate", e))?;

    // The key first: a CA certificate without its key would be useless.
    write_atomically(&key_file, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomically(&cert_file, cert.pem().as_bytes(), 0o644)
}

/// Issues a certificate for `name`, signed by the CA in `dir`: writes
/// `dir/NAME.pem` and `dir/NAME-key.pem` (mode 0600), replacing earlier
/// ones (that is how a certificate is renewed).
///
/// A server certificate is valid for `name` and every entry of `sans`
/// (IP literals become IP SANs, anything else DNS names). A client
/// certificate carries `name` as its common name and as a DNS SAN, plus
/// `sans`.
pub fn issue(dir: &Path, name: &str, role: CertRole, sans: &[String]) -> Result<(), Error> {
    issue_for_days(dir, name, role, sans, LEAF_DAYS)
}

/// [`issue`] with a certificate valid for `days` days (1 to
/// [`MAX_DAYS`]).
pub fn issue_for_days(
    dir: &Path,
    name: &str,
    role: CertRole,
    sans: &[String],
    days: u32,
) -> Result<(), Error> {
    check_name(name)?;
    let validity = lifetime(days)?;
    let ca_cert_file = cert_path(dir, "ca");
    let ca_key_file = key_path(dir, "ca");
    let ca_key_pem = fs::read_to_string(&ca_key_file).map_err(|e| Error::io(&ca_key_file, e))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|e| Error::Pki {
        message: format!("{}: not a PEM private key", ca_key_file.display()),
        source: Some(e),
    })?;
    let ca_cert_pem = fs::read(&ca_cert_file).map_err(|e| Error::io(&ca_cert_file, e))?;
    let ca_der = CertificateDer::from_pem_slice(&ca_cert_pem).map_err(|e| {
        pki_error(format!(
            "{}: no PEM certificate in it ({e})",
            ca_cert_file.display()
        ))
    })?;
    let issuer = Issuer::new(ca_params(&ca_key), ca_key);

    let mut names = vec![name.to_owned()];
    for san in sans {
        if !names.contains(san) {
            names.push(san.clone());
        }
    }
    let mut params = CertificateParams::new(names)
        .map_err(|e| rcgen_error(&format!("{name}: a name is not a valid DNS name or IP"), e))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![match role {
        CertRole::Server => ExtendedKeyUsagePurpose::ServerAuth,
        CertRole::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    params.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + validity;

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| rcgen_error("generating a key", e))?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| rcgen_error(&format!("signing the certificate for {name}"), e))?;

    verify(&ca_der, cert.der(), name, role).map_err(|reason| {
        pki_error(format!(
            "the certificate issued for {name} does not verify against {}: {reason}; do \
             ca.pem and ca-key.pem come from the same `pki init`?",
            ca_cert_file.display()
        ))
    })?;

    write_atomically(&key_path(dir, name), key.serialize_pem().as_bytes(), 0o600)?;
    write_atomically(&cert_path(dir, name), cert.pem().as_bytes(), 0o644)
}

/// `days` as a lifetime, refused outside 1 to [`MAX_DAYS`].
fn lifetime(days: u32) -> Result<Duration, Error> {
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(pki_error(format!(
            "{days} days is no lifetime for a certificate: give 1 to {MAX_DAYS}"
        )));
    }
    Ok(Duration::days(i64::from(days)))
}

// === Reading certificates back ===

/// What `hostscope pki show` tells of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's distinguished name ("CN=web1").
    pub subject: String,
    /// The issuer's distinguished name.
    pub issuer: String,
    /// Subject alternative names: DNS names and IP addresses.
    pub sans: Vec<String>,
    /// A CA certificate (basic constraints say so).
    pub is_ca: bool,
    /// Extended key usages by their RFC 5280 names (`serverAuth`,
    /// `clientAuth`); empty when the certificate has no such extension.
    pub extended_key_usages: Vec<String>,
    /// Valid from, in seconds since the epoch.
    pub not_before: i64,
    /// Valid until, in seconds since the epoch.
    pub not_after: i64,
    /// SHA-256 of the DER encoding, as colon-separated hex pairs
    /// (`openssl x509 -fingerprint -sha256` prints the same).
    pub sha256_fingerprint: String,
    /// The DER encoding, for [`signed_by`].
    der: Vec<u8>,
}

impl CertInfo {
    /// What the certificate is for in a fleet: the fleet CA, an agent
    /// (serverAuth), a client (clientAuth), or anything else.
    pub fn role(&self) -> &'static str {
        let usage = |name: &str| self.extended_key_usages.iter().any(|u| u == name);
        match (self.is_ca, usage("serverAuth"), usage("clientAuth")) {
            (true, _, _) => "CA",
            (false, true, false) => "agent (server certificate)",
            (false, false, true) => "client",
            (false, true, true) => "agent and client",
            (false, false, false) => "unrestricted (no extended key usage)",
        }
    }
}

/// Reads the first certificate in `pem`.
pub fn inspect(pem: &[u8]) -> Result<CertInfo, Error> {
    use x509_parser::{
        extensions::GeneralName,
        prelude::{FromDer, X509Certificate},
    };
    let der = CertificateDer::from_pem_slice(pem)
        .map_err(|e| pki_error(format!("no PEM certificate in it ({e})")))?;
    let (_, cert) = X509Certificate::from_der(&der)
        .map_err(|e| pki_error(format!("not an X.509 certificate: {e}")))?;
    let sans = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .map(|name| match name {
                GeneralName::DNSName(dns) => (*dns).to_owned(),
                GeneralName::IPAddress(bytes) => match *bytes {
                    [a, b, c, d] => std::net::Ipv4Addr::new(*a, *b, *c, *d).to_string(),
                    _ => match <[u8; 16]>::try_from(*bytes) {
                        Ok(v6) => std::net::Ipv6Addr::from(v6).to_string(),
                        Err(_) => format!("{bytes:02x?}"),
                    },
                },
                other => other.to_string(),
            })
            .collect(),
        _ => Vec::new(),
    };
    let extended_key_usages = match cert.extended_key_usage() {
        Ok(Some(eku)) => {
            let eku = eku.value;
            [
                (eku.any, "anyExtendedKeyUsage"),
                (eku.server_auth, "serverAuth"),
                (eku.client_auth, "clientAuth"),
                (eku.code_signing, "codeSigning"),
                (eku.email_protection, "emailProtection"),
                (eku.time_stamping, "timeStamping"),
                (eku.ocsp_signing, "OCSPSigning"),
            ]
            .into_iter()
            .filter(|(set, _)| *set)
            .map(|(_, name)| name.to_owned())
            .collect()
        }
        _ => Vec::new(),
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, &der);
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        is_ca: cert.is_ca(),
        extended_key_usages,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        sha256_fingerprint: digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":"),
        der: der.to_vec(),
    })
}

/// Whether `cert` was signed by the CA in `ca_pem`, checked as its peers
/// check it (signature, CA constraints, validity now): `Ok(())`, or why
/// not. The CA itself is its own signer.
pub fn signed_by(cert: &CertInfo, ca_pem: &[u8]) -> Result<(), String> {
    let ca = CertificateDer::from_pem_slice(ca_pem)
        .map_err(|e| format!("no PEM certificate in the CA file ({e})"))?;
    if cert.is_ca {
        return match ca.as_ref() == cert.der.as_slice() {
            true => Ok(()),
            false => Err("it is another CA".to_owned()),
        };
    }
    let leaf = CertificateDer::from(cert.der.clone());
    let usage = |name: &str| cert.extended_key_usages.iter().any(|u| u == name);
    if usage("serverAuth") && !usage("clientAuth") {
        let name = cert
            .sans
            .first()
            .ok_or_else(|| "it names no host".to_owned())?;
        verify(&ca, &leaf, name, CertRole::Server)
    } else {
        verify(&ca, &leaf, "", CertRole::Client)
    }
}

/// The CA's parameters as far as signing needs them: its name, derived
/// from its key, and what it may do.
pub(crate) fn ca_params(key: &KeyPair) -> CertificateParams {
    let mut params = CertificateParams::default();
    let id: String = params
        .key_identifier(key)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "hostscope");
    params
        .distinguished_name
        .push(DnType::CommonName, format!("hostscope fleet CA {id}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Names become file names and certificate names: keep them to what is
/// safe as both, and never let them land on the CA's own files.
fn check_name(name: &str) -> Result<(), Error> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
    if name.is_empty() || name.starts_with('.') || !name.chars().all(allowed) {
        return Err(pki_error(format!(
            "{name:?} is not a usable certificate name: use letters, digits, '.', '-', '_' \
             and ':' (a host name or an IP address), not starting with '.'"
        )));
    }
    if name == "ca" || name == "ca-key" {
        return Err(pki_error(format!(
            "{name:?} would overwrite the CA's own files"
        )));
    }
    Ok(())
}

/// Checks an issued certificate the way its peers will: a server
/// certificate as a client checks it for `name`, a client certificate as an
/// agent checks it.
fn verify(
    ca: &CertificateDer<'_>,
    leaf: &CertificateDer<'_>,
    name: &str,
    role: CertRole,
) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone().into_owned())
        .map_err(|e| e.to_string())?;
    let roots = Arc::new(roots);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let now = UnixTime::now();
    match role {
        CertRole::Server => {
            let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| e.to_string())?;
            let server_name = ServerName::try_from(name).map_err(|e| e.to_string())?;
            verifier
                .verify_server_cert(leaf, &[], &server_name, &[], now)
                .map(drop)
                .map_err(|e| e.to_string())
        }
        CertRole::Client => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| e.to_string())?;
            verifier
                .verify_client_cert(leaf, &[], now)
                .map(drop)
                .map_err(|e| e.to_string())
        }
    }
}

/// Writes `contents` to `path` through a temporary file in the same
/// directory, created with `mode`, then renamed over `path`: readers see
/// the old file or the new one, never a partial one, and a key file is
/// never readable by others, not even briefly.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
    // A leftover from a crashed run would make create_new fail.
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(contents)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

fn pki_error(message: String) -> Error {
    Error::Pki {
        message,
        source: None,
    }
}

fn rcgen_error(what: &str, e: rcgen::Error) -> Error {
    Error::Pki {
        message: what.to_owned(),
        source: Some(e),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use rustls::pki_types::PrivateKeyDer;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    fn cert(path: &Path) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(path).expect("a PEM certificate")
    }

    fn key(path: &Path) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_file(path).expect("a PEM private key")
    }

    #[test]
    fn init_writes_a_ca_and_refuses_to_overwrite_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = dir.path().join("pki");
        init(&pki, false).expect("init");
        let (ca, ca_key) = (pki.join("ca.pem"), pki.join("ca-key.pem"));
        cert(&ca);
        key(&ca_key);
        assert_eq!(mode(&ca_key), 0o600);

        let before = fs::read(&ca).expect("read");
        let e = init(&pki, false).expect_err("second init");
        assert!(e.to_string().contains("exists already"), "{e}");
        assert_eq!(fs::read(&ca).expect("read"), before, "the CA was replaced");

        init(&pki, true).expect("forced init");
        assert_ne!(
            fs::read(&ca).expect("read"),
            before,
            "force did not replace the CA"
        );
        assert_eq!(mode(&ca_key), 0o600);
    }

    #[test]
    fn issued_certificates_make_working_rustls_configs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        init(d, false).expect("init");
        issue(
            d,
            "agent1",
            CertRole::Server,
            &["127.0.0.1".into(), "::1".into()],
        )
        .expect("server cert");
        issue(d, "alice", CertRole::Client, &[]).expect("client cert");
        for name in ["agent1", "alice"] {
            assert_eq!(mode(&d.join(format!("{name}-key.pem"))), 0o600, "{name}");
        }

        let mut roots = RootCertStore::empty();
        roots.add(cert(&d.join("ca.pem"))).expect("CA as a root");
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .expect("client verifier");
        rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(client_verifier.clone())
            .with_single_cert(
                vec![cert(&d.join("agent1.pem"))],
                key(&d.join("agent1-key.pem")),
            )
            .expect("server config from the issued files");
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots.clone())
            .with_client_auth_cert(
                vec![cert(&d.join("alice.pem"))],
                key(&d.join("alice-key.pem")),
            )
            .expect("client config from the issued files");

        // The chains verify the way peers check them, for every server name.
        let server_verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .expect("server verifier");
        let agent = cert(&d.join("agent1.pem"));
        for name in ["agent1", "127.0.0.1", "::1"] {
            let server_name = ServerName::try_from(name).expect("server name");
            server_verifier
                .verify_server_cert(&agent, &[], &server_name, &[], UnixTime::now())
                .unwrap_or_else(|e| panic!("agent1's certificate for {name}: {e}"));
        }
        let other = ServerName::try_from("agent2").expect("server name");
        assert!(
            server_verifier
                .verify_server_cert(&agent, &[], &other, &[], UnixTime::now())
                .is_err()
        );
        client_verifier
            .verify_client_cert(&cert(&d.join("alice.pem")), &[], UnixTime::now())
            .expect("alice's certificate");
        // A client certificate is no server certificate.
        let alice_as_server = ServerName::try_from("alice").expect("server name");
        assert!(
            server_verifier
                .verify_server_cert(
                    &cert(&d.join("alice.pem")),
                    &[],
                    &alice_as_server,
                    &[],
                    UnixTime::now()
                )
                .is_err()
        );
    }

    #[test]
    fn another_fleets_ca_is_an_unknown_issuer() {
        let (a, b) = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        init(a.path(), false).expect("init a");
        init(b.path(), false).expect("init b");
        issue(b.path(), "intruder", CertRole::Client, &[]).expect("issue");
        let e = verify(
            &cert(&a.path().join("ca.pem")),
            &cert(&b.path().join("intruder.pem")),
            "intruder",
            CertRole::Client,
        )
        .expect_err("another CA's certificate");
        assert!(e.contains("UnknownIssuer"), "{e}");
    }

    #[test]
    fn issue_refuses_bad_names_and_mismatched_ca_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let e = issue(d, "web1", CertRole::Server, &[]).expect_err("no CA");
        assert!(e.to_string().contains("ca-key.pem"), "{e}");

        init(d, false).expect("init");
        for bad in ["", "ca", "ca-key", "../evil", ".hidden", "a b"] {
            assert!(
                issue(d, bad, CertRole::Client, &[]).is_err(),
                "{bad:?} was accepted"
            );
        }

        let other = tempfile::tempdir().expect("tempdir");
        init(other.path(), false).expect("init other");
        fs::copy(other.path().join("ca.pem"), d.join("ca.pem")).expect("copy");
        let e = issue(d, "web1", CertRole::Server, &[]).expect_err("mismatched CA files");
        assert!(e.to_string().contains("does not verify"), "{e}");
        assert!(!d.join("web1-key.pem").exists());
    }
}
