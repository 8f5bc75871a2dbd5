//! Client profiles: `$XDG_CONFIG_HOME/hostscope/config.toml` (else
//! `~/.config/hostscope/config.toml`) names the certificates, the inventory
//! or the host to use by default, and named contexts (`--context prod`)
//! that override those defaults. Flags and HOSTSCOPE_* variables override
//! both: the file only fills in what the command line left unsaid.
//!
//! ```toml
//! ca = "pki/ca.pem"              # relative to this file's directory
//! cert = "pki/alice.pem"
//! key = "pki/alice-key.pem"
//! context = "staging"            # the context used without --context
//!
//! [contexts.prod]
//! inventory = "fleet-prod.toml"
//!
//! [contexts.staging]
//! host = "web1.example.net"
//! ```

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use hostscope_client::fleet::inventory::line_of;
use serde::Deserialize;

/// What one level of the file (the top or a context) names.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The fleet CA certificate.
    pub ca: Option<PathBuf>,
    /// This client's certificate.
    pub cert: Option<PathBuf>,
    /// This client's key.
    pub key: Option<PathBuf>,
    /// The inventory to ask when no target is given.
    pub inventory: Option<PathBuf>,
    /// The agent to ask when no target is given.
    pub host: Option<String>,
}

/// The file itself. The top level spells out the keys of [`Settings`]
/// rather than flattening it in: serde's `flatten` buffers the whole table,
/// so an unknown key would be reported at the table's start (line 1) and
/// without the list of keys the file may hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    inventory: Option<PathBuf>,
    host: Option<String>,
    context: Option<String>,
    #[serde(default)]
    contexts: BTreeMap<String, Settings>,
}

impl File {
    /// The top level's settings, under every context.
    fn defaults(&self) -> Settings {
        Settings {
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            inventory: self.inventory.clone(),
            host: self.host.clone(),
        }
    }
}

/// A loaded profile file.
#[derive(Debug, Default)]
pub struct Profile {
    /// Where it was read from (or would have been), for errors.
    path: PathBuf,
    /// Whether there was a file at `path`.
    found: bool,
    file: File,
    /// The home directory, for `~/` in the file's paths.
    home: Option<PathBuf>,
}

/// Where the profile file lives: `$XDG_CONFIG_HOME/hostscope/config.toml`,
/// else `$HOME/.config/hostscope/config.toml`; `None` without either. Read
/// from this process's environment: only [`crate::Env::from_process`]
/// calls it.
pub fn default_path() -> Option<PathBuf> {
    let non_empty = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
    let base = non_empty("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(base.join("hostscope").join("config.toml"))
}

impl Profile {
    /// Reads the profile at `path`; a missing file is an empty profile.
    /// Errors say `FILE:LINE: what is wrong`.
    pub fn load(path: &Path) -> anyhow::Result<Profile> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Profile {
                    path: path.to_owned(),
                    ..Profile::default()
                });
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        Profile::parse(&text, path)
    }

    /// Parses profile text read from `path`.
    pub fn parse(text: &str, path: &Path) -> anyhow::Result<Profile> {
        let file: File = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{}:{}: {}",
                path.display(),
                line_of(text, e.span().map_or(0, |s| s.start)),
                e.message()
            )
        })?;
        Ok(Profile {
            path: path.to_owned(),
            found: true,
            file,
            home: None,
        })
    }

    /// This profile, with `~/` in its paths taken from `home`.
    pub fn with_home(self, home: Option<&Path>) -> Profile {
        Profile {
            home: home.map(Path::to_owned),
            ..self
        }
    }

    /// The settings for `context` (typed, else the file's `context`),
    /// layered over the file's defaults, paths made relative to the
    /// file's directory. Naming a context the file does not have is an
    /// error that lists those it has.
    pub fn settings(&self, context: Option<&str>) -> anyhow::Result<Settings> {
        let mut settings = self.file.defaults();
        if let Some(name) = context.or(self.file.context.as_deref()) {
            let Some(chosen) = self.file.contexts.get(name) else {
                let known: Vec<&str> = self.file.contexts.keys().map(String::as_str).collect();
                let known = match known.is_empty() {
                    true => "it has none".to_owned(),
                    false => format!("it has {}", known.join(", ")),
                };
                if !self.found {
                    let path = match self.path.as_os_str().is_empty() {
                        true => "~/.config/hostscope/config.toml".to_owned(),
                        false => self.path.display().to_string(),
                    };
                    bail!(
                        "no context {name:?}: there is no profile file; write one at {path} \
                         with a [contexts.{name}] table"
                    );
                }
                bail!(
                    "no context {name:?} in {}: {known}; add a [contexts.{name}] table or pick \
                     one of those",
                    self.path.display()
                );
            };
            let chosen = chosen.clone();
            settings.ca = chosen.ca.or(settings.ca);
            settings.cert = chosen.cert.or(settings.cert);
            settings.key = chosen.key.or(settings.key);
            settings.inventory = chosen.inventory.or(settings.inventory);
            settings.host = chosen.host.or(settings.host);
        }
        let dir = self.path.parent().unwrap_or(Path::new(""));
        for path in [
            &mut settings.ca,
            &mut settings.cert,
            &mut settings.key,
            &mut settings.inventory,
        ]
        .into_iter()
        .flatten()
        {
            *path = resolve(dir, path, self.home.as_deref());
        }
        Ok(settings)
    }
}

