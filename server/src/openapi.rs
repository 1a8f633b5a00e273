//! `GET /api/openapi.json`: the public API as an OpenAPI 3.1 document, generated from the
//! code that serves it, and `GET /docs`, the page that reads it (Swagger UI from the vendor
//! bundles).
//!
//! Nothing here restates a type: each server function contributes its path (its
//! `ServerFn::PATH`), its arguments' and its answer's JSON Schemas (derived from the Rust
//! types with schemars; the validated strings of `model` publish their rules) and its
//! summary (its doc comment). What an operation adds by hand is what no type says: which
//! error codes it can answer, each with the status and sentence [`ErrorCode`] gives it. The
//! contract test (`scripts/api-contract.sh`: Schemathesis, then a request that reaches each
//! documented code) holds those lists to the truth.

use std::sync::OnceLock;

use app::{accounts::api as accounts, files::api as files, meta, workspaces::api as workspaces};
use axum::{
    http::header,
    response::{Html, IntoResponse, Response},
};
use leptos::server_fn::{Protocol, ServerFn};
use model::ErrorCode;
use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone (sign-up, sign-in, the server's facts).
    Anyone,
    /// The holder of a live session cookie; anyone else gets `unauthenticated`.
    SignedIn,
}

/// What an operation touches beyond its arguments, for the errors that come with it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Uses {
    /// Nothing but the process (`unavailable` never).
    Nothing,
    /// The database (`unavailable` while it does not answer).
    Database,
}

use Access::{Anyone, SignedIn};
use ErrorCode as E;
use Uses::{Database, Nothing};

/// The document, built once per process.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

/// `GET /api/openapi.json`.
pub async fn serve() -> Response {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        axum::Json(document()),
    )
        .into_response()
}

/// `GET /docs`: Swagger UI reading `/api/openapi.json`, from `/vendor` (no CDN and no inline
/// script: the site's own Content-Security-Policy holds).
pub fn docs_page(vendor_manifest: &str) -> Response {
    let manifest: std::collections::BTreeMap<String, String> =
        serde_json::from_str(vendor_manifest).unwrap_or_default();
    let file = |name: &str| {
        manifest
            .get(name)
            .map(|file| format!("/vendor/{file}"))
            .unwrap_or_default()
    };
    let page = format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Codepod API</title>
<link rel="icon" type="image/png" sizes="192x192" href="/icons/icon-192.png">
<link rel="stylesheet" href="{css}">
</head>
<body>
<div id="api-docs" data-spec="/api/openapi.json"></div>
<script src="{js}"></script>
</body>
</html>
"#,
        css = file("api-docs.css"),
        js = file("api-docs.js"),
    );
    Html(page).into_response()
}

struct Builder {
    generator: SchemaGenerator,
    paths: Map<String, Value>,
}

