//! The NATS sink's counters and state, as the sink updates them and status shows them.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

/// Connection state of the sink, as shown in status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NatsState {
    /// No `[nats]` configured.
    Off,
    /// Not connected yet, or reconnecting.
    Connecting,
    /// Publishing.
    Connected,
    /// Stopped (shutdown).
    Stopped,
}

/// The sink's counters.
#[derive(Debug, Default)]
pub struct NatsStats {
    state: AtomicU8,
    /// Lines acked by JetStream.
    pub published: AtomicU64,
    /// Lines that could not be published (queue full, outage, refused, missed by the server
    /// before a later line it stored, shutdown).
    pub dropped: AtomicU64,
    /// Publishes whose ack is outstanding.
    pub in_flight: AtomicU64,
    /// Lines accepted and not yet acked or dropped (queue and window).
    pub queued: AtomicU64,
    /// Bytes of those lines.
    pub queued_bytes: AtomicU64,
}

impl NatsState {
    /// The name shown in status output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Stopped => "stopped",
        }
    }
}

impl NatsStats {
    /// The state.
    pub fn state(&self) -> NatsState {
        match self.state.load(Relaxed) {
            0 => NatsState::Off,
            1 => NatsState::Connecting,
            2 => NatsState::Connected,
            _ => NatsState::Stopped,
        }
    }

    pub(crate) fn set_state(&self, s: NatsState) {
        self.state.store(s as u8, Relaxed);
    }

    /// A copy for status output; `None` when off.
    pub fn snapshot(&self) -> Option<NatsSnapshot> {
        let state = self.state();
        (state != NatsState::Off).then(|| NatsSnapshot {
            state,
            published: self.published.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            queued: self.queued.load(Relaxed),
        })
    }
}

/// The sink in a status snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NatsSnapshot {
    /// Connection state.
    pub state: NatsState,
    /// Lines acked.
    pub published: u64,
    /// Lines not published.
    pub dropped: u64,
    /// Acks outstanding.
    pub in_flight: u64,
    /// Lines accepted, not yet acked.
    pub queued: u64,
}
