//! The NATS client of the sink: connect options and credentials from the `[nats]` table, the
//! connection and its JetStream context, and the subjects a created JetStream stream covers.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::NatsConfig;

/// The sink's side of the `[nats]` table (the table itself is [`NatsConfig`], in `config`).
impl NatsConfig {
    /// The subjects a created JetStream stream covers: `prefix.>` for a template ending in
    /// `.{stream}` with no other placeholder (the same for every shard, whatever streams it
    /// records), else `subjects`.
    pub(super) fn stream_subjects(&self, subjects: &[async_nats::Subject]) -> Vec<String> {
        match self.subject.strip_suffix(".{stream}") {
            Some(prefix) if !prefix.contains('{') => vec![format!("{prefix}.>")],
            _ => {
                // An empty one is a stream's that does not publish (and has no subject).
                let mut all: Vec<String> = subjects
                    .iter()
                    .filter(|s| !s.is_empty())
                    .map(|s| s.to_string())
                    .collect();
                all.sort();
                all.dedup();
                all
            }
        }
    }

    /// The connect options, with credentials; never logged.
    async fn options(&self) -> std::io::Result<async_nats::ConnectOptions> {
        let mut o = async_nats::ConnectOptions::new();
        if let Some(path) = &self.credentials_file {
            o = o.credentials_file(path).await?;
        }
        if let Some(t) = &self.token {
            o = o.token(t.0.clone());
        }
        if let (Some(u), Some(p)) = (&self.user, &self.password) {
            o = o.user_and_password(u.clone(), p.0.clone());
        }
        Ok(o.name("wsrec")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((50u64 << attempts.min(6)).min(2_000))
            }))
    }
}

/// The client (it connects and reconnects by itself) and its JetStream context.
pub(super) struct Connected {
    pub(super) client: async_nats::Client,
    pub(super) js: async_nats::jetstream::Context,
}

/// Why there is no client.
pub(super) enum NotConnected {
    /// The credentials or the client could not be set up (logged): nothing will be published.
    Failed,
    /// `stop` was cancelled first.
    Stopped,
}

/// Sets up the client for `config`'s URLs (a comma-separated list) and its JetStream context.
pub(super) async fn connect(
    config: &NatsConfig,
    stop: &CancellationToken,
) -> Result<Connected, NotConnected> {
    let options = match config.options().await {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "Cannot read nats.credentials_file: nothing will be published to NATS (recording goes on).");
            return Err(NotConnected::Failed);
        }
    };
    let urls: Vec<String> = config.url.split(',').map(|u| u.trim().to_owned()).collect();
    let client = tokio::select! {
        c = options.connect(urls) => c,
        () = stop.cancelled() => return Err(NotConnected::Stopped),
    };
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Cannot set up the NATS client: nothing will be published to NATS (recording goes on).");
            return Err(NotConnected::Failed);
        }
    };
    let js = async_nats::jetstream::ContextBuilder::new()
        .timeout(config.ack_timeout)
        .ack_timeout(config.ack_timeout)
        .max_ack_inflight(config.max_in_flight.saturating_mul(2))
        .backpressure_on_inflight(true)
        .build(client.clone());
    Ok(Connected { client, js })
}

#[cfg(test)]
mod tests {
    use crate::ship::nats::tests::parse;

    #[test]
    fn a_created_stream_covers_the_subjects() {
        let c = parse("url = 'nats://127.0.0.1:4222'").unwrap();
        let n = c.nats.as_ref().unwrap();
        assert_eq!(n.stream_subjects(&[]), ["wsrec.>"]);
        let mut other = n.clone();
        other.subject = "{stream}.trades".into();
        assert_eq!(
            other.stream_subjects(&["b.trades".into(), "a.trades".into()]),
            ["a.trades", "b.trades"]
        );
    }
}
