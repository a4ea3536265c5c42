//! The [`Session`] actor, one per WebSocket connection: reads and validates frames, routes
//! its client's messages, answers pings, keeps the heartbeat, and owns the close codes.
//! Writes go through its [`Inbox`] (bounded in bytes, priority ordered), drained by the
//! WebSocket's response body ([`InboxBody`]) or an SSE stream's writer task.

mod body;
mod conn;
mod echo;
mod inbound;
mod outbound;
mod rate;
mod reconfigure;
mod sink;
mod writer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_ws::{Message as WsMessage, ProtocolError};
use bytes::BytesMut;
use bytestring::ByteString;

pub use crate::routing::{
    CloseSession, Inbox, OutboundQueue, Outgoing, PushError, QueueOverflowed,
};
pub use rate::TokenBucket;
pub(crate) use reconfigure::Reconfigure;
pub use sink::{SseIo, SseSink, SseStream, SSE_REPLAY_EVENTS};

use crate::config::Config;
use crate::delivery::Reliability;
use crate::error::FailureKind;
use crate::error::FrameError;
use crate::hub::{Connected, Disconnect, Hub, SessionEnded};
use crate::model::{unwritten_failures, DeliveriesFailed, DisconnectReason, SessionInfo};
use crate::protocol::control;
use crate::protocol::{CloseCode, ErrorCode, MessageId, OutboundFrame};
use crate::routing::Router;

pub(crate) use body::InboxBody;
pub use conn::RawIo;
pub(crate) use conn::WsConn;
pub(crate) use outbound::Outbound;

#[derive(Message)]
#[rtype(result = "()")]
struct WriterStopped(writer::WriterExit);

/// What a session reads from and writes to. A WebSocket on actix-web's route: actix-ws's
/// reader, and writes through the response body ([`InboxBody`]) polled by the connection's
/// task; a raw upgraded WebSocket ([`WsConn`]): read and written from the session's own task;
/// an SSE stream: POSTed frames, and writes through a writer task.
enum Io {
    Ws(actix_ws::MessageStream),
    Raw(Box<WsConn>),
    Sse(SseIo),
}

struct Fragments {
    buf: BytesMut,
    text: bool,
}

/// One WebSocket connection.
pub struct Session {
    info: SessionInfo,
    inbox: Arc<Inbox>,
    hub: Addr<Hub>,
    router: Router,
    rel: Reliability,
    config: Arc<Config>,
    io: Option<Io>,
    last_seen: Instant,
    fragments: Option<Fragments>,
    bucket: TokenBucket,
    reason: Option<DisconnectReason>,
    undelivered: Vec<OutboundFrame>,
    closing: bool,
    deregistered: bool,
    timers: Vec<SpawnHandle>,
    echo: bool,
    abuse: rate::AbuseCounter,
    /// Writes leave through a polled response body, which has no write timeout of its own:
    /// the heartbeat check watches the queue's progress instead.
    polled_writer: bool,
}

impl Session {
    /// A session for an upgraded connection the hub accepted (`info.conn` is taken from
    /// `connected`); its frames leave through an [`InboxBody`] on `connected.inbox`.
    pub(crate) fn new(
        info: SessionInfo,
        connected: Connected,
        hub: Addr<Hub>,
        stream: actix_ws::MessageStream,
    ) -> Self {
        Self::with_io(info, connected, hub, Io::Ws(stream))
    }

    /// A session on a raw upgraded WebSocket (`server::WscHttpServer`): `io` after the 101
    /// response, `read_buf` what was read past the upgrade request.
    pub(crate) fn new_raw(
        info: SessionInfo,
        connected: Connected,
        hub: Addr<Hub>,
        io: Box<dyn RawIo>,
        read_buf: BytesMut,
    ) -> Self {
        let out = Outbound::new(
            connected.inbox.clone(),
            hub.clone(),
            info.client_id.clone(),
            info.user_id.clone(),
        );
        let max_frame = connected.config.session.max_frame_bytes;
        let conn = WsConn::new(io, read_buf, out, max_frame);
        Self::with_io(info, connected, hub, Io::Raw(Box::new(conn)))
    }

