//! Durations as people type and read them, in humantime's syntax: "500ms",
//! "3s", "1m30s". Every duration flag is read here, and every duration the
//! command line prints is written here, so that they read alike.

use std::time::Duration;

/// Parses a duration flag; a value that is no duration gets an error that
/// shows `examples` ("500ms, 3s or 1m") of what the flag expects.
pub fn parse(text: &str, examples: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!(
            "{text} is negative; expected a duration such as {examples}"
        ));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is no duration ({e}); expected one such as {examples}"))
}

/// [`parse`] for a flag where zero makes no sense; `zero` says why.
pub fn parse_nonzero(text: &str, examples: &str, zero: &str) -> Result<Duration, String> {
    match parse(text, examples)? {
        d if d.is_zero() => Err(zero.to_owned()),
        d => Ok(d),
    }
}

/// A duration as the flags take it: "5s", "200ms", "1m 30s".
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_humantime_and_say_what_they_expect() {
        assert_eq!(parse(" 1m30s ", "x"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("200ms", "x"), Ok(Duration::from_millis(200)));
        assert_eq!(parse("0s", "x"), Ok(Duration::ZERO));
        let e = parse("3 parsecs", "500ms, 3s or 1m").expect_err("no duration");
        assert!(e.ends_with("; expected one such as 500ms, 3s or 1m"), "{e}");
        assert_eq!(
            parse("-1s", "500ms, 3s or 1m"),
            Err("-1s is negative; expected a duration such as 500ms, 3s or 1m".to_owned())
        );
        assert!(parse("", "x").is_err());
        assert_eq!(
            parse_nonzero("0ms", "x", "the timeout must be longer than 0"),
            Err("the timeout must be longer than 0".to_owned())
        );
        assert_eq!(parse_nonzero("2s", "x", "z"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn what_is_printed_parses_back() {
        for d in [
            Duration::from_millis(200),
            Duration::from_secs(5),
            Duration::from_secs(90),
        ] {
            assert_eq!(parse(&format(d), "x"), Ok(d));
        }
        assert_eq!(format(Duration::from_secs(5)), "5s");
        assert_eq!(format(Duration::from_millis(1500)), "1s 500ms");
    }
}
