//! The completeness of a recording: the chains its manifests make (each closed file names the
//! file before it in its stream), checked once every file is read.

use std::sync::Arc;

use super::state::{Expected, Where, lexical};
use super::verifier::Verifier;
use super::{IssueKind, Severity};

impl Verifier {
    /// Checks the chains of the files read: every predecessor a manifest names is there and is
    /// the file it followed, every chain ends with a clean stop (or a file left open or
    /// recovered after it), and every manifest beside the files read has its file.
    pub(super) fn check_chains(&mut self) {
        use crate::store::manifest;
        let chains = std::mem::take(&mut self.chains);
        let mut followed = std::collections::BTreeSet::new();
        for l in &chains.links {
            let Some(p) = &l.chain.prev else {
                continue;
            };
            let dir = l.logical.parent().unwrap_or(std::path::Path::new(""));
            let prev = lexical(&dir.join(&p.file));
            let at = Where {
                file: l.path.clone(),
                line: 0,
            };
            let wrong = if !chains.read.contains(&prev) && !crate::fsutil::exists_in_any_form(&prev)
            {
                Some(format!(
                    "{} is missing: this file's manifest names it as the file before it in the stream ({}); it was deleted or moved",
                    prev.display(),
                    l.format
                ))
            } else if let Ok(bytes) = std::fs::read(manifest::path_for(&prev))
                && let Ok(e) = serde_json::from_slice::<Expected>(&bytes)
                && !e.xxh3_64.eq_ignore_ascii_case(&p.xxh3_64)
            {
                Some(format!(
                    "the file before it, {}, is not the one it followed: its manifest says XXH3-64 {}, this file's manifest names {}",
                    prev.display(),
                    e.xxh3_64,
                    p.xxh3_64
                ))
            } else {
                None
            };
            if let Some(detail) = wrong {
                self.issue(
                    IssueKind::MissingFile,
                    Severity::Problem,
                    Some(&at),
                    Some(&l.stream),
                    detail,
                );
            }
            followed.insert(prev);
        }
        let dirs: std::collections::BTreeSet<_> =
            chains.read.iter().filter_map(|p| p.parent()).collect();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                dir
            }) else {
                continue;
            };
            let mut orphans = Vec::new();
            for e in entries.filter_map(Result::ok) {
                let path = dir.join(e.file_name());
                let Some(data) = manifest::data_for(&path) else {
                    continue;
                };
                if chains.read.contains(&data) {
                    continue;
                }
                if !crate::fsutil::exists_in_any_form(&data) {
                    orphans.push((path, data));
                } else if let Ok(bytes) = std::fs::read(&path)
                    && let Ok(e) = serde_json::from_slice::<Expected>(&bytes)
                    && let Some(prev) = e.chain.and_then(|c| c.prev)
                {
                    // A file beside those read, not read itself (verify was given part of the
                    // recording): the file it follows does not end its chain.
                    followed.insert(lexical(&dir.join(prev.file)));
                }
            }
            orphans.sort();
            for (m, data) in orphans {
                let at = Where {
                    file: Arc::from(m.to_string_lossy().as_ref()),
                    line: 0,
                };
                self.issue(
                    IssueKind::MissingFile,
                    Severity::Problem,
                    Some(&at),
                    None,
                    format!(
                        "a manifest without its file: {} is missing (deleted or moved after it was closed)",
                        data.display()
                    ),
                );
            }
        }
        for l in &chains.links {
            if l.chain.run_end
                || followed.contains(&l.logical)
                || chains.unfinished.contains(&l.stream)
            {
                continue;
            }
            let at = Where {
                file: l.path.clone(),
                line: 0,
            };
            self.issue(
                IssueKind::NoClose,
                Severity::Problem,
                Some(&at),
                Some(&l.stream),
                format!(
                    "ends without a close: files missing after {} ({}), or the recorder was killed",
                    l.logical.display(),
                    l.format
                ),
            );
        }
    }
}
