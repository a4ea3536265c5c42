//! Routing without a hop through the hub: sessions and the hub share the table behind a
//! read-write lock. The hub is the only writer (connect, disconnect, groups); any thread
//! routes under a read lock, encoding each message once and pushing the shared frame into
//! each recipient session's inbox.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use actix::prelude::*;

use super::stats::Counters;
use super::table::{RoutingTable, Target};
use crate::error::FailureKind;
use crate::handlers::{
    ConnectionError, DeliveryTimedOut, MessageReceived, QueueFull, SendFailed, SessionConnected,
    SessionDisconnected, UserOffline,
};
use crate::protocol::{ClientId, Envelope, MessageId, OutboundFrame, Source, UserId};
use crate::session::{Inbox, PushError, QueueOverflowed, Session};
use crate::supervision::{failure, DeliveryFailed};

/// What routing holds for each session: its inbox and its actor.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    pub(crate) inbox: Arc<Inbox>,
    pub(crate) addr: Addr<Session>,
}

/// Event subscribers (see [`crate::handlers`]).
#[derive(Default)]
pub(crate) struct Subscribers {
    pub(crate) connected: Vec<Recipient<SessionConnected>>,
    pub(crate) disconnected: Vec<Recipient<SessionDisconnected>>,
    pub(crate) message_received: Vec<Recipient<MessageReceived>>,
    pub(crate) send_failed: Vec<Recipient<SendFailed>>,
    pub(crate) queue_full: Vec<Recipient<QueueFull>>,
    pub(crate) user_offline: Vec<Recipient<UserOffline>>,
    pub(crate) connection_error: Vec<Recipient<ConnectionError>>,
    pub(crate) timed_out: Vec<Recipient<DeliveryTimedOut>>,
}

/// Sends an event to every live subscriber and forgets the ones that stopped.
pub(crate) fn publish<E>(subs: &mut Vec<Recipient<E>>, event: &E)
where
    E: Message + Send + Clone + 'static,
    E::Result: Send,
{
    subs.retain(|s| s.connected());
    for s in subs.iter() {
        s.do_send(event.clone());
    }
}

struct Shared {
    table: RwLock<RoutingTable<SessionHandle>>,
    subscribers: RwLock<Subscribers>,
    counters: Counters,
}

/// A message that did not reach one session, with its frame.
#[derive(Debug, Clone)]
pub struct SessionFailure {
    /// The session.
    pub client_id: ClientId,
    /// Its user.
    pub user_id: UserId,
    /// Why.
    pub kind: FailureKind,
}

/// What routing one message did.
#[derive(Debug, Clone)]
pub struct RouteReport {
    /// The message id.
    pub id: MessageId,
    /// Sessions the frame was queued for.
    pub delivered: usize,
    /// Users named by the target with no session.
    pub offline_users: Vec<UserId>,
    /// The target group does not exist.
    pub unknown_group: bool,
    /// Sessions that could not take the frame.
    pub failed: Vec<SessionFailure>,
    /// `(user, session)` of every session that took the frame, when collected
    /// ([`Router::route_collecting`]).
    pub recipients: Vec<(UserId, ClientId)>,
}

impl RouteReport {
    /// Whether the hub took responsibility: the frame reached at least one session, or the
    /// target named nobody who could have missed it.
    pub fn accepted(&self) -> bool {
        self.delivered > 0
            || (self.offline_users.is_empty() && !self.unknown_group && self.failed.is_empty())
    }

