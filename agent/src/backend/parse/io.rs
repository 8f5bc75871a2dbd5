//! `/proc/<pid>/io`: I/O counters (proc(5)); only the process's owner and
//! root may read it.

use super::{ParseError, key_values, number, required};
use crate::backend::IoCounters;

/// Parses `/proc/<pid>/io` into psutil's `io_counters`: read and write
/// system calls, the bytes that reached the storage layer, and the bytes
/// passed to the calls (`rchar`, `wchar`).
pub fn parse_io(bytes: &[u8]) -> Result<IoCounters, ParseError> {
    let (mut syscr, mut syscw, mut read_bytes, mut write_bytes) = (None, None, None, None);
    let (mut rchar, mut wchar) = (None, None);
    for (n, key, value) in key_values(bytes) {
        let slot = match key {
            b"rchar" => &mut rchar,
            b"wchar" => &mut wchar,
            b"syscr" => &mut syscr,
            b"syscw" => &mut syscw,
            b"read_bytes" => &mut read_bytes,
            b"write_bytes" => &mut write_bytes,
            _ => continue,
        };
        *slot = Some(number(value, "io counter", n)?);
    }
    Ok(IoCounters {
        read_count: required(syscr, "syscr")?,
        write_count: required(syscw, "syscw")?,
        read_bytes: required(read_bytes, "read_bytes")?,
        write_bytes: required(write_bytes, "write_bytes")?,
        read_chars: rchar,
        write_chars: wchar,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters() {
        // Sample from this machine (Debian 12, kernel 6.18.44): cat(1)
        // reading /proc/self/io, with read_bytes and write_bytes changed
        // from 0.
        let sample = br#"rchar: 6976
wchar: 0
syscr: 10
syscw: 0
read_bytes: 8192
write_bytes: 4096
cancelled_write_bytes: 0
"#;
        assert_eq!(
            parse_io(sample).unwrap(),
            IoCounters {
                read_count: 10,
                write_count: 0,
                read_bytes: 8192,
                write_bytes: 4096,
                read_chars: Some(6976),
                write_chars: Some(0),
            }
        );
    }

    #[test]
    fn missing_or_bad_counters_are_errors() {
        assert!(parse_io(b"syscr: 1\nsyscw: 2\nread_bytes: 3\n").is_err());
        // rchar and wchar are optional: absent, not zero.
        let old = parse_io(b"syscr: 1\nsyscw: 2\nread_bytes: 3\nwrite_bytes: 4\n").unwrap();
        assert_eq!((old.read_chars, old.write_chars), (None, None));
        let err = parse_io(b"syscr: 1\nsyscw: x\n").unwrap_err();
        assert_eq!(err.line, 2);
    }
}
