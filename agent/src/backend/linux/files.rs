//! A process's open descriptors, from `/proc/<pid>/fd` (the links) and
//! `/proc/<pid>/fdinfo` (offsets and flags), as psutil's `open_files`
//! reads them.
//!
//! psutil keeps a descriptor when its link names an absolute path that is
//! a regular file, and asks the type of the path, in the agent's own view
//! of the file system. Here the type is that of the open file itself,
//! through the descriptor's link: the same answer for every file psutil
//! lists, and a right one for files deleted while open (which psutil
//! leaves out, psutil#382) and for files of another mount namespace (a
//! container's). The stat asks for cached attributes only, so a file on a
//! dead NFS server does not hang the listing.

use std::{
    ffi::CString,
    io::{self, Read},
    ops::ControlFlow,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    path::Path,
};

use rustix::fs::{AtFlags, FileType, StatxFlags};

use super::{
    Linux,
    process::{Errno, classify, io_error, parse_pid},
    sys,
};
use crate::backend::{
    Error, FileKind, FilesQuery, OpenFile, Status,
    parse::{
        fd_link::{self, FdLink},
        fdinfo::{mode, parse_fdinfo},
        lossy,
        stat::parse_stat,
    },
};

/// What a stat of an open file tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStat {
    kind: FileKind,
    /// No name links to the file any more.
    unlinked: bool,
}

/// The type and link count of the file the link `name` in `dir` leads to,
/// from the kernel's cached attributes (`AT_STATX_DONT_SYNC`); plain
/// `fstatat` on kernels before 4.11, which have no statx.
fn stat_through(dir: BorrowedFd<'_>, name: &CString) -> io::Result<FileStat> {
    let wanted = StatxFlags::TYPE | StatxFlags::NLINK;
    let (mode, nlink) =
        match rustix::fs::statx(dir, name.as_c_str(), AtFlags::STATX_DONT_SYNC, wanted) {
            Ok(st) => (u32::from(st.stx_mode), u64::from(st.stx_nlink)),
            Err(rustix::io::Errno::NOSYS) => {
                let st = rustix::fs::statat(dir, name.as_c_str(), AtFlags::empty())?;
                (st.st_mode, st.st_nlink)
            }
            Err(errno) => return Err(errno.into()),
        };
    let kind = match FileType::from_raw_mode(mode as rustix::fs::RawMode) {
        FileType::RegularFile => FileKind::File,
        FileType::Directory => FileKind::Directory,
        FileType::CharacterDevice | FileType::BlockDevice => FileKind::Device,
        FileType::Fifo => FileKind::Pipe,
        FileType::Socket => FileKind::Socket,
        FileType::Symlink | FileType::Unknown => FileKind::Other,
    };
    Ok(FileStat {
        kind,
        unlinked: nlink == 0,
    })
}

/// A decimal name (a pid or a descriptor number) for the `*at` calls.
fn decimal(n: u32) -> CString {
    // Digits hold no NUL.
    CString::new(n.to_string()).unwrap_or_default()
}

