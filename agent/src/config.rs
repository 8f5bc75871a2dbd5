//! The agent's configuration: a TOML file, overridden by flags.
//!
//! Flags are parsed first as the user typed them ([`Flags`]), then merged
//! with the file into a resolved [`Config`] that the rest of the agent
//! trusts.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use crate::{
    authz::{DataClass, Policy},
    server, service,
};

/// Default port of an agent.
pub const DEFAULT_PORT: u16 = 7443;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The configuration file. Every key is optional; see
/// `deploy/agent.example.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub listen: Option<SocketAddr>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
    pub insecure_plaintext: Option<bool>,
    pub procfs_path: Option<PathBuf>,
    pub sysfs_path: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    /// Loopback address of the plaintext health endpoint (`--health-listen`).
    pub health_listen: Option<SocketAddr>,
    #[serde(default)]
    pub process: ProcessSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub authz: AuthzSection,
    #[serde(default)]
    pub privacy: PrivacySection,
    #[serde(default)]
    pub audit: AuditSection,
    #[serde(default)]
    pub watch: WatchSection,
}

/// Where process events come from, as configured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum WatchModeSetting {
    /// The kernel's process connector when the agent may open it, else polling.
    #[default]
    Auto,
    /// Only the kernel's process connector (needs CAP_NET_ADMIN).
    Netlink,
    /// Diff the process table every poll interval.
    Poll,
}

impl From<WatchModeSetting> for crate::backend::WatchMode {
    fn from(setting: WatchModeSetting) -> Self {
        match setting {
            WatchModeSetting::Auto => crate::backend::WatchMode::Auto,
            WatchModeSetting::Netlink => crate::backend::WatchMode::Kernel,
            WatchModeSetting::Poll => crate::backend::WatchMode::Poll,
        }
    }
}

/// `[watch]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSection {
    pub mode: Option<WatchModeSetting>,
    /// Seconds between table diffs in polling mode.
    pub poll_interval_secs: Option<f64>,
    pub max_watchers: Option<usize>,
    pub max_watchers_per_client: Option<usize>,
}

/// `[authz]`: roles by client certificate identity (CN or SAN name).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthzSection {
    /// Identities that may call the read RPCs. Absent: any certificate the
    /// fleet CA signed.
    pub readers: Option<Vec<String>>,
    /// Identities that may also signal processes. Absent or empty: nobody.
    #[serde(default)]
    pub operators: Vec<String>,
}

/// `[privacy]`: what readers may not see.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySection {
    /// Classes of data withheld from readers: "connections", "open_files",
    /// "environ", "memory_maps". Operators see them all.
    #[serde(default)]
    pub withhold: Vec<DataClass>,
}

/// `[audit]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Append one JSON line per signal request to this file, besides the log.
    pub file: Option<PathBuf>,
}

/// `[process]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSection {
    /// Serve process environments. Off by default: they hold secrets.
    pub environ: Option<bool>,
}

/// `[limits]`: see [`server::Limits`] for what each bounds.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub request_timeout_secs: Option<u64>,
    pub handshake_timeout_secs: Option<u64>,
    pub max_handshakes: Option<usize>,
    pub max_handshakes_per_peer: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_connections_per_peer: Option<usize>,
    pub max_connections_per_identity: Option<usize>,
    pub idle_timeout_secs: Option<u64>,
    pub shutdown_grace_secs: Option<u64>,
    pub max_concurrent_streams: Option<u32>,
    pub max_concurrent_scans: Option<usize>,
    pub stream_stall_timeout_secs: Option<u64>,
    pub max_buffered_bytes: Option<usize>,
    pub max_buffered_bytes_per_connection: Option<usize>,
}

/// Longest timeout the agent accepts, in seconds: a day. Longer ones are
/// mistakes (and overflow deadlines).
const MAX_TIMEOUT_SECS: u64 = 86_400;

/// `value` if set (and not zero), else `default`.
fn count<T>(key: &str, value: Option<T>, default: T) -> Result<T, Error>
where
    T: Copy + Default + PartialEq,
{
    match value {
        Some(n) if n == T::default() => Err(Error::Invalid(format!(
            "[limits] {key} = 0: must be at least 1"
        ))),
        Some(n) => Ok(n),
        None => Ok(default),
    }
}

