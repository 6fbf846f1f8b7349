//! The per-connection runtimes of the streams: each stream's shards (one connection each) with
//! what they share (counters, sequence numbers, the venue's pacer) and the reconnect policy.
//! Built before the first connection, so that bad input fails the start.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::clock::Clock;
use crate::config::{Config, StreamConfig};
use crate::error::ConfigError;
use crate::net::stream::Policy;
use crate::net::stream::runtime::{ShardPosition, StreamRuntime, VenueRuntime};
use crate::net::transport::ConnectSpec;
use crate::net::venue::pace::{Bucket, Pacer};
use crate::net::venue::presets::Counts;
use crate::observe::stats::{Stats, StreamStats};

/// One connection's task: what it runs with and how it reconnects.
pub(super) struct StreamTask {
    /// The connection's settings and shared state.
    pub(super) runtime: StreamRuntime,
    /// Backoff and connection-age policy of its stream.
    pub(super) policy: Policy,
}

/// The tasks of every stream's connections (a stream has one per shard), in config order.
/// Connections of one stream share its counters and sequence numbers; streams that talk to one
/// venue share its pacer.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the stream and field: a bad URL, CA file, proxy or token URL.
pub(super) fn stream_tasks(
    config: &Config,
    stats: &Stats,
    clock: Clock,
    batch_max: usize,
    pressure: &Arc<crate::fair::Pressure>,
) -> Result<Vec<StreamTask>, ConfigError> {
    let mut tasks = Vec::new();
    let mut pacers = Pacers::default();
    // One request budget per REST host for the whole process: the venues count per IP.
    let rest = Arc::new(crate::net::venue::rest::RestBudgets::default());
    for (idx, (s, st)) in config.streams.iter().zip(&stats.streams).enumerate() {
        let shards = crate::net::venue::plan(s);
        if shards.len() > 1 {
            tracing::info!(stream = %s.name, topics = s.topics.len(), connections = shards.len(), "Topics split over several connections (max_topics_per_connection).");
        }
        let shared = Shared {
            stats: st.clone(),
            seq: Arc::default(),
            next_conn: Arc::new(AtomicU64::new(1)),
            pacer: pacers.get(s),
            clock,
            batch_max,
            pressure: pressure.clone(),
            rest: rest.clone(),
        };
        let count = shards.len();
        for (i, shard) in shards.into_iter().enumerate() {
            tasks.push(StreamTask {
                runtime: stream_runtime(
                    idx,
                    s,
                    &shared,
                    shard,
                    ShardPosition {
                        number: i + 1,
                        count,
                    },
                )?,
                policy: policy(s),
            });
        }
    }
    Ok(tasks)
}

/// What the shards of one stream share.
struct Shared {
    stats: Arc<StreamStats>,
    seq: Arc<AtomicU64>,
    next_conn: Arc<AtomicU64>,
    pacer: Option<Arc<Pacer>>,
    rest: Arc<crate::net::venue::rest::RestBudgets>,
    clock: Clock,
    batch_max: usize,
    pressure: Arc<crate::fair::Pressure>,
}

/// One pacer per venue (or host) and spacing, shared by every stream that talks to it, and one
/// bucket per venue budget, shared by every pacer that draws on it.
#[derive(Default)]
struct Pacers {
    pacers: std::collections::HashMap<String, Arc<Pacer>>,
    buckets: std::collections::HashMap<&'static str, Arc<Bucket>>,
}

impl Pacers {
    /// The bucket of the preset's budget that counts `what`, if the venue has one.
    fn bucket(
        &mut self,
        preset: Option<&'static crate::net::venue::Preset>,
        what: Counts,
    ) -> Option<Arc<Bucket>> {
        let b = preset?.budgets().find(|b| b.counts == what)?;
        let bucket = self
            .buckets
            .entry(b.name)
            .or_insert_with(|| Arc::new(Bucket::for_budget(b)));
        Some(bucket.clone())
    }

