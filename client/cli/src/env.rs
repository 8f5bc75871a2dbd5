//! What `hostscope` takes from its environment besides its arguments: the
//! HOSTSCOPE_* variables, where the profile file is, and the home directory
//! for `~/` in it. The binary reads them from the process once, in
//! [`crate::main`] ([`Env::from_process`]); everyone else, the tests first,
//! passes an [`Env`] of their own to [`crate::run_with`], so that a run
//! answers for the command line and the environment written down, whatever
//! the process's own holds (ripgrep likewise resolves its configuration
//! from an explicit source rather than deep inside the parser).
//!
//! clap would read the variables named by `env = "..."` in [`crate::args`]
//! from the process when the command is built; [`Env::bind`] takes that
//! reading out again, keeps the `[env: NAME=value]` of the help with the
//! value from the [`Env`], and [`Env::fill`] fills in, after parsing, what
//! the command line left unsaid.

use std::{
    collections::BTreeMap,
    ffi::{OsStr, OsString},
    path::{Path, PathBuf},
};

use anyhow::Context;

use crate::args::Global;

/// The environment of one run of the command line: see the module's docs.
/// [`Env::default`] is an empty one: no variables, no profile file, no
/// home directory.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// The variables of [`Env::VARS`] that are set, and not empty.
    vars: BTreeMap<&'static str, OsString>,
    /// The profile file (`$XDG_CONFIG_HOME/hostscope/config.toml`), whether
    /// or not it exists; `None`: there is none.
    profile: Option<PathBuf>,
    /// The home directory, for `~/` in the profile's paths.
    home: Option<PathBuf>,
}

impl Env {
    /// The environment variables `hostscope` reads, each standing in for
    /// the flag of the same name (`HOSTSCOPE_CA` for `--ca`).
    pub const VARS: [&str; 5] = [
        "HOSTSCOPE_HOST",
        "HOSTSCOPE_CA",
        "HOSTSCOPE_CERT",
        "HOSTSCOPE_KEY",
        "HOSTSCOPE_CONTEXT",
    ];

    /// Secrets `hostscope` reads from the environment and never shows (no
    /// flag stands for them, so no help prints them): the PostgreSQL
    /// password of the inventory store.
    pub const SECRETS: [&str; 1] = ["HOSTSCOPE_DB_PASSWORD"];

    /// This process's environment: the variables of [`Env::VARS`], the profile
    /// file under `$XDG_CONFIG_HOME` (else `$HOME/.config`), and `$HOME`.
    /// For the binary's `main`; a library caller passes its own.
    pub fn from_process() -> Env {
        let mut env = Env {
            profile: crate::profile::default_path(),
            home: std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(PathBuf::from),
            ..Env::default()
        };
        for name in Env::VARS.into_iter().chain(Env::SECRETS) {
            if let Some(value) = std::env::var_os(name) {
                env = env.var(name, value);
            }
        }
        env
    }

    /// This environment with the variable `name`, one of [`Env::VARS`], set to
    /// `value`; an empty value unsets it, as an empty variable means none.
    ///
    /// # Panics
    ///
    /// If `name` is not one of [`Env::VARS`] or [`Env::SECRETS`]:
    /// `hostscope` would never read it.
    pub fn var(mut self, name: &str, value: impl Into<OsString>) -> Env {
        let mut known = Env::VARS.into_iter().chain(Env::SECRETS);
        let Some(name) = known.find(|known| *known == name) else {
            panic!(
                "hostscope reads no variable {name}; it reads {:?}",
                Env::VARS
            );
        };
        let value = value.into();
        match value.is_empty() {
            true => self.vars.remove(name),
            false => self.vars.insert(name, value),
        };
        self
    }

    /// This environment with its profile file at `path` (which need not
    /// exist: then the profile is empty).
    pub fn profile(mut self, path: impl Into<PathBuf>) -> Env {
        self.profile = Some(path.into());
        self
    }

    /// This environment with `home` as the home directory.
    pub fn home(mut self, home: impl Into<PathBuf>) -> Env {
        self.home = Some(home.into());
        self
    }

    /// The profile file, if there is one to look for.
    pub(crate) fn profile_path(&self) -> Option<&Path> {
        self.profile.as_deref()
    }

    /// The home directory, if known.
    pub(crate) fn home_dir(&self) -> Option<&Path> {
        self.home.as_deref()
    }

    /// The value of `name`, if set.
    pub(crate) fn get(&self, name: &str) -> Option<&OsStr> {
        self.vars.get(name).map(OsString::as_os_str)
    }

