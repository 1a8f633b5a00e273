//! Static assets: the wasm/js/css under `/pkg`, the npm-built editor and terminal under
//! `/vendor`, and the public files (icons, manifest) at the site root.
//!
//! Content-hashed files are served with a year-long `immutable` cache lifetime; everything
//! else must be revalidated. The wasm and js are precompressed (brotli and gzip) by the
//! build, and served in whichever encoding the browser accepts.

use std::path::{Path, PathBuf};

use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, header},
    middleware::{self, Next},
    response::Response,
};
use tower_http::services::ServeDir;

/// The hashes the build wrote to `hash.txt` (`js: …`, `wasm: …`, `css: …`), as cargo-leptos
/// does with `hash-files = true`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetHashes {
    pub js: Option<String>,
    pub wasm: Option<String>,
    pub css: Option<String>,
}

impl AssetHashes {
    /// Reads `hash.txt` if it exists. A missing file means an unhashed development build.
    pub fn read(path: &Path) -> Self {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(_) => Self::default(),
        }
    }

    /// Parses the `key: hash` lines of a hash file; unknown keys are ignored.
    pub fn parse(text: &str) -> Self {
        let mut hashes = Self::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if value.is_empty()
                || !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                continue;
            }
            let slot = match key.trim() {
                "js" => &mut hashes.js,
                "wasm" => &mut hashes.wasm,
                "css" => &mut hashes.css,
                _ => continue,
            };
            *slot = Some(value.to_owned());
        }
        hashes
    }

    /// Whether the js and wasm names carry hashes (what Leptos' hydration script needs).
    pub fn is_complete(&self) -> bool {
        self.js.is_some() && self.wasm.is_some()
    }

    /// The stylesheet URL for a site whose output name is `output_name`.
    pub fn stylesheet_href(&self, output_name: &str) -> String {
        match &self.css {
            Some(hash) => format!("/pkg/{output_name}.{hash}.css"),
            None => format!("/pkg/{output_name}.css"),
        }
    }
}

/// Where Leptos (and cargo-leptos) expect the hash file: next to the running executable.
pub fn hash_file_path() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default()
        .join("hash.txt")
}

/// Whether a file name carries a content hash, so it may be cached forever. Matches the
/// shapes our builds produce: `name.<hash>.ext` (cargo-leptos, scripts/build-site) and
/// `name-<HASH>.ext` (esbuild's `[name]-[hash]`), with a hash of at least 8 characters.
pub fn is_content_hashed(file_name: &str) -> bool {
    let stem = match file_name.split_once('.') {
        Some((_, rest)) => rest,
        None => return false,
    };
    // cargo-leptos hashes are base64url and may contain '-'.
    let dotted = stem.split('.').next().unwrap_or_default().replace('-', "_");
    if looks_like_hash(&dotted) && stem.contains('.') {
        return true;
    }
    let base = file_name.split('.').next().unwrap_or_default();
    base.rsplit_once('-')
        .is_some_and(|(_, hash)| looks_like_hash(hash))
}

fn looks_like_hash(text: &str) -> bool {
    text.len() >= 8
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && text.chars().any(|c| c.is_ascii_digit())
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// Middleware: sets `Cache-Control` on asset responses that do not have one.
async fn cache_control(request: Request, next: Next) -> Response {
    let hashed = request
        .uri()
        .path()
        .rsplit('/')
        .next()
        .is_some_and(is_content_hashed);
    let mut response = next.run(request).await;
    if response.status().is_success() && !response.headers().contains_key(header::CACHE_CONTROL) {
        let value = if hashed { IMMUTABLE } else { REVALIDATE };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    response
}

/// The vendor bundles' manifest (`vendor/manifest.json` of the built site) as compact JSON
/// of names to file names; `{}` when the site has none (the terminal and editor then say
/// they cannot load). Only plain file names are kept: it is written into every page.
pub fn vendor_manifest(site_dir: &Path) -> String {
    let path = site_dir.join("vendor").join("manifest.json");
    let parsed: std::collections::BTreeMap<String, String> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| {
            tracing::warn!(path = %path.display(), "no vendor manifest; the terminal and editor will not load");
            Default::default()
        });
    let safe = |text: &str| {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    let kept: std::collections::BTreeMap<String, String> = parsed
        .into_iter()
        .filter(|(name, file)| safe(name) && safe(file))
        .collect();
    serde_json::to_string(&kept).unwrap_or_else(|_| "{}".to_owned())
}

/// `/sw.js`: the service worker, with the list of this build's files to precache. Always
/// revalidated (`no-cache`), so a new build's worker replaces the old one.
pub fn service_worker(site_dir: &Path, hashes: &AssetHashes, output_name: &str) -> String {
    let mut precache: Vec<String> = vec![
        "/offline.html".into(),
        "/manifest.webmanifest".into(),
        "/icons/icon-192.png".into(),
        "/icons/icon-512.png".into(),
    ];
    for (hash, extension) in [
        (&hashes.js, "js"),
        (&hashes.wasm, "wasm"),
        (&hashes.css, "css"),
    ] {
        if let Some(hash) = hash {
            precache.push(format!("/pkg/{output_name}.{hash}.{extension}"));
        }
    }
    let vendor: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&vendor_manifest(site_dir)).unwrap_or_default();
    // The API docs page's bundle is not part of the app: not kept offline.
    precache.extend(
        vendor
            .iter()
            .filter(|(name, _)| !name.starts_with("api-docs."))
            .map(|(_, file)| format!("/vendor/{file}")),
    );
    let version = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        precache.hash(&mut hasher);
        hasher.finish()
    };
    format!(
        "const CACHE = 'codepod-{version:016x}';\nconst PRECACHE = {};\n\n{}",
        serde_json::to_string(&precache).unwrap_or_else(|_| "[]".into()),
        include_str!("sw.js")
    )
}

