//! Reading processes from procfs: which files a field set needs, and one
//! scan's reusable state.
//!
//! Speed comes from touching as little as possible: each `/proc/<pid>` is
//! opened once as a directory and its files are opened relative to it; only
//! the files the requested fields need are read; file contents land in
//! buffers reused across pids; and a short read ends a file, since procfs
//! fills the caller's buffer unless the record has ended.

use std::{
    collections::HashMap,
    ffi::CStr,
    io::{self, Read},
    ops::ControlFlow,
    os::fd::{AsFd, BorrowedFd},
    path::{Path, PathBuf},
};

use super::{Linux, sys};
use crate::backend::{
    Error, ErrorKind, Field, FieldSet, PageFaults, ProcessInfo, Status, Thread,
    parse::{
        ParseError,
        affinity::{decode_ioprio, parse_cpus_allowed},
        cgroup::parse_proc_cgroup,
        cmdline::{first_arg, link_target, parse_cmdline, parse_environ, widen_name},
        io::parse_io,
        limits::parse_limits,
        lossy,
        smaps::{parse_full_info, parse_memory_maps},
        stat::{Stat, Tty, decode_tty, parse_stat},
        statm::parse_statm,
        status::parse_status,
    },
};

// === Files and the fields they serve ===

/// A file (or link, or directory) under `/proc/<pid>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PidFile {
    Stat,
    Status,
    Statm,
    Io,
    Cmdline,
    Environ,
    Exe,
    Cwd,
    Fd,
    Cgroup,
    Limits,
    /// `smaps_rollup`, and `smaps` in its stead where the kernel has no
    /// rollup or refuses it.
    SmapsRollup,
    Smaps,
    /// The `task` directory and each thread's `stat`.
    Task,
    /// Not a file: the ioprio_get(2) system call.
    Ioprio,
}

impl PidFile {
    /// Every file, in the order a scan reads them: `stat` first, since it
    /// tells zombies and kernel threads apart and says whether the name
    /// needs the command line.
    const ALL: [PidFile; 15] = [
        PidFile::Stat,
        PidFile::Status,
        PidFile::Statm,
        PidFile::Io,
        PidFile::Cmdline,
        PidFile::Environ,
        PidFile::Exe,
        PidFile::Cwd,
        PidFile::Fd,
        PidFile::Cgroup,
        PidFile::Limits,
        PidFile::SmapsRollup,
        PidFile::Smaps,
        PidFile::Task,
        PidFile::Ioprio,
    ];

    pub(super) fn name(self) -> &'static CStr {
        match self {
            PidFile::Stat => c"stat",
            PidFile::Status => c"status",
            PidFile::Statm => c"statm",
            PidFile::Io => c"io",
            PidFile::Cmdline => c"cmdline",
            PidFile::Environ => c"environ",
            PidFile::Exe => c"exe",
            PidFile::Cwd => c"cwd",
            PidFile::Fd => c"fd",
            PidFile::Cgroup => c"cgroup",
            PidFile::Limits => c"limits",
            PidFile::SmapsRollup => c"smaps_rollup",
            PidFile::Smaps => c"smaps",
            PidFile::Task => c"task",
            PidFile::Ioprio => c"ioprio",
        }
    }

    /// The file a field is read from. The name also needs `cmdline` when
    /// `comm` looks truncated; that is decided per process.
    fn of(field: Field) -> PidFile {
        match field {
            Field::Ppid
            | Field::Name
            | Field::Status
            | Field::Terminal
            | Field::Nice
            | Field::CreateTime
            | Field::NumThreads
            | Field::CpuTimes
            | Field::CpuPercent
            | Field::CpuNum
            | Field::PageFaults => PidFile::Stat,
            Field::Username
            | Field::Uids
            | Field::Gids
            | Field::NumCtxSwitches
            | Field::CpuAffinity => PidFile::Status,
            Field::MemoryInfo | Field::MemoryPercent => PidFile::Statm,
            Field::IoCounters => PidFile::Io,
            Field::Cmdline => PidFile::Cmdline,
            Field::Environ => PidFile::Environ,
            Field::Exe => PidFile::Exe,
            Field::Cwd => PidFile::Cwd,
            Field::NumFds => PidFile::Fd,
            Field::Cgroup => PidFile::Cgroup,
            Field::Rlimits => PidFile::Limits,
            Field::MemoryFullInfo => PidFile::SmapsRollup,
            Field::MemoryMaps | Field::MemoryMapsUngrouped => PidFile::Smaps,
            Field::Threads => PidFile::Task,
            Field::Ionice => PidFile::Ioprio,
        }
    }

    fn bit(self) -> u16 {
        1 << self as u8
    }
}

