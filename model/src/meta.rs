//! Facts about the running build, shown in the UI and served by the API.

use serde::{Deserialize, Serialize};

/// The product's display name, used in page titles and the web app manifest.
pub const PRODUCT_NAME: &str = "Codepod";

/// What the server tells a client about itself (`GET /api/meta/info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BuildInfo {
    /// The crate version of the server, e.g. `0.1.0`.
    pub version: String,
    /// Which store backs this server: `sqlite` or `postgres`.
    pub store: String,
    /// Which sandbox runtime this server starts workspaces in: `local` or `kube`.
    pub runtime: String,
}

impl BuildInfo {
    /// A short human label such as `v0.1.0 · sqlite · local`.
    pub fn label(&self) -> String {
        format!("v{} · {} · {}", self.version, self.store, self.runtime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_version_store_and_runtime() {
        let info = BuildInfo {
            version: "1.2.3".into(),
            store: "sqlite".into(),
            runtime: "local".into(),
        };
        assert_eq!(info.label(), "v1.2.3 · sqlite · local");
    }

    #[test]
    fn build_info_round_trips_through_json() {
        let info = BuildInfo {
            version: "0.1.0".into(),
            store: "postgres".into(),
            runtime: "kube".into(),
        };
        let json = serde_json::to_string(&info).unwrap();
        let back: BuildInfo = serde_json::from_str(&json).unwrap();
        assert_eq!(back, info);
    }
}
