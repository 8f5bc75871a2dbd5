//! Compile-time checks that the decoders' FreeBSD offsets and constants
//! are the `libc` crate's: a layout change fails the build here instead
//! of decoding garbage on a host.

use std::mem::{offset_of, size_of};

use libc::{c_int, if_data, ifmediareq, kinfo_file, kinfo_proc, rusage};

use crate::backend::{
    bsd::{assert_if_counters, assert_notes, assert_socket_numbers},
    decode::{
        freebsd::{
            AF_INET6, IF_DATA, KF_FD_TYPE_CWD, KF_FLAG_READ, KF_FLAG_WRITE, KF_OPEN_FLAGS, O_RDWR,
            O_WRONLY, P_SYSTEM, kf_sock as kfs, kf_type as kft, kf_vtype as kfv, kinfo_file as kf,
            kinfo_proc as kp, rusage as ru,
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
    assert!(offset_of!(kinfo_file, kf_type) == kf::TYPE);
    assert!(offset_of!(kinfo_file, kf_flags) == kf::FLAGS);
    assert!(offset_of!(kinfo_file, kf_offset) == kf::OFFSET);
    // `kf_un`, which `libc` keeps opaque, starts right after the offset
    // and ends where `kf_status` begins.
    assert!(kf::OFFSET + 8 == kf::VNODE_TYPE);
    assert!(offset_of!(kinfo_file, kf_status) == kf::VNODE_TYPE + 304);
    assert!(size_of::<libc::off_t>() == 8);

    assert!(kft::VNODE == libc::KF_TYPE_VNODE);
    assert!(kft::SOCKET == libc::KF_TYPE_SOCKET);
    assert!(kft::PIPE == libc::KF_TYPE_PIPE);
    assert!(kft::FIFO == libc::KF_TYPE_FIFO);
    assert!(kft::KQUEUE == libc::KF_TYPE_KQUEUE);
    assert!(kft::PTS == libc::KF_TYPE_PTS);
    assert!(kft::PROCDESC == libc::KF_TYPE_PROCDESC);
    assert!(kft::DEV == libc::KF_TYPE_DEV);
    assert!(kfv::VREG == libc::KF_VTYPE_VREG);
    assert!(kfv::VDIR == libc::KF_VTYPE_VDIR);
    assert!(kfv::VBLK == libc::KF_VTYPE_VBLK);
    assert!(kfv::VCHR == libc::KF_VTYPE_VCHR);
    assert!(kfv::VSOCK == libc::KF_VTYPE_VSOCK);
    assert!(kfv::VFIFO == libc::KF_VTYPE_VFIFO);

    assert!(KF_FLAG_READ == libc::KF_FLAG_READ as u32);
    assert!(KF_FLAG_WRITE == libc::KF_FLAG_WRITE as u32);
    assert!(O_WRONLY == libc::O_WRONLY as u32);
    assert!(O_RDWR == libc::O_RDWR as u32);
    assert!(libc::O_RDONLY == 0);
    let open_flags: [(c_int, c_int); 12] = [
        (libc::KF_FLAG_APPEND, libc::O_APPEND),
        (libc::KF_FLAG_ASYNC, libc::O_ASYNC),
        (libc::KF_FLAG_FSYNC, libc::O_FSYNC),
        (libc::KF_FLAG_NONBLOCK, libc::O_NONBLOCK),
        (libc::KF_FLAG_DIRECT, libc::O_DIRECT),
        (libc::KF_FLAG_SHLOCK, libc::O_SHLOCK),
        (libc::KF_FLAG_EXLOCK, libc::O_EXLOCK),
        (libc::KF_FLAG_NOFOLLOW, libc::O_NOFOLLOW),
        (libc::KF_FLAG_CREAT, libc::O_CREAT),
        (libc::KF_FLAG_TRUNC, libc::O_TRUNC),
        (libc::KF_FLAG_EXCL, libc::O_EXCL),
        (libc::KF_FLAG_EXEC, libc::O_EXEC),
    ];
    let mut i = 0;
    while i < open_flags.len() {
        assert!(KF_OPEN_FLAGS[i].0 == open_flags[i].0 as u32);
        assert!(KF_OPEN_FLAGS[i].1 == open_flags[i].1 as u32);
        i += 1;
    }

    // `kf_un.kf_sock`, which `libc` keeps opaque too: domain, type and
    // protocol follow the word `kf_vnode_type` shares with
    // `kf_sock_sendq`, then two `sockaddr_storage`s and the three kernel
    // addresses; with the buffer states and `kf_sock_recvq` (8 bytes
    // together) it fills the union to `kf_status`.
    assert!(kfs::DOMAIN == kf::VNODE_TYPE + 4);
    assert!(kfs::TYPE == kfs::DOMAIN + 4 && kfs::PROTOCOL == kfs::TYPE + 4);
    assert!(kfs::SA_LOCAL == kfs::PROTOCOL + 4);
    assert!(size_of::<libc::sockaddr_storage>() == kfs::SA_LEN);
    assert!(kfs::SA_PEER == kfs::SA_LOCAL + kfs::SA_LEN);
    assert!(kfs::PCB == kfs::SA_PEER + kfs::SA_LEN);
    assert!(kfs::PCB + 3 * 8 + 8 == offset_of!(kinfo_file, kf_status));
    assert!(AF_INET6 == libc::AF_INET6);
    assert_socket_numbers!();

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
