//! What the client does with each server frame: the welcome, receipts, error frames, and
//! application messages (duplicate filter, delivery to the application, acknowledgement).

use actix::prelude::*;

use super::actor::WscClient;
use super::config::AckMode;
use super::connection::Outbound;
use super::dedup::{DeliveryKey, Seen};
use super::error::SendFailure;
use super::events::{notify, Connected, FrameReceived, MessageReceived, Pong, SendFailed};
use super::frame::{
    ack_frame, parse_server_frame, IncomingMessage, Receipt, ReceiptStatus, ServerError,
    ServerFrame,
};
use crate::protocol::{ClientId, MessageId, UserId};

impl WscClient {
    pub(super) fn on_text(&mut self, text: String, ctx: &mut Context<Self>) {
        let frame = parse_server_frame(&text, !self.welcomed);
        let kind = frame.kind();
        notify(&self.events.frame, || FrameReceived { kind, text });
        match frame {
            ServerFrame::Welcome(data) => self.on_welcome(data),
            ServerFrame::Receipt(id, status) => self.on_receipt(id, status, ctx),
            ServerFrame::Pong => notify(&self.events.pong, || Pong { rtt: None }),
            ServerFrame::Error(id, error) => {
                log::warn!(
                    "server error frame user_id={} id={:?}: {error}",
                    self.config.user_id,
                    id.as_ref().map(MessageId::as_str)
                );
                self.on_receipt(id, ReceiptStatus::Failed(error), ctx);
            }
            ServerFrame::Message(message) => self.on_message(*message, ctx),
            ServerFrame::Unknown(why) => {
                log::warn!(
                    "unreadable server frame user_id={}: {why}",
                    self.config.user_id
                );
            }
        }
    }

    fn on_welcome(&mut self, data: serde_json::Value) {
        self.welcomed = true;
        self.backoff.reset();
        let str_field = |key: &str| data.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let client_id = match str_field("client_id") {
            Some(id) => ClientId::from(id),
            None => self.client_id.clone().unwrap_or_else(|| ClientId::from("")),
        };
        if !client_id.as_str().is_empty() {
            self.client_id = Some(client_id.clone());
        }
        let user_id =
            UserId::from(str_field("user_id").unwrap_or_else(|| self.config.user_id.clone()));
        let reconnected = std::mem::replace(&mut self.ever_connected, true);
        log::info!("welcomed user_id={user_id} client_id={client_id} reconnected={reconnected}");
        notify(&self.events.connected, || Connected {
            client_id,
            user_id,
            reconnected,
            welcome: data,
        });
    }

    /// A receipt or an error frame: resolves a waiting receipt, or reports a refusal.
    ///
    /// Both name a frame this session sent, so the id alone is enough. The one server error
    /// about another sender's id, an ambiguous ack (an ack without `from`, docs/DELIVERY.md),
    /// cannot arise: every ack this client sends names the sender.
    fn on_receipt(
        &mut self,
        id: Option<MessageId>,
        status: ReceiptStatus,
        ctx: &mut Context<Self>,
    ) {
        if let Some(id) = &id {
            if let Some(pending) = self.receipts.remove(id) {
                ctx.cancel_future(pending.timer);
                // The caller may have stopped waiting; nothing else needs the receipt.
                let _ = pending.reply.send(Ok(Receipt {
                    id: id.clone(),
                    status,
                }));
                return;
            }
            if let Some(join) = self.rejoins.remove(id) {
                if let ReceiptStatus::Failed(error) = status {
                    self.report_rejected(Some(id.clone()), Some(join), error);
                }
                return;
            }
        }
        if let ReceiptStatus::Failed(error) = status {
            self.report_rejected(id, None, error);
        }
    }

    fn report_rejected(
        &mut self,
        id: Option<MessageId>,
        message: Option<super::frame::OutgoingMessage>,
        error: ServerError,
    ) {
        notify(&self.events.send_failed, || SendFailed {
            id,
            message,
            reason: SendFailure::Rejected(error),
        });
    }

    fn on_message(&mut self, message: IncomingMessage, ctx: &mut Context<Self>) {
        // Ids are unique per sender: (from, id) names the message (docs/DELIVERY.md "Keys").
        let key = message.key();
        let require_ack = message.require_ack;
        match self.dedup.observe(&key) {
            Seen::Accepted => {
                log::debug!("duplicate {key} dropped (accepted before)");
                if require_ack {
                    self.send_ack(&key);
                }
                return;
            }
            Seen::Pending => {
                log::debug!("duplicate {key} dropped (still with the application)");
                return;
            }
            Seen::New => {}
        }
        let manual = self.config.ack_mode == AckMode::Manual;
        let Some(recipient) = self.events.message.clone() else {
            self.dedup.accept(&key);
            if require_ack && !manual {
                self.send_ack(&key);
            }
            return;
        };
        let fut = recipient.send(MessageReceived { message });
        ctx.spawn(
            fut.into_actor(self)
                .map(move |answer, act, _| match answer {
                    Ok(true) => {
                        if manual && require_ack {
                            return; // acked (and remembered as accepted) by Acknowledge
                        }
                        act.dedup.accept(&key);
                        if require_ack {
                            act.send_ack(&key);
                        }
                    }
                    Ok(false) => {
                        log::debug!("application refused {key}; not acknowledged");
                        act.dedup.forget(&key);
                    }
                    Err(e) => {
                        log::warn!("message handler unavailable for {key}: {e}");
                        act.dedup.forget(&key);
                    }
                }),
        );
    }

    /// Sends `{"type":"ack","id":..,"from":..}`; `false` without a connection (the server
    /// resends).
    pub(super) fn send_ack(&mut self, key: &DeliveryKey) -> bool {
        let sent = self.send_outbound(Outbound::Control(ack_frame(key)));
        if !sent {
            log::debug!("ack {key} not sent: no connection; the server will resend");
        }
        sent
    }
}
