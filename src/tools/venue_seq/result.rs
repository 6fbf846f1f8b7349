//! Gate's and Crypto.com's messages, whose data sits under `result`: Gate's order book updates
//! (`U`/`u` ranges) and Crypto.com's books (`pu` links to the previous `u`).

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Point, Step, Venue};

#[derive(Deserialize)]
pub(super) struct GateBook {
    s: Option<String>,
    #[serde(rename = "U")]
    first_update: Option<u64>,
    u: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct CryptocomResult<'a> {
    subscription: Option<String>,
    channel: Option<String>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(super) struct CryptocomBook {
    u: Option<u64>,
    pu: Option<u64>,
}

/// The sequence facts of a message with a `result` (Gate's and Crypto.com's data).
pub(super) fn result_points(channel: Option<&str>, result: &RawValue, out: &mut Vec<Point>) {
    // Gate: `{"channel":"spot.order_book_update","result":{"s","U","u",…}}`.
    if let Some(channel) = channel.filter(|c| c.ends_with(".order_book_update")) {
        if let Ok(GateBook {
            s: Some(symbol),
            first_update: Some(first),
            u: Some(last),
        }) = serde_json::from_str::<GateBook>(result.get())
        {
            out.push(Point {
                venue: Venue::Gate,
                key: format!("{channel}:{symbol}"),
                field: "U/u",
                step: Step::Range { first, last },
            });
        }
        return;
    }
    // Crypto.com: `{"result":{"subscription","channel":"book"|"book.update","data":[…]}}`.
    let Ok(r) = serde_json::from_str::<CryptocomResult<'_>>(result.get()) else {
        return;
    };
    let (Some(key), Some(kind), Some(data)) = (r.subscription, r.channel, r.data) else {
        return;
    };
    if kind != "book" && kind != "book.update" {
        return;
    }
    let Ok(books) = serde_json::from_str::<Vec<CryptocomBook>>(data.get()) else {
        return;
    };
    for b in books {
        let Some(last) = b.u else { continue };
        let step = match b.pu {
            Some(prev) if kind == "book.update" => Step::Link { prev, last },
            _ => Step::Reset { last },
        };
        out.push(Point {
            venue: Venue::Cryptocom,
            key: key.clone(),
            field: "u/pu",
            step,
        });
    }
}
