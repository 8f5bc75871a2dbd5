//! The client's one error type, and the single place where gRPC statuses and
//! transport failures are turned into it.
//!
//! Two sources need translating. Call-level errors arrive as gRPC statuses
//! carrying `google.rpc.ErrorInfo` (domain `hostscope`); their reason names
//! an `ErrorKind`. Transport and TLS failures arrive as error chains (with
//! TLS 1.3 a rejected client certificate even shows up as `Unknown` on the
//! first call): the chain is walked and its errors recognised by type, the
//! TLS alert the agent sent, rustls's own verdict on the agent's
//! certificate, the OS's error kind, hyper's and h2's protocol errors.

use std::{error::Error as StdError, io, path::PathBuf};

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

/// A gRPC status code, as [`Error::Status`] carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusCode {
    /// OK: not an error; never carried by an [`Error`].
    Ok,
    /// CANCELLED.
    Cancelled,
    /// UNKNOWN.
    Unknown,
    /// INVALID_ARGUMENT.
    InvalidArgument,
    /// DEADLINE_EXCEEDED.
    DeadlineExceeded,
    /// NOT_FOUND.
    NotFound,
    /// ALREADY_EXISTS.
    AlreadyExists,
    /// PERMISSION_DENIED.
    PermissionDenied,
    /// RESOURCE_EXHAUSTED.
    ResourceExhausted,
    /// FAILED_PRECONDITION.
    FailedPrecondition,
    /// ABORTED.
    Aborted,
    /// OUT_OF_RANGE.
    OutOfRange,
    /// UNIMPLEMENTED.
    Unimplemented,
    /// INTERNAL.
    Internal,
    /// UNAVAILABLE.
    Unavailable,
    /// DATA_LOSS.
    DataLoss,
    /// UNAUTHENTICATED.
    Unauthenticated,
}

impl From<Code> for StatusCode {
    fn from(code: Code) -> StatusCode {
        match code {
            Code::Ok => StatusCode::Ok,
            Code::Cancelled => StatusCode::Cancelled,
            Code::Unknown => StatusCode::Unknown,
            Code::InvalidArgument => StatusCode::InvalidArgument,
            Code::DeadlineExceeded => StatusCode::DeadlineExceeded,
            Code::NotFound => StatusCode::NotFound,
            Code::AlreadyExists => StatusCode::AlreadyExists,
            Code::PermissionDenied => StatusCode::PermissionDenied,
            Code::ResourceExhausted => StatusCode::ResourceExhausted,
            Code::FailedPrecondition => StatusCode::FailedPrecondition,
            Code::Aborted => StatusCode::Aborted,
            Code::OutOfRange => StatusCode::OutOfRange,
            Code::Unimplemented => StatusCode::Unimplemented,
            Code::Internal => StatusCode::Internal,
            Code::Unavailable => StatusCode::Unavailable,
            Code::DataLoss => StatusCode::DataLoss,
            Code::Unauthenticated => StatusCode::Unauthenticated,
        }
    }
}

/// A TLS alert with which the agent refused this client's certificate (see
/// [`Error::TlsRefused`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsAlert {
    /// `certificate_expired`: outside its validity period by the agent's
    /// clock.
    CertificateExpired,
    /// `bad_certificate`: malformed, or its signature does not verify.
    BadCertificate,
    /// `certificate_revoked`.
    CertificateRevoked,
    /// `certificate_unknown`: refused for a reason the agent did not name.
    CertificateUnknown,
    /// `access_denied`.
    AccessDenied,
    /// Another alert, by its name in rustls.
    Other(String),
}

impl TlsAlert {
    fn from_rustls(alert: rustls::AlertDescription) -> TlsAlert {
        use rustls::AlertDescription as A;
        match alert {
            A::CertificateExpired => TlsAlert::CertificateExpired,
            A::BadCertificate => TlsAlert::BadCertificate,
            A::CertificateRevoked => TlsAlert::CertificateRevoked,
            A::CertificateUnknown => TlsAlert::CertificateUnknown,
            A::AccessDenied => TlsAlert::AccessDenied,
            other => TlsAlert::Other(format!("{other:?}")),
        }
    }

