//! [`AckTracker`]: one timer per `(message, user)` awaiting an acknowledgement.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::messages::{AckReceived, Restart, SessionLost, TrackAck};
use super::records::{now_ms, MessageStatus};
use super::Reliability;
use crate::error::FailureKind;
use crate::protocol::{ClientId, MessageId, UserId};

struct Pending {
    timer: SpawnHandle,
    client_ids: Vec<ClientId>,
    started: Instant,
}

/// Tracks deliveries that wait for an acknowledgement.
pub struct AckTracker {
    rel: Reliability,
    pending: HashMap<(MessageId, UserId), Pending>,
}

impl AckTracker {
    pub(crate) fn new(rel: Reliability) -> Self {
        AckTracker {
            rel,
            pending: HashMap::new(),
        }
    }

    fn arm(
        &mut self,
        id: MessageId,
        user: UserId,
        clients: Vec<ClientId>,
        wait: Duration,
        ctx: &mut Context<Self>,
    ) {
        let key = (id, user);
        if let Some(old) = self.pending.remove(&key) {
            ctx.cancel_future(old.timer);
        }
        let k = key.clone();
        let timer = ctx.run_later(wait, move |act, _| act.timed_out(k));
        self.pending.insert(
            key,
            Pending {
                timer,
                client_ids: clients,
                started: Instant::now(),
            },
        );
    }

    fn timed_out(&mut self, key: (MessageId, UserId)) {
        let waited = self
            .pending
            .remove(&key)
            .map(|p| p.started.elapsed())
            .unwrap_or_default();
        let (id, user) = key;
        let Some(record) = self.rel.records().get(&id) else {
            return;
        };
        if !record.pending_acks.contains(&user) {
            return; // acknowledged meanwhile
        }
        log::debug!("ack timeout id={id} user_id={user} waited={waited:?}");
        self.fail(
            &record.envelope,
            FailureKind::AckTimeout,
            user,
            None,
            Some(waited),
            "no acknowledgement within the ack timeout",
        );
    }

    fn fail(
        &self,
        envelope: &crate::protocol::Envelope,
        kind: FailureKind,
        user: UserId,
        client_id: Option<ClientId>,
        waited: Option<Duration>,
        detail: &str,
    ) {
        let mut f = super::failure(
            kind,
            &std::sync::Arc::new(envelope.clone()),
            Some(user),
            client_id,
            detail,
        );
        f.waited = waited;
        self.rel.report(vec![f]);
    }
}

impl Actor for AckTracker {
    type Context = Context<Self>;

    /// Re-arms every ack wait the records hold (after a restart, deadlines that passed fire
    /// at once).
    fn started(&mut self, ctx: &mut Context<Self>) {
        let now = now_ms();
        let waits = self.rel.records().awaiting_acks();
        if !waits.is_empty() {
            log::info!(
                "ack tracker: re-arming {} ack waits from the records",
                waits.len()
            );
        }
        for (id, user, deadline) in waits {
            let wait = Duration::from_millis(deadline.saturating_sub(now));
            self.arm(id, user, Vec::new(), wait, ctx);
        }
    }
}

impl Supervised for AckTracker {
    fn restarting(&mut self, _: &mut Context<Self>) {
        log::warn!("ack tracker restarting");
        // The old context's timers are gone; `started` re-arms from the records.
        self.pending.clear();
    }
}

impl Handler<TrackAck> for AckTracker {
    type Result = ();

    fn handle(&mut self, msg: TrackAck, ctx: &mut Context<Self>) {
        self.arm(msg.id, msg.user_id, msg.client_ids, msg.timeout, ctx);
    }
}

impl Handler<AckReceived> for AckTracker {
    type Result = ();

    fn handle(&mut self, msg: AckReceived, ctx: &mut Context<Self>) {
        let key = (msg.id, msg.user_id);
        if let Some(p) = self.pending.remove(&key) {
            ctx.cancel_future(p.timer);
        }
        let (id, user) = key;
        let confirmed = self.rel.records().update(&id, |r| {
            let Some(pos) = r.pending_acks.iter().position(|u| *u == user) else {
                return false;
            };
            if r.stored_offline {
                // Delivered and acknowledged: the stored copy for this user can go.
                if let Some(store) = self.rel.store().cloned() {
                    let (user, id) = (user.clone(), id.clone());
                    actix_rt::spawn(async move {
                        if let Err(e) = store.remove(user.clone(), vec![id.clone()]).await {
                            log::error!(
                                "cannot remove acked message id={id} of user_id={user}: {e}"
                            );
                        }
                    });
                }
            }
            r.pending_acks.remove(pos);
            r.retry_users.retain(|u| *u != user);
            if r.pending_acks.is_empty() {
                r.end_attempt(None);
                r.status = MessageStatus::Acked;
                r.ack_deadline_ms = None;
                r.next_retry_at_ms = None;
            }
            true
        });
        match confirmed {
            Some(true) => log::debug!("ack id={id} user_id={user} client_id={}", msg.client_id),
            // Duplicate, late, or unknown: harmless.
            _ => log::debug!(
                "ignored ack id={id} user_id={user} client_id={} (not awaited)",
                msg.client_id
            ),
        }
    }
}

impl Handler<SessionLost> for AckTracker {
    type Result = ();

    fn handle(&mut self, msg: SessionLost, ctx: &mut Context<Self>) {
        let lost: Vec<(MessageId, UserId)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.client_ids.contains(&msg.client_id))
            .map(|(k, _)| k.clone())
            .collect();
        for key in lost {
            if let Some(p) = self.pending.remove(&key) {
                ctx.cancel_future(p.timer);
            }
            let (id, user) = key;
            if let Some(record) = self.rel.records().get(&id) {
                if record.pending_acks.contains(&user) {
                    self.fail(
                        &record.envelope,
                        FailureKind::ConnectionError,
                        user,
                        Some(msg.client_id.clone()),
                        None,
                        "connection lost with the delivery awaiting its ack",
                    );
                }
            }
        }
    }
}

impl Handler<Restart> for AckTracker {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
