//! The `wsrec` binary: parse the command line, hand it to the library, exit with its code.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // One malloc arena instead of one per thread (glibc's default is up to 8 per core): the
    // connections, the writer and the disk worker hand buffers to each other across threads,
    // and per-thread arenas each kept their own free pages of the same buffers (more peak RSS
    // at flood rate). Small allocations still go through glibc's per-thread caches.
    // Blocks of 256 KiB and more (the writer's 512 KiB buffers, zstd's contexts) always get
    // their own mapping, given back when freed: glibc's default raises that threshold after the
    // first free, and the freed buffers then stayed resident in the heap (figures for both in
    // bench/README.md).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
    // One TLS provider for the whole process (rustls panics if two are linked and none is chosen).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = wsrec::cli::normalize_go_flags(std::env::args_os());
    let cli = wsrec::cli::Cli::parse_from(args);
    wsrec::commands::run(cli)
}
