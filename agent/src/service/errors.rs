//! The service's one error type, and the one place where errors become gRPC
//! statuses.
//!
//! Every status the service returns carries `google.rpc.ErrorInfo` in the
//! domain `hostscope`: its reason is a stable upper-case code, and its
//! metadata names the pid, ppid and process name where known. Backend errors
//! take their reason from [`backend::Error::kind`], the API's
//! [`pb::ErrorKind`] names; errors outside those kinds (an unreadable or
//! malformed kernel file) are INTERNAL and keep the path. ZOMBIE_PROCESS maps
//! to NOT_FOUND like NO_SUCH_PROCESS: a client that only knows NOT_FOUND
//! does the right thing, one that reads the reason learns more.

use std::collections::HashMap;

use hostscope_proto::{self as pb, ERROR_DOMAIN, EnumName};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::convert;
use crate::backend;

/// The reason of a malformed request.
const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
/// The reason of a request over one of the agent's limits.
const RESOURCE_EXHAUSTED: &str = "RESOURCE_EXHAUSTED";
/// The reason of a failure inside the agent or of the kernel's records.
const INTERNAL: &str = "INTERNAL";
/// The reason of a call refused because the agent is stopping.
const SHUTTING_DOWN: &str = "SHUTTING_DOWN";
/// The reason of a stream ended because its client stopped reading it.
const STREAM_STALLED: &str = "STREAM_STALLED";

/// Why a call failed, with what it was about.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A backend call failed. Its kind decides the code; the error keeps the
    /// path or name of what failed.
    #[error(transparent)]
    Backend(#[from] backend::Error),

    /// Part of the request is malformed; the agent keeps serving.
    #[error("{message}")]
    InvalidArgument {
        /// The request field at fault, such as `filter.name`.
        field: &'static str,
        /// What is wrong with it, and what would be right.
        message: String,
    },

    /// The client holds neither the reader nor the operator role.
    #[error(
        "client {client:?} is not allowed to read: it is in neither [authz] readers nor operators"
    )]
    ReadDenied {
        /// The client certificate's identity.
        client: String,
    },

    /// The configuration withholds this class of data from readers.
    #[error(
        "the agent withholds {class} from readers such as {client:?} ([privacy] withhold); \
         an operator may ask"
    )]
    Withheld {
        /// The class's name ("connections").
        class: &'static str,
        /// The client certificate's identity.
        client: String,
    },

    /// Signalling needs the operator role, which the client does not hold.
    #[error(
        "client {client:?} may not signal processes: that needs the operator role \
         (agent flag --operator {client:?}, or [authz] operators)"
    )]
    OperatorRequired {
        /// The client certificate's identity.
        client: String,
    },

    /// The agent never signals this pid.
    #[error("refusing to signal pid {pid}: {why}")]
    ProtectedProcess {
        /// The pid asked for.
        pid: u32,
        /// Why it is protected, in words.
        why: &'static str,
    },

    /// The agent serves as many watchers as it may.
    #[error("the agent already serves {limit} watchers, its limit; try again later")]
    AgentWatchLimit {
        /// Watchers per agent.
        limit: usize,
    },

    /// The client holds as many watchers as one client may.
    #[error(
        "client {client:?} already has {limit} watchers, the limit per client; \
         close one or ask for more with fewer, wider filters"
    )]
    ClientWatchLimit {
        /// The client certificate's identity.
        client: String,
        /// Watchers per client.
        limit: usize,
    },

    /// The agent itself failed: a task or thread it needed did not run.
    #[error("{what}: {source}")]
    Internal {
        /// What the agent was doing.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The agent holds as many bytes of responses not yet taken as it may
    /// (for this connection or in total).
    #[error(
        "the agent holds {limit} bytes of responses its clients have not taken yet, \
         the limit ([limits] {key}); retry once a stream has ended"
    )]
    BufferFull {
        /// The `[limits]` key of the bound.
        key: &'static str,
        /// The bound, in bytes.
        limit: usize,
    },

    /// The agent is stopping and takes no new work.
    #[error("the agent is shutting down")]
    ShuttingDown,

    /// The client took none of a stream's data for the stall timeout: the
    /// agent ended the stream rather than hold its data for ever.
    #[error(
        "the client took none of this stream's data for {after:?}: the agent ended the stream \
         ([limits] stream_stall_timeout_secs)"
    )]
    StreamStalled {
        /// The stall timeout.
        after: std::time::Duration,
    },
}

