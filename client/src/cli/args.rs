//! What the user typed: clap's derive structs, validated but not yet
//! resolved (the first of ripgrep's two stages; `cli::run` resolves them).

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use hostscope_client::proto::{EnumName, ProcessStatus};

use super::fields::FieldList;

const ABOUT: &str = "Ask a hostscope agent what psutil would tell you on that host: processes, \
                     their state and use, network interfaces and their addresses.";

const EXAMPLES: &str = "\
Examples:
  # A fleet CA, a certificate for the agent on web1 and one for you:
  hostscope pki init --dir pki
  hostscope pki issue --dir pki --name web1 --server --san 10.0.0.5
  hostscope pki issue --dir pki --name alice --client

  # Then, with the agent running on web1:
  export HOSTSCOPE_CA=pki/ca.pem HOSTSCOPE_CERT=pki/alice.pem HOSTSCOPE_KEY=pki/alice-key.pem
  hostscope --host web1 host
  hostscope --host web1 ps --status zombie
  hostscope --host web1 nics --output json

Connecting:
  Without --plaintext every call uses mutual TLS and needs --ca, --cert and --key (or
  HOSTSCOPE_CA, HOSTSCOPE_CERT, HOSTSCOPE_KEY). --plaintext talks to an agent started with
  --insecure-plaintext, which agents allow on loopback only.

Output:
  table (default) is for people. json prints one document, ndjson one record per line as
  records arrive; both use the API's field names, enums as lower-case strings, and put the
  agent's address first in every record as \"host\".";

const HOST_EXAMPLES: &str = "\
Examples:
  hostscope host
  hostscope --host web1:7443 host --output json";

const PS_EXAMPLES: &str = "\
Fields (psutil's names): pid, ppid, name, exe, cmdline, status, username, uids, gids,
terminal, cwd, nice, create_time, num_threads, num_fds, num_ctx_switches, cpu_times,
memory_info, io_counters, environ; or all. Only the fields asked for are read on the host,
so narrow lists are cheap.

Statuses: running, sleeping, disk_sleep, stopped, tracing_stop, zombie, dead, wake_kill,
waking, parked, idle, locked, waiting, suspended.

Examples:
  hostscope ps
  hostscope ps --status zombie --fields pid,ppid,name,create_time
  hostscope ps --name 'nginx*' --user www-data
  hostscope ps --ppid 1 --fields pid,name,memory_info --output ndjson | head";

const PROC_EXAMPLES: &str = "\
Every field is shown unless --fields narrows them; a field the agent could not read says
why, such as \"exe: <zombie process>\" or \"cwd: <access denied>\".

Examples:
  hostscope proc 1
  hostscope proc 4242 --fields name,exe,cmdline,status --output json";

const NICS_EXAMPLES: &str = "\
Examples:
  hostscope nics
  hostscope nics --output ndjson";

const PKI_EXAMPLES: &str = "\
Examples:
  hostscope pki init --dir pki
  hostscope pki issue --dir pki --name web1 --server --san web1.example.com --san 10.0.0.5
  hostscope pki issue --dir pki --name alice --client";

const PKI_ISSUE_EXAMPLES: &str = "\
Writes DIR/NAME.pem and DIR/NAME-key.pem (mode 0600), valid for two years, signed by
DIR/ca.pem and DIR/ca-key.pem. Issuing the same name again renews it.

Examples:
  hostscope pki issue --dir pki --name web1 --server --san web1.example.com --san 10.0.0.5
  hostscope pki issue --dir pki --name 127.0.0.1 --server
  hostscope pki issue --dir pki --name alice --client";