fn build() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.definitions_path = "/components/schemas".into();
            settings.meta_schema = None;
        })
        .into_generator();
    let mut doc = Builder {
        generator,
        paths: Map::new(),
    };
    // Own codes only: `server_fn` adds what every JSON body, the session and the database
    // bring.
    let (db, none) = (Database, Nothing);
    doc.server_fn::<accounts::Register>(
        "accounts",
        Anyone,
        db,
        &[E::UsernameTaken, E::RateLimited],
    );
    doc.server_fn::<accounts::Login>("accounts", Anyone, db, &[E::BadCredentials, E::RateLimited]);
    doc.server_fn::<accounts::Logout>("accounts", SignedIn, db, &[]);
    doc.server_fn::<accounts::LogoutOthers>("accounts", SignedIn, db, &[]);
    doc.server_fn::<accounts::Me>("accounts", SignedIn, db, &[]);
    doc.server_fn::<accounts::ChangePassword>("accounts", SignedIn, db, &[E::WrongPassword]);
    doc.server_fn::<accounts::DeleteAccount>("accounts", SignedIn, db, &[E::WrongPassword]);

    let ws = "workspaces";
    let taken = [E::WorkspaceNameTaken, E::LimitReached];
    doc.server_fn::<workspaces::CreateWorkspace>(ws, SignedIn, db, &taken);
    doc.server_fn::<workspaces::ListWorkspaces>(ws, SignedIn, db, &[]);
    doc.server_fn::<workspaces::GetWorkspace>(ws, SignedIn, db, &[E::NotFound]);
    let rename = [E::NotFound, E::WorkspaceNameTaken];
    doc.server_fn::<workspaces::RenameWorkspace>(ws, SignedIn, db, &rename);
    doc.server_fn::<workspaces::DeleteWorkspace>(ws, SignedIn, db, &[E::NotFound]);
    let start = [E::NotFound, E::TooManySandboxes];
    doc.server_fn::<workspaces::StartWorkspace>(ws, SignedIn, db, &start);
    doc.server_fn::<workspaces::StopWorkspace>(ws, SignedIn, db, &[E::NotFound]);
    doc.server_fn::<workspaces::WorkspaceStatus>(ws, SignedIn, db, &[E::NotFound]);
    doc.server_fn::<workspaces::Keepalive>(ws, SignedIn, db, &[E::NotFound]);
    let packages = [E::NotFound, E::Unavailable];
    doc.server_fn::<workspaces::WorkspacePackages>(ws, SignedIn, db, &packages);
    doc.server_fn::<workspaces::ClearPackages>(ws, SignedIn, db, &packages);

    let write = [
        E::NotFound,
        E::WrongKind,
        E::VersionConflict,
        E::LimitReached,
    ];
    let mkdir = [E::NotFound, E::Exists, E::WrongKind, E::LimitReached];
    doc.server_fn::<files::Tree>("files", SignedIn, db, &[E::NotFound]);
    doc.server_fn::<files::Markdown>("files", SignedIn, db, &[E::TooLarge]);
    doc.server_fn::<files::ReadFile>("files", SignedIn, db, &[E::NotFound, E::WrongKind]);
    doc.server_fn::<files::WriteFile>("files", SignedIn, db, &write);
    doc.server_fn::<files::MakeDir>("files", SignedIn, db, &mkdir);
    let moves = [E::NotFound, E::Exists, E::WrongKind];
    doc.server_fn::<files::MovePath>("files", SignedIn, db, &moves);
    doc.server_fn::<files::DeletePath>("files", SignedIn, db, &[E::NotFound]);
    doc.server_fn::<meta::ServerInfo>("meta", Anyone, none, &[]);
    doc.plain_handlers();
    doc.link_workspace_ids();

    let mut components = Map::new();
    components.insert(
        "schemas".into(),
        Value::Object(doc.generator.take_definitions(true)),
    );
    components.insert(
        "securitySchemes".into(),
        json!({
            "session": {
                "type": "apiKey",
                "in": "cookie",
                "name": "codepod_session",
                "description": "Set by register and login (`__Host-codepod_session` when the \
                                server's public origin is https). HttpOnly; the user is only \
                                ever taken from it."
            }
        }),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Codepod API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": DESCRIPTION,
        },
        "servers": [{ "url": "/" }],
        "tags": [
            { "name": "accounts", "description": "Sign-up, sign-in, sessions and the account." },
            { "name": "workspaces", "description": "Workspaces and their sandboxes." },
            { "name": "files", "description": "A workspace's files and folders." },
            { "name": "meta", "description": "The server itself." },
        ],
        "paths": doc.paths,
        "components": components,
    })
}

const DESCRIPTION: &str = "Codepod's server functions are its public JSON API: the browser \
app uses exactly these endpoints. Requests are `POST` with a JSON object of the named \
arguments (`{}` when there are none); authentication is the session cookie set by register \
and login. A request that would change anything from another site (its `Origin` not this \
server's, or `Sec-Fetch-Site` cross-site) is refused with `403 cross_site`. Every error is \
a JSON `ApiError` whose `code` names it; any operation may also answer `500 internal` (a \
bug: the details are logged under the `reference` it carries, never sent). The terminal \
and file events run over a WebSocket at `/ws/workspaces/{id}` (see docs/api.md). Generated \
from the code; the guide is docs/api.md.";

