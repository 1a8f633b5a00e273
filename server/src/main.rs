//! `codepod`: read the configuration, build the application, serve until asked to stop.

use clap::Parser;
use server::{Application, Config, shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    if config.print_sandbox_pod {
        let id = sandbox::SandboxId::parse("00000000-0000-4000-8000-000000000000");
        let pod = id.map(|id| {
            sandbox::kube::pod::sandbox_pod(
                &config.kube.runtime_config(&config.sandbox),
                sandbox::kube::pod::Role::Workspace(&id),
            )
        });
        return match pod.map(|pod| serde_json::to_string_pretty(&pod)) {
            Ok(Ok(json)) => {
                println!("{json}");
                std::process::ExitCode::SUCCESS
            }
            _ => std::process::ExitCode::FAILURE,
        };
    }
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
