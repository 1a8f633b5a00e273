//! The Leptos application: the HTML shell, the router, pages and components, and the server
//! functions that form Codepod's public JSON API under `/api/…`.
//!
//! Compiled twice: with `ssr` into the server (rendering, the router, server functions) and
//! with `hydrate` into the browser's wasm bundle (the IDE page, the dashboard's live rows,
//! the server functions' client side). Nothing server-only may be reachable without the `ssr`
//! feature.

#[cfg(feature = "ssr")]
mod account;
pub mod accounts;
#[cfg(feature = "ssr")]
pub mod api_context;
#[cfg(feature = "ssr")]
mod auth;
mod browser_slot;
#[cfg(feature = "hydrate")]
pub mod crashed;
pub mod csp;
mod dashboard;
mod dom;
pub mod editor;
pub mod error;
pub mod files;
mod ide;
mod json;
pub mod meta;
mod not_found;
pub mod plots;
mod reactive;
mod shell;
pub mod terminal;
#[cfg(feature = "hydrate")]
mod vendor;
pub mod workspaces;

pub use error::ApiError;
#[cfg(feature = "ssr")]
pub use shell::{App, shell};
pub use shell::{IdeApp, SiteAssets};

/// The browser's start, once the wasm has loaded on one of the two pages that load it
/// (`shell::with_wasm`): the dashboard (plain forms) is kept current in place; the IDE is
/// hydrated.
#[cfg(feature = "hydrate")]
pub fn start() {
    if !dashboard::live::start() {
        leptos::mount::hydrate_body(IdeApp);
    }
}

#[cfg(test)]
mod tests {
    /// Leptos's renderer is built from `patches/tachys.patch` (no async hydration path:
    /// 18.7 KiB brotli of the bundle). Should a Leptos update need another tachys, cargo
    /// would quietly build the published one instead, with only a warning that the patch
    /// went unused: this fails then.
    #[test]
    fn the_renderer_is_the_patched_tachys() {
        let lock = include_str!("../../Cargo.lock");
        let tachys = lock
            .split("[[package]]")
            .filter(|entry| entry.contains("\nname = \"tachys\"\n"))
            .collect::<Vec<_>>();
        assert_eq!(tachys.len(), 1, "one tachys in Cargo.lock");
        assert!(
            !tachys[0].contains("\nsource = "),
            "tachys comes from a registry, not vendor/crates/tachys: update patches/tachys.patch \
             and its version in scripts/lib.sh, or drop the patch (Leptos 0.9 has the change)"
        );
    }
}