impl ServiceError {
    /// A malformed `field` of the request.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> ServiceError {
        ServiceError::InvalidArgument {
            field,
            message: message.into(),
        }
    }

    /// A failure of the agent itself while doing `what`.
    pub fn internal(
        what: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> ServiceError {
        ServiceError::Internal {
            what,
            source: source.into(),
        }
    }

    /// The `google.rpc.ErrorInfo` reason: a stable upper-case code such as
    /// `NO_SUCH_PROCESS`, for clients and the audit trail.
    pub fn reason(&self) -> &'static str {
        self.classify().1
    }

    /// The gRPC code and the ErrorInfo reason. Errors of the API's kinds
    /// take both from the kind, so a kind means one code wherever it comes
    /// from.
    fn classify(&self) -> (Code, &'static str) {
        let kind = match self {
            ServiceError::Backend(e) => match e.kind() {
                Some(kind) => convert::error_kind_to_pb(kind),
                None => return (Code::Internal, INTERNAL),
            },
            ServiceError::ReadDenied { .. } => pb::ErrorKind::AccessDenied,
            ServiceError::Withheld { .. } => pb::ErrorKind::Withheld,
            ServiceError::OperatorRequired { .. } => pb::ErrorKind::OperatorRequired,
            ServiceError::ProtectedProcess { .. } => pb::ErrorKind::ProtectedProcess,
            ServiceError::InvalidArgument { .. } => {
                return (Code::InvalidArgument, INVALID_ARGUMENT);
            }
            ServiceError::AgentWatchLimit { .. }
            | ServiceError::ClientWatchLimit { .. }
            | ServiceError::BufferFull { .. } => {
                return (Code::ResourceExhausted, RESOURCE_EXHAUSTED);
            }
            ServiceError::Internal { .. } => return (Code::Internal, INTERNAL),
            ServiceError::ShuttingDown => return (Code::Unavailable, SHUTTING_DOWN),
            ServiceError::StreamStalled { .. } => {
                return (Code::DeadlineExceeded, STREAM_STALLED);
            }
        };
        let code = match kind {
            pb::ErrorKind::NoSuchProcess | pb::ErrorKind::ZombieProcess => Code::NotFound,
            pb::ErrorKind::AccessDenied
            | pb::ErrorKind::OperatorRequired
            | pb::ErrorKind::Withheld => Code::PermissionDenied,
            pb::ErrorKind::Unsupported => Code::Unimplemented,
            pb::ErrorKind::Timeout => Code::DeadlineExceeded,
            pb::ErrorKind::PidReused | pb::ErrorKind::ProtectedProcess => Code::FailedPrecondition,
            pb::ErrorKind::Unspecified => Code::Unknown,
        };
        (code, kind.reason())
    }

    /// The ErrorInfo metadata: what the error is about, where known.
    fn metadata(&self) -> HashMap<String, String> {
        let mut meta = Metadata::default();
        match self {
            ServiceError::Backend(e) => meta.backend(e),
            ServiceError::InvalidArgument { field, .. } => meta.put("field", field),
            ServiceError::ReadDenied { client } | ServiceError::OperatorRequired { client } => {
                meta.put("client", client);
            }
            ServiceError::Withheld { class, client } => {
                meta.put("class", class);
                meta.put("client", client);
            }
            ServiceError::ProtectedProcess { pid, .. } => meta.put("pid", pid),
            ServiceError::AgentWatchLimit { limit } => meta.put("limit", limit),
            ServiceError::ClientWatchLimit { client, limit } => {
                meta.put("client", client);
                meta.put("limit", limit);
            }
            ServiceError::StreamStalled { after } => {
                meta.put("stall_timeout_secs", after.as_secs_f64());
            }
            ServiceError::BufferFull { key, limit } => {
                meta.put("limit_key", key);
                meta.put("limit", limit);
            }
            ServiceError::Internal { .. } | ServiceError::ShuttingDown => {}
        }
        meta.0
    }
}

