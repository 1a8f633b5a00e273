//! The sandbox end of optional egress: a TCP listener on the sandbox's own loopback
//! (`127.0.0.1:3128`, what `http_proxy` points at) that hands every connection to the host's
//! filtering proxy. The host gave the agent one end of a datagram socket pair at start (its
//! stdout); per connection the agent makes a socket pair, passes one end over it
//! (`SCM_RIGHTS`) and relays the TCP connection to the other. No path is shared with the
//! host. The agent decides nothing here; the host side checks every destination (see
//! `sandbox::egress`).

use std::{io::IoSlice, mem::MaybeUninit, net::SocketAddr, os::fd::AsFd};

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use tokio::net::{TcpListener, UnixDatagram, UnixStream};

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

/// Listens on `listen` and hands each connection to the host over `channel` until the agent
/// ends.
pub async fn relay(listen: SocketAddr, channel: UnixDatagram) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    loop {
        let (mut tcp, _) = listener.accept().await?;
        let (mut ours, theirs) = UnixStream::pair()?;
        if let Err(error) = pass(&channel, theirs).await {
            tracing::warn!(error = %error, "the egress proxy is unreachable");
            continue;
        }
        tokio::spawn(async move {
            let _ = tokio::io::copy_bidirectional(&mut tcp, &mut ours).await;
        });
    }
}

/// Sends `stream` to the host over `channel`.
async fn pass(channel: &UnixDatagram, stream: UnixStream) -> std::io::Result<()> {
    loop {
        channel.writable().await?;
        let sent = channel.try_io(tokio::io::Interest::WRITABLE, || {
            let fds = [stream.as_fd()];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            control.push(SendAncillaryMessage::ScmRights(&fds));
            rustix::net::sendmsg(
                channel,
                &[IoSlice::new(&[0])],
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