    fn get(&mut self, s: &StreamConfig) -> Option<Arc<Pacer>> {
        if s.connect_interval.is_none() && s.subscribe_interval.is_none() {
            return None;
        }
        let target = match &s.venue {
            Some(v) => v.to_ascii_lowercase(),
            None => url::Url::parse(&s.url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default(),
        };
        let key = format!(
            "{target}|{:?}|{:?}",
            s.connect_interval, s.subscribe_interval
        );
        let preset = s.venue.as_deref().and_then(crate::net::venue::find);
        let connects = self.bucket(preset, Counts::Connects);
        let messages = self.bucket(preset, Counts::Messages);
        let pacer = self.pacers.entry(key).or_insert_with(|| {
            Arc::new(
                Pacer::new(
                    s.connect_interval.unwrap_or_default(),
                    s.subscribe_interval.unwrap_or_default(),
                )
                .with_budgets(connects, messages),
            )
        });
        Some(pacer.clone())
    }
}

fn stream_runtime(
    idx: usize,
    s: &StreamConfig,
    shared: &Shared,
    shard: crate::net::venue::Shard,
    position: ShardPosition,
) -> Result<StreamRuntime, ConfigError> {
    let mut spec_source = s.clone();
    spec_source.url.clone_from(&shard.url);
    let preset = s.venue.as_deref().and_then(crate::net::venue::find);
    let venue = preset
        .filter(|_| !shard.topics.is_empty())
        .map(|p| VenueRuntime {
            family: p.family,
            requests: shard.requests.clone(),
            in_url: shard.topics[..shard.in_url].to_vec(),
            first_data_timeout: s.first_data_timeout,
            subscribe_after_connect: p.limits.subscribe_after_connect,
        });
    let token = match (&s.token_url, preset.and_then(|p| p.pre_connect.as_ref())) {
        (Some(url), Some(pc)) => Some(crate::net::venue::token::TokenStep::new(url, pc).map_err(
            |message| ConfigError::Invalid {
                field: format!("stream `{}`: token_url", s.name),
                message,
            },
        )?),
        _ => None,
    };
    let snapshots = match (preset, &s.snapshot_url) {
        (Some(p), Some(base)) if s.snapshots && p.rest_snapshot().is_some() => {
            Some(crate::net::stream::runtime::SnapshotSetup {
                base: base.trim_end_matches('/').to_owned(),
                depth: s.snapshot_depth,
                interval: s.snapshot_interval,
                preset: p,
                budgets: shared.rest.clone(),
            })
        }
        _ => None,
    };
    let mut spec = ConnectSpec::from_config(&spec_source)?;
    // Kernel stamps are real time; an injected clock (tests' paused time) is not, so with one
    // every receive time comes from that clock.
    spec.kernel_ts &= matches!(shared.clock, Clock::System);
    Ok(StreamRuntime {
        idx,
        name: s.name.clone(),
        masked_url: crate::config::mask_url(&shard.url),
        tags: s.tags.clone(),
        spec,
        subscribe: shard.subscribe,
        ping_interval: s.ping_interval,
        pong_timeout: s.pong_timeout,
        app_ping: s.app_ping.as_ref().map(|m| m.0.clone()),
        app_ping_interval: s.app_ping_interval,
        app_pong_contains: s.app_pong_contains.as_ref().map(|t| t.as_bytes().to_vec()),
        silence_timeout: s.silence_timeout,
        insecure: s.insecure,
        seq: shared.seq.clone(),
        next_conn: shared.next_conn.clone(),
        shard: position,
        venue,
        pacer: shared.pacer.clone(),
        token,
        snapshots,
        stats: shared.stats.clone(),
        clock: shared.clock,
        batch_max: shared.batch_max,
        pressure: shared.pressure.clone(),
    })
}

fn policy(s: &StreamConfig) -> Policy {
    Policy {
        backoff_initial: s.backoff_initial,
        backoff_max: s.backoff_max,
        healthy_after: s.healthy_after,
        max_connection_age: s.max_connection_age,
        stop_on_refusal: s.stop_on_refusal,
    }
}
