//! Shared helpers for the benchmarks: latency summaries and an in-process server.

use model::TerminalId;
use sandbox::agent::{TerminalEvent, TerminalSession};
use std::time::Duration;

/// Latency samples, summarised.
#[derive(Debug, Default)]
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn push(&mut self, sample: Duration) {
        self.0.push(sample);
    }

    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `q` quantile (0.0–1.0), nearest-rank.
    pub fn quantile(&mut self, q: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        self.0.sort_unstable();
        let rank = ((q * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len());
        self.0[rank - 1]
    }

    /// `p50 x ms, p99 y ms (n samples)`.
    pub fn summary(&mut self) -> String {
        format!(
            "p50 {:>8.3} ms   p99 {:>8.3} ms   ({} samples)",
            ms(self.quantile(0.50)),
            ms(self.quantile(0.99)),
            self.len()
        )
    }
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// One line describing the machine, for the results table.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cores} cores, {cpu}")
}

/// The agent binary beside this benchmark's (release first, else debug), as the server
/// finds its own.
#[allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark run aborts on the first failure"
)]
pub fn agent_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("exe");
    let target = exe.parent().and_then(|p| p.parent()).expect("target dir");
    for profile in ["release", "debug"] {
        let bin = target.join(profile).join("codepod-agent");
        if bin.exists() {
            return bin;
        }
    }
    panic!("build the agent first: cargo build --release -p agent");
}

/// A new account on the server at `base` with one workspace: its HTTP client (with the
/// session cookie), the cookie for other clients (`codepod_session=…`) and the workspace id.
#[allow(
    clippy::expect_used,
    reason = "a benchmark run aborts on the first failure"
)]
pub async fn account_with_workspace(
    base: &str,
    username: &str,
) -> (reqwest::Client, String, String) {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let response = http
        .post(format!("{base}/api/users/register"))
        .json(&serde_json::json!({ "username": username, "email": format!("{username}@example.org"), "password": "correct horse battery" }))
        .send()
        .await
        .expect("register");
    assert!(
        response.status().is_success(),
        "register: {}",
        response.status()
    );
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("cookie")
        .to_owned();
    let workspace: serde_json::Value = http
        .post(format!("{base}/api/workspaces/create"))
        .json(&serde_json::json!({ "name": "bench" }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("workspace");
    let id = workspace["id"].as_str().expect("id").to_owned();
    (http, cookie, id)
}

/// Opens an 80×24 shell through the agent and attaches to it.
#[allow(clippy::panic, reason = "a benchmark run aborts on the first failure")]
pub async fn open_attached(session: &mut TerminalSession) -> TerminalId {
    if let Err(error) = session.sender.open(80, 24).await {
        panic!("cannot open a terminal: {error}");
    }
    let terminal = loop {
        match session.events.next().await {
            Some(Ok(TerminalEvent::Opened { terminal, .. })) => break terminal,
            Some(Ok(_)) => continue,
            other => panic!(
                "cannot open a terminal: {:?}",
                other.map(|r| r.map_err(|e| e.to_string()))
            ),
        }
    };
    if let Err(error) = session.sender.attach(terminal).await {
        panic!("cannot attach: {error}");
    }
    terminal
}

/// Reads and drops whatever the agent sends until it has been quiet for `quiet`.
pub async fn drain(session: &mut TerminalSession, quiet: Duration) {
    while let Ok(Some(Ok(_))) = tokio::time::timeout(quiet, session.events.next()).await {}
}

/// Keystroke → echo through an agent connection: one key in, wait for its echo, `keys`
/// times; the line is erased (Ctrl-U, untimed) every 60 keys.
pub async fn agent_echoes(
    session: &mut TerminalSession,
    terminal: TerminalId,
    keys: usize,
) -> Samples {
    let mut samples = Samples::default();
    for n in 0..keys {
        let key = b'a' + (n % 26) as u8;
        let started = std::time::Instant::now();
        if session.sender.input(terminal, &[key]).await.is_err() {
            break;
        }
        while let Some(Ok(event)) = session.events.next().await {
            if let TerminalEvent::Output { data, .. } = event
                && data.contains(&key)
            {
                break;
            }
        }
        samples.push(started.elapsed());
        if n % 60 == 59 {
            let _ = session.sender.input(terminal, &[0x15]).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            drain(session, Duration::from_millis(20)).await;
        }
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut samples = Samples::default();
        for ms in 1..=100 {
            samples.push(Duration::from_millis(ms));
        }
        assert_eq!(samples.quantile(0.5), Duration::from_millis(50));
        assert_eq!(samples.quantile(0.99), Duration::from_millis(99));
        assert_eq!(samples.quantile(1.0), Duration::from_millis(100));
    }
}