/// The open descriptors of `pid`: see [`crate::backend::Backend::open_files`].
pub(super) fn open_files(
    linux: &Linux,
    pid: u32,
    query: &FilesQuery,
    after: Option<u32>,
    visit: &mut dyn FnMut(OpenFile) -> ControlFlow<()>,
) -> Result<(), Error> {
    let pid_dir = linux.procfs.join(pid.to_string());
    let root = linux.open_root()?;
    let dir =
        sys::open_dir_at(Some(root.as_fd()), &decimal(pid)).map_err(|err| {
            match classify(&err) {
                Errno::Missing => Error::NoSuchProcess { pid },
                Errno::Denied => Error::AccessDenied {
                    pid: Some(pid),
                    path: pid_dir.clone(),
                },
                Errno::Other => io_error(&pid_dir, err),
            }
        })?;
    let fd_dir = sys::open_dir_at(Some(dir.as_fd()), c"fd")
        .map_err(|err| unreadable(dir.as_fd(), pid, &pid_dir.join("fd"), err))?;
    let mut fds = Vec::new();
    let mut entries = sys::DirBuf::default();
    let mut listing = entries.list(fd_dir.as_fd());
    while let Some(entry) = listing.next_with(parse_pid) {
        match entry {
            Ok(Some(fd)) => fds.push(fd),
            // `.`, `..`, and a fixture tree's placeholder.
            Ok(None) => {}
            Err(err) => return Err(unreadable(dir.as_fd(), pid, &pid_dir.join("fd"), err)),
        }
    }
    fds.sort_unstable();
    fds.retain(|fd| after.is_none_or(|after| *fd > after));

    let mut reader = Reader {
        pid,
        pid_dir: &pid_dir,
        dir: dir.as_fd(),
        fd_dir: fd_dir.as_fd(),
        fdinfo_dir: None,
        link: Vec::new(),
        text: Vec::new(),
    };
    for fd in fds {
        let file = match reader.read(fd, query) {
            Ok(Some(file)) => file,
            Ok(None) => continue,
            // The process exited part way: what was read stands.
            Err(Error::NoSuchProcess { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if visit(file).is_break() {
            break;
        }
    }
    Ok(())
}

/// The error for a process whose `fd` directory cannot be opened or
/// listed: gone, a zombie (only to those who may not look inside one),
/// or not ours to read.
fn unreadable(dir: BorrowedFd<'_>, pid: u32, path: &Path, err: io::Error) -> Error {
    match classify(&err) {
        Errno::Missing => Error::NoSuchProcess { pid },
        Errno::Denied => match zombie(dir, pid) {
            Some(e) => e,
            None => Error::AccessDenied {
                pid: Some(pid),
                path: path.to_owned(),
            },
        },
        Errno::Other => io_error(path, err),
    }
}

/// [`Error::ZombieProcess`] when `stat` says the process is a zombie.
fn zombie(dir: BorrowedFd<'_>, pid: u32) -> Option<Error> {
    let mut text = Vec::new();
    sys::open_file_at(dir, c"stat")
        .and_then(|mut f| f.read_to_end(&mut text))
        .ok()?;
    let stat = parse_stat(&text).ok()?;
    (stat.status == Status::Zombie).then(|| Error::ZombieProcess {
        pid,
        ppid: Some(stat.ppid),
        name: Some(lossy(stat.comm)),
    })
}

/// One process's descriptors being read, with buffers reused between
/// them.
struct Reader<'a> {
    pid: u32,
    pid_dir: &'a Path,
    dir: BorrowedFd<'a>,
    fd_dir: BorrowedFd<'a>,
    /// `fdinfo`, opened when the first descriptor is kept.
    fdinfo_dir: Option<OwnedFd>,
    link: Vec<u8>,
    text: Vec<u8>,
}

impl Reader<'_> {
    /// Descriptor `fd`, if `query` keeps it and it is still open.
    fn read(&mut self, fd: u32, query: &FilesQuery) -> Result<Option<OpenFile>, Error> {
        let name = decimal(fd);
        if let Err(err) = sys::read_link_at(self.fd_dir, &name, &mut self.link) {
            return self.skip_or_fail(fd, "fd", err);
        }
        let (kind, path, deleted) = match fd_link::classify(&self.link) {
            FdLink::Path(target) => {
                let stat = match stat_through(self.fd_dir, &name) {
                    Ok(stat) => stat,
                    Err(err) => return self.skip_or_fail(fd, "fd", err),
                };
                if !query.admits(stat.kind) {
                    return Ok(None);
                }
                // The target names a file of the live system, not of the
                // procfs root: that is where the process runs.
                let (path, deleted) =
                    fd_link::clean_path(target, stat.unlinked, |p| Path::new(p).exists());
                (stat.kind, path, deleted)
            }
            link => {
                let kind = match link {
                    FdLink::Socket(_) => FileKind::Socket,
                    FdLink::Pipe(_) => FileKind::Pipe,
                    FdLink::AnonInode => FileKind::AnonInode,
                    FdLink::Path(_) | FdLink::Other => FileKind::Other,
                };
                if !query.admits(kind) {
                    return Ok(None);
                }
                let (path, _) = fd_link::clean_path(&self.link, false, |_| true);
                (kind, path, false)
            }
        };
        if !query.keeps(kind, &path) {
            return Ok(None);
        }
        let info = match self.fdinfo(&name) {
            Ok(()) => parse_fdinfo(&self.text)
                .map_err(|e| e.at(self.pid_dir.join("fdinfo").join(fd.to_string())))?,
            Err(err) => return self.skip_or_fail(fd, "fdinfo", err),
        };
        Ok(Some(OpenFile {
            pid: self.pid,
            fd,
            path,
            position: info.pos,
            mode: mode(info.flags),
            flags: info.flags,
            kind,
            deleted,
        }))
    }

    /// Reads `fdinfo/<name>` into `self.text`.
    fn fdinfo(&mut self, name: &CString) -> io::Result<()> {
        let dir = match &self.fdinfo_dir {
            Some(dir) => dir,
            None => self
                .fdinfo_dir
                .insert(sys::open_dir_at(Some(self.dir), c"fdinfo")?),
        };
        self.text.clear();
        sys::open_file_at(dir.as_fd(), name)?.read_to_end(&mut self.text)?;
        Ok(())
    }

    /// A failed read of descriptor `fd` in `what` (`fd` or `fdinfo`): a
    /// descriptor closed meanwhile, or a link too long to read whole, is
    /// skipped as psutil skips it; a process gone ends the read.
    fn skip_or_fail<T>(&self, fd: u32, what: &str, err: io::Error) -> Result<Option<T>, Error> {
        use rustix::io::Errno as E;
        let path = || self.pid_dir.join(what).join(fd.to_string());
        match classify(&err) {
            // ESRCH: the process has exited; ENOENT: the descriptor
            // closed, or the whole process went.
            Errno::Missing if E::from_io_error(&err) == Some(E::SRCH) => {
                Err(Error::NoSuchProcess { pid: self.pid })
            }
            Errno::Missing => Ok(None),
            Errno::Denied => Err(Error::AccessDenied {
                pid: Some(self.pid),
                path: path(),
            }),
            Errno::Other => match E::from_io_error(&err) {
                Some(E::NAMETOOLONG | E::INVAL) => Ok(None),
                _ => Err(io_error(&path(), err)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, glob::Glob};

    /// The fixture tree of open files (see its README): pid 15840 holds
    /// one descriptor of every kind; 15841 has no `fd` directory.
    fn fixture() -> Linux {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/linux-files");
        Linux::with_consts(dir.join("proc"), dir.join("sys"), 100, 4096).unwrap()
    }

    fn files(
        backend: &Linux,
        pid: u32,
        query: &FilesQuery,
        after: Option<u32>,
    ) -> Result<Vec<OpenFile>, Error> {
        let mut all = Vec::new();
        backend.open_files(pid, query, after, &mut |f| {
            all.push(f);
            ControlFlow::Continue(())
        })?;
        Ok(all)
    }

    fn file(fd: u32, path: &str, position: u64, mode: &'static str, flags: u32) -> OpenFile {
        OpenFile {
            pid: 15840,
            fd,
            path: path.to_owned(),
            position,
            mode,
            flags,
            kind: FileKind::File,
            deleted: false,
        }
    }

    #[test]
    fn fixture_regular_files_as_psutil_lists_them() {
        let got = files(&fixture(), 15840, &FilesQuery::default(), None).unwrap();
        assert_eq!(
            got,
            [
                file(3, "/proc/version", 5, "r", 0o2100000),
                file(4, "/proc/cmdline", 7, "a", 0o2102001),
                file(5, "/proc/stat", 7, "r+", 0o2100002),
                file(13, "/proc/loadavg", 0, "w", 0o2100001),
                file(14, "/proc/uptime", 0, "a+", 0o2102002),
            ]
        );
    }

    #[test]
    fn fixture_every_kind_of_descriptor() {
        let every = FilesQuery {
            all_kinds: true,
            ..FilesQuery::default()
        };
        let got = files(&fixture(), 15840, &every, None).unwrap();
        let kinds: Vec<(u32, &str, FileKind)> = got
            .iter()
            .map(|f| (f.fd, f.path.as_str(), f.kind))
            .collect();
        // fd 20 has no fdinfo: it was closed between the two reads.
        assert_eq!(
            kinds,
            [
                (0, "/dev/null", FileKind::Device),
                (3, "/proc/version", FileKind::File),
                (4, "/proc/cmdline", FileKind::File),
                (5, "/proc/stat", FileKind::File),
                (7, "pipe:[1064302]", FileKind::Pipe),
                (8, "pipe:[1064302]", FileKind::Pipe),
                (9, "socket:[1064303]", FileKind::Socket),
                (11, "anon_inode:[eventfd]", FileKind::AnonInode),
                (12, "/", FileKind::Directory),
                (13, "/proc/loadavg", FileKind::File),
                (14, "/proc/uptime", FileKind::File),
                (21, "net:[4026531840]", FileKind::Other),
            ]
        );
        let pipe_end = got.iter().find(|f| f.fd == 8).unwrap();
        assert_eq!((pipe_end.mode, pipe_end.flags), ("w", 0o2000001));
        assert!(got.iter().all(|f| !f.deleted && f.pid == 15840));
    }

    #[test]
    fn fixture_resumes_after_a_descriptor_and_stops_when_told() {
        let every = FilesQuery {
            all_kinds: true,
            ..FilesQuery::default()
        };
        let fds = |after| -> Vec<u32> {
            let got = files(&fixture(), 15840, &every, after).unwrap();
            got.iter().map(|f| f.fd).collect()
        };
        assert_eq!(fds(Some(9)), [11, 12, 13, 14, 21]);
        assert_eq!(fds(Some(21)), [] as [u32; 0]);
        let mut seen = Vec::new();
        fixture()
            .open_files(15840, &every, None, &mut |f| {
                seen.push(f.fd);
                match seen.len() {
                    3 => ControlFlow::Break(()),
                    _ => ControlFlow::Continue(()),
                }
            })
            .unwrap();
        assert_eq!(seen, [0, 3, 4]);
    }

    #[test]
    fn fixture_path_glob() {
        let logs = FilesQuery {
            path: Some(Glob::new("/proc/*t*").unwrap()),
            ..FilesQuery::default()
        };
        let got = files(&fixture(), 15840, &logs, None).unwrap();
        let paths: Vec<&str> = got.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["/proc/stat", "/proc/uptime"]);
        let sockets = FilesQuery {
            path: Some(Glob::new("socket:*").unwrap()),
            all_kinds: true,
            ..FilesQuery::default()
        };
        let got = files(&fixture(), 15840, &sockets, None).unwrap();
        assert_eq!(got.iter().map(|f| f.fd).collect::<Vec<_>>(), [9]);
    }

    #[test]
    fn fixture_missing_processes() {
        for pid in [15841, 99_999] {
            let err = files(&fixture(), pid, &FilesQuery::default(), None).unwrap_err();
            assert!(
                matches!(err, Error::NoSuchProcess { pid: p } if p == pid),
                "{err:?}"
            );
        }
    }
}