/// The set of files a field set needs, worked out once per scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Need(u16);

impl Need {
    pub(super) fn of(fields: FieldSet) -> Need {
        Need(fields.iter().fold(0, |bits, f| bits | PidFile::of(f).bit()))
    }

    pub(super) fn has(self, file: PidFile) -> bool {
        self.0 & file.bit() != 0
    }

    fn with(self, file: PidFile) -> Need {
        Need(self.0 | file.bit())
    }

    pub(super) fn is_empty(self) -> bool {
        self.0 == 0
    }
}

// === Error classification ===

/// What an errno from a procfs read means for the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Errno {
    /// EACCES/EPERM: the agent may not read this.
    Denied,
    /// ENOENT/ESRCH: the process is gone, a zombie, or has no such file
    /// (kernel threads have no exe); telling which needs `stat`.
    Missing,
    /// Anything else: a real I/O problem, reported with its path.
    Other,
}

/// The class of `err`'s errno.
pub(super) fn classify(err: &io::Error) -> Errno {
    use rustix::io::Errno as E;
    match E::from_io_error(err) {
        Some(E::ACCESS | E::PERM) => Errno::Denied,
        Some(E::NOENT | E::SRCH) => Errno::Missing,
        _ => Errno::Other,
    }
}

/// What `stat` says about a process, once read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Liveness {
    Gone,
    Zombie,
    Alive { kernel_thread: bool },
}

impl Liveness {
    fn of(stat: &Stat<'_>) -> Liveness {
        match stat.status {
            Status::Zombie => Liveness::Zombie,
            _ => Liveness::Alive {
                kernel_thread: stat.is_kernel_thread(),
            },
        }
    }
}

/// Whether a process is still there after reading one of its files.
enum Flow {
    Continue,
    Vanished,
}

// === impl Scan ===

/// A buffer that keeps its length across reads, so refilling it costs no
/// allocation and no zeroing once it has grown to the largest record.
#[derive(Default)]
struct FileBuf {
    data: Vec<u8>,
    len: usize,
}

impl FileBuf {
    /// Reads all of `file`. A short read ends the record: procfs and sysfs
    /// fill the caller's buffer unless the record has ended, and this saves
    /// the extra read that would return 0 on every file.
    fn fill(&mut self, file: impl Read) -> io::Result<()> {
        self.read_from(file, true)
    }

    /// Reads all of `file`, up to the read that returns nothing. For files
    /// of many records such as `smaps`: the kernel's seq_file hands out at
    /// most one buffer of whole records per read, so a short read there
    /// does not mean the end.
    fn fill_to_end(&mut self, file: impl Read) -> io::Result<()> {
        self.read_from(file, false)
    }

