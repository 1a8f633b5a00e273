//! The sandbox end of optional egress: a TCP listener on the sandbox's own loopback
//! (`127.0.0.1:3128`, what `http_proxy` points at) that relays every connection to the
//! host's filtering proxy through a Unix socket bound into the sandbox. The agent decides
//! nothing here; the host side checks every destination (see `sandbox::egress`).

use std::{net::SocketAddr, path::PathBuf};

use tokio::net::{TcpListener, UnixStream};

/// Where programs in the sandbox find the proxy.
pub const PROXY_ADDRESS: &str = "127.0.0.1:3128";

/// The environment that sends HTTP(S) clients (pip, curl, requests) through the proxy.
pub fn proxy_env() -> Vec<(String, String)> {
    let url = format!("http://{PROXY_ADDRESS}");
    ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"]
        .into_iter()
        .map(|name| (name.to_owned(), url.clone()))
        .chain(
            ["no_proxy", "NO_PROXY"]
                .into_iter()
                .map(|name| (name.to_owned(), "localhost,127.0.0.1,::1".to_owned())),
        )
        .collect()
}

/// Listens on `listen` and relays each connection to `upstream` until the agent ends.
pub async fn relay(listen: SocketAddr, upstream: PathBuf) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    loop {
        let (mut tcp, _) = listener.accept().await?;
        let upstream = upstream.clone();
        tokio::spawn(async move {
            match UnixStream::connect(&upstream).await {
                Ok(mut unix) => {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                }
                Err(error) => tracing::warn!(error = %error, "the egress proxy is unreachable"),
            }
        });
    }
}