    /// A session whose client reads an SSE stream and POSTs its frames (`server::sse`).
    pub(crate) fn new_sse(
        info: SessionInfo,
        connected: Connected,
        hub: Addr<Hub>,
        io: SseIo,
    ) -> Self {
        Self::with_io(info, connected, hub, Io::Sse(io))
    }

    fn with_io(mut info: SessionInfo, connected: Connected, hub: Addr<Hub>, io: Io) -> Self {
        let now = Instant::now();
        let config = connected.config;
        let s = &config.session;
        info.conn = connected.conn;
        Session {
            bucket: TokenBucket::new(s.rate_limit_per_sec, s.rate_limit_burst, now),
            info,
            inbox: connected.inbox,
            hub,
            router: connected.router,
            rel: connected.reliability,
            io: Some(io),
            last_seen: now,
            fragments: None,
            reason: None,
            undelivered: Vec::new(),
            closing: false,
            deregistered: false,
            timers: Vec::new(),
            echo: false,
            abuse: rate::AbuseCounter::new(now),
            polled_writer: false,
            config,
        }
    }

    /// Starts closing: the inbox takes no more frames, the session leaves the routing table
    /// at once, and the writer sends the close frame (after what is queued when `flush`). The
    /// actor stays until the writer is done (bounded by `write_timeout_ms`), so the close
    /// frame is on the wire before the connection is released.
    fn close(&mut self, code: CloseCode, reason: &str, flush: bool, ctx: &mut Context<Self>) {
        if self.reason.is_none() {
            self.reason = Some(DisconnectReason::ServerClosed(code, reason.to_owned()));
        }
        if let Some(dropped) = self.inbox.close(code, reason, flush) {
            self.undelivered.extend(dropped);
        }
        if self.closing {
            return;
        }
        self.closing = true;
        self.deregister(true);
        let deadline = Duration::from_millis(self.config.session.write_timeout_ms);
        ctx.run_later(deadline, |_, ctx| ctx.stop());
    }

    /// Leaves the routing table (once), handing back what was never written.
    fn deregister(&mut self, still_flushing: bool) {
        if self.deregistered {
            if !self.undelivered.is_empty() {
                let frames = std::mem::take(&mut self.undelivered);
                let failures = unwritten_failures(
                    frames,
                    FailureKind::ConnectionError,
                    &self.info.user_id,
                    &self.info.client_id,
                );
                self.hub.do_send(DeliveriesFailed { failures });
            }
            return;
        }
        self.deregistered = true;
        self.hub.do_send(Disconnect {
            client_id: self.info.client_id.clone(),
            conn: self.info.conn,
            user_id: self.info.user_id.clone(),
            reason: self
                .reason
                .clone()
                .unwrap_or(DisconnectReason::ConnectionLost),
            undelivered: std::mem::take(&mut self.undelivered),
            still_flushing,
        });
    }

    /// The reason to report when the session ends by itself: the server's close if one was
    /// started (by the hub, an overflow, or this actor), otherwise `fallback`.
    fn end_reason(&self, fallback: DisconnectReason) -> DisconnectReason {
        match self.inbox.closing() {
            Some((code, reason)) if code != CloseCode::Normal => {
                DisconnectReason::ServerClosed(code, reason)
            }
            _ => fallback,
        }
    }

    fn send_control(&mut self, frame: ByteString, ctx: &mut Context<Self>) {
        if !self.inbox.push_control(Outgoing::Control(frame)) && !self.inbox.is_closing() {
            self.overflow(ctx);
        }
    }

    fn send_error(&mut self, err: &FrameError, ctx: &mut Context<Self>) {
        log::warn!(
            "rejected frame client_id={} user_id={} id={:?}: {err}",
            self.info.client_id,
            self.info.user_id,
            err.id.as_ref().map(MessageId::as_str)
        );
        self.send_control(control::error_frame(err), ctx);
    }

