//! What a request body must be declared as: JSON posts `application/json`, uploads raw bytes.
//!
//! A body of the wrong type is refused `415 bad_content_type` before it is read, so a form post
//! or a mislabelled upload is named for what it is instead of failing later as bad JSON or a
//! hash mismatch.

use axum::{
    extract::Request,
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::ApiError;

/// The media type of `headers`' `content-type` without parameters (`charset`), lowercase.
fn essence(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    Some(
        text.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

fn refused(want: &str, got: Option<String>) -> ApiError {
    ApiError {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code: "bad_content_type",
        message: format!(
            "send the body with content-type: {want} (got {})",
            got.map_or_else(|| "none".to_string(), |g| format!("{g:?}"))
        ),
    }
}

/// Refuses a body not declared `application/json`.
pub(super) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match essence(headers) {
        Some(e) if e == "application/json" => Ok(()),
        got => Err(refused("application/json", got)),
    }
}

/// Middleware for the blob routes: an upload is raw bytes, `application/octet-stream`; no
/// content-type at all means the same (RFC 9110, 8.3), any other is refused.
pub(super) async fn octet_stream_puts(request: Request, next: Next) -> Response {
    if request.method() == Method::PUT {
        match essence(request.headers()) {
            None => {}
            Some(e) if e == "application/octet-stream" => {}
            got => return refused("application/octet-stream", got).into_response(),
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(ct).expect("test"),
        );
        h
    }

    #[test]
    fn json_with_parameters_passes_and_others_are_415() {
        assert!(require_json(&with("application/json")).is_ok());
        assert!(require_json(&with("Application/JSON; charset=utf-8")).is_ok());
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
        ] {
            let e = require_json(&with(bad)).expect_err("test");
            assert_eq!(
                (e.status.as_u16(), e.code),
                (415, "bad_content_type"),
                "{bad}"
            );
        }
        assert!(require_json(&HeaderMap::new()).is_err(), "none is not JSON");
    }
}