/// Splits a doc comment into its first sentence-line (the summary) and the rest, without
/// the line the server-function macro puts first.
fn summary_and_description(docs: &str) -> (String, String) {
    let paragraphs: Vec<&str> = docs
        .split("\n\n")
        .map(str::trim)
        .filter(|paragraph| !paragraph.is_empty() && !paragraph.starts_with("Serialized arguments"))
        .collect();
    let summary = paragraphs
        .first()
        .map(|first| first.replace('\n', " "))
        .unwrap_or_default();
    let description = paragraphs
        .get(1..)
        .unwrap_or_default()
        .iter()
        .map(|paragraph| paragraph.replace('\n', " "))
        .collect::<Vec<_>>()
        .join("\n\n");
    (summary, description)
}

impl Builder {
    fn schema<T: JsonSchema>(&mut self) -> Value {
        self.generator.subschema_for::<T>().to_value()
    }

    /// A server function: `POST` with its arguments as a JSON object (or `GET` without
    /// any), answering its output as JSON.
    fn server_fn<F>(&mut self, tag: &str, access: Access, uses: Uses, own: &[ErrorCode])
    where
        F: ServerFn + JsonSchema,
        F::Output: JsonSchema,
    {
        let arguments = self.schema::<F>();
        let docs = self
            .generator
            .definitions()
            .get(F::schema_name().as_ref())
            .and_then(|schema| schema.get("description"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let (summary, description) = summary_and_description(&docs);
        let output = self.schema::<F::Output>();
        let get = F::Protocol::METHOD == http::Method::GET;
        let mut operation = json!({
            "tags": [tag],
            "operationId": F::PATH.trim_start_matches("/api/").replace('/', "_"),
            "summary": summary,
            "responses": {
                "200": {
                    "description": "Done.",
                    "content": { "application/json": { "schema": output } },
                },
            },
        });
        if !description.is_empty() {
            operation["description"] = description.into();
        }
        if !get {
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": arguments } },
            });
        }
        // A JSON body can be malformed, from another site, too large or of the wrong shape.
        let body: &[ErrorCode] = match get {
            true => &[],
            false => &[E::BadRequest, E::CrossSite, E::TooLarge, E::InvalidInput],
        };
        let answers = codes(access, uses, &[body, own]);
        self.add_errors(&mut operation, access, &answers);
        let method = if get { "get" } else { "post" };
        self.paths
            .insert(F::PATH.to_owned(), json!({ method: operation }));
    }

    /// The error responses for `codes`, one per status, each naming its codes.
    fn add_errors(&mut self, operation: &mut Value, access: Access, codes: &[ErrorCode]) {
        let error = self.schema::<app::ApiError>();
        let mut by_status: std::collections::BTreeMap<u16, Vec<ErrorCode>> = Default::default();
        for code in codes {
            by_status.entry(code.status()).or_default().push(*code);
        }
        for (status, codes) in by_status {
            let description = codes
                .iter()
                .map(|code| format!("`{}`: {}", code.as_str(), code.sentence()))
                .collect::<Vec<_>>()
                .join(" ");
            let names: Vec<&str> = codes.iter().map(|code| code.as_str()).collect();
            let mut response = json!({
                "description": description,
                "content": { "application/json": { "schema": {
                    "allOf": [error, { "properties": { "code": { "enum": names } } }]
                } } },
            });
            if codes.contains(&E::RateLimited) {
                response["headers"] = json!({
                    "Retry-After": {
                        "description": "Seconds to wait before trying again.",
                        "schema": { "type": "string", "pattern": "^[0-9]+$" }
                    }
                });
            }
            operation["responses"][status.to_string()] = response;
        }
        if access == SignedIn {
            operation["security"] = json!([{ "session": [] }]);
        }
    }

