//! The WebSocket write path shared by both carriers of a session's bytes (the `/ws` response
//! body, [`super::InboxBody`], and the raw upgraded connection, [`super::WsConn`]): takes
//! what the session's [`Inbox`] holds and encodes it as server frames straight into an
//! output buffer. Application frames get their per-session `seq_no` here.

use std::sync::Arc;

use actix::prelude::*;
use actix_http::ws::{CloseReason, Codec, Message};
use bytes::{Bytes, BytesMut};
use tokio_util::codec::Encoder;

use crate::error::FailureKind;
use crate::hub::Hub;
use crate::model::{unwritten_failures, DeliveriesFailed};
use crate::protocol::{ClientId, CloseCode, OutboundFrame, UserId};
use crate::routing::{Closing, Inbox, Outgoing};

use super::writer::{IDLE_BATCH_SLOTS, MAX_BATCH_BYTES};

/// What a [`Outbound::fill`] left in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filled {
    /// Frames (or nothing, when the queue is empty); the connection stays open.
    Open,
    /// The close frame was encoded last: nothing follows it.
    Closed,
}

/// A frame could not be encoded (a control frame over 125 bytes, say): the connection is
/// closed, and what is queued is reported as failed.
#[derive(Debug)]
pub(crate) struct EncodeFailed;

/// A session's inbox seen from the socket side.
pub(crate) struct Outbound {
    inbox: Arc<Inbox>,
    hub: Addr<Hub>,
    client_id: ClientId,
    user_id: UserId,
    codec: Codec,
    batch: Vec<Outgoing>,
    seq: u64,
}

impl Outbound {
    /// The write side of `inbox`, for the session of `client_id`.
    pub(crate) fn new(
        inbox: Arc<Inbox>,
        hub: Addr<Hub>,
        client_id: ClientId,
        user_id: UserId,
    ) -> Self {
        Outbound {
            inbox,
            hub,
            client_id,
            user_id,
            codec: Codec::new(),
            batch: Vec::new(),
            seq: 0,
        }
    }

    /// The inbox, to register the writer's waker with.
    pub(crate) fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// The session's client id (for log lines).
    pub(crate) fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    fn report(&self, frames: Vec<OutboundFrame>, kind: FailureKind) {
        if frames.is_empty() {
            return;
        }
        let failures = unwritten_failures(frames, kind, &self.user_id, &self.client_id);
        // `do_send` to the hub fails only once the hub has stopped, and then nothing is
        // left to hand failures to: say so.
        if self.hub.connected() {
            self.hub.do_send(DeliveriesFailed { failures });
        } else {
            log::error!(
                "{} unwritten frames of client_id={} not reported: the hub has stopped",
                failures.len(),
                self.client_id
            );
        }
    }

    fn encode(&mut self, msg: Message, out: &mut BytesMut) -> Result<(), EncodeFailed> {
        self.codec.encode(msg, out).map_err(|e| {
            log::error!(
                "cannot encode a frame for client_id={}: {e}; closing the connection",
                self.client_id
            );
            EncodeFailed
        })
    }

    /// Appends one batch of what is queued (at most about [`MAX_BATCH_BYTES`]) to `out`, and
    /// the close frame once the queue is empty and the session is closing. A close without
    /// flush drops what is queued first (reported to the hub as failures).
    pub(crate) fn fill(&mut self, out: &mut BytesMut) -> Result<Filled, EncodeFailed> {
        let closing: Option<Closing> = {
            let mut st = self.inbox.lock();
            let closing = st.closing.clone();
            match &closing {
                Some(c) if !c.flush => {
                    let dropped = st.drain_app();
                    drop(st);
                    let cause = if c.code == CloseCode::SlowConsumer {
                        FailureKind::QueueFull
                    } else {
                        FailureKind::ConnectionError
                    };
                    self.report(dropped, cause);
                }
                _ => st.queue.pop_batch(MAX_BATCH_BYTES, &mut self.batch),
            }
            closing
        };
        let took = !self.batch.is_empty();
        if took {
            self.inbox.drained.notify_one();
        }
        let mut items = std::mem::take(&mut self.batch);
        for item in items.drain(..) {
            match item {
                Outgoing::App(frame) => {
                    self.seq += 1;
                    frame.write_ws_text(self.seq, out);
                }
                Outgoing::Control(text) => self.encode(Message::Text(text), out)?,
                Outgoing::Ping => self.encode(Message::Ping(Bytes::new()), out)?,
                Outgoing::Pong(payload) => self.encode(Message::Pong(payload), out)?,
                Outgoing::Binary(data) => self.encode(Message::Binary(data), out)?,
            }
        }
        if items.capacity() <= IDLE_BATCH_SLOTS {
            self.batch = items;
        }
        match closing {
            Some(c) if !took => {
                let reason = CloseReason {
                    code: c.code.into(),
                    description: Some(c.reason).filter(|r| !r.is_empty()),
                };
                self.encode(Message::Close(Some(reason)), out)?;
                Ok(Filled::Closed)
            }
            _ => Ok(Filled::Open),
        }
    }

    /// The connection is going away with frames unwritten: the inbox closes (if it was not
    /// closing already) and what it holds is reported as failed.
    pub(crate) fn abandon(&mut self) {
        let queued = {
            let mut st = self.inbox.lock();
            if st.closing.is_none() {
                st.closing = Some(Closing {
                    code: CloseCode::Internal,
                    reason: "socket failed".into(),
                    flush: false,
                });
            }
            st.drain_app()
        };
        self.report(queued, FailureKind::ConnectionError);
    }
}
