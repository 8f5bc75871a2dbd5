//! The `hostscope` command line, as a library so that tests can run it
//! in-process: [`main`] for the binary, [`run_with`] for everyone else.
//! Only [`main`] reads the process's environment; [`run_with`] takes an
//! explicit [`Env`] (the HOSTSCOPE_* variables and the profile file).
//!
//! It resolves what the user typed into TLS settings and target hosts,
//! asks every host (one or a fleet), prints each host's results as they
//! arrive, and ends with a summary and an exit status: 0 when every host
//! answered, 2 when some failed, 1 on usage or local errors.

#![warn(missing_docs)]
#![deny(unsafe_code)]

mod args;
mod csv;
mod duration;
mod env;
mod fanout;
mod fields;
mod files;
mod format;
#[doc(hidden)]
pub mod fuzzing;
mod inventory;
mod output;
mod profile;
mod ps;
mod render;
mod show;
mod signal;
mod sockets;
mod store;
mod system;
mod table;
mod targets;
mod watch;
mod zombies;

use std::{
    ffi::OsString,
    io::{self, BufWriter, IsTerminal, Read, Write},
    path::Path,
    process::ExitCode,
};

use anyhow::{Context, bail};
use clap::{ArgMatches, CommandFactory, FromArgMatches, parser::ValueSource};

pub use self::env::Env;
use self::{
    args::{Cli, Command, Global, Output, PkiCommand},
    fanout::{EXIT_ERROR, EXIT_OK, Io, Status},
};
use hostscope_client::{
    TlsConfig,
    fleet::Fleet,
    pki::{self, CertRole},
};

/// The TLS file flags, by clap id, flag and environment variable.
const TLS_FLAGS: [(&str, &str, &str); 3] = [
    ("ca", "--ca", "HOSTSCOPE_CA"),
    ("cert", "--cert", "HOSTSCOPE_CERT"),
    ("key", "--key", "HOSTSCOPE_KEY"),
];

/// The `hostscope` binary: the process's arguments, environment
/// ([`Env::from_process`]), stdin, stdout and stderr, with a progress bar
/// when stderr is a terminal and tables cut to the terminal's width.
pub fn main() -> ExitCode {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut err = io::stderr();
    let terminals = Terminals {
        width: table::terminal_width(),
        progress: err.is_terminal(),
        ctrl_c: true,
    };
    let code = run_inner(
        std::env::args_os().collect(),
        &Env::from_process(),
        &mut io::stdin().lock(),
        &mut out,
        &mut err,
        terminals,
    );
    ExitCode::from(code)
}

/// Runs `hostscope` with `args` (the program name first, as in
/// `std::env::args_os`) in the environment `env`, never the process's
/// own, reading `-` targets from `stdin`, printing results
/// to `out` and the summary and errors to `err`; returns the exit code: 0
/// when every host answered, 2 when some failed, 1 on usage or local
/// errors. Help and version go to `out` and exit 0.
///
/// Builds its own Tokio runtime (multi-threaded for a fleet), so it must
/// not be called from within one (use `spawn_blocking`). Draws no progress bar and cuts
/// no table to a terminal's width: `out` and `err` are taken to be files.
pub fn run_with(
    args: Vec<OsString>,
    env: &Env,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let terminals = Terminals {
        width: None,
        progress: false,
        ctrl_c: false,
    };
    run_inner(args, env, stdin, out, err, terminals)
}

/// What kind of places stdout and stderr are.
#[derive(Debug, Clone, Copy)]
struct Terminals {
    /// stdout's width, when it is a terminal.
    width: Option<usize>,
    /// Whether stderr is a terminal, for the progress bar.
    progress: bool,
    /// Whether Ctrl-C (SIGINT) ends a fleet query early, with what arrived
    /// and the summary, rather than the process (the binary only).
    ctrl_c: bool,
}

