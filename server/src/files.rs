//! The file endpoints that are not JSON: multipart upload, raw download of one file, and a
//! streamed `.zip` of a whole workspace.
//!
//! `POST /api/files/upload?workspace=<id>` — multipart, one part per file, each part's
//! filename its path in the workspace (`folder/sub/file.py`, as browsers send for folder
//! uploads). Existing files are replaced (a new version); the answer is the written entries.
//! `GET /api/files/download?workspace=<id>&path=<path>` — the bytes, with a content type.
//! `GET /api/workspaces/download?workspace=<id>` — a zip, streamed as it is built.

use std::io::Write;

use app::{
    ApiError,
    api_context::{ApiContext, AuthUser},
};
use axum::{
    Json,
    body::Body,
    extract::{Multipart, Query, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use futures_util::StreamExt as _;
use model::{ErrorCode, FileEntry, FileKind, WorkspaceId, WorkspacePath};
use serde::Deserialize;
use tokio::sync::mpsc;

#[derive(Debug, Deserialize)]
pub struct WorkspaceQuery {
    workspace: WorkspaceId,
}

#[derive(Debug, Deserialize)]
pub struct FileQuery {
    workspace: WorkspaceId,
    path: WorkspacePath,
}

/// `POST /api/files/upload?workspace=<id>`.
pub async fn upload(
    State(api): State<ApiContext>,
    AuthUser(user): AuthUser,
    Query(query): Query<WorkspaceQuery>,
    mut multipart: Multipart,
) -> Result<Json<Vec<FileEntry>>, ApiError> {
    // Checked first so that a foreign workspace is a 404 before any body is read.
    api.services.workspace(&user, query.workspace).await?;
    let max_file = usize::try_from(api.services.limits.max_file_bytes).unwrap_or(usize::MAX);
    let mut written = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(|error| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("malformed multipart body: {error}"),
        )
    })? {
        let Some(name) = field.file_name().map(str::to_owned) else {
            continue;
        };
        let path = WorkspacePath::parse(&name).map_err(|error| {
            ApiError::new(ErrorCode::InvalidInput, format!("{name:?}: {error}"))
        })?;
        let mut content = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|error| {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("malformed multipart body: {error}"),
            )
        })? {
            if content.len() + chunk.len() > max_file {
                return Err(services::Error::TooLarge(format!(
                    "{path} is larger than the file size limit"
                ))
                .into());
            }
            content.extend_from_slice(&chunk);
        }
        written.push(
            api.services
                .upload_file(&user, query.workspace, &path, content)
                .await?,
        );
    }
    if written.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "the upload contained no files",
        ));
    }
    Ok(Json(written))
}

/// A content type for a file name, by extension.
pub fn content_type(name: &str) -> &'static str {
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "py" | "pyi" => "text/x-python; charset=utf-8",
        "txt" | "log" | "toml" | "cfg" | "ini" | "yaml" | "yml" | "sh" | "rs" => {
            "text/plain; charset=utf-8"
        }
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "json" | "ipynb" => "application/json",
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// `Content-Disposition: attachment` with an ASCII fallback and the RFC 5987 UTF-8 name.
fn attachment(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// `GET /api/files/download?workspace=<id>&path=<path>`.
pub async fn download(
    State(api): State<ApiContext>,
    AuthUser(user): AuthUser,
    Query(query): Query<FileQuery>,
) -> Result<Response, ApiError> {
    let (_, content) = api
        .services
        .read_raw(&user, query.workspace, &query.path)
        .await?;
    let name = query.path.name();
    let mut response = Body::from(content).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    headers.insert(header::CONTENT_DISPOSITION, attachment(name));
    // User content is never rendered by the browser as part of our origin.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    Ok(response)
}

/// Chunks of zip output in flight between the writer thread and the response.
const ZIP_CHANNEL_CHUNKS: usize = 8;

/// A `Write` that sends what it is given down a bounded channel; blocks when the client is
/// slower than the zipping, so memory stays bounded.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /api/workspaces/download?workspace=<id>`: the workspace as a zip, streamed. Files
/// are read from the store one at a time, so memory holds at most one file.
pub async fn download_zip(
    State(api): State<ApiContext>,
    AuthUser(user): AuthUser,
    Query(query): Query<WorkspaceQuery>,
) -> Result<Response, ApiError> {
    let workspace = api.services.workspace(&user, query.workspace).await?;
    let entries = api.services.tree(&user, query.workspace).await?;
    let (tx, rx) = mpsc::channel(ZIP_CHANNEL_CHUNKS);
    let (file_tx, mut file_rx) = mpsc::channel::<(FileEntry, Vec<u8>)>(1);
    let services = api.services.clone();
    let workspace_id = query.workspace;
    // Reader: fetches each file's bytes in turn.
    tokio::spawn(async move {
        for entry in entries {
            let content = if entry.kind == FileKind::File {
                match services.read_raw(&user, workspace_id, &entry.path).await {
                    Ok((_, content)) => content,
                    Err(error) => {
                        tracing::warn!(error = %error, path = %entry.path, "zip: skipping a file");
                        continue;
                    }
                }
            } else {
                Vec::new()
            };
            if file_tx.send((entry, content)).await.is_err() {
                return;
            }
        }
    });
    // Writer: zips on a blocking thread into the response channel.
    let error_tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        let mut zip = zip::ZipWriter::new_stream(ChannelWriter { tx });
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(false);
        let result = (|| -> zip::result::ZipResult<()> {
            while let Some((entry, content)) = file_rx.blocking_recv() {
                if entry.kind == FileKind::Dir {
                    zip.add_directory(entry.path.as_str(), options)?;
                } else {
                    zip.start_file(entry.path.as_str(), options)?;
                    zip.write_all(&content)?;
                }
            }
            zip.finish()?;
            Ok(())
        })();
        if let Err(error) = result {
            tracing::warn!(error = %error, "zip stream ended early");
            let _ = error_tx.blocking_send(Err(std::io::Error::other(error.to_string())));
        }
    });
    // Fused: a body may be polled again after its end (compression layers do), and an
    // unfused `unfold` panics then — which cut every compressed download short.
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .fuse();
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        attachment(&format!("{}.zip", workspace.name)),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("main.py"), "text/x-python; charset=utf-8");
        assert_eq!(content_type("DATA.CSV"), "text/csv; charset=utf-8");
        assert_eq!(content_type("plot.png"), "image/png");
        assert_eq!(content_type("Makefile"), "application/octet-stream");
    }

    #[test]
    fn attachment_names_are_quoted_safely() {
        let value = attachment("a\"b ü.py");
        let value = value.to_str().unwrap();
        assert!(
            value.starts_with("attachment; filename=\"a_b _.py\""),
            "{value}"
        );
        assert!(
            value.contains("filename*=UTF-8''a%22b%20%C3%BC.py"),
            "{value}"
        );
    }
}
