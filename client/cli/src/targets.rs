//! The second stage for targets: `--host`, `--hosts`, `--inventory`,
//! `--select` and `--group` resolved into the hosts to ask, and the fleet
//! flags into [`FleetOptions`].

use std::{collections::BTreeMap, io::Read, path::Path};

use anyhow::{Context, bail};

use super::args::{FleetFlags, Targets};
use hostscope_client::fleet::{FleetOptions, HostSpec, Inventory};

/// Where agents are asked when no target is given.
pub const DEFAULT_HOST: &str = "127.0.0.1:7443";

/// How `-` and errors name standard input.
const STDIN: &str = "<stdin>";

impl FleetFlags {
    /// The fleet options these flags ask for.
    pub fn options(&self) -> FleetOptions {
        FleetOptions {
            concurrency: self.concurrency,
            timeout: self.timeout,
            retries: self.retries,
            ..FleetOptions::default()
        }
    }
}

impl Targets {
    /// The targets typed before the subcommand's name joined with those
    /// typed after it.
    pub fn join(&self, after: Option<&Targets>) -> anyhow::Result<Targets> {
        let Some(after) = after else {
            return Ok(self.clone());
        };
        let inventory = match (&self.inventory, &after.inventory) {
            (Some(a), Some(b)) if a != b => bail!(
                "--inventory is given twice ({} and {}): give one inventory file",
                a.display(),
                b.display()
            ),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        let joined = |a: &[String], b: &[String]| [a, b].concat();
        Ok(Targets {
            hosts: joined(&self.hosts, &after.hosts),
            inventory,
            select: [self.select.as_slice(), after.select.as_slice()].concat(),
            groups: joined(&self.groups, &after.groups),
        })
    }
}

/// The hosts to ask, each once, in the order named: the inventory's
/// (selected) hosts, then `--host`, then the `--hosts` lists. `host_typed`
/// says whether `--host` was typed rather than taken from HOSTSCOPE_HOST:
/// a typed one joins a fleet, while the environment's only stands in when
/// no other target is given. `stdin` serves the one `-`.
pub fn resolve(
    targets: &Targets,
    host: Option<&str>,
    host_typed: bool,
    stdin: &mut dyn Read,
) -> anyhow::Result<Vec<HostSpec>> {
    let selecting = !targets.select.is_empty() || !targets.groups.is_empty();
    if selecting && targets.inventory.is_none() {
        bail!(
            "--select and --group choose among an inventory's hosts: add --inventory FILE \
             (hosts from --host and --hosts have no labels or groups)"
        );
    }
    let stdin_uses = targets.hosts.iter().filter(|h| *h == "-").count()
        + usize::from(targets.inventory.as_deref() == Some(Path::new("-")));
    if stdin_uses > 1 {
        bail!("only one of --hosts and --inventory can read stdin (-)");
    }
    let mut stdin = Some(stdin);

    if targets.hosts.is_empty() && targets.inventory.is_none() {
        let address = host.unwrap_or(DEFAULT_HOST).trim();
        // Checked now, so that a mistyped address is a usage error; the
        // address is kept as typed (with any https://) for the connection.
        Inventory::from_lines(address, "--host")?;
        return Ok(vec![bare(address)]);
    }

    let mut inventory = Inventory::default();
    if let Some(path) = &targets.inventory {
        let file = if path == Path::new("-") {
            Inventory::parse(&read_stdin(&mut stdin, "an inventory")?, STDIN)?
        } else {
            Inventory::load(path)?
        };
        let origin = if path == Path::new("-") {
            STDIN.to_owned()
        } else {
            path.display().to_string()
        };
        inventory.hosts = file.select(&targets.select, &targets.groups);
        if inventory.hosts.is_empty() && selecting {
            bail!(
                "no host in {origin} matches {}",
                selection(&targets.select, &targets.groups)
            );
        }
    }
    if let (true, Some(host)) = (host_typed, host) {
        inventory.extend(Inventory::from_lines(host, "--host")?);
    }
    for list in &targets.hosts {
        let listed = if list == "-" {
            Inventory::from_lines(&read_stdin(&mut stdin, "host lines")?, STDIN)?
        } else {
            Inventory::from_list(list)?
        };
        inventory.extend(listed);
    }
    if inventory.hosts.is_empty() {
        bail!("no host to ask: the inventory and host lists are empty");
    }
    Ok(inventory.hosts)
}

/// Refuses an address whose scheme contradicts the TLS settings before any
/// host is dialled: `http://` with certificates, or `https://` with
/// `--plaintext`. Such a mistake is the user's, not a host's failure.
pub fn check_schemes(hosts: &[HostSpec], tls: bool) -> anyhow::Result<()> {
    for host in hosts {
        let address = host.address.trim();
        if tls && address.starts_with("http://") {
            bail!(
                "{address} says http:// (plaintext), but TLS certificates are set (--ca, --cert \
                 and --key, or HOSTSCOPE_CA, HOSTSCOPE_CERT and HOSTSCOPE_KEY): drop http:// to \
                 use TLS, or pass --plaintext for an agent started with --insecure-plaintext"
            );
        }
        if !tls && address.starts_with("https://") {
            bail!(
                "{address} says https://, but --plaintext turns TLS off: drop --plaintext and \
                 give --ca, --cert and --key, or drop https://"
            );
        }
    }
    Ok(())
}

/// A host known only by its address.
fn bare(address: &str) -> HostSpec {
    HostSpec {
        name: address.to_owned(),
        address: address.to_owned(),
        server_name: None,
        labels: BTreeMap::new(),
        groups: Vec::new(),
    }
}

/// Reads all of stdin, which only one flag may do.
fn read_stdin(stdin: &mut Option<&mut dyn Read>, what: &str) -> anyhow::Result<String> {
    let Some(reader) = stdin.take() else {
        bail!("stdin (-) can be read only once");
    };
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .with_context(|| format!("reading {what} from stdin"))?;
    Ok(text)
}

/// `--select role=web --group canary`, as the user typed it.
fn selection(labels: &[(String, String)], groups: &[String]) -> String {
    let labels = labels.iter().map(|(k, v)| format!("--select {k}={v}"));
    let groups = groups.iter().map(|g| format!("--group {g}"));
    labels.chain(groups).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use clap::Parser;

    use super::*;
    use crate::args::Cli;

    /// An inventory written with inline tables, the terse spelling of
    /// deploy/inventory.example.toml's `[[hosts]]` sections.
    const FLEET: &str = r#"hosts = [
  { name = "web1", address = "192.0.2.11", labels = { role = "web", dc = "fra1" }, groups = ["canary"] },
  { name = "web2", address = "192.0.2.12", labels = { role = "web", dc = "ams1" } },
  { name = "db1", address = "192.0.2.21:7444", labels = { role = "db", dc = "fra1" } },
]
"#;