/// Routes for `/pkg` and `/vendor`, each a directory of the built site.
pub fn routes<S: Clone + Send + Sync + 'static>(site_dir: &Path) -> Router<S> {
    let serve = |dir: PathBuf| ServeDir::new(dir).precompressed_br().precompressed_gzip();
    Router::new()
        .nest_service("/pkg", serve(site_dir.join("pkg")))
        .nest_service("/vendor", serve(site_dir.join("vendor")))
        .layer(middleware::from_fn(cache_control))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendor_manifest_keeps_only_plain_file_names() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        assert_eq!(vendor_manifest(dir.path()), "{}");
        std::fs::create_dir(dir.path().join("vendor"))?;
        std::fs::write(
            dir.path().join("vendor/manifest.json"),
            r#"{"xterm.js":"xterm-AB12CD34.js","evil.js":"\"><script>","up.js":"../x.js"}"#,
        )?;
        assert_eq!(
            vendor_manifest(dir.path()),
            r#"{"xterm.js":"xterm-AB12CD34.js"}"#
        );
        Ok(())
    }

    #[test]
    fn the_app_is_precached_and_the_api_docs_are_not() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("vendor"))?;
        std::fs::write(
            dir.path().join("vendor/manifest.json"),
            r#"{"xterm.js":"xterm-AB12CD34.js","api-docs.js":"api-docs-EF56GH78.js","api-docs.css":"api-docs-IJ90KL12.css"}"#,
        )?;
        let worker = service_worker(dir.path(), &AssetHashes::default(), "codepod");
        assert!(worker.contains("/vendor/xterm-AB12CD34.js"));
        assert!(!worker.contains("api-docs"));
        Ok(())
    }

    #[test]
    fn hash_file_lines_are_parsed() {
        let hashes =
            AssetHashes::parse("js: abc123def\nwasm: 0f0f0f0f0f\ncss: c55c55c55\nother: x\n");
        assert_eq!(hashes.js.as_deref(), Some("abc123def"));
        assert_eq!(hashes.wasm.as_deref(), Some("0f0f0f0f0f"));
        assert_eq!(
            hashes.stylesheet_href("codepod"),
            "/pkg/codepod.c55c55c55.css"
        );
        assert!(hashes.is_complete());
    }

    #[test]
    fn hash_values_that_could_escape_a_url_are_ignored() {
        let hashes = AssetHashes::parse("js: ../../etc\ncss: a b\n");
        assert_eq!(hashes, AssetHashes::default());
        assert_eq!(hashes.stylesheet_href("codepod"), "/pkg/codepod.css");
    }

    #[test]
    fn hashed_names_are_recognised() {
        assert!(is_content_hashed("codepod.9f86d081884c7d65.wasm"));
        assert!(is_content_hashed("codepod.9f86d081884c7d65.js"));
        assert!(is_content_hashed("monaco-ZX3T7Q2M.js"));
        assert!(is_content_hashed("codepod.9f86d081884c7d65.wasm.br"));
        assert!(
            is_content_hashed("codepod.JEpi6bg-SBLpHRkXlbMi9g.wasm"),
            "cargo-leptos"
        );
    }

    #[test]
    fn plain_names_are_not_hashed() {
        assert!(!is_content_hashed("codepod.wasm"));
        assert!(!is_content_hashed("codepod_bg.wasm"));
        assert!(!is_content_hashed("codepod.css"));
        assert!(!is_content_hashed("editor-worker.js"));
        assert!(!is_content_hashed("manifest.webmanifest"));
        assert!(!is_content_hashed("README"));
    }
}
