//! The client's one error type, and the single place where gRPC statuses and
//! transport failures are turned into it.
//!
//! Two sources need translating. Call-level errors arrive as gRPC statuses
//! carrying `google.rpc.ErrorInfo` (domain `hostscope`); their reason names
//! an `ErrorKind`. Transport and TLS failures arrive as opaque error chains
//! whose only reliable content is their text (with TLS 1.3 a rejected client
//! certificate even shows up as `Unknown` on the first call), so they are
//! classified by the words rustls, hyper and the OS put into them.

use std::{error::Error as StdError, path::PathBuf};

use hostscope_proto::{self as proto, EnumName};
use tonic::Code;
use tonic_types::StatusExt;

/// Which end of a TLS connection refused the other's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectedBy {
    /// The agent refused this client's certificate: it was not issued by a
    /// CA in the agent's `--client-ca`.
    Agent,
    /// This client refused the agent's certificate: it was not issued by
    /// the CA this client was told to trust.
    Client,
}

/// What an endpoint that did not speak as this client expected turned out
/// to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// TLS, while this client spoke plaintext (`--plaintext`).
    Tls,
    /// Plaintext HTTP/2, while this client spoke TLS: an agent started
    /// with `--insecure-plaintext`.
    PlaintextHttp2,
    /// HTTP/1: a web server or proxy, not an agent.
    Http1,
    /// Something that is neither TLS nor HTTP/2, or hung up.
    Other,
}