    fn read_from(&mut self, mut file: impl Read, short_read_ends: bool) -> io::Result<()> {
        self.len = 0;
        loop {
            if self.len == self.data.len() {
                self.data.resize((self.data.len() * 2).max(4096), 0);
            }
            let room = self.data.len() - self.len;
            match file.read(&mut self.data[self.len..]) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    self.len += n;
                    if short_read_ends && n < room {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// What the last `fill` read.
    fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

/// `pid` as a NUL-terminated decimal name, without allocating.
struct PidName {
    buf: [u8; 12],
    start: usize,
}

impl PidName {
    fn new(mut pid: u32) -> PidName {
        let mut buf = [0u8; 12];
        let mut start = buf.len() - 1;
        loop {
            start -= 1;
            buf[start] = b'0' + (pid % 10) as u8;
            pid /= 10;
            if pid == 0 {
                return PidName { buf, start };
            }
        }
    }

    fn as_c_str(&self) -> &CStr {
        CStr::from_bytes_with_nul(&self.buf[self.start..]).unwrap_or_default()
    }
}

/// A pid from a procfs directory entry name; `None` for the other entries.
pub(super) fn parse_pid(name: &[u8]) -> Option<u32> {
    if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

/// One pass over processes: the field set, and the buffers reused for
/// every pid it reads.
pub(super) struct Scan<'a> {
    linux: &'a Linux,
    fields: FieldSet,
    need: Need,
    /// The current file's contents. One buffer serves every file: each is
    /// parsed into the output before the next one is read.
    text: FileBuf,
    /// The target of the last link read.
    link: Vec<u8>,
    /// Entries of the last `fd` directory listed.
    fd_entries: sys::DirBuf,
    /// Character devices of `/dev` by (major, minor), read the first time
    /// a terminal's name does not follow from its number.
    ttys: Option<HashMap<(u32, u32), String>>,
    /// Every file opened, as (pid, file), so tests can check that a
    /// listing reads nothing it does not need.
    #[cfg(test)]
    pub(super) opened: Vec<(u32, PidFile)>,
}

/// One process being read: its directory and what is known of it so far.
struct Pid<'d> {
    pid: u32,
    dir: BorrowedFd<'d>,
    liveness: Option<Liveness>,
}

impl<'a> Scan<'a> {
    pub(super) fn new(linux: &'a Linux, fields: FieldSet) -> Scan<'a> {
        Scan {
            linux,
            fields,
            need: Need::of(fields),
            text: FileBuf::default(),
            link: Vec::new(),
            fd_entries: sys::DirBuf::default(),
            ttys: None,
            #[cfg(test)]
            opened: Vec::new(),
        }
    }

    /// Calls `visit` for every process under the procfs root.
    pub(super) fn each(
        &mut self,
        visit: &mut dyn FnMut(ProcessInfo) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        let root = self.linux.procfs.as_path();
        let dir = sys::open_dir_at(None, &self.linux.procfs_c)
            .map_err(|source| io_error(root, source))?;
        // Each pid's directory is opened relative to the one being listed.
        let mut entries = sys::DirBuf::default();
        let mut listing = entries.list(dir.as_fd());
        while let Some(entry) = listing.next_with(parse_pid) {
            let pid = entry.map_err(|source| io_error(root, source))?;
            let Some(pid) = pid else { continue };
            match self.read(dir.as_fd(), pid, false) {
                Ok(Some(process)) => {
                    if visit(process).is_break() {
                        break;
                    }
                }
                Ok(None) => {}
                // One process's malformed record must not fail a listing
                // of all the others; the error names the file.
                Err(e) => tracing::warn!(pid, error = %e, "skipping an unreadable process"),
            }
        }
        Ok(())
    }

    /// Reads one process, `None` if it is gone. In a listing (`must_exist`
    /// false) an empty field set is answered from the directory entry
    /// alone; otherwise the directory is opened to prove the pid exists.
    pub(super) fn read(
        &mut self,
        root: BorrowedFd<'_>,
        pid: u32,
        must_exist: bool,
    ) -> Result<Option<ProcessInfo>, Error> {
        let mut p = ProcessInfo::new(pid);
        if self.need.is_empty() && !must_exist {
            return Ok(Some(p));
        }
        let dir = match sys::open_dir_at(Some(root), PidName::new(pid).as_c_str()) {
            Ok(dir) => dir,
            Err(err) => {
                return match classify(&err) {
                    Errno::Missing => Ok(None),
                    Errno::Denied => {
                        let fields = self.fields;
                        p.field_errors
                            .extend(fields.iter().map(|f| (f, ErrorKind::AccessDenied)));
                        Ok(Some(p))
                    }
                    Errno::Other => Err(io_error(&self.path(pid, None), err)),
                };
            }
        };
        let mut proc = Pid {
            pid,
            dir: dir.as_fd(),
            liveness: None,
        };
        let mut need = self.need;
        for file in PidFile::ALL {
            if !need.has(file) {
                continue;
            }
            let flow = match file {
                PidFile::Exe | PidFile::Cwd => self.read_link(&mut proc, file, &mut p)?,
                PidFile::Fd => self.read_fds(&mut proc, &mut p)?,
                PidFile::SmapsRollup | PidFile::Smaps => {
                    self.read_smaps(&mut proc, file, &mut p)?
                }
                PidFile::Task => self.read_threads(&mut proc, &mut p)?,
                PidFile::Ioprio => self.read_ioprio(&mut proc, &mut p)?,
                _ => match self.load(&mut proc, file, &mut p)? {
                    Some(flow) => flow,
                    None => {
                        self.take(&mut proc, file, &mut p)?;
                        Flow::Continue
                    }
                },
            };
            if let Flow::Vanished = flow {
                return Ok(None);
            }
            if file == PidFile::Stat && self.name_needs_cmdline(&proc, &p) {
                need = need.with(PidFile::Cmdline);
            }
        }
        Ok(Some(p))
    }

    /// Reads `file` into `self.text`. `None` when it was read; otherwise
    /// what the failure meant, already noted in `p`.
    fn load(
        &mut self,
        proc: &mut Pid<'_>,
        file: PidFile,
        p: &mut ProcessInfo,
    ) -> Result<Option<Flow>, Error> {
        #[cfg(test)]
        self.opened.push((proc.pid, file));
        let read = sys::open_file_at(proc.dir, file.name()).and_then(|f| self.text.fill(f));
        match read {
            Ok(()) => Ok(None),
            Err(err) => self.failed(proc, file, err, p).map(Some),
        }
    }

    /// Parses the loaded `file` into the fields it serves.
    fn take(
        &mut self,
        proc: &mut Pid<'_>,
        file: PidFile,
        p: &mut ProcessInfo,
    ) -> Result<(), Error> {
        let data = self.text.bytes();
        let f = self.fields;
        let host = &self.linux.consts;
        let at = |e: ParseError| e.at(pid_path(&self.linux.procfs, proc.pid, Some(file)));
        match file {
            PidFile::Stat => {
                let stat = parse_stat(data).map_err(at)?;
                proc.liveness = Some(Liveness::of(&stat));
                p.ppid = f.contains(Field::Ppid).then_some(stat.ppid);
                p.name = f.contains(Field::Name).then(|| lossy(stat.comm));
                p.status = f.contains(Field::Status).then_some(stat.status);
                p.nice = f.contains(Field::Nice).then_some(stat.nice);
                p.create_time = f
                    .contains(Field::CreateTime)
                    .then(|| stat.create_time(host));
                p.num_threads = f.contains(Field::NumThreads).then_some(stat.num_threads);
                p.cpu_times = f.contains(Field::CpuTimes).then(|| stat.cpu_times(host));
                p.page_faults = f.contains(Field::PageFaults).then_some(PageFaults {
                    minor: stat.minflt,
                    major: stat.majflt,
                });
                if f.contains(Field::CpuNum) {
                    match stat.processor {
                        Some(cpu) => p.cpu_num = Some(cpu),
                        None => p.field_errors.push((Field::CpuNum, ErrorKind::Unsupported)),
                    }
                }
                if f.contains(Field::Terminal) {
                    p.terminal = Some(match decode_tty(stat.tty_nr) {
                        Tty::None => None,
                        Tty::Path(path) => Some(path),
                        Tty::Device { major, minor } => self.tty_name(major, minor),
                    });
                }
            }
            PidFile::Status => {
                let status = parse_status(data).map_err(at)?;
                p.uids = f.contains(Field::Uids).then_some(status.uids);
                p.gids = f.contains(Field::Gids).then_some(status.gids);
                p.num_ctx_switches = f
                    .contains(Field::NumCtxSwitches)
                    .then_some(status.ctx_switches);
                // psutil names the real user, not the effective one.
                p.username = f
                    .contains(Field::Username)
                    .then(|| self.linux.username(status.uids.real));
                if f.contains(Field::CpuAffinity) {
                    p.cpu_affinity = Some(parse_cpus_allowed(data).map_err(at)?);
                }
            }
            PidFile::Limits => p.rlimits = Some(parse_limits(data).map_err(at)?),
            PidFile::Statm => {
                p.memory_info = Some(parse_statm(data).map_err(at)?.memory_info(host))
            }
            PidFile::Io => p.io_counters = Some(parse_io(data).map_err(at)?),
            PidFile::Environ => p.environ = Some(parse_environ(data)),
            PidFile::Cgroup => match parse_proc_cgroup(data) {
                Some(path) => p.cgroup = Some(path),
                // Neither a memory hierarchy nor the unified one.
                None => p.field_errors.push((Field::Cgroup, ErrorKind::Unsupported)),
            },
            PidFile::Cmdline => {
                // Read for the cmdline field, for the name, or both.
                if let Some(name) = p.name.as_mut() {
                    let wide = widen_name(name.as_bytes(), first_arg(data));
                    if wide.len() != name.len() {
                        *name = lossy(wide);
                    }
                }
                if f.contains(Field::Cmdline) {
                    p.cmdline = Some(parse_cmdline(data));
                }
            }
            PidFile::Exe
            | PidFile::Cwd
            | PidFile::Fd
            | PidFile::SmapsRollup
            | PidFile::Smaps
            | PidFile::Task
            | PidFile::Ioprio => {}
        }
        Ok(())
    }

    /// psutil widens a name of 15 bytes or more from the command line's
    /// first argument; kernel threads and zombies have no command line, so
    /// they are spared the read.
    fn name_needs_cmdline(&self, proc: &Pid<'_>, p: &ProcessInfo) -> bool {
        let user_process = proc.liveness
            == Some(Liveness::Alive {
                kernel_thread: false,
            });
        user_process && p.name.as_ref().is_some_and(|n| n.len() >= 15)
    }

    fn read_link(
        &mut self,
        proc: &mut Pid<'_>,
        file: PidFile,
        p: &mut ProcessInfo,
    ) -> Result<Flow, Error> {
        #[cfg(test)]
        self.opened.push((proc.pid, file));
        if let Err(err) = sys::read_link_at(proc.dir, file.name(), &mut self.link) {
            return self.failed(proc, file, err, p);
        }
        // The target names a file of the live system, not of the procfs
        // root: that is where the process runs.
        let target = link_target(&self.link, |path| Path::new(path).exists());
        match file {
            PidFile::Exe => p.exe = Some(target),
            _ => p.cwd = Some(target),
        }
        Ok(Flow::Continue)
    }

    fn read_fds(&mut self, proc: &mut Pid<'_>, p: &mut ProcessInfo) -> Result<Flow, Error> {
        #[cfg(test)]
        self.opened.push((proc.pid, PidFile::Fd));
        let listed = sys::open_dir_at(Some(proc.dir), PidFile::Fd.name()).and_then(|dir| {
            let mut listing = self.fd_entries.list(dir.as_fd());
            let mut count = 0;
            // Descriptors are numbers; this skips `.`, `..` and the
            // placeholder a fixture tree needs to keep an empty dir.
            while let Some(is_fd) = listing.next_with(|name| !name.starts_with(b".")) {
                count += u32::from(is_fd?);
            }
            Ok(count)
        });
        match listed {
            Ok(count) => {
                p.num_fds = Some(count);
                Ok(Flow::Continue)
            }
            Err(err) => self.failed(proc, PidFile::Fd, err, p),
        }
    }

    /// Reads `smaps_rollup` (memory_full_info) or `smaps` (memory_maps).
    /// A zombie has no address space left: its fields are zombie errors,
    /// decided before the read since a zombie's `smaps` reads as empty.
    /// Where the kernel has no rollup, or refuses it (it does for kernel
    /// threads, ESRCH), the whole `smaps` is summed, as psutil does.
    fn read_smaps(
        &mut self,
        proc: &mut Pid<'_>,
        file: PidFile,
        p: &mut ProcessInfo,
    ) -> Result<Flow, Error> {
        match self.liveness(proc)? {
            Liveness::Gone => return Ok(Flow::Vanished),
            Liveness::Zombie => {
                self.note(file, ErrorKind::ZombieProcess, p);
                return Ok(Flow::Continue);
            }
            Liveness::Alive { .. } => {}
        }
        let mut read_file = file;
        #[cfg(test)]
        self.opened.push((proc.pid, file));
        // The rollup is one record; smaps is one per mapping.
        let mut read = sys::open_file_at(proc.dir, file.name()).and_then(|f| match file {
            PidFile::Smaps => self.text.fill_to_end(f),
            _ => self.text.fill(f),
        });
        if file == PidFile::SmapsRollup
            && let Err(err) = &read
            && classify(err) == Errno::Missing
        {
            read_file = PidFile::Smaps;
            #[cfg(test)]
            self.opened.push((proc.pid, read_file));
            read = sys::open_file_at(proc.dir, read_file.name())
                .and_then(|f| self.text.fill_to_end(f));
        }
        if let Err(err) = read {
            return self.failed(proc, file, err, p);
        }
        let data = self.text.bytes();
        let path = || pid_path(&self.linux.procfs, proc.pid, Some(read_file));
        match file {
            PidFile::SmapsRollup => {
                p.memory_full_info = Some(parse_full_info(data).map_err(|e| e.at(path()))?);
            }
            _ => {
                let grouped = !self.fields.contains(Field::MemoryMapsUngrouped);
                let maps = parse_memory_maps(data, grouped, |path| Path::new(path).exists())
                    .map_err(|e| e.at(path()))?;
                p.memory_maps = Some(maps);
            }
        }
        Ok(Flow::Continue)
    }

    /// Every thread of the process with its CPU times, from `task/<tid>/stat`
    /// (psutil's `threads`). A thread that ends while the list is read is
    /// left out.
    fn read_threads(&mut self, proc: &mut Pid<'_>, p: &mut ProcessInfo) -> Result<Flow, Error> {
        #[cfg(test)]
        self.opened.push((proc.pid, PidFile::Task));
        let listed = sys::open_dir_at(Some(proc.dir), PidFile::Task.name()).and_then(|dir| {
            let mut tids = Vec::new();
            let mut listing = self.fd_entries.list(dir.as_fd());
            while let Some(tid) = listing.next_with(parse_pid) {
                tids.extend(tid?);
            }
            Ok((dir, tids))
        });
        let (dir, mut tids) = match listed {
            Ok(listed) => listed,
            Err(err) => return self.failed(proc, PidFile::Task, err, p),
        };
        tids.sort_unstable();
        let clk_tck = self.linux.consts.clk_tck as f64;
        let mut threads = Vec::with_capacity(tids.len());
        for tid in tids {
            let name = PidName::new(tid);
            let read = sys::open_dir_at(Some(dir.as_fd()), name.as_c_str())
                .and_then(|task| sys::open_file_at(task.as_fd(), PidFile::Stat.name()))
                .and_then(|f| self.text.fill(f));
            match read {
                Ok(()) => {}
                Err(err) if classify(&err) == Errno::Missing => continue,
                Err(err) => return self.failed(proc, PidFile::Task, err, p),
            }
            let stat = parse_stat(self.text.bytes()).map_err(|e| {
                let path = pid_path(&self.linux.procfs, proc.pid, Some(PidFile::Task));
                e.at(path.join(tid.to_string()).join("stat"))
            })?;
            threads.push(Thread {
                id: tid,
                user_time: stat.utime_ticks as f64 / clk_tck,
                system_time: stat.stime_ticks as f64 / clk_tck,
            });
        }
        p.threads = Some(threads);
        Ok(Flow::Continue)
    }

    /// The I/O priority, by ioprio_get(2). The call asks the live kernel,
    /// so a backend reading another procfs root (a fixture tree) cannot
    /// answer it. A zombie has dropped its I/O context, and the call then
    /// answers the kernel's default rather than what the process had: that
    /// is a zombie error.
    fn read_ioprio(&mut self, proc: &mut Pid<'_>, p: &mut ProcessInfo) -> Result<Flow, Error> {
        if !self.linux.live {
            self.note(PidFile::Ioprio, ErrorKind::Unsupported, p);
            return Ok(Flow::Continue);
        }
        #[cfg(test)]
        self.opened.push((proc.pid, PidFile::Ioprio));
        let pid = proc.pid;
        let call = || PathBuf::from(format!("ioprio_get(2) of pid {pid}"));
        let raw = match sys::ioprio_get(proc.pid) {
            Ok(raw) => raw,
            Err(err) => {
                let kind = match classify(&err) {
                    Errno::Other => return Err(io_error(&call(), err)),
                    Errno::Denied => ErrorKind::AccessDenied,
                    Errno::Missing => match self.liveness(proc)? {
                        Liveness::Gone => return Ok(Flow::Vanished),
                        Liveness::Zombie => ErrorKind::ZombieProcess,
                        Liveness::Alive { .. } => ErrorKind::NoSuchProcess,
                    },
                };
                self.note(PidFile::Ioprio, kind, p);
                return Ok(Flow::Continue);
            }
        };
        match self.liveness(proc)? {
            Liveness::Gone => return Ok(Flow::Vanished),
            Liveness::Zombie => self.note(PidFile::Ioprio, ErrorKind::ZombieProcess, p),
            Liveness::Alive { .. } => {
                p.ionice = Some(decode_ioprio(raw).map_err(|e| e.at(call()))?);
            }
        }
        Ok(Flow::Continue)
    }

    /// Names every requested field `file` serves as failed with `kind`.
    fn note(&self, file: PidFile, kind: ErrorKind, p: &mut ProcessInfo) {
        p.field_errors.extend(
            self.fields
                .iter()
                .filter(|f| PidFile::of(*f) == file)
                .map(|f| (f, kind)),
        );
    }

    /// Turns a failed read of `file` into field errors, a fallback value,
    /// a vanished process, or (for unexpected errors) a call error.
    fn failed(
        &mut self,
        proc: &mut Pid<'_>,
        file: PidFile,
        err: io::Error,
        p: &mut ProcessInfo,
    ) -> Result<Flow, Error> {
        let kind = match classify(&err) {
            // Every unreadable field of a zombie is a zombie error (DESIGN.md);
            // without root even a zombie child's io, fd and environ are EACCES.
            Errno::Denied => match self.liveness(proc)? {
                Liveness::Gone => return Ok(Flow::Vanished),
                Liveness::Zombie => ErrorKind::ZombieProcess,
                Liveness::Alive { .. } => ErrorKind::AccessDenied,
            },
            Errno::Other => return Err(io_error(&self.path(proc.pid, Some(file)), err)),
            Errno::Missing => match self.liveness(proc)? {
                Liveness::Gone => return Ok(Flow::Vanished),
                Liveness::Zombie => ErrorKind::ZombieProcess,
                Liveness::Alive { kernel_thread } => match (file, kernel_thread) {
                    // psutil: "" when the exe link is missing but the
                    // process is alive, as for kernel threads.
                    (PidFile::Exe, _) => {
                        p.exe = Some(String::new());
                        return Ok(Flow::Continue);
                    }
                    // Kernel threads have no environment (ESRCH).
                    (PidFile::Environ, true) => {
                        p.environ = Some(Vec::new());
                        return Ok(Flow::Continue);
                    }
                    // ESRCH from a live process: it is exiting right now.
                    _ if rustix::io::Errno::from_io_error(&err)
                        == Some(rustix::io::Errno::SRCH) =>
                    {
                        ErrorKind::NoSuchProcess
                    }
                    // The kernel does not provide this file (io without
                    // CONFIG_TASK_IO_ACCOUNTING, a trimmed fixture tree).
                    _ => ErrorKind::Unsupported,
                },
            },
        };
        self.note(file, kind, p);
        Ok(Flow::Continue)
    }

    /// Whether the process is gone, a zombie or alive, reading `stat` if
    /// this scan has not.
    fn liveness(&mut self, proc: &mut Pid<'_>) -> Result<Liveness, Error> {
        if let Some(known) = proc.liveness {
            return Ok(known);
        }
        #[cfg(test)]
        self.opened.push((proc.pid, PidFile::Stat));
        let read =
            sys::open_file_at(proc.dir, PidFile::Stat.name()).and_then(|f| self.text.fill(f));
        let known = match read {
            Ok(()) => {
                let stat = parse_stat(self.text.bytes())
                    .map_err(|e| e.at(self.path(proc.pid, Some(PidFile::Stat))))?;
                Liveness::of(&stat)
            }
            Err(err) => match classify(&err) {
                Errno::Missing => Liveness::Gone,
                // `stat` is world-readable; if it is not, nothing more can
                // be learned, and the process is there.
                Errno::Denied => Liveness::Alive {
                    kernel_thread: false,
                },
                Errno::Other => {
                    return Err(io_error(&self.path(proc.pid, Some(PidFile::Stat)), err));
                }
            },
        };
        proc.liveness = Some(known);
        Ok(known)
    }

    /// The name of a terminal device that is neither a pty nor a console,
    /// from the character devices in `/dev` (psutil looks there too).
    fn tty_name(&mut self, major: u32, minor: u32) -> Option<String> {
        self.ttys
            .get_or_insert_with(dev_char_devices)
            .get(&(major, minor))
            .cloned()
    }

    fn path(&self, pid: u32, file: Option<PidFile>) -> PathBuf {
        pid_path(&self.linux.procfs, pid, file)
    }
}

/// Character devices directly in `/dev`, by (major, minor). Unreadable
/// entries are left out: a terminal not found is reported as none.
fn dev_char_devices() -> HashMap<(u32, u32), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(entries) = std::fs::read_dir("/dev") else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            if !meta.file_type().is_char_device() {
                return None;
            }
            let dev = meta.rdev();
            let path = entry.path().to_string_lossy().into_owned();
            Some((sys::major_minor(dev), path))
        })
        .collect()
}

/// The path of `file` of `pid` (or its directory) under `procfs`, for errors.
pub(super) fn pid_path(procfs: &Path, pid: u32, file: Option<PidFile>) -> PathBuf {
    let dir = procfs.join(pid.to_string());
    match file {
        Some(file) => dir.join(file.name().to_string_lossy().as_ref()),
        None => dir,
    }
}

pub(super) fn io_error(path: &Path, source: io::Error) -> Error {
    Error::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_map_to_files_once() {
        let listing: FieldSet = [Field::Ppid, Field::Name, Field::Status]
            .into_iter()
            .collect();
        assert_eq!(Need::of(listing), Need(PidFile::Stat.bit()));
        // The benchmark's set: psutil's common attributes.
        let mut common = FieldSet::all();
        for f in [
            Field::Uids,
            Field::Gids,
            Field::Terminal,
            Field::Cwd,
            Field::Nice,
        ] {
            common.remove(f);
        }
        for f in [
            Field::NumFds,
            Field::NumCtxSwitches,
            Field::IoCounters,
            Field::Environ,
        ] {
            common.remove(f);
        }
        let need = Need::of(common);
        for file in [
            PidFile::Stat,
            PidFile::Status,
            PidFile::Statm,
            PidFile::Cmdline,
            PidFile::Exe,
        ] {
            assert!(need.has(file), "{file:?}");
        }
        for file in [PidFile::Io, PidFile::Environ, PidFile::Cwd, PidFile::Fd] {
            assert!(!need.has(file), "{file:?}");
        }
        assert!(Need::of(FieldSet::EMPTY).is_empty());
    }

    #[test]
    fn errno_classes() {
        use rustix::io::Errno as E;
        let cases = [
            (E::ACCESS, Errno::Denied),
            (E::PERM, Errno::Denied),
            (E::NOENT, Errno::Missing),
            (E::SRCH, Errno::Missing),
            (E::IO, Errno::Other),
        ];
        for (errno, class) in cases {
            let err = io::Error::from(errno);
            assert_eq!(classify(&err), class, "{err}");
        }
        assert_eq!(classify(&io::Error::other("no errno")), Errno::Other);
    }

    /// Hands out at most `chunk` bytes per read, as seq_file does with
    /// its one buffer of whole records.
    struct Chunked<'a> {
        rest: &'a [u8],
        chunk: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.chunk).min(self.rest.len());
            buf[..n].copy_from_slice(&self.rest[..n]);
            self.rest = &self.rest[n..];
            Ok(n)
        }
    }

    #[test]
    fn many_records_are_read_past_short_reads() {
        let smaps: Vec<u8> = (0..10_000u32).map(|i| (i % 200) as u8).collect();
        let mut buf = FileBuf::default();
        buf.fill_to_end(Chunked {
            rest: &smaps,
            chunk: 3000,
        })
        .unwrap();
        assert_eq!(buf.bytes(), smaps);
        // A one-record file stops at the first short read.
        buf.fill(Chunked {
            rest: &smaps,
            chunk: 3000,
        })
        .unwrap();
        assert_eq!(buf.bytes(), &smaps[..3000]);
    }

    #[test]
    fn pid_names() {
        for pid in [0, 1, 9, 10, 4_194_304, u32::MAX] {
            assert_eq!(
                PidName::new(pid).as_c_str().to_str(),
                Ok(pid.to_string().as_str())
            );
        }
        assert_eq!(parse_pid(b"1234"), Some(1234));
        for name in [&b"self"[..], b"", b"12a", b".", b"99999999999"] {
            assert_eq!(parse_pid(name), None);
        }
    }
}
