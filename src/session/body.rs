//! The WebSocket write path of a session mounted on actix-web's `/ws` route: the upgrade's
//! response body drains the session's [`Inbox`] itself ([`Outbound`]) and hands the encoded
//! frames to actix-http's dispatcher. A delivery is a push and one wake-up of the
//! connection's task; there is no writer task and no channel between the session and the
//! socket. (The server from [`crate::server::WscHttpServer`] goes one step further and
//! drives the upgraded socket from the session itself: [`super::WsConn`].)
//!
//! The dispatcher polls the body only while its write buffer has room, so a peer that stops
//! reading stops the polls: what is queued then waits in the inbox (bounded in bytes: a full
//! inbox closes with 4000), and the session's heartbeat check closes a connection whose
//! queue made no progress for `write_timeout_ms` ([`OutboundQueue::stalled_for`]).
//!
//! [`Inbox`]: crate::routing::Inbox
//! [`OutboundQueue::stalled_for`]: crate::routing::OutboundQueue::stalled_for

use std::pin::Pin;
use std::task::{Context, Poll};

use actix::prelude::*;
use actix_http::body::{BodySize, MessageBody};
use bytes::{Bytes, BytesMut};

use super::outbound::{Filled, Outbound};
use super::writer::WriterExit;
use super::{Session, WriterStopped};

/// Output buffer kept between polls; a larger one (after a burst) is freed while idle.
const IDLE_BUF_BYTES: usize = 4096;

/// The response body of an upgraded `/ws` connection.
pub(crate) struct InboxBody {
    out: Outbound,
    session: Addr<Session>,
    buf: BytesMut,
    /// Set once the close frame is encoded (or the body gave up): the next poll ends it.
    exit: Option<WriterExit>,
    /// The session was told how the body ended.
    told: bool,
}

impl InboxBody {
    /// A body writing `out`'s inbox for the session at `session`.
    pub(crate) fn new(out: Outbound, session: Addr<Session>) -> Self {
        InboxBody {
            out,
            session,
            buf: BytesMut::new(),
            exit: None,
            told: false,
        }
    }

    fn tell(&mut self, exit: WriterExit) {
        if !self.told {
            self.told = true;
            // The session may be gone already (it stopped first): nothing is left to tell.
            self.session.do_send(WriterStopped(exit));
        }
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
        this.out.inbox().register_writer(cx.waker());
        match this.out.fill(&mut this.buf) {
            Ok(Filled::Open) => {}
            Ok(Filled::Closed) => this.exit = Some(WriterExit::Closed),
            Err(_) => {
                this.out.abandon();
                this.exit = Some(WriterExit::SocketClosed);
                this.tell(WriterExit::SocketClosed);
                return Poll::Ready(Some(Err(std::io::Error::other("frame encoding failed"))));
            }
        }
        if !this.buf.is_empty() {
            return Poll::Ready(Some(Ok(this.buf.split().freeze())));
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
            self.out.abandon();
            self.tell(WriterExit::SocketClosed);
        }
    }
}