fn run_inner(
    args: Vec<OsString>,
    env: &Env,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
    terminals: Terminals,
) -> u8 {
    let matches = match command_with(env).try_get_matches_from(args) {
        Ok(matches) => matches,
        Err(e) => return clap_exit(&with_synonyms(e), out, err),
    };
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e, out, err),
    };
    if let Err(e) = env.fill(&mut cli.global) {
        let _ = writeln!(err, "error: {e:#}");
        return EXIT_ERROR;
    }
    let typed = Typed::from(&matches);
    // One host (--host alone, which keeps the profile's inventory out) or
    // none is asked on this thread alone: worker threads would only add
    // their start to the run.
    let one_host = cli.command.targets().is_none_or(|after| {
        cli.global.host.is_some()
            && [&cli.targets, after]
                .iter()
                .all(|t| t.hosts.is_empty() && t.inventory.is_none())
    });
    let mut builder = match one_host {
        true => tokio::runtime::Builder::new_current_thread(),
        false => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = writeln!(err, "error: cannot start the async runtime: {e}");
            return EXIT_ERROR;
        }
    };
    let mut io = Io {
        out,
        err,
        stdin,
        width: terminals.width,
        progress: terminals.progress && !cli.global.quiet,
        no_headers: cli.global.no_headers,
        quiet: cli.global.quiet,
        interrupt: match terminals.ctrl_c {
            true => fanout::Interrupt::ctrl_c(),
            false => fanout::Interrupt::new(),
        },
        buffer_budget: cli.fleet.buffer_budget,
    };
    let mut result = runtime.block_on(run(cli, typed, env, &mut io));
    if result.is_ok()
        && let Err(e) = io.out.flush()
    {
        result = Err(e.into());
    }
    if let Err(e) = &result
        && !fanout::is_broken_pipe(e)
    {
        let _ = writeln!(io.err, "error: {e:#}");
    }
    fanout::exit_code(&result)
}

/// The command line as parsed. Global options (targets, certificates,
/// output, fleet settings) are listed once, in `hostscope --help`: a
/// subcommand's help shows its own options and names the global ones in a
/// line, rather than repeating some 45 lines of them under every command.
/// They are still taken before or after any subcommand. Completions and
/// man pages describe the whole command, from `Cli::command()`. Public for
/// tests that check documented command lines against it; it shows an
/// empty environment's `[env: NAME=]` in its help.
pub fn command() -> clap::Command {
    command_with(&Env::default())
}

/// [`command`], reading (and showing in its help) the variables of `env`.
fn command_with(env: &Env) -> clap::Command {
    let cli = env.bind(Cli::command());
    let globals: Vec<clap::Arg> = cli
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    let names: Vec<String> = globals
        .iter()
        .map(|a| match (a.get_short(), a.get_long()) {
            (Some(short), _) => format!("-{short}"),
            (None, Some(long)) => format!("--{long}"),
            (None, None) => a.get_id().to_string(),
        })
        .collect();
    let line = format!(
        "Global options ({}): see hostscope --help.",
        names.join(", ")
    );
    hide_globals(cli, &globals, &line)
}

/// Gives every subcommand of `cmd`, recursively, its own hidden copy of
/// the `globals` (clap copies a global option into a subcommand only where
/// the subcommand has none of that name, and would show it), and ends
/// each subcommand's help with `line`.
fn hide_globals(mut cmd: clap::Command, globals: &[clap::Arg], line: &str) -> clap::Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(name, |sub| {
            let after = match sub.get_after_help() {
                Some(text) => format!("{text}\n\n{line}"),
                None => line.to_owned(),
            };
            let sub = sub
                .args(globals.iter().map(|a| a.clone().hide(true)))
                .after_help(after);
            hide_globals(sub, globals, line)
        });
    }
    cmd
}

/// Subcommands people bring from other tools, and ours that does that
/// job: clap's guess goes by spelling alone and offers `pki` for `kill`.
const SYNONYMS: [(&str, &str); 3] = [("kill", "signal"), ("top", "ps"), ("reap", "zombies")];

/// `e`, suggesting our subcommand for a synonym typed in its place.
fn with_synonyms(mut e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let ours = match e.get(ContextKind::InvalidSubcommand) {
        Some(ContextValue::String(typed)) if e.kind() == ErrorKind::InvalidSubcommand => SYNONYMS
            .iter()
            .find(|(synonym, _)| synonym.eq_ignore_ascii_case(typed))
            .map(|(_, ours)| *ours),
        _ => None,
    };
    if let Some(ours) = ours {
        e.insert(
            ContextKind::SuggestedSubcommand,
            ContextValue::String(ours.to_owned()),
        );
    }
    e
}

