//! [`FailureClassifier`]: decides retryable vs terminal for every delivery failure, applies
//! the state machine's failure transition, and has its actions carried out (a resend
//! scheduled, a copy stored for the next connection, the handlers told).

use actix::prelude::*;

use super::messages::{ReloadPolicy, Restart};
use crate::delivery::{notify, Reliability};
use crate::delivery::{FailurePolicy, RetryPolicy, Verdict};
use crate::model::lifecycle::{self, Classified, Failure, Notice};
use crate::model::{now_ms, DeliveriesFailed, DeliveryFailed, MessageKey};

/// Classifies every delivery failure.
pub struct FailureClassifier {
    rel: Reliability,
    policy: FailurePolicy,
    retry: RetryPolicy,
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

    fn classify(&mut self, f: DeliveryFailed) {
        let class = Classified {
            retryable: self.policy.classify(f.kind) == Verdict::Retryable,
        };
        let key = MessageKey::of(&f.envelope);
        let Some(user) = f.user_id.clone() else {
            // No recipient to track (an unknown group, say): tell the handlers as it is.
            self.untracked(&f);
            return;
        };
        let event = Failure {
            user,
            client: f.client_id.clone(),
            kind: f.kind,
            detail: f.detail.clone(),
            waited: f.waited,
            attempt: f.attempt,
        };
        let now = now_ms();
        let retry = self.retry.clone();
        let stopping = self.rel.stopping();
        let actions = self.rel.records().update(&key, |r| {
            let budget = RetryPolicy {
                max_retries: r.max_retries,
                ..retry
            };
            let class = Classified {
                // While stopping, nothing is resent: in-flight deliveries go to the store.
                retryable: class.retryable && !stopping,
            };
            lifecycle::on_failure(
                r,
                &event,
                class,
                |n| budget.delay(n, &mut rand::thread_rng()),
                now,
            )
        });
        match actions {
            Some(actions) => {
                for a in &actions {
                    if let lifecycle::Action::Notify(n) = a {
                        if n.reason == crate::error::FailureKind::RetriesExhausted {
                            log::warn!("delivery failed for good {key} after retries: {}", n.kind);
                        } else {
                            log::debug!("delivery failed {key}: {}", n.kind);
                        }
                    }
                }
                self.rel.execute(&key, &f.envelope, actions);
            }
            None => self.untracked(&f),
        }
    }

    fn untracked(&self, f: &DeliveryFailed) {
        log::debug!(
            "delivery failed id={} from={}: {} ({})",
            f.envelope.id,
            f.envelope.from,
            f.kind,
            f.detail
        );
        let n = Notice {
            user: f.user_id.clone(),
            client: f.client_id.clone(),
            kind: f.kind,
            reason: f.kind,
            detail: f.detail.clone(),
            waited: f.waited,
        };
        notify(self.rel.router(), &f.envelope, &n);
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
        super::restarted(&self.rel, "failure_classifier");
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

impl Handler<ReloadPolicy> for FailureClassifier {
    type Result = ();

    fn handle(&mut self, _: ReloadPolicy, _: &mut Context<Self>) {
        let c = &self.rel.config().retry;
        self.policy = FailurePolicy::from_config(c);
        self.retry = RetryPolicy::from_config(c);
        log::info!("failure classifier: retry policy reloaded");
    }
}
