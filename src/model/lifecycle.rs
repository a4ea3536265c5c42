//! The one state machine of a message's life, as plain functions: each takes the record and
//! an event, changes the record, and returns the actions the caller must carry out (arm an
//! ack deadline, schedule a resend, store a copy for the user's next connection, remove a
//! stored copy, tell the handlers). No runtime, no I/O: the delivery layer and the
//! supervision actors call these and carry out what they return.
//!
//! ```text
//!             routed (queued to a session)
//!  pending ---------------------------------> awaiting_ack --ack--> acked
//!     |  \  routed, no ack asked                  |   ^               ^
//!     |   +-------------------> delivered        |   | resend        | ack (late, or
//!     |                                           |   |               |  of a stored copy)
//!     |  no session / queue full / lost / timeout v   |               |
//!     +-----------------------------------> failure --+-> retrying ---+
//!                                             |  retryable, budget left
//!                                             | final
//!                                             v
//!                           storable? ---yes--> stored --next connection--> awaiting_ack
//!                                  \---no---> failed
//! ```

use std::time::Duration;

use std::sync::Arc;

use super::failure::{failure, DeliveryFailed};
use super::record::{now_ms, Attempt, DeliveryState, MessageRecord, MessageStatus, UserDelivery};
use crate::error::FailureKind;
use crate::protocol::{ClientId, Envelope, UserId};

/// Formats epoch milliseconds as RFC 3339.
pub fn rfc3339_of(ms: u64) -> String {
    crate::protocol::time::rfc3339_of_ms(ms)
}

/// What the caller must do after a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fail `attempt` to `user` unless acked by `due_ms` (epoch ms).
    AwaitAck {
        /// The recipient.
        user: UserId,
        /// The attempt the deadline belongs to.
        attempt: u32,
        /// The deadline.
        due_ms: u64,
    },
    /// Resend to `user` at `due_ms`.
    ScheduleRetry {
        /// The recipient.
        user: UserId,
        /// 1 for the first resend to this user.
        retry: u32,
        /// When.
        due_ms: u64,
    },
    /// Resend to `user` now (a manual retry).
    Resend {
        /// The recipient.
        user: UserId,
    },
    /// Route to the record's whole target again (a manual retry of a message no recipient
    /// was recorded for).
    ResendTarget,
    /// Keep a copy in `user`'s offline store for the next connection.
    Store {
        /// The recipient.
        user: UserId,
        /// The user had left: if a session of the user is back by the time the copy is
        /// written, resend at once (it may have connected before the copy was there).
        redeliver: bool,
    },
    /// Remove `user`'s stored copy (delivered and acknowledged).
    Unstore {
        /// The recipient.
        user: UserId,
    },
    /// Tell the failure handlers (a final failure, or a miss worth reporting).
    Notify(Notice),
}

/// A failure the handlers hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The recipient user, when one is known.
    pub user: Option<UserId>,
    /// The session involved, when one is.
    pub client: Option<ClientId>,
    /// The underlying kind.
    pub kind: FailureKind,
    /// The reason given (`retries_exhausted` after the last retry, `expired`, or `kind`).
    pub reason: FailureKind,
    /// Description.
    pub detail: String,
    /// How long the attempt waited (timeouts).
    pub waited: Option<Duration>,
}

/// A failure event for one recipient, as the classifier sees it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The recipient.
    pub user: UserId,
    /// The session involved.
    pub client: Option<ClientId>,
    /// What happened.
    pub kind: FailureKind,
    /// Description.
    pub detail: String,
    /// How long the attempt waited.
    pub waited: Option<Duration>,
    /// The attempt it belongs to (`None`: whatever the user's current attempt is).
    pub attempt: Option<u32>,
}

impl Failure {
    /// The failure as the classifier receives it.
    pub fn into_message(self, envelope: &Arc<Envelope>) -> DeliveryFailed {
        let mut d = failure(
            self.kind,
            envelope,
            Some(self.user),
            self.client,
            self.detail,
        );
        d.waited = self.waited;
        d.attempt = self.attempt;
        d
    }
}

/// What the classifier decided about a failure's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified {
    /// The failure kind may be retried.
    pub retryable: bool,
}

