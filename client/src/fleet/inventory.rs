//! Which hosts to ask: an inventory file, a `--hosts` list, or host lines.
//!
//! The inventory is TOML (see `deploy/inventory.example.toml`):
//!
//! ```toml
//! [[hosts]]
//! name = "web1"                      # optional; defaults to the address
//! address = "192.0.2.11:7443"         # host:port; the port defaults to 7443
//! server_name = "web1.example.net"   # optional; the name in its certificate
//! labels = { role = "web", dc = "fra1" }
//! groups = ["web"]
//!
//! [groups]                           # optional: more group members, by name
//! canary = ["web1", "db2"]
//! ```
//!
//! Every error names the file, the line and what is wrong. Hosts are
//! identified by address: a host listed twice is asked once.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    ops::Range,
    path::Path,
};

use serde::Deserialize;

use crate::client::Target;

/// One host to ask.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HostSpec {
    /// How results and errors name the host; defaults to the address.
    pub name: String,
    /// `host:port`, the port defaulted to 7443.
    pub address: String,
    /// The name the agent's certificate carries, when it is not the
    /// address's host.
    pub server_name: Option<String>,
    /// Free-form labels, for `--select KEY=VALUE`.
    pub labels: BTreeMap<String, String>,
    /// Groups the host belongs to, for `--group NAME`.
    pub groups: Vec<String>,
}

impl HostSpec {
    /// A host known only by its address (`--hosts`, stdin).
    fn bare(address: String) -> HostSpec {
        HostSpec {
            name: address.clone(),
            address,
            server_name: None,
            labels: BTreeMap::new(),
            groups: Vec::new(),
        }
    }
}

/// Why an inventory was refused.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The text is malformed or contradicts itself.
    #[error("{origin}:{line}: {message}")]
    Invalid {
        /// The file (or `<stdin>`, `--hosts`).
        origin: String,
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read. The cause is this error's source, not
    /// part of its text, so that a chain printed whole says it once.
    #[error("cannot read the inventory {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The hosts to ask, each once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    /// In the order they were listed.
    pub hosts: Vec<HostSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    hosts: Vec<toml::Spanned<Entry>>,
    #[serde(default)]
    groups: BTreeMap<String, toml::Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: Option<String>,
    /// Spanned, so that a bad address is reported on its own line rather
    /// than on its table's header.
    address: toml::Spanned<String>,
    server_name: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    groups: Vec<String>,
}

