//! The audit trail of every signal request, allowed or refused.
//!
//! One JSON object per line: to the agent's log (target `hostscope::audit`)
//! and, when configured, appended to an audit file. Each line is written
//! with a single `write` on a file opened for appending, so lines from
//! concurrent calls never interleave.
//!
//! What a client sent is bounded and escaped before it is written: a line
//! is at most about a kilobyte whatever the request held, and shows no
//! control or non-ASCII character raw. Refused requests beyond
//! [`REFUSED_LINES_PER_WINDOW`] a second are counted rather than written
//! one by one, and each such second ends with one line that sums them up
//! by client and reason, so a client that floods the agent with refused
//! requests cannot fill its disk. Signals sent are always written.

use std::{
    borrow::Cow,
    collections::BTreeMap,
    fs::{File, OpenOptions},
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::{Duration, SystemTime},
};

use serde::{Serialize, Serializer};
use tokio::time::Instant;

/// Refused requests written one by one per [`WINDOW`]; the rest are summed
/// up in one line.
pub const REFUSED_LINES_PER_WINDOW: u32 = 20;
/// The span over which refused requests are counted.
const WINDOW: Duration = Duration::from_secs(1);
/// Distinct (client, reason) pairs a summary line names; the rest are
/// counted under "other".
const SUMMARY_KEYS: usize = 16;

/// Longest client identity written, in characters.
const MAX_CLIENT_CHARS: usize = 128;
/// Longest signal written: every accepted name is far shorter.
const MAX_SIGNAL_CHARS: usize = 16;
/// Longest reason code written.
const MAX_REASON_CHARS: usize = 64;
/// Longest refusal message written.
const MAX_MESSAGE_CHARS: usize = 512;

/// One signal request and what came of it.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// RFC 3339, UTC.
    pub time: String,
    /// The client certificate's identity, or "anonymous".
    #[serde(serialize_with = "client")]
    pub client: &'a str,
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// The pid asked for; 0 when the request could not be decoded.
    pub pid: u32,
    /// The signal as asked for ("" when the request could not be
    /// decoded); written bounded and escaped, with its
    /// length when it was cut.
    #[serde(serialize_with = "signal")]
    pub signal: &'a str,
    /// The process's create_time the client expected, if it said. JSON
    /// has no NaN or infinity: those are written as null.
    pub expected_create_time: Option<f64>,
    /// "sent", or "refused".
    pub outcome: &'static str,
    /// Why it was refused: the error reason (`OPERATOR_REQUIRED`, ...).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "reason")]
    pub reason: Option<String>,
    /// The refusal in words.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "message")]
    pub message: Option<String>,
}

impl Entry<'_> {
    /// The current time in the audit format.
    pub fn now() -> String {
        humantime::format_rfc3339_millis(SystemTime::now()).to_string()
    }
}

/// `text` as it may be written: printable ASCII kept, anything else
/// escaped (`\u{7f}`), cut after `max` characters with the original
/// length in bytes appended.
pub fn bounded(text: &str, max: usize) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_graphic() || c == ' ';
    if text.len() <= max && text.chars().all(plain) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(max + 24);
    let mut written = 0;
    let mut cut = false;
    for c in text.chars() {
        let piece: Cow<'_, str> = if plain(c) {
            Cow::Owned(c.to_string())
        } else {
            Cow::Owned(c.escape_unicode().to_string())
        };
        if written + piece.len() > max {
            cut = true;
            break;
        }
        out.push_str(&piece);
        written += piece.len();
    }
    if cut {
        out.push_str(&format!("...[{} bytes]", text.len()));
    }
    Cow::Owned(out)
}

fn client<S: Serializer>(text: &&str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&bounded(text, MAX_CLIENT_CHARS))
}

fn signal<S: Serializer>(text: &&str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&bounded(text, MAX_SIGNAL_CHARS))
}

fn reason<S: Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match text {
        Some(text) => s.serialize_str(&bounded(text, MAX_REASON_CHARS)),
        None => s.serialize_none(),
    }
}

fn message<S: Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match text {
        Some(text) => s.serialize_str(&bounded(text, MAX_MESSAGE_CHARS)),
        None => s.serialize_none(),
    }
}

