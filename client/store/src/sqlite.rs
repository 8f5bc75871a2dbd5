//! The embedded store: one SQLite file, in WAL mode, readable by its
//! owner only.

use std::{
    fs::OpenOptions,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    time::Duration,
};

use rusqlite::{Connection, OpenFlags, params_from_iter, types::ValueRef};

use crate::{
    Error, QueryResult, Val,
    core::{Db, Step},
    schema::Dialect,
};

/// A SQLite connection.
pub(crate) struct Sqlite {
    conn: Connection,
}

/// Writes wait this long for another writer (a second collector on the
/// same file) rather than failing at once.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

impl Sqlite {
    /// Opens (creating it, mode 0600, when missing) the store at `path`
    /// for writing.
    pub(crate) fn open(path: &Path) -> Result<Sqlite, Error> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| Error::Create {
                path: path.to_owned(),
                source,
            })?;
        let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
        let sqlite = Sqlite { conn };
        sqlite.setup(true)?;
        Ok(sqlite)
    }

    /// Opens the store at `path` read-only.
    pub(crate) fn open_read_only(path: &Path) -> Result<Sqlite, Error> {
        if !path.exists() {
            return Err(Error::Missing(path.display().to_string()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
        let sqlite = Sqlite { conn };
        sqlite.setup(false)?;
        Ok(sqlite)
    }

    /// A store in memory, gone when dropped.
    pub(crate) fn in_memory() -> Result<Sqlite, Error> {
        let conn = Connection::open_in_memory()?;
        let sqlite = Sqlite { conn };
        sqlite.setup(false)?;
        Ok(sqlite)
    }

    fn setup(&self, wal: bool) -> Result<(), Error> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        if wal {
            // WAL lets readers (`hostscope sql`) read while a collector
            // writes.
            self.conn
                .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
            self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        // A snapshot runs the same few dozen statements for every host.
        self.conn.set_prepared_statement_cache_capacity(64);
        Ok(())
    }

    /// Runs one statement that reads, and refuses one that would write.
    pub(crate) fn query(&self, sql: &str) -> Result<QueryResult, Error> {
        let mut stmt = self.conn.prepare(sql)?;
        if !stmt.readonly() {
            return Err(Error::NotReadOnly);
        }
        let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let n = columns.len();
        let mut rows = Vec::new();
        let mut cursor = stmt.query([])?;
        while let Some(row) = cursor.next()? {
            rows.push(
                (0..n)
                    .map(|i| value(row.get_ref(i)))
                    .collect::<Result<_, _>>()?,
            );
        }
        Ok(QueryResult { columns, rows })
    }
}

fn open_error(path: &Path, source: rusqlite::Error) -> Error {
    Error::Open {
        path: PathBuf::from(path),
        source: Box::new(Error::Sqlite(source)),
    }
}

fn value(v: rusqlite::Result<ValueRef<'_>>) -> Result<Val, Error> {
    Ok(match v? {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(i) => Val::Int(i),
        ValueRef::Real(f) => Val::Real(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
    })
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Val::Null => ValueRef::Null,
            Val::Int(i) => ValueRef::Integer(*i),
            Val::Real(f) => ValueRef::Real(*f),
            Val::Bool(b) => ValueRef::Integer((*b).into()),
            Val::Text(s) => ValueRef::Text(s.as_bytes()),
        }))
    }
}

/// `$1`-style parameters as `?1`: SQLite numbers `$1` by where it first
/// appears, not by its digits.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('$', Some(d)) if d.is_ascii_digit() => out.push('?'),
            _ => out.push(c),
        }
    }
    out
}

impl Db for Sqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn batch(&mut self, sql: &str) -> Result<(), Error> {
        Ok(self.conn.execute_batch(sql)?)
    }

    async fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, Error> {
        let n = self
            .conn
            .prepare_cached(&numbered(sql))?
            .execute(params_from_iter(params))?;
        Ok(n as u64)
    }

    async fn run(&mut self, steps: &[Step]) -> Result<(), Error> {
        for step in steps.iter().filter(|s| !s.rows.is_empty()) {
            let mut stmt = self.conn.prepare_cached(&numbered(&step.sql))?;
            for row in &step.rows {
                stmt.execute(params_from_iter(row))?;
            }
        }
        Ok(())
    }

    async fn rows(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, Error> {
        let mut stmt = self.conn.prepare_cached(&numbered(sql))?;
        let n = stmt.column_count();
        let mut cursor = stmt.query(params_from_iter(params))?;
        let mut rows = Vec::new();
        while let Some(row) = cursor.next()? {
            rows.push(
                (0..n)
                    .map(|i| value(row.get_ref(i)))
                    .collect::<Result<_, _>>()?,
            );
        }
        Ok(rows)
    }
}
