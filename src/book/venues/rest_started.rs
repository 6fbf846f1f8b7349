//! [`Held`]: the start of books whose differences begin from a REST snapshot line (Binance,
//! Gate, KuCoin): differences that arrive before the snapshot (or after a break) are kept,
//! bounded, and read again when the snapshot line comes; [`RestStarted`] makes a venue's
//! [`Rules`] of it.

use std::collections::{HashMap, VecDeque};
use std::fmt::{self, Write as _};

use super::shared::{Lvl, RestBook, apply};
use super::{RestAnswer, Rules, Venue};
use crate::book::level::{Book, Side, key};
use crate::book::track::{BreakKind, Key, Link, Msg, Position, Tracker};

/// Differences kept per book while it waits for a REST snapshot (or is broken): the newest
/// are kept, the oldest dropped (a snapshot older than the oldest kept is passed over, and the
/// next one, fetched again, starts the book).
pub(super) const HELD: usize = 10_000;

/// Bytes of differences kept per book (the newest; with [`HELD`]). A snapshot line comes
/// within about a second of its request, and the recorder asks again when one is older than
/// the connection's first difference: 2 MiB holds over a minute of Binance's busiest 100 ms
/// diff stream, and bounds the memory of a recording whose books never get a snapshot.
pub(super) const HELD_BYTES: usize = 2 << 20;

/// A venue whose difference books start from REST snapshot lines; [`RestStarted`] makes its
/// [`Rules`] (holding differences, reading them again when a snapshot line comes, reporting
/// books that never got one).
pub(super) trait RestVenue: fmt::Debug + Default {
    /// As [`Rules::claims`].
    fn claims(&self, msg: &[u8]) -> bool;

    /// As [`Rules::message`], difference books going through `held`.
    fn message(&mut self, held: &mut Held, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool;

    /// The venue.
    const VENUE: Venue;

    /// The book (its channel) and the rule a REST snapshot line of `url` is for; `None` if it
    /// is not this venue's.
    fn rest_book(&self, url: &str) -> Option<(&'static str, Rule)>;

    /// Reads a REST snapshot body; by default the body is the book itself (Binance, Gate),
    /// a venue that wraps it (KuCoin's `data`) says how to unwrap it.
    ///
    /// # Errors
    /// Not an order book with its number.
    fn rest_body<'a>(&self, body: &'a str) -> Result<RestBook<'a>, String> {
        serde_json::from_str(body).map_err(|e| e.to_string())
    }
}

/// The [`Rules`] of a [`RestVenue`].
#[derive(Debug, Default)]
pub(super) struct RestStarted<V> {
    venue: V,
    held: Held,
}

impl<V: RestVenue> Rules for RestStarted<V> {
    fn claims(&self, msg: &[u8]) -> bool {
        self.venue.claims(msg)
    }

    fn message(&mut self, t: &mut Tracker, m: &Msg<'_>, msg: &str) -> bool {
        self.venue.message(&mut self.held, t, m, msg)
    }

    fn rest(&mut self, t: &mut Tracker, m: &Msg<'_>, answer: &RestAnswer<'_>) -> bool {
        let Some((channel, rule)) = self.venue.rest_book(answer.url) else {
            return false;
        };
        let snap = match self.venue.rest_body(answer.body) {
            Ok(s) => s,
            Err(error) => {
                // An error answer: the book stays as it was.
                tracing::debug!(venue = %V::VENUE, symbol = answer.symbol, %error, "REST line without an order book");
                return true;
            }
        };
        let k = Key {
            venue: V::VENUE,
            channel,
            symbol: answer.symbol,
        };
        let again = self
            .held
            .rest_levels(t, m, &k, snap.id, rule, &snap.bids, &snap.asks);
        for text in again {
            self.venue.message(&mut self.held, t, m, &text);
        }
        true
    }