/// `value` seconds if set (between `min` and a day), else `default`.
fn timeout(key: &str, value: Option<u64>, default: Duration, min: u64) -> Result<Duration, Error> {
    let Some(secs) = value else {
        return Ok(default);
    };
    if !(min..=MAX_TIMEOUT_SECS).contains(&secs) {
        return Err(Error::Invalid(format!(
            "[limits] {key} = {secs}: must be between {min} and {MAX_TIMEOUT_SECS} seconds{}",
            if secs == 0 {
                " (0 would time out at once)"
            } else {
                ""
            }
        )));
    }
    Ok(Duration::from_secs(secs))
}

impl LimitsSection {
    /// The limits this section sets over `defaults`, or what is wrong with
    /// it: a zero or absurd timeout, a zero count, a per-peer limit above
    /// its total.
    fn resolve(&self, defaults: server::Limits) -> Result<server::Limits, Error> {
        let limits = server::Limits {
            request_timeout: timeout(
                "request_timeout_secs",
                self.request_timeout_secs,
                defaults.request_timeout,
                1,
            )?,
            handshake_timeout: timeout(
                "handshake_timeout_secs",
                self.handshake_timeout_secs,
                defaults.handshake_timeout,
                1,
            )?,
            idle_timeout: timeout(
                "idle_timeout_secs",
                self.idle_timeout_secs,
                defaults.idle_timeout,
                1,
            )?,
            shutdown_grace: timeout(
                "shutdown_grace_secs",
                self.shutdown_grace_secs,
                defaults.shutdown_grace,
                0,
            )?,
            max_handshakes: count(
                "max_handshakes",
                self.max_handshakes,
                defaults.max_handshakes,
            )?,
            max_handshakes_per_peer: count(
                "max_handshakes_per_peer",
                self.max_handshakes_per_peer,
                defaults.max_handshakes_per_peer,
            )?,
            max_connections: count(
                "max_connections",
                self.max_connections,
                defaults.max_connections,
            )?,
            max_connections_per_peer: count(
                "max_connections_per_peer",
                self.max_connections_per_peer,
                defaults.max_connections_per_peer,
            )?,
            // Unset, it follows a lower max_connections: a file written
            // before the key existed keeps working.
            max_connections_per_identity: count(
                "max_connections_per_identity",
                self.max_connections_per_identity,
                defaults
                    .max_connections_per_identity
                    .min(self.max_connections.unwrap_or(defaults.max_connections)),
            )?,
            max_concurrent_streams: count(
                "max_concurrent_streams",
                self.max_concurrent_streams,
                defaults.max_concurrent_streams,
            )?,
            max_request_bytes: defaults.max_request_bytes,
        };
        count("max_concurrent_scans", self.max_concurrent_scans, 1)?;
        for (per_peer, per_peer_value, total, total_value) in [
            (
                "max_handshakes_per_peer",
                limits.max_handshakes_per_peer,
                "max_handshakes",
                limits.max_handshakes,
            ),
            (
                "max_connections_per_peer",
                limits.max_connections_per_peer,
                "max_connections",
                limits.max_connections,
            ),
            (
                "max_connections_per_identity",
                limits.max_connections_per_identity,
                "max_connections",
                limits.max_connections,
            ),
        ] {
            if per_peer_value > total_value {
                return Err(Error::Invalid(format!(
                    "[limits] {per_peer} ({per_peer_value}) is above {total} ({total_value})"
                )));
            }
        }
        Ok(limits)
    }

    /// `max_buffered_bytes` and `max_buffered_bytes_per_connection` over
    /// `defaults`: each at least [`service::MIN_BUFFERED_BYTES`], the
    /// per-connection one not above the total.
    fn buffered_bytes(&self, defaults: &service::Options) -> Result<(usize, usize), Error> {
        let total = self
            .max_buffered_bytes
            .unwrap_or(defaults.max_buffered_bytes);
        let per_connection = self
            .max_buffered_bytes_per_connection
            .unwrap_or(defaults.max_buffered_bytes_per_connection);
        for (key, value) in [
            ("max_buffered_bytes", total),
            ("max_buffered_bytes_per_connection", per_connection),
        ] {
            if value < service::MIN_BUFFERED_BYTES {
                return Err(Error::Invalid(format!(
                    "[limits] {key} = {value}: must be at least {} (one batch of a listing)",
                    service::MIN_BUFFERED_BYTES
                )));
            }
        }
        if per_connection > total {
            return Err(Error::Invalid(format!(
                "[limits] max_buffered_bytes_per_connection ({per_connection}) is above \
                 max_buffered_bytes ({total})"
            )));
        }
        Ok((total, per_connection))
    }
}

