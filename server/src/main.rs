//! `codepod`: read the configuration, build the application, serve until asked to stop.

use clap::Parser;
use server::{Application, Config, shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    telemetry::init(&config.log);
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "codepod failed");
            eprintln!("codepod: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), server::Error> {
    let app = Application::build(config).await?;
    tracing::info!(address = %app.local_addr(), "codepod listening");
    app.run_until(shutdown_signal()).await
}
