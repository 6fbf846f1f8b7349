//! The ordered shutdown: connections close and drop their queue senders, the writer drains
//! what they queued and closes every file, the compressor and the NATS publisher finish what
//! time allows, the uploader stops, then the side tasks. All of it within the deadline; what
//! overruns it is named in the error.

use std::time::Duration;

use super::error::RunError;
use super::pipeline::Pipeline;

impl Pipeline {
    /// Takes the stages down in order once the connections have been told to stop (their
    /// shutdown token cancelled), within `deadline`.
    ///
    /// # Errors
    /// [`RunError::ShutdownTimeout`] naming what was still running at the deadline.
    pub(super) async fn shut_down(self, deadline: Duration) -> Result<(), RunError> {
        let Pipeline {
            streams,
            writer,
            compressor,
            nats,
            uploader,
            side,
            side_tasks,
            refused: _,
        } = self;
        // Pending uploads wait for the next start's sweep; none is begun while shutting down.
        if let Some(u) = &uploader {
            u.cancel();
        }
        tracing::info!(deadline = ?deadline, "Shutting down: closing connections and writing what was received.");
        let started = tokio::time::Instant::now();
        let drained = tokio::time::timeout(deadline, async {
            streams.wait().await;
            let _ = writer.await;
        })
        .await;
        // The writer has closed (and queued) every file; compress what time allows, and publish
        // what is still on its way to NATS.
        let remaining = deadline.saturating_sub(started.elapsed());
        let compress = async {
            if let Some(c) = compressor {
                c.finish(remaining).await;
            }
        };
        tokio::join!(compress, crate::ship::nats::finish(nats, remaining));
        if let Some(u) = uploader {
            u.stop().await;
        }
        side.cancel();
        side_tasks.wait().await;
        match drained {
            Ok(()) => {
                tracing::info!("Stopped; every file is closed.");
                Ok(())
            }
            Err(_) => {
                let laggards = if streams.is_empty() {
                    "the writer (files still being flushed)".to_owned()
                } else {
                    format!("{} stream task(s) and the writer", streams.len())
                };
                tracing::error!(%laggards, "Shutdown deadline passed.");
                Err(RunError::ShutdownTimeout { deadline, laggards })
            }
        }
    }
}
