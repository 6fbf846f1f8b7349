//! Reading one source's stream for the merge: its records become [`Pending`] items (messages
//! with their sequence identity, snapshots, connection changes and loss marks), tracked per
//! connection.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::Hasher as _;

use serde::Deserialize;
use twox_hash::XxHash3_64 as Xxh3;

use super::Summary;
use crate::read::{Entry, EventDetail, Item, Order, Payload, RecordingFile, Scan};
use crate::tools::LineKind;
use crate::tools::venue_seq::{self, Point, Step, Venue};

/// What becomes of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fate {
    /// Not matched yet.
    Open,
    /// Matched; this copy is written.
    Keep,
    /// Matched; another copy is written.
    Dup,
}

/// A message's exchange sequence identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct VenueId {
    venue: Venue,
    key: String,
    step: Step,
}

#[derive(Debug)]
pub(super) struct Msg {
    /// The source connection (unique within the source).
    pub(super) uconn: u32,
    /// `,"msg":…`, `,"text":…` or `,"bin":…`: the payload member as written.
    pub(super) frag: Vec<u8>,
    venue: Option<VenueId>,
    pub(super) hash: u64,
    pub(super) fate: Fate,
}

impl Msg {
    pub(super) fn same(&self, other: &Msg) -> bool {
        match (&self.venue, &other.venue) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.frag == other.frag,
            _ => false,
        }
    }
}

#[derive(Debug)]
pub(super) enum Kind {
    Msg(Msg),
    /// A connection is up; `up`: the source had none before.
    Connected {
        uconn: u32,
        conn: u64,
        origin: ConnOrigin,
        up: bool,
    },
    /// The source's last live connection ended.
    Down {
        reason: String,
    },
    /// A loss mark; `body` is the event's members from `"event"` on.
    Loss {
        body: Vec<u8>,
    },
    /// A snapshot of source connection `uconn`; `frag` is `,"snapshot":{…}` and the body's
    /// member, as written.
    Snapshot {
        uconn: u32,
        frag: Vec<u8>,
    },
}

#[derive(Debug)]
pub(super) struct Pending {
    pub(super) ts: u64,
    pub(super) kind: Kind,
}

/// What a source's `connected` event says about the recorder that made it, carried into the
/// output's `connected` events as provenance.
#[derive(Clone, Debug, Default, Deserialize)]
pub(super) struct ConnOrigin {
    /// The recorder's host.
    pub(super) host: Option<String>,
    /// The stream's tags in that recorder's config.
    #[serde(default)]
    pub(super) tags: crate::config::Tags,
}

/// A source's connection state, turning its records into [`Pending`] items.
#[derive(Debug, Default)]
pub(super) struct Track {
    venue: bool,
    live: BTreeSet<u64>,
    max_conn: u64,
    pid: Option<u64>,
    run: u32,
    uconns: HashMap<(u32, u64), u32>,
    last_ts: u64,
    out: VecDeque<Pending>,
    points: Vec<Point>,
}

impl Track {
    fn uconn(&mut self, conn: u64) -> u32 {
        let n = self.uconns.len() as u32;
        *self.uconns.entry((self.run, conn)).or_insert(n)
    }

    /// Source connection `conn` has a record at `ts`: it is live (the `connected` line may be
    /// missing). Returns its unique number.
    fn record_of(&mut self, conn: u64, ts: u64) -> u32 {
        if !self.live.contains(&conn) {
            let up = self.live.is_empty();
            self.live.insert(conn);
            self.max_conn = self.max_conn.max(conn);
            let uconn = self.uconn(conn);
            self.out.push_back(Pending {
                ts,
                kind: Kind::Connected {
                    uconn,
                    conn,
                    origin: ConnOrigin::default(),
                    up,
                },
            });
        }
        self.last_ts = self.last_ts.max(ts);
        self.uconn(conn)
    }

    fn entry(&mut self, entry: Entry<'_>, line: &[u8]) {
        match entry {
            Entry::Message(m) => {
                let uconn = self.record_of(m.conn, m.ts);
                let msg = self.message(uconn, &m.payload);
                self.out.push_back(Pending {
                    ts: m.ts,
                    kind: Kind::Msg(msg),
                });
            }
            Entry::Snapshot(sn) => {
                let uconn = self.record_of(sn.conn, sn.ts);
                let mut frag = Vec::with_capacity(sn.request.len() + sn.payload.len() + 32);
                frag.extend_from_slice(b",\"snapshot\":");
                frag.extend_from_slice(sn.request.as_bytes());
                payload_member(&sn.payload, &mut frag);
                self.out.push_back(Pending {
                    ts: sn.ts,
                    kind: Kind::Snapshot { uconn, frag },
                });
            }
            Entry::Event(e) => {
                let conn = e.conn;
                match &*e.name {
                    "connected" => {
                        let detail = EventDetail::parse(line);
                        let new_run = conn <= self.max_conn
                            || matches!((self.pid, detail.pid), (Some(a), Some(b)) if a != b);
                        if new_run {
                            if !self.live.is_empty() {
                                self.live.clear();
                                self.out.push_back(Pending {
                                    ts: self.last_ts.min(e.ts),
                                    kind: Kind::Down {
                                        reason:
                                            "recorder stopped without closing (killed or crashed)"
                                                .to_owned(),
                                    },
                                });
                            }
                            self.run += 1;
                            self.max_conn = 0;
                        }
                        if detail.pid.is_some() {
                            self.pid = detail.pid;
                        }
                        self.max_conn = self.max_conn.max(conn);
                        let up = self.live.is_empty();
                        self.live.insert(conn);
                        let uconn = self.uconn(conn);
                        let origin = serde_json::from_slice::<ConnOrigin>(line).unwrap_or_default();
                        self.out.push_back(Pending {
                            ts: e.ts,
                            kind: Kind::Connected {
                                uconn,
                                conn,
                                origin,
                                up,
                            },
                        });
                    }
                    "disconnected" => {
                        let was_live = self.live.remove(&conn);
                        if was_live && self.live.is_empty() {
                            let reason = EventDetail::parse(line)
                                .reason
                                .unwrap_or_else(|| "unknown".to_owned());
                            self.out.push_back(Pending {
                                ts: e.ts,
                                kind: Kind::Down { reason },
                            });
                        }
                    }
                    "dropped" | "disk_full_gap" | "write_error_gap" => {
                        if let Some(at) = memchr::memmem::find(line, b",\"event\":") {
                            let end = line.len().saturating_sub(1).max(at + 1);
                            self.out.push_back(Pending {
                                ts: e.ts,
                                kind: Kind::Loss {
                                    body: line[at + 1..end].to_vec(),
                                },
                            });
                        }
                    }
                    _ => {}
                }
                self.last_ts = self.last_ts.max(e.ts);
            }
        }
    }

