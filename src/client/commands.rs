//! The client's command handlers: state, sending (queue, receipts), groups, acks, flush,
//! close.

// Refused messages come back by value inside the error, as in actix's `SendError::Full(T)`;
// boxing them would only move the allocation to every caller.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::actor::{PendingReceipt, WscClient};
use super::connection::Outbound;
use super::dedup::DeliveryKey;
use super::error::{FlushError, ReceiptError, SendError, StopReason};
use super::frame::{OutgoingMessage, Receipt};
use super::messages::{
    Acknowledge, ClientState, Close, Flush, GetState, Join, Leave, SendMessage, SendWithReceipt,
};
use crate::protocol::MessageId;

impl WscClient {
    /// Gives a message an id when it has none.
    fn ensure_id(&mut self, message: &mut OutgoingMessage) -> MessageId {
        match &message.id {
            Some(id) if !id.as_str().is_empty() => id.clone(),
            _ => {
                let id = self.fresh_id();
                message.id = Some(id.clone());
                id
            }
        }
    }

    /// Whether [`WscClient::enqueue`] would take a frame now.
    fn would_accept(&self) -> bool {
        self.refusal().is_none()
    }

    fn refusal(&self) -> Option<fn(OutgoingMessage) -> SendError> {
        if self.state == ClientState::Closed || self.closing {
            Some(SendError::Closed)
        } else if self.outbox.len() + self.in_flight >= self.config.send_queue_capacity {
            Some(SendError::Full)
        } else {
            None
        }
    }

    /// Accepts a frame for sending: written now when connected, else queued.
    fn enqueue(&mut self, mut message: OutgoingMessage) -> Result<MessageId, SendError> {
        if let Some(refuse) = self.refusal() {
            return Err(refuse(message));
        }
        let id = self.ensure_id(&mut message);
        log::debug!(
            "send id={id} user_id={} queued={}",
            self.config.user_id,
            self.conn.is_none()
        );
        self.hand_off(message);
        Ok(id)
    }

    /// Sends a frame and waits for the receipt with the same id.
    fn with_receipt(
        &mut self,
        mut message: OutgoingMessage,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<Receipt, ReceiptError>> {
        self.ensure_id(&mut message);
        let id = match self.enqueue(message.clone()) {
            Ok(id) => id,
            Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
        };
        let (reply, rx) = oneshot::channel();
        let wait = Duration::from_millis(self.config.receipt_timeout_ms);
        let timer_id = id.clone();
        let timer = ctx.run_later(wait, move |act, _| {
            if let Some(p) = act.receipts.remove(&timer_id) {
                log::warn!("no receipt for id={timer_id} within {wait:?}");
                // The caller may have stopped waiting; nothing else needs the answer.
                let _ = p.reply.send(Err(ReceiptError::Timeout(p.message)));
            }
        });
        let returned = message.clone();
        let pending = PendingReceipt {
            message,
            reply,
            timer,
        };
        if let Some(old) = self.receipts.insert(id, pending) {
            // An id reused while its first receipt is pending: the newest send waits for the
            // receipt, and the earlier caller's wait ends with `Closed`.
            ctx.cancel_future(old.timer);
        }
        Box::pin(async move { rx.await.unwrap_or(Err(ReceiptError::Closed(returned))) })
    }
}

impl Handler<GetState> for WscClient {
    type Result = MessageResult<GetState>;

    fn handle(&mut self, _: GetState, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state)
    }
}

impl Handler<SendMessage> for WscClient {
    type Result = Result<MessageId, SendError>;

    fn handle(&mut self, msg: SendMessage, _: &mut Context<Self>) -> Self::Result {
        self.enqueue(msg.message)
    }
}

impl Handler<SendWithReceipt> for WscClient {
    type Result = ResponseFuture<Result<Receipt, ReceiptError>>;

    fn handle(&mut self, msg: SendWithReceipt, ctx: &mut Context<Self>) -> Self::Result {
        let message = msg.message.with_require_ack(true);
        self.with_receipt(message, ctx)
    }
}

impl Handler<Join> for WscClient {
    type Result = ResponseFuture<Result<Receipt, ReceiptError>>;

    fn handle(&mut self, msg: Join, ctx: &mut Context<Self>) -> Self::Result {
        // Queued like any frame: a join made while disconnected is sent on the next
        // connection (after the rejoin of the remembered groups; a repeated join is harmless).
        if self.would_accept() {
            self.groups.insert(msg.group.clone());
        }
        self.with_receipt(OutgoingMessage::join(msg.group), ctx)
    }
}

impl Handler<Leave> for WscClient {
    type Result = ResponseFuture<Result<Receipt, ReceiptError>>;

    fn handle(&mut self, msg: Leave, ctx: &mut Context<Self>) -> Self::Result {
        if self.would_accept() {
            self.groups.remove(&msg.group);
        }
        self.with_receipt(OutgoingMessage::leave(msg.group), ctx)
    }
}

impl Handler<Acknowledge> for WscClient {
    type Result = bool;

    fn handle(&mut self, msg: Acknowledge, _: &mut Context<Self>) -> bool {
        let key = DeliveryKey::new(msg.from, msg.id);
        self.dedup.accept(&key);
        self.send_ack(&key)
    }
}

impl Handler<Flush> for WscClient {
    type Result = ResponseFuture<Result<(), FlushError>>;

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        let idle = self.outbox.is_empty() && self.in_flight == 0;
        if idle || self.state == ClientState::Closed {
            let result = if idle {
                Ok(())
            } else {
                Err(FlushError::Closed)
            };
            return Box::pin(std::future::ready(result));
        }
        let (tx, rx) = oneshot::channel();
        self.flush_waiters.push(tx);
        Box::pin(async move { rx.await.unwrap_or(Err(FlushError::Closed)) })
    }
}

impl Handler<Close> for WscClient {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Close, ctx: &mut Context<Self>) -> Self::Result {
        if self.state == ClientState::Closed {
            return Box::pin(std::future::ready(()));
        }
        let (tx, rx) = oneshot::channel();
        self.close_waiters.push(tx);
        if !self.closing {
            self.closing = true;
            log::info!("closing user_id={}", self.config.user_id);
            if self.conn.is_some() {
                // After everything handed over before it; the connection's end finishes.
                self.send_outbound(Outbound::Close);
            } else if self.outbox.is_empty() {
                self.finish_close(StopReason::ClientClosed, ctx);
            } else {
                let wait = Duration::from_millis(self.config.close_timeout_ms);
                self.close_timer = Some(ctx.run_later(wait, |act, ctx| {
                    act.close_timer = None;
                    act.finish_close(StopReason::ClientClosed, ctx);
                }));
                if self.reconnect_timer.is_some() && !self.dialing {
                    // Try now rather than after the backoff: the close deadline bounds it.
                    self.dial(ctx);
                }
            }
        }
        Box::pin(async move {
            // A dropped sender means the actor stopped: closed either way.
            let _ = rx.await;
        })
    }
}
