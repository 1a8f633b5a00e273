//! The sandbox end of its channel to the host: TCP listeners on the sandbox's own loopback
//! that hand every connection to the host — `127.0.0.1:3141`, the package index pip uses
//! (`PIP_INDEX_URL`, on by default), and with optional egress `127.0.0.1:3128`, what
//! `http_proxy` points at, the host's filtering proxy. The host gave the agent one end of a datagram socket pair at start (its
//! stdout); per connection the agent makes a socket pair, passes one end over it
//! (`SCM_RIGHTS`) with a byte saying which listener it came from, and relays the TCP
//! connection to the other. No path is shared with the
//! host. The agent decides nothing here; the host side checks every destination (see
//! `sandbox::egress`).

use std::{io::IoSlice, mem::MaybeUninit, net::SocketAddr, os::fd::AsFd, sync::Arc};

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use tokio::net::{TcpListener, UnixDatagram, UnixStream};

/// Where programs in the sandbox find the proxy.
pub const PROXY_ADDRESS: &str = "127.0.0.1:3128";
/// Where pip finds the package index.
pub const INDEX_ADDRESS: &str = "127.0.0.1:3141";
/// The byte a proxy connection is passed with (`sandbox::egress::TAG_PROXY`).
pub const TAG_PROXY: u8 = 0;
/// The byte a package-index connection is passed with (`sandbox::egress::TAG_INDEX`).
pub const TAG_INDEX: u8 = 1;

/// The environment that points pip at the package index. pip installs into the user's
/// site-packages by itself (the shared environment is read-only).
pub fn index_env() -> Vec<(String, String)> {
    vec![
        (
            "PIP_INDEX_URL".to_owned(),
            format!("http://{INDEX_ADDRESS}/simple/"),
        ),
        // The check asks the index about pip on every run: one request less.
        ("PIP_DISABLE_PIP_VERSION_CHECK".to_owned(), "1".to_owned()),
    ]
}

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

/// Listens on `listen` and hands each connection to the host over `channel`, tagged `tag`,
/// until the agent ends.
pub async fn relay(listen: SocketAddr, channel: Arc<UnixDatagram>, tag: u8) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    loop {
        let (mut tcp, _) = listener.accept().await?;
        let (mut ours, theirs) = UnixStream::pair()?;
        if let Err(error) = pass(&channel, theirs, tag).await {
            tracing::warn!(error = %error, "the host is unreachable");
            continue;
        }
        tokio::spawn(async move {
            let _ = tokio::io::copy_bidirectional(&mut tcp, &mut ours).await;
        });
    }
}

/// Sends `stream` to the host over `channel`.
async fn pass(channel: &UnixDatagram, stream: UnixStream, tag: u8) -> std::io::Result<()> {
    loop {
        channel.writable().await?;
        let sent = channel.try_io(tokio::io::Interest::WRITABLE, || {
            let fds = [stream.as_fd()];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            control.push(SendAncillaryMessage::ScmRights(&fds));
            rustix::net::sendmsg(
                channel,
                &[IoSlice::new(&[tag])],
                &mut control,
                SendFlags::empty(),
            )
            .map_err(std::io::Error::from)
        });
        match sent {
            Ok(_) => return Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(error) => return Err(error),
        }
    }
}
