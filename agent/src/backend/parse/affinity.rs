//! CPU lists (`0-3,8,10-11`, cpuset(7)'s list format) and the I/O
//! priority word of ioprio_get(2).

use super::{ParseError, key_values, lossy, number, required};
use crate::backend::{IoNice, IoNiceClass};

/// The CPUs a process may run on, from `Cpus_allowed_list:` of
/// `/proc/<pid>/status`: what sched_getaffinity(2) (psutil's
/// `cpu_affinity`) answers, readable for any pid.
pub fn parse_cpus_allowed(status: &[u8]) -> Result<Vec<u32>, ParseError> {
    let mut list = None;
    for (n, key, value) in key_values(status) {
        if key == b"Cpus_allowed_list" {
            list = Some(parse_cpu_list(value).map_err(|e| ParseError::new(n, e.message))?);
        }
    }
    required(list, "Cpus_allowed_list")
}

/// A cpuset list such as `0-3,8`, in ascending order.
pub fn parse_cpu_list(text: &[u8]) -> Result<Vec<u32>, ParseError> {
    let mut cpus = Vec::new();
    for part in text.trim_ascii().split(|b| *b == b',') {
        if part.is_empty() {
            continue;
        }
        let (first, last) = match part.iter().position(|b| *b == b'-') {
            Some(dash) => (
                number::<u32>(&part[..dash], "cpu", 0)?,
                number::<u32>(&part[dash + 1..], "cpu", 0)?,
            ),
            None => {
                let cpu = number(part, "cpu", 0)?;
                (cpu, cpu)
            }
        };
        // A list names each CPU of a machine once; a range beyond any
        // machine is a corrupt record, not a reason to fill memory.
        if first > last || last - first >= 1 << 16 {
            return Err(ParseError::new(
                0,
                format!("bad cpu range {:?}", lossy(part)),
            ));
        }
        cpus.extend(first..=last);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// The class and priority of an ioprio_get(2) result, as psutil decodes
/// it: the class in the bits above 13 (0 none, 1 real time, 2 best effort,
/// 3 idle), the data in the 13 below.
pub fn decode_ioprio(ioprio: i32) -> Result<IoNice, ParseError> {
    let class = match ioprio >> 13 {
        0 => IoNiceClass::None,
        1 => IoNiceClass::Rt,
        2 => IoNiceClass::Be,
        3 => IoNiceClass::Idle,
        other => {
            return Err(ParseError::new(
                0,
                format!("unknown I/O priority class {other} in {ioprio:#x}"),
            ));
        }
    };
    Ok(IoNice {
        class,
        value: (ioprio & 0x1fff) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list(b"0-1").unwrap(), [0, 1]);
        assert_eq!(parse_cpu_list(b"3").unwrap(), [3]);
        assert_eq!(parse_cpu_list(b"0,2-4,7\n").unwrap(), [0, 2, 3, 4, 7]);
        assert_eq!(parse_cpu_list(b"").unwrap(), Vec::<u32>::new());
        for bad in [&b"1-"[..], b"a", b"4-2", b"0-4000000000"] {
            assert!(parse_cpu_list(bad).is_err(), "{}", lossy(bad));
        }
    }

    #[test]
    fn cpus_allowed_from_status() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/linux/proc/15830/status");
        let status = std::fs::read(path).unwrap();
        assert_eq!(parse_cpus_allowed(&status).unwrap(), [1]);
        assert!(parse_cpus_allowed(b"Name:\tx\n").is_err());
        let err = parse_cpus_allowed(b"Name:\tx\nCpus_allowed_list:\tz\n").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn io_priorities() {
        let nice = |class, value| IoNice { class, value };
        assert_eq!(decode_ioprio(0).unwrap(), nice(IoNiceClass::None, 0));
        assert_eq!(decode_ioprio(4).unwrap(), nice(IoNiceClass::None, 4));
        assert_eq!(
            decode_ioprio((1 << 13) | 2).unwrap(),
            nice(IoNiceClass::Rt, 2)
        );
        assert_eq!(
            decode_ioprio((2 << 13) | 7).unwrap(),
            nice(IoNiceClass::Be, 7)
        );
        assert_eq!(decode_ioprio(3 << 13).unwrap(), nice(IoNiceClass::Idle, 0));
        assert!(decode_ioprio(4 << 13).is_err());
    }
}
