//! The utmp file (`/var/run/utmp`): who is logged in, as psutil's
//! `users()` reads it through getutxent(3).
//!
//! The records are glibc's `struct utmp` on the 64-bit Linux ABIs that
//! keep 32-bit times in it (x86_64, aarch64; utmp(5)), little-endian,
//! 384 bytes each:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | `ut_type` (short), then 2 bytes of padding |
//! | 4 | 4 | `ut_pid` |
//! | 8 | 32 | `ut_line`, the terminal without "/dev/" |
//! | 40 | 4 | `ut_id` |
//! | 44 | 32 | `ut_user` |
//! | 76 | 256 | `ut_host` |
//! | 332 | 4 | `ut_exit` (two shorts) |
//! | 336 | 4 | `ut_session` |
//! | 340 | 8 | `ut_tv`: `tv_sec`, `tv_usec` (int32 each) |
//! | 348 | 16 | `ut_addr_v6` |
//! | 364 | 20 | reserved |
//!
//! The strings are NUL-padded, not always NUL-terminated.

use super::lossy;
use crate::backend::system::User;

/// Bytes in one record.
pub const UTMP_RECORD_BYTES: usize = 384;

/// `ut_type` of a login session.
const USER_PROCESS: i16 = 7;

/// The login sessions (`USER_PROCESS` records) of a utmp file, in file
/// order. A short record at the end (a file being written) is ignored, as
/// getutxent(3) ignores it.
pub fn parse_utmp(bytes: &[u8]) -> Vec<User> {
    bytes
        .chunks_exact(UTMP_RECORD_BYTES)
        .filter_map(|r| {
            let short = i16::from_le_bytes([r[0], r[1]]);
            if short != USER_PROCESS {
                return None;
            }
            let int = |at: usize| i32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]);
            let text = |at: usize, len: usize| {
                let field = &r[at..at + len];
                let end = field.iter().position(|b| *b == 0).unwrap_or(len);
                lossy(&field[..end])
            };
            Some(User {
                name: text(44, 32),
                terminal: text(8, 32),
                host: text(76, 256),
                started: f64::from(int(340)),
                pid: u32::try_from(int(4)).ok().filter(|pid| *pid > 0),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: i16, pid: i32, line: &str, user: &str, host: &str, sec: i32) -> Vec<u8> {
        let mut r = vec![0u8; UTMP_RECORD_BYTES];
        r[0..2].copy_from_slice(&kind.to_le_bytes());
        r[4..8].copy_from_slice(&pid.to_le_bytes());
        r[8..8 + line.len()].copy_from_slice(line.as_bytes());
        r[44..44 + user.len()].copy_from_slice(user.as_bytes());
        r[76..76 + host.len()].copy_from_slice(host.as_bytes());
        r[340..344].copy_from_slice(&sec.to_le_bytes());
        r
    }

    #[test]
    fn only_user_processes_are_sessions() {
        let mut file = record(2, 0, "~", "reboot", "6.18.44", 1_795_625_947);
        file.extend(record(7, 4242, "pts/0", "alice", "10.0.0.5", 1_795_626_000));
        // A user name that fills its field, without a NUL.
        let long = "u".repeat(32);
        file.extend(record(7, 0, "tty1", &long, "", 1_795_626_100));
        file.extend(record(8, 4243, "pts/1", "bob", "", 1_795_626_200));
        // A record cut short.
        file.extend([7, 0, 0]);
        let users = parse_utmp(&file);
        assert_eq!(
            users,
            vec![
                User {
                    name: "alice".into(),
                    terminal: "pts/0".into(),
                    host: "10.0.0.5".into(),
                    started: 1_795_626_000.0,
                    pid: Some(4242),
                },
                User {
                    name: long,
                    terminal: "tty1".into(),
                    host: String::new(),
                    started: 1_795_626_100.0,
                    pid: None,
                },
            ]
        );
        assert_eq!(parse_utmp(b""), vec![]);
    }
}
