//! [`QueueListener`]: wakes idle claimers when work is enqueued (`LISTEN`/`NOTIFY`), so that
//! workers need not poll.
//!
//! Every enqueue sends `NOTIFY <schema>_queued_work` with the store and session in its
//! payload, inside its transaction: PostgreSQL delivers it when (and only if) the enqueue
//! commits, to every listening connection on every host. A listener holds one dedicated
//! connection outside the pool.
//!
//! The race-free worker loop: create the listener *before* the first claim, then claim until
//! `None`, then wait for a wake-up (with a timeout as a safety net, e.g. for work whose
//! `available_at_ms` lies in the future, which sends no notification when it becomes
//! available):
//!
//! ```no_run
//! # use std::time::Duration;
//! # use strata_core::{QueuedWorkClaimBoundary, RuntimePersistence};
//! # async fn worker(factory: strata_postgres::PostgresStoreFactory) -> Result<(), strata_core::StoreError> {
//! let mut listener = factory.queue_listener().await?;
//! let store = factory.open_store("session-1").await?;
//! loop {
//!     while let Some(claim) = store
//!         .claim_ready_queued_work("session-1", "worker-a", QueuedWorkClaimBoundary::Idle, 30_000, 8)
//!         .await?
//!     {
//!         // … run the work, then complete the claim in a commit …
//! #       let _ = claim;
//!     }
//!     let _ = tokio::time::timeout(Duration::from_secs(30), listener.wait_for("session-1", "session-1")).await;
//! }
//! # }
//! ```

use std::fmt;

use futures::StreamExt;
use serde::Deserialize;
use strata_core::StoreError;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, Connection, NoTls};

use crate::error::{Phase, classify};
use crate::factory::{Connector, Shared};

/// One enqueue, as announced to listeners.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct QueueWakeup {
    /// The store the batch was enqueued in (the session id, for a factory's stores).
    pub store_id: String,
    /// The batch's session.
    pub session_id: String,
}

/// Notifications buffered before the connection task waits for the reader (the server keeps
/// the rest queued: none is lost).
const BUFFERED: usize = 1024;

/// A `LISTEN`ing connection; see the module docs. Dropping it closes the connection.
pub struct QueueListener {
    receiver: mpsc::Receiver<Result<QueueWakeup, StoreError>>,
    _client: Client,
    task: JoinHandle<()>,
}

impl fmt::Debug for QueueListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueListener").finish_non_exhaustive()
    }
}

impl Drop for QueueListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl QueueListener {
    pub(crate) async fn connect(shared: &Shared) -> Result<Self, StoreError> {
        let unreachable = |error: tokio_postgres::Error| {
            StoreError::NotApplied(format!("cannot open the listening connection: {error}"))
        };
        let (sender, receiver) = mpsc::channel(BUFFERED);
        let (client, task) = match &shared.connector {
            Connector::Plain => {
                let (client, connection) =
                    shared.pg_config.connect(NoTls).await.map_err(unreachable)?;
                (client, tokio::spawn(forward(connection, sender)))
            }
            #[cfg(feature = "tls")]
            Connector::Tls(tls) => {
                let (client, connection) =
                    shared.pg_config.connect(tls.clone()).await.map_err(unreachable)?;
                (client, tokio::spawn(forward(connection, sender)))
            }
        };
        // The channel name is derived from the validated schema name.
        client
            .batch_execute(&format!("LISTEN {}", shared.channel()))
            .await
            .map_err(|error| classify(&error, Phase::Read))?;
        Ok(Self { receiver, _client: client, task })
    }

    /// The next enqueue in this schema (any store, any session). An error means the listening
    /// connection is gone ([`StoreError::Unavailable`]): open a new listener and claim once,
    /// since notifications sent meanwhile were missed.
    pub async fn next(&mut self) -> Result<QueueWakeup, StoreError> {
        self.receiver.recv().await.unwrap_or_else(|| {
            Err(StoreError::Unavailable("the listening connection closed".into()))
        })
    }

    /// Waits for an enqueue in `session_id`'s queue of store `store_id`, passing over the
    /// others.
    pub async fn wait_for(&mut self, store_id: &str, session_id: &str) -> Result<(), StoreError> {
        loop {
            let wakeup = self.next().await?;
            if wakeup.store_id == store_id && wakeup.session_id == session_id {
                return Ok(());
            }
        }
    }
}

/// Drives the listening connection, forwarding each notification (and the error that ends
/// the connection) to the listener.
async fn forward<S, T>(
    mut connection: Connection<S, T>,
    sender: mpsc::Sender<Result<QueueWakeup, StoreError>>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(message) = messages.next().await {
        let (forwarded, ends) = match message {
            Ok(AsyncMessage::Notification(notification)) => {
                let wakeup =
                    serde_json::from_str::<QueueWakeup>(notification.payload()).map_err(|error| {
                        StoreError::CorruptData {
                            location: format!("notification on channel {}", notification.channel()),
                            detail: error.to_string(),
                        }
                    });
                (wakeup, false)
            }
            Ok(_) => continue, // notices
            Err(error) => {
                (Err(StoreError::Unavailable(format!("listening connection lost: {error}"))), true)
            }
        };
        if sender.send(forwarded).await.is_err() || ends {
            return;
        }
    }
}
