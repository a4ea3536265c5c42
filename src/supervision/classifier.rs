//! [`FailureClassifier`]: retry or declare final, and dispatch to the handlers.

use std::time::Duration;

use actix::prelude::*;

use super::messages::{DeliveriesFailed, DeliveryFailed, Restart, ScheduleRetry};
use super::policy::{FailurePolicy, RetryPolicy, Verdict};
use super::records::{now_ms, MessageStatus};
use super::Reliability;
use crate::error::FailureKind;
use crate::handlers::{
    ConnectionError, DeliveryTimedOut, QueueFull, SendFailed, TimeoutKind, UserOffline,
};
use crate::hub::publish;

/// Classifies every delivery failure.
pub struct FailureClassifier {
    rel: Reliability,
    policy: FailurePolicy,
    retry: RetryPolicy,
}

enum Decision {
    Retry { retry: u32, delay: Duration },
    Final { reason: FailureKind },
    Untracked,
}

impl FailureClassifier {
    pub(crate) fn new(rel: Reliability) -> Self {
        let c = &rel.config().retry;
        FailureClassifier {
            policy: FailurePolicy::from_config(c),
            retry: RetryPolicy::from_config(c),
            rel,
        }
    }

    fn decide(&self, f: &DeliveryFailed) -> Decision {
        let verdict = self.policy.classify(f.kind);
        let records = self.rel.records();
        let user = f.user_id.clone();
        let retry_policy = &self.retry;
        let decision = records.update(&f.envelope.id, |r| {
            let drives = r.status == MessageStatus::Sending
                || user.as_ref().is_some_and(|u| r.pending_acks.contains(u))
                || (r.status == MessageStatus::Retrying
                    && user.as_ref().is_some_and(|u| r.retry_users.contains(u)));
            if !drives {
                return Decision::Untracked;
            }
            r.end_attempt(Some(f.kind));
            r.failure_reason = Some(f.kind);
            r.error = Some(f.detail.clone());
            r.ack_deadline_ms = None;
            let wants_retry = r.require_ack || r.retry_on_failure;
            let expired = r.expires_at_ms.is_some_and(|e| e <= now_ms());
            let budget = RetryPolicy {
                max_retries: r.max_retries,
                ..retry_policy.clone()
            };
            if verdict == Verdict::Retryable
                && wants_retry
                && !expired
                && budget.allows(r.retry_count)
            {
                r.retry_count += 1;
                let delay = budget.delay(r.retry_count, &mut rand::thread_rng());
                r.status = MessageStatus::Retrying;
                r.next_retry_at_ms = Some(now_ms() + delay.as_millis() as u64);
                if let Some(u) = &user {
                    if !r.retry_users.contains(u) {
                        r.retry_users.push(u.clone());
                    }
                }
                return Decision::Retry {
                    retry: r.retry_count,
                    delay,
                };
            }
            let reason = if expired {
                FailureKind::Expired
            } else if verdict == Verdict::Retryable && wants_retry {
                FailureKind::RetriesExhausted
            } else {
                f.kind
            };
            if let Some(u) = &user {
                r.pending_acks.retain(|p| p != u);
                r.retry_users.retain(|p| p != u);
            }
            r.failure_reason = Some(reason);
            r.next_retry_at_ms = None;
            r.status = match (reason, f.kind) {
                (FailureKind::Expired, _) => MessageStatus::Expired,
                (_, FailureKind::AckTimeout) => MessageStatus::AckTimeout,
                (_, FailureKind::UserOffline) => MessageStatus::UserOffline,
                _ => MessageStatus::Failed,
            };
            Decision::Final { reason }
        });
        decision.unwrap_or(Decision::Untracked)
    }