impl File {
    /// Reads and parses `path`; errors name the file, line and key.
    pub fn load(path: &Path) -> Result<File, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| Error::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }
}

/// The command line, as typed.
#[derive(Debug, clap::Parser)]
#[command(
    name = "hostscope-agent",
    version,
    about = "Serve what the kernel knows about processes and network interfaces over gRPC with mutual TLS.",
    after_help = "\
Examples:
  # mutual TLS (certificates from `hostscope pki`):
  hostscope-agent --listen 0.0.0.0:7443 \\
      --cert /etc/hostscope/agent.pem --key /etc/hostscope/agent-key.pem \\
      --client-ca /etc/hostscope/ca.pem

  # everything from a file, one flag overridden:
  hostscope-agent --config /etc/hostscope/agent.toml --log-format json

  # local experiments only: plaintext is refused on non-loopback addresses
  hostscope-agent --listen 127.0.0.1:7443 --insecure-plaintext

Flags override the file. The agent stops gracefully on SIGTERM or SIGINT,
letting calls in flight finish. SIGHUP reloads the certificate, key and
client CA; changed files are also picked up within 10 seconds."
)]
pub struct Flags {
    /// Address to listen on [default: 0.0.0.0:7443].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// The agent's certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The agent's private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// CA that signs client certificates (PEM); clients without one are refused.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Serve without TLS. Refused unless --listen is a loopback address.
    #[arg(long)]
    pub insecure_plaintext: bool,
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where procfs is mounted, e.g. a host's /proc seen from a container [default: /proc].
    #[arg(long, value_name = "DIR")]
    pub procfs_path: Option<PathBuf>,
    /// Where sysfs is mounted [default: /sys].
    #[arg(long, value_name = "DIR")]
    pub sysfs_path: Option<PathBuf>,
    /// Log line format [default: text]. RUST_LOG sets the level (default info).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Serve process environments (they often hold secrets).
    #[arg(long)]
    pub environ: bool,
    /// Client identity (certificate CN or SAN name) that may signal
    /// processes; repeatable, added to [authz] operators. Nobody may by default.
    #[arg(long = "operator", value_name = "IDENTITY")]
    pub operators: Vec<String>,
    /// Withhold a class of data from readers (operators still see it); repeatable,
    /// added to [privacy] withhold.
    #[arg(long = "withhold", value_name = "CLASS", value_enum)]
    pub withhold: Vec<DataClass>,
    /// Append an audit line (JSON) per signal request to FILE, besides the log.
    #[arg(long, value_name = "FILE")]
    pub audit_file: Option<PathBuf>,
    /// Where process events come from [default: auto: netlink when allowed, else poll].
    #[arg(long, value_enum)]
    pub watch_mode: Option<WatchModeSetting>,
    /// Also serve the gRPC health service, in plaintext, on this loopback
    /// address (e.g. 127.0.0.1:7444), for probes that have no client
    /// certificate; `hostscope-agent health` asks it. Off by default.
    #[arg(long, value_name = "ADDR")]
    pub health_listen: Option<SocketAddr>,
}

/// How the agent secures its connections.
#[derive(Clone, Debug)]
pub enum Security {
    MutualTls(server::TlsFiles),
    Plaintext,
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub security: Security,
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub log_format: LogFormat,
    pub service: service::Options,
    pub limits: server::Limits,
    /// Where signal requests are audited besides the log.
    pub audit_file: Option<PathBuf>,
    /// Loopback address of the plaintext health endpoint, if any.
    pub health_listen: Option<SocketAddr>,
}

