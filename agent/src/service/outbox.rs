//! Response streams whose client must take its data in time.
//!
//! A client can stop reading a stream without closing it: HTTP/2 flow
//! control then stops the agent's sends, and whatever produces the stream
//! waits for ever, holding what it holds (a scan permit, a watcher slot,
//! batches of processes). An [`Outbox`] bounds that wait: when the client
//! takes none of the stream's data for the stall timeout, the stream is
//! ended. What it had buffered is dropped at once, the producer is told to
//! stop, and the client, should it ever read again, gets a
//! DEADLINE_EXCEEDED status with the reason STREAM_STALLED instead of the
//! rest of its data.
//!
//! An item may carry a [`Reservation`] of the agent's response [budget]:
//! it is held while the item waits in the outbox and while the item is on
//! its way to the client, until the stream is polled for the next one
//! (HTTP/2 asks a response body for more only once it has sent what it was
//! given).
//!
//! [budget]: super::budget

use std::{
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
    time::Duration,
};

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::Status;

use super::{ServiceError, budget::Reservation};

/// Why an outbox takes no more items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The client went away (it closed the stream or the connection).
    Gone,
    /// The client took none of the stream's data for the stall timeout.
    Stalled,
}

type Item<T> = Result<T, Status>;

/// An item with the budget it holds.
type Held<T> = (Item<T>, Option<Reservation>);

/// What the two ends share: the receiver (dropped, with everything it
/// buffered, when the stream stalls) and the status that then ends it.
struct Shared<T> {
    rx: Option<mpsc::Receiver<Held<T>>>,
    ending: Option<Status>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The producing end of a response stream.
pub struct Outbox<T> {
    tx: mpsc::Sender<Held<T>>,
    shared: Arc<Mutex<Shared<T>>>,
    capacity: usize,
    stall: Duration,
}

/// The stream tonic sends: what the outbox was given, or the status that
/// ended it.
pub struct OutboxStream<T> {
    shared: Arc<Mutex<Shared<T>>>,
    /// The budget of the item last handed on, held until the next poll.
    sent: Option<Reservation>,
}

/// An outbox buffering up to `capacity` items, whose client must take an
/// item within `stall` of it being offered.
pub fn outbox<T>(capacity: usize, stall: Duration) -> (Outbox<T>, OutboxStream<T>) {
    let capacity = capacity.max(1);
    let (tx, rx) = mpsc::channel(capacity);
    let shared = Arc::new(Mutex::new(Shared {
        rx: Some(rx),
        ending: None,
    }));
    let stream = OutboxStream {
        shared: Arc::clone(&shared),
        sent: None,
    };
    (
        Outbox {
            tx,
            shared,
            capacity,
            stall,
        },
        stream,
    )
}

impl<T> Outbox<T> {
    /// Offers `item`; fails when the client went away or stalled.
    pub async fn send(&self, item: Item<T>) -> Result<(), Ended> {
        self.send_held(item, None).await
    }

    /// Offers `item`, which holds `reservation` until the client has taken
    /// it; fails when the client went away or stalled.
    pub async fn send_held(
        &self,
        item: Item<T>,
        reservation: Option<Reservation>,
    ) -> Result<(), Ended> {
        match tokio::time::timeout(self.stall, self.tx.send((item, reservation))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Ended::Gone),
            Err(_) => Err(self.stalled()),
        }
    }

    /// Waits until the outbox has room for one more item, so that the item
    /// is built only then; fails when the client went away or stalled.
    pub async fn room(&self) -> Result<(), Ended> {
        match tokio::time::timeout(self.stall, self.tx.reserve()).await {
            // The slot is given back at once: this outbox has one producer,
            // so it is still free when the item comes.
            Ok(Ok(_slot)) => Ok(()),
            Ok(Err(_)) => Err(Ended::Gone),
            Err(_) => Err(self.stalled()),
        }
    }

