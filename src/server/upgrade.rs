//! WebSocket upgrades taken below actix-web: actix-http's upgrade hook hands every HTTP/1.1
//! upgrade request to [`serve`] with the connection itself. `/ws` (and `/echo` when
//! mounted) are admitted with the same checks as actix-web's route (`ws.rs`); the 101 is
//! written here, and the socket goes to the session ([`Session::new_raw`]), which reads and
//! writes it from its own task. actix-http's dispatcher, its 16 KiB of buffers and actix-ws
//! are then out of the connection's path.
//!
//! Any other upgrade request gets a JSON 404 (`not_found`): under [`super::WscHttpServer`]
//! the upgrade hook sees every upgrade, whatever its path.

use std::fmt;
use std::net::SocketAddr;

use actix::prelude::*;
use actix_codec::Framed;
use actix_http::body::{BodySize, MessageBody};
use actix_http::h1::{self, Message};
use actix_http::{ConnectionType, Request, Response};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use futures_util::SinkExt;

use super::{error_response, ws, ServerState};
use crate::session::{RawIo, Session};

/// An upgrade the hook could not serve (never returned today: every failure is answered on
/// the connection and logged; the type satisfies actix-http's bounds).
#[derive(Debug)]
pub struct UpgradeError(String);

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<UpgradeError> for Response<actix_http::body::BoxBody> {
    fn from(e: UpgradeError) -> Self {
        Response::with_body(StatusCode::INTERNAL_SERVER_ERROR, e.0).map_into_boxed_body()
    }
}

/// Serves one upgrade request on its connection.
pub(crate) async fn serve<T: RawIo>(
    state: &ServerState,
    echo_route: bool,
    req: Request,
    mut framed: Framed<T, h1::Codec>,
) -> Result<(), UpgradeError> {
    let head = req.head();
    let echo = match head.uri.path() {
        "/ws" => false,
        "/echo" if echo_route => true,
        path => {
            log::warn!("upgrade refused (404): no WebSocket endpoint at {path}");
            let msg = format!("no WebSocket endpoint at `{path}` (connect to /ws)");
            respond(
                &mut framed,
                error_response(StatusCode::NOT_FOUND, "not_found", &msg),
            )
            .await;
            return Ok(());
        }
    };
    let peer: Option<SocketAddr> = req.peer_addr();
    let admitted = match ws::admit(state, head, peer, echo).await {
        Ok(a) => a,
        Err(refusal) => {
            respond(&mut framed, refusal).await;
            return Ok(());
        }
    };
    let ctx = Context::<Session>::new();
    let (info, connected) = match ws::accept(state, head, &admitted, &ctx).await {
        Ok(r) => r,
        Err(refusal) => {
            respond(&mut framed, refusal).await;
            return Ok(());
        }
    };
    let switching = match actix_http::ws::handshake_response(head).message_body(()) {
        Ok(res) => res,
        Err(e) => {
            ws::forget(state, info, &connected, &format!("no 101 response: {e}"));
            return Ok(());
        }
    };
    if let Err(e) = framed
        .send(Message::Item((switching, BodySize::None)))
        .await
    {
        ws::forget(
            state,
            info,
            &connected,
            &format!("writing the 101 failed: {e}"),
        );
        return Ok(());
    }
    // What the client sent right after its request (its first frames) is in the read
    // buffer; the write buffer is empty after the send.
    let parts = framed.into_parts();
    let session = Session::new_raw(
        info,
        connected,
        state.hub.clone(),
        Box::new(parts.io),
        parts.read_buf,
    );
    ctx.run(admitted.session(session));
    Ok(())
}

/// Writes `res` (a refusal: status and JSON body) and closes the connection.
async fn respond<T: RawIo>(framed: &mut Framed<T, h1::Codec>, res: HttpResponse) {
    let res: Response<_> = res.into();
    let (mut head, body) = res.into_parts();
    let body = match actix_http::body::to_bytes(body).await {
        Ok(b) => b,
        Err(e) => {
            log::error!("cannot render the refusal's body: {e}");
            bytes::Bytes::new()
        }
    };
    head.head_mut().set_connection_type(ConnectionType::Close);
    let size = BodySize::Sized(body.len() as u64);
    debug_assert_eq!(body.size(), size);
    let sent = async {
        framed.feed(Message::Item((head, size))).await?;
        framed.feed(Message::Chunk(Some(body))).await?;
        // actix-codec's `Framed::close` shuts the socket down without writing its buffer:
        // the flush comes first.
        framed.send(Message::Chunk(None)).await?;
        SinkExt::<Message<(Response<()>, BodySize)>>::close(framed).await
    };
    if let Err(e) = sent.await {
        log::info!("the refusal of an upgrade was not delivered: {e}");
    }
}
