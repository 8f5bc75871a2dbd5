//! `/proc/<pid>/stat`: one line of space-separated fields (proc(5)).

use super::{HostConsts, ParseError, lossy, number, tokens};
use crate::backend::{CpuTimes, Status};

/// `PF_KTHREAD` in the `flags` field: the task is a kernel thread, which
/// has no user address space, so no exe, command line or environment.
const PF_KTHREAD: u32 = 0x0020_0000;

/// The fields of `/proc/<pid>/stat` the agent uses, in kernel units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat<'a> {
    /// The command name (`comm`): at most 15 bytes for user processes,
    /// longer for some kernel threads; any bytes but NUL.
    pub comm: &'a [u8],
    /// psutil's status for the state letter.
    pub status: Status,
    /// Parent pid; 0 for the kernel's own threads and for pid 1.
    pub ppid: u32,
    /// The controlling terminal's device number, encoded as in
    /// [`decode_tty`]; 0 when there is none.
    pub tty_nr: u32,
    /// `PF_*` flags of the task.
    pub flags: u32,
    /// Minor page faults (served without a disk read).
    pub minflt: u64,
    /// Major page faults (needed a disk read).
    pub majflt: u64,
    /// Clock ticks in user mode.
    pub utime_ticks: u64,
    /// Clock ticks in kernel mode.
    pub stime_ticks: u64,
    /// Clock ticks of waited-for children in user mode.
    pub cutime_ticks: u64,
    /// Clock ticks of waited-for children in kernel mode.
    pub cstime_ticks: u64,
    /// Scheduling priority as the kernel shows it (nice + 20 for normal
    /// tasks, negative for real-time ones).
    pub priority: i64,
    /// -20 (most favourable) to 19.
    pub nice: i32,
    /// Threads in the process.
    pub num_threads: u32,
    /// Clock ticks after boot at which the process started.
    pub starttime_ticks: u64,
    /// Virtual memory size in bytes.
    pub vsize_bytes: u64,
    /// Resident set size in pages.
    pub rss_pages: u64,
    /// Clock ticks spent waiting for block I/O; 0 on kernels older than
    /// 2.6.18, which lack the field.
    pub delayacct_blkio_ticks: u64,
    /// The CPU the task last ran on (field 39); `None` on kernels older
    /// than 2.2.8, which lack it.
    pub processor: Option<u32>,
}

/// Parses `/proc/<pid>/stat`.
///
/// The command name sits between the first `(` and the last `)`: a name may
/// itself contain spaces and parentheses (`a) (b`), but the fields after it
/// cannot, so the last `)` is the true end.
pub fn parse_stat(bytes: &[u8]) -> Result<Stat<'_>, ParseError> {
    let open = bytes
        .iter()
        .position(|b| *b == b'(')
        .ok_or_else(|| ParseError::new(0, "no '(' before the command name"))?;
    let close = bytes
        .iter()
        .rposition(|b| *b == b')')
        .filter(|close| *close > open)
        .ok_or_else(|| ParseError::new(0, "no ')' after the command name"))?;
    let comm = &bytes[open + 1..close];

    // Fields from the state (field 3 in proc(5)) on: index = field - 3.
    let mut rest = [&b""[..]; 40];
    let mut count = 0;
    for (slot, token) in rest.iter_mut().zip(tokens(&bytes[close + 1..])) {
        *slot = token;
        count += 1;
    }
    // Up to rss (field 24) has been there since Linux 2.6.0.
    if count < 22 {
        return Err(ParseError::new(
            0,
            format!("only {count} fields after the command name, expected at least 22"),
        ));
    }
    let state = match rest[0] {
        [letter] => status_from_letter(*letter),
        _ => None,
    }
    .ok_or_else(|| ParseError::new(0, format!("unknown state {:?}", lossy(rest[0]))))?;
    Ok(Stat {
        comm,
        status: state,
        ppid: number(rest[1], "ppid", 0)?,
        tty_nr: tty_field(rest[4])?,
        flags: number(rest[6], "flags", 0)?,
        minflt: number(rest[7], "minflt", 0)?,
        majflt: number(rest[9], "majflt", 0)?,
        utime_ticks: number(rest[11], "utime", 0)?,
        stime_ticks: number(rest[12], "stime", 0)?,
        cutime_ticks: number(rest[13], "cutime", 0)?,
        cstime_ticks: number(rest[14], "cstime", 0)?,
        priority: number(rest[15], "priority", 0)?,
        nice: number(rest[16], "nice", 0)?,
        num_threads: number(rest[17], "num_threads", 0)?,
        starttime_ticks: number(rest[19], "starttime", 0)?,
        vsize_bytes: number(rest[20], "vsize", 0)?,
        rss_pages: number(rest[21], "rss", 0)?,
        delayacct_blkio_ticks: match count {
            40.. => number(rest[39], "delayacct_blkio_ticks", 0)?,
            _ => 0,
        },
        processor: match count {
            37.. => Some(number(rest[36], "processor", 0)?),
            _ => None,
        },
    })
}

