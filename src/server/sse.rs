//! The SSE transport (`GET /sse`, `POST /sse/{token}`, `DELETE /sse/{token}`) for networks
//! that block WebSockets. An SSE session is a [`Session`] actor like any other (online,
//! p2p/group/broadcast, ACK, offline store, heartbeat, close codes); only its byte sink
//! differs. See the README's "SSE transport" section for the wire details.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix::prelude::*;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode as WsCloseCode, CloseReason, Message as WsMessage, ProtocolError};
use bytes::Bytes;
use bytestring::ByteString;
use futures_util::StreamExt;
use rand::Rng;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::{error_response, ServerState};
use crate::protocol::ClientId;
use crate::session::{Session, SseIo, SseSink, SseStream};

/// How long a finished SSE stream stays resumable with `Last-Event-ID`.
pub const SSE_RESUME_WINDOW: Duration = Duration::from_secs(120);
/// Frames a client may have POSTed and the session not yet read.
const INBOUND_FRAMES: usize = 256;
/// Events between the writer and the HTTP response body.
const OUTBOUND_EVENTS: usize = 64;
/// The `retry:` hint for `EventSource`, in milliseconds.
const RETRY_MS: u64 = 2000;

struct Entry {
    tx: mpsc::Sender<Result<WsMessage, ProtocolError>>,
    max_frame_bytes: usize,
}

/// Live SSE sessions (by their POST token) and resumable streams (by key), shared by all
/// workers.
#[derive(Default)]
pub(crate) struct SseRegistry {
    inner: Mutex<Tables>,
}

#[derive(Default)]
struct Tables {
    sessions: HashMap<String, Entry>,
    streams: HashMap<String, Arc<SseStream>>,
}

impl SseRegistry {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        t.sessions.retain(|_, e| !e.tx.is_closed());
        t.streams.retain(|_, s| {
            s.ended_at()
                .is_none_or(|at| at.elapsed() < SSE_RESUME_WINDOW)
        });
        t
    }

    fn entry(
        &self,
        token: &str,
    ) -> Option<(mpsc::Sender<Result<WsMessage, ProtocolError>>, usize)> {
        self.lock()
            .sessions
            .get(token)
            .map(|e| (e.tx.clone(), e.max_frame_bytes))
    }
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.gen::<u8>()))
        .collect()
}

#[derive(Deserialize, Default)]
struct ResumeQuery {
    last_event_id: Option<String>,
}

/// `KEY-N` from the `Last-Event-ID` header or the `last_event_id` query parameter.
fn last_event_id(req: &HttpRequest) -> Option<(String, u64)> {
    let raw = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            web::Query::<ResumeQuery>::from_query(req.query_string())
                .ok()
                .and_then(|q| q.into_inner().last_event_id)
        })?;
    let (key, n) = raw.rsplit_once('-')?;
    Some((key.to_owned(), n.parse().ok()?))
}