/// The refused requests of one window that were not written one by one.
#[derive(Debug, Serialize)]
struct Suppressed {
    time: String,
    outcome: &'static str,
    /// Refused requests not written one by one.
    count: u64,
    /// When the first of them came.
    since: String,
    /// How many, by client and reason.
    by: Vec<SuppressedKey>,
}

#[derive(Debug, Serialize)]
struct SuppressedKey {
    client: String,
    reason: String,
    count: u64,
}

/// How many refused requests the current window has written, and what it
/// has counted instead.
#[derive(Debug, Default)]
struct Budget {
    window_start: Option<Instant>,
    written: u32,
    since: Option<String>,
    suppressed: BTreeMap<(String, String), u64>,
    flusher: bool,
}

impl Budget {
    /// Ends the window if it is over at `now`: the summary of what it
    /// suppressed, if anything.
    fn roll(&mut self, now: Instant) -> Option<Suppressed> {
        let start = *self.window_start.get_or_insert(now);
        if now < start + WINDOW {
            return None;
        }
        self.window_start = Some(now);
        self.written = 0;
        self.take()
    }

    /// What the window suppressed so far, if anything; counted afresh after.
    fn take(&mut self) -> Option<Suppressed> {
        let since = self.since.take()?;
        let suppressed = std::mem::take(&mut self.suppressed);
        Some(Suppressed {
            time: Entry::now(),
            outcome: "suppressed",
            count: suppressed.values().sum(),
            since,
            by: suppressed
                .into_iter()
                .map(|((client, reason), count)| SuppressedKey {
                    client,
                    reason,
                    count,
                })
                .collect(),
        })
    }

    /// Whether a refused entry may be written; if not, it is counted.
    fn admit(&mut self, entry: &Entry<'_>) -> bool {
        if self.written < REFUSED_LINES_PER_WINDOW {
            self.written += 1;
            return true;
        }
        let mut key = (
            bounded(entry.client, MAX_CLIENT_CHARS).into_owned(),
            bounded(entry.reason.as_deref().unwrap_or(""), MAX_REASON_CHARS).into_owned(),
        );
        if !self.suppressed.contains_key(&key) && self.suppressed.len() >= SUMMARY_KEYS {
            key = ("other".to_owned(), "other".to_owned());
        }
        *self.suppressed.entry(key).or_default() += 1;
        self.since.get_or_insert_with(|| entry.time.clone());
        false
    }
}

/// Where audit lines go.
#[derive(Debug, Default)]
pub struct Audit {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    file: Option<(PathBuf, Mutex<File>)>,
    budget: Mutex<Budget>,
}

/// Why the audit file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("opening the audit file {}: {source}", path.display())]
pub struct OpenError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
            inner: Arc::new(Inner {
                file: Some((path.to_owned(), Mutex::new(file))),
                budget: Mutex::default(),
            }),
        })
    }

    /// Writes one entry, or counts it when it is a refusal beyond this
    /// window's budget. A failing audit file is logged loudly but does not
    /// fail the call: the log line has been written already.
    pub fn record(&self, entry: &Entry<'_>) {
        let (summary, write, start_flusher) = {
            let mut budget = lock(&self.inner.budget);
            let summary = budget.roll(Instant::now());
            let write = entry.outcome != "refused" || budget.admit(entry);
            let start_flusher = !write && !budget.flusher;
            if start_flusher {
                budget.flusher = true;
            }
            (summary, write, start_flusher)
        };
        if let Some(summary) = summary {
            self.inner.write(&summary);
        }
        if write {
            self.inner.write(entry);
        }
        if start_flusher {
            self.start_flusher();
        }
    }

    /// Writes the window's summary once the window is over, even if no
    /// request comes after it. Without a runtime the summary waits for the
    /// next request, or for the audit to be dropped.
    fn start_flusher(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            lock(&self.inner.budget).flusher = false;
            return;
        };
        let inner: Weak<Inner> = Arc::downgrade(&self.inner);
        runtime.spawn(async move {
            loop {
                let Some(end) = inner
                    .upgrade()
                    .and_then(|inner| lock(&inner.budget).window_start.map(|start| start + WINDOW))
                else {
                    return;
                };
                tokio::time::sleep_until(end).await;
                let Some(inner) = inner.upgrade() else {
                    return;
                };
                let (summary, more) = {
                    let mut budget = lock(&inner.budget);
                    let summary = budget.roll(Instant::now());
                    let more = budget.since.is_some();
                    if !more {
                        budget.flusher = false;
                    }
                    (summary, more)
                };
                if let Some(summary) = summary {
                    inner.write(&summary);
                }
                if !more {
                    return;
                }
            }
        });
    }
}