    fn conn_ended(&mut self, t: &mut Tracker, stream: &str, conn: Option<u64>) {
        self.held.conn_ended(t, stream, conn);
    }

    fn finish(&mut self, t: &mut Tracker) {
        self.held.finish(t);
    }
}

/// How the first difference after a REST snapshot current to `id` is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Rule {
    /// Differences with `last <= id` are dropped; the first applied has
    /// `first <= id + 1 <= last` (Binance spot, Gate, KuCoin).
    NextAfter,
    /// Differences with `last < id` are dropped; the first applied has
    /// `first <= id <= last` (Binance USDⓈ-M and COIN-M).
    Covering,
}

impl Rule {
    /// Whether `d` is older than a snapshot current to `id` (dropped).
    fn older(self, d: Diff, id: u64) -> bool {
        match self {
            Rule::NextAfter => d.last <= id,
            Rule::Covering => d.last < id,
        }
    }

    /// Whether `d`, not older, continues a snapshot current to `id`.
    fn starts(self, d: Diff, id: u64) -> bool {
        match self {
            Rule::NextAfter => d.first <= id.saturating_add(1),
            Rule::Covering => d.first <= id,
        }
    }
}

/// A numbered difference: the numbers it covers and, where the venue sends it, the previous
/// difference's last number.
#[derive(Clone, Copy, Debug)]
pub(super) struct Diff {
    /// First number covered.
    pub first: u64,
    /// Last number covered.
    pub last: u64,
    /// The previous difference's `last` (Binance futures `pu`).
    pub prev: Option<u64>,
}

/// Where a REST-started book stands (the tracker knows proven or not; this knows why not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No snapshot yet on this connection: differences are held.
    Waiting,
    /// A snapshot current to `.0`; no difference applied yet.
    Fresh(u64, Rule),
    /// Differences applied, each linked to the one before.
    Applying,
    /// Broken: differences are held for the next snapshot.
    Broken,
}

/// One REST-started book on one connection.
#[derive(Debug)]
struct HeldBook {
    stream: Box<str>,
    conn: u64,
    venue: Venue,
    channel: Box<str>,
    symbol: Box<str>,
    phase: Phase,
    held: VecDeque<(Diff, String)>,
    /// Bytes in `held`.
    bytes: usize,
    /// The newest held difference's line and time (a `NoSnapshot` break names it).
    held_at: Option<(Position, u64)>,
}

/// What to do with a difference.
enum Step<'t> {
    /// Apply it to this book, current to number `.1` before it.
    Apply(&'t mut Book, u64),
    /// Nothing to apply (held, dropped as older than the snapshot, or a break).
    Skip,
}

/// What a REST snapshot line means for its book (see [`Held::rest`]).
#[derive(Debug, PartialEq, Eq)]
enum Start {
    /// Start the book from it ([`Tracker::snapshot`]), then read these held messages again.
    From(Vec<String>),
    /// The book is proven and current to the snapshot's number: compare them.
    Compare,
    /// The book is proven and not current to its number: nothing to check exactly.
    Ignore,
    /// The book waits (or is broken) and the snapshot is older than the differences held
    /// after it: not a start (the recorder fetches another).
    Stale,
}

/// REST-started books: which wait, which are proven, what is held.
#[derive(Debug, Default)]
pub(super) struct Held {
    books: HashMap<String, HeldBook>,
    key: String,
}

impl Held {
    fn entry(&mut self, m: &Msg<'_>, k: &Key<'_>) -> &mut HeldBook {
        self.key.clear();
        let _ = write!(
            self.key,
            "{}\u{0}{}\u{0}{}\u{0}{}",
            m.stream, m.conn, k.channel, k.symbol
        );
        if !self.books.contains_key(self.key.as_str()) {
            self.books.insert(
                self.key.clone(),
                HeldBook {
                    stream: m.stream.into(),
                    conn: m.conn,
                    venue: k.venue,
                    channel: k.channel.into(),
                    symbol: k.symbol.into(),
                    phase: Phase::Waiting,
                    held: VecDeque::new(),
                    bytes: 0,
                    held_at: None,
                },
            );
        }
        self.books
            .get_mut(self.key.as_str())
            .expect("held book exists")
    }