/// One routing's outcome, per user.
#[derive(Debug, Default, Clone)]
pub struct Routed {
    /// Users with at least one session that took the frame (sorted, unique), with the
    /// session when the target was one client.
    pub reached: Vec<(UserId, Option<ClientId>)>,
    /// Users named by the target with no session.
    pub offline: Vec<UserId>,
    /// Sessions that could not take the frame (user not reached by another session).
    pub failed: Vec<(UserId, ClientId, FailureKind)>,
    /// The target group does not exist.
    pub unknown_group: bool,
    /// Offline users get a stored copy now (the message is storable and a user's absence
    /// is not retried); otherwise their absence is a failure to classify.
    pub store_offline_now: bool,
}

fn start_attempt(r: &mut MessageRecord, user: Option<&UserId>, now: u64) -> u32 {
    let number = r.attempts.len() as u32 + 1;
    r.attempts.push(Attempt {
        number,
        user_id: user.cloned(),
        started_at: String::new(),
        duration_ms: 0,
        error: None,
        success: false,
        started_ms: now,
        ended: false,
    });
    number
}

/// Puts `d` in `awaiting_ack` for attempt `n`, due `timeout_ms` from `now`.
fn await_ack(d: &mut UserDelivery, n: u32, now: u64, timeout_ms: u64) -> Action {
    d.attempt = n;
    d.state = DeliveryState::AwaitingAck;
    d.due_ms = Some(now + timeout_ms);
    Action::AwaitAck {
        user: d.user_id.clone(),
        attempt: n,
        due_ms: now + timeout_ms,
    }
}

/// Ends attempt `n` once none of its recipients is still awaiting; a failure marks it.
fn settle_attempt(r: &mut MessageRecord, n: u32, error: Option<FailureKind>, now: u64) {
    if n == 0 {
        return;
    }
    let open = r
        .recipients
        .iter()
        .any(|d| d.attempt == n && d.state == DeliveryState::AwaitingAck);
    if let Some(a) = r.attempts.get_mut(n as usize - 1) {
        if a.ended {
            return;
        }
        if error.is_some() {
            a.error = error;
        }
        if !open {
            a.ended = true;
            a.duration_ms = now.saturating_sub(a.started_ms);
            a.success = a.error.is_none();
        }
    }
}

/// Recomputes the record's status from its recipients.
pub fn refresh_status(r: &mut MessageRecord) {
    r.stored_offline = r.recipients.iter().any(|d| d.stored);
    let mut retrying = false;
    let mut awaiting = false;
    let mut pending = false;
    let mut bad = false;
    for d in &r.recipients {
        match d.state {
            DeliveryState::Retrying => retrying = true,
            DeliveryState::AwaitingAck => awaiting = true,
            DeliveryState::Pending => pending = true,
            DeliveryState::Stored | DeliveryState::Failed => bad = true,
            DeliveryState::Acked | DeliveryState::Delivered => {}
        }
    }
    r.status = if retrying {
        MessageStatus::Retrying
    } else if pending {
        MessageStatus::Sending
    } else if awaiting {
        MessageStatus::Delivered
    } else if bad || (r.recipients.is_empty() && r.failed_status.is_some()) {
        r.failed_status.unwrap_or(MessageStatus::Failed)
    } else if r.require_ack && !r.recipients.is_empty() {
        MessageStatus::Acked
    } else {
        MessageStatus::Delivered
    };
}