impl Config {
    /// Merges `flags` over the file they name, and checks the result.
    pub fn resolve(flags: Flags) -> Result<Config, Error> {
        let file = match &flags.config {
            Some(path) => File::load(path)?,
            None => File::default(),
        };
        // Linux reads procfs and sysfs where they are by default; other
        // platforms only where the user pointed.
        let check_procfs =
            cfg!(target_os = "linux") || flags.procfs_path.is_some() || file.procfs_path.is_some();
        let check_sysfs =
            cfg!(target_os = "linux") || flags.sysfs_path.is_some() || file.sysfs_path.is_some();
        let config = Config::merge(flags, file)?;
        if check_procfs {
            check_dir(&config.procfs, "procfs", "--procfs-path")?;
        }
        if check_sysfs {
            check_dir(&config.sysfs, "sysfs", "--sysfs-path")?;
        }
        if let Security::MutualTls(files) = &config.security {
            check_client_ca(&files.client_ca)?;
        }
        Ok(config)
    }

    fn merge(flags: Flags, file: File) -> Result<Config, Error> {
        let listen = flags
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)));
        let plaintext = flags.insecure_plaintext || file.insecure_plaintext.unwrap_or(false);
        let cert = flags.cert.or(file.cert);
        let key = flags.key.or(file.key);
        let client_ca = flags.client_ca.or(file.client_ca);

        let security = if plaintext {
            if !listen.ip().is_loopback() {
                return Err(Error::Invalid(format!(
                    "refusing to serve plaintext on {listen}: --insecure-plaintext is allowed only \
                     on a loopback address such as 127.0.0.1:{port}; use --cert, --key and \
                     --client-ca for anything else",
                    port = listen.port()
                )));
            }
            Security::Plaintext
        } else {
            match (cert, key, client_ca) {
                (Some(cert), Some(key), Some(client_ca)) => Security::MutualTls(server::TlsFiles {
                    cert,
                    key,
                    client_ca,
                }),
                (cert, key, ca) => {
                    let missing: Vec<&str> = [
                        ("--cert", cert.is_none()),
                        ("--key", key.is_none()),
                        ("--client-ca", ca.is_none()),
                    ]
                    .into_iter()
                    .filter_map(|(flag, missing)| missing.then_some(flag))
                    .collect();
                    return Err(Error::Invalid(format!(
                        "mutual TLS needs --cert, --key and --client-ca (missing: {}); \
                         `hostscope pki` makes them. For a local experiment, \
                         --insecure-plaintext on a loopback address",
                        missing.join(", ")
                    )));
                }
            }
        };

        let limits = file.limits.resolve(server::Limits::default())?;
        let service_defaults = service::Options::default();
        let (max_buffered_bytes, max_buffered_bytes_per_connection) =
            file.limits.buffered_bytes(&service_defaults)?;
        let watch_defaults = service::watch::WatchOptions::default();
        if file
            .watch
            .poll_interval_secs
            .is_some_and(|s| !(0.01..=3600.0).contains(&s))
        {
            return Err(Error::Invalid(
                "[watch] poll_interval_secs must be between 0.01 and 3600".into(),
            ));
        }
        Ok(Config {
            listen,
            security,
            procfs: flags
                .procfs_path
                .or(file.procfs_path)
                .unwrap_or_else(|| "/proc".into()),
            sysfs: flags
                .sysfs_path
                .or(file.sysfs_path)
                .unwrap_or_else(|| "/sys".into()),
            log_format: flags.log_format.or(file.log_format).unwrap_or_default(),
            service: service::Options {
                environ: flags.environ || file.process.environ.unwrap_or(false),
                max_concurrent_scans: file
                    .limits
                    .max_concurrent_scans
                    .unwrap_or(service_defaults.max_concurrent_scans),
                stream_stall_timeout: timeout(
                    "stream_stall_timeout_secs",
                    file.limits.stream_stall_timeout_secs,
                    service_defaults.stream_stall_timeout,
                    1,
                )?,
                max_buffered_bytes,
                max_buffered_bytes_per_connection,
                watch: service::watch::WatchOptions {
                    mode: flags
                        .watch_mode
                        .or(file.watch.mode)
                        .unwrap_or_default()
                        .into(),
                    poll_interval: file
                        .watch
                        .poll_interval_secs
                        .map_or(watch_defaults.poll_interval, Duration::from_secs_f64),
                    max_watchers: file
                        .watch
                        .max_watchers
                        .unwrap_or(watch_defaults.max_watchers),
                    max_watchers_per_client: file
                        .watch
                        .max_watchers_per_client
                        .unwrap_or(watch_defaults.max_watchers_per_client),
                    ..watch_defaults
                },
                policy: Policy {
                    readers: file.authz.readers,
                    operators: file
                        .authz
                        .operators
                        .into_iter()
                        .chain(flags.operators)
                        .collect(),
                    withheld: file
                        .privacy
                        .withhold
                        .into_iter()
                        .chain(flags.withhold)
                        .collect(),
                },
            },
            limits,
            audit_file: flags.audit_file.or(file.audit.file),
            health_listen: loopback_health(flags.health_listen.or(file.health_listen))?,
        })
    }
}