/// Everything that can go wrong talking to an agent, in psutil's terms where
/// psutil has one (`NoSuchProcess`, `ZombieProcess`, `AccessDenied`) and in
/// plain words for transport and TLS failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The process does not exist (any more).
    #[error("no such process{}", pid_suffix(*.pid))]
    NoSuchProcess {
        /// The pid asked about, when known.
        pid: Option<u32>,
    },

    /// The process has exited and its parent has not reaped it yet. A
    /// refinement of [`Error::NoSuchProcess`]: see [`Error::is_not_found`].
    #[error("{}", zombie_text(*.pid, *.ppid, .name.as_deref()))]
    ZombieProcess {
        /// The zombie's pid.
        pid: u32,
        /// Its parent, the process that should reap it, when known.
        ppid: Option<u32>,
        /// Its name, when known.
        name: Option<String>,
    },

    /// The agent is not allowed to read this, or this client may not ask.
    #[error("access denied{}: {message}", pid_suffix(*.pid))]
    AccessDenied {
        /// The process concerned, when known.
        pid: Option<u32>,
        /// What the agent said.
        message: String,
    },

    /// The agent's platform cannot supply this.
    #[error("not supported by the agent's platform: {message}")]
    Unsupported {
        /// What is not supported.
        message: String,
    },

    /// Something took too long: a call's deadline or the connect timeout.
    #[error("{message}")]
    Timeout {
        /// What timed out and after how long, in words that say it timed
        /// out ("no answer from web1:7443 within 10s").
        message: String,
    },

    /// Signalling needs the operator role, and this client's certificate
    /// does not hold it.
    #[error("operator role needed: {message}")]
    OperatorRequired {
        /// What the agent said, naming this client's identity.
        message: String,
    },

    /// The pid now belongs to another process than the one the caller saw:
    /// nothing was signalled.
    #[error("pid {pid} was reused: {message}")]
    PidReused {
        /// The pid.
        pid: u32,
        /// What the agent said.
        message: String,
    },

    /// The agent never signals pid 0, pid 1 or itself.
    #[error("{message}")]
    ProtectedProcess {
        /// The pid.
        pid: u32,
        /// Why.
        message: String,
    },

    /// The request was malformed: a bad pid, glob, field or endpoint.
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// What is wrong with it.
        message: String,
    },

    /// A process accessor was called for a field the listing did not ask
    /// for, so the agent never read it.
    #[error("the field {} was not requested", .field.short_name())]
    FieldNotRequested {
        /// The field that was read without being requested.
        field: proto::ProcessField,
    },

    /// Nothing listens on the endpoint's port.
    #[error("{endpoint} refused the connection: is hostscope-agent running and listening there?")]
    ConnectionRefused {
        /// The endpoint, as `host:port`.
        endpoint: String,
    },

    /// The endpoint's host name could not be resolved.
    #[error("cannot resolve the host name of {endpoint}: {message}")]
    Resolve {
        /// The endpoint, as `host:port`.
        endpoint: String,
        /// What the resolver said.
        message: String,
    },

    /// The agent demands a client certificate and this client presented
    /// none.
    #[error(
        "the agent at {endpoint} requires a client certificate, and none was presented: \
         give this client a certificate and key issued by the fleet CA"
    )]
    NoClientCertificate {
        /// The endpoint, as `host:port`.
        endpoint: String,
    },

    /// One side's certificate was not issued by a CA the other side trusts.
    #[error("{}", unknown_ca_text(.endpoint, *.side))]
    UnknownCa {
        /// The endpoint, as `host:port`.
        endpoint: String,
        /// Which side refused the other's certificate.
        side: RejectedBy,
    },

    /// The agent's certificate does not name the host this client expected.
    #[error(
        "the certificate of the agent at {endpoint} is not valid for the name {name:?}: \
         issue it with that name as a SAN, or check a different server name"
    )]
    NameMismatch {
        /// The endpoint, as `host:port`.
        endpoint: String,
        /// The name the certificate was checked against.
        name: String,
    },

    /// One side speaks TLS and the other plaintext, or what answers is no
    /// gRPC server at all: a plaintext client talking to a TLS agent, a
    /// TLS client talking to an agent started with `--insecure-plaintext`,
    /// or either talking to another kind of server.
    #[error("{}", not_tls_text(.endpoint, *.peer))]
    NotTls {
        /// The endpoint, as `host:port`.
        endpoint: String,
        /// What the endpoint turned out to speak.
        peer: Peer,
    },

    /// The agent refused this client's certificate because it is not meant
    /// for clients: its extended key usage does not allow client
    /// authentication (an agent's certificate given as `--cert`).
    #[error(
        "the agent at {endpoint} refused this client's certificate: it is not a client \
         certificate (its extended key usage does not allow client authentication; is it an \
         agent's?): issue one with `hostscope pki issue --client` and pass it as --cert"
    )]
    NotAClientCertificate {
        /// The endpoint, as `host:port`.
        endpoint: String,
    },

    /// Any other failure to reach or keep talking to the agent.
    #[error("cannot talk to {endpoint}: {message}")]
    Transport {
        /// The endpoint, as `host:port`.
        endpoint: String,
        /// The whole chain of causes, joined.
        message: String,
    },

    /// A gRPC status this crate has no better name for, code and message
    /// kept.
    #[error("the agent answered {:?}: {}", .0.code(), .0.message())]
    Status(tonic::Status),

    /// A local file could not be read or written.
    #[error("{}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// TLS material (PEM files, keys) is unusable.
    #[error("{message}")]
    Tls {
        /// What is wrong, naming the file where there is one.
        message: String,
    },

    /// Making or using the fleet CA failed.
    #[error("{message}")]
    Pki {
        /// What failed.
        message: String,
        /// The certificate library's reason, where it gave one.
        #[source]
        source: Option<rcgen::Error>,
    },
}

// === impl Error ===

