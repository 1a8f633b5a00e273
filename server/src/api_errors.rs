//! Every failed `/api/` response is an [`app::ApiError`] JSON body with the status its
//! [`ErrorCode`] names. Server functions and handlers set both where the error is made;
//! bare errors from lower layers (405, 413 from the body limit, 404 for an unknown endpoint)
//! get their JSON body here.

use axum::{
    extract::Request,
    http::{StatusCode, header},
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
