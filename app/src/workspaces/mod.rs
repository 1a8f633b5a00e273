//! Workspaces: the `/api/workspaces/…` server functions, and the IDE's packages panel.

pub mod api;
pub mod packages;
