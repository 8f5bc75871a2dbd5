//! Who may do what: a role for each verified client certificate.
//!
//! A client's identity is the subject common name and the DNS, e-mail and
//! URI names of its certificate (`hostscope pki issue --client --name NAME`
//! puts NAME in both the CN and a SAN). The fleet CA has already vouched for
//! the certificate, in the TLS handshake and again for this call against
//! the client CA in force ([`crate::tls::ClientCaLayer`], so that a CA replaced
//! since the connection was made vouches for nothing); this only decides
//! the role.
//! `reader` may call every read RPC; `operator` may also signal processes.
//! No operator is configured by default, so no one can signal until a
//! person decides so. Some classes of data say a lot about a host (its
//! connections, open files, environments, memory maps): the configuration
//! can withhold each from readers; operators see them all.

use rustls::pki_types::CertificateDer;
use x509_parser::{extensions::GeneralName, prelude::FromDer};

/// The names a verified client certificate carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The CN first, then the subject alternative names. Empty for a
    /// plaintext (loopback-only) client.
    pub names: Vec<String>,
}

impl Identity {
    /// The identity of the leaf certificate of a verified chain.
    pub fn from_certificate(cert: &CertificateDer<'_>) -> Identity {
        let Ok((_, cert)) = x509_parser::certificate::X509Certificate::from_der(cert) else {
            return Identity::default();
        };
        let mut names: Vec<String> = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
            .collect();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                let name = match name {
                    GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                        (*s).to_owned()
                    }
                    _ => continue,
                };
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        Identity { names }
    }

    /// The identity of the client that made `request`.
    pub fn of<T>(request: &tonic::Request<T>) -> Identity {
        request
            .peer_certs()
            .and_then(|certs| certs.first().map(Identity::from_certificate))
            .unwrap_or_default()
    }

    /// How logs and audit lines name the client.
    pub fn display(&self) -> &str {
        self.names.first().map_or("anonymous", String::as_str)
    }
}

/// A class of data that the configuration can withhold from readers.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum DataClass {
    /// Sockets (ListConnections).
    Connections,
    /// Open descriptors (ListOpenFiles).
    OpenFiles,
    /// Process environments (the `environ` field).
    Environ,
    /// Process memory maps (the `memory_maps` field).
    MemoryMaps,
}

impl DataClass {
    /// The name the configuration and `GetHost` use: "open_files".
    pub fn name(self) -> &'static str {
        match self {
            DataClass::Connections => "connections",
            DataClass::OpenFiles => "open_files",
            DataClass::Environ => "environ",
            DataClass::MemoryMaps => "memory_maps",
        }
    }
}

/// Which identities hold which role, and what readers may not see.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Identities that may read; `None`: any client the fleet CA signed
    /// (and, on a loopback plaintext agent, any local client).
    pub readers: Option<Vec<String>>,
    /// Identities that may also signal processes.
    pub operators: Vec<String>,
    /// Classes of data withheld from readers (operators see them).
    pub withheld: Vec<DataClass>,
}

impl Policy {
    /// Whether `id` may call the read RPCs.
    pub fn may_read(&self, id: &Identity) -> bool {
        match &self.readers {
            None => true,
            Some(readers) => self.may_operate(id) || id.names.iter().any(|n| readers.contains(n)),
        }
    }

    /// Whether `id` may signal processes.
    pub fn may_operate(&self, id: &Identity) -> bool {
        id.names.iter().any(|n| self.operators.contains(n))
    }

    /// The classes of data withheld from `id`: none for an operator.
    pub fn withheld_from(&self, id: &Identity) -> Vec<DataClass> {
        if self.may_operate(id) {
            return Vec::new();
        }
        let mut classes = self.withheld.clone();
        classes.sort();
        classes.dedup();
        classes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: &str, sans: &[&str]) -> CertificateDer<'static> {
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn identity_is_the_cn_then_the_san_names() {
        let id = Identity::from_certificate(&cert("alice", &["alice", "ops.example.net"]));
        assert_eq!(id.names, ["alice", "ops.example.net"]);
        assert_eq!(id.display(), "alice");
        assert_eq!(Identity::default().display(), "anonymous");
        let garbage = CertificateDer::from(vec![0u8; 12]);
        assert!(Identity::from_certificate(&garbage).names.is_empty());
    }

    #[test]
    fn nobody_operates_by_default_and_everybody_reads() {
        let policy = Policy::default();
        let alice = Identity {
            names: vec!["alice".into()],
        };
        assert!(policy.may_read(&alice));
        assert!(!policy.may_operate(&alice));
        assert!(!policy.may_operate(&Identity::default()));
    }

    #[test]
    fn listed_readers_and_operators() {
        let policy = Policy {
            readers: Some(vec!["monitor".into()]),
            operators: vec!["ops.example.net".into()],
            ..Policy::default()
        };
        let id = |names: &[&str]| Identity {
            names: names.iter().map(|s| s.to_string()).collect(),
        };
        assert!(policy.may_read(&id(&["monitor"])));
        assert!(!policy.may_operate(&id(&["monitor"])));
        assert!(policy.may_operate(&id(&["bob", "ops.example.net"])));
        assert!(policy.may_read(&id(&["bob", "ops.example.net"])));
        assert!(!policy.may_read(&id(&["mallory"])));
        assert!(!policy.may_read(&Identity::default()));
    }

    #[test]
    fn withheld_classes_are_hidden_from_readers_only() {
        let policy = Policy {
            operators: vec!["bob".into()],
            withheld: vec![
                DataClass::OpenFiles,
                DataClass::Connections,
                DataClass::OpenFiles,
            ],
            ..Policy::default()
        };
        let id = |name: &str| Identity {
            names: vec![name.into()],
        };
        assert_eq!(
            policy.withheld_from(&id("alice")),
            [DataClass::Connections, DataClass::OpenFiles]
        );
        assert!(policy.withheld_from(&id("bob")).is_empty());
        assert!(Policy::default().withheld_from(&id("alice")).is_empty());
        assert_eq!(DataClass::OpenFiles.name(), "open_files");
    }
}
