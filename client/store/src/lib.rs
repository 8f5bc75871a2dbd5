//! The fleet inventory store: what hostscope agents answered, one
//! snapshot per collection, in SQLite (an embedded file, the default) or
//! PostgreSQL (for several collectors writing to one database).
//!
//! The schema ([`schema_text`]) is the same on both: `hosts`, `scrapes`
//! (one per host per collection, answered or not), per scrape
//! `host_facts`, `processes`, `zombies`, `interfaces`, `addresses`,
//! `system_figures`, `disks` and `sockets`, the compact history
//! `process_spans`, `process_events` from WatchProcesses, and views
//! `latest_*` with each host's last successful state and its age. It is
//! created and kept up to date by versioned migrations, applied when a
//! writer first opens the store.

#![warn(missing_docs)]
#![deny(unsafe_code)]

mod core;
mod postgres;
mod rows;
mod schema;
mod sqlite;

use std::{
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

pub use self::{
    core::{AddressRef, HostDiff, LinkChange, ProcessRef, Pruned, ZombieRef},
    rows::{HostId, Listening, Outcome, Scrape, Snapshot},
    schema::Dialect,
};
use self::{postgres::Postgres, sqlite::Sqlite};

/// What can go wrong with a store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite refused a statement; its own message.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A store could not be opened.
    #[error("opening the store {}: {source}", .path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<Error>,
    },
    /// A store file could not be created.
    #[error("creating the store {}: {source}", .path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A store to read does not exist.
    #[error("no store at {0} (hostscope collect writes one)")]
    Missing(String),
    /// The store's schema is not the one this program knows.
    #[error(
        "the store's schema is version {found}, this hostscope knows version {known}{}",
        if *.found == 0 { " (not a hostscope store, or nothing collected yet)" } else { "" }
    )]
    Version {
        /// The store's version (0: none).
        found: i64,
        /// This program's.
        known: i64,
    },
    /// A statement given to read would write.
    #[error("only statements that read (SELECT, WITH, EXPLAIN) are allowed")]
    NotReadOnly,
    /// PostgreSQL refused a statement or the connection; its own message.
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    /// A PostgreSQL URL that cannot be used.
    #[error("the PostgreSQL URL: {0}")]
    Url(String),
    /// A value could not be encoded.
    #[error("encoding a value: {0}")]
    Encode(String),
}

/// A value of a column: what both databases hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// A boolean (SQLite keeps it as 0 or 1).
    Bool(bool),
    /// Text.
    Text(String),
}

impl Val {
    /// The integer, if it is one (a boolean counts as 0 or 1).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            Val::Bool(b) => Some((*b).into()),
            _ => None,
        }
    }

    /// The number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Real(f) => Some(*f),
            Val::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The text, if it is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if it is one (or an integer, as SQLite keeps them).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Val::Bool(b) => Some(*b),
            Val::Int(i) => Some(*i != 0),
            _ => None,
        }
    }

    /// The value as JSON (a non-finite number becomes null).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Val::Null => serde_json::Value::Null,
            Val::Int(i) => (*i).into(),
            Val::Real(f) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Val::Bool(b) => (*b).into(),
            Val::Text(s) => s.clone().into(),
        }
    }
}

/// The answer to a query: column names and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// The columns' names, in order.
    pub columns: Vec<String>,
    /// The rows, each as long as `columns`.
    pub rows: Vec<Vec<Val>>,
}

/// The schema as SQL, for `dialect`.
pub fn schema_text(dialect: Dialect) -> String {
    schema::text(dialect)
}

/// The current time, seconds since the epoch.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// An open store.
pub struct Store {
    backend: Backend,
}

enum Backend {
    Sqlite(Sqlite),
    Postgres(Postgres),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dialect", &self.dialect())
            .finish()
    }
}

