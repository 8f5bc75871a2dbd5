//! The signals hostscope knows by name: the ones `SignalProcess` accepts,
//! and the ones an exit event may name.
//!
//! The API carries a signal to send as text ("TERM") and the signal that
//! ended a process as a number, and the proto defines no enum for either.
//! This table is the one list that the agent (which parses requests and
//! sends signals) and the client (which checks what users type and prints
//! events) both read, so that they cannot drift apart.

use std::fmt;

/// Declares [`Signal`] and its table in one place: per signal, its short
/// name, the `libc` constant that numbers it on the platform this code
/// runs on, and its number where Linux, the BSDs and macOS agree.
macro_rules! signals {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $libc:ident, $portable:expr;)*) => {
        /// A signal hostscope knows by name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Signal {
            $($(#[$doc])* $variant,)*
        }

        impl Signal {
            /// Every signal of the table.
            pub const ALL: &'static [Signal] = &[$(Signal::$variant),*];

            /// The short upper-case name, without "SIG": `TERM`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Signal::$variant => $name,)*
                }
            }

            /// The number where Linux, the BSDs and macOS agree on it
            /// (`KILL` is 9 everywhere), or `None` where they differ
            /// (`CHLD` is 17 on Linux and 20 on the BSDs).
            pub const fn portable_number(self) -> Option<i32> {
                match self {
                    $(Signal::$variant => $portable,)*
                }
            }

            /// The number on the platform this code runs on. Only the
            /// agent, which sends the signal on its own host, may use it:
            /// a client's platform may number the signal otherwise.
            #[cfg(unix)]
            pub const fn number(self) -> libc::c_int {
                match self {
                    $(Signal::$variant => libc::$libc,)*
                }
            }
        }
    };
}

signals! {
    /// Hangup; daemons take it as "reload your configuration".
    Hup = "HUP", SIGHUP, Some(1);
    /// Interrupt, as Ctrl-C sends it.
    Int = "INT", SIGINT, Some(2);
    /// Quit with a core dump, as Ctrl-\ sends it.
    Quit = "QUIT", SIGQUIT, Some(3);
    /// Illegal instruction.
    Ill = "ILL", SIGILL, Some(4);
    /// Trace or breakpoint trap.
    Trap = "TRAP", SIGTRAP, Some(5);
    /// Abort, as `abort(3)` raises it.
    Abrt = "ABRT", SIGABRT, Some(6);
    /// Arithmetic error.
    Fpe = "FPE", SIGFPE, Some(8);
    /// Kill: cannot be caught or ignored.
    Kill = "KILL", SIGKILL, Some(9);
    /// Invalid memory reference.
    Segv = "SEGV", SIGSEGV, Some(11);
    /// Write to a pipe nobody reads.
    Pipe = "PIPE", SIGPIPE, Some(13);
    /// Timer expired, as `alarm(2)` raises it.
    Alrm = "ALRM", SIGALRM, Some(14);
    /// Polite termination: the default of `kill`.
    Term = "TERM", SIGTERM, Some(15);
    /// A child stopped or exited; a parent with a handler then reaps it.
    Chld = "CHLD", SIGCHLD, None;
    /// Stop: cannot be caught or ignored.
    Stop = "STOP", SIGSTOP, None;
    /// Continue a stopped process.
    Cont = "CONT", SIGCONT, None;
    /// User-defined signal 1.
    Usr1 = "USR1", SIGUSR1, None;
    /// User-defined signal 2.
    Usr2 = "USR2", SIGUSR2, None;
}

impl Signal {
    /// The signals `SignalProcess` accepts, in the order help texts and
    /// refusals list them: what an operator needs to stop, restart, nudge
    /// (CHLD makes a parent collect its zombies) or pause a process.
    pub const SENDABLE: [Signal; 9] = [
        Signal::Term,
        Signal::Kill,
        Signal::Int,
        Signal::Hup,
        Signal::Chld,
        Signal::Stop,
        Signal::Cont,
        Signal::Usr1,
        Signal::Usr2,
    ];

