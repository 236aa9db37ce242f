use std::process::ExitCode;

use clap::Parser;
use okrhub_load::cli::Cli;
use okrhub_load::Report;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let cfg = match cli.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("okrhub-load: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("okrhub-load: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match runtime.block_on(okrhub_load::run(&cfg)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("okrhub-load: {e:#}");
            return ExitCode::from(2);
        }
    };
    // Don't wait for stragglers (closing sockets) once the report is in.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    let human = format!(
        "{}\n{}\n{}",
        report.summary(),
        Report::table_header(),
        report.table_row()
    );
    if json {
        eprintln!("{human}");
        println!("{}", report.json());
    } else {
        println!("{human}");
    }
    if report.converged {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
