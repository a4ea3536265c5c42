//! [`AckTracker`]: owns the ack deadlines (one queue, one timer for its earliest entry) and
//! turns a passed deadline into an `ack_timeout` failure for the classifier.

use std::time::Duration;

use actix::prelude::*;

use super::messages::Restart;
use crate::delivery::{DeadlineAdded, Reliability};
use crate::model::{lifecycle, now_ms, DeliveryFailed};

/// Watches deliveries that wait for an acknowledgement.
pub struct AckTracker {
    rel: Reliability,
    timer: Option<(SpawnHandle, u64)>,
}

impl AckTracker {
    pub(crate) fn new(rel: Reliability) -> Self {
        AckTracker { rel, timer: None }
    }

    fn fire(&mut self, ctx: &mut Context<Self>) {
        self.timer = None;
        let now = now_ms();
        let due = self.rel.ack_deadlines().pop_due(now);
        let mut failures: Vec<DeliveryFailed> = Vec::new();
        for (key, user, attempt) in due {
            let Some(record) = self.rel.records().get(&key) else {
                continue; // purged meanwhile
            };
            let waited = Duration::from_millis(record.ack_timeout_ms);
            if let Some(f) = lifecycle::ack_due(&record, &user, attempt, waited) {
                log::debug!("ack timeout {key} user_id={user} attempt={attempt}");
                let mut d =
                    crate::model::failure(f.kind, &record.envelope, Some(f.user), None, f.detail);
                d.waited = f.waited;
                d.attempt = f.attempt;
                failures.push(d);
            }
        }
        self.rel.report(failures);
        self.rearm(ctx);
    }

    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let Some(next) = self.rel.ack_deadlines().arm_next() else {
            if let Some((h, _)) = self.timer.take() {
                ctx.cancel_future(h);
            }
            return;
        };
        if let Some((h, at)) = self.timer {
            if at <= next {
                return;
            }
            ctx.cancel_future(h);
        }
        let wait = Duration::from_millis(next.saturating_sub(now_ms()));
        let h = ctx.run_later(wait, |act, ctx| act.fire(ctx));
        self.timer = Some((h, next));
    }
}

impl Actor for AckTracker {
    type Context = Context<Self>;

    /// Arms for the earliest deadline (after a restart the queue is still there: it lives
    /// in the delivery layer, so nothing is lost).
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.rel
            .ack_deadlines()
            .set_waker(ctx.address().recipient());
        self.timer = None;
        self.rearm(ctx);
    }
}

impl Supervised for AckTracker {
    fn restarting(&mut self, _: &mut Context<Self>) {
        log::warn!("ack tracker restarting");
        self.timer = None;
        super::restarted(&self.rel, "ack_tracker");
    }
}

impl Handler<DeadlineAdded> for AckTracker {
    type Result = ();

    fn handle(&mut self, _: DeadlineAdded, ctx: &mut Context<Self>) {
        self.rearm(ctx);
    }
}

impl Handler<Restart> for AckTracker {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