    fn dispatch(&self, f: &DeliveryFailed, reason: FailureKind) {
        let recipient = match (&f.user_id, &f.envelope.group) {
            (Some(u), _) => u.to_string(),
            (None, Some(g)) => format!("group:{g}"),
            (None, None) => String::new(),
        };
        let message = f.envelope.clone();
        let mut subs = self.rel.router().subscribers();
        match f.kind {
            FailureKind::QueueFull => publish(
                &mut subs.queue_full,
                &QueueFull {
                    message: message.clone(),
                    recipient: recipient.clone(),
                    queue: if f.client_id.is_some() {
                        "session_outbound"
                    } else {
                        "offline_store"
                    },
                    error: f.detail.clone(),
                },
            ),
            FailureKind::UserOffline => {
                if let Some(u) = &f.user_id {
                    publish(
                        &mut subs.user_offline,
                        &UserOffline {
                            message: message.clone(),
                            user_id: u.clone(),
                        },
                    );
                }
            }
            FailureKind::ConnectionError => publish(
                &mut subs.connection_error,
                &ConnectionError {
                    message: message.clone(),
                    client_id: f.client_id.clone(),
                    error: f.detail.clone(),
                },
            ),
            FailureKind::AckTimeout | FailureKind::WriteTimeout => publish(
                &mut subs.timed_out,
                &DeliveryTimedOut {
                    message: message.clone(),
                    recipient: recipient.clone(),
                    timeout_kind: if f.kind == FailureKind::AckTimeout {
                        TimeoutKind::Ack
                    } else {
                        TimeoutKind::Write
                    },
                    waited: f.waited.unwrap_or_default(),
                },
            ),
            FailureKind::Validation
            | FailureKind::Permission
            | FailureKind::RetriesExhausted
            | FailureKind::Expired
            | FailureKind::Internal => {}
        }
        publish(
            &mut subs.send_failed,
            &SendFailed {
                message,
                recipient,
                reason,
                error: f.detail.clone(),
            },
        );
    }

    /// An unacknowledged message stays in (or goes to) the offline store, for the user's
    /// next connection.
    fn keep_for_next_connection(&self, f: &DeliveryFailed) {
        let Some(user) = f.user_id.clone() else {
            return;
        };
        let already = self
            .rel
            .records()
            .get(&f.envelope.id)
            .is_some_and(|r| r.stored_offline);
        if already {
            return;
        }
        let users = [user];
        if let Some(stored) = self.rel.store_offline(&users, &f.envelope) {
            let rel = self.rel.clone();
            let envelope = f.envelope.clone();
            actix_rt::spawn(async move {
                if let Err(e) = stored.await {
                    rel.report_store_error(&envelope, &users, &e);
                }
            });
        }
    }

    fn classify(&mut self, f: DeliveryFailed) {
        match self.decide(&f) {
            Decision::Retry { retry, delay } => {
                log::debug!(
                    "retry {retry} of id={} to {:?} in {delay:?} after {}",
                    f.envelope.id,
                    f.user_id.as_ref().map(|u| u.as_str()),
                    f.kind
                );
                match (self.rel.retry_actor(), f.user_id) {
                    (Some(r), Some(user_id)) => r.do_send(ScheduleRetry {
                        id: f.envelope.id.clone(),
                        user_id,
                        retry,
                        delay,
                    }),
                    _ => log::error!("retry of id={} could not be scheduled", f.envelope.id),
                }
            }
            Decision::Final { reason } => {
                if f.kind == FailureKind::AckTimeout {
                    self.keep_for_next_connection(&f);
                }
                if reason == FailureKind::RetriesExhausted {
                    log::warn!(
                        "delivery failed for good id={} after retries: {}",
                        f.envelope.id,
                        f.kind
                    );
                } else {
                    log::debug!("delivery failed id={}: {}", f.envelope.id, f.kind);
                }
                self.dispatch(&f, reason);
            }
            Decision::Untracked => {
                log::debug!(
                    "delivery failed id={}: {} ({})",
                    f.envelope.id,
                    f.kind,
                    f.detail
                );
                self.dispatch(&f, f.kind);
            }
        }
    }
}

impl Actor for FailureClassifier {
    type Context = Context<Self>;
}

impl Supervised for FailureClassifier {
    fn restarting(&mut self, _: &mut Context<Self>) {
        log::warn!("failure classifier restarting");
        let c = &self.rel.config().retry;
        self.policy = FailurePolicy::from_config(c);
        self.retry = RetryPolicy::from_config(c);
    }
}

impl Handler<DeliveryFailed> for FailureClassifier {
    type Result = ();

    fn handle(&mut self, msg: DeliveryFailed, _: &mut Context<Self>) {
        self.classify(msg);
    }
}

impl Handler<DeliveriesFailed> for FailureClassifier {
    type Result = ();

    fn handle(&mut self, msg: DeliveriesFailed, _: &mut Context<Self>) {
        for f in msg.failures {
            self.classify(f);
        }
    }
}

impl Handler<Restart> for FailureClassifier {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