    fn message(&mut self, uconn: u32, payload: &Payload<'_>) -> Msg {
        let mut frag = Vec::with_capacity(payload.len() + 16);
        payload_member(payload, &mut frag);
        let mut venue = None;
        if self.venue
            && let Payload::Json(s) = payload
        {
            self.points.clear();
            venue_seq::points(s.as_bytes(), &mut self.points);
            // Coinbase and Bitfinex number per connection: two recorders' numbers do not
            // correspond.
            venue = self
                .points
                .iter()
                .find(|p| !p.venue.per_connection())
                .map(|p| VenueId {
                    venue: p.venue,
                    key: p.key.clone(),
                    step: p.step,
                });
        }
        let hash = match &venue {
            Some(v) => venue_hash(v),
            None => Xxh3::oneshot(&frag),
        };
        Msg {
            uconn,
            frag,
            venue,
            hash,
            fate: Fate::Open,
        }
    }

    /// At the end of the source: a connection still live ends with the data.
    fn finish(&mut self) {
        if !self.live.is_empty() {
            self.live.clear();
            self.out.push_back(Pending {
                ts: self.last_ts,
                kind: Kind::Down {
                    reason: "end_of_recording".to_owned(),
                },
            });
        }
    }
}

/// Appends a payload's member as the recorder writes it: `,"msg":…`, `,"text":…` or
/// `,"bin":…`.
fn payload_member(payload: &Payload<'_>, frag: &mut Vec<u8>) {
    match payload {
        Payload::Json(s) => {
            frag.extend_from_slice(b",\"msg\":");
            frag.extend_from_slice(s.as_bytes());
        }
        Payload::Text(t) => {
            frag.extend_from_slice(b",\"text\":");
            crate::json::write_json_string(t.as_bytes(), frag);
        }
        Payload::Binary(b) => {
            frag.extend_from_slice(b",\"bin\":\"");
            frag.extend_from_slice(b.as_bytes());
            frag.push(b'"');
        }
    }
}

pub(super) fn venue_hash(v: &VenueId) -> u64 {
    let mut h = Xxh3::new();
    h.write(&[v.venue as u8]);
    h.write(v.key.as_bytes());
    let (tag, a, b) = match v.step {
        Step::Reset { last } => (0u8, last, 0),
        Step::Link { prev, last } => (1, prev, last),
        Step::Range { first, last } => (2, first, last),
        Step::Increasing { value } => (3, value, 0),
    };
    h.write(&[0, tag]);
    h.write(&a.to_le_bytes());
    h.write(&b.to_le_bytes());
    h.finish()
}

/// One source's stream, read as [`Pending`] items.
pub(super) struct SourceReader {
    scan: Option<Scan>,
    track: Track,
    done: bool,
}

impl SourceReader {
    pub(super) fn new(files: Vec<RecordingFile>, venue: bool) -> Self {
        Self {
            scan: (!files.is_empty()).then(|| Scan::new(files, Order::Merged)),
            track: Track {
                venue,
                ..Track::default()
            },
            done: false,
        }
    }

    pub(super) fn next(&mut self, summary: &mut Summary) -> Option<Pending> {
        loop {
            if let Some(p) = self.track.out.pop_front() {
                return Some(p);
            }
            if self.done {
                return None;
            }
            let Some(item) = self.scan.as_mut().and_then(Scan::next_item) else {
                self.done = true;
                self.track.finish();
                continue;
            };
            match item {
                Item::Error(e) => summary.warn(e.to_string()),
                Item::FileEnd { .. } => {}
                Item::Line {
                    file,
                    format,
                    info,
                    bytes,
                    ..
                } => {
                    let at = format!("{}:{}", file.path.display(), info.number);
                    match LineKind::of(file, format, &info, bytes) {
                        LineKind::TooLong => summary.warn(format!("{at}: line too long; skipped")),
                        LineKind::Torn { open: false } => {
                            summary.warn(format!("{at}: torn last line; skipped"));
                        }
                        LineKind::Torn { open: true } => {}
                        LineKind::Raw => summary.warn(format!("{at}: raw line; skipped")),
                        LineKind::Invalid(why) => {
                            summary.warn(format!("{at}: not a record ({why}); skipped"));
                        }
                        LineKind::Record(e) => self.track.entry(e, bytes),
                    }
                }
            }
        }
    }
}
