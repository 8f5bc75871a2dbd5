//! Compile-time checks that the decoders' NetBSD offsets and constants
//! are the `libc` crate's, where it has the structure (it has no `struct
//! if_data` for NetBSD: those offsets come from `net/if.h` alone).

use std::mem::{offset_of, size_of};

use libc::{kinfo_file, kinfo_proc2};

use crate::backend::{
    bsd::assert_notes,
    decode::{
        kevent,
        netbsd::{KINFO_FILE_FD, KINFO_FILE_SIZE, KINFO_PROC2 as k, NLWPS, REALSTAT, VM_VSIZE},
    },
};

const _: () = {
    assert!(size_of::<kinfo_proc2>() == k.size);
    assert!(offset_of!(kinfo_proc2, p_flag) == k.flag);
    assert!(offset_of!(kinfo_proc2, p_pid) == k.pid);
    assert!(offset_of!(kinfo_proc2, p_ppid) == k.ppid);
    assert!(offset_of!(kinfo_proc2, p_uid) == k.uid);
    assert!(offset_of!(kinfo_proc2, p_ruid) == k.ruid);
    assert!(offset_of!(kinfo_proc2, p_svuid) == k.svuid);
    assert!(offset_of!(kinfo_proc2, p_groups) == k.groups);
    assert!(offset_of!(kinfo_proc2, p_rgid) == k.rgid);
    assert!(offset_of!(kinfo_proc2, p_svgid) == k.svgid);
    assert!(offset_of!(kinfo_proc2, p_tdev) == k.tdev);
    assert!(offset_of!(kinfo_proc2, p_stat) == k.stat);
    assert!(offset_of!(kinfo_proc2, p_nice) == k.nice);
    assert!(offset_of!(kinfo_proc2, p_comm) == k.comm);
    assert!(libc::KI_MAXCOMLEN as usize == k.comm_len);
    assert!(offset_of!(kinfo_proc2, p_vm_rssize) == k.vm[0]);
    assert!(offset_of!(kinfo_proc2, p_vm_tsize) == k.vm[1]);
    assert!(offset_of!(kinfo_proc2, p_vm_dsize) == k.vm[2]);
    assert!(offset_of!(kinfo_proc2, p_vm_ssize) == k.vm[3]);
    assert!(offset_of!(kinfo_proc2, p_uvalid) == k.uvalid);
    assert!(offset_of!(kinfo_proc2, p_ustart_sec) == k.ustart.0);
    assert!(size_of::<u32>() == k.ustart.1);
    assert!(offset_of!(kinfo_proc2, p_ustart_usec) == k.ustart.2);
    assert!(offset_of!(kinfo_proc2, p_uutime_sec) == k.uutime);
    assert!(offset_of!(kinfo_proc2, p_uutime_usec) == k.uutime + 4);
    assert!(offset_of!(kinfo_proc2, p_ustime_sec) == k.ustime);
    assert!(offset_of!(kinfo_proc2, p_ustime_usec) == k.ustime + 4);
    assert!(offset_of!(kinfo_proc2, p_uctime_sec) == k.uctime);
    assert!(offset_of!(kinfo_proc2, p_uctime_usec) == k.uctime + 4);
    assert!(offset_of!(kinfo_proc2, p_uru_nvcsw) == k.nvcsw);
    assert!(offset_of!(kinfo_proc2, p_uru_nivcsw) == k.nivcsw);
    assert!(offset_of!(kinfo_proc2, p_nlwps) == NLWPS);
    assert!(offset_of!(kinfo_proc2, p_realstat) == REALSTAT);
    assert!(offset_of!(kinfo_proc2, p_vm_vsize) == VM_VSIZE);

    assert!(size_of::<kinfo_file>() == KINFO_FILE_SIZE);
    assert!(offset_of!(kinfo_file, ki_fd) == KINFO_FILE_FD);

    assert_notes!();
    assert!(kevent::NOTE_TRACK == libc::NOTE_TRACK);
};