/// A routing of the record's message (the first send, a resend to one user, or a manual
/// retry) reached the sessions in `routed`. `attempt_user` is the user a resend went to.
pub fn on_routed(
    r: &mut MessageRecord,
    routed: &Routed,
    attempt_user: Option<&UserId>,
    now: u64,
) -> (Vec<Action>, Vec<Failure>) {
    let n = start_attempt(r, attempt_user, now);
    let mut actions = Vec::new();
    for (user, client) in &routed.reached {
        let require_ack = r.require_ack;
        let timeout = r.ack_timeout_ms;
        let d = r.recipient_entry(user, client.as_ref());
        d.attempt = n;
        if require_ack {
            actions.push(await_ack(d, n, now, timeout));
        } else {
            d.state = DeliveryState::Delivered;
            d.due_ms = None;
        }
    }
    let mut failures = Vec::new();
    for user in &routed.offline {
        let d = r.recipient_entry(user, None);
        d.attempt = n;
        if routed.store_offline_now {
            d.state = DeliveryState::Stored;
            d.last_error = Some(FailureKind::UserOffline);
            if !d.stored {
                d.stored = true;
                actions.push(Action::Store {
                    user: user.clone(),
                    redeliver: false,
                });
            }
            r.failure_reason = Some(FailureKind::UserOffline);
            r.failed_status = Some(MessageStatus::UserOffline);
            actions.push(Action::Notify(Notice {
                user: Some(user.clone()),
                client: None,
                kind: FailureKind::UserOffline,
                reason: FailureKind::UserOffline,
                detail: "recipient has no live session; stored for the next connection".into(),
                waited: None,
            }));
            continue;
        }
        d.state = DeliveryState::Pending;
        failures.push(Failure {
            user: user.clone(),
            client: None,
            kind: FailureKind::UserOffline,
            detail: "recipient has no live session".into(),
            waited: None,
            attempt: Some(n),
        });
    }
    for (user, client, kind) in &routed.failed {
        let d = r.recipient_entry(user, None);
        d.attempt = n;
        d.state = DeliveryState::Pending;
        let detail = match kind {
            FailureKind::QueueFull => "session outbound queue overflowed",
            _ => "session closed before the frame was queued",
        };
        failures.push(Failure {
            user: user.clone(),
            client: Some(client.clone()),
            kind: *kind,
            detail: detail.into(),
            waited: None,
            attempt: Some(n),
        });
    }
    if routed.unknown_group {
        r.failure_reason = Some(FailureKind::Validation);
        r.error = Some("no such group".into());
        r.failed_status = Some(MessageStatus::Failed);
        if let Some(a) = r.attempts.last_mut() {
            a.error = Some(FailureKind::Validation);
        }
        actions.push(Action::Notify(Notice {
            user: None,
            client: None,
            kind: FailureKind::Validation,
            reason: FailureKind::Validation,
            detail: "no such group".into(),
            waited: None,
        }));
    }
    if routed.reached.is_empty() || !r.require_ack {
        // Nothing to wait for in this attempt: its outcome is known now.
        let offline_now = (!routed.offline.is_empty() && routed.store_offline_now)
            .then_some(FailureKind::UserOffline);
        let err = failures
            .first()
            .map(|f| f.kind)
            .or(offline_now)
            .or(r.attempts.last().and_then(|a| a.error));
        if let Some(a) = r.attempts.last_mut() {
            a.ended = true;
            a.error = err;
            a.success = err.is_none();
        }
    }
    refresh_status(r);
    (actions, failures)
}

/// A failure for one recipient: retry while the policy and the budget allow, otherwise keep
/// a copy for the user's next connection (when storable) or give up; tell the handlers about
/// final outcomes. A failure for a recipient that is not being delivered (already acked,
/// stored, or a stale attempt) changes nothing and is reported as it is.
pub fn on_failure(
    r: &mut MessageRecord,
    f: &Failure,
    class: Classified,
    retry_delay: impl FnOnce(u32) -> Duration,
    now: u64,
) -> Vec<Action> {
    let wants_retry = r.require_ack || r.retry_on_failure;
    let expired = r.expired(now);
    let max_retries = r.max_retries;
    let storable = r.storable;
    let Some(d) = r.recipient_mut(&f.user) else {
        return vec![untracked(f)];
    };
    let current = match d.state {
        DeliveryState::AwaitingAck | DeliveryState::Pending | DeliveryState::Delivered => {
            f.attempt.is_none_or(|a| a == d.attempt)
        }
        // A resend that found the user gone: the retry actor reports it for the due attempt.
        DeliveryState::Retrying => f.kind == FailureKind::Expired,
        DeliveryState::Acked | DeliveryState::Stored | DeliveryState::Failed => false,
    };
    if !current || (d.state == DeliveryState::Delivered && !wants_retry && !storable) {
        return vec![untracked(f)];
    }
    let attempt = d.attempt;
    d.last_error = Some(f.kind);
    d.due_ms = None;
    if class.retryable && wants_retry && !expired && d.retries < max_retries {
        d.retries += 1;
        let retry = d.retries;
        let due = now + retry_delay(retry).as_millis() as u64;
        d.state = DeliveryState::Retrying;
        d.due_ms = Some(due);
        r.retry_count += 1;
        r.failure_reason = Some(f.kind);
        r.error = Some(f.detail.clone());
        settle_attempt(r, attempt, Some(f.kind), now);
        refresh_status(r);
        return vec![Action::ScheduleRetry {
            user: f.user.clone(),
            retry,
            due_ms: due,
        }];
    }
    let reason = if expired || f.kind == FailureKind::Expired {
        FailureKind::Expired
    } else if class.retryable && wants_retry && d.retries >= max_retries && max_retries > 0 {
        FailureKind::RetriesExhausted
    } else {
        f.kind
    };
    let mut actions = Vec::new();
    if storable && reason != FailureKind::Expired {
        d.state = DeliveryState::Stored;
        if !d.stored {
            d.stored = true;
            actions.push(Action::Store {
                user: f.user.clone(),
                redeliver: false,
            });
        }
    } else {
        d.state = DeliveryState::Failed;
    }
    r.failure_reason = Some(reason);
    r.error = Some(f.detail.clone());
    r.failed_status = Some(MessageStatus::of_failure(reason, f.kind));
    settle_attempt(r, attempt, Some(f.kind), now);
    refresh_status(r);
    actions.push(Action::Notify(Notice {
        user: Some(f.user.clone()),
        client: f.client.clone(),
        kind: f.kind,
        reason,
        detail: f.detail.clone(),
        waited: f.waited,
    }));
    actions
}

