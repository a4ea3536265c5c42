//! The connection task: one per connection attempt. It dials, then owns the socket: reads
//! frames and reports them to the client actor (in order, waiting for the actor's mailbox),
//! writes what the actor hands it in batches, answers server pings, pings the server, and
//! ends the connection when the server is silent for too long.
//!
//! The socket never leaves this function (its type, awc's `Framed`, is not nameable without
//! another dependency), so the writes below are macros rather than helper functions.

use std::time::Duration;

use actix::prelude::*;
use actix::WeakAddr;
use awc::ws::{CloseCode as WsCloseCode, CloseReason, Frame, Message as WsMessage};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::actor::WscClient;
use super::dial::{classify, DialRequest};
use super::error::DialError;
use super::frame::OutgoingMessage;
use crate::protocol::{CloseCode, MessageId};

/// What the actor hands the connection.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// An application frame from the send queue: counted, reported when written, given back
    /// when it could not be.
    Frame {
        id: MessageId,
        text: String,
        message: OutgoingMessage,
    },
    /// A client-generated control frame (ack, group rejoin): not counted.
    Control(String),
    /// Write a 1000 close frame after everything before it, then wait for the server's.
    Close,
}

/// Timings the task enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timings {
    pub(crate) ping_interval: Duration,
    pub(crate) server_timeout: Duration,
    pub(crate) close_timeout: Duration,
}

/// How a connection ended.
#[derive(Debug)]
pub(crate) struct Ending {
    /// The server's close code and reason, when it sent a close frame.
    pub(crate) close: Option<(CloseCode, String)>,
    /// What the client saw.
    pub(crate) cause: String,
    /// Application frames handed to the connection and never written, in order.
    pub(crate) unwritten: Vec<OutgoingMessage>,
}

/// What the task reports.
#[derive(Debug)]
pub(crate) enum ConnEventKind {
    /// The attempt's outcome; frames follow only after `Ok`.
    Dialed(Result<(), DialError>),
    /// A text frame.
    Text(String),
    /// The server pinged (answered already).
    Ping,
    /// A WebSocket pong, with the time since the last client ping.
    Pong(Option<Duration>),
    /// These application frames were written and flushed.
    Written(Vec<MessageId>),
    /// The connection is over; nothing follows.
    Ended(Ending),
}

/// A report from connection number `gen`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct ConnEvent {
    pub(crate) gen: u64,
    pub(crate) kind: ConnEventKind,
}

