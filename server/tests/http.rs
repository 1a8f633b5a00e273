//! The server over real HTTP: pages, server functions, assets, health and metrics.

mod common;

use common::{spawn_app, spawn_app_with_site};
use reqwest::{StatusCode, header};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_is_ready_when_data_dir_and_site_are_usable() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn readyz_is_unavailable_without_a_built_site() {
    let empty_site = tempfile::tempdir().unwrap();
    let app = spawn_app_with_site(empty_site).await;
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = response.json().await.unwrap();
    let failing: Vec<_> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|check| check["ok"] == false)
        .map(|check| check["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(failing, ["site_assets"]);
}

#[tokio::test]
async fn readyz_is_unavailable_without_the_sandbox_agent() {
    let app = common::spawn_app_configured(|config| {
        config.sandbox.agent_bin = Some("/nonexistent/codepod-agent".into());
    })
    .await;
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body.to_string().contains("sandbox_agent"), "{body}");
}

#[tokio::test]
async fn the_ide_page_is_server_rendered_with_the_shell_and_the_hydration_script() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    let response = ada
        .http
        .get(ada.url(&format!("/w/{ws}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = response.text().await.unwrap();
    for needle in [
        "<!DOCTYPE html>",
        r#"class="ide"#,
        r#"class="topbar""#,
        r#"class="sidebar""#,
        r#"class="editor""#,
        r#"class="terminal-panel""#,
        r#"class="statusbar""#,
        r#"id="toggle-terminal""#,
        r#"href="/manifest.webmanifest""#,
        "/pkg/codepod",
        "hydrate",
        r#"name="codepod-vendor""#,
        "<title>",
    ] {
        assert!(html.contains(needle), "page lacks {needle}:\n{html}");
    }
}

#[tokio::test]
async fn the_sign_in_sign_up_account_and_404_pages_are_plain_html_without_script_or_wasm() {
    let app = spawn_app().await;
    let anonymous = app.browser();
    let ada = app.signed_up("ada").await;
    for (browser, path, status) in [
        (&anonymous, "/signin", StatusCode::OK),
        (&anonymous, "/signup", StatusCode::OK),
        (&ada, "/account", StatusCode::OK),
        // The 404 page, for an unknown address and for a workspace that is not the user's.
        (&ada, "/no/such/page", StatusCode::NOT_FOUND),
        (
            &ada,
            "/w/00000000-0000-4000-8000-000000000000",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let response = browser.http.get(browser.url(path)).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        let html = response.text().await.unwrap();
        if status == StatusCode::OK {
            assert!(html.contains(r#"method="post""#), "{path}: {html}");
        } else {
            assert!(html.contains("404 · Not found"), "{path}: {html}");
        }
        // Leptos's inline resource data may be there (inert, with the nonce); nothing loads
        // or runs code: no script file, no module, no hydration.
        assert!(
            !html.contains("<script src"),
            "{path} loads a script:\n{html}"
        );
        assert!(
            !html.contains("type=\"module\""),
            "{path} has a module:\n{html}"
        );
        assert!(!html.contains("hydrate"), "{path} hydrates:\n{html}");
        assert!(!html.contains(".wasm"), "{path} names a wasm file:\n{html}");
        assert!(
            !html.contains(".js\""),
            "{path} links a script file:\n{html}"
        );
        // Rendered whole: nothing streamed in later by an inline script.
        assert!(!html.contains("<template"), "{path} streams:\n{html}");
    }
    let account = ada.page("/account").await;
    assert!(account.contains("Signed in as ada (ada@"), "{account}");
    // The dashboard loads the bundle (which keeps it current), and is rendered whole: its
    // forms are all there before any script runs.
    let html = ada.page("/").await;
    assert!(html.contains("hydrate") && html.contains(".wasm"), "{html}");
    assert!(html.contains(r#"action="/workspaces/new""#), "{html}");
    assert!(
        !html.contains("<template"),
        "the dashboard streams:\n{html}"
    );
}

#[tokio::test]
async fn server_renders_the_build_info_into_the_status_bar() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    let html = ada
        .http
        .get(ada.url(&format!("/w/{ws}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let label = format!("v{} · sqlite · local", env!("CARGO_PKG_VERSION"));
    assert!(html.contains(&label), "status bar lacks {label}:\n{html}");
}

#[tokio::test]
async fn an_unknown_page_is_a_404_with_the_not_found_page() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let html = response.text().await.unwrap();
    assert!(html.contains("404 · Not found"), "{html}");
}

#[tokio::test]
async fn meta_info_is_a_json_get_endpoint() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/meta/info"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let info: model::BuildInfo = response.json().await.unwrap();
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn pages_are_compressed_when_the_client_accepts_it() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/signin"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
}

#[tokio::test]
async fn hashed_wasm_is_served_precompressed_and_cached_forever() {
    let app = spawn_app().await;
    let url = app.url("/pkg/codepod.0123456789abcdef.wasm");
    let brotli = app
        .client
        .get(&url)
        .header(header::ACCEPT_ENCODING, "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(brotli.status(), StatusCode::OK);
    assert_eq!(brotli.headers()[header::CONTENT_ENCODING], "br");
    assert_eq!(brotli.headers()[header::CONTENT_TYPE], "application/wasm");
    assert_eq!(
        brotli.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(brotli.bytes().await.unwrap().as_ref(), b"brotli-bytes");

    let plain = app.client.get(&url).send().await.unwrap();
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    assert_eq!(plain.bytes().await.unwrap().as_ref(), b"\0asm-fake-module");
}

#[tokio::test]
async fn unhashed_assets_must_be_revalidated() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/pkg/codepod.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
}

#[tokio::test]
async fn vendor_bundles_with_esbuild_hashes_are_cached_forever() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/vendor/monaco-AB12CD34.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
}

#[tokio::test]
async fn public_files_are_served_from_the_site_root() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/manifest.webmanifest"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "{\"name\":\"Codepod\"}");
}

#[tokio::test]
async fn asset_paths_cannot_escape_the_site_directory() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app().await;
    // A canary beside the site directory, reachable only by climbing out of it.
    let parent = app.site_dir.path().parent().unwrap();
    let canary = tempfile::Builder::new()
        .prefix("codepod-canary-")
        .tempfile_in(parent)
        .unwrap();
    std::fs::write(canary.path(), b"top secret").unwrap();
    let name = canary.path().file_name().unwrap().to_str().unwrap();
    // Raw requests, because an HTTP client would normalise the dot segments away.
    for path in [
        format!("/pkg/../../{name}"),
        format!("/pkg/%2e%2e/%2e%2e/{name}"),
        format!("/vendor/..%2f..%2f{name}"),
        format!("/../{name}"),
        format!("/%2e%2e/{name}"),
    ] {
        let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8_lossy(&response);
        assert!(
            !response.contains("top secret"),
            "{path} leaked a file outside the site"
        );
    }
}

#[tokio::test]
async fn metrics_count_requests_by_matched_route() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.client.get(app.url("/healthz")).send().await.unwrap();
    }
    app.client
        .get(app.url("/no/such/page?x=1"))
        .send()
        .await
        .unwrap();
    // Served on its own address only: the public listener has no /metrics.
    let public = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    let response = app
        .client
        .get(format!("http://{}/metrics", app.metrics_address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(
        text.contains(
            r#"codepod_http_requests_total{method="GET",route="/healthz",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains("codepod_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        !text.contains("/no/such/page"),
        "raw paths must not become labels:\n{text}"
    );
}

#[tokio::test]
async fn shutdown_signal_stops_the_server() {
    let app = spawn_app().await;
    let address = app.address;
    app.shutdown().await.unwrap();
    assert!(tokio::net::TcpStream::connect(address).await.is_err());
}

/// Found by the page-load benchmark: a browser-only value created during server rendering
/// was dropped on another worker thread when the response stream ended, which panicked
/// and cut the page off (the browser never saw `load`). Many pages, many threads: every one
/// must arrive whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ide_pages_always_arrive_whole() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    let mut pages = Vec::new();
    for _ in 0..8 {
        let ada = ada.clone();
        let url = ada.url(&format!("/w/{ws}"));
        pages.push(tokio::spawn(async move {
            let response = ada.http.get(url).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.text().await
        }));
    }
    for page in pages {
        let html = page.await.unwrap().expect("the whole page arrives");
        assert!(html.contains("</html>"), "no document end");
    }
}

/// Leptos works out a server's routes by rendering the app with resource loading switched
/// off for the whole process. A page rendering while another server of the process started
/// then waited forever for its data (about one run of this file in ten hung): pages must
/// render while other servers start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_while_other_servers_start() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    let starting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let pages = tokio::spawn({
        let (ada, starting) = (ada.clone(), starting.clone());
        let url = ada.url(&format!("/w/{ws}"));
        async move {
            let mut rendered = 0;
            while starting.load(std::sync::atomic::Ordering::Relaxed) || rendered < 10 {
                let page = async { ada.http.get(&url).send().await?.text().await };
                let html = tokio::time::timeout(std::time::Duration::from_secs(30), page)
                    .await
                    .expect("the page arrives")
                    .unwrap();
                assert!(html.contains("</html>"), "no document end");
                rendered += 1;
            }
            rendered
        }
    });
    let mut others = Vec::new();
    for _ in 0..10 {
        others.push(spawn_app().await);
    }
    starting.store(false, std::sync::atomic::Ordering::Relaxed);
    let rendered = pages.await.unwrap();
    println!("{rendered} pages while 10 servers started");
}

/// Every inline script of `html` and the nonce it carries (`None` for one without).
fn inline_script_nonces(html: &str) -> Vec<Option<String>> {
    html.split("<script")
        .skip(1)
        .filter(|tag| {
            let open = tag.split('>').next().unwrap_or_default();
            !open.contains(" src=")
        })
        .map(|tag| {
            let open = tag.split('>').next().unwrap_or_default();
            open.split("nonce=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(str::to_owned)
        })
        .collect()
}

/// The attack: the dashboard, the account page and the IDE could be framed by any site
/// (clickjacking) and carried no CSP. Now every HTML response forbids framing, sniffing and
/// referrers, and allows only the inline scripts the server rendered with this response's
/// nonce — a fresh one per response.
#[tokio::test]
async fn every_html_response_is_hardened_and_inline_scripts_need_the_responses_nonce() {
    let app = spawn_app().await;
    let ada = app.signed_up("ada").await;
    let ws = ada.workspace("demo").await;
    // The real offline page, as the site has it.
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../public/offline.html"),
        app.site_dir.path().join("offline.html"),
    )
    .unwrap();
    let anonymous = app.browser();
    let mut seen_nonces = Vec::new();
    for (signed_in, path, status) in [
        (false, "/signin".to_owned(), 200),
        (false, "/signup".to_owned(), 200),
        (true, "/".to_owned(), 200),
        (true, "/account".to_owned(), 200),
        (true, format!("/w/{ws}"), 200),
        (true, "/no/such/page".to_owned(), 404),
        (false, "/offline.html".to_owned(), 200),
    ] {
        let who = if signed_in { &ada } else { &anonymous };
        let response = who.http.get(who.url(&path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let headers = response.headers().clone();
        let get = |name: &str| {
            headers
                .get(name)
                .map(|value| value.to_str().unwrap().to_owned())
                .unwrap_or_else(|| panic!("{path} has no {name}"))
        };
        assert_eq!(get("x-frame-options"), "DENY", "{path}");
        assert_eq!(get("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(get("referrer-policy"), "same-origin", "{path}");
        assert!(get("permissions-policy").contains("camera=()"), "{path}");
        assert!(
            headers.get("strict-transport-security").is_none(),
            "plain http gets no HSTS"
        );
        let csp = get("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        let scripts = csp
            .split(';')
            .find(|directive| directive.trim_start().starts_with("script-src"))
            .unwrap()
            .to_owned();
        assert!(!scripts.contains("unsafe-inline"), "{path}: {csp}");
        let html = response.text().await.unwrap();
        for nonce in inline_script_nonces(&html) {
            let nonce = nonce.unwrap_or_else(|| panic!("{path}: an inline script without a nonce"));
            assert!(
                scripts.contains(&format!("'nonce-{nonce}'")),
                "{path}: script nonce {nonce} not in {scripts}"
            );
            seen_nonces.push(nonce);
        }
    }
    assert!(
        seen_nonces.len() >= 4,
        "the pages' hydration scripts carry nonces"
    );
    let unique: std::collections::HashSet<_> = seen_nonces.iter().collect();
    assert!(
        unique.len() >= 4,
        "a nonce is per response: {seen_nonces:?}"
    );
}

#[tokio::test]
async fn an_https_origin_gets_strict_transport_security() {
    let app = common::spawn_app_configured(|config| {
        config.public_origin = Some("https://codepod.example.org".into());
    })
    .await;
    let response = app.client.get(app.url("/signin")).send().await.unwrap();
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
}
