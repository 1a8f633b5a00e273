//! The Leptos application: the HTML shell, the router, pages and components, and the server
//! functions that form Codepod's public JSON API under `/api/…`.
//!
//! Compiled twice: with `ssr` into the server (rendering, server functions) and with
//! `hydrate` into the browser's wasm bundle. Nothing server-only may be reachable without the
//! `ssr` feature.

mod ide;
pub mod meta;
mod not_found;
mod shell;

pub use shell::{App, SiteAssets, shell};
