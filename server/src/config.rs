//! The one place that reads the environment: every setting is a `CODEPOD_*` variable or the
//! matching command-line flag (`codepod --help` lists them), and every one has a default so
//! the server runs with nothing set.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, ValueEnum};

/// The server's configuration.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "codepod",
    version,
    about = "Codepod: a Python IDE in the browser"
)]
pub struct Config {
    /// Address and port to listen on. Port 0 picks a free port (tests use it).
    #[arg(long, env = "CODEPOD_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// The origin browsers use to reach this server, e.g. `https://codepod.example.org`.
    /// Defaults to `http://` + the listen address.
    #[arg(long, env = "CODEPOD_PUBLIC_ORIGIN")]
    pub public_origin: Option<String>,

    /// Directory for the SQLite database and the workspaces of local sandboxes.
    #[arg(long, env = "CODEPOD_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Directory holding the built site: `pkg/` (wasm, js, css), `vendor/` and the public
    /// assets. The build scripts and `cargo leptos` write it to `target/site`.
    #[arg(long, env = "CODEPOD_SITE_DIR", default_value = "target/site")]
    pub site_dir: PathBuf,

    /// How long to wait for open connections to finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "CODEPOD_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    #[command(flatten)]
    pub log: LogConfig,
}

/// Logging settings.
#[derive(Debug, Clone, Args)]
pub struct LogConfig {
    /// Log filter in `tracing` syntax, e.g. `info` or `server=debug,tower_http=info`.
    #[arg(long = "log", env = "CODEPOD_LOG", default_value = "info")]
    pub filter: String,

    /// Log line format: human-readable `text` or one JSON object per line.
    #[arg(
        long = "log-format",
        env = "CODEPOD_LOG_FORMAT",
        default_value = "text"
    )]
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl Config {
    /// A configuration with every default, as if no variable were set. Tests start from it.
    pub fn defaults() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            public_origin: None,
            data_dir: PathBuf::from("data"),
            site_dir: PathBuf::from("target/site"),
            shutdown_grace: Duration::from_secs(10),
            log: LogConfig {
                filter: "info".to_owned(),
                format: LogFormat::Text,
            },
        }
    }
}

/// Parses `500ms`, `10s`, `5m`, `2h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 30s, 5m or 2h"))?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(number)),
        "" | "s" => number,
        "m" => number.saturating_mul(60),
        "h" => number.saturating_mul(3600),
        _ => return Err(format!("`{text}` has an unknown unit; use ms, s, m or h")),
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_duration_accepts_each_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
    }

    #[test]
    fn parse_duration_rejects_garbage() {
        assert!(parse_duration("").is_err());
        assert!(parse_duration("ten seconds").is_err());
        assert!(parse_duration("10d").is_err());
        assert!(parse_duration("-5s").is_err());
    }

    #[test]
    fn config_parses_with_no_arguments_or_variables() {
        let config = Config::try_parse_from(["codepod"]).unwrap();
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 3000)));
        assert_eq!(config.log.format, LogFormat::Text);
    }

    #[test]
    fn config_rejects_a_bad_listen_address() {
        assert!(Config::try_parse_from(["codepod", "--listen", "nowhere"]).is_err());
    }
}