fn untracked(f: &Failure) -> Action {
    Action::Notify(Notice {
        user: Some(f.user.clone()),
        client: f.client.clone(),
        kind: f.kind,
        reason: f.kind,
        detail: f.detail.clone(),
        waited: f.waited,
    })
}

/// `user` acknowledged. Returns `None` when nothing of this user was awaited (a duplicate,
/// late or unknown ack), otherwise the actions (removing a stored copy).
pub fn on_ack(r: &mut MessageRecord, user: &UserId, now: u64) -> Option<Vec<Action>> {
    let d = r.recipient_mut(user)?;
    match d.state {
        DeliveryState::AwaitingAck
        | DeliveryState::Retrying
        | DeliveryState::Stored
        | DeliveryState::Failed => {}
        DeliveryState::Acked | DeliveryState::Delivered | DeliveryState::Pending => return None,
    }
    let attempt = d.attempt;
    d.state = DeliveryState::Acked;
    d.due_ms = None;
    let mut actions = Vec::new();
    if d.stored {
        d.stored = false;
        actions.push(Action::Unstore { user: user.clone() });
    }
    settle_attempt(r, attempt, None, now);
    if r.recipients.iter().all(|d| d.state == DeliveryState::Acked) {
        r.failure_reason = None;
        r.error = None;
        r.failed_status = None;
    }
    refresh_status(r);
    Some(actions)
}

/// An ack deadline passed: a failure when that attempt is still awaited.
pub fn ack_due(
    r: &MessageRecord,
    user: &UserId,
    attempt: u32,
    waited: Duration,
) -> Option<Failure> {
    let d = r.recipient(user)?;
    (d.state == DeliveryState::AwaitingAck && d.attempt == attempt).then(|| Failure {
        user: user.clone(),
        client: None,
        kind: FailureKind::AckTimeout,
        detail: "no acknowledgement within the ack timeout".into(),
        waited: Some(waited),
        attempt: Some(attempt),
    })
}

/// A scheduled resend is due: `true` when it should run (the recipient is still retrying).
pub fn retry_due(r: &mut MessageRecord, user: &UserId) -> bool {
    match r.recipient_mut(user) {
        Some(d) if d.state == DeliveryState::Retrying => {
            d.state = DeliveryState::Pending;
            d.due_ms = None;
            true
        }
        _ => false,
    }
}

/// A stored copy's user is online again (it came back while the copy was being written):
/// `true` when it should be resent now.
pub fn redeliver_stored(r: &mut MessageRecord, user: &UserId) -> bool {
    match r.recipient_mut(user) {
        Some(d) if d.state == DeliveryState::Stored => {
            d.state = DeliveryState::Pending;
            true
        }
        _ => false,
    }
}

/// A stored copy was queued to a session of `user` (a new connection).
pub fn on_delivered_from_store(r: &mut MessageRecord, user: &UserId, now: u64) -> Vec<Action> {
    let n = start_attempt(r, Some(user), now);
    let require_ack = r.require_ack;
    let timeout = r.ack_timeout_ms;
    let d = r.recipient_entry(user, None);
    d.stored = true;
    d.attempt = n;
    let mut actions = Vec::new();
    if require_ack {
        if d.state != DeliveryState::Acked {
            actions.push(await_ack(d, n, now, timeout));
        }
    } else {
        d.state = DeliveryState::Delivered;
        d.stored = false;
        if let Some(a) = r.attempts.last_mut() {
            a.ended = true;
            a.success = true;
        }
    }
    refresh_status(r);
    actions
}

