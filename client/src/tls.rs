//! TLS material for talking to agents: the fleet CA to trust and the
//! client's own certificate, checked when loaded so that a wrong file is
//! reported by name instead of as a failed handshake later.

use std::{
    path::Path,
    sync::{Arc, Once},
    time::{SystemTime, UNIX_EPOCH},
};

use rustls::{
    ClientConfig, InconsistentKeys, RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    sign::CertifiedKey,
};

use crate::Error;

/// The certificates a [`Client`](crate::Client) uses for mutual TLS, as PEM
/// bytes.
#[derive(Clone, Default)]
pub struct TlsConfig {
    /// The fleet CA certificate(s) that issued the agents' certificates.
    pub ca_pem: Vec<u8>,
    /// This client's certificate chain and private key, both PEM. Agents
    /// demand one; `None` is only useful against a test agent.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name to check the agent's certificate against, when it differs
    /// from the host in the endpoint (connecting by IP to a cert that only
    /// names the host, or through a tunnel).
    pub server_name: Option<String>,
}

impl std::fmt::Debug for TlsConfig {
    // Never print the private key, even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_pem", &format_args!("{} bytes", self.ca_pem.len()))
            .field(
                "identity",
                &self.identity.as_ref().map(|_| "<cert and key>"),
            )
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl TlsConfig {
    /// Reads the CA certificate and, optionally, this client's certificate
    /// and key from PEM files. Errors name the file that is missing,
    /// unreadable or not the PEM it should be. `cert` and `key` come
    /// together or not at all.
    pub fn from_files(
        ca: &Path,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<TlsConfig, Error> {
        let ca_pem = read(ca)?;
        check_certificates(&ca_pem, &ca.display().to_string())?;
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => {
                let cert_pem = read(cert)?;
                check_certificates(&cert_pem, &cert.display().to_string())?;
                let key_pem = read(key)?;
                check_key(&key_pem, &key.display().to_string())?;
                check_pair(
                    &cert_pem,
                    &key_pem,
                    &cert.display().to_string(),
                    &key.display().to_string(),
                )?;
                check_client_usage(&cert_pem, &cert.display().to_string())?;
                check_validity(&cert_pem, &cert.display().to_string(), SystemTime::now())?;
                Some((cert_pem, key_pem))
            }
            (None, None) => None,
            (Some(cert), None) => {
                return Err(Error::Tls {
                    message: format!("a client certificate ({}) needs its key", cert.display()),
                });
            }
            (None, Some(key)) => {
                return Err(Error::Tls {
                    message: format!("a client key ({}) needs its certificate", key.display()),
                });
            }
        };
        Ok(TlsConfig {
            ca_pem,
            identity,
            server_name: None,
        })
    }

    /// Checks PEM bytes that were handed over directly rather than read by
    /// [`TlsConfig::from_files`].
    pub(crate) fn check(&self) -> Result<(), Error> {
        check_certificates(&self.ca_pem, "the CA certificate")?;
        if let Some((cert, key)) = &self.identity {
            check_certificates(cert, "the client certificate")?;
            check_key(key, "the client key")?;
            check_pair(cert, key, "the client certificate", "the client key")?;
            check_validity(cert, "the client certificate", SystemTime::now())?;
        }
        Ok(())
    }

    /// The same settings as a rustls client configuration, for the
    /// connection [`crate::probe`] repeats by hand when one fails. Checks
    /// the PEM first, so errors name what is wrong.
    pub(crate) fn rustls_config(&self) -> Result<Arc<ClientConfig>, Error> {
        self.check()?;
        let tls_error = |what: &str, e: &dyn std::fmt::Display| Error::Tls {
            message: format!("{what}: {e}"),
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.ca_pem) {
            let cert = cert.map_err(|e| tls_error("the CA certificate", &e))?;
            roots
                .add(cert)
                .map_err(|e| tls_error("the CA certificate", &e))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("TLS versions", &e))?
            .with_root_certificates(roots);
        let mut config = match &self.identity {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| tls_error("the client certificate", &e))?;
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|e| tls_error("the client key", &e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| tls_error("the client certificate and key", &e))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Fails unless `pem` holds at least one well-formed certificate. tonic
/// would silently skip a CA file without one, and every handshake would
/// then fail with an unknown-issuer error that points nowhere.
fn check_certificates(pem: &[u8], what: &str) -> Result<(), Error> {
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        cert.map_err(|e| Error::Tls {
            message: format!("{what}: malformed PEM certificate: {e}"),
        })?;
        count += 1;
    }
    if count == 0 {
        return Err(Error::Tls {
            message: format!("{what}: no PEM certificate (\"BEGIN CERTIFICATE\") in it"),
        });
    }
    Ok(())
}

fn check_key(pem: &[u8], what: &str) -> Result<(), Error> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| Error::Tls {
        message: format!("{what}: no usable PEM private key in it ({e})"),
    })?;
    Ok(())
}