impl Inventory {
    /// Reads a TOML inventory file.
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Inventory::parse(&text, &path.display().to_string())
    }

    /// Parses TOML inventory text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Inventory, InventoryError> {
        let at = |span: Option<Range<usize>>, message: String| InventoryError::Invalid {
            origin: origin.to_owned(),
            line: span.map_or(1, |s| line_of(text, s.start)),
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| at(e.span(), e.message().to_owned()))?;

        let mut inventory = Inventory::default();
        let mut addresses = HashSet::new();
        // Each name given, with the index of its host unless that entry
        // repeated an address.
        let mut names: HashMap<String, Option<usize>> = HashMap::new();
        for spanned in file.hosts {
            let span = spanned.span();
            let entry = spanned.into_inner();
            let address = canonical(entry.address.get_ref())
                .map_err(|m| at(Some(entry.address.span()), m))?;
            let name = entry.name.unwrap_or_else(|| address.clone());
            if name.trim().is_empty() {
                return Err(at(Some(span), "a host's name must not be empty".into()));
            }
            if names.contains_key(&name) {
                return Err(at(
                    Some(span),
                    format!("the name {name:?} is given to two hosts"),
                ));
            }
            // A host listed again is asked once, as its first entry: the
            // later entry's name belongs to no host.
            let index = addresses.insert(address.clone()).then(|| {
                inventory.hosts.push(HostSpec {
                    name: name.clone(),
                    address,
                    server_name: entry.server_name,
                    labels: entry.labels,
                    groups: entry.groups,
                });
                inventory.hosts.len() - 1
            });
            names.insert(name, index);
        }
        for (group, members) in file.groups {
            let span = members.span();
            for member in members.into_inner() {
                let host = names
                    .get(&member)
                    .copied()
                    .flatten()
                    .and_then(|i| inventory.hosts.get_mut(i))
                    .ok_or_else(|| {
                        at(
                            Some(span.clone()),
                            format!("group {group:?} names {member:?}, which is no host's name"),
                        )
                    })?;
                if !host.groups.contains(&group) {
                    host.groups.push(group.clone());
                }
            }
        }
        Ok(inventory)
    }

    /// Hosts from a comma-separated list: `a,b:7443,[::1]:9000`.
    pub fn from_list(list: &str) -> Result<Inventory, InventoryError> {
        Inventory::from_addresses(list.split(',').map(|item| (1, item)), "--hosts")
    }

    /// Hosts from text with one address per line; blank lines and `#`
    /// comments are skipped.
    pub fn from_lines(text: &str, origin: &str) -> Result<Inventory, InventoryError> {
        let lines = text.lines().enumerate().map(|(i, line)| {
            let line_text = line.split_once('#').map_or(line, |(before, _)| before);
            (i + 1, line_text)
        });
        Inventory::from_addresses(lines, origin)
    }

    fn from_addresses<'a>(
        items: impl Iterator<Item = (usize, &'a str)>,
        origin: &str,
    ) -> Result<Inventory, InventoryError> {
        let mut inventory = Inventory::default();
        let mut seen = HashSet::new();
        for (line, item) in items {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let address = canonical(item).map_err(|message| InventoryError::Invalid {
                origin: origin.to_owned(),
                line,
                message,
            })?;
            if seen.insert(address.clone()) {
                inventory.hosts.push(HostSpec::bare(address));
            }
        }
        Ok(inventory)
    }

    /// The hosts that carry every one of `labels` and belong to any of
    /// `groups`; an empty list sets no condition.
    pub fn select(&self, labels: &[(String, String)], groups: &[String]) -> Vec<HostSpec> {
        self.hosts
            .iter()
            .filter(|h| labels.iter().all(|(k, v)| h.labels.get(k) == Some(v)))
            .filter(|h| groups.is_empty() || h.groups.iter().any(|g| groups.contains(g)))
            .cloned()
            .collect()
    }

    /// Adds `other`'s hosts; those whose address is already here are
    /// dropped, so each host is asked once.
    pub fn extend(&mut self, other: Inventory) {
        let mut seen: HashSet<String> = self.hosts.iter().map(|h| h.address.clone()).collect();
        self.hosts.extend(
            other
                .hosts
                .into_iter()
                .filter(|h| seen.insert(h.address.clone())),
        );
    }
}

/// `host:port` in one spelling, so that `web1` and `web1:7443` are one host.
fn canonical(address: &str) -> Result<String, String> {
    Target::parse(address)
        .map(|t| t.authority())
        .map_err(|e| match e {
            // "endpoint "a:x": the port must be ...": here it is an address.
            crate::Error::InvalidArgument { message } => {
                message.replacen("endpoint ", "address ", 1)
            }
            other => other.to_string(),
        })
}

/// The 1-based line of byte `offset` in `text`, for `FILE:LINE` errors
/// about TOML files (the inventory, and the command line's profile).
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[hosts]]
name = "web1"
address = "192.0.2.11"
server_name = "web1.example.net"
labels = { role = "web", dc = "fra1" }
groups = ["web"]

[[hosts]]
name = "db1"
address = "192.0.2.21:7444"
labels = { role = "db", dc = "fra1" }

[[hosts]]
address = "[2001:db8::5]:7443"

