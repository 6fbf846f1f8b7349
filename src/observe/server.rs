//! The accept loop shared by the status socket and the metrics endpoint: each client is served
//! in a task of its own, at most a fixed number at once, all ended when the recorder shuts
//! down, so a slow or hostile client never delays another one, the recorder or the shutdown.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Pause after a failed `accept` (typically out of file descriptors), so that a persistent error
/// does not turn the accept loop into a busy loop.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// A bound server socket as the accept loop sees it.
pub(crate) trait Listener {
    /// One accepted client connection.
    type Stream: Send + 'static;

    /// Waits for the next client.
    fn accept(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// Logs a failed `accept`; the loop pauses and tries again.
    fn accept_failed(&self, error: &io::Error);

    /// Turns away a client that came while every slot was taken.
    fn turn_away(&self, stream: Self::Stream);
}

/// Accepts clients of `listener` until `shutdown` is cancelled, serving each with `serve` in a
/// task of its own, at most `max_clients` at once. Then closes the listener (dropping it) and
/// returns once every client task has ended.
pub(crate) async fn accept_loop<L, F>(
    listener: L,
    max_clients: usize,
    shutdown: &CancellationToken,
    serve: impl Fn(L::Stream) -> F,
) where
    L: Listener,
    F: Future<Output = ()> + Send + 'static,
{
    let clients = ClientTasks::new(max_clients, shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok(stream) => stream,
            Err(error) => {
                listener.accept_failed(&error);
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                }
            }
        };
        let Some(slot) = clients.slot() else {
            listener.turn_away(stream);
            continue;
        };
        clients.spawn(slot, serve(stream));
    }
    drop(listener);
    clients.finish().await;
}

/// The client tasks of a server: at most a fixed number
/// at once, each ended when the server shuts down, so a slow client never delays another one,
/// the recorder or the shutdown.
struct ClientTasks {
    tracker: TaskTracker,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
}

impl ClientTasks {
    /// Room for `max` clients at once, each ended when `shutdown` is cancelled.
    fn new(max: usize, shutdown: &CancellationToken) -> Self {
        Self {
            tracker: TaskTracker::new(),
            slots: Arc::new(Semaphore::new(max)),
            shutdown: shutdown.clone(),
        }
    }

    /// A free slot for one more client; `None` when all are taken.
    fn slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).try_acquire_owned().ok()
    }

    /// Serves one client in a task of its own, holding `slot` until it ends.
    fn spawn(&self, slot: OwnedSemaphorePermit, serve: impl Future<Output = ()> + Send + 'static) {
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = serve => {}
            }
            drop(slot);
        });
    }

    /// Waits until every client task has ended (they end at the latest at shutdown).
    async fn finish(self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}
