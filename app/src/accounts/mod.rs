//! Accounts: the `/api/users/…` server functions.

pub mod api;