/// The kernel prints `tty_nr` with `%d`; the encoding is unsigned.
fn tty_field(token: &[u8]) -> Result<u32, ParseError> {
    number::<i32>(token, "tty_nr", 0).map(|n| n as u32)
}

impl Stat<'_> {
    /// Whether the task is a kernel thread.
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }

    /// CPU times in seconds, as psutil computes them (ticks / CLK_TCK;
    /// iowait from `delayacct_blkio_ticks`).
    pub fn cpu_times(&self, host: &HostConsts) -> CpuTimes {
        let seconds = |ticks: u64| ticks as f64 / host.clk_tck as f64;
        CpuTimes {
            user: seconds(self.utime_ticks),
            system: seconds(self.stime_ticks),
            children_user: Some(seconds(self.cutime_ticks)),
            children_system: Some(seconds(self.cstime_ticks)),
            iowait: Some(seconds(self.delayacct_blkio_ticks)),
        }
    }

    /// Start time in seconds since the Unix epoch, as psutil computes it:
    /// boot time plus the start tick count over CLK_TCK.
    pub fn create_time(&self, host: &HostConsts) -> f64 {
        self.starttime_ticks as f64 / host.clk_tck as f64 + host.boot_time
    }
}

/// psutil's status for a state letter of `stat` or `status`.
pub fn status_from_letter(letter: u8) -> Option<Status> {
    Some(match letter {
        b'R' => Status::Running,
        b'S' => Status::Sleeping,
        b'D' => Status::DiskSleep,
        b'T' => Status::Stopped,
        b't' => Status::TracingStop,
        b'Z' => Status::Zombie,
        b'X' | b'x' => Status::Dead,
        b'K' => Status::WakeKill,
        b'W' => Status::Waking,
        b'P' => Status::Parked,
        b'I' => Status::Idle,
        _ => return None,
    })
}

/// A controlling terminal, from the `tty_nr` device number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tty {
    /// The process has no controlling terminal.
    None,
    /// A terminal whose path follows from its device number alone.
    Path(String),
    /// A device this function does not know; its name is whatever `/dev`
    /// calls it.
    Device { major: u32, minor: u32 },
}

