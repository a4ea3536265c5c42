//! `GET /metrics`: Prometheus (OpenMetrics text) exposition. Open by default, as scrapers
//! expect; with `server.metrics_require_api_key` it follows the `/api/*` API-key rule.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::api::{authorized, hub_down, ApiError};
use super::ServerState;
use crate::hub::GetMetrics;
use crate::metrics::exposition::CONTENT_TYPE;

/// `GET /metrics`.
pub(crate) async fn scrape(
    req: HttpRequest,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, ApiError> {
    let config = state.config().await.map_err(hub_down)?;
    if config.server.metrics_require_api_key {
        authorized(&req, &state).await?;
    }
    let snapshot = state.hub.send(GetMetrics).await.map_err(hub_down)?;
    let body = snapshot.encode().map_err(|e| {
        log::error!("metrics encoding failed: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "metrics encoding failed",
        )
    })?;
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(body))
}
