//! The HTTP API beside `/ws` (PROTOCOL.md section 7).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use super::{error_response, ServerState};
use crate::hub::{
    FindRecords, GetOnlineUsers, GetRecord, GetStats, QueryRecords, RecordFilter, SendTracked,
    Target,
};
use crate::model::{MessageKey, MessageStatus};
use crate::protocol::inbound::MAX_DATA_DEPTH;
use crate::protocol::{Envelope, ErrorCode, MessageId, MessageType, Priority};

/// An API failure: status, code and message, rendered as a JSON error body.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        error_response(self.status, self.code, &self.message)
    }
}

pub(crate) async fn authorized(req: &HttpRequest, state: &ServerState) -> Result<(), ApiError> {
    let Some(key) = state.api_key().await.map_err(hub_down)? else {
        return Ok(());
    };
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if super::guard::key_matches(presented, &key) {
        Ok(())
    } else {
        log::warn!(
            "api request refused: missing or wrong API key path={}",
            req.path()
        );
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong API key",
        ))
    }
}

pub(crate) fn hub_down(e: actix::MailboxError) -> ApiError {
    log::error!("hub unavailable: {e}");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "internal",
        "hub unavailable",
    )
}

#[derive(Deserialize)]
struct SendBody {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    ticket_id: Option<String>,
    #[serde(default)]
    broadcast: bool,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    reply_to_msg_id: Option<String>,
    #[serde(default)]
    require_ack: bool,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    expires_in_ms: Option<u64>,
}

/// A parsed `/api/send` body.
pub(crate) struct SendRequest {
    pub(crate) target: Target,
    pub(crate) envelope: Envelope,
    pub(crate) tags: Vec<String>,
    pub(crate) expires_in: Option<std::time::Duration>,
}

fn bad(code: ErrorCode, message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code.as_str(), message)
}

pub(crate) fn parse_send(body: &[u8]) -> Result<SendRequest, ApiError> {
    let b: SendBody = serde_json::from_slice(body).map_err(|e| {
        let code = match e.classify() {
            serde_json::error::Category::Data => ErrorCode::InvalidFrame,
            _ => ErrorCode::InvalidJson,
        };
        bad(code, &format!("cannot read body: {e}"))
    })?;
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let group = nonempty(b.group).or_else(|| nonempty(b.ticket_id));
    let to = nonempty(b.to);
    let target = match (to.clone(), group.clone(), b.broadcast) {
        (Some(u), None, false) => Target::User(u.into()),
        (None, Some(g), false) => Target::Group(g.into()),
        (None, None, true) => Target::Broadcast,
        _ => {
            return Err(bad(
                ErrorCode::InvalidFrame,
                "set exactly one of `to`, `group` and `\"broadcast\": true`",
            ))
        }
    };
    let kind = nonempty(b.kind).unwrap_or_else(|| "text".into());
    let msg_type = MessageType::parse(&kind).ok_or_else(|| {
        bad(
            ErrorCode::UnknownType,
            &format!("unknown message type `{kind}`"),
        )
    })?;
    if matches!(
        msg_type,
        MessageType::Ack
            | MessageType::Ping
            | MessageType::Pong
            | MessageType::Join
            | MessageType::Leave
            | MessageType::Error
    ) {
        return Err(bad(ErrorCode::InvalidFrame, "control types cannot be sent"));
    }
    let priority = match nonempty(b.priority) {
        None => Priority::Normal,
        Some(p) => Priority::parse(&p)
            .ok_or_else(|| bad(ErrorCode::InvalidFrame, &format!("unknown priority `{p}`")))?,
    };
    let mut envelope = Envelope::new(
        msg_type,
        nonempty(b.from).unwrap_or_else(|| "system".into()),
        b.content.unwrap_or_default(),
    );
    if let Some(id) = nonempty(b.id) {
        envelope.id = MessageId::from(id);
    }
    envelope.to = to.map(Into::into);
    envelope.group = group.map(Into::into);
    envelope.data = b.data.filter(|d| d.get().trim() != "null");
    if envelope
        .data
        .as_ref()
        .is_some_and(|d| crate::protocol::inbound::json_depth(d.get()) > MAX_DATA_DEPTH)
    {
        return Err(bad(
            ErrorCode::InvalidJson,
            "`data` nests deeper than 64 levels (MAX_DATA_DEPTH)",
        ));
    }
    envelope.priority = priority;
    envelope.reply_to_msg_id = nonempty(b.reply_to_msg_id).map(Into::into);
    envelope.require_ack = b.require_ack;
    Ok(SendRequest {
        target,
        envelope,
        tags: b.tags,
        expires_in: b.expires_in_ms.map(std::time::Duration::from_millis),
    })
}

