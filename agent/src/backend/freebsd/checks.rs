//! Compile-time checks that the decoders' FreeBSD offsets and constants
//! are the `libc` crate's: a layout change fails the build here instead
//! of decoding garbage on a host.

use std::mem::{offset_of, size_of};

use libc::{if_data, ifmediareq, kinfo_file, kinfo_proc, rusage};

use crate::backend::{
    bsd::{assert_if_counters, assert_notes},
    decode::{
        freebsd::{
            IF_DATA, KF_FD_TYPE_CWD, P_SYSTEM, kinfo_file as kf, kinfo_proc as kp, rusage as ru,
        },
        kevent,
        media::IFMEDIAREQ_LEN,
        system::{devstat, vmtotal},
    },
};

const _: () = {
    assert!(size_of::<kinfo_proc>() == kp::SIZE);
    assert!(offset_of!(kinfo_proc, ki_structsize) == kp::STRUCTSIZE);
    assert!(offset_of!(kinfo_proc, ki_pid) == kp::PID);
    assert!(offset_of!(kinfo_proc, ki_ppid) == kp::PPID);
    assert!(offset_of!(kinfo_proc, ki_uid) == kp::UID);
    assert!(offset_of!(kinfo_proc, ki_ruid) == kp::RUID);
    assert!(offset_of!(kinfo_proc, ki_svuid) == kp::SVUID);
    assert!(offset_of!(kinfo_proc, ki_rgid) == kp::RGID);
    assert!(offset_of!(kinfo_proc, ki_svgid) == kp::SVGID);
    assert!(offset_of!(kinfo_proc, ki_groups) == kp::GROUPS);
    assert!(offset_of!(kinfo_proc, ki_size) == kp::SIZE_BYTES);
    assert!(offset_of!(kinfo_proc, ki_rssize) == kp::RSSIZE);
    assert!(offset_of!(kinfo_proc, ki_tsize) == kp::TSIZE);
    assert!(offset_of!(kinfo_proc, ki_dsize) == kp::DSIZE);
    assert!(offset_of!(kinfo_proc, ki_ssize) == kp::SSIZE);
    assert!(offset_of!(kinfo_proc, ki_start) == kp::START);
    assert!(offset_of!(kinfo_proc, ki_flag) == kp::FLAG);
    assert!(offset_of!(kinfo_proc, ki_stat) == kp::STAT);
    assert!(offset_of!(kinfo_proc, ki_nice) == kp::NICE);
    assert!(offset_of!(kinfo_proc, ki_comm) == kp::COMM);
    assert!(offset_of!(kinfo_proc, ki_tdev) == kp::TDEV);
    assert!(offset_of!(kinfo_proc, ki_numthreads) == kp::NUMTHREADS);
    assert!(offset_of!(kinfo_proc, ki_rusage) == kp::RUSAGE);
    assert!(offset_of!(kinfo_proc, ki_rusage_ch) == kp::RUSAGE_CH);
    assert!(size_of::<libc::segsz_t>() == 8);
    assert!(offset_of!(rusage, ru_utime) == ru::UTIME);
    assert!(offset_of!(rusage, ru_stime) == ru::STIME);
    assert!(offset_of!(rusage, ru_nvcsw) == ru::NVCSW);
    assert!(offset_of!(rusage, ru_nivcsw) == ru::NIVCSW);
    assert!(size_of::<libc::timeval>() == 16);

    assert!(offset_of!(kinfo_file, kf_structsize) == kf::STRUCTSIZE);
    assert!(offset_of!(kinfo_file, kf_fd) == kf::FD);
    assert!(offset_of!(kinfo_file, kf_path) == kf::PATH);
    assert!(KF_FD_TYPE_CWD == libc::KF_FD_TYPE_CWD);

    assert_if_counters!(if_data, IF_DATA);
    assert!(matches!(IF_DATA.link_state, Some(o) if o == offset_of!(if_data, ifi_link_state)));
    assert!(matches!(IF_DATA.oqdrops, Some(o) if o == offset_of!(if_data, ifi_oqdrops)));

    assert!(size_of::<libc::vmtotal>() == vmtotal::SIZE);
    assert!(offset_of!(libc::vmtotal, t_vmshr) == vmtotal::VMSHR);
    assert!(offset_of!(libc::vmtotal, t_rmshr) == vmtotal::RMSHR);
    // stathz decodes at 12 in a 20-byte clockinfo.
    assert!(size_of::<libc::clockinfo>() == 20);
    assert!(offset_of!(libc::clockinfo, stathz) == 12);

    assert!(size_of::<libc::devstat>() == devstat::SIZE);
    assert!(offset_of!(libc::devstat, device_name) == devstat::DEVICE_NAME);
    assert!(libc::DEVSTAT_NAME_LEN as usize == devstat::DEVICE_NAME_LEN);
    assert!(offset_of!(libc::devstat, unit_number) == devstat::UNIT_NUMBER);
    assert!(offset_of!(libc::devstat, bytes) == devstat::BYTES);
    assert!(offset_of!(libc::devstat, operations) == devstat::OPERATIONS);
    assert!(offset_of!(libc::devstat, duration) == devstat::DURATION);
    assert!(offset_of!(libc::devstat, busy_time) == devstat::BUSY_TIME);
    assert!(offset_of!(libc::devstat, device_type) == devstat::DEVICE_TYPE);
    assert!(size_of::<libc::bintime>() == 16);
    assert!(libc::devstat_trans_flags::DEVSTAT_READ as usize == devstat::DEVSTAT_READ);
    assert!(libc::devstat_trans_flags::DEVSTAT_WRITE as usize == devstat::DEVSTAT_WRITE);

    assert!(size_of::<ifmediareq>() == IFMEDIAREQ_LEN);
    assert!(P_SYSTEM == libc::P_SYSTEM as i64);
    assert_notes!();
    assert!(kevent::NOTE_TRACK == libc::NOTE_TRACK);
};
