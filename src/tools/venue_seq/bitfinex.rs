//! Bitfinex v2 with the `SEQ_ALL` flag: the sequence number that ends every channel message.

use super::{Point, Step, Venue};

/// Bitfinex with `SEQ_ALL`: `[CHANNEL_ID, …, SEQ]`, one counter per connection over every
/// channel (heartbeats and checksum messages included), as bitfinex-api-node's
/// `_validateMessageSeq` checks it. Read from the ends of the message only: a book snapshot
/// need not be parsed.
pub(super) fn bitfinex_point(msg: &[u8]) -> Option<Point> {
    let text = std::str::from_utf8(msg).ok()?.trim();
    let body = text.strip_prefix('[')?.strip_suffix(']')?;
    let (chan, rest) = body.split_once(',')?;
    chan.trim().parse::<u64>().ok()?;
    let (before, last) = rest.rsplit_once(',')?;
    let seq = last.trim().parse::<u64>().ok()?;
    // Without SEQ_ALL a checksum message `[ID,"cs",CHECKSUM]` ends with a number too; every
    // other message then ends with an array or a string.
    if before.trim() == "\"cs\"" {
        return None;
    }
    Some(Point {
        venue: Venue::Bitfinex,
        key: String::new(),
        field: "SEQ",
        step: Step::Range {
            first: seq,
            last: seq,
        },
    })
}
