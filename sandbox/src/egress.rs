//! Optional outbound network for sandboxes, as an HTTP proxy on the host side.
//!
//! A sandbox never gets a network interface of its own (its network namespace holds only
//! loopback). When the operator enables egress, the runtime hands the sandbox one end of a
//! datagram socket pair at start and serves this proxy on the other; the agent listens on
//! `127.0.0.1:3128` inside and passes the host a socket over the pair per connection, and
//! the shells get `http_proxy`/`https_proxy` pointing there, so `pip install` works. The proxy resolves every destination itself and connects only to
//! public unicast addresses: never the host's loopback, private or shared ranges, link-local
//! (the `169.254.169.254` metadata service), multicast or reserved ones — also when they are
//! reached by a name, or hidden in an IPv4-mapped or NAT64 IPv6 address. It connects to the
//! address it checked, so DNS rebinding cannot swap it afterwards.
//!
//! Speaks `CONNECT host:port` (HTTPS and anything TLS) and absolute-form plain HTTP requests
//! (one per connection, `Connection: close`).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpStream, UnixDatagram, UnixStream},
    sync::Semaphore,
};

/// Connections one sandbox may have open through the proxy at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Largest request head (request line and headers).
const MAX_HEAD: usize = 16 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Whether the proxy may connect to `ip`: public unicast only.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (b & 0xc0) == 64)
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b & 0xfe) == 18)
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address: judge that one.
    let octets = ip.octets();
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(Ipv4Addr::new(
            octets[12], octets[13], octets[14], octets[15],
        ));
    }
    if segments[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5]));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local fc00::/7, link-local fe80::/10, site-local fec0::/10.
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] & 0xffc0) == 0xfec0
        // IPv4-compatible (deprecated) ::a.b.c.d and discard-only 100::/64.
        || segments[..6] == [0, 0, 0, 0, 0, 0]
        || segments[..4] == [0x100, 0, 0, 0]
        // Documentation 2001:db8::/32.
        || (segments[0] == 0x2001 && segments[1] == 0xdb8))
}

/// What a sandbox may reach over its channel to the host.
#[derive(Debug, Clone, Default)]
pub struct Reach {
    /// General egress: the filtering proxy (connections tagged [`TAG_PROXY`]).
    pub proxy: bool,
    /// The package index ([`crate::index`]; connections tagged [`TAG_INDEX`]).
    pub index: Option<crate::index::IndexConnections>,
}

/// The byte a connection is passed with: for the proxy.
pub const TAG_PROXY: u8 = 0;
/// The byte a connection is passed with: for the package index.
pub const TAG_INDEX: u8 = 1;

/// Serves one sandbox's channel until the task is aborted (the sandbox stops) or the
/// sandbox closes its end of `channel`. The sandbox's agent opens a connection by sending
/// one end of a socket pair over `channel` (`SCM_RIGHTS`) with one byte saying what it is
/// for (the proxy or the package index); what `reach` does not allow is closed at once. The
/// host never connects to anything of the sandbox's, nor resolves a path it can write.
pub async fn serve(channel: UnixDatagram, sandbox: String, reach: Reach) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        // Take a permit first: extra connections wait in the channel until one is free.
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (tag, stream) = match receive_stream(&channel).await {
            Ok(Some(received)) => received,
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(sandbox.id = %sandbox, error = %error, "an egress connection was refused");
                continue;
            }
        };
        match tag {
            TAG_INDEX => {
                if let Some(index) = &reach.index {
                    index.hand_over(stream);
                }
                continue;
            }
            TAG_PROXY if reach.proxy => {}
            _ => {
                tracing::debug!(sandbox.id = %sandbox, tag, "a connection for what this sandbox may not reach was closed");
                continue;
            }
        }
        let sandbox = sandbox.clone();
        tokio::spawn(async move {
            if let Err(error) = handle(stream, &sandbox).await {
                tracing::debug!(sandbox.id = %sandbox, error = %error, "egress connection ended");
            }
            drop(permit);
        });
    }
}