[groups]
canary = ["web1", "db1"]
"#;

    #[test]
    fn parses_hosts_labels_and_groups() {
        let inv = Inventory::parse(SAMPLE, "fleet.toml").unwrap();
        assert_eq!(inv.hosts.len(), 3);
        let web1 = &inv.hosts[0];
        assert_eq!(web1.address, "192.0.2.11:7443");
        assert_eq!(web1.server_name.as_deref(), Some("web1.example.net"));
        assert_eq!(web1.groups, ["web", "canary"]);
        assert_eq!(inv.hosts[2].name, "[2001:db8::5]:7443");

        let fra_db = inv.select(
            &[("role".into(), "db".into()), ("dc".into(), "fra1".into())],
            &[],
        );
        assert_eq!(fra_db.len(), 1);
        assert_eq!(fra_db[0].name, "db1");
        let canary = inv.select(&[], &["canary".into()]);
        assert_eq!(canary.len(), 2);
        assert_eq!(inv.select(&[], &[]).len(), 3);
        assert!(
            inv.select(&[("role".into(), "cache".into())], &[])
                .is_empty()
        );
    }

    fn error(text: &str) -> String {
        Inventory::parse(text, "fleet.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_problem() {
        let e = error("[[hosts]]\nname = \"a\"\n");
        assert!(
            e.starts_with("fleet.toml:1:") && e.contains("address"),
            "{e}"
        );

        let e = error("[[hosts]]\naddress = \"a\"\n\n[[hosts]]\naddress = \"b:99999\"\n");
        assert!(e.starts_with("fleet.toml:5:") && e.contains("port"), "{e}");
        // The line of the address itself, not of its table's header.
        let e = error("[[hosts]]\nname = \"a\"\naddress = \"a:99999\"\n");
        assert_eq!(
            e,
            "fleet.toml:3: address \"a:99999\": the port must be a number from 1 to 65535"
        );

        let e = error("[[hosts]]\naddress = \"a\"\nadress = \"b\"\n");
        assert!(
            e.starts_with("fleet.toml:3:") && e.contains("adress"),
            "{e}"
        );

        let e = error(
            "[[hosts]]\nname = \"x\"\naddress = \"a\"\n[[hosts]]\nname = \"x\"\naddress = \"b\"\n",
        );
        assert!(
            e.starts_with("fleet.toml:4:") && e.contains("two hosts"),
            "{e}"
        );

        let e = error("[[hosts]]\naddress = \"a\"\n[groups]\nweb = [\"nope\"]\n");
        assert!(e.starts_with("fleet.toml:4:") && e.contains("nope"), "{e}");

        let e = error("hosts = 3\n");
        assert!(e.starts_with("fleet.toml:1:"), "{e}");
    }

    #[test]
    fn duplicate_addresses_are_asked_once() {
        let mut inv = Inventory::from_list("a, a:7443,b:9000,,").unwrap();
        assert_eq!(inv.hosts.len(), 2);
        inv.extend(
            Inventory::from_lines("# fleet\nb:9000\nc  # the new one\n\n", "<stdin>").unwrap(),
        );
        let addrs: Vec<&str> = inv.hosts.iter().map(|h| h.address.as_str()).collect();
        assert_eq!(addrs, ["a:7443", "b:9000", "c:7443"]);

        // In a file, the first entry of an address is the host; a group
        // naming a later entry of the same address names no host.
        let text = "[[hosts]]\nname = \"one\"\naddress = \"a\"\n\
                    [[hosts]]\nname = \"two\"\naddress = \"a:7443\"\n";
        let inv = Inventory::parse(text, "fleet.toml").unwrap();
        let names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["one"]);
        let grouped = format!("{text}[groups]\nweb = [\"one\"]\n");
        let inv = Inventory::parse(&grouped, "fleet.toml").unwrap();
        assert_eq!(inv.hosts[0].groups, ["web"]);
        let e = Inventory::parse(&format!("{text}[groups]\nweb = [\"two\"]\n"), "fleet.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("names \"two\", which is no host's name"), "{e}");
    }

    #[test]
    fn bad_host_lines_name_their_line() {
        let e = Inventory::from_lines("a\n\nb:x\n", "<stdin>")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("<stdin>:3:"), "{e}");
        let e = Inventory::from_list("a,[::1").unwrap_err().to_string();
        assert!(e.starts_with("--hosts:1:"), "{e}");
    }

    #[test]
    fn the_shipped_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/inventory.example.toml");
        let inv = Inventory::load(&path).unwrap();
        assert!(inv.hosts.len() >= 3);
    }
}