// === hostscope config ===

/// `hostscope config contexts` and `use-context`, on the profile at `path`.
pub fn run_config(
    command: crate::args::ConfigCommand,
    path: &Path,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    use crate::args::ConfigCommand;
    let profile = Profile::load(path)?;
    match command {
        ConfigCommand::Contexts => {
            if profile.file.contexts.is_empty() {
                writeln!(
                    out,
                    "no contexts in {}: add a [contexts.NAME] table",
                    path.display()
                )?;
            }
            for (name, settings) in &profile.file.contexts {
                let current = profile.file.context.as_deref() == Some(name.as_str());
                let target = match (&settings.inventory, &settings.host) {
                    (Some(inventory), _) => format!("inventory {}", inventory.display()),
                    (None, Some(host)) => format!("host {host}"),
                    (None, None) => String::new(),
                };
                let mark = if current { "*" } else { " " };
                writeln!(out, "{mark} {name}  {target}")?;
            }
        }
        ConfigCommand::UseContext { name } => {
            if !profile.file.contexts.contains_key(&name) {
                // The same error, listing the contexts there are.
                profile.settings(Some(&name))?;
            }
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let text = with_context_key(&text, &name);
            // What is written must load as it did, with the new context.
            Profile::parse(&text, path)?;
            let tmp = path.with_extension("toml.tmp");
            std::fs::write(&tmp, &text)
                .and_then(|()| std::fs::rename(&tmp, path))
                .with_context(|| format!("cannot write {}", path.display()))?;
            writeln!(out, "now using context {name:?} ({})", path.display())?;
        }
    }
    Ok(())
}

