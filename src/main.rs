use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = erpd::cli::Cli::parse();
    let _log_guard = erpd::telemetry::init();
    match erpd::commands::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("erpd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
