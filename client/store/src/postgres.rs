//! The shared store: a PostgreSQL database, for several collectors (one
//! per shard of an inventory) writing to one place.

use std::{collections::HashMap, future::poll_fn, pin::pin, str::FromStr, task::Poll};

use bytes::BytesMut;
use tokio_postgres::{
    Client, Config, NoTls, SimpleQueryMessage, Statement,
    binary_copy::BinaryCopyInWriter,
    types::{IsNull, ToSql, Type, to_sql_checked},
};

use crate::{
    Error, QueryResult, Val,
    core::{Db, Step},
    schema::Dialect,
};

/// A PostgreSQL connection; the connection's task ends when it is dropped.
pub(crate) struct Postgres {
    client: Client,
    /// Statements prepared on this connection, by their text: a host's
    /// snapshot runs the same dozen statements as the last host's, and
    /// preparing is a round trip.
    prepared: HashMap<String, Statement>,
    /// The multi-row forms of one-row INSERTs, by the one-row text and
    /// then by their index in [`BATCH_SIZES`]: looked up without writing
    /// out a statement of 256 rows each time.
    batches: HashMap<String, [Option<Statement>; BATCH_SIZES.len()]>,
}

/// Rows per multi-row INSERT, largest first: `run` sends a run of
/// rows as the fewest of these, so that each table needs at most this
/// many prepared statements whatever its row counts.
const BATCH_SIZES: [usize; 5] = [256, 64, 16, 4, 1];

/// Runs of at least this many rows for a plain INSERT go in by COPY:
/// one statement, and the server writes the rows a page at a time.
const COPY_ROWS: usize = 64;

/// PostgreSQL takes at most this many parameters in one statement.
const MAX_PARAMS: usize = 65_535;

/// A parameter for a PostgreSQL statement.
type Param<'a> = &'a (dyn ToSql + Sync);

impl Postgres {
    /// Connects to `url` (postgres://user@host/db, or a Unix socket with
    /// `?host=/run/postgresql`), with `password` when given. A password
    /// in the URL is refused: it would be on the command line.
    pub(crate) async fn connect(url: &str, password: Option<String>) -> Result<Postgres, Error> {
        let mut config = Config::from_str(url).map_err(|e| Error::Url(e.to_string()))?;
        if config.get_password().is_some() {
            return Err(Error::Url(
                "the URL holds a password; give it in HOSTSCOPE_DB_PASSWORD or a password file \
                 instead, where other users cannot read it"
                    .into(),
            ));
        }
        if let Some(password) = password {
            config.password(password);
        }
        config.application_name("hostscope");
        let (client, connection) = config.connect(NoTls).await.map_err(pg)?;
        tokio::spawn(async move {
            // The client sees a broken connection as an error of its next
            // statement.
            let _ = connection.await;
        });
        Ok(Postgres {
            client,
            prepared: HashMap::new(),
            batches: HashMap::new(),
        })
    }

    /// Runs one statement in a read-only transaction and returns its
    /// rows, typed as the statement's columns are.
    pub(crate) async fn query(&mut self, sql: &str) -> Result<QueryResult, Error> {
        self.client
            .batch_execute("BEGIN TRANSACTION READ ONLY")
            .await
            .map_err(pg)?;
        let result = self.query_in_transaction(sql).await;
        let _ = self.client.batch_execute("ROLLBACK").await;
        result
    }

    async fn query_in_transaction(&mut self, sql: &str) -> Result<QueryResult, Error> {
        // Prepared first: one statement only, and the columns' types.
        let statement = self.client.prepare(sql).await.map_err(pg)?;
        let types: Vec<Type> = statement
            .columns()
            .iter()
            .map(|c| c.type_().clone())
            .collect();
        let columns = statement
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        // In text, so that every type (numeric, timestamps, json) reads.
        let messages = self.client.simple_query(sql).await.map_err(pg)?;
        let mut rows = Vec::new();
        for message in messages {
            if let SimpleQueryMessage::Row(row) = message {
                rows.push(
                    types
                        .iter()
                        .enumerate()
                        .map(|(i, ty)| from_text(row.get(i), ty))
                        .collect(),
                );
            }
        }
        Ok(QueryResult { columns, rows })
    }

