//! [`RetryActor`]: waits the backoff and re-sends the same frame.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::messages::{Restart, RetryFailed, ScheduleRetry};
use super::records::{now_ms, MessageStatus};
use super::Reliability;
use crate::hub::Target;
use crate::protocol::{MessageId, UserId};

/// Runs scheduled retries.
pub struct RetryActor {
    rel: Reliability,
}

impl RetryActor {
    pub(crate) fn new(rel: Reliability) -> Self {
        RetryActor { rel }
    }

    fn fire(&mut self, id: MessageId, user: UserId) {
        let Some(record) = self.rel.records().get(&id) else {
            return;
        };
        if record.status != MessageStatus::Retrying || !record.retry_users.contains(&user) {
            return; // acknowledged or settled meanwhile
        }
        if record.expires_at_ms.is_some_and(|e| e <= now_ms()) {
            // Too late to send again: the classifier settles it as expired.
            let envelope = Arc::new(record.envelope);
            let f = super::failure(
                crate::error::FailureKind::Expired,
                &envelope,
                Some(user),
                None,
                "expired before the retry",
            );
            self.rel.report(vec![f]);
            return;
        }
        self.rel.records().update(&id, |r| {
            r.retry_users.retain(|u| *u != user);
            r.next_retry_at_ms = None;
        });
        log::debug!(
            "resending id={id} to user_id={user} (attempt {})",
            record.attempts.len() + 1
        );
        self.rel
            .attempt(&id, &Target::User(user), Arc::new(record.envelope), None);
    }

    fn schedule(&mut self, id: MessageId, user: UserId, delay: Duration, ctx: &mut Context<Self>) {
        ctx.run_later(delay, move |act, _| act.fire(id, user));
    }
}

impl Actor for RetryActor {
    type Context = Context<Self>;

    /// Re-arms every retry the records hold (after a restart, overdue ones run at once).
    fn started(&mut self, ctx: &mut Context<Self>) {
        let now = now_ms();
        let due = self.rel.records().scheduled_retries();
        if !due.is_empty() {
            log::info!(
                "retry actor: re-arming {} scheduled retries from the records",
                due.len()
            );
        }
        for (id, at) in due {
            let users = self
                .rel
                .records()
                .get(&id)
                .map(|r| r.retry_users)
                .unwrap_or_default();
            for user in users {
                self.schedule(
                    id.clone(),
                    user,
                    Duration::from_millis(at.saturating_sub(now)),
                    ctx,
                );
            }
        }
    }
}

impl Supervised for RetryActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        log::warn!("retry actor restarting");
    }
}

impl Handler<ScheduleRetry> for RetryActor {
    type Result = ();

    fn handle(&mut self, msg: ScheduleRetry, ctx: &mut Context<Self>) {
        self.schedule(msg.id, msg.user_id, msg.delay, ctx);
    }
}

impl Handler<RetryFailed> for RetryActor {
    type Result = bool;

    fn handle(&mut self, msg: RetryFailed, _: &mut Context<Self>) -> bool {
        let Some(record) = self.rel.records().get(&msg.id) else {
            return false;
        };
        if !record.status.is_failure() || record.status == MessageStatus::Expired {
            return false;
        }
        self.rel.records().update(&msg.id, |r| {
            r.retry_count = 0;
            r.failure_reason = None;
            r.error = None;
        });
        let target = match &record.target {
            super::RecordTarget::User(u) => Target::User(u.clone()),
            super::RecordTarget::Group(g) => Target::Group(g.clone()),
            super::RecordTarget::Broadcast => Target::Broadcast,
        };
        log::info!("retrying failed message id={}", msg.id);
        self.rel
            .attempt(&msg.id, &target, Arc::new(record.envelope), None);
        true
    }
}

impl Handler<Restart> for RetryActor {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
