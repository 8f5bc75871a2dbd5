//! The audit trail of every signal request, allowed or refused.
//!
//! One JSON object per line: to the agent's log (target `hostscope::audit`)
//! and, when configured, appended to an audit file. Each line is written
//! with a single `write` on a file opened for appending, so lines from
//! concurrent calls never interleave.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Mutex,
    time::SystemTime,
};

use serde::Serialize;

/// One signal request and what came of it.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// RFC 3339, UTC.
    pub time: String,
    /// The client certificate's identity, or "anonymous".
    pub client: &'a str,
    /// The client's address.
    pub peer: Option<SocketAddr>,
    pub pid: u32,
    /// The signal as asked for.
    pub signal: &'a str,
    /// The process's create_time the client expected, if it said.
    pub expected_create_time: Option<f64>,
    /// "sent", or "refused".
    pub outcome: &'static str,
    /// Why it was refused: the error reason (`OPERATOR_REQUIRED`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The refusal in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Entry<'_> {
    /// The current time in the audit format.
    pub fn now() -> String {
        humantime::format_rfc3339_millis(SystemTime::now()).to_string()
    }
}

/// Where audit lines go.
#[derive(Debug, Default)]
pub struct Audit {
    file: Option<(PathBuf, Mutex<File>)>,
}

/// Why the audit file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("opening the audit file {}: {source}", path.display())]
pub struct OpenError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

impl Audit {
    /// Audit lines to the log only.
    pub fn log_only() -> Audit {
        Audit::default()
    }

    /// Audit lines to the log and appended to `path` (created 0600 if new).
    pub fn to_file(path: &Path) -> Result<Audit, OpenError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| OpenError {
                path: path.to_owned(),
                source,
            })?;
        Ok(Audit {
            file: Some((path.to_owned(), Mutex::new(file))),
        })
    }

    /// Writes one entry. A failing audit file is logged loudly but does
    /// not fail the call: the log line has been written already.
    pub fn record(&self, entry: &Entry<'_>) {
        let line = match serde_json::to_string(entry) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode an audit entry");
                return;
            }
        };
        tracing::info!(target: "hostscope::audit", "{line}");
        if let Some((path, file)) = &self.file {
            let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Err(e) = file.write_all(format!("{line}\n").as_bytes()) {
                tracing::error!(path = %path.display(), error = %e, "cannot write the audit file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_appended_one_json_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, "{\"earlier\":true}\n").unwrap();
        let audit = Audit::to_file(&path).unwrap();
        for (outcome, reason) in [("sent", None), ("refused", Some("PID_REUSED".to_owned()))] {
            audit.record(&Entry {
                time: Entry::now(),
                client: "alice",
                peer: Some("127.0.0.1:5000".parse().unwrap()),
                pid: 42,
                signal: "TERM",
                expected_create_time: Some(1.5),
                outcome,
                reason,
                message: None,
            });
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1]["outcome"], "sent");
        assert_eq!(lines[2]["reason"], "PID_REUSED");
        assert_eq!(lines[2]["client"], "alice");
        assert!(lines[2]["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn a_new_audit_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.log");
        Audit::to_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