    async fn prepared(&mut self, sql: &str) -> Result<Statement, Error> {
        if let Some(statement) = self.prepared.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await.map_err(pg)?;
        self.prepared.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// The one-row INSERT `sql` of `width` parameters as a statement of
    /// `BATCH_SIZES[which]` rows, prepared once.
    async fn batch(&mut self, sql: &str, width: usize, which: usize) -> Result<Statement, Error> {
        if let Some(statement) = self.batches.get(sql).and_then(|b| b[which].clone()) {
            return Ok(statement);
        }
        let text = multi_row(sql, width, BATCH_SIZES[which])?;
        let statement = self.client.prepare(&text).await.map_err(pg)?;
        self.batches.entry(sql.to_owned()).or_default()[which] = Some(statement.clone());
        Ok(statement)
    }

    /// Runs `calls` in order, all sent at once and their answers read as
    /// they come: one round trip for the lot, with the same first error
    /// as one by one.
    async fn pipeline(&self, calls: Vec<(Statement, Vec<Param<'_>>)>) -> Result<(), Error> {
        let mut answers: Vec<_> = calls
            .iter()
            .map(|(statement, params)| Some(Box::pin(self.client.execute(statement, params))))
            .collect();
        // Each statement is sent when its future is first polled: they
        // are polled in order, every time, until all have answered.
        let mut first_error = None;
        poll_fn(|cx| {
            for slot in &mut answers {
                if let Some(answer) = slot
                    && let Poll::Ready(result) = answer.as_mut().poll(cx)
                {
                    *slot = None;
                    if let Err(e) = result {
                        first_error.get_or_insert(e);
                    }
                }
            }
            if answers.iter().all(Option::is_none) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        first_error.map_or(Ok(()), |e| Err(pg(e)))
    }

    /// `rows` for the one-row INSERT `insert` through `copy`, its COPY
    /// in binary, typed as the INSERT's parameters.
    async fn copy(&mut self, insert: &str, copy: &str, rows: &[Vec<Val>]) -> Result<(), Error> {
        let types = self.prepared(insert).await?.params().to_vec();
        let copy = self.prepared(copy).await?;
        let sink = self.client.copy_in(&copy).await.map_err(pg)?;
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
        for row in rows {
            writer.as_mut().write_raw(row).await.map_err(pg)?;
        }
        writer.finish().await.map_err(pg)?;
        Ok(())
    }

    /// The statements that run `sql` once per row of `rows`, with their
    /// parameters, appended to `calls`: one statement for one row (any
    /// statement), else multi-row forms of the one-row INSERT `sql`.
    async fn calls<'a>(
        &mut self,
        sql: &str,
        rows: &'a [Vec<Val>],
        calls: &mut Vec<(Statement, Vec<Param<'a>>)>,
    ) -> Result<(), Error> {
        if let [row] = rows {
            calls.push((self.prepared(sql).await?, params(row)));
            return Ok(());
        }
        let Some(width) = rows.first().map(Vec::len).filter(|&w| w > 0) else {
            return Ok(());
        };
        let mut rest = rows;
        while !rest.is_empty() {
            // The last size, one row, always fits.
            let which = BATCH_SIZES
                .iter()
                .position(|&n| n <= rest.len() && n * width <= MAX_PARAMS)
                .unwrap_or(BATCH_SIZES.len() - 1);
            let (chunk, tail) = rest.split_at(BATCH_SIZES[which]);
            let statement = self.batch(sql, width, which).await?;
            calls.push((statement, params(chunk.iter().flatten())));
            rest = tail;
        }
        Ok(())
    }
}

/// PostgreSQL's own message, with its detail where it gives one.
fn pg(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => Error::Postgres(match db.detail() {
            Some(detail) => format!("{}: {detail}", db.message()),
            None => db.message().to_owned(),
        }),
        None => {
            // "invalid configuration" says little without its cause
            // ("password missing").
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !message.contains(&cause_text) {
                    message = format!("{message}: {cause_text}");
                }
                source = cause.source();
            }
            Error::Postgres(message)
        }
    }
}

/// A value is a parameter of the integer, float, boolean and text types,
/// written as the column's type asks, with no copy.
impl ToSql for Val {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match *ty {
            Type::INT8 => self.as_i64().to_sql(ty, out),
            Type::INT4 => self
                .as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .to_sql(ty, out),
            Type::FLOAT8 => self.as_f64().to_sql(ty, out),
            Type::BOOL => self.as_bool().to_sql(ty, out),
            _ => match self {
                Val::Null => Ok(IsNull::Yes),
                Val::Text(s) => s.as_str().to_sql(ty, out),
                Val::Int(i) => i.to_string().to_sql(ty, out),
                Val::Real(f) => f.to_string().to_sql(ty, out),
                Val::Bool(b) => b.to_string().to_sql(ty, out),
            },
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INT8 | Type::INT4 | Type::FLOAT8 | Type::BOOL)
            || <&str as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// The error type of [`ToSql`].
type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// `values` as statement parameters.
fn params<'a>(values: impl IntoIterator<Item = &'a Val>) -> Vec<Param<'a>> {
    values.into_iter().map(|v| v as Param<'a>).collect()
}

/// `sql`, an `INSERT ... VALUES ($1, ..., $width) [suffix]`, rewritten to
/// insert `rows` rows at once: one round trip and one execution instead
/// of `rows`.
fn multi_row(sql: &str, width: usize, rows: usize) -> Result<String, Error> {
    let malformed = || Error::Postgres(format!("not a one-row INSERT ... VALUES: {sql}"));
    let start = sql.find(" VALUES (").ok_or_else(malformed)?;
    let end = sql[start..].find(')').ok_or_else(malformed)? + start + 1;
    let mut out = String::with_capacity(sql.len() + rows * width * 6);
    out.push_str(&sql[..start]);
    out.push_str(" VALUES ");
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..width {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * width + c + 1).to_string());
        }
        out.push(')');
    }
    out.push_str(&sql[end..]);
    Ok(out)
}

