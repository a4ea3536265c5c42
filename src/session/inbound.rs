//! The session's inbound side: rate limit, parsing, routing its client's messages, group
//! operations, fragmented messages.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use actix_ws::Item;
use bytes::BytesMut;

use super::{Fragments, Session};
use crate::delivery::AckOutcome;
use crate::error::{FrameError, GroupError};
use crate::handlers::MessageReceived;
use crate::hub::{Hub, JoinGroup, LeaveGroup, Target};
use crate::protocol::control;
use crate::protocol::{parse_inbound, CloseCode, Envelope, ErrorCode, Inbound, MessageId};

impl Session {
    /// Takes a rate-limit token; without one the frame is refused with `rate_limited`, and
    /// a session refused `limits.rate_abuse_frames` times within the window is closed with
    /// 1008.
    pub(super) fn on_data(&mut self, id: Option<MessageId>, ctx: &mut Context<Self>) -> bool {
        let now = Instant::now();
        if self.bucket.take(now) {
            return true;
        }
        let limits = &self.config.limits;
        let window = std::time::Duration::from_millis(limits.rate_abuse_window_ms);
        if self.abuse.refused(now, window, limits.rate_abuse_frames) {
            log::warn!(
                "rate limit abuse client_id={} user_id={}: closing with 1008",
                self.info.client_id,
                self.info.user_id
            );
            self.close(CloseCode::Policy, "rate limit exceeded", false, ctx);
            return false;
        }
        let err = FrameError::new(ErrorCode::RateLimited, "too many frames; slow down").with_id(id);
        self.send_error(&err, ctx);
        false
    }