    /// Links from a created workspace to every operation that takes its id, so that a
    /// client (and Schemathesis's stateful phase) can follow them.
    fn link_workspace_ids(&mut self) {
        let create = workspaces::CreateWorkspace::PATH;
        let mut links = Map::new();
        for (path, item) in &self.paths {
            if path == create {
                continue;
            }
            for operation in item.as_object().into_iter().flatten().map(|(_, op)| op) {
                let Some(id) = operation["operationId"].as_str() else {
                    continue;
                };
                let body = &operation["requestBody"]["content"]["application/json"]["schema"];
                let name = body["$ref"]
                    .as_str()
                    .and_then(|reference| reference.rsplit('/').next())
                    .and_then(|name| self.generator.definitions().get(name))
                    .and_then(|schema| schema["properties"].as_object())
                    .and_then(|properties| {
                        ["id", "workspace"]
                            .into_iter()
                            .find(|field| properties.contains_key(*field))
                    });
                let query = operation["parameters"]
                    .as_array()
                    .is_some_and(|parameters| {
                        parameters
                            .iter()
                            .any(|parameter| parameter["name"] == "workspace")
                    });
                let link = match (name, query) {
                    (Some(field), _) => json!({
                        "operationId": id,
                        "requestBody": { field: "$response.body#/id" },
                    }),
                    (None, true) => json!({
                        "operationId": id,
                        "parameters": { "query.workspace": "$response.body#/id" },
                    }),
                    (None, false) => continue,
                };
                links.insert(id.to_owned(), link);
            }
        }
        if let Some(create) = self.paths.get_mut(create) {
            create["post"]["responses"]["200"]["links"] = Value::Object(links);
        }
    }

    /// The endpoints that are not JSON: upload (multipart), one file's bytes, a zip.
    fn plain_handlers(&mut self) {
        let workspace = self.schema::<model::WorkspaceId>();
        let path = self.schema::<model::WorkspacePath>();
        let entries = self.schema::<Vec<model::FileEntry>>();
        let workspace_param = json!({
            "name": "workspace", "in": "query", "required": true, "schema": workspace,
            "description": "The workspace's id.",
        });
        let query_errors: &[ErrorCode] = &[E::BadRequest, E::NotFound];

        let mut upload = json!({
            "tags": ["files"],
            "operationId": "files_upload",
            "summary": "Uploads files: one multipart part per file, each part's file name its \
                        path in the workspace (`folder/sub/file.py`, as browsers send for \
                        folder uploads).",
            "description": "An existing file is replaced (a new version of it).",
            "parameters": [workspace_param],
            "requestBody": {
                "required": true,
                "content": { "multipart/form-data": { "schema": {
                    "type": "object",
                    "properties": { "file": { "type": "array", "items": {
                        "description": "A file's bytes, whatever they are; the part's file \
                                        name is its path.",
                        "contentMediaType": "application/octet-stream"
                    } } },
                } } },
            },
            "responses": { "200": {
                "description": "The entries written.",
                "content": { "application/json": { "schema": entries } },
            } },
        });
        let answers = codes(
            SignedIn,
            Database,
            &[
                query_errors,
                &[
                    E::CrossSite,
                    E::TooLarge,
                    E::InvalidInput,
                    E::WrongKind,
                    E::LimitReached,
                ],
            ],
        );
        self.add_errors(&mut upload, SignedIn, &answers);
        self.paths
            .insert("/api/files/upload".into(), json!({ "post": upload }));

        let mut download = json!({
            "tags": ["files"],
            "operationId": "files_download",
            "summary": "One file's bytes, with a content type from its name, as an attachment.",
            "parameters": [workspace_param, {
                "name": "path", "in": "query", "required": true, "schema": path,
                "description": "The file's path in the workspace.",
            }],
            "responses": { "200": {
                "description": "The file's content.",
                "content": { "*/*": { "schema": { "type": "string", "contentMediaType": "application/octet-stream" } } },
            } },
        });
        let answers = codes(SignedIn, Database, &[query_errors, &[E::WrongKind]]);
        self.add_errors(&mut download, SignedIn, &answers);
        self.paths
            .insert("/api/files/download".into(), json!({ "get": download }));

        let mut zip = json!({
            "tags": ["workspaces"],
            "operationId": "workspaces_download",
            "summary": "The whole workspace as a zip, streamed as it is built.",
            "parameters": [workspace_param],
            "responses": { "200": {
                "description": "The zip.",
                "content": { "application/zip": { "schema": { "type": "string", "contentMediaType": "application/zip" } } },
            } },
        });
        let answers = codes(SignedIn, Database, &[query_errors]);
        self.add_errors(&mut zip, SignedIn, &answers);
        self.paths
            .insert("/api/workspaces/download".into(), json!({ "get": zip }));
    }
}

