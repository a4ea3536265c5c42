//! The `/ws` upgrade: identity, authentication, hub registration, session start.

use actix::prelude::*;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{error_response, ServerState};
use crate::auth::{AuthError, ConnectRequest};
use crate::error::ConnectError;
use crate::hub::{Connect, Connected, SessionInfo};
use crate::protocol::ClientId;
use crate::session::{InboxBody, Session};

#[derive(Deserialize, Default)]
struct IdentityQuery {
    user_id: Option<String>,
    client_id: Option<String>,
    user_type: Option<String>,
    token: Option<String>,
}

fn header(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|v| !v.is_empty())
}

/// Reads identity from the query string, falling back to headers.
pub(crate) fn connect_request(req: &HttpRequest) -> Result<ConnectRequest, AuthError> {
    let q = web::Query::<IdentityQuery>::from_query(req.query_string())
        .map_err(|e| AuthError::BadRequest(format!("bad query string: {e}")))?
        .into_inner();
    let bearer =
        header(req, "authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned));
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    Ok(ConnectRequest {
        user_id: nonempty(q.user_id).or_else(|| header(req, "x-user-id")),
        client_id: nonempty(q.client_id).or_else(|| header(req, "x-client-id")),
        user_type: nonempty(q.user_type).or_else(|| header(req, "x-user-type")),
        token: nonempty(q.token).or(bearer),
        peer_addr: req.peer_addr(),
    })
}

pub(crate) fn auth_response(err: &AuthError) -> HttpResponse {
    let (status, code) = match err {
        AuthError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        AuthError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
        AuthError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
    };
    log::warn!("upgrade refused ({status}): {err}");
    error_response(status, code, &err.to_string())
}

pub(crate) async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, actix_web::Error> {
    if let Some(refused) = super::guard::check_origin(&req, &state) {
        return Ok(refused);
    }
    let request = match connect_request(&req) {
        Ok(r) => r,
        Err(e) => return Ok(auth_response(&e)),
    };
    let client_id = request.client_id.clone();
    let identity = match state.authenticator.authenticate(request).await {
        Ok(i) => i,
        Err(e) => return Ok(auth_response(&e)),
    };
    start(req, body, state, identity, client_id, false).await
}

/// The `/echo` upgrade (mounted only with [`super::WscServer::echo_route`]): an anonymous
/// session in echo mode.
pub(crate) async fn echo(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, actix_web::Error> {
    if let Some(refused) = super::guard::check_origin(&req, &state) {
        return Ok(refused);
    }
    let client_id = ClientId::generate();
    let identity = crate::auth::Identity {
        user_id: format!("echo-{client_id}").into(),
        user_type: crate::protocol::UserType::Customer,
        role: None,
        metadata: Default::default(),
    };
    start(
        req,
        body,
        state,
        identity,
        Some(client_id.to_string()),
        true,
    )
    .await
}

/// Checks the limits that apply before the handshake, registers with the hub and starts the
/// session.
async fn start(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ServerState>,
    identity: crate::auth::Identity,
    client_id: Option<String>,
    echo: bool,
) -> Result<HttpResponse, actix_web::Error> {
    // The handshake is checked before the hub is asked, and the body is left untouched
    // until the hub accepted: a refusal's JSON body only reaches the client then.
    actix_http::ws::handshake(req.head())?;
    let ctx = Context::<Session>::new();
    let client_id = client_id
        .map(ClientId::from)
        .unwrap_or_else(ClientId::generate);
    let (info, connected) = match register(&state, identity, client_id, &ctx, "upgrade").await {
        Ok(r) => r,
        Err(refusal) => return Ok(refusal),
    };
    let (response, _unused_sender, stream) = match actix_ws::handle(&req, body) {
        Ok(parts) => parts,
        Err(e) => {
            // Unreachable after the handshake check above; the hub must still forget it.
            state.hub.do_send(crate::hub::Disconnect {
                client_id: info.client_id,
                conn: connected.conn,
                user_id: info.user_id,
                reason: crate::model::DisconnectReason::ConnectionLost,
                undelivered: Vec::new(),
                still_flushing: false,
            });
            return Err(e);
        }
    };
    // actix-ws's body (a channel its `Session` feeds) is replaced by one that drains the
    // session's inbox from the connection's own task; its sender is dropped unused.
    let body = InboxBody::new(
        connected.inbox.clone(),
        ctx.address(),
        state.hub.clone(),
        info.client_id.clone(),
        info.user_id.clone(),
    );
    let response = response.set_body(body).map_into_boxed_body();
    let session = Session::new(info, connected, state.hub.clone(), stream);
    ctx.run(if echo { session.echo() } else { session });
    Ok(response)
}

/// The HTTP answer to a session the hub refused, the same for `/ws` and `/sse`.
pub(crate) fn refused(e: ConnectError, what: &str) -> HttpResponse {
    log::warn!("{what} refused: {e}");
    let (status, code) = match e {
        ConnectError::ClientIdInUse(_) => (StatusCode::CONFLICT, "client_id_in_use"),
        ConnectError::TooManyConnections(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "too_many_connections")
        }
        ConnectError::TooManySessions(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_sessions"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    error_response(status, code, &e.to_string())
}

/// Registers a new session with the hub (for `/ws` and `/sse`): its info and the hub's
/// answer, or the HTTP refusal to send.
pub(crate) async fn register(
    state: &ServerState,
    identity: crate::auth::Identity,
    client_id: ClientId,
    ctx: &Context<Session>,
    what: &str,
) -> Result<(SessionInfo, Connected), HttpResponse> {
    let info = SessionInfo {
        client_id,
        user_id: identity.user_id,
        user_type: identity.user_type,
        role: identity.role,
        conn: 0,
        connected_at: std::time::SystemTime::now(),
        metadata: identity.metadata,
    };
    let connect = Connect {
        info: info.clone(),
        addr: ctx.address(),
    };
    match state.hub.send(connect).await {
        Ok(Ok(c)) => Ok((info, c)),
        Ok(Err(e)) => Err(refused(e, what)),
        Err(e) => {
            log::error!("hub unavailable at {what}: {e}");
            Err(error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "hub unavailable",
            ))
        }
    }
}
