//! Link speed and duplex from the media word `SIOCGIFMEDIA` returns
//! (`struct ifmediareq`'s `ifm_active`, `net/if_media.h`).
//!
//! Every BSD and macOS inherited the word from NetBSD's 1997 design, then
//! grew it apart: the Ethernet subtypes past 17 are numbered differently
//! on each, three of them extend the 5-bit subtype with bits borrowed
//! from the options field, and OpenBSD widened the whole word to 64 bits
//! with every field moved. Each OS's layout and speed table below is
//! taken from its own `net/if_media.h`.

use crate::backend::Duplex;

/// Where one OS keeps the parts of a media word, and what each Ethernet
/// subtype's speed is.
#[derive(Debug)]
pub struct MediaLayout {
    /// `IFM_NMASK`: the network type bits.
    pub type_mask: u64,
    /// `IFM_ETHER`.
    pub ether: u64,
    /// The low subtype bits (`IFM_TMASK`, or `IFM_TMASK_COMPAT`).
    pub subtype_mask: u64,
    /// The extra Ethernet subtype bits and how far right they shift to
    /// sit above the low ones (`IFM_ETH_XTYPE` and `IFM_ETH_XSHIFT`).
    pub extended: (u64, u32),
    /// `IFM_FDX` and `IFM_HDX`.
    pub fdx: u64,
    pub hdx: u64,
    /// Speed tables, looked up in order.
    pub speeds: &'static [Speeds],
}

/// `IFM_AVALID` of `ifm_status`: the active word is meaningful.
pub const IFM_AVALID: u64 = 0x1;

/// A speed table: Ethernet subtypes as inclusive ranges with their speed
/// in Mbit/s.
type Speeds = &'static [(u16, u16, u32)];

/// The Ethernet subtypes 3 to 17, numbered alike on every OS: 10baseT,
/// 10base2, 10base5, five 100 Mbit/s media, 1000baseSX, 10baseSTP,
/// 10baseFL, 1000baseLX, 1000baseCX, 1000baseT and HomePNA.
const SHARED: Speeds = &[
    (3, 5, 10),
    (6, 10, 100),
    (11, 11, 1000),
    (12, 13, 10),
    (14, 16, 1000),
    (17, 17, 1),
];

/// `IFM_X(47)` to `IFM_X(117)`, numbered alike on FreeBSD and macOS:
/// 100G CR4 to 400G AUI8.
const X_HIGH: Speeds = &[
    (47, 50, 100_000),
    (51, 51, 56_000),
    (52, 52, 100),
    (53, 55, 25_000),
    (56, 57, 50_000),
    (58, 58, 25_000),
    (59, 59, 10_000),
    (60, 61, 25_000),
    (62, 62, 100),
    (63, 63, 2_500),
    (64, 64, 5_000),
    (65, 68, 25_000),
    (69, 70, 5_000),
    (71, 71, 25_000),
    (72, 74, 40_000),
    (75, 85, 50_000),
    (86, 86, 25_000),
    (87, 88, 50_000),
    (89, 102, 100_000),
    (103, 112, 200_000),
    (113, 117, 400_000),
];

/// The 32-bit word of FreeBSD, NetBSD and macOS: the type in bits 5-7,
/// the subtype's low bits in 0-4, the shared options in 20-27.
const WORD32: MediaLayout = MediaLayout {
    type_mask: 0xe0,
    ether: 0x20,
    subtype_mask: 0x1f,
    extended: (0, 0),
    fdx: 0x0010_0000,
    hdx: 0x0020_0000,
    speeds: &[],
};

