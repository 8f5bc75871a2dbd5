//! TLS material for talking to agents: the fleet CA to trust and the
//! client's own certificate, checked when loaded so that a wrong file is
//! reported by name instead of as a failed handshake later.

use std::{
    path::Path,
    sync::{Arc, Once},
};

use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
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
}
