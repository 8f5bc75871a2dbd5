//! Examples are run as they are written: every address in the command
//! line's help, the client's sources and tests, and the example inventory
//! must be one reserved for documentation (192.0.2.0/24, 198.51.100.0/24,
//! 203.0.113.0/24, 2001:db8::/32), so that a pasted example dials no one's
//! real host.

#![deny(unsafe_code)]

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
};

/// Whether `ip` is in a private range that someone's network may use.
fn private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private(),
        // fc00::/7, unique local addresses.
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// Every IPv4 or IPv6 literal-looking word in `text` that parses as an
/// address in a private range, with its line number.
fn private_addresses(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let words = line.split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'));
        for word in words {
            let word = word.trim_matches(|c| c == ':' || c == '.');
            let candidates = [word, word.rsplit_once(':').map_or(word, |(a, _)| a)];
            if candidates
                .iter()
                .filter_map(|w| w.parse::<IpAddr>().ok())
                .any(private)
            {
                found.push((n + 1, word.to_owned()));
            }
        }
    }
    found
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).expect("a source directory");
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs" || e == "toml") {
            out.push(path);
        }
    }
}

#[test]
fn the_check_finds_private_addresses() {
    let found = private_addresses("address = \"10.0.0.11:7443\" # or fd00::5, 172.20.1.1");
    let words: Vec<&str> = found.iter().map(|(_, w)| w.as_str()).collect();
    assert_eq!(words, ["10.0.0.11:7443", "fd00::5", "172.20.1.1"]);
    assert!(private_addresses("192.0.2.11:7443 [2001:db8::42]:7443 127.0.0.1").is_empty());
}

#[test]
fn examples_use_documentation_addresses() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    // The command line (help texts, tests), the client library and the
    // end-to-end tests.
    files(&crate_dir.join("src"), &mut paths);
    files(&crate_dir.join("../src"), &mut paths);
    files(&crate_dir.join("../../tests/integration"), &mut paths);
    paths.push(crate_dir.join("../../deploy/inventory.example.toml"));
    let mut offenders = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).expect("readable source");
        for (line, word) in private_addresses(&text) {
            offenders.push(format!("{}:{line}: {word}", path.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "use 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 or 2001:db8::/32 instead:\n{}",
        offenders.join("\n")
    );
}
