//! Files: the `/api/files/…` server functions.

pub mod api;