/// Fails unless the key in `key_pem` is the private key of the first
/// certificate in `cert_pem`. rustls would only say "keys may not be
/// consistent: KeyMismatch", and only when connecting.
fn check_pair(cert_pem: &[u8], key_pem: &[u8], cert: &str, key: &str) -> Result<(), Error> {
    let unusable = |e: &dyn std::fmt::Display| Error::Tls {
        message: format!("{cert} and {key}: unusable as a certificate and key: {e}"),
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unusable(&e))?;
    let private = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| unusable(&e))?;
    let provider = rustls::crypto::ring::default_provider();
    match CertifiedKey::from_der(chain, private, &provider) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => Err(Error::Tls {
            message: format!(
                "{key} is not the private key of {cert}: they come from different `pki issue` \
                 runs (or names); pass the NAME-key.pem written together with NAME.pem"
            ),
        }),
        Err(e) => Err(unusable(&e)),
    }
}

/// Fails when the first certificate in `pem` says, by its extended key
/// usage, that it is not for clients (an agent's certificate): agents
/// refuse it, and the handshake's alert would only say
/// "UnsupportedCertificate". A certificate without that extension may
/// serve any purpose and passes.
fn check_client_usage(pem: &[u8], what: &str) -> Result<(), Error> {
    use x509_parser::prelude::FromDer;
    let Some(Ok(der)) = CertificateDer::pem_slice_iter(pem).next() else {
        return Ok(());
    };
    let Ok((_, cert)) = x509_parser::certificate::X509Certificate::from_der(&der) else {
        // rustls parses it again when connecting and says what is wrong.
        return Ok(());
    };
    match cert.extended_key_usage() {
        Ok(Some(usage)) if !usage.value.client_auth && !usage.value.any => Err(Error::Tls {
            message: format!(
                "{what} is not a client certificate: its extended key usage does not allow \
                 client authentication{}, so agents refuse it; pass a certificate made with \
                 `hostscope pki issue --client`",
                if usage.value.server_auth {
                    " (it is a server certificate, for an agent)"
                } else {
                    ""
                }
            ),
        }),
        _ => Ok(()),
    }
}

/// Fails when the first certificate in `pem` is outside its validity
/// period at `now`: agents refuse it with an alert that, under TLS 1.3,
/// often reaches the client only as a broken connection.
fn check_validity(pem: &[u8], what: &str, now: SystemTime) -> Result<(), Error> {
    use x509_parser::prelude::FromDer;
    let Some(Ok(der)) = CertificateDer::pem_slice_iter(pem).next() else {
        return Ok(());
    };
    let Ok((_, cert)) = x509_parser::certificate::X509Certificate::from_der(&der) else {
        // rustls parses it again when connecting and says what is wrong.
        return Ok(());
    };
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let validity = cert.validity();
    let date = |t: x509_parser::time::ASN1Time| t.to_rfc2822().unwrap_or_else(|e| e);
    if validity.not_after.timestamp() < now {
        return Err(Error::Tls {
            message: format!(
                "{what} expired on {}: agents refuse it; issue a new one with `hostscope pki \
                 issue --client`",
                date(validity.not_after)
            ),
        });
    }
    if validity.not_before.timestamp() > now {
        return Err(Error::Tls {
            message: format!(
                "{what} is not valid yet: its validity starts on {} (is this host's clock \
                 right?); agents refuse it until then",
                date(validity.not_before)
            ),
        });
    }
    Ok(())
}

