use clap::Parser;
use okrhub::config::{Cli, LogFormat};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Cli::parse().into_serve_args();
    okrhub::telemetry::init(args.log_format == LogFormat::Json);
    let server = okrhub::server::start(args).await?;
    let stop = server.shutdown_token();
    tokio::spawn(async move {
        okrhub::telemetry::shutdown_signal().await;
        stop.cancel();
    });
    server.wait().await
}
