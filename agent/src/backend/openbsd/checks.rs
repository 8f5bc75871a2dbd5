//! Compile-time checks that the decoders' OpenBSD offsets and constants
//! are the `libc` crate's: a layout change fails the build here instead
//! of decoding garbage on a host.

use std::mem::{offset_of, size_of};

use libc::{if_data, kinfo_file, kinfo_proc};

use crate::backend::{
    bsd::{assert_if_counters, assert_notes, assert_socket_numbers},
    decode::{
        kevent,
        openbsd::{
            AF_INET6, DTYPE_SOCKET, IF_DATA, KINFO_FILE_FD, KINFO_FILE_SIZE, KINFO_PROC as k,
            PSFLAGS, TID, kf_socket as kfs,
        },
    },
};

const _: () = {
    assert!(size_of::<kinfo_proc>() == k.size);
    assert!(offset_of!(kinfo_proc, p_flag) == k.flag);
    assert!(offset_of!(kinfo_proc, p_pid) == k.pid);
    assert!(offset_of!(kinfo_proc, p_ppid) == k.ppid);
    assert!(offset_of!(kinfo_proc, p_uid) == k.uid);
    assert!(offset_of!(kinfo_proc, p_ruid) == k.ruid);
    assert!(offset_of!(kinfo_proc, p_svuid) == k.svuid);
    assert!(offset_of!(kinfo_proc, p_groups) == k.groups);
    assert!(offset_of!(kinfo_proc, p_rgid) == k.rgid);
    assert!(offset_of!(kinfo_proc, p_svgid) == k.svgid);
    assert!(offset_of!(kinfo_proc, p_tdev) == k.tdev);
    assert!(offset_of!(kinfo_proc, p_stat) == k.stat);
    assert!(offset_of!(kinfo_proc, p_nice) == k.nice);
    assert!(offset_of!(kinfo_proc, p_comm) == k.comm);
    assert!(libc::KI_MAXCOMLEN as usize == k.comm_len);
    assert!(offset_of!(kinfo_proc, p_vm_rssize) == k.vm[0]);
    assert!(offset_of!(kinfo_proc, p_vm_tsize) == k.vm[1]);
    assert!(offset_of!(kinfo_proc, p_vm_dsize) == k.vm[2]);
    assert!(offset_of!(kinfo_proc, p_vm_ssize) == k.vm[3]);
    assert!(offset_of!(kinfo_proc, p_uvalid) == k.uvalid);
    assert!(offset_of!(kinfo_proc, p_ustart_sec) == k.ustart.0);
    assert!(size_of::<u64>() == k.ustart.1);
    assert!(offset_of!(kinfo_proc, p_ustart_usec) == k.ustart.2);
    assert!(offset_of!(kinfo_proc, p_uutime_sec) == k.uutime);
    assert!(offset_of!(kinfo_proc, p_uutime_usec) == k.uutime + 4);
    assert!(offset_of!(kinfo_proc, p_ustime_sec) == k.ustime);
    assert!(offset_of!(kinfo_proc, p_ustime_usec) == k.ustime + 4);
    assert!(offset_of!(kinfo_proc, p_uctime_sec) == k.uctime);
    assert!(offset_of!(kinfo_proc, p_uctime_usec) == k.uctime + 4);
    assert!(offset_of!(kinfo_proc, p_uru_nvcsw) == k.nvcsw);
    assert!(offset_of!(kinfo_proc, p_uru_nivcsw) == k.nivcsw);
    assert!(offset_of!(kinfo_proc, p_psflags) == PSFLAGS);
    assert!(offset_of!(kinfo_proc, p_tid) == TID);

    assert!(size_of::<kinfo_file>() == KINFO_FILE_SIZE);
    assert!(offset_of!(kinfo_file, fd_fd) == KINFO_FILE_FD);
    assert!(offset_of!(kinfo_file, f_type) == kfs::F_TYPE);
    assert!(offset_of!(kinfo_file, f_data) == kfs::F_DATA);
    assert!(offset_of!(kinfo_file, so_type) == kfs::SO_TYPE);
    assert!(offset_of!(kinfo_file, so_protocol) == kfs::SO_PROTOCOL);
    assert!(offset_of!(kinfo_file, so_family) == kfs::SO_FAMILY);
    assert!(offset_of!(kinfo_file, inp_lport) == kfs::INP_LPORT);
    assert!(offset_of!(kinfo_file, inp_laddru) == kfs::INP_LADDRU);
    assert!(offset_of!(kinfo_file, inp_fport) == kfs::INP_FPORT);
    assert!(offset_of!(kinfo_file, inp_faddru) == kfs::INP_FADDRU);
    assert!(offset_of!(kinfo_file, p_pid) == kfs::P_PID);
    assert!(offset_of!(kinfo_file, unp_path) == kfs::UNP_PATH);
    assert!(libc::KI_UNPPATHLEN as usize == kfs::UNP_PATH_LEN);
    assert!(offset_of!(kinfo_file, t_state) == kfs::T_STATE);
    assert!(DTYPE_SOCKET as libc::c_int == libc::DTYPE_SOCKET);
    assert!(AF_INET6 as libc::c_int == libc::AF_INET6);
    assert_socket_numbers!();

    assert_if_counters!(if_data, IF_DATA);
    assert!(matches!(IF_DATA.link_state, Some(o) if o == offset_of!(if_data, ifi_link_state)));
    assert!(matches!(IF_DATA.oqdrops, Some(o) if o == offset_of!(if_data, ifi_oqdrops)));

    assert_notes!();
    assert!(kevent::NOTE_TRACK == libc::NOTE_TRACK);
};
