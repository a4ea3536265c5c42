//! The `/ws` upgrade: identity, authentication, hub registration, session start. The checks
//! ([`admit`], [`accept`]) are shared by actix-web's route (here) and the raw upgrade of
//! [`super::WscHttpServer`] (`upgrade.rs`).

use std::net::SocketAddr;

use actix::prelude::*;
use actix_web::dev::RequestHead;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Deserialize;

use super::{error_response, ServerState};
use crate::auth::{AuthError, ConnectRequest, Identity};
use crate::error::ConnectError;
use crate::hub::{Connect, Connected, SessionInfo};
use crate::protocol::ClientId;
use crate::session::{InboxBody, Outbound, Session};

#[derive(Deserialize, Default)]
struct IdentityQuery {
    user_id: Option<String>,
    client_id: Option<String>,
    user_type: Option<String>,
    token: Option<String>,
}

fn header(req: &RequestHead, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|v| !v.is_empty())
}

/// Reads identity from the query string, falling back to headers.
pub(crate) fn connect_request(
    req: &RequestHead,
    peer_addr: Option<SocketAddr>,
) -> Result<ConnectRequest, AuthError> {
    let q = web::Query::<IdentityQuery>::from_query(req.uri.query().unwrap_or_default())
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
        peer_addr,
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

/// An upgrade request that passed the checks before the hub: who it is, as which client,
/// and whether it is an `/echo` session.
pub(crate) struct Admitted {
    identity: Identity,
    client_id: ClientId,
    echo: bool,
}

/// The checks of an upgrade before the hub is asked: browser origin, identity and the
/// authenticator (`/ws`), or the anonymous echo identity (`/echo`). The refusal is the HTTP
/// answer to send.
pub(crate) async fn admit(
    state: &ServerState,
    req: &RequestHead,
    peer_addr: Option<SocketAddr>,
    echo: bool,
) -> Result<Admitted, HttpResponse> {
    if let Some(refused) = super::guard::check_origin(req, state) {
        return Err(refused);
    }
    if echo {
        let client_id = ClientId::generate();
        let identity = Identity {
            user_id: format!("echo-{client_id}").into(),
            user_type: crate::protocol::UserType::Customer,
            role: None,
            metadata: Default::default(),
        };
        return Ok(Admitted {
            identity,
            client_id,
            echo,
        });
    }
    let request = connect_request(req, peer_addr).map_err(|e| auth_response(&e))?;
    let client_id = request.client_id.clone();
    let identity = state
        .authenticator
        .authenticate(request)
        .await
        .map_err(|e| auth_response(&e))?;
    Ok(Admitted {
        identity,
        client_id: client_id
            .map(ClientId::from)
            .unwrap_or_else(ClientId::generate),
        echo,
    })
}

/// Checks the WebSocket handshake headers; `Some` is the refusal: a JSON answer saying what is wrong
/// with the request (actix-http's status for it: 400, 405 or 426).
pub(crate) fn verify_handshake(req: &RequestHead) -> Option<HttpResponse> {
    let e = actix_http::ws::verify_handshake(req).err()?;
    let status = ResponseError::status_code(&e);
    log::warn!("upgrade refused ({status}): {e}");
    Some(error_response(status, "bad_handshake", &e.to_string()))
}

/// Checks the handshake, then registers the session with the hub. The handshake is checked
/// before the hub is asked, so a bad request never reaches it.
pub(crate) async fn accept(
    state: &ServerState,
    req: &RequestHead,
    admitted: &Admitted,
    ctx: &Context<Session>,
) -> Result<(SessionInfo, Connected), HttpResponse> {
    if let Some(refusal) = verify_handshake(req) {
        return Err(refusal);
    }
    register(
        state,
        admitted.identity.clone(),
        admitted.client_id.clone(),
        ctx,
        "upgrade",
    )
    .await
}

impl Admitted {
    /// The session for this upgrade (in echo mode for `/echo`).
    pub(crate) fn session(&self, session: Session) -> Session {
        if self.echo {
            session.echo()
        } else {
            session
        }
    }
}

/// The `/ws` route of an actix-web `App`.
pub(crate) async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, actix_web::Error> {
    start(req, body, state, false).await
}

/// The `/echo` route (mounted only with [`super::WscServer::echo_route`]): an anonymous
/// session in echo mode.
pub(crate) async fn echo(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, actix_web::Error> {
    start(req, body, state, true).await
}

/// Admits and registers the upgrade, then starts the session: actix-ws reads the socket,
/// and the response body drains the session's inbox.
async fn start(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ServerState>,
    echo: bool,
) -> Result<HttpResponse, actix_web::Error> {
    let admitted = match admit(&state, req.head(), req.peer_addr(), echo).await {
        Ok(a) => a,
        Err(refusal) => return Ok(refusal),
    };
    let ctx = Context::<Session>::new();
    // The body is left untouched until the hub accepted: a refusal's JSON body only
    // reaches the client then.
    let (info, connected) = match accept(&state, req.head(), &admitted, &ctx).await {
        Ok(r) => r,
        Err(refusal) => return Ok(refusal),
    };
    let (response, _unused_sender, stream) = match actix_ws::handle(&req, body) {
        Ok(parts) => parts,
        Err(e) => {
            // Unreachable after the handshake check above; the hub must still forget it.
            forget(&state, info, &connected, "the handshake failed after all");
            return Err(e);
        }
    };
    // actix-ws's body (a channel its `Session` feeds) is replaced by one that drains the
    // session's inbox from the connection's own task; its sender is dropped unused.
    let out = Outbound::new(
        connected.inbox.clone(),
        state.hub.clone(),
        info.client_id.clone(),
        info.user_id.clone(),
    );
    let response = response
        .set_body(InboxBody::new(out, ctx.address()))
        .map_into_boxed_body();
    let session = Session::new(info, connected, state.hub.clone(), stream);
    ctx.run(admitted.session(session));
    Ok(response)
}

/// A session the hub registered that will not start after all (the upgrade failed): the hub
/// forgets it, and what was already queued for it is handed back as undelivered.
pub(crate) fn forget(state: &ServerState, info: SessionInfo, connected: &Connected, why: &str) {
    log::warn!(
        "upgrade of client_id={} user_id={} abandoned: {why}",
        info.client_id,
        info.user_id
    );
    let undelivered = connected
        .inbox
        .close(crate::protocol::CloseCode::Internal, why, false)
        .unwrap_or_default();
    state.hub.do_send(crate::hub::Disconnect {
        client_id: info.client_id,
        conn: connected.conn,
        user_id: info.user_id,
        reason: crate::model::DisconnectReason::ConnectionLost,
        undelivered,
        still_flushing: false,
    });
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
