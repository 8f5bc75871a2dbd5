//! The process records of OpenBSD (`struct kinfo_proc`) and NetBSD
//! (`struct kinfo_proc2`), both `sys/sysctl.h`. They descend from one
//! design: fixed-width fields (every pointer a `uint64_t`, times as
//! separate second and microsecond words) in the same order, so one
//! decoder reads both with each OS's offsets. The kernel copies at most
//! the element size the caller passes, so the layout is an ABI both
//! OSes keep.

use super::{Kinfo, Record, records, timeval_secs};
use crate::backend::{CpuTimes, CtxSwitches, MemoryInfo, Status, parse::ParseError};

/// Where one OS keeps each field in its record.
#[derive(Debug)]
pub struct KinfoLayout {
    pub what: &'static str,
    /// The record size this agent asks the kernel for.
    pub size: usize,
    pub flag: usize,
    pub pid: usize,
    pub ppid: usize,
    /// `p_uid` (effective), `p_ruid`, `p_svuid`.
    pub uid: usize,
    pub ruid: usize,
    pub svuid: usize,
    /// `p_groups[0]` (effective), `p_rgid`, `p_svgid`.
    pub groups: usize,
    pub rgid: usize,
    pub svgid: usize,
    pub tdev: usize,
    pub stat: usize,
    pub nice: usize,
    pub comm: usize,
    pub comm_len: usize,
    /// `p_vm_rssize`, `p_vm_tsize`, `p_vm_dsize`, `p_vm_ssize` (pages, `int32_t`).
    pub vm: [usize; 4],
    pub uvalid: usize,
    /// `p_ustart_sec` and its width (OpenBSD 8 bytes, NetBSD 4), then
    /// `p_ustart_usec`.
    pub ustart: (usize, usize, usize),
    /// `p_uutime_sec`, `p_ustime_sec`, `p_uctime_sec`: each a `uint32_t`
    /// followed by its `_usec`.
    pub uutime: usize,
    pub ustime: usize,
    pub uctime: usize,
    pub nvcsw: usize,
    pub nivcsw: usize,
}

/// `P_SYSTEM` of `p_flag` on both: a kernel process.
pub const P_SYSTEM: i32 = 0x200;
/// `NZERO`: `p_nice` holds the nice value plus this.
pub const NZERO: i32 = 20;
/// `NODEV` as the 32-bit `p_tdev` holds it.
pub const NODEV: u32 = u32::MAX;

/// What an OS adds to the shared fields: its states and thread count.
pub struct Extra {
    pub status: Option<Status>,
    pub num_threads: Option<u32>,
}

/// Decodes one record with `layout`; `extra` reads what differs between
/// the OSes (states, threads) from the same record.
pub fn kinfo(
    layout: &KinfoLayout,
    r: Record<'_>,
    page_size: u64,
    extra: impl FnOnce(Record<'_>) -> Result<Extra, ParseError>,
) -> Result<Kinfo, ParseError> {
    let l = layout;
    let pages = |offset| -> Result<u64, ParseError> {
        Ok(u64::try_from(r.i32(offset)?).unwrap_or(0) * page_size)
    };
    let secs = |offset: usize| -> Result<f64, ParseError> {
        Ok(timeval_secs(
            i64::from(r.u32(offset)?),
            i64::from(r.u32(offset + 4)?),
        ))
    };
    let tdev = r.u32(l.tdev)?;
    let extra = extra(r)?;
    let [rssize, tsize, dsize, ssize] = l.vm;
    // The u-area fields (start, times, usage) are filled only when the
    // kernel could read them: not for zombies, nor for processes swapped
    // out on old kernels.
    let uvalid = r.i64(l.uvalid)? != 0;
    let (start_sec, start_width, start_usec) = l.ustart;
    let start_sec = match start_width {
        4 => i64::from(r.u32(start_sec)?),
        _ => r.i64(start_sec)?,
    };
    let create_time = timeval_secs(start_sec, i64::from(r.u32(start_usec)?));
    let children = secs(l.uctime)?;
    Ok(Kinfo {
        pid: r.id(l.pid)?,
        ppid: r.id(l.ppid)?,
        status: extra.status,
        comm: r.cstr(l.comm, l.comm_len)?.to_vec(),
        uids: Some(r.ids([l.ruid, l.uid, l.svuid])?),
        gids: Some(r.ids([l.rgid, l.groups, l.svgid])?),
        tdev: (tdev != NODEV).then_some(u64::from(tdev)),
        nice: Some(i32::from(r.u8(l.nice)?) - NZERO),
        create_time: uvalid.then_some(create_time),
        num_threads: extra.num_threads,
        ctx_switches: uvalid
            .then(|| -> Result<CtxSwitches, ParseError> {
                Ok(CtxSwitches {
                    voluntary: r.u64(l.nvcsw)?,
                    involuntary: r.u64(l.nivcsw)?,
                })
            })
            .transpose()?,
        cpu_times: uvalid
            .then(|| -> Result<CpuTimes, ParseError> {
                Ok(CpuTimes {
                    user: secs(l.uutime)?,
                    system: secs(l.ustime)?,
                    // The kernel sums its children's user and system time
                    // into one value; it is reported as user time.
                    children_user: Some(children),
                    children_system: None,
                    iowait: None,
                })
            })
            .transpose()?,
        memory_info: Some(MemoryInfo {
            rss: pages(rssize)?,
            // As ps(1) computes it on OpenBSD; NetBSD's caller replaces it
            // with p_vm_msize.
            vms: pages(tsize)? + pages(dsize)? + pages(ssize)?,
            shared: None,
            text: Some(pages(tsize)?),
            data: Some(pages(dsize)? + pages(ssize)?),
        }),
        system: r.i32(l.flag)? & P_SYSTEM != 0,
        partial: None,
    })
}

/// Every record of a `KERN_PROC_ALL` table read with `layout`.
pub fn table(
    layout: &KinfoLayout,
    buf: &[u8],
    page_size: u64,
    extra: impl Fn(Record<'_>) -> Result<Extra, ParseError>,
) -> Result<Vec<Kinfo>, ParseError> {
    records(layout.what, buf, layout.size)?
        .map(|r| kinfo(layout, r, page_size, &extra))
        .collect()
}

/// How many records of `buf`, a table of fixed-size `what` records,
/// hold a descriptor: `fd` is the offset of the `int` that is negative
/// for the working directory, root, text file and trace entries.
pub fn count_fds(
    what: &'static str,
    buf: &[u8],
    size: usize,
    fd: usize,
) -> Result<u32, ParseError> {
    let mut count = 0;
    for r in records(what, buf, size)? {
        count += u32::from(r.i32(fd)? >= 0);
    }
    Ok(count)
}