/// Dials and, once upgraded, serves the connection until it ends.
pub(crate) async fn run(
    req: DialRequest,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    client: WeakAddr<WscClient>,
    gen: u64,
    timings: Timings,
) {
    // Reports in order, waiting when the actor's mailbox is full (backpressure on reads).
    let report = |kind: ConnEventKind| {
        let client = client.upgrade();
        async move {
            match client {
                Some(addr) => addr.send(ConnEvent { gen, kind }).await.is_ok(),
                None => false,
            }
        }
    };

    let mut socket = match tokio::time::timeout(req.timeout, req.build().connect()).await {
        Ok(Ok((_response, socket))) => socket,
        Ok(Err(e)) => {
            report(ConnEventKind::Dialed(Err(classify(e)))).await;
            return;
        }
        Err(_) => {
            report(ConnEventKind::Dialed(Err(DialError::Timeout))).await;
            return;
        }
    };
    if !report(ConnEventKind::Dialed(Ok(()))).await {
        return;
    }

    // Flushes the socket's write buffer, bounded by the server timeout (a peer that stops
    // reading cannot hold the task forever).
    macro_rules! flush {
        () => {
            match tokio::time::timeout(
                timings.server_timeout,
                std::future::poll_fn(|cx| Pin::new(&mut socket).flush::<WsMessage>(cx)),
            )
            .await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("write failed: {e}")),
                Err(_) => Err("write made no progress".to_owned()),
            }
        };
    }
    macro_rules! write_now {
        ($msg:expr) => {
            match Pin::new(&mut socket).write($msg) {
                Ok(()) => flush!(),
                Err(e) => Err(format!("cannot encode frame: {e}")),
            }
        };
    }

    let mut unwritten: Vec<OutgoingMessage> = Vec::new();
    let mut last_seen = Instant::now();
    let mut last_ping: Option<Instant> = None;
    let mut close_deadline: Option<Instant> = None;
    let mut pings = tokio::time::interval_at(
        Instant::now() + timings.ping_interval,
        timings.ping_interval,
    );
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let (close, cause) = loop {
        let silence = last_seen + timings.server_timeout;
        let deadline = close_deadline.map_or(silence, |d| d.min(silence));
        tokio::select! {
            item = socket.next() => {
                let frame = match item {
                    None => break (None, "connection closed without a close frame".to_owned()),
                    Some(Err(e)) => break (None, format!("protocol error: {e}")),
                    Some(Ok(frame)) => frame,
                };
                last_seen = Instant::now();
                let kind = match frame {
                    Frame::Text(bytes) => match String::from_utf8(bytes.to_vec()) {
                        Ok(text) => ConnEventKind::Text(text),
                        Err(_) => break (None, "text frame is not utf-8".to_owned()),
                    },
                    Frame::Ping(payload) => {
                        if let Err(e) = write_now!(WsMessage::Pong(payload)) {
                            break (None, e);
                        }
                        ConnEventKind::Ping
                    }
                    Frame::Pong(_) => ConnEventKind::Pong(last_ping.take().map(|t| t.elapsed())),
                    Frame::Close(reason) => {
                        if close_deadline.is_none() {
                            // Answer the close (RFC 6455 5.5.1); the connection is over anyway.
                            let _ = write_now!(WsMessage::Close(reason.clone()));
                        }
                        let close = reason.map(|r| {
                            (CloseCode::from_code(u16::from(r.code)), r.description.unwrap_or_default())
                        });
                        break (close, "closed by the server".to_owned());
                    }
                    Frame::Binary(_) | Frame::Continuation(_) => {
                        log::debug!("client ignores a binary or continuation frame");
                        continue;
                    }
                };
                if !report(kind).await {
                    break (None, "client stopped".to_owned());
                }
            }
            out = rx.recv(), if close_deadline.is_none() => {
                let Some(first) = out else {
                    break (None, "client released the connection".to_owned());
                };
                // Take what is ready, up to a full write buffer, and flush once.
                let mut written = Vec::new();
                let mut batch = Vec::new();
                let mut next = Some(first);
                let mut failed = None;
                while let Some(item) = next.take() {
                    let (msg, close_now) = match &item {
                        Outbound::Frame { text, .. } => (WsMessage::Text(text.clone().into()), false),
                        Outbound::Control(text) => (WsMessage::Text(text.clone().into()), false),
                        Outbound::Close => (
                            WsMessage::Close(Some(CloseReason::from(WsCloseCode::Normal))),
                            true,
                        ),
                    };
                    if let Err(e) = Pin::new(&mut socket).write(msg) {
                        failed = Some(format!("cannot encode frame: {e}"));
                    }
                    batch.push(item);
                    if close_now {
                        close_deadline = Some(Instant::now() + timings.close_timeout);
                        break;
                    }
                    if failed.is_some() || socket.is_write_buf_full() {
                        break;
                    }
                    next = rx.try_recv().ok();
                }
                let flushed = match failed {
                    Some(e) => Err(e),
                    None => flush!(),
                };
                for item in batch {
                    if let Outbound::Frame { id, message, .. } = item {
                        if flushed.is_ok() {
                            written.push(id);
                        } else {
                            // Unknown whether it left: give it back (receivers drop duplicates
                            // by id).
                            unwritten.push(message);
                        }
                    }
                }
                if !written.is_empty() && !report(ConnEventKind::Written(written)).await {
                    break (None, "client stopped".to_owned());
                }
                if let Err(e) = flushed {
                    break (None, e);
                }
            }
            _ = pings.tick(), if close_deadline.is_none() => {
                if let Err(e) = write_now!(WsMessage::Ping(Bytes::new())) {
                    break (None, e);
                }
                last_ping = Some(Instant::now());
            }
            _ = tokio::time::sleep_until(deadline) => {
                if close_deadline.is_some_and(|d| Instant::now() >= d) {
                    break (None, "no answer to the close frame".to_owned());
                }
                break (
                    None,
                    format!("server silent for {} ms", timings.server_timeout.as_millis()),
                );
            }
        }
    };

    rx.close();
    while let Ok(item) = rx.try_recv() {
        if let Outbound::Frame { message, .. } = item {
            unwritten.push(message);
        }
    }
    log::debug!("connection gen={gen} ended: {cause}");
    report(ConnEventKind::Ended(Ending {
        close,
        cause,
        unwritten,
    }))
    .await;
}