/// Prints a clap error or request and says how to exit: help and version
/// to `out` with 0, usage errors to `err` with 1 (not clap's 2, which
/// means "some hosts failed" here).
fn clap_exit(e: &clap::Error, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    use clap::error::ErrorKind;
    let text = e.render().to_string();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            EXIT_OK
        }
        _ => {
            let _ = err.write_all(text.as_bytes());
            EXIT_ERROR
        }
    }
}

/// Which flags were typed on the command line rather than taken from the
/// environment.
#[derive(Debug, Default)]
struct Typed {
    /// Of --ca, --cert and --key: `--plaintext` overrides the environment's
    /// TLS settings, but contradicts typed ones.
    tls: Vec<&'static str>,
    /// --host: a typed one joins --hosts and --inventory; HOSTSCOPE_HOST
    /// only stands in when no target is given.
    host: bool,
}

impl Typed {
    fn from(matches: &ArgMatches) -> Typed {
        let mut typed = Typed::default();
        let mut level = Some(matches);
        while let Some(m) = level {
            let on_command_line = |id: &str| m.value_source(id) == Some(ValueSource::CommandLine);
            for (id, flag, _) in TLS_FLAGS {
                if on_command_line(id) && !typed.tls.contains(&flag) {
                    typed.tls.push(flag);
                }
            }
            typed.host |= on_command_line("host");
            level = m.subcommand().map(|(_, sub)| sub);
        }
        typed
    }
}

/// Runs the command the user asked for.
async fn run(cli: Cli, typed: Typed, env: &Env, io: &mut Io<'_>) -> anyhow::Result<Status> {
    let command = match cli.command {
        Command::Pki(command) => {
            run_pki(command, cli.global.ca.as_deref(), io.out)?;
            return Ok(Status::Answered);
        }
        Command::Config(command) => {
            let path = env.profile_path().context(
                "no profile file: neither XDG_CONFIG_HOME nor HOME is set, so there is no \
                 ~/.config/hostscope/config.toml",
            )?;
            profile::run_config(command, path, io.out)?;
            return Ok(Status::Answered);
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut env.bind(Cli::command()), "hostscope", io.out);
            return Ok(Status::Answered);
        }
        Command::Manpages { dir } => {
            clap_mangen::generate_to(env.bind(Cli::command()), &dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            return Ok(Status::Answered);
        }
        Command::Sql(args) if !args.live => {
            store::sql(args, cli.global.output.unwrap_or(Output::Table), env, io).await?;
            return Ok(Status::Answered);
        }
        Command::Diff(args) => {
            // --host, typed, names the host to compare, as the inventory
            // names it.
            let host = cli.global.host.as_deref().filter(|_| typed.host);
            let format = cli.global.output.unwrap_or(Output::Table);
            store::diff(args, host, format, env, io).await?;
            return Ok(Status::Answered);
        }
        command => command,
    };
    let mut global = cli.global;
    let mut targets = cli.targets.join(command.targets())?;
    let profile = match env.profile_path() {
        Some(path) => profile::Profile::load(path)?.with_home(env.home_dir()),
        None => profile::Profile::default(),
    };
    let settings = profile.settings(global.context.as_deref())?;
    apply_profile(settings, &mut global, &mut targets);
    let tls = resolve_tls(&global, &typed.tls)?;
    let host = global.host.as_deref();
    let mut hosts = targets::resolve(&targets, host, typed.host, io.stdin)?;
    if let Command::Collect(args) = &command {
        store::shard(&mut hosts, args);
    }
    targets::check_schemes(&hosts, tls.is_some())?;
    let mut options = cli.fleet.options();
    if let Command::Zombies(args) = &command {
        // A sweep waits between its rounds of signals: its hosts need longer.
        options.timeout = zombies::host_deadline(args, options.timeout);
    }
    // A sweep, a signal and a watch call their hosts again; every other
    // command asks each host once, so its connections close as each host
    // is done rather than all at the end.
    options.keep_connections = matches!(
        command,
        Command::Zombies(_) | Command::Signal(_) | Command::Watch(_)
    );
    let fleet = Fleet::new(hosts, tls, options);
    if !matches!(command, Command::Watch(_)) {
        // From here Ctrl-C ends the query, not the process. A watch
        // listens for Ctrl-C itself: it is how a watch ends.
        io.interrupt.listen()?;
    }
    let format = global.output;
    let table = format.unwrap_or(Output::Table);
    let summary = match command {
        Command::Host(_) => show::host(&fleet, table, io).await?,
        Command::Ps(args) => ps::ps(&fleet, args, table, io).await?,
        Command::Sys(args) => system::sys(&fleet, args, table, io).await?,
        Command::Df(args) => system::df(&fleet, args, table, io).await?,
        Command::Files(args) => files::files(&fleet, args, table, io).await?,
        Command::Sockets(args) => sockets::sockets(&fleet, args, table, io).await?,
        Command::Proc(args) => show::process(&fleet, args, table, io).await?,
        Command::Nics(_) => show::nics(&fleet, table, io).await?,
        Command::Inventory(args) => inventory::inventory(&fleet, args, format, io).await?,
        Command::Zombies(args) => {
            zombies::zombies(&fleet, args, cli.fleet.timeout, table, io).await?
        }
        Command::Signal(args) => signal::signal(&fleet, args, table, io).await?,
        Command::Collect(args) => match store::collect(&fleet, args, env, io).await? {
            Some(summary) => summary,
            // Stopped by a signal between snapshots, each one's summary
            // reported as it ended.
            None => return Ok(Status::Answered),
        },
        Command::Sql(args) => store::sql_live(&fleet, args, table, io).await?,
        // A watch has no summary of hosts that answered: it says how many
        // events it saw, and which hosts failed as they fail.
        Command::Watch(args) => return watch::watch(&fleet, args, format, io).await,
        Command::Pki(_)
        | Command::Config(_)
        | Command::Diff(_)
        | Command::Completions { .. }
        | Command::Manpages { .. } => {
            bail!("this command needs no agent")
        }
    };
    io.out.flush()?;
    fanout::report(&summary, io.quiet, io.err)?;
    Ok(Status::of(&summary))
}

