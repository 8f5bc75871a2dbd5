//! The signals an operator may send, by name or number: the agent's reading
//! of `SignalProcessRequest.signal`, over the table in `hostscope-proto`
//! that the client reads too.

use std::ffi::c_int;

use hostscope_proto::Signal;

/// A signal by name ("TERM", "SIGTERM", "term") or by this platform's
/// number ("15"): its short name and number, or a message listing the
/// accepted ones. Only [`Signal::SENDABLE`] are accepted.
pub fn parse(text: &str) -> Result<(&'static str, c_int), String> {
    let t = text.trim();
    let found = match t.parse::<c_int>() {
        Ok(n) => Signal::SENDABLE.into_iter().find(|s| s.number() == n),
        Err(_) => Signal::sendable_from_name(t),
    };
    found.map(|s| (s.name(), s.number())).ok_or_else(|| {
        let names: Vec<String> = Signal::SENDABLE
            .iter()
            .map(|s| format!("{s} ({})", s.number()))
            .collect();
        // The text is the client's: a long one is quoted only in part,
        // with its length.
        format!(
            "unknown or disallowed signal \"{}\"; allowed: {}",
            super::audit::bounded(text, 32),
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
        let segv = libc::SIGSEGV.to_string();
        for bad in ["SEGV", "0", "-9", "", "TERMINATE", "99", segv.as_str()] {
            let err = parse(bad).unwrap_err();
            assert!(
                err.contains("TERM (15)") && err.contains("USR2"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_huge_name_is_quoted_in_part_with_its_length() {
        let huge = "A".repeat(65_000);
        let err = parse(&huge).unwrap_err();
        assert!(err.len() < 400, "{} bytes", err.len());
        assert!(err.contains("...[65000 bytes]"), "{err}");
        let err = parse("KILL\u{202e}").unwrap_err();
        assert!(err.contains("KILL\\u{202e}"), "{err}");
    }
}
