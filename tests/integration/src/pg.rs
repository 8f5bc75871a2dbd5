//! A throwaway PostgreSQL cluster for the store's tests: initdb into a
//! temporary directory, the server on a Unix socket there (no TCP at
//! all), run as `nobody` (PostgreSQL refuses root), killed with its
//! process group when dropped, pass or fail.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail};

use crate::child::ChildGroup;

/// The user the cluster runs as.
const USER: &str = "nobody";

/// A running cluster; stopped (its process group killed) when dropped,
/// before its directory is removed.
pub struct PgCluster {
    _server: ChildGroup,
    socket_dir: PathBuf,
    dir: tempfile::TempDir,
}

/// The directory of PostgreSQL's programs (`initdb`, `postgres`), newest
/// version first, if any is installed.
pub fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    dirs.pop()
}

/// Why the PostgreSQL tests cannot run here, if they cannot: no server
/// installed, not root (to run it as `nobody`), or no setpriv.
pub fn unavailable() -> Option<String> {
    if bin_dir().is_none() {
        return Some("no PostgreSQL server (/usr/lib/postgresql/*/bin/initdb)".into());
    }
    if !rustix::process::geteuid().is_root() {
        return Some(format!("not root: the test cluster runs as {USER}"));
    }
    if !Path::new("/usr/bin/setpriv").exists() {
        return Some("no setpriv to run the test cluster as nobody".into());
    }
    None
}

/// `cmd` run as [`USER`], through setpriv (which execs: no process in
/// between to outlive a kill).
fn as_user(program: &Path) -> Command {
    let mut cmd = Command::new("/usr/bin/setpriv");
    cmd.args([
        "--reuid",
        USER,
        "--regid",
        "nogroup",
        "--clear-groups",
        "--",
    ])
    .arg(program);
    cmd
}

impl PgCluster {
    /// initdb and start a cluster; returns once it accepts connections
    /// (or fails after a generous wait for a loaded machine).
    pub fn start() -> Result<PgCluster> {
        let bin = bin_dir().context("no PostgreSQL server installed")?;
        let dir = tempfile::Builder::new().prefix("hostscope-pg").tempdir()?;
        let (data, socket_dir) = (dir.path().join("data"), dir.path().join("sock"));
        std::fs::create_dir(&socket_dir)?;
        let chown = Command::new("chown")
            .args(["-R", &format!("{USER}:nogroup")])
            .arg(dir.path())
            .status()?;
        if !chown.success() {
            bail!("chown of {} failed", dir.path().display());
        }
        let initdb = as_user(&bin.join("initdb"))
            .args(["--auth", "trust", "--username", "hostscope", "--no-sync"])
            .args(["--encoding", "UTF8", "--locale", "C", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()?;
        if !initdb.status.success() {
            bail!("initdb: {}", String::from_utf8_lossy(&initdb.stderr));
        }
        let server = ChildGroup::spawn(
            as_user(&bin.join("postgres"))
                .arg("-D")
                .arg(&data)
                .arg("-k")
                .arg(&socket_dir)
                // No TCP: only the socket in the temporary directory.
                .args(["-c", "listen_addresses=", "-c", "fsync=off"])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        let cluster = PgCluster {
            _server: server,
            socket_dir,
            dir,
        };
        let ready = bin.join("pg_isready");
        let mut up = false;
        for _ in 0..600 {
            let status = Command::new(&ready)
                .arg("-q")
                .arg("-h")
                .arg(&cluster.socket_dir)
                .status()?;
            if status.success() {
                up = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !up {
            bail!("the test cluster did not come up");
        }
        Ok(cluster)
    }

    /// The URL of database `db` (made by [`PgCluster::create_db`], or
    /// `postgres`).
    pub fn url(&self, db: &str) -> String {
        self.url_as(db, "hostscope")
    }

    /// The URL of database `db` as `user`.
    fn url_as(&self, db: &str, user: &str) -> String {
        format!(
            "postgres:///{db}?host={}&user={user}",
            self.socket_dir.display()
        )
    }

    /// `psql` on this cluster's socket as `user` into `db`, never asking
    /// for a password.
    fn psql(&self, bin: &Path, user: &str, db: &str) -> Command {
        let mut cmd = Command::new(bin.join("psql"));
        cmd.arg("-h")
            .arg(&self.socket_dir)
            .args(["-U", user, "-d", db, "-w"])
            .env_remove("PGPASSWORD");
        cmd
    }

    /// Makes a role `role` that logs in with `password` only (SCRAM,
    /// whatever the cluster's trust for others) and a database `db` it
    /// owns; returns the URL of `db` as `role`, which holds no password.
    pub fn create_role_with_password(
        &self,
        role: &str,
        password: &str,
        db: &str,
    ) -> Result<String> {
        let bin = bin_dir().context("no PostgreSQL server installed")?;
        let psql = |sql: &str| -> Result<()> {
            let out = self
                .psql(&bin, "hostscope", "postgres")
                .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
                .output()?;
            if !out.status.success() {
                bail!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(())
        };
        psql(&format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'"))?;
        psql(&format!("CREATE DATABASE {db} OWNER {role}"))?;
        // The first matching line wins: this one before the trust lines.
        let hba = self.dir.path().join("data").join("pg_hba.conf");
        let rest = std::fs::read_to_string(&hba)?;
        std::fs::write(&hba, format!("local all {role} scram-sha-256\n{rest}"))?;
        psql("SELECT pg_reload_conf()")?;
        // The reload is a signal: wait until a login without a password
        // is refused.
        let refused = || -> Result<bool> {
            let out = self
                .psql(&bin, role, db)
                .args(["-c", "SELECT 1"])
                .output()?;
            Ok(!out.status.success())
        };
        for _ in 0..600 {
            if refused()? {
                return Ok(self.url_as(db, role));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("the cluster still lets {role} in without a password")
    }

    /// Makes a database `db`.
    pub fn create_db(&self, db: &str) -> Result<()> {
        let bin = bin_dir().context("no PostgreSQL server installed")?;
        let out = Command::new(bin.join("createdb"))
            .arg("-h")
            .arg(&self.socket_dir)
            .args(["-U", "hostscope", db])
            .output()?;
        if !out.status.success() {
            bail!("createdb {db}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }
}
