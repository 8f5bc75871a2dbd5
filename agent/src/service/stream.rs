//! Listings streamed a batch at a time, as ListProcesses streams its own
//! (see the module header of [`super`]): each batch is read only once the
//! client has taken the one before and the response [budget] has room for
//! it, under a scan permit given back before the batch is sent, and off the
//! async workers.
//!
//! A listing says how to read its next batch by implementing [`Source`];
//! [`Inspector::stream`] does the rest.
//!
//! [budget]: super::budget

use std::sync::Arc;

use prost::Message;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{
    BATCH_BYTES, Inspector, ServiceError,
    budget::{Budget, ConnBuffer, Reservation},
    outbox::{self, Outbox, OutboxStream},
};
use crate::backend::Backend;

/// What a listing reads, a batch at a time. The source is moved to a
/// blocking thread for each batch and back, so it keeps its place between
/// batches itself.
pub trait Source: Send + 'static {
    /// The message a batch is sent as.
    type Batch: Message + Send + 'static;

    /// Reads the next batch, of at most `room` encoded bytes, and says
    /// whether the listing has ended with it. Blocking; it should stop
    /// early, and may say it ended, once `gone` is true (the client went
    /// away). An empty batch is not sent.
    fn next(
        &mut self,
        backend: &dyn Backend,
        room: usize,
        gone: &dyn Fn() -> bool,
    ) -> Result<(Self::Batch, bool), ServiceError>;
}

/// What a running stream holds of the service.
struct Streamer {
    backend: Arc<dyn Backend>,
    scans: Arc<Semaphore>,
    budget: Arc<Budget>,
    conn: Option<Arc<ConnBuffer>>,
}

impl Inspector {
    /// Streams `source`'s batches for a client on `conn`. A listing that
    /// cannot have room for its first batch is refused before it reads
    /// anything; one that waits for a scan permit waits here.
    pub(super) async fn stream<S: Source>(
        &self,
        conn: Option<Arc<ConnBuffer>>,
        source: S,
    ) -> Result<OutboxStream<S::Batch>, ServiceError> {
        let first = self
            .budget
            .try_reserve(conn.as_ref(), BATCH_BYTES)
            .map_err(ServiceError::from)?;
        let permit = self.scan_permit().await?;
        let (outbox, stream) = outbox::outbox(1, self.options.stream_stall_timeout);
        let streamer = Streamer {
            backend: Arc::clone(&self.backend),
            scans: Arc::clone(&self.scans),
            budget: Arc::clone(&self.budget),
            conn,
        };
        tokio::spawn(streamer.run(source, outbox, permit, first));
        Ok(stream)
    }
}

impl Streamer {
    /// Reads and sends every batch, then ends the stream (with the status
    /// of an error, if one ended it).
    async fn run<S: Source>(
        self,
        source: S,
        outbox: Outbox<S::Batch>,
        permit: OwnedSemaphorePermit,
        first: Reservation,
    ) {
        if let Err(e) = self.send_all(source, &outbox, permit, first).await
            && outbox.send(Err(e.into())).await.is_err()
        {
            return;
        }
        let _ = outbox.finish().await;
    }

    async fn send_all<S: Source>(
        &self,
        mut source: S,
        outbox: &Outbox<S::Batch>,
        permit: OwnedSemaphorePermit,
        first: Reservation,
    ) -> Result<(), ServiceError> {
        let mut permit = Some(permit);
        let mut reserved = Some(first);
        loop {
            if outbox.room().await.is_err() {
                return Ok(());
            }
            let mut reservation = match reserved.take() {
                Some(r) => r,
                None => {
                    self.budget
                        .reserve(self.conn.as_ref(), BATCH_BYTES, outbox.stall())
                        .await?
                }
            };
            let permit = match permit.take() {
                Some(p) => p,
                None => Arc::clone(&self.scans)
                    .acquire_owned()
                    .await
                    .map_err(|_| ServiceError::ShuttingDown)?,
            };
            let backend = Arc::clone(&self.backend);
            let gone = outbox.gone();
            let room = reservation.bytes();
            let (back, read) = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let read = source.next(backend.as_ref(), room, &gone);
                (source, read)
            })
            .await
            .map_err(|e| ServiceError::internal("the scan task failed", e))?;
            source = back;
            let (batch, ended) = read?;
            let bytes = batch.encoded_len();
            if bytes > 0 {
                reservation.shrink_to(bytes);
                if outbox
                    .send_held(Ok(batch), Some(reservation))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            } else {
                reserved = Some(reservation);
            }
            if ended {
                return Ok(());
            }
        }
    }
}