/// Fills in what the command line (flags and HOSTSCOPE_* variables) left
/// unsaid from the profile: the certificates, and the inventory or host
/// when no target is given at all.
fn apply_profile(settings: profile::Settings, global: &mut Global, targets: &mut args::Targets) {
    global.ca = global.ca.take().or(settings.ca);
    global.cert = global.cert.take().or(settings.cert);
    global.key = global.key.take().or(settings.key);
    let no_target =
        targets.hosts.is_empty() && targets.inventory.is_none() && global.host.is_none();
    if no_target {
        match settings.inventory {
            Some(inventory) => targets.inventory = Some(inventory),
            None => global.host = settings.host,
        }
    }
}

/// Turns the connection flags into TLS settings, or `None` for plaintext,
/// with an error that says which flags or variables to set.
fn resolve_tls(global: &Global, typed: &[&str]) -> anyhow::Result<Option<TlsConfig>> {
    if global.plaintext {
        if !typed.is_empty() {
            bail!(
                "--plaintext contradicts {}: plaintext uses no certificates; drop one or the other",
                typed.join(", ")
            );
        }
        if global.tls_server_name.is_some() {
            bail!("--plaintext contradicts --tls-server-name: plaintext checks no certificate");
        }
        return Ok(None);
    }
    match (&global.ca, &global.cert, &global.key) {
        (Some(ca), Some(cert), Some(key)) => {
            let mut tls = TlsConfig::from_files(ca, Some(cert), Some(key))?;
            tls.server_name = global.tls_server_name.clone();
            Ok(Some(tls))
        }
        (None, None, None) => bail!(
            "no TLS certificates given: agents speak mutual TLS, so pass --ca FILE --cert FILE \
             --key FILE (or set HOSTSCOPE_CA, HOSTSCOPE_CERT and HOSTSCOPE_KEY); `hostscope pki` \
             makes them. For an agent started with --insecure-plaintext, pass --plaintext"
        ),
        given => {
            let given = [given.0.is_some(), given.1.is_some(), given.2.is_some()];
            let missing: Vec<String> = TLS_FLAGS
                .iter()
                .zip(given)
                .filter(|(_, present)| !present)
                .map(|((_, flag, var), _)| format!("{flag} FILE (or {var})"))
                .collect();
            bail!(
                "mutual TLS needs --ca, --cert and --key; missing: {}",
                missing.join(", ")
            )
        }
    }
}

