//! [`AckTracker`]: owns the ack deadlines (one queue, one timer for its earliest entry) and
//! turns a passed deadline into an `ack_timeout` failure for the classifier.

use std::time::Duration;

use actix::prelude::*;

use super::messages::Restart;
use crate::delivery::{DeadlineAdded, EarliestTimer, Reliability};
use crate::model::{lifecycle, now_ms, DeliveryFailed};

/// Watches deliveries that wait for an acknowledgement.
pub struct AckTracker {
    rel: Reliability,
    timer: EarliestTimer,
}

impl AckTracker {
    pub(crate) fn new(rel: Reliability) -> Self {
        AckTracker {
            rel,
            timer: EarliestTimer::default(),
        }
    }

    fn fire(&mut self, ctx: &mut Context<Self>) {
        self.timer.fired();
        let now = now_ms();
        let due = self.rel.ack_deadlines().pop_due(now);
        let mut failures: Vec<DeliveryFailed> = Vec::new();
        for (key, user, attempt) in due {
            // Most deadlines come due after their ack: a read, no copy of the record.
            let timed_out = self.rel.records().read(&key, |r| {
                let waited = Duration::from_millis(r.ack_timeout_ms);
                lifecycle::ack_due(r, &user, attempt, waited).map(|f| (f, r.envelope.clone()))
            });
            if let Some(Some((f, envelope))) = timed_out {
                log::debug!("ack timeout {key} user_id={user} attempt={attempt}");
                failures.push(f.into_message(&envelope));
            }
        }
        self.rel.report(failures);
        self.rearm(ctx);
    }

    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let next = self.rel.ack_deadlines().arm_next();
        self.timer.arm(next, ctx, Self::fire);
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
        self.timer.reset();
        self.rearm(ctx);
    }
}

impl Supervised for AckTracker {
    fn restarting(&mut self, _: &mut Context<Self>) {
        log::warn!("ack tracker restarting");
        self.timer.reset();
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
