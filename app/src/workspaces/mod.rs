//! Workspaces: the `/api/workspaces/…` server functions.

pub mod api;
