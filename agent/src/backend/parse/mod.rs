//! Pure parsers of kernel text records.
//!
//! Nothing here makes a syscall or depends on the build target, so every
//! parser is tested on every machine. Callers read the bytes, pass them in
//! with the host facts a conversion needs ([`HostConsts`]), and add the path
//! to a [`ParseError`] with [`ParseError::at`].
//!
//! Parsers take bytes rather than `&str`: process names, command lines and
//! environments are whatever bytes a process chose, and one non-UTF-8 name
//! must not make a whole record unreadable.

use std::{fmt::Display, path::PathBuf, str::FromStr};

use super::Error;

pub mod affinity;
pub mod cgroup;
pub mod cmdline;
pub mod cpu;
pub mod diskstats;
pub mod fd_link;
pub mod fdinfo;
pub mod io;
pub mod limits;
pub mod meminfo;
pub mod mounts;
pub mod net;
pub mod proc_event;
pub mod proc_net_sockets;
pub mod sensors;
pub mod smaps;
pub mod sock_diag;
pub mod stat;
pub mod statm;
pub mod status;
pub mod system;
pub mod utmp;

/// Host facts that turn kernel units into the API's units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HostConsts {
    /// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of the
    /// CPU times and start time in `/proc/<pid>/stat`.
    pub clk_tck: u64,
    /// Bytes per page (`sysconf(_SC_PAGESIZE)`), the unit of `statm`.
    pub page_size: u64,
    /// Boot time in seconds since the Unix epoch (`btime` of `/proc/stat`).
    pub boot_time: f64,
}

/// What was wrong with a kernel record. The caller knows the path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line of the record, 0 when the record is one line or the
    /// problem is something missing.
    pub line: usize,
    /// What was wrong, quoting the offending text.
    pub message: String,
}

impl ParseError {
    /// A parse error at `line` (1-based; 0 for the whole record).
    pub fn new(line: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line,
            message: message.into(),
        }
    }

    /// The backend error for this problem in the file at `path`.
    pub fn at(self, path: PathBuf) -> Error {
        Error::Parse {
            path,
            line: self.line,
            message: self.message,
        }
    }
}

/// Parses one ASCII number token, saying which field it was on failure.
pub(crate) fn number<T>(token: &[u8], what: &str, line: usize) -> Result<T, ParseError>
where
    T: FromStr,
    T::Err: Display,
{
    std::str::from_utf8(token)
        .map_err(|_| ParseError::new(line, format!("{what}: not ASCII: {:?}", lossy(token))))?
        .parse()
        .map_err(|e| ParseError::new(line, format!("{what}: {e}: {:?}", lossy(token))))
}

/// The whitespace-separated tokens of `bytes`.
pub(crate) fn tokens(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split(|b| b.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
}

/// The lines of `bytes` with their 1-based numbers.
pub(crate) fn numbered_lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

/// The `key: value` lines of a record (`status`, `io`, `meminfo`) with
/// their 1-based numbers and the value trimmed; lines without a colon are
/// skipped.
pub(crate) fn key_values(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8], &[u8])> {
    numbered_lines(bytes).filter_map(|(n, line)| {
        let colon = line.iter().position(|b| *b == b':')?;
        Some((n, &line[..colon], line[colon + 1..].trim_ascii()))
    })
}

/// The value of a line that every kernel the agent supports prints.
pub(crate) fn required<T>(value: Option<T>, key: &str) -> Result<T, ParseError> {
    value.ok_or_else(|| ParseError::new(0, format!("no {key}: line")))
}

/// Bytes as text for messages and output; invalid UTF-8 becomes U+FFFD.
pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_errors_quote_the_token() {
        let err = number::<u32>(b"12x", "ppid", 3).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("ppid"), "{err}");
        assert!(err.message.contains("12x"), "{err}");
        assert_eq!(number::<u32>(b"12", "ppid", 0), Ok(12));
    }

    #[test]
    fn at_adds_the_path() {
        let err = ParseError::new(2, "bad").at(PathBuf::from("/proc/1/io"));
        assert_eq!(err.to_string(), "/proc/1/io:2: bad");
    }
}