impl Error {
    /// True when the process is gone: [`Error::NoSuchProcess`], and
    /// [`Error::ZombieProcess`], which refines it (as psutil's ZombieProcess
    /// subclasses NoSuchProcess).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::NoSuchProcess { .. } | Error::ZombieProcess { .. }
        )
    }

    /// The wire's `ErrorKind` of this error, for the five kinds the API
    /// defines; `None` for everything else.
    pub fn kind(&self) -> Option<proto::ErrorKind> {
        use proto::ErrorKind as K;
        match self {
            Error::NoSuchProcess { .. } => Some(K::NoSuchProcess),
            Error::ZombieProcess { .. } => Some(K::ZombieProcess),
            Error::AccessDenied { .. } => Some(K::AccessDenied),
            Error::Unsupported { .. } => Some(K::Unsupported),
            Error::Timeout { .. } => Some(K::Timeout),
            _ => None,
        }
    }

    /// A short, stable name for this error, for summaries and scripts:
    /// `timeout`, `connection-refused`, `unknown-ca`, ...
    pub fn label(&self) -> &'static str {
        match self {
            Error::NoSuchProcess { .. } => "no-such-process",
            Error::ZombieProcess { .. } => "zombie-process",
            Error::AccessDenied { .. } => "access-denied",
            Error::Unsupported { .. } => "unsupported",
            Error::Timeout { .. } => "timeout",
            Error::OperatorRequired { .. } => "operator-required",
            Error::PidReused { .. } => "pid-reused",
            Error::ProtectedProcess { .. } => "protected-process",
            Error::InvalidArgument { .. } => "invalid-argument",
            Error::FieldNotRequested { .. } => "field-not-requested",
            Error::ConnectionRefused { .. } => "connection-refused",
            Error::Resolve { .. } => "resolve",
            Error::NoClientCertificate { .. } => "no-client-certificate",
            Error::UnknownCa { .. } => "unknown-ca",
            Error::NameMismatch { .. } => "name-mismatch",
            Error::NotTls { .. } => "not-tls",
            Error::NotAClientCertificate { .. } => "not-a-client-certificate",
            Error::Transport { .. } => "transport",
            Error::Status(status) if status.code() == Code::Unavailable => "unavailable",
            Error::Status(_) => "status",
            Error::Io { .. } => "io",
            Error::Tls { .. } => "tls-config",
            Error::Pki { .. } => "pki",
        }
    }

    /// Whether trying again may help: the agent was not reachable (gRPC's
    /// UNAVAILABLE: refused, reset, restarting). TLS and certificate
    /// failures are not retried: they fail the same way every time.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::ConnectionRefused { .. } | Error::Transport { .. } => true,
            Error::Status(status) => status.code() == Code::Unavailable,
            _ => false,
        }
    }

    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The error for a field error of `kind` on a process, as its accessor
    /// reports it.
    pub(crate) fn from_field_error(
        kind: proto::ErrorKind,
        field: proto::ProcessField,
        process: &proto::Process,
    ) -> Error {
        use proto::ErrorKind as K;
        let pid = process.pid;
        let field = field.short_name();
        match kind {
            K::NoSuchProcess => Error::NoSuchProcess { pid: Some(pid) },
            K::ZombieProcess => Error::ZombieProcess {
                pid,
                ppid: process.ppid,
                name: process.name.clone(),
            },
            K::AccessDenied => Error::AccessDenied {
                pid: Some(pid),
                message: format!("the agent may not read {field} of process {pid}"),
            },
            K::Unsupported => Error::Unsupported {
                message: format!("{field} of a process"),
            },
            K::Timeout => Error::Timeout {
                message: format!("reading {field} of process {pid} timed out on the agent"),
            },
            // Call-level kinds that no field error carries.
            K::Unspecified | K::OperatorRequired | K::PidReused | K::ProtectedProcess => {
                Error::Status(tonic::Status::unknown(format!(
                    "the agent could not read {field} of process {pid}, for a reason this client \
                 does not know"
                )))
            }
        }
    }
}

fn pid_suffix(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
}

fn zombie_text(pid: u32, ppid: Option<u32>, name: Option<&str>) -> String {
    let name = name.map(|n| format!(" ({n})")).unwrap_or_default();
    let parent = match ppid {
        Some(p) => format!("its parent {p} has"),
        None => "its parent has".to_owned(),
    };
    format!("process {pid}{name} is a zombie: it has exited and {parent} not reaped it")
}

fn not_tls_text(endpoint: &str, peer: Peer) -> String {
    match peer {
        Peer::Tls => format!(
            "{endpoint} speaks TLS and this client was told to speak plaintext (--plaintext): \
             drop --plaintext and pass --ca, --cert and --key"
        ),
        Peer::PlaintextHttp2 => format!(
            "{endpoint} speaks plaintext (an agent started with --insecure-plaintext) and this \
             client TLS: pass --plaintext, or start the agent with --cert, --key and --client-ca"
        ),
        Peer::Http1 => format!(
            "{endpoint} answered in HTTP/1, so it is no hostscope agent (a web server or \
             proxy?): check the address and port"
        ),
        Peer::Other => format!(
            "{endpoint} does not speak gRPC as a hostscope agent does (neither TLS nor \
             HTTP/2): check the address and port, and whether the agent uses TLS (--plaintext \
             only for an agent started with --insecure-plaintext)"
        ),
    }
}