/// The next socket the sandbox passed over `channel`, with the byte it came with; `None`
/// once the sandbox has closed its end.
/// The sandbox could pass any descriptor it has: only a connected Unix stream socket is
/// taken (a pipe, a file or a listening socket is closed and refused).
async fn receive_stream(channel: &UnixDatagram) -> std::io::Result<Option<(u8, UnixStream)>> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let received = loop {
        channel.readable().await?;
        let result = channel.try_io(tokio::io::Interest::READABLE, || {
            let mut byte = [0u8; 1];
            let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let message = rustix::net::recvmsg(
                channel,
                &mut [std::io::IoSliceMut::new(&mut byte)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            )?;
            // More than one descriptor does not fit: the kernel closes the rest (CTRUNC).
            let fd = control.drain().find_map(|message| match message {
                RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
                _ => None,
            });
            Ok((message.bytes, byte[0], fd))
        });
        match result {
            Ok(received) => break received,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(error) => return Err(error),
        }
    };
    match received {
        (0, _, None) => Ok(None),
        (_, _, None) => Err(std::io::Error::other("a message without a socket")),
        (_, tag, Some(fd)) => {
            let is_stream = rustix::fs::fstat(&fd).is_ok_and(|stat| {
                rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Socket
            }) && rustix::net::sockopt::socket_type(&fd)
                .is_ok_and(|kind| kind == rustix::net::SocketType::STREAM)
                && rustix::net::sockopt::socket_domain(&fd)
                    .is_ok_and(|domain| domain == rustix::net::AddressFamily::UNIX);
            if !is_stream {
                return Err(std::io::Error::other("not a Unix stream socket"));
            }
            let stream = std::os::unix::net::UnixStream::from(fd);
            stream.set_nonblocking(true)?;
            UnixStream::from_std(stream).map(|stream| Some((tag, stream)))
        }
    }
}

async fn reply(stream: &mut BufReader<UnixStream>, status: &str, why: &str) -> std::io::Result<()> {
    let body = format!("{why}\n");
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.get_mut().write_all(response.as_bytes()).await
}

/// Reads the request head: the lines up to the empty one.
async fn read_head(stream: &mut BufReader<UnixStream>) -> std::io::Result<Option<Vec<String>>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = (&mut *stream)
            .take((MAX_HEAD - total + 1) as u64)
            .read_line(&mut line)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        total += n;
        if total > MAX_HEAD {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            return Ok(Some(lines));
        }
        lines.push(line);
    }
}

/// `host:port` → (host, port); brackets around IPv6 literals are removed.
fn split_authority(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((authority.to_owned(), default_port)),
    }
}

/// Resolves and connects to the first public address of `host:port`.
async fn connect(host: &str, port: u16) -> Result<TcpStream, (&'static str, String)> {
    if host.is_empty() {
        return Err(("400 Bad Request", "no destination host".into()));
    }
    let addresses: Vec<SocketAddr> =
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(addresses)) => addresses.collect(),
            _ => return Err(("502 Bad Gateway", format!("cannot resolve {host}"))),
        };
    let allowed: Vec<SocketAddr> = addresses
        .iter()
        .copied()
        .filter(|address| is_public(address.ip()))
        .collect();
    if allowed.is_empty() {
        return Err((
            "403 Forbidden",
            format!("{host} is not a public address; sandboxes may only reach the internet"),
        ));
    }
    let mut last = String::new();
    for address in allowed {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(error)) => last = error.to_string(),
            Err(_) => last = "timed out".into(),
        }
    }
    Err((
        "502 Bad Gateway",
        format!("cannot connect to {host}:{port}: {last}"),
    ))
}

