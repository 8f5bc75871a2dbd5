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
    Error, FieldSet,
    bsd::{self, Bsd, Kernel},
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
    /// `kern.proc.<op>.<pid>`.
    fn per_process(&self, op: c_int, pid: u32) -> io::Result<Vec<u8>> {
        bsd::sysctl_vec(&[libc::CTL_KERN, libc::KERN_PROC, op, bsd::pid_arg(pid)?])
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
        bsd::table(
            "sysctl kern.proc.proc",
            bsd::sysctl_vec(&[libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_PROC]),
            |buf| layout::proc_table(buf, self.page_size),
        )
    }

    fn process(&self, pid: u32, _fields: FieldSet) -> Result<Option<Kinfo>, Error> {
        bsd::single(
            pid,
            &format!("sysctl kern.proc.pid.{pid}"),
            self.per_process(libc::KERN_PROC_PID, pid),
            |buf| layout::proc_table(buf, self.page_size),
        )
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
