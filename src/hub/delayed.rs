//! Delayed messages (`DispatchLater`): persisted with their due time before the caller hears
//! back, sent through the one delivery path when due (after a restart too), one timer for
//! the earliest.

use std::fmt;

use actix::prelude::*;

use super::{DispatchLater, Hub};
use crate::delivery::{DeadlineQueue, EarliestTimer};
use crate::model::{now_ms, RecordTarget};
use crate::protocol::MessageId;
use crate::store::{DelayedItem, StoreError};

/// Why a delayed message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScheduleError {
    /// A `Matching` predicate cannot be persisted; resolve it to users or clients first.
    NotPersistable,
    /// Persisting it failed.
    Store(StoreError),
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::NotPersistable => {
                f.write_str("a matching-predicate target cannot be persisted for later")
            }
            ScheduleError::Store(e) => write!(f, "cannot persist the delayed message: {e}"),
        }
    }
}

impl std::error::Error for ScheduleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ScheduleError::Store(e) => Some(e),
            ScheduleError::NotPersistable => None,
        }
    }
}

/// The hub's delayed messages: a deadline queue and one timer for the earliest.
#[derive(Default)]
pub(crate) struct Delayed {
    due: DeadlineQueue<DelayedItem>,
    timer: EarliestTimer,
}

impl Delayed {
    pub(crate) fn load(&mut self, items: Vec<DelayedItem>) {
        for item in items {
            self.due.push(item.due_ms, item);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.due.len()
    }

    /// Arms one timer for the earliest due message.
    pub(crate) fn arm(&mut self, ctx: &mut Context<Hub>) {
        let next = self.due.arm_next();
        self.timer.arm(next, ctx, Hub::fire_delayed);
    }
}

/// The millisecond at which a message delayed by `delay` from now is due, rounded up: the
/// clock is read in whole milliseconds, and a due time rounded down would let the message go
/// up to a millisecond before `delay` has passed.
fn due_after(delay: std::time::Duration) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let due = now.saturating_add(delay);
    (due.as_millis() as u64).saturating_add(u64::from(due.subsec_nanos() % 1_000_000 != 0))
}

impl Hub {
    fn fire_delayed(&mut self, ctx: &mut Context<Self>) {
        self.delayed.timer.fired();
        for item in self.delayed.due.pop_due(now_ms()) {
            let key = item.key();
            log::debug!("sending delayed message {key}");
            self.dispatch(&item.target.to_target(), item.envelope, None);
            if let Some(store) = self.rel.store().cloned() {
                actix_rt::spawn(async move {
                    if let Err(e) = store.remove_delayed(key.clone()).await {
                        // It was sent; at worst it is sent again after a restart.
                        log::error!("cannot forget sent delayed message {key}: {e}");
                    }
                });
            }
        }
        self.delayed.arm(ctx);
    }
}

impl Handler<DispatchLater> for Hub {
    type Result = ResponseActFuture<Self, Result<MessageId, ScheduleError>>;

    fn handle(&mut self, msg: DispatchLater, _: &mut Context<Self>) -> Self::Result {
        let id = msg.envelope.id.clone();
        let Some(target) = RecordTarget::of(&msg.target) else {
            return Box::pin(fut::ready(Err(ScheduleError::NotPersistable)));
        };
        let item = DelayedItem {
            target,
            envelope: msg.envelope,
            due_ms: due_after(msg.delay),
        };
        let store = self.rel.store().cloned();
        Box::pin(
            async move {
                match store {
                    Some(s) => s.save_delayed(item.clone()).await.map(|()| item),
                    None => Ok(item),
                }
            }
            .into_actor(self)
            .map(move |res, hub, ctx| match res {
                Ok(item) => {
                    hub.delayed.due.push(item.due_ms, item);
                    hub.delayed.arm(ctx);
                    Ok(id)
                }
                Err(e) => Err(ScheduleError::Store(e)),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[test]
    fn a_due_time_is_never_before_its_delay_has_passed() {
        for delay in [0, 1, 200] {
            let delay = Duration::from_millis(delay);
            let earliest = SystemTime::now() + delay;
            let due = UNIX_EPOCH + Duration::from_millis(super::due_after(delay));
            assert!(due >= earliest, "due {due:?} before {earliest:?}");
            assert!(
                due <= earliest + Duration::from_millis(2),
                "due {due:?} too late"
            );
        }
    }
}
