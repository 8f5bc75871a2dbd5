//! Watching a fleet: every host's events merged into one stream, each
//! host's stream re-established with backoff when its agent restarts.

use std::{sync::Arc, time::Duration};

use hostscope_proto as proto;
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};

use super::{Fleet, HostSpec, Inner};
use crate::Error;

/// Shortest and longest wait before reconnecting to a host.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(30));

/// What a fleet watch yields: events, and news of each host's stream.
#[derive(Debug)]
pub enum WatchItem {
    /// An event from `host`.
    Event {
        /// The host it happened on.
        host: Arc<HostSpec>,
        /// The event.
        event: proto::ProcessEvent,
    },
    /// `host`'s stream is open; `reconnected` after an interruption.
    Connected {
        /// The host.
        host: Arc<HostSpec>,
        /// Whether this is a reconnection.
        reconnected: bool,
    },
    /// `host`'s stream was interrupted (agent restarting, network); it is
    /// tried again after `retry_in`.
    Interrupted {
        /// The host.
        host: Arc<HostSpec>,
        /// Why; `None` when the agent ended the stream (shutting down).
        error: Option<Error>,
        /// When the next attempt is made.
        retry_in: Duration,
    },
    /// `host` refused the watch for good (bad request, certificate, role,
    /// a sampled pid that does not exist): it is not tried again.
    Failed {
        /// The host.
        host: Arc<HostSpec>,
        /// Why.
        error: Error,
    },
}

impl Fleet {
    /// Watches every host with `request`, merging their events as they
    /// come. Each host's stream is re-established with backoff when it is
    /// interrupted; a host that refuses the request itself is given up
    /// (`WatchItem::Failed`). Runs until the returned stream is dropped.
    pub fn watch(
        &self,
        request: proto::WatchProcessesRequest,
    ) -> impl Stream<Item = WatchItem> + Send + 'static {
        let (tx, rx) = mpsc::channel(1024);
        for host in self.inner.hosts.iter().cloned() {
            let (inner, tx, request) = (Arc::clone(&self.inner), tx.clone(), request.clone());
            tokio::spawn(async move { inner.watch_host(host, request, tx).await });
        }
        ReceiverStream::new(rx)
    }
}

impl Inner {
    async fn watch_host(
        &self,
        host: Arc<HostSpec>,
        request: proto::WatchProcessesRequest,
        tx: mpsc::Sender<WatchItem>,
    ) {
        let mut backoff = BACKOFF.0;
        let mut reconnected = false;
        loop {
            let opened = match tokio::time::timeout(self.options.timeout, async {
                let client = self.client(&host).await?;
                client.watch(request.clone()).await
            })
            .await
            {
                Ok(opened) => opened,
                Err(_) => Err(Error::Timeout {
                    message: format!(
                        "no watch from {} within {}",
                        host.address,
                        super::humanize(self.options.timeout)
                    ),
                }),
            };
            let error = match opened {
                Ok(mut events) => {
                    let item = WatchItem::Connected {
                        host: Arc::clone(&host),
                        reconnected,
                    };
                    if tx.send(item).await.is_err() {
                        return;
                    }
                    backoff = BACKOFF.0;
                    reconnected = true;
                    let mut error = None;
                    while let Some(next) = events.next().await {
                        match next {
                            Ok(event) => {
                                let item = WatchItem::Event {
                                    host: Arc::clone(&host),
                                    event,
                                };
                                if tx.send(item).await.is_err() {
                                    return;
                                }
                            }
                            Err(e) => {
                                error = Some(e);
                                break;
                            }
                        }
                    }
                    error
                }
                Err(e) if e.is_retryable() || matches!(e, Error::Timeout { .. }) => Some(e),
                Err(e) => {
                    let _ = tx.send(WatchItem::Failed { host, error: e }).await;
                    return;
                }
            };
            self.forget(&host);
            let item = WatchItem::Interrupted {
                host: Arc::clone(&host),
                error,
                retry_in: backoff,
            };
            if tx.send(item).await.is_err() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = tx.closed() => return,
            }
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    }
}
