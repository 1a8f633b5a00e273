//! The HTML document, head tags and the router.

use leptos::prelude::*;
use leptos_meta::{Meta, MetaTags, Title, provide_meta_context};
use leptos_router::{
    ParamSegment, SsrMode, StaticSegment,
    components::{Route, Router, Routes},
};

use crate::{
    account::AccountPage,
    auth::{SignInPage, SignUpPage},
    dashboard::DashboardPage,
    ide::IdePage,
    not_found::NotFound,
};

/// URLs of the built static assets the document links to. The server works them out at
/// startup from the build's hash manifest, so content-hashed names can be cached forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteAssets {
    /// The application stylesheet, e.g. `/pkg/codepod.1a2b3c.css`.
    pub stylesheet: String,
    /// The vendor bundles' `manifest.json` (logical name → content-hashed file under
    /// `/vendor/`), handed to the browser in a `<meta>` tag so that it loads xterm.js and
    /// Monaco without another round trip.
    pub vendor_manifest: String,
}

impl Default for SiteAssets {
    fn default() -> Self {
        Self {
            stylesheet: "/pkg/codepod.css".to_owned(),
            vendor_manifest: "{}".to_owned(),
        }
    }
}

/// Pages that are plain HTML forms, whole without the wasm bundle: they get none (a first
/// visit downloads no wasm; the bundle and the service worker come with the dashboard and
/// the IDE). Their components are compiled into the server only.
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
pub fn without_wasm(path: &str) -> bool {
    matches!(path, "/signin" | "/signup" | "/account")
}

/// The whole HTML document, rendered on the server for every page request.
pub fn shell(options: LeptosOptions, assets: SiteAssets) -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::csp::send_with_page();
    #[cfg(feature = "ssr")]
    let hydrate =
        use_context::<http::request::Parts>().is_none_or(|parts| !without_wasm(parts.uri.path()));
    #[cfg(not(feature = "ssr"))]
    let hydrate = true;
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="dark light" />
                <meta name="theme-color" media="(prefers-color-scheme: dark)" content="#1e1f24" />
                <meta name="theme-color" media="(prefers-color-scheme: light)" content="#f6f7f9" />
                <link rel="manifest" href="/manifest.webmanifest" />
                <link rel="icon" type="image/png" sizes="192x192" href="/icons/icon-192.png" />
                <link rel="apple-touch-icon" href="/icons/icon-192.png" />
                <link rel="stylesheet" id="codepod-style" href=assets.stylesheet />
                <meta name="codepod-vendor" content=assets.vendor_manifest />
                <AutoReload options=options.clone() />
                {hydrate.then(|| view! { <HydrationScripts options /> })}
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The service worker (offline page, cached bundles): registered once the page has its wasm
/// (hydrated, or the dashboard enhanced).
#[cfg(feature = "hydrate")]
pub(crate) fn register_service_worker() {
    let _ = window().navigator().service_worker().register("/sw.js");
}

/// The root component: head metadata and the routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    #[cfg(feature = "hydrate")]
    Effect::new(|_| register_service_worker());
    view! {
        <Title formatter=|page: String| {
            if page.is_empty() {
                model::PRODUCT_NAME.to_owned()
            } else {
                format!("{page} · {}", model::PRODUCT_NAME)
            }
        } />
        <Meta name="description" content="Codepod: a Python IDE in your browser, with a real terminal in an isolated sandbox." />
        <Router>
            <Routes fallback=NotFound>
                // Plain forms, rendered whole (like the account page): `dashboard::live`
                // keeps it current in the browser, which has no code for its view.
                <Route path=StaticSegment("") view=DashboardPage ssr=SsrMode::Async />
                <Route path=StaticSegment("signin") view=SignInPage />
                <Route path=StaticSegment("signup") view=SignUpPage />
                // Whole before sending, like the IDE: without wasm, nothing could fill in a
                // streamed part later but an inline script; this way the page needs none.
                <Route path=StaticSegment("account") view=AccountPage ssr=SsrMode::Async />
                // Rendered whole before sending (not streamed out of order): the page is small,
                // its data is a few local queries, and the stream could stall under load.
                <Route
                    path=(StaticSegment("w"), ParamSegment("id"))
                    view=IdePage
                    ssr=SsrMode::Async
                />
            </Routes>
        </Router>
    }
}
