//! docs/api.md is the API's guide (the contract is the generated `/api/openapi.json`): every
//! registered server function and every other `/api/` route must have a section there, with
//! a curl example.

use leptos::server_fn::axum::server_fn_paths;

const API_DOC: &str = include_str!("../../docs/api.md");

/// The `/api/` routes that are plain axum handlers rather than server functions.
const PLAIN_ROUTES: [(&str, &str); 3] = [
    ("POST", "/api/files/upload"),
    ("GET", "/api/files/download"),
    ("GET", "/api/workspaces/download"),
];

fn documented(method: &str, path: &str) -> bool {
    let heading = format!("### `{method} {path}");
    let Some(start) = API_DOC.find(&heading) else {
        return false;
    };
    let section = &API_DOC[start + heading.len()..];
    let section = &section[..section.find("\n### ").unwrap_or(section.len())];
    section.contains("curl ") && section.contains(path)
}

#[test]
fn every_server_function_is_documented_with_a_curl_example() {
    // Linking the server links the app crate, whose server functions register themselves.
    let _ = server::Config::defaults();
    let mut paths: Vec<_> = server_fn_paths()
        .map(|(path, method)| (method.to_string(), path))
        .collect();
    assert!(
        paths.len() >= 19,
        "expected the API's server functions, found {paths:?}"
    );
    paths.sort();
    let missing: Vec<_> = paths
        .iter()
        .filter(|(method, path)| !documented(method, path))
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/api.md lacks a section with a curl example for: {missing:?}"
    );
}

#[test]
fn every_plain_api_route_is_documented_with_a_curl_example() {
    for (method, path) in PLAIN_ROUTES {
        assert!(
            documented(method, path),
            "docs/api.md lacks {method} {path}"
        );
    }
}

#[test]
fn the_doc_check_can_fail() {
    assert!(!documented("POST", "/api/not/a/real/endpoint"));
}