/// The session that `user` had is gone and the user has no other session: what was awaiting
/// its ack goes to the store now (a resend would find nobody).
pub fn on_user_gone(
    r: &mut MessageRecord,
    user: &UserId,
    client: Option<&ClientId>,
    now: u64,
    detail: &str,
) -> Vec<Action> {
    if r.recipient(user).map(|d| d.state) != Some(DeliveryState::AwaitingAck) {
        return Vec::new();
    }
    let f = Failure {
        user: user.clone(),
        client: None,
        kind: FailureKind::ConnectionError,
        detail: detail.into(),
        waited: None,
        attempt: None,
    };
    let f = Failure {
        client: client.cloned(),
        ..f
    };
    // Not retryable: a resend would find nobody.
    let mut actions = on_failure(
        r,
        &f,
        Classified { retryable: false },
        |_| Duration::ZERO,
        now,
    );
    for a in actions.iter_mut() {
        if let Action::Store { redeliver, .. } = a {
            *redeliver = true;
        }
    }
    actions
}

/// The server is stopping (or restarted with this record in flight): every recipient still
/// being delivered is stored for its next connection, without telling the handlers (nothing
/// failed; the delivery continues after the restart). After a restart a recipient may
/// connect while the copy is being written (its backlog read then misses it), so the copy is
/// redelivered to a recipient online once it is stored; while stopping, nobody is.
pub fn on_shutdown(r: &mut MessageRecord) -> Vec<Action> {
    let storable = r.storable;
    let mut actions = Vec::new();
    for d in r.recipients.iter_mut() {
        if !matches!(
            d.state,
            DeliveryState::AwaitingAck | DeliveryState::Retrying | DeliveryState::Pending
        ) {
            continue;
        }
        d.due_ms = None;
        if storable {
            d.state = DeliveryState::Stored;
            if !d.stored {
                d.stored = true;
                actions.push(Action::Store {
                    user: d.user_id.clone(),
                    redeliver: true,
                });
            }
        } else {
            d.state = DeliveryState::Failed;
            d.last_error = Some(FailureKind::ConnectionError);
        }
    }
    if !actions.is_empty() && r.failed_status.is_none() {
        r.failed_status = Some(MessageStatus::UserOffline);
    }
    refresh_status(r);
    actions
}

/// Storing a copy for `user` failed: the recipient is given up (the handlers hear of the
/// store error separately).
pub fn on_store_failed(r: &mut MessageRecord, user: &UserId, detail: &str) {
    if let Some(d) = r.recipient_mut(user) {
        d.stored = false;
        if d.state == DeliveryState::Stored {
            d.state = DeliveryState::Failed;
        }
    }
    r.failure_reason = Some(FailureKind::Internal);
    r.error = Some(detail.into());
    r.failed_status = Some(MessageStatus::Failed);
    refresh_status(r);
}

/// A manual retry (`retry_failed`): a fresh budget; resend to every recipient that missed
/// it, or to the whole target when no recipient was recorded. `None` when the record is not
/// a failure or has expired.
pub fn on_manual_retry(r: &mut MessageRecord, now: u64) -> Option<Vec<Action>> {
    if !r.status.is_failure() || r.status == MessageStatus::Expired || r.expired(now) {
        return None;
    }
    r.failure_reason = None;
    r.error = None;
    let mut actions = Vec::new();
    for d in r.recipients.iter_mut() {
        if matches!(d.state, DeliveryState::Failed | DeliveryState::Stored) {
            d.state = DeliveryState::Pending;
            d.retries = 0;
            actions.push(Action::Resend {
                user: d.user_id.clone(),
            });
        }
    }
    if actions.is_empty() {
        r.failed_status = None;
        actions.push(Action::ResendTarget);
    }
    refresh_status(r);
    Some(actions)
}

/// A recipient entry that the record has not seen (a stored copy of a record that was
/// purged): the record is rebuilt around it.
pub fn recipient_for(user: &UserId) -> UserDelivery {
    UserDelivery::new(user.clone(), None)
}

/// The current time, for callers that have none.
pub fn now() -> u64 {
    now_ms()
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