/// Fails when one of `files` exists and `force` is not set, naming the
/// file and `what_to_do`.
fn refuse_to_replace(
    files: &[std::path::PathBuf],
    force: bool,
    what_to_do: &str,
) -> anyhow::Result<()> {
    match files.iter().find(|f| f.exists()) {
        Some(existing) if !force => {
            bail!("{} exists already: {what_to_do}", existing.display())
        }
        _ => Ok(()),
    }
}

/// `pki show FILE`: what the certificate is, and whether the fleet CA
/// (`ca`, else ca.pem beside it) signed it.
fn show_certificate(file: &Path, ca: Option<&Path>, out: &mut dyn Write) -> anyhow::Result<()> {
    let pem = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let cert = pki::inspect(&pem).with_context(|| format!("{}", file.display()))?;
    let date = |epoch: i64| format::datetime(epoch as f64);
    let now = format::now() as i64;
    let validity = if now < cert.not_before {
        "not yet valid"
    } else if now > cert.not_after {
        "EXPIRED"
    } else {
        "valid now"
    };
    let days_left = (cert.not_after - now).max(0) / 86_400;
    writeln!(out, "file:         {}", file.display())?;
    writeln!(out, "subject:      {}", cert.subject)?;
    writeln!(out, "role:         {}", cert.role())?;
    let list = |items: &[String]| match items.is_empty() {
        true => "(none)".to_owned(),
        false => items.join(", "),
    };
    writeln!(out, "names (SAN):  {}", list(&cert.sans))?;
    writeln!(out, "key usage:    {}", list(&cert.extended_key_usages))?;
    writeln!(
        out,
        "valid:        {} to {} ({validity}, {days_left} days left)",
        date(cert.not_before),
        date(cert.not_after)
    )?;
    writeln!(out, "sha256:       {}", cert.sha256_fingerprint)?;
    writeln!(out, "issuer:       {}", cert.issuer)?;
    let beside = file
        .parent()
        .map(|dir| pki::cert_path(dir, "ca"))
        .filter(|path| path.is_file());
    let ca_file = ca.map(Path::to_owned).or(beside);
    match ca_file {
        Some(ca_file) => {
            let ca_pem = std::fs::read(&ca_file)
                .with_context(|| format!("cannot read {}", ca_file.display()))?;
            match pki::signed_by(&cert, &ca_pem) {
                Ok(()) => writeln!(out, "signed by:    {} (verified)", ca_file.display())?,
                Err(why) => writeln!(
                    out,
                    "signed by:    not {} as its peers would check it: {why}",
                    ca_file.display()
                )?,
            }
        }
        None => writeln!(
            out,
            "signed by:    unchecked: no ca.pem beside it; pass --ca FILE to check"
        )?,
    }
    Ok(())
}

