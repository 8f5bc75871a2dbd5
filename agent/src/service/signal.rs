//! The signals an operator may send, by name or number.

use std::ffi::c_int;

/// The signals SignalProcess accepts, by short name: what an operator needs
/// to stop, restart, nudge (CHLD makes a parent collect its zombies) or
/// pause a process.
const SIGNALS: [(&str, c_int); 9] = [
    ("TERM", libc::SIGTERM),
    ("KILL", libc::SIGKILL),
    ("INT", libc::SIGINT),
    ("HUP", libc::SIGHUP),
    ("CHLD", libc::SIGCHLD),
    ("STOP", libc::SIGSTOP),
    ("CONT", libc::SIGCONT),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
];

/// A signal by name ("TERM", "SIGTERM", "term") or number ("15"): its short
/// name and number, or a message listing the accepted ones.
pub fn parse(text: &str) -> Result<(&'static str, c_int), String> {
    let t = text.trim();
    let found = match t.parse::<c_int>() {
        Ok(n) => SIGNALS.iter().find(|(_, num)| *num == n),
        Err(_) => {
            let upper = t.to_ascii_uppercase();
            let name = upper.strip_prefix("SIG").unwrap_or(&upper);
            SIGNALS.iter().find(|(n, _)| *n == name)
        }
    };
    found.copied().ok_or_else(|| {
        let names: Vec<String> = SIGNALS
            .iter()
            .map(|(n, num)| format!("{n} ({num})"))
            .collect();
        format!(
            "unknown or disallowed signal {text:?}; allowed: {}",
            names.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_form_and_numbers() {
        assert_eq!(parse("TERM"), Ok(("TERM", libc::SIGTERM)));
        assert_eq!(parse("sigkill"), Ok(("KILL", libc::SIGKILL)));
        assert_eq!(parse(" Chld "), Ok(("CHLD", libc::SIGCHLD)));
        assert_eq!(
            parse(&libc::SIGUSR2.to_string()),
            Ok(("USR2", libc::SIGUSR2))
        );
    }

    #[test]
    fn others_are_refused_with_the_list() {
        for bad in ["SEGV", "0", "-9", "", "TERMINATE", "99"] {
            let err = parse(bad).unwrap_err();
            assert!(
                err.contains("TERM (15)") && err.contains("USR2"),
                "{bad}: {err}"
            );
        }
    }
}