fn unknown_ca_text(endpoint: &str, side: RejectedBy) -> String {
    match side {
        RejectedBy::Agent => format!(
            "the agent at {endpoint} rejected this client's certificate: it was not issued \
             by a CA the agent trusts (the agent's --client-ca)"
        ),
        RejectedBy::Client => format!(
            "the certificate of the agent at {endpoint} was not issued by the CA this client \
             trusts: check the CA file given to the client"
        ),
    }
}

// === mapping from the wire ===

/// What the client knew when a call failed, so that errors can say which
/// agent, which pid and which TLS name were involved.
#[derive(Debug, Clone)]
pub(crate) struct CallContext {
    /// The endpoint as `host:port`.
    pub(crate) endpoint: String,
    /// The name the agent's certificate is checked against; `None` for
    /// plaintext.
    pub(crate) server_name: Option<String>,
}

/// Turns a failed call's status into an [`Error`]. `pid` is the pid the
/// call was about, used when the agent's details do not name one.
pub(crate) fn from_status(status: tonic::Status, ctx: &CallContext, pid: Option<u32>) -> Error {
    if let Some(info) = status.get_details_error_info()
        && info.domain == proto::ERROR_DOMAIN
        && let Some(kind) = proto::ErrorKind::from_short_name(&info.reason)
    {
        let meta_u32 = |key: &str| info.metadata.get(key).and_then(|v| v.parse::<u32>().ok());
        let pid = meta_u32("pid").or(pid);
        let message = status.message().to_owned();
        return match kind {
            proto::ErrorKind::NoSuchProcess => Error::NoSuchProcess { pid },
            proto::ErrorKind::ZombieProcess => Error::ZombieProcess {
                pid: pid.unwrap_or_default(),
                ppid: meta_u32("ppid"),
                name: info.metadata.get("name").cloned(),
            },
            proto::ErrorKind::AccessDenied => Error::AccessDenied { pid, message },
            proto::ErrorKind::Unsupported => Error::Unsupported { message },
            proto::ErrorKind::Timeout => Error::Timeout {
                message: format!("the agent timed out: {message}"),
            },
            proto::ErrorKind::OperatorRequired => Error::OperatorRequired { message },
            proto::ErrorKind::PidReused => Error::PidReused {
                pid: pid.unwrap_or_default(),
                message,
            },
            proto::ErrorKind::ProtectedProcess => Error::ProtectedProcess {
                pid: pid.unwrap_or_default(),
                message,
            },
            proto::ErrorKind::Unspecified => Error::Status(status),
        };
    }
    match status.code() {
        Code::NotFound => Error::NoSuchProcess { pid },
        Code::InvalidArgument => Error::InvalidArgument {
            message: status.message().to_owned(),
        },
        Code::PermissionDenied => Error::AccessDenied {
            pid,
            message: status.message().to_owned(),
        },
        Code::Unimplemented => Error::Unsupported {
            message: status.message().to_owned(),
        },
        Code::DeadlineExceeded => Error::Timeout {
            message: format!("the call timed out: {}", status.message()),
        },
        // Transport and TLS failures surface as these codes, with the real
        // cause somewhere in the source chain or the message.
        Code::Unknown | Code::Cancelled | Code::Unavailable | Code::Internal => {
            let message = status.message();
            // tonic copies the cause's text into the message: say it once.
            let text = match status.source().map(chain_text) {
                Some(causes) if causes.starts_with(message) => causes,
                Some(causes) => format!("{message}: {causes}"),
                None => message.to_owned(),
            };
            match classify_transport(&text, ctx) {
                Some(e) => e,
                // A status with a source was made from a local transport
                // failure, not sent by the agent: say so, with every cause.
                None if status.source().is_some() => Error::Transport {
                    endpoint: ctx.endpoint.clone(),
                    message: text,
                },
                None => Error::Status(status),
            }
        }
        _ => Error::Status(status),
    }
}