    /// The stall timeout.
    pub fn stall(&self) -> Duration {
        self.stall
    }

    /// Waits until the client has taken everything offered, so that a
    /// stream which ends while its client does not read is ended all the
    /// same; fails when the client went away or stalled.
    pub async fn finish(self) -> Result<(), Ended> {
        match tokio::time::timeout(self.stall, self.tx.reserve_many(self.capacity)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(Ended::Gone),
            Err(_) => Err(self.stalled()),
        }
    }

    /// A check, for blocking work that feeds this outbox, of whether the
    /// client has gone away (and the work can stop).
    pub fn gone(&self) -> impl Fn() -> bool + Send + 'static
    where
        T: Send + 'static,
    {
        let tx = self.tx.clone();
        move || tx.is_closed()
    }

    /// Resolves when the client has gone away.
    pub async fn closed(&self) {
        self.tx.closed().await;
    }

    /// Ends the stream for a client that does not read: drops what it
    /// buffered and leaves the status the client gets instead.
    fn stalled(&self) -> Ended {
        let mut shared = lock(&self.shared);
        shared.rx = None;
        shared.ending = Some(ServiceError::StreamStalled { after: self.stall }.into());
        Ended::Stalled
    }
}

impl<T> Stream for OutboxStream<T> {
    type Item = Item<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item<T>>> {
        let this = self.get_mut();
        // Asked for more: what was handed on before has been sent.
        this.sent = None;
        let mut shared = lock(&this.shared);
        match shared.rx.as_mut() {
            Some(rx) => match rx.poll_recv(cx) {
                Poll::Ready(Some((item, reservation))) => {
                    this.sent = reservation;
                    Poll::Ready(Some(item))
                }
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            None => Poll::Ready(shared.ending.take().map(Err)),
        }
    }
}

impl<T> Drop for OutboxStream<T> {
    /// The client went away: the producer's next send fails at once.
    fn drop(&mut self) {
        lock(&self.shared).rx = None;
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;
    use tonic::Code;

    use super::*;

    const STALL: Duration = Duration::from_secs(5);

    /// Sends 0..n, then waits for the client to take them.
    fn produce(outbox: Outbox<u32>, n: u32) -> tokio::task::JoinHandle<Result<(), Ended>> {
        tokio::spawn(async move {
            for i in 0..n {
                outbox.send(Ok(i)).await?;
            }
            outbox.finish().await
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_reads_gets_everything() {
        let (outbox, mut stream) = outbox::<u32>(2, STALL);
        let producer = produce(outbox, 10);
        let mut got = Vec::new();
        while let Some(item) = stream.next().await {
            got.push(item.expect("item"));
            // A slow reader, but well within the stall timeout.
            tokio::time::sleep(STALL / 2).await;
        }
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        assert_eq!(producer.await.expect("producer"), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_ended_with_a_status_that_says_so() {
        let (outbox, mut stream) = outbox::<u32>(2, STALL);
        let producer = produce(outbox, 10);
        assert_eq!(stream.next().await.map(|i| i.ok()), Some(Some(0)));
        // The client stops reading; the producer gives up after the stall
        // timeout (paused time runs ahead to it).
        assert_eq!(producer.await.expect("producer"), Err(Ended::Stalled));
        // What was buffered is gone: the client gets the status, then the end.
        let status = stream
            .next()
            .await
            .expect("a status")
            .expect_err("an error");
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert!(status.message().contains("5s"), "{status:?}");
        assert!(stream.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_ends_unread_is_ended_too() {
        let (outbox, stream) = outbox::<u32>(4, STALL);
        outbox.send(Ok(1)).await.expect("room in the buffer");
        assert_eq!(outbox.finish().await, Err(Ended::Stalled));
        drop(stream);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_leaves_is_gone() {
        let (outbox, stream) = outbox::<u32>(1, STALL);
        drop(stream);
        assert_eq!(outbox.send(Ok(1)).await, Err(Ended::Gone));
    }
}
