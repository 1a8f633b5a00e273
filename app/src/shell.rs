//! The HTML document, head tags and the router.
//!
//! The router runs on the server only. The browser hydrates one page, the IDE, which the
//! server renders without the router for that reason (`IdeApp`): the router's own code was
//! 34 KiB brotli of the bundle. Every other page is plain HTML forms, and the dashboard,
//! which loads the bundle too, is kept current without hydrating (`dashboard::live`).

use leptos::prelude::*;
#[cfg(feature = "ssr")]
use leptos_meta::MetaTags;
use leptos_meta::{Meta, Title, provide_meta_context};
#[cfg(feature = "ssr")]
use leptos_router::{
    ParamSegment, SsrMode, StaticSegment,
    components::{Route, Router, Routes},
};

use crate::ide::IdePage;
#[cfg(feature = "ssr")]
use crate::{
    account::AccountPage,
    auth::{SignInPage, SignUpPage},
    dashboard::DashboardPage,
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

/// The pages that load the wasm bundle: the IDE (`/w/{id}`, hydrated) and the dashboard
/// (`/`, kept current). Every other page — sign-in, sign-up, account, 404 — is plain HTML
/// whole without it, so a first visit downloads no wasm; their components are compiled into
/// the server only. (`pages::guard` has sent every `/w/…` that is not the user's workspace to
/// the 404 page's path before this is asked.)
#[cfg(feature = "ssr")]
pub fn with_wasm(path: &str) -> bool {
    path == "/" || is_ide(path)
}

#[cfg(feature = "ssr")]
fn is_ide(path: &str) -> bool {
    path.starts_with("/w/")
}

/// The whole HTML document, rendered on the server for every page request.
#[cfg(feature = "ssr")]
pub fn shell(options: LeptosOptions, assets: SiteAssets) -> impl IntoView {
    crate::csp::send_with_page();
    let path = use_context::<http::request::Parts>()
        .map(|parts| parts.uri.path().to_owned())
        .unwrap_or_default();
    let hydrate = with_wasm(&path);
    // The IDE as the browser hydrates it: without the router.
    let body = if is_ide(&path) {
        view! { <IdeApp /> }.into_any()
    } else {
        view! { <App /> }.into_any()
    };
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
            <body>{body}</body>
        </html>
    }
}

/// The service worker (offline page, cached bundles): registered once the page has its wasm
/// (hydrated, or the dashboard enhanced).
#[cfg(feature = "hydrate")]
pub(crate) fn register_service_worker() {
    let _ = window().navigator().service_worker().register("/sw.js");
}

/// Every page's title ("<page> · Codepod") and description.
#[component]
fn DocumentMeta() -> impl IntoView {
    view! {
        <Title formatter=|page: String| {
            if page.is_empty() {
                model::PRODUCT_NAME.to_owned()
            } else {
                format!("{page} · {}", model::PRODUCT_NAME)
            }
        } />
        <Meta name="description" content="Codepod: a Python IDE in your browser, with a real terminal in an isolated sandbox." />
    }
}

/// The IDE page's root, the one the browser hydrates: head metadata and the IDE, no router.
#[component]
pub fn IdeApp() -> impl IntoView {
    provide_meta_context();
    #[cfg(feature = "hydrate")]
    Effect::new(|_| register_service_worker());
    view! {
        <DocumentMeta />
        <IdePage />
    }
}

/// The root of every other page, rendered on the server only: head metadata and the routes.
/// (The IDE's route is here too, for its path and its rendering mode; `shell` renders the
/// IDE page as `IdeApp`.)
#[cfg(feature = "ssr")]
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <DocumentMeta />
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