/// Runs `$body` with `$db` bound to the backend's connection and `$begin`
/// to its statement that opens a write transaction.
macro_rules! with_db {
    ($store:expr, |$db:ident, $begin:ident| $body:expr) => {
        match &mut $store.backend {
            Backend::Sqlite($db) => {
                // IMMEDIATE: take the write lock up front, so that two
                // writers wait for each other instead of failing midway.
                let $begin = "BEGIN IMMEDIATE";
                $body
            }
            Backend::Postgres($db) => {
                let $begin = "BEGIN";
                $body
            }
        }
    };
}

impl Store {
    /// Opens the SQLite store at `path` for writing, creating it (mode
    /// 0600) and bringing its schema up to date.
    pub async fn open_sqlite(path: &Path) -> Result<Store, Error> {
        let mut store = Store {
            backend: Backend::Sqlite(Sqlite::open(path)?),
        };
        store.migrate().await.map_err(|e| Error::Open {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        Ok(store)
    }

    /// Opens the SQLite store at `path` read-only; its schema must be
    /// this program's.
    pub async fn open_sqlite_read_only(path: &Path) -> Result<Store, Error> {
        let mut store = Store {
            backend: Backend::Sqlite(Sqlite::open_read_only(path)?),
        };
        with_db!(store, |db, _begin| core::check_version(db).await).map_err(|e| Error::Open {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        Ok(store)
    }

    /// A SQLite store in memory, with the schema, gone when dropped.
    pub async fn in_memory() -> Result<Store, Error> {
        let mut store = Store {
            backend: Backend::Sqlite(Sqlite::in_memory()?),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Connects to the PostgreSQL database at `url` for writing and
    /// brings its schema up to date. The password comes apart from the
    /// URL, which must hold none.
    pub async fn open_postgres(url: &str, password: Option<String>) -> Result<Store, Error> {
        let mut store = Store {
            backend: Backend::Postgres(Postgres::connect(url, password).await?),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Connects to the PostgreSQL database at `url` to read; its schema
    /// must be this program's.
    pub async fn open_postgres_read_only(
        url: &str,
        password: Option<String>,
    ) -> Result<Store, Error> {
        let mut store = Store {
            backend: Backend::Postgres(Postgres::connect(url, password).await?),
        };
        with_db!(store, |db, _begin| core::check_version(db).await)?;
        Ok(store)
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        match &self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    async fn migrate(&mut self) -> Result<(), Error> {
        with_db!(self, |db, begin| core::migrate(db, begin).await)
    }

    /// Writes one host's scrape, all its rows in one transaction; returns
    /// the scrape's id.
    pub async fn write_scrape(&mut self, scrape: &Scrape) -> Result<i64, Error> {
        with_db!(self, |db, begin| core::write_scrape(db, begin, scrape)
            .await)
    }

    /// Appends WatchProcesses events of `host`, in one transaction.
    pub async fn write_events(
        &mut self,
        host: &HostId,
        events: &[hostscope_proto::ProcessEvent],
    ) -> Result<(), Error> {
        with_db!(self, |db, begin| core::write_events(
            db, begin, host, events
        )
        .await)
    }

    /// Removes scrapes, spans and events older than `cutoff` (seconds
    /// since the epoch), keeping each host's latest scrape and latest
    /// successful one.
    pub async fn prune(&mut self, cutoff: f64) -> Result<Pruned, Error> {
        with_db!(self, |db, begin| core::prune(db, begin, cutoff).await)
    }

    /// What changed per host (every host, or `host`) between its last
    /// successful scrape at or before `since` and its latest.
    pub async fn diff(&mut self, since: f64, host: Option<&str>) -> Result<Vec<HostDiff>, Error> {
        // A read transaction: one consistent view of the store.
        with_db!(self, |db, _begin| core::diff(db, "BEGIN", since, host)
            .await)
    }

    /// Runs one statement that reads and returns its rows; a statement
    /// that would write is refused.
    pub async fn query(&mut self, sql: &str) -> Result<QueryResult, Error> {
        match &mut self.backend {
            Backend::Sqlite(db) => db.query(sql),
            Backend::Postgres(db) => db.query(sql).await,
        }
    }
}

#[cfg(test)]
mod tests;
