//! FreeBSD: `kern.proc` sysctls, `getifaddrs(3)` and kqueue.
//!
//! The process table is `kern.proc.proc` (one `kinfo_proc` per process,
//! threads folded in); per process, `kern.proc.pathname`, `.args`, `.env`,
//! `.cwd` and `.filedesc`. Every field of the API is supplied but the I/O
//! counters: FreeBSD keeps block operations (`ru_inblock`), not the read
//! and write calls and bytes the API means.

use std::io;

use libc::c_int;

use super::{
    Error, Field, FieldSet,
    bsd::{self, Bsd, Kernel, parse_error},
    bsd_sys,
    decode::{
        IfDataLayout, IfFlags, Kinfo,
        freebsd::{self as layout, Files},
        media::{FREEBSD, MediaLayout},
        nul_separated, until_nul,
    },
    parse::{cmdline::parse_environ, lossy},
};

mod checks;

/// The FreeBSD backend.
pub type FreeBsd = Bsd<Sysctl>;

/// A FreeBSD backend reading the running kernel.
pub fn backend() -> Result<FreeBsd, Error> {
    Ok(Bsd::new(Sysctl {
        page_size: rustix::param::page_size() as u64,
    }))
}

/// FreeBSD's sysctl interface.
#[derive(Clone, Debug)]
pub struct Sysctl {
    /// Bytes per page, the unit of `kinfo_proc`'s sizes.
    page_size: u64,
}

impl Sysctl {
    /// `kern.proc.<op>.<pid>` into a fresh buffer.
    fn per_process(&self, op: c_int, pid: u32) -> io::Result<Vec<u8>> {
        let pid = c_int::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
        let mut buf = Vec::new();
        bsd_sys::sysctl(&[libc::CTL_KERN, libc::KERN_PROC, op, pid], &mut buf)?;
        Ok(buf)
    }

    fn files(&self, op: c_int, pid: u32) -> io::Result<Files> {
        let buf = self.per_process(op, pid)?;
        layout::files(&buf).map_err(io::Error::other)
    }
}

impl Kernel for Sysctl {
    const BACKEND: &'static str = "freebsd-sysctl";
    const OS: &'static str = "freebsd";
    const FLAGS: IfFlags = layout::FLAGS;
    const MEDIA: MediaLayout = FREEBSD;
    const IF_DATA: Option<IfDataLayout> = Some(layout::IF_DATA);
    const TRACK: bool = true;
    const EXIT_STATUS: bool = true;

    fn process_fields(&self) -> FieldSet {
        let mut fields = FieldSet::all();
        fields.remove(Field::IoCounters);
        fields
    }

    fn os_release(&self) -> Result<String, Error> {
        Ok(format!("FreeBSD {}", bsd::named_string("kern.osrelease")?))
    }

    fn boot_time(&self) -> Result<f64, Error> {
        bsd::timeval("sysctl kern.boottime", &bsd::named_bytes("kern.boottime")?)
    }

    fn memory_total(&self) -> Result<u64, Error> {
        bsd::named_u64("hw.physmem")
    }

    fn processes(&self, _fields: FieldSet) -> Result<Vec<Kinfo>, Error> {
        let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_PROC];
        let mut buf = Vec::new();
        bsd_sys::sysctl(&mib, &mut buf).map_err(|e| bsd::io_error("sysctl kern.proc.proc", e))?;
        layout::proc_table(&buf, self.page_size).map_err(parse_error("sysctl kern.proc.proc"))
    }

    fn process(&self, pid: u32, _fields: FieldSet) -> Result<Option<Kinfo>, Error> {
        let what = || format!("sysctl kern.proc.pid.{pid}");
        let buf = match self.per_process(libc::KERN_PROC_PID, pid) {
            Ok(buf) => buf,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
            Err(e) => return Err(bsd::io_error(what(), e)),
        };
        let mut all = layout::proc_table(&buf, self.page_size).map_err(parse_error(what()))?;
        Ok(all.pop().filter(|k| k.pid == pid))
    }

    /// `kern.proc.pathname`; "" where the kernel knows no path (kernel
    /// processes, ENOENT), as psutil reports it.
    fn exe(&self, pid: u32) -> io::Result<String> {
        match self.per_process(libc::KERN_PROC_PATHNAME, pid) {
            Ok(buf) => Ok(lossy(until_nul(&buf))),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(String::new()),
            Err(e) => Err(e),
        }
    }

    fn cmdline(&self, pid: u32) -> io::Result<Vec<String>> {
        Ok(nul_separated(&self.per_process(libc::KERN_PROC_ARGS, pid)?))
    }

    fn environ(&self, pid: u32) -> io::Result<Vec<(String, String)>> {
        Ok(parse_environ(&self.per_process(libc::KERN_PROC_ENV, pid)?))
    }

    /// `kern.proc.cwd`; "" when the kernel has no path for it (psutil).
    fn cwd(&self, pid: u32) -> io::Result<String> {
        Ok(self
            .files(libc::KERN_PROC_CWD, pid)?
            .cwd
            .unwrap_or_default())
    }

    fn num_fds(&self, pid: u32) -> io::Result<u32> {
        Ok(self.files(libc::KERN_PROC_FILEDESC, pid)?.num_fds)
    }
}
