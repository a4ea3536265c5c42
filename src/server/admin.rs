//! The admin HTTP API (all routes require the API key when one is set):
//!
//! | route | does |
//! |---|---|
//! | `POST /api/admin/users/{user}/kick` | closes every session of the user with 4500 |
//! | `POST /api/admin/clients/{client}/disconnect` | closes one session (`code`, default 4500) |
//! | `POST /api/admin/groups/{group}/members` | adds `user_id`'s sessions to the group |
//! | `DELETE /api/admin/groups/{group}/members/{user}` | removes the user's sessions |
//! | `GET /api/admin/groups/{group}/members` | the group's member sessions |
//! | `POST /api/admin/messages/{id}/retry?from=USER` | retries one failed message |
//! | `POST /api/admin/messages/retry-failed` | retries every failed message |
//! | `GET /api/admin/messages?status=&user=&since_ms=&until_ms=&offset=&limit=` | records |
//!
//! Bad input answers 400 with `{"error": {"code": "invalid_request", "message": ...}}`
//! naming the field; an unknown user, session, group or message answers 404.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::api::{authorized, hub_down, ApiError};
use super::ServerState;
use crate::hub::{
    AddUserToGroup, DisconnectClient, GetGroupMembers, KickUser, ListRecords, RecordFilter,
    RemoveUserFromGroup, RetryAllFailed, RetryFailedMessage,
};
use crate::model::{MessageKey, MessageStatus};
use crate::protocol::CloseCode;

/// Largest page of `GET /api/admin/messages`.
pub const MAX_PAGE: usize = 1000;

/// Mounts the admin routes.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/admin/users/{user}/kick", web::post().to(kick))
        .route(
            "/api/admin/clients/{client}/disconnect",
            web::post().to(disconnect),
        )
        .route("/api/admin/groups/{group}/members", web::post().to(add))
        .route("/api/admin/groups/{group}/members", web::get().to(members))
        .route(
            "/api/admin/groups/{group}/members/{user}",
            web::delete().to(remove),
        )
        .route(
            "/api/admin/messages/retry-failed",
            web::post().to(retry_all),
        )
        .route("/api/admin/messages/{id}/retry", web::post().to(retry_one))
        .route("/api/admin/messages", web::get().to(list));
}

fn bad(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        format!("`{field}`: {message}"),
    )
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
}

/// An optional JSON body (empty is `T::default()`).
fn body<T: for<'de> Deserialize<'de> + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| bad("body", e))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    code: Option<u16>,
}