/// Installs ring as rustls's process-wide crypto provider, once, so that
/// library users need not. If the application installed one already, that
/// one stays.
pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error only means a provider is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_in_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.pem");
        let e = TlsConfig::from_files(&missing, None, None).expect_err("missing file");
        assert!(
            matches!(&e, Error::Io { path, .. } if path == &missing),
            "{e:?}"
        );

        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").expect("write");
        let e = TlsConfig::from_files(&junk, None, None).expect_err("junk file");
        assert!(e.to_string().contains("junk.pem"), "{e}");
    }

    #[test]
    fn cert_without_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::pki::init(dir.path(), false).expect("init");
        let ca = dir.path().join("ca.pem");
        let e = TlsConfig::from_files(&ca, Some(&ca), None).expect_err("no key");
        assert!(e.to_string().contains("needs its key"), "{e}");
        // A certificate is not a key.
        let e = TlsConfig::from_files(&ca, Some(&ca), Some(&ca)).expect_err("cert as key");
        assert!(e.to_string().contains("private key"), "{e}");
    }

    #[test]
    fn a_key_of_another_certificate_is_named_in_plain_words() {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::pki::init(dir.path(), false).expect("init");
        for name in ["alice", "bob"] {
            crate::pki::issue(dir.path(), name, crate::pki::CertRole::Client, &[]).expect("issue");
        }
        let path = |f: &str| dir.path().join(f);
        let e = TlsConfig::from_files(
            &path("ca.pem"),
            Some(&path("alice.pem")),
            Some(&path("bob-key.pem")),
        )
        .expect_err("bob's key is not alice's");
        let text = e.to_string();
        assert!(
            text.contains("bob-key.pem is not the private key of")
                && text.contains("alice.pem")
                && !text.contains("KeyMismatch"),
            "{text}"
        );
        TlsConfig::from_files(
            &path("ca.pem"),
            Some(&path("alice.pem")),
            Some(&path("alice-key.pem")),
        )
        .expect("alice's own key");
    }

    #[test]
    fn an_agent_certificate_is_refused_as_the_client_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::pki::init(dir.path(), false).expect("init");
        crate::pki::issue(dir.path(), "web1", crate::pki::CertRole::Server, &[]).expect("issue");
        let path = |f: &str| dir.path().join(f);
        let e = TlsConfig::from_files(
            &path("ca.pem"),
            Some(&path("web1.pem")),
            Some(&path("web1-key.pem")),
        )
        .expect_err("a server certificate");
        let text = e.to_string();
        assert!(
            text.contains("web1.pem is not a client certificate")
                && text.contains("server certificate")
                && text.contains("pki issue --client"),
            "{text}"
        );
    }

    #[test]
    fn an_expired_or_future_client_certificate_is_refused_before_dialling() {
        use rcgen::{CertificateParams, IsCa, Issuer, KeyPair, date_time_ymd};
        let dir = tempfile::tempdir().expect("tempdir");
        crate::pki::init(dir.path(), false).expect("init");
        let path = |f: &str| dir.path().join(f);
        let ca_key = KeyPair::from_pem(&std::fs::read_to_string(path("ca-key.pem")).expect("key"))
            .expect("CA key");
        let ca_cert = std::fs::read_to_string(path("ca.pem")).expect("ca");
        let issuer = Issuer::new(crate::pki::ca_params(&ca_key), ca_key);
        let cases = [
            ("old", (2020, 2021), "expired on"),
            ("new", (2090, 2091), "is not valid yet"),
        ];
        for (name, (from, until), says) in cases {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
            params.is_ca = IsCa::NoCa;
            params.not_before = date_time_ymd(from, 1, 1);
            params.not_after = date_time_ymd(until, 1, 1);
            let cert = params.signed_by(&key, &issuer).expect("sign");
            std::fs::write(path(&format!("{name}.pem")), cert.pem()).expect("write");
            std::fs::write(path(&format!("{name}-key.pem")), key.serialize_pem()).expect("write");
            let e = TlsConfig::from_files(
                &path("ca.pem"),
                Some(&path(&format!("{name}.pem"))),
                Some(&path(&format!("{name}-key.pem"))),
            )
            .expect_err("refused");
            let text = e.to_string();
            assert!(
                text.contains(&format!("{name}.pem")) && text.contains(says),
                "{text}"
            );
            // PEM handed over directly is checked the same way.
            let tls = TlsConfig {
                ca_pem: ca_cert.clone().into_bytes(),
                identity: Some((cert.pem().into_bytes(), key.serialize_pem().into_bytes())),
                server_name: None,
            };
            let e = tls.check().expect_err("refused");
            assert!(e.to_string().contains(says), "{e}");
        }
    }
}