/// `POST /api/send`: 200 `accepted` when the hub routed the message to at least one session
/// (or a broadcast found nobody to miss), 404 `failed` with an error when the recipient user
/// is offline or the group does not exist, 400 for a bad body.
pub(crate) async fn send(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, ApiError> {
    authorized(&req, &state).await?;
    let body = match super::guard::read_body(body, state.limits.max_api_body_bytes).await {
        Ok(b) => b,
        Err(refused) => return Ok(refused),
    };
    let req = parse_send(&body)?;
    let send = SendTracked {
        target: req.target,
        envelope: req.envelope,
        options: None,
        tags: req.tags,
        expires_in: req.expires_in,
    };
    let sent = state.hub.send(send).await.map_err(hub_down)?;
    let report = &sent.route;
    if report.delivered > 0 || (sent.accepted && sent.stored_offline.is_empty()) {
        return Ok(HttpResponse::Ok().json(json!({
            "id": report.id, "status": "accepted", "delivered": report.delivered,
            "offline_users": report.offline_users, "stored_offline": sent.stored_offline,
        })));
    }
    if !sent.stored_offline.is_empty() {
        return Ok(HttpResponse::Accepted().json(json!({
            "id": report.id, "status": "stored_offline", "delivered": 0,
            "stored_offline": sent.stored_offline,
        })));
    }
    if let Some(e) = &sent.store_error {
        return Ok(HttpResponse::ServiceUnavailable().json(json!({
            "id": report.id, "status": "failed", "delivered": 0,
            "error": {"code": ErrorCode::Internal, "message": e.to_string()},
        })));
    }
    let (code, message) = if report.unknown_group {
        (ErrorCode::UnknownGroup, "no such group")
    } else if !report.offline_users.is_empty() {
        (ErrorCode::UserOffline, "recipient has no live session")
    } else {
        (
            ErrorCode::Internal,
            "no recipient session could take the message",
        )
    };
    Ok(HttpResponse::NotFound().json(json!({
        "id": report.id, "status": "failed", "delivered": 0,
        "error": {"code": code, "message": message},
    })))
}

#[derive(Deserialize)]
pub(crate) struct RecordQuery {
    #[serde(default)]
    from: Option<String>,
}

/// `GET /api/messages/{id}[?from=USER]`: the message record, 404 for an unknown id. Ids are
/// unique per sender: without `from`, an id several senders used answers 409 with the
/// senders.
pub(crate) async fn message(
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<RecordQuery>,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, ApiError> {
    authorized(&req, &state).await?;
    let id = MessageId::from(id.into_inner());
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no record for message {id}"),
        )
    };
    let key = match q.into_inner().from.filter(|f| !f.is_empty()) {
        Some(from) => MessageKey::new(from, id.clone()),
        None => {
            let mut found = state
                .hub
                .send(FindRecords { id: id.clone() })
                .await
                .map_err(hub_down)?;
            match found.len() {
                0 => return Err(not_found()),
                1 => return Ok(HttpResponse::Ok().json(found.remove(0))),
                _ => {
                    let senders: Vec<String> =
                        found.iter().map(|r| r.key.from.to_string()).collect();
                    return Ok(HttpResponse::Conflict().json(json!({
                        "error": format!("message id {id} was used by several senders; add ?from=USER"),
                        "code": "ambiguous_id",
                        "senders": senders,
                    })));
                }
            }
        }
    };
    match state.hub.send(GetRecord { key }).await.map_err(hub_down)? {
        Some(record) => Ok(HttpResponse::Ok().json(record)),
        None => Err(not_found()),
    }
}

#[derive(Deserialize)]
pub(crate) struct RecordsQuery {
    status: String,
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /api/messages?status=S[&limit=N]`: records with a status (`pending` ... `expired`),
/// or `failed` (any failure) or `retryable`, oldest first, 100 by default, 1000 at most.
pub(crate) async fn messages(
    req: HttpRequest,
    q: web::Query<RecordsQuery>,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, ApiError> {
    authorized(&req, &state).await?;
    let filter = match q.status.as_str() {
        "failed" => RecordFilter::Failed,
        "retryable" => RecordFilter::Retryable,
        other => {
            let status: MessageStatus = serde_json::from_value(serde_json::Value::from(other))
                .map_err(|_| {
                    bad(
                        ErrorCode::InvalidFrame,
                        &format!("unknown status `{other}`"),
                    )
                })?;
            RecordFilter::Status(status)
        }
    };
    let limit = q.limit.unwrap_or(100).min(1000);
    let list = state
        .hub
        .send(QueryRecords { filter, limit })
        .await
        .map_err(hub_down)?;
    Ok(HttpResponse::Ok().json(json!({"count": list.len(), "messages": list})))
}

/// `GET /api/online`.
pub(crate) async fn online(
    req: HttpRequest,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, ApiError> {
    authorized(&req, &state).await?;
    let v = state.hub.send(GetOnlineUsers).await.map_err(hub_down)?;
    Ok(HttpResponse::Ok().json(v))
}

/// `GET /api/stats`.
pub(crate) async fn stats(
    req: HttpRequest,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, ApiError> {
    authorized(&req, &state).await?;
    let v = state.hub.send(GetStats).await.map_err(hub_down)?;
    Ok(HttpResponse::Ok().json(v))
}

/// `GET /health`: liveness (the process answers) and readiness (the hub answers).
pub(crate) async fn health(state: web::Data<ServerState>) -> HttpResponse {
    match state.hub.send(GetStats).await {
        // Cluster mode without Redis: alive and serving local sessions, but not ready (a
        // load balancer should send new users elsewhere).
        Ok(stats) if stats.cluster.as_ref().is_some_and(|c| c.redis != "up") => {
            HttpResponse::ServiceUnavailable().json(json!({
                "status": "not_ready", "is_running": true, "node_id": stats.node_id,
                "reason": "Redis is unreachable: cross-node delivery is down",
                "active_connections": stats.active_connections,
                "cluster": stats.cluster,
            }))
        }
        Ok(stats) => HttpResponse::Ok().json(json!({
            "status": "ok", "is_running": true, "node_id": stats.node_id,
            "active_connections": stats.active_connections,
            "cluster": stats.cluster,
        })),
        Err(_) => HttpResponse::ServiceUnavailable()
            .json(json!({"status": "unavailable", "is_running": false})),
    }
}
