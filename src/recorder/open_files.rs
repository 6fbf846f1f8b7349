//! The open-file check at start: how many descriptors a config needs ([`descriptors_needed`]),
//! and raising the soft `RLIMIT_NOFILE` to the hard one, refusing to start when they would
//! still not fit.

use crate::config::Config;
use crate::error::ConfigError;

/// Descriptors a recorder needs besides its streams and uploads: stdio, the runtime's epoll and
/// wakers, the signal pipe, the log file, the status socket and a few clients, the metrics
/// endpoint and a few scrapers, the disk worker's manifest and directory syncs, the
/// compressor's input and output, the NATS connection, the resolver's and the TLS roots' files.
const FIXED_DESCRIPTORS: u64 = 64;
/// Descriptors per connection of a stream: its socket, and a second one for the
/// make-before-break replacement (or a reconnect's DNS lookup while the old socket closes).
const DESCRIPTORS_PER_CONNECTION: u64 = 2;
/// Descriptors per upload in flight: the file and the HTTP connections of its parts.
const DESCRIPTORS_PER_UPLOAD: u64 = 4;

/// Open files (descriptors) a recorder of `config` may need at once, with a margin: for each
/// connection (a stream has one per shard) two sockets (make-before-break overlap), for each
/// stream its data file and, in the `raw` format, its events file, for each upload in flight
/// its file and connections, and what every recorder needs; plus a quarter for what is not
/// counted (more status or metrics clients, files briefly open at rotation).
pub fn descriptors_needed(config: &Config) -> u64 {
    let streams: u64 = config
        .streams
        .iter()
        .map(|s| {
            let connections = crate::net::venue::plan(s).len() as u64;
            let files = if s.format == crate::config::Format::Raw {
                2
            } else {
                1
            };
            connections * DESCRIPTORS_PER_CONNECTION + files
        })
        .sum();
    let uploads = config
        .upload
        .as_ref()
        .map_or(0, |u| u.concurrency as u64 * DESCRIPTORS_PER_UPLOAD);
    let base = FIXED_DESCRIPTORS + streams + uploads;
    base + base.div_ceil(4)
}

/// Raises the soft open-file limit (`RLIMIT_NOFILE`) to the hard one, as far as the system
/// allows, and checks that `needed` descriptors fit in it.
///
/// # Errors
/// [`ConfigError::OpenFiles`] when they do not: the streams would fail to connect or to open
/// their files one after another.
pub(super) fn raise_open_file_limit(needed: u64, streams: usize) -> Result<(), ConfigError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "Cannot read the open-file limit (RLIMIT_NOFILE); starting without checking it.");
        return Ok(());
    }
    let before = lim.rlim_cur;
    // The hard limit first; where the system refuses it (macOS caps an unlimited one), what is
    // needed.
    for target in [lim.rlim_max, needed.min(lim.rlim_max)] {
        if target <= lim.rlim_cur {
            continue;
        }
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = target;
            break;
        }
    }
    if lim.rlim_cur > before {
        tracing::info!(
            from = before,
            to = lim.rlim_cur,
            hard = lim.rlim_max,
            needed,
            "Raised the open-file limit (RLIMIT_NOFILE)."
        );
    }
    if lim.rlim_cur < needed {
        return Err(ConfigError::OpenFiles {
            streams,
            needed,
            limit: lim.rlim_cur,
            hard: lim.rlim_max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_are_counted_per_connection_and_file_with_a_margin() {
        let needed = |streams: &str| {
            descriptors_needed(
                &crate::net::venue::resolve(
                    Config::parse_toml(&format!("output_dir = \"o\"\n{streams}")).unwrap(),
                )
                .unwrap(),
            )
        };
        let plain = "[[stream]]\nname = \"a\"\nurl = \"wss://h/\"\n";
        // Two sockets and a data file, the fixed 64, a quarter more.
        assert_eq!(needed(plain), 67 + 17);
        let raw = "[[stream]]\nname = \"b\"\nurl = \"wss://h/\"\nformat = \"raw\"\n";
        assert_eq!(
            needed(&format!("{plain}{raw}")),
            71 + 18,
            "raw: an events file too"
        );
        // 250 topics at Bybit's 100 per connection: three connections.
        let topics: Vec<String> = (0..250)
            .map(|i| format!("\"publicTrade.S{i}USDT\""))
            .collect();
        let venue = format!(
            "[[stream]]\nname = \"c\"\nvenue = \"bybit-linear\"\ntopics = [{}]\n",
            topics.join(",")
        );
        assert_eq!(needed(&venue), 64 + 6 + 1 + 18);
        let upload = "[upload]\nurl = \"s3://bucket\"\nconcurrency = 4\n";
        assert_eq!(needed(&format!("{upload}{plain}")), 67 + 16 + 21);
    }
}
