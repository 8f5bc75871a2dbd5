//! Entry points for the fuzz targets in `fuzz/` (`cargo xtask fuzz`), and
//! for the test that replays their committed corpora on every `cargo
//! test`. Not part of the library's API.

use crate::fleet::inventory::Inventory;

/// An inventory file, and the same bytes as a `--hosts` list and as a
/// one-address-per-line file. Beyond not panicking, every address an
/// inventory accepts must read back as itself: the canonical spelling is
/// what deduplicates hosts and what the client connects to.
pub fn inventory(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = [
        Inventory::parse(text, "fuzz.toml"),
        Inventory::from_list(text),
        Inventory::from_lines(text, "fuzz.txt"),
    ];
    for inventory in parsed.into_iter().flatten() {
        for host in &inventory.hosts {
            let again = Inventory::from_lines(&host.address, "canonical");
            let again: Vec<&str> = match &again {
                Ok(i) => i.hosts.iter().map(|h| h.address.as_str()).collect(),
                Err(e) => panic!(
                    "{:?} was accepted but does not read back: {e}",
                    host.address
                ),
            };
            assert_eq!(again, [host.address.as_str()], "{:?}", host.address);
        }
        let labels = [("role".to_owned(), "web".to_owned())];
        let _ = inventory.select(&labels, &["db".to_owned()]);
        let mut merged = inventory.clone();
        merged.extend(inventory);
    }
}