/// `text` with its top-level `context = "..."` line set to `name`: that
/// line replaced where there is one, else a new one added before the
/// first table. Comments and everything else stay as they were.
fn with_context_key(text: &str, name: &str) -> String {
    // A JSON string is a valid TOML basic string: the same quotes and escapes.
    let quoted = serde_json::Value::String(name.to_owned()).to_string();
    let line = format!("context = {quoted}");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let first_table = lines
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .unwrap_or(lines.len());
    let existing = lines[..first_table].iter().position(|l| {
        let l = l.trim_start();
        l.strip_prefix("context")
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    });
    match existing {
        Some(at) => lines[at] = line,
        None => {
            // Before the blank lines that lead up to the first table.
            let mut at = first_table;
            while at > 0 && lines[at - 1].trim().is_empty() {
                at -= 1;
            }
            lines.insert(at, line);
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// `~/x` from the `home` directory, a relative path from `dir`.
fn resolve(dir: &Path, path: &Path, home: Option<&Path>) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~")
        && let Some(home) = home
    {
        return home.join(rest);
    }
    dir.join(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# A profile.
ca = "pki/ca.pem"
cert = "pki/alice.pem"
key = "/etc/hostscope/alice-key.pem"
context = "staging"

[contexts.prod]
inventory = "fleet-prod.toml"
cert = "pki/alice-prod.pem"

[contexts.staging]
host = "web1.example.net"
"#;

    fn profile() -> Profile {
        Profile::parse(FILE, Path::new("/home/alice/.config/hostscope/config.toml"))
            .expect("a valid profile")
    }

    #[test]
    fn a_context_overrides_the_defaults_and_paths_are_the_files() {
        let prod = profile().settings(Some("prod")).expect("prod");
        let dir = Path::new("/home/alice/.config/hostscope");
        assert_eq!(prod.ca, Some(dir.join("pki/ca.pem")));
        assert_eq!(prod.cert, Some(dir.join("pki/alice-prod.pem")));
        assert_eq!(
            prod.key,
            Some(PathBuf::from("/etc/hostscope/alice-key.pem"))
        );
        assert_eq!(prod.inventory, Some(dir.join("fleet-prod.toml")));
        assert_eq!(prod.host, None);
        // Without --context, the file's own choice.
        let staging = profile().settings(None).expect("staging");
        assert_eq!(staging.host.as_deref(), Some("web1.example.net"));
        assert_eq!(staging.cert, Some(dir.join("pki/alice.pem")));
    }

    #[test]
    fn mistakes_name_the_file_and_line() {
        let path = Path::new("config.toml");
        let e = Profile::parse("ca = \"a\"\n\n[contexts.prod]\ncertt = \"x\"\n", path)
            .expect_err("unknown key");
        assert!(e.to_string().starts_with("config.toml:4: "), "{e}");
        assert!(e.to_string().contains("certt"), "{e}");
        let e = profile().settings(Some("qa")).expect_err("no such context");
        assert_eq!(
            e.to_string(),
            "no context \"qa\" in /home/alice/.config/hostscope/config.toml: it has prod, \
             staging; add a [contexts.qa] table or pick one of those"
        );
        let e = Profile::parse("ca = 3\n", path).expect_err("not a path");
        assert!(e.to_string().starts_with("config.toml:1: "), "{e}");
    }

    #[test]
    fn an_unknown_key_is_named_at_its_line_with_the_valid_keys_at_any_level() {
        let path = Path::new("config.toml");
        let top = Profile::parse(
            "# A profile.\nca = \"a\"\ncert = \"b\"\ncontxt = \"prod\"\n",
            path,
        )
        .expect_err("unknown key at the top");
        let top = top.to_string();
        assert!(top.starts_with("config.toml:4: "), "{top}");
        assert!(top.contains("contxt"), "{top}");
        for key in ["`ca`", "`host`", "`context`", "`contexts`"] {
            assert!(top.contains(key), "{key} missing from: {top}");
        }
        let inner = Profile::parse("[contexts.x]\nca = \"a\"\n\nhots = \"b\"\n", path)
            .expect_err("unknown key in a context")
            .to_string();
        assert!(inner.starts_with("config.toml:4: "), "{inner}");
        for key in ["`ca`", "`host`", "`inventory`"] {
            assert!(inner.contains(key), "{key} missing from: {inner}");
        }
    }

    #[test]
    fn use_context_sets_the_context_key_and_keeps_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, FILE).expect("write");
        let run = |command| {
            let mut out = Vec::new();
            run_config(command, &path, &mut out).map(|()| String::from_utf8(out).expect("utf-8"))
        };
        use crate::args::ConfigCommand;
        let listed = run(ConfigCommand::Contexts).expect("contexts");
        assert_eq!(
            listed,
            "  prod  inventory fleet-prod.toml\n* staging  host web1.example.net\n"
        );
        run(ConfigCommand::UseContext {
            name: "prod".to_owned(),
        })
        .expect("use prod");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            FILE.replace("context = \"staging\"", "context = \"prod\"")
        );
        let e = run(ConfigCommand::UseContext {
            name: "qa".to_owned(),
        })
        .expect_err("no such context");
        assert!(e.to_string().contains("it has prod, staging"), "{e}");
        // A file without the key gets one before its first table.
        let bare = "ca = \"ca.pem\"\n\n[contexts.prod]\nhost = \"web1\"\n";
        assert_eq!(
            with_context_key(bare, "prod"),
            "ca = \"ca.pem\"\ncontext = \"prod\"\n\n[contexts.prod]\nhost = \"web1\"\n"
        );
    }

    #[test]
    fn no_file_is_an_empty_profile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let profile = Profile::load(&dir.path().join("config.toml")).expect("empty");
        assert_eq!(
            profile.settings(None).expect("defaults"),
            Settings::default()
        );
        assert!(profile.settings(Some("prod")).is_err());
    }
}