    /// `cmd`, every argument of it and of its subcommands, with clap's
    /// own reading of the process's environment taken out: an argument
    /// with `env = "NAME"` keeps `[env: NAME=value]` in its help, the
    /// value from this environment, and [`Env::fill`] supplies the value.
    pub(crate) fn bind(&self, cmd: clap::Command) -> clap::Command {
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|sub| sub.get_name().to_owned())
            .collect();
        let mut cmd = cmd.mut_args(|arg| self.bind_arg(arg));
        for name in names {
            cmd = cmd.mut_subcommand(name, |sub| self.bind(sub));
        }
        cmd
    }

    fn bind_arg(&self, arg: clap::Arg) -> clap::Arg {
        let Some(name) = arg
            .get_env()
            .map(|name| name.to_string_lossy().into_owned())
        else {
            return arg;
        };
        let value = self.get(&name).map(OsStr::to_string_lossy);
        let shown = format!("[env: {name}={}]", value.unwrap_or_default());
        let help = match arg.get_help() {
            Some(help) => format!("{help} {shown}"),
            None => shown,
        };
        arg.env(None).help(help)
    }

    /// Fills in from this environment what the command line left unsaid:
    /// `--host`, `--ca`, `--cert`, `--key` and `--context`.
    pub(crate) fn fill(&self, global: &mut Global) -> anyhow::Result<()> {
        let text = |name: &str| -> anyhow::Result<Option<String>> {
            self.get(name)
                .map(|value| {
                    value
                        .to_str()
                        .map(str::to_owned)
                        .with_context(|| format!("{name} is not valid UTF-8: {value:?}"))
                })
                .transpose()
        };
        let path = |name: &str| self.get(name).map(PathBuf::from);
        global.host = match global.host.take() {
            Some(host) => Some(host),
            None => text("HOSTSCOPE_HOST")?,
        };
        global.ca = global.ca.take().or_else(|| path("HOSTSCOPE_CA"));
        global.cert = global.cert.take().or_else(|| path("HOSTSCOPE_CERT"));
        global.key = global.key.take().or_else(|| path("HOSTSCOPE_KEY"));
        global.context = match global.context.take() {
            Some(context) => Some(context),
            None => text("HOSTSCOPE_CONTEXT")?,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;
    use crate::args::Cli;

    /// `args` parsed by the command bound to `env`.
    fn parse<const N: usize>(env: &Env, args: [&str; N]) -> Cli {
        let matches = env
            .bind(Cli::command())
            .try_get_matches_from(args)
            .expect("valid arguments");
        Cli::from_arg_matches(&matches).expect("valid arguments")
    }

    /// Every variable clap was told of is one [`Env`] knows and fills in:
    /// a new `env = "..."` in args.rs must be added here too, or it would
    /// be read by nobody.
    #[test]
    fn the_variables_of_the_flags_are_those_env_reads() {
        let cli = Cli::command();
        let mut named: Vec<String> = cli
            .get_arguments()
            .filter_map(|arg| arg.get_env())
            .map(|name| name.to_string_lossy().into_owned())
            .collect();
        named.sort();
        let mut known = Env::VARS.map(str::to_owned).to_vec();
        known.sort();
        assert_eq!(named, known);
    }

    #[test]
    fn a_bound_command_reads_no_variable_and_shows_the_env_s_values() {
        let env = Env::default().var("HOSTSCOPE_CA", "/etc/ca.pem");
        let mut cmd = env.bind(Cli::command());
        cmd.build();
        let all = std::iter::once(&cmd).chain(cmd.get_subcommands());
        for cmd in all {
            for arg in cmd.get_arguments() {
                assert_eq!(arg.get_env(), None, "{}: {}", cmd.get_name(), arg.get_id());
            }
        }
        let help = cmd.render_help().to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(help.contains("[env: HOSTSCOPE_CA=/etc/ca.pem]"), "{help}");
        assert!(help.contains("[env: HOSTSCOPE_HOST=]"), "{help}");
    }

    #[test]
    fn the_command_line_wins_and_empty_variables_are_unset() {
        let env = Env::default()
            .var("HOSTSCOPE_HOST", "web1")
            .var("HOSTSCOPE_CA", "env-ca.pem")
            .var("HOSTSCOPE_KEY", "")
            .var("HOSTSCOPE_CONTEXT", "prod");
        let cli = parse(&env, ["hostscope", "--ca", "typed-ca.pem", "host"]);
        let mut global = cli.global;
        env.fill(&mut global).expect("valid variables");
        assert_eq!(global.host.as_deref(), Some("web1"));
        assert_eq!(global.ca, Some(PathBuf::from("typed-ca.pem")));
        assert_eq!((global.cert, global.key), (None, None));
        assert_eq!(global.context.as_deref(), Some("prod"));
    }

    #[test]
    #[cfg(unix)]
    fn a_variable_that_is_not_utf8_is_named() {
        use std::os::unix::ffi::OsStringExt;
        let env = Env::default().var("HOSTSCOPE_HOST", OsString::from_vec(vec![0xff]));
        let cli = parse(&env, ["hostscope", "host"]);
        let mut global = cli.global;
        let e = env.fill(&mut global).expect_err("not UTF-8");
        assert!(
            e.to_string().contains("HOSTSCOPE_HOST is not valid UTF-8"),
            "{e}"
        );
    }
}