    /// One [`DeliveryFailed`] per missed recipient.
    pub fn failures(&self, envelope: &Arc<Envelope>) -> Vec<DeliveryFailed> {
        let mut out: Vec<DeliveryFailed> = self
            .offline_users
            .iter()
            .map(|u| {
                failure(
                    FailureKind::UserOffline,
                    envelope,
                    Some(u.clone()),
                    None,
                    "recipient has no live session",
                )
            })
            .collect();
        if self.unknown_group {
            out.push(failure(
                FailureKind::Validation,
                envelope,
                None,
                None,
                "no such group",
            ));
        }
        out.extend(self.failed.iter().map(|f| {
            let detail = match f.kind {
                FailureKind::QueueFull => "session outbound queue overflowed",
                _ => "session closed before the frame was queued",
            };
            failure(
                f.kind,
                envelope,
                Some(f.user_id.clone()),
                Some(f.client_id.clone()),
                detail,
            )
        }));
        out
    }
}

/// A cheap handle on the shared routing state.
#[derive(Clone)]
pub struct Router {
    shared: Arc<Shared>,
}

impl Default for Router {
    fn default() -> Self {
        Router {
            shared: Arc::new(Shared {
                table: RwLock::new(RoutingTable::default()),
                subscribers: RwLock::new(Subscribers::default()),
                counters: Counters::default(),
            }),
        }
    }
}

impl Router {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, RoutingTable<SessionHandle>> {
        // The table's methods leave it consistent even if a panic interrupts a caller.
        self.shared.table.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, RoutingTable<SessionHandle>> {
        self.shared.table.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn subscribers(&self) -> RwLockWriteGuard<'_, Subscribers> {
        self.shared
            .subscribers
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Whether anyone listens for [`MessageReceived`] (checked before cloning a message).
    pub(crate) fn wants_message_received(&self) -> bool {
        let subs = self
            .shared
            .subscribers
            .read()
            .unwrap_or_else(|p| p.into_inner());
        !subs.message_received.is_empty()
    }

    /// Routes `envelope` to `target`, skipping `exclude`. Encodes once.
    pub fn route(
        &self,
        target: &Target,
        envelope: Arc<Envelope>,
        exclude: Option<&ClientId>,
    ) -> RouteReport {
        let frame = OutboundFrame::new(envelope, Source::Live);
        self.route_frame(target, &frame, exclude, false)
    }

    /// Like [`Router::route`], also listing every session that took the frame.
    pub fn route_collecting(
        &self,
        target: &Target,
        envelope: Arc<Envelope>,
        exclude: Option<&ClientId>,
    ) -> RouteReport {
        let frame = OutboundFrame::new(envelope, Source::Live);
        self.route_frame(target, &frame, exclude, true)
    }

    /// Routes an encoded frame.
    pub fn route_frame(
        &self,
        target: &Target,
        frame: &OutboundFrame,
        exclude: Option<&ClientId>,
        collect: bool,
    ) -> RouteReport {
        let mut failed = Vec::new();
        let mut recipients = Vec::new();
        let mut delivered = 0usize;
        let sel = self.read().select(target, exclude, |entry| {
            match entry.handle.inbox.push_app(frame.clone()) {
                Ok(()) => {
                    delivered += 1;
                    if collect {
                        recipients.push((entry.info.user_id.clone(), entry.info.client_id.clone()));
                    }
                }
                Err(e) => {
                    let kind = match e {
                        PushError::Full(_) => {
                            entry.handle.addr.do_send(QueueOverflowed);
                            FailureKind::QueueFull
                        }
                        PushError::Closed(_) => FailureKind::ConnectionError,
                    };
                    failed.push(SessionFailure {
                        client_id: entry.info.client_id.clone(),
                        user_id: entry.info.user_id.clone(),
                        kind,
                    });
                }
            }
        });
        Counters::add(&self.shared.counters.messages_sent, delivered as u64);
        if matches!(
            target,
            Target::Broadcast | Target::UserType(_) | Target::Role(_)
        ) {
            Counters::add(&self.shared.counters.broadcasts_sent, 1);
        }
        RouteReport {
            id: frame.id().clone(),
            delivered,
            offline_users: sel.offline_users,
            unknown_group: sel.unknown_group,
            failed,
            recipients,
        }
    }
}
