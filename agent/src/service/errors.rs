//! The one place where errors become gRPC statuses.
//!
//! Every call-level error carries `google.rpc.ErrorInfo` in the domain
//! `hostscope`, whose reason is the [`ErrorKind`]'s name and whose metadata
//! names the pid, ppid and process name where known. ZOMBIE_PROCESS maps to
//! NOT_FOUND like NO_SUCH_PROCESS: a client that only knows NOT_FOUND does
//! the right thing, one that reads the reason learns more.

use std::collections::HashMap;

use hostscope_proto::{ERROR_DOMAIN, EnumName, ErrorKind};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::backend;

/// A status of `kind` with its ErrorInfo.
pub fn kind_status(kind: ErrorKind, message: String, metadata: HashMap<String, String>) -> Status {
    let code = match kind {
        ErrorKind::NoSuchProcess | ErrorKind::ZombieProcess => Code::NotFound,
        ErrorKind::AccessDenied => Code::PermissionDenied,
        ErrorKind::Unsupported => Code::Unimplemented,
        ErrorKind::Timeout => Code::DeadlineExceeded,
        ErrorKind::OperatorRequired => Code::PermissionDenied,
        ErrorKind::PidReused | ErrorKind::ProtectedProcess => Code::FailedPrecondition,
        ErrorKind::Unspecified => Code::Unknown,
    };
    let details = ErrorDetails::with_error_info(kind.reason(), ERROR_DOMAIN, metadata);
    Status::with_error_details(code, message, details)
}

/// Bad input: says what is wrong; the agent keeps serving.
pub fn invalid_argument(message: impl Into<String>) -> Status {
    Status::invalid_argument(message)
}

/// The status for a backend error. Errors outside the API's kinds (an
/// unreadable or malformed kernel file) are INTERNAL and keep the path.
pub fn from_backend(err: backend::Error) -> Status {
    let mut metadata = HashMap::new();
    let kind = match &err {
        backend::Error::NoSuchProcess { pid } => {
            metadata.insert("pid".to_owned(), pid.to_string());
            ErrorKind::NoSuchProcess
        }
        backend::Error::ZombieProcess { pid, ppid, name } => {
            metadata.insert("pid".to_owned(), pid.to_string());
            if let Some(ppid) = ppid {
                metadata.insert("ppid".to_owned(), ppid.to_string());
            }
            if let Some(name) = name {
                metadata.insert("name".to_owned(), name.clone());
            }
            ErrorKind::ZombieProcess
        }
        backend::Error::AccessDenied { pid, .. } => {
            if let Some(pid) = pid {
                metadata.insert("pid".to_owned(), pid.to_string());
            }
            ErrorKind::AccessDenied
        }
        backend::Error::Unsupported { .. } => ErrorKind::Unsupported,
        backend::Error::PidReused {
            pid,
            expected,
            actual,
        } => {
            metadata.insert("pid".to_owned(), pid.to_string());
            metadata.insert("expected_create_time".to_owned(), expected.to_string());
            metadata.insert("create_time".to_owned(), actual.to_string());
            ErrorKind::PidReused
        }
        backend::Error::Io { .. } | backend::Error::Parse { .. } => {
            tracing::warn!(error = %err, "backend failure");
            return Status::internal(err.to_string());
        }
    };
    kind_status(kind, err.to_string(), metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zombie_is_not_found_with_its_parent_in_the_metadata() {
        let status = from_backend(backend::Error::ZombieProcess {
            pid: 42,
            ppid: Some(7),
            name: Some("defunct".into()),
        });
        assert_eq!(status.code(), Code::NotFound);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "ZOMBIE_PROCESS");
        assert_eq!(info.domain, "hostscope");
        assert_eq!(info.metadata["pid"], "42");
        assert_eq!(info.metadata["ppid"], "7");
        assert_eq!(info.metadata["name"], "defunct");
    }

    #[test]
    fn kinds_map_to_their_codes() {
        let cases = [
            (backend::Error::NoSuchProcess { pid: 1 }, Code::NotFound),
            (
                backend::Error::AccessDenied {
                    pid: Some(1),
                    path: "/proc/1/environ".into(),
                },
                Code::PermissionDenied,
            ),
            (
                backend::Error::Unsupported {
                    what: "io_counters",
                },
                Code::Unimplemented,
            ),
            (
                backend::Error::Parse {
                    path: "/proc/1/stat".into(),
                    line: 1,
                    message: "no ')'".into(),
                },
                Code::Internal,
            ),
        ];
        for (err, code) in cases {
            let status = from_backend(err);
            assert_eq!(status.code(), code, "{status:?}");
        }
    }

    #[test]
    fn internal_errors_keep_the_path() {
        let status = from_backend(backend::Error::Parse {
            path: "/proc/9/stat".into(),
            line: 1,
            message: "no ')'".into(),
        });
        assert!(status.message().contains("/proc/9/stat"), "{status:?}");
    }
}
