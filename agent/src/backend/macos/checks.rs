//! Compile-time checks that the decoders' macOS offsets and constants
//! are the `libc` crate's: a layout change fails the build here instead
//! of decoding garbage on a host.

use std::mem::{offset_of, size_of};

use libc::{
    if_data64, if_msghdr2, proc_bsdinfo, proc_fdinfo, proc_taskallinfo, proc_taskinfo,
    proc_vnodepathinfo, timeval, vnode_info_path,
};

use crate::backend::decode::{
    kevent,
    macos::{
        FDINFO_SIZE, IF_DATA64, RTM_IFINFO2, TASKALLINFO_SIZE, bsdinfo as b, if_msghdr2 as m,
        taskinfo as t, vnodepathinfo as v,
    },
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

    assert!(size_of::<timeval>() == 16);
    assert!(offset_of!(timeval, tv_usec) == 8);
    assert!(size_of::<libc::suseconds_t>() == 4);

    assert!(size_of::<if_data64>() == IF_DATA64.size);
    assert!(offset_of!(if_data64, ifi_mtu) == IF_DATA64.mtu.0);
    assert!(offset_of!(if_data64, ifi_baudrate) == IF_DATA64.counters[0]);
    assert!(offset_of!(if_data64, ifi_ipackets) == IF_DATA64.counters[1]);
    assert!(offset_of!(if_data64, ifi_ierrors) == IF_DATA64.counters[2]);
    assert!(offset_of!(if_data64, ifi_opackets) == IF_DATA64.counters[3]);
    assert!(offset_of!(if_data64, ifi_oerrors) == IF_DATA64.counters[4]);
    assert!(offset_of!(if_data64, ifi_ibytes) == IF_DATA64.counters[5]);
    assert!(offset_of!(if_data64, ifi_obytes) == IF_DATA64.counters[6]);
    assert!(offset_of!(if_data64, ifi_iqdrops) == IF_DATA64.counters[7]);
    assert!(size_of::<if_msghdr2>() == m::SIZE);
    assert!(offset_of!(if_msghdr2, ifm_msglen) == m::MSGLEN);
    assert!(offset_of!(if_msghdr2, ifm_type) == m::TYPE);
    assert!(offset_of!(if_msghdr2, ifm_data) == m::DATA);
    assert!(offset_of!(libc::sockaddr_dl, sdl_nlen) == m::SDL_NLEN);
    assert!(offset_of!(libc::sockaddr_dl, sdl_data) == m::SDL_DATA);
    assert!(RTM_IFINFO2 as libc::c_int == libc::RTM_IFINFO2);

    assert!(kevent::NOTE_EXIT == libc::NOTE_EXIT);
    assert!(kevent::NOTE_FORK == libc::NOTE_FORK);
    assert!(kevent::NOTE_EXEC == libc::NOTE_EXEC);
    assert!(kevent::NOTE_CHILD == libc::NOTE_CHILD);
};
