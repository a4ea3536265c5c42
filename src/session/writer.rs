//! An SSE session's writer task: drains the inbox in batches into the event stream. (A
//! WebSocket session has no writer task: its response body drains the inbox, `body.rs`.)

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_ws::CloseReason;

use crate::error::FailureKind;
use crate::hub::Hub;
use crate::model::{unwritten_failures, DeliveriesFailed};
use crate::protocol::{ClientId, CloseCode, OutboundFrame, UserId};
use crate::routing::{Closing, Inbox, Outgoing};

use super::sink::{SinkClosed, SseSink};

/// Bytes taken from the queue per batch: large enough to fill a socket write, small enough
/// that a later high-priority frame does not wait behind much.
pub(crate) const MAX_BATCH_BYTES: usize = 64 * 1024;

/// Batch slots a writer keeps while it waits for work; more are freed, so a connection
/// that once took a large burst does not hold that buffer while idle.
pub(crate) const IDLE_BATCH_SLOTS: usize = 16;

/// How the writer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriterExit {
    /// It sent the close frame it was asked for.
    Closed,
    /// The connection went away under it.
    SocketClosed,
    /// A write made no progress within the write timeout.
    WriteTimeout,
}

/// Who the writer writes for.
pub(crate) struct WriterCtx {
    pub(crate) inbox: Arc<Inbox>,
    pub(crate) sink: SseSink,
    pub(crate) write_timeout: Duration,
    pub(crate) hub: Addr<Hub>,
    pub(crate) client_id: ClientId,
    pub(crate) user_id: UserId,
}

impl WriterCtx {
    fn report(&self, frames: Vec<OutboundFrame>, kind: FailureKind) {
        if frames.is_empty() {
            return;
        }
        let failures = unwritten_failures(frames, kind, &self.user_id, &self.client_id);
        self.hub.do_send(DeliveriesFailed { failures });
    }
}

async fn write_item(sink: &mut SseSink, item: Outgoing, seq: &mut u64) -> Result<(), SinkClosed> {
    match item {
        Outgoing::Control(text) => sink.text(text).await,
        Outgoing::Ping => sink.ping().await,
        Outgoing::Pong(payload) => sink.pong(&payload).await,
        Outgoing::Binary(data) => sink.binary(data).await,
        Outgoing::App(frame) => {
            *seq += 1;
            sink.text(frame.render(*seq)).await
        }
    }
}

fn unwritten(items: impl Iterator<Item = Outgoing>) -> Vec<OutboundFrame> {
    items
        .filter_map(|i| match i {
            Outgoing::App(f) => Some(f),
            _ => None,
        })
        .collect()
}

/// Runs until the session closes or the socket fails.
pub(crate) async fn run(mut w: WriterCtx) -> WriterExit {
    let mut seq = 0u64;
    // Grown on demand: an idle connection keeps the few slots its welcome needed, not 64.
    let mut batch = Vec::new();
    loop {
        let closing: Option<Closing> = {
            let mut st = w.inbox.lock();
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
                    w.report(dropped, cause);
                }
                _ => st.queue.pop_batch(MAX_BATCH_BYTES, &mut batch),
            }
            closing
        };
        if !batch.is_empty() {
            w.inbox.drained.notify_one();
        }
        if batch.is_empty() {
            match closing {
                // Boxed: the close path's future is most of the writer's size, and every
                // connection would carry it while idle.
                Some(c) => return Box::pin(send_close(w, c)).await,
                None => {
                    if batch.capacity() > IDLE_BATCH_SLOTS {
                        // A burst grew it; an idle connection does not keep that.
                        batch = Vec::new();
                    }
                    w.inbox.notify.notified().await;
                    continue;
                }
            }
        }
        let mut items = batch.drain(..);
        while let Some(item) = items.next() {
            let res =
                tokio::time::timeout(w.write_timeout, write_item(&mut w.sink, item, &mut seq))
                    .await;
            let exit = match res {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => WriterExit::SocketClosed,
                Err(_) => WriterExit::WriteTimeout,
            };
            let rest = unwritten(items);
            let kind = if exit == WriterExit::WriteTimeout {
                FailureKind::WriteTimeout
            } else {
                FailureKind::ConnectionError
            };
            w.report(rest, kind);
            let queued = {
                let mut st = w.inbox.lock();
                if st.closing.is_none() {
                    st.closing = Some(Closing {
                        code: CloseCode::Internal,
                        reason: "socket failed".into(),
                        flush: false,
                    });
                }
                st.drain_app()
            };
            w.report(queued, FailureKind::ConnectionError);
            return exit;
        }
    }
}

async fn send_close(w: WriterCtx, c: Closing) -> WriterExit {
    let reason = CloseReason {
        code: c.code.into(),
        description: Some(c.reason).filter(|r| !r.is_empty()),
    };
    match tokio::time::timeout(w.write_timeout, w.sink.close(reason)).await {
        Ok(Ok(())) => WriterExit::Closed,
        Ok(Err(_)) => WriterExit::SocketClosed,
        Err(_) => WriterExit::WriteTimeout,
    }
}
