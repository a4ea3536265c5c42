//! The WebSocket write path in one task: the upgrade's response body drains the session's
//! [`Inbox`] itself and encodes frames straight into the bytes it hands actix-http's
//! dispatcher. A delivery is a push and one wake-up of the connection's task; there is no
//! writer task and no channel between the session and the socket.
//!
//! The dispatcher polls the body only while its write buffer has room, so a peer that stops
//! reading stops the polls: what is queued then waits in the inbox (bounded in bytes: a full
//! inbox closes with 4000), and the session's heartbeat check closes a connection whose
//! queue made no progress for `write_timeout_ms` ([`OutboundQueue::stalled_for`]).
//!
//! [`OutboundQueue::stalled_for`]: crate::routing::OutboundQueue::stalled_for

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix::prelude::*;
use actix_http::body::{BodySize, MessageBody};
use actix_http::ws::{CloseReason, Codec, Message};
use bytes::{Bytes, BytesMut};
use tokio_util::codec::Encoder;

use crate::error::FailureKind;
use crate::hub::Hub;
use crate::model::{unwritten_failures, DeliveriesFailed};
use crate::protocol::{ClientId, CloseCode, UserId};
use crate::routing::{Inbox, Outgoing};

use super::writer::{WriterExit, IDLE_BATCH_SLOTS, MAX_BATCH_BYTES};
use super::{Session, WriterStopped};

/// Output buffer kept between polls; a larger one (after a burst) is freed while idle.
const IDLE_BUF_BYTES: usize = 4096;

/// The response body of an upgraded `/ws` connection.
pub(crate) struct InboxBody {
    inbox: Arc<Inbox>,
    session: Addr<Session>,
    hub: Addr<Hub>,
    client_id: ClientId,
    user_id: UserId,
    codec: Codec,
    buf: BytesMut,
    batch: Vec<Outgoing>,
    seq: u64,
    /// Set once the close frame is encoded (or the body gave up): the next poll ends it.
    exit: Option<WriterExit>,
    /// The session was told how the body ended.
    told: bool,
}

impl InboxBody {
    /// A body writing `inbox` for the session at `session`.
    pub(crate) fn new(
        inbox: Arc<Inbox>,
        session: Addr<Session>,
        hub: Addr<Hub>,
        client_id: ClientId,
        user_id: UserId,
    ) -> Self {
        InboxBody {
            inbox,
            session,
            hub,
            client_id,
            user_id,
            codec: Codec::new(),
            buf: BytesMut::new(),
            batch: Vec::new(),
            seq: 0,
            exit: None,
            told: false,
        }
    }

    fn report(&self, frames: Vec<crate::protocol::OutboundFrame>, kind: FailureKind) {
        if frames.is_empty() {
            return;
        }
        let failures = unwritten_failures(frames, kind, &self.user_id, &self.client_id);
        self.hub.do_send(DeliveriesFailed { failures });
    }

    fn tell(&mut self, exit: WriterExit) {
        if !self.told {
            self.told = true;
            // The session may be gone already (it stopped first): nothing is left to tell.
            self.session.do_send(WriterStopped(exit));
        }
    }

    fn encode(&mut self, msg: Message) -> bool {
        match self.codec.encode(msg, &mut self.buf) {
            Ok(()) => true,
            Err(e) => {
                log::error!(
                    "cannot encode a frame for client_id={}: {e}; closing the connection",
                    self.client_id
                );
                false
            }
        }
    }

    /// Takes what is queued into `buf`; `false` when encoding failed.
    fn fill(&mut self) -> bool {
        let closing = {
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
        if !self.batch.is_empty() {
            self.inbox.drained.notify_one();
        }
        let mut items = std::mem::take(&mut self.batch);
        for item in items.drain(..) {
            let ok = match item {
                Outgoing::App(frame) => {
                    self.seq += 1;
                    frame.write_ws_text(self.seq, &mut self.buf);
                    true
                }
                Outgoing::Control(text) => self.encode(Message::Text(text)),
                Outgoing::Ping => self.encode(Message::Ping(Bytes::new())),
                Outgoing::Pong(payload) => self.encode(Message::Pong(payload)),
                Outgoing::Binary(data) => self.encode(Message::Binary(data)),
            };
            if !ok {
                return false;
            }
        }
        if items.capacity() <= IDLE_BATCH_SLOTS {
            self.batch = items;
        }
        if self.buf.is_empty() {
            if let Some(c) = closing {
                let reason = CloseReason {
                    code: c.code.into(),
                    description: Some(c.reason).filter(|r| !r.is_empty()),
                };
                if !self.encode(Message::Close(Some(reason))) {
                    return false;
                }
                self.exit = Some(WriterExit::Closed);
            }
        }
        true
    }

    /// The connection is going away with frames unwritten: they are failures.
    fn abandon(&mut self) {
        let queued = {
            let mut st = self.inbox.lock();
            if st.closing.is_none() {
                st.closing = Some(crate::routing::Closing {
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

impl MessageBody for InboxBody {
    type Error = std::io::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if let Some(exit) = this.exit {
            this.tell(exit);
            return Poll::Ready(None);
        }
        // Registered before the queue is looked at: a push after the look wakes this task.
        this.inbox.register_writer(cx.waker());
        if !this.fill() {
            this.abandon();
            this.exit = Some(WriterExit::SocketClosed);
            this.tell(WriterExit::SocketClosed);
            return Poll::Ready(Some(Err(std::io::Error::other("frame encoding failed"))));
        }
        if !this.buf.is_empty() {
            return Poll::Ready(Some(Ok(this.buf.split().freeze())));
        }
        if let Some(exit) = this.exit {
            this.tell(exit);
            return Poll::Ready(None);
        }
        if this.buf.capacity() > IDLE_BUF_BYTES {
            this.buf = BytesMut::new();
        }
        Poll::Pending
    }
}

impl Drop for InboxBody {
    fn drop(&mut self) {
        if self.exit.is_none() {
            // Dropped before its close frame: the connection went away under it.
            self.abandon();
            self.tell(WriterExit::SocketClosed);
        }
    }
}