    /// The alert's label: `certificate-expired`, `bad-certificate`, ...
    pub fn label(&self) -> &'static str {
        match self {
            TlsAlert::CertificateExpired => "certificate-expired",
            TlsAlert::BadCertificate => "bad-certificate",
            TlsAlert::CertificateRevoked => "certificate-revoked",
            TlsAlert::CertificateUnknown => "certificate-unknown",
            TlsAlert::AccessDenied => "tls-access-denied",
            TlsAlert::Other(_) => "tls-alert",
        }
    }

    fn text(&self, endpoint: &str) -> String {
        let refused = format!("the agent at {endpoint} refused this client's certificate");
        match self {
            TlsAlert::CertificateExpired => format!(
                "{refused}: it has expired, or is not valid yet, by the agent's clock (check \
                 both clocks, or issue a new one with `hostscope pki issue --client`)"
            ),
            TlsAlert::BadCertificate => format!(
                "{refused} as bad: malformed, or its signature does not verify against the \
                 agent's client CA"
            ),
            TlsAlert::CertificateRevoked => format!("{refused}: it has been revoked"),
            TlsAlert::CertificateUnknown => {
                format!("{refused} without saying why (alert certificate_unknown)")
            }
            TlsAlert::AccessDenied => {
                format!("the agent at {endpoint} denied access during the TLS handshake")
            }
            TlsAlert::Other(name) => {
                format!("the agent at {endpoint} ended the TLS handshake with the alert {name}")
            }
        }
    }
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

    /// The agent's configuration withholds this class of data
    /// (connections, open files, environments, memory maps) from readers.
    #[error("withheld by the agent's configuration: {message}")]
    Withheld {
        /// What is withheld.
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

    /// The agent ended the TLS handshake with an alert about this client's
    /// certificate other than the ones above: expired, revoked, bad.
    #[error("{}", alert.text(.endpoint))]
    TlsRefused {
        /// The endpoint, as `host:port`.
        endpoint: String,
        /// The alert the agent sent.
        alert: TlsAlert,
    },

    /// The TLS handshake failed on this client's side for a reason other
    /// than the ones above (the agent's certificate expired, say).
    #[error("TLS with the agent at {endpoint} failed: {message}")]
    TlsHandshake {
        /// The endpoint, as `host:port`.
        endpoint: String,
        /// rustls's reason.
        message: String,
    },

    /// The agent refused a call on a connection whose client certificate
    /// it no longer trusts: its client CA was replaced, or the certificate
    /// expired, after the connection was made. A new connection is refused
    /// as well.
    #[error("the agent at {endpoint} no longer trusts this client's certificate: {message}")]
    Unauthenticated {
        /// The endpoint, as `host:port`.
        endpoint: String,
        /// What the agent said.
        message: String,
    },

    /// The agent's answer broke the API's contract (an error that should
    /// name a pid and does not).
    #[error("the agent's answer is malformed: {message}")]
    Protocol {
        /// What is wrong with it.
        message: String,
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
    #[error("the agent answered {code:?}: {message}")]
    Status {
        /// The status code.
        code: StatusCode,
        /// The status message.
        message: String,
    },

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

    /// The wire's `ErrorKind` of this error, for each of the nine kinds
    /// the API defines; `None` for everything else.
    pub fn kind(&self) -> Option<proto::ErrorKind> {
        use proto::ErrorKind as K;
        match self {
            Error::NoSuchProcess { .. } => Some(K::NoSuchProcess),
            Error::ZombieProcess { .. } => Some(K::ZombieProcess),
            Error::AccessDenied { .. } => Some(K::AccessDenied),
            Error::Unsupported { .. } => Some(K::Unsupported),
            Error::Withheld { .. } => Some(K::Withheld),
            Error::Timeout { .. } => Some(K::Timeout),
            Error::OperatorRequired { .. } => Some(K::OperatorRequired),
            Error::PidReused { .. } => Some(K::PidReused),
            Error::ProtectedProcess { .. } => Some(K::ProtectedProcess),
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
            Error::Withheld { .. } => "withheld",
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
            Error::TlsRefused { alert, .. } => alert.label(),
            Error::TlsHandshake { .. } => "tls-handshake",
            Error::Unauthenticated { .. } => "unauthenticated",
            Error::Protocol { .. } => "protocol",
            Error::Transport { .. } => "transport",
            Error::Status {
                code: StatusCode::Unavailable,
                ..
            } => "unavailable",
            Error::Status { .. } => "status",
            Error::Io { .. } => "io",
            Error::Tls { .. } => "tls-config",
            Error::Pki { .. } => "pki",
        }
    }

    /// Whether trying again may help: the agent was not reachable (gRPC's
    /// UNAVAILABLE: refused, reset, restarting). TLS, certificate and
    /// authentication failures are never retried: they fail the same way
    /// every time.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::ConnectionRefused { .. } | Error::Transport { .. } => true,
            Error::Status { code, .. } => *code == StatusCode::Unavailable,
            _ => false,
        }
    }

    /// The status for a code and message of the agent's.
    fn status(code: Code, message: impl Into<String>) -> Error {
        Error::Status {
            code: code.into(),
            message: message.into(),
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
            K::Withheld => Error::Withheld {
                message: format!("{field} of processes"),
            },
            K::Timeout => Error::Timeout {
                message: format!("reading {field} of process {pid} timed out on the agent"),
            },
            // Call-level kinds that no field error carries.
            K::Unspecified | K::OperatorRequired | K::PidReused | K::ProtectedProcess => {
                Error::Protocol {
                    message: format!(
                        "the agent could not read {field} of process {pid}, with an error kind \
                         ({}) that no field error carries",
                        kind.reason()
                    ),
                }
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
        // These kinds are about one process: without its pid the answer
        // cannot be acted on.
        let need_pid = |pid: Option<u32>| {
            pid.ok_or_else(|| Error::Protocol {
                message: format!("a {} error that names no pid: {message}", kind.reason()),
            })
        };
        let mapped = match kind {
            proto::ErrorKind::NoSuchProcess => Ok(Error::NoSuchProcess { pid }),
            proto::ErrorKind::ZombieProcess => need_pid(pid).map(|pid| Error::ZombieProcess {
                pid,
                ppid: meta_u32("ppid"),
                name: info.metadata.get("name").cloned(),
            }),
            proto::ErrorKind::AccessDenied => Ok(Error::AccessDenied {
                pid,
                message: message.clone(),
            }),
            proto::ErrorKind::Unsupported => Ok(Error::Unsupported {
                message: message.clone(),
            }),
            proto::ErrorKind::Withheld => Ok(Error::Withheld {
                message: message.clone(),
            }),
            proto::ErrorKind::Timeout => Ok(Error::Timeout {
                message: format!("the agent timed out: {message}"),
            }),
            proto::ErrorKind::OperatorRequired => Ok(Error::OperatorRequired {
                message: message.clone(),
            }),
            proto::ErrorKind::PidReused => need_pid(pid).map(|pid| Error::PidReused {
                pid,
                message: message.clone(),
            }),
            proto::ErrorKind::ProtectedProcess => {
                need_pid(pid).map(|pid| Error::ProtectedProcess {
                    pid,
                    message: message.clone(),
                })
            }
            proto::ErrorKind::Unspecified => Ok(Error::status(status.code(), message.clone())),
        };
        return mapped.unwrap_or_else(|e| e);
    }
    let message = status.message().to_owned();
    match status.code() {
        Code::NotFound => Error::NoSuchProcess { pid },
        Code::InvalidArgument => Error::InvalidArgument { message },
        Code::PermissionDenied => Error::AccessDenied { pid, message },
        Code::Unimplemented => Error::Unsupported { message },
        Code::DeadlineExceeded => Error::Timeout {
            message: format!("the call timed out: {message}"),
        },
        Code::Unauthenticated => Error::Unauthenticated {
            endpoint: ctx.endpoint.clone(),
            message,
        },
        // Transport and TLS failures surface as these codes, with the real
        // cause somewhere in the source chain.
        Code::Unknown | Code::Cancelled | Code::Unavailable | Code::Internal => {
            let Some(source) = status.source() else {
                return Error::status(status.code(), message);
            };
            if let Some(e) = classify(source, ctx) {
                return e;
            }
            // A status with a source was made from a local transport
            // failure, not sent by the agent: say so, with every cause
            // (tonic copies the cause's text into the message: say it once).
            let causes = chain_text(source);
            Error::Transport {
                endpoint: ctx.endpoint.clone(),
                message: if causes.starts_with(&message) {
                    causes
                } else {
                    format!("{message}: {causes}")
                },
            }
        }
        code => Error::status(code, message),
    }
}

/// Turns a failure to connect into an [`Error`].
pub(crate) fn from_transport(err: &(dyn StdError + 'static), ctx: &CallContext) -> Error {
    classify(err, ctx).unwrap_or_else(|| Error::Transport {
        endpoint: ctx.endpoint.clone(),
        message: chain_text(err),
    })
}

/// Every message in an error's source chain, joined with ": ", skipping a
/// message that merely repeats the one before it (hyper and tonic wrap the
/// same text several times) or is contained in it (`io::Error` displays its
/// inner error and also returns it as the source).
pub(crate) fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in causes(err) {
        let text = e.to_string();
        let repeated = parts.last().is_some_and(|last| last.contains(&text));
        if !text.is_empty() && !repeated {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// The errors of a chain, outermost first: each error's `source()`, except
/// that an `io::Error` and an `h2::Error` lead to the error they wrap,
/// which their `source()` skips (an `io::Error` from tokio-rustls wraps the
/// `rustls::Error` that names the TLS alert). Bounded, in case of a cycle.
fn causes<'a>(err: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    const DEEPEST: usize = 32;
    let mut all = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next
        && all.len() < DEEPEST
    {
        all.push(e);
        let wrapped = if let Some(io) = e.downcast_ref::<io::Error>() {
            io.get_ref().map(|inner| inner as &(dyn StdError + 'static))
        } else if let Some(h2) = e.downcast_ref::<h2::Error>() {
            h2.get_io().map(|io| io as &(dyn StdError + 'static))
        } else {
            None
        };
        next = wrapped.or_else(|| e.source());
    }
    all
}

/// Recognises TLS and connection failures by the types in their error
/// chain: rustls's errors (the agent's alert, or this client's verdict on
/// the agent's certificate) first, as the most specific; then the OS's
/// error kinds, timeouts, and hyper's and h2's protocol errors.
pub(crate) fn classify(err: &(dyn StdError + 'static), ctx: &CallContext) -> Option<Error> {
    let causes = causes(err);
    if let Some(tls) = causes
        .iter()
        .find_map(|e| e.downcast_ref::<rustls::Error>())
    {
        return Some(from_rustls(tls, ctx));
    }
    let endpoint = ctx.endpoint.clone();
    let not_tls = || Error::NotTls {
        endpoint: ctx.endpoint.clone(),
        peer: Peer::Other,
    };
    let timeout = || Error::Timeout {
        message: format!("connecting to {}: {}", ctx.endpoint, chain_text(err)),
    };
    for e in &causes {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => {
                    return Some(Error::ConnectionRefused { endpoint });
                }
                io::ErrorKind::TimedOut => return Some(timeout()),
                // A plaintext client's preface makes a TLS agent hang up
                // (or answer with a TLS alert that is no HTTP/2 frame)
                // before the first call completes.
                io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::UnexpectedEof
                    if ctx.server_name.is_none() =>
                {
                    return Some(not_tls());
                }
                _ => {}
            }
        }
        if e.is::<tonic::TimeoutExpired>() || e.is::<tokio::time::error::Elapsed>() {
            return Some(timeout());
        }
        // What a TLS agent's records, or an HTTP/1 server's status line,
        // look like to HTTP/2: frames of an impossible size or type. Which
        // of them it is, the error cannot tell: the probe looks.
        if let Some(h2) = e.downcast_ref::<h2::Error>()
            && !h2.is_remote()
            && matches!(
                h2.reason(),
                Some(h2::Reason::FRAME_SIZE_ERROR | h2::Reason::PROTOCOL_ERROR)
            )
        {
            return Some(not_tls());
        }
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            if hyper.is_parse() {
                return Some(not_tls());
            }
            if hyper.is_timeout() {
                return Some(timeout());
            }
        }
        // hyper-util's connector does not export its error type: a failed
        // name lookup is known only by that error's fixed text.
        if e.to_string() == "dns error" {
            return Some(Error::Resolve {
                endpoint,
                message: chain_text(err),
            });
        }
    }
    None
}

/// The error for a TLS failure rustls reported.
fn from_rustls(err: &rustls::Error, ctx: &CallContext) -> Error {
    use rustls::{AlertDescription as A, CertificateError as C, Error as R};
    let endpoint = ctx.endpoint.clone();
    match err {
        // Alerts the agent sent: it refused this client's certificate (or
        // its absence).
        R::AlertReceived(A::CertificateRequired) => Error::NoClientCertificate { endpoint },
        // rustls sends this alert for a certificate whose extended key
        // usage does not fit its use: a server certificate presented by a
        // client.
        R::AlertReceived(A::UnsupportedCertificate) => Error::NotAClientCertificate { endpoint },
        R::AlertReceived(A::UnknownCA) => Error::UnknownCa {
            endpoint,
            side: RejectedBy::Agent,
        },
        R::AlertReceived(alert) => Error::TlsRefused {
            endpoint,
            alert: TlsAlert::from_rustls(*alert),
        },
        // This client's own verification of the agent's certificate.
        R::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => Error::UnknownCa {
            endpoint,
            side: RejectedBy::Client,
        },
        R::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            Error::NameMismatch {
                endpoint,
                name: ctx.server_name.clone().unwrap_or_default(),
            }
        }
        // A TLS client reading plaintext HTTP/2: the agent's SETTINGS frame
        // is not a TLS record.
        R::InvalidMessage(_) => Error::NotTls {
            endpoint,
            peer: Peer::Other,
        },
        other => Error::TlsHandshake {
            endpoint,
            message: other.to_string(),
        },
    }
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
    /// and message, the real cause in the source chain, wrapped in an
    /// `io::Error` as tokio-rustls wraps rustls's errors.
    fn transport_status(code: Code, cause: rustls::Error) -> tonic::Status {
        let io = io::Error::new(io::ErrorKind::InvalidData, cause);
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
            matches!(
                &e,
                Error::Status {
                    code: StatusCode::ResourceExhausted,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("ResourceExhausted: busy"), "{e}");
        let e = from_status(tonic::Status::unauthenticated("CA replaced"), &ctx(), None);
        assert!(
            matches!(&e, Error::Unauthenticated { message, .. } if message == "CA replaced"),
            "{e:?}"
        );
        assert!(!e.is_retryable());
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
    fn every_wire_kind_maps_to_its_error_and_back() {
        use proto::ErrorKind as K;
        let kinds = [
            (Code::NotFound, K::NoSuchProcess),
            (Code::NotFound, K::ZombieProcess),
            (Code::PermissionDenied, K::AccessDenied),
            (Code::Unimplemented, K::Unsupported),
            (Code::DeadlineExceeded, K::Timeout),
            (Code::PermissionDenied, K::OperatorRequired),
            (Code::FailedPrecondition, K::PidReused),
            (Code::FailedPrecondition, K::ProtectedProcess),
        ];
        for (code, kind) in kinds {
            let reason = kind.reason();
            let e = from_status(rich(code, reason, &[("pid", "9")]), &ctx(), None);
            assert_eq!(e.kind(), Some(kind), "{reason}: {e:?}");
        }
    }

    #[test]
    fn a_kind_about_one_process_without_its_pid_is_a_protocol_error() {
        for reason in ["ZOMBIE_PROCESS", "PID_REUSED", "PROTECTED_PROCESS"] {
            let e = from_status(rich(Code::FailedPrecondition, reason, &[]), &ctx(), None);
            assert!(
                matches!(&e, Error::Protocol { message } if message.contains("names no pid")),
                "{reason}: {e:?}"
            );
            assert_eq!(e.label(), "protocol");
            // The pid of the call stands in when the details lack one.
            let e = from_status(rich(Code::FailedPrecondition, reason, &[]), &ctx(), Some(4));
            assert!(e.kind().is_some(), "{reason}: {e:?}");
        }
    }

    #[test]
    fn tls_alerts_on_the_first_call_become_clear_errors() {
        use rustls::{AlertDescription as A, Error::AlertReceived};
        let e = from_status(
            transport_status(Code::Unknown, AlertReceived(A::CertificateRequired)),
            &ctx(),
            None,
        );
        assert!(matches!(e, Error::NoClientCertificate { .. }), "{e:?}");

        // An agent's certificate presented as the client's.
        let e = from_status(
            transport_status(Code::Unknown, AlertReceived(A::UnsupportedCertificate)),
            &ctx(),
            None,
        );
        assert!(matches!(e, Error::NotAClientCertificate { .. }), "{e:?}");
        assert!(e.to_string().contains("pki issue --client"), "{e}");

        let e = from_status(
            transport_status(Code::Cancelled, AlertReceived(A::UnknownCA)),
            &ctx(),
            None,
        );
        assert!(
            matches!(
                e,
                Error::UnknownCa {
                    side: RejectedBy::Agent,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.label(), "unknown-ca");

        let labels = [
            (A::CertificateExpired, "certificate-expired"),
            (A::BadCertificate, "bad-certificate"),
            (A::CertificateRevoked, "certificate-revoked"),
            (A::CertificateUnknown, "certificate-unknown"),
            (A::HandshakeFailure, "tls-alert"),
        ];
        for (alert, label) in labels {
            let e = from_status(
                transport_status(Code::Unavailable, AlertReceived(alert)),
                &ctx(),
                None,
            );
            assert!(matches!(e, Error::TlsRefused { .. }), "{alert:?}: {e:?}");
            assert_eq!(e.label(), label);
            assert!(!e.is_retryable(), "{alert:?}");
        }
        let e = from_status(
            transport_status(Code::Unknown, AlertReceived(A::CertificateExpired)),
            &ctx(),
            None,
        );
        assert!(e.to_string().contains("expired"), "{e}");
    }

    #[test]
    fn our_own_verification_failures_become_clear_errors() {
        use rustls::{CertificateError as C, Error::InvalidCertificate};
        let c = ctx();
        let classify_io =
            |e: rustls::Error| classify(&io::Error::new(io::ErrorKind::InvalidData, e), &c);
        let e = classify_io(InvalidCertificate(C::UnknownIssuer));
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
        let e = classify_io(InvalidCertificate(C::NotValidForName));
        assert!(
            matches!(&e, Some(Error::NameMismatch { name, .. }) if name == "web1"),
            "{e:?}"
        );
        let e = classify_io(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        ));
        assert!(matches!(e, Some(Error::NotTls { .. })), "{e:?}");
        // The agent's certificate has expired: a TLS failure, not retried.
        let e = classify_io(InvalidCertificate(C::Expired)).expect("a TLS failure");
        assert_eq!(e.label(), "tls-handshake");
        assert!(!e.is_retryable());
    }

    #[test]
    fn connection_failures_become_clear_errors() {
        let c = ctx();
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let e = classify(&Layer("tcp connect error", Some(Box::new(refused))), &c);
        assert!(
            matches!(&e, Some(Error::ConnectionRefused { endpoint }) if endpoint == "web1:7443"),
            "{e:?}"
        );
        let lookup = io::Error::other("failed to lookup address information: Name unknown");
        let e = classify(&Layer("dns error", Some(Box::new(lookup))), &c);
        assert!(matches!(e, Some(Error::Resolve { .. })), "{e:?}");
        // The words alone no longer decide anything.
        assert!(classify(&io::Error::other("connection refused"), &c).is_none());
        assert!(classify(&Layer("something else entirely", None), &c).is_none());
        // Said once: the label names the kind, the text says it timed out.
        let e = classify(
            &io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"),
            &c,
        )
        .expect("timeout");
        assert_eq!(
            e.to_string(),
            "connecting to web1:7443: handshake timed out"
        );
        // A plaintext client that a TLS agent hangs up on.
        let plain = CallContext {
            server_name: None,
            ..ctx()
        };
        let e = classify(&io::Error::from(io::ErrorKind::BrokenPipe), &plain);
        assert!(matches!(e, Some(Error::NotTls { .. })), "{e:?}");
        assert!(classify(&io::Error::from(io::ErrorKind::BrokenPipe), &c).is_none());
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
        assert!(
            matches!(
                e,
                Error::Status {
                    code: StatusCode::Unknown,
                    ..
                }
            ),
            "{e:?}"
        );

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
    struct Layer(&'static str, Option<Box<dyn StdError + Send + Sync>>);

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