async fn kick(
    req: HttpRequest,
    user: web::Path<String>,
    bytes: web::Bytes,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, ApiError> {
    authorized(&req, &state).await?;
    let b: CloseBody = body(&bytes)?;
    if b.code.is_some() {
        return Err(bad("code", "a kick always closes with 4500"));
    }
    let user = user.into_inner();
    let kick = KickUser {
        user_id: user.as_str().into(),
        reason: b.reason.unwrap_or_else(|| "kicked".into()),
    };
    match state.hub.send(kick).await.map_err(hub_down)? {
        0 => Err(not_found(format!("user {user} has no live session"))),
        n => Ok(HttpResponse::Ok().json(json!({"user_id": user, "closed": n}))),
    }
}

async fn disconnect(
    req: HttpRequest,
    client: web::Path<String>,
    bytes: web::Bytes,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, ApiError> {
    authorized(&req, &state).await?;
    let b: CloseBody = body(&bytes)?;
    let code = match b.code {
        None => CloseCode::Kicked,
        Some(c @ (1000 | 1001 | 4000..=4999)) => CloseCode::from_code(c),
        Some(c) => return Err(bad("code", format!("{c} is not 1000, 1001 or 4000-4999"))),
    };
    let client = client.into_inner();
    let msg = DisconnectClient {
        client_id: client.as_str().into(),
        code,
        reason: b
            .reason
            .unwrap_or_else(|| "disconnected by the server".into()),
    };
    if state.hub.send(msg).await.map_err(hub_down)? {
        Ok(HttpResponse::Ok().json(json!({"client_id": client, "code": code.code()})))
    } else {
        Err(not_found(format!("no session with client id {client}")))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    #[serde(default)]
    user_id: Option<String>,
}

async fn add(
    req: HttpRequest,
    group: web::Path<String>,
    bytes: web::Bytes,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, ApiError> {
    authorized(&req, &state).await?;
    let b: MemberBody = body(&bytes)?;
    let user = b
        .user_id
        .filter(|u| !u.is_empty())
        .ok_or_else(|| bad("user_id", "is required"))?;
    let group = group.into_inner();
    let msg = AddUserToGroup {
        user_id: user.as_str().into(),
        group: group.as_str().into(),
    };
    let online = state
        .hub
        .send(crate::hub::IsOnline {
            user_id: user.as_str().into(),
        })
        .await
        .map_err(hub_down)?;
    if !online {
        return Err(not_found(format!("user {user} has no live session")));
    }
    let joined = state
        .hub
        .send(msg)
        .await
        .map_err(hub_down)?
        .map_err(|e| bad("group", e))?;
    Ok(HttpResponse::Ok().json(json!({"group": group, "user_id": user, "joined": joined})))
}

async fn remove(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, ApiError> {
    authorized(&req, &state).await?;
    let (group, user) = path.into_inner();
    let msg = RemoveUserFromGroup {
        user_id: user.as_str().into(),
        group: group.as_str().into(),
    };
    let left = state
        .hub
        .send(msg)
        .await
        .map_err(hub_down)?
        .map_err(|e| bad("group", e))?;
    Ok(HttpResponse::Ok().json(json!({"group": group, "user_id": user, "left": left})))
}

async fn members(
    req: HttpRequest,
    group: web::Path<String>,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, ApiError> {
    authorized(&req, &state).await?;
    let group = group.into_inner();
    let msg = GetGroupMembers {
        group: group.as_str().into(),
    };
    match state.hub.send(msg).await.map_err(hub_down)? {
        Some(m) => {
            Ok(HttpResponse::Ok().json(json!({"group": group, "count": m.len(), "members": m})))
        }
        None => Err(not_found(format!("no group {group}"))),
    }
}

fn query(req: &HttpRequest) -> Result<HashMap<String, String>, ApiError> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| bad("query", e))
}

async fn retry_one(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, ApiError> {
    authorized(&req, &state).await?;
    let q = query(&req)?;
    let from = q.get("from").filter(|f| !f.is_empty()).ok_or_else(|| {
        bad(
            "from",
            "the sender is required (message ids are per sender)",
        )
    })?;
    let id = id.into_inner();
    let key = MessageKey::new(from.as_str(), id.as_str());
    if state
        .hub
        .send(RetryFailedMessage { key })
        .await
        .map_err(hub_down)?
    {
        Ok(HttpResponse::Ok().json(json!({"id": id, "from": from, "retried": true})))
    } else {
        Err(not_found(format!("no failed message {id} from {from}")))
    }
}

async fn retry_all(
    req: HttpRequest,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, ApiError> {
    authorized(&req, &state).await?;
    let n = state.hub.send(RetryAllFailed).await.map_err(hub_down)?;
    Ok(HttpResponse::Ok().json(json!({"retried": n})))
}

fn number<T: std::str::FromStr>(
    q: &HashMap<String, String>,
    field: &str,
) -> Result<Option<T>, ApiError> {
    match q.get(field) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| bad(field, format!("`{v}` is not a non-negative integer"))),
    }
}

/// Parses the `GET /api/admin/messages` query.
fn list_query(q: &HashMap<String, String>) -> Result<ListRecords, ApiError> {
    const KNOWN: [&str; 6] = ["status", "user", "since_ms", "until_ms", "offset", "limit"];
    if let Some(k) = q.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(bad(
            k,
            "unknown parameter (status, user, since_ms, until_ms, offset, limit)",
        ));
    }
    let filter = match q.get("status").map(String::as_str) {
        None | Some("") | Some("any") => None,
        Some("failed") => Some(RecordFilter::Failed),
        Some("retryable") => Some(RecordFilter::Retryable),
        Some(other) => {
            let s: MessageStatus = serde_json::from_value(other.into())
                .map_err(|_| bad("status", format!("unknown status `{other}`")))?;
            Some(RecordFilter::Status(s))
        }
    };
    let limit = number(q, "limit")?.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(bad("limit", format!("must be 1 to {MAX_PAGE}")));
    }
    let since_ms = number(q, "since_ms")?;
    let until_ms = number(q, "until_ms")?;
    if let (Some(s), Some(u)) = (since_ms, until_ms) {
        if s > u {
            return Err(bad("since_ms", "must not be after until_ms"));
        }
    }
    Ok(ListRecords {
        filter,
        user: q
            .get("user")
            .filter(|u| !u.is_empty())
            .map(|u| u.as_str().into()),
        since_ms,
        until_ms,
        offset: number(q, "offset")?.unwrap_or(0),
        limit,
    })
}

async fn list(req: HttpRequest, state: web::Data<ServerState>) -> Result<HttpResponse, ApiError> {
    authorized(&req, &state).await?;
    let q = list_query(&query(&req)?)?;
    let (offset, limit) = (q.offset, q.limit);
    let page = state.hub.send(q).await.map_err(hub_down)?;
    Ok(HttpResponse::Ok().json(json!({
        "total": page.total, "offset": offset, "limit": limit,
        "count": page.records.len(), "messages": page.records,
    })))
}
