//! Every failed `/api/` response is an [`app::ApiError`] JSON body with the status its
//! [`ErrorCode`] names. Server functions and handlers set both where the error is made;
//! bare errors from lower layers (405, 413 from the body limit, 404 for an unknown endpoint)
//! get their JSON body here.

use axum::{
    body::Body,
    extract::{Request, State},
    http::{Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use app::ApiError;
use model::ErrorCode;

/// An `ApiError` as a response with its status (and `Retry-After` when rate limited).
pub fn error_response(error: ApiError) -> Response {
    error.into_response()
}

fn generic(status: StatusCode) -> ApiError {
    let code = match status.as_u16() {
        400 => ErrorCode::BadRequest,
        401 => ErrorCode::Unauthenticated,
        403 => ErrorCode::CrossSite,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        413 => ErrorCode::TooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        422 => ErrorCode::InvalidInput,
        429 => ErrorCode::RateLimited,
        _ => ErrorCode::Internal,
    };
    let message = status.canonical_reason().unwrap_or("error").to_lowercase();
    ApiError::new(code, message)
}

/// `GET|POST /api/<anything unregistered>`.
pub async fn unknown_endpoint() -> Response {
    error_response(ApiError::new(
        ErrorCode::NotFound,
        "there is no API endpoint at this path",
    ))
}

/// Middleware for the JSON endpoints (every `POST /api/…` but the multipart upload): a body
/// that is not JSON at all is `bad_request` (400) here, before the server function sees
/// it, and one over `limit` bytes `too_large` (413). Whatever reaches a server function is
/// well-formed JSON, so an argument it refuses is `invalid_input` (422) — told apart by
/// where it failed, not by the text of the error.
pub async fn json_syntax(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if request.method() != Method::POST || !path.starts_with("/api/") || path == "/api/files/upload"
    {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(error) => {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            return error_response(if too_large {
                ApiError::new(
                    ErrorCode::TooLarge,
                    "the request body is larger than allowed",
                )
            } else {
                ApiError::new(ErrorCode::BadRequest, "the request body could not be read")
            });
        }
    };
    // JSON is UTF-8 (RFC 8259): other bytes inside a string make the body malformed too.
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => text,
        Err(error) => {
            return error_response(ApiError::new(
                ErrorCode::BadRequest,
                format!("the body is not UTF-8: {error}"),
            ));
        }
    };
    if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        return error_response(ApiError::new(
            ErrorCode::BadRequest,
            format!("the body is not JSON: {error}"),
        ));
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Middleware for `/api/`: errors made by the framework rather than by us (a 405, a 413
/// from the body limit, an empty 5xx) get an `ApiError` body. Our own errors — a server
/// function's, a handler's — already carry their body and their status, set where they
/// were made, and pass untouched.
pub async fn normalize(request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    let status = response.status();
    let ours = response.headers().contains_key("serverfnerror")
        || response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json"));
    if ours || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), "API error without a body");
    }
    error_response(generic(status))
}
