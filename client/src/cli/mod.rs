//! The `hostscope` command: resolves what the user typed into a
//! connection, runs one subcommand, and prints its results.

pub mod args;
mod fields;
mod format;
mod output;
mod ps;
mod render;
mod show;
mod table;

use std::io::{self, BufWriter, Write};

use anyhow::{Context, bail};
use clap::{ArgMatches, parser::ValueSource};
use hostscope_client::{
    Client, TlsConfig,
    pki::{self, CertRole},
};

use args::{Cli, Command, Global, PkiCommand};

/// The TLS file flags, by clap id, flag and environment variable.
const TLS_FLAGS: [(&str, &str, &str); 3] = [
    ("ca", "--ca", "HOSTSCOPE_CA"),
    ("cert", "--cert", "HOSTSCOPE_CERT"),
    ("key", "--key", "HOSTSCOPE_KEY"),
];

/// Which of --ca, --cert and --key were typed on the command line rather
/// than taken from the environment: `--plaintext` overrides the
/// environment's TLS settings, but contradicts typed ones.
pub fn typed_tls_flags(matches: &ArgMatches) -> Vec<&'static str> {
    let mut typed = Vec::new();
    let mut level = Some(matches);
    while let Some(m) = level {
        for (id, flag, _) in TLS_FLAGS {
            if m.value_source(id) == Some(ValueSource::CommandLine) && !typed.contains(&flag) {
                typed.push(flag);
            }
        }
        level = m.subcommand().map(|(_, sub)| sub);
    }
    typed
}

/// Whether an error is stdout going away (`hostscope ps | head`), which
/// ends the program quietly.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Runs the command the user asked for.
pub async fn run(cli: Cli, typed_tls_flags: Vec<&'static str>) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let format = cli.global.output;
    let global = &cli.global;
    match cli.command {
        Command::Pki(command) => run_pki(command, &mut out)?,
        Command::Host => {
            let client = connect(global, &typed_tls_flags).await?;
            show::host(&client, &global.host, format, &mut out).await?;
        }
        Command::Ps(args) => {
            let client = connect(global, &typed_tls_flags).await?;
            ps::ps(&client, &global.host, args, format, &mut out).await?;
        }
        Command::Proc(args) => {
            let client = connect(global, &typed_tls_flags).await?;
            show::process(&client, &global.host, args, format, &mut out).await?;
        }
        Command::Nics => {
            let client = connect(global, &typed_tls_flags).await?;
            show::nics(&client, &global.host, format, &mut out).await?;
        }
    }
    out.flush()?;
    Ok(())
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

/// Connects to the agent named by --host, as the flags say.
async fn connect(global: &Global, typed_tls_flags: &[&str]) -> anyhow::Result<Client> {
    let tls = resolve_tls(global, typed_tls_flags)?;
    Ok(Client::connect(&global.host, tls).await?)
}

fn run_pki(command: PkiCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        PkiCommand::Init { dir, force } => {
            pki::init(&dir, force)?;
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
        } => {
            let role = if server {
                CertRole::Server
            } else {
                CertRole::Client
            };
            pki::issue(&dir, &name, role, &sans)
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
    use clap::{CommandFactory, FromArgMatches};

    use super::*;

    fn parse(args: &[&str]) -> (Cli, Vec<&'static str>) {
        let matches = Cli::command()
            .try_get_matches_from(args)
            .expect("valid arguments");
        let cli = Cli::from_arg_matches(&matches).expect("valid arguments");
        (cli, typed_tls_flags(&matches))
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

    #[test]
    fn broken_pipes_are_recognised_through_context() {
        let e = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("no pipe here")));
    }
}
