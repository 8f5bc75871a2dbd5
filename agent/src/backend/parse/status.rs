//! `/proc/<pid>/status`: `Key:\tvalue` lines (proc(5)).

use super::{ParseError, key_values, number, required, tokens};
use crate::backend::{CtxSwitches, Ids};

/// The lines of `/proc/<pid>/status` the agent uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStatus {
    /// Thread group id: equal to the pid for a process, not for a thread.
    pub tgid: u32,
    /// Real, effective and saved user ids (`Uid:`).
    pub uids: Ids,
    /// Real, effective and saved group ids (`Gid:`).
    pub gids: Ids,
    /// Threads in the process (`Threads:`).
    pub threads: u32,
    /// Voluntary and involuntary context switches since the process started.
    pub ctx_switches: CtxSwitches,
}

/// Parses `/proc/<pid>/status`. Every line used has been there since
/// Linux 2.6.23, so a missing one is an error, not a default.
pub fn parse_status(bytes: &[u8]) -> Result<ProcStatus, ParseError> {
    let (mut tgid, mut uids, mut gids, mut threads, mut voluntary, mut involuntary) =
        (None, None, None, None, None, None);
    for (n, key, value) in key_values(bytes) {
        match key {
            b"Tgid" => tgid = Some(number(value, "Tgid", n)?),
            b"Uid" => uids = Some(ids(value, "Uid", n)?),
            b"Gid" => gids = Some(ids(value, "Gid", n)?),
            b"Threads" => threads = Some(number(value, "Threads", n)?),
            b"voluntary_ctxt_switches" => voluntary = Some(number(value, "voluntary", n)?),
            b"nonvoluntary_ctxt_switches" => involuntary = Some(number(value, "nonvoluntary", n)?),
            _ => {}
        }
    }
    Ok(ProcStatus {
        tgid: required(tgid, "Tgid")?,
        uids: required(uids, "Uid")?,
        gids: required(gids, "Gid")?,
        threads: required(threads, "Threads")?,
        ctx_switches: CtxSwitches {
            voluntary: required(voluntary, "voluntary_ctxt_switches")?,
            involuntary: required(involuntary, "nonvoluntary_ctxt_switches")?,
        },
    })
}

/// `Uid:`/`Gid:` values: real, effective, saved set and filesystem ids.
fn ids(value: &[u8], key: &str, line: usize) -> Result<Ids, ParseError> {
    let mut it = tokens(value);
    let mut next = |which: &str| {
        let token = it
            .next()
            .ok_or_else(|| ParseError::new(line, format!("{key}: no {which} id")))?;
        number(token, key, line)
    };
    Ok(Ids {
        real: next("real")?,
        effective: next("effective")?,
        saved: next("saved")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Sample from this machine (Debian 12, kernel 6.18.44): cat(1) reading
    // /proc/self/status, with the real/effective/saved ids changed to tell
    // them apart and the Vm*, Sig*, Cap* and Mems_allowed lines cut.
    const SAMPLE: &[u8] = br#"Name:	cat
Umask:	0022
State:	R (running)
Tgid:	10980
Ngid:	0
Pid:	10980
PPid:	10975
TracerPid:	0
Uid:	1000	0	1001	0
Gid:	100	101	102	0
FDSize:	256
Groups:	 
NStgid:	10980
NSpid:	10980
NSpgid:	10975
NSsid:	7707
Kthread:	0
VmRSS:	    1568 kB
Threads:	1
Cpus_allowed_list:	0-1
voluntary_ctxt_switches:	7
nonvoluntary_ctxt_switches:	2
"#;

    #[test]
    fn ids_threads_and_switches() {
        let status = parse_status(SAMPLE).unwrap();
        assert_eq!(status.tgid, 10980);
        assert_eq!(
            status.uids,
            Ids {
                real: 1000,
                effective: 0,
                saved: 1001
            }
        );
        assert_eq!(
            status.gids,
            Ids {
                real: 100,
                effective: 101,
                saved: 102
            }
        );
        assert_eq!(status.threads, 1);
        assert_eq!(
            status.ctx_switches,
            CtxSwitches {
                voluntary: 7,
                involuntary: 2
            }
        );
    }

    #[test]
    fn missing_or_malformed_lines_are_errors() {
        let no_uid: Vec<u8> = SAMPLE
            .split(|b| *b == b'\n')
            .filter(|l| !l.starts_with(b"Uid:"))
            .flat_map(|l| l.iter().copied().chain(*b"\n"))
            .collect();
        let err = parse_status(&no_uid).unwrap_err();
        assert!(err.message.contains("Uid"), "{err}");

        let short = b"Tgid:\t1\nUid:\t0\t0\n";
        assert_eq!(parse_status(short).unwrap_err().line, 2);
        let bad = b"Tgid:\tone\n";
        assert_eq!(parse_status(bad).unwrap_err().line, 1);
    }
}
