use clap::Parser;
use okrhub::config::{Cli, Command, LogFormat};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = match Cli::parse().into_command() {
        Command::Serve(args) => args,
        Command::Export(args) => {
            okrhub::telemetry::init(false);
            return okrhub::cli::export(&args).await;
        }
        Command::Import(args) => {
            okrhub::telemetry::init(false);
            return okrhub::cli::import(&args).await;
        }
        Command::Token(args) => return okrhub::cli::token(&args),
    };
    okrhub::telemetry::init(args.log_format == LogFormat::Json);
    let server = okrhub::server::start(args).await?;
    let stop = server.shutdown_token();
    tokio::spawn(async move {
        okrhub::telemetry::shutdown_signal().await;
        stop.cancel();
    });
    server.wait().await
}
