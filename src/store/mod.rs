//! The file side: from the queue to sealed files on disk.
//!
//! The [`writer`] task turns batches into lines and picks each line's file ([`rotation`]); the
//! [`disk`] worker (a task on tokio's blocking pool) does every blocking file operation
//! (append, fsync, rename, [`manifest`]s, retention); closed files go to the [`compress`]
//! thread. The writer keeps the lines of its idle moments in the [`journal`] (shared memory)
//! until the files get them. At start, a killed run's journal completes its files and
//! [`recover`] seals the files a crash left open.

pub mod compress;
pub mod disk;
pub mod journal;
pub mod manifest;
pub mod recover;
pub mod rotation;
pub mod writer;