/// Turns a failure to connect into an [`Error`].
pub(crate) fn from_transport(err: &(dyn StdError + 'static), ctx: &CallContext) -> Error {
    let text = chain_text(err);
    classify_transport(&text, ctx).unwrap_or_else(|| Error::Transport {
        endpoint: ctx.endpoint.clone(),
        message: text,
    })
}

/// Every message in an error's source chain, joined with ": ", skipping a
/// message that merely repeats the one before it (hyper and tonic wrap the
/// same text several times) or is contained in it (`io::Error` displays its
/// inner error and also returns it as the source).
pub(crate) fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        let repeated = parts.last().is_some_and(|last| last.contains(&text));
        if !text.is_empty() && !repeated {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Recognises TLS and connection failures by the words in their error
/// chain. The patterns cover rustls's `Display` of its errors and alerts,
/// hyper's and h2's connection errors, and the OS's texts for refused
/// connections and unknown host names.
pub(crate) fn classify_transport(text: &str, ctx: &CallContext) -> Option<Error> {
    let t = text.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| t.contains(n));
    let endpoint = ctx.endpoint.clone();

    // Alerts the agent sent: it refused our certificate (or its absence).
    if has(&["certificaterequired", "certificate required"]) {
        return Some(Error::NoClientCertificate { endpoint });
    }
    // rustls sends this alert for a certificate whose extended key usage
    // does not fit its use: a server certificate presented by a client.
    if has(&["alert: unsupportedcertificate"]) {
        return Some(Error::NotAClientCertificate { endpoint });
    }
    if has(&[
        "alert: unknownca",
        "alert: badcertificate",
        "alert: certificateunknown",
    ]) {
        return Some(Error::UnknownCa {
            endpoint,
            side: RejectedBy::Agent,
        });
    }
    // Our own verification of the agent's certificate.
    if has(&["not valid for name", "notvalidforname"]) {
        let name = ctx.server_name.clone().unwrap_or_default();
        return Some(Error::NameMismatch { endpoint, name });
    }
    if has(&[
        "invalid peer certificate: unknownissuer",
        "invalid peer certificate: badsignature",
    ]) {
        return Some(Error::UnknownCa {
            endpoint,
            side: RejectedBy::Client,
        });
    }
    // A TLS client reading plaintext HTTP/2 (the agent's SETTINGS frame is
    // not a TLS record), or a plaintext client whose preface a TLS agent
    // could not parse and answered with garbage or a hang-up.
    if has(&[
        "corrupt message",
        "invalidcontenttype",
        "invalid http version",
        "frame with invalid size",
        "invalid preface",
        "http2 error: connection error detected: frame",
    ]) {
        // Which of them it is, the text cannot tell: the probe looks.
        return Some(Error::NotTls {
            endpoint,
            peer: Peer::Other,
        });
    }
    // A plaintext client's preface makes a TLS agent hang up (or answer
    // with a TLS alert that is no HTTP/2 frame) before the first call
    // completes.
    if ctx.server_name.is_none()
        && has(&[
            "broken pipe",
            "connection reset",
            "unexpected eof",
            "early eof",
        ])
    {
        return Some(Error::NotTls {
            endpoint,
            peer: Peer::Other,
        });
    }
    if has(&["connection refused"]) {
        return Some(Error::ConnectionRefused { endpoint });
    }
    if has(&[
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "nodename nor servname",
        "no address associated",
        "temporary failure in name resolution",
    ]) {
        return Some(Error::Resolve {
            endpoint,
            message: text.to_owned(),
        });
    }
    if has(&[
        "handshaketimeout",
        "handshake timed out",
        "timed out",
        "deadline has elapsed",
    ]) {
        return Some(Error::Timeout {
            message: format!("connecting to {endpoint}: {text}"),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, fmt, sync::Arc};

    use tonic_types::ErrorDetails;

    use super::*;

    fn ctx() -> CallContext {
        CallContext {
            endpoint: "web1:7443".to_owned(),
            server_name: Some("web1".to_owned()),
        }
    }

    fn rich(code: Code, reason: &str, meta: &[(&str, &str)]) -> tonic::Status {
        let meta: HashMap<String, String> = meta
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        tonic::Status::with_error_details(
            code,
            "from the agent",
            ErrorDetails::with_error_info(reason, proto::ERROR_DOMAIN, meta),
        )
    }

    /// A status as tonic makes it from a transport failure: a generic code
    /// and message, the real cause in the source chain.
    fn transport_status(code: Code, cause: &str) -> tonic::Status {
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, cause.to_owned());
        let mut status = tonic::Status::new(code, "transport error");
        status.set_source(Arc::new(io));
        status
    }

    #[test]
    fn no_such_process_reads_the_pid_from_metadata() {
        let e = from_status(
            rich(Code::NotFound, "NO_SUCH_PROCESS", &[("pid", "42")]),
            &ctx(),
            None,
        );
        assert!(matches!(e, Error::NoSuchProcess { pid: Some(42) }), "{e:?}");
        assert!(e.is_not_found());
        assert_eq!(e.kind(), Some(proto::ErrorKind::NoSuchProcess));
    }

    #[test]
    fn zombie_is_not_found_and_names_its_parent() {
        let status = rich(
            Code::NotFound,
            "ZOMBIE_PROCESS",
            &[("pid", "7"), ("ppid", "3"), ("name", "defunct")],
        );
        let e = from_status(status, &ctx(), Some(7));
        match &e {
            Error::ZombieProcess { pid, ppid, name } => {
                assert_eq!(
                    (*pid, *ppid, name.as_deref()),
                    (7, Some(3), Some("defunct"))
                );
            }
            other => panic!("expected ZombieProcess, got {other:?}"),
        }
        assert!(e.is_not_found());
        assert_eq!(e.kind(), Some(proto::ErrorKind::ZombieProcess));
        assert!(e.to_string().contains("parent 3"), "{e}");
    }

    #[test]
    fn the_other_kinds_map_by_reason() {
        let cases = [
            (
                Code::PermissionDenied,
                "ACCESS_DENIED",
                proto::ErrorKind::AccessDenied,
            ),
            (
                Code::Unimplemented,
                "UNSUPPORTED",
                proto::ErrorKind::Unsupported,
            ),
            (Code::DeadlineExceeded, "TIMEOUT", proto::ErrorKind::Timeout),
        ];
        for (code, reason, kind) in cases {
            let e = from_status(rich(code, reason, &[("pid", "9")]), &ctx(), None);
            assert_eq!(e.kind(), Some(kind), "{reason}: {e:?}");
            assert!(!e.is_not_found());
        }
        let e = from_status(
            rich(Code::PermissionDenied, "ACCESS_DENIED", &[("pid", "9")]),
            &ctx(),
            None,
        );
        assert!(
            matches!(e, Error::AccessDenied { pid: Some(9), .. }),
            "{e:?}"
        );
    }

    #[test]
    fn plain_codes_without_details_still_map() {
        let e = from_status(tonic::Status::not_found("gone"), &ctx(), Some(5));
        assert!(matches!(e, Error::NoSuchProcess { pid: Some(5) }), "{e:?}");
        let e = from_status(tonic::Status::invalid_argument("pid 0"), &ctx(), None);
        assert!(
            matches!(&e, Error::InvalidArgument { message } if message == "pid 0"),
            "{e:?}"
        );
        let e = from_status(tonic::Status::resource_exhausted("busy"), &ctx(), None);
        assert!(
            matches!(&e, Error::Status(s) if s.code() == Code::ResourceExhausted),
            "{e:?}"
        );
        assert!(e.to_string().contains("ResourceExhausted: busy"), "{e}");
    }

    #[test]
    fn foreign_error_info_is_not_trusted() {
        let status = tonic::Status::with_error_details(
            Code::NotFound,
            "no such table",
            ErrorDetails::with_error_info("ZOMBIE_PROCESS", "example.net", HashMap::new()),
        );
        let e = from_status(status, &ctx(), None);
        assert!(matches!(e, Error::NoSuchProcess { pid: None }), "{e:?}");
    }

    #[test]
    fn tls_alerts_on_the_first_call_become_clear_errors() {
        let e = from_status(
            transport_status(Code::Unknown, "received fatal alert: CertificateRequired"),
            &ctx(),
            None,
        );
        assert!(matches!(e, Error::NoClientCertificate { .. }), "{e:?}");

        // An agent's certificate presented as the client's.
        let e = from_status(
            transport_status(
                Code::Unknown,
                "received fatal alert: UnsupportedCertificate",
            ),
            &ctx(),
            None,
        );
        assert!(matches!(e, Error::NotAClientCertificate { .. }), "{e:?}");
        assert!(e.to_string().contains("pki issue --client"), "{e}");

        for alert in ["UnknownCA", "BadCertificate"] {
            let text = format!("received fatal alert: {alert}");
            let e = from_status(transport_status(Code::Cancelled, &text), &ctx(), None);
            assert!(
                matches!(
                    e,
                    Error::UnknownCa {
                        side: RejectedBy::Agent,
                        ..
                    }
                ),
                "{alert}: {e:?}"
            );
        }
    }

    #[test]
    fn our_own_verification_failures_become_clear_errors() {
        let c = ctx();
        let e = classify_transport("invalid peer certificate: UnknownIssuer", &c);
        assert!(
            matches!(
                e,
                Some(Error::UnknownCa {
                    side: RejectedBy::Client,
                    ..
                })
            ),
            "{e:?}"
        );
        let e = classify_transport(
            "invalid peer certificate: certificate not valid for name \"web1\"; certificate \
             is only valid for DnsName(\"web2\")",
            &c,
        );
        assert!(
            matches!(&e, Some(Error::NameMismatch { name, .. }) if name == "web1"),
            "{e:?}"
        );
        let e = classify_transport("received corrupt message of type InvalidContentType", &c);
        assert!(matches!(e, Some(Error::NotTls { .. })), "{e:?}");
    }

    #[test]
    fn connection_failures_become_clear_errors() {
        let c = ctx();
        let e = classify_transport("tcp connect error: Connection refused (os error 111)", &c);
        assert!(
            matches!(&e, Some(Error::ConnectionRefused { endpoint }) if endpoint == "web1:7443")
        );
        let e = classify_transport(
            "dns error: failed to lookup address information: Name or service not known",
            &c,
        );
        assert!(matches!(e, Some(Error::Resolve { .. })), "{e:?}");
        assert!(classify_transport("something else entirely", &c).is_none());
        // Said once: the label names the kind, the text says it timed out.
        let e = classify_transport("handshake timed out", &c).expect("timeout");
        assert_eq!(
            e.to_string(),
            "connecting to web1:7443: handshake timed out"
        );
    }

    #[test]
    fn unknown_transport_errors_keep_their_whole_chain() {
        let inner = std::io::Error::other("the wire caught fire");
        let mut status = tonic::Status::unknown("transport error");
        status.set_source(Arc::new(inner));
        let e = from_status(status, &ctx(), None);
        assert!(
            matches!(&e, Error::Transport { message, .. }
                if message == "transport error: the wire caught fire"),
            "{e:?}"
        );
        let e = from_status(tonic::Status::unknown("handler panicked"), &ctx(), None);
        assert!(matches!(e, Error::Status(_)), "{e:?}");

        let outer = std::io::Error::other("the wire caught fire");
        let e = from_transport(&outer, &ctx());
        assert!(
            matches!(&e, Error::Transport { message, .. } if message == "the wire caught fire"),
            "{e:?}"
        );
    }

    /// An error with a message and an optional cause, as hyper and tonic
    /// nest theirs.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for Layer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_deref().map(|l| l as &(dyn StdError + 'static))
        }
    }

    #[test]
    fn chain_text_says_each_cause_once() {
        let chain = Layer(
            "transport error",
            Some(Box::new(Layer(
                "transport error",
                Some(Box::new(Layer("received fatal alert: UnknownCA", None))),
            ))),
        );
        assert_eq!(
            chain_text(&chain),
            "transport error: received fatal alert: UnknownCA"
        );
    }
}
