//! `/proc/<pid>/statm`: memory sizes in pages (proc(5)).

use super::{HostConsts, ParseError, number, tokens};
use crate::backend::MemoryInfo;

/// The fields of `/proc/<pid>/statm`, in pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statm {
    /// Total program size (psutil's `vms`).
    pub size: u64,
    /// Resident set size (psutil's `rss`).
    pub resident: u64,
    /// Resident shared pages, file-backed or shared memory.
    pub shared: u64,
    /// Text (code).
    pub text: u64,
    /// Data plus stack.
    pub data: u64,
}

/// Parses `/proc/<pid>/statm`: size, resident, shared, text, lib (always
/// 0 since Linux 2.6), data, dt (always 0).
pub fn parse_statm(bytes: &[u8]) -> Result<Statm, ParseError> {
    let mut fields = [0u64; 6];
    let mut it = tokens(bytes);
    for (i, slot) in fields.iter_mut().enumerate() {
        let token = it
            .next()
            .ok_or_else(|| ParseError::new(0, format!("only {i} fields, expected 7")))?;
        *slot = number(token, "statm", 0)?;
    }
    let [size, resident, shared, text, _lib, data] = fields;
    Ok(Statm {
        size,
        resident,
        shared,
        text,
        data,
    })
}

impl Statm {
    /// Memory in bytes, as psutil's `memory_info` computes it on Linux.
    /// A page count no kernel could hold in bytes saturates rather than
    /// wrapping to a small number.
    pub fn memory_info(&self, host: &HostConsts) -> MemoryInfo {
        let bytes = |pages: u64| pages.saturating_mul(host.page_size);
        MemoryInfo {
            rss: bytes(self.resident),
            vms: bytes(self.size),
            shared: Some(bytes(self.shared)),
            text: Some(bytes(self.text)),
            data: Some(bytes(self.data)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_become_bytes() {
        // Sample from this machine (Debian 12, kernel 6.18.44): cat(1)
        // reading /proc/self/statm.
        let sample = br#"765 431 403 5 0 123 0
"#;
        let host = HostConsts {
            clk_tck: 100,
            page_size: 4096,
            boot_time: 0.0,
        };
        let info = parse_statm(sample).unwrap().memory_info(&host);
        assert_eq!(
            info,
            MemoryInfo {
                rss: 431 * 4096,
                vms: 765 * 4096,
                shared: Some(403 * 4096),
                text: Some(5 * 4096),
                data: Some(123 * 4096),
            }
        );
    }

    #[test]
    fn page_counts_beyond_memory_saturate() {
        // Found by `cargo xtask fuzz proc_parsers`: multiplying by the page
        // size overflowed.
        let huge = format!("{} 1 0 0 0 {} 0", u64::MAX, u64::MAX / 2);
        let host = HostConsts {
            clk_tck: 100,
            page_size: 4096,
            boot_time: 0.0,
        };
        let info = parse_statm(huge.as_bytes()).unwrap().memory_info(&host);
        assert_eq!(
            (info.vms, info.rss, info.data),
            (u64::MAX, 4096, Some(u64::MAX))
        );
    }

    #[test]
    fn short_or_bad_records_are_errors() {
        assert!(parse_statm(b"765 431 403").is_err());
        assert!(parse_statm(b"765 431 403 5 0 -1 0").is_err());
        assert!(parse_statm(b"").is_err());
    }
}
