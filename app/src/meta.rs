//! `GET /api/meta/info`: what this server is (version, store, runtime).

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use model::BuildInfo;

/// Returns the server's version and which store and sandbox runtime it uses.
///
/// A GET-encoded server function: it reads, never mutates, so it is safe to expose to
/// cross-site GETs.
#[server(
    prefix = "/api",
    endpoint = "meta/info",
    input = GetUrl,
    input_derive = (Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub async fn server_info() -> Result<BuildInfo, ServerFnError> {
    use_context::<BuildInfo>()
        .ok_or_else(|| ServerFnError::ServerError("build info is not configured".to_owned()))
}
