//! The file side: from the queue to sealed files on disk.
//!
//! The [`writer`] task turns batches into lines and picks each line's file ([`rotation`]); the
//! [`disk`] worker (a task on tokio's blocking pool) does every blocking file operation
//! (append, fsync, rename, [`manifest`]s, retention); closed files go to the [`compress`]
//! thread. At start, [`recover`] seals the files a crash left open.

pub mod compress;
pub mod disk;
pub mod manifest;
pub mod recover;
pub mod rotation;
pub mod writer;