/// The health endpoint answers anyone without a certificate, so, like
/// plaintext serving, it is allowed only on a loopback address.
fn loopback_health(addr: Option<SocketAddr>) -> Result<Option<SocketAddr>, Error> {
    match addr {
        Some(addr) if !addr.ip().is_loopback() => Err(Error::Invalid(format!(
            "refusing the health endpoint on {addr}: --health-listen serves plaintext, so it \
             must be a loopback address such as 127.0.0.1:{port}",
            port = addr.port()
        ))),
        addr => Ok(addr),
    }
}

/// Refuses a `path` for `what` (procfs, sysfs) that is not a directory.
fn check_dir(path: &Path, what: &str, flag: &str) -> Result<(), Error> {
    let problem = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => "is not a directory".to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist".to_owned(),
        Err(e) => format!("cannot be read: {e}"),
    };
    Err(Error::Invalid(format!(
        "{what} path {} {problem}: point {flag} (or {}_path in the file) at where {what} is mounted",
        path.display(),
        what
    )))
}

/// Refuses a client CA file that holds anything but CA certificates, or
/// that is no regular file: the check the agent makes again each time it
/// loads the file (see [`crate::tls::check_client_ca`]).
pub fn check_client_ca(path: &Path) -> Result<(), Error> {
    crate::tls::check_client_ca_file(path).map_err(|e| Error::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn flags(args: &[&str]) -> Flags {
        Flags::parse_from(std::iter::once("hostscope-agent").chain(args.iter().copied()))
    }

    #[test]
    fn plaintext_is_refused_off_loopback() {
        let err = Config::merge(
            flags(&["--listen", "0.0.0.0:7443", "--insecure-plaintext"]),
            File::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        let ok = Config::merge(
            flags(&["--listen", "[::1]:7443", "--insecure-plaintext"]),
            File::default(),
        );
        assert!(matches!(ok.map(|c| c.security), Ok(Security::Plaintext)));
    }

    #[test]
    fn the_health_endpoint_is_loopback_only() {
        let tls = ["--cert", "a.pem", "--key", "k.pem", "--client-ca", "ca.pem"];
        let with = |addr: &str| {
            let mut args = tls.to_vec();
            args.extend(["--health-listen", addr]);
            Config::merge(flags(&args), File::default())
        };
        let err = with("192.0.2.1:7444").unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        let ok = with("127.0.0.1:7444").unwrap();
        assert_eq!(ok.health_listen, Some("127.0.0.1:7444".parse().unwrap()));
        let none = Config::merge(flags(&tls), File::default()).unwrap();
        assert_eq!(none.health_listen, None);
    }

    #[test]
    fn mutual_tls_names_what_is_missing() {
        let err = Config::merge(flags(&["--cert", "a.pem"]), File::default()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("--key") && msg.contains("--client-ca"),
            "{msg}"
        );
        assert!(!msg.contains("missing: --cert"), "{msg}");
    }

    #[test]
    fn flags_override_the_file() {
        let file: File = toml::from_str(
            r#"
            listen = "127.0.0.1:9000"
            cert = "/etc/hs/agent.pem"
            key = "/etc/hs/agent-key.pem"
            client_ca = "/etc/hs/ca.pem"
            procfs_path = "/host/proc"
            log_format = "json"
            [process]
            environ = true
            [limits]
            request_timeout_secs = 5
            [authz]
            operators = ["alice"]
            [privacy]
            withhold = ["open_files"]
            [audit]
            file = "/var/log/hostscope/audit.log"
            "#,
        )
        .unwrap();
        let config = Config::merge(
            flags(&[
                "--listen",
                "127.0.0.2:9001",
                "--operator",
                "bob",
                "--withhold",
                "connections",
            ]),
            file,
        )
        .unwrap();
        assert_eq!(config.service.policy.operators, ["alice", "bob"]);
        assert_eq!(config.service.policy.readers, None);
        assert_eq!(
            config.service.policy.withheld,
            [DataClass::OpenFiles, DataClass::Connections]
        );
        assert_eq!(
            config.audit_file.as_deref(),
            Some(Path::new("/var/log/hostscope/audit.log"))
        );
        assert_eq!(config.listen, "127.0.0.2:9001".parse().unwrap());
        assert_eq!(config.procfs, PathBuf::from("/host/proc"));
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(config.service.environ);
        assert_eq!(config.limits.request_timeout, Duration::from_secs(5));
        assert!(matches!(config.security, Security::MutualTls(_)));
    }

    #[test]
    fn the_shipped_example_is_a_valid_configuration() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/agent.example.toml");
        let config = Config::merge(flags(&[]), File::load(&path).unwrap()).unwrap();
        assert_eq!(config.listen.port(), DEFAULT_PORT);
        assert!(!config.service.environ);
        assert!(
            config.service.policy.operators.is_empty(),
            "no operator by default"
        );
        assert!(matches!(config.security, Security::MutualTls(_)));
        // Its [limits] section names every limit, with its default.
        let (shipped, defaults) = (&config.limits, server::Limits::default());
        assert_eq!(
            format!("{shipped:?}"),
            format!("{defaults:?}"),
            "deploy/agent.example.toml's limits are not the defaults"
        );
        let service = service::Options::default();
        assert_eq!(
            (
                config.service.stream_stall_timeout,
                config.service.max_concurrent_scans,
                config.service.max_buffered_bytes,
                config.service.max_buffered_bytes_per_connection,
            ),
            (
                service.stream_stall_timeout,
                service.max_concurrent_scans,
                service.max_buffered_bytes,
                service.max_buffered_bytes_per_connection,
            )
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\nlisten_addr = 3\n").unwrap();
        let err = File::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("agent.toml") && err.contains("line 2"),
            "{err}"
        );
        assert!(err.contains("listen_addr"), "{err}");
    }

    fn limits(toml_text: &str) -> Result<server::Limits, Error> {
        let file: File = toml::from_str(toml_text).unwrap();
        Config::merge(
            flags(&["--listen", "127.0.0.1:1", "--insecure-plaintext"]),
            file,
        )
        .map(|c| c.limits)
    }

    #[test]
    fn zero_and_absurd_limits_are_refused_with_the_key() {
        for (text, key) in [
            ("request_timeout_secs = 0", "request_timeout_secs"),
            ("handshake_timeout_secs = 0", "handshake_timeout_secs"),
            ("idle_timeout_secs = 0", "idle_timeout_secs"),
            ("stream_stall_timeout_secs = 0", "stream_stall_timeout_secs"),
            (
                "request_timeout_secs = 18446744073709551615",
                "request_timeout_secs",
            ),
            ("max_handshakes = 0", "max_handshakes"),
            ("max_connections_per_peer = 0", "max_connections_per_peer"),
            (
                "max_connections_per_identity = 0",
                "max_connections_per_identity",
            ),
            ("max_concurrent_streams = 0", "max_concurrent_streams"),
            ("max_concurrent_scans = 0", "max_concurrent_scans"),
            ("max_buffered_bytes = 0", "max_buffered_bytes"),
            (
                "max_buffered_bytes_per_connection = 1000",
                "max_buffered_bytes_per_connection",
            ),
            (
                "max_buffered_bytes = 8388608\nmax_buffered_bytes_per_connection = 16777216",
                "max_buffered_bytes_per_connection (16777216) is above max_buffered_bytes",
            ),
        ] {
            let err = limits(&format!("[limits]\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let err = limits("[limits]\nrequest_timeout_secs = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("at once"), "{err}");
        let err = limits("[limits]\nmax_handshakes = 8\nmax_handshakes_per_peer = 9\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("max_handshakes_per_peer (9) is above max_handshakes (8)"),
            "{err}"
        );
    }

    #[test]
    fn limits_from_the_file_and_their_defaults() {
        let defaults = limits("").unwrap();
        assert_eq!(defaults.handshake_timeout, Duration::from_secs(5));
        assert!(defaults.max_handshakes_per_peer <= defaults.max_handshakes);
        assert!(defaults.max_connections_per_peer <= defaults.max_connections);
        let set = limits(
            "[limits]\nhandshake_timeout_secs = 2\nidle_timeout_secs = 30\n\
             shutdown_grace_secs = 0\nmax_connections = 10\nmax_connections_per_peer = 10\n",
        )
        .unwrap();
        assert_eq!(set.handshake_timeout, Duration::from_secs(2));
        assert_eq!(set.idle_timeout, Duration::from_secs(30));
        assert_eq!(set.shutdown_grace, Duration::ZERO, "no grace is allowed");
        assert_eq!(
            (set.max_connections, set.max_connections_per_peer),
            (10, 10)
        );
        assert_eq!(
            set.max_connections_per_identity, 10,
            "unset, the identity cap follows a lower max_connections"
        );
        let err = limits(
            "[limits]\nmax_connections = 10\nmax_connections_per_peer = 10\n\
             max_connections_per_identity = 11\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("max_connections_per_identity (11) is above max_connections (10)"),
            "{err}"
        );
    }

    #[test]
    fn missing_procfs_and_sysfs_paths_are_start_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nowhere");
        let missing = missing.to_str().unwrap();
        let plain = ["--listen", "127.0.0.1:1", "--insecure-plaintext"];

        let args: Vec<&str> = plain
            .iter()
            .copied()
            .chain(["--sysfs-path", missing])
            .collect();
        let err = Config::resolve(flags(&args)).unwrap_err().to_string();
        assert!(
            err.contains("sysfs path")
                && err.contains("does not exist")
                && err.contains("--sysfs-path"),
            "{err}"
        );

        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let args: Vec<&str> = plain
            .iter()
            .copied()
            .chain(["--procfs-path", file.to_str().unwrap()])
            .collect();
        let err = Config::resolve(flags(&args)).unwrap_err().to_string();
        assert!(
            err.contains("procfs path") && err.contains("is not a directory"),
            "{err}"
        );

        let args: Vec<&str> = plain
            .iter()
            .copied()
            .chain(["--procfs-path", "/proc", "--sysfs-path", "/sys"])
            .collect();
        Config::resolve(flags(&args)).expect("the host's own procfs and sysfs");
    }

    #[test]
    fn a_leaf_certificate_as_client_ca_is_refused() {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(vec![]).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params = CertificateParams::new(vec!["client.example.net".into()]).unwrap();
        leaf_params.is_ca = IsCa::NoCa;
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.pem()).unwrap();
        check_client_ca(&ca_path).expect("a CA certificate");

        let leaf_path = dir.path().join("client.pem");
        std::fs::write(&leaf_path, leaf.pem()).unwrap();
        let err = check_client_ca(&leaf_path).unwrap_err().to_string();
        assert!(
            err.contains("client.pem") && err.contains("not a CA certificate"),
            "{err}"
        );

        // A bundle with one leaf among CAs is refused as well.
        let bundle = dir.path().join("bundle.pem");
        std::fs::write(&bundle, format!("{}{}", ca.pem(), leaf.pem())).unwrap();
        let err = check_client_ca(&bundle).unwrap_err().to_string();
        assert!(err.contains("certificate 2"), "{err}");

        // Through the whole configuration, as at start.
        let leaf_path = leaf_path.to_str().unwrap();
        let err = Config::resolve(flags(&[
            "--cert",
            leaf_path,
            "--key",
            leaf_path,
            "--client-ca",
            leaf_path,
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a CA certificate"), "{err}");
    }
}