/// Decodes `tty_nr` (the kernel's `new_encode_dev`: minor bits 0-7 and
/// 20-31, major bits 8-19) and names the terminals whose path is fixed by
/// their number: pseudo-terminals (majors 136-143) and virtual consoles and
/// serial ports (major 4).
pub fn decode_tty(tty_nr: u32) -> Tty {
    if tty_nr == 0 {
        return Tty::None;
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xf_ff00);
    match major {
        136..=143 => Tty::Path(format!("/dev/pts/{}", (major - 136) * 256 + minor)),
        4 if minor < 64 => Tty::Path(format!("/dev/tty{minor}")),
        4 => Tty::Path(format!("/dev/ttyS{}", minor - 64)),
        _ => Tty::Device { major, minor },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Sample from this machine (Debian 12, kernel 6.18.44): a copy of
    // sleep(1) run as `./a) (b 300`.
    const PARENS: &[u8] = br#"11422 (a) (b) S 11418 11416 7707 0 -1 4194304 159 0 0 0 0 0 0 0 20 0 1 0 75260 2560000 347 18446744073709551615 94816391565312 94816391583241 140733821325552 0 0 0 0 0 0 1 0 0 17 1 0 0 0 0 0 94816391597328 94816391598592 94816445095936 140733821329380 140733821329392 140733821329392 140733821329392 0
"#;

    // Sample from this machine, kernel 6.18.44: kthreadd.
    const KTHREADD: &[u8] = br#"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 24 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0
"#;

    // Sample from this machine, kernel 6.18.44: pid 1, with CPU time and a
    // negative nice; delayacct_blkio_ticks (field 42) changed from 0 to 7.
    const INIT: &[u8] = br#"1 (process_api) S 0 0 0 0 -1 4194560 29668 295709 0 183 38 206 722 422 10 -10 14 0 24 43503616 2862 18446744073709551615 1 1 0 0 0 0 0 4096 1256 0 0 0 17 1 0 0 7 0 0 0 0 0 0 0 0 0 0
"#;

    const HOST: HostConsts = HostConsts {
        clk_tck: 100,
        page_size: 4096,
        boot_time: 1_795_625_947.0,
    };

    #[test]
    fn name_with_parentheses_and_spaces() {
        let stat = parse_stat(PARENS).unwrap();
        assert_eq!(stat.comm, b"a) (b");
        assert_eq!(stat.status, Status::Sleeping);
        assert_eq!(stat.ppid, 11418);
        assert_eq!(stat.starttime_ticks, 75260);
        assert_eq!(stat.vsize_bytes, 2_560_000);
        assert_eq!(stat.rss_pages, 347);
        assert!(!stat.is_kernel_thread());
        assert_eq!(stat.create_time(&HOST), 1_795_625_947.0 + 752.6);
    }

    #[test]
    fn kernel_thread() {
        let stat = parse_stat(KTHREADD).unwrap();
        assert_eq!(stat.comm, b"kthreadd");
        assert_eq!(stat.ppid, 0);
        assert!(stat.is_kernel_thread());
        assert_eq!(decode_tty(stat.tty_nr), Tty::None);
    }

    #[test]
    fn times_and_priority() {
        let stat = parse_stat(INIT).unwrap();
        assert_eq!((stat.priority, stat.nice, stat.num_threads), (10, -10, 14));
        assert_eq!(
            (stat.minflt, stat.majflt, stat.processor),
            (29668, 0, Some(1))
        );
        assert_eq!(
            stat.cpu_times(&HOST),
            CpuTimes {
                user: 0.38,
                system: 2.06,
                children_user: Some(7.22),
                children_system: Some(4.22),
                iowait: Some(0.07),
            }
        );
    }

    #[test]
    fn old_kernel_without_delay_accounting() {
        let short = b"5 (x) R 1 5 5 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 9 100 2";
        let stat = parse_stat(short).unwrap();
        assert_eq!((stat.utime_ticks, stat.delayacct_blkio_ticks), (3, 0));
        assert_eq!(stat.processor, None);
    }

    #[test]
    fn malformed_records_are_errors() {
        for bad in [
            &b""[..],
            b"1 x S 0",
            b"1 (x S 0 0",
            b"1 (x) S 0 0 0",
            b"1 (x) Q 0 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 100 2",
            b"1 (x) S zero 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 100 2",
        ] {
            assert!(
                parse_stat(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn every_psutil_state_letter() {
        let letters = b"RSDTtZXxKWPI";
        let all: Vec<_> = letters.iter().map(|l| status_from_letter(*l)).collect();
        assert!(all.iter().all(Option::is_some));
        assert_eq!(status_from_letter(b't'), Some(Status::TracingStop));
        assert_eq!(status_from_letter(b'I'), Some(Status::Idle));
        assert_eq!(status_from_letter(b'?'), None);
    }

    #[test]
    fn terminals() {
        assert_eq!(decode_tty(136 << 8), Tty::Path("/dev/pts/0".into()));
        assert_eq!(decode_tty(34819), Tty::Path("/dev/pts/3".into()));
        // pts 300: minor 300 spills into the high minor bits.
        let pts300 = (136 << 8) | (300 & 0xff) | ((300 & !0xff) << 12);
        assert_eq!(decode_tty(pts300), Tty::Path("/dev/pts/300".into()));
        assert_eq!(decode_tty((137 << 8) | 4), Tty::Path("/dev/pts/260".into()));
        assert_eq!(decode_tty((4 << 8) | 1), Tty::Path("/dev/tty1".into()));
        assert_eq!(decode_tty((4 << 8) | 64), Tty::Path("/dev/ttyS0".into()));
        assert_eq!(decode_tty((5 << 8) | 1), Tty::Device { major: 5, minor: 1 });
    }
}
