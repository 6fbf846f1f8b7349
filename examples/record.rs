//! Recording from Rust code: one stream, stopped by Ctrl-C.
//!
//! ```sh
//! cargo run --example record -- wss://stream.bybit.com/v5/public/linear \
//!     '{"op":"subscribe","args":["publicTrade.BTCUSDT"]}'
//! ```

use tokio_util::sync::CancellationToken;
use wsrec::{Recorder, StreamConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: record URL [SUBSCRIBE_MESSAGE...]")?;
    let mut stream = StreamConfig::new("example", url);
    for message in args {
        stream = stream.subscribe(message);
    }
    let recorder = Recorder::builder()
        .output_dir("./data")
        .stream(stream)
        .build()?;

    let shutdown = CancellationToken::new();
    let on_ctrl_c = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_ctrl_c.cancel();
    });
    recorder.run(shutdown).await?;
    println!("Recording is in ./data");
    Ok(())
}
