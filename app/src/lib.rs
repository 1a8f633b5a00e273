//! The Leptos application: the HTML shell, the router, pages and components, and the server
//! functions that form Codepod's public JSON API under `/api/…`.
//!
//! Compiled twice: with `ssr` into the server (rendering, server functions) and with
//! `hydrate` into the browser's wasm bundle. Nothing server-only may be reachable without the
//! `ssr` feature.

mod account;
pub mod accounts;
#[cfg(feature = "ssr")]
pub mod api_context;
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
pub use shell::{App, SiteAssets, shell};
