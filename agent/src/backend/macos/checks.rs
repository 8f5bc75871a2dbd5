//! Compile-time checks that the decoders' macOS offsets and constants
//! are the `libc` crate's: a layout change fails the build here instead
//! of decoding garbage on a host.

use std::mem::{offset_of, size_of};

use libc::{
    c_int, if_data64, if_msghdr2, proc_bsdinfo, proc_fdinfo, proc_taskallinfo, proc_taskinfo,
    proc_vnodepathinfo, timeval, vinfo_stat, vm_statistics64, vnode_info, vnode_info_path,
    xsw_usage,
};

use crate::backend::{
    bsd::{assert_if_counters, assert_notes},
    decode::macos::{
        FDINFO_SIZE, IF_DATA64, O_APPEND, O_CLOEXEC, RTM_IFINFO2, TASKALLINFO_SIZE, bsdinfo as b,
        fdinfowithpath as fdp, if_msghdr2 as m, prox_fdtype as fdt, taskinfo as t,
        vnodepathinfo as v,
    },
    decode::system::{self as sys, vm_statistics64 as vm},
};

const _: () = {
    assert!(size_of::<proc_bsdinfo>() == b::SIZE);
    assert!(offset_of!(proc_bsdinfo, pbi_flags) == b::FLAGS);
    assert!(offset_of!(proc_bsdinfo, pbi_status) == b::STATUS);
    assert!(offset_of!(proc_bsdinfo, pbi_pid) == b::PID);
    assert!(offset_of!(proc_bsdinfo, pbi_ppid) == b::PPID);
    assert!(offset_of!(proc_bsdinfo, pbi_uid) == b::UID);
    assert!(offset_of!(proc_bsdinfo, pbi_gid) == b::GID);
    assert!(offset_of!(proc_bsdinfo, pbi_ruid) == b::RUID);
    assert!(offset_of!(proc_bsdinfo, pbi_rgid) == b::RGID);
    assert!(offset_of!(proc_bsdinfo, pbi_svuid) == b::SVUID);
    assert!(offset_of!(proc_bsdinfo, pbi_svgid) == b::SVGID);
    assert!(offset_of!(proc_bsdinfo, pbi_comm) == b::COMM);
    assert!(offset_of!(proc_bsdinfo, pbi_name) == b::NAME);
    assert!(offset_of!(proc_bsdinfo, e_tdev) == b::TDEV);
    assert!(offset_of!(proc_bsdinfo, pbi_nice) == b::NICE);
    assert!(offset_of!(proc_bsdinfo, pbi_start_tvsec) == b::START_SEC);
    assert!(offset_of!(proc_bsdinfo, pbi_start_tvusec) == b::START_USEC);

    assert!(size_of::<proc_taskinfo>() == t::SIZE);
    assert!(offset_of!(proc_taskinfo, pti_virtual_size) == t::VIRTUAL_SIZE);
    assert!(offset_of!(proc_taskinfo, pti_resident_size) == t::RESIDENT_SIZE);
    assert!(offset_of!(proc_taskinfo, pti_total_user) == t::TOTAL_USER);
    assert!(offset_of!(proc_taskinfo, pti_total_system) == t::TOTAL_SYSTEM);
    assert!(offset_of!(proc_taskinfo, pti_threadnum) == t::THREADNUM);
    assert!(size_of::<proc_taskallinfo>() == TASKALLINFO_SIZE);
    assert!(offset_of!(proc_taskallinfo, ptinfo) == b::SIZE);

    assert!(size_of::<proc_vnodepathinfo>() == v::SIZE);
    assert!(offset_of!(proc_vnodepathinfo, pvi_cdir) == 0);
    assert!(offset_of!(vnode_info_path, vip_path) == v::CDIR_PATH);
    assert!(size_of::<proc_fdinfo>() == FDINFO_SIZE);
    assert!(offset_of!(proc_fdinfo, proc_fd) == 0);
    assert!(offset_of!(proc_fdinfo, proc_fdtype) == 4);
    assert!(fdt::VNODE as c_int == libc::PROX_FDTYPE_VNODE);
    assert!(fdt::SOCKET as c_int == libc::PROX_FDTYPE_SOCKET);
    assert!(fdt::KQUEUE as c_int == libc::PROX_FDTYPE_KQUEUE);
    assert!(fdt::PIPE as c_int == libc::PROX_FDTYPE_PIPE);
    assert!(fdt::FSEVENTS as c_int == libc::PROX_FDTYPE_FSEVENTS);
    assert!(fdt::NETPOLICY as c_int == libc::PROX_FDTYPE_NETPOLICY);
    assert!(fdt::CHANNEL as c_int == libc::PROX_FDTYPE_CHANNEL);
    assert!(fdt::NEXUS as c_int == libc::PROX_FDTYPE_NEXUS);

    // `vnode_fdinfowithpath`'s `vnode_info_path`, after the 24-byte
    // `proc_fileinfo` the `libc` crate does not declare.
    assert!(size_of::<vnode_info_path>() == fdp::SIZE - fdp::VNODE);
    assert!(offset_of!(vnode_info_path, vip_path) == fdp::PATH - fdp::VNODE);
    assert!(offset_of!(vnode_info_path, vip_vi) == 0);
    assert!(offset_of!(vnode_info, vi_stat) == 0);
    assert!(offset_of!(vinfo_stat, vst_mode) == fdp::MODE - fdp::VNODE);
    assert!(offset_of!(vinfo_stat, vst_nlink) == fdp::NLINK - fdp::VNODE);
    assert!(size_of::<libc::off_t>() == 8);
    assert!(O_APPEND == libc::O_APPEND as u32);
    assert!(O_CLOEXEC == libc::O_CLOEXEC as u32);
    assert!(libc::O_WRONLY == 1 && libc::O_RDWR == 2);
    assert!(libc::S_IFMT == 0o170_000 && libc::S_IFREG == 0o100_000);

    assert!(size_of::<timeval>() == 16);
    assert!(offset_of!(timeval, tv_usec) == 8);
    assert!(size_of::<libc::suseconds_t>() == 4);

    assert_if_counters!(if_data64, IF_DATA64);
    assert!(size_of::<if_msghdr2>() == m::SIZE);
    assert!(offset_of!(if_msghdr2, ifm_msglen) == m::MSGLEN);
    assert!(offset_of!(if_msghdr2, ifm_type) == m::TYPE);
    assert!(offset_of!(if_msghdr2, ifm_data) == m::DATA);
    assert!(offset_of!(libc::sockaddr_dl, sdl_nlen) == m::SDL_NLEN);
    assert!(offset_of!(libc::sockaddr_dl, sdl_data) == m::SDL_DATA);
    assert!(RTM_IFINFO2 as libc::c_int == libc::RTM_IFINFO2);

    assert!(size_of::<xsw_usage>() == sys::xsw_usage::SIZE);
    assert!(offset_of!(xsw_usage, xsu_total) == sys::xsw_usage::TOTAL);
    assert!(offset_of!(xsw_usage, xsu_avail) == sys::xsw_usage::AVAIL);
    assert!(offset_of!(xsw_usage, xsu_used) == sys::xsw_usage::USED);
    assert!(offset_of!(vm_statistics64, free_count) == vm::FREE_COUNT);
    assert!(offset_of!(vm_statistics64, active_count) == vm::ACTIVE_COUNT);
    assert!(offset_of!(vm_statistics64, inactive_count) == vm::INACTIVE_COUNT);
    assert!(offset_of!(vm_statistics64, wire_count) == vm::WIRE_COUNT);
    assert!(offset_of!(vm_statistics64, pageins) == vm::PAGEINS);
    assert!(offset_of!(vm_statistics64, pageouts) == vm::PAGEOUTS);
    assert!(offset_of!(vm_statistics64, speculative_count) == vm::SPECULATIVE_COUNT);
    assert!(size_of::<vm_statistics64>() >= vm::MIN_SIZE);
    // user, system, idle, nice, as sys::STATES_MACOS reads them.
    assert!(libc::CPU_STATE_USER == 0 && libc::CPU_STATE_SYSTEM == 1);
    assert!(libc::CPU_STATE_IDLE == 2 && libc::CPU_STATE_NICE == 3);
    assert!(libc::CPU_STATE_MAX == 4);

    assert_notes!();
};
