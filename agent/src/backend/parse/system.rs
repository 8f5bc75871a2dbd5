//! Host-wide records: `/proc/stat`, `/proc/meminfo`, `/etc/os-release`.

use super::{ParseError, key_values, number, numbered_lines, required, tokens};

/// The boot time in seconds since the Unix epoch, from the `btime` line of
/// `/proc/stat`.
pub fn parse_boot_time(bytes: &[u8]) -> Result<f64, ParseError> {
    for (n, line) in numbered_lines(bytes) {
        let mut it = tokens(line);
        if it.next() == Some(b"btime") {
            let value = it
                .next()
                .ok_or_else(|| ParseError::new(n, "btime: no value"))?;
            return number::<u64>(value, "btime", n).map(|s| s as f64);
        }
    }
    Err(ParseError::new(0, "no btime line"))
}

/// Total usable RAM in bytes, from the `MemTotal` line of `/proc/meminfo`
/// (which the kernel prints in KiB, though it says "kB").
pub fn parse_mem_total(bytes: &[u8]) -> Result<u64, ParseError> {
    let mut total = None;
    for (n, key, value) in key_values(bytes) {
        if key == b"MemTotal" {
            let mut it = tokens(value);
            let kib: u64 = number(it.next().unwrap_or_default(), "MemTotal", n)?;
            if it.next() != Some(b"kB") {
                return Err(ParseError::new(n, "MemTotal: unit is not kB"));
            }
            let bytes = kib
                .checked_mul(1024)
                .ok_or_else(|| ParseError::new(n, format!("MemTotal: {kib} kB overflows")))?;
            total = Some(bytes);
            break;
        }
    }
    required(total, "MemTotal")
}

/// `PRETTY_NAME` of an os-release(5) file, unquoted; `None` when absent.
///
/// Values are shell-like: bare, or in double or single quotes, where a
/// backslash escapes the next character.
pub fn parse_pretty_name(text: &str) -> Option<String> {
    let value = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("PRETTY_NAME="))?;
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'');
    let Some(quote) = quote else {
        return Some(value.trim_end().to_owned());
    };
    let mut out = String::new();
    let mut chars = value[1..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c if c == quote => break,
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_time() {
        // Sample from this machine (Debian 12, kernel 6.18.44), with the
        // intr line cut.
        let sample = br#"cpu  50315 0 6168 89606 411 0 39 88 0 0
cpu0 24841 0 2690 45620 91 0 5 42 0 0
cpu1 25473 0 3478 43986 320 0 34 46 0 0
intr 327584 0 0 0
ctxt 330852
btime 1795625947
processes 10979
procs_running 3
procs_blocked 0
softirq 141074 0 25912 4 3478 16265 0 197 35335 0 59883
"#;
        assert_eq!(parse_boot_time(sample), Ok(1_795_625_947.0));
        assert!(parse_boot_time(b"cpu 1 2 3\n").is_err());
        assert_eq!(parse_boot_time(b"cpu 1\nbtime x\n").unwrap_err().line, 2);
    }

    #[test]
    fn mem_total() {
        // Sample from this machine (Debian 12, kernel 6.18.44), first lines.
        let sample = br#"MemTotal:       24684084 kB
MemFree:        22626880 kB
MemAvailable:   24089424 kB
"#;
        assert_eq!(parse_mem_total(sample), Ok(24_684_084 * 1024));
        assert!(parse_mem_total(b"MemFree: 1 kB\n").is_err());
        assert!(parse_mem_total(b"MemTotal: 1 MB\n").is_err());
        assert!(parse_mem_total(b"MemTotal:\n").is_err());
        // Found by `cargo xtask fuzz proc_parsers`: kB to bytes overflowed.
        let huge = format!("MemTotal: {} kB\n", u64::MAX / 1000);
        let err = parse_mem_total(huge.as_bytes()).unwrap_err();
        assert!(err.message.contains("overflows"), "{err}");
    }

    #[test]
    fn pretty_name() {
        // Sample from this machine: /etc/os-release of Debian 12.
        let sample = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
"#;
        assert_eq!(
            parse_pretty_name(sample).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(
            parse_pretty_name("PRETTY_NAME=Alpine\n").as_deref(),
            Some("Alpine")
        );
        assert_eq!(
            parse_pretty_name(r#"PRETTY_NAME='It\'s "X"'"#).as_deref(),
            Some(r#"It's "X""#)
        );
        assert_eq!(parse_pretty_name("NAME=x\n"), None);
    }
}