impl From<super::budget::Full> for ServiceError {
    fn from(full: super::budget::Full) -> ServiceError {
        ServiceError::BufferFull {
            key: full.key(),
            limit: full.limit(),
        }
    }
}

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Status {
        let (code, reason) = err.classify();
        if code == Code::Internal {
            tracing::warn!(error = %err, "internal error");
        }
        let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, err.metadata());
        Status::with_error_details(code, err.to_string(), details)
    }
}

/// ErrorInfo metadata under construction.
#[derive(Default)]
struct Metadata(HashMap<String, String>);

impl Metadata {
    fn put(&mut self, key: &str, value: impl ToString) {
        self.0.insert(key.to_owned(), value.to_string());
    }

    fn put_some(&mut self, key: &str, value: Option<impl ToString>) {
        if let Some(value) = value {
            self.put(key, value);
        }
    }

    /// What a backend error names: the process, or the file that failed.
    fn backend(&mut self, err: &backend::Error) {
        match err {
            backend::Error::NoSuchProcess { pid } => self.put("pid", pid),
            backend::Error::ZombieProcess { pid, ppid, name } => {
                self.put("pid", pid);
                self.put_some("ppid", *ppid);
                self.put_some("name", name.as_ref());
            }
            backend::Error::AccessDenied { pid, path } => {
                self.put_some("pid", *pid);
                self.put("path", path.display());
            }
            backend::Error::PidReused {
                pid,
                expected,
                actual,
            } => {
                self.put("pid", pid);
                self.put("expected_create_time", expected);
                self.put("create_time", actual);
            }
            backend::Error::Unsupported { what } => self.put("what", what),
            backend::Error::Io { path, .. } => self.put("path", path.display()),
            backend::Error::Parse { path, line, .. } => {
                self.put("path", path.display());
                self.put("line", line);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status `err` becomes, with its code, reason and metadata.
    fn status(err: ServiceError) -> (Code, String, HashMap<String, String>, String) {
        let reason = err.reason();
        let status = Status::from(err);
        let info = status
            .get_details_error_info()
            .expect("every status has ErrorInfo");
        assert_eq!(info.domain, "hostscope");
        assert_eq!(info.reason, reason, "reason() says what the status says");
        (
            status.code(),
            info.reason,
            info.metadata,
            status.message().to_owned(),
        )
    }

    fn meta(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn backend_errors_map_through_their_kind() {
        let cases = [
            (
                backend::Error::NoSuchProcess { pid: 9 },
                Code::NotFound,
                "NO_SUCH_PROCESS",
                meta(&[("pid", "9")]),
            ),
            (
                backend::Error::ZombieProcess {
                    pid: 42,
                    ppid: Some(7),
                    name: Some("defunct".into()),
                },
                Code::NotFound,
                "ZOMBIE_PROCESS",
                meta(&[("pid", "42"), ("ppid", "7"), ("name", "defunct")]),
            ),
            (
                backend::Error::ZombieProcess {
                    pid: 42,
                    ppid: None,
                    name: None,
                },
                Code::NotFound,
                "ZOMBIE_PROCESS",
                meta(&[("pid", "42")]),
            ),
            (
                backend::Error::AccessDenied {
                    pid: Some(1),
                    path: "/proc/1/environ".into(),
                },
                Code::PermissionDenied,
                "ACCESS_DENIED",
                meta(&[("pid", "1"), ("path", "/proc/1/environ")]),
            ),
            (
                backend::Error::PidReused {
                    pid: 5,
                    expected: 100.5,
                    actual: 200.25,
                },
                Code::FailedPrecondition,
                "PID_REUSED",
                meta(&[
                    ("pid", "5"),
                    ("expected_create_time", "100.5"),
                    ("create_time", "200.25"),
                ]),
            ),
            (
                backend::Error::Unsupported {
                    what: "io_counters",
                },
                Code::Unimplemented,
                "UNSUPPORTED",
                meta(&[("what", "io_counters")]),
            ),
            (
                backend::Error::Io {
                    path: "/proc/9/stat".into(),
                    source: std::io::Error::other("EIO"),
                },
                Code::Internal,
                "INTERNAL",
                meta(&[("path", "/proc/9/stat")]),
            ),
            (
                backend::Error::Parse {
                    path: "/proc/9/stat".into(),
                    line: 1,
                    message: "no ')'".into(),
                },
                Code::Internal,
                "INTERNAL",
                meta(&[("path", "/proc/9/stat"), ("line", "1")]),
            ),
        ];
        for (err, code, reason, metadata) in cases {
            let text = err.to_string();
            let (got_code, got_reason, got_meta, message) = status(err.into());
            assert_eq!((got_code, got_reason.as_str()), (code, reason), "{text}");
            assert_eq!(got_meta, metadata, "{text}");
            assert_eq!(message, text, "the backend's words, path included");
        }
    }

    #[test]
    fn service_errors_map_to_their_codes_and_reasons() {
        let cases = [
            (
                ServiceError::invalid("filter.name", "bad name glob \"[abc\""),
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                meta(&[("field", "filter.name")]),
            ),
            (
                ServiceError::ReadDenied {
                    client: "intruder".into(),
                },
                Code::PermissionDenied,
                "ACCESS_DENIED",
                meta(&[("client", "intruder")]),
            ),
            (
                ServiceError::OperatorRequired {
                    client: "reader".into(),
                },
                Code::PermissionDenied,
                "OPERATOR_REQUIRED",
                meta(&[("client", "reader")]),
            ),
            (
                ServiceError::ProtectedProcess {
                    pid: 1,
                    why: "pid 1 is init",
                },
                Code::FailedPrecondition,
                "PROTECTED_PROCESS",
                meta(&[("pid", "1")]),
            ),
            (
                ServiceError::AgentWatchLimit { limit: 64 },
                Code::ResourceExhausted,
                "RESOURCE_EXHAUSTED",
                meta(&[("limit", "64")]),
            ),
            (
                ServiceError::ClientWatchLimit {
                    client: "ops".into(),
                    limit: 8,
                },
                Code::ResourceExhausted,
                "RESOURCE_EXHAUSTED",
                meta(&[("client", "ops"), ("limit", "8")]),
            ),
            (
                ServiceError::internal("starting the event collector", "no threads left"),
                Code::Internal,
                "INTERNAL",
                meta(&[]),
            ),
            (
                ServiceError::ShuttingDown,
                Code::Unavailable,
                "SHUTTING_DOWN",
                meta(&[]),
            ),
        ];
        for (err, code, reason, metadata) in cases {
            let text = err.to_string();
            let (got_code, got_reason, got_meta, message) = status(err);
            assert_eq!((got_code, got_reason.as_str()), (code, reason), "{text}");
            assert_eq!(got_meta, metadata, "{text}");
            assert_eq!(message, text);
        }
    }

    #[test]
    fn messages_say_what_failed() {
        let internal = ServiceError::internal("starting the event collector", "no threads left");
        assert_eq!(
            internal.to_string(),
            "starting the event collector: no threads left"
        );
        let refused = ServiceError::OperatorRequired {
            client: "reader".into(),
        };
        assert!(
            refused.to_string().contains("--operator \"reader\""),
            "{refused}"
        );
    }
}
