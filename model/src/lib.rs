//! Types shared by the browser and the server.
//!
//! This crate owns the vocabulary of Codepod: ids, validated names and paths, the DTOs that
//! cross the HTTP boundary, and the limits both sides agree on. It performs no IO and
//! compiles to `wasm32-unknown-unknown`; its only dependency is `serde`.

pub mod meta;

pub use meta::{BuildInfo, PRODUCT_NAME};