    fn overflow(&mut self, ctx: &mut Context<Self>) {
        log::warn!(
            "slow consumer client_id={} user_id={}: outbound queue over {} bytes",
            self.info.client_id,
            self.info.user_id,
            self.config.session.queue_bytes
        );
        self.close(
            CloseCode::SlowConsumer,
            "outbound queue overflow",
            false,
            ctx,
        );
    }

    fn too_large(&mut self, ctx: &mut Context<Self>) {
        let max = self.config.session.max_frame_bytes;
        let err = FrameError::new(ErrorCode::TooLarge, format!("frame over {max} bytes"));
        self.send_error(&err, ctx);
        self.close(CloseCode::TooLarge, "frame too large", true, ctx);
    }

    /// A connection whose queued frames waited `write_timeout_ms` without the socket taking
    /// any is dead for writing: what is queued fails with `write_timeout`, and it closes.
    fn check_write_progress(&mut self, ctx: &mut Context<Self>) {
        let limit = Duration::from_millis(self.config.session.write_timeout_ms);
        let stalled = self.inbox.lock().queue.stalled_for(Instant::now());
        let Some(waited) = stalled.filter(|w| *w > limit) else {
            return;
        };
        log::warn!(
            "write timeout client_id={} user_id={}: nothing written for {} ms",
            self.info.client_id,
            self.info.user_id,
            waited.as_millis()
        );
        self.reason = Some(DisconnectReason::WriteTimeout);
        if let Some(dropped) = self
            .inbox
            .close(CloseCode::Internal, "write timeout", false)
        {
            let failures = unwritten_failures(
                dropped,
                FailureKind::WriteTimeout,
                &self.info.user_id,
                &self.info.client_id,
            );
            self.hub.do_send(DeliveriesFailed { failures });
        }
        ctx.stop();
    }

    /// Closes a connection whose client went silent for `client_timeout_ms` (and, for a
    /// polled writer, one whose socket stopped taking frames).
    fn check_heartbeat(&mut self, ctx: &mut Context<Self>) {
        if self.polled_writer && !self.closing {
            self.check_write_progress(ctx);
        }
        let timeout = Duration::from_millis(self.config.session.client_timeout_ms);
        if self.last_seen.elapsed() > timeout {
            log::info!(
                "heartbeat timeout client_id={} user_id={}",
                self.info.client_id,
                self.info.user_id
            );
            self.close(CloseCode::HeartbeatTimeout, "heartbeat timeout", false, ctx);
        }
    }
}

/// Whether actix-ws refused a text frame for not being UTF-8 (it reports that as an I/O
/// error wrapping a `Utf8Error`; a frame with reserved bits set is also `InvalidData`).
fn is_utf8_error(e: &std::io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<std::str::Utf8Error>().is_some())
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(io) = self.io.take() else {
            return ctx.stop();
        };
        if self.echo {
            self.clear_for_echo();
        }
        let s = &self.config.session;
        let sink = match io {
            Io::Ws(stream) => {
                ctx.add_stream(stream.max_frame_size(s.max_frame_bytes));
                self.polled_writer = true;
                return self.arm_timers(ctx);
            }
            Io::Raw(conn) => {
                ctx.add_stream(*conn);
                self.polled_writer = true;
                return self.arm_timers(ctx);
            }
            Io::Sse(SseIo { mut inbound, sink }) => {
                ctx.add_stream(futures_util::stream::poll_fn(move |cx| {
                    inbound.poll_recv(cx)
                }));
                sink
            }
        };
        let w = writer::WriterCtx {
            inbox: self.inbox.clone(),
            sink,
            write_timeout: Duration::from_millis(s.write_timeout_ms),
            hub: self.hub.clone(),
            client_id: self.info.client_id.clone(),
            user_id: self.info.user_id.clone(),
        };
        let me = ctx.address();
        actix_rt::spawn(async move {
            let exit = writer::run(w).await;
            me.do_send(WriterStopped(exit));
        });
        self.arm_timers(ctx);
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        if let Some(dropped) = self.inbox.close(CloseCode::Normal, "", false) {
            self.undelivered.extend(dropped);
        }
        self.deregister(false);
        self.hub.do_send(SessionEnded {
            conn: self.info.conn,
        });
        Running::Stop
    }
}