/// The codes an operation can answer: its own, plus those its access and what it uses
/// bring.
fn codes(access: Access, uses: Uses, errors: &[&[ErrorCode]]) -> Vec<ErrorCode> {
    let mut codes: Vec<ErrorCode> = errors
        .iter()
        .flat_map(|codes| codes.iter().copied())
        .collect();
    if access == SignedIn {
        codes.push(E::Unauthenticated);
    }
    if uses == Database {
        codes.push(E::Unavailable);
    }
    codes.sort();
    codes.dedup();
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_function_is_described() {
        let doc = document();
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        for registered in leptos::server_fn::axum::server_fn_paths() {
            let (path, method) = registered;
            let method = method.as_str().to_lowercase();
            assert!(
                paths.get(path).and_then(|item| item.get(&method)).is_some(),
                "{method} {path} is served but not in the document"
            );
        }
        for path in [
            "/api/files/upload",
            "/api/files/download",
            "/api/workspaces/download",
        ] {
            assert!(paths.contains_key(path), "{path}");
        }
    }

    #[test]
    fn operations_have_a_summary_from_their_doc_comment() {
        let doc = document();
        let create = &doc["paths"]["/api/workspaces/create"]["post"];
        assert_eq!(
            create["summary"],
            "Creates a workspace seeded with `main.py`."
        );
        for (path, item) in doc["paths"].as_object().cloned().unwrap_or_default() {
            for (_, operation) in item.as_object().cloned().unwrap_or_default() {
                let summary = operation["summary"].as_str().unwrap_or_default();
                assert!(!summary.is_empty(), "{path} has no summary");
                assert!(!summary.starts_with("Serialized"), "{path}: {summary}");
            }
        }
    }

    #[test]
    fn error_responses_name_their_codes_at_their_status() {
        let doc = document();
        let login = &doc["paths"]["/api/users/login"]["post"]["responses"];
        let codes = &login["401"]["content"]["application/json"]["schema"]["allOf"][1]["properties"]
            ["code"]["enum"];
        assert_eq!(codes, &json!(["bad_credentials"]));
        assert!(login["429"]["headers"]["Retry-After"].is_object());
        let me = &doc["paths"]["/api/users/me"]["post"];
        assert!(me["responses"]["401"].is_object());
        assert_eq!(me["security"], json!([{ "session": [] }]));
        assert!(doc["paths"]["/api/meta/info"]["get"]["responses"]["401"].is_null());
    }

    #[test]
    fn validated_strings_publish_their_rules() {
        let schemas = &document()["components"]["schemas"];
        assert_eq!(schemas["Password"]["minLength"], 10);
        assert!(schemas["WorkspacePath"]["pattern"].is_string());
        assert!(
            schemas["ErrorCode"]["enum"]
                .as_array()
                .is_some_and(|codes| codes.contains(&json!("version_conflict")))
        );
    }
}
