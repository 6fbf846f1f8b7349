//! The periodic status log (`status_interval`): a line per stream and the Go streamer's total.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::observe::stats::Stats;

/// Logs a line per stream and the Go streamer's total line every `every`.
pub(super) async fn status_log(stats: Arc<Stats>, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let snap = stats.snapshot();
        for s in &snap.streams {
            tracing::info!(
                stream = %s.name,
                state = ?s.state,
                messages = s.messages,
                rate = format!("{:.1}/s", s.rate_per_sec),
                reconnects = s.reconnects,
                dropped = s.dropped,
                lost = s.lines_lost,
                file = %s.current_file,
                "Stream status."
            );
        }
        tracing::info!(queue_depth = snap.queue_depth, "{}", snap.go_line());
    }
}