impl StreamHandler<Result<WsMessage, ProtocolError>> for Session {
    fn handle(&mut self, item: Result<WsMessage, ProtocolError>, ctx: &mut Context<Self>) {
        let msg = match item {
            Ok(m) => m,
            Err(ProtocolError::Overflow) => return self.too_large(ctx),
            Err(ProtocolError::Io(e)) if is_utf8_error(&e) => {
                log::warn!("invalid text frame client_id={}: {e}", self.info.client_id);
                return self.close(
                    CloseCode::InvalidPayload,
                    "text message is not UTF-8",
                    false,
                    ctx,
                );
            }
            Err(ProtocolError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                log::warn!("protocol error client_id={}: {e}", self.info.client_id);
                return self.close(CloseCode::ProtocolError, "protocol error", false, ctx);
            }
            Err(ProtocolError::Io(e)) => {
                log::info!("connection lost client_id={}: {e}", self.info.client_id);
                if self.reason.is_none() {
                    self.reason = Some(self.end_reason(DisconnectReason::ConnectionLost));
                }
                return ctx.stop();
            }
            Err(e) => {
                log::warn!("protocol error client_id={}: {e}", self.info.client_id);
                return self.close(CloseCode::ProtocolError, "protocol error", false, ctx);
            }
        };
        self.last_seen = Instant::now();
        if self.closing {
            // Waiting for the writer to send our close frame: only the peer's close counts.
            if matches!(msg, WsMessage::Close(_)) {
                ctx.stop();
            }
            return;
        }
        match msg {
            WsMessage::Text(text) => {
                if self.fragments.is_some() {
                    return self.close(
                        CloseCode::ProtocolError,
                        "data frame inside a fragmented message",
                        false,
                        ctx,
                    );
                }
                self.on_text(&text, ctx);
            }
            WsMessage::Binary(data) => {
                if self.fragments.is_some() {
                    return self.close(
                        CloseCode::ProtocolError,
                        "data frame inside a fragmented message",
                        false,
                        ctx,
                    );
                }
                self.on_binary(data, ctx);
            }
            WsMessage::Continuation(item) => self.on_continuation(item, ctx),
            WsMessage::Ping(payload) => {
                if !self.inbox.push_control(Outgoing::Pong(payload)) && !self.inbox.is_closing() {
                    self.overflow(ctx);
                }
            }
            WsMessage::Pong(_) | WsMessage::Nop => {}
            WsMessage::Close(reason) => {
                let code = reason.as_ref().map(|r| u16::from(r.code));
                log::info!(
                    "client closed client_id={} code={code:?}",
                    self.info.client_id
                );
                if self.reason.is_none() {
                    self.reason = Some(self.end_reason(DisconnectReason::ClientClosed(code)));
                }
                self.close(CloseCode::Normal, "", false, ctx);
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        if self.reason.is_none() {
            self.reason = Some(self.end_reason(DisconnectReason::ConnectionLost));
        }
        ctx.stop();
    }
}

impl Handler<CloseSession> for Session {
    type Result = ();

    fn handle(&mut self, msg: CloseSession, ctx: &mut Context<Self>) {
        self.close(msg.code, &msg.reason, msg.flush, ctx);
    }
}

impl Handler<QueueOverflowed> for Session {
    type Result = ();

    fn handle(&mut self, _: QueueOverflowed, ctx: &mut Context<Self>) {
        self.overflow(ctx);
    }
}

impl Handler<WriterStopped> for Session {
    type Result = ();

    fn handle(&mut self, msg: WriterStopped, ctx: &mut Context<Self>) {
        if self.reason.is_none() {
            self.reason = Some(match msg.0 {
                writer::WriterExit::WriteTimeout => DisconnectReason::WriteTimeout,
                _ => self.end_reason(DisconnectReason::ConnectionLost),
            });
        }
        ctx.stop();
    }
}