/// `INSERT INTO t (columns) VALUES (...)` as `COPY t (columns) FROM STDIN`
/// in binary; none for any other statement (an INSERT with ON CONFLICT
/// has no COPY).
fn copy_of(sql: &str) -> Option<String> {
    let rest = sql.strip_prefix("INSERT INTO ")?;
    let (target, values) = rest.split_once(" VALUES (")?;
    // Nothing may follow the one row of parameters.
    (values.find(')')? + 1 == values.len())
        .then(|| format!("COPY {target} FROM STDIN (FORMAT binary)"))
}

/// A value PostgreSQL gave as text, read as its column's type.
fn from_text(text: Option<&str>, ty: &Type) -> Val {
    let Some(text) = text else {
        return Val::Null;
    };
    let parsed = match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => text.parse().ok().map(Val::Int),
        Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC => text.parse().ok().map(Val::Real),
        Type::BOOL => Some(Val::Bool(text == "t")),
        _ => None,
    };
    parsed.unwrap_or_else(|| Val::Text(text.to_owned()))
}

/// A value of a row, read as its column's type.
fn value(row: &tokio_postgres::Row, i: usize) -> Result<Val, Error> {
    let ty = row.columns().get(i).map(|c| c.type_().clone());
    let v = match ty {
        Some(Type::INT8) => row.try_get::<_, Option<i64>>(i).map(|v| v.map(Val::Int)),
        Some(Type::INT4) => row
            .try_get::<_, Option<i32>>(i)
            .map(|v| v.map(|n| Val::Int(n.into()))),
        Some(Type::FLOAT8) => row.try_get::<_, Option<f64>>(i).map(|v| v.map(Val::Real)),
        Some(Type::BOOL) => row.try_get::<_, Option<bool>>(i).map(|v| v.map(Val::Bool)),
        _ => row
            .try_get::<_, Option<String>>(i)
            .map(|v| v.map(Val::Text)),
    };
    Ok(v.map_err(pg)?.unwrap_or(Val::Null))
}