/// FreeBSD 14 `sys/net/if_media.h`: 5 subtype bits plus 4 from
/// `IFM_ETH_XTYPE` (0x7800, shifted right by 6) for `IFM_X(32)` and up.
pub const FREEBSD: MediaLayout = MediaLayout {
    extended: (0x7800, 6),
    speeds: &[
        SHARED,
        &[
            (18, 20, 10_000), // 10G LR, SR, CX4
            (21, 21, 2_500),  // 2500baseSX
            (22, 24, 10_000), // 10G Twinax, Twinax long, LRM
            (26, 26, 10_000), // 10GBase-T
            (27, 29, 40_000), // 40G CR4, SR4, LR4
            (30, 30, 1_000),  // 1000Base-KX
            (32, 34, 10_000), // 10G KX4, KR, CR1
            (35, 35, 20_000), // 20G KR2
            (36, 37, 2_500),  // 2500 KX, T
            (38, 38, 5_000),  // 5000Base-T
            (39, 39, 50_000), // 50G PCIe
            (40, 40, 25_000), // 25G PCIe
            (41, 41, 1_000),  // 1000 SGMII
            (42, 42, 10_000), // 10G SFI
            (43, 43, 40_000), // 40G XLPPI
            (44, 44, 1_000),  // 1000 CX SGMII
            (45, 45, 40_000), // 40G KR4
            (46, 46, 10_000), // 10G ER
        ],
        X_HIGH,
    ],
    ..WORD32
};

/// macOS (xnu `bsd/net/if_media.h`): 5 subtype bits plus 4 from
/// `IFM_TMASK_EXT` (0xf0000, shifted right by 11). Subtypes 34 to 43 and
/// 46 are left out: their numbering is not in the header consulted, and
/// the interface's baud rate answers for them.
pub const MACOS: MediaLayout = MediaLayout {
    extended: (0xf_0000, 11),
    speeds: &[
        SHARED,
        &[
            (18, 21, 10_000), // 10G SR, LR, CX4, T
            (22, 22, 2_500),  // 2500baseT
            (23, 23, 5_000),  // 5000baseT
            (24, 25, 1_000),  // 1000 CX-SGMII, KX
            (26, 29, 10_000), // 10G KX4, KR, CR1, ER
            (30, 30, 20_000), // 20G KR2
            (32, 32, 2_500),  // 2500baseSX
            (33, 33, 10_000), // 10G Twinax
            (44, 45, 40_000), // 40G LR4, KR4
        ],
        X_HIGH,
    ],
    ..WORD32
};

/// NetBSD 10 `sys/net/if_media.h`: 5 subtype bits plus 3 from
/// `_IFM_ETH_XTMASK` (0xe000, shifted right by 8) for `_IFM_EX(32)` and
/// up, numbered in alphabetical order of the media names.
pub const NETBSD: MediaLayout = MediaLayout {
    extended: (0xe000, 8),
    speeds: &[
        SHARED,
        &[
            (18, 20, 10_000),    // 10G LR, SR, CX4
            (21, 21, 2_500),     // 2500baseSX
            (22, 22, 1_000),     // 1000BASE-BX10
            (23, 26, 10_000),    // 10G Twinax, Twinax long, LRM, T
            (27, 27, 1_000),     // 1000BASE-KX
            (28, 29, 2_500),     // 2500 KX, T
            (30, 30, 5_000),     // 5GBASE-T
            (32, 32, 1_000),     // 1000BASE-SGMII
            (33, 33, 5_000),     // 5GBASE-KR
            (34, 41, 10_000),    // 10G AOC .. ZR
            (42, 42, 20_000),    // 20G KR2
            (43, 53, 25_000),    // 25G ACC .. T
            (54, 62, 40_000),    // 40G AOC .. XLPPI
            (63, 74, 50_000),    // 50G AUI1 .. SR2
            (75, 75, 56_000),    // 56G R4
            (76, 87, 100_000),   // 100G CR2 .. SR10
            (88, 95, 200_000),   // 200G CR2 .. SR4
            (96, 101, 400_000),  // 400G CR4 .. SR16
            (102, 105, 100_000), // 100G ACC, AOC, FR, LR
            (106, 106, 200_000), // 200G ER4
            (107, 111, 400_000), // 400G ER8 .. SR8
        ],
    ],
    ..WORD32
};