async fn handle(stream: UnixStream, sandbox: &str) -> std::io::Result<()> {
    let mut stream = BufReader::new(stream);
    let Some(head) = read_head(&mut stream).await? else {
        return reply(
            &mut stream,
            "400 Bad Request",
            "malformed or oversized request head",
        )
        .await;
    };
    let mut parts = head
        .first()
        .map(|line| line.split(' '))
        .into_iter()
        .flatten();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return reply(&mut stream, "400 Bad Request", "malformed request line").await;
    };
    let (method, target, version) = (method.to_owned(), target.to_owned(), version.to_owned());

    let (host, port, forward) = if method == "CONNECT" {
        match split_authority(&target, 443) {
            Some((host, port)) => (host, port, None),
            None => return reply(&mut stream, "400 Bad Request", "CONNECT needs host:port").await,
        }
    } else if let Some(rest) = target.strip_prefix("http://") {
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        let Some((host, port)) = split_authority(authority, 80) else {
            return reply(&mut stream, "400 Bad Request", "malformed URL").await;
        };
        // The same request in origin form, one per connection.
        let mut request = format!("{method} {path} {version}\r\n");
        for header in &head[1..] {
            let name = header
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if !matches!(
                name.as_str(),
                "connection" | "proxy-connection" | "keep-alive" | "proxy-authorization"
            ) {
                request.push_str(header);
                request.push_str("\r\n");
            }
        }
        request.push_str("Connection: close\r\n\r\n");
        (host, port, Some(request))
    } else {
        return reply(
            &mut stream,
            "400 Bad Request",
            "this is a proxy: use CONNECT or an absolute http:// URL",
        )
        .await;
    };

    let mut upstream = match connect(&host, port).await {
        Ok(upstream) => upstream,
        Err((status, why)) => {
            tracing::info!(sandbox.id = %sandbox, host, port, why, "egress refused");
            return reply(&mut stream, status, &why).await;
        }
    };
    tracing::debug!(sandbox.id = %sandbox, host, port, "egress connected");
    match forward {
        None => {
            stream
                .get_mut()
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await?;
        }
        Some(request) => upstream.write_all(request.as_bytes()).await?,
    }
    // Bytes the client sent after the head (a TLS hello, a request body) go first.
    let early = stream.buffer().to_vec();
    upstream.write_all(&early).await?;
    let mut inner = stream.into_inner();
    tokio::io::copy_bidirectional(&mut inner, &mut upstream).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Passes `stream` over `channel` tagged `tag`, as the agent does.
    fn pass(
        channel: &std::os::unix::net::UnixDatagram,
        stream: &std::os::unix::net::UnixStream,
        tag: u8,
    ) {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
        use std::os::fd::AsFd;
        let fds = [stream.as_fd()];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        control.push(SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(
            channel,
            &[std::io::IoSlice::new(&[tag])],
            &mut control,
            SendFlags::empty(),
        )
        .unwrap();
    }

    /// A sandbox that may reach only the package index cannot get at the proxy by passing
    /// its own connection tagged for it (or for anything else): such connections are closed
    /// unanswered.
    #[tokio::test]
    async fn connections_for_what_the_sandbox_may_not_reach_are_closed() {
        use std::io::{Read, Write};
        let (host, sandbox) = std::os::unix::net::UnixDatagram::pair().unwrap();
        host.set_nonblocking(true).unwrap();
        let host = UnixDatagram::from_std(host).unwrap();
        let served = tokio::spawn(serve(host, "test".into(), Reach::default()));
        for tag in [TAG_PROXY, TAG_INDEX, 7] {
            let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
            pass(&sandbox, &theirs, tag);
            drop(theirs);
            ours.write_all(b"CONNECT 1.1.1.1:443 HTTP/1.1\r\n\r\n")
                .unwrap();
            let mut answer = Vec::new();
            ours.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let read =
                tokio::task::spawn_blocking(move || ours.read_to_end(&mut answer).map(|_| answer))
                    .await
                    .unwrap();
            // Closed with the request unread: a reset, or an end without a byte.
            match read {
                Ok(answer) => assert_eq!(answer, b"", "tag {tag} was answered"),
                Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
            }
        }
        served.abort();
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn only_public_unicast_addresses_are_allowed() {
        for denied in [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "192.0.0.170",
            "198.18.0.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::127.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip(denied)), "{denied} must be refused");
        }
        for allowed in [
            "1.1.1.1",
            "8.8.8.8",
            "151.101.0.223",
            "203.0.113.80",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "2a04:4e42::223",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip(allowed)), "{allowed} must be allowed");
        }
    }

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(
            split_authority("pypi.org:443", 80),
            Some(("pypi.org".into(), 443))
        );
        assert_eq!(
            split_authority("example.org", 80),
            Some(("example.org".into(), 80))
        );
        assert_eq!(
            split_authority("[::1]:8080", 80),
            Some(("::1".into(), 8080))
        );
        assert_eq!(split_authority("[::1]", 443), Some(("::1".into(), 443)));
        assert_eq!(split_authority("host:port", 80), None);
        assert_eq!(split_authority("[::1", 80), None);
    }
}
