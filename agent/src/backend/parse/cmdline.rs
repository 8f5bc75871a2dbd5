//! `/proc/<pid>/{cmdline,environ}` and the `exe`/`cwd` link targets, and
//! the name psutil builds from `comm` and the command line.

use super::lossy;

/// The separator and the body of a command line, psutil's way: arguments
/// end in NUL, but a process that rewrote its arguments (setproctitle)
/// may use spaces, so a record not ending in NUL, or one NUL-ended
/// argument holding spaces, is split on spaces instead. `None` when the
/// record is empty (zombies, kernel threads).
fn cmdline_parts(raw: &[u8]) -> Option<(u8, &[u8])> {
    let sep = match raw.last()? {
        0 => 0,
        _ => b' ',
    };
    let body = raw.strip_suffix(&[sep]).unwrap_or(raw);
    if sep == 0 && !body.contains(&0) && body.contains(&b' ') {
        return Some((b' ', body));
    }
    Some((sep, body))
}

/// Parses `/proc/<pid>/cmdline` into arguments, as psutil does; empty for
/// zombies and kernel threads.
pub fn parse_cmdline(raw: &[u8]) -> Vec<String> {
    match cmdline_parts(raw) {
        Some((sep, body)) => body.split(|b| *b == sep).map(lossy).collect(),
        None => Vec::new(),
    }
}

/// The first argument of a command line, without building the rest.
pub fn first_arg(raw: &[u8]) -> Option<&[u8]> {
    let (sep, body) = cmdline_parts(raw)?;
    body.split(|b| *b == sep).next()
}

/// psutil's process name: `comm`, unless the kernel truncated it (15 bytes
/// or more) and the basename of the first argument starts with it, as in
/// `gnome-keyring-d` and `gnome-keyring-daemon`; then that basename.
pub fn widen_name<'a>(comm: &'a [u8], argv0: Option<&'a [u8]>) -> &'a [u8] {
    if comm.len() < 15 {
        return comm;
    }
    match argv0 {
        Some(arg) => {
            let base = arg.rsplit(|b| *b == b'/').next().unwrap_or(arg);
            if base.starts_with(comm) { base } else { comm }
        }
        None => comm,
    }
}

/// Parses `/proc/<pid>/environ` as psutil does: `KEY=value` entries ended
/// by NUL. An entry without `=` or with an empty key is skipped; an empty
/// entry or an unterminated tail ends the block (a process may have
/// overwritten its environment).
pub fn parse_environ(raw: &[u8]) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    let mut rest = raw;
    while let Some(end) = rest.iter().position(|b| *b == 0) {
        if end == 0 {
            break;
        }
        let entry = &rest[..end];
        if let Some(eq) = entry.iter().position(|b| *b == b'=').filter(|eq| *eq > 0) {
            vars.push((lossy(&entry[..eq]), lossy(&entry[eq + 1..])));
        }
        rest = &rest[end + 1..];
    }
    vars
}

/// The suffix the kernel adds to a link whose target was unlinked.
const DELETED: &str = " (deleted)";

/// A `readlink` result of an `exe` or `cwd` link, as psutil cleans it:
/// anything after a NUL is garbage the kernel left, and a " (deleted)"
/// suffix is dropped unless a file of that very name exists (`exists`
/// answers that, so this stays free of syscalls).
pub fn link_target(raw: &[u8], exists: impl FnOnce(&str) -> bool) -> String {
    let path = raw.split(|b| *b == 0).next().unwrap_or(raw);
    let path = lossy(path);
    match path.strip_suffix(DELETED) {
        Some(stripped) if !exists(&path) => stripped.to_owned(),
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Sample from this machine (Debian 12, kernel 6.18.44): a copy of
    // sleep(1) run as `./a) (b 300`.
    const NORMAL: &[u8] = b"./a) (b\x00300\x00";

    #[test]
    fn nul_separated() {
        assert_eq!(parse_cmdline(NORMAL), ["./a) (b", "300"]);
        assert_eq!(first_arg(NORMAL), Some(&b"./a) (b"[..]));
        // An empty argument in the middle stays.
        assert_eq!(parse_cmdline(b"a\0\0b\0"), ["a", "", "b"]);
    }

    #[test]
    fn empty_for_zombies_and_kernel_threads() {
        assert!(parse_cmdline(b"").is_empty());
        assert_eq!(first_arg(b""), None);
    }

    #[test]
    fn setproctitle_spaces() {
        // Shape from psutil issue 1179 (Chrome rewrites its arguments).
        let rewritten = b"/opt/google/chrome/chrome --type=renderer --lang=en ";
        assert_eq!(
            parse_cmdline(rewritten),
            ["/opt/google/chrome/chrome", "--type=renderer", "--lang=en"]
        );
        // One NUL-ended argument holding spaces is split on spaces too.
        assert_eq!(
            parse_cmdline(b"nginx: worker process\0"),
            ["nginx:", "worker", "process"]
        );
        assert_eq!(first_arg(b"nginx: worker process\0"), Some(&b"nginx:"[..]));
    }

    #[test]
    fn name_widening() {
        let comm = b"systemd-journal";
        let argv0 = Some(&b"/usr/lib/systemd/systemd-journald"[..]);
        assert_eq!(widen_name(comm, argv0), b"systemd-journald");
        assert_eq!(widen_name(comm, Some(b"/bin/other")), comm);
        assert_eq!(widen_name(comm, None), comm);
        // Short names are never widened.
        assert_eq!(widen_name(b"bash", Some(b"/bin/bash-5.2")), b"bash");
    }

    #[test]
    fn environ_block() {
        // Shape from this machine: `env -i A=1 B= ./a) (b 300`, plus a
        // key-less entry and an unterminated tail.
        let raw = b"A=1\0B=\0=x\0noequals\0C=a=b\0TAIL=cut";
        assert_eq!(
            parse_environ(raw),
            [
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), String::new()),
                ("C".to_owned(), "a=b".to_owned()),
            ]
        );
        assert_eq!(parse_environ(b"A=1\0\0B=2\0").len(), 1);
        assert!(parse_environ(b"").is_empty());
    }

    #[test]
    fn deleted_links() {
        let gone = |_: &str| false;
        assert_eq!(link_target(b"/usr/bin/foo (deleted)", gone), "/usr/bin/foo");
        assert_eq!(link_target(b"/usr/bin/foo", gone), "/usr/bin/foo");
        assert_eq!(link_target(b"/usr/bin/foo\0garbage", gone), "/usr/bin/foo");
        // A file really named "... (deleted)" keeps its name.
        let there = |_: &str| true;
        assert_eq!(link_target(b"/tmp/x (deleted)", there), "/tmp/x (deleted)");
    }
}