    /// A difference `d` (the whole message is `text`) of book `k`: held while the book waits or
    /// is broken, dropped while older than its snapshot, checked against the snapshot (the
    /// first) or the difference before it (the rest).
    fn diff<'t>(
        &mut self,
        t: &'t mut Tracker,
        m: &Msg<'_>,
        k: &Key<'_>,
        d: Diff,
        text: &str,
    ) -> Step<'t> {
        let b = self.entry(m, k);
        let link = match b.phase {
            Phase::Waiting | Phase::Broken => {
                hold(b, m, d, text);
                if b.phase == Phase::Broken {
                    // Counted as unproven (the tracker's book is broken too).
                    let _ = t.update(m, k, Link::None);
                }
                return Step::Skip;
            }
            Phase::Fresh(id, rule) => {
                let (old, starts) = (rule.older(d, id), rule.starts(d, id));
                if old {
                    return Step::Skip;
                }
                if !starts {
                    b.phase = Phase::Broken;
                    hold(b, m, d, text);
                    let want = if rule == Rule::NextAfter { id + 1 } else { id };
                    t.broke(
                        m,
                        k,
                        BreakKind::SequenceGap,
                        format!(
                            "the first difference after the snapshot (current to {id}) covers {}..={}, not {want}",
                            d.first, d.last
                        ),
                    );
                    return Step::Skip;
                }
                Link::None
            }
            Phase::Applying => match d.prev {
                Some(prev) => Link::Prev { prev, last: d.last },
                None => Link::Range {
                    first: d.first,
                    last: d.last,
                },
            },
        };
        if link == Link::None {
            if t.update(m, k, Link::None).is_none() {
                b.phase = Phase::Broken;
                hold(b, m, d, text);
                return Step::Skip;
            }
            t.set_last(m, k, d.last);
            let floor = match b.phase {
                Phase::Fresh(id, _) => id,
                _ => d.first.saturating_sub(1),
            };
            b.phase = Phase::Applying;
            return match t.proven(m, k) {
                Some(book) => Step::Apply(book, floor),
                None => Step::Skip,
            };
        }
        let floor = match link {
            Link::Prev { prev, .. } => prev,
            _ => d.first.saturating_sub(1),
        };
        match t.update(m, k, link) {
            Some(book) => Step::Apply(book, floor),
            None => {
                b.phase = Phase::Broken;
                hold(b, m, d, text);
                Step::Skip
            }
        }
    }

    /// A difference `d` with its levels: checked by [`Held::diff`], applied when it links.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn diff_levels(
        &mut self,
        t: &mut Tracker,
        m: &Msg<'_>,
        k: &Key<'_>,
        d: Diff,
        text: &str,
        bids: &[Lvl<'_>],
        asks: &[Lvl<'_>],
    ) {
        self.diff_with(t, m, k, d, text, |book, _| apply(book, bids, asks));
    }

    /// A difference `d`: checked by [`Held::diff`]; when it links, `change` applies it to the
    /// book, given the number the book is current to before it (the snapshot's, for the first
    /// difference after one: KuCoin spot skips the changes numbered up to it).
    pub(super) fn diff_with(
        &mut self,
        t: &mut Tracker,
        m: &Msg<'_>,
        k: &Key<'_>,
        d: Diff,
        text: &str,
        change: impl FnOnce(&mut Book, u64) -> Result<(), String>,
    ) {
        if let Step::Apply(book, floor) = self.diff(t, m, k, d, text) {
            if let Err(why) = change(book, floor) {
                self.broke(t, m, k, BreakKind::BadMessage, why);
                return;
            }
            self.applied(t, m, k);
        }
    }

    /// A REST snapshot line current to `id` with its levels, for book `k` under `rule`: a
    /// book that waits or is broken starts from it (the held messages to read again are
    /// returned); a proven book current to `id` is compared with it (a mismatch is counted as
    /// a failed checksum); otherwise it is ignored.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn rest_levels(
        &mut self,
        t: &mut Tracker,
        m: &Msg<'_>,
        k: &Key<'_>,
        id: u64,
        rule: Rule,
        bids: &[Lvl<'_>],
        asks: &[Lvl<'_>],
    ) -> Vec<String> {
        match self.rest(t, m, k, id, rule) {
            Start::From(held) => {
                let book = t.snapshot(m, k, Some(id));
                if let Err(why) = apply(book, bids, asks) {
                    self.bad_snapshot(m, k);
                    t.broke(m, k, BreakKind::BadMessage, why);
                    return Vec::new();
                }
                t.settle(m, k);
                held
            }
            Start::Compare => {
                if let Some(book) = t.proven(m, k) {
                    let got = compare(book, bids, asks);
                    let ok = got.is_ok();
                    t.checksum(m, k, ok, || {
                        format!(
                            "the REST snapshot current to {id} differs: {}",
                            got.err().unwrap_or_default()
                        )
                    });
                }
                Vec::new()
            }
            Start::Ignore => Vec::new(),
            Start::Stale => {
                tracing::debug!(venue = %k.venue, symbol = k.symbol, id, "REST snapshot older than the differences held: passed over");
                Vec::new()
            }
        }
    }

    /// After a difference's levels were applied: a crossed book breaks it.
    fn applied(&mut self, t: &mut Tracker, m: &Msg<'_>, k: &Key<'_>) {
        t.settle(m, k);
        if t.proven(m, k).is_none() {
            self.entry(m, k).phase = Phase::Broken;
        }
    }

    /// A break the venue module found while applying a difference (an unreadable level): the
    /// book waits for the next snapshot.
    pub(super) fn broke(
        &mut self,
        t: &mut Tracker,
        m: &Msg<'_>,
        k: &Key<'_>,
        kind: BreakKind,
        why: String,
    ) {
        t.broke(m, k, kind, why);
        self.entry(m, k).phase = Phase::Broken;
    }

    /// A REST snapshot current to `id` for book `k`, under `rule`.
    fn rest(&mut self, t: &mut Tracker, m: &Msg<'_>, k: &Key<'_>, id: u64, rule: Rule) -> Start {
        let b = self.entry(m, k);
        match b.phase {
            Phase::Waiting | Phase::Broken
                if b.held
                    .iter()
                    .find(|(d, _)| !rule.older(*d, id))
                    .is_some_and(|(d, _)| !rule.starts(*d, id)) =>
            {
                // Older than the first difference held after it: the recorder fetches again
                // (its own rule), so this one is passed over, not a break.
                Start::Stale
            }
            Phase::Waiting | Phase::Broken => {
                b.phase = Phase::Fresh(id, rule);
                b.held_at = None;
                b.bytes = 0;
                Start::From(
                    std::mem::take(&mut b.held)
                        .into_iter()
                        .map(|(_, t)| t)
                        .collect(),
                )
            }
            Phase::Fresh(old, _) if id > old => {
                b.phase = Phase::Fresh(id, rule);
                Start::From(Vec::new())
            }
            Phase::Fresh(..) => Start::Ignore,
            Phase::Applying if t.last(m, k) == Some(id) => Start::Compare,
            Phase::Applying => Start::Ignore,
        }
    }

    /// A snapshot just started with [`Start::From`] turned out unreadable.
    fn bad_snapshot(&mut self, m: &Msg<'_>, k: &Key<'_>) {
        self.entry(m, k).phase = Phase::Broken;
    }

    /// A connection of `stream` ended (`None`: all of them): books still waiting for their
    /// first snapshot with differences held take a `NoSnapshot` break; the connection's books
    /// go.
    pub(super) fn conn_ended(&mut self, t: &mut Tracker, stream: &str, conn: Option<u64>) {
        let ended: Vec<String> = self
            .books
            .iter()
            .filter(|(_, b)| &*b.stream == stream && conn.is_none_or(|c| c == b.conn))
            .map(|(k, _)| k.clone())
            .collect();
        for key in ended {
            if let Some(b) = self.books.remove(&key) {
                no_snapshot(t, &b);
            }
        }
    }

    /// The recording ended: books still waiting with differences held take a `NoSnapshot`
    /// break.
    pub(super) fn finish(&mut self, t: &mut Tracker) {
        for (_, b) in self.books.drain() {
            no_snapshot(t, &b);
        }
    }
}

/// Keeps `text` (the newest [`HELD`], at most [`HELD_BYTES`]).
fn hold(b: &mut HeldBook, m: &Msg<'_>, d: Diff, text: &str) {
    while b.held.len() >= HELD || (!b.held.is_empty() && b.bytes + text.len() > HELD_BYTES) {
        if let Some((_, old)) = b.held.pop_front() {
            b.bytes -= old.len();
        }
    }
    b.bytes += text.len();
    b.held.push_back((d, text.to_owned()));
    b.held_at = Some((m.at.clone(), m.ts));
}

/// The `NoSnapshot` break of a book that waited with differences held and never started.
fn no_snapshot(t: &mut Tracker, b: &HeldBook) {
    if b.phase != Phase::Waiting {
        return;
    }
    let Some((at, ts)) = &b.held_at else { return };
    let m = Msg {
        stream: &b.stream,
        conn: b.conn,
        ts: *ts,
        at,
    };
    let k = Key {
        venue: b.venue,
        channel: &b.channel,
        symbol: &b.symbol,
    };
    t.broke(
        &m,
        &k,
        BreakKind::NoSnapshot,
        format!(
            "{} differences waited for a REST snapshot that never came on connection {}",
            b.held.len(),
            b.conn
        ),
    );
}

/// Compares a REST snapshot with a proven book current to the same number, as far as that is
/// exact: every snapshot level the book has must have the same size, and every book level
/// within the snapshot's price range must be in it. (A snapshot level the book lacks may be
/// one deeper than the book's own start that never changed since: not a fault.)
pub(super) fn compare(book: &Book, bids: &[Lvl<'_>], asks: &[Lvl<'_>]) -> Result<(), String> {
    for (side, levels) in [(Side::Bid, bids), (Side::Ask, asks)] {
        let mut want = std::collections::BTreeMap::new();
        for l in levels {
            let p = key(l.price).map_err(|e| format!("snapshot price {}: {e}", l.price))?;
            let s = key(l.size).map_err(|e| format!("snapshot size {}: {e}", l.size))?;
            want.insert(p, (l, s));
        }
        let (Some(lo), Some(hi)) = (want.keys().next(), want.keys().next_back()) else {
            continue;
        };
        let (lo, hi) = (*lo, *hi);
        for l in book.side(side) {
            let Ok(p) = key(l.price.as_str()) else {
                continue;
            };
            // Levels before the snapshot's best count as well: the snapshot starts at its best.
            let inside = match side {
                Side::Bid => p >= lo,
                Side::Ask => p <= hi,
            };
            if !inside {
                continue;
            }
            match want.get(&p) {
                None => {
                    return Err(format!(
                        "the rebuilt book has {side:?} {} {} that the snapshot lacks",
                        l.price.as_str(),
                        l.size.as_str()
                    ));
                }
                Some((w, s)) if key(l.size.as_str()).ok() != Some(*s) => {
                    return Err(format!(
                        "{side:?} {}: the snapshot says {}, the rebuilt book {}",
                        w.price,
                        w.size,
                        l.size.as_str()
                    ));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}