    pub(super) fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        if self.echo {
            return self.echo_text(text, ctx);
        }
        let parsed = parse_inbound(text);
        let id = match &parsed {
            Ok(Inbound::Message(m)) => m.id.clone(),
            Ok(Inbound::Join { id, .. } | Inbound::Leave { id, .. }) => id.clone(),
            Ok(_) => None,
            Err(e) => e.id.clone(),
        };
        // Acks and pings keep the connection healthy: they never cost a token.
        let free = matches!(
            parsed,
            Ok(Inbound::Ack { .. } | Inbound::Ping | Inbound::Pong)
        );
        if !free && !self.on_data(id, ctx) {
            return;
        }
        let inbound = match parsed {
            Ok(i) => i,
            Err(e) => return self.send_error(&e, ctx),
        };
        match inbound {
            Inbound::Ping => self.send_control(control::pong(), ctx),
            Inbound::Pong => {}
            Inbound::Join { id, group } => {
                let msg = JoinGroup {
                    client_id: self.info.client_id.clone(),
                    group,
                };
                self.group_op(msg, id, ctx);
            }
            Inbound::Leave { id, group } => {
                let msg = LeaveGroup {
                    client_id: self.info.client_id.clone(),
                    group,
                };
                self.group_op(msg, id, ctx);
            }
            Inbound::Ack { id, from } => {
                match self.rel.ack(&self.info.user_id, &id, from.as_ref()) {
                    AckOutcome::Confirmed(key) => log::debug!(
                        "ack {key} user_id={} client_id={}",
                        self.info.user_id,
                        self.info.client_id
                    ),
                    AckOutcome::Ignored => log::debug!(
                        "ignored ack id={id} client_id={} (not awaited)",
                        self.info.client_id
                    ),
                    AckOutcome::Ambiguous(senders) => {
                        let names: Vec<&str> = senders.iter().map(|u| u.as_str()).collect();
                        let err = FrameError::new(
                            ErrorCode::InvalidFrame,
                            format!(
                                "ambiguous ack: messages with id `{id}` from {} await your ack; add `from`",
                                names.join(", ")
                            ),
                        )
                        .with_id(Some(id));
                        self.send_error(&err, ctx);
                    }
                }
            }
            Inbound::Message(m) => {
                let envelope = Envelope::from_client(m, self.info.user_id.clone());
                self.on_message(envelope, ctx);
            }
        }
    }

    fn group_op<M>(&mut self, msg: M, id: Option<MessageId>, ctx: &mut Context<Self>)
    where
        M: actix::Message<Result = Result<bool, GroupError>> + Send + 'static,
        Hub: Handler<M>,
    {
        let fut = self.hub.send(msg);
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| match res {
            Ok(Ok(_)) => act.send_control(control::receipt_accepted(id.as_ref()), ctx),
            Ok(Err(e)) => {
                let code = match e {
                    GroupError::TooManyGroups(_) | GroupError::GroupFull(_) => ErrorCode::Forbidden,
                    GroupError::UnknownSession(_) | GroupError::EmptyName => {
                        ErrorCode::InvalidFrame
                    }
                };
                let err = FrameError::new(code, e.to_string()).with_id(id);
                act.send_error(&err, ctx);
            }
            Err(e) => {
                log::error!("hub unavailable for a group operation: {e}");
                let err = FrameError::new(ErrorCode::Internal, "hub unavailable").with_id(id);
                act.send_error(&err, ctx);
            }
        }));
    }

    fn on_message(&mut self, envelope: Envelope, ctx: &mut Context<Self>) {
        let counters = self.router.counters();
        crate::hub::Counters::add(&counters.messages_received, 1);
        counters.metrics.frame_in(envelope.msg_type);
        let envelope = Arc::new(envelope);
        log::debug!(
            "message id={} from client_id={} to={:?} group={:?}",
            envelope.id,
            self.info.client_id,
            envelope.to.as_ref().map(|u| u.as_str()),
            envelope.group.as_ref().map(|g| g.as_str())
        );
        if self.router.wants_message_received() {
            let ev = MessageReceived {
                client_id: self.info.client_id.clone(),
                envelope: envelope.clone(),
            };
            crate::hub::publish(&mut self.router.subscribers().message_received, &ev);
        }
        let (target, exclude) = match (&envelope.to, &envelope.group) {
            (Some(u), _) => (Target::User(u.clone()), None),
            (None, Some(g)) => (Target::Group(g.clone()), Some(&self.info.client_id)),
            (None, None) => return,
        };
        let track = envelope.require_ack.then(|| self.rel.default_options(true));
        let sent = self
            .rel
            .send(&target, envelope.clone(), exclude, track, Vec::new());
        let report = sent.report;
        if let Some(durable) = sent.durable {
            // Offline recipients: the receipt waits until the message is durable.
            let delivered = report.delivered > 0;
            ctx.spawn(durable.into_actor(self).map(move |res, act, ctx| {
                if envelope.require_ack {
                    let receipt = if res.is_ok() || delivered {
                        control::receipt_accepted(Some(&envelope.id))
                    } else {
                        control::receipt_failed(
                            Some(&envelope.id),
                            ErrorCode::Internal,
                            "the offline store failed",
                        )
                    };
                    act.send_control(receipt, ctx);
                }
            }));
            return;
        }
        let accepted = sent.accepted;
        if envelope.require_ack {
            let receipt = if accepted {
                control::receipt_accepted(Some(&envelope.id))
            } else if report.unknown_group {
                control::receipt_failed(
                    Some(&envelope.id),
                    ErrorCode::UnknownGroup,
                    "no such group",
                )
            } else if !report.offline_users.is_empty() {
                control::receipt_failed(
                    Some(&envelope.id),
                    ErrorCode::UserOffline,
                    "recipient has no live session",
                )
            } else {
                control::receipt_failed(
                    Some(&envelope.id),
                    ErrorCode::Internal,
                    "recipient session could not take the message",
                )
            };
            self.send_control(receipt, ctx);
        } else if report.unknown_group {
            let err = FrameError::new(ErrorCode::UnknownGroup, "no such group")
                .with_id(Some(envelope.id.clone()));
            self.send_error(&err, ctx);
        }
    }

    pub(super) fn on_continuation(&mut self, item: Item, ctx: &mut Context<Self>) {
        let (first, text, bytes, last) = match item {
            Item::FirstText(b) => (true, true, b, false),
            Item::FirstBinary(b) => (true, false, b, false),
            Item::Continue(b) => (false, false, b, false),
            Item::Last(b) => (false, false, b, true),
        };
        if first == self.fragments.is_some() {
            return self.close(
                CloseCode::ProtocolError,
                "unexpected continuation frame",
                false,
                ctx,
            );
        }
        let frag = self.fragments.get_or_insert_with(|| Fragments {
            buf: BytesMut::new(),
            text,
        });
        if frag.buf.len() + bytes.len() > self.config.session.max_frame_bytes {
            self.fragments = None;
            return self.too_large(ctx);
        }
        frag.buf.extend_from_slice(&bytes);
        if !last {
            return;
        }
        let Some(frag) = self.fragments.take() else {
            return;
        };
        if !frag.text {
            return self.on_binary(frag.buf.freeze(), ctx);
        }
        match std::str::from_utf8(&frag.buf) {
            Ok(text) => self.on_text(text, ctx),
            Err(_) => self.close(
                CloseCode::InvalidPayload,
                "text message is not UTF-8",
                false,
                ctx,
            ),
        }
    }

    pub(super) fn on_binary(&mut self, data: bytes::Bytes, ctx: &mut Context<Self>) {
        if self.echo {
            return self.echo_binary(data, ctx);
        }
        if !self.on_data(None, ctx) {
            return;
        }
        let err = FrameError::new(
            ErrorCode::InvalidFrame,
            "binary frames are not supported: send one JSON object per text frame",
        );
        self.send_error(&err, ctx);
    }
}
