//! The agent: the main process inside a sandbox. It owns the workspace's terminals — each a
//! bash login shell on a PTY with a bounded scrollback ring — and serves them to any number
//! of clients over the [`protocol`] on a Unix socket. Terminals outlive their clients: a
//! client that disconnects and attaches again gets the scrollback replayed, then live output.
//!
//! Memory is bounded everywhere: the scrollback is a fixed-size ring, and each connection's
//! outgoing bytes wait in an [`outbox::Outbox`] bounded in bytes (a client that falls
//! behind by more than [`outbox::LIMIT`] is told so and detached from the terminal, never
//! buffered for; it attaches again from the scrollback).
//!
//! The same binary carries the two host-side helpers around a sandbox: [`stage`], which the
//! local runtime runs (as root) just before bubblewrap, and `attach`, the relay a Kubernetes
//! exec session runs in the pod.

pub mod connection;
pub mod egress;
pub mod environment;
pub mod files;
pub mod init;
pub mod lsp;
pub mod outbox;
pub mod plots;
pub mod ring;
pub mod signals;
pub mod stage;
pub mod terminals;
pub mod watch;

pub use environment::Environment;
pub use files::Workspace;
pub use lsp::{Lsp, LspConfig};
pub use plots::Plots;
pub use terminals::{ShellConfig, Terminals};
