//! Files: the `/api/files/…` server functions and the sidebar tree.

pub mod api;
pub mod rename_field;
pub mod tree;
