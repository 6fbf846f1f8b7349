//! What happens to the sink, as typed events: [`NatsEvent::emit`] updates the counters and the
//! state in `stats` (through [`Shared`], which also keeps the gaps to mark) and writes the log
//! line of each, in one place.

use std::sync::atomic::Ordering::Relaxed;

use super::queue::{Gap, Shared};
use crate::config::WhenFull;
use crate::observe::stats::NatsState;

/// One thing that happened to the sink.
#[derive(Debug)]
pub(crate) enum NatsEvent<'a> {
    /// Publishing works (again).
    Up {
        /// Lines dropped while it did not.
        dropped_while_down: u64,
    },
    /// Publishing stopped working; the window goes back in front of the pending lines.
    Down {
        /// Lines that were in the window.
        in_flight: usize,
        policy: WhenFull,
    },
    /// The server refused a line for good: it is lost for NATS.
    Refused {
        subject: &'a async_nats::Subject,
        reason: &'a str,
        stream: usize,
        ts: u64,
        bytes: usize,
    },
    /// A read-back found lines of a subject stored after earlier ones the server missed: those
    /// are lost for NATS.
    Missed {
        subject: &'a async_nats::Subject,
        stream: usize,
        lost: Gap,
        /// Bytes of the lines lost.
        bytes: u64,
    },
    /// Shutdown: lines still queued or in flight at the deadline.
    Unpublished { lines: u64 },
}

impl NatsEvent<'_> {
    /// Counts the event and logs it.
    pub(crate) fn emit(self, shared: &Shared) {
        let stats = shared.nats();
        match self {
            NatsEvent::Up { dropped_while_down } => {
                stats.set_state(NatsState::Connected);
                tracing::info!(dropped_while_down, "Publishing to NATS.");
            }
            NatsEvent::Down { in_flight, policy } => {
                stats.set_state(NatsState::Connecting);
                tracing::warn!(in_flight, policy = ?policy, "NATS unreachable: recording goes on; publishing resumes (and the gap is marked) when it is back.");
            }
            NatsEvent::Refused {
                subject,
                reason,
                stream,
                ts,
                bytes,
            } => {
                tracing::warn!(subject = %subject, reason, bytes, "NATS refused a line; it is counted and marked as lost for NATS (the file has it).");
                shared.lose(stream, &Gap::line(ts));
                shared.release(1, bytes as u64);
            }
            NatsEvent::Missed {
                subject,
                stream,
                lost,
                bytes,
            } => {
                if lost.lost == 0 {
                    return;
                }
                shared.lose(stream, &lost);
                shared.release(lost.lost, bytes);
                tracing::warn!(subject = %subject, lines = lost.lost, "NATS stored lines of this subject after earlier ones it had missed (a restart or a lost connection); the missed lines cannot be stored in order any more, so they are counted and marked as lost (the file has them).");
            }
            NatsEvent::Unpublished { lines } => {
                if lines > 0 {
                    stats.dropped.fetch_add(lines, Relaxed);
                    tracing::warn!(
                        lines,
                        "Shutdown: lines not published to NATS before the deadline (the files have them)."
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ship::nats::channel;
    use crate::ship::nats::tests::{parse, stats_for};

    #[test]
    fn each_event_updates_its_counters_state_and_gaps() {
        let config = parse("url = 'nats://127.0.0.1:4222'").unwrap();
        let stats = stats_for(&config);
        let (_tx, sink) = channel(config.nats.as_ref().unwrap(), &config, stats.clone(), 1);
        let shared = &sink.shared;
        let nats = &stats.nats;
        // Three lines of 10 bytes queued, as the writer counts them.
        nats.queued.store(3, Relaxed);
        nats.queued_bytes.store(30, Relaxed);
        NatsEvent::Up {
            dropped_while_down: 0,
        }
        .emit(shared);
        assert_eq!(nats.state(), NatsState::Connected);
        NatsEvent::Down {
            in_flight: 2,
            policy: WhenFull::Block,
        }
        .emit(shared);
        assert_eq!(nats.state(), NatsState::Connecting);
        let subject = async_nats::Subject::from("wsrec.a");
        NatsEvent::Refused {
            subject: &subject,
            reason: "too big",
            stream: 0,
            ts: 5,
            bytes: 10,
        }
        .emit(shared);
        let mut lost = Gap::default();
        lost.add(1, 7, 7);
        lost.add(1, 9, 9);
        NatsEvent::Missed {
            subject: &subject,
            stream: 0,
            lost,
            bytes: 20,
        }
        .emit(shared);
        assert_eq!(nats.dropped.load(Relaxed), 3);
        assert_eq!(nats.queued.load(Relaxed), 0);
        assert_eq!(nats.queued_bytes.load(Relaxed), 0);
        let gap = shared.gaps[0].lock().unwrap();
        assert_eq!((gap.lost, gap.from_ts, gap.to_ts), (3, 5, 9));
        drop(gap);
        NatsEvent::Unpublished { lines: 4 }.emit(shared);
        assert_eq!(nats.dropped.load(Relaxed), 7);
    }
}