/// `hostscope`: the command line.
#[derive(Debug, Parser)]
#[command(name = "hostscope", version, about = ABOUT, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes, before or after its name.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// The agent: HOST, HOST:PORT, [IPV6]:PORT or https://HOST:PORT (port 7443 by default).
    #[arg(
        long,
        global = true,
        env = "HOSTSCOPE_HOST",
        default_value = "127.0.0.1:7443",
        value_name = "ADDR"
    )]
    pub host: String,

    /// The fleet CA certificate (PEM) that issued the agents' certificates.
    #[arg(long, global = true, env = "HOSTSCOPE_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// This client's certificate (PEM), issued by the fleet CA.
    #[arg(long, global = true, env = "HOSTSCOPE_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,

    /// This client's private key (PEM).
    #[arg(long, global = true, env = "HOSTSCOPE_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// Check the agent's certificate for NAME instead of the host in --host.
    #[arg(long, global = true, value_name = "NAME")]
    pub tls_server_name: Option<String>,

    /// Talk plaintext HTTP/2 to an agent started with --insecure-plaintext.
    #[arg(long, global = true)]
    pub plaintext: bool,

    /// How to print results.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table, value_name = "FORMAT")]
    pub output: Output,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns and blocks, for people.
    Table,
    /// One JSON document.
    Json,
    /// One JSON record per line, printed as records arrive.
    Ndjson,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the host and its agent: OS, kernel, boot time, CPUs, memory, and which fields its
    /// platform supplies.
    #[command(after_help = HOST_EXAMPLES)]
    Host,

    /// List processes, zombies included, like ps.
    #[command(after_help = PS_EXAMPLES)]
    Ps(PsArgs),

    /// Show one process, every field (or those of --fields) on its own line.
    #[command(after_help = PROC_EXAMPLES)]
    Proc(ProcArgs),

    /// Show network interfaces: link state, speed, duplex, MTU, flags, addresses and
    /// traffic counters.
    #[command(after_help = NICS_EXAMPLES)]
    Nics,

    /// Make a fleet CA and issue agent and client certificates (no openssl needed).
    #[command(subcommand, after_help = PKI_EXAMPLES)]
    Pki(PkiCommand),
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Fields to fetch and show, comma-separated psutil names ("pid,name,status"), or "all".
    #[arg(long, value_name = "LIST", value_parser = FieldList::parse)]
    pub fields: Option<FieldList>,

    /// Only processes whose name matches this shell glob ("nginx*").
    #[arg(long, value_name = "GLOB")]
    pub name: Option<String>,

    /// Only processes of this user (name or uid).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Only processes in these states, comma-separated ("zombie", "running,disk_sleep").
    #[arg(long, value_name = "STATUS", value_delimiter = ',', value_parser = parse_status)]
    pub status: Vec<ProcessStatus>,

    /// Only these pids, comma-separated.
    #[arg(long, value_name = "PID", value_delimiter = ',')]
    pub pid: Vec<u32>,

    /// Only children of this pid.
    #[arg(long, value_name = "PID")]
    pub ppid: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ProcArgs {
    /// The process id.
    pub pid: u32,

    /// Fields to fetch and show, comma-separated psutil names, or "all" (the default).
    #[arg(long, value_name = "LIST", value_parser = FieldList::parse)]
    pub fields: Option<FieldList>,
}

#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create a fleet CA: DIR/ca.pem and DIR/ca-key.pem (mode 0600), valid for ten years.
    #[command(after_help = "Example:\n  hostscope pki init --dir pki")]
    Init {
        /// Directory for the CA files; created if missing.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Replace an existing CA. Every certificate it issued stops being trusted.
        #[arg(long)]
        force: bool,
    },

    /// Issue a certificate for an agent (--server) or a client (--client).
    #[command(after_help = PKI_ISSUE_EXAMPLES, group(ArgGroup::new("role").required(true).args(["server", "client"])))]
    Issue {
        /// Directory holding ca.pem and ca-key.pem; the new files go there too.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The certificate's name: the agent's host name or IP, or the client's identity.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// A certificate for an agent, valid for NAME and every --san.
        #[arg(long)]
        server: bool,
        /// A certificate for a client; NAME is the identity agents see.
        #[arg(long)]
        client: bool,
        /// Another host name or IP address the certificate is valid for (repeatable).
        #[arg(long = "san", value_name = "HOST_OR_IP")]
        sans: Vec<String>,
    },
}

/// Parses a status by its psutil name, listing the valid ones when it is
/// none of them.
fn parse_status(s: &str) -> Result<ProcessStatus, String> {
    ProcessStatus::from_short_name(s.trim()).ok_or_else(|| {
        format!(
            "unknown status {s:?}; valid statuses: {}",
            ProcessStatus::short_names().join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_before_or_after_the_subcommand() {
        let before = Cli::try_parse_from(["hostscope", "--output", "json", "--plaintext", "host"])
            .expect("before");
        let after = Cli::try_parse_from(["hostscope", "host", "--output", "json", "--plaintext"])
            .expect("after");
        for cli in [before, after] {
            assert_eq!(cli.global.output, Output::Json);
            assert!(cli.global.plaintext);
        }
    }

    #[test]
    fn the_help_lists_every_field_and_status() {
        use hostscope_client::proto::ProcessField;
        for name in ProcessField::short_names()
            .iter()
            .chain(&ProcessStatus::short_names())
        {
            assert!(
                PS_EXAMPLES.contains(name.as_str()),
                "ps --help does not mention {name}"
            );
        }
    }

    #[test]
    fn statuses_are_checked() {
        let cli = Cli::try_parse_from(["hostscope", "ps", "--status", "zombie,disk_sleep"])
            .expect("statuses");
        match cli.command {
            Command::Ps(ps) => {
                assert_eq!(ps.status, [ProcessStatus::Zombie, ProcessStatus::DiskSleep])
            }
            other => panic!("parsed as {other:?}"),
        }
        let e =
            Cli::try_parse_from(["hostscope", "ps", "--status", "undead"]).expect_err("bad status");
        assert!(
            e.to_string().contains("valid statuses: running, sleeping"),
            "{e}"
        );
    }

    #[test]
    fn pki_issue_needs_a_role() {
        let issue = |role: &[&str]| {
            let base = ["hostscope", "pki", "issue", "--dir", "d", "--name", "n"];
            Cli::try_parse_from(base.iter().chain(role))
        };
        assert!(issue(&[]).is_err());
        assert!(issue(&["--server", "--client"]).is_err());
        assert!(issue(&["--client"]).is_ok());
    }
}
