//! [`RetryActor`]: owns the scheduled resends (one queue, one timer) and re-sends the same
//! frame (same `id`) when one is due.

use actix::prelude::*;

use super::messages::{Restart, RetryFailed};
use crate::delivery::{DeadlineAdded, EarliestTimer, Reliability};
use crate::error::FailureKind;
use crate::model::{failure, lifecycle, now_ms};

/// Runs scheduled retries.
pub struct RetryActor {
    rel: Reliability,
    timer: EarliestTimer,
}

impl RetryActor {
    pub(crate) fn new(rel: Reliability) -> Self {
        RetryActor {
            rel,
            timer: EarliestTimer::default(),
        }
    }

    fn fire(&mut self, ctx: &mut Context<Self>) {
        self.timer.fired();
        let now = now_ms();
        for (key, user) in self.rel.retry_deadlines().pop_due(now) {
            let Some((run, expired, envelope)) = self.rel.records().update(&key, |r| {
                let expired = r.expired(now);
                let run = !expired && lifecycle::retry_due(r, &user);
                (run, expired, r.envelope.clone())
            }) else {
                continue;
            };
            if expired {
                // Too late to send again: the classifier settles it as expired.
                let f = failure(
                    FailureKind::Expired,
                    &envelope,
                    Some(user),
                    None,
                    "expired before the retry",
                );
                self.rel.report(vec![f]);
                continue;
            }
            if run {
                self.rel.resend(&key, &user);
            }
        }
        self.rearm(ctx);
    }

    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let next = self.rel.retry_deadlines().arm_next();
        self.timer.arm(next, ctx, Self::fire);
    }
}

impl Actor for RetryActor {
    type Context = Context<Self>;

    /// Arms for the earliest scheduled resend (the queue survives a restart).
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.rel
            .retry_deadlines()
            .set_waker(ctx.address().recipient());
        self.timer.reset();
        self.rearm(ctx);
    }
}

impl Supervised for RetryActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        log::warn!("retry actor restarting");
        self.timer.reset();
        super::restarted(&self.rel, "retry_actor");
    }
}

impl Handler<DeadlineAdded> for RetryActor {
    type Result = ();

    fn handle(&mut self, _: DeadlineAdded, ctx: &mut Context<Self>) {
        self.rearm(ctx);
    }
}

impl Handler<RetryFailed> for RetryActor {
    type Result = bool;

    fn handle(&mut self, msg: RetryFailed, _: &mut Context<Self>) -> bool {
        let now = now_ms();
        let Some(Some((actions, envelope))) = self.rel.records().update(&msg.key, |r| {
            lifecycle::on_manual_retry(r, now).map(|a| (a, r.envelope.clone()))
        }) else {
            return false;
        };
        log::info!("retrying failed message {}", msg.key);
        self.rel.execute(&msg.key, &envelope, actions);
        true
    }
}

impl Handler<Restart> for RetryActor {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