    /// Whether `SignalProcess` accepts it.
    pub fn is_sendable(self) -> bool {
        Signal::SENDABLE.contains(&self)
    }

    /// A signal of the table by name, in any case, with or without "SIG"
    /// and surrounding blanks: "TERM", "sigterm", " Term ".
    pub fn from_name(text: &str) -> Option<Signal> {
        let upper = text.trim().to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        Signal::ALL.iter().copied().find(|s| s.name() == name)
    }

    /// A signal `SignalProcess` accepts, by name as [`Signal::from_name`]
    /// reads it.
    pub fn sendable_from_name(text: &str) -> Option<Signal> {
        Signal::from_name(text).filter(|s| s.is_sendable())
    }

    /// The signal with this number where Linux, the BSDs and macOS agree
    /// on it; see [`Signal::portable_number`].
    pub fn from_portable_number(number: i32) -> Option<Signal> {
        Signal::ALL
            .iter()
            .copied()
            .find(|s| s.portable_number() == Some(number))
    }

    /// The names `SignalProcess` accepts, comma-separated, for help texts
    /// and refusals: "TERM, KILL, INT, ...".
    pub fn sendable_names() -> String {
        let names: Vec<&str> = Signal::SENDABLE.iter().map(|s| s.name()).collect();
        names.join(", ")
    }
}

/// The short name, as the API spells it: `TERM`.
impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_read_in_any_form() {
        for text in ["TERM", "term", "SIGTERM", "sigTerm", " Term "] {
            assert_eq!(Signal::from_name(text), Some(Signal::Term), "{text:?}");
        }
        assert_eq!(Signal::from_name("SEGV"), Some(Signal::Segv));
        for bad in ["", "SIG", "TERMINATE", "15", "SIGSIGTERM"] {
            assert_eq!(Signal::from_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_the_operator_signals_are_sendable() {
        assert_eq!(Signal::sendable_from_name("chld"), Some(Signal::Chld));
        assert_eq!(Signal::sendable_from_name("SIGSEGV"), None);
        assert_eq!(
            Signal::sendable_names(),
            "TERM, KILL, INT, HUP, CHLD, STOP, CONT, USR1, USR2"
        );
        let sendable: HashSet<Signal> = Signal::SENDABLE.into_iter().collect();
        for s in Signal::ALL {
            assert_eq!(s.is_sendable(), sendable.contains(s), "{s}");
        }
    }

    #[test]
    fn names_and_numbers_are_each_given_once() {
        let names: HashSet<&str> = Signal::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), Signal::ALL.len());
        let portable: Vec<i32> = Signal::ALL
            .iter()
            .filter_map(|s| s.portable_number())
            .collect();
        let unique: HashSet<&i32> = portable.iter().collect();
        assert_eq!(unique.len(), portable.len());
        for n in portable {
            let s = Signal::from_portable_number(n).expect("a signal");
            assert_eq!(s.portable_number(), Some(n));
        }
        assert_eq!(Signal::from_portable_number(9), Some(Signal::Kill));
        // 17 is CHLD on Linux and STOP on the BSDs: no portable name.
        assert_eq!(Signal::from_portable_number(17), None);
    }

    /// The portable numbers are the ones this platform uses too: a check
    /// of the table against the C library wherever the tests run.
    #[cfg(unix)]
    #[test]
    fn portable_numbers_match_this_platform() {
        for s in Signal::ALL {
            if let Some(n) = s.portable_number() {
                assert_eq!(s.number(), n, "{s}");
            }
        }
        assert_eq!(Signal::Chld.number(), libc::SIGCHLD);
        let numbers: HashSet<libc::c_int> = Signal::ALL.iter().map(|s| s.number()).collect();
        assert_eq!(numbers.len(), Signal::ALL.len(), "two names, one number");
    }
}