fn run_pki(command: PkiCommand, ca: Option<&Path>, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        PkiCommand::Show { file } => show_certificate(&file, ca, out)?,
        PkiCommand::Init { dir, force, days } => {
            refuse_to_replace(
                &[pki::cert_path(&dir, "ca"), pki::key_path(&dir, "ca")],
                force,
                "a fleet CA is there, and replacing it makes every certificate it issued \
                 untrusted; pass --force to replace it anyway",
            )?;
            pki::init_for_days(&dir, force, days)?;
            writeln!(
                out,
                "wrote the fleet CA: {} and {} (keep the key secret)",
                pki::cert_path(&dir, "ca").display(),
                pki::key_path(&dir, "ca").display()
            )?;
        }
        PkiCommand::Issue {
            dir,
            name,
            server,
            client: _,
            sans,
            force,
            days,
        } => {
            refuse_to_replace(
                &[pki::cert_path(&dir, &name), pki::key_path(&dir, &name)],
                force,
                "pass --force to replace it (renewing the certificate), or choose another --name",
            )?;
            let role = if server {
                CertRole::Server
            } else {
                CertRole::Client
            };
            pki::issue_for_days(&dir, &name, role, &sans, days)
                .with_context(|| format!("issuing a certificate for {name}"))?;
            let what = match role {
                CertRole::Server => {
                    let mut names = vec![name.clone()];
                    names.extend(sans.iter().filter(|s| **s != name).cloned());
                    format!("an agent certificate for {}", names.join(", "))
                }
                CertRole::Client => format!("a client certificate for {name}"),
            };
            writeln!(
                out,
                "wrote {what}: {} and {}",
                pki::cert_path(&dir, &name).display(),
                pki::key_path(&dir, &name).display()
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches, Parser};

    use super::*;

    fn parse(args: &[&str]) -> (Cli, Vec<&'static str>) {
        let matches = Env::default()
            .bind(Cli::command())
            .try_get_matches_from(args)
            .expect("valid arguments");
        let cli = Cli::from_arg_matches(&matches).expect("valid arguments");
        (cli, Typed::from(&matches).tls)
    }

    #[test]
    fn no_certificates_and_no_plaintext_says_what_to_set() {
        let (cli, typed) = parse(&["hostscope", "host"]);
        let mut global = cli.global;
        // The test environment may set these.
        (global.ca, global.cert, global.key) = (None, None, None);
        let e = resolve_tls(&global, &typed).expect_err("no certificates");
        let text = format!("{e:#}");
        for needle in ["--ca", "--cert", "--key", "HOSTSCOPE_CA", "--plaintext"] {
            assert!(text.contains(needle), "{needle} missing from: {text}");
        }
        global.ca = Some("ca.pem".into());
        let e = resolve_tls(&global, &typed).expect_err("no cert and key");
        assert!(
            format!("{e:#}").contains("missing: --cert FILE (or HOSTSCOPE_CERT), --key"),
            "{e:#}"
        );
    }

    #[test]
    fn plaintext_overrides_the_environment_but_not_typed_flags() {
        let (cli, typed) = parse(&["hostscope", "host", "--plaintext"]);
        let mut global = cli.global;
        global.ca = Some("from-the-environment.pem".into());
        assert!(resolve_tls(&global, &typed).expect("plaintext").is_none());

        let (cli, typed) = parse(&["hostscope", "--ca", "ca.pem", "host", "--plaintext"]);
        assert_eq!(typed, ["--ca"]);
        let e = resolve_tls(&cli.global, &typed).expect_err("contradiction");
        assert!(
            e.to_string().contains("--plaintext contradicts --ca"),
            "{e}"
        );
    }

    /// Runs the command line in-process with nothing on stdin.
    fn run(args: &[&str]) -> (u8, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let args = args.iter().map(OsString::from).collect();
        let code = run_with(args, &Env::default(), &mut &b""[..], &mut out, &mut err);
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        (code, text(out), text(err))
    }

    #[test]
    fn completions_and_man_pages_cover_every_subcommand() {
        let (code, out, err) = run(&["hostscope", "completions", "bash"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("_hostscope()"), "{out}");
        for sub in ["ps", "zombies", "watch", "pki", "completions"] {
            assert!(
                out.contains(&format!("hostscope,{sub})")),
                "no {sub} in {out}"
            );
        }

        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().to_str().expect("utf-8 path");
        let (code, _, err) = run(&["hostscope", "manpages", target]);
        assert_eq!(code, 0, "{err}");
        let page = std::fs::read_to_string(dir.path().join("hostscope.1")).expect("hostscope.1");
        assert!(page.starts_with(".ie"), "{page}");
        assert!(page.contains("hostscope\\-ps(1)"), "{page}");
        assert!(dir.path().join("hostscope-zombies.1").exists());
    }

    #[test]
    fn usage_errors_exit_1_and_help_exits_0() {
        let (code, out, err) = run(&["hostscope", "ps", "--fields", "pid,rss"]);
        assert_eq!((code, out.as_str()), (1, ""));
        assert!(err.contains("unknown field \"rss\""), "{err}");
        let (code, _, err) = run(&["hostscope"]);
        assert_eq!(code, 1, "a missing subcommand is a usage error: {err}");
        let (code, _, err) = run(&["hostscope", "--timeout", "soon", "host"]);
        assert_eq!(code, 1, "{err}");

        let (code, out, err) = run(&["hostscope", "--help"]);
        assert_eq!((code, err.as_str()), (0, ""));
        for needle in [
            "Exit status:",
            "2  one or more hosts failed",
            "--inventory fleet.toml",
        ] {
            assert!(out.contains(needle), "{needle} missing from --help");
        }
        let (code, out, _) = run(&["hostscope", "--version"]);
        assert_eq!(code, 0);
        assert!(out.starts_with("hostscope "), "{out}");
    }

    #[test]
    fn local_errors_exit_1_before_any_host_is_asked() {
        let (code, out, err) = run(&[
            "hostscope",
            "--plaintext",
            "--inventory",
            "/nonexistent/fleet.toml",
            "host",
        ]);
        assert_eq!((code, out.as_str()), (1, ""));
        assert!(
            err == "error: cannot read the inventory /nonexistent/fleet.toml: No such file or directory (os error 2)\n",
            "{err}"
        );
        let (code, _, err) = run(&["hostscope", "--plaintext", "--select", "a=b", "host"]);
        assert_eq!(code, 1);
        assert!(err.contains("--inventory FILE"), "{err}");
    }

    #[test]
    fn signal_acts_on_one_host_only() {
        let (code, out, err) = run(&[
            "hostscope",
            "--plaintext",
            "--hosts",
            "a,b",
            "signal",
            "42",
            "TERM",
        ]);
        assert_eq!((code, out.as_str()), (1, ""));
        assert_eq!(
            err,
            "error: signal acts on one host, and the targets name 2 (a:7443, b:7443): pick one \
             with --host\n"
        );
    }

    #[test]
    fn out_dir_writes_only_json() {
        let (code, _, err) = run(&[
            "hostscope",
            "--plaintext",
            "inventory",
            "--out-dir",
            "/nonexistent/inv",
            "-o",
            "csv",
        ]);
        assert_eq!(code, 1);
        assert_eq!(
            err,
            "error: --out-dir writes JSON files; drop --output csv\n"
        );
    }

    /// Usage mistakes exit 1, said in words that name the cause, before any
    /// host is dialled: the targets here are documentation addresses that
    /// nothing answers, so reaching a host would show as a failure (2).
    #[test]
    fn usage_mistakes_exit_1_and_name_the_cause() {
        let cases: [(&[&str], &str); 10] = [
            (&["proc", "0"], "0 is no process id: pids start at 1"),
            (
                &["proc", "-1"],
                "-1 is no process id: pids are whole numbers from 1",
            ),
            (&["ps", "--name", "["], "\"[\" is no valid glob"),
            (
                &["watch", "--name", "a[", "--count", "1"],
                "is no valid glob",
            ),
            (&["signal", "42", "0"], "signal 0 sends nothing"),
            (&["watch", "--pid", "0"], "0 is no process id"),
            (&["zombies", "--ppid", "-3"], "-3 is no process id"),
            (&["--timeout", "-1s", "host"], "-1s is negative"),
            (
                &["host", "--host", "https://192.0.2.1"],
                "says https://, but --plaintext",
            ),
            (&["watch", "--children-of", "-2"], "-2 is no process id"),
        ];
        for (args, needle) in cases {
            let mut all = vec!["hostscope", "--plaintext", "--host", "192.0.2.1:7443"];
            all.extend(args);
            let (code, out, err) = run(&all);
            assert_eq!((code, out.as_str()), (1, ""), "{args:?}: {err}");
            assert!(
                err.contains(needle),
                "{args:?}: {needle} missing from {err}"
            );
            assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
        }
        // No pid range that starts at 0.
        let (_, _, err) = run(&["hostscope", "proc", "x"]);
        assert!(
            err.contains("from 1 to 4294967295") && !err.contains("0.."),
            "{err}"
        );
        // ps --ppid 0 means "no parent", and parses.
        let cli = Cli::try_parse_from(["hostscope", "ps", "--ppid", "0"]).expect("ppid 0");
        assert!(matches!(cli.command, Command::Ps(ps) if ps.ppid == Some(0)));
    }

    #[test]
    fn tls_files_that_cannot_work_are_a_local_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        pki::init(dir.path(), false).expect("init");
        pki::issue(dir.path(), "alice", CertRole::Client, &[]).expect("alice");
        pki::issue(dir.path(), "bob", CertRole::Client, &[]).expect("bob");
        pki::issue(dir.path(), "web1", CertRole::Server, &[]).expect("web1");
        let path = |f: &str| dir.path().join(f).display().to_string();
        let tls = |cert: &str, key: &str, host: &str| {
            let (ca, cert, key) = (path("ca.pem"), path(cert), path(key));
            let args = [
                "hostscope",
                "--ca",
                &ca,
                "--cert",
                &cert,
                "--key",
                &key,
                "--host",
                host,
                "host",
            ];
            run(&args)
        };
        let (code, _, err) = tls("alice.pem", "bob-key.pem", "192.0.2.1");
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("bob-key.pem is not the private key of"),
            "{err}"
        );
        assert!(!err.contains("KeyMismatch"), "{err}");
        let (code, _, err) = tls("web1.pem", "web1-key.pem", "192.0.2.1");
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("is not a client certificate"), "{err}");
        let (code, _, err) = tls("alice.pem", "alice-key.pem", "http://192.0.2.1:7443");
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("says http:// (plaintext), but TLS certificates are set"),
            "{err}"
        );
        assert_eq!(err.matches("error:").count(), 1, "said once: {err}");
    }

    #[test]
    fn output_names_take_any_case_and_quiet_and_no_headers_parse() {
        let cli = Cli::try_parse_from(["hostscope", "-o", "JSON", "-q", "--no-headers", "host"])
            .expect("flags");
        assert_eq!(cli.global.output, Some(Output::Json));
        assert!(cli.global.quiet && cli.global.no_headers);
        let cli = Cli::try_parse_from(["hostscope", "ps", "--output", "Csv", "--sort", "-pid"])
            .expect("flags");
        assert_eq!(cli.global.output, Some(Output::Csv));
        let (code, _, err) = run(&["hostscope", "ps", "--sort", "rsss"]);
        assert_eq!(code, 1);
        assert!(err.contains("cannot sort by \"rsss\""), "{err}");
    }

    #[test]
    fn the_profile_fills_in_only_what_the_command_line_left_unsaid() {
        let settings = || profile::Settings {
            ca: Some("/p/ca.pem".into()),
            cert: Some("/p/alice.pem".into()),
            key: Some("/p/alice-key.pem".into()),
            inventory: Some("/p/fleet.toml".into()),
            host: Some("web9.example.net".into()),
        };
        let (cli, _) = parse(&["hostscope", "--cert", "mine.pem", "host"]);
        let (mut global, mut targets) = (cli.global, cli.targets);
        global.host = None;
        apply_profile(settings(), &mut global, &mut targets);
        assert_eq!(global.cert, Some("mine.pem".into()), "a flag wins");
        assert_eq!(global.ca, Some("/p/ca.pem".into()));
        assert_eq!(targets.inventory, Some("/p/fleet.toml".into()));
        assert_eq!(global.host, None, "the inventory, not also the host");

        // A target on the command line keeps the profile's out.
        let (cli, _) = parse(&["hostscope", "--hosts", "192.0.2.7", "host"]);
        let (mut global, mut targets) = (cli.global, cli.targets);
        global.host = None;
        apply_profile(settings(), &mut global, &mut targets);
        assert_eq!((targets.inventory, global.host), (None, None));

        // A profile without an inventory gives its host.
        let (cli, _) = parse(&["hostscope", "host"]);
        let (mut global, mut targets) = (cli.global, cli.targets);
        global.host = None;
        let host_only = profile::Settings {
            inventory: None,
            ..settings()
        };
        apply_profile(host_only, &mut global, &mut targets);
        assert_eq!(global.host.as_deref(), Some("web9.example.net"));
    }
}
