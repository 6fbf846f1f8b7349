//! The commands around a recording (`cat`, `export`, `verify`, `stats`, `replay`, `demo`, `merge`): each
//! turns its clap arguments into the options of its tool in [`crate::tools`] and runs it; the
//! async ones (`replay`, `demo`) on a runtime from [`super::runtime`].

use crate::cli::{
    BookArgs, BookFormatArg, CatArgs, DemoArgs, ExportArgs, MergeArgs, ReplayArgs, SpeedArg,
    StatsArgs, VerifyArgs,
};
use crate::tools::{self, Filter};

/// `wsrec cat`.
pub(super) fn cat(args: &CatArgs) -> anyhow::Result<()> {
    let opts = tools::cat::CatOptions {
        filter: Filter {
            streams: args.streams.clone(),
            from: args.from,
            to: args.to,
        },
        msg_only: args.msg,
        merge: args.merge,
        no_snapshots: args.no_snapshots,
    };
    tools::cat::run(&args.paths, &opts)
}

/// `wsrec export`.
#[cfg(feature = "parquet")]
pub(super) fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let opts = tools::export::ExportOptions {
        filter: Filter {
            streams: args.streams.clone(),
            from: args.from,
            to: args.to,
        },
        merge: args.merge,
        no_snapshots: args.no_snapshots,
        force: args.force,
    };
    tools::export::run(&args.paths, &args.output, &opts)
}

/// `wsrec export` in a build without the `parquet` feature: says how to get it.
#[cfg(not(feature = "parquet"))]
pub(super) fn export(_args: &ExportArgs) -> anyhow::Result<()> {
    Err(tools::UsageError(
        "this wsrec was built without Parquet export (cargo feature `parquet`); build it with default features: cargo build --release".to_owned(),
    )
    .into())
}

/// `wsrec verify`.
pub(super) fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    let opts = tools::verify::VerifyOptions {
        venue: !args.no_venue,
        books: !args.no_books,
    };
    tools::verify::run(&args.paths, opts, args.json)
}

/// `wsrec book`.
pub(super) fn book(args: &BookArgs) -> anyhow::Result<()> {
    use tools::book::BookFormat;
    let format = match args.format {
        Some(BookFormatArg::Text) => BookFormat::Text,
        Some(BookFormatArg::Csv) => BookFormat::Csv,
        Some(BookFormatArg::Jsonl) => BookFormat::Jsonl,
        None if args.every.is_some() => BookFormat::Jsonl,
        None => BookFormat::Text,
    };
    let opts = tools::book::BookOptions {
        symbol: args.symbol.clone(),
        filter: Filter {
            streams: args.streams.clone(),
            from: args.from,
            to: args.to,
        },
        at: args.at,
        depth: args.depth,
        every: args.every,
        format,
    };
    tools::book::run(&args.paths, &opts)
}

/// `wsrec stats`.
pub(super) fn stats(args: &StatsArgs) -> anyhow::Result<()> {
    let output = if args.json {
        tools::summary::StatsOutput::Json
    } else if args.csv {
        tools::summary::StatsOutput::Csv
    } else {
        tools::summary::StatsOutput::Table
    };
    tools::summary::run(&args.paths, &args.streams, output)
}

/// `wsrec replay`, until Ctrl-C.
pub(super) fn replay(args: &ReplayArgs) -> anyhow::Result<()> {
    let opts = tools::replay::ReplayOptions {
        paths: args.paths.clone(),
        listen: args.listen,
        filter: Filter {
            streams: args.streams.clone(),
            from: args.from,
            to: args.to,
        },
        play: tools::replay::PlayOptions {
            speed: match args.speed {
                SpeedArg::Factor(k) => tools::replay::Speed::Factor(k),
                SpeedArg::Max => tools::replay::Speed::Max,
            },
            looping: args.looping,
        },
    };
    let files = tools::replay::files(&opts)?;
    super::tokio_runtime(2)?.block_on(tools::replay::run(files, opts))
}

/// `wsrec demo`.
pub(super) fn demo(args: &DemoArgs) -> anyhow::Result<()> {
    let opts = tools::demo::DemoOptions {
        duration: args.duration,
        output_dir: args.output_dir.clone(),
    };
    tools::demo::run(&opts, &super::tokio_runtime(2)?)
}

/// `wsrec merge`.
pub(super) fn merge(args: &MergeArgs) -> anyhow::Result<()> {
    let opts = tools::merge::MergeOptions {
        tolerance_ns: u64::try_from(args.tolerance.as_nanos()).unwrap_or(u64::MAX),
        venue: !args.no_venue,
        force: args.force,
    };
    tools::merge::run(&args.inputs, &args.output, &opts, args.json)
}
