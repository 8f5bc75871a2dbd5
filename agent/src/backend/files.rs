//! Open descriptors of processes, as psutil's `Process.open_files` and
//! `ls -l /proc/PID/fd` show them: the types a backend answers in, and
//! which descriptors a listing keeps.

use super::glob::Glob;

/// What a descriptor refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A regular file: the only kind psutil's `open_files` lists.
    File,
    /// A directory.
    Directory,
    /// A character or block device (`/dev/null`, `/dev/pts/0`).
    Device,
    /// A socket (`socket:[12345]`).
    Socket,
    /// An anonymous pipe (`pipe:[678]`) or a named one (a fifo).
    Pipe,
    /// An eventfd, epoll, timerfd, signalfd, inotify or the like
    /// (`anon_inode:[eventfd]`).
    AnonInode,
    /// Anything else the kernel names.
    Other,
}

/// One open descriptor of a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenFile {
    /// The process holding it.
    pub pid: u32,
    /// The descriptor's number.
    pub fd: u32,
    /// The absolute path, or the kernel's name for what is not a file
    /// (`socket:[12345]`); a deleted file's path without the kernel's
    /// " (deleted)" suffix. Empty where the kernel names nothing (on
    /// FreeBSD sockets and pipes; on macOS whatever is not a vnode).
    pub path: String,
    /// The file offset in bytes.
    pub position: u64,
    /// psutil's mode: "r", "w", "a", "r+" or "a+"; "" where the
    /// descriptor is open for neither reading nor writing, or the kernel
    /// does not say.
    pub mode: &'static str,
    /// The open flags as the kernel reports them, numbered as the OS's
    /// `fcntl.h` numbers them: on Linux close-on-exec included; on
    /// FreeBSD what `kinfo_file` records (close-on-exec not); 0 on macOS
    /// for what is not a vnode.
    pub flags: u32,
    /// What it refers to.
    pub kind: FileKind,
    /// The file was deleted while open (never set on FreeBSD, whose
    /// `kinfo_file` does not tell).
    pub deleted: bool,
}

/// Which descriptors a listing keeps.
#[derive(Clone, Debug, Default)]
pub struct FilesQuery {
    /// Only these processes, each once, in this order; empty: every
    /// process.
    pub pids: Vec<u32>,
    /// Only descriptors whose path (or kernel name) matches this glob.
    pub path: Option<Glob>,
    /// Every kind of descriptor; otherwise regular files only, as psutil's
    /// `open_files`.
    pub all_kinds: bool,
}

impl FilesQuery {
    /// Whether a descriptor of `kind` can be kept at all, before its path
    /// is known: regular files, or every kind with `all_kinds`.
    pub fn admits(&self, kind: FileKind) -> bool {
        self.all_kinds || kind == FileKind::File
    }

    /// Whether a descriptor of `kind` named `path` is kept.
    pub fn keeps(&self, kind: FileKind, path: &str) -> bool {
        self.admits(kind) && self.path.as_ref().is_none_or(|glob| glob.matches(path))
    }

    /// The descriptors of one process, read in any order, that a listing
    /// keeps: those this query keeps, numbered above `after`, by
    /// ascending number.
    pub fn select(&self, mut files: Vec<OpenFile>, after: Option<u32>) -> Vec<OpenFile> {
        files.retain(|f| after.is_none_or(|after| f.fd > after) && self.keeps(f.kind, &f.path));
        files.sort_by_key(|f| f.fd);
        files
    }
}

#[cfg(test)]
impl OpenFile {
    /// A descriptor `fd` of `pid` for tests: read-only at offset 0, no
    /// flags, not deleted.
    pub(crate) fn sample(pid: u32, fd: u32, kind: FileKind, path: &str) -> OpenFile {
        OpenFile {
            pid,
            fd,
            path: path.to_owned(),
            position: 0,
            mode: "r",
            flags: 0,
            kind,
            deleted: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_only_unless_every_kind_is_asked_for() {
        let default = FilesQuery::default();
        assert!(default.keeps(FileKind::File, "/var/log/app.log"));
        for kind in [
            FileKind::Directory,
            FileKind::Device,
            FileKind::Socket,
            FileKind::Pipe,
            FileKind::AnonInode,
            FileKind::Other,
        ] {
            assert!(!default.keeps(kind, "/dev/null"), "{kind:?}");
            let every = FilesQuery {
                all_kinds: true,
                ..FilesQuery::default()
            };
            assert!(every.keeps(kind, "socket:[1]"), "{kind:?}");
        }
    }

    #[test]
    fn selects_in_order_above_a_descriptor() {
        let file = |fd, kind, path: &str| OpenFile::sample(7, fd, kind, path);
        let read = || {
            vec![
                file(9, FileKind::File, "/var/log/b.log"),
                file(3, FileKind::File, "/var/log/a.log"),
                file(4, FileKind::Socket, ""),
                file(12, FileKind::File, "/etc/hosts"),
                file(5, FileKind::File, "/var/log/c.log"),
            ]
        };
        let fds = |files: Vec<OpenFile>| files.iter().map(|f| f.fd).collect::<Vec<_>>();
        let default = FilesQuery::default();
        assert_eq!(fds(default.select(read(), None)), [3, 5, 9, 12]);
        assert_eq!(fds(default.select(read(), Some(5))), [9, 12]);
        let logs = FilesQuery {
            path: Some(Glob::new("/var/log/*").unwrap()),
            all_kinds: true,
            ..FilesQuery::default()
        };
        assert_eq!(fds(logs.select(read(), Some(3))), [5, 9]);
        let every = FilesQuery {
            all_kinds: true,
            ..FilesQuery::default()
        };
        assert_eq!(fds(every.select(read(), None)), [3, 4, 5, 9, 12]);
    }

    #[test]
    fn the_path_glob_applies_to_kernel_names_too() {
        let query = FilesQuery {
            path: Some(Glob::new("/var/log/*.log").unwrap()),
            all_kinds: true,
            ..FilesQuery::default()
        };
        assert!(query.keeps(FileKind::File, "/var/log/app.log"));
        // `*` crosses `/`, as in ps --name.
        assert!(query.keeps(FileKind::File, "/var/log/nginx/access.log"));
        assert!(!query.keeps(FileKind::File, "/var/log/app.log.1"));
        assert!(!query.keeps(FileKind::Socket, "socket:[12]"));
        let sockets = FilesQuery {
            path: Some(Glob::new("socket:*").unwrap()),
            all_kinds: true,
            ..FilesQuery::default()
        };
        assert!(sockets.keeps(FileKind::Socket, "socket:[12]"));
    }
}
