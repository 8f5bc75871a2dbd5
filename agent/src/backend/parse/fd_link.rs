//! The targets of `/proc/<pid>/fd/<fd>` links: what a descriptor refers
//! to, as the kernel names it (proc(5)).
//!
//! A descriptor of a file names its path; the others name a kind and an
//! inode: `socket:[12345]`, `pipe:[678]`, `anon_inode:[eventfd]` (or,
//! for some, `anon_inode:bpf-map`), and namespaces `net:[4026531840]`.

use super::lossy;

/// What a descriptor link names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdLink<'a> {
    /// An absolute path: a file, directory, device or named pipe (the type
    /// needs a stat), possibly with the kernel's " (deleted)" suffix.
    Path(&'a [u8]),
    /// `socket:[N]`: a socket and its inode number.
    Socket(u64),
    /// `pipe:[N]`: an anonymous pipe and its inode number.
    Pipe(u64),
    /// `anon_inode:...`: an eventfd, epoll, timerfd, signalfd, inotify or
    /// other descriptor of no file.
    AnonInode,
    /// Anything else the kernel names (`net:[4026531840]`, ...).
    Other,
}

/// The part of a link target before the first NUL: psutil drops the rest
/// as garbage the kernel may leave (psutil#717).
fn before_nul(target: &[u8]) -> &[u8] {
    target.split(|b| *b == 0).next().unwrap_or(target)
}

/// The inode of a `prefix[N]` target, such as `socket:[12345]`.
fn bracketed_inode(target: &[u8], prefix: &[u8]) -> Option<u64> {
    let digits = target.strip_prefix(prefix)?.strip_prefix(b"[")?;
    let digits = digits.strip_suffix(b"]")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// What the link target `target` names.
pub fn classify(target: &[u8]) -> FdLink<'_> {
    let target = before_nul(target);
    if target.starts_with(b"/") {
        return FdLink::Path(target);
    }
    if let Some(inode) = bracketed_inode(target, b"socket:") {
        return FdLink::Socket(inode);
    }
    if let Some(inode) = bracketed_inode(target, b"pipe:") {
        return FdLink::Pipe(inode);
    }
    if target.starts_with(b"anon_inode:") {
        return FdLink::AnonInode;
    }
    FdLink::Other
}

/// The inode of a socket descriptor's link target (`socket:[12345]`), for
/// mapping sockets to the processes that hold them.
pub fn socket_inode(target: &[u8]) -> Option<u64> {
    match classify(target) {
        FdLink::Socket(inode) => Some(inode),
        _ => None,
    }
}

/// The suffix the kernel adds to a link whose target was unlinked.
const DELETED: &[u8] = b" (deleted)";

/// A path target as psutil reports it, and whether the file was deleted
/// while open: the text before any NUL, with the kernel's " (deleted)"
/// suffix removed when the file is gone. It is gone when `unlinked` (the
/// open file has no links left, as the kernel says of it) or, as psutil
/// decides, when no file of the suffixed name exists (`exists` answers
/// that, so this stays free of syscalls; it is asked only then).
pub fn clean_path(
    target: &[u8],
    unlinked: bool,
    exists: impl FnOnce(&str) -> bool,
) -> (String, bool) {
    let path = before_nul(target);
    match path.strip_suffix(DELETED) {
        Some(stripped) if unlinked || !exists(&lossy(path)) => (lossy(stripped), true),
        _ => (lossy(path), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_told_apart() {
        // Samples from this machine (Debian 12, kernel 6.18.44): a Python
        // process holding a pipe, a socketpair, an eventfd and an epoll.
        let cases: [(&[u8], FdLink<'_>); 10] = [
            (b"/dev/null", FdLink::Path(b"/dev/null")),
            (b"/tmp/x (deleted)", FdLink::Path(b"/tmp/x (deleted)")),
            (b"socket:[1063308]", FdLink::Socket(1_063_308)),
            (b"pipe:[1063307]", FdLink::Pipe(1_063_307)),
            (b"anon_inode:[eventfd]", FdLink::AnonInode),
            (b"anon_inode:[eventpoll]", FdLink::AnonInode),
            (b"anon_inode:bpf-map", FdLink::AnonInode),
            (b"net:[4026531840]", FdLink::Other),
            (b"socket:[12x]", FdLink::Other),
            (b"/a\0garbage", FdLink::Path(b"/a")),
        ];
        for (target, want) in cases {
            assert_eq!(classify(target), want, "{}", lossy(target));
        }
        assert_eq!(socket_inode(b"socket:[42]"), Some(42));
        for other in [
            &b"pipe:[42]"[..],
            b"socket:[]",
            b"socket:42",
            b"/socket:[42]",
        ] {
            assert_eq!(socket_inode(other), None, "{}", lossy(other));
        }
        // An inode beyond u64 is no inode.
        assert_eq!(classify(b"socket:[99999999999999999999999]"), FdLink::Other);
    }

    #[test]
    fn deleted_files_lose_the_suffix() {
        let never = |_: &str| panic!("not asked when the kernel says it is unlinked");
        assert_eq!(
            clean_path(b"/var/log/app.log (deleted)", true, never),
            ("/var/log/app.log".to_owned(), true)
        );
        // psutil's rule: no file of the suffixed name, so it was deleted.
        assert_eq!(
            clean_path(b"/var/log/app.log (deleted)", false, |_| false),
            ("/var/log/app.log".to_owned(), true)
        );
        // A file really named so, still linked.
        let asked = std::cell::Cell::new(None);
        let exists = |p: &str| {
            asked.set(Some(p.to_owned()));
            true
        };
        assert_eq!(
            clean_path(b"/srv/x (deleted)", false, exists),
            ("/srv/x (deleted)".to_owned(), false)
        );
        assert_eq!(asked.take().as_deref(), Some("/srv/x (deleted)"));
        assert_eq!(
            clean_path(b"/srv/x", true, never),
            ("/srv/x".to_owned(), false)
        );
        // Garbage after a NUL goes before the suffix is looked for.
        assert_eq!(
            clean_path(b"/srv/y (deleted)\0new", true, never),
            ("/srv/y".to_owned(), true)
        );
    }
}
