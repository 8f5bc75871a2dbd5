//! `/proc/<pid>/fdinfo/<fd>`: a descriptor's file offset and open flags
//! (proc(5)), and psutil's mode string for the flags.

use super::{ParseError, key_values, lossy, required};

/// What `fdinfo` says of a descriptor that psutil's `open_files` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdInfo {
    /// The file offset in bytes (`pos`).
    pub pos: u64,
    /// The open flags as the kernel keeps them (`flags`, printed in
    /// octal), close-on-exec included.
    pub flags: u32,
}

/// Parses `/proc/<pid>/fdinfo/<fd>`. Lines past `pos` and `flags`
/// (`mnt_id`, `ino`, and what each kind of descriptor adds, such as
/// `eventfd-count`) are skipped.
pub fn parse_fdinfo(bytes: &[u8]) -> Result<FdInfo, ParseError> {
    let (mut pos, mut flags) = (None, None);
    for (n, key, value) in key_values(bytes) {
        match key {
            b"pos" => pos = Some(super::number(value, "pos", n)?),
            b"flags" => {
                let octal = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| u32::from_str_radix(v, 8).ok())
                    .ok_or_else(|| {
                        ParseError::new(n, format!("flags: not octal: {:?}", lossy(value)))
                    })?;
                flags = Some(octal);
            }
            _ => {}
        }
    }
    Ok(FdInfo {
        pos: required(pos, "pos")?,
        flags: required(flags, "flags")?,
    })
}

/// The access mode bits of the flags (`O_ACCMODE`).
const O_ACCMODE: u32 = 0o3;
const O_WRONLY: u32 = 0o1;
const O_RDWR: u32 = 0o2;
/// `O_APPEND` as the generic fcntl.h numbers it, which x86_64, aarch64
/// and the other architectures the agent is built for share.
const O_APPEND: u32 = 0o2000;

/// The mode psutil's `file_flags_to_mode` gives open flags: "r", "w" or
/// "r+" by the access mode, with "w" turned into "a" by `O_APPEND` ("a",
/// "a+"). An access mode of 3 (no reading or writing: a descriptor for
/// ioctls only), which psutil cannot name, is "".
pub fn mode(flags: u32) -> &'static str {
    let append = flags & O_APPEND != 0;
    match (flags & O_ACCMODE, append) {
        (0, _) => "r",
        (O_WRONLY, false) => "w",
        (O_WRONLY, true) => "a",
        (O_RDWR, false) => "r+",
        (O_RDWR, true) => "a+",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture tree of open files (`tests/fixtures/linux-files`, see
    /// its README): descriptors of one process on this machine.
    macro_rules! fixture {
        ($fd:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/linux-files/proc/15840/fdinfo/",
                $fd
            ))
        };
    }

    #[test]
    fn offsets_and_flags_of_every_kind_of_descriptor() {
        let cases: [(&[u8], u64, u32, &str); 10] = [
            // /dev/null as stdin, opened without close-on-exec.
            (fixture!("0"), 0, 0o100000, "r"),
            // A file read from, five bytes in.
            (fixture!("3"), 5, 0o2100000, "r"),
            // Appended to.
            (fixture!("4"), 7, 0o2102001, "a"),
            // Read and written, after a seek.
            (fixture!("5"), 7, 0o2100002, "r+"),
            // Both ends of a pipe, a socket, an eventfd (whose own lines
            // follow), a directory (O_DIRECTORY).
            (fixture!("7"), 0, 0o2000000, "r"),
            (fixture!("8"), 0, 0o2000001, "w"),
            (fixture!("9"), 0, 0o2000002, "r+"),
            (fixture!("11"), 0, 0o2000002, "r+"),
            (fixture!("12"), 0, 0o2300000, "r"),
            // Read and appended to.
            (fixture!("14"), 0, 0o2102002, "a+"),
        ];
        for (bytes, pos, flags, want) in cases {
            let info = parse_fdinfo(bytes).unwrap();
            assert_eq!(info, FdInfo { pos, flags }, "{}", lossy(bytes));
            assert_eq!(mode(info.flags), want, "{flags:o}");
        }
        assert_eq!(mode(0o2100001), "w");
    }

    #[test]
    fn psutil_modes() {
        // psutil's file_flags_to_mode, by access mode and O_APPEND.
        let cases = [
            (0o0, "r"),
            (0o1, "w"),
            (0o2, "r+"),
            (0o2000, "r"),
            (0o2001, "a"),
            (0o2002, "a+"),
            (0o3, ""),
        ];
        for (flags, want) in cases {
            assert_eq!(mode(flags), want, "{flags:o}");
        }
    }

    #[test]
    fn offsets_past_4_gib_and_bad_records() {
        let big = parse_fdinfo(b"pos:\t8589934592\nflags:\t0100000\n").unwrap();
        assert_eq!(big.pos, 1 << 33);
        let err = parse_fdinfo(b"pos:\t0\nflags:\t0109\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("0109"), "{err}");
        let err = parse_fdinfo(b"pos:\tx\nflags:\t0\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(parse_fdinfo(b"pos:\t0\n").is_err(), "no flags");
        assert!(parse_fdinfo(b"").is_err());
    }
}
