//! The `wsrec` binary: parse the command line, hand it to the library, exit with its code.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // One TLS provider for the whole process (rustls panics if two are linked and none is chosen).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = wsrec::cli::normalize_go_flags(std::env::args_os());
    let cli = wsrec::cli::Cli::parse_from(args);
    wsrec::commands::run(cli)
}