    /// Resolves the targets of `args` (after "hostscope"), with `input` on
    /// stdin; returns the hosts' names and addresses.
    fn hosts(args: &[&str], input: &str) -> anyhow::Result<Vec<(String, String)>> {
        let mut all = vec!["hostscope"];
        all.extend(args);
        all.push("host");
        let cli = Cli::try_parse_from(all)?;
        let typed = args.contains(&"--host");
        let targets = cli.targets.join(cli.command.targets())?;
        let host = cli.global.host.as_deref();
        let resolved = resolve(&targets, host, typed, &mut input.as_bytes())?;
        Ok(resolved.into_iter().map(|h| (h.name, h.address)).collect())
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, a)| ((*n).to_owned(), (*a).to_owned()))
            .collect()
    }

    fn fleet_file() -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(FLEET.as_bytes()).expect("write");
        file
    }

    #[test]
    fn no_target_is_the_local_agent_and_host_is_kept_as_typed() {
        let targets = Targets::default();
        let resolved = resolve(&targets, None, false, &mut &b""[..]).expect("default");
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].address, DEFAULT_HOST);

        assert_eq!(
            hosts(&["--host", "https://web1"], "").expect("host"),
            pairs(&[("https://web1", "https://web1")])
        );
        let e = hosts(&["--host", "web1:http"], "").expect_err("bad port");
        assert!(e.to_string().starts_with("--host:1:"), "{e}");
    }

    #[test]
    fn lists_inventories_and_stdin_join_without_repeats() {
        let file = fleet_file();
        let path = file.path().to_str().expect("utf-8 path");
        let got = hosts(
            &[
                "--inventory",
                path,
                "--select",
                "dc=fra1",
                "--hosts",
                "192.0.2.11:7443,c",
                "--hosts",
                "-",
                "--host",
                "d",
            ],
            "# more\nc:7443\ne:9000\n",
        )
        .expect("targets");
        assert_eq!(
            got,
            pairs(&[
                ("web1", "192.0.2.11:7443"),
                ("db1", "192.0.2.21:7444"),
                ("d:7443", "d:7443"),
                ("c:7443", "c:7443"),
                ("e:9000", "e:9000"),
            ])
        );
        let got = hosts(&["--inventory", "-", "--group", "canary"], FLEET).expect("stdin");
        assert_eq!(got, pairs(&[("web1", "192.0.2.11:7443")]));
        // The environment's HOSTSCOPE_HOST does not join a fleet.
        let mut targets = Targets::default();
        targets.hosts.push("a".to_owned());
        let resolved = resolve(&targets, Some("env"), false, &mut &b""[..]).expect("list");
        assert_eq!(resolved.len(), 1);
        assert_eq!(got, pairs(&[("web1", "192.0.2.11:7443")]));
        let got = hosts(
            &[
                "--inventory",
                path,
                "--select",
                "role=web",
                "--select",
                "dc=ams1",
            ],
            "",
        )
        .expect("two labels");
        assert_eq!(got, pairs(&[("web2", "192.0.2.12:7443")]));
    }

    #[test]
    fn targets_before_and_after_the_subcommand_are_joined() {
        let cli = Cli::try_parse_from([
            "hostscope",
            "--hosts",
            "a",
            "--group",
            "web",
            "ps",
            "--hosts",
            "b",
            "--group",
            "db",
            "--select",
            "dc=fra1",
        ])
        .expect("args");
        let joined = cli.targets.join(cli.command.targets()).expect("join");
        assert_eq!(joined.hosts, ["a", "b"]);
        assert_eq!(joined.groups, ["web", "db"]);
        assert_eq!(joined.select.len(), 1);
        let cli = Cli::try_parse_from([
            "hostscope",
            "--inventory",
            "x.toml",
            "host",
            "--inventory",
            "y.toml",
        ])
        .expect("args");
        let e = cli
            .targets
            .join(cli.command.targets())
            .expect_err("two inventories");
        assert!(e.to_string().contains("--inventory is given twice"), "{e}");
    }

    #[test]
    fn mistakes_are_usage_errors_that_say_what_to_do() {
        let file = fleet_file();
        let path = file.path().to_str().expect("utf-8 path");
        let error = |args: &[&str], input: &str| {
            format!("{:#}", hosts(args, input).expect_err("a mistake"))
        };
        assert!(error(&["--select", "role=web"], "").contains("add --inventory FILE"));
        assert!(error(&["--hosts", "-", "--inventory", "-"], "").contains("only one of"));
        let e = error(&["--inventory", path, "--group", "nope"], "");
        assert!(
            e.contains(&format!("no host in {path} matches --group nope")),
            "{e}"
        );
        let e = error(&["--hosts", "a,b:x"], "");
        assert!(e.starts_with("--hosts:1:") && e.contains("port"), "{e}");
        let e = error(&["--hosts", "-"], "a\n\nb:99999\n");
        assert!(e.starts_with("<stdin>:3:"), "{e}");
        let e = error(&["--inventory", "-"], "[[hosts]]\nadress = \"a\"\n");
        assert!(e.starts_with("<stdin>:"), "{e}");
        let e = error(&["--inventory", "/nonexistent/fleet.toml"], "");
        assert!(
            e.starts_with("cannot read the inventory /nonexistent/fleet.toml: No such file"),
            "{e}"
        );
        assert!(error(&["--hosts", " , "], "").contains("no host to ask"));
    }
}
