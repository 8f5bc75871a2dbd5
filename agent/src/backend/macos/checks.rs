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
    bsd::{assert_if_counters, assert_notes, assert_socket_numbers},
    decode::macos::{
        AF_INET6, FDINFO_SIZE, IF_DATA64, O_APPEND, O_CLOEXEC, RTM_IFINFO2, TASKALLINFO_SIZE,
        bsdinfo as b, fdinfowithpath as fdp, if_msghdr2 as m, prox_fdtype as fdt,
        socket_fdinfo as sf, taskinfo as t, vnodepathinfo as v,
    },
    decode::system::{self as sys, vm_statistics64 as vm},
};

/// `struct socket_fdinfo` and its parts as `sys/proc_info.h` declares
/// them, which the `libc` crate does not: declared here only so that the
/// compiler lays them out (around the crate's `vinfo_stat`, `in_addr`,
/// `in6_addr` and `sockaddr_un`) and the decoder's offsets are checked
/// against that layout, padding included. `soi_proto`'s other members
/// (`ndrv_info`, `kern_event_info`, `kern_ctl_info`, `vsock_sockinfo`)
/// are smaller than `un_sockinfo` and change nothing.
#[allow(dead_code)]
mod proc_info {
    use libc::{c_char, c_int, in_addr, in6_addr, off_t, sockaddr_un, vinfo_stat};

    #[repr(C)]
    pub struct ProcFileinfo {
        fi_openflags: u32,
        fi_status: u32,
        fi_offset: off_t,
        fi_type: i32,
        fi_guardflags: u32,
    }

    #[repr(C)]
    pub struct SockbufInfo {
        sbi_cc: u32,
        sbi_hiwat: u32,
        sbi_mbcnt: u32,
        sbi_mbmax: u32,
        sbi_lowat: u32,
        sbi_flags: i16,
        sbi_timeo: i16,
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct In4In6Addr {
        i46a_pad32: [u32; 3],
        pub i46a_addr4: in_addr,
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    pub union InAddr {
        ina_46: In4In6Addr,
        ina_6: in6_addr,
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct InV6 {
        in6_hlim: u8,
        in6_cksum: c_int,
        in6_ifindex: u16,
        in6_hops: i16,
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct InSockinfo {
        pub insi_fport: c_int,
        pub insi_lport: c_int,
        insi_gencnt: u64,
        insi_flags: u32,
        insi_flow: u32,
        insi_vflag: u8,
        insi_ip_ttl: u8,
        rfu_1: u32,
        pub insi_faddr: InAddr,
        pub insi_laddr: InAddr,
        insi_v4: u8,
        insi_v6: InV6,
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct TcpSockinfo {
        pub tcpsi_ini: InSockinfo,
        pub tcpsi_state: c_int,
        tcpsi_timer: [c_int; 4],
        tcpsi_mss: c_int,
        tcpsi_flags: u32,
        rfu_1: u32,
        tcpsi_tp: u64,
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    pub union UnAddr {
        ua_sun: sockaddr_un,
        ua_dummy: [c_char; libc::SOCK_MAXADDRLEN as usize],
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct UnSockinfo {
        unsi_conn_so: u64,
        unsi_conn_pcb: u64,
        pub unsi_addr: UnAddr,
        pub unsi_caddr: UnAddr,
    }

    #[repr(C)]
    pub union SoiProto {
        pri_in: InSockinfo,
        pri_tcp: TcpSockinfo,
        pri_un: UnSockinfo,
    }

    #[repr(C)]
    pub struct SocketInfo {
        soi_stat: vinfo_stat,
        pub soi_so: u64,
        soi_pcb: u64,
        pub soi_type: c_int,
        pub soi_protocol: c_int,
        pub soi_family: c_int,
        soi_options: i16,
        soi_linger: i16,
        soi_state: i16,
        soi_qlen: i16,
        soi_incqlen: i16,
        soi_qlimit: i16,
        soi_timeo: i16,
        soi_error: u16,
        soi_oobmark: u32,
        soi_rcv: SockbufInfo,
        soi_snd: SockbufInfo,
        pub soi_kind: c_int,
        rfu_1: u32,
        pub soi_proto: SoiProto,
    }

    #[repr(C)]
    pub struct SocketFdinfo {
        pfi: ProcFileinfo,
        pub psi: SocketInfo,
    }
}

const _: () = {
    use proc_info::{In4In6Addr, InSockinfo, SocketFdinfo, SocketInfo, TcpSockinfo, UnSockinfo};
    let psi = offset_of!(SocketFdinfo, psi);
    let proto = psi + offset_of!(SocketInfo, soi_proto);
    assert!(size_of::<SocketFdinfo>() == sf::SIZE);
    assert!(psi == size_of::<proc_info::ProcFileinfo>() && psi == fdp::VNODE);
    assert!(size_of::<vinfo_stat>() == 136);
    assert!(psi + offset_of!(SocketInfo, soi_so) == sf::SO);
    assert!(psi + offset_of!(SocketInfo, soi_type) == sf::TYPE);
    assert!(psi + offset_of!(SocketInfo, soi_protocol) == sf::PROTOCOL);
    assert!(psi + offset_of!(SocketInfo, soi_family) == sf::FAMILY);
    assert!(psi + offset_of!(SocketInfo, soi_kind) == sf::KIND);
    assert!(proto == sf::PROTO);
    assert!(proto + offset_of!(InSockinfo, insi_fport) == sf::FPORT);
    assert!(proto + offset_of!(InSockinfo, insi_lport) == sf::LPORT);
    assert!(proto + offset_of!(InSockinfo, insi_faddr) == sf::FADDR);
    assert!(proto + offset_of!(InSockinfo, insi_laddr) == sf::LADDR);
    assert!(offset_of!(In4In6Addr, i46a_addr4) == 12);
    assert!(offset_of!(TcpSockinfo, tcpsi_ini) == 0);
    assert!(proto + offset_of!(TcpSockinfo, tcpsi_state) == sf::TCP_STATE);
    assert!(proto + offset_of!(UnSockinfo, unsi_addr) == sf::UN_ADDR);
    assert!(proto + offset_of!(UnSockinfo, unsi_caddr) == sf::UN_CADDR);
    assert!(libc::SOCK_MAXADDRLEN as usize == sf::UN_ADDR_LEN);
    assert!(AF_INET6 == libc::AF_INET6);
    assert_socket_numbers!();
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
