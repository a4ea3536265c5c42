//! Checks in front of the routes: browser origins on upgrades, bounded request bodies, the
//! API key compared in constant time.

use actix_web::dev::RequestHead;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use bytes::BytesMut;
use futures_util::StreamExt;

use super::{error_response, ServerState};

/// `Some(403)` when a browser page from an origin outside `limits.allowed_origins` asks to
/// upgrade.
pub(crate) fn check_origin(req: &RequestHead, state: &ServerState) -> Option<HttpResponse> {
    let origin = req.headers().get("origin").map(|v| v.to_str());
    let origin = match origin {
        None => None,
        Some(Ok(o)) => Some(o),
        Some(Err(_)) => {
            log::warn!("upgrade refused (403): Origin header is not ASCII");
            return Some(error_response(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "the Origin header is not valid",
            ));
        }
    };
    let host = req.headers().get("host").and_then(|v| v.to_str().ok());
    if state.limits.origin_allowed(origin, host) {
        return None;
    }
    let origin = origin.unwrap_or_default();
    log::warn!("upgrade refused (403): origin {origin} is not in limits.allowed_origins");
    Some(error_response(
        StatusCode::FORBIDDEN,
        "origin_not_allowed",
        &format!("origin `{origin}` is not allowed (limits.allowed_origins)"),
    ))
}

/// Reads a request body of at most `limit` bytes; over it: HTTP 413 with a JSON error.
pub(crate) async fn read_body(
    mut payload: web::Payload,
    limit: usize,
) -> Result<bytes::Bytes, HttpResponse> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            error_response(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("cannot read the request body: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            log::warn!("request body over {limit} bytes refused (413)");
            return Err(error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                &format!("request body over {limit} bytes (limits.max_api_body_bytes)"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Whether `presented` is the API key, compared in constant time.
pub(crate) fn key_matches(presented: Option<&str>, key: &str) -> bool {
    match presented {
        Some(p) => crate::config::constant_time_eq(p.as_bytes(), key.as_bytes()),
        None => false,
    }
}
