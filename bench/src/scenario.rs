//! The catalogue of scenarios. A scenario is a payload, a workload shape (how the server feeds
//! the recorder), the recorder invocation, and the target it is judged against.
//!
//! To add a scenario, add an entry to [`catalogue`]; if it needs a new shape of traffic, add a
//! [`Workload`] variant and handle it in [`crate::run::run_once`]; for another recorder (for
//! example websocat as a baseline) add a [`Recorder`] variant and its command line in
//! [`Recorder::command`].

use std::ffi::OsString;
use std::path::Path;

use anyhow::{Result, bail};
use serde::Serialize;

use crate::check::Format;

/// Size of the "small" messages.
pub const SMALL_SIZE: usize = 200;

/// Which messages are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadKind {
    /// `{"seq":k,"pad":"xxx…"}` of exactly `size` bytes.
    Small {
        /// Exact message length.
        size: usize,
    },
    /// The exchange frames of `tests/fixtures/corpus/*.jsonl`, cycled.
    Corpus,
}

/// How the flood server feeds the recorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// One connection, all N messages as fast as the recorder reads them, then close.
    Flood,
    // Planned (not implemented yet), each needing its own arm in `run::run_once`:
    // - `ManyConnections { connections }`: one server connection per stream, N split among them
    //   (the recorder started with several URLs or a config file).
    // - `Reconnect { every }`: the server closes after every `every` messages and the recorder
    //   must reconnect; the checker then expects several `conn` values and no loss across them.
    // - `SteadyRate { msgs_per_s }`: paced sending to measure CPU and RSS at a realistic load
    //   rather than at saturation.
}

/// The program that records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Recorder {
    /// `wsrec record URL -o DIR --name NAME --format FORMAT`.
    Wsrec {
        /// Output format.
        format: Format,
    },
    // Planned: `Websocat` (`websocat -n URL > file`, raw lines) as an outside baseline.
}

impl Recorder {
    /// The line format the recording will be in.
    pub fn format(self) -> Format {
        match self {
            Self::Wsrec { format } => format,
        }
    }

    /// Arguments for the recorder binary.
    pub fn command(self, url: &str, out_dir: &Path, name: &str) -> Vec<OsString> {
        match self {
            Self::Wsrec { format } => vec![
                "record".into(),
                url.into(),
                "-o".into(),
                out_dir.into(),
                "--name".into(),
                name.into(),
                "--format".into(),
                format.as_arg().into(),
                // The checker reads plain JSONL; compression has its own scenario
                // (a later --wsrec-arg overrides this).
                "--compress".into(),
                "none".into(),
            ],
        }
    }
}

/// Goals a scenario is judged against (2-core machine, one stream).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Target {
    /// Lowest acceptable median throughput.
    pub min_msgs_per_s: f64,
    /// Highest acceptable median CPU (user + system) per message.
    pub max_cpu_ns_per_msg: f64,
    /// Highest acceptable median peak RSS.
    pub max_rss_mib: f64,
}

/// Target for the default (envelope) format.
pub const TARGET_ENVELOPE: Target = Target {
    min_msgs_per_s: 2.0e6,
    max_cpu_ns_per_msg: 400.0,
    max_rss_mib: 12.0,
};

/// Target for the raw format.
pub const TARGET_RAW: Target = Target {
    min_msgs_per_s: 3.0e6,
    max_cpu_ns_per_msg: 400.0,
    max_rss_mib: 12.0,
};

/// One benchmark scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Name used with `--scenario` and in the results.
    pub name: &'static str,
    /// One-line description.
    pub about: &'static str,
    /// Which messages.
    pub payload: PayloadKind,
    /// How they are fed.
    pub workload: Workload,
    /// Who records them.
    pub recorder: Recorder,
    /// What counts as good enough.
    pub target: Option<Target>,
}

/// Every scenario, in the order they run by default.
pub fn catalogue() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "small-envelope",
            about: "200-byte JSON messages, one connection, envelope format",
            payload: PayloadKind::Small { size: SMALL_SIZE },
            workload: Workload::Flood,
            recorder: Recorder::Wsrec {
                format: Format::Envelope,
            },
            target: Some(TARGET_ENVELOPE),
        },
        Scenario {
            name: "small-raw",
            about: "200-byte JSON messages, one connection, raw format",
            payload: PayloadKind::Small { size: SMALL_SIZE },
            workload: Workload::Flood,
            recorder: Recorder::Wsrec {
                format: Format::Raw,
            },
            target: Some(TARGET_RAW),
        },
        Scenario {
            name: "corpus-envelope",
            about: "real exchange frames (tests/fixtures/corpus) cycled, one connection, envelope format",
            payload: PayloadKind::Corpus,
            workload: Workload::Flood,
            recorder: Recorder::Wsrec {
                format: Format::Envelope,
            },
            target: Some(TARGET_ENVELOPE),
        },
    ]
}

/// Resolves `--scenario` values (names, comma lists, or `all`) to scenarios in catalogue order.
///
/// # Errors
/// An unknown name; the message lists the known ones.
pub fn select(names: &[String]) -> Result<Vec<Scenario>> {
    let all = catalogue();
    let wanted: Vec<&str> = names
        .iter()
        .flat_map(|n| n.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if wanted.is_empty() || wanted.contains(&"all") {
        return Ok(all);
    }
    for name in &wanted {
        if !all.iter().any(|s| s.name == *name) {
            let known: Vec<_> = all.iter().map(|s| s.name).collect();
            bail!("unknown scenario {name:?}; known: {}", known.join(", "));
        }
    }
    Ok(all
        .into_iter()
        .filter(|s| wanted.contains(&s.name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_by_name_list_and_all() {
        let names = |v: &[&str]| -> Vec<&'static str> {
            let v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
            select(&v).unwrap().iter().map(|s| s.name).collect()
        };
        assert_eq!(names(&[]).len(), catalogue().len());
        assert_eq!(names(&["all"]).len(), catalogue().len());
        assert_eq!(
            names(&["corpus-envelope,small-raw"]),
            ["small-raw", "corpus-envelope"]
        );
        assert_eq!(
            names(&["small-raw", "small-envelope"]),
            ["small-envelope", "small-raw"]
        );
        assert!(select(&["nope".to_string()]).is_err());
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = catalogue().iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), catalogue().len());
    }
}
