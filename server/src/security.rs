//! Request-level protection: who the client is (IP behind trusted proxies) and whether a
//! mutating request comes from our own origin.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use services::accounts::ClientInfo;

use crate::api_errors::error_response;

/// What the security middleware needs to know.
#[derive(Debug, Clone)]
pub struct Security {
    /// `scheme://host[:port]` browsers use for this server.
    pub public_origin: String,
    pub trusted_proxies: Vec<IpAddr>,
}

/// The client's IP: the socket's peer, unless that peer is a trusted proxy, in which case
/// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .or(Some(peer))
}

/// Middleware: attaches the [`ClientInfo`] of every request as an extension.
pub async fn client_info(
    State(security): State<Security>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let headers = request.headers();
    let info = ClientInfo {
        ip: client_ip(peer, headers, &security.trusted_proxies),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
    };
    request.extensions_mut().insert(info);
    next.run(request).await
}

/// What browsers may do with our pages: no framing, no sniffing, no referrer sent to other
/// sites (`no-referrer` would make form posts send `Origin: null`, which the origin check
/// refuses),
/// no powerful feature but this origin's own clipboard (copy and paste in the terminal) and
/// fullscreen.
const PERMISSIONS_POLICY: &str = "accelerometer=(), autoplay=(), camera=(), \
    display-capture=(), geolocation=(), gyroscope=(), hid=(), idle-detection=(), \
    magnetometer=(), microphone=(), midi=(), payment=(), serial=(), usb=(), \
    xr-spatial-tracking=(), clipboard-read=(self), clipboard-write=(self), fullscreen=(self)";

/// Middleware: the browser-hardening headers. Every response gets `nosniff`; every HTML
/// response the frame, referrer and permissions policies, a Content-Security-Policy (the
/// page's own, with its nonce, or a nonce-less one for static HTML), and HSTS when the
/// public origin is https.
pub async fn hardening(State(security): State<Security>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if !html {
        return response;
    }
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY)
        && let Ok(value) = header::HeaderValue::from_str(&app::csp::policy(None))
    {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "permissions-policy",
        header::HeaderValue::from_static(PERMISSIONS_POLICY),
    );
    if security.public_origin.starts_with("https://") {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    response
}

/// Whether a request with these headers may mutate state: a browser always sends `Origin`
/// on cross-origin (and same-origin) POSTs, and modern ones `Sec-Fetch-Site`; either must
/// say "ours". A request with neither is not from a browser (curl, scripts) and carries no
/// ambient-credential risk the browser would add.
pub fn same_origin(headers: &HeaderMap, public_origin: &str) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN) {
        return origin.to_str().is_ok_and(|origin| origin == public_origin);
    }
    match headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok())
    {
        Some(site) => site == "same-origin" || site == "none",
        None => true,
    }
}

/// Middleware: rejects cross-site requests that could change state (403): non-GET `/api/…`
/// and the HTML forms' posts (sign-in, sign-up, sign-out, the account page's, the
/// dashboard's).
pub async fn origin_guard(
    State(security): State<Security>,
    request: Request,
    next: Next,
) -> Response {
    let safe_method = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let path = request.uri().path();
    let guarded = path.starts_with("/api/")
        || path.starts_with("/account/")
        || path.starts_with("/workspaces/")
        || matches!(path, "/signin" | "/signup" | "/signout");
    if !safe_method && guarded && !same_origin(request.headers(), &security.public_origin) {
        tracing::warn!(path = %request.uri().path(), "cross-site request refused");
        return error_response(app::ApiError::new(
            model::ErrorCode::CrossSite,
            "cross-site requests are not allowed",
        ))
        .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4")]);
        let direct: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(Some(direct), &spoofed, &[proxy]), Some(direct));
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7")]);
        assert_eq!(
            client_ip(Some(proxy), &chain, &[proxy]),
            Some("198.51.100.7".parse().unwrap())
        );
    }

    #[test]
    fn origin_must_match_exactly() {
        let ours = "http://127.0.0.1:3000";
        assert!(same_origin(
            &headers(&[("origin", "http://127.0.0.1:3000")]),
            ours
        ));
        assert!(!same_origin(
            &headers(&[("origin", "http://evil.example")]),
            ours
        ));
        assert!(!same_origin(&headers(&[("origin", "null")]), ours));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            ours
        ));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "same-site")]),
            ours
        ));
        assert!(same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            ours
        ));
        assert!(same_origin(&headers(&[]), ours));
    }
}