/// OpenBSD 7 `sys/net/if_media.h`: a 64-bit word with an 8-bit subtype,
/// the type in bits 8-15 and the shared options in bits 40-55.
pub const OPENBSD: MediaLayout = MediaLayout {
    type_mask: 0xff00,
    ether: 0x0100,
    subtype_mask: 0xff,
    extended: (0, 0),
    fdx: 0x0000_0100_0000_0000,
    hdx: 0x0000_0200_0000_0000,
    speeds: &[
        SHARED,
        &[
            (18, 20, 10_000),  // 10G LR, SR, CX4
            (21, 21, 2_500),   // 2500baseSX
            (22, 24, 10_000),  // 10G T, SFP+ Cu, LRM
            (25, 27, 40_000),  // 40G CR4, SR4, LR4
            (28, 28, 1_000),   // 1000Base-KX
            (29, 31, 10_000),  // 10G KX4, KR, CR1
            (32, 32, 20_000),  // 20G KR2
            (33, 34, 2_500),   // 2500 KX, T
            (35, 35, 5_000),   // 5000Base-T
            (36, 36, 1_000),   // 1000 SGMII
            (37, 37, 10_000),  // 10G SFI
            (38, 38, 40_000),  // 40G XLPPI
            (39, 39, 1_000),   // 1000 CX-SGMII
            (40, 40, 40_000),  // 40G KR4
            (41, 41, 10_000),  // 10G ER
            (42, 45, 100_000), // 100G CR4, SR4, KR4, LR4
            (46, 46, 56_000),  // 56G R4
            (47, 49, 25_000),  // 25G CR, KR, SR
            (50, 51, 50_000),  // 50G CR2, KR2
            (52, 53, 25_000),  // 25G LR, ER
            (54, 54, 10_000),  // 10G AOC
            (55, 55, 25_000),  // 25G AOC
            (56, 56, 40_000),  // 40G AOC
            (57, 57, 100_000), // 100G AOC
        ],
    ],
};

impl MediaLayout {
    /// The Ethernet subtype number of `word` (extended bits included), or
    /// `None` when the word is not Ethernet.
    pub fn ether_subtype(&self, word: u64) -> Option<u16> {
        if word & self.type_mask != self.ether {
            return None;
        }
        let (mask, shift) = self.extended;
        let low = word & self.subtype_mask;
        let high = if mask == 0 { 0 } else { (word & mask) >> shift };
        u16::try_from(low | high).ok()
    }

    /// The speed in Mbit/s of the active media `word`; `None` when it is
    /// not Ethernet or its subtype has no entry here.
    pub fn speed(&self, word: u64) -> Option<u32> {
        let subtype = self.ether_subtype(word)?;
        self.speeds
            .iter()
            .flat_map(|table| table.iter())
            .find(|(from, to, _)| (*from..=*to).contains(&subtype))
            .map(|(_, _, mbps)| *mbps)
            .filter(|mbps| *mbps > 0)
    }

    /// The duplex of the active media `word` (`status` is `ifm_status`:
    /// without `IFM_AVALID` the word says nothing).
    pub fn duplex(&self, status: u64, word: u64) -> Duplex {
        if status & IFM_AVALID == 0 {
            Duplex::Unknown
        } else if word & self.fdx != 0 {
            Duplex::Full
        } else if word & self.hdx != 0 {
            Duplex::Half
        } else {
            Duplex::Unknown
        }
    }
}

/// The request number of `_IOWR(group, num, T)` for a `T` of `len` bytes,
/// as `sys/ioccom.h` builds it on every BSD and macOS: in-and-out
/// direction bits, the length in bits 16-28, the group, the number.
pub const fn iowr(group: u8, num: u8, len: usize) -> u64 {
    const IOC_INOUT: u64 = 0x8000_0000 | 0x4000_0000;
    const IOCPARM_MASK: u64 = 0x1fff;
    IOC_INOUT | ((len as u64 & IOCPARM_MASK) << 16) | ((group as u64) << 8) | num as u64
}

