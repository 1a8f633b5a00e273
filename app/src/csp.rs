//! The Content-Security-Policy of every page: scripts only from this origin and the inline
//! ones the server rendered with this response's nonce (Leptos's hydration script, its
//! streamed resource scripts), WebAssembly allowed to compile, nothing framed by anyone,
//! nothing posted elsewhere. Styles may be inline: Monaco and xterm.js set styles from
//! script (and the policy would not stop a script that could already run).

/// The policy, with `'nonce-…'` for this response's inline scripts when there is one.
pub fn policy(nonce: Option<&str>) -> String {
    let nonce = nonce
        .map(|nonce| format!(" 'nonce-{nonce}'"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'{nonce} 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; \
         connect-src 'self'; worker-src 'self' blob:; manifest-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Sends the policy with this page (server rendering only: the nonce is this response's).
#[cfg(feature = "ssr")]
pub fn send_with_page() {
    use leptos::prelude::use_context;
    let Some(response) = use_context::<leptos_axum::ResponseOptions>() else {
        return;
    };
    let nonce = leptos::nonce::use_nonce();
    if let Ok(value) = http::HeaderValue::from_str(&policy(nonce.as_deref())) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_run_only_with_the_nonce_and_nobody_frames_us() {
        let with = policy(Some("abc123"));
        let scripts = with
            .split(';')
            .find(|directive| directive.trim_start().starts_with("script-src"))
            .unwrap_or_default();
        assert_eq!(
            scripts.trim(),
            "script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval'"
        );
        assert!(with.contains("frame-ancestors 'none'"));
        let without = policy(None);
        assert!(without.contains("script-src 'self' 'wasm-unsafe-eval';"));
        assert!(!without.contains("nonce"));
    }
}