/// `GET /sse`: identity and authentication exactly as `/ws`; answers an event stream.
pub(crate) async fn open(
    req: HttpRequest,
    state: web::Data<ServerState>,
) -> Result<HttpResponse, actix_web::Error> {
    // A browser page opens an event stream as it opens a WebSocket: the same origin rule.
    if let Some(refused) = super::guard::check_origin(req.head(), &state) {
        return Ok(refused);
    }
    let request = match super::ws::connect_request(req.head(), req.peer_addr()) {
        Ok(r) => r,
        Err(e) => return Ok(super::ws::auth_response(&e)),
    };
    let asked_client_id = request.client_id.clone();
    let identity = match state.authenticator.authenticate(request).await {
        Ok(i) => i,
        Err(e) => return Ok(super::ws::auth_response(&e)),
    };
    let registry = &state.sse;
    // Resume: the same stream (event numbering, replay ring, client id) when the id names a
    // stream of this user that is still kept.
    let mut replay = Vec::new();
    let resumed = last_event_id(&req).and_then(|(key, n)| {
        let stream = registry.lock().streams.get(&key).cloned()?;
        let same_user = stream.user_id() == identity.user_id.as_str();
        let same_client = asked_client_id
            .as_deref()
            .is_none_or(|c| c == stream.client_id());
        if !same_user || !same_client {
            log::warn!("sse resume refused: stream {key} is not this client's");
            return None;
        }
        match stream.replay_after(n) {
            Some(events) => replay = events,
            None => log::warn!(
                "sse resume of {key} after {n}: older events left the replay buffer; \
                 ACK-requested messages come back from the offline store"
            ),
        }
        Some(stream)
    });
    let stream = match resumed {
        Some(s) => s,
        None => {
            let client_id = asked_client_id
                .map(ClientId::from)
                .unwrap_or_else(ClientId::generate);
            let s = Arc::new(SseStream::new(
                random_hex(8),
                identity.user_id.to_string(),
                client_id.to_string(),
            ));
            registry
                .lock()
                .streams
                .insert(s.key().to_owned(), s.clone());
            s
        }
    };
    let ctx = Context::<Session>::new();
    let client_id = ClientId::from(stream.client_id().to_owned());
    let (info, connected) =
        match super::ws::register(&state, identity, client_id, &ctx, "sse open").await {
            Ok(r) => r,
            Err(refusal) => return Ok(refusal),
        };
    let token = random_hex(16);
    let (in_tx, in_rx) = mpsc::channel(INBOUND_FRAMES);
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(OUTBOUND_EVENTS);
    registry.lock().sessions.insert(
        token.clone(),
        Entry {
            tx: in_tx,
            max_frame_bytes: connected.config.session.max_frame_bytes,
        },
    );
    let post = format!("{}/{token}", req.path().trim_end_matches('/'));
    let hello = json!({"token": token, "post": post, "client_id": stream.client_id()});
    let mut prefix = vec![Bytes::from(format!(
        "retry: {RETRY_MS}\nevent: session\ndata: {hello}\n\n"
    ))];
    prefix.extend(replay);
    let session = Session::new_sse(
        info,
        connected,
        state.hub.clone(),
        SseIo {
            inbound: in_rx,
            sink: SseSink::new(stream, out_tx),
        },
    );
    ctx.run(session);
    let body = futures_util::stream::iter(prefix)
        .chain(futures_util::stream::poll_fn(move |cx| {
            out_rx.poll_recv(cx)
        }))
        .map(Ok::<_, Infallible>);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body))
}

fn gone(token: &str) -> HttpResponse {
    error_response(
        StatusCode::NOT_FOUND,
        "unknown_session",
        &format!("no live SSE session for token {token}"),
    )
}

/// `POST /sse/{token}`: one JSON frame from the SSE client, read by its session exactly as
/// a WebSocket text frame. 202 once queued; answers come on the event stream.
pub(crate) async fn post(
    token: web::Path<String>,
    body: web::Bytes,
    state: web::Data<ServerState>,
) -> HttpResponse {
    let Some((tx, max)) = state.sse.entry(&token) else {
        return gone(&token);
    };
    let item = if body.len() > max {
        log::warn!("sse frame over {max} bytes token={token}");
        Err(ProtocolError::Overflow)
    } else {
        match ByteString::try_from(body) {
            Ok(text) => Ok(WsMessage::Text(text)),
            Err(_) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    "body: the frame is not UTF-8 text",
                )
            }
        }
    };
    let too_large = item.is_err();
    match tx.try_send(item) {
        Ok(()) if too_large => error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &format!("body: frame over {max} bytes; the session is closed with 1009"),
        ),
        Ok(()) => HttpResponse::Accepted().json(json!({"status": "queued"})),
        Err(mpsc::error::TrySendError::Full(_)) => {
            log::warn!("sse inbound full token={token}");
            error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                &format!("session has {INBOUND_FRAMES} unread frames; retry later"),
            )
        }
        Err(mpsc::error::TrySendError::Closed(_)) => gone(&token),
    }
}

/// `DELETE /sse/{token}`: the client closes its session (as a WebSocket close 1000).
pub(crate) async fn close(token: web::Path<String>, state: web::Data<ServerState>) -> HttpResponse {
    let Some((tx, _)) = state.sse.entry(&token) else {
        return gone(&token);
    };
    let reason = CloseReason {
        code: WsCloseCode::Normal,
        description: None,
    };
    match tx.try_send(Ok(WsMessage::Close(Some(reason)))) {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "closing"})),
        Err(mpsc::error::TrySendError::Full(_)) => error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "session inbox full; retry the close",
        ),
        Err(mpsc::error::TrySendError::Closed(_)) => gone(&token),
    }
}
