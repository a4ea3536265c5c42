//! `GET /api/config` (the configuration in force, API key redacted) and `PUT /api/config`
//! (a runtime update): both require the API key when one is set.
//!
//! `PUT` takes a JSON object merged onto the configuration in force (only the fields it
//! names change; objects merge, other values replace), then validated as a whole: a bad
//! value answers 400 with the field's name and nothing changes.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::api::{authorized, hub_down, ApiError};
use super::ServerState;
use crate::config::Config;
use crate::hub::UpdateConfig;

/// What `GET /api/config` shows instead of a set API key; sending it back keeps the key.
pub const REDACTED: &str = "<redacted>";

fn redacted(config: &Config) -> Result<Value, ApiError> {
    let mut v = serde_json::to_value(config)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    if config.server.api_key.is_some() {
        v["server"]["api_key"] = Value::from(REDACTED);
    }
    if let Some(url) = &config.store.redis_url {
        // The Redis password stays out of the answer too.
        v["store"]["redis_url"] = Value::from(crate::store::redacted_url(url));
    }
    if let Some(url) = &config.cluster.redis_url {
        v["cluster"]["redis_url"] = Value::from(crate::store::redacted_url(url));
    }
    Ok(v)
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    let message = message.into();
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_config",
        format!("`{field}`: {message}"),
    )
}

/// The configuration `patch` describes on top of `current`.
pub(crate) fn patched(current: &Config, patch: &[u8]) -> Result<Config, ApiError> {
    let patch: Value = serde_json::from_slice(patch)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))?;
    if !patch.is_object() {
        return Err(bad("body", "must be a JSON object of config sections"));
    }
    let keep_key = patch["server"]["api_key"].as_str() == Some(REDACTED);
    let keep_url = match (
        &current.store.redis_url,
        patch["store"]["redis_url"].as_str(),
    ) {
        (Some(url), Some(sent)) => sent == crate::store::redacted_url(url),
        _ => false,
    };
    let keep_cluster_url = match (
        &current.cluster.redis_url,
        patch["cluster"]["redis_url"].as_str(),
    ) {
        (Some(url), Some(sent)) => sent == crate::store::redacted_url(url),
        _ => false,
    };
    let mut merged = serde_json::to_value(current)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    merge(&mut merged, patch);
    let mut config: Config = serde_json::from_value(merged).map_err(|e| {
        // serde names the unknown or mistyped field in its message.
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_config", e.to_string())
    })?;
    if keep_key {
        config.server.api_key = current.server.api_key.clone();
    }
    if keep_url {
        config.store.redis_url = current.store.redis_url.clone();
    }
    if keep_cluster_url {
        config.cluster.redis_url = current.cluster.redis_url.clone();
    }
    config.server.api_key = config.server.api_key.filter(|k| !k.is_empty());
    Ok(config)
}

/// `GET /api/config`.
pub(crate) async fn get(
    req: HttpRequest,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, ApiError> {
    authorized(&req, &state).await?;
    let config = state.config().await.map_err(hub_down)?;
    Ok(HttpResponse::Ok().json(redacted(&config)?))
}

/// `PUT /api/config`: 200 with the configuration now in force, 400 naming the field.
pub(crate) async fn put(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, ApiError> {
    authorized(&req, &state).await?;
    let current = state.config().await.map_err(hub_down)?;
    let config = patched(&current, &body)?;
    match state
        .hub
        .send(UpdateConfig { config })
        .await
        .map_err(hub_down)?
    {
        Ok(now) => Ok(HttpResponse::Ok().json(redacted(&now)?)),
        Err(e) => Err(bad(&e.field, e.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_merge_and_keep_a_redacted_key() {
        let mut current = Config::default();
        current.server.api_key = Some("k".into());
        let body =
            br#"{"session": {"client_timeout_ms": 90000}, "server": {"api_key": "<redacted>"}}"#;
        let c = patched(&current, body).expect("valid");
        assert_eq!(c.session.client_timeout_ms, 90_000);
        assert_eq!(c.session.heartbeat_interval_ms, 25_000);
        assert_eq!(c.server.api_key.as_deref(), Some("k"));
        let err = patched(&current, br#"{"session": {"client_timeout": 1}}"#).expect_err("typo");
        assert!(err.to_string().contains("client_timeout"), "{err}");
    }

    #[test]
    fn the_redis_password_is_shown_redacted_and_kept_when_sent_back() {
        let mut current = Config::default();
        current.store.redis_url = Some("redis://:hunter2@127.0.0.1:6379/0".into());
        let shown = redacted(&current).expect("json");
        assert_eq!(shown["store"]["redis_url"], "redis://***@127.0.0.1:6379/0");
        let body = serde_json::to_vec(&shown).expect("json");
        let c = patched(&current, &body).expect("valid");
        assert_eq!(c.store.redis_url, current.store.redis_url);
    }
}
