//! Order per subject after a failure (see the module doc of `nats`): what the sink knows of
//! each subject in JetStream ([`Track`]), and the read-back of a subject, which finds the
//! lines of this run that JetStream holds after the last one acked.

use std::collections::HashSet;

/// What the sink knows about one stream's subject in JetStream (see the module doc on order).
#[derive(Debug, Default)]
pub(super) struct Track {
    /// Stream sequence of the subject's last message known to be stored: the last line acked,
    /// or what a read-back found. `None` until the first ack of this run; until then the
    /// subject's lines go one at a time (a lone line cannot be stored out of order).
    pub(super) last: Option<u64>,
    /// No unacked line of the subject can still be stored: lines are pipelined without the
    /// header. Cleared when a publish fails with lines of the subject in flight; set again by
    /// the ack of a guarded line the server stored.
    pub(super) clean: bool,
    /// The server may hold lines of the subject after `last` (a guarded line was refused with
    /// "wrong last sequence" or was a duplicate): read back before the next publish.
    pub(super) read_back: bool,
    /// Lines of the subject in the window.
    pub(super) in_flight: usize,
}

/// The most messages of one subject a read-back reads after `last`. Only lines of this run
/// can be there (at most the window and what was resent), unless another publisher uses the
/// subject.
const READ_BACK_MAX: usize = 100_000;

/// What a read-back found of a subject.
#[derive(Debug)]
pub(super) struct ReadBack {
    /// The sequence of the subject's last message (0: none).
    pub(super) tip: u64,
    /// The ids of this run's lines stored after `last` (`Nats-Msg-Id` is `id_prefix-id`).
    pub(super) held: HashSet<u64>,
}

/// Reads back what JetStream holds of `subject` after sequence `last`: its last message, then
/// each one after `last`, this run's lines known by their `Nats-Msg-Id` (`id_prefix-id`).
pub(super) async fn read_back(
    js: &async_nats::jetstream::Context,
    subject: &str,
    last: u64,
    id_prefix: &str,
) -> Result<ReadBack, String> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind as K;
    let name = js
        .stream_by_subject(subject)
        .await
        .map_err(|e| format!("finding the JetStream stream: {e}"))?;
    let js_stream = js
        .get_stream_no_info(&name)
        .await
        .map_err(|e| e.to_string())?;
    let tip = match js_stream.get_last_raw_message_by_subject(subject).await {
        Ok(m) => m.sequence,
        Err(e) if e.kind() == K::NoMessageFound => 0,
        Err(e) => return Err(format!("reading the last message: {e}")),
    };
    let ours = format!("{id_prefix}-");
    let mut held = HashSet::new();
    let mut seq = last + 1;
    let mut read = 0;
    while seq <= tip {
        if read == READ_BACK_MAX {
            tracing::warn!(
                subject,
                read,
                "Stopped reading back a subject with this many messages since the last line acked: another publisher uses it? Lines not found are published again (duplicate detection still applies)."
            );
            break;
        }
        let m = match js_stream
            .get_first_raw_message_by_subject(subject, seq)
            .await
        {
            Ok(m) => m,
            Err(e) if e.kind() == K::NoMessageFound => break,
            Err(e) => return Err(format!("reading message {seq}: {e}")),
        };
        let id = m
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .and_then(|v| v.as_str().strip_prefix(&ours)?.parse::<u64>().ok());
        held.extend(id);
        seq = m.sequence + 1;
        read += 1;
    }
    if tip < last {
        tracing::warn!(
            subject,
            last,
            tip,
            "The JetStream stream holds less of this subject than was acked (purged or recreated?); publishing goes on from what it holds."
        );
    }
    Ok(ReadBack { tip, held })
}