/// `struct ifmediareq`'s size on FreeBSD, NetBSD (a 16-byte name, five
/// `int`s, a pointer: 48 bytes on LP64) and macOS, where `#pragma pack(4)`
/// of `net/if.h` drops the padding before the pointer (44 bytes).
pub const IFMEDIAREQ_LEN: usize = 48;
/// macOS's packed `struct ifmediareq`.
pub const IFMEDIAREQ_LEN_MACOS: usize = 44;
/// OpenBSD's `struct ifmediareq`: a 16-byte name, four `uint64_t` words,
/// an `int` and a pointer (64 bytes).
pub const IFMEDIAREQ_LEN_OPENBSD: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_headers() {
        // SIOCGIFMEDIA as the system headers spell it out: FreeBSD and
        // NetBSD 0xc0306938, macOS 0xc02c6938, OpenBSD 0xc0406938.
        assert_eq!(iowr(b'i', 56, IFMEDIAREQ_LEN), 0xc030_6938);
        assert_eq!(iowr(b'i', 56, IFMEDIAREQ_LEN_MACOS), 0xc02c_6938);
        assert_eq!(iowr(b'i', 56, IFMEDIAREQ_LEN_OPENBSD), 0xc040_6938);
    }

    #[test]
    fn classic_words() {
        // IFM_ETHER | IFM_1000_T | IFM_FDX on the 32-bit layouts.
        let gig_full = 0x20 | 16 | 0x0010_0000;
        for layout in [&FREEBSD, &NETBSD, &MACOS] {
            assert_eq!(layout.speed(gig_full), Some(1000), "{layout:?}");
            assert_eq!(layout.duplex(0x3, gig_full), Duplex::Full);
            // IFM_100_TX | IFM_HDX.
            let fast_half = 0x20 | 6 | 0x0020_0000;
            assert_eq!(layout.speed(fast_half), Some(100));
            assert_eq!(layout.duplex(0x3, fast_half), Duplex::Half);
            // Status without IFM_AVALID: nothing is known.
            assert_eq!(layout.duplex(0x0, gig_full), Duplex::Unknown);
            // IFM_AUTO (a link still negotiating) has no speed.
            assert_eq!(layout.speed(0x20), None);
            // IEEE 802.11 (0x80) is not Ethernet.
            assert_eq!(layout.speed(0x80 | 16), None);
        }
    }

    #[test]
    fn extended_subtypes() {
        // FreeBSD IFM_25G_SR = IFM_X(55): 55 & 0x1f = 23, (55 & 0x1e0) << 6
        // = 0x800, the word 0x817 | IFM_ETHER | IFM_FDX.
        let word = 0x20 | 0x817 | 0x0010_0000;
        assert_eq!(FREEBSD.ether_subtype(word), Some(55));
        assert_eq!(FREEBSD.speed(word), Some(25_000));
        // Past 21 the numbering parts: 22 is 10G Twinax on FreeBSD,
        // 1000BASE-BX10 on NetBSD.
        assert_eq!(FREEBSD.speed(0x20 | 22), Some(10_000));
        assert_eq!(NETBSD.speed(0x20 | 22), Some(1_000));
        // NetBSD IFM_100G_CR4 = _IFM_EX(77): low 13, (77 & 0xe0) << 8 = 0x4000.
        assert_eq!(NETBSD.speed(0x20 | 13 | 0x4000), Some(100_000));
        // macOS IFM_100G_SR4 = IFM_X(48): low 16, (48 & 0x1e0) << 11 = 0x10000.
        assert_eq!(MACOS.speed(0x20 | 16 | 0x1_0000), Some(100_000));
        // macOS 22 is 2500baseT.
        assert_eq!(MACOS.speed(0x20 | 22), Some(2_500));
    }

    #[test]
    fn openbsd_is_64_bit() {
        // IFM_ETHER (0x100) | IFM_10G_T (22) | IFM_FDX (1 << 40).
        let word = 0x100 | 22 | (1 << 40);
        assert_eq!(OPENBSD.speed(word), Some(10_000));
        assert_eq!(OPENBSD.duplex(0x3, word), Duplex::Full);
        assert_eq!(OPENBSD.duplex(0x3, 0x100 | 6 | (2 << 40)), Duplex::Half);
        // A 32-bit-style word is not Ethernet there.
        assert_eq!(OPENBSD.speed(0x20 | 16), None);
        assert_eq!(OPENBSD.speed(0x100 | 200), None);
    }
}
