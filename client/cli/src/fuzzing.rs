//! Entry points for the fuzz targets in `fuzz/` (`cargo xtask fuzz`), and
//! for the test that replays their committed corpora on every `cargo
//! test`. Not part of the command line's API.

use std::path::Path;

use crate::profile::Profile;

/// A client profile file: parsed, then resolved with no context, with the
/// file's own, and with a few names a user might type.
pub fn profile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(profile) = Profile::parse(text, Path::new("/etc/hostscope/config.toml")) else {
        return;
    };
    for context in [None, Some("prod"), Some("staging"), Some(""), Some("a.b")] {
        let _ = profile.settings(context);
    }
}
