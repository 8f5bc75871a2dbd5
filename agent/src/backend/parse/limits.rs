//! `/proc/<pid>/limits`: a header, then one line per resource with its
//! soft and hard limits and unit, in fixed-width columns (proc(5)).

use super::{ParseError, lossy, number, numbered_lines, tokens};
use crate::backend::Rlimit;

/// The kernel's description of each resource beside psutil's name for it
/// (`RLIMIT_*` without the prefix, in lower case), in the kernel's order.
pub const RESOURCES: [(&str, &str); 16] = [
    ("Max cpu time", "cpu"),
    ("Max file size", "fsize"),
    ("Max data size", "data"),
    ("Max stack size", "stack"),
    ("Max core file size", "core"),
    ("Max resident set", "rss"),
    ("Max processes", "nproc"),
    ("Max open files", "nofile"),
    ("Max locked memory", "memlock"),
    ("Max address space", "as"),
    ("Max file locks", "locks"),
    ("Max pending signals", "sigpending"),
    ("Max msgqueue size", "msgqueue"),
    ("Max nice priority", "nice"),
    ("Max realtime priority", "rtprio"),
    ("Max realtime timeout", "rttime"),
];

/// Parses `/proc/<pid>/limits` into every resource's limits, in the
/// kernel's order; "unlimited" is `None`. The values are those getrlimit(2)
/// returns (seconds for cpu, microseconds for rttime). Lines of resources
/// this agent does not know are skipped.
pub fn parse_limits(bytes: &[u8]) -> Result<Vec<Rlimit>, ParseError> {
    let mut limits = Vec::with_capacity(RESOURCES.len());
    for (n, line) in numbered_lines(bytes) {
        let known = RESOURCES.iter().find(|(text, _)| {
            line.strip_prefix(text.as_bytes())
                .is_some_and(|rest| rest.first().is_some_and(u8::is_ascii_whitespace))
        });
        let Some((text, resource)) = known else {
            continue;
        };
        let mut values = tokens(&line[text.len()..]);
        let mut limit = |which: &str| -> Result<Option<u64>, ParseError> {
            match values.next() {
                Some(b"unlimited") => Ok(None),
                Some(v) => number(v, resource, n).map(Some),
                None => Err(ParseError::new(
                    n,
                    format!("{resource}: no {which} limit in {:?}", lossy(line)),
                )),
            }
        };
        limits.push(Rlimit {
            resource,
            soft: limit("soft")?,
            hard: limit("hard")?,
        });
    }
    if limits.is_empty() {
        return Err(ParseError::new(0, "no resource limit lines"));
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/linux/proc/15830/limits");
        std::fs::read(path).unwrap()
    }

    #[test]
    fn every_resource_in_the_kernels_order() {
        let limits = parse_limits(&fixture()).unwrap();
        let names: Vec<&str> = limits.iter().map(|l| l.resource).collect();
        let want: Vec<&str> = RESOURCES.iter().map(|(_, name)| *name).collect();
        assert_eq!(names, want);
        let get = |name| *limits.iter().find(|l| l.resource == name).unwrap();
        assert_eq!(
            get("nofile"),
            Rlimit {
                resource: "nofile",
                soft: Some(123),
                hard: Some(20_000),
            }
        );
        assert_eq!((get("cpu").soft, get("cpu").hard), (None, None));
        assert_eq!(get("stack").soft, Some(8_388_608));
        assert_eq!(get("stack").hard, None);
        assert_eq!(get("core").soft, Some(0));
        assert_eq!((get("nice").soft, get("rtprio").hard), (Some(0), Some(0)));
    }

    #[test]
    fn malformed_records_are_errors() {
        assert!(parse_limits(b"").is_err());
        let short = b"Limit Soft Limit Hard Limit Units\nMax open files            1024\n";
        assert_eq!(parse_limits(short).unwrap_err().line, 2);
        let bad = b"Max open files            many                 1024                 files\n";
        assert!(parse_limits(bad).is_err());
        // A resource of a future kernel is skipped.
        let future = b"Max open files 1 2 files\nMax widgets 3 4 widgets\n";
        assert_eq!(parse_limits(future).unwrap().len(), 1);
    }
}