impl Inner {
    /// Writes one line to the log and the file.
    fn write(&self, line: &impl Serialize) {
        let line = match serde_json::to_string(line) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode an audit entry");
                return;
            }
        };
        tracing::info!(target: "hostscope::audit", "{line}");
        if let Some((path, file)) = &self.file {
            let mut file = lock(file);
            if let Err(e) = file.write_all(format!("{line}\n").as_bytes()) {
                tracing::error!(path = %path.display(), error = %e, "cannot write the audit file");
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let summary = lock(&self.budget).take();
        if let Some(summary) = summary {
            self.write(&summary);
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

    fn refused<'a>(client: &'a str, signal: &'a str) -> Entry<'a> {
        Entry {
            time: Entry::now(),
            client,
            peer: None,
            pid: 42,
            signal,
            expected_create_time: None,
            outcome: "refused",
            reason: Some("OPERATOR_REQUIRED".to_owned()),
            message: Some(format!("refused {signal}")),
        }
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn client_text_is_bounded_and_escaped() {
        assert_eq!(bounded("TERM", 16), "TERM");
        let long = "A".repeat(65_000);
        let cut = bounded(&long, 16);
        assert_eq!(cut, format!("{}...[65000 bytes]", "A".repeat(16)));
        assert_eq!(bounded("a\nb\u{202e}", 64), "a\\u{a}b\\u{202e}");
        let cut = bounded("\u{7}\u{7}\u{7}", 10);
        assert_eq!(cut, "\\u{7}\\u{7}...[3 bytes]");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::to_file(&path).unwrap();
        let message = "unknown signal ".to_owned() + &long;
        audit.record(&Entry {
            message: Some(message),
            ..refused(&long, &long)
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() < 1024, "{} bytes", text.len());
        assert!(!text.contains(&"A".repeat(600)));
        let line = &lines(&path)[0];
        assert!(
            line["signal"].as_str().unwrap().ends_with("[65000 bytes]"),
            "{line}"
        );
    }

    // Paused time: the whole flood falls in one window.
    #[tokio::test(start_paused = true)]
    async fn a_flood_of_refusals_is_summed_up_and_signals_sent_are_all_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::to_file(&path).unwrap();
        for _ in 0..1000 {
            audit.record(&refused("mallory", "TERM"));
        }
        let mut sent = refused("alice", "KILL");
        sent.outcome = "sent";
        sent.reason = None;
        sent.message = None;
        audit.record(&sent);
        // The summary of a window cut short is written when the audit ends.
        drop(audit);
        let lines = lines(&path);
        let count = |outcome: &str| lines.iter().filter(|l| l["outcome"] == outcome).count();
        assert_eq!(count("refused"), REFUSED_LINES_PER_WINDOW as usize);
        assert_eq!(count("sent"), 1);
        assert_eq!(count("suppressed"), 1);
        let summary = lines.last().unwrap();
        assert_eq!(summary["outcome"], "suppressed");
        assert_eq!(summary["count"], 1000 - u64::from(REFUSED_LINES_PER_WINDOW));
        assert_eq!(summary["by"][0]["client"], "mallory");
        assert_eq!(summary["by"][0]["reason"], "OPERATOR_REQUIRED");
    }

    #[tokio::test(start_paused = true)]
    async fn the_summary_is_written_when_the_window_ends_without_more_requests() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::to_file(&path).unwrap();
        for _ in 0..(REFUSED_LINES_PER_WINDOW + 5) {
            audit.record(&refused("mallory", "TERM"));
        }
        assert_eq!(lines(&path).len(), REFUSED_LINES_PER_WINDOW as usize);
        // Paused time: the flusher's sleep ends as soon as the runtime idles.
        tokio::time::sleep(2 * WINDOW).await;
        let lines = lines(&path);
        let summary = lines.last().unwrap();
        assert_eq!(summary["outcome"], "suppressed", "{summary}");
        assert_eq!(summary["count"], 5);
        // A new window writes refusals one by one again.
        audit.record(&refused("mallory", "TERM"));
        assert_eq!(self::lines(&path).last().unwrap()["outcome"], "refused");
    }
}