impl Db for Postgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn batch(&mut self, sql: &str) -> Result<(), Error> {
        self.client.batch_execute(sql).await.map_err(pg)
    }

    async fn exec(&mut self, sql: &str, values: &[Val]) -> Result<u64, Error> {
        let statement = self.prepared(sql).await?;
        self.client
            .execute(&statement, &params(values))
            .await
            .map_err(pg)
    }

    /// Large runs of rows go in by COPY; the statements between them are
    /// sent at once (pipelined): a host's snapshot is a few round trips,
    /// not one per statement.
    async fn run(&mut self, steps: &[Step]) -> Result<(), Error> {
        let mut calls = Vec::new();
        for step in steps {
            match copy_of(&step.sql).filter(|_| step.rows.len() >= COPY_ROWS) {
                Some(copy) => {
                    self.pipeline(std::mem::take(&mut calls)).await?;
                    self.copy(&step.sql, &copy, &step.rows).await?;
                }
                None => self.calls(&step.sql, &step.rows, &mut calls).await?,
            }
        }
        self.pipeline(calls).await
    }

    async fn rows(&mut self, sql: &str, values: &[Val]) -> Result<Vec<Vec<Val>>, Error> {
        let statement = self.prepared(sql).await?;
        let rows = self
            .client
            .query(&statement, &params(values))
            .await
            .map_err(pg)?;
        rows.iter()
            .map(|row| (0..row.len()).map(|i| value(row, i)).collect())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{copy_of, multi_row};

    #[test]
    fn a_value_is_refused_for_a_type_it_cannot_write() {
        use tokio_postgres::types::{ToSql, Type};

        use crate::Val;

        for ty in [Type::INT8, Type::INT4, Type::FLOAT8, Type::BOOL, Type::TEXT] {
            assert!(<Val as ToSql>::accepts(&ty), "{ty}");
        }
        let mut out = bytes::BytesMut::new();
        for ty in [Type::JSONB, Type::TIMESTAMPTZ, Type::BYTEA] {
            assert!(!<Val as ToSql>::accepts(&ty), "{ty}");
            assert!(Val::Text("x".into()).to_sql_checked(&ty, &mut out).is_err());
        }
        let written = Val::Int(7).to_sql_checked(&Type::INT8, &mut out);
        assert!(written.is_ok());
        assert_eq!(&out[..], 7i64.to_be_bytes());
    }

    #[test]
    fn a_plain_insert_has_a_copy_and_an_upsert_none() {
        assert_eq!(
            copy_of("INSERT INTO t (a, b) VALUES ($1, $2)").as_deref(),
            Some("COPY t (a, b) FROM STDIN (FORMAT binary)")
        );
        assert_eq!(
            copy_of("INSERT INTO t (a) VALUES ($1) ON CONFLICT (a) DO NOTHING"),
            None
        );
        assert_eq!(copy_of("INSERT INTO t (a) SELECT 1"), None);
        assert_eq!(copy_of("DELETE FROM t"), None);
    }

    #[test]
    fn a_one_row_insert_becomes_a_multi_row_one_and_keeps_its_suffix() {
        let sql =
            "INSERT INTO t (a, b) VALUES ($1, $2) ON CONFLICT (a) DO UPDATE SET b = excluded.b";
        assert_eq!(
            multi_row(sql, 2, 3).unwrap(),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6) \
             ON CONFLICT (a) DO UPDATE SET b = excluded.b"
        );
        assert_eq!(multi_row(sql, 2, 1).unwrap(), sql);
        assert!(multi_row("DELETE FROM t", 1, 2).is_err());
    }
}
