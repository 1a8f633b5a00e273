//! Every failed `/api/` response is an [`app::ApiError`] JSON body with the status its code
//! names: server-function errors get their status here (the server-function layer sends
//! them all as 500), and bare errors from lower layers (405, 413 from the body limit, 404
//! for an unknown endpoint) get a JSON body.

use axum::{
    body::{Body, to_bytes},
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use app::ApiError;

/// Largest error body the middleware will read to find its code.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// An `ApiError` as a response with its status (and `Retry-After` when rate limited).
pub fn error_response(error: ApiError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let retry_after = error.retry_after;
    let mut response = (status, axum::Json(error)).into_response();
    if let Some(seconds) = retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn generic(status: StatusCode) -> ApiError {
    let code = match status.as_u16() {
        400 => "bad_request",
        401 => "unauthenticated",
        403 => "cross_site",
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "too_large",
        415 => "unsupported_media_type",
        422 => "invalid_input",
        429 => "rate_limited",
        _ => "internal",
    };
    let message = status.canonical_reason().unwrap_or("error").to_lowercase();
    ApiError::new(code, message)
}

/// `GET|POST /api/<anything unregistered>`.
pub async fn unknown_endpoint() -> Response {
    error_response(ApiError::new(
        "not_found",
        "there is no API endpoint at this path",
    ))
}

/// Middleware for `/api/`: gives every error response its `ApiError` body and status.
pub async fn normalize(request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    let server_fn_error = response.headers().contains_key("serverfnerror");
    if !server_fn_error && response.status().is_success() {
        return response;
    }
    if !server_fn_error
        && !response.status().is_client_error()
        && !response.status().is_server_error()
    {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    let status = response.status();
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, MAX_ERROR_BODY).await.unwrap_or_default();
    let parsed = if server_fn_error || is_json {
        serde_json::from_slice::<ApiError>(&bytes).ok()
    } else {
        None
    };
    match parsed {
        Some(error) => {
            let mut response = error_response(error);
            // Keep the cookies and other headers a server function set.
            for (name, value) in parts.headers.iter() {
                if name == header::SET_COOKIE {
                    response.headers_mut().append(name, value.clone());
                }
            }
            response
        }
        None if status.is_client_error() || status.is_server_error() => {
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), body = %String::from_utf8_lossy(&bytes), "API error without a body");
            }
            error_response(generic(status))
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}
